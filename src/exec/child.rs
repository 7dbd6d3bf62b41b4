//! `pipe exec JOB`: run one instance in this process (the executor starts it).

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use stages::{Context, Params, Progress};

use super::job::{Job, JobResult, ProgressLine};

/// Progress as JSON lines on standard output, read by the parent `pipe run`.
struct StdoutProgress {
    out: Mutex<std::io::Stdout>,
}

impl StdoutProgress {
    fn send(&self, line: &ProgressLine) {
        if let Ok(mut out) = self.out.lock() {
            let _ = writeln!(out, "{}", serde_json::to_string(line).unwrap_or_default());
            let _ = out.flush();
        }
    }
}

impl Progress for StdoutProgress {
    fn start(&self, phase: &str, total: u64) {
        self.send(&ProgressLine::Start {
            phase: phase.into(),
            total,
        });
    }
    fn update(&self, done: u64, message: &str) {
        self.send(&ProgressLine::Update {
            done,
            message: message.into(),
        });
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Run the job at `path`; the exit code is 0 when it succeeded.
pub(crate) fn execute(path: &std::path::Path) -> i32 {
    let job = match Job::read(path) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("pipe exec: {e}");
            return 2;
        }
    };
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(job.threads.max(1))
        .build_global();
    eprintln!("pipe exec: {} (key {})", job.label, job.key);
    // SIGTERM (a cancelled job: `pipe run` interrupted, `scancel`) and SIGINT (Ctrl-C
    // in the terminal) set the stage's cancel flag; the stage stops at its next check.
    let cancel = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(e) = signal_hook::flag::register(sig, cancel.clone()) {
            eprintln!("pipe exec: cannot handle signal {sig}: {e}");
        }
    }
    // a requeued cluster job starts again from empty folders
    for dir in [&job.out_dir, &job.scratch_dir] {
        if let Err(e) = empty_dir(dir) {
            eprintln!("pipe exec: cannot empty {}: {e}", dir.display());
            return 2;
        }
    }
    let result = match (&job.uses, &job.command) {
        (Some(name), _) => run_builtin(&job, name, cancel),
        (None, Some(cmd)) => run_shell(&job, cmd, &cancel),
        (None, None) => Err("job names neither a stage nor a command".into()),
    };
    let result = match result {
        Ok(metrics) => JobResult {
            ok: true,
            metrics,
            error: None,
        },
        Err(error) => {
            eprintln!("pipe exec: failed: {error}");
            JobResult {
                ok: false,
                metrics: Default::default(),
                error: Some(error),
            }
        }
    };
    let ok = result.ok;
    if let Err(e) = std::fs::write(
        &job.result_path,
        serde_json::to_vec(&result).unwrap_or_default(),
    ) {
        eprintln!("pipe exec: cannot write {}: {e}", job.result_path.display());
        return 1;
    }
    if ok {
        0
    } else {
        1
    }
}

/// `dir`, empty (what a previous submission of the same job left is removed).
fn empty_dir(dir: &std::path::Path) -> std::io::Result<()> {
    crate::cache::store::remove_tree(dir)?;
    std::fs::create_dir_all(dir)
}

fn run_builtin(
    job: &Job,
    name: &str,
    cancel: Arc<AtomicBool>,
) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let stage =
        stages::registry::find(name).ok_or_else(|| format!("no built-in stage `{name}`"))?;
    let ctx = Context {
        params: Params(job.params.clone()),
        cell: job.cell.clone(),
        inputs: job.inputs.clone(),
        out_dir: job.out_dir.clone(),
        scratch_dir: job.scratch_dir.clone(),
        seed: job.seed,
        backend: job.backend,
        threads: job.threads,
        progress: Arc::new(StdoutProgress {
            out: Mutex::new(std::io::stdout()),
        }),
        cancel,
    };
    match catch_unwind(AssertUnwindSafe(|| stage.run(&ctx))) {
        Ok(Ok(outcome)) => Ok(outcome.metrics),
        Ok(Err(e)) => Err(e.to_string()),
        Err(p) => Err(format!(
            "stage `{name}` panicked: {} (this is a bug in the stage)",
            panic_message(&*p)
        )),
    }
}

fn env_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

fn run_shell(
    job: &Job,
    command: &str,
    cancel: &AtomicBool,
) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(command)
        .current_dir(&job.root)
        .stdin(Stdio::null())
        // its own process group, so that cancelling stops everything it started
        .process_group(0);
    // the command's output goes to the log, like ours; stdout is the progress channel
    if let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() {
        cmd.stdout(Stdio::from(fd));
    }
    cmd.env("PIPE_OUT", &job.out_dir)
        .env("PIPE_SCRATCH", &job.scratch_dir)
        .env("PIPE_SEED", job.seed.to_string())
        .env("PIPE_THREADS", job.threads.to_string());
    let mut by_stage: indexmap::IndexMap<String, Vec<String>> = indexmap::IndexMap::new();
    for i in &job.inputs {
        by_stage
            .entry(i.stage.clone())
            .or_default()
            .push(i.dir.display().to_string());
    }
    for (stage, dirs) in &by_stage {
        cmd.env(format!("PIPE_IN_{}", env_name(stage)), dirs.join(":"));
    }
    for (axis, v) in &job.cell {
        let v = match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        cmd.env(format!("PIPE_CELL_{}", env_name(axis)), v);
    }
    let mut child = cmd.spawn().map_err(|e| format!("cannot start `sh`: {e}"))?;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => return Err(format!("cannot wait for `sh`: {e}")),
        }
        if cancel.load(Ordering::Relaxed) {
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = killpg(Pid::from_raw(pid), Signal::SIGTERM);
            }
            let _ = child.wait();
            return Err("cancelled".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if !status.success() {
        return Err(match status.code() {
            Some(c) => format!("command exited with status {c}"),
            None => "command was killed by a signal".into(),
        });
    }
    let missing: Vec<&str> = job
        .outs
        .iter()
        .filter(|o| !job.out_dir.join(o).exists())
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "the command succeeded but did not write {} (declared in `outs:`; write them under $PIPE_OUT)",
            missing.join(", ")
        ));
    }
    Ok(Default::default())
}
