//! The cache folder: content-addressed objects, run manifests, published output
//! trees, logs, locks and scratch space. Layout documented in `cache/README.md`.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::hash::{self, FileDigest};
use super::manifest::{Manifest, OutputFile, Outputs};
use super::stat_cache::StatCache;

/// A cache problem, naming the path involved.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cache folder {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("cache folder {path} is not writable ({source}); pick another with --cache-dir or PIPE_CACHE_DIR")]
    NotWritable { path: PathBuf, source: io::Error },
    #[error("{path}: stage output must be a regular file or folder (symbolic links and devices are not cached)")]
    NotAFile { path: PathBuf },
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CacheError + '_ {
    move |source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Write `bytes` to `path` so readers see the old file or the new one, never a part.
pub(crate) fn atomic_write(path: &Path, bytes: &[u8], tmp_dir: &Path) -> io::Result<()> {
    static N: AtomicU64 = AtomicU64::new(0);
    let tmp = tmp_dir.join(format!(
        ".write-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Whether a cached run's outputs are still as published.
#[derive(Debug, PartialEq)]
pub(crate) enum Validity {
    Valid,
    /// An output file is gone.
    Missing(String),
    /// An output file's size or modification time changed (modified or corrupted).
    Changed(String),
}

pub(crate) struct Cache {
    pub root: PathBuf,
    pub stat: StatCache,
}

/// A fresh, private folder for one attempt at running an instance.
pub(crate) struct Attempt {
    pub dir: PathBuf,
    pub out: PathBuf,
    pub scratch: PathBuf,
}

impl Cache {
    /// Open (creating if needed) the cache at `root` and check that it is writable.
    pub(crate) fn open(root: &Path) -> Result<Cache, CacheError> {
        let root = std::path::absolute(root).map_err(io_err(root))?;
        for sub in [
            "objects", "runs", "out", "tmp", "logs", "locks", "stat", "refs",
        ] {
            let p = root.join(sub);
            fs::create_dir_all(&p).map_err(|source| {
                if source.kind() == io::ErrorKind::PermissionDenied
                    || source.raw_os_error() == Some(30)
                {
                    CacheError::NotWritable {
                        path: root.clone(),
                        source,
                    }
                } else {
                    CacheError::Io {
                        path: p.clone(),
                        source,
                    }
                }
            })?;
        }
        let probe = root
            .join("tmp")
            .join(format!(".probe-{}", std::process::id()));
        fs::write(&probe, b"ok").map_err(|source| CacheError::NotWritable {
            path: root.clone(),
            source,
        })?;
        let _ = fs::remove_file(&probe);
        let stat = StatCache::new(root.join("stat"), root.join("tmp"));
        Ok(Cache { root, stat })
    }

    pub(crate) fn manifest_path(&self, key: &str) -> PathBuf {
        self.root.join("runs").join(format!("{key}.json"))
    }
    pub(crate) fn out_dir(&self, key: &str) -> PathBuf {
        self.root.join("out").join(key)
    }
    pub(crate) fn log_path(&self, key: &str) -> PathBuf {
        self.root.join("logs").join(format!("{key}.log"))
    }
    pub(crate) fn lock_path(&self, key: &str) -> PathBuf {
        self.root.join("locks").join(format!("{key}.lock"))
    }
    pub(crate) fn object_path(&self, digest: &str) -> PathBuf {
        self.root
            .join("objects")
            .join(&digest[..2])
            .join(&digest[2..])
    }
    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// The manifest of `key`, if the run was committed.
    pub(crate) fn manifest(&self, key: &str) -> Option<Manifest> {
        let bytes = fs::read(self.manifest_path(key)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Every committed manifest.
    pub(crate) fn manifests(&self) -> Result<Vec<Manifest>, CacheError> {
        let dir = self.root.join("runs");
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let path = entry.map_err(io_err(&dir))?.path();
            if path.extension().is_some_and(|e| e == "json") {
                if let Some(m) = fs::read(&path)
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok())
                {
                    out.push(m);
                }
            }
        }
        Ok(out)
    }

    /// Cheap check (stat only) that a committed run's files are intact.
    pub(crate) fn validity(&self, m: &Manifest) -> Validity {
        let dir = self.out_dir(&m.key);
        for f in &m.outputs.files {
            match fs::metadata(dir.join(&f.path)) {
                Err(_) => return Validity::Missing(f.path.clone()),
                Ok(meta) => {
                    if meta.len() != f.size || mtime_ns(&meta) != f.mtime_ns {
                        return Validity::Changed(f.path.clone());
                    }
                }
            }
        }
        Validity::Valid
    }

    /// A new private folder under `tmp/` for running `key`.
    pub(crate) fn attempt(&self, key: &str) -> Result<Attempt, CacheError> {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = self.tmp_dir().join(format!(
            "{key}.{}.{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let out = dir.join("out");
        let scratch = dir.join("scratch");
        fs::create_dir_all(&out).map_err(io_err(&out))?;
        fs::create_dir_all(&scratch).map_err(io_err(&scratch))?;
        Ok(Attempt { dir, out, scratch })
    }

    /// Move an attempt's outputs into the store: each file becomes a read-only
    /// content-addressed object, `out/<key>/` a tree of hard links to them, made
    /// visible by one rename. The caller then commits with [`Cache::commit`].
    pub(crate) fn publish(&self, key: &str, attempt: &Attempt) -> Result<Outputs, CacheError> {
        let files = hash::list_files(&attempt.out).map_err(io_err(&attempt.out))?;
        for (_, path) in &files {
            let meta = fs::symlink_metadata(path).map_err(io_err(path))?;
            if !meta.is_file() {
                return Err(CacheError::NotAFile { path: path.clone() });
            }
        }
        let staged = attempt.dir.join("publish");
        fs::create_dir_all(&staged).map_err(io_err(&staged))?;
        let mut digests = Vec::with_capacity(files.len());
        for (rel, path) in &files {
            let digest = hash::file(path).map_err(io_err(path))?;
            let size = fs::metadata(path).map_err(io_err(path))?.len();
            let object = self.object_path(&digest);
            if !object.exists() {
                let parent = object.parent().expect("objects have a parent");
                fs::create_dir_all(parent).map_err(io_err(parent))?;
                fs::set_permissions(path, fs::Permissions::from_mode(0o444))
                    .map_err(io_err(path))?;
                fs::rename(path, &object).map_err(io_err(&object))?;
            }
            let target = staged.join(rel);
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent).map_err(io_err(parent))?;
            }
            if fs::hard_link(&object, &target).is_err() {
                fs::copy(&object, &target).map_err(io_err(&target))?;
                let _ = fs::set_permissions(&target, fs::Permissions::from_mode(0o444));
            }
            digests.push(FileDigest {
                path: rel.clone(),
                digest,
                size,
            });
        }
        let final_dir = self.out_dir(key);
        if final_dir.exists() {
            // left by an earlier attempt that died before committing, or corrupted
            remove_tree(&final_dir).map_err(io_err(&final_dir))?;
        }
        fs::rename(&staged, &final_dir).map_err(io_err(&final_dir))?;
        let mut out_files = Vec::with_capacity(digests.len());
        for d in &digests {
            let p = final_dir.join(&d.path);
            let meta = fs::metadata(&p).map_err(io_err(&p))?;
            out_files.push(OutputFile {
                path: d.path.clone(),
                digest: d.digest.clone(),
                size: d.size,
                mtime_ns: mtime_ns(&meta),
            });
        }
        Ok(Outputs {
            digest: hash::combine(&digests),
            files: out_files,
        })
    }

    /// Write the manifest: the run now exists for every later `pipe`.
    pub(crate) fn commit(&self, m: &Manifest) -> Result<(), CacheError> {
        let path = self.manifest_path(&m.key);
        let json = serde_json::to_vec_pretty(m).expect("manifests serialize");
        atomic_write(&path, &json, &self.tmp_dir()).map_err(io_err(&path))
    }

    /// Forget a run (its manifest first, so it is never half-valid).
    pub(crate) fn forget(&self, key: &str) -> Result<(), CacheError> {
        let m = self.manifest_path(key);
        match fs::remove_file(&m) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(CacheError::Io { path: m, source: e }),
        }
        let dir = self.out_dir(key);
        if dir.exists() {
            remove_tree(&dir).map_err(io_err(&dir))?;
        }
        Ok(())
    }
}

/// Remove a folder tree whose files may be read-only.
pub(crate) fn remove_tree(dir: &Path) -> io::Result<()> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(_) => {
            // make folders writable and retry (unprivileged users)
            let mut stack = vec![dir.to_path_buf()];
            while let Some(d) = stack.pop() {
                let _ = fs::set_permissions(&d, fs::Permissions::from_mode(0o755));
                if let Ok(rd) = fs::read_dir(&d) {
                    for e in rd.flatten() {
                        if e.file_type().is_ok_and(|t| t.is_dir()) {
                            stack.push(e.path());
                        }
                    }
                }
            }
            fs::remove_dir_all(dir)
        }
    }
}

pub(crate) fn mtime_ns(meta: &fs::Metadata) -> i128 {
    meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128
}

impl Cache {
    /// Drop a run whose files changed after publishing, and the objects they share
    /// an inode with, so a rerun cannot link the damaged bytes again.
    pub(crate) fn discard_damaged(&self, m: &Manifest) -> Result<(), CacheError> {
        let dir = self.out_dir(&m.key);
        for f in &m.outputs.files {
            let changed = match fs::metadata(dir.join(&f.path)) {
                Ok(meta) => meta.len() != f.size || mtime_ns(&meta) != f.mtime_ns,
                Err(_) => false,
            };
            if changed {
                let obj = self.object_path(&f.digest);
                let _ = fs::remove_file(&obj);
            }
        }
        self.forget(&m.key)
    }
}
