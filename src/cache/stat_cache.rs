//! Remembers the digest of external input files by (path, size, mtime, inode), so an
//! unchanged 6 GB dataset folder is not re-read on every run.
//!
//! One small JSON file per path under `stat/`, written by rename: concurrent `pipe`
//! processes never see a half-written entry, and the worst a race does is hash a
//! file twice.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::hash;
use super::store::atomic_write;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Entry {
    path: String,
    size: u64,
    mtime_ns: i128,
    ino: u64,
    dev: u64,
    digest: String,
}

pub(crate) struct StatCache {
    dir: PathBuf,
    tmp: PathBuf,
}

impl StatCache {
    pub(crate) fn new(dir: PathBuf, tmp: PathBuf) -> Self {
        StatCache { dir, tmp }
    }

    fn entry_path(&self, path: &Path) -> PathBuf {
        let h = blake3::hash(path.as_os_str().as_encoded_bytes()).to_hex();
        self.dir.join(&h.as_str()[..32])
    }

    /// The digest of one file, from the stat cache when its stat is unchanged.
    pub(crate) fn file_digest(&self, path: &Path) -> io::Result<String> {
        let meta = fs::metadata(path)?;
        let now = Entry {
            path: path.to_string_lossy().into_owned(),
            size: meta.len(),
            mtime_ns: meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128,
            ino: meta.ino(),
            dev: meta.dev(),
            digest: String::new(),
        };
        let entry_path = self.entry_path(path);
        if let Some(old) = fs::read(&entry_path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Entry>(&b).ok())
        {
            if (Entry {
                digest: String::new(),
                ..old.clone()
            }) == now
            {
                return Ok(old.digest);
            }
        }
        let digest = hash::file(path)?;
        let entry = Entry {
            digest: digest.clone(),
            ..now
        };
        // a failure to remember is not a failure to hash
        if let Ok(json) = serde_json::to_vec(&entry) {
            let _ = atomic_write(&entry_path, &json, &self.tmp);
        }
        Ok(digest)
    }

    /// The digest of a file or of a whole folder (see [`hash::combine`]).
    pub(crate) fn digest(&self, path: &Path) -> io::Result<String> {
        let meta = fs::metadata(path)?;
        if meta.is_file() {
            return self.file_digest(path);
        }
        hash::folder(path, |f| self.file_digest(f))
    }
}
