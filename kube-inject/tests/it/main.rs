//! End-to-end tests of the `kube-inject` binary on real manifest files.
//!
//! One test binary (as ripgrep and uv do); each module is one area:
//! `cli` (flags, kinds, stdin/stdout/-o), `cluster` (the ConfigMaps read from a fake API server
//! on 127.0.0.1, and every way that fails), `golden` (the corpus in `tests/testdata/inject`),
//! `roundtrip` (idempotency, upgrade, uninject over every fixture), `diff`, `check`, `errors`,
//! `uninject`, `istio_configmaps` (Istio 1.0 ConfigMaps with Go templates, as they are),
//! `revision` (`--revision`: a revisioned install's ConfigMaps from the fake API server), and
//! `regression` (Istio issues this design answers).

mod check;
mod cli;
mod cluster;
mod diff;
mod errors;
mod fake_apiserver;
mod golden;
mod istio_configmaps;
mod regression;
mod revision;
mod roundtrip;
mod uninject;
mod util;
