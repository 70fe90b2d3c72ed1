//! User overrides of injected containers: a pod that declares a container named like one the
//! template injects (`istio-proxy`, `istio-init`) gets its fields merged over the injected one.
//!
//! Istio's "customizing injection" (`reapplyOverwrittenContainers` and `reinsertOverrides`,
//! pkg/kube/inject/webhook.go and inject.go). The merge is Kubernetes' strategic merge for a
//! container ([`merge_container`]): the pod's fields win, maps merge key by key, `env` merges
//! by `name`, `ports` by `containerPort`, `volumeMounts` by `mountPath`, `volumeDevices` by
//! `devicePath`, other lists are replaced, and `null` removes a field. `image: auto` keeps the
//! injected image.
//!
//! **Where the override is remembered.** The injected container replaces the user's declaration
//! in the pod, so the declaration, exactly as written, goes into the pod annotation
//! `proxy.istio.io/overrides` (Istio's name and shape, `{"containers": […], "initContainers":
//! […]}`, plus `"indexes"`: where each stood in its list). Stripping a previous injection (a
//! re-injection, or uninject) puts the declarations back where they were and drops the
//! annotation; the injection then merges them again over a fresh rendering. So a re-injection
//! or a template upgrade keeps exactly the user's fields, and nothing of an older template
//! survives in the merged container; uninject gives back the pod as it was written.
//!
//! # Differences from Istio
//! - Istio re-applies nothing on re-injection: it merges the new template over the previously
//!   injected container, so fields an older template set and the new one does not stay. Here the
//!   declaration is merged over a fresh rendering every time.
//! - An `env` entry of the pod replaces the injected one of the same name whole, where a strategic
//!   merge would mix them (`value` beside the template's `valueFrom` is a pod the API server
//!   refuses). Likewise a probe or lifecycle hook that gives an action (`exec`, `httpGet`,
//!   `tcpSocket`, `grpc`, `sleep`) drops the injected one's other actions.
//! - The annotation also records each declaration's position, so uninject restores the pod's
//!   order; Istio, reading an annotation without `indexes`, ignores them (and so does this
//!   injector: such declarations go back at the end of their list).
//! - An annotation entry is only put back under a name the injection being stripped made (or,
//!   with no previous injection, one of Istio's well-known injected names): the annotation adds no
//!   other container. Istio adds any container it lists.

use serde_json::{Map, Value, json};

use crate::json_text;
use crate::object::{PodList, remove_key};
use crate::template::InjectionEntries;

/// The pod annotation that remembers the pod's own declarations of injected containers.
pub const OVERRIDES_ANNOTATION: &str = "proxy.istio.io/overrides";

/// The image that means "the injected one" (Istio's `AutoImage`).
const AUTO_IMAGE: &str = "auto";

/// The two container lists a declaration may sit in.
const LISTS: [PodList; 2] = [PodList::Containers, PodList::InitContainers];

/// Why an override could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverridesError {
    /// The annotation is not the JSON this injector writes.
    #[error(
        "annotation {OVERRIDES_ANNOTATION} is not valid JSON of containers ({0}); remove the annotation and retry"
    )]
    BadAnnotation(String),
}

/// The pod's own declaration of an injected container, where it stood.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    /// The list it was declared in.
    pub list: PodList,
    /// Its index in that list, when known.
    pub index: Option<usize>,
    /// The declaration as written.
    pub container: Value,
}

/// Takes the pod's declarations of containers the injection renders out of the pod, and merges
/// each over the rendered entry of the same name (in either container list: a proxy declared in
/// `containers` overrides a native sidecar). Returns them, for [`record`].
pub fn apply(pod: &mut Value, rendered: &mut InjectionEntries) -> Vec<Override> {
    let rendered_names: Vec<String> = LISTS
        .iter()
        .flat_map(|list| rendered.get(*list).iter())
        .filter_map(|e| e.get("name").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    let mut taken = Vec::new();
    for list in LISTS {
        let Some(items) = pod
            .get_mut("spec")
            .and_then(|s| s.get_mut(list.field()))
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for (position, item) in std::mem::take(items).into_iter().enumerate() {
            let declared = item
                .get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| rendered_names.iter().any(|r| r == n));
            if declared {
                taken.push(Override {
                    list,
                    index: Some(position),
                    container: item,
                });
            } else {
                items.push(item);
            }
        }
    }
    for declaration in &taken {
        let name = declaration.container.get("name").and_then(Value::as_str);
        // The declaration's own list first: a name is rendered in one list only, as a rule.
        let other = if declaration.list == PodList::Containers {
            PodList::InitContainers
        } else {
            PodList::Containers
        };
        let target = [declaration.list, other].into_iter().find_map(|list| {
            rendered
                .get(list)
                .iter()
                .position(|e| e.get("name").and_then(Value::as_str) == name)
                .map(|i| (list, i))
        });
        let Some((list, i)) = target else {
            continue;
        };
        if let (Some(base), Some(overlay)) = (
            rendered
                .get_mut(list)
                .get_mut(i)
                .and_then(Value::as_object_mut),
            declaration.container.as_object(),
        ) {
            merge_container(base, overlay);
        }
    }
    taken
}

/// Writes [`OVERRIDES_ANNOTATION`] for `overrides`; with none, leaves the pod as it is.
pub fn record(pod: &mut Value, overrides: &[Override]) {
    if overrides.is_empty() {
        return;
    }
    let mut text = Map::new();
    let mut indexes = Map::new();
    for list in LISTS {
        let mine: Vec<&Override> = overrides.iter().filter(|o| o.list == list).collect();
        if mine.is_empty() {
            continue;
        }
        text.insert(
            list.field().into(),
            Value::Array(mine.iter().map(|o| o.container.clone()).collect()),
        );
        indexes.insert(
            list.field().into(),
            Value::Array(mine.iter().map(|o| json!(o.index)).collect()),
        );
    }
    text.insert("indexes".into(), Value::Object(indexes));
    let text = json_text::to_string(&Value::Object(text), |_| 0);
    if let Some(annotations) = annotations_mut(pod) {
        annotations.insert(OVERRIDES_ANNOTATION.into(), Value::String(text));
    }
}

/// The text of [`OVERRIDES_ANNOTATION`], if the pod carries it: part of what "the injection
/// changed nothing" is judged on.
pub fn remembered(pod: &Value) -> Option<String> {
    pod.get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(OVERRIDES_ANNOTATION))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Puts the declarations [`OVERRIDES_ANNOTATION`] remembers back into the pod, where they stood,
/// and removes the annotation: the pod as written, before the injection is made again or undone.
///
/// Only declarations named by `injected` (a name the injection being stripped made) go back,
/// and none whose name the pod already uses. Without the annotation nothing changes.
pub fn reinsert(pod: &mut Value, injected: impl Fn(&str) -> bool) -> Result<(), OverridesError> {
    let Some(text) = pod
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(OVERRIDES_ANNOTATION))
    else {
        return Ok(());
    };
    let declared = parse(text)?;
    if let Some(annotations) = pod
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
        .and_then(Value::as_object_mut)
    {
        remove_key(annotations, OVERRIDES_ANNOTATION);
    }
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    for mut declaration in declared {
        let Some(name) = declaration
            .container
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string)
        else {
            continue;
        };
        let taken = LISTS.iter().any(|list| {
            spec.get(list.field())
                .and_then(Value::as_array)
                .is_some_and(|items| {
                    items
                        .iter()
                        .any(|i| i.get("name").and_then(Value::as_str) == Some(name.as_str()))
                })
        });
        if taken || !injected(&name) {
            continue;
        }
        let Some(items) = spec
            .entry(declaration.list.field())
            .or_insert_with(|| Value::Array(Vec::new()))
            .as_array_mut()
        else {
            continue;
        };
        let at = declaration
            .index
            .map_or(items.len(), |i| i.min(items.len()));
        items.insert(at, std::mem::take(&mut declaration.container));
    }
    Ok(())
}

/// The annotation's declarations, each list in index order (so inserting them one by one puts
/// every one back at its index).
fn parse(text: &Value) -> Result<Vec<Override>, OverridesError> {
    let text = text
        .as_str()
        .ok_or_else(|| OverridesError::BadAnnotation("not a string".into()))?;
    let value: Value =
        serde_json::from_str(text).map_err(|e| OverridesError::BadAnnotation(e.to_string()))?;
    let Some(object) = value.as_object() else {
        return Err(OverridesError::BadAnnotation("not a JSON object".into()));
    };
    let mut declared = Vec::new();
    for list in [PodList::InitContainers, PodList::Containers] {
        let containers = match object.get(list.field()) {
            None | Some(Value::Null) => continue,
            Some(Value::Array(items)) => items,
            Some(_) => {
                return Err(OverridesError::BadAnnotation(format!(
                    "{} is not a list",
                    list.field()
                )));
            }
        };
        let indexes = object
            .get("indexes")
            .and_then(|i| i.get(list.field()))
            .and_then(Value::as_array);
        let mut mine: Vec<Override> = containers
            .iter()
            .enumerate()
            .filter(|(_, c)| c.is_object())
            .map(|(i, c)| Override {
                list,
                index: indexes
                    .and_then(|ix| ix.get(i))
                    .and_then(Value::as_u64)
                    .and_then(|i| usize::try_from(i).ok()),
                container: c.clone(),
            })
            .collect();
        // Known positions in order, unknown ones (Istio's annotations) after them.
        mine.sort_by_key(|o| o.index.map_or((1, 0), |i| (0, i)));
        declared.extend(mine);
    }
    Ok(declared)
}

/// Kubernetes' strategic merge of a container `overlay` over `base` (see the module docs).
pub fn merge_container(base: &mut Map<String, Value>, overlay: &Map<String, Value>) {
    for (key, value) in overlay {
        match key.as_str() {
            "name" => continue,
            "image" if value.as_str() == Some(AUTO_IMAGE) => continue,
            _ => {}
        }
        if value.is_null() {
            remove_key(base, key);
            continue;
        }
        match (list_merge_key(key), base.get_mut(key.as_str()), value) {
            (Some(merge_key), Some(Value::Array(items)), Value::Array(patch)) => {
                merge_list(items, patch, merge_key, key == "env");
            }
            (None, Some(Value::Object(inner)), Value::Object(patch)) => {
                merge_map(inner, patch, key);
            }
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

/// The lists of a container merged by a key (`patchMergeKey` in the Kubernetes API).
fn list_merge_key(field: &str) -> Option<&'static str> {
    match field {
        "env" => Some("name"),
        "ports" => Some("containerPort"),
        "volumeMounts" => Some("mountPath"),
        "volumeDevices" => Some("devicePath"),
        _ => None,
    }
}

/// Objects whose actions are alternatives: giving one drops the others.
fn is_handler(field: &str) -> bool {
    matches!(
        field,
        "readinessProbe" | "livenessProbe" | "startupProbe" | "preStop" | "postStart"
    )
}

const ACTIONS: [&str; 5] = ["exec", "httpGet", "tcpSocket", "grpc", "sleep"];

fn merge_map(base: &mut Map<String, Value>, overlay: &Map<String, Value>, field: &str) {
    if is_handler(field) && ACTIONS.iter().any(|a| overlay.contains_key(*a)) {
        for action in ACTIONS {
            if !overlay.contains_key(action) {
                remove_key(base, action);
            }
        }
    }
    for (key, value) in overlay {
        if value.is_null() {
            remove_key(base, key);
            continue;
        }
        match (base.get_mut(key.as_str()), value) {
            (Some(Value::Object(inner)), Value::Object(patch)) => merge_map(inner, patch, key),
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

fn merge_list(items: &mut Vec<Value>, patch: &[Value], merge_key: &str, replace_whole: bool) {
    for entry in patch {
        let found = entry
            .get(merge_key)
            .and_then(|key| items.iter().position(|i| i.get(merge_key) == Some(key)));
        let Some(existing) = found.and_then(|i| items.get_mut(i)) else {
            items.push(entry.clone());
            continue;
        };
        match (existing, entry) {
            (Value::Object(existing), Value::Object(patch)) if !replace_whole => {
                merge_map(existing, patch, "");
            }
            (existing, _) => *existing = entry.clone(),
        }
    }
}

fn annotations_mut(pod: &mut Value) -> Option<&mut Map<String, Value>> {
    let metadata = pod
        .as_object_mut()?
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if metadata.is_null() {
        *metadata = Value::Object(Map::new());
    }
    let annotations = metadata
        .as_object_mut()?
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if annotations.is_null() {
        *annotations = Value::Object(Map::new());
    }
    annotations.as_object_mut()
}

#[cfg(test)]
mod tests;
