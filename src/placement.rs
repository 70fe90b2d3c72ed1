//! Where the proxy goes in the pod: a native sidecar (an init container with
//! `restartPolicy: Always`) or an ordinary container, last, or first when the application must
//! wait for it.
//!
//! Istio's template decides the native placement (`{{ if .NativeSidecars }}`) and the injector's
//! `reorderPod` the order (pkg/kube/inject/webhook.go). Here the injector does both, on the
//! rendered entries, so every template dialect gets them: the Go dialect reads renderings as
//! Istio 1.0 did, dropping a container's `restartPolicy`, and its templates know nothing of
//! native sidecars.
//!
//! | placement | proxy in | position | hook |
//! |---|---|---|---|
//! | default | `containers` | last | none |
//! | hold | `containers` | first | `postStart: pilot-agent wait` |
//! | native (with or without hold) | `initContainers` | after the injected init containers, before the pod's own | none: Kubernetes starts the app after it |

use serde_json::{Map, Value, json};

use crate::object::PodList;
use crate::template::InjectionEntries;

/// The pod annotation that chooses the placement per pod: `"true"` or `"false"`.
pub const NATIVE_SIDECAR_ANNOTATION: &str = "sidecar.istio.io/nativeSidecar";

/// The injected container that is the proxy: the one that moves.
pub const PROXY_NAME: &str = "istio-proxy";

/// How one pod's proxy is placed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Placement {
    /// The proxy is an init container with `restartPolicy: Always`.
    pub native: bool,
    /// The application waits for the proxy (`holdApplicationUntilProxyStarts`).
    pub hold: bool,
}

impl Placement {
    /// The placement for `pod`: its annotation [`NATIVE_SIDECAR_ANNOTATION`] wins over
    /// `native_default` (the `nativeSidecars` setting); `hold` is the pod's ProxyConfig's
    /// `holdApplicationUntilProxyStarts`. A value other than `"true"`/`"false"` takes the default
    /// and returns a warning saying so, as `sidecar.istio.io/inject` does.
    pub fn for_pod(pod: &Value, native_default: bool, hold: bool) -> (Self, Option<String>) {
        let annotation = pod
            .get("metadata")
            .and_then(|m| m.get("annotations"))
            .and_then(|a| a.get(NATIVE_SIDECAR_ANNOTATION));
        let (native, warning) = match annotation {
            None | Some(Value::Null) => (native_default, None),
            Some(Value::String(s)) if s == "true" => (true, None),
            Some(Value::String(s)) if s == "false" => (false, None),
            Some(other) => (
                native_default,
                Some(format!(
                    "annotation {NATIVE_SIDECAR_ANNOTATION} must be \"true\" or \"false\", got {other}; \
                     using the default ({native_default})"
                )),
            ),
        };
        (Self { native, hold }, warning)
    }

    /// Whether the proxy goes first in `containers`.
    pub fn proxy_first(self) -> bool {
        self.hold && !self.native
    }

    /// Moves the rendered proxy to its place: into the init containers, after the template's
    /// own, with `restartPolicy: Always` (native); or gives it the `postStart` hook that holds
    /// the application (hold). A proxy that already has a `postStart` keeps its own.
    pub fn apply(self, entries: &mut InjectionEntries) {
        if self.native {
            let containers = entries.get_mut(PodList::Containers);
            let Some(i) = containers.iter().position(is_proxy) else {
                return;
            };
            let mut proxy = containers.remove(i);
            if let Some(proxy) = proxy.as_object_mut() {
                proxy.insert("restartPolicy".into(), Value::String("Always".into()));
            }
            entries.get_mut(PodList::InitContainers).push(proxy);
        } else if self.hold
            && let Some(proxy) = entries
                .get_mut(PodList::Containers)
                .iter_mut()
                .find(|c| is_proxy(c))
                .and_then(Value::as_object_mut)
        {
            add_wait_hook(proxy);
        }
    }
}

fn is_proxy(entry: &Value) -> bool {
    entry.get("name").and_then(Value::as_str) == Some(PROXY_NAME)
}

/// `lifecycle.postStart.exec.command: [pilot-agent, wait]`, as Istio's template writes it: the
/// kubelet starts the next container only when the hook returns, i.e. when the proxy is ready.
fn add_wait_hook(proxy: &mut Map<String, Value>) {
    let lifecycle = proxy
        .entry("lifecycle")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(lifecycle) = lifecycle.as_object_mut()
        && !lifecycle.contains_key("postStart")
    {
        lifecycle.insert(
            "postStart".into(),
            json!({"exec": {"command": ["pilot-agent", "wait"]}}),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::PodLists;

    fn entries() -> InjectionEntries {
        PodLists {
            init_containers: vec![json!({"name": "istio-init"})],
            containers: vec![json!({"name": "istio-proxy", "image": "proxy"})],
            volumes: vec![json!({"name": "istio-envoy"})],
            image_pull_secrets: vec![],
        }
    }

    fn pod_with(annotation: Value) -> Value {
        json!({"metadata": {"annotations": {NATIVE_SIDECAR_ANNOTATION: annotation}}})
    }

    #[test]
    fn the_annotation_wins_over_the_setting() {
        let (p, w) = Placement::for_pod(&pod_with(json!("true")), false, false);
        assert!(p.native && w.is_none());
        let (p, w) = Placement::for_pod(&pod_with(json!("false")), true, false);
        assert!(!p.native && w.is_none());
        let (p, _) = Placement::for_pod(&json!({}), true, true);
        assert_eq!(
            p,
            Placement {
                native: true,
                hold: true
            }
        );
    }

    #[test]
    fn an_unclear_annotation_takes_the_default_with_a_warning() {
        let (p, w) = Placement::for_pod(&pod_with(json!("yes")), true, false);
        assert!(p.native);
        let w = w.unwrap();
        assert!(
            w.contains(NATIVE_SIDECAR_ANNOTATION) && w.contains("\"yes\""),
            "{w}"
        );
        let (p, w) = Placement::for_pod(&pod_with(json!(true)), false, false);
        assert!(!p.native && w.is_some());
    }

    #[test]
    fn native_moves_the_proxy_after_the_injected_init_containers() {
        let mut e = entries();
        Placement {
            native: true,
            hold: true,
        }
        .apply(&mut e);
        assert!(e.containers.is_empty());
        assert_eq!(
            e.init_containers,
            vec![
                json!({"name": "istio-init"}),
                json!({"name": "istio-proxy", "image": "proxy", "restartPolicy": "Always"})
            ]
        );
    }

    #[test]
    fn hold_adds_the_wait_hook_only_without_native() {
        let mut e = entries();
        Placement {
            native: false,
            hold: true,
        }
        .apply(&mut e);
        assert_eq!(
            e.containers[0]["lifecycle"],
            json!({"postStart": {"exec": {"command": ["pilot-agent", "wait"]}}})
        );
        let mut e = entries();
        e.containers[0]["lifecycle"] = json!({"postStart": {"exec": {"command": ["mine"]}}});
        Placement {
            native: false,
            hold: true,
        }
        .apply(&mut e);
        assert_eq!(
            e.containers[0]["lifecycle"]["postStart"]["exec"]["command"],
            json!(["mine"])
        );
        assert!(!Placement::default().proxy_first());
        assert!(
            !Placement {
                native: true,
                hold: true
            }
            .proxy_first()
        );
    }

    #[test]
    fn the_default_changes_nothing() {
        let mut e = entries();
        Placement::default().apply(&mut e);
        assert_eq!(e, entries());
    }
}
