//! Running instances: jobs, the child side (`pipe exec`), the local executor and
//! the scheduler.

pub mod child;
pub mod executor;
pub mod job;
pub mod local;
pub mod resolve;
pub mod scheduler;
