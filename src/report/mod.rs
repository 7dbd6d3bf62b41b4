//! What runs print and write: progress, the instance table, result files.

pub mod progress;
pub mod results;
pub mod table;
