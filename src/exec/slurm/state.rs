//! What Slurm says about a job, parsed: `squeue` lines and `scontrol show job -o`
//! records, and how each final state maps to a [`JobEnd`].

use std::collections::HashMap;

use super::super::executor::JobEnd;
use crate::cache::manifest::JobRecord;

/// States after which a job will not run again by itself.
const FINAL: &[&str] = &[
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "OUT_OF_MEMORY",
    "NODE_FAIL",
    "PREEMPTED",
    "BOOT_FAIL",
    "DEADLINE",
    "SPECIAL_EXIT",
    "REVOKED",
];

/// `CANCELLED by 1000` → `CANCELLED`.
pub(crate) fn base_state(state: &str) -> &str {
    state.split_whitespace().next().unwrap_or(state)
}

pub(crate) fn is_final(state: &str) -> bool {
    FINAL.contains(&base_state(state))
}

/// `squeue -h -o '%i|%T'` output: job id → state.
pub(crate) fn parse_squeue(out: &str) -> HashMap<String, String> {
    out.lines()
        .filter_map(|l| {
            let (id, state) = l.trim().split_once('|')?;
            Some((id.trim().to_string(), state.trim().to_string()))
        })
        .collect()
}

/// One `scontrol show job -o` record: `Key=Value` pairs separated by spaces.
pub(crate) fn parse_record(line: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut last: Option<String> = None;
    for token in line.split_whitespace() {
        match token.split_once('=') {
            Some((k, v))
                if !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') =>
            {
                out.insert(k.to_string(), v.to_string());
                last = Some(k.to_string());
            }
            // a value with spaces (`Reason=…`, `Comment=…`): belongs to the last key
            _ => {
                if let Some(k) = &last {
                    if let Some(v) = out.get_mut(k) {
                        v.push(' ');
                        v.push_str(token);
                    }
                }
            }
        }
    }
    out
}

/// `3:0` → (3, 0); `0:15` → (0, 15).
pub(crate) fn parse_exit(s: &str) -> Option<(i32, i32)> {
    let (code, signal) = s.split_once(':')?;
    Some((code.parse().ok()?, signal.parse().ok()?))
}

/// How a job that reached final state `record["JobState"]` ended, in words users
/// read in the run's failure message.
pub(crate) fn job_end(id: &str, record: &HashMap<String, String>, submissions: u32) -> JobEnd {
    let state = record
        .get("JobState")
        .map(|s| base_state(s).to_string())
        .unwrap_or_else(|| "UNKNOWN".into());
    let node = record
        .get("NodeList")
        .filter(|n| !n.is_empty() && *n != "(null)")
        .cloned();
    let elapsed = record.get("RunTime").cloned();
    let (code, signal) = record
        .get("ExitCode")
        .and_then(|e| parse_exit(e))
        .unwrap_or((0, 0));
    let code = if signal == 0 { Some(code) } else { None };
    let on = node
        .as_deref()
        .map(|n| format!(" on {n}"))
        .unwrap_or_default();
    let after = elapsed
        .as_deref()
        .map(|t| format!(" after {t}"))
        .unwrap_or_default();
    let what = match state.as_str() {
        "COMPLETED" => None,
        "FAILED" => Some(match code {
            Some(c) => format!("FAILED with exit code {c}"),
            None => format!("FAILED by signal {signal}"),
        }),
        "CANCELLED" => Some("CANCELLED (scancel, or the cluster cancelled it)".into()),
        "TIMEOUT" => Some(format!(
            "TIMEOUT: it ran past its time limit ({}); raise `resources: time:`",
            record.get("TimeLimit").map_or("?", String::as_str)
        )),
        "OUT_OF_MEMORY" => Some(format!(
            "OUT_OF_MEMORY: it used more than its memory ({}); raise `resources: mem:`",
            record
                .get("MinMemoryNode")
                .or_else(|| record.get("mem"))
                .map_or("?", String::as_str)
        )),
        "NODE_FAIL" => Some("NODE_FAIL: its node failed".into()),
        "PREEMPTED" => Some(format!(
            "PREEMPTED{}",
            if submissions > 1 {
                " again after its requeue"
            } else {
                ""
            }
        )),
        other => Some(other.to_string()),
    };
    JobEnd {
        code: if state == "COMPLETED" { Some(0) } else { code },
        failure: what.map(|w| format!("Slurm job {id} {w}{on}{after}")),
        record: Some(JobRecord {
            executor: "slurm".into(),
            id: id.to_string(),
            state,
            node,
            elapsed,
            submissions,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Records as Slurm 22.05 prints them (`scontrol show job -o 41`), shortened.
    const FAILED: &str = "JobId=41 JobName=pipe-a UserId=root(0) JobState=FAILED Reason=NonZeroExitCode Dependency=(null) Requeue=0 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=3:0 RunTime=00:00:01 TimeLimit=00:01:00 NodeList=node1 MinMemoryNode=1G Command=/tmp/a b/job.sbatch";
    const TIMEOUT: &str = "JobId=42 JobName=pipe-b JobState=TIMEOUT Reason=TimeLimit ExitCode=0:15 RunTime=00:01:03 TimeLimit=00:01:00 NodeList=node1";
    const CANCELLED: &str = "JobId=43 JobName=pipe-c JobState=CANCELLED Reason=None ExitCode=0:15 RunTime=00:00:04 NodeList=node1";
    const DONE: &str = "JobId=44 JobName=pipe-d JobState=COMPLETED Reason=None ExitCode=0:0 RunTime=00:00:02 NodeList=node1";

    #[test]
    fn records_parse_with_values_that_hold_spaces() {
        let r = parse_record(FAILED);
        assert_eq!(r["JobState"], "FAILED");
        assert_eq!(r["ExitCode"], "3:0");
        assert_eq!(r["NodeList"], "node1");
        assert_eq!(r["Command"], "/tmp/a b/job.sbatch");
    }

    #[test]
    fn final_states_map_to_codes_and_messages() {
        let end = job_end("41", &parse_record(FAILED), 1);
        assert_eq!(end.code, Some(3));
        let msg = end.failure.expect("failed");
        assert!(
            msg.contains("Slurm job 41 FAILED with exit code 3 on node1 after 00:00:01"),
            "{msg}"
        );
        let rec = end.record.expect("record");
        assert_eq!(
            (rec.state.as_str(), rec.node.as_deref()),
            ("FAILED", Some("node1"))
        );

        let end = job_end("42", &parse_record(TIMEOUT), 1);
        assert_eq!(end.code, None, "killed by signal 15");
        assert!(end
            .failure
            .unwrap()
            .contains("TIMEOUT: it ran past its time limit (00:01:00)"));

        let end = job_end("43", &parse_record(CANCELLED), 1);
        assert!(end.failure.unwrap().contains("CANCELLED"));

        let end = job_end("44", &parse_record(DONE), 1);
        assert_eq!(end.code, Some(0));
        assert!(end.failure.is_none());
        assert_eq!(end.record.unwrap().elapsed.as_deref(), Some("00:00:02"));

        let mut oom = parse_record(CANCELLED);
        oom.insert("JobState".into(), "OUT_OF_MEMORY".into());
        oom.insert("MinMemoryNode".into(), "100M".into());
        assert!(job_end("45", &oom, 1)
            .failure
            .unwrap()
            .contains("more than its memory (100M)"));
        oom.insert("JobState".into(), "PREEMPTED".into());
        assert!(job_end("45", &oom, 2)
            .failure
            .unwrap()
            .contains("PREEMPTED again"));
        oom.insert("JobState".into(), "NODE_FAIL".into());
        assert!(job_end("45", &oom, 1)
            .failure
            .unwrap()
            .contains("NODE_FAIL"));
    }

    #[test]
    fn states_with_a_suffix_and_squeue_lines() {
        assert_eq!(base_state("CANCELLED by 0"), "CANCELLED");
        assert!(is_final("CANCELLED by 0"));
        assert!(!is_final("RUNNING") && !is_final("PENDING") && !is_final("COMPLETING"));
        let q = parse_squeue("41|RUNNING\n 42|PENDING \n\n");
        assert_eq!(q.len(), 2);
        assert_eq!(q["42"], "PENDING");
        assert_eq!(parse_exit("0:15"), Some((0, 15)));
        assert_eq!(parse_exit("x"), None);
    }
}
