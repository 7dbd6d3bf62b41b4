//! What runs print and write: progress, the instance table, result files.

pub(crate) mod collect;
pub(crate) mod plots;
pub(crate) mod progress;
pub(crate) mod results;
pub(crate) mod table;
pub(crate) mod write;
