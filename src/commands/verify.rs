//! `pipe verify`: re-hash every published output and object; report (and with
//! `--fix` remove) what no longer matches its digest.

use std::fs;

use crate::cache::hash;
use crate::cli::VerifyArgs;
use crate::exit_codes;

use super::Failure;

pub(super) fn verify(args: VerifyArgs) -> Result<i32, Failure> {
    let cache = super::open_cache(&args.cache, std::env::current_dir().ok().as_deref())?;
    let mut bad_runs = Vec::new();
    let mut checked_files = 0usize;
    let manifests = cache.manifests()?;
    for m in &manifests {
        let dir = cache.out_dir(&m.key);
        for f in &m.outputs.files {
            checked_files += 1;
            let p = dir.join(&f.path);
            match hash::file(&p) {
                Ok(d) if d == f.digest => {}
                Ok(_) => {
                    bad_runs.push((m.clone(), format!("{} does not match its digest", f.path)))
                }
                Err(e) => bad_runs.push((m.clone(), format!("{}: {e}", f.path))),
            }
        }
    }
    let mut bad_objects = Vec::new();
    let objects = cache.root.join("objects");
    let mut checked_objects = 0usize;
    for (rel, path) in hash::list_files(&objects)
        .map_err(|e| Failure::Other(format!("{}: {e}", objects.display())))?
    {
        checked_objects += 1;
        let name: String = rel.chars().filter(|c| *c != '/').collect();
        match hash::file(&path) {
            Ok(d) if d == name => {}
            _ => bad_objects.push(path),
        }
    }
    for (m, why) in &bad_runs {
        println!("corrupt run {} ({}): {why}", m.label, &m.key[..16]);
    }
    for o in &bad_objects {
        println!("corrupt object {}", o.display());
    }
    println!(
        "checked {} runs ({checked_files} files) and {checked_objects} objects: {} corrupt runs, {} corrupt objects",
        manifests.len(),
        bad_runs.len(),
        bad_objects.len()
    );
    if bad_runs.is_empty() && bad_objects.is_empty() {
        return Ok(exit_codes::OK);
    }
    if args.fix {
        for (m, _) in &bad_runs {
            cache.forget(&m.key)?;
        }
        for o in &bad_objects {
            let _ = fs::remove_file(o);
        }
        println!("removed them; the next `pipe run` recomputes what is needed");
        return Ok(exit_codes::OK);
    }
    println!("run `pipe verify --fix` to remove them (the next `pipe run` then recomputes them)");
    Ok(exit_codes::CACHE)
}
