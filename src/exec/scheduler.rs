//! Runs a DAG through the cache: ready instances in parallel up to `--jobs`, each in
//! its own process; cached ones skipped; outputs published atomically; a failure
//! stops what depends on it while independent work goes on (unless `--fail-fast`).

use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Map, Value};

use super::executor::{Event, Executor};
use super::job::{Job, JobResult};
use super::local::LocalExecutor;
use super::resolve::{self, Produced, Resolved};
use crate::cache::lock::{self, InstanceLock};
use crate::cache::manifest::{self, Host, Manifest, Versions, MANIFEST_SCHEMA};
use crate::cache::refs::{self, Ref};
use crate::cache::store::Attempt;
use crate::cache::{Cache, Validity};
use crate::graph::Dag;
use crate::report::progress::Ui;
use crate::spec::{Action, Pipeline};

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub jobs: usize,
    /// Stage names whose instances rerun even when cached.
    pub force: Vec<String>,
    /// Only these stages and what they need.
    pub only: Vec<String>,
    pub fail_fast: bool,
    pub quiet: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Cached,
    Ran,
    Failed(String),
    /// Not run because something it needs failed (or `--fail-fast` stopped the run).
    Skipped(String),
    /// Left out by `--only`.
    NotSelected,
}

impl Status {
    pub fn word(&self) -> &'static str {
        match self {
            Status::Cached => "cached",
            Status::Ran => "ran",
            Status::Failed(_) => "FAILED",
            Status::Skipped(_) => "skipped",
            Status::NotSelected => "not selected",
        }
    }
}

/// What happened to one instance.
#[derive(Debug, Clone)]
pub struct InstanceReport {
    pub label: String,
    pub stage: String,
    pub uses: String,
    pub variations: Vec<String>,
    pub cell: Map<String, Value>,
    pub status: Status,
    pub seconds: f64,
    pub key: Option<String>,
    pub metrics: Map<String, Value>,
    pub log: Option<PathBuf>,
    /// Output folder in the cache (for reports reading files like learning curves).
    pub out_dir: Option<PathBuf>,
}

pub struct RunSummary {
    pub instances: Vec<InstanceReport>,
    pub seconds: f64,
}

impl RunSummary {
    pub fn failed(&self) -> usize {
        self.instances
            .iter()
            .filter(|r| matches!(r.status, Status::Failed(_)))
            .count()
    }
}

enum State {
    Pending,
    Ready(Resolved),
    Running {
        resolved: Resolved,
        attempt: Attempt,
        started: Instant,
        lock: InstanceLock,
        wall: SystemTime,
    },
    Done,
}

/// The instances `--only` keeps: those stages and everything they need.
fn selection(dag: &Dag, only: &[String]) -> Vec<bool> {
    if only.is_empty() {
        return vec![true; dag.instances.len()];
    }
    let mut keep = vec![false; dag.instances.len()];
    for i in (0..dag.instances.len()).rev() {
        if only.contains(&dag.instances[i].stage) {
            keep[i] = true;
        }
        if keep[i] {
            for &u in &dag.instances[i].needs {
                keep[u] = true;
            }
        }
    }
    keep
}

pub fn run(
    pipeline: &Pipeline,
    dag: &Dag,
    cache: &Cache,
    opts: &RunOptions,
) -> Result<RunSummary, String> {
    let t0 = Instant::now();
    let n = dag.instances.len();
    let selected = selection(dag, &opts.only);
    let mut reports: Vec<InstanceReport> = dag
        .instances
        .iter()
        .map(|inst| InstanceReport {
            label: inst.label(),
            stage: inst.stage.clone(),
            uses: inst.uses().to_string(),
            variations: inst.variations.clone(),
            cell: inst.cell.clone().into_iter().collect(),
            status: Status::NotSelected,
            seconds: 0.0,
            key: None,
            metrics: Map::new(),
            log: None,
            out_dir: None,
        })
        .collect();
    let mut state: Vec<State> = (0..n).map(|_| State::Pending).collect();
    for (i, s) in selected.iter().enumerate() {
        if !s {
            state[i] = State::Done;
        }
    }
    let mut produced: Vec<Option<Produced>> = vec![None; n];
    let mut ready: VecDeque<usize> = VecDeque::new();
    let mut exec =
        LocalExecutor::new().map_err(|e| format!("cannot find the pipe executable: {e}"))?;
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let jobs = opts.jobs.max(1);
    let threads = (cores / jobs).max(1);
    let ui = Ui::new(selected.iter().filter(|s| **s).count() as u64, opts.quiet);
    let mut stop_new = false;
    let mut running = 0usize;

    loop {
        // 1. decide every pending instance whose inputs are all known
        for i in 0..n {
            if !matches!(state[i], State::Pending) {
                continue;
            }
            let inst = &dag.instances[i];
            if let Some(&bad) = inst
                .needs
                .iter()
                .find(|&&u| matches!(reports[u].status, Status::Failed(_) | Status::Skipped(_)))
            {
                reports[i].status =
                    Status::Skipped(format!("{} did not complete", dag.instances[bad].label()));
                state[i] = State::Done;
                ui.skipped(&reports[i].label);
                continue;
            }
            if stop_new {
                reports[i].status = Status::Skipped("stopped after a failure (--fail-fast)".into());
                state[i] = State::Done;
                continue;
            }
            let resolved = match resolve::resolve(cache, dag, i, &produced) {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(e) => {
                    reports[i].status = Status::Failed(e);
                    state[i] = State::Done;
                    ui.failed(&reports[i].label, &reports[i].status, None);
                    stop_new |= opts.fail_fast;
                    continue;
                }
            };
            let forced = opts.force.contains(&inst.stage);
            if !forced {
                if let Some(m) = valid_manifest(cache, &resolved.key) {
                    mark_cached(pipeline, dag, cache, i, m, &mut reports, &mut produced);
                    state[i] = State::Done;
                    ui.cached(&reports[i].label);
                    continue;
                }
            }
            reports[i].key = Some(resolved.key.clone());
            state[i] = State::Ready(resolved);
            ready.push_back(i);
        }

        // 2. start what we can
        let mut deferred = Vec::new();
        let mut progressed = false;
        while running < jobs && !stop_new {
            let Some(i) = ready.pop_front() else { break };
            let State::Ready(resolved) = std::mem::replace(&mut state[i], State::Pending) else {
                continue;
            };
            let lock = match lock::try_lock(&cache.lock_path(&resolved.key)) {
                Ok(Some(l)) => l,
                Ok(None) => {
                    // another pipe process runs it: check again later
                    state[i] = State::Ready(resolved);
                    deferred.push(i);
                    continue;
                }
                Err(e) => return Err(e.to_string()),
            };
            let forced = opts.force.contains(&dag.instances[i].stage);
            if !forced {
                if let Some(m) = valid_manifest(cache, &resolved.key) {
                    // another pipe process computed it while we waited
                    drop(lock);
                    mark_cached(pipeline, dag, cache, i, m, &mut reports, &mut produced);
                    state[i] = State::Done;
                    ui.cached(&reports[i].label);
                    progressed = true;
                    continue;
                }
            }
            match start(
                dag, cache, &mut exec, i, &resolved, &produced, threads, pipeline,
            ) {
                Ok(attempt) => {
                    reports[i].log = Some(cache.log_path(&resolved.key));
                    ui.started(i, &reports[i].label);
                    state[i] = State::Running {
                        resolved,
                        attempt,
                        started: Instant::now(),
                        lock,
                        wall: SystemTime::now(),
                    };
                    running += 1;
                }
                Err(e) => {
                    reports[i].status = Status::Failed(e);
                    state[i] = State::Done;
                    ui.failed(&reports[i].label, &reports[i].status, None);
                    stop_new |= opts.fail_fast;
                }
            }
        }
        ready.extend(deferred);
        if progressed {
            // dependents of what just turned out cached may be ready now
            continue;
        }

        if running == 0 {
            let progress_possible = state.iter().any(|s| matches!(s, State::Ready(_)));
            let pending = state.iter().any(|s| matches!(s, State::Pending));
            if !progress_possible && (!pending || stop_new) {
                break;
            }
            if !progress_possible && pending {
                // pending instances whose inputs can never arrive: should not happen
                for (i, s) in state.iter_mut().enumerate() {
                    if matches!(s, State::Pending) {
                        reports[i].status = Status::Skipped("its inputs were not produced".into());
                        *s = State::Done;
                    }
                }
                break;
            }
            if stop_new {
                break;
            }
        }

        // 3. wait for something to happen
        let timeout = if ready.is_empty() {
            Duration::from_millis(500)
        } else {
            Duration::from_millis(100)
        };
        let Some(event) = exec.next_event(timeout) else {
            continue;
        };
        match event {
            Event::Progress { slot, line } => ui.progress(slot, &line),
            Event::Finished { slot: i, code } => {
                running -= 1;
                let State::Running {
                    resolved,
                    attempt,
                    started,
                    lock,
                    wall,
                } = std::mem::replace(&mut state[i], State::Done)
                else {
                    continue;
                };
                let seconds = started.elapsed().as_secs_f64();
                reports[i].seconds = seconds;
                let result = finish(
                    pipeline, dag, cache, i, &resolved, &attempt, code, seconds, wall,
                );
                drop(lock);
                let _ = crate::cache::store::remove_tree(&attempt.dir);
                match result {
                    Ok(m) => {
                        produced[i] = Some(Produced {
                            key: m.key.clone(),
                            digest: m.outputs.digest.clone(),
                        });
                        reports[i].metrics = m.metrics.clone();
                        reports[i].out_dir = Some(cache.out_dir(&m.key));
                        reports[i].status = Status::Ran;
                        ui.ran(i, &reports[i].label, seconds);
                    }
                    Err(e) => {
                        reports[i].status = Status::Failed(e);
                        ui.failed(
                            &reports[i].label,
                            &reports[i].status,
                            reports[i].log.as_deref(),
                        );
                        ui.finished_slot(i);
                        if opts.fail_fast {
                            stop_new = true;
                        }
                    }
                }
            }
        }
    }
    if stop_new {
        exec.cancel_all();
    }
    ui.finish();
    Ok(RunSummary {
        instances: reports,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

fn valid_manifest(cache: &Cache, key: &str) -> Option<Manifest> {
    let m = cache.manifest(key)?;
    match cache.validity(&m) {
        Validity::Valid => Some(m),
        Validity::Missing(f) | Validity::Changed(f) => {
            tracing::warn!(key, file = %f, "cached output was modified or removed; recomputing");
            let _ = cache.discard_damaged(&m);
            None
        }
    }
}

fn mark_cached(
    pipeline: &Pipeline,
    dag: &Dag,
    cache: &Cache,
    i: usize,
    m: Manifest,
    reports: &mut [InstanceReport],
    produced: &mut [Option<Produced>],
) {
    let inst = &dag.instances[i];
    produced[i] = Some(Produced {
        key: m.key.clone(),
        digest: m.outputs.digest.clone(),
    });
    let r = &mut reports[i];
    r.status = Status::Cached;
    r.key = Some(m.key.clone());
    r.seconds = m.timings.seconds;
    r.out_dir = Some(cache.out_dir(&m.key));
    r.log = Some(cache.log_path(&m.key));
    r.metrics = m.metrics;
    let existing = refs::read(cache, &pipeline.name, &r.label, &inst.variations);
    if existing.is_none_or(|e| e.key != m.key) {
        refs::write(
            cache,
            &Ref {
                pipeline: pipeline.name.clone(),
                label: r.label.clone(),
                variations: inst.variations.clone(),
                key: m.key,
            },
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn start(
    dag: &Dag,
    cache: &Cache,
    exec: &mut dyn Executor,
    i: usize,
    resolved: &Resolved,
    produced: &[Option<Produced>],
    threads: usize,
    pipeline: &Pipeline,
) -> Result<Attempt, String> {
    let inst = &dag.instances[i];
    let attempt = cache.attempt(&resolved.key).map_err(|e| e.to_string())?;
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
            stage: dag.instances[u].stage.clone(),
            cell: dag.instances[u].cell.clone().into_iter().collect(),
            dir: cache.out_dir(&produced[u].as_ref().expect("inputs are produced").key),
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
        root: pipeline.root.clone(),
        seed: inst.seed,
        backend: inst.backend,
        threads,
    };
    let job_file = attempt.dir.join("job.json");
    job.write(&job_file)
        .map_err(|e| format!("{}: {e}", job_file.display()))?;
    let log = cache.log_path(&resolved.key);
    let _ = std::fs::remove_file(&log);
    exec.submit(i, &job_file, &log)
        .map_err(|e| format!("cannot start {}: {e}", inst.label()))?;
    Ok(attempt)
}

#[allow(clippy::too_many_arguments)]
fn finish(
    pipeline: &Pipeline,
    dag: &Dag,
    cache: &Cache,
    i: usize,
    resolved: &Resolved,
    attempt: &Attempt,
    code: Option<i32>,
    seconds: f64,
    wall: SystemTime,
) -> Result<Manifest, String> {
    let inst = &dag.instances[i];
    let log = cache.log_path(&resolved.key);
    let result: Option<JobResult> = std::fs::read(attempt.dir.join("result.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let result = match (code, result) {
        (Some(0), Some(r)) if r.ok => r,
        (_, Some(JobResult { error: Some(e), .. })) => {
            return Err(format!("{e} (log: {})", log.display()))
        }
        (Some(c), _) => return Err(format!("exited with status {c} (log: {})", log.display())),
        (None, _) => return Err(format!("was killed by a signal (log: {})", log.display())),
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
    let outputs = cache
        .publish(&resolved.key, attempt)
        .map_err(|e| e.to_string())?;
    let m = Manifest {
        schema_version: MANIFEST_SCHEMA,
        key: resolved.key.clone(),
        pipeline: pipeline.name.clone(),
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
    };
    cache.commit(&m).map_err(|e| e.to_string())?;
    refs::write(
        cache,
        &Ref {
            pipeline: pipeline.name.clone(),
            label: m.label.clone(),
            variations: inst.variations.clone(),
            key: m.key.clone(),
        },
    );
    Ok(m)
}

/// For `plan`: what each instance would do, without running anything.
pub struct PlanLine {
    pub label: String,
    pub variations: Vec<String>,
    pub action: &'static str,
    pub reason: String,
    pub key: Option<String>,
}

pub fn plan(
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
