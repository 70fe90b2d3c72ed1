//! The agent's modern shape for the built-in sidecar: status port, readiness on the agent, the
//! agent's env (`PROXY_CONFIG`, the ProxyConfig's `proxyMetadata`) and, for a native sidecar,
//! the startup probe that makes the application wait and the drain on stop.
//!
//! Only behind the switches that need it ([`wanted`]): a native sidecar, a held application, or
//! a `statusPort` in the pod's ProxyConfig. The built-in template (`src/builtin/`) stays the
//! seed's text, so its version hash, and every pod injected without these switches, are what
//! they were; the modern part is a template of its own ([`MODERN_AGENT`]) rendered with the same
//! data and laid over the rendered `istio-proxy` ([`lay_over`]). Custom templates shape their
//! proxy themselves and do not get it.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::config::ProxyConfig;
use crate::object::PodList;
use crate::placement::{PROXY_NAME, Placement};
use crate::template::{InjectionEntries, SidecarTemplate, TemplateError};

/// The modern agent's template: a partial `istio-proxy` container.
pub const MODERN_AGENT: &str = include_str!("builtin/agent-modern.yaml");

/// Whether a pod placed so, with this ProxyConfig, gets the modern agent.
pub fn wanted(placement: Placement, proxy: &ProxyConfig) -> bool {
    placement.native
        || placement.hold
        || proxy
            .other
            .get("statusPort")
            .is_some_and(|port| !port.is_null())
}

/// The compiled modern agent (compiled once per process, on first use: pods without the
/// switches never pay for it).
pub fn template() -> Result<SidecarTemplate, TemplateError> {
    SidecarTemplate::compile(MODERN_AGENT)
}

/// The status `version` of a sidecar rendered with the modern agent over it: both texts count.
pub fn version(sidecar: &str, modern: &str) -> String {
    Sha256::digest(format!("{sidecar},{modern}").as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Lays the rendered modern agent over the rendered proxy: `args` and `env` are appended (an
/// env var the proxy already has keeps its value), maps gain the keys they lack, other fields
/// are set only where the proxy has none. Nothing happens without a proxy.
pub fn lay_over(entries: &mut InjectionEntries, modern: InjectionEntries) {
    let Some(over) = modern
        .containers
        .into_iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(PROXY_NAME))
    else {
        return;
    };
    let Some(proxy) = entries
        .get_mut(PodList::Containers)
        .iter_mut()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(PROXY_NAME))
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    let Value::Object(over) = over else {
        return;
    };
    for (key, value) in over {
        match (key.as_str(), proxy.get_mut(&key), value) {
            ("name", _, _) => {}
            ("env", Some(Value::Array(env)), Value::Array(more)) => {
                for var in more {
                    let name = var.get("name").cloned();
                    if !env.iter().any(|e| e.get("name") == name.as_ref()) {
                        env.push(var);
                    }
                }
            }
            (_, Some(Value::Array(have)), Value::Array(more)) => have.extend(more),
            (_, Some(Value::Object(have)), Value::Object(more)) => add_missing(have, more),
            (_, Some(_), _) => {}
            (_, None, value) => {
                proxy.insert(key, value);
            }
        }
    }
}

fn add_missing(have: &mut Map<String, Value>, more: Map<String, Value>) {
    for (key, value) in more {
        have.entry(key).or_insert(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::PodLists;
    use serde_json::json;

    fn entries(proxy: Value) -> InjectionEntries {
        PodLists {
            containers: vec![proxy],
            ..Default::default()
        }
    }

    #[test]
    fn args_and_env_are_appended_and_missing_fields_set() {
        let mut e = entries(json!({
            "name": "istio-proxy", "args": ["proxy"], "env": [{"name": "A", "value": "1"}],
            "lifecycle": {"postStart": {"exec": {"command": ["x"]}}}, "image": "p"
        }));
        lay_over(
            &mut e,
            entries(json!({
                "name": "istio-proxy", "args": ["--statusPort", "15020"],
                "env": [{"name": "A", "value": "2"}, {"name": "B", "value": "3"}],
                "lifecycle": {"postStart": {}, "preStop": {"exec": {"command": ["drain"]}}},
                "image": "other", "readinessProbe": {"periodSeconds": 2}
            })),
        );
        assert_eq!(
            e.containers[0],
            json!({
                "name": "istio-proxy", "args": ["proxy", "--statusPort", "15020"],
                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}],
                "lifecycle": {"postStart": {"exec": {"command": ["x"]}},
                              "preStop": {"exec": {"command": ["drain"]}}},
                "image": "p", "readinessProbe": {"periodSeconds": 2}
            })
        );
    }

    #[test]
    fn without_a_proxy_nothing_changes() {
        let mut e = entries(json!({"name": "other"}));
        lay_over(
            &mut e,
            entries(json!({"name": "istio-proxy", "args": ["x"]})),
        );
        assert_eq!(e, entries(json!({"name": "other"})));
    }

    #[test]
    fn only_the_switches_want_it() {
        let p = ProxyConfig::default();
        assert!(!wanted(Placement::default(), &p));
        assert!(wanted(
            Placement {
                native: true,
                hold: false
            },
            &p
        ));
        assert!(wanted(
            Placement {
                native: false,
                hold: true
            },
            &p
        ));
        let mut p = ProxyConfig::default();
        p.other.insert("statusPort".into(), json!(15021));
        assert!(wanted(Placement::default(), &p));
    }

    #[test]
    fn the_modern_agent_compiles_and_its_version_counts_both_texts() {
        let t = template().unwrap();
        assert_ne!(version("a", t.version()), version("b", t.version()));
        assert_eq!(version("a", "b").len(), 64);
    }
}
