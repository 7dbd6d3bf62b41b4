//! `pipe`: declarative, content-hashed pipelines. The engine: pipeline files, the
//! DAG, the cache, the executor, reports and the command line. It knows stages only
//! through `stages::Stage`.
//!
//! Only the command line, the command dispatcher, logging and the exit codes are
//! public (the `pipe` binary uses them); everything else is crate-private.

#![warn(missing_docs, unreachable_pub)]

pub(crate) mod cache;
// clap's derive turns doc comments into `--help` text, so the command line's
// documentation is `pipe --help`; arguments without their own help (flattened groups)
// are not documented twice.
#[allow(missing_docs)]
pub mod cli;
pub mod commands;
pub(crate) mod exec;
pub mod exit_codes;
pub(crate) mod graph;
pub mod logging;
pub(crate) mod report;
pub(crate) mod spec;

/// The identities of a pipeline file's instances before anything runs (stage,
/// version, key parameters, cell, backend and upstream identities), sorted: what
/// the cache-key laws in `tests/keys.rs` are checked on.
pub fn instance_identities(file: &std::path::Path) -> Result<Vec<String>, String> {
    let loaded = spec::load(file, &[], None).map_err(|e| format!("{e:?}"))?;
    let dag = graph::Dag::build(&loaded).map_err(|e| format!("{e:?}"))?;
    let mut ids: Vec<String> = dag.instances.into_iter().map(|i| i.static_id).collect();
    ids.sort();
    Ok(ids)
}
