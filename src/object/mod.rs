//! Kubernetes objects as JSON: the one module that knows where things sit in them.
//!
//! Every other module asks here rather than walking `serde_json::Value`s itself:
//!
//! | what | where |
//! |---|---|
//! | the workload kinds, their `apiVersion`s (old ones with their replacement), where each keeps its pods | [`kinds`] |
//! | the four pod lists an injection adds to, and a value per list | [`pod_lists`] |
//! | paths, `kind`, name, namespace ("the pod's, else the request's"), `Kind ns/name` | here |
//! | `List` flattening | [`flatten`] |
//! | removing a key without disturbing the others' order | [`remove_key`] |
//!
//! Objects are JSON as users write it and every input is untrusted: a missing field or a field
//! of the wrong type reads as absent, never a panic.

pub mod kinds;
pub mod pod_lists;

pub use kinds::{KINDS, Kind, PodsAt, Superseded};
pub use pod_lists::{PodList, PodLists};

use serde_json::{Map, Value};

/// The namespace of an object that names none, as `kubectl apply` without `-n` assumes.
pub const DEFAULT_NAMESPACE: &str = "default";

/// The value at a path of map keys; `None` when a key is missing or a step is not a map.
pub fn at<'v>(value: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(value, |value, key| value.get(key))
}

/// [`at`], for changing what is there.
pub fn at_mut<'v>(value: &'v mut Value, path: &[&str]) -> Option<&'v mut Value> {
    path.iter()
        .try_fold(value, |value, key| value.get_mut(*key))
}

/// The string at a path of map keys; `None` when absent or not a string.
pub fn str_at<'v>(value: &'v Value, path: &[&str]) -> Option<&'v str> {
    at(value, path)?.as_str()
}

/// The object's `kind`, if it is a string (it may be empty).
pub fn kind(object: &Value) -> Option<&str> {
    str_at(object, &["kind"])
}

/// The object's `metadata.name`, if it is a string (it may be empty).
pub fn name(object: &Value) -> Option<&str> {
    str_at(object, &["metadata", "name"])
}

/// The object's name for messages; a Pod created by a controller has only `generateName` at
/// admission, shown as `sleep-7f9c8d-*`. `None` when it has neither.
pub fn display_name(object: &Value) -> Option<String> {
    if let Some(name) = name(object).filter(|n| !n.is_empty()) {
        return Some(name.to_owned());
    }
    str_at(object, &["metadata", "generateName"])
        .filter(|n| !n.is_empty())
        .map(|prefix| format!("{prefix}*"))
}

/// [`display_name`], or `(unnamed)`.
pub fn display_name_or_unnamed(object: &Value) -> String {
    display_name(object).unwrap_or_else(|| "(unnamed)".to_owned())
}

/// The object's own `metadata.namespace`, when it names a non-empty one.
pub fn namespace(object: &Value) -> Option<&str> {
    str_at(object, &["metadata", "namespace"]).filter(|ns| !ns.is_empty())
}

/// The namespace a pod lives in: its own, else the one its request names (admission requests
/// carry it beside the object; pods created by controllers arrive without one).
pub fn pod_namespace<'a>(pod: &'a Value, request: Option<&'a str>) -> Option<&'a str> {
    namespace(pod).or(request)
}

/// The namespace an object of a manifest ends up in: its own, else [`DEFAULT_NAMESPACE`].
pub fn namespace_or_default(object: &Value) -> &str {
    namespace(object).unwrap_or(DEFAULT_NAMESPACE)
}

/// `Kind namespace/name`, or `Kind name` when the object names no namespace (a manifest applied
/// with `-n`), or just the kind when it has no name either; `default_kind` when it has no kind.
pub fn describe(object: &Value, default_kind: &str) -> String {
    let kind = kind(object)
        .filter(|kind| !kind.is_empty())
        .unwrap_or(default_kind);
    match (namespace(object), display_name(object)) {
        (Some(namespace), Some(name)) => format!("{kind} {namespace}/{name}"),
        (None, Some(name)) => format!("{kind} {name}"),
        (_, None) => kind.to_owned(),
    }
}

/// Flattens `List` documents into their items, keeping the List's index and the document order.
pub fn flatten(objects: &[(usize, Value)]) -> Vec<(usize, &Value)> {
    let mut out = Vec::new();
    // An explicit stack rather than recursion: a deeply nested List cannot overflow it.
    let mut stack: Vec<(usize, &Value)> = objects
        .iter()
        .rev()
        .map(|(index, object)| (*index, object))
        .collect();
    while let Some((index, object)) = stack.pop() {
        match (kind(object), object.get("items")) {
            (Some("List"), Some(Value::Array(items))) => {
                stack.extend(items.iter().rev().map(|item| (index, item)));
            }
            _ => out.push((index, object)),
        }
    }
    out
}

/// A JSON type name for configuration and pod-shape errors: `an object`, `a list`.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A value of the wrong type as requirement findings name it, with the value when it is short:
/// `a number (80)`, `a map`. Findings speak of the manifest as YAML (maps), and a port number
/// or flag in the message says which entry is meant.
pub fn type_and_value(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("a boolean ({b})"),
        Value::Number(n) => format!("a number ({n})"),
        Value::String(_) => "a string".to_owned(),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "a map".to_owned(),
    }
}

/// Removes `key`, keeping the other keys in their order.
///
/// With the `preserve_order` feature (kube-inject turns it on to rewrite manifests in their own
/// key order) a `serde_json::Map` is an `IndexMap`, whose plain `remove` moves the last key into
/// the hole. Without it (the policy module) a map is a `BTreeMap`, which has no order to keep.
pub fn remove_key(map: &mut Map<String, Value>, key: &str) -> Option<Value> {
    #[cfg(feature = "preserve_order")]
    {
        map.shift_remove(key)
    }
    #[cfg(not(feature = "preserve_order"))]
    {
        map.remove(key)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_pods_namespace_wins_over_the_requests() {
        let pod = json!({"metadata": {"namespace": "prod"}});
        assert_eq!(pod_namespace(&pod, Some("dev")), Some("prod"));
        let unnamed = json!({"metadata": {"namespace": ""}});
        assert_eq!(pod_namespace(&unnamed, Some("dev")), Some("dev"));
        assert_eq!(pod_namespace(&unnamed, None), None);
        assert_eq!(namespace_or_default(&unnamed), "default");
    }

    #[test]
    fn names_fall_back_to_generate_name() {
        let pod = json!({"kind": "Pod", "metadata": {"generateName": "sleep-", "namespace": "a"}});
        assert_eq!(describe(&pod, "pod template"), "Pod a/sleep-*");
        assert_eq!(describe(&json!({}), "pod template"), "pod template");
        assert_eq!(
            display_name_or_unnamed(&json!({"metadata": 1})),
            "(unnamed)"
        );
    }
}
