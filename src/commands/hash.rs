//! `pipe hash PATH…`: the digest the cache uses for a file (= `b3sum`'s) or a folder.

use std::path::PathBuf;

use crate::exit_codes;

use super::Failure;

pub(super) fn hash(paths: &[PathBuf]) -> Result<i32, Failure> {
    for p in paths {
        let digest = crate::cache::hash::path(p)
            .map_err(|e| Failure::Usage(format!("{}: {e}", p.display())))?;
        println!("{digest}  {}", p.display());
    }
    Ok(exit_codes::OK)
}
