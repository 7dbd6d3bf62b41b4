//! Training loops, losses, distillation, dynamic feedback, metrics.

pub(crate) mod band_power;
pub(crate) mod comparison;
pub mod dataset;
pub mod distill_loop;
pub(crate) mod distill_stage;
pub(crate) mod evaluate;
pub(crate) mod evaluate_report;
pub mod feedback;
pub(crate) mod fit;
pub mod losses;
pub mod metrics;
pub(crate) mod network;
pub(crate) mod network_params;
pub(crate) mod paper;
pub(crate) mod predictions;
pub(crate) mod seeds;
pub(crate) mod supervised;
pub(crate) mod supervised_stages;
pub(crate) mod training_stage;

#[cfg(test)]
mod tests;
