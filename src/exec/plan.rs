//! `pipe plan`: what each instance would do, without running anything.

use std::collections::HashSet;

use super::resolve::{self, Produced};
use super::scheduler::selection;
use crate::cache::{Cache, Validity};
use crate::graph::Dag;
use crate::spec::Pipeline;

/// What one instance would do.
pub(crate) struct PlanLine {
    pub label: String,
    pub variations: Vec<String>,
    pub action: &'static str,
    pub reason: String,
    pub key: Option<String>,
}

pub(crate) fn plan(
    pipeline: &Pipeline,
    dag: &Dag,
    cache: &Cache,
    force: &[String],
    only: &[String],
) -> Vec<PlanLine> {
    let n = dag.instances.len();
    let selected = selection(dag, only);
    let mut produced: Vec<Option<Produced>> = vec![None; n];
    let mut will_run = HashSet::new();
    let mut lines = Vec::with_capacity(n);
    for i in 0..n {
        let inst = &dag.instances[i];
        let label = inst.label();
        if !selected[i] {
            lines.push(PlanLine {
                label,
                variations: inst.variations.clone(),
                action: "skip",
                reason: "not selected (--only)".into(),
                key: None,
            });
            continue;
        }
        let line = match resolve::resolve(cache, dag, i, &produced) {
            Err(e) => PlanLine {
                label,
                variations: inst.variations.clone(),
                action: "error",
                reason: e,
                key: None,
            },
            Ok(None) => {
                let ups: Vec<String> = inst
                    .needs
                    .iter()
                    .filter(|u| will_run.contains(*u))
                    .map(|&u| dag.instances[u].label())
                    .collect();
                will_run.insert(i);
                let shown = if ups.len() > 2 {
                    format!("{}, {} and {} more", ups[0], ups[1], ups.len() - 2)
                } else {
                    ups.join(", ")
                };
                PlanLine {
                    label,
                    variations: inst.variations.clone(),
                    action: "run",
                    reason: format!("after {shown} (unless its outputs come out unchanged)"),
                    key: None,
                }
            }
            Ok(Some(r)) => {
                let forced = force.contains(&inst.stage);
                let valid = cache
                    .manifest(&r.key)
                    .filter(|m| cache.validity(m) == Validity::Valid);
                match (forced, valid) {
                    (false, Some(m)) => {
                        produced[i] = Some(Produced {
                            key: m.key.clone(),
                            digest: m.outputs.digest.clone(),
                        });
                        PlanLine {
                            label,
                            variations: inst.variations.clone(),
                            action: "cached",
                            reason: String::new(),
                            key: Some(r.key),
                        }
                    }
                    (true, _) => {
                        will_run.insert(i);
                        PlanLine {
                            label,
                            variations: inst.variations.clone(),
                            action: "run",
                            reason: "forced (--force)".into(),
                            key: Some(r.key),
                        }
                    }
                    (false, None) => {
                        will_run.insert(i);
                        let reason = match cache.manifest(&r.key) {
                            Some(m) => match cache.validity(&m) {
                                Validity::Missing(f) => format!("output missing ({f})"),
                                Validity::Changed(f) => {
                                    format!("output {f} was modified in the cache")
                                }
                                Validity::Valid => unreachable!("valid manifests are cached"),
                            },
                            None => resolve::reason(cache, &pipeline.name, inst, &r),
                        };
                        PlanLine {
                            label,
                            variations: inst.variations.clone(),
                            action: "run",
                            reason,
                            key: Some(r.key),
                        }
                    }
                }
            }
        };
        lines.push(line);
    }
    lines
}
