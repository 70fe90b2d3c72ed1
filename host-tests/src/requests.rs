//! Builders for the admission requests tests and benchmarks send.
//!
//! Requests are `admission.k8s.io/v1` `AdmissionRequest`s serialised as policy-evaluator
//! sends them (camelCase, `object` holding the pod as the API server has it at admission).

use serde_json::{Value, json};

/// The sleep pod as a ReplicaSet controller creates it: `generateName: sleep-7f9c-`, namespace
/// `default`, label `app: sleep`, one container `sleep` running `tutum/curl`
/// `/bin/sleep infinity`.
pub fn sleep_pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "sleep-7f9c-",
            "namespace": "default",
            "labels": {"app": "sleep"}
        },
        "spec": {
            "containers": [{
                "name": "sleep",
                "image": "tutum/curl",
                "command": ["/bin/sleep", "infinity"],
                "imagePullPolicy": "IfNotPresent"
            }]
        }
    })
}

/// The sleep pod as admission sees it when the seed's Deployment creates it: the API server
/// has filled in its defaults, and the ReplicaSet's owner reference, `pod-template-hash` label
/// and `managedFields` entry are there. Real pods carry this metadata, and the template reads
/// the metadata a dozen times.
pub fn sleep_pod_from_deployment() -> Value {
    let mut pod = sleep_pod();
    let uid = "5b3c1b2e-8f0a-4d7c-9a51-0c0f2d1e3a44";
    pod["metadata"]["labels"]["pod-template-hash"] = json!("7f9c");
    pod["metadata"]["ownerReferences"] = json!([{
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "sleep-7f9c", "uid": uid,
        "controller": true, "blockOwnerDeletion": true
    }]);
    pod["metadata"]["managedFields"] = json!([{
        "manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1",
        "time": "2026-11-26T10:00:00Z", "fieldsType": "FieldsV1",
        "fieldsV1": {
            "f:metadata": {
                "f:generateName": {},
                "f:labels": {".": {}, "f:app": {}, "f:pod-template-hash": {}},
                "f:ownerReferences": {".": {}, format!("k:{{\"uid\":\"{uid}\"}}"): {}}
            },
            "f:spec": {
                "f:containers": {"k:{\"name\":\"sleep\"}": {
                    ".": {}, "f:command": {}, "f:image": {}, "f:imagePullPolicy": {}, "f:name": {},
                    "f:resources": {}, "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {}
                }},
                "f:dnsPolicy": {}, "f:enableServiceLinks": {}, "f:restartPolicy": {},
                "f:schedulerName": {}, "f:securityContext": {}, "f:serviceAccount": {},
                "f:serviceAccountName": {}, "f:terminationGracePeriodSeconds": {}
            }
        }
    }]);
    let container = &mut pod["spec"]["containers"][0];
    container["resources"] = json!({});
    container["terminationMessagePath"] = json!("/dev/termination-log");
    container["terminationMessagePolicy"] = json!("File");
    container["volumeMounts"] = json!([{
        "name": "kube-api-access-x7k2p", "readOnly": true,
        "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"
    }]);
    let spec = &mut pod["spec"];
    spec["dnsPolicy"] = json!("ClusterFirst");
    spec["enableServiceLinks"] = json!(true);
    spec["preemptionPolicy"] = json!("PreemptLowerPriority");
    spec["priority"] = json!(0);
    spec["restartPolicy"] = json!("Always");
    spec["schedulerName"] = json!("default-scheduler");
    spec["securityContext"] = json!({});
    spec["serviceAccount"] = json!("default");
    spec["serviceAccountName"] = json!("default");
    spec["terminationGracePeriodSeconds"] = json!(30);
    spec["tolerations"] = json!([
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
    ]);
    spec["volumes"] = json!([{
        "name": "kube-api-access-x7k2p",
        "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
        ]}
    }]);
    pod
}

/// The sleep pod with `count` environment variables (`VAR_0000=value-0000`, …) on its
/// container: the benchmark's 1×/10×/100× sizes are 20, 200 and 2000.
pub fn pod_with_env_vars(count: usize) -> Value {
    let env: Vec<Value> = (0..count)
        .map(|i| json!({"name": format!("VAR_{i:04}"), "value": format!("value-{i:04}")}))
        .collect();
    let mut pod = sleep_pod();
    pod["spec"]["containers"][0]["env"] = Value::Array(env);
    pod
}

/// The sleep pod serving HTTP on a named port, with a liveness (`httpGet` on the named port),
/// a readiness (`tcpSocket`) and a startup probe (`grpc`). `modern` adds what today's Istio
/// users turn on: the native sidecar by annotation (which brings the agent with its status port,
/// so the three probes are rewritten) and an override of the injected proxy's resources and env.
pub fn pod_with_probes(modern: bool) -> Value {
    let mut pod = sleep_pod();
    let app = &mut pod["spec"]["containers"][0];
    app["ports"] = json!([{"name": "http", "containerPort": 8080}]);
    app["livenessProbe"] =
        json!({"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10});
    app["readinessProbe"] = json!({"tcpSocket": {"port": 8080}, "periodSeconds": 5});
    app["startupProbe"] = json!({"grpc": {"port": 9090}, "failureThreshold": 30});
    if modern {
        pod["metadata"]["annotations"] = json!({"sidecar.istio.io/nativeSidecar": "true"});
        pod["spec"]["containers"]
            .as_array_mut()
            .expect("the sleep pod has a containers list")
            .push(json!({
                "name": "istio-proxy",
                "image": "auto",
                "resources": {"limits": {"memory": "1Gi"}, "requests": {"cpu": "100m"}},
                "env": [{"name": "EXTRA_LOGGING", "value": "true"}]
            }));
    }
    pod
}

/// A CREATE `AdmissionRequest` for `pod`, in the pod's namespace (`default` if it has none).
pub fn pod_create_request(pod: Value) -> Value {
    let namespace = pod["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default")
        .to_owned();
    json!({
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
        "requestResource": {"group": "", "version": "v1", "resource": "pods"},
        "namespace": namespace,
        "operation": "CREATE",
        "userInfo": {
            "username": "system:serviceaccount:kube-system:replicaset-controller",
            "uid": "a7e0ab33-5b29-4f3a-8b6b-3c2d1f0e9d8c",
            "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"]
        },
        "object": pod,
        "oldObject": null,
        "dryRun": false,
        "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}
    })
}

/// [`pod_create_request`] of [`sleep_pod`].
pub fn sleep_pod_request() -> Value {
    pod_create_request(sleep_pod())
}

/// Wraps `request` in an `AdmissionReview`, as the API server posts it.
pub fn admission_review(request: Value) -> Value {
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})
}

/// The `AdmissionRequest` in `document`: its `.request` if it is an `AdmissionReview` (as
/// `kwctl run` accepts), else `document` itself.
pub fn admission_request_of(document: &Value) -> &Value {
    if document.get("kind").and_then(Value::as_str) == Some("AdmissionReview") {
        document.get("request").unwrap_or(&Value::Null)
    } else {
        document
    }
}

/// The large requests the policy's limits are stated for (RELIABILITY.md), with a name each:
/// what the API server could send within its 3 MiB request limit.
pub fn large_pods() -> Vec<(&'static str, Value)> {
    let mut many_containers = sleep_pod();
    many_containers["spec"]["containers"] = Value::Array(
        (0..10_000)
            .map(|i| json!({"name": format!("c{i}"), "image": "tutum/curl"}))
            .collect(),
    );
    let mut big_annotation = sleep_pod();
    big_annotation["metadata"]["annotations"] = json!({"example.com/blob": "x".repeat(1_500_000)});
    let mut many_annotations = sleep_pod();
    many_annotations["metadata"]["annotations"] = Value::Object(
        (0..20_000)
            .map(|i| (format!("example.com/a{i}"), json!(format!("v{i}"))))
            .collect(),
    );
    let deep = |depth: usize| {
        let mut pod = sleep_pod();
        let mut unknown = json!("leaf");
        for _ in 0..depth {
            unknown = json!({ "x": unknown });
        }
        pod["spec"]["containers"][0]["x-unknown"] = unknown;
        pod
    };
    vec![
        ("10k containers", many_containers),
        ("100k env vars", pod_with_env_vars(100_000)),
        ("1.5 MB annotation", big_annotation),
        ("20k annotations", many_annotations),
        ("unknown fields 100 deep", deep(100)),
    ]
}

/// A `validate` payload for the sleep pod whose container carries an unknown field nested
/// `depth` objects deep, built as text: a `Value` that deep overflows the stack of whoever
/// builds, prints or drops it (the host's included).
pub fn deeply_nested_validate_payload(depth: usize) -> Vec<u8> {
    let mut pod = sleep_pod();
    pod["spec"]["containers"][0]["x-unknown"] = json!("NESTED");
    let payload = json!({"request": pod_create_request(pod), "settings": {"requirements": "off"}});
    let nested = format!("{}\"leaf\"{}", "{\"x\":".repeat(depth), "}".repeat(depth));
    payload
        .to_string()
        .replacen("\"NESTED\"", &nested, 1)
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_var_pod_has_the_requested_size() {
        let pod = pod_with_env_vars(200);
        assert_eq!(
            pod["spec"]["containers"][0]["env"].as_array().map(Vec::len),
            Some(200)
        );
        assert_eq!(pod["spec"]["containers"][0]["env"][199]["name"], "VAR_0199");
    }

    #[test]
    fn review_unwraps_to_its_request() {
        let request = sleep_pod_request();
        let review = admission_review(request.clone());
        assert_eq!(admission_request_of(&review), &request);
        assert_eq!(admission_request_of(&request), &request);
    }
}
