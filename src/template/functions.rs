//! The template functions, registered under Istio's names (`pkg/kube/inject/template.go`
//! `InjectionFuncmap`), each a small pure function.
//!
//! upon passes a filter's piped value as the first argument, so Istio's `annotation .ObjectMeta
//! "key" "default"` is written `ObjectMeta | annotation: "key", "default"`, and Istio's
//! `contains needle haystack` is `haystack | contains: needle`.
//!
//! # Differences from Istio
//! - `toYaml` returns maps and lists as they are: the renderer inserts them as YAML structure, so
//!   `indent` is only needed (and only acts) on text.
//! - `quote` turns a value into a string scalar; every interpolated string is already rendered as
//!   a string, whatever its content, so `quote` is never needed for safety.

use std::collections::BTreeMap;

use upon::{Engine, Value};

use crate::duration::GoDuration;

/// Registers every function on `engine`.
pub fn register(engine: &mut Engine<'_>) {
    engine.add_function("annotation", annotation);
    engine.add_function("label", label);
    engine.add_function("valueOrDefault", value_or_default);
    engine.add_function("default", value_or_default);
    engine.add_function("isset", isset);
    engine.add_function("formatDuration", format_duration);
    engine.add_function("toJson", to_json);
    engine.add_function("toJSON", to_json);
    engine.add_function("toYaml", to_yaml);
    engine.add_function("indent", indent);
    engine.add_function("includeInboundPorts", include_inbound_ports);
    engine.add_function("excludeInboundPort", exclude_inbound_port);
    engine.add_function("toLower", |s: &str| s.to_lowercase());
    engine.add_function("toUpper", |s: &str| s.to_uppercase());
    engine.add_function("contains", contains);
    engine.add_function("join", join);
    engine.add_function("eq", |a: &Value, b: &Value| a == b);
    engine.add_function("ne", |a: &Value, b: &Value| a != b);
    engine.add_function("or", or);
    engine.add_function("quote", quote);
    engine.add_function("toInt", to_int);
}

/// The integer a value is or spells (`"15021"` → 15021): for Kubernetes fields that take a
/// number or a name (a probe's `port`), where an annotation's text would be read as a name.
fn to_int(value: &Value) -> Result<i64, String> {
    match value {
        Value::Integer(n) => Ok(*n),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("toInt expects an integer, got {s:?}")),
        other => Err(format!(
            "toInt expects an integer, got {}",
            other_kind(other)
        )),
    }
}

/// `meta.annotations[name]`, or `default` when the pod has no such annotation.
pub(super) fn annotation(meta: &Value, name: &str, default: Value) -> Value {
    map_entry(meta, "annotations", name).unwrap_or(default)
}

/// `meta.labels[name]`, or `default` when the pod has no such label.
fn label(meta: &Value, name: &str, default: Value) -> Value {
    map_entry(meta, "labels", name).unwrap_or(default)
}

fn map_entry(meta: &Value, map: &str, key: &str) -> Option<Value> {
    match meta {
        Value::Map(m) => match m.get(map) {
            Some(Value::Map(entries)) => entries.get(key).cloned(),
            _ => None,
        },
        _ => None,
    }
}

/// `default` when `value` is missing or the empty string, else `value`.
pub(super) fn value_or_default(value: &Value, default: Value) -> Value {
    match value {
        Value::None => default,
        Value::String(s) if s.is_empty() => default,
        other => other.clone(),
    }
}

/// Whether `map` has `key`, even with an empty value.
pub(super) fn isset(map: &Value, key: &str) -> bool {
    matches!(map, Value::Map(m) if m.contains_key(key))
}

/// A protobuf duration (`"60s"`) as Go prints it (`"1m0s"`).
pub(super) fn format_duration(value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => GoDuration::parse(s)
            .map(|d| d.to_string())
            .map_err(|e| e.to_string()),
        Value::Integer(secs) if *secs >= 0 => {
            Ok(GoDuration::from_secs(secs.unsigned_abs()).to_string())
        }
        other => Err(format!(
            "formatDuration expects a duration string, got {}",
            other_kind(other)
        )),
    }
}

/// The value as compact JSON text (`{}` for a missing value, as Istio's `toJSON` of a nil map).
pub(super) fn to_json(value: &Value) -> String {
    if matches!(value, Value::None) {
        return "{}".to_string();
    }
    serde_json::to_string(&to_json_value(value)).unwrap_or_else(|_| "{}".to_string())
}

/// Maps and lists stay structure; scalars become their YAML text.
pub(super) fn to_yaml(value: &Value) -> Value {
    match value {
        Value::Map(_) | Value::List(_) => value.clone(),
        Value::None => Value::String(String::new()),
        other => {
            let text = serde_yaml::to_string(&to_json_value(other)).unwrap_or_default();
            Value::String(text.trim_end_matches('\n').to_string())
        }
    }
}

/// Istio's `indent`: every line but the first gets `n` more spaces (maps and lists pass through).
pub(super) fn indent(value: &Value, n: i64) -> Value {
    match value {
        Value::String(s) => {
            let pad = " ".repeat(usize::try_from(n).unwrap_or(0).min(1024));
            Value::String(s.replace('\n', &format!("\n{pad}")))
        }
        other => other.clone(),
    }
}

/// Comma-joined `containerPort`s of all containers, skipping UDP and SCTP ports.
pub(super) fn include_inbound_ports(containers: &Value) -> String {
    let Value::List(containers) = containers else {
        return String::new();
    };
    let mut ports = Vec::new();
    for container in containers {
        let Value::Map(container) = container else {
            continue;
        };
        let Some(Value::List(list)) = container.get("ports") else {
            continue;
        };
        for port in list {
            let Value::Map(port) = port else { continue };
            let protocol = match port.get("protocol") {
                Some(Value::String(p)) => p.as_str(),
                _ => "TCP",
            };
            if protocol == "UDP" || protocol == "SCTP" {
                continue;
            }
            match port.get("containerPort") {
                Some(Value::Integer(n)) => ports.push(n.to_string()),
                Some(Value::String(s)) => ports.push(s.clone()),
                _ => {}
            }
        }
    }
    ports.join(",")
}

/// Istio's `excludeInboundPort port csv`: adds `port` to the list unless it is there, empty or 0.
pub(super) fn exclude_inbound_port(port: &Value, csv: &str) -> String {
    let port = match port {
        Value::Integer(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        _ => String::new(),
    };
    if port.is_empty() || port == "0" {
        return csv.to_string();
    }
    let mut items: Vec<&str> = csv
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if !items.contains(&port.as_str()) {
        items.push(&port);
    }
    items.join(",")
}

/// Substring for text, membership for lists, key for maps.
fn contains(haystack: &Value, needle: &Value) -> bool {
    match (haystack, needle) {
        (Value::String(h), Value::String(n)) => h.contains(n.as_str()),
        (Value::List(items), n) => items.contains(n),
        (Value::Map(m), Value::String(k)) => m.contains_key(k),
        _ => false,
    }
}

/// The items' text joined by `sep`.
fn join(list: &[Value], sep: &str) -> Result<String, String> {
    let mut parts = Vec::with_capacity(list.len());
    for item in list {
        parts.push(scalar_text(item).ok_or_else(|| {
            format!("join expects a list of scalars, found {}", other_kind(item))
        })?);
    }
    Ok(parts.join(sep))
}

/// The first truthy argument (upon's truthiness), else the second.
fn or(a: &Value, b: &Value) -> Value {
    if truthy(a) { a.clone() } else { b.clone() }
}

/// The value as a string scalar.
fn quote(value: &Value) -> Result<String, String> {
    scalar_text(value).ok_or_else(|| format!("quote expects a scalar, got {}", other_kind(value)))
}

pub(super) fn truthy(value: &Value) -> bool {
    match value {
        Value::None => false,
        Value::Bool(b) => *b,
        Value::Integer(n) => *n != 0,
        Value::Float(f) => *f != 0.0,
        Value::String(s) => !s.is_empty(),
        Value::List(l) => !l.is_empty(),
        Value::Map(m) => !m.is_empty(),
    }
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::None => Some(String::new()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Integer(n) => Some(n.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::String(s) => Some(s.clone()),
        Value::List(_) | Value::Map(_) => None,
    }
}

pub(super) fn other_kind(value: &Value) -> &'static str {
    match value {
        Value::None => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::String(_) => "a string",
        Value::List(_) => "a list",
        Value::Map(_) => "a map",
    }
}

/// upon value → JSON value (non-finite floats become null, as JSON has no such numbers).
pub(crate) fn to_json_value(value: &Value) -> serde_json::Value {
    match value {
        Value::None => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Integer(n) => serde_json::Value::from(*n),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::List(items) => serde_json::Value::Array(items.iter().map(to_json_value).collect()),
        Value::Map(m) => serde_json::Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), to_json_value(v)))
                .collect(),
        ),
    }
}

/// JSON value → upon value; integers beyond i64 become floats.
pub(crate) fn from_json_value(value: &serde_json::Value) -> Value {
    match value {
        serde_json::Value::Null => Value::None,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(items) => Value::List(items.iter().map(from_json_value).collect()),
        serde_json::Value::Object(m) => Value::Map(
            m.iter()
                .map(|(k, v)| (k.clone(), from_json_value(v)))
                .collect::<BTreeMap<_, _>>(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Value {
        from_json_value(&serde_json::json!({
            "annotations": {"sidecar.istio.io/proxyImage": "custom:1"},
            "labels": {"app": "sleep"}
        }))
    }

    #[test]
    fn annotation_reads_keys_with_dots_and_slashes() {
        assert_eq!(
            annotation(&meta(), "sidecar.istio.io/proxyImage", Value::from("d")),
            Value::from("custom:1")
        );
        assert_eq!(
            annotation(&meta(), "missing", Value::from("d")),
            Value::from("d")
        );
        assert_eq!(
            annotation(&Value::None, "missing", Value::from("d")),
            Value::from("d")
        );
        assert_eq!(
            label(&meta(), "app", Value::from("d")),
            Value::from("sleep")
        );
    }

    #[test]
    fn value_or_default_replaces_missing_and_empty() {
        assert_eq!(
            value_or_default(&Value::None, Value::from("d")),
            Value::from("d")
        );
        assert_eq!(
            value_or_default(&Value::from(""), Value::from("d")),
            Value::from("d")
        );
        assert_eq!(
            value_or_default(&Value::from("x"), Value::from("d")),
            Value::from("x")
        );
    }

    #[test]
    fn isset_is_true_for_empty_values() {
        let m = upon::value! { a: "" };
        assert!(isset(&m, "a"));
        assert!(!isset(&m, "b"));
        assert!(!isset(&Value::None, "a"));
    }

    #[test]
    fn format_duration_prints_go_style() {
        assert_eq!(format_duration(&Value::from("60s")).unwrap(), "1m0s");
        assert_eq!(format_duration(&Value::from("2s")).unwrap(), "2s");
        assert!(format_duration(&Value::from("soon")).is_err());
    }

    #[test]
    fn to_json_and_to_yaml() {
        assert_eq!(to_json(&upon::value! { a: 1 }), r#"{"a":1}"#);
        assert_eq!(to_json(&Value::None), "{}");
        assert_eq!(to_yaml(&Value::from("x")), Value::from("x"));
        let m = upon::value! { a: 1 };
        assert_eq!(to_yaml(&m), m);
    }

    #[test]
    fn indent_skips_the_first_line() {
        assert_eq!(indent(&Value::from("a\nb"), 2), Value::from("a\n  b"));
    }

    #[test]
    fn inbound_ports_skip_udp_and_sctp() {
        let containers = upon::value! { list: [
            { ports: [ { containerPort: 80 }, { containerPort: 53, protocol: "UDP" } ] },
            { ports: [ { containerPort: 9090, protocol: "TCP" }, { containerPort: 7, protocol: "SCTP" } ] },
            { name: "no-ports" }
        ] };
        let Value::Map(m) = containers else {
            unreachable!()
        };
        assert_eq!(include_inbound_ports(&m["list"]), "80,9090");
        assert_eq!(include_inbound_ports(&Value::None), "");
    }

    #[test]
    fn exclude_inbound_port_appends_once() {
        assert_eq!(
            exclude_inbound_port(&Value::Integer(15020), "15090"),
            "15090,15020"
        );
        assert_eq!(
            exclude_inbound_port(&Value::Integer(15090), "15090"),
            "15090"
        );
        assert_eq!(exclude_inbound_port(&Value::Integer(0), "1"), "1");
        assert_eq!(exclude_inbound_port(&Value::from(""), ""), "");
    }

    #[test]
    fn contains_join_or_quote_eq() {
        assert!(contains(&Value::from("abc"), &Value::from("b")));
        assert!(contains(&upon::value! { a: 1 }, &Value::from("a")));
        assert_eq!(
            join(&[Value::from("a"), Value::Integer(1)], ",").unwrap(),
            "a,1"
        );
        assert!(join(&[upon::value! { a: 1 }], ",").is_err());
        assert_eq!(or(&Value::from(""), &Value::from("b")), Value::from("b"));
        assert_eq!(to_int(&Value::from("15021")), Ok(15021));
        assert_eq!(to_int(&Value::Integer(7)), Ok(7));
        assert!(to_int(&Value::from("http")).is_err());
        assert_eq!(quote(&Value::Integer(15000)).unwrap(), "15000");
    }
}
