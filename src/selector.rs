//! Kubernetes label selectors (`matchLabels` + `matchExpressions`) for the never/always-inject lists.
//!
//! Mirrors `metav1.LabelSelectorAsSelector` as Istio uses it, with one Istio rule on top: an empty
//! selector matches nothing here (in Kubernetes it matches everything), so an empty entry in
//! `alwaysInjectSelector` cannot inject every pod by accident.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::{Map, Value};

/// Checks the operators and values of a selector, naming the offending entry.
pub fn validate(selector: &LabelSelector) -> Result<(), String> {
    for (i, requirement) in selector.match_expressions.iter().flatten().enumerate() {
        let values = requirement.values.as_deref().unwrap_or_default();
        match requirement.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => {
                return Err(format!(
                    "matchExpressions[{i}]: operator {} needs at least one value",
                    requirement.operator
                ));
            }
            "Exists" | "DoesNotExist" if !values.is_empty() => {
                return Err(format!(
                    "matchExpressions[{i}]: operator {} takes no values",
                    requirement.operator
                ));
            }
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => {
                return Err(format!(
                    "matchExpressions[{i}]: operator must be In, NotIn, Exists or DoesNotExist, got {other:?}"
                ));
            }
        }
        if requirement.key.is_empty() {
            return Err(format!("matchExpressions[{i}]: key must not be empty"));
        }
    }
    Ok(())
}

/// Whether `selector` selects a pod with `labels` (a JSON object; non-string values never match).
pub fn matches(selector: &LabelSelector, labels: Option<&Map<String, Value>>) -> bool {
    let empty_labels = selector
        .match_labels
        .as_ref()
        .is_none_or(BTreeMap::is_empty);
    let empty_expressions = selector
        .match_expressions
        .as_ref()
        .is_none_or(Vec::is_empty);
    if empty_labels && empty_expressions {
        return false;
    }
    let label = |key: &str| labels.and_then(|l| l.get(key)).and_then(Value::as_str);
    let labels_match = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(key, value)| label(key) == Some(value.as_str()));
    let expressions_match = selector.match_expressions.iter().flatten().all(|req| {
        let values = req.values.as_deref().unwrap_or_default();
        let current = label(&req.key);
        match req.operator.as_str() {
            "In" => current.is_some_and(|v| values.iter().any(|x| x == v)),
            "NotIn" => current.is_none_or(|v| values.iter().all(|x| x != v)),
            "Exists" => current.is_some(),
            "DoesNotExist" => current.is_none(),
            _ => false,
        }
    });
    labels_match && expressions_match
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn selector(value: Value) -> LabelSelector {
        serde_json::from_value(value).unwrap()
    }

    fn labels(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn empty_selector_matches_nothing() {
        let l = labels(json!({"app": "sleep"}));
        assert!(!matches(&selector(json!({})), Some(&l)));
        assert!(!matches(&selector(json!({"matchLabels": {}})), Some(&l)));
    }

    #[test]
    fn match_labels_and_expressions_are_anded() {
        let s = selector(json!({
            "matchLabels": {"app": "sleep"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]
        }));
        assert!(matches(
            &s,
            Some(&labels(json!({"app": "sleep", "tier": "b"})))
        ));
        assert!(!matches(
            &s,
            Some(&labels(json!({"app": "sleep", "tier": "c"})))
        ));
        assert!(!matches(&s, Some(&labels(json!({"tier": "a"})))));
    }

    #[test]
    fn operators_follow_kubernetes() {
        let l = labels(json!({"a": "1"}));
        let case = |op: &str, key: &str, values: Value| {
            matches(
                &selector(
                    json!({"matchExpressions": [{"key": key, "operator": op, "values": values}]}),
                ),
                Some(&l),
            )
        };
        assert!(case("Exists", "a", json!(null)));
        assert!(!case("Exists", "b", json!(null)));
        assert!(case("DoesNotExist", "b", json!(null)));
        assert!(case("NotIn", "b", json!(["1"])));
        assert!(!case("NotIn", "a", json!(["1"])));
        assert!(case("In", "a", json!(["0", "1"])));
    }

    #[test]
    fn malformed_selectors_are_refused_with_the_entry() {
        let bad = selector(json!({"matchExpressions": [{"key": "a", "operator": "Equals"}]}));
        assert!(validate(&bad).unwrap_err().contains("matchExpressions[0]"));
        let no_values = selector(json!({"matchExpressions": [{"key": "a", "operator": "In"}]}));
        assert!(validate(&no_values).is_err());
        let extra = selector(
            json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}),
        );
        assert!(validate(&extra).is_err());
    }
}
