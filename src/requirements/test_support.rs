//! Objects the requirement tests share: the seed's sleep sample and small builders.

use serde_json::{Value, json};

use super::{Finding, Requirement};

/// The seed's sleep sample (`samples/sleep/sleep.yaml`), as documents of a bundle.
pub(super) fn sleep_bundle() -> Vec<(usize, Value)> {
    vec![
        (
            0,
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sleep"}}),
        ),
        (1, sleep_service()),
        (2, sleep_deployment()),
    ]
}

pub(super) fn sleep_service() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "sleep", "labels": {"app": "sleep", "service": "sleep"}},
        "spec": {"ports": [{"port": 80, "name": "http"}], "selector": {"app": "sleep"}}
    })
}

pub(super) fn sleep_deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "sleep"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "sleep"}},
            "template": {
                "metadata": {"labels": {"app": "sleep"}},
                "spec": {
                    "serviceAccountName": "sleep",
                    "containers": [{"name": "sleep", "image": "curlimages/curl"}]
                }
            }
        }
    })
}

pub(super) fn service(name: &str, selector: Value) -> Value {
    json!({
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"selector": selector, "ports": [{"port": 80, "name": "http"}]}
    })
}

pub(super) fn service_with_ports(ports: Value) -> Value {
    json!({
        "kind": "Service",
        "metadata": {"name": "sleep", "namespace": "default"},
        "spec": {"ports": ports}
    })
}

/// A Pod as a Deployment's ReplicaSet creates it at admission: generateName, owner, hash.
pub(super) fn deployment_pod(labels: Value) -> Value {
    json!({
        "kind": "Pod",
        "metadata": {
            "generateName": "sleep-7f9c8d-",
            "namespace": "default",
            "labels": labels,
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "sleep-7f9c8d"}
            ]
        },
        "spec": {"containers": [{"name": "sleep"}]}
    })
}

pub(super) fn fields_of(findings: &[Finding]) -> Vec<&str> {
    findings.iter().map(|f| f.field.as_str()).collect()
}

pub(super) fn requirements_of(findings: &[Finding]) -> Vec<Requirement> {
    findings.iter().map(|f| f.requirement).collect()
}
