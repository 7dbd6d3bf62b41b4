//! A temporary project with pipeline files, and the real `pipe` binary run in it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub struct Project {
    pub dir: tempfile::TempDir,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Run {
    /// The instance table's line for `label`.
    pub fn status_of(&self, label: &str) -> Option<String> {
        self.stdout.lines().find_map(|l| {
            let inner = l.trim().trim_matches('│').trim();
            let rest = inner.strip_prefix(label)?;
            rest.starts_with("  ").then(|| rest.trim().to_string())
        })
    }
    pub fn ok(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "pipe failed:\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

pub fn pipe_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pipe"))
}

impl Project {
    pub fn new() -> Project {
        let dir = tempfile::tempdir().expect("tempdir");
        // a cache/ folder marks the project root
        std::fs::create_dir_all(dir.path().join("cache")).expect("cache dir");
        Project { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, name: &str, content: &str) -> &Self {
        let p = self.path().join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(p, content).expect("write");
        self
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path().join(name)).unwrap_or_default()
    }

    /// Lines in a counter file that `run:` stages append to (executions).
    pub fn count(&self, name: &str) -> usize {
        self.read(name).lines().count()
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(pipe_bin());
        c.args(args)
            .current_dir(self.path())
            .env("PIPE_TEST_STAGES", "1")
            .env("NO_COLOR", "1")
            .env_remove("PIPE_CACHE_DIR")
            .env_remove("RUST_LOG");
        c
    }

    pub fn pipe(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().expect("run pipe"))
    }
}

/// Poll `f` until it holds; fail the test after `limit`.
pub fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Send `sig` (`-INT`, `-9`…) to a process.
pub fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill runs")
        .success();
    assert!(ok, "kill {sig} {pid} failed");
}
