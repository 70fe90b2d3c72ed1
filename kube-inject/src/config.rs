//! Where the injector and mesh configuration come from: one function, [`load_config`].
//!
//! Each source yields the two documents Istio keeps in its ConfigMaps (the
//! `istio-sidecar-injector` ConfigMap's `config`, the `istio` ConfigMap's `mesh`) as text;
//! [`config_from_documents`] turns them into a checked [`Config`]. Which source each document
//! comes from (its file, the cluster, the built-in default) is decided per document by
//! [`cluster::choose_sources`]; [`ConfigSource`] records it for standard error.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use sidecar_injector::{Config, ConfigError, Injector, InjectorConfig, MeshConfig, TemplateSyntax};

use crate::cli::{ClusterArgs, ConfigArgs};
use crate::cluster::{
    self, BuiltinReason, ClusterConfig, ClusterOptions, ConfigKind, Environment, Source,
    SourceFlags, Sources,
};

/// Where each configuration came from, as told to the user on standard error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSource {
    /// Where the injection config (policy, template) came from.
    pub injector: Origin,
    /// Where the mesh config came from.
    pub mesh: Origin,
}

/// Where one configuration came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The built-in default, for this reason.
    BuiltIn(BuiltinReason),
    /// Its file flag (`--injectConfigFile`, `--meshConfigFile`).
    File(PathBuf),
    /// Its ConfigMap, read from a cluster: what was read, and from which server and context.
    Cluster(Box<ClusterConfig>),
}

impl ConfigSource {
    /// The origin of `kind`.
    pub fn get(&self, kind: ConfigKind) -> &Origin {
        match kind {
            ConfigKind::Injector => &self.injector,
            ConfigKind::Mesh => &self.mesh,
        }
    }

    /// The standard error lines: one per configuration, or a single one when both are the
    /// built-in default for the same reason.
    pub fn lines(&self) -> Vec<String> {
        match (&self.injector, &self.mesh) {
            (Origin::BuiltIn(a), Origin::BuiltIn(b)) if a == b => vec![a.to_string()],
            _ => [ConfigKind::Injector, ConfigKind::Mesh]
                .into_iter()
                .map(|kind| line(kind, self.get(kind)))
                .collect(),
        }
    }
}

/// The standard error line for one configuration, e.g. `mesh config: --meshConfigFile mesh.yaml`.
fn line(kind: ConfigKind, origin: &Origin) -> String {
    match origin {
        Origin::BuiltIn(BuiltinReason::Requested) => {
            format!("{kind}: the built-in default (--builtin)")
        }
        Origin::BuiltIn(BuiltinReason::NoCluster) => {
            format!("{kind}: the built-in default (no cluster configured: no kubeconfig)")
        }
        Origin::File(path) => format!("{kind}: {} {}", kind.file_flag(), path.display()),
        Origin::Cluster(cluster) => cluster
            .source_line(kind)
            .unwrap_or_else(|| format!("{kind}: the cluster at {}", cluster.endpoint)),
    }
}

/// One configuration document as text, and where it came from (for error messages).
#[derive(Debug, Clone)]
pub struct ConfigDocument {
    /// The YAML text: the ConfigMap's `config` or `mesh` value, or a whole ConfigMap.
    pub text: String,
    /// Where it came from, e.g. `--injectConfigFile inject-config.yaml` or
    /// `configmap istio-system/istio, key "mesh"`.
    pub origin: String,
}

/// Loads the configuration the flags ask for, with the cluster this process is configured for.
///
/// Per configuration: its file flag; else `--builtin` → the built-in default; else its ConfigMap
/// in the cluster whenever a cluster is configured (kubeconfig, in-cluster service account) or a
/// cluster flag is given; else the built-in default. Any failure to read the cluster is an error.
pub fn load_config(args: &ConfigArgs) -> Result<(Config, ConfigSource)> {
    load_config_in(args, &Environment::from_process())
}

/// [`load_config`] with the environment (`$KUBECONFIG`, home directory, in-cluster variables)
/// given.
pub fn load_config_in(args: &ConfigArgs, env: &Environment) -> Result<(Config, ConfigSource)> {
    let opts = cluster_options(&args.cluster);
    let flags = SourceFlags {
        builtin: args.builtin,
        inject_config_file: args.inject_config_file.is_some(),
        mesh_config_file: args.mesh_config_file.is_some(),
        cluster_flags: args.cluster.any(),
    };
    let access = cluster::discover(&opts, env);
    let sources = cluster::choose_sources(&flags, &access);
    // Local files first: a typo in a path is reported without waiting for a cluster.
    let inject_file = read_file(ConfigKind::Injector, args.inject_config_file.as_deref())?;
    let mesh_file = read_file(ConfigKind::Mesh, args.mesh_config_file.as_deref())?;
    let from_cluster = if sources.needs_cluster() {
        Some(cluster::read_from_cluster(&opts, &access, &sources).map_err(one_line)?)
    } else {
        None
    };
    let from_cluster = from_cluster.as_ref();
    let (inject, injector) = document(ConfigKind::Injector, &sources, inject_file, from_cluster)?;
    let (mesh, mesh_origin) = document(ConfigKind::Mesh, &sources, mesh_file, from_cluster)?;
    let config = config_from_documents(inject.as_ref(), mesh.as_ref(), args.template_syntax)?;
    let source = ConfigSource {
        injector,
        mesh: mesh_origin,
    };
    Ok((config, source))
}

/// A cluster error as one line: its message and each cause's, `: `-separated, each cut to its first
/// line and left out when the text so far already ends with it.
///
/// Some causes are multi-line (a kubeconfig YAML error quotes the file around the error, and a
/// kubeconfig holds credentials), and some repeat their own cause in their message.
fn one_line(err: cluster::ClusterError) -> anyhow::Error {
    let mut text = String::new();
    let mut cause: Option<&dyn std::error::Error> = Some(&err);
    while let Some(error) = cause {
        let message = error.to_string();
        let first = message.lines().next().unwrap_or_default().trim_end();
        if text.is_empty() {
            text.push_str(first);
        } else if !first.is_empty() && !text.ends_with(first) {
            text.push_str(": ");
            text.push_str(first);
        }
        cause = error.source();
    }
    anyhow::anyhow!(text)
}

/// The cluster flags with istioctl's defaults filled in.
fn cluster_options(args: &ClusterArgs) -> ClusterOptions {
    let defaults = ClusterOptions::default();
    ClusterOptions {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
        istio_namespace: args
            .istio_namespace
            .clone()
            .unwrap_or(defaults.istio_namespace),
        inject_config_map_name: args
            .inject_config_map_name
            .clone()
            .unwrap_or(defaults.inject_config_map_name),
        mesh_config_map_name: args
            .mesh_config_map_name
            .clone()
            .unwrap_or(defaults.mesh_config_map_name),
        timeout: defaults.timeout,
    }
}

/// The file for `kind`, if its flag was given.
fn read_file(kind: ConfigKind, path: Option<&Path>) -> Result<Option<(ConfigDocument, Origin)>> {
    path.map(|path| {
        let doc = read_document(path, kind.file_flag())?;
        Ok((doc, Origin::File(path.to_owned())))
    })
    .transpose()
}

/// The document for `kind` from the source chosen for it (`None`: the built-in default).
fn document(
    kind: ConfigKind,
    sources: &Sources,
    file: Option<(ConfigDocument, Origin)>,
    from_cluster: Option<&ClusterConfig>,
) -> Result<(Option<ConfigDocument>, Origin)> {
    match sources.get(kind) {
        Source::Builtin(reason) => Ok((None, Origin::BuiltIn(reason))),
        Source::File => {
            let Some((doc, origin)) = file else {
                bail!("internal error: no {kind} file was read");
            };
            Ok((Some(doc), origin))
        }
        Source::Cluster => {
            let Some(cluster) = from_cluster.filter(|c| c.get(kind).is_some()) else {
                bail!("internal error: the {kind} was not read from the cluster");
            };
            let value = cluster.get(kind).map(|v| ConfigDocument {
                text: v.value.clone(),
                origin: v.to_string(),
            });
            let origin = Origin::Cluster(Box::new(cluster.clone()));
            Ok((value, origin))
        }
    }
}

fn read_document(path: &Path, flag: &str) -> Result<ConfigDocument> {
    let origin = format!("{flag} {}", path.display());
    let text = fs::read_to_string(path).with_context(|| format!("{origin}: cannot read"))?;
    Ok(ConfigDocument { text, origin })
}

/// Builds and checks the configuration from its two documents; `None` means the built-in
/// default for that document. `syntax` (`--templateSyntax`) reads the template when the
/// document does not say.
///
/// The template is compiled and rendered once for a sample pod, so a broken template fails
/// here, naming where it came from, rather than on the first workload.
pub fn config_from_documents(
    inject: Option<&ConfigDocument>,
    mesh: Option<&ConfigDocument>,
    syntax: Option<TemplateSyntax>,
) -> Result<Config> {
    let mut injector = match inject {
        Some(doc) => {
            let text = unwrap_config_map(doc, "config")?;
            InjectorConfig::from_yaml(&text).map_err(|e| config_error(e, doc))?
        }
        None => InjectorConfig::default(),
    };
    injector.template_syntax = injector.template_syntax.or(syntax);
    let mesh_config = match mesh {
        Some(doc) => {
            let text = unwrap_config_map(doc, "mesh")?;
            MeshConfig::from_yaml(&text).map_err(|e| config_error(e, doc))?
        }
        None => MeshConfig::default(),
    };
    let config = Config {
        injector,
        mesh: mesh_config,
    };
    let template_origin = || match inject {
        Some(doc) => format!(
            "{}: invalid `template` (line and column count from the template's first line)",
            doc.origin
        ),
        None => "the built-in template".to_string(),
    };
    let injector = Injector::new(config.clone()).with_context(template_origin)?;
    injector.check().with_context(template_origin)?;
    Ok(config)
}

/// `ConfigError` already shows its cause in its message, so it is not chained again.
fn config_error(err: ConfigError, doc: &ConfigDocument) -> anyhow::Error {
    anyhow::anyhow!("{}: {err}", doc.origin)
}

/// The document itself, or the `data.<key>` of a ConfigMap (as `kubectl get configmap -o yaml`
/// prints it).
fn unwrap_config_map(doc: &ConfigDocument, key: &str) -> Result<String> {
    let Ok(Value::Object(object)) = serde_yaml::from_str::<Value>(&doc.text) else {
        // Not a mapping: the config parser reports it with its position.
        return Ok(doc.text.clone());
    };
    if object.get("kind").and_then(Value::as_str) != Some("ConfigMap") {
        return Ok(doc.text.clone());
    }
    match object.get("data").and_then(|d| d.get(key)) {
        Some(Value::String(text)) => Ok(text.clone()),
        _ => bail!(
            "{}: a ConfigMap without a `data.{key}` string; give the ConfigMap that holds it \
             (or just the `{key}` document)",
            doc.origin
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> ConfigDocument {
        ConfigDocument {
            text: text.into(),
            origin: "--injectConfigFile x.yaml".into(),
        }
    }

    #[test]
    fn no_flags_and_no_cluster_means_built_in() {
        let (_, source) = load_config_in(&ConfigArgs::default(), &Environment::default()).unwrap();
        let reason = BuiltinReason::NoCluster;
        assert_eq!(
            source,
            ConfigSource {
                injector: Origin::BuiltIn(reason),
                mesh: Origin::BuiltIn(reason),
            }
        );
        assert_eq!(
            source.lines(),
            ["no cluster configured (no kubeconfig); using the built-in default configuration"]
        );
    }

    #[test]
    fn builtin_flag_ignores_a_configured_cluster() {
        let args = ConfigArgs {
            builtin: true,
            ..ConfigArgs::default()
        };
        let env = Environment {
            kubeconfig: Some("/nonexistent/kubeconfig".into()),
            in_cluster: true,
            ..Environment::default()
        };
        let (config, source) = load_config_in(&args, &env).unwrap();
        assert_eq!(format!("{config:?}"), format!("{:?}", Config::default()));
        assert_eq!(
            source.lines(),
            ["using the built-in default configuration (--builtin)"]
        );
    }

    #[test]
    fn a_cluster_flag_without_a_cluster_is_an_error() {
        let args = ConfigArgs {
            cluster: ClusterArgs {
                istio_namespace: Some("mesh".into()),
                ..ClusterArgs::default()
            },
            ..ConfigArgs::default()
        };
        let err = load_config_in(&args, &Environment::default()).unwrap_err();
        assert!(
            format!("{err:#}").starts_with("no cluster configured to read the Istio configuration"),
            "{err:#}"
        );
    }

    #[test]
    fn mixed_sources_get_one_line_each() {
        let cluster = ClusterConfig {
            injector: None,
            mesh: Some(cluster::ConfigMapValue {
                namespace: "istio-system".into(),
                name: "istio".into(),
                key: "mesh",
                value: "{}".into(),
            }),
            endpoint: cluster::Endpoint {
                server: "https://10.0.0.1:6443".into(),
                context: Some("kind-kind".into()),
            },
        };
        let source = ConfigSource {
            injector: Origin::File("inject-config.yaml".into()),
            mesh: Origin::Cluster(Box::new(cluster)),
        };
        assert_eq!(
            source.lines(),
            [
                "injection config: --injectConfigFile inject-config.yaml",
                "mesh config: configmap istio-system/istio, key \"mesh\", from https://10.0.0.1:6443 \
                 (context \"kind-kind\")",
            ]
        );
        let source = ConfigSource {
            injector: Origin::BuiltIn(BuiltinReason::NoCluster),
            mesh: Origin::File("mesh.yaml".into()),
        };
        assert_eq!(
            source.lines(),
            [
                "injection config: the built-in default (no cluster configured: no kubeconfig)",
                "mesh config: --meshConfigFile mesh.yaml",
            ]
        );
    }

    #[test]
    fn a_config_map_is_unwrapped() {
        let cm = doc("apiVersion: v1\nkind: ConfigMap\ndata:\n  config: |\n    policy: disabled\n");
        let config = config_from_documents(Some(&cm), None, None).unwrap();
        assert_eq!(
            config.injector.policy,
            sidecar_injector::config::InjectionPolicy::Disabled
        );
        let err = config_from_documents(None, Some(&cm), None).unwrap_err();
        assert!(format!("{err:#}").contains("without a `data.mesh` string"));
    }

    #[test]
    fn a_template_error_names_the_file_and_position() {
        let broken = doc("template: |\n  containers:\n  - name: {{ oops\n");
        let err = format!(
            "{:#}",
            config_from_documents(Some(&broken), None, None).unwrap_err()
        );
        assert!(err.starts_with("--injectConfigFile x.yaml: invalid `template`"));
        assert!(err.contains("template syntax error at line "), "{err}");
    }
}
