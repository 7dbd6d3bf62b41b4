//! The Slurm executor: every instance becomes one `sbatch` job running
//! `pipe exec JOB` against the same cache (a shared filesystem). The scheduler, early
//! cut-off, locks and publishing stay in `pipe run`; Slurm only runs instances.
//!
//! One job per instance, not job arrays: the scheduler submits an instance the
//! moment its inputs exist (DAG order and early cut-off decide that, not Slurm), so
//! there is no fixed set of array tasks to submit together; and per-instance jobs
//! give per-instance states, logs and cancellation.
//!
//! States come from polling with back-off: `squeue` for every job of ours at once,
//! then `scontrol show job -o ID` once per job that reached a final state (exit
//! code, node, elapsed time). `sacct` is not used: it needs slurmdbd, which small
//! clusters lack. A job that left the queue before we saw its final state (Slurm
//! forgets finished jobs after `MinJobAge`, 300 s by default) is judged by the
//! result file `pipe exec` wrote.

pub(crate) mod state;

use std::collections::{HashMap, VecDeque};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use stages::Resources;

use super::executor::{Event, Executor, JobEnd, Submission};
use super::job::{JobResult, ProgressLine};
use crate::cache::manifest::JobRecord;

const POLL_MIN: Duration = Duration::from_millis(200);
const POLL_MAX: Duration = Duration::from_secs(5);

/// A job of ours that has not finished.
struct Tracked {
    slot: usize,
    /// `sbatch` arguments, kept to resubmit a preempted job once.
    args: Vec<String>,
    attempt_dir: PathBuf,
    /// The job's standard output: the progress lines of `pipe exec`.
    progress: PathBuf,
    progress_offset: u64,
    submissions: u32,
    state: String,
}

pub(crate) struct SlurmExecutor {
    exe: PathBuf,
    /// job id → job.
    jobs: HashMap<String, Tracked>,
    events: VecDeque<Event>,
    next_poll: Instant,
    interval: Duration,
    cancelling: bool,
}

/// Run a Slurm command; its standard output, or an error with its standard error.
fn slurm(cmd: &str, args: &[String]) -> std::io::Result<String> {
    let out = Command::new(cmd).args(args).output().map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot run `{cmd}` ({e}); is Slurm's client on PATH?"),
        )
    })?;
    if !out.status.success() {
        return Err(std::io::Error::other(format!(
            "`{cmd}` failed: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join("; ")
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `'…'` for `sh`.
fn quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

impl SlurmExecutor {
    /// Checks that `sbatch` runs (`sbatch --version`).
    pub(crate) fn new() -> std::io::Result<Self> {
        slurm("sbatch", &["--version".into()])?;
        Ok(SlurmExecutor {
            exe: std::env::current_exe()?,
            jobs: HashMap::new(),
            events: VecDeque::new(),
            next_poll: Instant::now(),
            interval: POLL_MIN,
            cancelling: false,
        })
    }

    fn sbatch(args: &[String]) -> std::io::Result<String> {
        let out = slurm("sbatch", args)?;
        // `--parsable` prints `ID` or `ID;CLUSTER`
        let id = out.trim().split(';').next().unwrap_or("").to_string();
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
            return Err(std::io::Error::other(format!(
                "sbatch printed no job id: {out:?}"
            )));
        }
        Ok(id)
    }

    /// New progress lines of every job, as events.
    fn read_progress(&mut self) {
        for t in self.jobs.values_mut() {
            let Ok(mut f) = std::fs::File::open(&t.progress) else {
                continue;
            };
            if f.seek(SeekFrom::Start(t.progress_offset)).is_err() {
                continue;
            }
            let mut buf = String::new();
            if f.read_to_string(&mut buf).is_err() {
                continue;
            }
            // only whole lines; a partial last line waits for the next read
            let upto = buf.rfind('\n').map_or(0, |i| i + 1);
            for line in buf[..upto].lines() {
                if let Ok(line) = serde_json::from_str::<ProgressLine>(line) {
                    self.events
                        .push_back(Event::Progress { slot: t.slot, line });
                }
            }
            t.progress_offset += upto as u64;
        }
    }

    /// One round of polling: every job's state; final ones become events.
    fn poll(&mut self) {
        let ids: Vec<String> = self.jobs.keys().cloned().collect();
        let listed = match slurm(
            "squeue",
            &[
                "-h".into(),
                "--states=all".into(),
                "-o".into(),
                "%i|%T".into(),
                format!("--jobs={}", ids.join(",")),
            ],
        ) {
            Ok(out) => state::parse_squeue(&out),
            Err(e) => {
                // squeue refuses a list holding a job it forgot; ask one by one
                tracing::debug!("squeue: {e}");
                ids.iter()
                    .filter_map(|id| {
                        let out = slurm(
                            "scontrol",
                            &["show".into(), "job".into(), "-o".into(), id.clone()],
                        )
                        .ok()?;
                        let rec = state::parse_record(&out);
                        Some((id.clone(), rec.get("JobState")?.clone()))
                    })
                    .collect()
            }
        };
        let mut changed = false;
        for id in ids {
            let st = listed.get(&id).cloned();
            match st {
                Some(s) if !state::is_final(&s) => {
                    let t = self.jobs.get_mut(&id).expect("tracked");
                    if t.state != s {
                        changed = true;
                        self.events.push_back(Event::Progress {
                            slot: t.slot,
                            line: ProgressLine::Start {
                                phase: s.to_lowercase(),
                                total: 0,
                            },
                        });
                        t.state = s;
                    }
                }
                Some(_) => {
                    changed = true;
                    self.finish(&id);
                }
                None => {
                    changed = true;
                    self.vanished(&id);
                }
            }
        }
        self.interval = if changed {
            POLL_MIN
        } else {
            (self.interval * 3 / 2).min(POLL_MAX)
        };
        self.next_poll = Instant::now() + self.interval;
    }

    /// A job in a final state: read its record, requeue a first preemption, else
    /// report how it ended.
    fn finish(&mut self, id: &str) {
        let record = slurm(
            "scontrol",
            &["show".into(), "job".into(), "-o".into(), id.to_string()],
        )
        .map(|out| state::parse_record(&out))
        .unwrap_or_default();
        let Some(t) = self.jobs.remove(id) else {
            return;
        };
        let end = if record.is_empty() {
            self.end_from_result(id, &t)
        } else {
            state::job_end(id, &record, t.submissions)
        };
        let preempted = end.record.as_ref().is_some_and(|r| r.state == "PREEMPTED");
        if preempted && t.submissions == 1 && !self.cancelling {
            match Self::sbatch(&t.args) {
                Ok(new_id) => {
                    tracing::warn!(old = id, new = %new_id, "Slurm job preempted; submitted again");
                    self.jobs.insert(
                        new_id,
                        Tracked {
                            submissions: 2,
                            state: String::new(),
                            progress_offset: 0,
                            ..t
                        },
                    );
                    return;
                }
                Err(e) => tracing::warn!("cannot resubmit preempted job {id}: {e}"),
            }
        }
        self.events.push_back(Event::Finished { slot: t.slot, end });
    }

    /// A job Slurm no longer knows: it finished long ago; `pipe exec`'s result file
    /// tells how.
    fn vanished(&mut self, id: &str) {
        if let Some(t) = self.jobs.remove(id) {
            let end = self.end_from_result(id, &t);
            self.events.push_back(Event::Finished { slot: t.slot, end });
        }
    }

    fn end_from_result(&self, id: &str, t: &Tracked) -> JobEnd {
        let result: Option<JobResult> = std::fs::read(t.attempt_dir.join("result.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let ok = result.as_ref().is_some_and(|r| r.ok);
        JobEnd {
            code: ok.then_some(0),
            failure: (!ok).then(|| {
                format!(
                    "Slurm job {id} left the queue without a result (Slurm forgot its final state)"
                )
            }),
            record: Some(JobRecord {
                executor: "slurm".into(),
                id: id.to_string(),
                state: if ok { "COMPLETED" } else { "UNKNOWN" }.into(),
                node: None,
                elapsed: None,
                submissions: t.submissions,
            }),
        }
    }
}

/// A Slurm job name from an instance label: `pipe:teacher[target=arousal,fold=0]`.
fn job_name(label: &str) -> String {
    let name: String = label
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .take(100)
        .collect();
    format!("pipe:{name}")
}

impl Executor for SlurmExecutor {
    fn submit(&mut self, job: &Submission) -> std::io::Result<()> {
        let script = job.attempt_dir.join("job.sbatch");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\n# one pipe instance: {}\nexec {} exec {}\n",
                job.label,
                quote(&self.exe),
                quote(job.job_file)
            ),
        )?;
        let progress = job.attempt_dir.join("progress.jsonl");
        let mut args = vec![
            "--parsable".to_string(),
            format!("--job-name={}", job_name(job.label)),
            format!("--output={}", progress.display()),
            format!("--error={}", job.log.display()),
            "--open-mode=append".into(),
            format!("--chdir={}", job.attempt_dir.display()),
        ];
        let asked = job.resources.sbatch_args();
        args.extend(asked.iter().cloned());
        args.push(script.display().to_string());
        let id = Self::sbatch(&args).map_err(|e| {
            std::io::Error::other(format!("{e} (resources asked: {})", asked.join(" ")))
        })?;
        tracing::debug!(id, label = job.label, "submitted");
        self.jobs.insert(
            id,
            Tracked {
                slot: job.slot,
                args,
                attempt_dir: job.attempt_dir.to_path_buf(),
                progress,
                progress_offset: 0,
                submissions: 1,
                state: String::new(),
            },
        );
        self.interval = POLL_MIN;
        self.next_poll = Instant::now() + POLL_MIN;
        Ok(())
    }

    fn next_event(&mut self, timeout: Duration) -> Option<Event> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.events.pop_front() {
                return Some(e);
            }
            self.read_progress();
            if !self.events.is_empty() {
                continue;
            }
            let now = Instant::now();
            if !self.jobs.is_empty() && now >= self.next_poll {
                self.poll();
                continue;
            }
            if now >= deadline {
                return None;
            }
            let wake = if self.jobs.is_empty() {
                deadline
            } else {
                deadline.min(self.next_poll)
            };
            std::thread::sleep((wake - now).min(Duration::from_millis(100)));
        }
    }

    fn cancel_all(&mut self) {
        self.cancelling = true;
        if self.jobs.is_empty() {
            return;
        }
        let ids: Vec<String> = self.jobs.keys().cloned().collect();
        if let Err(e) = slurm("scancel", &ids) {
            tracing::warn!("scancel: {e}");
        }
        self.next_poll = Instant::now();
    }

    /// A job's cores, as asked of Slurm.
    fn threads(&self, _jobs: usize, resources: &Resources) -> usize {
        resources.cpus.max(1) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_names_and_quoting() {
        assert_eq!(
            job_name("teacher[target=arousal, fold=0]"),
            "pipe:teacher[target=arousal,fold=0]"
        );
        assert_eq!(quote(Path::new("/a b/it's")), r"'/a b/it'\''s'");
    }
}
