//! Runs a built policy module the way Kubewarden's policy-server does, for tests and benchmarks.
//!
//! Build the modules first:
//!
//! ```text
//! make policy.wasm    # sidecar_injector.wasm, and policy.wasm: the same, pre-initialised
//! cargo build --target wasm32-wasip1 --release -p passthrough  # passthrough.wasm (the cost floor)
//! ```
//!
//! What it mirrors (policy-evaluator / wasmtime-provider / wapc-rs):
//! * the module is compiled once; a `Linker` with WASI preview 1 and the nine `wapc.*` imports
//!   is turned into an `InstancePre` once;
//! * **every call gets a fresh `Store` and instance** (policy-server's `rehydrate` per request):
//!   instantiate, `_start` if exported, `wapc_init`, then `__guest_call`, so `wapc_init` and
//!   settings parsing are paid on every admission;
//! * an epoch deadline: a background thread ticks the engine epoch (1 s) and a call may run
//!   for the deadline (2 s), as with `--policy-timeout`;
//! * the host calls answer as policy-evaluator's callback does (`tracing/log` succeeds,
//!   Kubernetes calls come from [`KubernetesFixtures`], the rest is `unknown …`);
//! * `validate_settings` errors are reported as policy-server reports them, and
//!   [`admission_response`] turns a `ValidationResponse` into policy-server's answer with its
//!   JSON-patch diff.
//!
//! A guest trap is an error value ([`GuestError`]), never a host panic.
//!
//! | module | what it holds |
//! |---|---|
//! | [`policy`] | [`Policy`]: compile once, instantiate per call; [`GuestError`], [`Invocation`] |
//! | [`wapc`] | the nine `wapc.*` imports |
//! | [`host`] | per-instance state and Kubewarden's host-call dispatcher |
//! | [`kubernetes`] | [`KubernetesFixtures`] and [`HostCall`] records |
//! | [`admission`] | [`admission_response`], [`apply_patch`]: policy-server's diff and the API server's patch |
//! | [`metadata`] | `kwctl annotate`: [`annotate`], [`read_metadata`] |
//! | [`preinit`] | Wizer pre-initialisation: [`preinitialize`] |
//! | [`requests`] | admission requests for tests and benchmarks |

pub mod admission;
pub mod host;
pub mod kubernetes;
pub mod metadata;
pub mod policy;
pub mod preinit;
pub mod requests;
pub mod wapc;

use std::path::PathBuf;

pub use admission::{admission_response, apply_admission_response, apply_patch, decode_patch};
pub use kubernetes::{HostCall, KubernetesFixtures, json_contains};
pub use metadata::{annotate, annotate_file, metadata_from_yaml, read_metadata};
pub use policy::{GuestError, Invocation, KeptInstance, Policy, PolicyOptions, validation_payload};
pub use preinit::preinitialize;

/// The command that builds the sidecar injector module and pre-initialises it (`policy.wasm`).
pub const BUILD_INJECTOR: &str = "make policy.wasm";
/// The command that builds the module as cargo writes it, before pre-initialisation.
pub const BUILD_INJECTOR_CARGO: &str = "cargo build --target wasm32-wasip1 --release";
/// The command that builds the pass-through module.
pub const BUILD_PASSTHROUGH: &str = "cargo build --target wasm32-wasip1 --release -p passthrough";

/// `target/wasm32-wasip1/release/<file_name>` of this workspace (honours `CARGO_TARGET_DIR`,
/// relative to the workspace root like cargo).
pub fn release_wasm(file_name: &str) -> PathBuf {
    let workspace = workspace_dir();
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace.join(dir),
        None => workspace.join("target"),
    };
    target.join("wasm32-wasip1").join("release").join(file_name)
}

/// The workspace's root directory.
pub fn workspace_dir() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map_or_else(|| manifest_dir.join(".."), PathBuf::from)
}

/// Path of the sidecar injector module that ships: `policy.wasm`, pre-initialised.
pub fn injector_wasm() -> PathBuf {
    workspace_dir().join("policy.wasm")
}

/// Path of the sidecar injector module as cargo builds it, not pre-initialised.
pub fn injector_cargo_wasm() -> PathBuf {
    release_wasm("sidecar_injector.wasm")
}

/// Path of the built pass-through module.
pub fn passthrough_wasm() -> PathBuf {
    release_wasm("passthrough.wasm")
}

/// Loads a built module, failing with the command to build it when it is missing.
pub fn load_built(path: &std::path::Path, build_command: &str) -> anyhow::Result<Policy> {
    if !path.exists() {
        anyhow::bail!(
            "{} not found: build it first: {build_command}",
            path.display()
        );
    }
    Policy::load(path)
}
