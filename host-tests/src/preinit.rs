//! `wizer`: pre-initialise a policy module, as the Wizer CLI does, with our own host.
//!
//! The module's `wizer-initialize` export runs once here, with WASI and the waPC imports linked
//! like policy-server links them; Wizer then writes a new module whose memory and globals start
//! in the state that export left. The result is a plain core module with the same imports and
//! exports (minus `wizer-initialize` and `_initialize`), so policy-server and kwctl run it
//! unchanged and every per-admission instance starts warm. WASI randomness is a fixed stream
//! here, so the same input module always gives the same output module.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use anyhow::Context as _;
use wasmtime::{Engine, Instance, Linker, Module, Store, Val};
use wasmtime_wizer::{InstanceState, SnapshotVal, ValType, Wizer};

use crate::host::HostState;
use crate::wapc;

/// The export Wizer runs (its default name).
pub const INIT_EXPORT: &str = "wizer-initialize";

/// Runs `wasm`'s [`INIT_EXPORT`] and returns the module snapshotted after it.
pub fn preinitialize(wasm: &[u8]) -> anyhow::Result<Vec<u8>> {
    let wizer = Wizer::new();
    let (context, instrumented) = wizer
        .instrument(wasm)
        .map_err(anyhow::Error::from)
        .context("cannot instrument the module")?;

    let engine = Engine::default();
    let module = Module::new(&engine, &instrumented)
        .map_err(anyhow::Error::from)
        .context("cannot compile the instrumented module")?;
    let mut linker: Linker<HostState> = Linker::new(&engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |state: &mut HostState| &mut state.wasi)
        .map_err(anyhow::Error::from)?;
    wapc::add_to_linker(&mut linker)?;
    // Fixed randomness: the snapshot holds what the guest drew (std's hash-map keys), and the
    // same input must give the same module, byte for byte, to be pinned by digest.
    let mut store = Store::new(&engine, HostState::deterministic());
    let instance = linker
        .instantiate(&mut store, &module)
        .map_err(anyhow::Error::from)
        .context("cannot instantiate the module")?;

    // A WASI reactor runs its constructors in `_initialize` before anything else is called.
    for export in ["_initialize", INIT_EXPORT] {
        let Some(func) = instance.get_func(&mut store, export) else {
            if export == INIT_EXPORT {
                anyhow::bail!("the module does not export `{INIT_EXPORT}`");
            }
            continue;
        };
        func.typed::<(), ()>(&store)
            .and_then(|func| func.call(&mut store, ()))
            .map_err(anyhow::Error::from)
            .with_context(|| format!("`{export}` failed"))?;
    }

    let mut state = Snapshot {
        store: &mut store,
        instance,
    };
    ready(wizer.snapshot(&context, &mut state))?
        .map_err(anyhow::Error::from)
        .context("cannot snapshot the module")
}

/// Polls a future that never waits: Wizer's API is async for hosts that are, ours reads
/// memory and globals directly.
fn ready<T>(future: impl Future<Output = T>) -> anyhow::Result<T> {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(value) => Ok(value),
        Poll::Pending => {
            anyhow::bail!("the snapshot waited on something; nothing here can wake it")
        }
    }
}

/// The initialised instance, as Wizer reads it.
struct Snapshot<'a> {
    store: &'a mut Store<HostState>,
    instance: Instance,
}

impl InstanceState for Snapshot<'_> {
    async fn global_get(&mut self, name: &str, _type_hint: ValType) -> SnapshotVal {
        // Wizer asks only for the globals its instrumentation exported, all of number types.
        let global = self.instance.get_global(&mut *self.store, name);
        match global.map(|g| g.get(&mut *self.store)) {
            Some(Val::I32(x)) => SnapshotVal::I32(x),
            Some(Val::I64(x)) => SnapshotVal::I64(x),
            Some(Val::F32(x)) => SnapshotVal::F32(x),
            Some(Val::F64(x)) => SnapshotVal::F64(x),
            Some(Val::V128(x)) => SnapshotVal::V128(x.as_u128()),
            other => panic!("wizer asked for global `{name}`, which is {other:?}"),
        }
    }

    async fn memory_contents(&mut self, name: &str, contents: impl FnOnce(&[u8]) + Send) {
        match self.instance.get_memory(&mut *self.store, name) {
            Some(memory) => contents(memory.data(&*self.store)),
            None => panic!("wizer asked for memory `{name}`, which is not exported"),
        }
    }
}
