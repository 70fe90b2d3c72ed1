//! Canned answers for the context-aware host calls (`kubewarden/kubernetes/*`), and the record
//! of the calls a module made.
//!
//! policy-server answers `get_resource`, `list_resources_by_namespace`, `list_resources_all` and
//! `can_i` from a cluster (kube-rs reflectors). Tests answer them from [`KubernetesFixtures`]
//! instead: a list of entries, each an operation, a *request pattern* and either a JSON
//! `response` or an `error` string. The first entry whose operation matches and whose request
//! pattern is contained in the actual request ([`json_contains`]) answers; a call no entry
//! answers fails with an error naming the call, so a missing fixture is loud.
//!
//! `kubernetes.json` holds the same list:
//!
//! ```json
//! [
//!   {"operation": "get_resource",
//!    "request": {"api_version": "v1", "kind": "ConfigMap", "name": "istio", "namespace": "istio-system"},
//!    "response": {"apiVersion": "v1", "kind": "ConfigMap", "data": {"mesh": "..."}}},
//!   {"operation": "get_resource",
//!    "request": {"kind": "ConfigMap", "name": "missing"},
//!    "error": "not found"}
//! ]
//! ```
//!
//! `namespace` may be given too (`oci`, `net`, `crypto`); it defaults to `kubernetes`.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One canned answer: when a call to `namespace`/`operation` carries a request that contains
/// `request`, answer with `response` or fail with `error`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    /// waPC namespace of the call; `kubernetes` unless told.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Operation, e.g. `get_resource`.
    pub operation: String,
    /// Pattern the request must contain; `{}` (the default) matches any request.
    #[serde(default = "empty_object")]
    pub request: Value,
    /// JSON the host answers with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<Value>,
    /// Error the host answers with instead, e.g. `not found` or
    /// `Policy has not been granted access to Kubernetes v1/ConfigMap resources. The violation has been reported.`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn default_namespace() -> String {
    "kubernetes".to_owned()
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

/// The canned answers a policy gets for its host calls; cheap to clone.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KubernetesFixtures {
    entries: Arc<Vec<Fixture>>,
}

impl KubernetesFixtures {
    /// No answers: every Kubernetes call fails with "no fixture answers …".
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads the list format documented on this module (`kubernetes.json`).
    pub fn from_json(value: &Value) -> anyhow::Result<Self> {
        let entries: Vec<Fixture> = serde_json::from_value(value.clone()).context(
            "kubernetes fixtures must be a list of {operation, request, response|error}",
        )?;
        for (index, entry) in entries.iter().enumerate() {
            if entry.response.is_some() == entry.error.is_some() {
                anyhow::bail!(
                    "kubernetes fixture {index} ({}) needs exactly one of `response` and `error`",
                    entry.operation
                );
            }
        }
        Ok(Self {
            entries: Arc::new(entries),
        })
    }

    /// Reads a `kubernetes.json` file.
    pub fn load(path: impl AsRef<Path>) -> anyhow::Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let value: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        Self::from_json(&value).with_context(|| format!("in {}", path.display()))
    }

    /// Adds an entry answering `kubernetes`/`operation` calls whose request contains `request`.
    pub fn respond(self, operation: &str, request: Value, response: Value) -> Self {
        self.push(operation, request, Some(response), None)
    }

    /// Adds an entry failing `kubernetes`/`operation` calls whose request contains `request`.
    pub fn fail(self, operation: &str, request: Value, error: &str) -> Self {
        self.push(operation, request, None, Some(error.to_owned()))
    }

    fn push(
        mut self,
        operation: &str,
        request: Value,
        response: Option<Value>,
        error: Option<String>,
    ) -> Self {
        Arc::make_mut(&mut self.entries).push(Fixture {
            namespace: default_namespace(),
            operation: operation.to_owned(),
            request,
            response,
            error,
        });
        self
    }

    /// The answer to one call, or `None` when no entry matches.
    pub fn answer(
        &self,
        namespace: &str,
        operation: &str,
        request: &Value,
    ) -> Option<Result<Vec<u8>, String>> {
        let entry = self.entries.iter().find(|entry| {
            entry.namespace == namespace
                && entry.operation == operation
                && json_contains(request, &entry.request)
        })?;
        Some(match (&entry.response, &entry.error) {
            (_, Some(error)) => Err(error.clone()),
            (Some(response), None) => Ok(response.to_string().into_bytes()),
            (None, None) => Ok(Vec::new()),
        })
    }
}

/// One host call the module made (except `kubewarden/tracing/log`, which is kept as a log line).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostCall {
    /// Always `kubewarden` for a well-behaved policy.
    pub binding: String,
    /// `kubernetes`, `oci`, `net`, `crypto`, …
    pub namespace: String,
    /// E.g. `get_resource`.
    pub operation: String,
    /// The request payload as JSON (a JSON string holding the raw text if it was not JSON).
    pub request: Value,
}

impl HostCall {
    /// Whether this call fits `expected`, a pattern over the call's JSON form
    /// (`{"operation": "get_resource", "request": {"name": "istio"}}`); absent keys match anything.
    pub fn matches(&self, expected: &Value) -> bool {
        let actual = serde_json::json!({
            "binding": self.binding,
            "namespace": self.namespace,
            "operation": self.operation,
            "request": self.request,
        });
        json_contains(&actual, expected)
    }
}

/// Whether `actual` contains `pattern`: every key of a pattern object must be in `actual` with
/// a containing value (a `null` pattern also matches a missing key); arrays must have the same
/// length and contain element-wise; anything else must be equal.
pub fn json_contains(actual: &Value, pattern: &Value) -> bool {
    match (actual, pattern) {
        (Value::Object(actual), Value::Object(pattern)) => {
            pattern.iter().all(|(key, want)| match actual.get(key) {
                Some(have) => json_contains(have, want),
                None => want.is_null(),
            })
        }
        (Value::Array(actual), Value::Array(pattern)) => {
            actual.len() == pattern.len()
                && actual
                    .iter()
                    .zip(pattern)
                    .all(|(have, want)| json_contains(have, want))
        }
        _ => actual == pattern,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pattern_keys_must_all_be_contained() {
        let actual =
            json!({"api_version": "v1", "kind": "ConfigMap", "name": "a", "field_masks": null});
        assert!(json_contains(&actual, &json!({"kind": "ConfigMap"})));
        assert!(json_contains(
            &actual,
            &json!({"field_masks": null, "label_selector": null})
        ));
        assert!(!json_contains(&actual, &json!({"kind": "Secret"})));
        assert!(!json_contains(&actual, &json!({"namespace": "x"})));
        assert!(!json_contains(&json!([1, 2]), &json!([1])));
    }

    #[test]
    fn first_matching_entry_answers() {
        let fixtures = KubernetesFixtures::new()
            .fail("get_resource", json!({"name": "missing"}), "not found")
            .respond("get_resource", json!({}), json!({"kind": "ConfigMap"}));
        let missing = fixtures.answer("kubernetes", "get_resource", &json!({"name": "missing"}));
        assert_eq!(missing, Some(Err("not found".to_owned())));
        let found = fixtures.answer("kubernetes", "get_resource", &json!({"name": "there"}));
        assert_eq!(found, Some(Ok(br#"{"kind":"ConfigMap"}"#.to_vec())));
        assert_eq!(
            fixtures.answer("kubernetes", "list_resources_all", &json!({})),
            None
        );
    }

    #[test]
    fn fixture_file_entries_need_one_answer() {
        let both = json!([{"operation": "get_resource", "response": {}, "error": "x"}]);
        assert!(KubernetesFixtures::from_json(&both).is_err());
        let neither = json!([{"operation": "get_resource"}]);
        assert!(KubernetesFixtures::from_json(&neither).is_err());
        let one = json!([{"operation": "can_i", "response": {"allowed": true}}]);
        assert!(KubernetesFixtures::from_json(&one).is_ok());
    }
}
