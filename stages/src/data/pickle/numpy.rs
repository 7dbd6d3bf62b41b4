//! The numpy side of the pickle reader: the allowlisted globals, dtypes, arrays, and
//! the decoding of an array's raw bytes to `f32` in C order.

use std::borrow::Cow;

/// The only globals a pickle may name. Anything else is refused when it is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Global {
    /// `numpy.core.multiarray._reconstruct` / `numpy._core.multiarray._reconstruct`
    /// (numpy >= 2): makes an empty array that `BUILD` fills.
    Reconstruct,
    /// `numpy.ndarray`: the class argument of `_reconstruct`.
    Ndarray,
    /// `numpy.dtype`: `dtype('f8', 0, 1)` + `BUILD` with the byte order.
    Dtype,
    /// `_codecs.encode(str, 'latin1')`: how Python 3 writes `bytes` at protocols < 3.
    CodecsEncode,
    /// `numpy.core.numeric._frombuffer` / `numpy._core.numeric._frombuffer`: protocol 5
    /// arrays `(buffer, dtype, shape, order)`.
    FromBuffer,
}

/// The allowlist, as printed in errors.
pub(crate) const ALLOWED: &str =
    "numpy.core.multiarray._reconstruct, numpy._core.multiarray._reconstruct, \
     numpy.ndarray, numpy.dtype, _codecs.encode, numpy.core.numeric._frombuffer, \
     numpy._core.numeric._frombuffer";

impl Global {
    pub(crate) fn resolve(module: &str, name: &str) -> Option<Global> {
        Some(match (module, name) {
            ("numpy.core.multiarray" | "numpy._core.multiarray", "_reconstruct") => {
                Global::Reconstruct
            }
            ("numpy" | "numpy.core.multiarray" | "numpy._core.multiarray", "ndarray") => {
                Global::Ndarray
            }
            ("numpy" | "numpy.core.multiarray" | "numpy._core.multiarray", "dtype") => {
                Global::Dtype
            }
            ("_codecs", "encode") => Global::CodecsEncode,
            ("numpy.core.numeric" | "numpy._core.numeric", "_frombuffer") => Global::FromBuffer,
            _ => return None,
        })
    }
}

/// Byte order of an array's elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endian {
    Little,
    Big,
}

impl Endian {
    pub(crate) fn native() -> Endian {
        if cfg!(target_endian = "big") {
            Endian::Big
        } else {
            Endian::Little
        }
    }
}

/// The element type of an array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Element {
    F64(Endian),
    F32(Endian),
    /// Any other dtype (its numpy name): readable as a pickle, refused as data.
    Unsupported(String),
}

impl Element {
    /// Bytes per element, for the supported types.
    pub(crate) fn size(&self) -> Option<usize> {
        match self {
            Element::F64(_) => Some(8),
            Element::F32(_) => Some(4),
            Element::Unsupported(_) => None,
        }
    }

    /// numpy's name (`<f8`, `>f4`, ...).
    pub(crate) fn name(&self) -> String {
        let order = |e: &Endian| if *e == Endian::Little { '<' } else { '>' };
        match self {
            Element::F64(e) => format!("{}f8", order(e)),
            Element::F32(e) => format!("{}f4", order(e)),
            Element::Unsupported(n) => n.clone(),
        }
    }

    /// From the first argument of `numpy.dtype(...)`: `f8`, `<f4`, `float64`, ...
    pub(crate) fn from_dtype_name(name: &str) -> Element {
        let (endian, base) = match name.as_bytes().first() {
            Some(b'<') => (Endian::Little, &name[1..]),
            Some(b'>') => (Endian::Big, &name[1..]),
            Some(b'=') | Some(b'|') => (Endian::native(), &name[1..]),
            _ => (Endian::native(), name),
        };
        match base {
            "f8" | "d" | "float64" | "double" => Element::F64(endian),
            "f4" | "f" | "float32" | "single" => Element::F32(endian),
            _ => Element::Unsupported(name.to_string()),
        }
    }

    /// Apply the byte-order character of a dtype's `BUILD` state.
    pub(crate) fn with_byte_order(self, order: &str) -> Result<Element, String> {
        let endian = match order {
            "<" => Endian::Little,
            ">" => Endian::Big,
            "=" => Endian::native(),
            "|" => match self {
                Element::Unsupported(_) => return Ok(self),
                _ => return Err(format!("float dtype {} with byte order '|'", self.name())),
            },
            other => return Err(format!("unknown dtype byte order {other:?}")),
        };
        Ok(match self {
            Element::F64(_) => Element::F64(endian),
            Element::F32(_) => Element::F32(endian),
            u => u,
        })
    }
}

/// An array as the pickle describes it; its bytes stay in the file (or in the
/// decoded pickle) until [`super::PickleDict::read_f32`] converts them.
#[derive(Debug, Clone)]
pub(crate) struct NdArray {
    pub shape: Vec<usize>,
    pub element: Element,
    /// Column-major (numpy `is_fortran`).
    pub fortran: bool,
    /// Arena id of the `Bytes` object that holds the raw data.
    pub(crate) data: usize,
}

impl NdArray {
    /// Number of elements (None if it overflows).
    pub(crate) fn len(&self) -> Option<usize> {
        self.shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
    }
}

/// Appends the elements of `bytes` (whole elements of `element`) to `out` as `f32`.
/// float64 values are rounded to the nearest `f32` (Rust's `as`, like numpy's
/// `astype(float32)`).
pub(crate) fn convert_chunk(bytes: &[u8], element: &Element, out: &mut Vec<f32>) {
    match element {
        Element::F64(e) => {
            let (chunks, _) = bytes.as_chunks::<8>();
            match e {
                Endian::Little => out.extend(chunks.iter().map(|c| f64::from_le_bytes(*c) as f32)),
                Endian::Big => out.extend(chunks.iter().map(|c| f64::from_be_bytes(*c) as f32)),
            }
        }
        Element::F32(e) => {
            let (chunks, _) = bytes.as_chunks::<4>();
            match e {
                Endian::Little => out.extend(chunks.iter().map(|c| f32::from_le_bytes(*c))),
                Endian::Big => out.extend(chunks.iter().map(|c| f32::from_be_bytes(*c))),
            }
        }
        Element::Unsupported(_) => {}
    }
}

/// Whether no value is NaN or infinite. Blocks without an early exit inside, so the
/// compiler vectorises the test (a plain `all` stops it from doing so).
pub(crate) fn all_finite(values: &[f32]) -> bool {
    values
        .chunks(4096)
        .all(|block| block.iter().fold(true, |ok, v| ok & v.is_finite()))
}

/// Reorders a column-major (Fortran) array of `shape` to row-major (C) order.
/// `values.len()` must equal the product of `shape`.
pub(crate) fn fortran_to_c<T: Copy>(values: &[T], shape: &[usize]) -> Vec<T> {
    let n: usize = shape.iter().product();
    assert_eq!(
        values.len(),
        n,
        "fortran_to_c: values do not match the shape"
    );
    if shape.len() < 2 || n == 0 {
        return values.to_vec();
    }
    // Fortran strides: the first index varies fastest.
    let mut strides = vec![1usize; shape.len()];
    for k in 1..shape.len() {
        strides[k] = strides[k - 1] * shape[k - 1];
    }
    let last = shape.len() - 1;
    let (inner, inner_stride) = (shape[last], strides[last]);
    let mut out = Vec::with_capacity(n);
    let mut index = vec![0usize; last];
    loop {
        let base: usize = index.iter().zip(&strides).map(|(i, s)| i * s).sum();
        out.extend((0..inner).map(|k| values[base + k * inner_stride]));
        // Increment the outer multi-index in C order.
        let mut axis = last;
        loop {
            if axis == 0 {
                return out;
            }
            axis -= 1;
            index[axis] += 1;
            if index[axis] < shape[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
}

/// A dtype name argument (`'f8'`) may be a py2 `str` (bytes) or a py3 `str`.
pub(crate) fn latin1_or_utf8(bytes: &[u8], is_text: bool) -> Cow<'_, str> {
    if is_text {
        String::from_utf8_lossy(bytes)
    } else {
        Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fortran_to_c_matches_index_formula() {
        let shape = [2usize, 3, 4];
        // Fortran: element (i, j, k) at i + 2*j + 6*k, holding value 100i + 10j + k.
        let mut f = vec![0u32; 24];
        for i in 0..2 {
            for j in 0..3 {
                for k in 0..4 {
                    f[i + 2 * j + 6 * k] = (100 * i + 10 * j + k) as u32;
                }
            }
        }
        let c = fortran_to_c(&f, &shape);
        for i in 0..2 {
            for j in 0..3 {
                for k in 0..4 {
                    assert_eq!(c[(i * 3 + j) * 4 + k], (100 * i + 10 * j + k) as u32);
                }
            }
        }
        assert_eq!(fortran_to_c(&[1, 2, 3], &[3]), vec![1, 2, 3]);
    }

    #[test]
    fn dtype_names() {
        assert_eq!(
            Element::from_dtype_name("f8"),
            Element::F64(Endian::native())
        );
        assert_eq!(Element::from_dtype_name(">f4"), Element::F32(Endian::Big));
        assert_eq!(
            Element::from_dtype_name("i8"),
            Element::Unsupported("i8".into())
        );
        let e = Element::from_dtype_name("f8").with_byte_order(">").unwrap();
        assert_eq!(e, Element::F64(Endian::Big));
        assert!(Element::from_dtype_name("f4").with_byte_order("|").is_err());
        assert!(Element::from_dtype_name("f4").with_byte_order("x").is_err());
    }

    #[test]
    fn converts_both_byte_orders() {
        let mut out = Vec::new();
        convert_chunk(&1.5f64.to_be_bytes(), &Element::F64(Endian::Big), &mut out);
        convert_chunk(
            &(-2.25f32).to_le_bytes(),
            &Element::F32(Endian::Little),
            &mut out,
        );
        convert_chunk(
            &(1.0f64 / 3.0).to_le_bytes(),
            &Element::F64(Endian::Little),
            &mut out,
        );
        assert_eq!(out, vec![1.5, -2.25, (1.0f64 / 3.0) as f32]);
    }
}
