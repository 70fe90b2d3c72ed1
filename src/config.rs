//! Injector and mesh configuration in the shapes of Istio's two ConfigMaps, with Istio's defaults.
//!
//! The injector config is the `config` document of the `istio-sidecar-injector` ConfigMap
//! (`policy`, `template`, `neverInjectSelector`, `alwaysInjectSelector`); the mesh config is the
//! `mesh` document of the `istio` ConfigMap (MeshConfig, whose `defaultConfig` is the ProxyConfig).
//! Both parse from YAML or JSON. Fields left out take Istio's defaults (istio 1.0
//! `pilot/pkg/model/context.go`), unknown fields are kept (and reach the template), and a field of
//! the wrong type is an error that names it.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::duration::GoDuration;
use crate::object::type_name;
use crate::selector;
use crate::template::TemplateSyntax;

/// The sidecar template used when the injector config has none, modelled on the seed's example.
pub const BUILTIN_TEMPLATE: &str = include_str!("builtin/sidecar-template.yaml");

/// Why a configuration document was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The document is not YAML (or JSON) at all.
    // The parser's error is part of the message rather than a `#[source]`: the policy reports
    // errors as one string (`valid: false, message`), and a chained source would print twice.
    #[error("{document}: not valid YAML: {cause}")]
    Syntax {
        /// Which document, e.g. `mesh config`.
        document: &'static str,
        /// The parser's error, with its line and column.
        cause: serde_yaml::Error,
    },
    /// A field holds a value of the wrong type or an unaccepted value.
    #[error("{document}: field `{field}`: {message}")]
    Field {
        /// Which document, e.g. `injector config`.
        document: &'static str,
        /// Path of the field, e.g. `defaultConfig.drainDuration`.
        field: String,
        /// What is wrong and what is accepted.
        message: String,
    },
}

/// The injection policy: what happens to a pod that neither asks for nor refuses a sidecar.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InjectionPolicy {
    /// Inject unless the pod says `sidecar.istio.io/inject: "false"`.
    #[default]
    Enabled,
    /// Inject only if the pod says `sidecar.istio.io/inject: "true"`.
    Disabled,
}

impl<'de> Deserialize<'de> for InjectionPolicy {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.as_str() {
            "enabled" => Ok(Self::Enabled),
            "disabled" => Ok(Self::Disabled),
            other => Err(serde::de::Error::custom(format!(
                "policy must be `enabled` or `disabled`, got `{other}`"
            ))),
        }
    }
}

/// The `config` document of the `istio-sidecar-injector` ConfigMap.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InjectorConfig {
    /// Default for pods that do not choose.
    #[serde(default)]
    pub policy: InjectionPolicy,
    /// The sidecar template (upon syntax, or Go's as Istio's ConfigMaps hold it), rendered to
    /// a SidecarInjectionSpec. Borrowed when it is the built-in one: most admissions use it,
    /// and copying it was a cost of each.
    #[serde(default = "builtin_template")]
    pub template: Cow<'static, str>,
    /// The template's syntax when its text alone is ambiguous; recognised from the text
    /// otherwise. Not one of Istio's keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_syntax: Option<TemplateSyntax>,
    /// Named templates (Istio ≥ 1.8), each rendered like `template`; `template` is the one named
    /// `sidecar` unless this map has its own (see [`crate::templates`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub templates: BTreeMap<String, String>,
    /// The templates a pod gets when it does not choose with `inject.istio.io/templates`;
    /// `[sidecar]` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_templates: Option<Vec<String>>,
    /// Names that stand for a list of templates wherever templates are chosen.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub aliases: BTreeMap<String, Vec<String>>,
    /// The control-plane revision this injector serves (`istio.io/rev`); `None` serves every pod
    /// as before revisions existed. Not one of Istio's keys: istiod takes it from its
    /// deployment (see [`crate::revision`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Inject the proxy as a native sidecar (an init container with `restartPolicy: Always`,
    /// Kubernetes ≥ 1.29) unless the pod says otherwise with `sidecar.istio.io/nativeSidecar`.
    /// Istio takes this from istiod's `ENABLE_NATIVE_SIDECARS`; here it is a config key.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub native_sidecars: bool,
    /// Rewrite the application's probes to the agent's status port unless the pod says otherwise
    /// with `sidecar.istio.io/rewriteAppHTTPProbers` (Istio's
    /// `sidecarInjectorWebhook.rewriteAppHTTPProbe`, on by default since Istio 1.10); only a
    /// proxy that serves a status port takes them over ([`crate::probes`]).
    #[serde(
        rename = "rewriteAppHTTPProbe",
        default = "default_true",
        skip_serializing_if = "is_true"
    )]
    pub rewrite_app_http_probe: bool,
    /// Pods matching any of these are not injected unless they ask for it.
    #[serde(default)]
    pub never_inject_selector: Vec<LabelSelector>,
    /// Pods matching any of these are injected unless they refuse it (never wins over always).
    #[serde(default)]
    pub always_inject_selector: Vec<LabelSelector>,
    /// Keys this version does not use, kept as given.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

fn default_true() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

fn builtin_template() -> Cow<'static, str> {
    Cow::Borrowed(BUILTIN_TEMPLATE)
}

impl Default for InjectorConfig {
    fn default() -> Self {
        Self {
            policy: InjectionPolicy::default(),
            template: builtin_template(),
            template_syntax: None,
            templates: BTreeMap::new(),
            default_templates: None,
            aliases: BTreeMap::new(),
            revision: None,
            native_sidecars: false,
            rewrite_app_http_probe: true,
            never_inject_selector: Vec::new(),
            always_inject_selector: Vec::new(),
            other: Map::new(),
        }
    }
}

impl InjectorConfig {
    /// Parses the `config` document (YAML or JSON).
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        let config: Self = from_document("injector config", parse_yaml("injector config", text)?)?;
        config.validate("injector config")?;
        Ok(config)
    }

    fn validate(&self, document: &'static str) -> Result<(), ConfigError> {
        if let Some(revision) = &self.revision {
            crate::revision::validate(revision).map_err(|message| ConfigError::Field {
                document,
                field: "revision".into(),
                message,
            })?;
        }
        for (list, selectors) in [
            ("neverInjectSelector", &self.never_inject_selector),
            ("alwaysInjectSelector", &self.always_inject_selector),
        ] {
            for (i, s) in selectors.iter().enumerate() {
                selector::validate(s).map_err(|message| ConfigError::Field {
                    document,
                    field: format!("{list}[{i}]"),
                    message,
                })?;
            }
        }
        Ok(())
    }
}

/// Istio's ProxyConfig: how the sidecar proxy runs. JSON names as in the `mesh` document.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ProxyConfig {
    /// Where the proxy writes its generated configuration.
    pub config_path: String,
    /// The Envoy binary.
    pub binary_path: String,
    /// Service cluster name, used when the pod has no `app` label.
    pub service_cluster: String,
    /// Time Envoy drains connections on shutdown (protobuf duration text).
    pub drain_duration: String,
    /// Time the parent Envoy process waits before exiting on hot restart.
    pub parent_shutdown_duration: String,
    /// Address of the discovery service.
    pub discovery_address: String,
    /// Polling interval for discovery.
    pub discovery_refresh_delay: String,
    /// Zipkin collector address; empty disables tracing.
    pub zipkin_address: String,
    /// Connection timeout to the discovery service.
    pub connect_timeout: String,
    /// Statsd UDP sink; empty disables it.
    pub statsd_udp_address: String,
    /// Envoy admin port.
    pub proxy_admin_port: i32,
    /// `NONE` or `MUTUAL_TLS` between proxy and control plane.
    pub control_plane_auth_policy: String,
    /// `REDIRECT` or `TPROXY`.
    pub interception_mode: String,
    /// Start the application only once the proxy is ready: the proxy goes first in
    /// `containers` with a `postStart` hook that waits for it (native sidecars need neither).
    pub hold_application_until_proxy_starts: bool,
    /// Keys this version does not use, kept as given.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            config_path: "/etc/istio/proxy".into(),
            binary_path: "/usr/local/bin/envoy".into(),
            service_cluster: "istio-proxy".into(),
            drain_duration: "2s".into(),
            parent_shutdown_duration: "3s".into(),
            discovery_address: "istio-pilot:15007".into(),
            discovery_refresh_delay: "1s".into(),
            zipkin_address: String::new(),
            connect_timeout: "1s".into(),
            statsd_udp_address: String::new(),
            proxy_admin_port: 15000,
            control_plane_auth_policy: "NONE".into(),
            interception_mode: "REDIRECT".into(),
            hold_application_until_proxy_starts: false,
            other: Map::new(),
        }
    }
}

impl ProxyConfig {
    /// Checks the duration fields, so a typo fails where the config is given (the mesh config,
    /// a pod's `proxy.istio.io/config`), not in the proxy; the error names the field.
    pub fn check_durations(&self) -> Result<(), (&'static str, String)> {
        for (field, text) in [
            ("drainDuration", &self.drain_duration),
            ("parentShutdownDuration", &self.parent_shutdown_duration),
            ("discoveryRefreshDelay", &self.discovery_refresh_delay),
            ("connectTimeout", &self.connect_timeout),
        ] {
            GoDuration::parse(text).map_err(|e| (field, e.to_string()))?;
        }
        Ok(())
    }
}

/// Istio's MeshConfig: mesh-wide settings, with the ProxyConfig under `defaultConfig`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MeshConfig {
    /// The ProxyConfig every sidecar starts from.
    pub default_config: ProxyConfig,
    /// Port the proxy listens on for redirected traffic.
    pub proxy_listen_port: i32,
    /// Timeout for connections to upstream clusters.
    pub connect_timeout: String,
    /// Polling interval for route discovery.
    pub rds_refresh_delay: String,
    /// `NONE` or `MUTUAL_TLS`.
    pub auth_policy: String,
    /// Whether the proxies trace requests.
    pub enable_tracing: bool,
    /// Where the proxies write access logs.
    pub access_log_file: String,
    /// Ingress class the mesh's ingress serves.
    pub ingress_class: String,
    /// Keys this version does not use, kept as given.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl Default for MeshConfig {
    fn default() -> Self {
        Self {
            default_config: ProxyConfig::default(),
            proxy_listen_port: 15001,
            connect_timeout: "1s".into(),
            rds_refresh_delay: "1s".into(),
            auth_policy: "NONE".into(),
            enable_tracing: true,
            access_log_file: "/dev/stdout".into(),
            ingress_class: "istio".into(),
            other: Map::new(),
        }
    }
}

impl MeshConfig {
    /// Parses the `mesh` document (YAML or JSON).
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        Self::from_value("mesh config", parse_yaml("mesh config", text)?)
    }

    fn from_value(document: &'static str, value: Value) -> Result<Self, ConfigError> {
        let mesh: Self = from_document(document, value)?;
        mesh.validate(document)?;
        Ok(mesh)
    }

    /// Durations are checked here so a typo fails when the config is loaded, not at admission.
    fn validate(&self, document: &'static str) -> Result<(), ConfigError> {
        let durations = [
            ("connectTimeout", &self.connect_timeout),
            ("rdsRefreshDelay", &self.rds_refresh_delay),
        ];
        for (field, text) in durations {
            GoDuration::parse(text).map_err(|e| ConfigError::Field {
                document,
                field: field.to_string(),
                message: e.to_string(),
            })?;
        }
        self.default_config
            .check_durations()
            .map_err(|(field, message)| ConfigError::Field {
                document,
                field: format!("defaultConfig.{field}"),
                message,
            })
    }
}

/// Everything an injection needs: the injector config and the mesh config.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The `istio-sidecar-injector` ConfigMap's `config`.
    pub injector: InjectorConfig,
    /// The `istio` ConfigMap's `mesh`.
    pub mesh: MeshConfig,
}

impl Config {
    /// Builds the config from Kubewarden policy settings.
    ///
    /// Settings carry what Istio keeps in its two ConfigMaps: `policy`, `template`, `templates`,
    /// `defaultTemplates`, `aliases`, `neverInjectSelector`, `alwaysInjectSelector` and `mesh`
    /// (an object, or the raw `mesh` document as a string), plus `templateSyntax` (`go` or
    /// `upon`) for a template whose text does not tell and `revision` (the one this policy
    /// serves). `config` may hold the raw `config` document; keys given beside it win over
    /// it. Every key is optional: `{}` is the built-in default.
    pub fn from_settings(settings: &Value) -> Result<Self, ConfigError> {
        const DOC: &str = "settings";
        let Some(settings) = settings.as_object() else {
            return Err(ConfigError::Field {
                document: DOC,
                field: String::new(),
                message: format!("settings must be an object, got {}", type_name(settings)),
            });
        };
        let mut injector = match settings.get("config") {
            None | Some(Value::Null) => InjectorConfig::default(),
            Some(Value::String(text)) => InjectorConfig::from_yaml(text)?,
            Some(other) => {
                return Err(ConfigError::Field {
                    document: DOC,
                    field: "config".into(),
                    message: format!(
                        "expected the `config` document of the istio-sidecar-injector ConfigMap as a string, got {}",
                        type_name(other)
                    ),
                });
            }
        };
        let field = |name: &str| settings.get(name).filter(|v| !v.is_null()).cloned();
        if let Some(v) = field("policy") {
            injector.policy = from_field(DOC, "policy", v)?;
        }
        if let Some(v) = field("template") {
            injector.template = from_field(DOC, "template", v)?;
        }
        if let Some(v) = field("templateSyntax") {
            injector.template_syntax = from_field(DOC, "templateSyntax", v)?;
        }
        if let Some(v) = field("nativeSidecars") {
            injector.native_sidecars = from_field(DOC, "nativeSidecars", v)?;
        }
        if let Some(v) = field("rewriteAppHTTPProbe") {
            injector.rewrite_app_http_probe = from_field(DOC, "rewriteAppHTTPProbe", v)?;
        }
        if let Some(v) = field("templates") {
            injector.templates = from_field(DOC, "templates", v)?;
        }
        if let Some(v) = field("defaultTemplates") {
            injector.default_templates = from_field(DOC, "defaultTemplates", v)?;
        }
        if let Some(v) = field("aliases") {
            injector.aliases = from_field(DOC, "aliases", v)?;
        }
        if let Some(v) = field("revision") {
            injector.revision = from_field(DOC, "revision", v)?;
        }
        if let Some(v) = field("neverInjectSelector") {
            injector.never_inject_selector = from_field(DOC, "neverInjectSelector", v)?;
        }
        if let Some(v) = field("alwaysInjectSelector") {
            injector.always_inject_selector = from_field(DOC, "alwaysInjectSelector", v)?;
        }
        injector.validate(DOC)?;
        let mesh = match settings.get("mesh") {
            None | Some(Value::Null) => MeshConfig::default(),
            Some(Value::String(text)) => MeshConfig::from_yaml(text)?,
            Some(value @ Value::Object(_)) => {
                MeshConfig::from_value("settings.mesh", value.clone())?
            }
            Some(other) => {
                return Err(ConfigError::Field {
                    document: DOC,
                    field: "mesh".into(),
                    message: format!(
                        "expected a MeshConfig object or the `mesh` document as a string, got {}",
                        type_name(other)
                    ),
                });
            }
        };
        Ok(Self { injector, mesh })
    }
}

/// Parses YAML (JSON is YAML) into a JSON value; an empty document is an empty object.
fn parse_yaml(document: &'static str, text: &str) -> Result<Value, ConfigError> {
    let value: Value =
        serde_yaml::from_str(text).map_err(|cause| ConfigError::Syntax { document, cause })?;
    match value {
        Value::Null => Ok(Value::Object(Map::new())),
        value @ Value::Object(_) => Ok(value),
        other => Err(ConfigError::Field {
            document,
            field: String::new(),
            message: format!(
                "expected a mapping at the top level, got {}",
                type_name(&other)
            ),
        }),
    }
}

/// Deserializes a whole document, reporting the path of the first bad field.
fn from_document<T: serde::de::DeserializeOwned>(
    document: &'static str,
    value: Value,
) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|e| ConfigError::Field {
        document,
        field: e.path().to_string(),
        message: e.into_inner().to_string(),
    })
}

/// Deserializes one field of a document, prefixing the field's name to the error path.
fn from_field<T: serde::de::DeserializeOwned>(
    document: &'static str,
    name: &str,
    value: Value,
) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        ConfigError::Field {
            document,
            field: if inner == "." {
                name.to_string()
            } else {
                format!("{name}.{inner}")
            },
            message: e.into_inner().to_string(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn empty_documents_take_istio_defaults() {
        let mesh = MeshConfig::from_yaml("").unwrap();
        assert_eq!(mesh, MeshConfig::default());
        assert_eq!(mesh.default_config.config_path, "/etc/istio/proxy");
        assert_eq!(mesh.default_config.binary_path, "/usr/local/bin/envoy");
        assert_eq!(mesh.default_config.service_cluster, "istio-proxy");
        assert_eq!(mesh.default_config.proxy_admin_port, 15000);
        let injector = InjectorConfig::from_yaml("{}").unwrap();
        assert_eq!(injector.policy, InjectionPolicy::Enabled);
        assert_eq!(injector.template, BUILTIN_TEMPLATE);
    }

    #[test]
    fn fields_left_out_keep_defaults_and_unknown_fields_are_kept() {
        let mesh = MeshConfig::from_yaml(
            "defaultConfig:\n  drainDuration: 45s\n  futureKnob: {a: 1}\nmixerAddress: mixer:9091\n",
        )
        .unwrap();
        assert_eq!(mesh.default_config.drain_duration, "45s");
        assert_eq!(mesh.default_config.parent_shutdown_duration, "3s");
        assert_eq!(mesh.default_config.other["futureKnob"], json!({"a": 1}));
        assert_eq!(mesh.other["mixerAddress"], json!("mixer:9091"));
        let back = serde_json::to_value(&mesh).unwrap();
        assert_eq!(back["defaultConfig"]["futureKnob"], json!({"a": 1}));
    }

    #[test]
    fn json_documents_parse_too() {
        let injector =
            InjectorConfig::from_yaml(r#"{"policy": "disabled", "template": "containers: []"}"#)
                .unwrap();
        assert_eq!(injector.policy, InjectionPolicy::Disabled);
        assert_eq!(injector.template, "containers: []");
    }

    #[test]
    fn wrong_type_names_the_field() {
        let err = MeshConfig::from_yaml("defaultConfig:\n  proxyAdminPort: lots\n").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("defaultConfig.proxyAdminPort"), "{text}");
        let err = InjectorConfig::from_yaml("template: [1]").unwrap_err();
        assert!(err.to_string().contains("`template`"), "{err}");
    }

    #[test]
    fn bad_duration_names_the_field() {
        let err = MeshConfig::from_yaml("defaultConfig:\n  drainDuration: soon\n").unwrap_err();
        assert!(
            err.to_string().contains("defaultConfig.drainDuration"),
            "{err}"
        );
    }

    #[test]
    fn unknown_policy_is_refused_with_the_accepted_values() {
        let err = InjectorConfig::from_yaml("policy: Enabled").unwrap_err();
        assert!(
            err.to_string()
                .contains("`enabled` or `disabled`, got `Enabled`"),
            "{err}"
        );
    }

    #[test]
    fn malformed_selector_is_refused_with_its_index() {
        let err = InjectorConfig::from_yaml(
            "neverInjectSelector:\n- matchExpressions:\n  - {key: a, operator: Is}\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("neverInjectSelector[0]"), "{err}");
    }

    #[test]
    fn settings_overlay_the_raw_documents() {
        let config = Config::from_settings(&json!({
            "config": "policy: disabled\ntemplate: 'containers: []'\n",
            "policy": "enabled",
            "mesh": "defaultConfig:\n  binaryPath: /bin/envoy\n",
        }))
        .unwrap();
        assert_eq!(config.injector.policy, InjectionPolicy::Enabled);
        assert_eq!(config.injector.template, "containers: []");
        assert_eq!(config.mesh.default_config.binary_path, "/bin/envoy");
        let config =
            Config::from_settings(&json!({"mesh": {"defaultConfig": {"proxyAdminPort": 1}}}))
                .unwrap();
        assert_eq!(config.mesh.default_config.proxy_admin_port, 1);
    }

    #[test]
    fn settings_errors_name_the_field() {
        let err = Config::from_settings(&json!({"policy": 3})).unwrap_err();
        assert!(err.to_string().contains("`policy`"), "{err}");
        let err = Config::from_settings(&json!({"mesh": 3})).unwrap_err();
        assert!(err.to_string().contains("`mesh`"), "{err}");
        let err =
            Config::from_settings(&json!({"alwaysInjectSelector": [{"matchLabels": {"a": 1}}]}))
                .unwrap_err();
        assert!(err.to_string().contains("alwaysInjectSelector"), "{err}");
        assert!(Config::from_settings(&json!([])).is_err());
        assert!(Config::from_settings(&json!({})).is_ok());
    }

    #[test]
    fn native_sidecars_is_read_from_settings_and_the_config_document() {
        assert!(!Config::default().injector.native_sidecars);
        let config = Config::from_settings(&json!({"nativeSidecars": true})).unwrap();
        assert!(config.injector.native_sidecars);
        let config = Config::from_settings(&json!({"config": "nativeSidecars: true"})).unwrap();
        assert!(config.injector.native_sidecars);
        let err = Config::from_settings(&json!({"nativeSidecars": "yes"})).unwrap_err();
        assert!(err.to_string().contains("`nativeSidecars`"), "{err}");
        // Left out when false, so a default config serializes as before.
        let text = serde_json::to_string(&InjectorConfig::default()).unwrap();
        assert!(!text.contains("nativeSidecars"), "{text}");
    }

    #[test]
    fn policy_yaml_settings_are_valid_and_carry_the_builtin_template() {
        let policy: Value = serde_yaml::from_str(include_str!("../policy.yaml")).unwrap();
        let settings = &policy["spec"]["settings"];
        let config = Config::from_settings(settings).unwrap();
        assert_eq!(config.injector.template, BUILTIN_TEMPLATE);
        assert_eq!(config.injector.policy, InjectionPolicy::Enabled);
    }
}
