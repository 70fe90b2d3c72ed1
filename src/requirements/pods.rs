//! The seed's pod requirements on a Pod, a Deployment or any workload's pod template: *service
//! association* (exactly one Service selects the pod) and the *app label* of Deployments.

use serde_json::Value;

use super::services::select;
use super::{Finding, Requirement};
use crate::object::kinds::SPEC_TEMPLATE;
use crate::object::{self, at, str_at, type_and_value};

/// Checks the seed's pod requirements on a Pod or a pod template (`{metadata, spec}`).
///
/// - *Service association*, when `services` is given: exactly one of them must select the pod
///   (see [`services_selecting`]); none or several is a finding. The pod's namespace is
///   `metadata.namespace`, or `default` when absent; the API server sets it on every Pod it sends
///   to admission. With `None` (the caller cannot list Services) the check is skipped.
/// - *App label*, for a Pod created by a Deployment, which is one owned by a ReplicaSet
///   (`metadata.ownerReferences`) and carrying a `pod-template-hash` label. The fix names the
///   Deployment, since a label added to the Pod itself would be lost on the next rollout.
pub fn check_pod(pod: &Value, services: Option<&[Value]>) -> Vec<Finding> {
    let services: Option<Vec<&Value>> = services.map(|s| s.iter().collect());
    pod_findings(pod, services.as_deref())
}

pub(super) fn pod_findings(pod: &Value, services: Option<&[&Value]>) -> Vec<Finding> {
    let owner = deployment_of(pod);
    let hint = owner
        .as_deref()
        .filter(|deployment| !deployment.is_empty())
        .map_or_else(|| name_hint(pod), str::to_owned);
    let template = Template {
        template: pod,
        object: object::describe(pod, "pod template"),
        prefix: String::new(),
        namespace: object::namespace_or_default(pod),
        hint,
    };
    let app_rule = owner.map_or(AppRule::Skip, AppRule::OwnedBy);
    template.check(services, &app_rule)
}

/// Checks a Deployment: the seed's *app label* requirement on `spec.template.metadata.labels.app`
/// (missing, empty or not a string is a finding whose fix suggests the Deployment's name), then
/// the pod checks of [`check_pod`] on its pod template, in the Deployment's namespace.
pub fn check_deployment(deployment: &Value, services: Option<&[Value]>) -> Vec<Finding> {
    let services: Option<Vec<&Value>> = services.map(|s| s.iter().collect());
    workload_template(deployment, "Deployment", SPEC_TEMPLATE)
        .check(services.as_deref(), &AppRule::Template)
}

/// Whether and how the seed's app label rule applies to a pod template.
pub(super) enum AppRule {
    /// Not a Deployment's pods.
    Skip,
    /// The template of a Deployment: fix the label right there.
    Template,
    /// A Pod created by the named Deployment: fix the label in the Deployment.
    OwnedBy(String),
}

/// A pod template in context: the object it belongs to, where it sits, its namespace.
pub(super) struct Template<'v> {
    /// `{metadata, spec}`: a Pod or the template inside a workload.
    template: &'v Value,
    /// The object findings name: the Pod or the workload.
    object: String,
    /// The template's path inside the object, ending in `.` (empty for a Pod).
    prefix: String,
    namespace: &'v str,
    /// An `app` value to suggest: the Deployment's or the object's name.
    hint: String,
}

static NULL: Value = Value::Null;

/// The pod template of a workload of `kind`, which keeps it at `path`.
pub(super) fn workload_template<'v>(
    workload: &'v Value,
    kind: &str,
    path: &[&str],
) -> Template<'v> {
    Template {
        template: at(workload, path).unwrap_or(&NULL),
        object: object::describe(workload, kind),
        prefix: format!("{}.", path.join(".")),
        namespace: object::namespace_or_default(workload),
        hint: name_hint(workload),
    }
}

impl Template<'_> {
    pub(super) fn check(&self, services: Option<&[&Value]>, app_rule: &AppRule) -> Vec<Finding> {
        let mut findings = Vec::new();
        if !matches!(app_rule, AppRule::Skip) {
            findings.extend(self.check_app_label(app_rule));
        }
        if let Some(services) = services {
            findings.extend(self.check_association(services));
        }
        findings
    }

    fn labels(&self) -> &Value {
        at(self.template, &["metadata", "labels"]).unwrap_or(&NULL)
    }

    fn check_association(&self, services: &[&Value]) -> Option<Finding> {
        let labels = self.labels();
        let selecting = select(labels, self.namespace, services.iter().copied());
        let namespace = self.namespace;
        let field = format!("{}metadata.labels", self.prefix);
        let (message, fix) = match selecting.as_slice() {
            [_] => return None,
            [] => {
                let shown = string_labels(labels);
                if shown.is_empty() {
                    (
                        format!(
                            "{field} is empty, so no Service can select this pod; a pod in the \
                             mesh must belong to exactly one Service"
                        ),
                        format!(
                            "add a label, e.g. app: {}, and a Service in namespace {namespace} \
                             whose spec.selector matches it",
                            self.hint
                        ),
                    )
                } else {
                    let (key, value) = shown
                        .iter()
                        .find(|(key, _)| *key == "app")
                        .or_else(|| shown.first())
                        .copied()
                        .unwrap_or(("app", self.hint.as_str()));
                    (
                        format!(
                            "no Service in namespace {namespace} selects this pod (labels {}); a \
                             pod in the mesh must belong to exactly one Service",
                            join_labels(&shown)
                        ),
                        format!(
                            "create a Service in namespace {namespace} whose spec.selector \
                             matches these labels, e.g. selector: {{{key}: {value}}}"
                        ),
                    )
                }
            }
            several => (
                format!(
                    "{} Services in namespace {namespace} select this pod ({}); a pod in the mesh \
                     must belong to a single Service",
                    several.len(),
                    several
                        .iter()
                        .map(|s| object::display_name_or_unnamed(s))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                format!(
                    "change {field} or the Services' selectors so that exactly one Service \
                     selects this pod"
                ),
            ),
        };
        Some(Finding {
            object: self.object.clone(),
            field,
            requirement: Requirement::ServiceAssociation,
            message,
            fix,
        })
    }

    fn check_app_label(&self, app_rule: &AppRule) -> Option<Finding> {
        let field = format!("{}metadata.labels.app", self.prefix);
        let problem = match self.labels().get("app") {
            None | Some(Value::Null) => "is missing".to_owned(),
            Some(Value::String(app)) if app.trim().is_empty() => "is empty".to_owned(),
            Some(Value::String(_)) => return None,
            Some(other) => format!("is {}, not a string", type_and_value(other)),
        };
        let place = match app_rule {
            AppRule::OwnedBy(deployment) if !deployment.is_empty() => {
                format!(" to the pod template of Deployment {deployment}")
            }
            AppRule::OwnedBy(_) => " to the pod template of its Deployment".to_owned(),
            AppRule::Skip | AppRule::Template => String::new(),
        };
        Some(Finding {
            object: self.object.clone(),
            field: field.clone(),
            requirement: Requirement::AppLabel,
            message: format!(
                "{field} {problem} (Istio uses the app label as context in distributed tracing)"
            ),
            fix: format!("add a distinct app label{place}, e.g. app: {}", self.hint),
        })
    }
}

/// The Deployment that created a Pod: the Pod is owned by a ReplicaSet and carries the
/// `pod-template-hash` label that a Deployment's ReplicaSets add. The ReplicaSet is named
/// `<deployment>-<hash>`, which gives the Deployment's name back (empty if the owner has none).
fn deployment_of(pod: &Value) -> Option<String> {
    let hash = str_at(pod, &["metadata", "labels", "pod-template-hash"])?;
    let owners = at(pod, &["metadata", "ownerReferences"])?.as_array()?;
    let replica_set = owners
        .iter()
        .find(|owner| str_at(owner, &["kind"]) == Some("ReplicaSet"))?;
    let name = str_at(replica_set, &["name"]).unwrap_or_default();
    let deployment = name
        .strip_suffix(hash)
        .and_then(|rest| rest.strip_suffix('-'))
        .filter(|rest| !rest.is_empty())
        .unwrap_or(name);
    Some(deployment.to_owned())
}

/// A value for `app` to suggest: the object's name, else its `generateName` without the trailing
/// dash, else a placeholder.
fn name_hint(object: &Value) -> String {
    str_at(object, &["metadata", "name"])
        .or_else(|| str_at(object, &["metadata", "generateName"]))
        .map(|name| name.trim_end_matches('-'))
        .filter(|name| !name.is_empty())
        .unwrap_or("my-app")
        .to_owned()
}

/// The labels with string values, in their order; others can never match a selector.
fn string_labels(labels: &Value) -> Vec<(&str, &str)> {
    labels
        .as_object()
        .map(|labels| {
            labels
                .iter()
                .filter_map(|(key, value)| Some((key.as_str(), value.as_str()?)))
                .collect()
        })
        .unwrap_or_default()
}

fn join_labels(labels: &[(&str, &str)]) -> String {
    labels
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::test_support::*;
    use super::super::*;
    use super::deployment_of;

    #[test]
    fn pod_selected_by_one_service_has_no_findings() {
        let pod = json!({
            "kind": "Pod",
            "metadata": {"name": "sleep", "namespace": "default", "labels": {"app": "sleep"}}
        });
        let services = [service("sleep", json!({"app": "sleep"}))];
        assert!(check_pod(&pod, Some(&services)).is_empty());
    }

    #[test]
    fn pod_selected_by_two_services_is_reported() {
        let pod = json!({
            "kind": "Pod",
            "metadata": {"name": "sleep-abc", "namespace": "default", "labels": {"app": "sleep"}}
        });
        let services = [
            service("sleep", json!({"app": "sleep"})),
            service("sleep-admin", json!({"app": "sleep"})),
        ];
        let findings = check_pod(&pod, Some(&services));
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].requirement, Requirement::ServiceAssociation);
        assert_eq!(findings[0].field, "metadata.labels");
        assert_eq!(
            findings[0].to_string(),
            "Pod default/sleep-abc: 2 Services in namespace default select this pod (sleep, \
             sleep-admin); a pod in the mesh must belong to a single Service; change \
             metadata.labels or the Services' selectors so that exactly one Service selects this \
             pod"
        );
    }

    #[test]
    fn pod_selected_by_no_service_is_reported() {
        let pod = json!({
            "kind": "Pod",
            "metadata": {"name": "sleep-abc", "namespace": "default",
                         "labels": {"app": "sleep", "version": "v1"}}
        });
        let services = [service("httpbin", json!({"app": "httpbin"}))];
        let findings = check_pod(&pod, Some(&services));
        assert_eq!(findings.len(), 1);
        assert_eq!(
            findings[0].to_string(),
            "Pod default/sleep-abc: no Service in namespace default selects this pod (labels \
             app=sleep, version=v1); a pod in the mesh must belong to exactly one Service; create \
             a Service in namespace default whose spec.selector matches these labels, e.g. \
             selector: {app: sleep}"
        );
    }

    #[test]
    fn pod_without_labels_cannot_be_selected() {
        for labels in [
            json!(null),
            json!({}),
            json!({"app": 3}),
            json!("app=sleep"),
        ] {
            let pod = json!({"kind": "Pod", "metadata": {"name": "sleep", "labels": labels}});
            let findings = check_pod(&pod, Some(&[]));
            assert_eq!(findings.len(), 1, "{labels}");
            assert_eq!(
                findings[0].to_string(),
                "Pod sleep: metadata.labels is empty, so no Service can select this pod; a pod in \
                 the mesh must belong to exactly one Service; add a label, e.g. app: sleep, and a \
                 Service in namespace default whose spec.selector matches it",
                "{labels}"
            );
        }
    }

    #[test]
    fn pod_without_known_services_skips_association() {
        let pod = json!({"kind": "Pod", "metadata": {"name": "sleep"}});
        assert!(check_pod(&pod, None).is_empty());
    }

    #[test]
    fn pod_template_is_named_as_such() {
        let template = json!({"metadata": {"labels": {"app": "sleep"}}, "spec": {}});
        let findings = check_pod(&template, Some(&[]));
        assert_eq!(findings[0].object, "pod template");
    }

    #[test]
    fn pod_from_deployment_without_app_label_is_reported() {
        let pod = deployment_pod(json!({"pod-template-hash": "7f9c8d", "run": "sleep"}));
        let findings = check_pod(&pod, None);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].requirement, Requirement::AppLabel);
        assert_eq!(
            findings[0].to_string(),
            "Pod default/sleep-7f9c8d-*: metadata.labels.app is missing (Istio uses the app label \
             as context in distributed tracing); add a distinct app label to the pod template of \
             Deployment sleep, e.g. app: sleep"
        );
    }

    #[test]
    fn pod_from_deployment_with_app_label_passes() {
        let pod = deployment_pod(json!({"pod-template-hash": "7f9c8d", "app": "sleep"}));
        let services = [service("sleep", json!({"app": "sleep"}))];
        assert!(check_pod(&pod, Some(&services)).is_empty());
    }

    #[test]
    fn app_label_rule_needs_both_replica_set_owner_and_template_hash() {
        let mut no_hash = deployment_pod(json!({"run": "sleep"}));
        let mut other_owner = deployment_pod(json!({"pod-template-hash": "7f9c8d"}));
        other_owner["metadata"]["ownerReferences"][0]["kind"] = json!("StatefulSet");
        let mut owners_not_a_list = deployment_pod(json!({"pod-template-hash": "7f9c8d"}));
        owners_not_a_list["metadata"]["ownerReferences"] = json!({"kind": "ReplicaSet"});
        let mut hash_not_a_string = deployment_pod(json!({"pod-template-hash": 7}));
        hash_not_a_string["metadata"]["name"] = json!("sleep-1");
        no_hash["metadata"]["name"] = json!("sleep-2");
        for pod in [no_hash, other_owner, owners_not_a_list, hash_not_a_string] {
            assert!(check_pod(&pod, None).is_empty(), "{pod}");
        }
    }

    #[test]
    fn deployment_name_comes_from_the_replica_set_name() {
        let cases = [
            ("sleep-7f9c8d", Some("sleep")),
            ("my-app-v2-7f9c8d", Some("my-app-v2")),
            ("renamed", Some("renamed")),
            ("7f9c8d", Some("7f9c8d")),
        ];
        for (replica_set, deployment) in cases {
            let mut pod = deployment_pod(json!({"pod-template-hash": "7f9c8d"}));
            pod["metadata"]["ownerReferences"][0]["name"] = json!(replica_set);
            assert_eq!(deployment_of(&pod).as_deref(), deployment, "{replica_set}");
        }
    }

    #[test]
    fn deployment_without_app_label_is_reported() {
        let mut deployment = sleep_deployment();
        deployment["spec"]["template"]["metadata"]["labels"] = json!({"run": "sleep"});
        let findings = check_deployment(&deployment, None);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].field, "spec.template.metadata.labels.app");
        assert_eq!(findings[0].requirement, Requirement::AppLabel);
        assert_eq!(
            findings[0].to_string(),
            "Deployment sleep: spec.template.metadata.labels.app is missing (Istio uses the app \
             label as context in distributed tracing); add a distinct app label, e.g. app: sleep"
        );
    }

    #[test]
    fn deployment_app_label_must_be_a_non_empty_string() {
        let cases = [
            (json!(""), "is empty"),
            (json!("  "), "is empty"),
            (json!(7), "is a number (7), not a string"),
            (json!(null), "is missing"),
            (json!({"name": "sleep"}), "is a map, not a string"),
        ];
        for (app, problem) in cases {
            let mut deployment = sleep_deployment();
            deployment["spec"]["template"]["metadata"]["labels"]["app"] = app.clone();
            let findings = check_deployment(&deployment, None);
            assert_eq!(findings.len(), 1, "{app}");
            assert!(
                findings[0]
                    .message
                    .starts_with(&format!("spec.template.metadata.labels.app {problem}")),
                "{}",
                findings[0]
            );
        }
    }

    #[test]
    fn deployment_template_is_checked_against_services_in_its_namespace() {
        let mut deployment = sleep_deployment();
        deployment["metadata"]["namespace"] = json!("prod");
        let services = [service("sleep", json!({"app": "sleep"}))];
        let findings = check_deployment(&deployment, Some(&services));
        assert_eq!(
            requirements_of(&findings),
            [Requirement::ServiceAssociation]
        );
        assert_eq!(findings[0].object, "Deployment prod/sleep");
        assert_eq!(findings[0].field, "spec.template.metadata.labels");
        assert!(
            findings[0].message.contains("namespace prod"),
            "{}",
            findings[0]
        );
    }

    #[test]
    fn malformed_deployments_do_not_panic() {
        let cases = [
            json!(null),
            json!({"kind": "Deployment"}),
            json!({"kind": "Deployment", "spec": "x"}),
            json!({"kind": "Deployment", "spec": {"template": []}}),
            json!({"kind": "Deployment", "metadata": [], "spec": {"template": {"metadata": 1}}}),
        ];
        for deployment in cases {
            let findings = check_deployment(&deployment, Some(&[]));
            assert_eq!(
                requirements_of(&findings),
                [Requirement::AppLabel, Requirement::ServiceAssociation],
                "{deployment}"
            );
            assert!(
                findings[0].fix.ends_with("e.g. app: my-app"),
                "{}",
                findings[0]
            );
        }
    }
}
