//! The nine `wapc.*` host imports a waPC guest links against, one `register_*` function each.
//!
//! Mirrors wapc-rs's `wasmtime-provider` (`callbacks.rs`), which policy-server uses: the host
//! keeps the current operation and payload, the guest's response or error, and the last host
//! call's response or error in per-instance state ([`WapcState`]); the guest copies them in and
//! out of its linear memory through these imports. Pointers and lengths are `i32` on wasm32 and
//! are read as unsigned.
//!
//! A guest that passes an out-of-bounds pointer traps, as in wasmtime-provider.

use wasmtime::{Caller, Extern, Linker, Memory};

use crate::host::HostState;

/// The import module name every waPC guest uses (`wapc::HOST_NAMESPACE`).
pub const HOST_NAMESPACE: &str = "wapc";

/// What one guest instance exchanges with the host during a `__guest_call`.
#[derive(Debug, Default)]
pub struct WapcState {
    /// Name of the operation being invoked (`validate`, `validate_settings`, …).
    pub operation: Vec<u8>,
    /// Payload of the current invocation.
    pub payload: Vec<u8>,
    /// Set by `__guest_response`.
    pub guest_response: Option<Vec<u8>>,
    /// Set by `__guest_error`.
    pub guest_error: Option<String>,
    /// Result of the last successful `__host_call`.
    pub host_response: Option<Vec<u8>>,
    /// Error of the last failed `__host_call`.
    pub host_error: Option<String>,
    /// Everything the guest printed with `__console_log`.
    pub console_log: Vec<String>,
}

impl WapcState {
    /// Prepares the state for one invocation, like `WapcHost::call` resetting its `ModuleState`.
    pub fn start_call(&mut self, operation: &str, payload: &[u8]) {
        *self = WapcState {
            operation: operation.as_bytes().to_vec(),
            payload: payload.to_vec(),
            console_log: std::mem::take(&mut self.console_log),
            ..WapcState::default()
        };
    }
}

/// Adds the nine waPC imports to `linker`, in the order wapc-rs registers them.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    register_guest_request(linker)?;
    register_guest_response(linker)?;
    register_guest_error(linker)?;
    register_host_call(linker)?;
    register_host_response(linker)?;
    register_host_response_len(linker)?;
    register_host_error(linker)?;
    register_host_error_len(linker)?;
    register_console_log(linker)?;
    Ok(())
}

/// Wraps one `linker.func_wrap("wapc", name, f)` so a failure names the import.
fn define<Params, Args>(
    linker: &mut Linker<HostState>,
    name: &str,
    func: impl wasmtime::IntoFunc<HostState, Params, Args>,
) -> anyhow::Result<()> {
    linker
        .func_wrap(HOST_NAMESPACE, name, func)
        .map_err(|err| {
            anyhow::Error::from(err).context(format!("cannot define import `wapc.{name}`"))
        })?;
    Ok(())
}

/// `__guest_request(op_ptr, ptr)`: the guest asks for the operation name and the payload, having
/// allocated `op_len`/`msg_len` bytes (the arguments it got in `__guest_call`).
fn register_guest_request(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    define(
        linker,
        "__guest_request",
        |mut caller: Caller<'_, HostState>, op_ptr: i32, ptr: i32| -> wasmtime::Result<()> {
            let memory = memory(&mut caller)?;
            let (data, state) = memory.data_and_store_mut(&mut caller);
            write(data, ptr, &state.wapc.payload)?;
            write(data, op_ptr, &state.wapc.operation)
        },
    )
}

/// `__guest_response(ptr, len)`: the guest's successful result.
fn register_guest_response(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    define(
        linker,
        "__guest_response",
        |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| -> wasmtime::Result<()> {
            let bytes = read(&mut caller, ptr, len)?;
            caller.data_mut().wapc.guest_response = Some(bytes);
            Ok(())
        },
    )
}

/// `__guest_error(ptr, len)`: the guest's error message (handler `Err` or no such handler).
fn register_guest_error(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    define(
        linker,
        "__guest_error",
        |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| -> wasmtime::Result<()> {
            let bytes = read(&mut caller, ptr, len)?;
            caller.data_mut().wapc.guest_error = Some(String::from_utf8_lossy(&bytes).into_owned());
            Ok(())
        },
    )
}

/// `__host_call(bd, ns, op, payload)`: the guest calls the host; 1 = success, 0 = error.
/// The answer is kept for `__host_response*` / `__host_error*`.
fn register_host_call(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    define(
        linker,
        "__host_call",
        |mut caller: Caller<'_, HostState>,
         bd_ptr: i32,
         bd_len: i32,
         ns_ptr: i32,
         ns_len: i32,
         op_ptr: i32,
         op_len: i32,
         ptr: i32,
         len: i32|
         -> wasmtime::Result<i32> {
            let binding = read_string(&mut caller, bd_ptr, bd_len)?;
            let namespace = read_string(&mut caller, ns_ptr, ns_len)?;
            let operation = read_string(&mut caller, op_ptr, op_len)?;
            let payload = read(&mut caller, ptr, len)?;
            let state = caller.data_mut();
            state.wapc.host_response = None;
            state.wapc.host_error = None;
            match state.host.call(&binding, &namespace, &operation, &payload) {
                Ok(response) => {
                    state.wapc.host_response = Some(response);
                    Ok(1)
                }
                Err(error) => {
                    state.wapc.host_error = Some(error);
                    Ok(0)
                }
            }
        },
    )
}

/// `__host_response(ptr)`: copies the last host response into guest memory.
fn register_host_response(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    define(
        linker,
        "__host_response",
        |mut caller: Caller<'_, HostState>, ptr: i32| -> wasmtime::Result<()> {
            let memory = memory(&mut caller)?;
            let (data, state) = memory.data_and_store_mut(&mut caller);
            match &state.wapc.host_response {
                Some(response) => write(data, ptr, response),
                None => Ok(()),
            }
        },
    )
}

/// `__host_response_len()`: length of the last host response, 0 if none.
fn register_host_response_len(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    define(
        linker,
        "__host_response_len",
        |caller: Caller<'_, HostState>| -> wasmtime::Result<i32> {
            length(
                caller
                    .data()
                    .wapc
                    .host_response
                    .as_ref()
                    .map_or(0, Vec::len),
            )
        },
    )
}

/// `__host_error(ptr)`: copies the last host error message into guest memory.
fn register_host_error(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    define(
        linker,
        "__host_error",
        |mut caller: Caller<'_, HostState>, ptr: i32| -> wasmtime::Result<()> {
            let memory = memory(&mut caller)?;
            let (data, state) = memory.data_and_store_mut(&mut caller);
            match &state.wapc.host_error {
                Some(error) => write(data, ptr, error.as_bytes()),
                None => Ok(()),
            }
        },
    )
}

/// `__host_error_len()`: length of the last host error message, 0 if none.
fn register_host_error_len(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    define(
        linker,
        "__host_error_len",
        |caller: Caller<'_, HostState>| -> wasmtime::Result<i32> {
            length(
                caller
                    .data()
                    .wapc
                    .host_error
                    .as_ref()
                    .map_or(0, String::len),
            )
        },
    )
}

/// `__console_log(ptr, len)`: kept in [`WapcState::console_log`] (wapc-rs only logs it).
fn register_console_log(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    define(
        linker,
        "__console_log",
        |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| -> wasmtime::Result<()> {
            let message = read_string(&mut caller, ptr, len)?;
            caller.data_mut().wapc.console_log.push(message);
            Ok(())
        },
    )
}

/// The caller's exported `memory`, which every import reads or writes.
fn memory(caller: &mut Caller<'_, HostState>) -> wasmtime::Result<Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(memory)) => Ok(memory),
        _ => Err(wasmtime::format_err!("guest does not export `memory`")),
    }
}

/// Copies `[ptr, ptr + len)` out of guest memory; out of bounds traps.
fn read(caller: &mut Caller<'_, HostState>, ptr: i32, len: i32) -> wasmtime::Result<Vec<u8>> {
    let memory = memory(caller)?;
    let (start, len) = (ptr as u32 as usize, len as u32 as usize);
    memory
        .data(&caller)
        .get(start..start.saturating_add(len))
        .map(<[u8]>::to_vec)
        .ok_or_else(|| {
            wasmtime::format_err!("guest memory access out of bounds: {len} bytes at {start:#x}")
        })
}

/// Like [`read`], for the UTF-8 strings of `__host_call` and `__console_log`.
fn read_string(caller: &mut Caller<'_, HostState>, ptr: i32, len: i32) -> wasmtime::Result<String> {
    let bytes = read(caller, ptr, len)?;
    String::from_utf8(bytes)
        .map_err(|err| wasmtime::format_err!("guest passed invalid UTF-8: {err}"))
}

/// Copies `bytes` into guest memory at `ptr`; out of bounds traps.
fn write(data: &mut [u8], ptr: i32, bytes: &[u8]) -> wasmtime::Result<()> {
    let start = ptr as u32 as usize;
    data.get_mut(start..start.saturating_add(bytes.len()))
        .ok_or_else(|| {
            wasmtime::format_err!(
                "guest memory access out of bounds: {} bytes at {start:#x}",
                bytes.len()
            )
        })?
        .copy_from_slice(bytes);
    Ok(())
}

/// A host-side length as the guest's `i32`.
fn length(len: usize) -> wasmtime::Result<i32> {
    i32::try_from(len).map_err(|_| wasmtime::format_err!("{len} bytes do not fit a wasm32 length"))
}
