//! `${params.NAME}` and `${matrix.AXIS}` in values, commands and matrix entries.
//!
//! A string that is exactly one reference takes the referenced value with its type
//! (`k: "${params.folds}"` is the number 10); inside longer strings references are
//! replaced by their text. `$${` writes a literal `${`.

use indexmap::IndexMap;
use serde_json::Value;

use super::diagnostic::suggest;

/// What references can name.
pub(crate) struct Scope<'a> {
    pub params: &'a IndexMap<String, Value>,
    pub matrix: Option<&'a IndexMap<String, Value>>,
}

/// An unresolvable reference: message and hint.
#[derive(Debug)]
pub(crate) struct RefError {
    pub message: String,
    pub help: String,
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Scope<'_> {
    fn lookup(&self, reference: &str) -> Result<Value, RefError> {
        let (ns, name) = reference
            .trim()
            .split_once('.')
            .unwrap_or(("", reference.trim()));
        let table = match ns {
            "params" => Some(self.params),
            "matrix" => self.matrix,
            _ => {
                return Err(RefError {
                    message: format!("`${{{reference}}}` is not a reference this file can use"),
                    help: "write `${params.NAME}` or, inside a matrix stage, `${matrix.AXIS}`"
                        .into(),
                })
            }
        };
        let Some(table) = table else {
            return Err(RefError {
                message: format!("`${{{reference}}}`: this stage has no `matrix:`"),
                help: "`${matrix.AXIS}` is available only in stages with a matrix".into(),
            });
        };
        table.get(name).cloned().ok_or_else(|| RefError {
            message: format!(
                "`${{{reference}}}` names no {}",
                if ns == "params" {
                    "parameter"
                } else {
                    "matrix axis"
                }
            ),
            help: suggest(name, table.keys().map(String::as_str)),
        })
    }

    /// Resolve every reference in `v`.
    pub(crate) fn apply(&self, v: &Value) -> Result<Value, RefError> {
        match v {
            Value::String(s) => self.apply_str(s),
            Value::Array(items) => items
                .iter()
                .map(|i| self.apply(i))
                .collect::<Result<_, _>>()
                .map(Value::Array),
            Value::Object(m) => m
                .iter()
                .map(|(k, i)| Ok((k.clone(), self.apply(i)?)))
                .collect::<Result<_, _>>()
                .map(Value::Object),
            other => Ok(other.clone()),
        }
    }

    fn apply_str(&self, s: &str) -> Result<Value, RefError> {
        if !s.contains("${") {
            return Ok(Value::String(s.to_string()));
        }
        let t = s.trim();
        if t.starts_with("${")
            && t.ends_with('}')
            && t[2..].find('}') == Some(t.len() - 3)
            && !s.contains("$${")
        {
            return self.lookup(&t[2..t.len() - 1]);
        }
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(i) = rest.find("${") {
            if i > 0 && rest.as_bytes()[i - 1] == b'$' {
                out.push_str(&rest[..i - 1]);
                out.push_str("${");
                rest = &rest[i + 2..];
                continue;
            }
            out.push_str(&rest[..i]);
            let after = &rest[i + 2..];
            let Some(end) = after.find('}') else {
                return Err(RefError {
                    message: format!("unclosed `${{` in {s:?}"),
                    help: "close it with `}` or write `$${` for a literal `${`".into(),
                });
            };
            out.push_str(&text_of(&self.lookup(&after[..end])?));
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(Value::String(out))
    }
}

/// Values of a matrix axis: a list, or `range(N)` / `range(A, B)`.
pub(crate) fn axis_values(v: &Value) -> Result<Vec<Value>, String> {
    match v {
        Value::Array(items) if items.is_empty() => {
            Err("a matrix axis needs at least one value".into())
        }
        Value::Array(items) => {
            for i in items {
                if i.is_array() || i.is_object() || i.is_null() {
                    return Err("matrix values must be plain strings, numbers or bools".into());
                }
            }
            Ok(items.clone())
        }
        Value::String(s) => {
            let t = s.trim();
            let inner = t
                .strip_prefix("range(")
                .and_then(|r| r.strip_suffix(')'))
                .ok_or_else(|| format!("matrix axis {s:?} is neither a list nor `range(N)`"))?;
            let nums: Vec<i64> = inner
                .split(',')
                .map(|p| p.trim().parse::<i64>())
                .collect::<Result<_, _>>()
                .map_err(|_| {
                    format!("`{t}`: range takes integers, as in `range(10)` or `range(2, 5)`")
                })?;
            let (a, b) = match nums.as_slice() {
                [n] => (0, *n),
                [a, b] => (*a, *b),
                _ => return Err(format!("`{t}`: range takes one or two integers")),
            };
            if b <= a {
                return Err(format!("`{t}` is empty"));
            }
            if b - a > 1_000_000 {
                return Err(format!("`{t}` has more than a million values"));
            }
            Ok((a..b).map(Value::from).collect())
        }
        Value::Number(_) | Value::Bool(_) => Ok(vec![v.clone()]),
        _ => Err("a matrix axis must be a list or `range(N)`".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scope_params() -> IndexMap<String, Value> {
        let mut p = IndexMap::new();
        p.insert("folds".into(), json!(10));
        p.insert("name".into(), json!("deap"));
        p
    }

    #[test]
    fn whole_reference_keeps_type_and_partial_becomes_text() {
        let p = scope_params();
        let s = Scope {
            params: &p,
            matrix: None,
        };
        assert_eq!(s.apply(&json!("${params.folds}")).unwrap(), json!(10));
        assert_eq!(
            s.apply(&json!("k=${params.folds}/${params.name}")).unwrap(),
            json!("k=10/deap")
        );
        assert_eq!(
            s.apply(&json!("cost $${HOME}")).unwrap(),
            json!("cost ${HOME}")
        );
        assert!(s
            .apply(&json!("${params.fold}"))
            .unwrap_err()
            .help
            .contains("folds"));
        assert!(s.apply(&json!("${matrix.x}")).is_err());
        assert!(s.apply(&json!("${params.folds")).is_err());
    }

    #[test]
    fn ranges_and_lists() {
        assert_eq!(
            axis_values(&json!("range(3)")).unwrap(),
            vec![json!(0), json!(1), json!(2)]
        );
        assert_eq!(
            axis_values(&json!("range(2, 4)")).unwrap(),
            vec![json!(2), json!(3)]
        );
        assert!(axis_values(&json!("range(0)")).is_err());
        assert!(axis_values(&json!("range(x)")).is_err());
        assert!(axis_values(&json!([])).is_err());
        assert_eq!(axis_values(&json!(["a", "b"])).unwrap().len(), 2);
    }
}
