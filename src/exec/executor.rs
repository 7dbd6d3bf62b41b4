//! The executor boundary: how the scheduler hands instances to something that runs
//! them. Four verbs — submit, poll, cancel, log — so that a cluster executor (Slurm:
//! `sbatch` a job running `pipe exec JOB`, poll `scontrol show job`, `scancel`, read
//! the job's output file) is an addition beside [`super::local::LocalExecutor`]; the
//! scheduler, the cache, locks and publishing stay in the `pipe run` process.

use std::path::Path;
use std::time::Duration;

use super::job::ProgressLine;

/// What an executor reports about a submitted job.
pub enum Event {
    Progress {
        slot: usize,
        line: ProgressLine,
    },
    /// The job ended; `code` is `None` when it was killed (signal, cancellation).
    Finished {
        slot: usize,
        code: Option<i32>,
    },
}

pub trait Executor {
    /// Start the job described by `job_file` (see [`super::job::Job`]); what it prints
    /// goes to `log`. `slot` identifies it in events.
    fn submit(&mut self, slot: usize, job_file: &Path, log: &Path) -> std::io::Result<()>;
    /// The next event, or `None` after `timeout`.
    fn next_event(&mut self, timeout: Duration) -> Option<Event>;
    /// Stop every running job.
    fn cancel_all(&mut self);
    /// Jobs submitted and not finished.
    fn running(&self) -> usize;
}
