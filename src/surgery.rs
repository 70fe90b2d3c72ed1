//! Pod surgery on `serde_json::Value`: strip a previous injection, merge the rendered spec by
//! name, write `sidecar.istio.io/status`; and the reverse, uninject.
//!
//! Mirrors Istio's `stripPod` + merge + `injectionStatus` (pkg/kube/inject/webhook.go). The pod is
//! never round-tripped through k8s-openapi types, so fields no Kubernetes version knows survive.
//! Lists are only appended to or removed from, never reordered: Kubewarden diffs the returned pod
//! by array index, so appending yields only `add` operations. Two placements insert at the front
//! because they must: a proxy the application waits for, and a native sidecar, which runs before
//! the pod's own init containers ([`crate::placement`]).
//!
//! # Differences from Istio
//! - An injected volume whose name the pod already uses for a volume of its own is an error, not a
//!   strategic merge: the user's volume is never silently overwritten or duplicated. A container
//!   of the pod's own named like an injected one is an override, merged over it
//!   ([`crate::overrides`]).
//!
//! Stripping also undoes what the injection did to the pod's own containers: their probes go
//! back ([`crate::probes::restore`]) and their declarations of injected containers return
//! ([`crate::overrides::reinsert`]).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::object::{self, PodList, PodLists, remove_key};
use crate::overrides::{self, OverridesError};
use crate::placement::Placement;
use crate::probes;
use crate::template::InjectionEntries;

/// The annotation recording what was injected.
pub const STATUS_ANNOTATION: &str = "sidecar.istio.io/status";

/// Names Istio has always injected, removed by uninject when a pod has no status annotation.
pub const WELL_KNOWN: PodLists<&[&str]> = PodLists {
    // `istio-proxy` is an init container when it is a native sidecar.
    init_containers: &[
        "istio-init",
        "istio-validation",
        "enable-core-dump",
        "istio-proxy",
    ],
    containers: &["istio-proxy"],
    volumes: &[
        "istio-envoy",
        "istio-certs",
        "istio-data",
        "istio-token",
        "istiod-ca-cert",
        "istio-podinfo",
    ],
    image_pull_secrets: &[],
};

/// The content of `sidecar.istio.io/status`: what an injection added, by name.
///
/// Written as Istio writes it: `{"version": …, "initContainers": […], "containers": […],
/// "volumes": […], "imagePullSecrets": null}` (`null` for a list nothing was added to), then
/// `templates` when named templates other than `sidecar` alone rendered it and `revision` when
/// the injector serves one (both left out otherwise, so older statuses read the same).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(from = "StatusJson")]
pub struct InjectionStatus {
    /// sha256 of the template text that rendered the sidecar.
    pub version: String,
    /// The names of the injected entries of each pod list.
    pub names: PodLists<Vec<String>>,
    /// The named templates that rendered it, in merge order; empty for `sidecar` alone.
    pub templates: Vec<String>,
    /// The control-plane revision that injected it (`istio.io/rev`), when the injector serves one.
    pub revision: Option<String>,
}

impl Serialize for InjectionStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let extra = usize::from(!self.templates.is_empty()) + usize::from(self.revision.is_some());
        let mut out = s.serialize_struct("InjectionStatus", 5 + extra)?;
        out.serialize_field("version", &self.version)?;
        for (list, names) in self.names.iter() {
            // Istio builds each list by appending to a nil slice, which Go writes as `null`
            // when nothing was appended (a native sidecar leaves `containers` so).
            if names.is_empty() {
                out.serialize_field(list.field(), &None::<()>)?;
            } else {
                out.serialize_field(list.field(), names)?;
            }
        }
        if !self.templates.is_empty() {
            out.serialize_field("templates", &self.templates)?;
        }
        if let Some(revision) = &self.revision {
            out.serialize_field("revision", revision)?;
        }
        out.end()
    }
}

/// The annotation's JSON as read: every field optional, `null` lists empty. Derived so that
/// errors are serde's own, with their positions.
#[derive(Deserialize)]
#[serde(rename = "InjectionStatus", rename_all = "camelCase")]
struct StatusJson {
    #[serde(default)]
    version: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    init_containers: Vec<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    containers: Vec<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    volumes: Vec<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    image_pull_secrets: Vec<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    templates: Vec<String>,
    #[serde(default)]
    revision: Option<String>,
}

impl From<StatusJson> for InjectionStatus {
    fn from(json: StatusJson) -> Self {
        Self {
            version: json.version,
            names: PodLists {
                init_containers: json.init_containers,
                containers: json.containers,
                volumes: json.volumes,
                image_pull_secrets: json.image_pull_secrets,
            },
            templates: json.templates,
            revision: json.revision,
        }
    }
}

fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

/// Why a pod could not be injected or uninjected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SurgeryError {
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
        "the pod already has {} entry {name:?} that was not injected; rename it or remove it",
        list.path()
    )]
    NameClash {
        /// `spec.volumes` (a container of the pod's own overrides the injected one instead).
        list: PodList,
        /// The clashing name.
        name: String,
    },
    /// Two containers of the pod (init containers included) share a name.
    #[error(
        "container name {name:?} is used twice ({first} and {second}); Kubernetes refuses a pod whose containers share a name"
    )]
    DuplicateContainer {
        /// The shared name.
        name: String,
        /// Where it is first, e.g. `spec.initContainers[0]`.
        first: String,
        /// Where it is again.
        second: String,
    },
    /// The pod's remembered overrides of injected containers could not be read.
    #[error(transparent)]
    Overrides(#[from] OverridesError),
}

/// The previous injection's status, if the pod carries one.
pub fn read_status(pod: &Value) -> Result<Option<InjectionStatus>, SurgeryError> {
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
        .ok_or_else(|| SurgeryError::BadStatus("not a string".into()))?;
    serde_json::from_str(text)
        .map(Some)
        .map_err(|e| SurgeryError::BadStatus(e.to_string()))
}

/// Entries a status annotation names but that are not trusted to be injected: kept in the pod.
pub type Kept = Vec<(PodList, String)>;

/// Whether `name` is one of Istio's well-known injected names in `list`.
pub fn is_well_known(list: PodList, name: &str) -> bool {
    WELL_KNOWN.get(list).contains(&name)
}

/// Splits `status` into the names that may be removed and those that may not.
///
/// The status annotation is only a claim: it may be stale, copied from another pod or written
/// by hand, and trusting it blindly removes the application (`{"containers":["sleep"]}` made
/// the proxy *replace* the app). So a name is removed only when `trusted` says the injector
/// produces it; the others are [`Kept`], for the caller to report.
pub fn distrust(
    status: &InjectionStatus,
    trusted: impl Fn(PodList, &str) -> bool,
) -> (InjectionStatus, Kept) {
    let mut kept = Kept::new();
    let names = PodLists::from_fn(|list| {
        let mut removable = Vec::new();
        for name in status.names.get(list) {
            if trusted(list, name) {
                removable.push(name.clone());
            } else {
                kept.push((list, name.clone()));
            }
        }
        removable
    });
    (
        InjectionStatus {
            version: status.version.clone(),
            names,
            ..InjectionStatus::default()
        },
        kept,
    )
}

/// The warning for entries the status named but that were kept.
pub fn kept_warning(kept: &Kept) -> String {
    let entries: Vec<String> = kept
        .iter()
        .map(|(list, name)| format!("{} entry {name:?}", list.path()))
        .collect();
    format!(
        "annotation {STATUS_ANNOTATION} lists {}, which the injector does not produce; kept, not \
         removed (the annotation is stale, copied from another pod or forged)",
        entries.join(", ")
    )
}

/// Entries an injection owns, with their positions: what "unchanged" is judged on.
pub type Footprint = Vec<(PodList, usize, Value)>;

/// The injected entries named by `status`, where they are in the pod.
pub fn footprint(pod: &Value, status: &InjectionStatus) -> Footprint {
    let mut found = Vec::new();
    for (list, names) in status.names.iter() {
        if names.is_empty() {
            continue;
        }
        let Some(items) = object::at(pod, &["spec", list.field()]).and_then(Value::as_array) else {
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
pub fn strip(pod: &mut Value, status: &InjectionStatus, prune: bool) -> Result<(), SurgeryError> {
    spec_mut(pod)?;
    let injected = |name: &str| {
        [PodList::InitContainers, PodList::Containers]
            .iter()
            .any(|list| status.names.get(*list).iter().any(|n| n == name))
    };
    // The proxy's env holds the probes it took over: read before it goes.
    if injected("istio-proxy") {
        probes::restore(pod);
    }
    let spec = spec_mut(pod)?;
    for (list, names) in status.names.iter() {
        if names.is_empty() {
            continue;
        }
        let Some(Value::Array(items)) = spec.get_mut(list.field()) else {
            continue;
        };
        items.retain(|item| !entry_name(item).is_some_and(|n| names.iter().any(|x| x == n)));
    }
    // The pod's own declarations of what was injected go back where they stood.
    overrides::reinsert(pod, injected)?;
    if prune {
        let spec = spec_mut(pod)?;
        for (list, names) in status.names.iter() {
            if !names.is_empty()
                && spec
                    .get(list.field())
                    .and_then(Value::as_array)
                    .is_some_and(Vec::is_empty)
            {
                remove_key(spec, list.field());
            }
        }
    }
    Ok(())
}

/// Adds the rendered entries to the pod and writes the status annotation.
///
/// Init containers go after the pod's own, or before them for a native sidecar (the app's init
/// containers then run inside the mesh); containers after the pod's (the proxy last), or first
/// when the app must wait for the proxy; volumes after the pod's; pull secrets only when the pod
/// does not list them already. `rendered` is already placed ([`Placement::apply`]).
pub fn merge(
    pod: &mut Value,
    rendered: InjectionEntries,
    version: &str,
    placement: Placement,
) -> Result<InjectionStatus, SurgeryError> {
    let mut status = InjectionStatus {
        version: version.to_string(),
        ..Default::default()
    };
    let spec = spec_mut(pod)?;
    for (list, new_items) in rendered.into_array() {
        if new_items.is_empty() {
            continue;
        }
        let items = match spec
            .entry(list.field())
            .or_insert_with(|| Value::Array(Vec::new()))
        {
            Value::Array(items) => items,
            other => {
                return Err(SurgeryError::NotAPod(format!(
                    "{} is {}, not a list",
                    list.path(),
                    object::type_name(other)
                )));
            }
        };
        let first = match list {
            PodList::InitContainers => placement.native,
            PodList::Containers => placement.proxy_first(),
            _ => false,
        };
        let mut position = if first { 0 } else { items.len() };
        for item in new_items {
            let name = entry_name(&item).unwrap_or_default().to_string();
            if items
                .iter()
                .any(|existing| entry_name(existing) == Some(name.as_str()))
            {
                if list == PodList::ImagePullSecrets {
                    continue;
                }
                return Err(SurgeryError::NameClash { list, name });
            }
            items.insert(position, item);
            position += 1;
            status.names.get_mut(list).push(name);
        }
    }
    let status_json =
        serde_json::to_string(&status).map_err(|e| SurgeryError::NotAPod(e.to_string()))?;
    annotations_mut(pod)?.insert(STATUS_ANNOTATION.to_string(), Value::String(status_json));
    Ok(status)
}

/// What uninject removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uninjection {
    /// The entries listed in the status annotation that are Istio's well-known names, and the
    /// annotation; the other listed names were kept (see [`distrust`]).
    FromStatus {
        /// What was removed.
        removed: InjectionStatus,
        /// What the annotation named but was kept.
        kept: Kept,
    },
    /// No status annotation, but an `istio-proxy` container (or native sidecar): Istio's
    /// well-known names were removed.
    WellKnownNames(InjectionStatus),
    /// Nothing looked injected.
    NotInjected,
}

/// Removes what the status annotation says was injected, and the annotation; without one, falls
/// back to Istio's well-known names when the pod has an `istio-proxy` container.
///
/// Uninject has no template to ask, so only Istio's well-known names are trusted: a name the
/// annotation lists beyond those is kept and reported (a custom template's own names included).
pub fn uninject(pod: &mut Value) -> Result<Uninjection, SurgeryError> {
    if let Some(status) = read_status(pod)? {
        let (removed, kept) = distrust(&status, is_well_known);
        strip(pod, &removed, true)?;
        remove_status_annotation(pod);
        return Ok(Uninjection::FromStatus { removed, kept });
    }
    let has_proxy = ["containers", "initContainers"].iter().any(|list| {
        object::at(pod, &["spec", list])
            .and_then(Value::as_array)
            .is_some_and(|cs| cs.iter().any(|c| entry_name(c) == Some("istio-proxy")))
    });
    if !has_proxy {
        return Ok(Uninjection::NotInjected);
    }
    let status = InjectionStatus {
        version: String::new(),
        names: WELL_KNOWN.map(|_, names| names.iter().map(|s| s.to_string()).collect()),
        ..InjectionStatus::default()
    };
    strip(pod, &status, true)?;
    Ok(Uninjection::WellKnownNames(status))
}

/// Writes `status` as the pod's status annotation, replacing what [`merge`] wrote: for what only
/// the injector knows (the templates used, the revision).
pub fn write_status(pod: &mut Value, status: &InjectionStatus) -> Result<(), SurgeryError> {
    let text = serde_json::to_string(status).map_err(|e| SurgeryError::NotAPod(e.to_string()))?;
    annotations_mut(pod)?.insert(STATUS_ANNOTATION.to_string(), Value::String(text));
    Ok(())
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
pub fn put_status(pod: &mut Value, status: Value) -> Result<(), SurgeryError> {
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

/// Refuses a pod whose containers and init containers share a name, as the API server would:
/// which entry a status, an override or a merge by name means would be a guess.
pub fn check_unique_containers(pod: &Value) -> Result<(), SurgeryError> {
    // Places are written out only for the refusal: this runs on every admission.
    let place = |(list, i): (PodList, usize)| format!("{}[{i}]", list.path());
    let mut seen: Vec<(&str, (PodList, usize))> = Vec::new();
    for list in [PodList::InitContainers, PodList::Containers] {
        let items = pod
            .get("spec")
            .and_then(|s| s.get(list.field()))
            .and_then(Value::as_array);
        for (i, item) in items.into_iter().flatten().enumerate() {
            let Some(name) = item.get("name").and_then(Value::as_str) else {
                continue;
            };
            if let Some((_, first)) = seen.iter().find(|(n, _)| *n == name) {
                return Err(SurgeryError::DuplicateContainer {
                    name: name.to_string(),
                    first: place(*first),
                    second: place((list, i)),
                });
            }
            seen.push((name, (list, i)));
        }
    }
    Ok(())
}

/// `spec` as a map, checking the shape of a pod on the way.
pub(crate) fn spec_mut(pod: &mut Value) -> Result<&mut Map<String, Value>, SurgeryError> {
    let pod = pod
        .as_object_mut()
        .ok_or_else(|| SurgeryError::NotAPod("the object is not a JSON object".into()))?;
    match pod.get_mut("spec") {
        Some(Value::Object(spec)) => Ok(spec),
        Some(other) => Err(SurgeryError::NotAPod(format!(
            "spec is {}, not an object",
            object::type_name(other)
        ))),
        None => Err(SurgeryError::NotAPod("it has no spec".into())),
    }
}

fn annotations_mut(pod: &mut Value) -> Result<&mut Map<String, Value>, SurgeryError> {
    let pod = pod
        .as_object_mut()
        .ok_or_else(|| SurgeryError::NotAPod("the object is not a JSON object".into()))?;
    let metadata = pod
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if metadata.is_null() {
        *metadata = Value::Object(Map::new());
    }
    let metadata = metadata
        .as_object_mut()
        .ok_or_else(|| SurgeryError::NotAPod("metadata is not an object".into()))?;
    let annotations = metadata
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if annotations.is_null() {
        *annotations = Value::Object(Map::new());
    }
    annotations
        .as_object_mut()
        .ok_or_else(|| SurgeryError::NotAPod("metadata.annotations is not an object".into()))
}
