//! A compiled policy module and the per-request instance policy-server makes of it.
//!
//! Compile once (`Engine`, `Module`, `Linker` + `InstancePre`), then for every call: a new
//! `Store`, instantiate, `_start` if exported, `wapc_init`, `__guest_call`, with an epoch
//! deadline — policy-server's `PolicyEvaluatorPre::rehydrate` followed by `validate`.

use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::{Value, json};
use wasmtime::{
    Config, Engine, Instance, InstancePre, Linker, Module, Store, Trap, TypedFunc, WasmParams,
    WasmResults,
};

use crate::host::HostState;
use crate::kubernetes::{HostCall, KubernetesFixtures};
use crate::wapc;

/// Why a call into the guest produced no response.
///
/// `Debug` of [`GuestError::GuestCallFailure`] reads like wapc's `GuestCallFailure("…")`, which
/// policy-server puts into its settings-validation message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GuestError {
    /// `__guest_call` returned 0: the handler returned an error, or there is no handler.
    #[error("guest call failure: {0}")]
    GuestCallFailure(String),
    /// The guest trapped (a Rust panic ends in an `unreachable` trap after printing to stderr).
    #[error("guest trapped in `{export}`: {message}{}", stderr_suffix(stderr))]
    Trap {
        /// Export that was running: `_start`, `wapc_init` or `__guest_call`.
        export: &'static str,
        /// The trap and its wasm backtrace.
        message: String,
        /// What the guest had written to stderr.
        stderr: String,
    },
    /// The epoch deadline passed (policy-server: "guest code interrupted, execution deadline exceeded").
    #[error("guest code interrupted, execution deadline exceeded (in `{export}`)")]
    DeadlineExceeded {
        /// Export that was running.
        export: &'static str,
    },
    /// The module cannot be instantiated (e.g. its start function trapped).
    #[error("cannot instantiate the module: {0}")]
    Instantiation(String),
    /// A required export is missing.
    #[error("guest does not export `{0}`")]
    MissingExport(&'static str),
    /// An export has the wrong signature.
    #[error("guest export `{name}` has the wrong type: {message}")]
    ExportType {
        /// Export name.
        name: &'static str,
        /// What wasmtime found.
        message: String,
    },
    /// `__guest_call` returned 1 without calling `__guest_response`.
    #[error("No error message OR response set for call success")]
    NoResponse,
    /// The guest's response is not what the operation must return.
    #[error("response to `{operation}` is invalid: {message}")]
    InvalidResponse {
        /// waPC operation.
        operation: String,
        /// What is wrong with it.
        message: String,
    },
    /// The operation name or payload is larger than a wasm32 length.
    #[error("{0} bytes do not fit a wasm32 length")]
    TooLarge(usize),
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.trim().is_empty() {
        String::new()
    } else {
        format!("\nguest stderr:\n{}", stderr.trim_end())
    }
}

/// How long a call may run, as policy-server configures it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PolicyOptions {
    /// Period of the background thread that increments the engine epoch (policy-server: 1 s).
    pub epoch_tick: Duration,
    /// Execution deadline of one call, rounded up to whole ticks (policy-server default: 2 s,
    /// `--policy-timeout` / `timeoutEvalSeconds`). The call is interrupted between
    /// `deadline - epoch_tick` and `deadline` after it starts.
    pub deadline: Duration,
}

impl Default for PolicyOptions {
    fn default() -> Self {
        PolicyOptions {
            epoch_tick: Duration::from_secs(1),
            deadline: Duration::from_secs(2),
        }
    }
}

impl PolicyOptions {
    fn deadline_ticks(&self) -> u64 {
        let tick = self.epoch_tick.as_nanos().max(1);
        let ticks = self.deadline.as_nanos().div_ceil(tick);
        u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
    }
}

/// Everything one call produced: the result and what the guest did on the way.
#[derive(Debug)]
pub struct Invocation {
    /// waPC operation that was called.
    pub operation: String,
    /// The guest's response bytes, or why there are none.
    pub result: Result<Vec<u8>, GuestError>,
    /// Host calls made (log lines excluded), in order.
    pub host_calls: Vec<HostCall>,
    /// `kubewarden/tracing/log` payloads.
    pub logs: Vec<Value>,
    /// `__console_log` messages.
    pub console_log: Vec<String>,
    /// Guest stdout.
    pub stdout: String,
    /// Guest stderr.
    pub stderr: String,
}

impl Invocation {
    /// The response parsed as JSON.
    pub fn json(&self) -> Result<Value, GuestError> {
        let bytes = self.result.as_ref().map_err(Clone::clone)?;
        serde_json::from_slice(bytes).map_err(|err| GuestError::InvalidResponse {
            operation: self.operation.clone(),
            message: format!("not JSON: {err}: {}", String::from_utf8_lossy(bytes)),
        })
    }
}

/// A policy module compiled once, instantiated afresh for every call.
pub struct Policy {
    engine: Engine,
    pre: InstancePre<HostState>,
    deadline_ticks: u64,
    fixtures: KubernetesFixtures,
    /// Dropping it stops the epoch ticker thread.
    _ticker: mpsc::Sender<()>,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("deadline_ticks", &self.deadline_ticks)
            .field("fixtures", &self.fixtures)
            .finish_non_exhaustive()
    }
}

impl Policy {
    /// Compiles the module at `path` with policy-server's timing (1 s ticks, 2 s deadline).
    pub fn load(path: impl AsRef<Path>) -> anyhow::Result<Policy> {
        Self::load_with(path, PolicyOptions::default())
    }

    /// Compiles the module at `path` with the given timing.
    pub fn load_with(path: impl AsRef<Path>, options: PolicyOptions) -> anyhow::Result<Policy> {
        let path = path.as_ref();
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read policy module {}", path.display()))?;
        Self::from_bytes(&bytes, options)
            .with_context(|| format!("policy module {}", path.display()))
    }

    /// Compiles a module from its binary form.
    pub fn from_bytes(wasm: &[u8], options: PolicyOptions) -> anyhow::Result<Policy> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        // `HOST_TESTS_PERFMAP=1 perf record …` names the guest's functions in the profile.
        if std::env::var_os("HOST_TESTS_PERFMAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config)?;
        let module = Module::new(&engine, wasm)
            .map_err(anyhow::Error::from)
            .context("cannot compile the module")?;

        let mut linker: Linker<HostState> = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |state: &mut HostState| &mut state.wasi)
            .map_err(anyhow::Error::from)
            .context("cannot add WASI preview 1 to the linker")?;
        wapc::add_to_linker(&mut linker)?;
        let pre = linker
            .instantiate_pre(&module)
            .map_err(anyhow::Error::from)
            .context("cannot link the module")?;

        let ticker = spawn_epoch_ticker(engine.clone(), options.epoch_tick)?;
        Ok(Policy {
            engine,
            pre,
            deadline_ticks: options.deadline_ticks(),
            fixtures: KubernetesFixtures::default(),
            _ticker: ticker,
        })
    }

    /// Uses `fixtures` to answer host calls made through [`Policy::call`] and the helpers.
    pub fn with_fixtures(mut self, fixtures: KubernetesFixtures) -> Self {
        self.fixtures = fixtures;
        self
    }

    /// Calls `operation` with `payload` on a fresh instance.
    pub fn call(&self, operation: &str, payload: &[u8]) -> Result<Vec<u8>, GuestError> {
        self.invoke(operation, payload, &self.fixtures).result
    }

    /// Calls `operation` with `payload` on a fresh instance whose host calls are answered from
    /// `fixtures`, and returns everything the call produced.
    pub fn invoke(
        &self,
        operation: &str,
        payload: &[u8],
        fixtures: &KubernetesFixtures,
    ) -> Invocation {
        let mut store = Store::new(&self.engine, HostState::new(fixtures.clone()));
        let result = self.run(&mut store, operation, payload);
        let state = store.into_data();
        Invocation {
            operation: operation.to_owned(),
            result,
            host_calls: state.host.calls,
            logs: state.host.logs,
            console_log: state.wapc.console_log,
            stdout: String::from_utf8_lossy(&state.stdout.contents()).into_owned(),
            stderr: String::from_utf8_lossy(&state.stderr.contents()).into_owned(),
        }
    }

    /// `protocol_version`: `"v1"` for every current policy.
    pub fn protocol_version(&self) -> Result<String, GuestError> {
        let invocation = self.invoke("protocol_version", &[], &self.fixtures);
        match invocation.json()? {
            Value::String(version) => Ok(version),
            other => Err(GuestError::InvalidResponse {
                operation: invocation.operation,
                message: format!("expected a JSON string, got {other}"),
            }),
        }
    }

    /// `validate_settings`, answered as policy-server reports it: `{"valid": …, "message": …}`;
    /// a guest error or trap becomes
    /// `valid: false, message: "Error invoking settings validation callback: <error>"`.
    pub fn validate_settings(&self, settings: &Value) -> Value {
        let payload = settings_or_empty(settings).to_string();
        match self.call("validate_settings", payload.as_bytes()) {
            Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Object(response))
                    if response.get("valid").is_some_and(Value::is_boolean) =>
                {
                    json!({"valid": response["valid"], "message": response.get("message").unwrap_or(&Value::Null)})
                }
                _ => json!({
                    "valid": false,
                    "message": format!("error: cannot convert response: {}", String::from_utf8_lossy(&bytes)),
                }),
            },
            Err(err) => json!({
                "valid": false,
                "message": format!("Error invoking settings validation callback: {err:?}"),
            }),
        }
    }

    /// `validate` with `{"request": request, "settings": settings}`; returns the guest's
    /// `ValidationResponse` JSON (`accepted`, `message`, `code`, `mutated_object`, …).
    pub fn validate(&self, request: &Value, settings: &Value) -> Result<Value, GuestError> {
        self.validate_with(request, settings, &self.fixtures).0
    }

    /// Like [`Policy::validate`], answering host calls from `fixtures`; also returns the calls.
    pub fn validate_with(
        &self,
        request: &Value,
        settings: &Value,
        fixtures: &KubernetesFixtures,
    ) -> (Result<Value, GuestError>, Vec<HostCall>) {
        let payload = validation_payload(request, settings);
        let invocation = self.invoke("validate", &payload, fixtures);
        let response = invocation.json().and_then(|response| {
            if response.get("accepted").is_some_and(Value::is_boolean) {
                Ok(response)
            } else {
                Err(GuestError::InvalidResponse {
                    operation: invocation.operation.clone(),
                    message: format!("no boolean `accepted` in {response}"),
                })
            }
        });
        (response, invocation.host_calls)
    }

    /// Calls `operation` once per payload, in order, on one instance: what a host that keeps
    /// its instance does (`kwctl run` calls `validate_settings` and `validate` on one). Stops
    /// at the first error. Also returns the instance's memory size in bytes after each call.
    pub fn call_on_one_instance(
        &self,
        operation: &str,
        payloads: &[Vec<u8>],
    ) -> Result<Vec<(Vec<u8>, usize)>, GuestError> {
        let mut store = Store::new(&self.engine, HostState::new(self.fixtures.clone()));
        let (instance, guest_call) = self.start(&mut store)?;
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| GuestError::Instantiation("the module exports no memory".into()))?;
        payloads
            .iter()
            .map(|payload| {
                let response = self.guest_call(&mut store, &guest_call, operation, payload)?;
                Ok((response, memory.data_size(&store)))
            })
            .collect()
    }

    /// A started instance kept for many calls, as `kwctl bench` (and any host that keeps its
    /// instance) uses one.
    pub fn instance(&self) -> Result<KeptInstance<'_>, GuestError> {
        let mut store = Store::new(&self.engine, HostState::new(self.fixtures.clone()));
        let (instance, guest_call) = self.start(&mut store)?;
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| GuestError::Instantiation("the module exports no memory".into()))?;
        Ok(KeptInstance {
            policy: self,
            store,
            guest_call,
            memory,
        })
    }

    fn run(
        &self,
        store: &mut Store<HostState>,
        operation: &str,
        payload: &[u8],
    ) -> Result<Vec<u8>, GuestError> {
        let (_, guest_call) = self.start(store)?;
        self.guest_call(store, &guest_call, operation, payload)
    }

    /// Instantiates and initialises the module as wapc-rs does: the instance and its
    /// `__guest_call`.
    fn start(&self, store: &mut Store<HostState>) -> Result<(Instance, GuestCall), GuestError> {
        // A fresh store's deadline is "now": set it before any guest code runs.
        store.set_epoch_deadline(self.deadline_ticks);
        let instance = self
            .pre
            .instantiate(&mut *store)
            .map_err(|err| GuestError::Instantiation(format!("{err:?}")))?;
        // wapc-rs looks `__guest_call` up before initialising the instance.
        let guest_call = typed_export::<(i32, i32), i32>(&instance, store, "__guest_call")?;
        for export in ["_start", "wapc_init"] {
            if instance.get_export(&mut *store, export).is_none() {
                continue;
            }
            let init = typed_export::<(), ()>(&instance, store, export)?;
            if let Err(err) = init.call(&mut *store, ()) {
                // A WASI command's `_start` may end with `proc_exit(0)`; wapc-rs ignores that.
                let clean_exit = err
                    .downcast_ref::<wasmtime_wasi::I32Exit>()
                    .is_some_and(|exit| exit.0 == 0);
                if !(export == "_start" && clean_exit) {
                    return Err(trap(export, err, store));
                }
            }
        }
        Ok((instance, guest_call))
    }

    /// One waPC call on a started instance.
    fn guest_call(
        &self,
        store: &mut Store<HostState>,
        guest_call: &GuestCall,
        operation: &str,
        payload: &[u8],
    ) -> Result<Vec<u8>, GuestError> {
        let op_len = wasm_len(operation.len())?;
        let msg_len = wasm_len(payload.len())?;
        store.set_epoch_deadline(self.deadline_ticks);
        store.data_mut().wapc.start_call(operation, payload);
        let code = guest_call
            .call(&mut *store, (op_len, msg_len))
            .map_err(|err| trap("__guest_call", err, store))?;
        let wapc = &mut store.data_mut().wapc;
        if code == 1 {
            wapc.guest_response.take().ok_or(GuestError::NoResponse)
        } else {
            Err(GuestError::GuestCallFailure(
                wapc.guest_error.take().unwrap_or_default(),
            ))
        }
    }
}

/// One instance of a [`Policy`], started once and called again and again.
pub struct KeptInstance<'a> {
    policy: &'a Policy,
    store: Store<HostState>,
    guest_call: GuestCall,
    memory: wasmtime::Memory,
}

impl std::fmt::Debug for KeptInstance<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeptInstance")
            .field("memory_size", &self.memory_size())
            .finish_non_exhaustive()
    }
}

impl KeptInstance<'_> {
    /// Calls `operation` with `payload` on this instance.
    pub fn call(&mut self, operation: &str, payload: &[u8]) -> Result<Vec<u8>, GuestError> {
        self.policy
            .guest_call(&mut self.store, &self.guest_call, operation, payload)
    }

    /// The instance's linear memory, in bytes (wasm memory never shrinks: its peak so far).
    pub fn memory_size(&self) -> usize {
        self.memory.data_size(&self.store)
    }
}

/// waPC's entry point: `__guest_call(operation length, payload length) -> 1 | 0`.
type GuestCall = TypedFunc<(i32, i32), i32>;

/// The `validate` payload policy-evaluator builds: `{"request": …, "settings": …}`, with
/// missing (`null`) settings sent as `{}`.
pub fn validation_payload(request: &Value, settings: &Value) -> Vec<u8> {
    json!({"request": request, "settings": settings_or_empty(settings)})
        .to_string()
        .into_bytes()
}

fn settings_or_empty(settings: &Value) -> Value {
    if settings.is_null() {
        json!({})
    } else {
        settings.clone()
    }
}

fn wasm_len(len: usize) -> Result<i32, GuestError> {
    i32::try_from(len).map_err(|_| GuestError::TooLarge(len))
}

fn typed_export<P: WasmParams, R: WasmResults>(
    instance: &Instance,
    store: &mut Store<HostState>,
    name: &'static str,
) -> Result<wasmtime::TypedFunc<P, R>, GuestError> {
    let func = instance
        .get_func(&mut *store, name)
        .ok_or(GuestError::MissingExport(name))?;
    func.typed::<P, R>(&*store)
        .map_err(|err| GuestError::ExportType {
            name,
            message: err.to_string(),
        })
}

fn trap(export: &'static str, err: wasmtime::Error, store: &Store<HostState>) -> GuestError {
    if matches!(err.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
        return GuestError::DeadlineExceeded { export };
    }
    GuestError::Trap {
        export,
        message: format!("{err:?}"),
        stderr: String::from_utf8_lossy(&store.data().stderr.contents()).into_owned(),
    }
}

/// Increments the engine epoch every `tick` until the returned sender is dropped, as
/// policy-server's background task does.
fn spawn_epoch_ticker(engine: Engine, tick: Duration) -> anyhow::Result<mpsc::Sender<()>> {
    let (stop, stopped) = mpsc::channel::<()>();
    thread::Builder::new()
        .name("epoch-ticker".to_owned())
        .spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(tick) {
                engine.increment_epoch();
            }
        })
        .context("cannot start the epoch ticker thread")?;
    Ok(stop)
}
