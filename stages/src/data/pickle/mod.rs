//! A safe reader for the Python pickles DEAP ships (`sNN.dat`), and a writer of the
//! same bytes Python 2 `cPickle` + numpy produce (for the synthetic stand-in).
//!
//! Why hand-written rather than `serde-pickle` 1.2: with
//! `replace_unresolved_globals` serde-pickle turns *every* global into `None` — it cannot
//! refuse `os.system` or `builtins.eval` with an error that says so, it drops the numpy
//! dtype (so the element type has to be guessed from byte counts and the byte order is
//! lost), and it copies each array's raw bytes into an owned `Vec<u8>` inside a generic
//! value tree. This reader supports exactly the opcodes of protocols 0–5 and a short
//! allowlist of numpy globals (see [`numpy::Global`]); it refuses any other global at
//! the `GLOBAL`/`STACK_GLOBAL` opcode, never executes anything, and keeps large byte
//! strings as spans of the file that are decoded straight to `f32` afterwards (no copy
//! of the 103 MB payload, memory ≈ the `f32` output).
//!
//! Objects live in an arena addressed by index (no `Rc` trees), so hostile input can
//! neither build cycles that leak nor nest values deep enough to overflow the stack
//! when they are dropped.

mod numpy;
mod text;
mod vm;
pub(crate) mod writer;

pub(crate) use numpy::{all_finite, fortran_to_c};
pub(crate) use vm::{load_dict, Entry, PickleDict, PickleError};

#[cfg(test)]
pub(crate) mod tests;
