//! The executor boundary: how the scheduler hands instances to something that runs
//! them. Three verbs — submit, next event (poll), cancel — and the job's log file; the
//! scheduler, the cache, locks and publishing stay in the `pipe run` process. Two
//! executors: [`super::local::LocalExecutor`] (child processes) and
//! [`super::slurm::SlurmExecutor`] (`sbatch` jobs).

use std::path::Path;
use std::time::Duration;

use stages::Resources;

use super::job::ProgressLine;
use crate::cache::manifest::JobRecord;

/// One instance to run.
pub(crate) struct Submission<'a> {
    /// Identifies the job in events.
    pub slot: usize,
    /// `pipe exec` reads it (see [`super::job::Job`]).
    pub job_file: &'a Path,
    /// Where what the job prints goes (the run record's log).
    pub log: &'a Path,
    /// The attempt folder (private to this run of the instance).
    pub attempt_dir: &'a Path,
    /// `teacher[target=arousal, fold=0]`, for job names.
    pub label: &'a str,
    pub resources: &'a Resources,
}

/// How a job ended.
#[derive(Debug, Clone, Default)]
pub(crate) struct JobEnd {
    /// Exit code; `None` when it was killed or the executor cannot tell.
    pub code: Option<i32>,
    /// Why it ended, when the executor knows more than the exit code
    /// (`Slurm job 41: TIMEOUT …`); `None` for a normal exit.
    pub failure: Option<String>,
    /// Where and how it ran (cluster job id, node, state), for the run record.
    pub record: Option<JobRecord>,
}

/// What an executor reports about a submitted job.
pub(crate) enum Event {
    Progress { slot: usize, line: ProgressLine },
    Finished { slot: usize, end: JobEnd },
}

pub(crate) trait Executor {
    /// Start (or queue) the job.
    fn submit(&mut self, job: &Submission) -> std::io::Result<()>;
    /// The next event, or `None` after at most `timeout`.
    fn next_event(&mut self, timeout: Duration) -> Option<Event>;
    /// Ask every submitted, unfinished job to stop; their `Finished` events follow.
    fn cancel_all(&mut self);
    /// Worker threads an instance gets when `jobs` run at once.
    fn threads(&self, jobs: usize, resources: &Resources) -> usize;
}

/// The last `n` non-empty lines of a log, for failure messages.
pub(crate) fn log_tail(log: &Path, n: usize) -> String {
    let Ok(bytes) = std::fs::read(log) else {
        return String::new();
    };
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
