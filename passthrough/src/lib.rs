//! The cost floor for benchmarks: JSON in and out of wasm, nothing else.
//!
//! A Kubewarden waPC policy built with the same SDK, target and release profile as the
//! sidecar injector. `validate` parses the whole `ValidationRequest` with the SDK (request and
//! settings as JSON) and accepts it; `validate_settings` accepts any JSON object. Whatever the
//! injector costs above this module is the injector's own work plus what the host does with its
//! answer, which the answer floor (below) measures apart.
//!
//! A fourth operation, `mutate`, is the floor for a mutating policy: it parses the request the
//! same way and answers with the request's object, unchanged, as the mutated object. Kubewarden
//! wants the whole object back from a mutating policy, so writing it out is a cost every
//! mutating policy pays, however little it changes.
//!
//! Build: `cargo build --target wasm32-wasip1 --release -p passthrough`
//! (→ `target/wasm32-wasip1/release/passthrough.wasm`).
//!
//! # The answer floor
//!
//! A mutating answer costs the host more than an acceptance: it parses the whole
//! `mutated_object` back, diffs it against the request's object into a JSON patch and
//! base64-encodes that. Any policy that gives the same answer pays it, so the module can be built
//! to give a fixed answer, to measure that cost beside the module's own work: with
//! `PASSTHROUGH_ANSWER` set to the absolute path of a file holding a `ValidationResponse`
//! (`{"accepted":true,"mutated_object":{…}}`), `build.rs` bakes the file in and `validate`,
//! after parsing the whole request as above, returns those bytes unchanged. Baked with the
//! injector's answer to a request, the module costs the host what the injector's answer costs
//! while doing no more work itself than the floor (and a copy of the answer); the injector's
//! cost above that is its own code. Build it into a target directory of its own, so that the plain floor above is not
//! replaced (`scripts/real-hosts-bench` does so for each of its requests):
//! `PASSTHROUGH_ANSWER=/abs/answer.json CARGO_TARGET_DIR=/tmp/answer-floor cargo build
//! --target wasm32-wasip1 --release -p passthrough`. Without the variable (or with it empty)
//! nothing is baked in and `validate` accepts.

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

/// The answer baked in by `build.rs` from `PASSTHROUGH_ANSWER`: empty unless this is an answer
/// floor build.
const ANSWER: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/answer.json"));

/// Parses the whole request (as the injector must), then accepts it, or gives the baked answer
/// unchanged in an answer floor build.
fn validate(payload: &[u8]) -> CallResult {
    let request = ValidationRequest::<Settings>::new(payload)?;
    // Keep the parsed request alive until here so the parse cannot be optimised away.
    std::hint::black_box(&request);
    if ANSWER.is_empty() {
        accept_request()
    } else {
        Ok(ANSWER.to_vec())
    }
}

/// Parses the whole request and answers with its object as the mutated object.
fn mutate(payload: &[u8]) -> CallResult {
    let request = ValidationRequest::<Settings>::new(payload)?;
    mutate_request(request.request.object)
}
