//! What one instance of a stage asks a cluster scheduler for (Slurm's `sbatch`
//! options). A stage declares its defaults ([`crate::Stage::resources`]); a pipeline
//! file overrides them per stage with `resources:`. Resources never change what a
//! stage computes, so they are not part of the cache key.

use serde::{Deserialize, Serialize};

/// Cluster resources of one instance. `None` / empty: the cluster's default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Resources {
    /// CPU cores (`--cpus-per-task`); also the instance's worker threads under Slurm.
    pub cpus: u32,
    /// Memory per node in Slurm's notation (`--mem`): `512M`, `8G`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem: Option<String>,
    /// Time limit in Slurm's notation (`--time`): `MM`, `HH:MM:SS`, `D-HH:MM:SS`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// GPUs (`--gpus`); 0 asks for none.
    pub gpus: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Further `sbatch` options, passed as written (`--qos=long`, `--constraint=a100`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sbatch: Vec<String>,
}

impl Resources {
    /// Reading, converting and windowing recordings: one core, modest memory.
    pub fn data() -> Resources {
        Resources {
            cpus: 2,
            mem: Some("8G".into()),
            time: Some("01:00:00".into()),
            ..Resources::default()
        }
    }

    /// Training a network: a GPU when this build has CUDA, otherwise cores.
    pub fn training() -> Resources {
        let gpu = cfg!(feature = "cuda");
        Resources {
            cpus: if gpu { 4 } else { 8 },
            mem: Some("16G".into()),
            time: Some("12:00:00".into()),
            gpus: u32::from(gpu),
            ..Resources::default()
        }
    }

    /// Statistics and reports over finished runs.
    pub fn light() -> Resources {
        Resources {
            cpus: 1,
            mem: Some("2G".into()),
            time: Some("00:30:00".into()),
            ..Resources::default()
        }
    }

    /// The `sbatch` options these resources ask for, one argument each.
    pub fn sbatch_args(&self) -> Vec<String> {
        let mut args = vec![format!("--cpus-per-task={}", self.cpus.max(1))];
        if let Some(m) = &self.mem {
            args.push(format!("--mem={m}"));
        }
        if let Some(t) = &self.time {
            args.push(format!("--time={t}"));
        }
        if self.gpus > 0 {
            args.push(format!("--gpus={}", self.gpus));
        }
        if let Some(p) = &self.partition {
            args.push(format!("--partition={p}"));
        }
        if let Some(a) = &self.account {
            args.push(format!("--account={a}"));
        }
        args.extend(self.sbatch.iter().cloned());
        args
    }

    /// One line for `pipe stages`.
    pub fn describe(&self) -> String {
        let count = |n: u32, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
        let mut parts = vec![count(self.cpus, "cpu")];
        if let Some(m) = &self.mem {
            parts.push(format!("mem {m}"));
        }
        if let Some(t) = &self.time {
            parts.push(format!("time {t}"));
        }
        if self.gpus > 0 {
            parts.push(count(self.gpus, "gpu"));
        }
        if let Some(p) = &self.partition {
            parts.push(format!("partition {p}"));
        }
        if let Some(a) = &self.account {
            parts.push(format!("account {a}"));
        }
        if !self.sbatch.is_empty() {
            parts.push(self.sbatch.join(" "));
        }
        parts.join(", ")
    }
}

/// Checks Slurm's memory notation: digits with an optional K, M, G or T suffix.
pub fn valid_mem(s: &str) -> bool {
    let digits = s
        .strip_suffix(|c: char| "KMGTkmgt".contains(c))
        .unwrap_or(s);
    !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())
}

/// Checks Slurm's time notation: `M`, `M:S`, `H:M:S`, `D-H`, `D-H:M`, `D-H:M:S`.
pub fn valid_time(s: &str) -> bool {
    let num = |p: &str| !p.is_empty() && p.len() <= 4 && p.chars().all(|c| c.is_ascii_digit());
    let (days, rest) = match s.split_once('-') {
        Some((d, r)) => (Some(d), r),
        None => (None, s),
    };
    if days.is_some_and(|d| !num(d)) {
        return false;
    }
    let parts: Vec<&str> = rest.split(':').collect();
    (1..=3).contains(&parts.len()) && parts.iter().all(|p| num(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sbatch_arguments_follow_the_fields() {
        let r = Resources {
            cpus: 4,
            mem: Some("8G".into()),
            time: Some("1-00:00:00".into()),
            gpus: 1,
            partition: Some("gpu".into()),
            account: Some("lab".into()),
            sbatch: vec!["--qos=long".into()],
        };
        assert_eq!(
            r.sbatch_args(),
            [
                "--cpus-per-task=4",
                "--mem=8G",
                "--time=1-00:00:00",
                "--gpus=1",
                "--partition=gpu",
                "--account=lab",
                "--qos=long"
            ]
        );
        assert_eq!(
            Resources::default().sbatch_args(),
            ["--cpus-per-task=1"],
            "0 cpus still asks for one"
        );
    }

    #[test]
    fn slurm_notations_are_checked() {
        for ok in ["512M", "8G", "100", "2t"] {
            assert!(valid_mem(ok), "{ok}");
        }
        for bad in ["", "G", "8GB", "8.5G", "-1G", "eight"] {
            assert!(!valid_mem(bad), "{bad}");
        }
        for ok in ["30", "10:00", "02:00:00", "1-0", "1-12:00", "2-00:00:00"] {
            assert!(valid_time(ok), "{ok}");
        }
        for bad in ["", "1h", "1:2:3:4", "-1", "1-", "a-01:00", "01::00"] {
            assert!(!valid_time(bad), "{bad}");
        }
    }
}
