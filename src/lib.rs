//! Istio-style sidecar injection as one pure core with thin faces.
//!
//! | module | what it holds |
//! |---|---|
//! | [`config`] | the injector and mesh configuration (Istio's two ConfigMaps) with defaults |
//! | [`decision`] | whether a pod gets a sidecar, and why |
//! | [`injector`] | the pipeline every face calls: decide, strip, render, merge, record |
//! | [`inject`] | pod surgery: strip, merge by name, status annotation, uninject |
//! | [`template`] | the upon template, its functions and YAML-safe rendering |
//! | [`requirements`] | the seed's pod spec requirements: named Service ports, `app` label, one Service per pod |
//! | [`duration`] | protobuf/Go durations for `formatDuration` and config checks |
//! | [`selector`] | label selectors for the never/always-inject lists |

pub mod config;
pub mod decision;
pub mod duration;
pub mod inject;
pub mod injector;
pub mod requirements;
pub mod selector;
pub mod template;

pub use config::{Config, ConfigError, InjectorConfig, MeshConfig, ProxyConfig};
pub use decision::{Decision, Reason};
pub use injector::{InjectionError, Injector, Outcome};
