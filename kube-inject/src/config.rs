//! Where the injector and mesh configuration come from: one function, [`load_config`].
//!
//! Each source yields the two documents Istio keeps in its ConfigMaps (the
//! `istio-sidecar-injector` ConfigMap's `config`, the `istio` ConfigMap's `mesh`) as text;
//! [`config_from_documents`] turns them into a checked [`Config`]. A new source (the in-cluster
//! reader in `cluster.rs`) only has to fetch the texts and add a [`ConfigSource`] variant.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use sidecar_injector::{Config, ConfigError, Injector, InjectorConfig, MeshConfig};

use crate::cli::ConfigArgs;

/// Where the configuration came from, as told to the user on standard error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// The built-in default (no files; or `--builtin`).
    BuiltIn,
    /// Local files; a missing one means the built-in default for that document.
    Files {
        /// `--injectConfigFile`.
        inject: Option<PathBuf>,
        /// `--meshConfigFile`.
        mesh: Option<PathBuf>,
    },
    /// ConfigMaps read from a cluster.
    // Built by the in-cluster reader (cluster.rs), which is not written yet.
    #[allow(dead_code)]
    Cluster {
        /// The kubeconfig context used, if one was named.
        context: Option<String>,
        /// The namespace of the ConfigMaps (`-i/--istioNamespace`).
        namespace: String,
        /// `--injectConfigMapName` (key `config`).
        inject_config_map: String,
        /// `--meshConfigMapName` (key `mesh`).
        mesh_config_map: String,
    },
}

impl fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BuiltIn => f.write_str("using built-in default configuration"),
            Self::Files { inject, mesh } => {
                let show = |p: &Option<PathBuf>| {
                    p.as_ref().map_or("the built-in default".to_string(), |p| {
                        p.display().to_string()
                    })
                };
                write!(
                    f,
                    "using injector config from {} and mesh config from {}",
                    show(inject),
                    show(mesh)
                )
            }
            Self::Cluster {
                context,
                namespace,
                inject_config_map,
                mesh_config_map,
            } => {
                write!(
                    f,
                    "using ConfigMaps {namespace}/{inject_config_map} (key config) and \
                     {namespace}/{mesh_config_map} (key mesh)"
                )?;
                if let Some(context) = context {
                    write!(f, " from context {context}")?;
                }
                Ok(())
            }
        }
    }
}

/// One configuration document as text, and where it came from (for error messages).
#[derive(Debug, Clone)]
pub struct ConfigDocument {
    /// The YAML text: the ConfigMap's `config` or `mesh` value, or a whole ConfigMap.
    pub text: String,
    /// Where it came from, e.g. `--injectConfigFile inject-config.yaml`.
    pub origin: String,
}

/// Loads the configuration the flags ask for.
///
/// Order: `--builtin` → the built-in default; `--injectConfigFile`/`--meshConfigFile` → those
/// files, the built-in default for a missing one; nothing → the built-in default. (The cluster
/// reader slots in before that last fallback.)
pub fn load_config(args: &ConfigArgs) -> Result<(Config, ConfigSource)> {
    if args.builtin {
        return Ok((Config::default(), ConfigSource::BuiltIn));
    }
    if args.inject_config_file.is_some() || args.mesh_config_file.is_some() {
        let inject = args
            .inject_config_file
            .as_deref()
            .map(|p| read_document(p, "--injectConfigFile"))
            .transpose()?;
        let mesh = args
            .mesh_config_file
            .as_deref()
            .map(|p| read_document(p, "--meshConfigFile"))
            .transpose()?;
        let config = config_from_documents(inject.as_ref(), mesh.as_ref())?;
        let source = ConfigSource::Files {
            inject: args.inject_config_file.clone(),
            mesh: args.mesh_config_file.clone(),
        };
        return Ok((config, source));
    }
    // In-cluster configuration goes here: `cluster::fetch(&args.cluster)` returning the two
    // ConfigDocuments, then `config_from_documents` and `ConfigSource::Cluster { .. }`.
    Ok((Config::default(), ConfigSource::BuiltIn))
}

fn read_document(path: &Path, flag: &str) -> Result<ConfigDocument> {
    let origin = format!("{flag} {}", path.display());
    let text = fs::read_to_string(path).with_context(|| format!("{origin}: cannot read"))?;
    Ok(ConfigDocument { text, origin })
}

/// Builds and checks the configuration from its two documents; `None` means the built-in
/// default for that document.
///
/// The template is compiled and rendered once for a sample pod, so a broken template fails
/// here, naming where it came from, rather than on the first workload.
pub fn config_from_documents(
    inject: Option<&ConfigDocument>,
    mesh: Option<&ConfigDocument>,
) -> Result<Config> {
    let injector = match inject {
        Some(doc) => {
            let text = unwrap_config_map(doc, "config")?;
            InjectorConfig::from_yaml(&text).map_err(|e| config_error(e, doc))?
        }
        None => InjectorConfig::default(),
    };
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
    fn no_flags_means_built_in() {
        let args = ConfigArgs {
            inject_config_file: None,
            mesh_config_file: None,
            builtin: false,
        };
        let (_, source) = load_config(&args).unwrap();
        assert_eq!(source, ConfigSource::BuiltIn);
        assert_eq!(source.to_string(), "using built-in default configuration");
    }

    #[test]
    fn a_config_map_is_unwrapped() {
        let cm = doc("apiVersion: v1\nkind: ConfigMap\ndata:\n  config: |\n    policy: disabled\n");
        let config = config_from_documents(Some(&cm), None).unwrap();
        assert_eq!(
            config.injector.policy,
            sidecar_injector::config::InjectionPolicy::Disabled
        );
        let err = config_from_documents(None, Some(&cm)).unwrap_err();
        assert!(format!("{err:#}").contains("without a `data.mesh` string"));
    }

    #[test]
    fn a_template_error_names_the_file_and_position() {
        let broken = doc("template: |\n  containers:\n  - name: {{ oops\n");
        let err = format!(
            "{:#}",
            config_from_documents(Some(&broken), None).unwrap_err()
        );
        assert!(err.starts_with("--injectConfigFile x.yaml: invalid `template`"));
        assert!(err.contains("template syntax error at line "), "{err}");
    }

    #[test]
    fn cluster_source_reads_well() {
        let source = ConfigSource::Cluster {
            context: Some("kind".into()),
            namespace: "istio-system".into(),
            inject_config_map: "istio-sidecar-injector".into(),
            mesh_config_map: "istio".into(),
        };
        assert_eq!(
            source.to_string(),
            "using ConfigMaps istio-system/istio-sidecar-injector (key config) and istio-system/istio (key mesh) from context kind"
        );
    }
}
