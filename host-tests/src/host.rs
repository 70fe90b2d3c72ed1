//! Per-instance host state, and the host-call dispatcher Kubewarden gives the waPC host.
//!
//! The dispatcher mirrors policy-evaluator's `runtimes/callback.rs` `host_callback`: binding
//! `kubewarden` only; `tracing`/`log` always succeeds with an empty answer (the SDK's logging
//! drain panics the guest otherwise); the `kubernetes`, `oci`, `net` and `crypto` operations are
//! answered from [`KubernetesFixtures`]; anything else fails with policy-evaluator's messages
//! (`unknown binding: …`, `unknown namespace: …`, `unknown operation: …`).

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::Value;
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

use crate::kubernetes::{HostCall, KubernetesFixtures};
use crate::wapc::WapcState;

/// Guest stdout/stderr are kept in memory up to this size; writing more traps the guest.
const OUTPUT_CAPACITY: usize = 64 << 20;

/// Everything one `Store` holds: WASI, the waPC exchange and the host-call dispatcher.
pub struct HostState {
    /// WASI preview 1 with no args, env or preopens, like wasmtime-provider's context.
    pub wasi: WasiP1Ctx,
    /// waPC buffers.
    pub wapc: WapcState,
    /// Answers `__host_call`.
    pub host: KubewardenHost,
    /// What the guest wrote to stdout (a panic message goes to stderr).
    pub stdout: MemoryOutputPipe,
    /// What the guest wrote to stderr.
    pub stderr: MemoryOutputPipe,
}

impl HostState {
    /// A fresh state for one instance.
    ///
    /// Unlike policy-server, which inherits the host's stdio, the guest's output is captured so
    /// a panic message can be shown with the trap it ends in.
    pub fn new(fixtures: KubernetesFixtures) -> Self {
        Self::build(fixtures, |_| {})
    }

    /// A state whose WASI randomness is a fixed stream: what a guest draws from it (Rust's
    /// hash-map seeds, say) is the same on every run, so a snapshot of the guest is too.
    pub fn deterministic() -> Self {
        Self::build(KubernetesFixtures::default(), |wasi| {
            wasi.secure_random(StdRng::seed_from_u64(0))
                .insecure_random(StdRng::seed_from_u64(1))
                .insecure_random_seed(0);
        })
    }

    fn build(fixtures: KubernetesFixtures, configure: impl FnOnce(&mut WasiCtxBuilder)) -> Self {
        let stdout = MemoryOutputPipe::new(OUTPUT_CAPACITY);
        let stderr = MemoryOutputPipe::new(OUTPUT_CAPACITY);
        let mut builder = WasiCtxBuilder::new();
        builder.stdout(stdout.clone()).stderr(stderr.clone());
        configure(&mut builder);
        let wasi = builder.build_p1();
        HostState {
            wasi,
            wapc: WapcState::default(),
            host: KubewardenHost::new(fixtures),
            stdout,
            stderr,
        }
    }
}

/// Kubewarden's host-call callback, answering from fixtures and recording every call.
#[derive(Debug, Default)]
pub struct KubewardenHost {
    fixtures: KubernetesFixtures,
    /// Calls made, in order (log lines excluded).
    pub calls: Vec<HostCall>,
    /// Payloads of `kubewarden/tracing/log` calls (JSON if they parse, else a JSON string).
    pub logs: Vec<Value>,
}

impl KubewardenHost {
    /// A dispatcher answering from `fixtures`.
    pub fn new(fixtures: KubernetesFixtures) -> Self {
        KubewardenHost {
            fixtures,
            calls: Vec::new(),
            logs: Vec::new(),
        }
    }

    /// Answers one `__host_call`: the response bytes, or the error string the guest receives.
    pub fn call(
        &mut self,
        binding: &str,
        namespace: &str,
        operation: &str,
        payload: &[u8],
    ) -> Result<Vec<u8>, String> {
        let parsed = serde_json::from_slice::<Value>(payload);
        let request = match &parsed {
            Ok(request) => request.clone(),
            Err(_) => Value::String(String::from_utf8_lossy(payload).into_owned()),
        };
        if binding == "kubewarden" && namespace == "tracing" {
            if operation == "log" {
                self.logs.push(request);
                return Ok(Vec::new());
            }
            return Err(format!("unknown operation: {operation}"));
        }
        self.calls.push(HostCall {
            binding: binding.to_owned(),
            namespace: namespace.to_owned(),
            operation: operation.to_owned(),
            request: request.clone(),
        });
        if binding != "kubewarden" {
            return Err(format!("unknown binding: {binding}"));
        }
        let known = match namespace {
            "kubernetes" => matches!(
                operation,
                "get_resource" | "list_resources_by_namespace" | "list_resources_all" | "can_i"
            ),
            "oci" => matches!(
                operation,
                "v1/verify"
                    | "v2/verify"
                    | "v1/manifest_digest"
                    | "v1/oci_manifest"
                    | "v1/oci_manifest_config"
            ),
            "net" => operation == "v1/dns_lookup_host",
            "crypto" => operation == "v1/is_certificate_trusted",
            _ => return Err(format!("unknown namespace: {namespace}")),
        };
        if !known {
            return Err(format!("unknown operation: {operation}"));
        }
        if let Err(err) = parsed {
            // policy-evaluator fails the same way when the payload does not deserialize.
            return Err(err.to_string());
        }
        self.fixtures
            .answer(namespace, operation, &request)
            .unwrap_or_else(|| {
                Err(format!(
                    "host-tests: no fixture answers kubewarden/{namespace}/{operation} {request}"
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn logging_always_succeeds_and_is_not_a_recorded_call() {
        let mut host = KubewardenHost::default();
        let answer = host.call(
            "kubewarden",
            "tracing",
            "log",
            br#"{"level":"info","msg":"hi"}"#,
        );
        assert_eq!(answer, Ok(Vec::new()));
        assert!(host.calls.is_empty());
        assert_eq!(host.logs, vec![json!({"level": "info", "msg": "hi"})]);
    }

    #[test]
    fn unknown_binding_namespace_and_operation_use_policy_evaluator_messages() {
        let mut host = KubewardenHost::default();
        assert_eq!(
            host.call("other", "kubernetes", "get_resource", b"{}"),
            Err("unknown binding: other".into())
        );
        assert_eq!(
            host.call("kubewarden", "fs", "read", b"{}"),
            Err("unknown namespace: fs".into())
        );
        assert_eq!(
            host.call("kubewarden", "kubernetes", "delete_resource", b"{}"),
            Err("unknown operation: delete_resource".into())
        );
        assert_eq!(host.calls.len(), 3, "every call is recorded");
    }

    #[test]
    fn kubernetes_calls_are_answered_from_fixtures_and_recorded() {
        let fixtures = KubernetesFixtures::new().respond(
            "get_resource",
            json!({"kind": "ConfigMap", "name": "istio"}),
            json!({"data": {"mesh": ""}}),
        );
        let mut host = KubewardenHost::new(fixtures);
        let request = json!({"api_version": "v1", "kind": "ConfigMap", "name": "istio", "namespace": "istio-system", "disable_cache": false});
        let answer = host.call(
            "kubewarden",
            "kubernetes",
            "get_resource",
            request.to_string().as_bytes(),
        );
        assert_eq!(answer, Ok(br#"{"data":{"mesh":""}}"#.to_vec()));
        let unanswered = host.call("kubewarden", "kubernetes", "list_resources_all", b"{}");
        assert!(unanswered.is_err_and(|err| err.contains("no fixture answers")));
        assert!(
            host.calls[0]
                .matches(&json!({"operation": "get_resource", "request": {"name": "istio"}}))
        );
        assert_eq!(host.calls[1].operation, "list_resources_all");
    }
}
