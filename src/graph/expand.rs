//! Pipeline → instances: variations applied, matrices expanded, parameters resolved
//! and type-checked, edges between matching cells, identical instances merged.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path};

use indexmap::IndexMap;
use serde_json::{json, Map, Value};
use stages::params::ParamProblem;
use stages::{Backend, ParamKind, Stage};

use super::instance::{External, Instance};
use crate::cache::canonical;
use crate::spec::diagnostic::suggest;
use crate::spec::interpolate::{axis_values, Scope};
use crate::spec::span::Span;
use crate::spec::{Action, Override, Pipeline, Reporter, SpecError, StageDef, Variation};

/// Collects errors once each (the same mistake shows in every variation).
struct Errors<'a> {
    rep: &'a Reporter,
    list: Vec<SpecError>,
    seen: HashSet<(String, Option<usize>)>,
}

impl Errors<'_> {
    fn add(&mut self, span: Option<Span>, message: String, label: &str, help: Option<String>) {
        if self.seen.insert((message.clone(), span.map(|s| s.offset))) {
            self.list
                .push(self.rep.error(span, message).label(label).help_opt(help));
        }
    }
}

/// Stage names in an order where every stage comes after what it needs; a cycle is
/// reported with its path.
fn stage_order(p: &Pipeline, errs: &mut Errors) -> Vec<String> {
    let mut g = petgraph::graph::DiGraph::<&str, ()>::new();
    let idx: HashMap<&str, _> = p
        .stages
        .keys()
        .map(|k| (k.as_str(), g.add_node(k.as_str())))
        .collect();
    for def in p.stages.values() {
        for need in &def.needs {
            if need.value == def.name {
                errs.add(
                    need.span,
                    format!("stage `{}` needs itself", def.name),
                    "a stage cannot need itself",
                    None,
                );
            } else if let Some(&from) = idx.get(need.value.as_str()) {
                g.add_edge(from, idx[def.name.as_str()], ());
            } else {
                let help = suggest(&need.value, p.stages.keys().map(String::as_str));
                errs.add(
                    need.span,
                    format!(
                        "stage `{}` needs `{}`, which is not a stage in this file",
                        def.name, need.value
                    ),
                    "no such stage",
                    Some(help),
                );
            }
        }
    }
    // Kahn's algorithm, taking ready stages in file order so that runs, plans and
    // tables list stages the way the file does.
    let mut indegree: Vec<usize> = g
        .node_indices()
        .map(|n| g.neighbors_directed(n, petgraph::Incoming).count())
        .collect();
    let mut ready: std::collections::BTreeSet<usize> =
        (0..indegree.len()).filter(|&i| indegree[i] == 0).collect();
    let mut order = Vec::with_capacity(indegree.len());
    while let Some(i) = ready.pop_first() {
        order.push(g[petgraph::graph::NodeIndex::new(i)].to_string());
        for m in g.neighbors(petgraph::graph::NodeIndex::new(i)) {
            indegree[m.index()] -= 1;
            if indegree[m.index()] == 0 {
                ready.insert(m.index());
            }
        }
    }
    if order.len() == indegree.len() {
        return order;
    }
    // a stage left over lies on a cycle or after one; take one that reaches itself
    let on_cycle = |i: usize| {
        let n = petgraph::graph::NodeIndex::new(i);
        g.neighbors(n)
            .any(|m| petgraph::algo::has_path_connecting(&g, m, n, None))
    };
    let start = (0..indegree.len())
        .find(|&i| indegree[i] > 0 && on_cycle(i))
        .unwrap_or(0);
    let path = cycle_path(&g, petgraph::graph::NodeIndex::new(start));
    let first = &p.stages[path[0].as_str()];
    let span = first
        .needs
        .iter()
        .find(|n| n.value == path[1])
        .and_then(|n| n.span);
    errs.add(
        span.or(first.name_span),
        format!("the stages form a cycle: {}", path.join(" → ")),
        "this `needs` closes the cycle",
        Some(
            "a stage cannot depend, directly or not, on itself: remove one of these `needs`".into(),
        ),
    );
    Vec::new()
}

/// The cycle through `start` as stage names, `a → b → a` (following needs edges).
fn cycle_path(
    g: &petgraph::graph::DiGraph<&str, ()>,
    start: petgraph::graph::NodeIndex,
) -> Vec<String> {
    // breadth-first search from start's successors back to start
    let mut prev = HashMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    let mut seen = HashSet::from([start]);
    while let Some(n) = queue.pop_front() {
        for m in g.neighbors(n) {
            if m == start {
                let mut path = vec![g[start].to_string()];
                let mut cur = n;
                while cur != start {
                    path.push(g[cur].to_string());
                    cur = prev[&cur];
                }
                path.push(g[start].to_string());
                // path is start ← ... ← start; present it in needs order (dependency first)
                return path;
            }
            if seen.insert(m) {
                prev.insert(m, n);
                queue.push_back(m);
            }
        }
    }
    vec![g[start].to_string(), g[start].to_string()]
}

/// Every instance of every variation, deduplicated.
pub(crate) fn expand(p: &Pipeline, rep: &Reporter) -> Result<Vec<Instance>, Vec<SpecError>> {
    let mut errs = Errors {
        rep,
        list: Vec::new(),
        seen: HashSet::new(),
    };
    let order = stage_order(p, &mut errs);
    if !errs.list.is_empty() {
        return Err(errs.list);
    }
    let mut instances: Vec<Instance> = Vec::new();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    for variation in &p.variations {
        expand_variation(p, variation, &order, &mut instances, &mut by_id, &mut errs);
    }
    if errs.list.is_empty() {
        Ok(instances)
    } else {
        Err(errs.list)
    }
}

fn override_target_errors(p: &Pipeline, v: &Variation, errs: &mut Errors) {
    for o in &v.overrides {
        let label = format!("{}.{}", o.scope, o.key);
        if o.scope == "params" {
            if !p.params.contains_key(&o.key) {
                let help = suggest(&o.key, p.params.keys().map(String::as_str));
                errs.add(
                    o.span,
                    format!("{}: `{label}` names no parameter under `params:`", o.origin),
                    "unknown parameter",
                    Some(help),
                );
            }
            continue;
        }
        let Some(def) = p.stages.get(&o.scope) else {
            let help = suggest(&o.scope, p.stages.keys().map(String::as_str));
            errs.add(
                o.span,
                format!("{}: `{label}` names no stage", o.origin),
                "unknown stage",
                Some(help),
            );
            continue;
        };
        if o.key == "backend" {
            // The stage's `backend:` key (checked where it is applied).
            continue;
        }
        match &def.action {
            Action::Run(_) => errs.add(
                o.span,
                format!(
                    "{}: `{label}`: `{}` is a `run:` stage and has no parameters",
                    o.origin, o.scope
                ),
                "not a parameter",
                Some("override a `params:` entry it uses instead".into()),
            ),
            Action::Uses(stage) => {
                let names: Vec<String> = stage.schema().specs.into_iter().map(|s| s.name).collect();
                if !names.contains(&o.key) {
                    let help = suggest(&o.key, names.iter().map(String::as_str));
                    errs.add(
                        o.span,
                        format!(
                            "{}: `{label}`: stage `{}` ({}) has no parameter `{}`",
                            o.origin,
                            o.scope,
                            stage.name(),
                            o.key
                        ),
                        "unknown parameter",
                        Some(help),
                    );
                }
            }
        }
    }
}

fn expand_variation(
    p: &Pipeline,
    v: &Variation,
    order: &[String],
    instances: &mut Vec<Instance>,
    by_id: &mut HashMap<String, usize>,
    errs: &mut Errors,
) {
    override_target_errors(p, v, errs);
    let mut params: IndexMap<String, Value> = p
        .params
        .iter()
        .map(|(k, s)| (k.clone(), s.value.clone()))
        .collect();
    for o in v.overrides.iter().filter(|o| o.scope == "params") {
        if let Some(slot) = params.get_mut(&o.key) {
            *slot = o.value.clone();
        }
    }
    let mut of_stage: HashMap<&str, Vec<usize>> = HashMap::new();
    for name in order {
        let def = &p.stages[name.as_str()];
        let overrides: Vec<&Override> = v.overrides.iter().filter(|o| &o.scope == name).collect();
        let cells = match matrix_cells(def, &params, errs) {
            Some(c) => c,
            None => {
                of_stage.insert(name, Vec::new());
                continue;
            }
        };
        let mut ids = Vec::new();
        for cell in cells {
            let Some(mut inst) = resolve(p, def, &params, &overrides, cell, errs) else {
                continue;
            };
            // upstream cells: matching on shared axes, all of them otherwise (fan-in).
            // A need with no matching cell is allowed only when another need that
            // shares the same axis matched: the axis routes between alternative
            // upstreams (e.g. `dataset: [deap, mahnob]` over one ingest stage each).
            let mut upstream_ids = Vec::new();
            let mut unmatched = Vec::new();
            let mut matched_axes: Vec<&str> = Vec::new();
            for need in &def.needs {
                let ups = of_stage
                    .get(need.value.as_str())
                    .cloned()
                    .unwrap_or_default();
                let shared: Vec<&str> = ups
                    .iter()
                    .flat_map(|&u| instances[u].cell.keys())
                    .filter(|axis| inst.cell.contains_key(*axis))
                    .map(String::as_str)
                    .collect();
                let matching: Vec<usize> =
                    ups.into_iter()
                        .filter(|&u| {
                            instances[u].cell.iter().all(|(axis, val)| {
                                inst.cell.get(axis).is_none_or(|mine| mine == val)
                            })
                        })
                        .collect();
                if matching.is_empty() {
                    unmatched.push((need, shared));
                } else {
                    matched_axes.extend(shared);
                }
                for u in matching {
                    upstream_ids.push(instances[u].static_id.clone());
                    inst.needs.push(u);
                }
            }
            for (need, shared) in unmatched {
                let routed = !shared.is_empty() && shared.iter().any(|a| matched_axes.contains(a));
                if !routed && errs.list.is_empty() {
                    errs.add(
                        need.span,
                        format!(
                            "{}: no cell of `{}` matches this cell",
                            inst.label(),
                            need.value
                        ),
                        "no matching upstream cell",
                        Some("stages that share a matrix axis must share its values".into()),
                    );
                }
            }
            inst.static_id = canonical::digest(&json!({
                "uses": inst.uses(),
                "action": match &inst.action { Action::Run(c) => Value::String(c.clone()), Action::Uses(_) => Value::Null },
                "version": inst.version,
                "params": Value::Object(inst.key_params()),
                "cell": Value::Object(inst.cell.clone().into_iter().collect()),
                "backend": inst.backend.to_string(),
                "upstream": upstream_ids,
            }));
            let id = match by_id.get(&inst.static_id) {
                Some(&id) => id,
                None => {
                    let id = instances.len();
                    by_id.insert(inst.static_id.clone(), id);
                    instances.push(inst);
                    id
                }
            };
            if !instances[id].variations.contains(&v.name) {
                instances[id].variations.push(v.name.clone());
            }
            ids.push(id);
        }
        of_stage.insert(name, ids);
    }
}

/// The matrix cells of a stage (one empty cell without a matrix).
fn matrix_cells(
    def: &StageDef,
    params: &IndexMap<String, Value>,
    errs: &mut Errors,
) -> Option<Vec<IndexMap<String, Value>>> {
    let scope = Scope {
        params,
        matrix: None,
    };
    let mut cells = vec![IndexMap::new()];
    for (axis, spec) in &def.matrix {
        let values = match scope.apply(&spec.value) {
            Ok(v) => axis_values(&v),
            Err(e) => {
                errs.add(
                    spec.span,
                    format!("stage `{}`, matrix `{axis}`: {}", def.name, e.message),
                    "here",
                    Some(e.help),
                );
                return None;
            }
        };
        let values = match values {
            Ok(v) => v,
            Err(e) => {
                errs.add(
                    spec.span,
                    format!("stage `{}`, matrix `{axis}`: {e}", def.name),
                    "here",
                    None,
                );
                return None;
            }
        };
        let mut next = Vec::with_capacity(cells.len() * values.len());
        for cell in &cells {
            for value in &values {
                let mut c = cell.clone();
                c.insert(axis.clone(), value.clone());
                next.push(c);
            }
        }
        cells = next;
        if cells.len() > 10_000_000 {
            errs.add(
                spec.span,
                format!(
                    "stage `{}`: the matrix has more than 10 million cells",
                    def.name
                ),
                "here",
                None,
            );
            return None;
        }
    }
    Some(cells)
}

/// An override or a `with:` entry: its value and where to point in errors.
struct Given {
    value: Value,
    span: Option<Span>,
    origin: String,
}

fn resolve(
    p: &Pipeline,
    def: &StageDef,
    params: &IndexMap<String, Value>,
    overrides: &[&Override],
    cell: IndexMap<String, Value>,
    errs: &mut Errors,
) -> Option<Instance> {
    let scope = Scope {
        params,
        matrix: (!def.matrix.is_empty()).then_some(&cell),
    };
    let mut inst = Instance {
        stage: def.name.clone(),
        action: def.action.clone(),
        version: 0,
        cell: cell.clone(),
        params: Map::new(),
        inert: Vec::new(),
        externals: Vec::new(),
        needs: Vec::new(),
        variations: Vec::new(),
        static_id: String::new(),
        backend: def.backend,
        seed: 0,
        resources: def.resources.apply(match &def.action {
            Action::Uses(s) => s.resources(),
            Action::Run(_) => stages::Resources::data(),
        }),
    };
    let before = errs.list.len();
    // `STAGE.backend` in a variation or `--set` sets the stage's `backend:`.
    let mut param_overrides = Vec::with_capacity(overrides.len());
    for &o in overrides {
        if o.key != "backend" {
            param_overrides.push(o);
            continue;
        }
        match o.value.as_str() {
            Some("cpu") => inst.backend = Backend::Cpu,
            Some("cuda") => inst.backend = Backend::Cuda,
            _ => errs.add(
                o.span,
                format!(
                    "stage `{}`, {}: `backend` must be `cpu` or `cuda`, got {}",
                    def.name, o.origin, o.value
                ),
                "not a backend",
                None,
            ),
        }
    }
    let overrides = &param_overrides[..];
    let cell_label = if cell.is_empty() {
        String::new()
    } else {
        format!(" {}", &inst.label()[def.name.len()..])
    };
    match &def.action {
        Action::Run(command) => {
            let cmd = match scope.apply(&Value::String(command.clone())) {
                Ok(c) => c,
                Err(e) => {
                    errs.add(
                        def.run_span.or(def.name_span),
                        format!("stage `{}`, `run:`: {}", def.name, e.message),
                        "in this command",
                        Some(e.help),
                    );
                    return None;
                }
            };
            let mut paths = |list: &[crate::spec::Spanned<String>],
                             what: &str,
                             errs: &mut Errors|
             -> Vec<Value> {
                let mut out = Vec::new();
                for (i, entry) in list.iter().enumerate() {
                    match scope.apply(&Value::String(entry.value.clone())) {
                        Ok(Value::String(s)) => {
                            if what == "outs" {
                                if let Err(why) = check_out_path(&s) {
                                    errs.add(entry.span, format!("stage `{}`, `outs`: {s:?} {why}", def.name), "not inside the stage's folder", Some("outputs are written inside the stage's output folder ($PIPE_OUT): give a relative path without `..`".into()));
                                }
                            } else {
                                inst.externals.push(External {
                                    what: format!("deps[{i}]"),
                                    param: None,
                                    path: p.root.join(&s),
                                    hint: None,
                                });
                            }
                            out.push(Value::String(s));
                        }
                        Ok(other) => out.push(other),
                        Err(e) => errs.add(
                            entry.span,
                            format!("stage `{}`, `{what}`: {}", def.name, e.message),
                            "here",
                            Some(e.help),
                        ),
                    }
                }
                out
            };
            let deps = paths(&def.deps, "deps", errs);
            let outs = paths(&def.outs, "outs", errs);
            inst.params.insert("command".into(), cmd);
            inst.params.insert("deps".into(), Value::Array(deps));
            inst.params.insert("outs".into(), Value::Array(outs));
            inst.seed = seed_from(&inst.cell);
        }
        Action::Uses(stage) => {
            inst.version = stage.version();
            resolve_uses(
                p,
                def,
                *stage,
                &scope,
                overrides,
                &cell,
                &cell_label,
                &mut inst,
                errs,
            );
        }
    }
    (errs.list.len() == before).then_some(inst)
}

#[allow(clippy::too_many_arguments)]
fn resolve_uses(
    p: &Pipeline,
    def: &StageDef,
    stage: &dyn Stage,
    scope: &Scope,
    overrides: &[&Override],
    cell: &IndexMap<String, Value>,
    cell_label: &str,
    inst: &mut Instance,
    errs: &mut Errors,
) {
    let schema = stage.schema();
    let mut given: IndexMap<String, Given> = IndexMap::new();
    for (k, v) in &def.with {
        given.insert(
            k.clone(),
            Given {
                value: v.value.clone(),
                span: v.span,
                origin: "with".into(),
            },
        );
    }
    for o in overrides {
        given.insert(
            o.key.clone(),
            Given {
                value: o.value.clone(),
                span: o.span,
                origin: o.origin.clone(),
            },
        );
    }
    for (axis, value) in cell {
        if schema.specs.iter().any(|s| &s.name == axis) {
            if let Some(g) = given.get(axis) {
                if g.origin == "with" {
                    errs.add(
                        g.span,
                        format!(
                            "stage `{}`: `{axis}` is both a matrix axis and set in `with:`",
                            def.name
                        ),
                        "also a matrix axis",
                        Some("remove one of them".into()),
                    );
                    continue;
                }
            }
            given.insert(
                axis.clone(),
                Given {
                    value: value.clone(),
                    span: def.matrix.get(axis).and_then(|m| m.span),
                    origin: "matrix".into(),
                },
            );
        }
    }
    // Unknown names (with suggestions) and `${...}` interpolation are the engine's;
    // types, coercion and defaults are the stage library's one resolver.
    let mut values: Vec<(String, Value)> = Vec::new();
    for (k, g) in &given {
        if !schema.specs.iter().any(|s| &s.name == k) {
            if g.origin == "with" {
                let help = suggest(k, schema.specs.iter().map(|s| s.name.as_str()));
                let span = def.with_keys.get(k).copied().or(g.span);
                errs.add(
                    span,
                    format!(
                        "stage `{}` ({}) has no parameter `{k}`",
                        def.name,
                        stage.name()
                    ),
                    "unknown parameter",
                    Some(format!(
                        "{help} (`pipe stages {}` lists them)",
                        stage.name()
                    )),
                );
            }
            continue;
        }
        match scope.apply(&g.value) {
            Ok(v) => values.push((k.clone(), v)),
            Err(e) => {
                errs.add(
                    g.span,
                    format!("stage `{}`, parameter `{k}`: {}", def.name, e.message),
                    "here",
                    Some(e.help),
                );
            }
        }
    }
    let problems =
        match stages::params::resolve(&schema.specs, values.iter().map(|(k, v)| (k.as_str(), v))) {
            Ok(resolved) => {
                inst.inert = schema
                    .inert(&resolved)
                    .into_iter()
                    .map(String::from)
                    .collect();
                inst.params = resolved.0;
                Vec::new()
            }
            Err(problems) => problems,
        };
    for problem in problems {
        match problem {
            ParamProblem::Invalid { name, why } => {
                let g = &given[&name];
                let doc = schema
                    .specs
                    .iter()
                    .find(|s| s.name == name)
                    .map(|s| s.doc.clone());
                let via = if g.origin == "with" {
                    String::new()
                } else {
                    format!(" (from {})", g.origin)
                };
                errs.add(
                    g.span,
                    format!(
                        "stage `{}`{cell_label}, parameter `{name}`: {why}{via}",
                        def.name
                    ),
                    "wrong type",
                    Some(format!("`{name}`: {}", doc.unwrap_or_default())),
                );
            }
            // given, but its `${...}` could not be resolved: reported above
            ParamProblem::Missing { name } if given.contains_key(&name) => {}
            ParamProblem::Missing { name } => {
                let doc = schema
                    .specs
                    .iter()
                    .find(|s| s.name == name)
                    .map(|s| s.doc.clone());
                errs.add(
                    def.name_span,
                    format!(
                        "stage `{}` ({}) needs parameter `{name}`",
                        def.name,
                        stage.name(),
                    ),
                    "missing parameter",
                    Some(format!(
                        "add `with: {{ {name}: ... }}` — {}",
                        doc.unwrap_or_default()
                    )),
                );
            }
            // filtered out above
            ParamProblem::Unknown { .. } => {}
        }
    }
    for spec in schema.specs.iter().filter(|s| s.kind == ParamKind::Path) {
        if let Some(path) = inst.params.get(&spec.name).and_then(Value::as_str) {
            inst.externals.push(External {
                what: format!("param {}", spec.name),
                param: Some(spec.name.clone()),
                path: p.root.join(path),
                hint: Some(spec.if_missing.clone().unwrap_or_else(|| spec.doc.clone())),
            });
        }
    }
    inst.seed = match inst.params.get("seed").and_then(Value::as_i64) {
        Some(s) => s as u64,
        None => seed_from(cell),
    };
}

/// An instance's seed when it sets none: a digest of its matrix cell alone, so every
/// stage of one cell (say target × fold × repeat) gets the same seed. That pairs the
/// arms of a comparison: the EOG student trained alone (`train-student`) and the
/// distilled ones (`distill`) start from the same initialisation, see the same batch
/// order and draw the same dropout masks.
fn seed_from(cell: &IndexMap<String, Value>) -> u64 {
    let d = canonical::digest(&json!({"cell": Value::Object(cell.clone().into_iter().collect())}));
    u64::from_str_radix(&d[..16], 16).unwrap_or(0)
}

/// `outs` must stay inside the stage's folder.
fn check_out_path(s: &str) -> Result<(), &'static str> {
    let path = Path::new(s);
    if s.trim().is_empty() {
        return Err("is empty");
    }
    if path.is_absolute() {
        return Err("is an absolute path");
    }
    if path.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err("leaves the stage's folder (`..`)");
    }
    Ok(())
}
