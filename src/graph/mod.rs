//! From a pipeline to a DAG of stage instances.

pub mod expand;
pub mod instance;
pub mod render;

pub use instance::{External, Instance};

use petgraph::graph::{DiGraph, NodeIndex};

use crate::spec::{Loaded, PipelineErrors};

/// The instances of a pipeline (all variations, deduplicated) in dependency order.
pub struct Dag {
    pub instances: Vec<Instance>,
    pub graph: DiGraph<usize, ()>,
}

impl Dag {
    /// Expand and check a loaded pipeline.
    pub fn build(loaded: &Loaded) -> Result<Dag, PipelineErrors> {
        let instances = expand::expand(&loaded.pipeline, &loaded.reporter).map_err(|errors| {
            PipelineErrors {
                file: loaded.reporter.name.clone(),
                errors,
            }
        })?;
        let mut graph = DiGraph::with_capacity(instances.len(), instances.len());
        for i in 0..instances.len() {
            graph.add_node(i);
        }
        for (i, inst) in instances.iter().enumerate() {
            for &u in &inst.needs {
                graph.add_edge(NodeIndex::new(u), NodeIndex::new(i), ());
            }
        }
        Ok(Dag { instances, graph })
    }

    /// Instances that depend on `i`, directly.
    pub fn dependents(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        self.graph.neighbors(NodeIndex::new(i)).map(|n| n.index())
    }
}
