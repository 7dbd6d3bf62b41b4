//! Canonical JSON: objects with sorted keys, no whitespace. The cache key and the
//! instance identity hash this encoding, never YAML text, so key order, comments and
//! formatting in a pipeline file change nothing.

use serde_json::Value;

/// Append the canonical encoding of `v` to `out`.
pub(crate) fn encode(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                encode(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                encode(item, out);
            }
            out.push(']');
        }
        Value::Number(n) => {
            // 1.0 and 1 are the same parameter value
            match n.as_f64() {
                Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e15 => {
                    out.push_str(&(f as i64).to_string())
                }
                _ => out.push_str(&n.to_string()),
            }
        }
        other => out.push_str(&other.to_string()),
    }
}

pub(crate) fn to_string(v: &Value) -> String {
    let mut s = String::new();
    encode(v, &mut s);
    s
}

/// blake3 of the canonical encoding, as hex.
pub(crate) fn digest(v: &Value) -> String {
    blake3::hash(to_string(v).as_bytes()).to_hex().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_does_not_matter_and_values_do() {
        let a = json!({"b": 1, "a": [1, {"y": 2.0, "x": "s"}]});
        let b = json!({"a": [1, {"x": "s", "y": 2}], "b": 1});
        assert_eq!(to_string(&a), to_string(&b));
        assert_eq!(to_string(&a), r#"{"a":[1,{"x":"s","y":2}],"b":1}"#);
        assert_ne!(
            digest(&a),
            digest(&json!({"b": 2, "a": [1, {"y": 2.0, "x": "s"}]}))
        );
    }
}
