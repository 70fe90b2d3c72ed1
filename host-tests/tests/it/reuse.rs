//! One instance kept for many admissions, as `kwctl bench` runs a policy: answers stay the
//! same and the instance's memory does not grow after the first admissions.

use host_tests::{KeptInstance, requests, validation_payload};
use serde_json::{Value, json};

/// Sends `payload` `count` times to `instance`; every answer must equal `expected`.
fn repeat(instance: &mut KeptInstance<'_>, payload: &[u8], count: usize, expected: &[u8]) {
    for i in 0..count {
        let answer = instance
            .call("validate", payload)
            .unwrap_or_else(|err| panic!("admission {i}: {err}"));
        assert!(
            answer == expected,
            "admission {i} answered differently: {}",
            String::from_utf8_lossy(&answer)
        );
    }
}

fn first_answer(instance: &mut KeptInstance<'_>, payload: &[u8]) -> Vec<u8> {
    let answer = instance.call("validate", payload).expect("answers");
    let response: Value = serde_json::from_slice(&answer).expect("JSON");
    assert_eq!(response["accepted"], true, "{response}");
    assert!(response["mutated_object"].is_object(), "{response}");
    answer
}

/// The pre-initialised module leaves its first admission's values unfreed (a fresh instance
/// is thrown away after it); from the second on it frees them, and the region they came from
/// starts over, so thousands of admissions later the memory is what it was after a few.
#[test]
fn a_kept_instance_stops_growing_after_its_first_admissions() {
    let sleep = validation_payload(&requests::sleep_pod_request(), &json!({}));
    let large = validation_payload(
        &requests::pod_create_request(requests::pod_with_env_vars(2000)),
        &json!({}),
    );
    for (name, policy) in [
        ("policy.wasm", crate::injector::injector()),
        (
            "the module before pre-initialisation",
            crate::preinit::cargo_module(),
        ),
    ] {
        let mut instance = policy
            .instance()
            .unwrap_or_else(|err| panic!("{name}: {err}"));
        let sleep_answer = first_answer(&mut instance, &sleep);
        let large_answer = first_answer(&mut instance, &large);
        repeat(&mut instance, &sleep, 20, &sleep_answer);
        repeat(&mut instance, &large, 3, &large_answer);
        let warm = instance.memory_size();
        repeat(&mut instance, &sleep, 3000, &sleep_answer);
        repeat(&mut instance, &large, 30, &large_answer);
        assert_eq!(
            instance.memory_size(),
            warm,
            "{name}: memory grew over 3000 sleep pods and 30 pods of 2000 env vars (1.2 MB each)"
        );
    }
}

/// `kwctl bench` calls `validate_settings` on the instance many times before `validate`; the
/// region must come back whole after those too.
#[test]
fn settings_checks_before_admissions_leave_no_memory_behind() {
    let mut instance = crate::injector::injector().instance().expect("starts");
    let settings = json!({}).to_string();
    let sleep = validation_payload(&requests::sleep_pod_request(), &json!({}));
    for _ in 0..2000 {
        let answer = instance
            .call("validate_settings", settings.as_bytes())
            .expect("answers");
        assert_eq!(
            serde_json::from_slice::<Value>(&answer).expect("JSON")["valid"],
            true
        );
    }
    let expected = first_answer(&mut instance, &sleep);
    repeat(&mut instance, &sleep, 20, &expected);
    let warm = instance.memory_size();
    repeat(&mut instance, &sleep, 2000, &expected);
    assert_eq!(instance.memory_size(), warm);
}
