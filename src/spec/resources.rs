//! A stage's `resources:` (what a cluster executor asks Slurm for) and the top-level
//! `executor:`: parsed with positions, checked against Slurm's notations. Neither is
//! part of any cache key.

use super::yaml::Value as Y;
use stages::resources::{valid_mem, valid_time};
use stages::Resources;

use super::diagnostic::suggest;
use super::parse::{push, type_name, Ctx};
use super::yaml::Seg;

pub(crate) const RESOURCE_KEYS: &[&str] = &[
    "cpus",
    "mem",
    "time",
    "gpus",
    "partition",
    "account",
    "sbatch",
];

/// Where instances run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ExecutorKind {
    /// Child processes on this machine.
    #[default]
    Local,
    /// One `sbatch` job per instance on a Slurm cluster (shared filesystem).
    Slurm,
}

/// What a pipeline file sets in a stage's `resources:`; the rest comes from the
/// stage's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ResourceOverrides {
    pub cpus: Option<u32>,
    pub mem: Option<String>,
    pub time: Option<String>,
    pub gpus: Option<u32>,
    pub partition: Option<String>,
    pub account: Option<String>,
    pub sbatch: Option<Vec<String>>,
}

impl ResourceOverrides {
    /// `base` with what the file sets.
    pub(crate) fn apply(&self, base: Resources) -> Resources {
        Resources {
            cpus: self.cpus.unwrap_or(base.cpus),
            mem: self.mem.clone().or(base.mem),
            time: self.time.clone().or(base.time),
            gpus: self.gpus.unwrap_or(base.gpus),
            partition: self.partition.clone().or(base.partition),
            account: self.account.clone().or(base.account),
            sbatch: self.sbatch.clone().unwrap_or(base.sbatch),
        }
    }
}

fn count(cx: &mut Ctx, path: &[Seg], v: &Y, what: &str, min: u64) -> Option<u32> {
    match v.as_u64() {
        Some(n) if n >= min && n <= u64::from(u32::MAX) => Some(n as u32),
        _ => {
            cx.err_value(
                path,
                format!(
                    "`{what}` must be a whole number ≥ {min}, found {}",
                    shown(v)
                ),
            );
            None
        }
    }
}

fn shown(v: &Y) -> String {
    match v {
        Y::Number(n) => n.to_string(),
        Y::String(s) => format!("`{s}`"),
        other => type_name(other).to_string(),
    }
}

fn text(cx: &mut Ctx, path: &[Seg], v: &Y, what: &str) -> Option<String> {
    match v {
        Y::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        other => {
            cx.err_value(
                path,
                format!(
                    "`{what}` must be a non-empty string, found {}",
                    shown(other)
                ),
            );
            None
        }
    }
}

/// A positive whole number, or a string in a Slurm notation `valid` accepts.
fn notation(
    cx: &mut Ctx,
    path: &[Seg],
    v: &Y,
    what: &str,
    kind: &str,
    valid: fn(&str) -> bool,
    help: &str,
) -> Option<String> {
    match v {
        Y::Number(n) if n.as_u64().is_some_and(|n| n > 0) => Some(n.to_string()),
        Y::String(s) if valid(s.trim()) => Some(s.trim().to_string()),
        other => {
            cx.err_value(path, format!("`{what}` is not {kind}: {}", shown(other)))
                .set_help(help);
            None
        }
    }
}

/// `resources:` of a stage.
pub(crate) fn resources(cx: &mut Ctx, path: &[Seg], v: &Y) -> ResourceOverrides {
    let mut r = ResourceOverrides::default();
    let Y::Mapping(m) = v else {
        if !v.is_null() {
            cx.err_value(
                path,
                format!("`resources` must be a mapping, found {}", type_name(v)),
            )
            .set_help(format!("keys: {}", RESOURCE_KEYS.join(", ")));
        }
        return r;
    };
    for (k, item) in m {
        let Some(k) = k.as_str() else {
            cx.err_value(path, "`resources`: keys must be plain strings");
            continue;
        };
        let p = push(path, Seg::Key(k.to_string()));
        match k {
            "cpus" => r.cpus = count(cx, &p, item, "cpus", 1),
            "gpus" => r.gpus = count(cx, &p, item, "gpus", 0),
            "mem" => {
                r.mem = notation(
                    cx,
                    &p,
                    item,
                    "mem",
                    "a Slurm memory size",
                    valid_mem,
                    "a number of megabytes, or digits with K, M, G or T: `512M`, `8G`",
                )
            }
            "time" => {
                r.time = notation(
                    cx,
                    &p,
                    item,
                    "time",
                    "a Slurm time limit",
                    valid_time,
                    "minutes, or `HH:MM:SS`, `D-HH:MM:SS`: `90`, `02:00:00`, `1-12:00:00`",
                )
            }
            "partition" => r.partition = text(cx, &p, item, "partition"),
            "account" => r.account = text(cx, &p, item, "account"),
            "sbatch" => {
                let items: Vec<&Y> = match item {
                    Y::Sequence(s) => s.iter().collect(),
                    Y::String(_) => vec![item],
                    other => {
                        cx.err_value(
                            &p,
                            format!(
                                "`sbatch` must be a list of options, found {}",
                                type_name(other)
                            ),
                        )
                        .set_help("e.g. `sbatch: [--qos=long, --constraint=a100]`");
                        continue;
                    }
                };
                let mut opts = Vec::new();
                for (i, o) in items.iter().enumerate() {
                    let op = if matches!(item, Y::Sequence(_)) {
                        push(&p, Seg::Index(i))
                    } else {
                        p.clone()
                    };
                    match o.as_str() {
                        Some(s) if s.starts_with('-') && !s.contains(char::is_whitespace) => {
                            opts.push(s.to_string())
                        }
                        _ => {
                            cx.err_value(
                                &op,
                                format!("`sbatch` entries must be single options like `--qos=long`, found {}", shown(o)),
                            );
                        }
                    }
                }
                r.sbatch = Some(opts);
            }
            other => {
                let help = suggest(other, RESOURCE_KEYS.iter().copied());
                cx.err_key(&p, format!("unknown key `{other}` in `resources`"))
                    .set_label("unknown key")
                    .set_help(help);
            }
        }
    }
    r
}

/// The top-level `executor:`.
pub(crate) fn executor(cx: &mut Ctx, path: &[Seg], v: &Y) -> Option<ExecutorKind> {
    match v.as_str() {
        Some("local") => Some(ExecutorKind::Local),
        Some("slurm") => Some(ExecutorKind::Slurm),
        _ => {
            cx.err_value(
                path,
                format!("`executor` must be `local` or `slurm`, found {}", shown(v)),
            );
            None
        }
    }
}
