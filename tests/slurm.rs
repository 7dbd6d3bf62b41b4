//! `--executor slurm` against a real Slurm (`.ci/slurm/start` runs one; `.ci/run`
//! starts it before the tests). Where `sbatch` is not on PATH these tests say so and
//! pass without running; where it is, a controller must answer.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{signal, wait_for, Project, Run};

/// False (after saying why) when Slurm's client is not installed.
fn slurm_here() -> bool {
    if Command::new("sbatch").arg("--version").output().is_err() {
        eprintln!("SKIPPED: sbatch is not on PATH (start a test cluster with .ci/slurm/start)");
        return false;
    }
    let sinfo = Command::new("sinfo").args(["-h", "-o", "%T"]).output();
    let ok = sinfo.as_ref().is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "sbatch is on PATH but no Slurm controller answers (is SLURM_CONF set? `eval \"$(.ci/slurm/start)\"`): {sinfo:?}"
    );
    true
}

/// Small jobs, so that the tests' jobs run side by side on a small node.
const SMALL: &str = "resources: { cpus: 1, mem: 200M }";

/// `sbatch` behind a shim that records every call into `sbatch.calls`.
fn with_shim(p: &Project) -> String {
    let real = String::from_utf8(
        Command::new("sh")
            .args(["-c", "command -v sbatch"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let shim = p.path().join("shim");
    std::fs::create_dir_all(&shim).unwrap();
    // submissions only (pipe also asks `sbatch --version` once, to check it runs)
    let script = format!(
        "#!/bin/sh\ncase \"$*\" in *--parsable*) echo \"$@\" >> '{}';; esac\nexec '{}' \"$@\"\n",
        p.path().join("sbatch.calls").display(),
        real.trim()
    );
    std::fs::write(shim.join("sbatch"), script).unwrap();
    Command::new("chmod")
        .args(["+x", &shim.join("sbatch").display().to_string()])
        .status()
        .unwrap();
    format!(
        "{}:{}",
        shim.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// A project holding the pipeline `file` and the PATH with the `sbatch` shim;
/// `None` (after saying why) where Slurm is not installed.
fn slurm_project(file: &str, yaml: &str) -> Option<(Project, String)> {
    if !slurm_here() {
        return None;
    }
    let p = Project::new();
    p.write(file, yaml);
    let path = with_shim(&p);
    Some((p, path))
}

/// `pipe ARGS` started with `sbatch` behind the shim on `path`.
fn spawn_slurm(p: &Project, path: &str, args: &[&str]) -> std::process::Child {
    p.command(args)
        .env("PATH", path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start pipe")
}

fn pipe_slurm(p: &Project, path: &str, args: &[&str]) -> Run {
    Run::from(
        spawn_slurm(p, path, args)
            .wait_with_output()
            .expect("run pipe"),
    )
}

/// label → (key, output digest, manifest) of every run in a cache.
fn runs(cache: &Path) -> std::collections::BTreeMap<String, (String, String, Value)> {
    std::fs::read_dir(cache.join("runs"))
        .unwrap()
        .map(|e| {
            let m: Value =
                serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap();
            (
                m["label"].as_str().unwrap().to_string(),
                (
                    m["key"].as_str().unwrap().to_string(),
                    m["outputs"]["digest"].as_str().unwrap().to_string(),
                    m,
                ),
            )
        })
        .collect()
}

/// `ID|NAME|STATE` of this project's jobs (their working folder is in its cache)
/// named `pipe:PREFIX…`.
fn our_jobs(p: &Project, prefix: &str) -> Vec<String> {
    let out = Command::new("squeue")
        .args(["-h", "-t", "all", "-o", "%i|%j|%T|%Z"])
        .output()
        .unwrap();
    let root = p.path().display().to_string();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&format!("|pipe:{prefix}")) && l.contains(&root))
        .map(|l| l.rsplit_once('|').map_or(l, |(head, _)| head).to_string())
        .collect()
}

#[test]
fn slurm_gives_the_same_keys_and_bytes_as_local_and_a_cached_instance_submits_nothing() {
    let file = format!(
        r#"
name: same
stages:
  data:
    uses: synthetic-deap
    with: {{ subjects: 2, trials: 4, seconds: 4 }}
    {SMALL}
  recordings: {{ uses: ingest-deap, needs: [data], {SMALL} }}
  windows:
    uses: windows
    needs: [recordings]
    with: {{ window_s: 4, overlap: 0 }}
    {SMALL}
  size:
    run: wc -c < $PIPE_IN_WINDOWS/windows.parquet > $PIPE_OUT/n.txt
    needs: [windows]
    outs: [n.txt]
    {SMALL}
  joined: {{ uses: test-concat, needs: [size], with: {{ text: j }}, {SMALL} }}
"#
    );
    let Some((p, path)) = slurm_project("same.yaml", &file) else {
        return;
    };
    let slurm_run = [
        "run",
        "same.yaml",
        "--executor",
        "slurm",
        "--cache-dir",
        "slurm-cache",
    ];
    p.pipe(&["run", "same.yaml", "--cache-dir", "local-cache"])
        .ok();
    let r = pipe_slurm(&p, &path, &slurm_run);
    r.ok();
    assert!(r.stdout.contains("5 ran, 0 cached"), "{}", r.stdout);
    assert_eq!(p.count("sbatch.calls"), 5, "one sbatch per instance");
    let local = runs(&p.path().join("local-cache"));
    let slurm = runs(&p.path().join("slurm-cache"));
    assert_eq!(local.len(), 5);
    for (label, (key, digest, m)) in &slurm {
        let (lkey, ldigest, lm) = &local[label];
        assert_eq!(
            (key, digest),
            (lkey, ldigest),
            "{label}: same key and output bytes"
        );
        assert_eq!(m["job"]["executor"], "slurm", "{label}");
        assert_eq!(m["job"]["state"], "COMPLETED", "{label}");
        assert!(
            lm.get("job").is_none(),
            "the local run records no cluster job"
        );
    }
    // the job's id, node and state are in `pipe show`
    let show = pipe_slurm(
        &p,
        &path,
        &["show", "windows", "--cache-dir", "slurm-cache"],
    );
    show.ok();
    let id = slurm["windows"].2["job"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        show.stdout
            .contains(&format!("slurm job {id}: COMPLETED on ")),
        "{}",
        show.stdout
    );
    // the job's standard error is the run's log
    let log = p
        .path()
        .join("slurm-cache/logs")
        .join(format!("{}.log", slurm["windows"].0));
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(log.contains("pipe exec: windows"), "log: {log}");

    // everything cached: nothing is submitted
    let again = pipe_slurm(&p, &path, &slurm_run);
    again.ok();
    assert!(again.stdout.contains("0 ran, 5 cached"), "{}", again.stdout);
    assert_eq!(
        p.count("sbatch.calls"),
        5,
        "a cached instance submits nothing"
    );
}

#[test]
fn scancel_and_a_time_limit_are_reported_with_job_and_state_and_the_rerun_completes() {
    let Some((p, path)) = slurm_project(
        "f.yaml",
        &format!(
            r#"
name: faults
stages:
  tlate:
    run: echo late >&2; if [ -e slow ]; then sleep 600; fi; echo x > $PIPE_OUT/x
    outs: [x]
    resources: {{ cpus: 1, mem: 200M, time: 1 }}
  tvictim:
    run: touch victim.started; if [ -e slow ]; then sleep 600; fi; echo y > $PIPE_OUT/y
    outs: [y]
    {SMALL}
"#
        ),
    ) else {
        return;
    };
    p.write("slow", "");
    let child = spawn_slurm(&p, &path, &["run", "f.yaml", "--executor", "slurm"]);
    wait_for("the victim job to start", Duration::from_secs(60), || {
        p.path().join("victim.started").exists()
    });
    let victim: Vec<String> = our_jobs(&p, "tvictim");
    assert_eq!(victim.len(), 1, "{victim:?}");
    assert!(victim[0].ends_with("|RUNNING"), "{victim:?}");
    let id = victim[0].split('|').next().unwrap().to_string();
    Command::new("scancel").arg(&id).status().unwrap();
    // the time limit is 1 minute; Slurm enforces it within another 30 s or so
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("Slurm job {id} CANCELLED")),
        "scancel is reported with the job id and state:\n{stderr}"
    );
    assert!(
        stderr.contains("TIMEOUT: it ran past its time limit (00:01:00)"),
        "the time limit is reported:\n{stderr}"
    );
    assert!(
        stderr.contains("| late"),
        "with the tail of the job's log:\n{stderr}"
    );
    std::fs::remove_file(p.path().join("slow")).unwrap();
    let r = pipe_slurm(&p, &path, &["run", "f.yaml", "--executor", "slurm"]);
    r.ok();
    assert!(r.stdout.contains("2 ran"), "{}", r.stdout);
}

#[test]
fn sigint_cancels_the_runs_jobs_and_leaves_the_cache_clean() {
    let Some((p, path)) = slurm_project(
        "i.yaml",
        &format!(
            r#"
name: intr
stages:
  isleep:
    run: sleep 600
    matrix: {{ i: [0, 1, 2] }}
    outs: [x]
    {SMALL}
"#
        ),
    ) else {
        return;
    };
    let child = spawn_slurm(
        &p,
        &path,
        &["run", "i.yaml", "--executor", "slurm", "-j", "2"],
    );
    wait_for("two running jobs", Duration::from_secs(60), || {
        our_jobs(&p, "isleep")
            .iter()
            .filter(|l| l.ends_with("|RUNNING"))
            .count()
            == 2
    });
    signal(child.id(), "-INT");
    let t = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert_eq!(p.count("sbatch.calls"), 2, "-j 2: two jobs queued at once");
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(t.elapsed() < Duration::from_secs(60), "{:?}", t.elapsed());
    let left: Vec<String> = our_jobs(&p, "isleep")
        .into_iter()
        .filter(|l| {
            !l.ends_with("|CANCELLED") && !l.ends_with("|COMPLETED") && !l.ends_with("|FAILED")
        })
        .collect();
    assert!(left.is_empty(), "jobs left queued or running: {left:?}");
    assert_eq!(
        std::fs::read_dir(p.path().join("cache/tmp"))
            .unwrap()
            .count(),
        0,
        "no attempt folder left"
    );
    assert_eq!(
        std::fs::read_dir(p.path().join("cache/runs"))
            .unwrap()
            .count(),
        0
    );
    p.pipe(&["verify"]).ok();
}

#[test]
fn without_slurm_on_path_the_slurm_executor_is_a_clear_error() {
    let p = Project::new();
    p.write(
        "t.yaml",
        "stages:\n  a:\n    run: echo a > $PIPE_OUT/a\n    outs: [a]\n",
    );
    let empty = p.path().join("empty-bin");
    std::fs::create_dir_all(&empty).unwrap();
    let r = pipe_slurm(
        &p,
        &empty.display().to_string(),
        &["run", "t.yaml", "--executor", "slurm"],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("--executor slurm: cannot run `sbatch`") && r.stderr.contains("PATH"),
        "{}",
        r.stderr
    );
    assert!(
        !p.path().join("cache/runs").exists()
            || std::fs::read_dir(p.path().join("cache/runs"))
                .unwrap()
                .count()
                == 0
    );
}

#[test]
fn a_job_slurm_refuses_fails_its_instance_with_slurms_reason() {
    let Some((p, path)) = slurm_project(
        "r.yaml",
        "stages:\n  refused:\n    run: echo a > $PIPE_OUT/a\n    outs: [a]\n    resources: { partition: no-such-partition, cpus: 1, mem: 100M }\n  fine:\n    run: echo b > $PIPE_OUT/b\n    outs: [b]\n    resources: { cpus: 1, mem: 100M }\n",
    ) else {
        return;
    };
    let r = pipe_slurm(&p, &path, &["run", "r.yaml", "--executor", "slurm"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("invalid partition specified: no-such-partition")
            && r.stderr
                .contains("resources asked: --cpus-per-task=1 --mem=100M"),
        "{}",
        r.stderr
    );
    assert!(r.status_of("fine").unwrap().contains("ran"), "{}", r.stdout);
}
