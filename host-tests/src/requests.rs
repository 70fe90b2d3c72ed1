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
