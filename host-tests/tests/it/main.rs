//! host-tests' one integration-test binary.
//!
//! Needs the modules built first: `make policy.wasm` (the injector, as cargo builds it and
//! pre-initialised, and the pass-through module).

mod fixtures;
mod guests;
mod injector;
mod limits;
mod passthrough;
mod preinit;
mod reuse;
