//! Training loops, losses, distillation, dynamic feedback, metrics.

pub mod band_power;
pub mod common;
pub mod comparison;
pub mod dataset;
pub mod distill;
pub mod distill_stage;
pub mod evaluate;
pub mod feedback;
pub mod fit;
pub mod fixture;
pub mod losses;
pub mod metrics;
pub mod network;
pub mod predictions;
pub mod seeds;
pub mod supervised;
pub mod supervised_stages;

#[cfg(test)]
mod tests;
