//! Stage parameters, declared once.
//!
//! A stage declares its parameters as a struct with [`stage_params!`](crate::stage_params):
//! each field's type, default and doc, and when it is inert. From that one
//! declaration come the schema the engine validates `with:` against and `pipe stages`
//! prints ([`ParamSet::specs`]), the typed reader a stage calls
//! (`let p: DistillParams = ctx.params()?`), and the parameters left out of the cache
//! key ([`ParamSet::inert`]). [`resolve`] turns given values into [`Params`]: the
//! engine, the stage tests and the examples all call it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::stage::StageError;

/// The type of a parameter value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "type", content = "of")]
pub enum ParamKind {
    Int,
    Float,
    Bool,
    Str,
    /// One of a fixed set of strings.
    Choice(Vec<String>),
    /// A list of strings (e.g. channel names).
    StrList,
    /// A file or folder read from outside the cache. The engine hashes its content
    /// (with a stat cache) into the cache key, and passes the absolute path.
    Path,
}

impl ParamKind {
    pub fn choice(options: &[&str]) -> Self {
        ParamKind::Choice(options.iter().map(|s| s.to_string()).collect())
    }

    /// Human-readable type name (`int`, `float`, `one of a|b`...).
    pub fn describe(&self) -> String {
        match self {
            ParamKind::Int => "int".into(),
            ParamKind::Float => "float".into(),
            ParamKind::Bool => "bool".into(),
            ParamKind::Str => "string".into(),
            ParamKind::Choice(o) => format!("one of {}", o.join("|")),
            ParamKind::StrList => "list of strings".into(),
            ParamKind::Path => "path".into(),
        }
    }

    /// Check and normalise a value: ints given where floats are expected become
    /// floats, numeric strings (from `${...}` interpolation or `--set`) become numbers.
    pub fn coerce(&self, v: &Value) -> Result<Value, String> {
        let wrong = || format!("expected {}, found {}", self.describe(), show_value(v));
        match self {
            ParamKind::Int => match v {
                Value::Number(n) if n.is_i64() || n.is_u64() => Ok(v.clone()),
                Value::Number(n) => match n.as_f64() {
                    Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Value::from(f as i64)),
                    _ => Err(wrong()),
                },
                Value::String(s) => s
                    .trim()
                    .parse::<i64>()
                    .map(Value::from)
                    .map_err(|_| wrong()),
                _ => Err(wrong()),
            },
            ParamKind::Float => match v {
                Value::Number(n) => n
                    .as_f64()
                    .filter(|f| f.is_finite())
                    .map(Value::from)
                    .ok_or_else(wrong),
                Value::String(s) => s
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .map(Value::from)
                    .ok_or_else(wrong),
                _ => Err(wrong()),
            },
            ParamKind::Bool => match v {
                Value::Bool(_) => Ok(v.clone()),
                Value::String(s) if s == "true" || s == "false" => Ok(Value::Bool(s == "true")),
                _ => Err(wrong()),
            },
            ParamKind::Str | ParamKind::Path => match v {
                Value::String(_) => Ok(v.clone()),
                Value::Number(n) => Ok(Value::String(n.to_string())),
                _ => Err(wrong()),
            },
            ParamKind::Choice(options) => match v {
                Value::String(s) if options.iter().any(|o| o == s) => Ok(v.clone()),
                _ => Err(wrong()),
            },
            ParamKind::StrList => match v {
                Value::Array(items) => items
                    .iter()
                    .map(|i| match i {
                        Value::String(_) => Ok(i.clone()),
                        Value::Number(n) => Ok(Value::String(n.to_string())),
                        _ => Err(wrong()),
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Value::Array),
                Value::String(s) => Ok(Value::Array(
                    s.split(',')
                        .map(|p| Value::String(p.trim().to_string()))
                        .filter(|p| p.as_str() != Some(""))
                        .collect(),
                )),
                _ => Err(wrong()),
            },
        }
    }
}

fn show_value(v: &Value) -> String {
    match v {
        Value::Null => "nothing (null)".into(),
        Value::Bool(b) => format!("bool {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

/// One declared parameter.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ParamSpec {
    pub name: String,
    pub kind: ParamKind,
    /// `None`: required. `Some(Value::Null)`: optional, null (not set) unless given.
    pub default: Option<Value>,
    pub doc: String,
    /// For a `path` parameter: what to tell a user whose path does not exist (what
    /// to download, where to put it). The engine shows it instead of `doc`.
    pub if_missing: Option<String>,
}

impl ParamSpec {
    /// A parameter of Rust type `T` with a default (`None` for an `Option` = optional);
    /// `doc` lines are joined with spaces.
    pub fn typed<T: ParamValue>(name: &str, default: T, doc: &[&str]) -> Self {
        ParamSpec {
            name: name.into(),
            kind: T::kind(),
            default: Some(default.to_value()),
            doc: doc
                .iter()
                .map(|l| l.trim())
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" "),
            if_missing: None,
        }
    }
    /// Sets [`ParamSpec::if_missing`].
    pub fn if_missing(mut self, hint: &str) -> Self {
        self.if_missing = Some(hint.into());
        self
    }
}

/// Why given parameter values do not fit a schema.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamProblem {
    /// No parameter of this name.
    Unknown { name: String },
    /// The value does not have the declared type.
    Invalid { name: String, why: String },
    /// A parameter without default was not given.
    Missing { name: String },
}

impl std::fmt::Display for ParamProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParamProblem::Unknown { name } => write!(f, "no parameter `{name}`"),
            ParamProblem::Invalid { name, why } => write!(f, "parameter `{name}`: {why}"),
            ParamProblem::Missing { name } => write!(f, "parameter `{name}` is needed"),
        }
    }
}

/// The one parameter resolver: `given` values (in the order given) checked against
/// `specs` and coerced to their kinds ([`ParamKind::coerce`]), defaults filled in for
/// the rest. Null is a value only for an optional parameter (default null: not set).
/// Every problem is reported, not just the first.
pub fn resolve<'a>(
    specs: &[ParamSpec],
    given: impl IntoIterator<Item = (&'a str, &'a Value)>,
) -> Result<Params, Vec<ParamProblem>> {
    let mut problems = Vec::new();
    let mut values: Map<String, Value> = Map::new();
    for (name, value) in given {
        let Some(spec) = specs.iter().find(|s| s.name == name) else {
            problems.push(ParamProblem::Unknown { name: name.into() });
            continue;
        };
        // null only where it means "not set": an optional parameter
        let value = if value.is_null() && spec.default == Some(Value::Null) {
            Ok(Value::Null)
        } else {
            spec.kind.coerce(value)
        };
        match value {
            Ok(v) => {
                values.insert(name.into(), v);
            }
            Err(why) => {
                problems.push(ParamProblem::Invalid {
                    name: name.into(),
                    why,
                });
                values.insert(name.into(), Value::Null);
            }
        }
    }
    let mut params = Map::new();
    for spec in specs {
        match values.remove(&spec.name).or_else(|| spec.default.clone()) {
            Some(v) => {
                params.insert(spec.name.clone(), v);
            }
            None => problems.push(ParamProblem::Missing {
                name: spec.name.clone(),
            }),
        }
    }
    if problems.is_empty() {
        Ok(Params(params))
    } else {
        Err(problems)
    }
}

/// Resolved, type-checked parameters (every declared parameter present), as the
/// engine hands them to a stage and puts them into the cache key.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(transparent)]
pub struct Params(pub Map<String, Value>);

impl Params {
    /// `stage`'s parameters resolved from `overrides` (a JSON object, or null for the
    /// defaults) by [`resolve`], exactly as the engine resolves them: for running a
    /// stage outside a pipeline (examples, benches, tests).
    pub fn resolve(stage: &dyn crate::Stage, overrides: &Value) -> Result<Params, String> {
        let empty = Map::new();
        let given = match overrides {
            Value::Object(o) => o,
            Value::Null => &empty,
            other => return Err(format!("overrides must be an object, got {other}")),
        };
        resolve(
            &stage.schema().specs,
            given.iter().map(|(k, v)| (k.as_str(), v)),
        )
        .map_err(|problems| {
            let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
            format!("{}: {}", stage.name(), problems.join("; "))
        })
    }

    /// The value of `name` as a `T`.
    pub fn get<T: ParamValue>(&self, name: &str) -> Result<T, StageError> {
        let v = self
            .0
            .get(name)
            .ok_or_else(|| StageError::Param(format!("parameter `{name}` is missing")))?;
        T::from_value(v).map_err(|why| StageError::Param(format!("parameter `{name}`: {why}")))
    }
}

/// A Rust type a parameter can have: its [`ParamKind`] and its conversions from and
/// to the JSON value the engine resolves (and hashes).
pub trait ParamValue: Sized {
    fn kind() -> ParamKind;
    fn to_value(&self) -> Value;
    /// From a value already coerced to [`ParamValue::kind`].
    fn from_value(v: &Value) -> Result<Self, String>;
}

impl ParamValue for i64 {
    fn kind() -> ParamKind {
        ParamKind::Int
    }
    fn to_value(&self) -> Value {
        Value::from(*self)
    }
    fn from_value(v: &Value) -> Result<Self, String> {
        v.as_i64()
            .ok_or_else(|| format!("expected an integer, found {}", show_value(v)))
    }
}

/// Non-negative integers of every width.
macro_rules! unsigned_param {
    ($($t:ty),*) => {$(
        impl ParamValue for $t {
            fn kind() -> ParamKind {
                ParamKind::Int
            }
            fn to_value(&self) -> Value {
                Value::from(*self)
            }
            fn from_value(v: &Value) -> Result<Self, String> {
                let i = i64::from_value(v)?;
                <$t>::try_from(i).map_err(|_| {
                    if i < 0 {
                        format!("must be >= 0, got {i}")
                    } else {
                        format!("{i} is too large")
                    }
                })
            }
        }
    )*};
}
unsigned_param!(usize, u64, u32, u16);

impl ParamValue for f64 {
    fn kind() -> ParamKind {
        ParamKind::Float
    }
    fn to_value(&self) -> Value {
        Value::from(*self)
    }
    fn from_value(v: &Value) -> Result<Self, String> {
        v.as_f64()
            .ok_or_else(|| format!("expected a number, found {}", show_value(v)))
    }
}

impl ParamValue for bool {
    fn kind() -> ParamKind {
        ParamKind::Bool
    }
    fn to_value(&self) -> Value {
        Value::from(*self)
    }
    fn from_value(v: &Value) -> Result<Self, String> {
        v.as_bool()
            .ok_or_else(|| format!("expected a bool, found {}", show_value(v)))
    }
}

impl ParamValue for String {
    fn kind() -> ParamKind {
        ParamKind::Str
    }
    fn to_value(&self) -> Value {
        Value::from(self.as_str())
    }
    fn from_value(v: &Value) -> Result<Self, String> {
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("expected a string, found {}", show_value(v)))
    }
}

/// A file or folder outside the cache (kind `path`: the engine hashes its content).
impl ParamValue for PathBuf {
    fn kind() -> ParamKind {
        ParamKind::Path
    }
    fn to_value(&self) -> Value {
        Value::from(self.to_string_lossy().as_ref())
    }
    fn from_value(v: &Value) -> Result<Self, String> {
        String::from_value(v).map(PathBuf::from)
    }
}

impl ParamValue for Vec<String> {
    fn kind() -> ParamKind {
        ParamKind::StrList
    }
    fn to_value(&self) -> Value {
        Value::from(self.clone())
    }
    fn from_value(v: &Value) -> Result<Self, String> {
        let not = || format!("expected a list of strings, found {}", show_value(v));
        v.as_array()
            .ok_or_else(not)?
            .iter()
            .map(|i| i.as_str().map(str::to_string).ok_or_else(not))
            .collect()
    }
}

/// An optional parameter: `None` (null) unless given.
impl<T: ParamValue> ParamValue for Option<T> {
    fn kind() -> ParamKind {
        T::kind()
    }
    fn to_value(&self) -> Value {
        self.as_ref().map_or(Value::Null, T::to_value)
    }
    fn from_value(v: &Value) -> Result<Self, String> {
        if v.is_null() {
            Ok(None)
        } else {
            T::from_value(v).map(Some)
        }
    }
}

/// A set of parameters declared with [`stage_params!`](crate::stage_params).
pub trait ParamSet: Sized {
    /// The declared parameters, in declaration order.
    fn specs() -> Vec<ParamSpec>;
    /// The typed values from resolved parameters.
    fn read(p: &Params) -> Result<Self, StageError>;
    /// The parameters that cannot change the outputs given these values.
    fn inert(&self) -> Vec<&'static str>;
    /// Every parameter at its declared default.
    fn defaults() -> Self {
        let none: [(&str, &Value); 0] = [];
        resolve(&Self::specs(), none)
            .map_err(|e| format!("{e:?}"))
            .and_then(|p| Self::read(&p).map_err(|e| e.to_string()))
            .unwrap_or_else(|e| panic!("the declared defaults do not resolve: {e}"))
    }
}

/// What the engine needs of a stage's parameters: the declared specs and, given the
/// resolved values, the inert ones (left out of the cache key).
pub struct ParamSchema {
    pub specs: Vec<ParamSpec>,
    inert: fn(&Params) -> Vec<&'static str>,
}

impl ParamSchema {
    /// The schema of the parameter set `P`.
    pub fn of<P: ParamSet>() -> ParamSchema {
        ParamSchema {
            specs: P::specs(),
            inert: |p| P::read(p).map(|t| t.inert()).unwrap_or_default(),
        }
    }
    /// The parameters that cannot change the outputs, given all resolved values.
    pub fn inert(&self, p: &Params) -> Vec<&'static str> {
        (self.inert)(p)
    }
}

/// No parameters.
impl ParamSet for () {
    fn specs() -> Vec<ParamSpec> {
        Vec::new()
    }
    fn read(_: &Params) -> Result<Self, StageError> {
        Ok(())
    }
    fn inert(&self) -> Vec<&'static str> {
        Vec::new()
    }
}

/// Declares a stage's parameters once: a struct whose fields are the parameters,
/// plus its [`ParamSet`] impl (schema, typed reader, inert set).
///
/// ```ignore
/// stage_params! {
///     /// What `distill` takes.
///     pub struct DistillParams {
///         ..fit: FitConfig,               // every parameter of another set
///         /// e1: weight of CE(y, p_S)
///         ce: f64 = 1.0;
///         /// k: a feedback step every k student steps
///         feedback_every: usize = 1, inert_when |p: &Self| p.feedback == Feedback::None;
///         /// the data folder
///         path: Option<PathBuf> = None, if_missing "download it from …";
///     }
/// }
/// ```
/// A field's doc comment is its documentation in `pipe stages`; `inert_when` takes a
/// closure over the whole set saying when the field cannot change the outputs. An
/// optional `check <closure>;` after the struct validates the values on every read.
#[macro_export]
macro_rules! stage_params {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $( ..$group:ident: $gty:ty, )*
            $(
                $(#[doc = $doc:literal])+
                $field:ident: $fty:ty = $default:expr
                $(, inert_when $inert:expr)?
                $(, if_missing $hint:expr)?
                ;
            )*
        }
        $(check $check:expr;)?
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        $vis struct $name {
            $( pub $group: $gty, )*
            $( $(#[doc = $doc])+ pub $field: $fty, )*
        }

        impl $crate::params::ParamSet for $name {
            fn specs() -> Vec<$crate::params::ParamSpec> {
                let mut specs: Vec<$crate::params::ParamSpec> = Vec::new();
                $( specs.extend(<$gty as $crate::params::ParamSet>::specs()); )*
                specs.extend([
                    $(
                        $crate::params::ParamSpec::typed::<$fty>(
                            stringify!($field),
                            $default,
                            &[$($doc),+],
                        )
                        $(.if_missing($hint))?
                    ),*
                ]);
                specs
            }
            fn read(
                #[allow(unused_variables)] p: &$crate::params::Params,
            ) -> Result<Self, $crate::stage::StageError> {
                let values = $name {
                    $( $group: <$gty as $crate::params::ParamSet>::read(p)?, )*
                    $( $field: p.get::<$fty>(stringify!($field))?, )*
                };
                $(
                    let check: fn(&Self) -> Result<(), $crate::stage::StageError> = $check;
                    check(&values)?;
                )?
                Ok(values)
            }
            fn inert(&self) -> Vec<&'static str> {
                #[allow(unused_mut)]
                let mut inert: Vec<&'static str> = Vec::new();
                $( inert.extend($crate::params::ParamSet::inert(&self.$group)); )*
                $( $(
                    let when: fn(&Self) -> bool = $inert;
                    if when(self) {
                        inert.push(stringify!($field));
                    }
                )? )*
                inert
            }
        }
    };
}

/// Makes an enum a parameter of kind `one of …`: its variants and their names in
/// the pipeline file, in the order `pipe stages` lists them. Also gives the enum
/// `NAMES`, `name()` and `from_name()`.
#[macro_export]
macro_rules! choice_param {
    ($ty:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        // as visible as the enum
        #[allow(unreachable_pub)]
        impl $ty {
            /// Every value's name, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($text),+];
            /// The name a pipeline file uses.
            pub fn name(self) -> &'static str {
                match self {
                    $( $ty::$variant => $text, )+
                }
            }
            /// The value named `s`.
            pub fn from_name(s: &str) -> Option<Self> {
                match s {
                    $( $text => Some($ty::$variant), )+
                    _ => None,
                }
            }
        }
        impl $crate::params::ParamValue for $ty {
            fn kind() -> $crate::params::ParamKind {
                $crate::params::ParamKind::choice(Self::NAMES)
            }
            fn to_value(&self) -> serde_json::Value {
                serde_json::Value::from(self.name())
            }
            fn from_value(v: &serde_json::Value) -> Result<Self, String> {
                v.as_str().and_then(Self::from_name).ok_or_else(|| {
                    format!("expected one of {}, found {v}", Self::NAMES.join("|"))
                })
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Colour {
        Red,
        Blue,
    }
    crate::choice_param!(Colour { Red => "red", Blue => "blue" });

    crate::stage_params! {
        /// A group another set includes.
        struct Inner {
            /// a count
            count: usize = 3;
        }
    }

    crate::stage_params! {
        /// A set with every kind of field.
        struct Example {
            ..inner: Inner,
            /// the colour
            colour: Colour = Colour::Red;
            /// a rate,
            /// on two lines
            rate: f64 = 0.5, inert_when |p: &Self| p.colour == Colour::Blue;
            /// an optional file
            file: Option<PathBuf> = None, if_missing "get it";
            /// names
            names: Vec<String> = vec!["a".to_string()];
        }
        check |e| {
            if e.rate < 0.0 {
                return Err(StageError::Param("rate must be >= 0".into()));
            }
            Ok(())
        };
    }

    fn resolved(given: Value) -> Result<Params, Vec<ParamProblem>> {
        let given = given.as_object().unwrap().clone();
        resolve(
            &Example::specs(),
            given.iter().map(|(k, v)| (k.as_str(), v)),
        )
    }

    #[test]
    fn one_declaration_gives_the_schema_in_order_with_kinds_defaults_and_docs() {
        let specs = Example::specs();
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["count", "colour", "rate", "file", "names"]);
        assert_eq!(specs[0].kind, ParamKind::Int);
        assert_eq!(specs[1].kind, ParamKind::choice(&["red", "blue"]));
        assert_eq!(specs[1].default, Some(json!("red")));
        assert_eq!(specs[2].doc, "a rate, on two lines");
        assert_eq!(specs[3].kind, ParamKind::Path);
        assert_eq!(specs[3].default, Some(Value::Null));
        assert_eq!(specs[3].if_missing.as_deref(), Some("get it"));
        assert_eq!(specs[4].default, Some(json!(["a"])));
    }

    #[test]
    fn the_resolver_coerces_fills_defaults_and_the_reader_types() {
        let p =
            resolved(json!({"count": "7", "colour": "blue", "rate": 2, "file": "x.dat"})).unwrap();
        // coerced: "7" → 7, 2 → 2.0; defaults filled
        assert_eq!(
            Value::Object(p.0.clone()),
            json!({"count": 7, "colour": "blue", "rate": 2.0, "file": "x.dat", "names": ["a"]})
        );
        let e = Example::read(&p).unwrap();
        assert_eq!(e.inner.count, 7);
        assert_eq!(e.colour, Colour::Blue);
        assert_eq!(e.file, Some(PathBuf::from("x.dat")));
        assert_eq!(Example::defaults().inner, Inner { count: 3 });
    }

    #[test]
    fn every_problem_is_reported_by_name() {
        let problems = resolved(json!({"colour": "green", "cnt": 1, "count": -1})).unwrap_err();
        assert!(problems.contains(&ParamProblem::Unknown { name: "cnt".into() }));
        assert!(
            matches!(&problems[0], ParamProblem::Invalid { name, why } if name == "colour" && why.contains("red|blue"))
        );
        // -1 is an int: the resolver takes it, the typed reader refuses it
        let p = resolved(json!({"count": -1})).unwrap();
        let err = Example::read(&p).unwrap_err().to_string();
        assert_eq!(err, "parameter `count`: must be >= 0, got -1");
        let required = [ParamSpec {
            default: None,
            ..ParamSpec::typed("n", 0i64, &["n"])
        }];
        let none: [(&str, &Value); 0] = [];
        assert_eq!(
            resolve(&required, none).unwrap_err(),
            [ParamProblem::Missing { name: "n".into() }]
        );
        // null means "not set" for an optional parameter only
        assert!(resolved(json!({"file": null})).is_ok());
        let problems = resolved(json!({"count": null})).unwrap_err();
        assert!(
            matches!(&problems[0], ParamProblem::Invalid { name, why } if name == "count" && why.contains("nothing (null)")),
            "{problems:?}"
        );
    }

    #[test]
    fn the_check_runs_on_every_read_and_inert_follows_the_values() {
        let p = resolved(json!({"rate": -1.0})).unwrap();
        assert_eq!(
            Example::read(&p).unwrap_err().to_string(),
            "rate must be >= 0"
        );
        let schema = ParamSchema::of::<Example>();
        assert!(schema.inert(&resolved(json!({})).unwrap()).is_empty());
        assert_eq!(
            schema.inert(&resolved(json!({"colour": "blue"})).unwrap()),
            ["rate"]
        );
    }

    #[test]
    fn every_built_in_stage_resolves_its_defaults_and_refuses_unknown_names() {
        for stage in crate::registry::all() {
            let p = Params::resolve(stage, &Value::Null)
                .unwrap_or_else(|e| panic!("{}: {e}", stage.name()));
            assert_eq!(p.0.len(), stage.schema().specs.len(), "{}", stage.name());
            let err = Params::resolve(stage, &json!({"no_such_parameter": 1})).unwrap_err();
            assert!(err.contains("no parameter `no_such_parameter`"), "{err}");
        }
    }
}
