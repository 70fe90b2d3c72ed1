//! The requirements across a manifest, as `kube-inject check` and the JS face read it: every
//! document (and `List` item) checked by its kind, findings numbered by document.

use serde::Serialize;
use serde_json::Value;

use super::pods::{AppRule, pod_findings, workload_template};
use super::{Finding, Protocols, check_service};
use crate::object::{self, kinds};

/// Checks a manifest bundle, as `kube-inject` reads it: `(document index, object)` pairs.
///
/// Services get [`check_service`]. Workloads (the kinds `kube-inject` injects: Deployment,
/// StatefulSet, DaemonSet, ReplicaSet, Job, CronJob through `spec.jobTemplate.spec.template`,
/// ReplicationController, DeploymentConfig, Pod) get the Service association check of their pod
/// template against the bundle's Services in the same namespace (absent means `default`), taken
/// as the complete set. The app label rule applies to Deployments (and Pods owned by one), see the
/// module's differences. Items of a `List` are checked as documents of their own and reported
/// with the List's index; Services inside a List count too. Other kinds are ignored.
///
/// Kinds are matched by name, whatever the `apiVersion`: the requirements concern the pods a
/// workload creates, not whether `kube-inject` can inject that version.
pub fn check_bundle(objects: &[(usize, Value)], protocols: &Protocols) -> Vec<(usize, Finding)> {
    let documents = object::flatten(objects);
    let services: Vec<&Value> = documents
        .iter()
        .filter(|(_, object)| object::kind(object) == Some("Service"))
        .map(|(_, object)| *object)
        .collect();
    let mut findings = Vec::new();
    for (index, object) in documents {
        let found = match object::kind(object) {
            Some("Service") => check_service(object, protocols),
            Some("Pod") => pod_findings(object, Some(&services)),
            Some(kind) => match kinds::template_of(kind) {
                Some(template) => {
                    // The seed's app label rule names the Deployment only.
                    let app_rule = if kind == "Deployment" {
                        AppRule::Template
                    } else {
                        AppRule::Skip
                    };
                    workload_template(object, kind, template).check(Some(&services), &app_rule)
                }
                None => Vec::new(),
            },
            None => Vec::new(),
        };
        findings.extend(found.into_iter().map(|finding| (index, finding)));
    }
    findings
}

/// One finding of [`check_bundle`] as the faces print it: `document`, the index of the
/// document it was found in, then the finding's fields.
///
/// The shape is defined once, here, because two faces print it and must agree:
/// `kube-inject check --output-format json` and the JS face's `checkManifest`. Each face
/// serializes it itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Record<'a> {
    /// The document's index, as `check_bundle` reports it.
    pub document: usize,
    /// The finding's fields, beside `document`.
    #[serde(flatten)]
    pub finding: &'a Finding,
}

/// The findings of [`check_bundle`] as [`Record`]s, in order.
pub fn records(findings: &[(usize, Finding)]) -> Vec<Record<'_>> {
    findings
        .iter()
        .map(|(document, finding)| Record {
            document: *document,
            finding,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Map, json};

    use super::super::test_support::*;
    use super::super::*;
    use super::*;

    #[test]
    fn sleep_sample_meets_every_requirement() {
        assert!(check_bundle(&sleep_bundle(), &Protocols::default()).is_empty());
    }

    #[test]
    fn bundle_findings_carry_their_document_index() {
        let bundle = vec![
            (
                0,
                service_with_ports(json!([{"port": 80, "name": "http2foo"}])),
            ),
            (1, json!({"kind": "ConfigMap", "metadata": {"name": "x"}})),
            (
                2,
                json!({"kind": "Deployment", "metadata": {"name": "httpbin"},
                       "spec": {"template": {"metadata": {"labels": {"run": "httpbin"}}}}}),
            ),
        ];
        let findings = check_bundle(&bundle, &Protocols::default());
        let summary: Vec<_> = findings
            .iter()
            .map(|(index, f)| (*index, f.requirement, f.object.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                (0, Requirement::NamedPorts, "Service default/sleep"),
                (2, Requirement::AppLabel, "Deployment httpbin"),
                (2, Requirement::ServiceAssociation, "Deployment httpbin"),
            ]
        );
    }

    /// A workload of `kind` whose pod template carries `labels`, placed where that kind keeps it.
    fn workload(kind: &str, labels: Value) -> Value {
        let template = json!({"metadata": {"labels": labels}, "spec": {"containers": []}});
        let spec = if kind == "CronJob" {
            json!({"jobTemplate": {"spec": {"template": template}}})
        } else {
            json!({"template": template})
        };
        json!({"kind": kind, "metadata": {"name": "w"}, "spec": spec})
    }

    #[test]
    fn bundle_workloads_are_checked_at_their_pod_template() {
        let cases = [
            ("Deployment", "spec.template."),
            ("StatefulSet", "spec.template."),
            ("DaemonSet", "spec.template."),
            ("ReplicaSet", "spec.template."),
            ("Job", "spec.template."),
            ("ReplicationController", "spec.template."),
            ("DeploymentConfig", "spec.template."),
            ("CronJob", "spec.jobTemplate.spec.template."),
        ];
        let protocols = Protocols::default();
        for (kind, prefix) in cases {
            let selected = [
                (0, sleep_service()),
                (1, workload(kind, json!({"app": "sleep"}))),
            ];
            assert!(check_bundle(&selected, &protocols).is_empty(), "{kind}");

            let unselected = [
                (0, sleep_service()),
                (1, workload(kind, json!({"app": "other"}))),
            ];
            let findings = check_bundle(&unselected, &protocols);
            assert_eq!(findings.len(), 1, "{kind}");
            assert_eq!(findings[0].0, 1);
            assert_eq!(findings[0].1.object, format!("{kind} w"));
            assert_eq!(findings[0].1.field, format!("{prefix}metadata.labels"));
        }
    }

    #[test]
    fn bundle_applies_the_app_label_rule_to_deployments_only() {
        let protocols = Protocols::default();
        let service = (0, service("sleep", json!({"run": "sleep"})));
        for kind in [
            "StatefulSet",
            "DaemonSet",
            "ReplicaSet",
            "Job",
            "CronJob",
            "DeploymentConfig",
        ] {
            let bundle = [
                service.clone(),
                (1, workload(kind, json!({"run": "sleep"}))),
            ];
            assert!(check_bundle(&bundle, &protocols).is_empty(), "{kind}");
        }
        let bundle = [
            service,
            (1, workload("Deployment", json!({"run": "sleep"}))),
        ];
        let findings = check_bundle(&bundle, &protocols);
        assert_eq!(
            findings
                .iter()
                .map(|(_, f)| f.requirement)
                .collect::<Vec<_>>(),
            [Requirement::AppLabel]
        );
        assert!(
            findings[0].1.fix.ends_with("e.g. app: w"),
            "{}",
            findings[0].1
        );
    }

    #[test]
    fn bundle_pods_are_checked_like_admitted_pods() {
        let pod = json!({"kind": "Pod", "metadata": {"name": "sleep", "labels": {"app": "sleep"}}});
        let protocols = Protocols::default();
        assert!(check_bundle(&[(0, pod.clone()), (1, sleep_service())], &protocols).is_empty());
        let findings = check_bundle(&[(0, pod)], &protocols);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].1.object, "Pod sleep");
        assert_eq!(findings[0].1.requirement, Requirement::ServiceAssociation);
    }

    #[test]
    fn bundle_without_namespace_means_default() {
        let mut service = sleep_service();
        service["metadata"]["namespace"] = json!("default");
        let mut elsewhere = sleep_deployment();
        elsewhere["metadata"]["namespace"] = json!("prod");
        let protocols = Protocols::default();
        assert!(
            check_bundle(&[(0, service.clone()), (1, sleep_deployment())], &protocols).is_empty()
        );
        let findings = check_bundle(&[(0, service), (1, elsewhere)], &protocols);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].1.object, "Deployment prod/sleep");
    }

    #[test]
    fn list_items_are_checked_with_the_list_index() {
        let list = json!({
            "apiVersion": "v1",
            "kind": "List",
            "items": [
                sleep_service(),
                {"kind": "List", "items": [workload("Deployment", json!({"run": "x"}))]},
                service_with_ports(json!([{"port": 80}]))
            ]
        });
        let bundle = [
            (0, json!({"kind": "ConfigMap"})),
            (3, list),
            (4, sleep_deployment()),
        ];
        let findings = check_bundle(&bundle, &Protocols::default());
        let summary: Vec<_> = findings
            .iter()
            .map(|(index, f)| (*index, f.requirement, f.object.as_str()))
            .collect();
        // The sleep Deployment (document 4) is selected by the Service inside the List.
        assert_eq!(
            summary,
            [
                (3, Requirement::AppLabel, "Deployment w"),
                (3, Requirement::ServiceAssociation, "Deployment w"),
                (3, Requirement::NamedPorts, "Service default/sleep"),
            ]
        );
    }

    #[test]
    fn malformed_lists_and_documents_do_not_panic() {
        let bundle = [
            (0, json!({"kind": "List", "items": "none"})),
            (1, json!({"kind": "List", "items": [null, 1, "x", []]})),
            (2, json!({"kind": 5})),
            (3, json!(null)),
            (4, json!({"kind": "CronJob", "spec": {"jobTemplate": []}})),
        ];
        let findings = check_bundle(&bundle, &Protocols::default());
        // Only the CronJob is a workload; its missing template has no labels to select.
        assert_eq!(
            findings
                .iter()
                .map(|(i, f)| (*i, f.requirement))
                .collect::<Vec<_>>(),
            [(4, Requirement::ServiceAssociation)]
        );
    }

    #[test]
    fn records_are_each_finding_with_its_document_index() {
        let finding = Finding {
            object: "Service default/sleep".into(),
            field: "spec.ports[0].name".into(),
            requirement: Requirement::NamedPorts,
            message: "unnamed".into(),
            fix: "name it".into(),
        };
        let findings = [(3, finding.clone()), (5, finding)];
        let printed = serde_json::to_value(records(&findings)).unwrap();
        let expected = json!({"document": 3, "object": "Service default/sleep",
            "field": "spec.ports[0].name", "requirement": "namedPorts",
            "message": "unnamed", "fix": "name it"});
        assert_eq!(printed[0], expected);
        assert_eq!(printed[1]["document"], 5);
        assert_eq!(printed.as_array().map(Vec::len), Some(2));
        assert_eq!(serde_json::to_value(records(&[])).unwrap(), json!([]));
    }

    #[test]
    fn deeply_nested_lists_do_not_overflow_the_stack() {
        let mut list = sleep_service();
        for _ in 0..100_000 {
            // Built by hand: `json!` would serialize (recursively) the value it interpolates.
            let mut outer = Map::new();
            outer.insert("kind".to_owned(), Value::from("List"));
            outer.insert("items".to_owned(), Value::Array(vec![list]));
            list = Value::Object(outer);
        }
        let bundle = [(7, list)];
        assert!(check_bundle(&bundle, &Protocols::default()).is_empty());
        // `Value`'s own drop recurses and would overflow: leak the test input instead.
        std::mem::forget(bundle);
    }

    /// Arbitrary JSON whose map keys are the field names the checks look at, so that random
    /// documents reach deep into the checks instead of stopping at the first lookup.
    fn kubernetes_like_json() -> impl Strategy<Value = Value> {
        let key = prop::sample::select(vec![
            "kind",
            "metadata",
            "name",
            "generateName",
            "namespace",
            "labels",
            "app",
            "pod-template-hash",
            "ownerReferences",
            "spec",
            "ports",
            "port",
            "protocol",
            "appProtocol",
            "targetPort",
            "selector",
            "type",
            "template",
            "jobTemplate",
            "items",
        ]);
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            prop::sample::select(vec![
                "",
                "Service",
                "Pod",
                "Deployment",
                "CronJob",
                "List",
                "ReplicaSet",
                "UDP",
                "TCP",
                "http",
                "http2foo",
                "grpc-web",
                "sleep",
                "sleep-7f9c8d",
                "7f9c8d",
                "ExternalName",
                "h\u{e9}",
                "\u{1f600}",
                "-",
            ])
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(6, 64, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((key.clone(), inner), 0..6).prop_map(|entries| {
                    Value::Object(
                        entries
                            .into_iter()
                            .map(|(k, v)| (k.to_owned(), v))
                            .collect(),
                    )
                }),
            ]
        })
    }

    proptest! {
        #[test]
        fn arbitrary_objects_never_panic(
            objects in prop::collection::vec(kubernetes_like_json(), 0..6)
        ) {
            let protocols = Protocols::default();
            let bundle: Vec<(usize, Value)> = objects.iter().cloned().enumerate().collect();
            let findings = check_bundle(&bundle, &protocols);
            for object in &objects {
                check_service(object, &protocols);
                check_pod(object, Some(&objects));
                check_pod(object, None);
                check_deployment(object, Some(&objects));
                services_selecting(object, "default", &objects);
            }
            for (index, finding) in findings {
                prop_assert!(index < objects.len());
                prop_assert!(!finding.to_string().is_empty());
            }
        }
    }
}
