//! One attempt at running an instance: the job file that describes it, and — when
//! the executor reports it finished — its outputs published into the cache and its
//! manifest committed (the commit point: no manifest, no result).

use std::path::PathBuf;
use std::time::SystemTime;

use serde_json::Value;

use super::executor::{log_tail, JobEnd};
use super::job::{Job, JobResult};
use super::resolve::{Produced, Resolved};
use crate::cache::manifest::{self, Host, Manifest, Versions, MANIFEST_SCHEMA};
use crate::cache::refs::{self, Ref};
use crate::cache::store::Attempt;
use crate::cache::Cache;
use crate::graph::Dag;
use crate::spec::{Action, Pipeline};

/// What the scheduler needs to run instance `i`.
pub(crate) struct Env<'a> {
    pub pipeline: &'a Pipeline,
    pub dag: &'a Dag,
    pub cache: &'a Cache,
}

impl Env<'_> {
    /// A fresh attempt folder with `job.json` for instance `i`; returns the attempt
    /// and the job file.
    pub(crate) fn prepare(
        &self,
        i: usize,
        resolved: &Resolved,
        produced: &[Option<Produced>],
        threads: usize,
    ) -> Result<(Attempt, PathBuf), String> {
        let inst = &self.dag.instances[i];
        let attempt = self
            .cache
            .attempt(&resolved.key)
            .map_err(|e| e.to_string())?;
        let mut params = inst.params.clone();
        for e in &inst.externals {
            if let Some(p) = &e.param {
                params.insert(p.clone(), Value::String(e.path.display().to_string()));
            }
        }
        let inputs = inst
            .needs
            .iter()
            .map(|&u| stages::Input {
                stage: self.dag.instances[u].stage.clone(),
                cell: self.dag.instances[u].cell.clone().into_iter().collect(),
                dir: self
                    .cache
                    .out_dir(&produced[u].as_ref().expect("inputs are produced").key),
            })
            .collect();
        let (uses, command, outs) = match &inst.action {
            Action::Uses(s) => (Some(s.name().to_string()), None, Vec::new()),
            Action::Run(_) => (
                None,
                params
                    .get("command")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                params
                    .get("outs")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
        };
        let job = Job {
            key: resolved.key.clone(),
            label: inst.label(),
            uses,
            command,
            outs,
            params,
            cell: inst.cell.clone().into_iter().collect(),
            variations: inst.variations.clone(),
            inputs,
            out_dir: attempt.out.clone(),
            scratch_dir: attempt.scratch.clone(),
            result_path: attempt.dir.join("result.json"),
            root: self.pipeline.root.clone(),
            seed: inst.seed,
            backend: inst.backend,
            threads,
        };
        let job_file = attempt.dir.join("job.json");
        job.write(&job_file)
            .map_err(|e| format!("{}: {e}", job_file.display()))?;
        let _ = std::fs::remove_file(self.cache.log_path(&resolved.key));
        Ok((attempt, job_file))
    }

    /// Publish a finished attempt: read its result, move its outputs into the store,
    /// commit the manifest and point the pipeline's ref at it.
    pub(crate) fn publish(
        &self,
        i: usize,
        resolved: &Resolved,
        attempt: &Attempt,
        end: JobEnd,
        seconds: f64,
        wall: SystemTime,
    ) -> Result<Manifest, String> {
        let inst = &self.dag.instances[i];
        let log = self.cache.log_path(&resolved.key);
        let result: Option<JobResult> = std::fs::read(attempt.dir.join("result.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let tail = || {
            let tail = log_tail(&log, 5);
            if tail.is_empty() {
                String::new()
            } else {
                format!("\n{}", indent(&tail))
            }
        };
        let result = match (end.code, result, &end.failure) {
            (Some(0), Some(r), None) if r.ok => r,
            // the executor knows why (a cluster job's state): say that first
            (_, r, Some(failure)) => {
                let said = r
                    .and_then(|r| r.error)
                    .map(|e| format!(" (the stage: {e})"))
                    .unwrap_or_default();
                return Err(format!("{failure}{said}; log: {}{}", log.display(), tail()));
            }
            (_, Some(JobResult { error: Some(e), .. }), None) => {
                return Err(format!("{e} (log: {})", log.display()));
            }
            (Some(c), _, None) => {
                return Err(format!(
                    "exited with status {c} (log: {}){}",
                    log.display(),
                    tail()
                ))
            }
            (None, _, None) => {
                return Err(format!(
                    "was killed by a signal (log: {}){}",
                    log.display(),
                    tail()
                ))
            }
        };
        let mut metrics = result.metrics;
        if metrics.is_empty() {
            // `run:` stages report metrics by writing metrics.json
            if let Some(Value::Object(m)) = std::fs::read(attempt.out.join("metrics.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
            {
                metrics = m;
            }
        }
        let outputs = self
            .cache
            .publish(&resolved.key, attempt)
            .map_err(|e| e.to_string())?;
        let m = Manifest {
            schema_version: MANIFEST_SCHEMA,
            key: resolved.key.clone(),
            pipeline: self.pipeline.name.clone(),
            stage: inst.stage.clone(),
            label: inst.label(),
            uses: inst.uses().to_string(),
            version: inst.version,
            cell: inst.cell.clone().into_iter().collect(),
            params: inst.params.clone(),
            backend: inst.backend.to_string(),
            seed: inst.seed,
            inputs: resolved.inputs.clone(),
            externals: resolved.externals.clone(),
            outputs,
            metrics,
            timings: manifest::Timings {
                started: manifest::rfc3339(wall),
                seconds,
            },
            host: Host::current(),
            versions: Versions {
                pipe: env!("CARGO_PKG_VERSION").into(),
                stage: inst.version,
            },
            variations: inst.variations.clone(),
            job: end.record,
        };
        self.cache.commit(&m).map_err(|e| e.to_string())?;
        self.point_ref(i, &m.key);
        Ok(m)
    }

    /// Make the pipeline's ref for instance `i` name `key` (what `pipe show STAGE`
    /// and `gc` follow).
    pub(crate) fn point_ref(&self, i: usize, key: &str) {
        let inst = &self.dag.instances[i];
        let label = inst.label();
        let existing = refs::read(self.cache, &self.pipeline.name, &label, &inst.variations);
        if existing.is_none_or(|e| e.key != key) {
            refs::write(
                self.cache,
                &Ref {
                    pipeline: self.pipeline.name.clone(),
                    label,
                    variations: inst.variations.clone(),
                    key: key.to_string(),
                },
            );
        }
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
