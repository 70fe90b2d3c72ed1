//! Probe rewriting: the application's probes go through the agent's status port, so the kubelet
//! can still reach them when the mesh requires mutual TLS.
//!
//! Port of Istio's `pkg/kube/inject/app_probe.go` and `applyRewrite` (webhook.go). Every
//! container but the proxy (init containers too: an application's own native sidecars have
//! probes) has its `httpGet`, `tcpSocket` and `grpc` readiness, liveness and startup probes, and
//! its `httpGet`/`tcpSocket` `preStop`/`postStart` hooks, pointed at
//! `httpGet :<status port>/app-health/<container>/<readyz|livez|startupz>` (hooks:
//! `/app-lifecycle/<container>/<prestopz|poststartz>`); TCP and gRPC become HTTP, HTTPS becomes
//! HTTP. The originals, named ports resolved to numbers, go into the proxy's
//! `ISTIO_KUBE_APP_PROBERS` as pilot-agent reads it: a JSON object from each path to
//! `{"httpGet"|"tcpSocket"|"grpc": …, "timeoutSeconds": …}`, written as Go writes it (keys
//! sorted, each action's fields in the Kubernetes type's order, `"service": null` for a gRPC
//! probe without one).
//!
//! **When.** The pod's `sidecar.istio.io/rewriteAppHTTPProbers` (Go's boolean spellings: `true`,
//! `1`, `t`, `false`, `0`, `f`…; anything else is not a choice) wins over the
//! `rewriteAppHTTPProbe` setting (default true, as in Istio ≥ 1.10). And only when the injected
//! proxy serves a status port (see [`status_port`]): a proxy without an agent, like the seed's,
//! has nobody to answer `/app-health`, and its pods keep their probes.
//!
//! **Re-injection and uninject.** [`restore`] puts the original probes back from the proxy that
//! is about to be stripped; uninject stops there, and a re-injection rewrites afresh, so the
//! previous injection's probers are kept for every probe still rewritten.
//!
//! # Differences from Istio
//! - A re-injection restores, then rewrites: probers of a previous injection whose probe is gone
//!   are dropped, and a re-injection with rewriting turned off gives the probes back. Istio merges
//!   the old `ISTIO_KUBE_APP_PROBERS` into the new one and keeps whatever it held.
//! - A probe naming a port its container does not declare is left as it is, with a warning;
//!   Istio rewrites it and leaves it out of the probers, so the agent cannot answer it.
//! - A probe already on the status port is left as it is; Istio leaves it out of the probers but
//!   still rewrites its path.
//! - Uninject restores the probes exactly, named ports included: when a name was resolved, the
//!   proxy also carries [`PORT_NAMES_ENV`] (path → port name). Istio's uninject put numbers back.
//! - The originals are written as the pod holds them (an empty `path` stays); Go leaves out empty
//!   fields and escapes `<`, `>`, `&`.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::json_text;
use crate::object::{PodList, remove_key};

/// The pod annotation that turns rewriting on or off for one pod.
pub const REWRITE_ANNOTATION: &str = "sidecar.istio.io/rewriteAppHTTPProbers";

/// The pod annotation that changes the agent's status port.
pub const STATUS_PORT_ANNOTATION: &str = "status.sidecar.istio.io/port";

/// The proxy env var pilot-agent reads the original probes from.
pub const APP_PROBERS_ENV: &str = "ISTIO_KUBE_APP_PROBERS";

/// The proxy env var holding the port names resolved in [`APP_PROBERS_ENV`], so uninject can put
/// them back (a JSON object from probe path to port name); written only when a name was resolved.
pub const PORT_NAMES_ENV: &str = "SIDECAR_INJECTOR_PROBE_PORT_NAMES";

/// The injected container that runs the agent.
const PROXY: &str = "istio-proxy";

/// The checks that are rewritten: three probes and two lifecycle hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    Readiness,
    Liveness,
    Startup,
    PreStop,
    PostStart,
}

impl Check {
    const ALL: [Check; 5] = [
        Check::Readiness,
        Check::Liveness,
        Check::Startup,
        Check::PreStop,
        Check::PostStart,
    ];

    /// Where the handler sits in a container: `readinessProbe`, or `lifecycle.preStop`.
    fn field(self) -> (&'static str, Option<&'static str>) {
        match self {
            Check::Readiness => ("readinessProbe", None),
            Check::Liveness => ("livenessProbe", None),
            Check::Startup => ("startupProbe", None),
            Check::PreStop => ("lifecycle", Some("preStop")),
            Check::PostStart => ("lifecycle", Some("postStart")),
        }
    }

    /// The agent's path for this check of `container` (pilot-agent's `FormatProberURL`).
    fn url(self, container: &str) -> String {
        match self {
            Check::Readiness => format!("/app-health/{container}/readyz"),
            Check::Liveness => format!("/app-health/{container}/livez"),
            Check::Startup => format!("/app-health/{container}/startupz"),
            Check::PreStop => format!("/app-lifecycle/{container}/prestopz"),
            Check::PostStart => format!("/app-lifecycle/{container}/poststartz"),
        }
    }

    /// The actions the agent can take over, in the order Istio looks for them.
    fn actions(self) -> &'static [&'static str] {
        match self {
            Check::Readiness | Check::Liveness | Check::Startup => {
                &["httpGet", "tcpSocket", "grpc"]
            }
            Check::PreStop | Check::PostStart => &["httpGet", "tcpSocket"],
        }
    }

    fn is_probe(self) -> bool {
        matches!(self, Check::Readiness | Check::Liveness | Check::Startup)
    }

    /// The handler object in `container`, if it has one.
    fn handler_mut(self, container: &mut Map<String, Value>) -> Option<&mut Map<String, Value>> {
        let (field, inner) = self.field();
        let outer = container.get_mut(field)?.as_object_mut()?;
        match inner {
            None => Some(outer),
            Some(inner) => outer.get_mut(inner)?.as_object_mut(),
        }
    }
}

/// Whether `pod`'s probes are to be rewritten: its annotation, when it is one of Go's booleans,
/// else `default` (the `rewriteAppHTTPProbe` setting).
pub fn should_rewrite(pod: &Value, default: bool) -> bool {
    pod.get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(REWRITE_ANNOTATION))
        .and_then(Value::as_str)
        .and_then(parse_go_bool)
        .unwrap_or(default)
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// The status port the injected proxy serves, if it serves one.
///
/// Read from the rendered proxy, as Istio 1.1–1.8 did (`extractStatusPort`): its
/// `--statusPort N`, `--statusPort=N` or `-statusPort N` argument. A proxy without one has no
/// agent listening, and `0` is Istio's "disabled". Templates that pass the port another way
/// (Istio ≥ 1.9 gives it in the ProxyConfig) say so with the proxy's `PROXY_CONFIG` env var
/// (`statusPort` in its JSON), and then the pod's `status.sidecar.istio.io/port` wins, as in
/// Istio's webhook.
pub fn status_port(proxy: &Value, pod: &Value) -> Option<u16> {
    if let Some(args) = proxy.get("args").and_then(Value::as_array) {
        let mut args = args.iter().map(|a| a.as_str().unwrap_or("").trim());
        while let Some(arg) = args.next() {
            let Some(rest) = arg
                .strip_prefix("--statusPort")
                .or_else(|| arg.strip_prefix("-statusPort"))
            else {
                continue;
            };
            let value = match rest.strip_prefix('=') {
                Some(value) => value,
                None if rest.is_empty() => args.next().unwrap_or(""),
                None => continue,
            };
            return value.parse::<u16>().ok().filter(|p| *p != 0);
        }
    }
    let from_config = env_value(proxy, "PROXY_CONFIG")
        .and_then(|text| serde_json::from_str::<Value>(text).ok())
        .and_then(|config| config.get("statusPort").and_then(port_number))?;
    let port = pod
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(STATUS_PORT_ANNOTATION))
        .and_then(Value::as_str)
        .map_or(Some(from_config), |text| text.trim().parse::<u16>().ok())?;
    (port != 0).then_some(port)
}

fn port_number(value: &Value) -> Option<u16> {
    match value {
        Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Rewrites the pod's probes to the proxy's status port, when the pod and the setting want it
/// and the proxy serves one; returns warnings for probes left as they are.
///
/// Runs on the merged pod: the proxy (`istio-proxy`, a container or a native sidecar) gets
/// [`APP_PROBERS_ENV`]. Entries already in it (from the template or the user's override of the
/// proxy) are kept unless a probe of the pod has the same path.
pub fn rewrite(pod: &mut Value, default: bool) -> Vec<String> {
    let mut warnings = Vec::new();
    if !should_rewrite(pod, default) {
        return warnings;
    }
    let Some(port) = find_proxy(pod).and_then(|proxy| status_port(proxy, pod)) else {
        return warnings;
    };
    let mut probers = BTreeMap::new();
    let mut names = BTreeMap::new();
    for list in [PodList::InitContainers, PodList::Containers] {
        for container in containers_mut(pod, list) {
            rewrite_container(container, port, &mut probers, &mut names, &mut warnings);
        }
    }
    if probers.is_empty() {
        return warnings;
    }
    if let Some(proxy) = find_proxy_mut(pod) {
        write_probers(proxy, probers, names);
    }
    warnings
}

/// Rewrites one container's checks; records the originals in `probers` (and resolved port names
/// in `names`), keyed by the agent's path.
fn rewrite_container(
    container: &mut Map<String, Value>,
    port: u16,
    probers: &mut BTreeMap<String, Value>,
    names: &mut BTreeMap<String, Value>,
    warnings: &mut Vec<String>,
) {
    let Some(name) = container.get("name").and_then(Value::as_str) else {
        return;
    };
    if name == PROXY {
        return;
    }
    let name = name.to_string();
    let named_ports = named_ports(container);
    for check in Check::ALL {
        let Some(handler) = check.handler_mut(container) else {
            continue;
        };
        let Some(&action) = check
            .actions()
            .iter()
            .find(|a| handler.get(**a).is_some_and(Value::is_object))
        else {
            continue;
        };
        let Some(original) = handler.get(action).and_then(Value::as_object) else {
            continue;
        };
        let (number, port_name) = match original.get("port") {
            Some(Value::Number(n)) => match n.as_i64() {
                Some(n) => (n, None),
                None => continue,
            },
            Some(Value::String(port_name)) if action != "grpc" => {
                match named_ports.iter().find(|(n, _)| n == port_name) {
                    Some((_, number)) => (*number, Some(port_name.clone())),
                    None => {
                        let (field, inner) = check.field();
                        let field = inner.map_or(field.to_string(), |i| format!("{field}.{i}"));
                        warnings.push(format!(
                            "container {name:?}: {field} names port {port_name:?}, which the \
                             container does not declare; left as it is, not rewritten to the \
                             proxy's status port"
                        ));
                        continue;
                    }
                }
            }
            _ => continue,
        };
        if number == i64::from(port) {
            continue;
        }
        let url = check.url(&name);
        let mut original = original.clone();
        if let Some(port_name) = port_name {
            original.insert("port".into(), json!(number));
            names.insert(url.clone(), Value::String(port_name));
        }
        let mut prober = Map::new();
        if action == "grpc" && !original.contains_key("service") {
            original.insert("service".into(), Value::Null);
        }
        prober.insert(action.into(), Value::Object(original));
        if check.is_probe()
            && let Some(timeout) = handler
                .get("timeoutSeconds")
                .filter(|t| t.as_i64() != Some(0))
        {
            prober.insert("timeoutSeconds".into(), timeout.clone());
        }
        probers.insert(url.clone(), Value::Object(prober));

        if action == "httpGet" {
            if let Some(http) = handler.get_mut("httpGet").and_then(Value::as_object_mut) {
                http.insert("path".into(), Value::String(url));
                http.insert("port".into(), json!(port));
                if http.get("scheme").and_then(Value::as_str) == Some("HTTPS") {
                    http.insert("scheme".into(), json!("HTTP"));
                }
            }
        } else {
            replace_key(
                handler,
                action,
                "httpGet",
                json!({"path": url, "port": port}),
            );
        }
    }
}

/// The container's named ports: name → containerPort.
fn named_ports(container: &Map<String, Value>) -> Vec<(String, i64)> {
    container
        .get("ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let name = p
                .get("name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())?;
            let number = p.get("containerPort").and_then(Value::as_i64)?;
            Some((name.to_string(), number))
        })
        .collect()
}

/// Sets [`APP_PROBERS_ENV`] (and [`PORT_NAMES_ENV`]) on the proxy, merged over what it holds.
fn write_probers(
    proxy: &mut Map<String, Value>,
    probers: BTreeMap<String, Value>,
    names: BTreeMap<String, Value>,
) {
    let Some(env) = proxy
        .entry("env")
        .or_insert_with(|| Value::Array(Vec::new()))
        .as_array_mut()
    else {
        return;
    };
    let mut merged: BTreeMap<String, Value> = env_entry(env, APP_PROBERS_ENV)
        .and_then(|text| serde_json::from_str::<Map<String, Value>>(text).ok())
        .map(|m| m.into_iter().collect())
        .unwrap_or_default();
    merged.extend(probers);
    set_env(env, APP_PROBERS_ENV, &merged, go_field_rank);
    if !names.is_empty() {
        set_env(env, PORT_NAMES_ENV, &names, |_| 0);
    }
}

/// Go's field order for the types in [`APP_PROBERS_ENV`]: the prober (`httpGet`, `tcpSocket`,
/// `grpc`, `timeoutSeconds`), `HTTPGetAction` (`path`, `port`, `host`, `scheme`,
/// `httpHeaders`), `TCPSocketAction` (`port`, `host`), `GRPCAction` (`port`, `service`) and
/// `HTTPHeader` (`name`, `value`). One ranking serves them all; keys Go does not know come last.
fn go_field_rank(key: &str) -> usize {
    const ORDER: [&str; 12] = [
        "httpGet",
        "tcpSocket",
        "grpc",
        "timeoutSeconds",
        "path",
        "port",
        "host",
        "scheme",
        "httpHeaders",
        "service",
        "name",
        "value",
    ];
    ORDER.iter().position(|k| *k == key).unwrap_or(ORDER.len())
}

fn set_env(
    env: &mut Vec<Value>,
    name: &str,
    value: &BTreeMap<String, Value>,
    rank: fn(&str) -> usize,
) {
    let object = Value::Object(value.clone().into_iter().collect());
    let text = Value::String(json_text::to_string(&object, rank));
    match env
        .iter_mut()
        .find(|e| e.get("name").and_then(Value::as_str) == Some(name))
    {
        Some(Value::Object(entry)) => {
            remove_key(entry, "valueFrom");
            entry.insert("value".into(), text);
        }
        _ => env.push(json!({"name": name, "value": text})),
    }
}

/// Puts back the original probes of every container, from the `istio-proxy` about to be stripped:
/// a check pointing at its agent path gets the action [`APP_PROBERS_ENV`] holds for that path.
///
/// The inverse of [`rewrite`], key for key: an `httpGet` is restored in place, a `tcpSocket` or
/// `grpc` takes the `httpGet`'s place, and a port name in [`PORT_NAMES_ENV`] replaces the number.
pub fn restore(pod: &mut Value) {
    let Some(proxy) = find_proxy(pod) else {
        return;
    };
    let parse = |name| {
        proxy
            .get("env")
            .and_then(Value::as_array)
            .and_then(|env| env_entry(env, name))
            .and_then(|text| serde_json::from_str::<Map<String, Value>>(text).ok())
            .unwrap_or_default()
    };
    let probers = parse(APP_PROBERS_ENV);
    if probers.is_empty() {
        return;
    }
    let names = parse(PORT_NAMES_ENV);
    for list in [PodList::InitContainers, PodList::Containers] {
        for container in containers_mut(pod, list) {
            restore_container(container, &probers, &names);
        }
    }
}

fn restore_container(
    container: &mut Map<String, Value>,
    probers: &Map<String, Value>,
    names: &Map<String, Value>,
) {
    let Some(name) = container.get("name").and_then(Value::as_str) else {
        return;
    };
    if name == PROXY {
        return;
    }
    let name = name.to_string();
    for check in Check::ALL {
        let url = check.url(&name);
        let Some(prober) = probers.get(&url).and_then(Value::as_object) else {
            continue;
        };
        let Some(handler) = check.handler_mut(container) else {
            continue;
        };
        let rewritten = handler
            .get("httpGet")
            .and_then(|h| h.get("path"))
            .and_then(Value::as_str)
            == Some(url.as_str());
        if !rewritten {
            continue;
        }
        let Some((&action, Some(original))) = check
            .actions()
            .iter()
            .map(|a| (a, prober.get(*a).and_then(Value::as_object)))
            .find(|(_, o)| o.is_some())
        else {
            continue;
        };
        let mut original = original.clone();
        if let Some(port_name) = names.get(&url).filter(|n| n.is_string()) {
            original.insert("port".into(), port_name.clone());
        }
        if action == "grpc" && original.get("service").is_some_and(Value::is_null) {
            remove_key(&mut original, "service");
        }
        if action == "httpGet" {
            if let Some(http) = handler.get_mut("httpGet").and_then(Value::as_object_mut) {
                restore_in_place(http, original);
            }
        } else {
            replace_key(handler, "httpGet", action, Value::Object(original));
        }
    }
}

/// Makes `current` equal `original`, keeping the position of every key both have.
fn restore_in_place(current: &mut Map<String, Value>, original: Map<String, Value>) {
    let gone: Vec<String> = current
        .keys()
        .filter(|k| !original.contains_key(*k))
        .cloned()
        .collect();
    for key in gone {
        remove_key(current, &key);
    }
    for (key, value) in original {
        if current.get(&key) != Some(&value) {
            current.insert(key, value);
        }
    }
}

/// Replaces the key `old` by `new` (with `value`) at the same position.
fn replace_key(map: &mut Map<String, Value>, old: &str, new: &str, value: Value) {
    let mut value = Some(value);
    let entries = std::mem::take(map);
    for (key, item) in entries {
        if key == old {
            if let Some(value) = value.take() {
                map.insert(new.to_string(), value);
            }
        } else if key != new {
            map.insert(key, item);
        }
    }
}

fn env_value<'v>(container: &'v Value, name: &str) -> Option<&'v str> {
    container
        .get("env")
        .and_then(Value::as_array)
        .and_then(|env| env_entry(env, name))
}

fn env_entry<'v>(env: &'v [Value], name: &str) -> Option<&'v str> {
    env.iter()
        .find(|e| e.get("name").and_then(Value::as_str) == Some(name))
        .and_then(|e| e.get("value"))
        .and_then(Value::as_str)
}

/// The proxy: `istio-proxy` among the containers, else among the init containers (native).
fn find_proxy(pod: &Value) -> Option<&Value> {
    [PodList::Containers, PodList::InitContainers]
        .into_iter()
        .filter_map(|list| pod.get("spec")?.get(list.field())?.as_array())
        .flatten()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(PROXY))
}

fn find_proxy_mut(pod: &mut Value) -> Option<&mut Map<String, Value>> {
    let in_containers = pod
        .get("spec")
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c.get("name").and_then(Value::as_str) == Some(PROXY))
        });
    let list = if in_containers {
        PodList::Containers
    } else {
        PodList::InitContainers
    };
    containers_mut(pod, list).find(|c| c.get("name").and_then(Value::as_str) == Some(PROXY))
}

fn containers_mut(pod: &mut Value, list: PodList) -> impl Iterator<Item = &mut Map<String, Value>> {
    pod.get_mut("spec")
        .and_then(|s| s.get_mut(list.field()))
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

#[cfg(test)]
pub(crate) mod tests;
