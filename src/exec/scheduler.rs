//! Runs a DAG through the cache: ready instances go to an executor, up to `--jobs` at
//! once; cached ones are skipped; outputs are published atomically; a failure stops
//! what depends on it while independent work goes on (unless `--fail-fast`); an
//! interrupt cancels what runs and leaves the cache clean. The executor (local
//! processes, Slurm) and the observer (terminal UI, test recorder) come from outside.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Map;

use super::attempt::Env;
use super::executor::{Event, Executor, JobEnd, Submission};
use super::observer::Observer;
use super::resolve::{self, Produced, Resolved};
pub(crate) use super::summary::{InstanceReport, RunSummary, Status};
use crate::cache::lock::{self, InstanceLock};
use crate::cache::manifest::Manifest;
use crate::cache::store::Attempt;
use crate::cache::{CacheError, Validity};
use crate::exit_codes;
use crate::graph::Dag;

#[derive(Debug, Clone)]
pub(crate) struct RunOptions {
    /// Most instances submitted at once (running locally, or queued on a cluster).
    pub jobs: usize,
    /// Stage names whose instances rerun even when cached.
    pub force: Vec<String>,
    /// Only these stages and what they need.
    pub only: Vec<String>,
    pub fail_fast: bool,
    /// After an interrupt, how long to wait for cancelled jobs to end before giving
    /// up on them (their attempts are discarded either way).
    pub cancel_grace: Duration,
}

/// Why a run could not go on (an instance failing is not one: it is reported in the
/// summary and the run continues).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// An instance's lock file could not be taken (cache not writable, disk full).
    #[error(transparent)]
    Cache(#[from] CacheError),
}

impl RunError {
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Cache(_) => exit_codes::CACHE,
        }
    }
}

/// The instances `--only` keeps: those stages and everything they need.
pub(crate) fn selection(dag: &Dag, only: &[String]) -> Vec<bool> {
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

/// A submitted instance.
struct Running {
    resolved: Resolved,
    attempt: Attempt,
    started: Instant,
    wall: SystemTime,
    _lock: InstanceLock,
}

enum State {
    /// Waiting for its inputs.
    Pending,
    /// Key known, not cached, waiting for a free slot (or another process's lock).
    Ready(Resolved),
    Running(Box<Running>),
    Done,
}

/// Everything one run keeps track of.
struct RunState<'a> {
    env: Env<'a>,
    opts: &'a RunOptions,
    obs: &'a dyn Observer,
    reports: Vec<InstanceReport>,
    state: Vec<State>,
    produced: Vec<Option<Produced>>,
    ready: VecDeque<usize>,
    running: usize,
    /// No new submissions (`--fail-fast` after a failure, or an interrupt).
    stop_new: bool,
    interrupted: Option<Instant>,
}

impl<'a> RunState<'a> {
    fn new(env: Env<'a>, opts: &'a RunOptions, obs: &'a dyn Observer) -> Self {
        let dag = env.dag;
        let selected = selection(dag, &opts.only);
        let reports = dag
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
        let state = selected
            .iter()
            .map(|&s| if s { State::Pending } else { State::Done })
            .collect();
        RunState {
            env,
            opts,
            obs,
            reports,
            state,
            produced: vec![None; dag.instances.len()],
            ready: VecDeque::new(),
            running: 0,
            stop_new: false,
            interrupted: None,
        }
    }

    fn forced(&self, i: usize) -> bool {
        self.opts.force.contains(&self.env.dag.instances[i].stage)
    }

    /// The one "is it cached?" decision: a valid manifest for `key`, unless the
    /// stage is forced. A damaged entry is discarded (and recomputed).
    fn cached(&self, i: usize, key: &str) -> Option<Manifest> {
        if self.forced(i) {
            return None;
        }
        let cache = self.env.cache;
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

    fn mark_cached(&mut self, i: usize, m: Manifest) {
        self.env.point_ref(i, &m.key);
        self.produced[i] = Some(Produced {
            key: m.key.clone(),
            digest: m.outputs.digest.clone(),
        });
        let r = &mut self.reports[i];
        r.status = Status::Cached;
        r.seconds = m.timings.seconds;
        r.out_dir = Some(self.env.cache.out_dir(&m.key));
        r.log = Some(self.env.cache.log_path(&m.key));
        r.key = Some(m.key);
        r.metrics = m.metrics;
        self.state[i] = State::Done;
        self.obs.cached(&r.label);
    }

    fn fail(&mut self, i: usize, slot: Option<usize>, why: String) {
        self.reports[i].status = Status::Failed(why);
        self.state[i] = State::Done;
        self.obs
            .failed(slot, &self.reports[i].label, &self.reports[i].status);
        self.stop_new |= self.opts.fail_fast;
    }

    fn skip(&mut self, i: usize, why: String) {
        self.reports[i].status = Status::Skipped(why);
        self.state[i] = State::Done;
        self.obs.skipped(&self.reports[i].label);
    }

    /// Decide every pending instance whose inputs are all known: skipped, failed,
    /// cached, or ready to run.
    fn decide_pending(&mut self) {
        let dag = self.env.dag;
        for i in 0..dag.instances.len() {
            if !matches!(self.state[i], State::Pending) {
                continue;
            }
            let inst = &dag.instances[i];
            if let Some(&bad) = inst.needs.iter().find(|&&u| {
                matches!(
                    self.reports[u].status,
                    Status::Failed(_) | Status::Skipped(_)
                )
            }) {
                self.skip(
                    i,
                    format!("{} did not complete", dag.instances[bad].label()),
                );
                continue;
            }
            if self.stop_new {
                self.skip(i, self.stop_reason().into());
                continue;
            }
            match resolve::resolve(self.env.cache, dag, i, &self.produced) {
                Ok(None) => {}
                Err(e) => self.fail(i, None, e),
                Ok(Some(resolved)) => match self.cached(i, &resolved.key) {
                    Some(m) => self.mark_cached(i, m),
                    None => {
                        self.reports[i].key = Some(resolved.key.clone());
                        self.state[i] = State::Ready(resolved);
                        self.ready.push_back(i);
                    }
                },
            }
        }
    }

    /// Submit ready instances while slots are free. True when something turned out
    /// cached meanwhile (its dependents may be ready now).
    fn submit_ready(&mut self, exec: &mut dyn Executor) -> Result<bool, RunError> {
        let mut deferred = Vec::new();
        let mut progressed = false;
        while self.running < self.opts.jobs.max(1) && !self.stop_new {
            let Some(i) = self.ready.pop_front() else {
                break;
            };
            let State::Ready(resolved) = std::mem::replace(&mut self.state[i], State::Pending)
            else {
                continue;
            };
            let Some(lock) = lock::try_lock(&self.env.cache.lock_path(&resolved.key))? else {
                // another pipe process runs it: check again later
                self.state[i] = State::Ready(resolved);
                deferred.push(i);
                continue;
            };
            if let Some(m) = self.cached(i, &resolved.key) {
                // another pipe process computed it while we waited
                self.mark_cached(i, m);
                progressed = true;
                continue;
            }
            match self.submit(exec, i, &resolved) {
                Ok(attempt) => {
                    self.state[i] = State::Running(Box::new(Running {
                        resolved,
                        attempt,
                        started: Instant::now(),
                        wall: SystemTime::now(),
                        _lock: lock,
                    }));
                    self.running += 1;
                }
                Err(e) => self.fail(i, None, e),
            }
        }
        self.ready.extend(deferred);
        Ok(progressed)
    }

    fn submit(
        &mut self,
        exec: &mut dyn Executor,
        i: usize,
        resolved: &Resolved,
    ) -> Result<Attempt, String> {
        let inst = &self.env.dag.instances[i];
        let threads = exec.threads(self.opts.jobs.max(1), &inst.resources);
        let (attempt, job_file) = self.env.prepare(i, resolved, &self.produced, threads)?;
        let log = self.env.cache.log_path(&resolved.key);
        let label = inst.label();
        let submitted = exec.submit(&Submission {
            slot: i,
            job_file: &job_file,
            log: &log,
            attempt_dir: &attempt.dir,
            label: &label,
            resources: &inst.resources,
        });
        if let Err(e) = submitted {
            let _ = crate::cache::store::remove_tree(&attempt.dir);
            return Err(format!("cannot start {label}: {e}"));
        }
        self.reports[i].log = Some(log);
        self.obs.started(i, &label);
        Ok(attempt)
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Progress { slot, line } => self.obs.progress(slot, &line),
            Event::Finished { slot: i, end } => self.on_finished(i, end),
        }
    }

    fn on_finished(&mut self, i: usize, end: JobEnd) {
        let State::Running(run) = std::mem::replace(&mut self.state[i], State::Done) else {
            return;
        };
        self.running -= 1;
        let seconds = run.started.elapsed().as_secs_f64();
        self.reports[i].seconds = seconds;
        let cancelled = self.interrupted.is_some();
        let result = self
            .env
            .publish(i, &run.resolved, &run.attempt, end, seconds, run.wall);
        let _ = crate::cache::store::remove_tree(&run.attempt.dir);
        match result {
            Ok(m) => {
                self.produced[i] = Some(Produced {
                    key: m.key.clone(),
                    digest: m.outputs.digest.clone(),
                });
                self.reports[i].metrics = m.metrics;
                self.reports[i].out_dir = Some(self.env.cache.out_dir(&m.key));
                self.reports[i].status = Status::Ran;
                self.obs.ran(i, &self.reports[i].label, seconds);
            }
            Err(e) if cancelled => {
                self.fail(i, Some(i), format!("cancelled by the interrupt: {e}"))
            }
            Err(e) => self.fail(i, Some(i), e),
        }
    }

    fn stop_reason(&self) -> &'static str {
        if self.interrupted.is_some() {
            "interrupted"
        } else {
            "stopped after a failure (--fail-fast)"
        }
    }

    /// SIGINT / SIGTERM: cancel what runs, start nothing more.
    fn interrupt(&mut self, exec: &mut dyn Executor) {
        self.interrupted = Some(Instant::now());
        self.stop_new = true;
        self.obs.interrupted(self.running);
        exec.cancel_all();
        for i in 0..self.state.len() {
            if matches!(self.state[i], State::Pending | State::Ready(_)) {
                self.skip(i, self.stop_reason().into());
            }
        }
        self.ready.clear();
    }

    /// Jobs that did not end within the grace period after an interrupt: their
    /// attempts are discarded and their locks released.
    fn abandon_running(&mut self) {
        for i in 0..self.state.len() {
            if !matches!(self.state[i], State::Running(_)) {
                continue;
            }
            if let State::Running(run) = std::mem::replace(&mut self.state[i], State::Done) {
                let _ = crate::cache::store::remove_tree(&run.attempt.dir);
                self.running -= 1;
                self.fail(
                    i,
                    Some(i),
                    format!(
                        "cancelled by the interrupt; did not stop within {} s (its attempt was discarded)",
                        self.opts.cancel_grace.as_secs()
                    ),
                );
            }
        }
    }

    /// Nothing runs and nothing more can start.
    fn is_over(&mut self) -> bool {
        if self.running > 0 {
            return false;
        }
        let ready = self.state.iter().any(|s| matches!(s, State::Ready(_)));
        let pending = self.state.iter().any(|s| matches!(s, State::Pending));
        if self.stop_new {
            for i in 0..self.state.len() {
                if matches!(self.state[i], State::Pending | State::Ready(_)) {
                    self.skip(i, self.stop_reason().into());
                }
            }
            return true;
        }
        if !ready && !pending {
            return true;
        }
        if !ready && pending {
            // pending instances whose inputs can never arrive: should not happen
            for i in 0..self.state.len() {
                if matches!(self.state[i], State::Pending) {
                    self.skip(i, "its inputs were not produced".into());
                }
            }
            return true;
        }
        false
    }
}

/// Run `dag` with `exec`, telling `obs` what happens; stop early when `interrupt` is
/// set (by a signal handler).
pub(crate) fn run(
    env: Env<'_>,
    opts: &RunOptions,
    exec: &mut dyn Executor,
    obs: &dyn Observer,
    interrupt: &AtomicBool,
) -> Result<RunSummary, RunError> {
    let t0 = Instant::now();
    let mut st = RunState::new(env, opts, obs);
    loop {
        st.decide_pending();
        if st.submit_ready(exec)? {
            continue;
        }
        if interrupt.load(Ordering::Relaxed) && st.interrupted.is_none() {
            st.interrupt(exec);
        }
        if let Some(at) = st.interrupted {
            if st.running > 0 && at.elapsed() > opts.cancel_grace {
                st.abandon_running();
            }
        }
        if st.is_over() {
            break;
        }
        let timeout = if st.ready.is_empty() {
            Duration::from_millis(500)
        } else {
            Duration::from_millis(100)
        };
        if let Some(event) = exec.next_event(timeout) {
            st.on_event(event);
        }
    }
    obs.finish();
    Ok(RunSummary {
        instances: st.reports,
        seconds: t0.elapsed().as_secs_f64(),
        interrupted: st.interrupted.is_some(),
    })
}
