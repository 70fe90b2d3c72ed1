//! The sidecar injector module itself on the policy-server-like host: the seed's story, bad
//! input of every kind (never a trap), the generic AdmissionReview operation, and the metadata
//! that `make annotated-policy.wasm` embeds.

use std::path::PathBuf;
use std::sync::OnceLock;

use host_tests::{
    BUILD_INJECTOR, Policy, admission_response, apply_admission_response, decode_patch, requests,
};
use serde_json::{Value, json};

/// Compiled once for the whole test binary (the fixture runner uses it too).
pub fn injector() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| {
        host_tests::load_built(&host_tests::injector_wasm(), BUILD_INJECTOR)
            .unwrap_or_else(|err| panic!("{err:#}"))
    })
}

fn workspace_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(name)
}

/// Settings that make no context-aware call, for cases that are not about requirements.
fn no_requirements() -> Value {
    json!({"requirements": "off"})
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|err| {
        panic!(
            "the module answered non-JSON ({err}): {}",
            String::from_utf8_lossy(bytes)
        )
    })
}

#[test]
fn speaks_protocol_v1() {
    assert_eq!(injector().protocol_version(), Ok("v1".to_owned()));
}

#[test]
fn the_seed_sleep_pod_shows_two_containers_and_the_patch_only_adds() {
    let request = requests::sleep_pod_request();
    let validation = injector()
        .validate(&request, &no_requirements())
        .expect("never traps");
    let admission = admission_response(&request["object"], &validation);
    let pod = apply_admission_response(&request["object"], &admission).expect("patch applies");
    // `kubectl get pod` READY counts spec.containers: 2/2.
    let names: Vec<&str> = pod["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["sleep", "istio-proxy"]);
    let patch = decode_patch(admission["patch"].as_str().expect("a patch")).unwrap();
    let ops: Vec<&str> = patch
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|op| op["op"].as_str())
        .collect();
    assert!(ops.iter().all(|op| *op == "add"), "{ops:?}");
}

#[test]
fn settings_that_are_not_even_json_are_refused_not_trapped() {
    for payload in [&b"{not json"[..], b"", b"[1, 2]", b"\"enabled\"", b"null"] {
        let response = injector().call("validate_settings", payload);
        let response =
            json_of(&response.unwrap_or_else(|err| panic!("{payload:?}: guest error {err}")));
        if payload == b"null" {
            assert_eq!(response["valid"], json!(true), "null settings are {{}}");
            continue;
        }
        assert_eq!(response["valid"], json!(false), "{payload:?}");
        assert!(
            response["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{response}"
        );
    }
}

#[test]
fn malformed_validate_payloads_get_a_clear_rejection() {
    for payload in [&b"{not json"[..], b"", b"[]", b"{\"request\": 5}", b"{\"request\": {\"kind\": {\"kind\": \"Pod\"}, \"operation\": \"CREATE\", \"object\": []}}"] {
        let response = injector().call("validate", payload).unwrap_or_else(|err| panic!("{payload:?}: guest error {err}"));
        let response = json_of(&response);
        assert_eq!(response["accepted"], json!(false), "{payload:?}: {response}");
        assert!(response["message"].as_str().is_some_and(|m| !m.is_empty()), "{response}");
    }
}

#[test]
fn a_pod_with_2000_env_vars_is_injected() {
    let request = requests::pod_create_request(requests::pod_with_env_vars(2000));
    let validation = injector()
        .validate(&request, &no_requirements())
        .expect("never traps");
    let admission = admission_response(&request["object"], &validation);
    let pod = apply_admission_response(&request["object"], &admission).unwrap();
    assert_eq!(pod["spec"]["containers"][1]["name"], "istio-proxy");
    assert_eq!(
        pod["spec"]["containers"][0]["env"].as_array().map(Vec::len),
        Some(2000)
    );
}

#[test]
fn a_5_mb_pod_is_injected_within_the_deadline() {
    let mut pod = requests::sleep_pod();
    pod["metadata"]["annotations"] = json!({"example.com/blob": "x".repeat(5 * 1024 * 1024)});
    let request = requests::pod_create_request(pod);
    assert!(serde_json::to_vec(&request).unwrap().len() > 5_000_000);
    let validation = injector()
        .validate(&request, &no_requirements())
        .expect("never traps, within 2 s");
    assert_eq!(validation["accepted"], json!(true));
    assert_eq!(
        validation["mutated_object"]["spec"]["containers"][1]["name"],
        "istio-proxy"
    );
}

#[test]
fn the_admission_review_operation_answers_like_a_webhook() {
    let request = requests::sleep_pod_request();
    let mut review = requests::admission_review(request.clone());
    review["settings"] = no_requirements();
    let payload = serde_json::to_vec(&review).unwrap();
    let answer = json_of(
        &injector()
            .call("admission_review", &payload)
            .expect("never traps"),
    );
    let response = &answer["response"];
    assert_eq!(answer["kind"], "AdmissionReview");
    assert_eq!(response["uid"], request["uid"]);
    assert_eq!(response["allowed"], json!(true));
    assert_eq!(response["patchType"], "JSONPatch");
    let patched = apply_admission_response(&request["object"], response).unwrap();
    let validation = injector().validate(&request, &no_requirements()).unwrap();
    assert_eq!(patched, validation["mutated_object"]);

    let garbage = json_of(
        &injector()
            .call("admission_review", b"{oops")
            .expect("never traps"),
    );
    assert_eq!(garbage["response"]["allowed"], json!(false));
    let message = garbage["response"]["status"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("not valid JSON"), "{message}");
}

#[test]
fn annotated_policy_carries_the_metadata_of_metadata_yml() {
    let path = workspace_file("annotated-policy.wasm");
    let wasm = std::fs::read(&path).unwrap_or_else(|err| {
        panic!(
            "{}: {err}; build it first: make annotated-policy.wasm",
            path.display()
        )
    });
    let metadata =
        host_tests::read_metadata(&wasm).expect("an io.kubewarden.metadata custom section");
    assert_eq!(metadata["protocolVersion"], "v1");
    assert_eq!(metadata["mutating"], json!(true));
    assert_eq!(metadata["backgroundAudit"], json!(false));
    assert_eq!(metadata["executionMode"], "kubewarden-wapc");
    let source: Value =
        serde_yaml::from_str(&std::fs::read_to_string(workspace_file("metadata.yml")).unwrap())
            .unwrap();
    assert_eq!(metadata["rules"], source["rules"]);
    assert_eq!(
        metadata["contextAwareResources"],
        source["contextAwareResources"]
    );
    assert!(
        metadata["annotations"]["io.kubewarden.policy.usage"]
            .as_str()
            .is_some_and(|u| u.contains("sidecar"))
    );

    // The annotated module is the one policy-server runs: it must still work.
    let annotated = Policy::from_bytes(&wasm, Default::default()).unwrap();
    assert_eq!(annotated.protocol_version(), Ok("v1".to_owned()));
}

#[test]
fn policy_yaml_agrees_with_metadata_yml() {
    let policy: Value =
        serde_yaml::from_str(&std::fs::read_to_string(workspace_file("policy.yaml")).unwrap())
            .unwrap();
    let metadata: Value =
        serde_yaml::from_str(&std::fs::read_to_string(workspace_file("metadata.yml")).unwrap())
            .unwrap();
    let spec = &policy["spec"];
    assert_eq!(policy["kind"], "ClusterAdmissionPolicy");
    assert_eq!(spec["rules"], metadata["rules"]);
    assert_eq!(
        spec["contextAwareResources"],
        metadata["contextAwareResources"]
    );
    assert_eq!(spec["mutating"], metadata["mutating"]);
    assert_eq!(spec["backgroundAudit"], metadata["backgroundAudit"]);
    assert!(
        spec["namespaceSelector"].get("matchLabels").is_none(),
        "the controller drops matchLabels"
    );
    assert_eq!(
        spec["namespaceSelector"]["matchExpressions"][0]["key"],
        "istio-injection"
    );
    // The module accepts the settings an admin applies.
    assert_eq!(
        injector().validate_settings(&spec["settings"]),
        json!({"valid": true, "message": null})
    );
}
