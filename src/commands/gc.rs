//! `pipe gc [FILES...] [--keep-days N]`: remove runs that none of the given
//! pipelines refer to (and that were not made in the last N days), the objects only
//! they used, and leftovers of crashed runs.

use std::collections::HashSet;
use std::fs;
use std::time::{Duration, SystemTime};

use crate::cache::store::remove_tree;
use crate::cli::{GcArgs, PipelineArgs};
use crate::exec::plan as scheduler;
use crate::exit_codes;

use super::Failure;

pub(super) fn gc(args: GcArgs) -> Result<i32, Failure> {
    if args.files.is_empty() && args.keep_days.is_none() {
        return Err(Failure::Usage(
            "say what to keep: pipeline files (`pipe gc pipelines/*.yaml`) and/or `--keep-days N`"
                .into(),
        ));
    }
    let root = args.files.first().map(|f| crate::spec::project_root(f));
    let cache = super::open_cache(
        &args.cache,
        root.as_deref().or(std::env::current_dir().ok().as_deref()),
    )?;
    let mut keep: HashSet<String> = HashSet::new();
    for f in &args.files {
        let (loaded, dag) = super::load(&PipelineArgs {
            file: f.clone(),
            sets: Vec::new(),
            variation: None,
        })?;
        for line in scheduler::plan(&loaded.pipeline, &dag, &cache, &[], &[]) {
            if let Some(k) = line.key {
                keep.insert(k);
            }
        }
    }
    let manifests = cache.manifests()?;
    if let Some(days) = args.keep_days {
        let cutoff = SystemTime::now() - Duration::from_secs(days * 86_400);
        for m in &manifests {
            let recent = fs::metadata(cache.manifest_path(&m.key))
                .and_then(|md| md.modified())
                .is_ok_and(|t| t >= cutoff);
            if recent {
                keep.insert(m.key.clone());
            }
        }
    }
    let mut used_objects: HashSet<String> = HashSet::new();
    let mut removed_runs = 0;
    for m in &manifests {
        if keep.contains(&m.key) {
            used_objects.extend(m.outputs.files.iter().map(|f| f.digest.clone()));
            continue;
        }
        removed_runs += 1;
        if args.dry_run {
            println!("would remove {} ({})", m.label, &m.key[..16]);
        } else {
            cache.forget(&m.key)?;
            let _ = fs::remove_file(cache.log_path(&m.key));
            let _ = fs::remove_file(cache.lock_path(&m.key));
        }
    }
    let mut removed_objects = 0;
    let mut freed = 0u64;
    let objects = cache.root.join("objects");
    for (rel, path) in crate::cache::hash::list_files(&objects)
        .map_err(|e| Failure::Other(format!("{}: {e}", objects.display())))?
    {
        let digest: String = rel.chars().filter(|c| *c != '/').collect();
        if used_objects.contains(&digest) {
            continue;
        }
        removed_objects += 1;
        freed += fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if !args.dry_run {
            let _ = fs::remove_file(&path);
        }
    }
    // attempts of processes that no longer exist (crashed or killed)
    let mut removed_tmp = 0;
    if let Ok(entries) = fs::read_dir(cache.tmp_dir()) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid = name.split('.').nth(1).and_then(|p| p.parse::<u32>().ok());
            if let Some(pid) = pid {
                if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                    removed_tmp += 1;
                    if !args.dry_run {
                        let _ = remove_tree(&e.path());
                    }
                }
            }
        }
    }
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    println!(
        "{verb} {removed_runs} runs, {removed_objects} objects ({:.1} MiB) and {removed_tmp} abandoned attempts; kept {} runs",
        freed as f64 / (1 << 20) as f64,
        manifests.len() - removed_runs
    );
    Ok(exit_codes::OK)
}
