//! The seed's `SidecarInjectionSpec`: what a rendered template holds, as k8s-openapi types.
//!
//! Templates are written by hand, so the rendered YAML is read the way Istio reads it
//! (`ghodss/yaml` into typed Go structs): a scalar of the wrong kind is converted when the target
//! field says so, e.g. `args: [-p, 15001]` becomes strings and `containerPort: "80"` a number.

use k8s_openapi::api::core::v1::{Container, LocalObjectReference, Volume};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::object::{self, PodList, PodLists};

/// Containers, volumes and pull secrets to add to a pod (seed: "Understanding what happened").
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SidecarInjectionSpec {
    /// Added after the pod's own init containers.
    #[serde(default)]
    pub init_containers: Vec<Container>,
    /// Added after the pod's containers (the proxy last).
    #[serde(default)]
    pub containers: Vec<Container>,
    /// Added after the pod's volumes.
    #[serde(default)]
    pub volumes: Vec<Volume>,
    /// Added to the pod's image pull secrets unless already there.
    #[serde(default)]
    pub image_pull_secrets: Vec<LocalObjectReference>,
}

/// The rendered YAML does not describe a SidecarInjectionSpec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rendered template: field `{field}`: {message}")]
pub struct SpecError {
    /// Path of the offending field, e.g. `containers[0].ports[0].containerPort`.
    pub field: String,
    /// What serde found wrong.
    pub message: String,
}

impl SidecarInjectionSpec {
    /// Reads a rendered document; `null` fields and an empty document mean "nothing".
    pub fn from_value(mut value: Value) -> Result<Self, SpecError> {
        match &mut value {
            Value::Null => return Ok(Self::default()),
            Value::Object(map) => map.retain(|_, v| !v.is_null()),
            other => {
                return Err(SpecError {
                    field: String::new(),
                    message: format!(
                        "expected a mapping with initContainers, containers, volumes and imagePullSecrets, got {}",
                        object::type_name(other)
                    ),
                });
            }
        }
        let spec: Self = deserialize_lenient(value)?;
        spec.check_names()?;
        Ok(spec)
    }

    /// Every entry needs a name, unique in its list: names are how a later injection finds it.
    fn check_names(&self) -> Result<(), SpecError> {
        check_names(PodLists {
            init_containers: self
                .init_containers
                .iter()
                .map(|c| c.name.as_str())
                .collect(),
            containers: self.containers.iter().map(|c| c.name.as_str()).collect(),
            volumes: self.volumes.iter().map(|v| v.name.as_str()).collect(),
            image_pull_secrets: self
                .image_pull_secrets
                .iter()
                .map(|s| s.name.as_str())
                .collect(),
        })
    }

    /// The entries as the JSON a pod gets: k8s-openapi's field order with `name` first.
    pub fn to_entries(&self) -> Result<InjectionEntries, SpecError> {
        Ok(PodLists {
            init_containers: to_values(PodList::InitContainers, &self.init_containers)?,
            containers: to_values(PodList::Containers, &self.containers)?,
            volumes: to_values(PodList::Volumes, &self.volumes)?,
            image_pull_secrets: to_values(PodList::ImagePullSecrets, &self.image_pull_secrets)?,
        })
    }
}

/// A [`SidecarInjectionSpec`] as JSON, ready to go into a pod: what the injector merges, the
/// entries of each pod list.
///
/// Read from a rendered template through the typed spec, so every entry is a valid
/// k8s-openapi object; kept as JSON so a remembered rendering can take a new pod's text
/// values without being read again.
pub type InjectionEntries = PodLists<Vec<Value>>;

impl InjectionEntries {
    /// The same rule as [`SidecarInjectionSpec`]'s: every entry has a unique, non-empty name.
    pub fn check_names(&self) -> Result<(), SpecError> {
        check_names(PodLists::from_fn(|list| {
            self.get(list)
                .iter()
                .map(|item| item.get("name").and_then(Value::as_str).unwrap_or(""))
                .collect()
        }))
    }
}

fn check_names(lists: PodLists<Vec<&str>>) -> Result<(), SpecError> {
    for (list, names) in lists.iter() {
        for (i, name) in names.iter().enumerate() {
            if name.is_empty() {
                return Err(SpecError {
                    field: format!("{list}[{i}].name"),
                    message: "every injected entry needs a non-empty name".into(),
                });
            }
            if names.iter().take(i).any(|earlier| earlier == name) {
                return Err(SpecError {
                    field: format!("{list}[{i}].name"),
                    message: format!("duplicate name {name:?}"),
                });
            }
        }
    }
    Ok(())
}

/// Each item as JSON with `name` first, so injected YAML reads like hand-written YAML
/// (k8s-openapi serializes fields alphabetically).
fn to_values<T: Serialize>(list: PodList, items: &[T]) -> Result<Vec<Value>, SpecError> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let value = serde_json::to_value(item).map_err(|e| SpecError {
                field: format!("{list}[{i}]"),
                message: e.to_string(),
            })?;
            Ok(match value {
                Value::Object(mut fields) => {
                    let mut ordered = serde_json::Map::with_capacity(fields.len());
                    if let Some(name) = object::remove_key(&mut fields, "name") {
                        ordered.insert("name".to_string(), name);
                    }
                    ordered.extend(fields);
                    Value::Object(ordered)
                }
                other => other,
            })
        })
        .collect()
}

/// How many scalars one document may have converted before we give up (a bound, not a limit
/// anyone reaches: each scalar is converted at most once).
const MAX_COERCIONS: usize = 10_000;

/// Deserializes `value`, converting a scalar to the kind its field wants on each type error.
fn deserialize_lenient<T: DeserializeOwned>(mut value: Value) -> Result<T, SpecError> {
    let mut converted: Vec<String> = Vec::new();
    loop {
        let error = match serde_path_to_error::deserialize::<_, T>(&value) {
            Ok(parsed) => return Ok(parsed),
            Err(error) => error,
        };
        let field = error.path().to_string();
        let message = error.inner().to_string();
        // An empty scalar where text is expected is `""`, as Istio's reader makes it (an
        // argument rendered empty is `- ` in the YAML, which is null).
        let to_text = message.starts_with("invalid type: null, expected a string");
        let retry = message.starts_with("invalid type")
            && converted.len() < MAX_COERCIONS
            && !converted.contains(&field)
            && pointer_mut(&mut value, error.path()).is_some_and(|slot| {
                if to_text {
                    *slot = Value::String(String::new());
                    true
                } else {
                    convert_scalar(slot)
                }
            });
        if !retry {
            return Err(SpecError { field, message });
        }
        converted.push(field);
    }
}

/// Number or boolean → its text; text → the number or boolean it spells. False if impossible.
fn convert_scalar(slot: &mut Value) -> bool {
    let replacement = match slot {
        Value::Number(n) => Value::String(n.to_string()),
        Value::Bool(b) => Value::String(b.to_string()),
        Value::String(s) => {
            if let Ok(i) = s.parse::<i64>() {
                Value::from(i)
            } else if let Some(f) = s.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
                Value::Number(f)
            } else if s == "true" || s == "false" {
                Value::Bool(s == "true")
            } else {
                return false;
            }
        }
        _ => return false,
    };
    *slot = replacement;
    true
}

fn pointer_mut<'a>(
    value: &'a mut Value,
    path: &serde_path_to_error::Path,
) -> Option<&'a mut Value> {
    use serde_path_to_error::Segment;
    let mut current = value;
    for segment in path.iter() {
        current = match segment {
            Segment::Seq { index } => current.get_mut(*index)?,
            Segment::Map { key } => current.get_mut(key.as_str())?,
            Segment::Enum { .. } | Segment::Unknown => return None,
        };
    }
    Some(current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_in_string_lists_become_strings_and_back() {
        let spec = SidecarInjectionSpec::from_value(json!({
            "containers": [{
                "name": "p", "args": ["-p", 15001, true],
                "ports": [{"containerPort": "80"}],
                "resources": {"requests": {"cpu": 1}}
            }]
        }))
        .unwrap();
        let c = &spec.containers[0];
        assert_eq!(c.args.as_deref().unwrap(), ["-p", "15001", "true"]);
        assert_eq!(c.ports.as_ref().unwrap()[0].container_port, 80);
        assert_eq!(
            c.resources.as_ref().unwrap().requests.as_ref().unwrap()["cpu"].0,
            "1"
        );
    }

    #[test]
    fn unconvertible_values_name_the_field() {
        let err = SidecarInjectionSpec::from_value(json!({
            "containers": [{"name": "p", "ports": [{"containerPort": "eighty"}]}]
        }))
        .unwrap_err();
        assert_eq!(err.field, "containers[0].ports[0].containerPort");
    }

    #[test]
    fn unknown_top_level_keys_are_refused() {
        let err = SidecarInjectionSpec::from_value(json!({"container": []})).unwrap_err();
        assert!(err.message.contains("unknown field `container`"), "{err}");
    }

    #[test]
    fn null_and_empty_mean_nothing() {
        assert_eq!(
            SidecarInjectionSpec::from_value(Value::Null).unwrap(),
            SidecarInjectionSpec::default()
        );
        assert_eq!(
            SidecarInjectionSpec::from_value(json!({"initContainers": null})).unwrap(),
            SidecarInjectionSpec::default()
        );
        assert!(SidecarInjectionSpec::from_value(json!([1])).is_err());
    }

    #[test]
    fn a_missing_container_name_is_an_error() {
        let err =
            SidecarInjectionSpec::from_value(json!({"containers": [{"image": "x"}]})).unwrap_err();
        assert_eq!(err.field, "containers[0].name");
        let err =
            SidecarInjectionSpec::from_value(json!({"volumes": [{"name": "v"}, {"name": "v"}]}))
                .unwrap_err();
        assert!(err.message.contains("duplicate"), "{err}");
    }
}
