//! What the scheduler tells whoever watches a run: the terminal UI
//! ([`crate::report::progress::Ui`]) is one observer, a test recorder another.

use super::job::ProgressLine;
use super::summary::Status;

pub(crate) trait Observer {
    /// Found valid in the cache; not run.
    fn cached(&self, _label: &str) {}
    /// Not run (an input failed, `--fail-fast`, an interrupt).
    fn skipped(&self, _label: &str) {}
    /// Submitted to the executor.
    fn started(&self, _slot: usize, _label: &str) {}
    fn progress(&self, _slot: usize, _line: &ProgressLine) {}
    /// Finished and published.
    fn ran(&self, _slot: usize, _label: &str, _seconds: f64) {}
    /// Failed; `slot` is `None` when it failed before it was submitted.
    fn failed(&self, _slot: Option<usize>, _label: &str, _status: &Status) {}
    /// SIGINT / SIGTERM arrived; `running` jobs are being cancelled.
    fn interrupted(&self, _running: usize) {}
    /// The run is over.
    fn finish(&self) {}
}

/// Records every event as a line (`started a`, `ran a`…), for tests.
#[cfg(test)]
#[derive(Default)]
pub(crate) struct Recorder {
    pub lines: std::sync::Mutex<Vec<String>>,
}

#[cfg(test)]
impl Recorder {
    fn push(&self, line: String) {
        self.lines.lock().expect("recorder lock").push(line);
    }
    pub(crate) fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.lines.lock().expect("recorder lock"))
    }
}

#[cfg(test)]
impl Observer for Recorder {
    fn cached(&self, label: &str) {
        self.push(format!("cached {label}"));
    }
    fn skipped(&self, label: &str) {
        self.push(format!("skipped {label}"));
    }
    fn started(&self, _slot: usize, label: &str) {
        self.push(format!("started {label}"));
    }
    fn ran(&self, _slot: usize, label: &str, _seconds: f64) {
        self.push(format!("ran {label}"));
    }
    fn failed(&self, _slot: Option<usize>, label: &str, _status: &Status) {
        self.push(format!("failed {label}"));
    }
    fn interrupted(&self, running: usize) {
        self.push(format!("interrupted with {running} running"));
    }
}
