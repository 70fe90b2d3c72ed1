//! host-tests' one integration-test binary.
//!
//! Needs the modules built first:
//! `cargo build --target wasm32-wasip1 --release -p passthrough` (for `passthrough`) and
//! `cargo build --target wasm32-wasip1 --release` (for `fixtures`).

mod fixtures;
mod guests;
mod injector;
mod passthrough;
