//! Istio-style sidecar injection as one pure core with thin faces.
//!
//! | module | what it holds |
//! |---|---|
//! | [`admission`] | one admission: AdmissionRequest in, verdict out; AdmissionReview for plain webhooks |
//! | [`agent_shape`] | the agent's modern shape (status port, readiness, env) laid over the built-in sidecar behind the switches that need it |
//! | [`annotations`] | the pod annotations Istio checks before injecting, a table name → validator |
//! | [`config`] | the injector and mesh configuration (Istio's two ConfigMaps) with defaults |
//! | [`decision`] | whether a pod gets a sidecar, and why |
//! | [`injector`] | the pipeline every face calls: decide, strip, render, merge, record |
//! | [`placement`] | where the proxy goes: native sidecar, first (the app waits for it) or last |
//! | [`proxy_overlay`] | `proxy.istio.io/config`: a pod's ProxyConfig merged over the mesh default |
//! | [`probes`] | probe rewriting: the app's probes through the agent's status port, `ISTIO_KUBE_APP_PROBERS`, and back |
//! | [`overrides`] | a pod's own `istio-proxy`/`istio-init` merged over the injected one, remembered in `proxy.istio.io/overrides` |
//! | [`surgery`] | pod surgery: strip, merge by name, status annotation, uninject |
//! | [`template`] | the sidecar template: upon, or Go's `text/template` translated to upon (`go`); its functions, YAML-safe rendering, and the speed path (`cache`: compile cache, rendering memo, shared handles) |
//! | [`object`] | Kubernetes objects as JSON: the workload kinds, the four injected pod lists, name and namespace helpers, List flattening |
//! | [`manifest`] | multi-document YAML for `kube-inject`: workload kinds, byte-for-byte passthrough, the YAML writer |
//! | [`requirements`] | the seed's pod spec requirements: named Service ports, `app` label, one Service per pod; the record both faces print |
//! | `kubewarden` | the waPC face (WASI builds only): registrations and payload mapping |
//! | [`duration`] | protobuf/Go durations for `formatDuration` and config checks |
//! | [`settings`] | the Kubewarden policy's settings: config source, requirements mode, protocols |
//! | [`selector`] | label selectors for the never/always-inject lists |
//! | [`templates`] | named templates: the config's `templates`/`defaultTemplates`/`aliases`, a pod's `inject.istio.io/templates`, merging their renderings |
//! | [`revision`] | control-plane revisions (`istio.io/rev`): which pods the injector of one revision serves |

pub mod admission;
pub mod agent_shape;
pub mod annotations;
pub mod config;
pub mod decision;
pub mod duration;
pub mod injector;
mod json_text;
pub mod manifest;
pub mod object;
pub mod overrides;
pub mod placement;
pub mod probes;
pub mod proxy_overlay;
pub mod requirements;
pub mod revision;
pub mod selector;
pub mod settings;
pub mod surgery;
pub mod template;
pub mod templates;

// WASI only: the browser build (`web/`, wasm32-unknown-unknown) links the core without the
// waPC exports and the policy's allocator.
#[cfg(all(target_arch = "wasm32", target_os = "wasi"))]
mod kubewarden;

pub use config::{Config, ConfigError, InjectorConfig, MeshConfig, ProxyConfig};
pub use decision::{Decision, Reason};
pub use injector::{InjectionError, Injector, Outcome};
pub use template::TemplateSyntax;
