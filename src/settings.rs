//! The Kubewarden policy's settings: where the injection config comes from, and how the seed's
//! pod spec requirements are enforced.
//!
//! Every key is optional; `{}` is the built-in default. The injection keys (`policy`, `template`,
//! `neverInjectSelector`, `alwaysInjectSelector`, `nativeSidecars`, `mesh`, `config`) are read by
//! [`Config::from_settings`]; this module adds `requirements`, `protocols` and `configMaps`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{Config, ConfigError};
use crate::injector::{InjectionError, Injector};
use crate::requirements::Protocols;
use crate::template::TemplateError;

/// What the policy does with a broken pod spec requirement.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequirementsMode {
    /// Do not check (and make no Service lookups).
    Off,
    /// Admit, and return the findings as admission warnings (kubectl prints them).
    #[default]
    Warn,
    /// Reject, with every finding in the message.
    Enforce,
}

/// A ConfigMap reference, written `namespace/name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigMapRef {
    /// Namespace of the ConfigMap.
    pub namespace: String,
    /// Name of the ConfigMap.
    pub name: String,
}

impl std::fmt::Display for ConfigMapRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

impl std::str::FromStr for ConfigMapRef {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('/') {
            Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
                Ok(Self {
                    namespace: ns.to_string(),
                    name: name.to_string(),
                })
            }
            _ => Err(format!("expected `namespace/name`, got {s:?}")),
        }
    }
}

/// What to do when the ConfigMaps cannot be read or parsed at admission time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnConfigMapError {
    /// Reject the pod, naming the ConfigMap and the problem (no pod runs with a stale sidecar).
    #[default]
    Reject,
    /// Use the config embedded in the settings instead (availability first).
    Embedded,
}

/// Read the injection config from Istio's two ConfigMaps at admission time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigMaps {
    /// The ConfigMap whose `config` key is the injector config.
    pub injector: ConfigMapRef,
    /// The ConfigMap whose `mesh` key is the mesh config.
    pub mesh: ConfigMapRef,
    /// What to do when they cannot be used.
    pub on_error: OnConfigMapError,
}

impl Default for ConfigMaps {
    fn default() -> Self {
        Self {
            injector: ConfigMapRef {
                namespace: "istio-system".into(),
                name: "istio-sidecar-injector".into(),
            },
            mesh: ConfigMapRef {
                namespace: "istio-system".into(),
                name: "istio".into(),
            },
            on_error: OnConfigMapError::Reject,
        }
    }
}

/// Everything the policy's settings say.
#[derive(Debug, Clone, Default)]
pub struct PolicySettings {
    /// The embedded injection config (built-in default unless the settings say otherwise).
    pub config: Config,
    /// When set, the config is read from these ConfigMaps at admission time.
    pub config_maps: Option<ConfigMaps>,
    /// How pod spec requirements are enforced.
    pub requirements: RequirementsMode,
    /// Port-name protocols Service ports may use.
    pub protocols: Protocols,
}

impl PolicySettings {
    /// Parses the settings object; errors name the field.
    pub fn from_value(settings: &Value) -> Result<Self, ConfigError> {
        let config = Config::from_settings(settings)?;
        let field = |name: &str| settings.get(name).filter(|v| !v.is_null());
        let bad = |field: &str, message: String| ConfigError::Field {
            document: "settings",
            field: field.to_string(),
            message,
        };
        let requirements = match field("requirements") {
            None => RequirementsMode::default(),
            Some(v) => serde_json::from_value(v.clone()).map_err(|_| {
                bad(
                    "requirements",
                    format!("must be `off`, `warn` or `enforce`, got {v}"),
                )
            })?,
        };
        let protocols = match field("protocols") {
            None => Protocols::default(),
            Some(v) => {
                serde_json::from_value(v.clone()).map_err(|e| bad("protocols", e.to_string()))?
            }
        };
        let config_maps = match field("configMaps") {
            None => None,
            Some(Value::Object(m)) => {
                let mut maps = ConfigMaps::default();
                if let Some(v) = m.get("injector").filter(|v| !v.is_null()) {
                    maps.injector = config_map_ref(v).map_err(|e| bad("configMaps.injector", e))?;
                }
                if let Some(v) = m.get("mesh").filter(|v| !v.is_null()) {
                    maps.mesh = config_map_ref(v).map_err(|e| bad("configMaps.mesh", e))?;
                }
                if let Some(v) = m.get("onError").filter(|v| !v.is_null()) {
                    maps.on_error = serde_json::from_value(v.clone()).map_err(|_| {
                        bad(
                            "configMaps.onError",
                            format!("must be `reject` or `embedded`, got {v}"),
                        )
                    })?;
                }
                Some(maps)
            }
            Some(other) => {
                return Err(bad(
                    "configMaps",
                    format!(
                        "expected an object, got {}",
                        crate::object::type_name(other)
                    ),
                ));
            }
        };
        Ok(Self {
            config,
            config_maps,
            requirements,
            protocols,
        })
    }

    /// Parses settings as a host hands them over: `null` (no settings given) means `{}`. The
    /// message names the bad field.
    pub fn from_payload(settings: &Value) -> Result<Self, SettingsError> {
        let empty = Value::Object(Default::default());
        let settings = if settings.is_null() { &empty } else { settings };
        Ok(Self::from_value(settings)?)
    }

    /// What a policy's `validate_settings` answers: the settings parse, and their template
    /// compiles and injects a sample pod, so no admission can be the first to find it broken.
    pub fn validate(settings: &Value) -> Result<Self, SettingsError> {
        let settings = Self::from_payload(settings)?;
        embedded_injector(settings.config.clone())?
            .check()
            .map_err(SettingsError::Sample)?;
        Ok(settings)
    }
}

/// Why settings were refused; the message names the field.
// The causes are part of the messages rather than `#[source]`s: hosts report settings errors as
// one string (`valid: false, message`), and a chained source would print twice.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A field is missing its shape or value.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The template does not compile.
    #[error("settings: field `template`: {0}")]
    Template(TemplateError),
    /// The template compiles but cannot inject the sample pod.
    #[error("settings: field `template`: the template cannot inject a sample pod: {0}")]
    Sample(InjectionError),
}

/// The injector of the config embedded in the settings (not of any ConfigMap they name); the
/// message names the field, as `validate_settings` does. Takes the config by value: admissions
/// build one injector each and need no copy.
pub fn embedded_injector(config: Config) -> Result<Injector, SettingsError> {
    Injector::new(config).map_err(SettingsError::Template)
}

fn config_map_ref(value: &Value) -> Result<ConfigMapRef, String> {
    value
        .as_str()
        .ok_or_else(|| format!("expected a string `namespace/name`, got {value}"))?
        .parse()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn empty_settings_are_the_defaults() {
        let s = PolicySettings::from_value(&json!({})).unwrap();
        assert_eq!(s.requirements, RequirementsMode::Warn);
        assert!(s.config_maps.is_none());
        assert_eq!(s.protocols, Protocols::default());
    }

    #[test]
    fn config_maps_default_to_istio_system() {
        let s = PolicySettings::from_value(&json!({"configMaps": {}})).unwrap();
        let maps = s.config_maps.unwrap();
        assert_eq!(
            maps.injector.to_string(),
            "istio-system/istio-sidecar-injector"
        );
        assert_eq!(maps.mesh.to_string(), "istio-system/istio");
        assert_eq!(maps.on_error, OnConfigMapError::Reject);
        let s = PolicySettings::from_value(
            &json!({"configMaps": {"injector": "mesh/inj", "onError": "embedded"}}),
        )
        .unwrap();
        let maps = s.config_maps.unwrap();
        assert_eq!(maps.injector.to_string(), "mesh/inj");
        assert_eq!(maps.on_error, OnConfigMapError::Embedded);
    }

    #[test]
    fn bad_values_name_the_field() {
        for (settings, field) in [
            (json!({"requirements": "strict"}), "requirements"),
            (json!({"protocols": "http"}), "protocols"),
            (json!({"configMaps": {"mesh": "istio"}}), "configMaps.mesh"),
            (
                json!({"configMaps": {"onError": "ignore"}}),
                "configMaps.onError",
            ),
            (json!({"configMaps": true}), "configMaps"),
        ] {
            let err = PolicySettings::from_value(&settings)
                .unwrap_err()
                .to_string();
            assert!(err.contains(&format!("`{field}`")), "{err}");
        }
    }

    #[test]
    fn a_missing_payload_is_the_empty_object() {
        let s = PolicySettings::from_payload(&Value::Null).unwrap();
        assert_eq!(s.requirements, RequirementsMode::Warn);
        assert!(s.config_maps.is_none());
        let e = PolicySettings::from_payload(&json!({"policy": "sometimes"}))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("settings: field `policy`"), "{e}");
        let e = PolicySettings::from_payload(&json!([1]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("settings must be an object"), "{e}");
    }

    #[test]
    fn validation_compiles_the_template_and_injects_a_sample_pod() {
        assert!(PolicySettings::validate(&json!({})).is_ok());
        let e = PolicySettings::validate(&json!({"template": "{{ ProxyConfig"}))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("settings: field `template`: "), "{e}");
        // Compiles, but renders a container without a name: no admission may find that first.
        let e = PolicySettings::validate(&json!({"template": "containers:\n- image: x\n"}))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("settings: field `template`: the template cannot inject a sample pod: "),
            "{e}"
        );
    }
}
