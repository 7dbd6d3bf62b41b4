//! Per-instance file locks: two `pipe run` on one cache never compute the same
//! instance twice. The OS releases a lock when its holder dies (even by kill -9).

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

use super::store::{io_err, CacheError};

/// A held lock; released on drop.
pub(crate) struct InstanceLock {
    _file: File,
}

fn open(path: &Path) -> Result<File, CacheError> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io_err(path))
}

/// Take the lock if free; `Ok(None)` when another process holds it.
pub(crate) fn try_lock(path: &Path) -> Result<Option<InstanceLock>, CacheError> {
    let file = open(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(InstanceLock { _file: file })),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(CacheError::Io {
            path: path.to_path_buf(),
            source: e,
        }),
    }
}
