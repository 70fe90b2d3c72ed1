//! Named templates (Istio ≥ 1.8): the injector config's `templates`, `defaultTemplates` and
//! `aliases`, a pod's choice in `inject.istio.io/templates`, and how the renderings of several
//! templates become one.
//!
//! Istio's `RunTemplate` (pkg/kube/inject/inject.go) renders every selected template for the
//! same stripped pod and applies each result over the previous one as a strategic merge patch.
//! Here each template renders to entries, and entries of one list with one name are merged field
//! by field, the later template winning ([`overlay`]). The single `template` key of Istio ≤ 1.7
//! is the template named `sidecar`, as Istio ≥ 1.8 treats a raw template. Every template is
//! compiled once, when the config is loaded.
//!
//! # Differences from Istio
//! - A `defaultTemplates` or `aliases` entry that names no template is refused when the config
//!   is loaded; Istio finds out at the first pod.
//! - The status annotation lists the templates used, under `templates`, unless they are just
//!   `sidecar` (Istio's status has no such field; Istio's readers ignore fields they do not know).

use std::collections::BTreeMap;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::InjectorConfig;
use crate::template::{
    InjectionEntries, SidecarTemplate, TemplateData, TemplateError, is_builtin_text,
};

/// The pod annotation choosing templates by name, comma-separated, in merge order.
pub const TEMPLATES_ANNOTATION: &str = "inject.istio.io/templates";

/// The template a pod gets when nothing chooses: the single `template` key's.
pub const SIDECAR: &str = "sidecar";

/// Why a pod's choice of templates cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectionError {
    /// A name in the annotation is neither a template nor an alias.
    #[error(
        "annotation {TEMPLATES_ANNOTATION}: requested template {name:?} not found; have {}",
        known.join(", ")
    )]
    Unknown {
        /// The name asked for.
        name: String,
        /// The templates and aliases the config defines.
        known: Vec<String>,
    },
    /// The annotation names no template at all.
    #[error("annotation {TEMPLATES_ANNOTATION} names no template; have {}", known.join(", "))]
    Empty {
        /// The templates and aliases the config defines.
        known: Vec<String>,
    },
}

/// Every template of a config, compiled, with the default choice and the aliases.
#[derive(Debug)]
pub struct NamedTemplates {
    templates: BTreeMap<String, SidecarTemplate>,
    aliases: BTreeMap<String, Vec<String>>,
    /// `defaultTemplates` with aliases resolved.
    defaults: Vec<String>,
}

/// The templates chosen for one pod, in merge order.
#[derive(Debug, Clone)]
pub struct Selection<'a> {
    chosen: Vec<(&'a str, &'a SidecarTemplate)>,
}

impl NamedTemplates {
    /// Compiles every template of `config`; refuses a default or alias naming no template.
    pub fn compile(config: &InjectorConfig) -> Result<Self, TemplateError> {
        let syntax = config.template_syntax;
        let mut templates = BTreeMap::new();
        let explicit_template = !is_builtin_text(&config.template);
        if let Some(named) = config.templates.get(SIDECAR)
            && explicit_template
            && named.as_str() != config.template
        {
            return Err(TemplateError::Config(format!(
                "`template` and `templates.{SIDECAR}` are two different templates for one name; keep one"
            )));
        }
        if !config.templates.contains_key(SIDECAR) {
            templates.insert(
                SIDECAR.to_string(),
                SidecarTemplate::compile_as(&config.template, syntax)?,
            );
        }
        for (name, text) in &config.templates {
            let compiled =
                SidecarTemplate::compile_as(text, syntax).map_err(|e| TemplateError::Named {
                    name: name.clone(),
                    reason: Box::new(e),
                })?;
            templates.insert(name.clone(), compiled);
        }
        let known = |field: String, name: &str| {
            if templates.contains_key(name) {
                Ok(())
            } else {
                Err(TemplateError::Config(format!(
                    "{field} names template {name:?}, which is not defined; have {}",
                    join_keys(&templates)
                )))
            }
        };
        for (alias, names) in &config.aliases {
            for (i, name) in names.iter().enumerate() {
                known(format!("aliases.{alias}[{i}]"), name)?;
            }
        }
        let default_names: Vec<String> = config
            .default_templates
            .clone()
            .unwrap_or_else(|| vec![SIDECAR.to_string()]);
        let defaults = resolve(&config.aliases, default_names.iter().map(String::as_str));
        for (i, name) in defaults.iter().enumerate() {
            known(format!("defaultTemplates[{i}]"), name)?;
        }
        if defaults.is_empty() {
            return Err(TemplateError::Config(
                "defaultTemplates names no template; leave it out for [sidecar]".into(),
            ));
        }
        Ok(Self {
            templates,
            aliases: config.aliases.clone(),
            defaults,
        })
    }

    /// The template named `name`.
    pub fn get(&self, name: &str) -> Option<&SidecarTemplate> {
        self.templates.get(name)
    }

    /// The first default template: the one a plain pod gets (the only one, in most configs).
    pub fn primary(&self) -> Option<&SidecarTemplate> {
        self.defaults.first().and_then(|name| self.get(name))
    }

    /// Every compiled template, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &SidecarTemplate)> {
        self.templates.iter().map(|(n, t)| (n.as_str(), t))
    }

    /// The templates `pod` gets: those its `inject.istio.io/templates` annotation names (aliases
    /// expanded), else the defaults.
    pub fn select(&self, pod: &Value) -> Result<Selection<'_>, SelectionError> {
        let annotation = pod
            .get("metadata")
            .and_then(|m| m.get("annotations"))
            .and_then(|a| a.get(TEMPLATES_ANNOTATION))
            .and_then(Value::as_str);
        let Some(text) = annotation else {
            // Most pods: no choice of their own, nothing to resolve or allocate.
            return self.choose(&self.defaults);
        };
        let names = resolve(&self.aliases, text.split(',').map(str::trim));
        if names.iter().all(String::is_empty) {
            return Err(SelectionError::Empty {
                known: self.known(),
            });
        }
        self.choose(&names)
    }

    /// The templates named by `names` (aliases already expanded), in that order; empty names
    /// are skipped.
    pub fn choose(&self, names: &[String]) -> Result<Selection<'_>, SelectionError> {
        let mut chosen = Vec::with_capacity(names.len());
        for name in names.iter().filter(|n| !n.is_empty()) {
            match self.templates.get_key_value(name.as_str()) {
                Some((name, template)) => chosen.push((name.as_str(), template)),
                None => {
                    return Err(SelectionError::Unknown {
                        name: name.clone(),
                        known: self.known(),
                    });
                }
            }
        }
        Ok(Selection { chosen })
    }

    /// Template and alias names, sorted, for messages.
    fn known(&self) -> Vec<String> {
        let mut known: Vec<String> = self
            .templates
            .keys()
            .chain(self.aliases.keys())
            .cloned()
            .collect();
        known.sort();
        known.dedup();
        known
    }
}

impl Selection<'_> {
    /// Whether the built-in template is among those chosen.
    pub fn includes_builtin(&self) -> bool {
        self.chosen
            .iter()
            .any(|(_, template)| template.is_builtin())
    }

    /// The names chosen, in merge order.
    pub fn names(&self) -> Vec<String> {
        self.chosen.iter().map(|(n, _)| n.to_string()).collect()
    }

    /// Whether this is the plain choice of Istio ≤ 1.7: the `sidecar` template alone.
    pub fn is_sidecar_alone(&self) -> bool {
        matches!(self.chosen.as_slice(), [(SIDECAR, _)])
    }

    /// The `version` of the status annotation: the template's text hash for one template (as
    /// before named templates), a hash of the templates' hashes in order for several.
    pub fn version(&self) -> String {
        match self.chosen.as_slice() {
            [(_, template)] => template.version().to_string(),
            chosen => {
                let mut hasher = Sha256::new();
                for (_, template) in chosen {
                    hasher.update(template.version().as_bytes());
                    hasher.update(b",");
                }
                hasher
                    .finalize()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect()
            }
        }
    }

    /// Renders every chosen template for the pod and merges the results in order.
    pub fn render(&self, data: &TemplateData) -> Result<InjectionEntries, TemplateError> {
        let mut chosen = self.chosen.iter();
        let Some((_, first)) = chosen.next() else {
            return Ok(InjectionEntries::default());
        };
        let mut entries = first.render_entries(data)?;
        for (name, template) in chosen {
            let next = template
                .render_entries(data)
                .map_err(|e| TemplateError::Named {
                    name: name.to_string(),
                    reason: Box::new(e),
                })?;
            overlay(&mut entries, next);
        }
        Ok(entries)
    }
}

/// Names with aliases expanded, one level, as Istio's `resolveAliases` does.
fn resolve<'a>(
    aliases: &BTreeMap<String, Vec<String>>,
    names: impl Iterator<Item = &'a str>,
) -> Vec<String> {
    let mut out = Vec::new();
    for name in names {
        match aliases.get(name) {
            Some(expanded) => out.extend(expanded.iter().cloned()),
            None => out.push(name.to_string()),
        }
    }
    out
}

fn join_keys(templates: &BTreeMap<String, SidecarTemplate>) -> String {
    templates.keys().cloned().collect::<Vec<_>>().join(", ")
}

/// Merges `over` into `base`, as a strategic merge patch of the later template's output over the
/// earlier's: an entry whose list already holds its name is merged field by field, others are
/// appended.
///
/// Within an entry, objects merge key by key; the lists Kubernetes merges by a key (`env`,
/// `volumeMounts`, `ports`, …, see [`merge_key`]) merge item by item; any other value of the later
/// template replaces the earlier one (`args`, `command`, scalars).
pub fn overlay(base: &mut InjectionEntries, over: InjectionEntries) {
    for (list, items) in over.into_array() {
        let target = base.get_mut(list);
        for item in items {
            merge_item(target, item, "name");
        }
    }
}

/// The key Kubernetes' strategic merge uses for the items of list field `field` of a container,
/// volume or pull secret, if it merges them.
fn merge_key(field: &str) -> Option<&'static str> {
    match field {
        "env" | "resizePolicy" => Some("name"),
        "volumeMounts" => Some("mountPath"),
        "volumeDevices" => Some("devicePath"),
        "ports" => Some("containerPort"),
        _ => None,
    }
}

fn merge_item(items: &mut Vec<Value>, item: Value, key: &str) {
    let existing = item
        .get(key)
        .and_then(|k| items.iter_mut().find(|i| i.get(key) == Some(k)));
    match existing {
        Some(existing) => merge_value(existing, item),
        None => items.push(item),
    }
}

fn merge_value(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (field, value) in over {
                let key = merge_key(&field);
                match (base.get_mut(&field), value, key) {
                    (Some(Value::Array(items)), Value::Array(new), Some(key)) => {
                        for item in new {
                            merge_item(items, item, key);
                        }
                    }
                    (Some(existing), value, _) => merge_value(existing, value),
                    (None, value, _) => {
                        base.insert(field, value);
                    }
                }
            }
        }
        (base, over) => *base = over,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::InjectorConfig;
    use serde_json::json;

    fn config(value: Value) -> InjectorConfig {
        serde_json::from_value(value).unwrap()
    }

    fn pod_choosing(templates: &str) -> Value {
        json!({"metadata": {"annotations": {TEMPLATES_ANNOTATION: templates}}, "spec": {}})
    }

    #[test]
    fn the_single_template_key_is_the_sidecar_template() {
        let named =
            NamedTemplates::compile(&config(json!({"template": "containers: []"}))).unwrap();
        let selection = named.select(&json!({"spec": {}})).unwrap();
        assert_eq!(selection.names(), ["sidecar"]);
        assert!(selection.is_sidecar_alone());
        assert_eq!(
            selection.version(),
            named.get("sidecar").unwrap().version(),
            "one template keeps its own version"
        );
    }

    #[test]
    fn templates_and_defaults_and_aliases_resolve_as_istio_does() {
        let named = NamedTemplates::compile(&config(json!({
            "templates": {"init": "initContainers: [{name: init}]", "proxy": "containers: [{name: p}]"},
            "defaultTemplates": ["both"],
            "aliases": {"both": ["init", "proxy"]},
        })))
        .unwrap();
        assert_eq!(named.select(&json!({})).unwrap().names(), ["init", "proxy"]);
        let chosen = named.select(&pod_choosing(" proxy , sidecar")).unwrap();
        assert_eq!(chosen.names(), ["proxy", "sidecar"]);
        assert!(!chosen.is_sidecar_alone());
        assert_ne!(chosen.version(), named.get("proxy").unwrap().version());
    }

    #[test]
    fn unknown_names_are_refused_listing_the_known_ones() {
        let named =
            NamedTemplates::compile(&config(json!({"templates": {"gateway": "containers: []"}})))
                .unwrap();
        let err = named.select(&pod_choosing("sidecar,gatewya")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "annotation inject.istio.io/templates: requested template \"gatewya\" not found; have gateway, sidecar"
        );
        let err = named.select(&pod_choosing(" , ")).unwrap_err();
        assert!(err.to_string().contains("names no template"), "{err}");
    }

    #[test]
    fn config_errors_name_the_template_or_field() {
        let err = NamedTemplates::compile(&config(json!({"defaultTemplates": ["nope"]})))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("defaultTemplates[0] names template \"nope\""),
            "{err}"
        );
        assert!(err.contains("have sidecar"), "{err}");
        let err = NamedTemplates::compile(&config(json!({"aliases": {"a": ["sidecar", "x"]}})))
            .unwrap_err()
            .to_string();
        assert!(err.contains("aliases.a[1]"), "{err}");
        let err = NamedTemplates::compile(&config(json!({"templates": {"bad": "{{ ProxyConfig"}})))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("templates.bad: template syntax error"),
            "{err}"
        );
        let err = NamedTemplates::compile(&config(json!({
            "template": "containers: []", "templates": {"sidecar": "volumes: []"}
        })))
        .unwrap_err()
        .to_string();
        assert!(err.contains("`template` and `templates.sidecar`"), "{err}");
        let err = NamedTemplates::compile(&config(json!({"defaultTemplates": []})))
            .unwrap_err()
            .to_string();
        assert!(err.contains("names no template"), "{err}");
    }

    #[test]
    fn later_templates_merge_over_earlier_ones_by_name() {
        let mut base: InjectionEntries = InjectionEntries::default();
        base.containers.push(json!({
            "name": "istio-proxy", "image": "proxy:1", "args": ["a", "b"],
            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
            "volumeMounts": [{"name": "v", "mountPath": "/v"}],
            "resources": {"requests": {"cpu": "10m", "memory": "1Mi"}}
        }));
        base.volumes.push(json!({"name": "v", "emptyDir": {}}));
        let mut over = InjectionEntries::default();
        over.containers.push(json!({
            "name": "istio-proxy", "image": "proxy:2", "args": ["c"],
            "env": [{"name": "B", "value": "two"}, {"name": "C", "value": "3"}],
            "volumeMounts": [{"name": "w", "mountPath": "/w"}],
            "resources": {"requests": {"cpu": "20m"}}
        }));
        over.containers.push(json!({"name": "extra"}));
        over.volumes.push(json!({"name": "w", "emptyDir": {}}));
        overlay(&mut base, over);
        assert_eq!(
            base.containers,
            vec![
                json!({
                    "name": "istio-proxy", "image": "proxy:2", "args": ["c"],
                    "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "two"}, {"name": "C", "value": "3"}],
                    "volumeMounts": [{"name": "v", "mountPath": "/v"}, {"name": "w", "mountPath": "/w"}],
                    "resources": {"requests": {"cpu": "20m", "memory": "1Mi"}}
                }),
                json!({"name": "extra"}),
            ]
        );
        assert_eq!(
            base.volumes,
            vec![
                json!({"name": "v", "emptyDir": {}}),
                json!({"name": "w", "emptyDir": {}})
            ]
        );
    }

    fn sleep_pod(annotations: Value) -> Value {
        json!({
            "metadata": {"name": "sleep", "namespace": "default", "labels": {"app": "sleep"},
                         "annotations": annotations},
            "spec": {"containers": [{"name": "sleep", "image": "tutum/curl"}]}
        })
    }

    fn injector(config_json: Value) -> crate::Injector {
        crate::Injector::new(crate::Config {
            injector: config(config_json),
            ..Default::default()
        })
        .unwrap()
    }

    fn status(pod: &Value) -> Value {
        let text = pod["metadata"]["annotations"][crate::surgery::STATUS_ANNOTATION]
            .as_str()
            .unwrap();
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn an_injector_merges_the_chosen_templates_records_them_and_reinjects_idempotently() {
        let injector = injector(json!({"templates": {
            "debug": "containers:\n- name: istio-proxy\n  image: proxy:debug\nvolumes:\n- name: debug\n  emptyDir: {}\n"
        }}));
        let mut pod = sleep_pod(json!({TEMPLATES_ANNOTATION: "sidecar,debug"}));
        injector.inject(&mut pod, None).unwrap();
        let containers = pod["spec"]["containers"].as_array().unwrap();
        assert_eq!(containers.len(), 2);
        assert_eq!(containers[1]["name"], "istio-proxy");
        assert_eq!(containers[1]["image"], "proxy:debug");
        assert!(
            containers[1]["args"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
        );
        let recorded = status(&pod);
        assert_eq!(recorded["templates"], json!(["sidecar", "debug"]));
        assert_eq!(
            recorded["volumes"],
            json!(["istio-envoy", "istio-certs", "debug"])
        );
        assert!(recorded.get("revision").is_none());

        let once = pod.clone();
        let again = injector.inject(&mut pod, None).unwrap();
        assert!(matches!(
            again,
            crate::Outcome::Injected { changed: false, .. }
        ));
        assert_eq!(pod, once);

        // Choosing `sidecar` alone afterwards removes what `debug` added.
        pod["metadata"]["annotations"][TEMPLATES_ANNOTATION] = json!("sidecar");
        injector.inject(&mut pod, None).unwrap();
        assert_eq!(
            pod["spec"]["containers"][1]["image"],
            "istio.io/proxy:0.5.0"
        );
        assert!(status(&pod).get("templates").is_none());
        let volumes: Vec<&Value> = pod["spec"]["volumes"].as_array().unwrap().iter().collect();
        assert!(volumes.iter().all(|v| v["name"] != "debug"), "{volumes:?}");
    }

    #[test]
    fn an_unknown_template_fails_the_injection_with_the_known_ones() {
        let injector = injector(json!({}));
        let mut pod = sleep_pod(json!({TEMPLATES_ANNOTATION: "gateway"}));
        let err = injector.inject(&mut pod, None).unwrap_err().to_string();
        assert_eq!(
            err,
            "annotation inject.istio.io/templates: requested template \"gateway\" not found; have sidecar"
        );
    }

    #[test]
    fn settings_carry_the_named_template_keys_and_name_bad_ones() {
        let settings = json!({
            "config": "templates:\n  a: 'containers: []'\n",
            "templates": {"b": "volumes: []"},
            "defaultTemplates": ["both"],
            "aliases": {"both": ["sidecar", "b"]},
        });
        let config = crate::Config::from_settings(&settings).unwrap();
        // Keys beside `config` win over it, as for every other key.
        assert_eq!(config.injector.templates.keys().collect::<Vec<_>>(), ["b"]);
        assert_eq!(
            config.injector.default_templates,
            Some(vec!["both".to_string()])
        );
        let named = NamedTemplates::compile(&config.injector).unwrap();
        assert_eq!(named.select(&json!({})).unwrap().names(), ["sidecar", "b"]);

        for (settings, field) in [
            (json!({"templates": ["x"]}), "`templates`"),
            (json!({"templates": {"x": 1}}), "`templates.x`"),
            (json!({"defaultTemplates": "sidecar"}), "`defaultTemplates`"),
            (json!({"aliases": {"a": "sidecar"}}), "`aliases.a`"),
        ] {
            let err = crate::Config::from_settings(&settings)
                .unwrap_err()
                .to_string();
            assert!(err.contains(field), "{err}");
        }
        let err = crate::settings::PolicySettings::validate(
            &json!({"templates": {"broken": "{% if %}"}}),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("templates.broken: template syntax error"),
            "{err}"
        );
    }
}
