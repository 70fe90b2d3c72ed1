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
