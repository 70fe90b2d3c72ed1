//! Pod surgery on `serde_json::Value`: strip a previous injection, merge the rendered spec by
//! name, write `sidecar.istio.io/status`; and the reverse, uninject.
//!
//! Mirrors Istio's `stripPod` + merge + `injectionStatus` (pkg/kube/inject/webhook.go). The pod is
//! never round-tripped through k8s-openapi types, so fields no Kubernetes version knows survive.
//! Lists are only appended to or removed from, never reordered: Kubewarden diffs the returned pod
//! by array index, so appending yields only `add` operations.
//!
//! # Differences from Istio
//! - An injected entry whose name the pod already uses for an entry of its own is an error, not a
//!   strategic merge: the user's entry is never silently overwritten or duplicated.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::object::remove_key;
use crate::template::InjectionEntries;

/// The annotation recording what was injected.
pub const STATUS_ANNOTATION: &str = "sidecar.istio.io/status";

/// Names Istio has always injected, removed by uninject when a pod has no status annotation.
pub const WELL_KNOWN: WellKnownNames = WellKnownNames {
    init_containers: &["istio-init", "istio-validation", "enable-core-dump"],
    containers: &["istio-proxy"],
    volumes: &[
        "istio-envoy",
        "istio-certs",
        "istio-data",
        "istio-token",
        "istiod-ca-cert",
        "istio-podinfo",
    ],
};

/// Names per pod list, for the uninject fallback.
#[derive(Debug, Clone, Copy)]
pub struct WellKnownNames {
    /// Init containers.
    pub init_containers: &'static [&'static str],
    /// Containers.
    pub containers: &'static [&'static str],
    /// Volumes.
    pub volumes: &'static [&'static str],
}

/// The content of `sidecar.istio.io/status`: what an injection added, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InjectionStatus {
    /// sha256 of the template text that rendered the sidecar.
    #[serde(default)]
    pub version: String,
    /// Names of injected init containers.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub init_containers: Vec<String>,
    /// Names of injected containers.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub containers: Vec<String>,
    /// Names of injected volumes.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub volumes: Vec<String>,
    /// Names of image pull secrets the injection added (`null` when none, as Istio writes it).
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        serialize_with = "empty_as_null"
    )]
    pub image_pull_secrets: Vec<String>,
}

fn empty_as_null<S: serde::Serializer>(names: &[String], s: S) -> Result<S::Ok, S::Error> {
    if names.is_empty() {
        s.serialize_none()
    } else {
        s.collect_seq(names)
    }
}

fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

/// Why a pod could not be injected or uninjected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InjectError {
    /// The object is not shaped like a pod.
    #[error("not a pod: {0}")]
    NotAPod(String),
    /// The status annotation is not the JSON we write.
    #[error(
        "annotation {STATUS_ANNOTATION} is not valid injection status JSON ({0}); remove the annotation and retry"
    )]
    BadStatus(String),
    /// The pod already has an entry of its own with a name the template injects.
    #[error(
        "the pod already has {list} entry {name:?} that was not injected; rename it or remove it"
    )]
    NameClash {
        /// `spec.containers`, `spec.initContainers` or `spec.volumes`.
        list: &'static str,
        /// The clashing name.
        name: String,
    },
}

/// The four pod lists an injection touches, with their JSON names.
const LISTS: [&str; 4] = [
    "initContainers",
    "containers",
    "volumes",
    "imagePullSecrets",
];

impl InjectionStatus {
    fn names(&self, list: &str) -> &[String] {
        match list {
            "initContainers" => &self.init_containers,
            "containers" => &self.containers,
            "volumes" => &self.volumes,
            _ => &self.image_pull_secrets,
        }
    }

    fn names_mut(&mut self, list: &str) -> &mut Vec<String> {
        match list {
            "initContainers" => &mut self.init_containers,
            "containers" => &mut self.containers,
            "volumes" => &mut self.volumes,
            _ => &mut self.image_pull_secrets,
        }
    }
}

/// The previous injection's status, if the pod carries one.
pub fn read_status(pod: &Value) -> Result<Option<InjectionStatus>, InjectError> {
    let Some(raw) = pod
        .get("metadata")
        .and_then(|meta| meta.get("annotations"))
        .and_then(Value::as_object)
        .and_then(|a| a.get(STATUS_ANNOTATION))
    else {
        return Ok(None);
    };
    let text = raw
        .as_str()
        .ok_or_else(|| InjectError::BadStatus("not a string".into()))?;
    serde_json::from_str(text)
        .map(Some)
        .map_err(|e| InjectError::BadStatus(e.to_string()))
}

/// Entries an injection owns, with their positions: what "unchanged" is judged on.
pub type Footprint = Vec<(&'static str, usize, Value)>;

/// The injected entries named by `status`, where they are in the pod.
pub fn footprint(pod: &Value, status: &InjectionStatus) -> Footprint {
    let mut found = Vec::new();
    for list in LISTS {
        let names = status.names(list);
        if names.is_empty() {
            continue;
        }
        let Some(items) = pod
            .get("spec")
            .and_then(|s| s.get(list))
            .and_then(Value::as_array)
        else {
            continue;
        };
        for (i, item) in items.iter().enumerate() {
            if entry_name(item).is_some_and(|n| names.iter().any(|x| x == n)) {
                found.push((list, i, item.clone()));
            }
        }
    }
    found
}

/// Removes the entries named by `status` from the pod's lists.
///
/// With `prune`, lists left empty are removed (uninject restores the pod as it was); without, they
/// stay, so a re-injection puts entries back at the same place.
pub fn strip(pod: &mut Value, status: &InjectionStatus, prune: bool) -> Result<(), InjectError> {
    let spec = spec_mut(pod)?;
    for list in LISTS {
        let names = status.names(list);
        if names.is_empty() {
            continue;
        }
        let Some(Value::Array(items)) = spec.get_mut(list) else {
            continue;
        };
        items.retain(|item| !entry_name(item).is_some_and(|n| names.iter().any(|x| x == n)));
        if prune && items.is_empty() && list != "containers" {
            remove_key(spec, list);
        }
    }
    Ok(())
}

/// Adds the rendered entries to the pod and writes the status annotation.
///
/// Init containers go after the pod's own; containers after the pod's (the proxy last), or first
/// when `proxy_first` (the app must wait for the proxy); volumes after the pod's; pull secrets
/// only when the pod does not list them already.
pub fn merge(
    pod: &mut Value,
    rendered: InjectionEntries,
    version: &str,
    proxy_first: bool,
) -> Result<InjectionStatus, InjectError> {
    let mut status = InjectionStatus {
        version: version.to_string(),
        ..Default::default()
    };
    let spec = spec_mut(pod)?;
    for (list, new_items) in rendered.into_lists() {
        if new_items.is_empty() {
            continue;
        }
        let items = match spec.entry(list).or_insert_with(|| Value::Array(Vec::new())) {
            Value::Array(items) => items,
            other => {
                return Err(InjectError::NotAPod(format!(
                    "spec.{list} is {}, not a list",
                    crate::config::kind_of(other)
                )));
            }
        };
        let mut position = if list == "containers" && proxy_first {
            0
        } else {
            items.len()
        };
        for item in new_items {
            let name = entry_name(&item).unwrap_or_default().to_string();
            if items
                .iter()
                .any(|existing| entry_name(existing) == Some(name.as_str()))
            {
                if list == "imagePullSecrets" {
                    continue;
                }
                return Err(InjectError::NameClash {
                    list: list_path(list),
                    name,
                });
            }
            items.insert(position, item);
            position += 1;
            status.names_mut(list).push(name);
        }
    }
    let status_json =
        serde_json::to_string(&status).map_err(|e| InjectError::NotAPod(e.to_string()))?;
    annotations_mut(pod)?.insert(STATUS_ANNOTATION.to_string(), Value::String(status_json));
    Ok(status)
}

/// What uninject removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uninjection {
    /// The entries listed in the status annotation, and the annotation.
    FromStatus(InjectionStatus),
    /// No status annotation, but an `istio-proxy` container: Istio's well-known names were removed.
    WellKnownNames(InjectionStatus),
    /// Nothing looked injected.
    NotInjected,
}

/// Removes exactly what the status annotation says was injected, and the annotation; without
/// one, falls back to Istio's well-known names when the pod has an `istio-proxy` container.
pub fn uninject(pod: &mut Value) -> Result<Uninjection, InjectError> {
    if let Some(status) = read_status(pod)? {
        strip(pod, &status, true)?;
        remove_status_annotation(pod);
        return Ok(Uninjection::FromStatus(status));
    }
    let has_proxy = pod
        .get("spec")
        .and_then(|spec| spec.get("containers"))
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| entry_name(c) == Some("istio-proxy")));
    if !has_proxy {
        return Ok(Uninjection::NotInjected);
    }
    let owned = |names: &[&str]| names.iter().map(|s| s.to_string()).collect();
    let status = InjectionStatus {
        version: String::new(),
        init_containers: owned(WELL_KNOWN.init_containers),
        containers: owned(WELL_KNOWN.containers),
        volumes: owned(WELL_KNOWN.volumes),
        image_pull_secrets: Vec::new(),
    };
    strip(pod, &status, true)?;
    Ok(Uninjection::WellKnownNames(status))
}

/// Whether the pod carries a status annotation (readable or not).
pub fn has_status(pod: &Value) -> bool {
    pod.get("metadata")
        .and_then(|meta| meta.get("annotations"))
        .and_then(|a| a.get(STATUS_ANNOTATION))
        .is_some()
}

/// Removes the status annotation from `object`'s metadata and returns it, dropping
/// `annotations`/`metadata` if that leaves them empty. For status written where another tool puts
/// it (istioctl: a CronJob's `spec.jobTemplate`), to be [`put_status`] on the pod template.
pub fn take_status(object: &mut Value) -> Option<Value> {
    remove_status_annotation(object)
}

/// Writes `status`, a status annotation's value as found elsewhere, on the pod.
pub fn put_status(pod: &mut Value, status: Value) -> Result<(), InjectError> {
    annotations_mut(pod)?.insert(STATUS_ANNOTATION.to_string(), status);
    Ok(())
}

/// Drops the status annotation, and `annotations`/`metadata` if that leaves them empty; returns
/// the annotation's value.
fn remove_status_annotation(pod: &mut Value) -> Option<Value> {
    let metadata = pod.get_mut("metadata").and_then(Value::as_object_mut)?;
    let mut removed = None;
    if let Some(Value::Object(annotations)) = metadata.get_mut("annotations") {
        removed = remove_key(annotations, STATUS_ANNOTATION);
        if removed.is_some() && annotations.is_empty() {
            remove_key(metadata, "annotations");
        }
    }
    if removed.is_some()
        && metadata.is_empty()
        && let Some(pod) = pod.as_object_mut()
    {
        remove_key(pod, "metadata");
    }
    removed
}

fn entry_name(item: &Value) -> Option<&str> {
    item.get("name").and_then(Value::as_str)
}

fn list_path(list: &str) -> &'static str {
    match list {
        "initContainers" => "spec.initContainers",
        "containers" => "spec.containers",
        "volumes" => "spec.volumes",
        _ => "spec.imagePullSecrets",
    }
}

/// `spec` as a map, checking the shape of a pod on the way.
pub(crate) fn spec_mut(pod: &mut Value) -> Result<&mut Map<String, Value>, InjectError> {
    let pod = pod
        .as_object_mut()
        .ok_or_else(|| InjectError::NotAPod("the object is not a JSON object".into()))?;
    match pod.get_mut("spec") {
        Some(Value::Object(spec)) => Ok(spec),
        Some(other) => Err(InjectError::NotAPod(format!(
            "spec is {}, not an object",
            crate::config::kind_of(other)
        ))),
        None => Err(InjectError::NotAPod("it has no spec".into())),
    }
}

fn annotations_mut(pod: &mut Value) -> Result<&mut Map<String, Value>, InjectError> {
    let pod = pod
        .as_object_mut()
        .ok_or_else(|| InjectError::NotAPod("the object is not a JSON object".into()))?;
    let metadata = pod
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if metadata.is_null() {
        *metadata = Value::Object(Map::new());
    }
    let metadata = metadata
        .as_object_mut()
        .ok_or_else(|| InjectError::NotAPod("metadata is not an object".into()))?;
    let annotations = metadata
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if annotations.is_null() {
        *annotations = Value::Object(Map::new());
    }
    annotations
        .as_object_mut()
        .ok_or_else(|| InjectError::NotAPod("metadata.annotations is not an object".into()))
}
