//! Tests that need networks: distillation, dynamic feedback, the training stages end
//! to end, determinism. Sizes are tiny (16-sample windows, 4-wide tokens).

mod composed;
mod feedback;
mod stages;
mod support;
