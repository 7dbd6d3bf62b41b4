//! From a YAML value to a [`Pipeline`]: shape checks with positions and hints.

use std::path::Path;

use super::yaml::Value as Y;
use indexmap::IndexMap;
use serde_json::Value;
use stages::Backend;

use super::diagnostic::{suggest, Reporter, SpecError};
use super::model::{Action, Override, Pipeline, Spanned, StageDef, Variation};
use super::span::Span;
use super::yaml::{Seg, SpanIndex, YamlPath};

const TOP_KEYS: &[&str] = &[
    "name",
    "description",
    "params",
    "stages",
    "variations",
    "executor",
];
const STAGE_KEYS: &[&str] = &[
    "uses",
    "run",
    "needs",
    "with",
    "matrix",
    "deps",
    "outs",
    "backend",
    "resources",
    "description",
];

pub(crate) struct Ctx<'a> {
    pub rep: &'a Reporter,
    pub spans: &'a SpanIndex,
    pub errors: Vec<SpecError>,
}

impl Ctx<'_> {
    pub(crate) fn err_value(&mut self, path: &[Seg], msg: impl Into<String>) -> &mut SpecError {
        // errors about the whole document point at its start
        let span = self
            .spans
            .value(path)
            .or_else(|| path.is_empty().then_some(Span::new(0, 0)));
        let e = self.rep.error(span, msg);
        self.errors.push(e);
        self.errors.last_mut().expect("just pushed")
    }
    pub(crate) fn err_key(&mut self, path: &[Seg], msg: impl Into<String>) -> &mut SpecError {
        let e = self.rep.error(self.spans.key(path), msg);
        self.errors.push(e);
        self.errors.last_mut().expect("just pushed")
    }
    fn with_help(&mut self, help: String) {
        if let Some(e) = self.errors.last_mut() {
            e.help = Some(help);
        }
    }
}

pub(crate) fn push(path: &[Seg], seg: Seg) -> YamlPath {
    let mut p = path.to_vec();
    p.push(seg);
    p
}

fn key(s: &str) -> Seg {
    Seg::Key(s.to_string())
}

pub(crate) fn type_name(v: &Y) -> &'static str {
    match v {
        Y::Null => "nothing",
        Y::Bool(_) => "a bool",
        Y::Number(_) => "a number",
        Y::String(_) => "a string",
        Y::Sequence(_) => "a list",
        Y::Mapping(_) => "a mapping",
        Y::Tagged(_) => "a tagged value",
    }
}

/// A YAML value as JSON (the canonical form of parameters).
pub(crate) fn to_json(cx: &mut Ctx, path: &[Seg], v: &Y) -> Option<Value> {
    Some(match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(*b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                match n.as_f64().and_then(serde_json::Number::from_f64) {
                    Some(f) => Value::Number(f),
                    None => {
                        cx.err_value(path, "numbers must be finite (no .nan or .inf)");
                        return None;
                    }
                }
            }
        }
        Y::String(s) => Value::String(s.clone()),
        Y::Sequence(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| to_json(cx, &push(path, Seg::Index(i)), item))
                .collect::<Option<Vec<_>>>()?,
        ),
        Y::Mapping(m) => {
            let mut out = serde_json::Map::new();
            for (k, item) in m {
                let Some(k) = scalar_key(k) else {
                    cx.err_value(path, "mapping keys must be plain strings");
                    return None;
                };
                let value = to_json(cx, &push(path, Seg::Key(k.clone())), item)?;
                out.insert(k, value);
            }
            Value::Object(out)
        }
        Y::Tagged(_) => {
            cx.err_value(path, "YAML tags (`!name`) are not supported here");
            return None;
        }
    })
}

fn scalar_key(k: &Y) -> Option<String> {
    match k {
        Y::String(s) => Some(s.clone()),
        Y::Number(n) => Some(n.to_string()),
        Y::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The entries of a mapping, or an error if `v` is not one.
fn mapping<'v>(cx: &mut Ctx, path: &[Seg], v: &'v Y, what: &str) -> Vec<(String, &'v Y)> {
    match v {
        Y::Mapping(m) => {
            let mut out = Vec::new();
            for (k, item) in m {
                match scalar_key(k) {
                    Some(k) => out.push((k, item)),
                    None => {
                        cx.err_value(path, format!("{what}: keys must be plain strings"));
                    }
                }
            }
            out
        }
        Y::Null => Vec::new(),
        other => {
            cx.err_value(
                path,
                format!("{what} must be a mapping, found {}", type_name(other)),
            );
            Vec::new()
        }
    }
}

/// A string or a list of strings.
fn string_list(cx: &mut Ctx, path: &[Seg], v: &Y, what: &str) -> Vec<Spanned<String>> {
    match v {
        Y::String(s) => vec![Spanned::new(s.clone(), cx.spans.value(path))],
        Y::Null => Vec::new(),
        Y::Sequence(items) => items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| {
                let p = push(path, Seg::Index(i));
                match item {
                    Y::String(s) => Some(Spanned::new(s.clone(), cx.spans.value(&p))),
                    other => {
                        cx.err_value(
                            &p,
                            format!("{what} entries must be strings, found {}", type_name(other)),
                        );
                        None
                    }
                }
            })
            .collect(),
        other => {
            cx.err_value(
                path,
                format!(
                    "{what} must be a string or a list of strings, found {}",
                    type_name(other)
                ),
            );
            Vec::new()
        }
    }
}

fn string(cx: &mut Ctx, path: &[Seg], v: &Y, what: &str) -> Option<String> {
    match v {
        Y::String(s) => Some(s.clone()),
        Y::Number(n) => Some(n.to_string()),
        other => {
            cx.err_value(
                path,
                format!("{what} must be a string, found {}", type_name(other)),
            );
            None
        }
    }
}

/// Structural checks of a whole document.
pub(crate) fn pipeline(cx: &mut Ctx, doc: &Y, file: &Path, root: &Path) -> Option<Pipeline> {
    let top = match doc {
        Y::Mapping(_) => mapping(cx, &[], doc, "the pipeline file"),
        Y::Null => {
            cx.err_value(&[], "the pipeline file is empty")
                .set_help("a pipeline needs at least `stages:`");
            return None;
        }
        other => {
            cx.err_value(
                &[],
                format!(
                    "a pipeline file must be a mapping, found {}",
                    type_name(other)
                ),
            )
            .set_help("start with `name:` and `stages:`");
            return None;
        }
    };
    let mut name = file
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let mut description = String::new();
    let mut params = IndexMap::new();
    let mut stage_defs = IndexMap::new();
    let mut variations_raw = None;
    let mut executor = None;
    let mut saw_stages = false;
    for (k, v) in &top {
        let p = vec![key(k)];
        match k.as_str() {
            "name" => name = string(cx, &p, v, "`name`").unwrap_or(name),
            "description" => description = string(cx, &p, v, "`description`").unwrap_or_default(),
            "params" => {
                for (pk, pv) in mapping(cx, &p, v, "`params`") {
                    let pp = push(&p, key(&pk));
                    if let Some(j) = to_json(cx, &pp, pv) {
                        params.insert(pk, Spanned::new(j, cx.spans.value(&pp)));
                    }
                }
            }
            "stages" => {
                saw_stages = true;
                for (sk, sv) in mapping(cx, &p, v, "`stages`") {
                    if let Some(def) = stage(cx, &push(&p, key(&sk)), &sk, sv) {
                        stage_defs.insert(sk, def);
                    }
                }
            }
            "variations" => variations_raw = Some(v),
            "executor" => executor = super::resources::executor(cx, &p, v),
            other => {
                let help = suggest(other, TOP_KEYS.iter().copied());
                cx.err_key(
                    &p,
                    format!("unknown key `{other}` at the top of the pipeline file"),
                )
                .set_label("unknown key")
                .set_help(help);
            }
        }
    }
    let unknown_top = cx.errors.iter().any(|e| e.label == "unknown key");
    if !saw_stages && !unknown_top {
        cx.err_value(&[], "the pipeline file has no `stages:`")
            .set_help("add `stages:` with at least one stage");
    } else if stage_defs.is_empty() && cx.errors.is_empty() {
        cx.err_value(&[key("stages")], "`stages:` is empty");
    }
    let mut variations = Vec::new();
    if let Some(v) = variations_raw {
        let p = vec![key("variations")];
        for (vk, vv) in mapping(cx, &p, v, "`variations`") {
            let vp = push(&p, key(&vk));
            let mut overrides = Vec::new();
            for (ok, ov) in mapping(cx, &vp, vv, &format!("variation `{vk}`")) {
                let op = push(&vp, key(&ok));
                let Some((scope, param)) = ok.split_once('.') else {
                    cx.err_key(&op, format!("variation `{vk}`: `{ok}` is not of the form STAGE.PARAM or params.NAME"))
                        .set_label("expected STAGE.PARAM");
                    continue;
                };
                if let Some(value) = to_json(cx, &op, ov) {
                    overrides.push(Override {
                        scope: scope.to_string(),
                        key: param.to_string(),
                        value,
                        span: cx.spans.key(&op),
                        origin: format!("variation `{vk}`"),
                    });
                }
            }
            variations.push(Variation {
                name: vk,
                overrides,
            });
        }
    }
    if variations.is_empty() {
        variations.push(Variation {
            name: "default".into(),
            overrides: Vec::new(),
        });
    }
    Some(Pipeline {
        name,
        description,
        file: file.to_path_buf(),
        root: root.to_path_buf(),
        params,
        stages: stage_defs,
        variations,
        executor,
    })
}

fn stage(cx: &mut Ctx, path: &[Seg], name: &str, v: &Y) -> Option<StageDef> {
    let entries = match v {
        Y::Mapping(_) => mapping(cx, path, v, "a stage"),
        other => {
            cx.err_value(
                path,
                format!(
                    "stage `{name}` must be a mapping, found {}",
                    type_name(other)
                ),
            )
            .set_help("give it `uses: STAGE` or `run: COMMAND`");
            return None;
        }
    };
    let mut uses = None;
    let mut run = None;
    let mut def = StageDef {
        name: name.to_string(),
        name_span: cx.spans.key(path),
        action: Action::Run(String::new()),
        run_span: None,
        needs: Vec::new(),
        with: IndexMap::new(),
        with_keys: Default::default(),
        matrix: IndexMap::new(),
        deps: Vec::new(),
        outs: Vec::new(),
        backend: Backend::Cpu,
        resources: Default::default(),
    };
    for (k, item) in &entries {
        let p = push(path, key(k));
        match k.as_str() {
            "uses" => uses = string(cx, &p, item, "`uses`").map(|s| (s, cx.spans.value(&p))),
            "run" => {
                run = string(cx, &p, item, "`run`");
                def.run_span = cx.spans.value(&p);
            }
            "needs" => def.needs = string_list(cx, &p, item, "`needs`"),
            "deps" => def.deps = string_list(cx, &p, item, "`deps`"),
            "outs" => def.outs = string_list(cx, &p, item, "`outs`"),
            "description" => {
                string(cx, &p, item, "`description`");
            }
            "backend" => match item.as_str() {
                Some("cpu") => def.backend = Backend::Cpu,
                Some("cuda") => def.backend = Backend::Cuda,
                _ => {
                    cx.err_value(&p, "`backend` must be `cpu` or `cuda`");
                }
            },
            "resources" => def.resources = super::resources::resources(cx, &p, item),
            "with" | "matrix" => {
                for (wk, wv) in mapping(cx, &p, item, &format!("`{k}`")) {
                    let wp = push(&p, key(&wk));
                    if let Some(j) = to_json(cx, &wp, wv) {
                        let entry = Spanned::new(j, cx.spans.value(&wp));
                        if k == "with" {
                            if let Some(ks) = cx.spans.key(&wp) {
                                def.with_keys.insert(wk.clone(), ks);
                            }
                            def.with.insert(wk, entry);
                        } else {
                            def.matrix.insert(wk, entry);
                        }
                    }
                }
            }
            other => {
                let help = suggest(other, STAGE_KEYS.iter().copied());
                cx.err_key(&p, format!("unknown key `{other}` in stage `{name}`"))
                    .set_label("unknown key");
                cx.with_help(help);
            }
        }
    }
    match (uses, run) {
        (Some(_), Some(_)) => {
            cx.err_key(path, format!("stage `{name}` has both `uses:` and `run:`"))
                .set_help(
                    "a stage is either a built-in stage (`uses:`) or a shell command (`run:`)",
                );
            None
        }
        (None, None) => {
            cx.err_key(
                path,
                format!("stage `{name}` has neither `uses:` nor `run:`"),
            )
            .set_help("add `uses: STAGE` (see `pipe stages`) or `run: COMMAND`");
            None
        }
        (None, Some(cmd)) => {
            if !def.with.is_empty() {
                cx.err_key(
                    &push(path, key("with")),
                    format!("stage `{name}` is a `run:` stage and takes no `with:`"),
                )
                .set_help("use `${params.NAME}` or `${matrix.AXIS}` in the command instead");
            }
            def.action = Action::Run(cmd);
            Some(def)
        }
        (Some((uses, span)), None) => {
            for (field, list) in [("deps", &def.deps), ("outs", &def.outs)] {
                if !list.is_empty() {
                    cx.err_key(
                        &push(path, key(field)),
                        format!("`{field}:` is only for `run:` stages"),
                    )
                    .set_help("a built-in stage declares its own inputs and outputs");
                }
            }
            match stages::registry::find(&uses) {
                Some(s) => {
                    def.action = Action::Uses(s);
                    Some(def)
                }
                None => {
                    let names: Vec<&str> =
                        stages::registry::all().iter().map(|s| s.name()).collect();
                    let e = cx
                        .rep
                        .error(span, format!("unknown stage `{uses}` in stage `{name}`"));
                    let help = match stages::registry::renamed(&uses) {
                        Some(new) => format!("`{uses}` was renamed: write `uses: {new}`"),
                        None => format!(
                            "{} (`pipe stages` lists them)",
                            suggest(&uses, names.iter().copied())
                        ),
                    };
                    cx.errors.push(e.label("not a built-in stage").help(help));
                    None
                }
            }
        }
    }
}
