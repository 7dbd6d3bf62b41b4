//! Content digests of files and folders (blake3).

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Files at least this large are memory-mapped and hashed on all cores.
const MMAP_RAYON_THRESHOLD: u64 = 1 << 20;

/// blake3 of a file's bytes, as hex.
pub(crate) fn file(path: &Path) -> io::Result<String> {
    let len = fs::metadata(path)?.len();
    let mut hasher = blake3::Hasher::new();
    if len >= MMAP_RAYON_THRESHOLD {
        hasher.update_mmap_rayon(path)?;
    } else {
        let mut buf = Vec::with_capacity(len as usize);
        fs::File::open(path)?.read_to_end(&mut buf)?;
        hasher.update(&buf);
    }
    Ok(hasher.finalize().to_hex().to_string())
}

/// One file of a folder: its path relative to the folder (with `/`), digest, size.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct FileDigest {
    pub path: String,
    pub digest: String,
    pub size: u64,
}

/// Every regular file under `root`, sorted by relative path. Symbolic links are
/// followed (external inputs often are links into a dataset folder).
pub(crate) fn list_files(root: &Path) -> io::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            let meta = fs::metadata(&path)?;
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() {
                let rel = path
                    .strip_prefix(root)
                    .map_err(io::Error::other)?
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                out.push((rel, path));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The digest of a set of files: blake3 over `path\0digest\n` lines in path order.
/// A renamed file changes it, as does any content change.
pub(crate) fn combine(files: &[FileDigest]) -> String {
    let mut h = blake3::Hasher::new();
    for f in files {
        h.update(f.path.as_bytes());
        h.update(b"\0");
        h.update(f.digest.as_bytes());
        h.update(b"\n");
    }
    h.finalize().to_hex().to_string()
}

/// The digest of a folder: every file under it digested with `digest` (a plain
/// [`file`] hash, or the stat cache's), combined by [`combine`].
pub(crate) fn folder(
    root: &Path,
    mut digest: impl FnMut(&Path) -> io::Result<String>,
) -> io::Result<String> {
    let mut files = Vec::new();
    for (rel, full) in list_files(root)? {
        let size = fs::metadata(&full)?.len();
        files.push(FileDigest {
            path: rel,
            digest: digest(&full)?,
            size,
        });
    }
    Ok(combine(&files))
}

/// The digest of a file or a folder, as `pipe hash` prints it and external inputs
/// enter cache keys.
pub(crate) fn path(p: &Path) -> io::Result<String> {
    if fs::metadata(p)?.is_dir() {
        folder(p, file)
    } else {
        file(p)
    }
}
