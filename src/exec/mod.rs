//! Running instances: the scheduler (DAG order through the cache), the executors
//! that run instances (local processes, Slurm jobs), the child side (`pipe exec`),
//! and what the scheduler reports to observers.

pub mod attempt;
pub mod child;
pub mod executor;
pub mod job;
pub mod local;
pub mod observer;
pub mod plan;
pub mod resolve;
pub mod scheduler;
pub mod signals;
pub mod slurm;
pub mod summary;
#[cfg(test)]
mod tests;
