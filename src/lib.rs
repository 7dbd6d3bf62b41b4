//! `pipe`: declarative, content-hashed pipelines. The engine: pipeline files, the
//! DAG, the cache, the executor, reports and the command line. It knows stages only
//! through `stages::Stage`.

pub mod cache;
pub mod cli;
pub mod commands;
pub mod exec;
pub mod exit_codes;
pub mod graph;
pub mod logging;
pub mod report;
pub mod spec;
