//! The local executor: each instance is a `pipe exec JOB` child process; its
//! standard output carries progress lines, its standard error goes to the log.
//! Cancelling sends SIGTERM (the child sets its stages' cancel flag and stops at the
//! next check), then SIGKILL to what is still alive after a grace period.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use stages::Resources;

use super::executor::{Event, Executor, JobEnd, Submission};
use super::job::ProgressLine;

/// How long cancelled children get to stop before SIGKILL.
const KILL_AFTER: Duration = Duration::from_secs(5);

pub(crate) struct LocalExecutor {
    exe: PathBuf,
    tx: Sender<Event>,
    rx: Receiver<Event>,
    /// slot → process id of running children.
    children: Vec<(usize, u32)>,
    cancelled_at: Option<Instant>,
}

impl LocalExecutor {
    pub(crate) fn new() -> std::io::Result<Self> {
        let (tx, rx) = channel();
        Ok(LocalExecutor {
            exe: std::env::current_exe()?,
            tx,
            rx,
            children: Vec::new(),
            cancelled_at: None,
        })
    }

    fn signal_all(&self, signal: Signal) {
        for &(_, pid) in &self.children {
            if let Ok(pid) = i32::try_from(pid) {
                let _ = kill(Pid::from_raw(pid), signal);
            }
        }
    }
}

impl Executor for LocalExecutor {
    fn submit(&mut self, job: &Submission) -> std::io::Result<()> {
        let log_file = OpenOptions::new().create(true).append(true).open(job.log)?;
        let mut child = Command::new(&self.exe)
            .arg("exec")
            .arg(job.job_file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .spawn()?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let slot = job.slot;
        self.children.push((slot, child.id()));
        let tx = self.tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(parsed) = serde_json::from_str::<ProgressLine>(&line) {
                    let _ = tx.send(Event::Progress { slot, line: parsed });
                }
            }
            let code = child.wait().ok().and_then(|s| s.code());
            let _ = tx.send(Event::Finished {
                slot,
                end: JobEnd {
                    code,
                    ..JobEnd::default()
                },
            });
        });
        Ok(())
    }

    fn next_event(&mut self, timeout: Duration) -> Option<Event> {
        if self
            .cancelled_at
            .is_some_and(|t| t.elapsed() > KILL_AFTER && !self.children.is_empty())
        {
            self.signal_all(Signal::SIGKILL);
            self.cancelled_at = None;
        }
        let ev = self.rx.recv_timeout(timeout).ok();
        if let Some(Event::Finished { slot, .. }) = &ev {
            self.children.retain(|(s, _)| s != slot);
        }
        ev
    }

    fn cancel_all(&mut self) {
        self.signal_all(Signal::SIGTERM);
        self.cancelled_at = Some(Instant::now());
    }

    /// The machine's cores shared among the jobs running at once.
    fn threads(&self, jobs: usize, _resources: &Resources) -> usize {
        let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
        (cores / jobs.max(1)).max(1)
    }
}
