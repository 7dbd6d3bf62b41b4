//! Running instances: the scheduler (DAG order through the cache), the executors
//! that run instances (local processes, Slurm jobs), the child side (`pipe exec`),
//! and what the scheduler reports to observers.

pub(crate) mod attempt;
pub(crate) mod child;
pub(crate) mod executor;
pub(crate) mod job;
pub(crate) mod local;
pub(crate) mod observer;
pub(crate) mod plan;
pub(crate) mod resolve;
pub(crate) mod scheduler;
pub(crate) mod signals;
pub(crate) mod slurm;
pub(crate) mod summary;
#[cfg(test)]
mod tests;
