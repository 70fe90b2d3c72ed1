//! Which Services select a pod: Kubernetes' equality-based `spec.selector`, within a namespace.

use serde_json::Value;

use crate::object::{self, at, str_at};

/// The Services in `namespace` that select a pod with `pod_labels`, in the order given.
///
/// Kubernetes semantics: a Service selects a pod when its `spec.selector` (equality-based, a map
/// of label to value) is non-empty and every entry equals the pod's label. A Service without a
/// selector, with an empty one, or with one that is not a map selects nothing, and so does an
/// `ExternalName` Service. A selector or label value that is not a string matches nothing. A
/// Service without `metadata.namespace` is in `default`.
pub fn services_selecting<'s>(
    pod_labels: &Value,
    namespace: &str,
    services: &'s [Value],
) -> Vec<&'s Value> {
    select(pod_labels, namespace, services)
}

/// [`services_selecting`] over any collection of Services.
pub(super) fn select<'s>(
    pod_labels: &Value,
    namespace: &str,
    services: impl IntoIterator<Item = &'s Value>,
) -> Vec<&'s Value> {
    services
        .into_iter()
        .filter(|service| {
            object::namespace_or_default(service) == namespace && selects(service, pod_labels)
        })
        .collect()
}

fn selects(service: &Value, pod_labels: &Value) -> bool {
    if str_at(service, &["spec", "type"]) == Some("ExternalName") {
        return false;
    }
    let Some(Value::Object(selector)) = at(service, &["spec", "selector"]) else {
        return false;
    };
    !selector.is_empty()
        && selector.iter().all(|(key, wanted)| {
            wanted
                .as_str()
                .is_some_and(|wanted| pod_labels.get(key).and_then(Value::as_str) == Some(wanted))
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::test_support::*;
    use super::super::*;
    use crate::object;

    #[test]
    fn service_selects_pods_whose_labels_include_its_selector() {
        let services = [
            service("app", json!({"app": "sleep"})),
            service("app-and-version", json!({"app": "sleep", "version": "v1"})),
            service("other-app", json!({"app": "httpbin"})),
            service("more-labels", json!({"app": "sleep", "tier": "web"})),
        ];
        let labels = json!({"app": "sleep", "version": "v1"});
        let selected: Vec<_> = services_selecting(&labels, "default", &services)
            .into_iter()
            .filter_map(object::display_name)
            .collect();
        assert_eq!(selected, ["app", "app-and-version"]);
    }

    #[test]
    fn service_without_selector_selects_nothing() {
        let labels = json!({"app": "sleep"});
        let services = [
            json!({"kind": "Service", "metadata": {"name": "manual"}, "spec": {"ports": []}}),
            service("empty", json!({})),
            service("null", json!(null)),
        ];
        assert!(services_selecting(&labels, "default", &services).is_empty());
    }

    #[test]
    fn service_selects_only_in_its_namespace() {
        let labels = json!({"app": "sleep"});
        let mut elsewhere = service("sleep", json!({"app": "sleep"}));
        elsewhere["metadata"]["namespace"] = json!("prod");
        let mut unset = service("sleep", json!({"app": "sleep"}));
        unset["metadata"]
            .as_object_mut()
            .map(|m| m.remove("namespace"));
        let services = [elsewhere, unset];
        assert_eq!(services_selecting(&labels, "prod", &services).len(), 1);
        assert_eq!(services_selecting(&labels, "default", &services).len(), 1);
        assert!(services_selecting(&labels, "staging", &services).is_empty());
    }

    #[test]
    fn external_name_service_selects_nothing() {
        let mut external = service("ext", json!({"app": "sleep"}));
        external["spec"]["type"] = json!("ExternalName");
        let services = [external];
        assert!(services_selecting(&json!({"app": "sleep"}), "default", &services).is_empty());
    }

    #[test]
    fn malformed_selectors_and_labels_match_nothing() {
        // (selector, pod labels): none of these may select the pod.
        let cases = [
            (json!("app=sleep"), json!({"app": "sleep"})),
            (json!(["app", "sleep"]), json!({"app": "sleep"})),
            (json!({"app": 1}), json!({"app": 1})),
            (json!({"app": null}), json!({"app": null})),
            (json!({"app": true}), json!({"app": "true"})),
            (json!({"app": "sleep"}), json!({"app": ["sleep"]})),
            (json!({"app": "sleep"}), json!("app=sleep")),
            (json!({"app": "sleep"}), json!(null)),
            (json!({"app": "sleep"}), json!({"App": "sleep"})),
        ];
        for (selector, labels) in cases {
            let services = [service("sleep", selector.clone())];
            assert!(
                services_selecting(&labels, "default", &services).is_empty(),
                "selector {selector} labels {labels}"
            );
        }
    }
}
