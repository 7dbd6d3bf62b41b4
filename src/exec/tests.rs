//! The scheduler driven by a fake executor: ordering, failure propagation,
//! cancellation and `--jobs`, without processes.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use stages::Resources;

use super::attempt::Env;
use super::executor::{Event, Executor, JobEnd, Submission};
use super::job::{Job, JobResult};
use super::observer::Recorder;
use super::scheduler::{run, RunOptions, RunSummary, Status};
use crate::cache::Cache;
use crate::graph::Dag;

/// Runs jobs in the order submitted, one per `next_event`, writing the `outs` of
/// `run:` stages; fails the jobs whose label is in `fail`.
#[derive(Default)]
struct Fake {
    queue: VecDeque<(usize, Job)>,
    submitted: Vec<String>,
    finished: Vec<String>,
    most_in_flight: usize,
    fail: Vec<String>,
    /// Set the interrupt flag when this job is submitted.
    interrupt_on: Option<(String, Arc<AtomicBool>)>,
    cancelled: bool,
}

impl Executor for Fake {
    fn submit(&mut self, s: &Submission) -> std::io::Result<()> {
        let job = Job::read(s.job_file).map_err(std::io::Error::other)?;
        self.submitted.push(job.label.clone());
        if let Some((label, flag)) = &self.interrupt_on {
            if *label == job.label {
                flag.store(true, Ordering::Relaxed);
            }
        }
        self.queue.push_back((s.slot, job));
        self.most_in_flight = self.most_in_flight.max(self.queue.len());
        Ok(())
    }

    fn next_event(&mut self, _timeout: Duration) -> Option<Event> {
        let (slot, job) = self.queue.pop_front()?;
        self.finished.push(job.label.clone());
        let ok = !self.cancelled && !self.fail.contains(&job.label);
        if ok {
            for o in &job.outs {
                std::fs::write(job.out_dir.join(o), &job.label).expect("write out");
            }
        }
        let result = JobResult {
            ok,
            metrics: Default::default(),
            error: (!ok).then(|| "the fake failed it".to_string()),
        };
        std::fs::write(&job.result_path, serde_json::to_vec(&result).expect("json"))
            .expect("write result");
        Some(Event::Finished {
            slot,
            end: JobEnd {
                code: Some(if ok { 0 } else { 1 }),
                ..JobEnd::default()
            },
        })
    }

    fn cancel_all(&mut self) {
        self.cancelled = true;
    }

    fn threads(&self, _jobs: usize, _resources: &Resources) -> usize {
        1
    }
}

/// a → b → c, and d → e beside them; four independent f[i].
const PIPELINE: &str = r#"
name: fake
stages:
  a: { run: "true # a", outs: [a.txt] }
  b: { run: "true # b", needs: a, outs: [b.txt] }
  c: { run: "true # c", needs: b, outs: [c.txt] }
  d: { run: "true # d", outs: [d.txt] }
  e: { run: "true # e", needs: d, outs: [e.txt] }
  f:
    run: "true # ${matrix.i}"
    matrix: { i: [0, 1, 2, 3] }
    outs: [f.txt]
"#;

struct Setup {
    _dir: tempfile::TempDir,
    loaded: crate::spec::Loaded,
    dag: Dag,
    cache: Cache,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join(".git")).expect("mkdir");
    let file = dir.path().join("fake.yaml");
    std::fs::write(&file, PIPELINE).expect("write");
    let loaded = crate::spec::load(&file, &[], None).expect("loads");
    let dag = Dag::build(&loaded).expect("builds");
    let cache = Cache::open(&dir.path().join("cache")).expect("cache");
    Setup {
        _dir: dir,
        loaded,
        dag,
        cache,
    }
}

fn opts(jobs: usize) -> RunOptions {
    RunOptions {
        jobs,
        force: Vec::new(),
        only: Vec::new(),
        fail_fast: false,
        cancel_grace: Duration::from_secs(5),
    }
}

fn go(s: &Setup, o: &RunOptions, fake: &mut Fake, flag: &AtomicBool) -> (RunSummary, Recorder) {
    let rec = Recorder::default();
    let env = Env {
        pipeline: &s.loaded.pipeline,
        dag: &s.dag,
        cache: &s.cache,
    };
    let summary = run(env, o, fake, &rec, flag).expect("runs");
    (summary, rec)
}

fn status<'a>(summary: &'a RunSummary, label: &str) -> &'a Status {
    &summary
        .instances
        .iter()
        .find(|r| r.label == label)
        .unwrap_or_else(|| panic!("no instance {label}"))
        .status
}

fn pos(list: &[String], label: &str) -> usize {
    list.iter()
        .position(|l| l == label)
        .unwrap_or_else(|| panic!("{label} not in {list:?}"))
}

fn attempts_left(cache: &Cache) -> usize {
    std::fs::read_dir(cache.tmp_dir()).map_or(0, |d| d.count())
}

#[test]
fn dependents_are_submitted_only_after_their_inputs_finished() {
    let s = setup();
    let mut fake = Fake::default();
    let (summary, _) = go(&s, &opts(3), &mut fake, &AtomicBool::new(false));
    assert_eq!(summary.failed(), 0);
    assert_eq!(fake.submitted.len(), 9);
    for (up, down) in [("a", "b"), ("b", "c"), ("d", "e")] {
        assert!(
            pos(&fake.finished, up) < pos(&fake.submitted, down),
            "{down} submitted before {up} finished: {:?} / {:?}",
            fake.submitted,
            fake.finished
        );
    }
    assert!(summary.instances.iter().all(|r| r.status == Status::Ran));
    assert_eq!(attempts_left(&s.cache), 0, "attempt folders are removed");

    // everything is cached now: nothing is submitted
    let mut again = Fake::default();
    let (summary, rec) = go(&s, &opts(3), &mut again, &AtomicBool::new(false));
    assert!(again.submitted.is_empty(), "{:?}", again.submitted);
    assert!(summary.instances.iter().all(|r| r.status == Status::Cached));
    assert_eq!(rec.take().len(), 9);
}

#[test]
fn jobs_bounds_what_is_in_flight() {
    for jobs in [1, 2, 4] {
        let s = setup();
        let mut fake = Fake::default();
        go(&s, &opts(jobs), &mut fake, &AtomicBool::new(false));
        assert_eq!(
            fake.most_in_flight, jobs,
            "with --jobs {jobs} and 6 independent instances, exactly {jobs} in flight at most"
        );
    }
}

#[test]
fn a_failure_skips_its_dependents_and_nothing_else() {
    let s = setup();
    let mut fake = Fake {
        fail: vec!["b".into()],
        ..Fake::default()
    };
    let (summary, rec) = go(&s, &opts(2), &mut fake, &AtomicBool::new(false));
    assert!(matches!(status(&summary, "b"), Status::Failed(e) if e.contains("the fake failed it")));
    assert!(matches!(status(&summary, "c"), Status::Skipped(e) if e == "b did not complete"));
    for ran in ["a", "d", "e", "f[i=3]"] {
        assert_eq!(status(&summary, ran), &Status::Ran, "{ran}");
    }
    assert!(!fake.submitted.contains(&"c".to_string()));
    let lines = rec.take();
    assert!(lines.contains(&"failed b".to_string()) && lines.contains(&"skipped c".to_string()));
    assert!(
        s.cache
            .manifest(summary.instances[1].key.as_deref().unwrap())
            .is_none(),
        "no manifest for the failed b"
    );

    // --fail-fast: nothing new is submitted after the failure
    let s = setup();
    let mut fake = Fake {
        fail: vec!["a".into()],
        ..Fake::default()
    };
    let o = RunOptions {
        fail_fast: true,
        ..opts(1)
    };
    let (summary, _) = go(&s, &o, &mut fake, &AtomicBool::new(false));
    assert_eq!(fake.submitted, ["a"]);
    assert!(matches!(status(&summary, "d"), Status::Skipped(e) if e.contains("--fail-fast")));
}

#[test]
fn an_interrupt_cancels_what_runs_and_leaves_the_cache_clean() {
    let s = setup();
    let flag = Arc::new(AtomicBool::new(false));
    let mut fake = Fake {
        interrupt_on: Some(("d".into(), flag.clone())),
        ..Fake::default()
    };
    let (summary, rec) = go(&s, &opts(2), &mut fake, &flag);
    assert!(summary.interrupted);
    assert!(fake.cancelled, "the executor was told to cancel");
    // a and d were submitted together; the interrupt came with d
    assert_eq!(fake.submitted, ["a", "d"]);
    for cancelled in ["a", "d"] {
        assert!(
            matches!(status(&summary, cancelled), Status::Failed(e) if e.contains("cancelled")),
            "{cancelled}: {:?}",
            status(&summary, cancelled)
        );
    }
    for never in ["b", "c", "e", "f[i=0]"] {
        assert!(
            matches!(status(&summary, never), Status::Skipped(e) if e == "interrupted"),
            "{never}"
        );
    }
    assert!(rec
        .take()
        .contains(&"interrupted with 2 running".to_string()));
    assert_eq!(attempts_left(&s.cache), 0, "no attempt folder left behind");
    assert!(
        s.cache.manifests().expect("manifests").is_empty(),
        "nothing published"
    );
    // every lock is free again
    for r in &summary.instances {
        if let Some(k) = &r.key {
            assert!(crate::cache::lock::try_lock(&s.cache.lock_path(k))
                .expect("lock")
                .is_some());
        }
    }
}

#[test]
fn resources_reach_the_executor_and_stay_out_of_the_key() {
    let s = setup();
    let with = PIPELINE.replace(
        "  d: { run: \"true # d\", outs: [d.txt] }",
        "  d: { run: \"true # d\", outs: [d.txt], resources: { cpus: 3, time: \"00:05:00\" } }",
    );
    assert_ne!(with, PIPELINE);
    let file = s._dir.path().join("with.yaml");
    std::fs::write(&file, &with).expect("write");
    let loaded = crate::spec::load(&file, &[], None).expect("loads");
    let dag = Dag::build(&loaded).expect("builds");
    let d = dag.instances.iter().find(|i| i.stage == "d").expect("d");
    assert_eq!(d.resources.cpus, 3);
    assert_eq!(d.resources.time.as_deref(), Some("00:05:00"));
    let key = |dag: &Dag, cache: &Cache| {
        let plan = super::plan::plan(&s.loaded.pipeline, dag, cache, &[], &[]);
        plan.into_iter()
            .find(|l| l.label == "d")
            .and_then(|l| l.key)
    };
    let before = key(&s.dag, &s.cache);
    assert!(before.is_some());
    assert_eq!(
        before,
        key(&dag, &s.cache),
        "resources are not part of the key"
    );
}
