//! Hand-written WAT guests that pin the host's own behaviour: a fresh instance per call, the
//! epoch deadline, host-call plumbing, missing exports.

use std::time::{Duration, Instant};

use host_tests::{GuestError, KubernetesFixtures, Policy, PolicyOptions};
use serde_json::json;

/// The waPC imports a guest may use, shared by the modules below.
const IMPORTS: &str = r#"
  (import "wapc" "__guest_request" (func $guest_request (param i32 i32)))
  (import "wapc" "__guest_response" (func $guest_response (param i32 i32)))
  (import "wapc" "__guest_error" (func $guest_error (param i32 i32)))
  (import "wapc" "__host_call" (func $host_call (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wapc" "__host_response_len" (func $host_response_len (result i32)))
  (import "wapc" "__host_response" (func $host_response (param i32)))
  (import "wapc" "__host_error_len" (func $host_error_len (result i32)))
  (import "wapc" "__host_error" (func $host_error (param i32)))
  (memory (export "memory") 1)
"#;

fn guest(body: &str, options: PolicyOptions) -> Policy {
    let text = format!("(module {IMPORTS} {body})");
    let wasm = wat::parse_str(&text).expect("test guest is valid WAT");
    Policy::from_bytes(&wasm, options).expect("test guest compiles and links")
}

/// Counts `wapc_init` and `__guest_call` runs in globals and answers with their sum as one
/// ASCII digit: "2" on a fresh instance, more if state survived.
const COUNTER: &str = r#"
  (global $runs (mut i32) (i32.const 0))
  (func (export "wapc_init") (global.set $runs (i32.add (global.get $runs) (i32.const 1))))
  (func (export "__guest_call") (param i32 i32) (result i32)
    (global.set $runs (i32.add (global.get $runs) (i32.const 1)))
    (i32.store8 (i32.const 0) (i32.add (i32.const 48) (global.get $runs)))
    (call $guest_response (i32.const 0) (i32.const 1))
    (i32.const 1))
"#;

#[test]
fn every_call_gets_a_fresh_instance_initialised_by_wapc_init() {
    let policy = guest(COUNTER, PolicyOptions::default());
    assert_eq!(policy.call("validate", b"{}"), Ok(b"2".to_vec()));
    assert_eq!(policy.call("validate", b"{}"), Ok(b"2".to_vec()));
}

#[test]
fn endless_loop_hits_the_epoch_deadline() {
    let body = r#"
      (func (export "wapc_init"))
      (func (export "__guest_call") (param i32 i32) (result i32) (loop $forever (br $forever)) (i32.const 1))
    "#;
    let options = PolicyOptions {
        epoch_tick: Duration::from_millis(10),
        deadline: Duration::from_millis(50),
    };
    let policy = guest(body, options);
    let started = Instant::now();
    let result = policy.call("validate", b"{}");
    assert_eq!(
        result,
        Err(GuestError::DeadlineExceeded {
            export: "__guest_call"
        })
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        result
            .unwrap_err()
            .to_string()
            .contains("execution deadline exceeded")
    );
}

#[test]
fn a_trap_is_an_error_value_naming_the_export() {
    let body = r#"
      (func (export "wapc_init"))
      (func (export "__guest_call") (param i32 i32) (result i32) unreachable)
    "#;
    let policy = guest(body, PolicyOptions::default());
    match policy.call("validate", b"{}") {
        Err(GuestError::Trap {
            export, message, ..
        }) => {
            assert_eq!(export, "__guest_call");
            assert!(message.contains("unreachable"), "{message}");
        }
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[test]
fn missing_guest_call_export_is_named() {
    let policy = guest(r#"(func (export "wapc_init"))"#, PolicyOptions::default());
    let err = policy.call("validate", b"{}").unwrap_err();
    assert_eq!(err.to_string(), "guest does not export `__guest_call`");
}

/// Forwards the call to `kubewarden`/`kubernetes`/<operation> with the payload as request and
/// answers with the host's response, or fails with the host's error.
const FORWARDER: &str = r#"
  (data (i32.const 16) "kubewarden")
  (data (i32.const 32) "kubernetes")
  (func (export "wapc_init"))
  (func (export "__guest_call") (param $op_len i32) (param $msg_len i32) (result i32)
    (call $guest_request (i32.const 256) (i32.const 4096))
    (if (result i32)
      (call $host_call (i32.const 16) (i32.const 10) (i32.const 32) (i32.const 10)
                       (i32.const 256) (local.get $op_len) (i32.const 4096) (local.get $msg_len))
      (then
        (call $host_response (i32.const 32768))
        (call $guest_response (i32.const 32768) (call $host_response_len))
        (i32.const 1))
      (else
        (call $host_error (i32.const 32768))
        (call $guest_error (i32.const 32768) (call $host_error_len))
        (i32.const 0))))
"#;

#[test]
fn host_calls_are_answered_from_fixtures_and_recorded() {
    let fixtures = KubernetesFixtures::new()
        .respond("get_resource", json!({"name": "istio"}), json!({"kind": "ConfigMap"}))
        .fail("get_resource", json!({"name": "secret"}), "Policy has not been granted access to Kubernetes v1/Secret resources. The violation has been reported.");
    let policy = guest(FORWARDER, PolicyOptions::default()).with_fixtures(fixtures.clone());

    let request = json!({"api_version": "v1", "kind": "ConfigMap", "name": "istio", "namespace": "istio-system", "disable_cache": false});
    let invocation = policy.invoke("get_resource", request.to_string().as_bytes(), &fixtures);
    assert_eq!(invocation.json(), Ok(json!({"kind": "ConfigMap"})));
    assert_eq!(invocation.host_calls.len(), 1);
    assert!(invocation.host_calls[0].matches(&json!({"binding": "kubewarden", "namespace": "kubernetes", "operation": "get_resource", "request": request})));

    let denied = policy.call(
        "get_resource",
        br#"{"api_version":"v1","kind":"Secret","name":"secret"}"#,
    );
    assert!(
        matches!(&denied, Err(GuestError::GuestCallFailure(m)) if m.contains("has not been granted access")),
        "{denied:?}"
    );
    let unknown = policy.call("delete_resource", b"{}");
    assert_eq!(
        unknown,
        Err(GuestError::GuestCallFailure(
            "unknown operation: delete_resource".into()
        ))
    );
}
