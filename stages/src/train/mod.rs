//! Training loops, losses, distillation, dynamic feedback, metrics.

pub mod band_power;
pub mod comparison;
pub mod dataset;
pub mod distill_loop;
pub mod distill_stage;
pub mod evaluate;
pub mod feedback;
pub mod fit;
pub mod fixture;
pub mod losses;
pub mod metrics;
pub mod network;
pub mod network_params;
pub mod predictions;
pub mod seeds;
pub mod supervised;
pub mod supervised_stages;
pub mod training_stage;

#[cfg(test)]
mod tests;
