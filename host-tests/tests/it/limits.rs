//! The largest requests the policy is stated to handle (RELIABILITY.md): each ends in an answer,
//! an admission or a rejection that says why, within policy-server's default 2 s deadline, on a
//! fresh instance of `policy.wasm` as policy-server makes them. Timings and memory are measured
//! by the `limits` binary, not here.

use host_tests::{Policy, requests};
use serde_json::{Value, json};

use crate::injector::injector;

fn answer(policy: &Policy, pod: &Value) -> Value {
    let request = requests::pod_create_request(pod.clone());
    policy
        .validate(&request, &json!({"requirements": "off"}))
        .unwrap_or_else(|e| panic!("no answer, the module failed: {e}"))
}

#[test]
fn every_large_request_gets_an_answer_not_a_trap() {
    for (name, pod) in requests::large_pods() {
        let response = answer(injector(), &pod);
        let accepted = response["accepted"]
            .as_bool()
            .expect("accepted is a boolean");
        if accepted {
            let mutated = &response["mutated_object"];
            assert!(
                mutated.is_object(),
                "{name}: accepted without the injected pod"
            );
            let containers = mutated["spec"]["containers"].as_array().unwrap();
            assert_eq!(
                containers.last().unwrap()["name"],
                "istio-proxy",
                "{name}: the sidecar is the last container"
            );
        } else {
            let message = response["message"].as_str().unwrap_or_default();
            assert!(!message.is_empty(), "{name}: a rejection must say why");
        }
        eprintln!("{name}: accepted={accepted}");
    }
}

#[test]
fn a_request_nested_beyond_the_parsers_limit_is_refused_with_the_reason() {
    let payload = requests::deeply_nested_validate_payload(10_000);
    let bytes = injector()
        .call("validate", &payload)
        .unwrap_or_else(|e| panic!("no answer, the module failed: {e}"));
    let response: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(response["accepted"], false);
    let message = response["message"].as_str().unwrap();
    assert!(message.contains("recursion limit"), "{message}");
}

#[test]
fn unknown_fields_a_hundred_deep_are_kept() {
    let (_, deep) = requests::large_pods()
        .into_iter()
        .find(|(name, _)| *name == "unknown fields 100 deep")
        .unwrap();
    let response = answer(injector(), &deep);
    assert_eq!(response["accepted"], true);
    assert_eq!(
        response["mutated_object"]["spec"]["containers"][0]["x-unknown"],
        deep["spec"]["containers"][0]["x-unknown"]
    );
}

/// The host's answers can be as large as the API server makes them: a namespace with 5,000
/// Services all selecting the pod, and a 2 MiB injector ConfigMap (twice Kubernetes' own 1 MiB
/// bound on a ConfigMap). Each ends in an answer that says what happened.
#[test]
fn oversized_host_answers_get_an_answer_not_a_trap() {
    let services: Vec<Value> = (0..5_000)
        .map(|i| {
            json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": format!("sleep-{i:04}"), "namespace": "default"},
                "spec": {"selector": {"app": "sleep"}, "ports": [{"name": "http", "port": 80}]}
            })
        })
        .collect();
    let policy = host_tests::load_built(&host_tests::injector_wasm(), host_tests::BUILD_INJECTOR)
        .unwrap()
        .with_fixtures(host_tests::KubernetesFixtures::new().respond(
            "list_resources_by_namespace",
            json!({"kind": "Service"}),
            json!({"apiVersion": "v1", "kind": "ServiceList", "items": services}),
        ));
    let request = requests::sleep_pod_request();
    let response = policy
        .validate(&request, &json!({"requirements": "warn"}))
        .unwrap_or_else(|e| panic!("no answer, the module failed: {e}"));
    assert_eq!(response["accepted"], true, "{response}");
    let warnings = response["warnings"].to_string();
    assert!(warnings.contains("sleep-4999"), "{warnings}");

    let line = "  # a comment line that pads the template out\n";
    let padding = line.repeat((2 << 20) / line.len() + 1);
    let config = format!(
        "policy: enabled\ntemplate: |\n  containers:\n  - name: istio-proxy\n    image: proxy:big\n{padding}"
    );
    assert!(config.len() > 2 << 20);
    let policy = host_tests::load_built(&host_tests::injector_wasm(), host_tests::BUILD_INJECTOR)
        .unwrap()
        .with_fixtures(
            host_tests::KubernetesFixtures::new()
                .respond(
                    "get_resource",
                    json!({"name": "istio-sidecar-injector"}),
                    json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"config": config}}),
                )
                .respond(
                    "get_resource",
                    json!({"name": "istio"}),
                    json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"mesh": "{}"}}),
                ),
        );
    let response = policy
        .validate(&request, &json!({"requirements": "off", "configMaps": {}}))
        .unwrap_or_else(|e| panic!("no answer, the module failed: {e}"));
    assert_eq!(response["accepted"], true, "{response}");
    let containers = &response["mutated_object"]["spec"]["containers"];
    assert_eq!(containers[1]["image"], "proxy:big", "{containers}");
}
