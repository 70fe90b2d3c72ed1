//! The pass-through module on the policy-server-like host: the protocol, settings, a fresh
//! instance per request, and `annotate-policy`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use host_tests::{BUILD_PASSTHROUGH, Policy, admission_response, requests};
use serde_json::json;

/// Compiled once for the whole test binary.
fn passthrough() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| {
        host_tests::load_built(&host_tests::passthrough_wasm(), BUILD_PASSTHROUGH)
            .unwrap_or_else(|err| panic!("{err:#}"))
    })
}

#[test]
fn speaks_protocol_v1() {
    assert_eq!(passthrough().protocol_version(), Ok("v1".to_owned()));
}

#[test]
fn empty_settings_are_valid() {
    assert_eq!(
        passthrough().validate_settings(&json!({})),
        json!({"valid": true, "message": null})
    );
}

#[test]
fn settings_that_do_not_deserialize_are_reported_like_policy_server() {
    let response = passthrough().validate_settings(&json!(["not", "an", "object"]));
    assert_eq!(response["valid"], json!(false));
    let message = response["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("Error invoking settings validation callback: GuestCallFailure("),
        "{message}"
    );
}

#[test]
fn sleep_pod_is_accepted_unchanged() {
    let request = requests::sleep_pod_request();
    let validation = passthrough()
        .validate(&request, &json!({}))
        .expect("never traps");
    assert_eq!(validation["accepted"], json!(true));
    assert_eq!(validation["mutated_object"], json!(null));
    let admission = admission_response(&request["object"], &validation);
    assert_eq!(
        admission,
        json!({"allowed": true, "auditAnnotations": null, "warnings": null})
    );
}

/// The mutating floor of the benchmark: the request's own object, handed back whole.
#[test]
fn mutate_hands_the_pod_back_unchanged() {
    let request = requests::sleep_pod_request();
    let payload = host_tests::validation_payload(&request, &json!({}));
    let answer = passthrough().call("mutate", &payload).expect("never traps");
    let response: serde_json::Value = serde_json::from_slice(&answer).expect("JSON");
    assert_eq!(response["accepted"], json!(true));
    assert_eq!(response["mutated_object"], request["object"]);
    let admission = admission_response(&request["object"], &response);
    assert_eq!(admission["allowed"], json!(true));
    assert!(admission.get("patch").is_none(), "{admission}");
}

#[test]
fn each_request_gets_a_fresh_instance() {
    let request = requests::pod_create_request(requests::pod_with_env_vars(200));
    for _ in 0..3 {
        let validation = passthrough()
            .validate(&request, &json!({}))
            .expect("never traps");
        assert_eq!(validation["accepted"], json!(true));
    }
}

#[test]
fn a_request_that_does_not_parse_is_a_guest_error_not_a_trap() {
    let result = passthrough().call("validate", b"{\"request\": 42}");
    assert!(
        matches!(result, Err(host_tests::GuestError::GuestCallFailure(_))),
        "{result:?}"
    );
    let unknown = passthrough().call("audit", b"{}");
    assert_eq!(
        unknown,
        Err(host_tests::GuestError::GuestCallFailure(
            "No handler registered for function audit".into()
        ))
    );
}

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("host-tests-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn annotate_policy_round_trips_metadata() {
    let wasm = host_tests::passthrough_wasm();
    assert!(
        wasm.exists(),
        "{} not found: build it first: {BUILD_PASSTHROUGH}",
        wasm.display()
    );
    let dir = TempDir::new("annotate");
    let metadata = dir.path().join("metadata.yml");
    std::fs::write(
        &metadata,
        "rules:\n- apiGroups: ['']\n  apiVersions: [v1]\n  resources: [pods]\n  operations: [CREATE]\nmutating: false\nannotations:\n  io.kubewarden.policy.title: passthrough\n",
    )
    .expect("write metadata");
    let usage = dir.path().join("README.md");
    std::fs::write(&usage, "# passthrough\n").expect("write usage");
    let output = dir.path().join("annotated-policy.wasm");

    host_tests::annotate_file(&metadata, &wasm, &output, Some(&usage)).expect("annotates");
    let annotated = std::fs::read(&output).expect("output written");
    let section = host_tests::read_metadata(&annotated).expect("metadata section");
    assert_eq!(section["protocolVersion"], json!("v1"));
    assert_eq!(section["mutating"], json!(false));
    assert_eq!(section["backgroundAudit"], json!(true));
    assert_eq!(section["executionMode"], json!("kubewarden-wapc"));
    assert_eq!(
        section["annotations"]["io.kubewarden.policy.usage"],
        json!("# passthrough\n")
    );

    // The annotated module still runs.
    let policy =
        Policy::from_bytes(&annotated, host_tests::PolicyOptions::default()).expect("loads");
    assert_eq!(policy.protocol_version(), Ok("v1".to_owned()));
}

#[test]
fn annotate_policy_refuses_metadata_without_mutating() {
    let dir = TempDir::new("annotate-invalid");
    let metadata = dir.path().join("metadata.yml");
    std::fs::write(&metadata, "rules:\n- apiGroups: ['']\n  apiVersions: [v1]\n  resources: [pods]\n  operations: [CREATE]\n")
        .expect("write metadata");
    let output = dir.path().join("annotated-policy.wasm");
    let err = host_tests::annotate_file(&metadata, &host_tests::passthrough_wasm(), &output, None)
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("metadata lacks required key `mutating`"),
        "{err:#}"
    );
    assert!(!output.exists(), "no output on error");
}
