//! What runs print and write: progress, the instance table, result files.

pub mod collect;
pub mod paper;
pub mod plots;
pub mod progress;
pub mod results;
pub mod table;
pub mod write;
