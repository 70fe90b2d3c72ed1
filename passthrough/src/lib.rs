//! The cost floor for benchmarks: JSON in and out of wasm, nothing else.
//!
//! A Kubewarden waPC policy built with the same SDK, target and release profile as the
//! sidecar injector. `validate` parses the whole `ValidationRequest` with the SDK (request and
//! settings as JSON) and accepts it; `validate_settings` accepts any JSON object. Whatever the
//! injector costs above this module is the injector's own work.
//!
//! A fourth operation, `mutate`, is the floor for a mutating policy: it parses the request the
//! same way and answers with the request's object, unchanged, as the mutated object. Kubewarden
//! wants the whole object back from a mutating policy, so writing it out is a cost every
//! mutating policy pays, however little it changes.
//!
//! Build: `cargo build --target wasm32-wasip1 --release -p passthrough`
//! (→ `target/wasm32-wasip1/release/passthrough.wasm`).

use kubewarden_policy_sdk::request::ValidationRequest;
use kubewarden_policy_sdk::settings::Validatable;
use kubewarden_policy_sdk::wapc_guest::prelude::*;
use kubewarden_policy_sdk::{
    accept_request, mutate_request, protocol_version_guest, validate_settings,
};
use serde::Deserialize;

/// Any JSON object is valid settings; anything else fails to deserialize, as it would for a
/// real policy's settings struct.
#[derive(Deserialize, Default)]
#[serde(transparent)]
struct Settings(
    #[expect(dead_code, reason = "only deserialised, to refuse non-objects")]
    serde_json::Map<String, serde_json::Value>,
);

impl Validatable for Settings {
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Registers the three waPC functions every Kubewarden policy provides, and `mutate`.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub extern "C" fn wapc_init() {
    register_function("validate", validate);
    register_function("validate_settings", validate_settings::<Settings>);
    register_function("protocol_version", protocol_version_guest);
    register_function("mutate", mutate);
}

/// Parses the whole request (as the injector must) and accepts it.
fn validate(payload: &[u8]) -> CallResult {
    let request = ValidationRequest::<Settings>::new(payload)?;
    // Keep the parsed request alive until here so the parse cannot be optimised away.
    std::hint::black_box(&request);
    accept_request()
}

/// Parses the whole request and answers with its object as the mutated object.
fn mutate(payload: &[u8]) -> CallResult {
    let request = ValidationRequest::<Settings>::new(payload)?;
    mutate_request(request.request.object)
}
