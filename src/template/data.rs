//! The data a template sees: the pod's `ObjectMeta` and `Spec`, and the mesh's `ProxyConfig`
//! and `MeshConfig`, converted for upon as the template reads them.

use serde_json::{Map, Value};

use super::functions::from_json_value;
use crate::config::MeshConfig;
use crate::object;

/// The data a template sees, for one pod.
///
/// Values are converted for the template only when the template reads them: a pod with
/// thousands of env vars or volumes costs nothing for the parts the template never looks at.
#[derive(Debug, Clone)]
pub struct TemplateData<'a> {
    meta: upon::Value,
    spec: Option<&'a Value>,
    mesh: &'a MeshData,
    native_sidecars: bool,
}

impl<'a> TemplateData<'a> {
    /// Data for `pod` (a Pod or pod template: `metadata` and `spec` are read).
    ///
    /// `namespace` fills `ObjectMeta.namespace` when the pod has none (pods created by
    /// controllers arrive without one).
    pub fn new(pod: &'a Value, namespace: Option<&str>, mesh: &'a MeshData) -> Self {
        let mut meta = match pod.get("metadata").map(from_json_value) {
            Some(upon::Value::Map(m)) => m,
            _ => Default::default(),
        };
        for key in ["labels", "annotations"] {
            if !matches!(meta.get(key), Some(upon::Value::Map(_))) {
                meta.insert(key.to_string(), upon::Value::Map(Default::default()));
            }
        }
        if object::namespace(pod).is_none()
            && let Some(ns) = namespace.filter(|ns| !ns.is_empty())
        {
            meta.insert("namespace".into(), upon::Value::from(ns));
        }
        Self {
            meta: upon::Value::Map(meta),
            spec: pod.get("spec").filter(|s| s.is_object()),
            mesh,
            native_sidecars: false,
        }
    }

    /// Sets `NativeSidecars` (Istio's name): whether the injector places this pod's proxy as a
    /// native sidecar, for templates that shape the proxy for it.
    pub fn with_native_sidecars(mut self, native: bool) -> Self {
        self.native_sidecars = native;
        self
    }

    /// The value at `path`, as upon resolves a variable: a missing member is an error after `.`
    /// and nothing after `?.`.
    ///
    /// upon 0.11 asks here, with the whole path, when a `?.` member of a *loop variable* is
    /// missing (it treats the miss as an unknown name); `loop_variables` are the template's, so
    /// that miss is nothing, as `?.` promises, rather than an error about the data.
    pub(super) fn lookup(
        &self,
        path: &[upon::ValueMember<'_>],
        loop_variables: &[String],
    ) -> Result<upon::Value, String> {
        use upon::{ValueAccess, ValueAccessOp};
        let Some((root, rest)) = path.split_first() else {
            return Ok(upon::Value::None);
        };
        let missing = |member: &upon::ValueMember<'_>, what: String| {
            if member.op == ValueAccessOp::Optional {
                Ok(upon::Value::None)
            } else {
                Err(what)
            }
        };
        let ValueAccess::Key(name) = root.access else {
            return missing(root, "the data is a map, not a list".into());
        };
        let upon_root = match name {
            "ObjectMeta" => &self.meta,
            "ProxyConfig" => &self.mesh.proxy,
            "MeshConfig" => &self.mesh.mesh,
            "NativeSidecars" => {
                return match rest.first() {
                    None => Ok(upon::Value::Bool(self.native_sidecars)),
                    Some(member) => missing(member, "NativeSidecars is a boolean".into()),
                };
            }
            "Spec" => {
                let empty = Value::Object(Map::new());
                let mut current = self.spec.unwrap_or(&empty);
                for member in rest {
                    let next = match member.access {
                        ValueAccess::Key(key) => current.get(key),
                        ValueAccess::Index(i) => current.get(i),
                    };
                    match next {
                        Some(value) => current = value,
                        None => return missing(member, not_found(member)),
                    }
                }
                return Ok(from_json_value(current));
            }
            other if loop_variables.iter().any(|v| v == other) => {
                return if path.iter().any(|m| m.op == ValueAccessOp::Optional) {
                    Ok(upon::Value::None)
                } else {
                    Err(format!("loop variable `{other}` is used outside its loop"))
                };
            }
            other => {
                return missing(
                    root,
                    format!(
                        "unknown name `{other}`: the data has ObjectMeta, Spec, ProxyConfig, MeshConfig and NativeSidecars"
                    ),
                );
            }
        };
        let mut current = upon_root;
        for member in rest {
            let next = match (current, member.access) {
                (upon::Value::Map(m), ValueAccess::Key(key)) => m.get(key),
                (upon::Value::List(l), ValueAccess::Index(i)) => l.get(i),
                _ => None,
            };
            match next {
                Some(value) => current = value,
                None => return missing(member, not_found(member)),
            }
        }
        Ok(current.clone())
    }
}

fn not_found(member: &upon::ValueMember<'_>) -> String {
    match member.access {
        upon::ValueAccess::Key(key) => {
            format!("not found: `{key}` (use `?.{key}` when it may be missing)")
        }
        upon::ValueAccess::Index(i) => format!("not found: index {i}"),
    }
}

/// ProxyConfig and MeshConfig converted for templates once, not once per pod.
#[derive(Debug, Clone)]
pub struct MeshData {
    proxy: upon::Value,
    mesh: upon::Value,
}

impl MeshData {
    /// Converts the mesh config (JSON field names, unknown fields included).
    pub fn new(mesh: &MeshConfig) -> Self {
        let mesh_json = serde_json::to_value(mesh).unwrap_or(Value::Null);
        let proxy = mesh_json
            .get("defaultConfig")
            .map(from_json_value)
            .unwrap_or_default();
        Self {
            proxy,
            mesh: from_json_value(&mesh_json),
        }
    }
}
