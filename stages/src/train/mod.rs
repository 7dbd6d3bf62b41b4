//! Training loops, losses, distillation, dynamic feedback, metrics.

pub mod dataset;
pub mod evaluate;
pub mod fit;
pub mod fixture;
pub mod losses;
pub mod metrics;
pub mod predictions;
pub mod seeds;
