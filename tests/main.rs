//! Integration tests: they run the real `pipe` binary as a user would.
//! One test binary (one link step on a 2-core CI).

mod util;

mod cache;
mod commands;
mod faults;
mod keys;
mod malformed;
mod matrix;
mod pipelines;
mod report;
mod slurm;
mod statistics;
