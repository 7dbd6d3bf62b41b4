//! From a pipeline to a DAG of stage instances.

pub(crate) mod expand;
pub(crate) mod instance;
pub(crate) mod render;

pub(crate) use instance::Instance;

use crate::spec::{Loaded, PipelineErrors};

/// The instances of a pipeline (all variations, deduplicated) in dependency order:
/// each instance's `needs` come before it. (The stage graph — order and cycles — is
/// a petgraph graph in [`expand`].)
pub(crate) struct Dag {
    pub instances: Vec<Instance>,
}

impl Dag {
    /// Expand and check a loaded pipeline.
    pub(crate) fn build(loaded: &Loaded) -> Result<Dag, PipelineErrors> {
        let instances = expand::expand(&loaded.pipeline, &loaded.reporter).map_err(|errors| {
            PipelineErrors {
                file: loaded.reporter.name.clone(),
                errors,
            }
        })?;
        Ok(Dag { instances })
    }
}
