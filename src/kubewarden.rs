//! The Kubewarden face: waPC registrations and the mapping between Kubewarden's JSON payloads
//! and [`crate::admission`]. Decides nothing.
//!
//! policy-server builds a fresh instance for every admission and passes the settings with each
//! `validate`, so settings are parsed on every call, and the template compiled unless the module
//! was pre-initialised with it (`wizer_initialize`); `validate_settings` runs once when the
//! policy is loaded and refuses anything that could fail later.

use kubewarden_policy_sdk::protocol_version_guest;
use kubewarden_policy_sdk::response::ValidationResponse;
use kubewarden_policy_sdk::settings::SettingsValidationResponse;
use kubewarden_policy_sdk::wapc_guest::{CallResult, register_function};
use serde::Deserialize;
use serde_json::Value;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};

use k8s_openapi::api::core::v1::Service;
use kubewarden_policy_sdk::host_capabilities::kubernetes::{
    GetResourceRequest, ListResourcesByNamespaceRequest, get_resource, list_resources_by_namespace,
};

use crate::admission::{self, Cluster, ClusterError, Verdict};
use crate::config::{Config, InjectorConfig};
use crate::injector::Injector;
use crate::settings::{ConfigMapRef, PolicySettings};

/// Allocation is a large share of an admission's work (serde allocates per node): talc, faster
/// than the default dlmalloc on wasm, and, once the module is pre-initialised, a bump region
/// above the snapshot for admissions (the `snapshot-heap` crate, BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: snapshot_heap::WasmSnapshotHeap = snapshot_heap::wasm_heap();

/// Whether the waPC registry holds our operations already: in a pre-initialised module it does
/// from the start.
static REGISTERED: AtomicBool = AtomicBool::new(false);

/// Registers the policy's operations; called by the host before every request.
///
/// A pre-initialised instance starts with them registered, and registering them again would
/// rewrite (and so copy) the snapshot's pages that hold the registry on every admission.
#[allow(unsafe_code)] // the waPC host finds this entry point by its unmangled name
#[unsafe(no_mangle)]
pub extern "C" fn wapc_init() {
    if REGISTERED.load(Ordering::Relaxed) {
        return;
    }
    register_function("validate", validate);
    register_function("validate_settings", validate_settings);
    register_function("protocol_version", protocol_version_guest);
    register_function("admission_review", admission_review);
    REGISTERED.store(true, Ordering::Relaxed);
}

/// Pre-initialisation entry point, run once at build time by Wizer (`make policy.wasm`), never
/// by policy-server: it compiles the built-in template and parses its rendering for a sample
/// pod, and the snapshot Wizer takes afterwards makes every instance start with both. Settings
/// that carry the same template text (`policy.yaml` does) then skip the compiler and, for most
/// pods, the YAML parser. Wizer removes this export from the module it writes.
#[allow(unsafe_code)] // Wizer finds this entry point by its unmangled name
#[unsafe(export_name = "wizer-initialize")]
pub extern "C" fn wizer_initialize() {
    // The waPC registry (a hash map whose seed is a WASI `random_get` call) exists from the
    // start too; policy-server's own `wapc_init` call then finds it filled.
    wapc_init();
    // A failure only means a cold start; `validate_settings` reports template errors.
    if let Ok(injector) = Injector::new(Config::default()) {
        let _ = injector.check();
    }
    // The modern agent laid over the built-in proxy (native sidecars, hold, a status port) is a
    // template of its own: compiled and rendered here too, or every pod that turns it on pays
    // for compiling it. Measured in our host's bench (fresh instance per admission, as
    // policy-server): a pod with three probes, a native sidecar and an override, 764 → 508 µs.
    let native = InjectorConfig {
        native_sidecars: true,
        ..Default::default()
    };
    if let Ok(injector) = Injector::new(Config {
        injector: native,
        ..Default::default()
    }) {
        let _ = injector.check();
    }
    // Last: what the snapshot holds stays in talc's heap, admissions allocate above it.
    ALLOCATOR.freeze();
}

/// `{"request": AdmissionRequest, "settings": {...}}`, as policy-server sends it.
#[derive(Deserialize)]
struct ValidatePayload {
    #[serde(default)]
    request: Value,
    #[serde(default)]
    settings: Value,
}

fn validate(payload: &[u8]) -> CallResult {
    let mut parsed = serde_json::from_slice::<ValidatePayload>(payload);
    let response = match &mut parsed {
        Err(e) => rejection(format!("the validate payload is not valid JSON: {e}"), 400),
        Ok(ValidatePayload { request, settings }) => match PolicySettings::from_payload(settings) {
            Err(error) => rejection(error.to_string(), 500),
            Ok(settings) => to_response(admission::review(settings, &HostCluster, request)),
        },
    };
    let answer = serde_json::to_vec(&response);
    discard((response, parsed));
    Ok(answer?)
}

/// Drops `value`, except on an instance's first admission: in a pre-initialised instance
/// admissions allocate from a region of their own, and policy-server throws the instance away
/// after the answer, so walking the request and the mutated pod to free them is wasted work.
/// A host that keeps the instance gets every later admission's memory back (see
/// `snapshot_heap::SnapshotHeap::leak_once`).
fn discard<T>(value: T) {
    if ALLOCATOR.leak_once() {
        std::mem::forget(value);
    }
}

fn validate_settings(payload: &[u8]) -> CallResult {
    let result = serde_json::from_slice::<Value>(payload)
        .map_err(|e| format!("settings are not valid JSON: {e}"))
        .and_then(|settings| PolicySettings::validate(&settings).map_err(|e| e.to_string()));
    let response = SettingsValidationResponse {
        valid: result.is_ok(),
        message: result.err(),
    };
    Ok(serde_json::to_vec(&response)?)
}

/// The generic-webhook operation: a whole AdmissionReview in (optionally with a top-level
/// `settings` object), the AdmissionReview response out.
fn admission_review(payload: &[u8]) -> CallResult {
    let response = match serde_json::from_slice::<Value>(payload) {
        Ok(review) => {
            let settings = review.get("settings").cloned().unwrap_or(Value::Null);
            admission::respond_to_review(
                PolicySettings::from_payload(&settings),
                &HostCluster,
                &review,
            )
        }
        Err(e) => admission::unreadable_review(&e),
    };
    Ok(serde_json::to_vec(&response)?)
}

/// The cluster as Kubewarden's context-aware host capabilities show it.
struct HostCluster;

impl Cluster for HostCluster {
    fn services(&self, namespace: &str) -> Result<Vec<Value>, ClusterError> {
        // Only what the requirements read: keeps the payload small on busy namespaces.
        let masks = [
            "metadata.name",
            "metadata.namespace",
            "spec.selector",
            "spec.type",
        ];
        let request = ListResourcesByNamespaceRequest {
            api_version: "v1".into(),
            kind: "Service".into(),
            namespace: namespace.into(),
            label_selector: None,
            field_selector: None,
            field_masks: Some(masks.iter().map(|m| m.to_string()).collect::<BTreeSet<_>>()),
        };
        let list = list_resources_by_namespace::<Service>(&request)
            .map_err(|e| ClusterError(e.to_string()))?;
        list.items
            .iter()
            .map(|s| serde_json::to_value(s).map_err(|e| ClusterError(e.to_string())))
            .collect()
    }

    fn config_map(&self, config_map: &ConfigMapRef) -> Result<Value, ClusterError> {
        let request = GetResourceRequest {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: config_map.name.clone(),
            namespace: Some(config_map.namespace.clone()),
            disable_cache: false,
            field_masks: None,
        };
        get_resource::<Value>(&request).map_err(|e| ClusterError(e.to_string()))
    }

    fn namespace(&self, name: &str) -> Result<Value, ClusterError> {
        // Only the labels decide (revisions): keeps the answer small.
        let request = GetResourceRequest {
            api_version: "v1".into(),
            kind: "Namespace".into(),
            name: name.into(),
            namespace: None,
            disable_cache: false,
            field_masks: Some(BTreeSet::from(["metadata.labels".to_string()])),
        };
        get_resource::<Value>(&request).map_err(|e| ClusterError(e.to_string()))
    }
}

fn rejection(message: String, code: u16) -> ValidationResponse {
    to_response(Verdict::Reject { message, code })
}

fn to_response(verdict: Verdict) -> ValidationResponse {
    let (accepted, message, code, mutated_object, warnings) = match verdict {
        Verdict::Accept { warnings } => (true, None, None, None, warnings),
        Verdict::Mutate { object, warnings } => (true, None, None, Some(object), warnings),
        Verdict::Reject { message, code } => (false, Some(message), Some(code), None, Vec::new()),
    };
    ValidationResponse {
        accepted,
        message,
        code,
        mutated_object,
        audit_annotations: None,
        warnings: (!warnings.is_empty()).then_some(warnings),
    }
}
