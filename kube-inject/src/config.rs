//! Where the injector and mesh configuration come from, and loading it: [`load_config`].
//!
//! Each [`Source`] yields the two documents Istio keeps in its ConfigMaps (the
//! `istio-sidecar-injector` ConfigMap's `config`, the `istio` ConfigMap's `mesh`) as text;
//! [`config_from_documents`] turns them into a checked [`Config`]. Which source each document
//! comes from (its file, the cluster, the built-in default) is decided per document by
//! [`choose_sources`]; the [`Sources`] are then told to the user on standard error.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use sidecar_injector::{Config, ConfigError, Injector, InjectorConfig, MeshConfig, TemplateSyntax};

use crate::cli::{ClusterArgs, ConfigArgs};
use crate::cluster::{self, ClusterAccess, ClusterConfig, ClusterOptions, ConfigKind, Environment};

/// Where one configuration comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Its file flag (`--injectConfigFile`, `--meshConfigFile`), with the path given.
    File(PathBuf),
    /// Its ConfigMap in the cluster.
    Cluster,
    /// The built-in default, for this reason.
    Builtin(BuiltinReason),
}

/// Why the built-in default is used; its `Display` is the stderr note.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuiltinReason {
    /// `--builtin` was given.
    Requested,
    /// Nothing points at a cluster (no kubeconfig, not in a pod) and no cluster flag was given.
    NoCluster,
}

impl std::fmt::Display for BuiltinReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BuiltinReason::Requested => "using the built-in default configuration (--builtin)",
            BuiltinReason::NoCluster => {
                "no cluster configured (no kubeconfig); using the built-in default configuration"
            }
        })
    }
}

/// Where each configuration comes from, as [`choose_sources`] decided; once [`load_config`] has
/// read the cluster, also what it read there and from which server, for the stderr lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sources {
    /// Source of the injection config.
    pub injector: Source,
    /// Source of the mesh config.
    pub mesh: Source,
    /// What was read from the cluster, when a [`Source::Cluster`] has been read.
    pub cluster: Option<ClusterConfig>,
}

impl Sources {
    /// The source of `kind`.
    pub fn get(&self, kind: ConfigKind) -> &Source {
        match kind {
            ConfigKind::Injector => &self.injector,
            ConfigKind::Mesh => &self.mesh,
        }
    }

    /// The configurations to read from the cluster.
    pub fn kinds_from_cluster(&self) -> Vec<ConfigKind> {
        [ConfigKind::Injector, ConfigKind::Mesh]
            .into_iter()
            .filter(|&kind| *self.get(kind) == Source::Cluster)
            .collect()
    }

    /// The standard error lines: one per configuration, or a single one when both are the
    /// built-in default for the same reason.
    pub fn lines(&self) -> Vec<String> {
        match (&self.injector, &self.mesh) {
            (Source::Builtin(a), Source::Builtin(b)) if a == b => vec![a.to_string()],
            _ => [ConfigKind::Injector, ConfigKind::Mesh]
                .into_iter()
                .map(|kind| self.line(kind))
                .collect(),
        }
    }

    /// The standard error line for one configuration, e.g. `mesh config: --meshConfigFile mesh.yaml`.
    fn line(&self, kind: ConfigKind) -> String {
        match self.get(kind) {
            Source::Builtin(BuiltinReason::Requested) => {
                format!("{kind}: the built-in default (--builtin)")
            }
            Source::Builtin(BuiltinReason::NoCluster) => {
                format!("{kind}: the built-in default (no cluster configured: no kubeconfig)")
            }
            Source::File(path) => format!("{kind}: {} {}", kind.file_flag(), path.display()),
            Source::Cluster => self
                .cluster
                .as_ref()
                .and_then(|cluster| cluster.source_line(kind))
                .unwrap_or_else(|| format!("{kind}: the cluster")),
        }
    }
}

/// Decides, for each configuration, between its file, the cluster and the built-in default.
///
/// A file always wins for its own configuration; the other one still comes from the cluster, as in
/// istioctl. Without a file, `--builtin` forces the default. Otherwise the cluster is used whenever
/// the user points at one (a cluster flag) or the environment does (`access` is not
/// [`ClusterAccess::Unconfigured`]); only when neither does is the built-in default used, with
/// [`BuiltinReason::NoCluster`] as the note, where istioctl would fail. Once the cluster is chosen
/// it must answer: a failed read never degrades into the default (istio/istio#2489).
pub fn choose_sources(args: &ConfigArgs, access: &ClusterAccess) -> Sources {
    let fallback = if args.builtin {
        Source::Builtin(BuiltinReason::Requested)
    } else if args.cluster.any() || !matches!(access, ClusterAccess::Unconfigured { .. }) {
        Source::Cluster
    } else {
        Source::Builtin(BuiltinReason::NoCluster)
    };
    let pick = |file: &Option<PathBuf>| file.clone().map_or(fallback.clone(), Source::File);
    Sources {
        injector: pick(&args.inject_config_file),
        mesh: pick(&args.mesh_config_file),
        cluster: None,
    }
}

/// One configuration document as text, and where it came from (for error messages).
#[derive(Debug, Clone)]
pub struct ConfigDocument {
    /// The YAML text: the ConfigMap's `config` or `mesh` value, or a whole ConfigMap.
    pub text: String,
    /// Its source as messages name it, e.g. `--injectConfigFile inject-config.yaml` or
    /// `configmap istio-system/istio, key "mesh"`.
    pub source: String,
}

/// Loads the configuration the flags ask for, with the cluster this process is configured for.
///
/// Per configuration: its file flag; else `--builtin` → the built-in default; else its ConfigMap
/// in the cluster whenever a cluster is configured (kubeconfig, in-cluster service account) or a
/// cluster flag is given; else the built-in default. Any failure to read the cluster is an error.
pub fn load_config(args: &ConfigArgs) -> Result<(Config, Sources)> {
    let opts = cluster_options(&args.cluster, args.revision.as_deref());
    let access = cluster::discover(&opts, &Environment::from_process());
    let mut sources = choose_sources(args, &access);
    // Local files first: a typo in a path is reported without waiting for a cluster.
    let inject_file = read_file(ConfigKind::Injector, args.inject_config_file.as_deref())?;
    let mesh_file = read_file(ConfigKind::Mesh, args.mesh_config_file.as_deref())?;
    let wanted = sources.kinds_from_cluster();
    if !wanted.is_empty() {
        let read = cluster::read_from_cluster(&opts, &access, &wanted).map_err(one_line)?;
        sources.cluster = Some(read);
    }
    let inject = document(ConfigKind::Injector, &sources, inject_file)?;
    let mesh = document(ConfigKind::Mesh, &sources, mesh_file)?;
    let mut config = config_from_documents(inject.as_ref(), mesh.as_ref(), args.template_syntax)?;
    if let Some(native) = args.native_sidecars {
        config.injector.native_sidecars = native;
    }
    if args.revision.is_some() {
        config.injector.revision = args.revision.clone();
    }
    Ok((config, sources))
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

/// The cluster flags with istioctl's defaults filled in; a `revision` other than `default` names
/// its own ConfigMaps, as Istio installs them (`istio-sidecar-injector-<rev>`, `istio-<rev>`).
fn cluster_options(args: &ClusterArgs, revision: Option<&str>) -> ClusterOptions {
    let mut defaults = ClusterOptions::default();
    if let Some(revision) = revision.filter(|r| *r != sidecar_injector::revision::DEFAULT_REVISION)
    {
        defaults.inject_config_map_name = format!("{}-{revision}", defaults.inject_config_map_name);
        defaults.mesh_config_map_name = format!("{}-{revision}", defaults.mesh_config_map_name);
    }
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
fn read_file(kind: ConfigKind, path: Option<&Path>) -> Result<Option<ConfigDocument>> {
    path.map(|path| read_document(path, kind.file_flag()))
        .transpose()
}

/// The document for `kind` from the source chosen for it (`None`: the built-in default).
fn document(
    kind: ConfigKind,
    sources: &Sources,
    file: Option<ConfigDocument>,
) -> Result<Option<ConfigDocument>> {
    match sources.get(kind) {
        Source::Builtin(_) => Ok(None),
        Source::File(_) => {
            let Some(doc) = file else {
                bail!("internal error: no {kind} file was read");
            };
            Ok(Some(doc))
        }
        Source::Cluster => {
            let Some(value) = sources.cluster.as_ref().and_then(|c| c.get(kind)) else {
                bail!("internal error: the {kind} was not read from the cluster");
            };
            Ok(Some(ConfigDocument {
                text: value.value.clone(),
                source: value.to_string(),
            }))
        }
    }
}

fn read_document(path: &Path, flag: &str) -> Result<ConfigDocument> {
    let source = format!("{flag} {}", path.display());
    let text = fs::read_to_string(path).with_context(|| format!("{source}: cannot read"))?;
    Ok(ConfigDocument { text, source })
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
    let template_source = || match inject {
        Some(doc) => format!(
            "{}: invalid `template` (line and column count from the template's first line)",
            doc.source
        ),
        None => "the built-in template".to_string(),
    };
    let injector = Injector::new(config.clone()).with_context(template_source)?;
    injector.check().with_context(template_source)?;
    Ok(config)
}

/// `ConfigError` already shows its cause in its message, so it is not chained again.
fn config_error(err: ConfigError, doc: &ConfigDocument) -> anyhow::Error {
    anyhow::anyhow!("{}: {err}", doc.source)
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
            doc.source
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ConfigArgs` with `--builtin`, the two file flags and one cluster flag (`-i`) given or not.
    fn args(builtin: bool, inject_file: bool, mesh_file: bool, cluster_flag: bool) -> ConfigArgs {
        ConfigArgs {
            builtin,
            inject_config_file: inject_file.then(|| "inject.yaml".into()),
            mesh_config_file: mesh_file.then(|| "mesh.yaml".into()),
            cluster: ClusterArgs {
                istio_namespace: cluster_flag.then(|| "istio-system".into()),
                ..ClusterArgs::default()
            },
            ..ConfigArgs::default()
        }
    }

    /// README's precedence, per configuration: its file, `--builtin`, the cluster when one is
    /// configured or a cluster flag is given, else the built-in default. The end-to-end tests run
    /// a few rows against the binary; this is the whole table.
    #[test]
    fn precedence_table() {
        use BuiltinReason::{NoCluster, Requested};
        use Source::{Builtin, Cluster};
        let kube = ClusterAccess::Kubeconfig(cluster::kubeconfig::KubeconfigFiles::Default(
            "/home/u/.kube/config".into(),
        ));
        let none = ClusterAccess::Unconfigured { default_path: None };
        let pod = ClusterAccess::InCluster;
        let inject = || Source::File("inject.yaml".into());
        let mesh = || Source::File("mesh.yaml".into());
        // (builtin, inject file, mesh file, cluster flag), access -> (injector, mesh)
        let table = [
            (
                (false, false, false, false),
                &none,
                (Builtin(NoCluster), Builtin(NoCluster)),
            ),
            ((false, false, false, true), &none, (Cluster, Cluster)),
            ((false, false, false, false), &kube, (Cluster, Cluster)),
            ((false, false, false, false), &pod, (Cluster, Cluster)),
            ((false, true, true, false), &none, (inject(), mesh())),
            ((false, true, true, true), &kube, (inject(), mesh())),
            ((false, true, false, false), &kube, (inject(), Cluster)),
            ((false, false, true, false), &kube, (Cluster, mesh())),
            (
                (false, true, false, false),
                &none,
                (inject(), Builtin(NoCluster)),
            ),
            (
                (true, false, false, true),
                &kube,
                (Builtin(Requested), Builtin(Requested)),
            ),
            (
                (true, false, false, false),
                &none,
                (Builtin(Requested), Builtin(Requested)),
            ),
            (
                (true, true, false, false),
                &pod,
                (inject(), Builtin(Requested)),
            ),
        ];
        for ((b, i, m, c), access, (injector, mesh)) in table {
            let sources = choose_sources(&args(b, i, m, c), access);
            assert_eq!(
                (&sources.injector, &sources.mesh),
                (&injector, &mesh),
                "flags {:?}, {access:?}",
                (b, i, m, c)
            );
            let wanted: Vec<ConfigKind> =
                [(ConfigKind::Injector, &injector), (ConfigKind::Mesh, &mesh)]
                    .into_iter()
                    .filter(|(_, source)| **source == Cluster)
                    .map(|(kind, _)| kind)
                    .collect();
            assert_eq!(sources.kinds_from_cluster(), wanted);
        }
    }

    #[test]
    fn a_config_map_without_the_key_is_refused() {
        let config_map = ConfigDocument {
            text: "apiVersion: v1\nkind: ConfigMap\ndata:\n  config: |\n    policy: disabled\n"
                .into(),
            source: "--meshConfigFile x.yaml".into(),
        };
        let err = config_from_documents(None, Some(&config_map), None).unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "--meshConfigFile x.yaml: a ConfigMap without a `data.mesh` string; give the ConfigMap \
             that holds it (or just the `mesh` document)"
        );
    }

    #[test]
    fn a_revision_names_its_own_config_maps_unless_they_are_named() {
        let opts = cluster_options(&ClusterArgs::default(), Some("canary"));
        assert_eq!(opts.inject_config_map_name, "istio-sidecar-injector-canary");
        assert_eq!(opts.mesh_config_map_name, "istio-canary");
        let opts = cluster_options(&ClusterArgs::default(), Some("default"));
        assert_eq!(opts.inject_config_map_name, "istio-sidecar-injector");
        assert_eq!(opts.mesh_config_map_name, "istio");
        let named = ClusterArgs {
            mesh_config_map_name: Some("mesh".into()),
            ..ClusterArgs::default()
        };
        let opts = cluster_options(&named, Some("canary"));
        assert_eq!(opts.inject_config_map_name, "istio-sidecar-injector-canary");
        assert_eq!(opts.mesh_config_map_name, "mesh");
    }
}
