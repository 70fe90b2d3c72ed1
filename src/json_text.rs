//! JSON text that is the same in every build: object keys in a fixed order, whatever the map.
//!
//! A `serde_json::Map` keeps insertion order in kube-inject (`preserve_order`) and sorts its keys
//! in the policy module, so `to_string` on a value from the pod would write one annotation or env
//! var two ways. The injector writes JSON into pods (`ISTIO_KUBE_APP_PROBERS`,
//! `proxy.istio.io/overrides`), and every face must write it byte for byte alike: golden files and
//! fixtures are shared.

use serde_json::Value;

/// `value` as compact JSON; each object's keys ordered by `rank` (lower first), then by name.
///
/// `rank` lets a writer follow a Go struct's field order for the keys it knows (Go writes struct
/// fields in declaration order and map keys sorted); `|_| 0` sorts every object's keys.
pub fn to_string(value: &Value, rank: fn(&str) -> usize) -> String {
    let mut out = String::new();
    write(&mut out, value, rank);
    out
}

fn write(out: &mut String, value: &Value, rank: fn(&str) -> usize) {
    match value {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(out, item, rank);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|(a, _), (b, _)| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write(out, item, rank);
            }
            out.push('}');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn keys_are_sorted_at_every_depth() {
        let value = json!({"b": [{"z": 1, "a": "x\"y"}], "a": null, "c": {"y": true, "x": 1.5}});
        assert_eq!(
            to_string(&value, |_| 0),
            r#"{"a":null,"b":[{"a":"x\"y","z":1}],"c":{"x":1.5,"y":true}}"#
        );
    }

    #[test]
    fn ranked_keys_come_first_in_rank_order() {
        let rank = |key: &str| match key {
            "path" => 0,
            "port" => 1,
            _ => 2,
        };
        let value = json!({"scheme": "HTTPS", "port": 80, "path": "/", "host": "h"});
        assert_eq!(
            to_string(&value, rank),
            r#"{"path":"/","port":80,"host":"h","scheme":"HTTPS"}"#
        );
    }

    #[test]
    fn the_text_parses_back_to_the_value() {
        let value = json!({"k": ["\u{1F600}", -3, 1e100, {"": {}}], "\n": "\u{0}"});
        let text = to_string(&value, |_| 0);
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), value);
    }
}
