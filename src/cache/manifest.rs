//! `runs/<key>.json`: everything needed to trace a result back to its inputs.
//! Writing it is the commit point of a run: no manifest, no result.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub(crate) const MANIFEST_SCHEMA: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub schema_version: u32,
    pub key: String,
    pub pipeline: String,
    /// The stage's name in the pipeline file.
    pub stage: String,
    /// Stage and cell, e.g. `teacher[target=arousal, fold=0]`.
    pub label: String,
    /// Built-in stage name, or `run`.
    pub uses: String,
    pub version: u32,
    pub cell: Map<String, Value>,
    pub params: Map<String, Value>,
    pub backend: String,
    pub seed: u64,
    pub inputs: Vec<InputRecord>,
    pub externals: Vec<ExternalRecord>,
    pub outputs: Outputs,
    pub metrics: Map<String, Value>,
    pub timings: Timings,
    pub host: Host,
    pub versions: Versions,
    pub variations: Vec<String>,
    /// Where the instance ran, when an executor other than the local one ran it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<JobRecord>,
}

/// A cluster job that ran an instance (`pipe show` prints it).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub(crate) struct JobRecord {
    /// `slurm`.
    pub executor: String,
    pub id: String,
    /// Final state as the cluster reported it (`COMPLETED`, `TIMEOUT`…).
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Elapsed time as the cluster reported it (`00:01:02`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elapsed: Option<String>,
    /// Submissions it took (2 after a preemption).
    #[serde(default = "one")]
    pub submissions: u32,
}

fn one() -> u32 {
    1
}

/// An upstream output this run read.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct InputRecord {
    pub label: String,
    pub key: String,
    pub digest: String,
}

/// A file or folder read from outside the cache.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct ExternalRecord {
    pub what: String,
    pub path: String,
    pub digest: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Outputs {
    /// Digest over all files (what dependents' keys use).
    pub digest: String,
    pub files: Vec<OutputFile>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct OutputFile {
    pub path: String,
    pub digest: String,
    pub size: u64,
    /// Modification time of the published file; a changed mtime or size means the
    /// cached file was modified and the run is redone.
    pub mtime_ns: i128,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Timings {
    /// RFC 3339, UTC.
    pub started: String,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Host {
    pub hostname: String,
    pub os: String,
    pub arch: String,
    pub cpus: usize,
}

impl Host {
    pub(crate) fn current() -> Host {
        Host {
            hostname: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|s| s.trim().to_string())
                .or_else(|_| std::env::var("HOSTNAME"))
                .unwrap_or_default(),
            os: std::env::consts::OS.into(),
            arch: std::env::consts::ARCH.into(),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Versions {
    pub pipe: String,
    pub stage: u32,
}

/// Seconds since the epoch as RFC 3339 UTC (`2026-11-26T12:00:00Z`).
pub(crate) fn rfc3339(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // civil-from-days (Howard Hinnant)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_795_694_400)),
            "2026-11-26T12:00:00Z"
        );
    }
}
