//! Failures, crashes and concurrent use never corrupt the cache or lose results.

use std::time::{Duration, Instant};

use crate::util::{signal, wait_for, Project};

#[test]
fn a_failing_stage_stops_its_dependents_and_independent_ones_finish() {
    let p = Project::new();
    p.write(
        "f.yaml",
        r#"
stages:
  bad:
    uses: test-concat
    with: { fail: true }
  after_bad:
    uses: test-concat
    needs: [bad]
  good:
    run: echo ok > $PIPE_OUT/x && echo g >> count
    outs: [x]
"#,
    );
    let r = p.pipe(&["run", "f.yaml", "-j", "1"]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("FAILED   bad: failing as asked (fail: true)"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("log: "),
        "the error names the log file: {}",
        r.stderr
    );
    assert!(
        r.status_of("after_bad").unwrap().contains("skipped"),
        "{}",
        r.stdout
    );
    assert!(r.status_of("good").unwrap().contains("ran"), "{}", r.stdout);
    // the good instance is cached; rerunning retries only the failed one
    let r = p.pipe(&["run", "f.yaml"]);
    assert_eq!(r.code, 1);
    assert_eq!(p.count("count"), 1);
}

#[test]
fn fail_fast_stops_starting_new_work() {
    let p = Project::new();
    p.write(
        "f.yaml",
        "stages:\n  bad:\n    uses: test-concat\n    with: { fail: true }\n  later:\n    run: echo x >> count; touch $PIPE_OUT/x\n    outs: [x]\n",
    );
    let r = p.pipe(&["run", "f.yaml", "-j", "1", "--fail-fast"]);
    assert_eq!(r.code, 1);
    assert_eq!(p.count("count"), 0, "{}", r.stdout);
}

#[test]
fn a_panicking_stage_fails_cleanly() {
    let p = Project::new();
    p.write(
        "p.yaml",
        "stages:\n  boom:\n    uses: test-panic\n  fine:\n    uses: test-concat\n",
    );
    let r = p.pipe(&["run", "p.yaml"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("panicked: test-panic was asked to panic"),
        "{}",
        r.stderr
    );
    assert!(r.status_of("fine").unwrap().contains("ran"));
    assert!(!p.path().join("cache/runs").read_dir().unwrap().any(|e| {
        std::fs::read_to_string(e.unwrap().path())
            .unwrap()
            .contains("\"boom\"")
    }));
}

#[test]
fn a_run_stage_that_does_not_write_its_outs_fails() {
    let p = Project::new();
    p.write(
        "o.yaml",
        "stages:\n  s:\n    run: \"true\"\n    outs: [result.csv]\n",
    );
    let r = p.pipe(&["run", "o.yaml"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("did not write result.csv"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_missing_input_file_is_named() {
    let p = Project::new();
    p.write("m.yaml", "stages:\n  s:\n    run: cat data/in.csv > $PIPE_OUT/x\n    deps: [data/in.csv]\n    outs: [x]\n");
    let r = p.pipe(&["run", "m.yaml"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("deps[0]") && r.stderr.contains("data/in.csv does not exist"),
        "{}",
        r.stderr
    );
    let r = p.pipe(&["run", "m.yaml", "--cache-dir", "other-cache"]);
    assert_eq!(r.code, 1);
    // a missing `path` parameter of a built-in stage too
    p.write(
        "m2.yaml",
        "stages:\n  s:\n    uses: test-concat\n    with: { source: nowhere/file.txt }\n",
    );
    let r = p.pipe(&["run", "m2.yaml"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("nowhere/file.txt does not exist"),
        "{}",
        r.stderr
    );
}

#[test]
fn kill_dash_9_mid_run_leaves_no_half_result_and_the_rerun_completes() {
    let p = Project::new();
    p.write(
        "k.yaml",
        "stages:\n  slow:\n    run: echo start >> count; echo partial > $PIPE_OUT/x; sleep 3; echo done >> $PIPE_OUT/x\n    outs: [x]\n  next:\n    run: cat $PIPE_IN_SLOW/x > $PIPE_OUT/y\n    needs: [slow]\n    outs: [y]\n",
    );
    let mut child = p.command(&["run", "k.yaml"]).spawn().unwrap();
    wait_for("the stage to start", Duration::from_secs(30), || {
        p.count("count") == 1
    });
    std::thread::sleep(Duration::from_millis(200));
    // kill -9 pipe run (its stage process is orphaned and may finish: it cannot publish)
    signal(child.id(), "-9");
    let _ = child.wait();
    assert_eq!(
        std::fs::read_dir(p.path().join("cache/runs"))
            .unwrap()
            .count(),
        0,
        "no manifest from a killed run"
    );
    let r = p.pipe(&["run", "k.yaml"]);
    r.ok();
    assert!(r.stdout.contains("2 ran"), "{}", r.stdout);
    let y = std::fs::read_dir(p.path().join("cache/out"))
        .unwrap()
        .filter_map(|d| std::fs::read_to_string(d.unwrap().path().join("y")).ok())
        .next()
        .unwrap();
    assert_eq!(y, "partial\ndone\n");
    // gc removes the abandoned attempt
    let gc = p.pipe(&["gc", "k.yaml"]);
    gc.ok();
    assert!(
        gc.stdout.contains("1 abandoned attempts") || gc.stdout.contains("0 abandoned attempts"),
        "{}",
        gc.stdout
    );
}

#[test]
fn two_concurrent_runs_compute_each_instance_once() {
    let p = Project::new();
    p.write(
        "c.yaml",
        "stages:\n  s:\n    run: echo ${matrix.i} >> count; sleep 0.3; echo ${matrix.i} > $PIPE_OUT/x\n    outs: [x]\n    matrix: { i: \"range(6)\" }\n  all:\n    run: echo all >> count_all; touch $PIPE_OUT/n\n    needs: [s]\n    outs: [n]\n",
    );
    let first = p.command(&["run", "c.yaml", "-j", "2"]).spawn().unwrap();
    let second = p.command(&["run", "c.yaml", "-j", "2"]).spawn().unwrap();
    let (o1, o2) = (
        first.wait_with_output().unwrap(),
        second.wait_with_output().unwrap(),
    );
    assert!(
        o1.status.success(),
        "{}",
        String::from_utf8_lossy(&o1.stderr)
    );
    assert!(
        o2.status.success(),
        "{}",
        String::from_utf8_lossy(&o2.stderr)
    );
    assert_eq!(p.count("count"), 6, "each cell computed once");
    assert_eq!(p.count("count_all"), 1);
    let v = p.pipe(&["verify"]);
    v.ok();
}

#[test]
fn a_corrupted_cache_entry_is_reported_and_recomputed() {
    let p = Project::new();
    p.write(
        "v.yaml",
        "stages:\n  s:\n    run: echo good > $PIPE_OUT/x; echo s >> count\n    outs: [x]\n",
    );
    p.pipe(&["run", "v.yaml"]).ok();
    let out = std::fs::read_dir(p.path().join("cache/out"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .join("x");
    let mut perms = std::fs::metadata(&out).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&out, perms).unwrap();
    std::fs::write(&out, "evil").unwrap();
    let v = p.pipe(&["verify"]);
    assert_eq!(v.code, 3, "{}", v.stdout);
    assert!(v.stdout.contains("corrupt run s"), "{}", v.stdout);
    let r = p.pipe(&["run", "v.yaml"]);
    r.ok();
    assert_eq!(p.count("count"), 2, "recomputed");
    let out = std::fs::read_dir(p.path().join("cache/out"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .join("x");
    assert_eq!(std::fs::read_to_string(out).unwrap(), "good\n");
    p.pipe(&["verify"]).ok();
}

#[test]
fn an_unusable_cache_dir_is_a_clear_error() {
    let p = Project::new();
    p.write("u.yaml", "stages:\n  s:\n    uses: test-concat\n");
    p.write("not-a-dir", "file");
    let r = p.pipe(&["run", "u.yaml", "--cache-dir", "not-a-dir/cache"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("not-a-dir/cache"), "{}", r.stderr);
    // /proc refuses new folders even to root
    let r = p.pipe(&["run", "u.yaml", "--cache-dir", "/proc/pipe-cache"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("/proc/pipe-cache"), "{}", r.stderr);
}

/// A small tmpfs mounted at `dir` (needs root, as in CI); `None` where mounting is
/// not allowed.
struct Mount(std::path::PathBuf);

impl Mount {
    fn tmpfs(dir: &std::path::Path, opts: &str) -> Option<Mount> {
        std::fs::create_dir_all(dir).ok()?;
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", opts, "tmpfs"])
            .arg(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Mount(dir.to_path_buf()))
    }
    fn remount(&self, opts: &str) {
        let ok = std::process::Command::new("mount")
            .args(["-o", &format!("remount,{opts}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_fails_the_instance_cleanly_and_keeps_what_was_computed() {
    let p = Project::new();
    let Some(mount) = Mount::tmpfs(&p.path().join("small"), "size=1m") else {
        eprintln!("SKIPPED: mounting a tmpfs needs root");
        return;
    };
    p.write(
        "d.yaml",
        "stages:\n  small:\n    run: head -c 300000 /dev/zero > $PIPE_OUT/a && echo s >> count_small\n    outs: [a]\n  big:\n    run: head -c 2000000 /dev/zero > $PIPE_OUT/b\n    needs: [small]\n    outs: [b]\n",
    );
    let r = p.pipe(&["run", "d.yaml", "--cache-dir", "small/cache"]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.status_of("small").unwrap().contains("ran"),
        "{}",
        r.stdout
    );
    assert!(r.stderr.contains("FAILED   big"), "{}", r.stderr);
    mount.remount("size=8m");
    let r = p.pipe(&["run", "d.yaml", "--cache-dir", "small/cache"]);
    r.ok();
    assert!(
        r.status_of("small").unwrap().contains("cached"),
        "{}",
        r.stdout
    );
    assert_eq!(p.count("count_small"), 1);
    p.pipe(&["verify", "--cache-dir", "small/cache"]).ok();
}

#[test]
fn a_read_only_cache_is_a_clear_error() {
    let p = Project::new();
    let Some(_mount) = Mount::tmpfs(&p.path().join("ro"), "ro,size=1m") else {
        eprintln!("SKIPPED: mounting a tmpfs needs root");
        return;
    };
    p.write("r.yaml", "stages:\n  s:\n    uses: test-concat\n");
    let r = p.pipe(&["run", "r.yaml", "--cache-dir", "ro/cache"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("is not writable") && r.stderr.contains("ro/cache"),
        "{}",
        r.stderr
    );
}

#[test]
fn sigint_cancels_running_instances_keeps_finished_ones_and_leaves_the_cache_clean() {
    let p = Project::new();
    p.write(
        "s.yaml",
        "params:\n  sleep: 60\nstages:\n  quick:\n    run: echo q > $PIPE_OUT/q\n    outs: [q]\n  slow:\n    run: echo start >> count; sleep ${params.sleep}; echo x > $PIPE_OUT/x\n    outs: [x]\n  after:\n    run: cat $PIPE_IN_SLOW/x > $PIPE_OUT/y\n    needs: [slow]\n    outs: [y]\n",
    );
    let mut child = p.command(&["run", "s.yaml", "-j", "2"]).spawn().unwrap();
    wait_for("the slow stage to start", Duration::from_secs(30), || {
        p.count("count") == 1
    });
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    // SIGINT to pipe run only (a terminal's Ctrl-C would signal the children too)
    signal(child.id(), "-INT");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "the interrupt exit code");
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "stopped in {:?}, not after the 60 s sleep",
        t.elapsed()
    );
    let tmp = std::fs::read_dir(p.path().join("cache/tmp"))
        .unwrap()
        .count();
    assert_eq!(tmp, 0, "no attempt folder left");
    p.pipe(&["verify"]).ok();
    // `quick` finished before the interrupt and stays cached; the rest runs now
    let r = p.pipe(&["run", "s.yaml", "--set", "params.sleep=0"]);
    r.ok();
    assert!(
        r.status_of("quick").unwrap().contains("cached"),
        "{}",
        r.stdout
    );
}
