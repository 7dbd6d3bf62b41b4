//! The stage library of `pipe`: dataset readers and synthetic data, preprocessing,
//! models, training, distillation and evaluation. It does not depend on the engine;
//! the engine drives it through [`stage::Stage`].

#![warn(unreachable_pub)]

pub mod data;
pub mod model;
pub mod params;
pub mod registry;
pub mod report;
pub mod resources;
pub mod stage;
pub(crate) mod stats;
#[cfg(test)]
pub(crate) mod test_support;
pub(crate) mod testing;
pub mod train;

pub use params::{ParamKind, ParamSchema, ParamSet, ParamSpec, Params};
pub use resources::Resources;
pub use stage::{Backend, Context, Input, IoContext, Outcome, Progress, Stage, StageError};
