//! Writes a dict of float64 arrays exactly as Python 2.7 `cPickle.dump(d, f, 2)` with
//! numpy 1.x writes it — the format of DEAP's `data_preprocessed_python/sNN.dat`.
//!
//! The byte layout, memo numbering included, follows cPickle: the memo starts at 1;
//! objects referenced more than once are memoized (`BINPUT`): the dict, its keys, the
//! `_reconstruct` and `ndarray` globals, each array and the float64 dtype (a singleton
//! in numpy, so later arrays refer back to it with `BINGET`); fresh temporaries (shape
//! and state tuples, the raw data, strings shorter than 2 bytes) are not. The raw data
//! is a py2 `str`: `SHORT_BINSTRING` below 256 bytes, else `BINSTRING`. A test compares
//! the output byte for byte with a file cPickle wrote.

use std::io::{self, Write};

/// A C-ordered float64 array.
pub(crate) struct F64Array<'a> {
    pub shape: &'a [usize],
    pub values: &'a [f64],
}

/// cPickle's opcodes that this writer emits.
mod op {
    pub(super) const PROTO: u8 = 0x80;
    pub(super) const EMPTY_DICT: u8 = b'}';
    pub(super) const MARK: u8 = b'(';
    pub(super) const SETITEM: u8 = b's';
    pub(super) const SETITEMS: u8 = b'u';
    pub(super) const STOP: u8 = b'.';
    pub(super) const BINPUT: u8 = b'q';
    pub(super) const LONG_BINPUT: u8 = b'r';
    pub(super) const BINGET: u8 = b'h';
    pub(super) const LONG_BINGET: u8 = b'j';
    pub(super) const GLOBAL: u8 = b'c';
    pub(super) const SHORT_BINSTRING: u8 = b'U';
    pub(super) const BINSTRING: u8 = b'T';
    pub(super) const BININT1: u8 = b'K';
    pub(super) const BININT2: u8 = b'M';
    pub(super) const BININT: u8 = b'J';
    pub(super) const INT: u8 = b'I';
    pub(super) const NONE: u8 = b'N';
    pub(super) const NEWFALSE: u8 = 0x89;
    pub(super) const EMPTY_TUPLE: u8 = b')';
    pub(super) const TUPLE: u8 = b't';
    pub(super) const TUPLE1: u8 = 0x85;
    pub(super) const TUPLE2: u8 = 0x86;
    pub(super) const TUPLE3: u8 = 0x87;
    pub(super) const REDUCE: u8 = b'R';
    pub(super) const BUILD: u8 = b'b';
}

struct Writer<W> {
    out: W,
    next_memo: u32,
}

impl<W: Write> Writer<W> {
    fn byte(&mut self, b: u8) -> io::Result<()> {
        self.out.write_all(&[b])
    }

    /// Memoize the object just written; returns its memo id.
    fn put(&mut self) -> io::Result<u32> {
        let id = self.next_memo;
        self.next_memo += 1;
        match u8::try_from(id) {
            Ok(small) => self.out.write_all(&[op::BINPUT, small])?,
            Err(_) => {
                self.byte(op::LONG_BINPUT)?;
                self.out.write_all(&id.to_le_bytes())?;
            }
        }
        Ok(id)
    }

    fn get(&mut self, id: u32) -> io::Result<()> {
        match u8::try_from(id) {
            Ok(small) => self.out.write_all(&[op::BINGET, small]),
            Err(_) => {
                self.byte(op::LONG_BINGET)?;
                self.out.write_all(&id.to_le_bytes())
            }
        }
    }

    /// cPickle `save_int` at protocol >= 1.
    fn int(&mut self, v: i64) -> io::Result<()> {
        if (0..256).contains(&v) {
            self.out.write_all(&[op::BININT1, v as u8])
        } else if (0..65536).contains(&v) {
            self.byte(op::BININT2)?;
            self.out.write_all(&(v as u16).to_le_bytes())
        } else if let Ok(v32) = i32::try_from(v) {
            self.byte(op::BININT)?;
            self.out.write_all(&v32.to_le_bytes())
        } else {
            writeln!(self.out, "{}{v}", op::INT as char)
        }
    }

    /// A py2 `str` (not memoized).
    fn string(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.string_header(bytes.len())?;
        self.out.write_all(bytes)
    }

    fn string_header(&mut self, len: usize) -> io::Result<()> {
        match u8::try_from(len) {
            Ok(short) => self.out.write_all(&[op::SHORT_BINSTRING, short]),
            Err(_) => {
                let len = i32::try_from(len).map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "array data over 2 GiB: cPickle cannot write it",
                    )
                })?;
                self.byte(op::BINSTRING)?;
                self.out.write_all(&len.to_le_bytes())
            }
        }
    }

    fn tuple_of_ints(&mut self, items: &[usize]) -> io::Result<()> {
        let as_i64 = |d: usize| {
            i64::try_from(d)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "dimension too large"))
        };
        if items.is_empty() {
            return self.byte(op::EMPTY_TUPLE);
        }
        if items.len() > 3 {
            self.byte(op::MARK)?;
        }
        for &d in items {
            self.int(as_i64(d)?)?;
        }
        self.byte(match items.len() {
            1 => op::TUPLE1,
            2 => op::TUPLE2,
            3 => op::TUPLE3,
            _ => op::TUPLE,
        })
    }

    fn values(&mut self, values: &[f64]) -> io::Result<()> {
        let mut buf = Vec::with_capacity(64 * 1024);
        for chunk in values.chunks(8 * 1024) {
            buf.clear();
            for v in chunk {
                buf.extend_from_slice(&v.to_le_bytes());
            }
            self.out.write_all(&buf)?;
        }
        Ok(())
    }
}

/// Writes `entries` (key, array) as a py2 protocol-2 dict, keys in the given order
/// (DEAP's files hold `labels` before `data`: Python 2's dict order).
pub(crate) fn write_py2_dict<W: Write>(out: W, entries: &[(&str, F64Array)]) -> io::Result<()> {
    let mut w = Writer { out, next_memo: 1 };
    w.out.write_all(&[op::PROTO, 2, op::EMPTY_DICT])?;
    w.put()?;
    let batched = entries.len() > 1;
    if batched {
        w.byte(op::MARK)?;
    }
    // Memo ids of (_reconstruct, ndarray) and of the float64 dtype, once written.
    let mut globals: Option<(u32, u32)> = None;
    let mut dtype: Option<u32> = None;
    for (key, array) in entries {
        let n: usize = array.shape.iter().product();
        if n != array.values.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "`{key}`: shape {:?} does not match {} values",
                    array.shape,
                    array.values.len()
                ),
            ));
        }
        w.string(key.as_bytes())?;
        w.put()?;
        // _reconstruct(ndarray, (0,), 'b')
        match globals {
            Some((reconstruct, ndarray)) => {
                w.get(reconstruct)?;
                w.get(ndarray)?;
            }
            None => {
                w.byte(op::GLOBAL)?;
                w.out.write_all(b"numpy.core.multiarray\n_reconstruct\n")?;
                let reconstruct = w.put()?;
                w.byte(op::GLOBAL)?;
                w.out.write_all(b"numpy\nndarray\n")?;
                let ndarray = w.put()?;
                globals = Some((reconstruct, ndarray));
            }
        }
        w.int(0)?;
        w.byte(op::TUPLE1)?;
        w.string(b"b")?;
        w.byte(op::TUPLE3)?;
        w.byte(op::REDUCE)?;
        w.put()?;
        // BUILD state: (1, shape, dtype, False, raw)
        w.byte(op::MARK)?;
        w.int(1)?;
        w.tuple_of_ints(array.shape)?;
        match dtype {
            Some(id) => w.get(id)?,
            None => {
                w.byte(op::GLOBAL)?;
                w.out.write_all(b"numpy\ndtype\n")?;
                w.put()?;
                w.string(b"f8")?;
                w.int(0)?;
                w.int(1)?;
                w.byte(op::TUPLE3)?;
                w.byte(op::REDUCE)?;
                dtype = Some(w.put()?);
                // dtype state: (3, '<', None, None, None, -1, -1, 0)
                w.byte(op::MARK)?;
                w.int(3)?;
                w.string(b"<")?;
                w.out.write_all(&[op::NONE, op::NONE, op::NONE])?;
                w.int(-1)?;
                w.int(-1)?;
                w.int(0)?;
                w.byte(op::TUPLE)?;
                w.byte(op::BUILD)?;
            }
        }
        w.byte(op::NEWFALSE)?;
        w.string_header(array.values.len() * 8)?;
        w.values(array.values)?;
        w.byte(op::TUPLE)?;
        w.byte(op::BUILD)?;
        if !batched {
            w.byte(op::SETITEM)?;
        }
    }
    if batched {
        w.byte(op::SETITEMS)?;
    }
    w.byte(op::STOP)?;
    w.out.flush()
}
