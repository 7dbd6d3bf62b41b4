//! The stage library of `pipe`: dataset readers and synthetic data, preprocessing,
//! models, training, distillation and evaluation. It does not depend on the engine;
//! the engine drives it through [`stage::Stage`].

pub mod data;
pub mod model;
pub mod registry;
pub mod resources;
pub mod stage;
pub mod stats;
pub mod testing;
pub mod train;

pub use resources::Resources;
pub use stage::{
    Backend, Context, Input, IoContext, Outcome, ParamKind, ParamSpec, Params, Progress, Stage,
    StageError,
};
