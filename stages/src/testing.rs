//! Small stages for testing the engine. Listed only when `PIPE_TEST_STAGES` is set.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde_json::{Map, Value};

use crate::params::ParamSchema;
use crate::stage::{Context, IoContext, Outcome, Stage, StageError};

pub(crate) fn all() -> Vec<&'static dyn Stage> {
    vec![&Concat, &Panic]
}

/// Writes `text` followed by the content of every upstream `out.txt`.
pub(crate) struct Concat;

/// A choice parameter to test choices with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    A,
    B,
}

crate::choice_param!(Mode { A => "a", B => "b" });

crate::stage_params! {
    /// What `test-concat` takes: one parameter of every kind.
    pub(crate) struct ConcatParams {
        /// text to write
        text: String = String::new();
        /// how many times to write it
        repeat: usize = 1;
        /// a float, reported as a metric
        scale: f64 = 1.0;
        /// a choice
        mode: Mode = Mode::A;
        /// sleep this long first
        sleep_ms: u64 = 0;
        /// fail with an error
        fail: bool = false;
        /// an external file to append
        source: Option<PathBuf> = None;
    }
}

impl Stage for Concat {
    fn name(&self) -> &'static str {
        "test-concat"
    }
    fn version(&self) -> u32 {
        1
    }
    fn doc(&self) -> &'static str {
        "(testing) writes `text` and every upstream out.txt into out.txt"
    }
    fn schema(&self) -> ParamSchema {
        ParamSchema::of::<ConcatParams>()
    }
    fn produces(&self) -> Vec<&'static str> {
        vec!["out.txt"]
    }
    fn run(&self, ctx: &Context) -> Result<Outcome, StageError> {
        let p: ConcatParams = ctx.params()?;
        let sleep = p.sleep_ms;
        ctx.progress.start("sleep", 10);
        for i in 0..10 {
            ctx.check_cancelled()?;
            std::thread::sleep(std::time::Duration::from_millis(sleep / 10));
            ctx.progress.update(i + 1, "sleeping");
        }
        if p.fail {
            return Err(StageError::Data("failing as asked (fail: true)".into()));
        }
        let mut text = String::new();
        for _ in 0..p.repeat {
            text.push_str(&p.text);
        }
        let mut upstream = ctx
            .inputs
            .iter()
            .filter(|i| i.dir.join("out.txt").exists())
            .peekable();
        if upstream.peek().is_some() {
            for input in upstream {
                let path = input.dir.join("out.txt");
                let got = std::fs::read_to_string(&path).at(&path)?;
                let _ = write!(text, "|{got}");
            }
        }
        if let Some(path) = &p.source {
            let got = std::fs::read_to_string(path).at(path)?;
            text.push_str(&got);
        }
        let out = ctx.out_dir.join("out.txt");
        std::fs::write(&out, &text).at(&out)?;
        let mut metrics = Map::new();
        metrics.insert("length".into(), Value::from(text.len()));
        metrics.insert("scale".into(), Value::from(p.scale));
        metrics.insert("seed".into(), Value::from(ctx.seed));
        Ok(Outcome::with_metrics(metrics))
    }
}

/// Panics (to test that a panicking stage fails cleanly).
pub(crate) struct Panic;

impl Stage for Panic {
    fn name(&self) -> &'static str {
        "test-panic"
    }
    fn version(&self) -> u32 {
        1
    }
    fn doc(&self) -> &'static str {
        "(testing) panics"
    }
    fn schema(&self) -> ParamSchema {
        ParamSchema::of::<()>()
    }
    fn run(&self, _ctx: &Context) -> Result<Outcome, StageError> {
        panic!("test-panic was asked to panic");
    }
}
