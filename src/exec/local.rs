//! The local executor: each instance is a `pipe exec JOB` child process.
//!
//! Its four verbs — submit, events (poll), cancel, log — are what a Slurm executor
//! will implement with sbatch, scontrol, scancel and the job's output file.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};

use super::executor::{Event, Executor};
use super::job::ProgressLine;

pub struct LocalExecutor {
    exe: PathBuf,
    tx: Sender<Event>,
    rx: Receiver<Event>,
    children: Vec<(usize, Arc<Mutex<Child>>)>,
}

impl LocalExecutor {
    pub fn new() -> std::io::Result<Self> {
        let (tx, rx) = channel();
        Ok(LocalExecutor {
            exe: std::env::current_exe()?,
            tx,
            rx,
            children: Vec::new(),
        })
    }
}

impl Executor for LocalExecutor {
    /// Start the job in `job_file`; its standard error is appended to `log`.
    fn submit(&mut self, slot: usize, job_file: &Path, log: &Path) -> std::io::Result<()> {
        let log_file = OpenOptions::new().create(true).append(true).open(log)?;
        let mut child = Command::new(&self.exe)
            .arg("exec")
            .arg(job_file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .spawn()?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let child = Arc::new(Mutex::new(child));
        self.children.push((slot, child.clone()));
        let tx = self.tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(parsed) = serde_json::from_str::<ProgressLine>(&line) {
                    let _ = tx.send(Event::Progress { slot, line: parsed });
                }
            }
            let code = match child.lock() {
                Ok(mut c) => c.wait().ok().and_then(|s| s.code()),
                Err(_) => None,
            };
            let _ = tx.send(Event::Finished { slot, code });
        });
        Ok(())
    }

    fn next_event(&mut self, timeout: std::time::Duration) -> Option<Event> {
        let ev = self.rx.recv_timeout(timeout).ok();
        if let Some(Event::Finished { slot, .. }) = &ev {
            self.children.retain(|(s, _)| s != slot);
        }
        ev
    }

    fn cancel_all(&mut self) {
        for (_, c) in &self.children {
            if let Ok(mut c) = c.try_lock() {
                let _ = c.kill();
            }
        }
    }

    fn running(&self) -> usize {
        self.children.len()
    }
}
