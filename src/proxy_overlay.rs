//! The `proxy.istio.io/config` annotation: a per-pod ProxyConfig (YAML or JSON) merged over the
//! mesh's `defaultConfig` before the template renders, as Istio's `mesh.ApplyProxyConfig` does.
//!
//! # Differences from Istio
//! - Maps are merged key by key at every depth (Istio merges `proxyMetadata` and `proxyHeaders`
//!   that way and replaces other messages' fields one by one, which is the same for the fields
//!   this project knows); lists and scalars replace the default's.
//! - Unknown fields are kept and reach the template, as in the mesh config; Istio drops them.

use serde_json::{Map, Value};

use crate::config::{MeshConfig, ProxyConfig};
use crate::object::type_name;

/// The annotation holding the pod's ProxyConfig overlay.
pub const PROXY_CONFIG_ANNOTATION: &str = "proxy.istio.io/config";

/// `text` merged over `base`; the error says what is wrong (field path and reason).
pub fn apply(base: &ProxyConfig, text: &str) -> Result<ProxyConfig, String> {
    let overlay: Value = serde_yaml::from_str(text)
        .map_err(|e| format!("not a ProxyConfig in YAML or JSON: {e}"))?;
    let overlay = match overlay {
        Value::Null => return Ok(base.clone()),
        Value::Object(map) => map,
        other => {
            return Err(format!(
                "expected a ProxyConfig mapping, got {}",
                type_name(&other)
            ));
        }
    };
    let mut merged = serde_json::to_value(base).map_err(|e| e.to_string())?;
    if let Value::Object(merged) = &mut merged {
        merge_maps(merged, overlay);
    }
    let proxy: ProxyConfig = serde_path_to_error::deserialize(merged).map_err(|e| {
        let path = e.path().to_string();
        format!("field `{path}`: {}", e.into_inner())
    })?;
    proxy
        .check_durations()
        .map_err(|(field, why)| format!("field `{field}`: {why}"))?;
    Ok(proxy)
}

/// The annotation's validator: the text merges over Istio's default ProxyConfig.
pub fn check(text: &str) -> Result<(), String> {
    apply(&ProxyConfig::default(), text).map(|_| ())
}

/// The mesh config this pod renders with: `mesh` with the pod's overlay merged into
/// `defaultConfig`, or `None` when the pod has no overlay (the shared mesh data serves it).
pub fn mesh_for_pod(pod: &Value, mesh: &MeshConfig) -> Result<Option<MeshConfig>, String> {
    let Some(text) = pod
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(PROXY_CONFIG_ANNOTATION))
        .and_then(Value::as_str)
    else {
        return Ok(None);
    };
    let default_config = apply(&mesh.default_config, text)?;
    Ok(Some(MeshConfig {
        default_config,
        ..mesh.clone()
    }))
}

fn merge_maps(into: &mut Map<String, Value>, from: Map<String, Value>) {
    for (key, value) in from {
        match (into.get_mut(&key), value) {
            (Some(Value::Object(old)), Value::Object(new)) => merge_maps(old, new),
            (_, value) => {
                into.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_and_json_overlays_replace_the_fields_they_name() {
        let base = ProxyConfig::default();
        let p = apply(
            &base,
            "holdApplicationUntilProxyStarts: true\ndrainDuration: 9s\n",
        )
        .unwrap();
        assert!(p.hold_application_until_proxy_starts);
        assert_eq!(p.drain_duration, "9s");
        assert_eq!(p.binary_path, base.binary_path);
        let p = apply(&base, r#"{"proxyAdminPort": 1}"#).unwrap();
        assert_eq!(p.proxy_admin_port, 1);
        assert_eq!(apply(&base, "").unwrap(), base);
    }

    #[test]
    fn maps_merge_key_by_key() {
        let mut base = ProxyConfig::default();
        base.other
            .insert("proxyMetadata".into(), json!({"A": "1", "B": "2"}));
        let p = apply(&base, "proxyMetadata: {B: three, C: '4'}").unwrap();
        assert_eq!(
            p.other["proxyMetadata"],
            json!({"A": "1", "B": "three", "C": "4"})
        );
    }

    #[test]
    fn bad_overlays_say_what_is_wrong() {
        let base = ProxyConfig::default();
        let e = apply(&base, "holdApplicationUntilProxyStarts: maybe").unwrap_err();
        assert!(e.contains("holdApplicationUntilProxyStarts"), "{e}");
        let e = apply(&base, "drainDuration: soon").unwrap_err();
        assert!(e.contains("drainDuration"), "{e}");
        let e = apply(&base, "[1, 2]").unwrap_err();
        assert!(e.contains("mapping"), "{e}");
        let e = apply(&base, "a: [").unwrap_err();
        assert!(e.contains("YAML or JSON"), "{e}");
    }

    #[test]
    fn the_pod_mesh_exists_only_with_the_annotation() {
        let mesh = MeshConfig::default();
        assert_eq!(mesh_for_pod(&json!({"metadata": {}}), &mesh), Ok(None));
        let pod = json!({"metadata": {"annotations": {PROXY_CONFIG_ANNOTATION: "configPath: /x"}}});
        let m = mesh_for_pod(&pod, &mesh).unwrap().unwrap();
        assert_eq!(m.default_config.config_path, "/x");
        assert_eq!(m.proxy_listen_port, mesh.proxy_listen_port);
    }
}
