//! The pickle virtual machine: protocols 0–5, without executing anything. Only the
//! numpy globals of [`Global`] may be named; `REDUCE` and `BUILD` are interpreted for
//! them alone.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};

use super::numpy::{
    all_finite, convert_chunk, fortran_to_c, latin1_or_utf8, Element, Global, NdArray, ALLOWED,
};
use super::text::{
    decode_raw_unicode_escape, decode_string_escape, parse_float, parse_int, truncate,
};

/// What is wrong with a pickle, and where (byte offset of the opcode or data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PickleError {
    pub offset: u64,
    pub message: String,
}

impl std::fmt::Display for PickleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (at byte {})", self.message, self.offset)
    }
}

impl std::error::Error for PickleError {}

type Result<T> = std::result::Result<T, PickleError>;

/// Byte strings up to this size are read into memory while parsing; longer ones (the
/// arrays' raw data) stay in the file as spans.
const INLINE_MAX: u64 = 64 * 1024;
/// Chunk size for converting spans (a multiple of every element size).
const CHUNK: usize = 1 << 20;
/// Arrays of more dimensions are refused (numpy's own limit is 64).
const MAX_NDIM: usize = 32;

#[derive(Debug, Clone, Copy)]
enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Obj(usize),
}

#[derive(Debug)]
enum Blob {
    /// `len` bytes at `offset` of the source.
    Span {
        offset: u64,
        len: u64,
    },
    Inline(Vec<u8>),
}

impl Blob {
    fn len(&self) -> u64 {
        match self {
            Blob::Span { len, .. } => *len,
            Blob::Inline(v) => v.len() as u64,
        }
    }
}

#[derive(Debug)]
enum Obj {
    /// py2 `str`, py3 `bytes`/`bytearray`.
    Bytes(Blob),
    /// py3 `str`, py2 `unicode` (UTF-8).
    Text(Blob),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Set(Vec<Value>),
    Global(Global),
    Dtype(Element),
    /// From `_reconstruct`; `None` until `BUILD` gives it a state.
    Array(Option<NdArray>),
}

/// One value of the top-level dict.
#[derive(Debug, Clone)]
pub(crate) enum Entry {
    Array(NdArray),
    /// Anything else, by its Python type name.
    Other(&'static str),
}

/// A decoded top-level dict of numpy arrays. The arrays' bytes are converted on
/// request by [`PickleDict::read_f32`].
pub(crate) struct PickleDict<R> {
    src: BufReader<R>,
    objs: Vec<Obj>,
    entries: Vec<(String, Entry)>,
}

/// Parses a pickle whose top-level object is a dict (a DEAP `sNN.dat`).
pub(crate) fn load_dict<R: Read + Seek>(src: R) -> Result<PickleDict<R>> {
    let mut m = Machine::new(src)?;
    let root = m.run()?;
    let entries = m.dict_entries(root)?;
    Ok(PickleDict {
        src: m.src,
        objs: m.objs,
        entries,
    })
}

impl<R: Read + Seek> PickleDict<R> {
    /// The dict's keys, in file order.
    pub(crate) fn keys(&self) -> Vec<&str> {
        self.entries.iter().map(|(k, _)| k.as_str()).collect()
    }

    pub(crate) fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, e)| e)
    }

    /// The array under `key` as `f32` in C (row-major) order.
    pub(crate) fn read_f32(&mut self, key: &str) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        self.read_f32_into(key, &mut out)?;
        Ok(out)
    }

    /// [`Self::read_f32`] into `out` (cleared first): a caller that reads file after
    /// file passes the same buffer back, so its pages are not faulted in again.
    /// Returns whether every value is finite (no NaN or infinity, also none from a
    /// float64 too large for float32), tested block by block while the values are in
    /// cache: a caller that must check spares a second pass over the array.
    pub(crate) fn read_f32_into(&mut self, key: &str, out: &mut Vec<f32>) -> Result<bool> {
        out.clear();
        let array = match self.get(key) {
            Some(Entry::Array(a)) => a.clone(),
            Some(Entry::Other(kind)) => {
                return Err(PickleError {
                    offset: 0,
                    message: format!("`{key}` is a {kind}, not a numpy array"),
                })
            }
            None => {
                return Err(PickleError {
                    offset: 0,
                    message: format!("no key `{key}`"),
                });
            }
        };
        let blob = match &self.objs[array.data] {
            Obj::Bytes(b) => b,
            _ => unreachable!("BUILD only accepts Bytes as array data"),
        };
        let offset = match blob {
            Blob::Span { offset, .. } => *offset,
            Blob::Inline(_) => 0,
        };
        let fail = |message: String| PickleError { offset, message };
        if array.element.size().is_none() {
            return Err(fail(format!(
                "`{key}` has dtype {}: only float64 and float32 arrays are read",
                array.element.name()
            )));
        }
        let n = array
            .len()
            .ok_or_else(|| fail(format!("`{key}` has an impossible shape")))?;
        // BUILD checked that the byte count matches the shape.
        out.reserve_exact(n);
        let mut finite = true;
        match blob {
            Blob::Inline(v) => {
                convert_chunk(v, &array.element, out);
                finite = all_finite(out);
            }
            Blob::Span { offset, len } => {
                self.src
                    .seek(SeekFrom::Start(*offset))
                    .map_err(|e| fail(format!("reading `{key}`: {e}")))?;
                let mut left = *len as usize;
                let mut buf = vec![0u8; CHUNK.min(left)];
                while left > 0 {
                    let take = CHUNK.min(left);
                    let chunk = &mut buf[..take];
                    self.src.read_exact(chunk).map_err(|e| {
                        fail(format!(
                            "reading `{key}`: {e} (the file is truncated or changed)"
                        ))
                    })?;
                    let start = out.len();
                    convert_chunk(chunk, &array.element, out);
                    finite &= all_finite(&out[start..]);
                    left -= take;
                }
            }
        }
        debug_assert_eq!(out.len(), n);
        if array.fortran && array.shape.len() > 1 {
            *out = fortran_to_c(out, &array.shape);
        }
        Ok(finite)
    }
}

struct Machine<R> {
    src: BufReader<R>,
    pos: u64,
    len: u64,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u64, Value>,
    objs: Vec<Obj>,
    /// Offset of the opcode being run (for errors).
    at: u64,
}

impl<R: Read + Seek> Machine<R> {
    fn new(mut src: R) -> Result<Self> {
        let io = |e: std::io::Error| PickleError {
            offset: 0,
            message: format!("cannot read: {e}"),
        };
        let len = src.seek(SeekFrom::End(0)).map_err(io)?;
        src.seek(SeekFrom::Start(0)).map_err(io)?;
        Ok(Machine {
            src: BufReader::with_capacity(64 * 1024, src),
            pos: 0,
            len,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
            objs: Vec::new(),
            at: 0,
        })
    }

    fn err<T>(&self, message: impl Into<String>) -> Result<T> {
        Err(PickleError {
            offset: self.at,
            message: message.into(),
        })
    }

    fn truncated<T>(&self, what: &str) -> Result<T> {
        self.err(format!("the file ends inside {what}: it is truncated"))
    }

    // ----- reading -----

    fn remaining(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }

    fn read_exact_into(&mut self, buf: &mut [u8], what: &str) -> Result<()> {
        if (buf.len() as u64) > self.remaining() {
            return self.truncated(what);
        }
        match self.src.read_exact(buf) {
            Ok(()) => {
                self.pos += buf.len() as u64;
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => self.truncated(what),
            Err(e) => self.err(format!("read error: {e}")),
        }
    }

    fn read_n<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let mut b = [0u8; N];
        self.read_exact_into(&mut b, what)?;
        Ok(b)
    }

    fn read_u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.read_n::<1>(what)?[0])
    }

    fn read_vec(&mut self, n: u64, what: &str) -> Result<Vec<u8>> {
        if n > self.remaining() {
            return self.truncated(what);
        }
        let mut v = vec![0u8; n as usize];
        self.read_exact_into(&mut v, what)?;
        Ok(v)
    }

    /// A `\n`-terminated argument of a protocol 0 opcode, without the newline.
    fn read_line(&mut self, what: &str) -> Result<Vec<u8>> {
        let mut line = Vec::new();
        let n = match self.src.read_until(b'\n', &mut line) {
            Ok(n) => n,
            Err(e) => return self.err(format!("read error: {e}")),
        };
        self.pos += n as u64;
        if line.pop() != Some(b'\n') {
            return self.truncated(what);
        }
        Ok(line)
    }

    /// `n` bytes of string data: read if small, else remembered as a span and skipped.
    fn blob(&mut self, n: u64, what: &str) -> Result<Blob> {
        if n > self.remaining() {
            return self.truncated(what);
        }
        if n <= INLINE_MAX {
            return Ok(Blob::Inline(self.read_vec(n, what)?));
        }
        let offset = self.pos;
        let skip = i64::try_from(n).or_else(|_| self.truncated(what))?;
        if let Err(e) = self.src.seek_relative(skip) {
            return self.err(format!("read error: {e}"));
        }
        self.pos += n;
        Ok(Blob::Span { offset, len: n })
    }

    /// The content of a `Bytes`/`Text` blob (spans are read from the source).
    fn blob_bytes(&mut self, id: usize) -> Result<Vec<u8>> {
        let (offset, len) = match &self.objs[id] {
            Obj::Bytes(Blob::Inline(v)) | Obj::Text(Blob::Inline(v)) => return Ok(v.clone()),
            Obj::Bytes(Blob::Span { offset, len }) | Obj::Text(Blob::Span { offset, len }) => {
                (*offset, *len)
            }
            _ => return self.err("expected a string"),
        };
        let mut v = vec![0u8; len as usize];
        let read = self
            .src
            .seek(SeekFrom::Start(offset))
            .and_then(|_| self.src.read_exact(&mut v))
            .and_then(|_| self.src.seek(SeekFrom::Start(self.pos)));
        match read {
            Ok(_) => Ok(v),
            Err(e) => self.err(format!("read error: {e}")),
        }
    }

    // ----- the stack -----

    fn new_obj(&mut self, o: Obj) -> Value {
        self.objs.push(o);
        Value::Obj(self.objs.len() - 1)
    }

    fn push_obj(&mut self, o: Obj) {
        let v = self.new_obj(o);
        self.stack.push(v);
    }

    fn floor(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn pop(&mut self) -> Result<Value> {
        if self.stack.len() <= self.floor() {
            return self.err("stack underflow: an opcode needs a value that was never pushed");
        }
        Ok(self.stack.pop().expect("checked above"))
    }

    fn top(&self) -> Result<Value> {
        if self.stack.len() <= self.floor() {
            return self.err("stack underflow: an opcode needs a value that was never pushed");
        }
        Ok(*self.stack.last().expect("checked above"))
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>> {
        let Some(mark) = self.marks.pop() else {
            return self.err("an opcode needs a MARK that was never pushed");
        };
        if mark > self.stack.len() {
            return self.err("corrupt MARK");
        }
        Ok(self.stack.split_off(mark))
    }

    fn memo_get(&mut self, key: u64) -> Result<()> {
        match self.memo.get(&key) {
            Some(v) => {
                self.stack.push(*v);
                Ok(())
            }
            None => self.err(format!("memo key {key} was never stored")),
        }
    }

    fn memo_put(&mut self, key: u64) -> Result<()> {
        let v = self.top()?;
        self.memo.insert(key, v);
        Ok(())
    }

    // ----- inspecting values -----

    fn kind(&self, v: Value) -> &'static str {
        match v {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Obj(id) => match &self.objs[id] {
                Obj::Bytes(_) => "bytes",
                Obj::Text(_) => "str",
                Obj::Tuple(_) => "tuple",
                Obj::List(_) => "list",
                Obj::Dict(_) => "dict",
                Obj::Set(_) => "set",
                Obj::Global(_) => "global",
                Obj::Dtype(_) => "numpy.dtype",
                Obj::Array(_) => "numpy.ndarray",
            },
        }
    }

    fn tuple_items(&self, v: Value, what: &str) -> Result<Vec<Value>> {
        match v {
            Value::Obj(id) => match &self.objs[id] {
                Obj::Tuple(items) => Ok(items.clone()),
                _ => self.err(format!("{what} is a {}, expected a tuple", self.kind(v))),
            },
            _ => self.err(format!("{what} is a {}, expected a tuple", self.kind(v))),
        }
    }

    /// A py2 `str` (Latin-1) or py3 `str` as a Rust string (short strings only).
    fn string(&mut self, v: Value, what: &str) -> Result<String> {
        let is_text = match v {
            Value::Obj(id) => match &self.objs[id] {
                Obj::Text(b) | Obj::Bytes(b) if b.len() <= INLINE_MAX => {
                    matches!(self.objs[id], Obj::Text(_))
                }
                Obj::Text(_) | Obj::Bytes(_) => return self.err(format!("{what} is too long")),
                _ => return self.err(format!("{what} is a {}, expected a string", self.kind(v))),
            },
            _ => return self.err(format!("{what} is a {}, expected a string", self.kind(v))),
        };
        let Value::Obj(id) = v else { unreachable!() };
        let bytes = self.blob_bytes(id)?;
        Ok(latin1_or_utf8(&bytes, is_text).into_owned())
    }

    fn int(&self, v: Value, what: &str) -> Result<i64> {
        match v {
            Value::Int(i) => Ok(i),
            Value::Bool(b) => Ok(i64::from(b)),
            _ => self.err(format!("{what} is a {}, expected an int", self.kind(v))),
        }
    }

    fn shape(&self, v: Value) -> Result<Vec<usize>> {
        let items = self.tuple_items(v, "array shape")?;
        if items.len() > MAX_NDIM {
            return self.err(format!("array has {} dimensions", items.len()));
        }
        items
            .iter()
            .map(|&d| {
                let d = self.int(d, "array dimension")?;
                usize::try_from(d).or_else(|_| self.err(format!("negative array dimension {d}")))
            })
            .collect()
    }

    fn dtype(&self, v: Value) -> Result<Element> {
        match v {
            Value::Obj(id) => match &self.objs[id] {
                Obj::Dtype(e) => Ok(e.clone()),
                _ => self.err(format!("array dtype is a {}", self.kind(v))),
            },
            _ => self.err(format!("array dtype is a {}", self.kind(v))),
        }
    }

    /// The arena id of a `Bytes` object holding array data, its length checked
    /// against the shape and element size.
    fn array_data(&self, v: Value, shape: &[usize], element: &Element) -> Result<usize> {
        let id = match v {
            Value::Obj(id) if matches!(self.objs[id], Obj::Bytes(_)) => id,
            Value::Obj(id) if matches!(self.objs[id], Obj::List(_)) => {
                return self.err("array data is a list: object arrays are not supported")
            }
            _ => return self.err(format!("array data is a {}, expected bytes", self.kind(v))),
        };
        if let (Some(size), Obj::Bytes(blob)) = (element.size(), &self.objs[id]) {
            let n = shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d as u64));
            let want = n.and_then(|n| n.checked_mul(size as u64));
            if want != Some(blob.len()) {
                return self.err(format!(
                    "array data has {} bytes but shape {shape:?} of {} needs {}",
                    blob.len(),
                    element.name(),
                    want.map_or("more than 2^64".to_string(), |w| w.to_string())
                ));
            }
        }
        Ok(id)
    }

    fn truthy(&self, v: Value, what: &str) -> Result<bool> {
        match v {
            Value::Bool(b) => Ok(b),
            Value::Int(i) => Ok(i != 0),
            Value::Float(f) => Ok(f != 0.0),
            _ => self.err(format!("{what} is a {}, expected a bool", self.kind(v))),
        }
    }

    // ----- REDUCE and BUILD -----

    fn global(&mut self, module: &str, name: &str) -> Result<()> {
        match Global::resolve(module, name) {
            Some(g) => {
                self.push_obj(Obj::Global(g));
                Ok(())
            }
            None => self.err(format!(
                "refusing the global `{}.{}`: only numpy float arrays are read \
                 (allowed globals: {ALLOWED}); the file is not a DEAP data file or it is \
                 malicious. Nothing was executed",
                truncate(module),
                truncate(name)
            )),
        }
    }

    fn reduce(&mut self) -> Result<()> {
        let args = self.pop()?;
        let callable = self.pop()?;
        let global = match callable {
            Value::Obj(id) => match self.objs[id] {
                Obj::Global(g) => g,
                _ => return self.err(format!("REDUCE calls a {}", self.kind(callable))),
            },
            _ => return self.err(format!("REDUCE calls a {}", self.kind(callable))),
        };
        let args = self.tuple_items(args, "REDUCE arguments")?;
        let obj = match global {
            Global::Reconstruct => {
                let is_ndarray = matches!(args.first(), Some(Value::Obj(id))
                    if matches!(self.objs[*id], Obj::Global(Global::Ndarray)));
                if args.len() != 3 || !is_ndarray {
                    return self.err(
                        "_reconstruct is called with other arguments than (ndarray, shape, dtype)",
                    );
                }
                Obj::Array(None)
            }
            Global::Dtype => {
                let Some(&name) = args.first() else {
                    return self.err("numpy.dtype is called without arguments");
                };
                let name = self.string(name, "dtype name")?;
                Obj::Dtype(Element::from_dtype_name(&name))
            }
            Global::CodecsEncode => {
                let [text, rest @ ..] = args.as_slice() else {
                    return self.err("_codecs.encode is called without arguments");
                };
                let encoding = match rest {
                    [] => "utf-8".to_string(),
                    [e, ..] => self
                        .string(*e, "_codecs.encode encoding")?
                        .to_ascii_lowercase(),
                };
                if !matches!(
                    encoding.as_str(),
                    "latin1" | "latin-1" | "iso-8859-1" | "iso8859-1" | "l1"
                ) {
                    return self.err(format!(
                        "_codecs.encode with encoding {encoding:?} (only latin1 is read)"
                    ));
                }
                let id = match *text {
                    Value::Obj(id) if matches!(self.objs[id], Obj::Text(_)) => id,
                    v => return self.err(format!("_codecs.encode of a {}", self.kind(v))),
                };
                let utf8 = self.blob_bytes(id)?;
                let Ok(s) = std::str::from_utf8(&utf8) else {
                    return self.err("string is not valid UTF-8");
                };
                let mut bytes = Vec::with_capacity(s.len());
                for c in s.chars() {
                    match u8::try_from(u32::from(c)) {
                        Ok(b) => bytes.push(b),
                        Err(_) => {
                            return self.err("_codecs.encode: a character is outside Latin-1")
                        }
                    }
                }
                Obj::Bytes(Blob::Inline(bytes))
            }
            Global::FromBuffer => {
                let [buf, dtype, shape, order] = args.as_slice() else {
                    return self.err("_frombuffer is called with other arguments than (buffer, dtype, shape, order)");
                };
                let element = self.dtype(*dtype)?;
                let shape = self.shape(*shape)?;
                let fortran = match self.string(*order, "array order")?.as_str() {
                    "C" => false,
                    "F" => true,
                    o => return self.err(format!("unknown array order {o:?}")),
                };
                let data = self.array_data(*buf, &shape, &element)?;
                Obj::Array(Some(NdArray {
                    shape,
                    element,
                    fortran,
                    data,
                }))
            }
            Global::Ndarray => {
                return self.err("numpy.ndarray may only be an argument of _reconstruct")
            }
        };
        self.push_obj(obj);
        Ok(())
    }

    fn build(&mut self) -> Result<()> {
        let state = self.pop()?;
        let target = self.top()?;
        let id = match target {
            Value::Obj(id) => id,
            _ => return self.err(format!("BUILD on a {}", self.kind(target))),
        };
        match &self.objs[id] {
            Obj::Dtype(element) => {
                let element = element.clone();
                let items = self.tuple_items(state, "dtype state")?;
                let Some(&order) = items.get(1) else {
                    return self.err("dtype state has no byte order");
                };
                let order = self.string(order, "dtype byte order")?;
                let element = element.with_byte_order(&order).or_else(|e| self.err(e))?;
                self.objs[id] = Obj::Dtype(element);
            }
            Obj::Array(_) => {
                let items = self.tuple_items(state, "array state")?;
                // (version, shape, dtype, is_fortran, data), or without the version.
                let items = match items.len() {
                    5 => &items[1..],
                    4 => &items[..],
                    n => return self.err(format!("array state has {n} items, expected 5")),
                };
                let shape = self.shape(items[0])?;
                let element = self.dtype(items[1])?;
                let fortran = self.truthy(items[2], "array is_fortran flag")?;
                let data = self.array_data(items[3], &shape, &element)?;
                self.objs[id] = Obj::Array(Some(NdArray {
                    shape,
                    element,
                    fortran,
                    data,
                }));
            }
            _ => {
                return self.err(format!(
                    "BUILD on a {}: only numpy arrays and dtypes are rebuilt",
                    self.kind(target)
                ))
            }
        }
        Ok(())
    }

    // ----- containers -----

    fn container_mut(&mut self, v: Value) -> Option<&mut Obj> {
        match v {
            Value::Obj(id) => self.objs.get_mut(id),
            _ => None,
        }
    }

    fn extend_list(&mut self, items: Vec<Value>) -> Result<()> {
        let target = self.top()?;
        let kind = self.kind(target);
        match self.container_mut(target) {
            Some(Obj::List(list)) => {
                list.extend(items);
                Ok(())
            }
            _ => self.err(format!("APPEND to a {kind}")),
        }
    }

    fn set_items(&mut self, items: Vec<Value>) -> Result<()> {
        if !items.len().is_multiple_of(2) {
            return self.err("SETITEMS with an odd number of values");
        }
        let target = self.top()?;
        let kind = self.kind(target);
        match self.container_mut(target) {
            Some(Obj::Dict(dict)) => {
                dict.extend(items.chunks_exact(2).map(|p| (p[0], p[1])));
                Ok(())
            }
            _ => self.err(format!("SETITEM on a {kind}")),
        }
    }

    fn int_from_le(&self, bytes: &[u8]) -> Result<i64> {
        if bytes.is_empty() {
            return Ok(0);
        }
        let negative = bytes[bytes.len() - 1] & 0x80 != 0;
        let fill = if negative { 0xff } else { 0 };
        let mut b = [fill; 8];
        let (low, high) = bytes.split_at(bytes.len().min(8));
        b[..low.len()].copy_from_slice(low);
        let v = i64::from_le_bytes(b);
        if high.iter().any(|&x| x != fill) || (v < 0) != negative {
            return self.err("integer does not fit 64 bits");
        }
        Ok(v)
    }

    fn text(&mut self, n: u64, what: &str) -> Result<()> {
        let blob = self.blob(n, what)?;
        if let Blob::Inline(v) = &blob {
            if std::str::from_utf8(v).is_err() {
                return self.err(format!("{what} is not valid UTF-8"));
            }
        }
        self.push_obj(Obj::Text(blob));
        Ok(())
    }

    fn bytes(&mut self, n: u64, what: &str) -> Result<()> {
        let blob = self.blob(n, what)?;
        self.push_obj(Obj::Bytes(blob));
        Ok(())
    }

    fn tuple_of(&mut self, n: usize) -> Result<()> {
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(self.pop()?);
        }
        items.reverse();
        self.push_obj(Obj::Tuple(items));
        Ok(())
    }

    // ----- the loop -----

    fn run(&mut self) -> Result<Value> {
        loop {
            self.at = self.pos;
            if self.remaining() == 0 {
                return self.err("the pickle ends before its STOP opcode: the file is truncated");
            }
            let op = self.read_u8("an opcode")?;
            match op {
                b'(' => self.marks.push(self.stack.len()),
                b'.' => return self.pop(),
                b'0' => {
                    if self.stack.len() > self.floor() {
                        self.pop()?;
                    } else {
                        self.pop_mark()?;
                    }
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let v = self.top()?;
                    self.stack.push(v);
                }
                b'F' => {
                    let line = self.read_line("FLOAT")?;
                    let f = parse_float(&line).or_else(|e| self.err(e))?;
                    self.stack.push(Value::Float(f));
                }
                b'I' => {
                    let line = self.read_line("INT")?;
                    let v = match line.as_slice() {
                        b"00" => Value::Bool(false),
                        b"01" => Value::Bool(true),
                        _ => Value::Int(parse_int(&line).or_else(|e| self.err(e))?),
                    };
                    self.stack.push(v);
                }
                b'L' => {
                    let line = self.read_line("LONG")?;
                    let v = parse_int(&line).or_else(|e| self.err(e))?;
                    self.stack.push(Value::Int(v));
                }
                b'N' => self.stack.push(Value::None),
                b'S' => {
                    let line = self.read_line("STRING")?;
                    let bytes = decode_string_escape(&line).or_else(|e| self.err(e))?;
                    self.push_obj(Obj::Bytes(Blob::Inline(bytes)));
                }
                b'V' => {
                    let line = self.read_line("UNICODE")?;
                    let s = decode_raw_unicode_escape(&line).or_else(|e| self.err(e))?;
                    self.push_obj(Obj::Text(Blob::Inline(s.into_bytes())));
                }
                b'R' => self.reduce()?,
                b'b' => self.build()?,
                b'c' => {
                    let module = self.read_line("GLOBAL")?;
                    let name = self.read_line("GLOBAL")?;
                    let module = String::from_utf8_lossy(&module).into_owned();
                    let name = String::from_utf8_lossy(&name).into_owned();
                    self.global(&module, &name)?;
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let name = self.string(name, "STACK_GLOBAL name")?;
                    let module = self.string(module, "STACK_GLOBAL module")?;
                    self.global(&module, &name)?;
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    if !items.len().is_multiple_of(2) {
                        return self.err("DICT with an odd number of values");
                    }
                    let pairs = items.chunks_exact(2).map(|p| (p[0], p[1])).collect();
                    self.push_obj(Obj::Dict(pairs));
                }
                b'}' => self.push_obj(Obj::Dict(Vec::new())),
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.set_items(vec![k, v])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    self.set_items(items)?;
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push_obj(Obj::List(items));
                }
                b']' => self.push_obj(Obj::List(Vec::new())),
                b'a' => {
                    let v = self.pop()?;
                    self.extend_list(vec![v])?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.extend_list(items)?;
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.push_obj(Obj::Tuple(items));
                }
                b')' => self.push_obj(Obj::Tuple(Vec::new())),
                0x85 => self.tuple_of(1)?,
                0x86 => self.tuple_of(2)?,
                0x87 => self.tuple_of(3)?,
                0x8f => self.push_obj(Obj::Set(Vec::new())),
                0x90 => {
                    let items = self.pop_mark()?;
                    let target = self.top()?;
                    let kind = self.kind(target);
                    match self.container_mut(target) {
                        Some(Obj::Set(set)) => set.extend(items),
                        _ => return self.err(format!("ADDITEMS to a {kind}")),
                    }
                }
                0x91 => {
                    let items = self.pop_mark()?;
                    self.push_obj(Obj::Set(items));
                }
                b'g' => {
                    let line = self.read_line("GET")?;
                    let k = parse_int(&line).or_else(|e| self.err(e))?;
                    let k = u64::try_from(k).or_else(|_| self.err("negative memo key"))?;
                    self.memo_get(k)?;
                }
                b'h' => {
                    let k = self.read_u8("BINGET")?;
                    self.memo_get(u64::from(k))?;
                }
                b'j' => {
                    let k = u32::from_le_bytes(self.read_n("LONG_BINGET")?);
                    self.memo_get(u64::from(k))?;
                }
                b'p' => {
                    let line = self.read_line("PUT")?;
                    let k = parse_int(&line).or_else(|e| self.err(e))?;
                    let k = u64::try_from(k).or_else(|_| self.err("negative memo key"))?;
                    self.memo_put(k)?;
                }
                b'q' => {
                    let k = self.read_u8("BINPUT")?;
                    self.memo_put(u64::from(k))?;
                }
                b'r' => {
                    let k = u32::from_le_bytes(self.read_n("LONG_BINPUT")?);
                    self.memo_put(u64::from(k))?;
                }
                0x94 => {
                    let k = self.memo.len() as u64;
                    self.memo_put(k)?;
                }
                b'G' => {
                    let f = f64::from_be_bytes(self.read_n("BINFLOAT")?);
                    self.stack.push(Value::Float(f));
                }
                b'J' => {
                    let v = i32::from_le_bytes(self.read_n("BININT")?);
                    self.stack.push(Value::Int(i64::from(v)));
                }
                b'K' => {
                    let v = self.read_u8("BININT1")?;
                    self.stack.push(Value::Int(i64::from(v)));
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.read_n("BININT2")?);
                    self.stack.push(Value::Int(i64::from(v)));
                }
                0x8a => {
                    let n = self.read_u8("LONG1")?;
                    let bytes = self.read_vec(u64::from(n), "LONG1")?;
                    let v = self.int_from_le(&bytes)?;
                    self.stack.push(Value::Int(v));
                }
                0x8b => {
                    let n = i32::from_le_bytes(self.read_n("LONG4")?);
                    let n =
                        u64::try_from(n).or_else(|_| self.err("LONG4 with a negative length"))?;
                    let bytes = self.read_vec(n, "LONG4")?;
                    let v = self.int_from_le(&bytes)?;
                    self.stack.push(Value::Int(v));
                }
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'T' => {
                    let n = i32::from_le_bytes(self.read_n("BINSTRING")?);
                    let n = u64::try_from(n)
                        .or_else(|_| self.err("BINSTRING with a negative length"))?;
                    self.bytes(n, "BINSTRING")?;
                }
                b'U' => {
                    let n = self.read_u8("SHORT_BINSTRING")?;
                    self.bytes(u64::from(n), "SHORT_BINSTRING")?;
                }
                b'B' => {
                    let n = u32::from_le_bytes(self.read_n("BINBYTES")?);
                    self.bytes(u64::from(n), "BINBYTES")?;
                }
                b'C' => {
                    let n = self.read_u8("SHORT_BINBYTES")?;
                    self.bytes(u64::from(n), "SHORT_BINBYTES")?;
                }
                0x8e => {
                    let n = u64::from_le_bytes(self.read_n("BINBYTES8")?);
                    self.bytes(n, "BINBYTES8")?;
                }
                0x96 => {
                    let n = u64::from_le_bytes(self.read_n("BYTEARRAY8")?);
                    self.bytes(n, "BYTEARRAY8")?;
                }
                b'X' => {
                    let n = u32::from_le_bytes(self.read_n("BINUNICODE")?);
                    self.text(u64::from(n), "BINUNICODE")?;
                }
                0x8c => {
                    let n = self.read_u8("SHORT_BINUNICODE")?;
                    self.text(u64::from(n), "SHORT_BINUNICODE")?;
                }
                0x8d => {
                    let n = u64::from_le_bytes(self.read_n("BINUNICODE8")?);
                    self.text(n, "BINUNICODE8")?;
                }
                0x80 => {
                    let p = self.read_u8("PROTO")?;
                    if p > 5 {
                        return self.err(format!("pickle protocol {p} is not supported (0-5 are)"));
                    }
                }
                0x95 => {
                    // FRAME: a length hint for buffering; the opcodes inside are read as usual.
                    self.read_n::<8>("FRAME")?;
                }
                0x98 => {
                    self.top()?;
                }
                0x97 => {
                    return self.err("NEXT_BUFFER: out-of-band buffers are not supported");
                }
                b'P' | b'Q' => {
                    return self.err("persistent IDs are not supported (not a numpy data pickle)");
                }
                b'i' | b'o' | 0x81 | 0x92 => {
                    return self.err(format!(
                        "opcode {} builds arbitrary Python objects: refused (not a numpy data pickle)",
                        opcode_name(op)
                    ));
                }
                0x82..=0x84 => {
                    return self.err("extension-registry globals (EXT1/2/4) are refused");
                }
                other => {
                    return self.err(format!(
                        "unknown opcode 0x{other:02x}: not a pickle, or corrupt"
                    ))
                }
            }
        }
    }

    fn dict_entries(&mut self, root: Value) -> Result<Vec<(String, Entry)>> {
        let pairs = match root {
            Value::Obj(id) => match &self.objs[id] {
                Obj::Dict(pairs) => pairs.clone(),
                _ => {
                    return self.err(format!(
                        "the pickled object is a {}, expected a dict",
                        self.kind(root)
                    ))
                }
            },
            _ => {
                return self.err(format!(
                    "the pickled object is a {}, expected a dict",
                    self.kind(root)
                ))
            }
        };
        let mut entries: Vec<(String, Entry)> = Vec::with_capacity(pairs.len());
        for (k, v) in pairs {
            let key = self.string(k, "a dict key")?;
            let entry = match v {
                Value::Obj(id) => match &self.objs[id] {
                    Obj::Array(Some(a)) => Entry::Array(a.clone()),
                    Obj::Array(None) => Entry::Other("ndarray without state"),
                    _ => Entry::Other(self.kind(v)),
                },
                _ => Entry::Other(self.kind(v)),
            };
            match entries.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = entry,
                None => entries.push((key, entry)),
            }
        }
        Ok(entries)
    }
}

fn opcode_name(op: u8) -> &'static str {
    match op {
        b'i' => "INST",
        b'o' => "OBJ",
        0x81 => "NEWOBJ",
        0x92 => "NEWOBJ_EX",
        _ => "?",
    }
}
