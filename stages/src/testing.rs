//! Small stages for testing the engine. Listed only when `PIPE_TEST_STAGES` is set.

use std::fmt::Write as _;

use serde_json::{Map, Value};

use crate::stage::{Context, IoContext, Outcome, ParamKind, ParamSpec, Stage, StageError};

pub fn all() -> Vec<&'static dyn Stage> {
    vec![&Concat, &Panic]
}

/// Writes `text` followed by the content of every upstream `out.txt`.
pub struct Concat;

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
    fn params(&self) -> Vec<ParamSpec> {
        vec![
            ParamSpec::new("text", ParamKind::Str, "", "text to write"),
            ParamSpec::new("repeat", ParamKind::Int, 1, "how many times to write it"),
            ParamSpec::new(
                "scale",
                ParamKind::Float,
                1.0,
                "a float, reported as a metric",
            ),
            ParamSpec::new("mode", ParamKind::choice(&["a", "b"]), "a", "a choice"),
            ParamSpec::new("sleep_ms", ParamKind::Int, 0, "sleep this long first"),
            ParamSpec::new("fail", ParamKind::Bool, false, "fail with an error"),
            ParamSpec::optional("source", ParamKind::Path, "an external file to append"),
        ]
    }
    fn produces(&self) -> Vec<&'static str> {
        vec!["out.txt"]
    }
    fn run(&self, ctx: &Context) -> Result<Outcome, StageError> {
        let p = &ctx.params;
        let sleep = p.usize("sleep_ms")? as u64;
        ctx.progress.start("sleep", 10);
        for i in 0..10 {
            ctx.check_cancelled()?;
            std::thread::sleep(std::time::Duration::from_millis(sleep / 10));
            ctx.progress.update(i + 1, "sleeping");
        }
        if p.bool("fail")? {
            return Err(StageError::Data("failing as asked (fail: true)".into()));
        }
        let mut text = String::new();
        for _ in 0..p.usize("repeat")? {
            text.push_str(p.str("text")?);
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
        if p.is_set("source") {
            let path = p.path("source")?;
            let got = std::fs::read_to_string(&path).at(&path)?;
            text.push_str(&got);
        }
        let out = ctx.out_dir.join("out.txt");
        std::fs::write(&out, &text).at(&out)?;
        let mut metrics = Map::new();
        metrics.insert("length".into(), Value::from(text.len()));
        metrics.insert("scale".into(), Value::from(p.f64("scale")?));
        metrics.insert("seed".into(), Value::from(ctx.seed));
        Ok(Outcome::with_metrics(metrics))
    }
}

/// Panics (to test that a panicking stage fails cleanly).
pub struct Panic;

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
    fn params(&self) -> Vec<ParamSpec> {
        Vec::new()
    }
    fn run(&self, _ctx: &Context) -> Result<Outcome, StageError> {
        panic!("test-panic was asked to panic");
    }
}
