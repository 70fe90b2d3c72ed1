//! Reading the injection and mesh configuration from a live cluster: the in-cluster config path of
//! `istioctl kube-inject` (`getMeshConfigFromConfigMap` and `getInjectConfigFromConfigMap`, istio 1.0
//! `istioctl/cmd/istioctl/kubeinject.go`).
//!
//! With no `--injectConfigFile`/`--meshConfigFile`, istioctl reads key `config` of ConfigMap
//! `istio-sidecar-injector` and key `mesh` of ConfigMap `istio`, both in `istio-system` (`-i`), through
//! the user's kubeconfig. This module does the same with the `kube` crate's client:
//!
//! 1. [`discover`] finds how a cluster could be reached ([`ClusterAccess`]): `--kubeconfig`, then
//!    `$KUBECONFIG`, then `~/.kube/config`, then the in-cluster service account, as client-go does.
//! 2. [`choose_sources`] (pure) decides, per configuration, between a file, the cluster and the
//!    built-in default ([`Sources`]): files beat the cluster, the cluster beats the built-in default,
//!    `--builtin` forces the default.
//! 3. [`read_from_cluster`] (blocking) reads the ConfigMaps the [`Sources`] ask for, or fails with a
//!    [`ClusterError`] that names the namespace, ConfigMap, key or server and says what to do.
//!
//! # Differences from Istio
//! - With nothing configured at all (no `--kubeconfig`, no `$KUBECONFIG`, no `~/.kube/config`, not in
//!   a pod) and no cluster flag given, the built-in default is used and [`BuiltinReason::NoCluster`]
//!   says so on stderr; istioctl fails. Once any of those exists or a cluster flag is given, the
//!   cluster must answer: a missing ConfigMap or kubeconfig never degrades into an empty or default
//!   output (istio/istio#2489).
//! - A key that is present but empty is an error ([`ClusterError::EmptyKey`]); istioctl would render
//!   with an empty template.
//! - `$KUBECONFIG` naming no existing file is an error, not a silent fallback to in-cluster config.
//! - Every read is bounded by [`ClusterOptions::timeout`], so an unreachable cluster fails fast.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::config::{InClusterError, KubeConfigOptions, Kubeconfig, KubeconfigError};
use kube::{Api, Client, Config};

/// Namespace of Istio's ConfigMaps unless `-i/--istioNamespace` says otherwise.
pub const DEFAULT_ISTIO_NAMESPACE: &str = "istio-system";
/// ConfigMap holding the injection config unless `--injectConfigMapName` says otherwise.
pub const DEFAULT_INJECT_CONFIG_MAP_NAME: &str = "istio-sidecar-injector";
/// ConfigMap holding the mesh config unless `--meshConfigMapName` says otherwise.
pub const DEFAULT_MESH_CONFIG_MAP_NAME: &str = "istio";
/// Key of the injection config (policy and template) in its ConfigMap.
pub const INJECT_CONFIG_KEY: &str = "config";
/// Key of the mesh config in its ConfigMap.
pub const MESH_CONFIG_KEY: &str = "mesh";
/// Default bound on all cluster reads of one run.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on opening the TCP (and TLS) connection, within [`ClusterOptions::timeout`].
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Which cluster to ask and which ConfigMaps to read: the cluster flags of kube-inject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterOptions {
    /// `--kubeconfig`: the only kubeconfig file to use (no merging with `$KUBECONFIG`).
    pub kubeconfig: Option<PathBuf>,
    /// `--context`: the kubeconfig context to use instead of its `current-context`.
    pub context: Option<String>,
    /// `-i/--istioNamespace`: namespace of both ConfigMaps.
    pub istio_namespace: String,
    /// `--injectConfigMapName`: ConfigMap whose key `config` is the injection config.
    pub inject_config_map_name: String,
    /// `--meshConfigMapName`: ConfigMap whose key `mesh` is the mesh config.
    pub mesh_config_map_name: String,
    /// Bound on all reads together (connecting, authenticating, both ConfigMaps).
    pub timeout: Duration,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            kubeconfig: None,
            context: None,
            istio_namespace: DEFAULT_ISTIO_NAMESPACE.to_owned(),
            inject_config_map_name: DEFAULT_INJECT_CONFIG_MAP_NAME.to_owned(),
            mesh_config_map_name: DEFAULT_MESH_CONFIG_MAP_NAME.to_owned(),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl ClusterOptions {
    /// The ConfigMap that holds `kind`.
    pub fn config_map_name(&self, kind: ConfigKind) -> &str {
        match kind {
            ConfigKind::Injector => &self.inject_config_map_name,
            ConfigKind::Mesh => &self.mesh_config_map_name,
        }
    }
}

/// One of the two configurations kube-inject needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigKind {
    /// The injection config (policy and sidecar template), `--injectConfigFile`.
    Injector,
    /// The mesh config, `--meshConfigFile`.
    Mesh,
}

impl ConfigKind {
    /// The ConfigMap key that holds it: `config` or `mesh`.
    pub fn key(self) -> &'static str {
        match self {
            ConfigKind::Injector => INJECT_CONFIG_KEY,
            ConfigKind::Mesh => MESH_CONFIG_KEY,
        }
    }

    /// The flag that reads it from a file instead.
    pub fn file_flag(self) -> &'static str {
        match self {
            ConfigKind::Injector => "--injectConfigFile",
            ConfigKind::Mesh => "--meshConfigFile",
        }
    }

    /// The flag that names its ConfigMap.
    pub fn config_map_flag(self) -> &'static str {
        match self {
            ConfigKind::Injector => "--injectConfigMapName",
            ConfigKind::Mesh => "--meshConfigMapName",
        }
    }
}

impl fmt::Display for ConfigKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConfigKind::Injector => "injection config",
            ConfigKind::Mesh => "mesh config",
        })
    }
}

/// Where one configuration comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Its file flag (`--injectConfigFile`, `--meshConfigFile`).
    File,
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

impl fmt::Display for BuiltinReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BuiltinReason::Requested => "using the built-in default configuration (--builtin)",
            BuiltinReason::NoCluster => {
                "no cluster configured (no kubeconfig); using the built-in default configuration"
            }
        })
    }
}

/// The flags that decide between files, the cluster and the built-in default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceFlags {
    /// `--builtin`.
    pub builtin: bool,
    /// `--injectConfigFile` was given.
    pub inject_config_file: bool,
    /// `--meshConfigFile` was given.
    pub mesh_config_file: bool,
    /// Any of `--kubeconfig`, `--context`, `-i/--istioNamespace`, `--injectConfigMapName`,
    /// `--meshConfigMapName` was given: the user means a cluster.
    pub cluster_flags: bool,
}

/// Where each configuration comes from, as [`choose_sources`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sources {
    /// Source of the injection config.
    pub injector: Source,
    /// Source of the mesh config.
    pub mesh: Source,
}

impl Sources {
    /// The source of `kind`.
    pub fn get(&self, kind: ConfigKind) -> Source {
        match kind {
            ConfigKind::Injector => self.injector,
            ConfigKind::Mesh => self.mesh,
        }
    }

    /// Whether [`read_from_cluster`] has anything to read.
    pub fn needs_cluster(&self) -> bool {
        self.injector == Source::Cluster || self.mesh == Source::Cluster
    }
}

/// Decides, for each configuration, between its file, the cluster and the built-in default.
///
/// A file always wins for its own configuration; the other one still comes from the cluster, as in
/// istioctl. Without a file, `--builtin` forces the default. Otherwise the cluster is used whenever
/// the user points at one (a cluster flag) or the environment does (`access` is not
/// [`ClusterAccess::Unconfigured`]); only when neither does is the built-in default used, with
/// [`BuiltinReason::NoCluster`] as the note.
pub fn choose_sources(flags: &SourceFlags, access: &ClusterAccess) -> Sources {
    let fallback = if flags.builtin {
        Source::Builtin(BuiltinReason::Requested)
    } else if flags.cluster_flags || !matches!(access, ClusterAccess::Unconfigured { .. }) {
        Source::Cluster
    } else {
        Source::Builtin(BuiltinReason::NoCluster)
    };
    let pick = |file: bool| if file { Source::File } else { fallback };
    Sources {
        injector: pick(flags.inject_config_file),
        mesh: pick(flags.mesh_config_file),
    }
}

/// The process environment that decides how a cluster is reached, captured once so that
/// [`discover`] can be tested without touching the real one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Environment {
    /// `$KUBECONFIG`, a list of paths.
    pub kubeconfig: Option<OsString>,
    /// The home directory, for `~/.kube/config`.
    pub home: Option<PathBuf>,
    /// `KUBERNETES_SERVICE_HOST` and `KUBERNETES_SERVICE_PORT` are both set: running in a pod.
    pub in_cluster: bool,
}

impl Environment {
    /// Reads `$KUBECONFIG`, the home directory and the in-cluster variables of this process.
    pub fn from_process() -> Self {
        let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
        Environment {
            kubeconfig: std::env::var_os("KUBECONFIG"),
            home: std::env::home_dir(),
            in_cluster: set("KUBERNETES_SERVICE_HOST") && set("KUBERNETES_SERVICE_PORT"),
        }
    }
}

/// How the cluster can be reached, as [`discover`] found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterAccess {
    /// Through a kubeconfig.
    Kubeconfig(KubeconfigOrigin),
    /// Through the pod's service account (`KUBERNETES_SERVICE_HOST`, mounted token and CA).
    InCluster,
    /// Nothing points at a cluster.
    Unconfigured {
        /// Where `~/.kube/config` was looked for, if a home directory is known.
        default_path: Option<PathBuf>,
    },
}

/// Which kubeconfig file(s) to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KubeconfigOrigin {
    /// `--kubeconfig PATH`.
    Flag(PathBuf),
    /// `$KUBECONFIG`: its existing files, merged (the first to set a value wins).
    EnvVar(Vec<PathBuf>),
    /// `~/.kube/config`.
    Default(PathBuf),
}

impl fmt::Display for KubeconfigOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KubeconfigOrigin::Flag(path) | KubeconfigOrigin::Default(path) => {
                write!(f, "{}", path.display())
            }
            KubeconfigOrigin::EnvVar(paths) => {
                let joined = std::env::join_paths(paths).unwrap_or_default();
                write!(f, "$KUBECONFIG ({})", Path::new(&joined).display())
            }
        }
    }
}

/// Finds how the cluster would be reached, in client-go's order: `--kubeconfig`, then `$KUBECONFIG`,
/// then `~/.kube/config` if it exists, then the in-cluster service account.
///
/// Only `~/.kube/config` is checked for existence: a kubeconfig named by the flag or `$KUBECONFIG`
/// counts as configured even if missing, so that [`read_from_cluster`] reports it instead of the
/// built-in default hiding it.
pub fn discover(opts: &ClusterOptions, env: &Environment) -> ClusterAccess {
    if let Some(path) = &opts.kubeconfig {
        return ClusterAccess::Kubeconfig(KubeconfigOrigin::Flag(path.clone()));
    }
    if let Some(value) = &env.kubeconfig {
        let paths: Vec<PathBuf> = std::env::split_paths(value)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
        if !paths.is_empty() {
            return ClusterAccess::Kubeconfig(KubeconfigOrigin::EnvVar(paths));
        }
    }
    let default_path = env.home.as_ref().map(|h| h.join(".kube").join("config"));
    if let Some(path) = default_path.as_ref().filter(|p| p.is_file()) {
        return ClusterAccess::Kubeconfig(KubeconfigOrigin::Default(path.clone()));
    }
    if env.in_cluster {
        return ClusterAccess::InCluster;
    }
    ClusterAccess::Unconfigured { default_path }
}

/// The API server that was (or would have been) asked, for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The server URL, e.g. `https://127.0.0.1:6443`.
    pub server: String,
    /// The kubeconfig context, or `None` for the in-cluster service account.
    pub context: Option<String>,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.context {
            Some(context) => write!(f, "{} (context \"{context}\")", self.server),
            None => write!(f, "{} (in-cluster service account)", self.server),
        }
    }
}

/// One value read from a ConfigMap, with where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigMapValue {
    /// Namespace of the ConfigMap.
    pub namespace: String,
    /// Name of the ConfigMap.
    pub name: String,
    /// The key read (`config` or `mesh`).
    pub key: &'static str,
    /// The value, never empty.
    pub value: String,
}

impl fmt::Display for ConfigMapValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "configmap {}/{}, key \"{}\"",
            self.namespace, self.name, self.key
        )
    }
}

/// What [`read_from_cluster`] read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterConfig {
    /// Key `config` of the injector ConfigMap, if [`Sources::injector`] was [`Source::Cluster`].
    pub injector: Option<ConfigMapValue>,
    /// Key `mesh` of the mesh ConfigMap, if [`Sources::mesh`] was [`Source::Cluster`].
    pub mesh: Option<ConfigMapValue>,
    /// The server and context that answered.
    pub endpoint: Endpoint,
}

impl ClusterConfig {
    /// What was read for `kind`, if anything.
    pub fn get(&self, kind: ConfigKind) -> Option<&ConfigMapValue> {
        match kind {
            ConfigKind::Injector => self.injector.as_ref(),
            ConfigKind::Mesh => self.mesh.as_ref(),
        }
    }

    /// The stderr line saying where `kind` came from, e.g.
    /// `mesh config: configmap istio-system/istio, key "mesh", from https://10.0.0.1:6443 (context "kind-kind")`.
    pub fn source_line(&self, kind: ConfigKind) -> Option<String> {
        self.get(kind)
            .map(|value| format!("{kind}: {value}, from {}", self.endpoint))
    }
}

/// Why the configuration could not be read from the cluster. Every variant is an error exit:
/// none of them falls back to the built-in default.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// A cluster flag asks for a cluster but none is configured.
    #[error(
        "no cluster configured to read the Istio configuration from (no --kubeconfig, $KUBECONFIG unset, \
         {} missing, not running in a pod); pass --kubeconfig, or --injectConfigFile and --meshConfigFile, \
         or --builtin",
        default_path.as_deref().map_or("~/.kube/config".into(), |p| p.display().to_string())
    )]
    NoCluster {
        /// Where `~/.kube/config` was looked for.
        default_path: Option<PathBuf>,
    },

    /// `$KUBECONFIG` names only files that do not exist.
    #[error(
        "none of the files in $KUBECONFIG exist ({}); fix or unset $KUBECONFIG, or pass --kubeconfig",
        Path::new(value).display()
    )]
    KubeconfigEnvMissing {
        /// The value of `$KUBECONFIG`.
        value: OsString,
    },

    /// A kubeconfig file could not be read.
    #[error("cannot read kubeconfig {}", path.display())]
    KubeconfigRead {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },

    /// A kubeconfig is not valid (YAML, or files that cannot be merged).
    #[error("invalid kubeconfig {kubeconfig}")]
    KubeconfigInvalid {
        /// The kubeconfig, as [`KubeconfigOrigin`] shows it.
        kubeconfig: String,
        /// Why.
        #[source]
        source: KubeconfigError,
    },

    /// The kubeconfig has no `current-context` and `--context` was not given.
    #[error(
        "kubeconfig {kubeconfig} sets no current-context; pass --context (contexts: {})",
        list(available)
    )]
    NoCurrentContext {
        /// The kubeconfig, as [`KubeconfigOrigin`] shows it.
        kubeconfig: String,
        /// The contexts it has.
        available: Vec<String>,
    },

    /// The context (from `--context` or `current-context`) is not in the kubeconfig.
    #[error(
        "context \"{context}\" not found in kubeconfig {kubeconfig} (contexts: {})",
        list(available)
    )]
    UnknownContext {
        /// The context asked for.
        context: String,
        /// The kubeconfig, as [`KubeconfigOrigin`] shows it.
        kubeconfig: String,
        /// The contexts it has.
        available: Vec<String>,
    },

    /// The context exists but cannot be turned into a client configuration (missing cluster or
    /// server, unreadable certificate, ...).
    #[error("context \"{context}\" of kubeconfig {kubeconfig} cannot be used")]
    ContextInvalid {
        /// The context.
        context: String,
        /// The kubeconfig, as [`KubeconfigOrigin`] shows it.
        kubeconfig: String,
        /// Why.
        #[source]
        source: KubeconfigError,
    },

    /// `--context` was given but the only configuration is the in-cluster service account.
    #[error(
        "--context \"{context}\" needs a kubeconfig, but none was found (only the in-cluster service account); \
         pass --kubeconfig or drop --context"
    )]
    ContextWithoutKubeconfig {
        /// The context asked for.
        context: String,
    },

    /// The in-cluster service account configuration could not be loaded.
    #[error("cannot load the in-cluster service account configuration")]
    InCluster {
        /// Why.
        #[source]
        source: InClusterError,
    },

    /// The async runtime for the client could not start.
    #[error("cannot start the runtime for the Kubernetes client")]
    Runtime {
        /// Why.
        #[source]
        source: std::io::Error,
    },

    /// The client could not be built (e.g. TLS settings).
    #[error("cannot set up a Kubernetes client for {endpoint}")]
    Client {
        /// The server.
        endpoint: Endpoint,
        /// Why.
        #[source]
        source: Box<kube::Error>,
    },

    /// No connection to the API server (refused, DNS, TLS handshake, connection reset).
    #[error(
        "cannot reach the Kubernetes API server {endpoint}; check that the cluster is up and that \
         --kubeconfig/--context select it, or pass --injectConfigFile and --meshConfigFile, or --builtin"
    )]
    Unreachable {
        /// The server.
        endpoint: Endpoint,
        /// The connection error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The reads did not finish within [`ClusterOptions::timeout`].
    #[error(
        "the Kubernetes API server {endpoint} did not answer within {}s; check that the cluster is up, \
         or pass --injectConfigFile and --meshConfigFile, or --builtin",
        timeout.as_secs_f32()
    )]
    Timeout {
        /// The server.
        endpoint: Endpoint,
        /// The bound that expired.
        timeout: Duration,
    },

    /// Credentials could not be obtained (token file, exec plugin).
    #[error("cannot get credentials for {endpoint}")]
    Credentials {
        /// The server.
        endpoint: Endpoint,
        /// Why.
        #[source]
        source: Box<kube::Error>,
    },

    /// HTTP 401: the credentials were rejected.
    #[error(
        "the Kubernetes API server {endpoint} rejected the credentials (401 Unauthorized: {message}); \
         log in again or choose another --context"
    )]
    Unauthorized {
        /// The server.
        endpoint: Endpoint,
        /// The server's message.
        message: String,
    },

    /// HTTP 403: RBAC forbids reading the ConfigMap.
    #[error(
        "not allowed to read configmap {namespace}/{name} ({kind}) from {endpoint}: {message}; \
         get permission to read configmaps in {namespace}, or pass {}",
        kind.file_flag()
    )]
    Forbidden {
        /// Which configuration the ConfigMap holds.
        kind: ConfigKind,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The server.
        endpoint: Endpoint,
        /// The server's message.
        message: String,
    },

    /// HTTP 404: no such ConfigMap (or namespace).
    #[error(
        "configmap {namespace}/{name} ({kind}) not found in the cluster at {endpoint}; install Istio, \
         select the right one with -i/--istioNamespace and {}, or pass {} (or --builtin)",
        kind.config_map_flag(),
        kind.file_flag()
    )]
    ConfigMapNotFound {
        /// Which configuration the ConfigMap should hold.
        kind: ConfigKind,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The server.
        endpoint: Endpoint,
    },

    /// The ConfigMap exists but has no such key.
    #[error(
        "configmap {namespace}/{name} has no key \"{key}\" (the {kind}; it has {}); fix the configmap, \
         select another with {}, or pass {}",
        keys(present),
        kind.config_map_flag(),
        kind.file_flag()
    )]
    MissingKey {
        /// Which configuration the key should hold.
        kind: ConfigKind,
        /// Namespace of the ConfigMap.
        namespace: String,
        /// Name of the ConfigMap.
        name: String,
        /// The key looked for.
        key: &'static str,
        /// The keys it does have.
        present: Vec<String>,
    },

    /// The key exists but is empty (or only whitespace): there would be nothing to inject.
    #[error(
        "key \"{key}\" of configmap {namespace}/{name} (the {kind}) is empty; fix the configmap or pass {}",
        kind.file_flag()
    )]
    EmptyKey {
        /// Which configuration the key should hold.
        kind: ConfigKind,
        /// Namespace of the ConfigMap.
        namespace: String,
        /// Name of the ConfigMap.
        name: String,
        /// The key.
        key: &'static str,
    },

    /// Any other error status from the API server.
    #[error(
        "reading configmap {namespace}/{name} from {endpoint} failed with HTTP {}{}: {}",
        status.code,
        if status.reason.is_empty() { String::new() } else { format!(" ({})", status.reason) },
        status.message
    )]
    Api {
        /// Namespace of the ConfigMap.
        namespace: String,
        /// Name of the ConfigMap.
        name: String,
        /// The server.
        endpoint: Endpoint,
        /// The `Status` the server answered (`code` is the HTTP status, or `0` if the server's
        /// Status did not say; `message` is the raw body if it was not a Status).
        status: Box<kube::core::Status>,
    },

    /// The request failed in another way (e.g. the answer was not a ConfigMap).
    #[error("reading configmap {namespace}/{name} from {endpoint} failed")]
    Request {
        /// Namespace of the ConfigMap.
        namespace: String,
        /// Name of the ConfigMap.
        name: String,
        /// The server.
        endpoint: Endpoint,
        /// Why.
        #[source]
        source: Box<kube::Error>,
    },
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

fn keys(present: &[String]) -> String {
    if present.is_empty() {
        "no data".to_owned()
    } else {
        let quoted: Vec<String> = present.iter().map(|k| format!("\"{k}\"")).collect();
        format!("keys {}", quoted.join(", "))
    }
}

/// Reads the ConfigMap values that `sources` takes from the cluster: the mesh config first, then
/// the injection config, as istioctl does. Blocking: runs its own current-thread tokio runtime, so it
/// must not be called from within a runtime.
///
/// `access` comes from [`discover`]. Call it when [`Sources::needs_cluster`]; otherwise it only loads
/// the kubeconfig (to fill [`ClusterConfig::endpoint`]), contacts no server and returns no values.
pub fn read_from_cluster(
    opts: &ClusterOptions,
    access: &ClusterAccess,
    sources: &Sources,
) -> Result<ClusterConfig, ClusterError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| ClusterError::Runtime { source })?;
    runtime.block_on(read_async(opts, access, sources))
}

async fn read_async(
    opts: &ClusterOptions,
    access: &ClusterAccess,
    sources: &Sources,
) -> Result<ClusterConfig, ClusterError> {
    let (config, endpoint) = load_config(opts, access).await?;
    let mut result = ClusterConfig {
        injector: None,
        mesh: None,
        endpoint,
    };
    if !sources.needs_cluster() {
        return Ok(result);
    }
    let client = Client::try_from(config).map_err(|source| ClusterError::Client {
        endpoint: result.endpoint.clone(),
        source: Box::new(source),
    })?;
    let api: Api<ConfigMap> = Api::namespaced(client, &opts.istio_namespace);
    let endpoint = &result.endpoint;
    let reads = async {
        let mut mesh = None;
        let mut injector = None;
        if sources.mesh == Source::Cluster {
            mesh = Some(read_value(&api, opts, ConfigKind::Mesh, endpoint).await?);
        }
        if sources.injector == Source::Cluster {
            injector = Some(read_value(&api, opts, ConfigKind::Injector, endpoint).await?);
        }
        Ok((injector, mesh))
    };
    let (injector, mesh) =
        tokio::time::timeout(opts.timeout, reads)
            .await
            .map_err(|_elapsed| ClusterError::Timeout {
                endpoint: endpoint.clone(),
                timeout: opts.timeout,
            })??;
    result.injector = injector;
    result.mesh = mesh;
    Ok(result)
}

/// Turns `access` into a client configuration with our timeouts, and says which server it names.
async fn load_config(
    opts: &ClusterOptions,
    access: &ClusterAccess,
) -> Result<(Config, Endpoint), ClusterError> {
    let (mut config, context) = match access {
        ClusterAccess::Kubeconfig(origin) => {
            let kubeconfig = read_kubeconfig(origin)?;
            let context = select_context(&kubeconfig, opts.context.as_deref(), origin)?;
            let options = KubeConfigOptions {
                context: Some(context.clone()),
                ..KubeConfigOptions::default()
            };
            let config = Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|source| ClusterError::ContextInvalid {
                    context: context.clone(),
                    kubeconfig: origin.to_string(),
                    source,
                })?;
            (config, Some(context))
        }
        ClusterAccess::InCluster => {
            if let Some(context) = &opts.context {
                return Err(ClusterError::ContextWithoutKubeconfig {
                    context: context.clone(),
                });
            }
            let config =
                Config::incluster().map_err(|source| ClusterError::InCluster { source })?;
            (config, None)
        }
        ClusterAccess::Unconfigured { default_path } => {
            return Err(ClusterError::NoCluster {
                default_path: default_path.clone(),
            });
        }
    };
    config.connect_timeout = Some(CONNECT_TIMEOUT.min(opts.timeout));
    config.read_timeout = Some(opts.timeout);
    config.write_timeout = Some(opts.timeout);
    let endpoint = Endpoint {
        server: config
            .cluster_url
            .to_string()
            .trim_end_matches('/')
            .to_owned(),
        context,
    };
    Ok((config, endpoint))
}

fn read_kubeconfig(origin: &KubeconfigOrigin) -> Result<Kubeconfig, ClusterError> {
    let read = |path: &Path| {
        Kubeconfig::read_from(path).map_err(|error| match error {
            KubeconfigError::ReadConfig(source, path) => {
                ClusterError::KubeconfigRead { path, source }
            }
            source => ClusterError::KubeconfigInvalid {
                kubeconfig: path.display().to_string(),
                source,
            },
        })
    };
    match origin {
        KubeconfigOrigin::Flag(path) | KubeconfigOrigin::Default(path) => read(path),
        KubeconfigOrigin::EnvVar(paths) => {
            // client-go skips missing files in $KUBECONFIG; all of them missing is a mistake.
            let existing: Vec<&PathBuf> = paths.iter().filter(|p| p.exists()).collect();
            if existing.is_empty() {
                return Err(ClusterError::KubeconfigEnvMissing {
                    value: std::env::join_paths(paths).unwrap_or_default(),
                });
            }
            let mut merged = Kubeconfig::default();
            for path in existing {
                merged = merged.merge(read(path)?).map_err(|source| {
                    ClusterError::KubeconfigInvalid {
                        kubeconfig: origin.to_string(),
                        source,
                    }
                })?;
            }
            Ok(merged)
        }
    }
}

/// `--context`, else the kubeconfig's `current-context`; it must name a context of the kubeconfig.
fn select_context(
    kubeconfig: &Kubeconfig,
    flag: Option<&str>,
    origin: &KubeconfigOrigin,
) -> Result<String, ClusterError> {
    let available: Vec<String> = kubeconfig.contexts.iter().map(|c| c.name.clone()).collect();
    let context = match flag.or(kubeconfig.current_context.as_deref()) {
        Some(context) if !context.is_empty() => context.to_owned(),
        _ => {
            return Err(ClusterError::NoCurrentContext {
                kubeconfig: origin.to_string(),
                available,
            });
        }
    };
    if !available.contains(&context) {
        return Err(ClusterError::UnknownContext {
            context,
            kubeconfig: origin.to_string(),
            available,
        });
    }
    Ok(context)
}

/// Reads key `kind.key()` of the ConfigMap for `kind`.
async fn read_value(
    api: &Api<ConfigMap>,
    opts: &ClusterOptions,
    kind: ConfigKind,
    endpoint: &Endpoint,
) -> Result<ConfigMapValue, ClusterError> {
    let namespace = opts.istio_namespace.clone();
    let name = opts.config_map_name(kind).to_owned();
    let config_map = match api.get(&name).await {
        Ok(config_map) => config_map,
        Err(error) => return Err(request_error(error, kind, namespace, name, endpoint)),
    };
    let mut data = config_map.data.unwrap_or_default();
    let key = kind.key();
    match data.remove(key) {
        None => Err(ClusterError::MissingKey {
            kind,
            namespace,
            name,
            key,
            present: data.into_keys().collect(),
        }),
        Some(value) if value.trim().is_empty() => Err(ClusterError::EmptyKey {
            kind,
            namespace,
            name,
            key,
        }),
        Some(value) => Ok(ConfigMapValue {
            namespace,
            name,
            key,
            value,
        }),
    }
}

/// Sorts a failed ConfigMap read into the error the user can act on.
fn request_error(
    error: kube::Error,
    kind: ConfigKind,
    namespace: String,
    name: String,
    endpoint: &Endpoint,
) -> ClusterError {
    let endpoint = endpoint.clone();
    match error {
        kube::Error::Api(status) => match status.code {
            401 => ClusterError::Unauthorized {
                endpoint,
                message: status.message,
            },
            403 => ClusterError::Forbidden {
                kind,
                namespace,
                name,
                endpoint,
                message: status.message,
            },
            404 => ClusterError::ConfigMapNotFound {
                kind,
                namespace,
                name,
                endpoint,
            },
            _ => ClusterError::Api {
                namespace,
                name,
                endpoint,
                status,
            },
        },
        // kube's wrappers repeat their cause in their own message; keep only the cause.
        kube::Error::HyperError(source) => ClusterError::Unreachable {
            endpoint,
            source: Box::new(source),
        },
        kube::Error::Service(source) => ClusterError::Unreachable { endpoint, source },
        error @ kube::Error::Auth(_) => ClusterError::Credentials {
            endpoint,
            source: Box::new(error),
        },
        error => ClusterError::Request {
            namespace,
            name,
            endpoint,
            source: Box::new(error),
        },
    }
}

/// The fake API server the integration tests use too (`tests/support/fake_apiserver.rs`).
#[cfg(test)]
#[path = "../tests/support/fake_apiserver.rs"]
mod fake_apiserver;

#[cfg(test)]
mod tests {
    use super::fake_apiserver;
    use super::*;

    use fake_apiserver::{FakeApiServer, Kubeconfig as TestKubeconfig, Reply, TempDir};

    const INJECT: &str = "policy: enabled\ntemplate: |-\n  containers:\n  - name: istio-proxy\n";
    const MESH: &str = "defaultConfig:\n  discoveryAddress: istio-pilot:15010\n";

    fn flags(
        builtin: bool,
        inject_file: bool,
        mesh_file: bool,
        cluster_flags: bool,
    ) -> SourceFlags {
        SourceFlags {
            builtin,
            inject_config_file: inject_file,
            mesh_config_file: mesh_file,
            cluster_flags,
        }
    }

    fn kubeconfig_access() -> ClusterAccess {
        ClusterAccess::Kubeconfig(KubeconfigOrigin::Default("/home/u/.kube/config".into()))
    }

    fn unconfigured() -> ClusterAccess {
        ClusterAccess::Unconfigured { default_path: None }
    }

    fn both(source: Source) -> Sources {
        Sources {
            injector: source,
            mesh: source,
        }
    }

    /// Options pointing at a kubeconfig written for `server` into `dir`.
    fn options_for(server: &str, dir: &TempDir) -> ClusterOptions {
        ClusterOptions {
            kubeconfig: Some(TestKubeconfig::new(server).write(dir.path())),
            timeout: Duration::from_secs(5),
            ..ClusterOptions::default()
        }
    }

    fn read(opts: &ClusterOptions) -> Result<ClusterConfig, ClusterError> {
        let access = discover(opts, &Environment::default());
        read_from_cluster(opts, &access, &both(Source::Cluster))
    }

    // --- precedence: choose_sources ---

    #[test]
    fn nothing_configured_uses_builtin_with_a_note() {
        let sources = choose_sources(&flags(false, false, false, false), &unconfigured());
        assert_eq!(sources, both(Source::Builtin(BuiltinReason::NoCluster)));
        assert!(!sources.needs_cluster());
        assert_eq!(
            BuiltinReason::NoCluster.to_string(),
            "no cluster configured (no kubeconfig); using the built-in default configuration"
        );
    }

    #[test]
    fn discoverable_kubeconfig_means_the_cluster_must_answer() {
        let sources = choose_sources(&flags(false, false, false, false), &kubeconfig_access());
        assert_eq!(sources, both(Source::Cluster));
    }

    #[test]
    fn in_cluster_means_the_cluster_must_answer() {
        let sources = choose_sources(
            &flags(false, false, false, false),
            &ClusterAccess::InCluster,
        );
        assert_eq!(sources, both(Source::Cluster));
    }

    #[test]
    fn cluster_flag_without_any_kubeconfig_still_means_the_cluster() {
        let sources = choose_sources(&flags(false, false, false, true), &unconfigured());
        assert_eq!(sources, both(Source::Cluster));
    }

    #[test]
    fn files_beat_the_cluster() {
        let sources = choose_sources(&flags(false, true, true, true), &kubeconfig_access());
        assert_eq!(sources, both(Source::File));
        assert!(!sources.needs_cluster());
    }

    #[test]
    fn one_file_leaves_the_other_config_to_the_cluster() {
        let sources = choose_sources(&flags(false, true, false, false), &kubeconfig_access());
        assert_eq!(sources.injector, Source::File);
        assert_eq!(sources.mesh, Source::Cluster);
        let sources = choose_sources(&flags(false, false, true, false), &kubeconfig_access());
        assert_eq!(sources.get(ConfigKind::Injector), Source::Cluster);
        assert_eq!(sources.get(ConfigKind::Mesh), Source::File);
    }

    #[test]
    fn one_file_and_no_cluster_uses_builtin_for_the_other() {
        let sources = choose_sources(&flags(false, false, true, false), &unconfigured());
        assert_eq!(sources.injector, Source::Builtin(BuiltinReason::NoCluster));
        assert_eq!(sources.mesh, Source::File);
    }

    #[test]
    fn builtin_flag_beats_the_cluster_but_not_files() {
        let requested = Source::Builtin(BuiltinReason::Requested);
        let sources = choose_sources(&flags(true, false, false, true), &kubeconfig_access());
        assert_eq!(sources, both(requested));
        assert_eq!(
            BuiltinReason::Requested.to_string(),
            "using the built-in default configuration (--builtin)"
        );
        let sources = choose_sources(&flags(true, true, false, false), &ClusterAccess::InCluster);
        assert_eq!(sources.injector, Source::File);
        assert_eq!(sources.mesh, requested);
    }

    #[test]
    fn precedence_table() {
        // (builtin, inject file, mesh file, cluster flags, access) -> (injector, mesh)
        use BuiltinReason::{NoCluster, Requested};
        use Source::{Builtin, Cluster, File};
        let kube = kubeconfig_access();
        let none = unconfigured();
        let pod = ClusterAccess::InCluster;
        let table = [
            (
                (false, false, false, false),
                &none,
                (Builtin(NoCluster), Builtin(NoCluster)),
            ),
            ((false, false, false, true), &none, (Cluster, Cluster)),
            ((false, false, false, false), &kube, (Cluster, Cluster)),
            ((false, false, false, false), &pod, (Cluster, Cluster)),
            ((false, true, true, false), &none, (File, File)),
            ((false, true, true, false), &kube, (File, File)),
            ((false, true, false, false), &kube, (File, Cluster)),
            (
                (false, true, false, false),
                &none,
                (File, Builtin(NoCluster)),
            ),
            (
                (true, false, false, false),
                &kube,
                (Builtin(Requested), Builtin(Requested)),
            ),
            (
                (true, false, false, false),
                &none,
                (Builtin(Requested), Builtin(Requested)),
            ),
            ((true, false, true, true), &pod, (Builtin(Requested), File)),
        ];
        for ((b, i, m, c), access, (injector, mesh)) in table {
            let got = choose_sources(&flags(b, i, m, c), access);
            assert_eq!(
                got,
                Sources { injector, mesh },
                "flags {:?}, {access:?}",
                (b, i, m, c)
            );
        }
    }

    // --- discovery ---

    #[test]
    fn kubeconfig_flag_wins_even_if_missing() {
        let opts = ClusterOptions {
            kubeconfig: Some("/nonexistent/kubeconfig".into()),
            ..ClusterOptions::default()
        };
        let env = Environment {
            kubeconfig: Some("/other".into()),
            home: None,
            in_cluster: true,
        };
        assert_eq!(
            discover(&opts, &env),
            ClusterAccess::Kubeconfig(KubeconfigOrigin::Flag("/nonexistent/kubeconfig".into()))
        );
    }

    #[test]
    fn kubeconfig_env_var_is_split_like_a_path_list() {
        let env = Environment {
            kubeconfig: Some("/a/config::/b/config".into()),
            ..Environment::default()
        };
        assert_eq!(
            discover(&ClusterOptions::default(), &env),
            ClusterAccess::Kubeconfig(KubeconfigOrigin::EnvVar(vec![
                "/a/config".into(),
                "/b/config".into()
            ]))
        );
    }

    #[test]
    fn empty_kubeconfig_env_var_is_ignored() {
        let env = Environment {
            kubeconfig: Some("".into()),
            in_cluster: true,
            ..Environment::default()
        };
        assert_eq!(
            discover(&ClusterOptions::default(), &env),
            ClusterAccess::InCluster
        );
    }

    #[test]
    fn default_kubeconfig_counts_only_if_it_exists() {
        let home = TempDir::new();
        let env = Environment {
            home: Some(home.path().to_owned()),
            ..Environment::default()
        };
        let default_path = home.path().join(".kube").join("config");
        assert_eq!(
            discover(&ClusterOptions::default(), &env),
            ClusterAccess::Unconfigured {
                default_path: Some(default_path.clone())
            }
        );
        std::fs::create_dir_all(default_path.parent().unwrap()).unwrap();
        std::fs::write(&default_path, "").unwrap();
        assert_eq!(
            discover(&ClusterOptions::default(), &env),
            ClusterAccess::Kubeconfig(KubeconfigOrigin::Default(default_path))
        );
    }

    #[test]
    fn kubeconfig_beats_in_cluster() {
        let home = TempDir::new();
        let path = home.path().join(".kube").join("config");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "").unwrap();
        let env = Environment {
            home: Some(home.path().to_owned()),
            in_cluster: true,
            ..Environment::default()
        };
        assert_eq!(
            discover(&ClusterOptions::default(), &env),
            ClusterAccess::Kubeconfig(KubeconfigOrigin::Default(path))
        );
    }

    // --- reading from a (fake) cluster ---

    #[test]
    fn reads_config_and_mesh_keys_from_istio_system() {
        let server = FakeApiServer::with_istio(INJECT, MESH);
        server.require_token(fake_apiserver::FAKE_TOKEN);
        let dir = TempDir::new();
        let config = read(&options_for(&server.url(), &dir)).unwrap();

        let injector = config.injector.as_ref().unwrap();
        assert_eq!(injector.value, INJECT);
        assert_eq!(
            (injector.namespace.as_str(), injector.name.as_str()),
            ("istio-system", "istio-sidecar-injector")
        );
        assert_eq!(config.mesh.as_ref().unwrap().value, MESH);
        assert_eq!(config.endpoint.server, server.url());
        assert_eq!(config.endpoint.context.as_deref(), Some("fake"));
        // Mesh first, then the injector, as istioctl does; with the kubeconfig user's token.
        assert_eq!(
            server.paths(),
            [
                "/api/v1/namespaces/istio-system/configmaps/istio",
                "/api/v1/namespaces/istio-system/configmaps/istio-sidecar-injector",
            ]
        );
        assert!(
            server
                .requests()
                .iter()
                .all(|r| r.method == "GET"
                    && r.authorization.as_deref() == Some("Bearer fake-token"))
        );
        assert_eq!(
            config.source_line(ConfigKind::Mesh).unwrap(),
            format!(
                "mesh config: configmap istio-system/istio, key \"mesh\", from {} (context \"fake\")",
                server.url()
            )
        );
    }

    #[test]
    fn reads_only_what_the_sources_take_from_the_cluster() {
        let server = FakeApiServer::start();
        server.config_map("istio-system", "istio", &[("mesh", MESH)]);
        let dir = TempDir::new();
        let opts = options_for(&server.url(), &dir);
        let access = discover(&opts, &Environment::default());
        let sources = Sources {
            injector: Source::File,
            mesh: Source::Cluster,
        };
        let config = read_from_cluster(&opts, &access, &sources).unwrap();
        assert_eq!(config.injector, None);
        assert_eq!(config.mesh.unwrap().value, MESH);
        assert_eq!(
            server.paths(),
            ["/api/v1/namespaces/istio-system/configmaps/istio"]
        );

        let config = read_from_cluster(&opts, &access, &both(Source::File)).unwrap();
        assert_eq!((config.injector, config.mesh), (None, None));
        assert_eq!(server.paths().len(), 1, "nothing more is requested");
    }

    #[test]
    fn custom_namespace_and_config_map_names_are_read() {
        let server = FakeApiServer::start();
        server.config_map("mesh-ns", "my-injector", &[("config", INJECT)]);
        server.config_map(
            "mesh-ns",
            "my-mesh",
            &[("mesh", MESH), ("meshNetworks", "{}")],
        );
        let dir = TempDir::new();
        let opts = ClusterOptions {
            istio_namespace: "mesh-ns".into(),
            inject_config_map_name: "my-injector".into(),
            mesh_config_map_name: "my-mesh".into(),
            ..options_for(&server.url(), &dir)
        };
        let config = read(&opts).unwrap();
        assert_eq!(config.injector.unwrap().value, INJECT);
        assert_eq!(config.mesh.unwrap().value, MESH);
        assert_eq!(
            server.paths(),
            [
                "/api/v1/namespaces/mesh-ns/configmaps/my-mesh",
                "/api/v1/namespaces/mesh-ns/configmaps/my-injector",
            ]
        );
    }

    #[test]
    fn context_flag_selects_another_cluster() {
        let current = FakeApiServer::with_istio("current: true\n", MESH);
        let other = FakeApiServer::with_istio("other: true\n", MESH);
        let dir = TempDir::new();
        let path = TestKubeconfig::new(&current.url())
            .context("other", &other.url())
            .write(dir.path());
        let opts = ClusterOptions {
            kubeconfig: Some(path),
            context: Some("other".into()),
            ..ClusterOptions::default()
        };
        let config = read(&opts).unwrap();
        assert_eq!(config.injector.unwrap().value, "other: true\n");
        assert_eq!(config.endpoint.context.as_deref(), Some("other"));
        assert!(current.paths().is_empty());
        assert_eq!(other.paths().len(), 2);
    }

    #[test]
    fn unknown_context_lists_the_available_ones() {
        let dir = TempDir::new();
        let opts = ClusterOptions {
            context: Some("nope".into()),
            ..options_for("http://127.0.0.1:1", &dir)
        };
        let err = read(&opts).unwrap_err();
        assert!(
            matches!(&err, ClusterError::UnknownContext { context, available, .. }
            if context == "nope" && available == &["fake"]),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "context \"nope\" not found in kubeconfig {} (contexts: fake)",
                opts.kubeconfig.unwrap().display()
            )
        );
    }

    #[test]
    fn kubeconfig_without_current_context_asks_for_context() {
        let dir = TempDir::new();
        let path = TestKubeconfig::new("http://127.0.0.1:1")
            .current(None)
            .write(dir.path());
        let opts = ClusterOptions {
            kubeconfig: Some(path),
            ..ClusterOptions::default()
        };
        let err = read(&opts).unwrap_err();
        assert!(
            matches!(err, ClusterError::NoCurrentContext { .. }),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("pass --context (contexts: fake)"),
            "{err}"
        );
    }

    #[test]
    fn istio_2489_missing_configmap_is_an_error() {
        // See: https://github.com/istio/istio/issues/2489 (empty output when the ConfigMap is missing)
        let server = FakeApiServer::start();
        server.config_map("istio-system", "istio", &[("mesh", MESH)]);
        let dir = TempDir::new();
        let err = read(&options_for(&server.url(), &dir)).unwrap_err();
        assert!(
            matches!(&err, ClusterError::ConfigMapNotFound { kind: ConfigKind::Injector, namespace, name, .. }
                if namespace == "istio-system" && name == "istio-sidecar-injector"),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "configmap istio-system/istio-sidecar-injector (injection config) not found in the cluster at \
                 {} (context \"fake\"); install Istio, select the right one with -i/--istioNamespace and \
                 --injectConfigMapName, or pass --injectConfigFile (or --builtin)",
                server.url()
            )
        );
    }

    #[test]
    fn missing_mesh_configmap_is_reported_first() {
        let server = FakeApiServer::start();
        let dir = TempDir::new();
        let err = read(&options_for(&server.url(), &dir)).unwrap_err();
        assert!(
            matches!(
                err,
                ClusterError::ConfigMapNotFound {
                    kind: ConfigKind::Mesh,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .contains("--meshConfigMapName, or pass --meshConfigFile"),
            "{err}"
        );
        assert_eq!(
            server.paths(),
            ["/api/v1/namespaces/istio-system/configmaps/istio"]
        );
    }

    #[test]
    fn missing_key_names_the_keys_present() {
        let server = FakeApiServer::with_istio(INJECT, MESH);
        server.config_map(
            "istio-system",
            "istio",
            &[("meshNetworks", "{}"), ("values", "{}")],
        );
        let dir = TempDir::new();
        let err = read(&options_for(&server.url(), &dir)).unwrap_err();
        assert!(
            matches!(&err, ClusterError::MissingKey { key: "mesh", .. }),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "configmap istio-system/istio has no key \"mesh\" (the mesh config; it has keys \"meshNetworks\", \
             \"values\"); fix the configmap, select another with --meshConfigMapName, or pass --meshConfigFile"
        );
    }

    #[test]
    fn configmap_without_data_is_a_missing_key() {
        let server = FakeApiServer::with_istio(INJECT, MESH);
        server.config_map("istio-system", "istio-sidecar-injector", &[]);
        let dir = TempDir::new();
        let err = read(&options_for(&server.url(), &dir)).unwrap_err();
        assert!(
            matches!(&err, ClusterError::MissingKey { key: "config", .. }),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .contains("(the injection config; it has no data)"),
            "{err}"
        );
    }

    #[test]
    fn empty_key_is_an_error() {
        let server = FakeApiServer::with_istio(" \n", MESH);
        let dir = TempDir::new();
        let err = read(&options_for(&server.url(), &dir)).unwrap_err();
        assert!(
            matches!(&err, ClusterError::EmptyKey { key: "config", .. }),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "key \"config\" of configmap istio-system/istio-sidecar-injector (the injection config) is empty; \
             fix the configmap or pass --injectConfigFile"
        );
    }

    #[test]
    fn forbidden_read_is_an_error_naming_the_configmap() {
        let server = FakeApiServer::with_istio(INJECT, MESH);
        server.forbid("istio-system", "istio");
        let dir = TempDir::new();
        let err = read(&options_for(&server.url(), &dir)).unwrap_err();
        assert!(
            matches!(
                &err,
                ClusterError::Forbidden {
                    kind: ConfigKind::Mesh,
                    ..
                }
            ),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.starts_with(&format!(
                "not allowed to read configmap istio-system/istio (mesh config) from {} (context \"fake\"): \
                 configmaps \"istio\" is forbidden: User",
                server.url()
            )),
            "{text}"
        );
        assert!(
            text.ends_with(
                "; get permission to read configmaps in istio-system, or pass --meshConfigFile"
            ),
            "{text}"
        );
    }

    #[test]
    fn rejected_token_is_unauthorized() {
        let server = FakeApiServer::with_istio(INJECT, MESH);
        server.require_token("another-token");
        let dir = TempDir::new();
        let err = read(&options_for(&server.url(), &dir)).unwrap_err();
        assert!(matches!(err, ClusterError::Unauthorized { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains("(401 Unauthorized: Unauthorized); log in again"),
            "{err}"
        );
    }

    #[test]
    fn server_error_keeps_status_reason_and_message() {
        let server = FakeApiServer::with_istio(INJECT, MESH);
        server.reply(
            "istio-system",
            "istio",
            Reply::Status {
                code: 500,
                reason: "InternalError".into(),
                message: "etcd is down".into(),
            },
        );
        let dir = TempDir::new();
        let err = read(&options_for(&server.url(), &dir)).unwrap_err();
        assert!(
            matches!(&err, ClusterError::Api { status, .. } if status.code == 500),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "reading configmap istio-system/istio from {} (context \"fake\") failed with HTTP 500 \
                 (InternalError): etcd is down",
                server.url()
            )
        );
    }

    #[test]
    fn non_kubernetes_error_page_keeps_the_http_status() {
        let server = FakeApiServer::with_istio(INJECT, MESH);
        server.reply(
            "istio-system",
            "istio",
            Reply::Raw {
                code: 502,
                content_type: "text/html".into(),
                body: "<html>bad gateway</html>".into(),
            },
        );
        let dir = TempDir::new();
        let err = read(&options_for(&server.url(), &dir)).unwrap_err();
        assert!(
            matches!(&err, ClusterError::Api { status, .. } if status.code == 502),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("<html>bad gateway</html>"),
            "{err}"
        );
    }

    #[test]
    fn answer_that_is_not_a_configmap_is_a_request_error() {
        let server = FakeApiServer::with_istio(INJECT, MESH);
        server.reply(
            "istio-system",
            "istio",
            Reply::Raw {
                code: 200,
                content_type: "text/html".into(),
                body: "<html>login page</html>".into(),
            },
        );
        let dir = TempDir::new();
        let err = read(&options_for(&server.url(), &dir)).unwrap_err();
        assert!(matches!(err, ClusterError::Request { .. }), "{err:?}");
    }

    #[test]
    fn unreachable_cluster_fails_fast() {
        let url = fake_apiserver::unreachable_url();
        let dir = TempDir::new();
        let start = std::time::Instant::now();
        let err = read(&options_for(&url, &dir)).unwrap_err();
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "took {:?}",
            start.elapsed()
        );
        assert!(matches!(err, ClusterError::Unreachable { .. }), "{err:?}");
        assert!(
            err.to_string().starts_with(&format!(
                "cannot reach the Kubernetes API server {url} (context \"fake\"); check that the cluster is up"
            )),
            "{err}"
        );
        let causes = error_chain(&err);
        assert!(causes.contains("Connection refused"), "{causes}");
    }

    #[test]
    fn unreachable_https_cluster_sets_up_tls_and_fails_cleanly() {
        // Builds the rustls client (crypto provider, native roots) before failing to connect.
        let url = fake_apiserver::unreachable_url().replace("http://", "https://");
        let dir = TempDir::new();
        let err = read(&options_for(&url, &dir)).unwrap_err();
        assert!(matches!(err, ClusterError::Unreachable { .. }), "{err:?}");
    }

    #[test]
    fn stalled_server_times_out() {
        let server = FakeApiServer::with_istio(INJECT, MESH);
        server.reply("istio-system", "istio", Reply::Stall);
        let dir = TempDir::new();
        let opts = ClusterOptions {
            timeout: Duration::from_millis(300),
            ..options_for(&server.url(), &dir)
        };
        let start = std::time::Instant::now();
        let err = read(&opts).unwrap_err();
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "took {:?}",
            start.elapsed()
        );
        // hyper's read timeout or our overall bound, whichever fires first.
        assert!(
            matches!(
                err,
                ClusterError::Timeout { .. } | ClusterError::Unreachable { .. }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn missing_kubeconfig_file_is_an_error_not_a_fallback() {
        let dir = TempDir::new();
        let path = dir.path().join("missing");
        let opts = ClusterOptions {
            kubeconfig: Some(path.clone()),
            ..ClusterOptions::default()
        };
        let access = discover(&opts, &Environment::default());
        let sources = choose_sources(&flags(false, false, false, true), &access);
        assert_eq!(sources, both(Source::Cluster));
        let err = read_from_cluster(&opts, &access, &sources).unwrap_err();
        assert!(
            matches!(&err, ClusterError::KubeconfigRead { path: p, .. } if p == &path),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("cannot read kubeconfig {}", path.display())
        );
    }

    #[test]
    fn invalid_kubeconfig_is_an_error() {
        let dir = TempDir::new();
        let path = dir.path().join("kubeconfig");
        std::fs::write(&path, "clusters: [unclosed").unwrap();
        let opts = ClusterOptions {
            kubeconfig: Some(path),
            ..ClusterOptions::default()
        };
        let err = read(&opts).unwrap_err();
        assert!(
            matches!(err, ClusterError::KubeconfigInvalid { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn kubeconfig_env_var_files_are_merged_and_missing_ones_skipped() {
        let server = FakeApiServer::with_istio(INJECT, MESH);
        let dir = TempDir::new();
        let path = TestKubeconfig::new(&server.url()).write(dir.path());
        let missing = dir.path().join("missing");
        let env = Environment {
            kubeconfig: Some(std::env::join_paths([&missing, &path]).unwrap()),
            ..Environment::default()
        };
        let opts = ClusterOptions::default();
        let access = discover(&opts, &env);
        let config = read_from_cluster(&opts, &access, &both(Source::Cluster)).unwrap();
        assert_eq!(config.mesh.unwrap().value, MESH);
    }

    #[test]
    fn kubeconfig_env_var_naming_no_existing_file_is_an_error() {
        let dir = TempDir::new();
        let env = Environment {
            kubeconfig: Some(dir.path().join("missing").into_os_string()),
            ..Environment::default()
        };
        let opts = ClusterOptions::default();
        let access = discover(&opts, &env);
        let err = read_from_cluster(&opts, &access, &both(Source::Cluster)).unwrap_err();
        assert!(
            matches!(err, ClusterError::KubeconfigEnvMissing { .. }),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with("none of the files in $KUBECONFIG exist ("),
            "{err}"
        );
    }

    #[test]
    fn cluster_flag_without_cluster_is_an_error() {
        let opts = ClusterOptions {
            istio_namespace: "other".into(),
            ..ClusterOptions::default()
        };
        let access = ClusterAccess::Unconfigured {
            default_path: Some("/home/u/.kube/config".into()),
        };
        let sources = choose_sources(&flags(false, false, false, true), &access);
        let err = read_from_cluster(&opts, &access, &sources).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no cluster configured to read the Istio configuration from (no --kubeconfig, $KUBECONFIG unset, \
             /home/u/.kube/config missing, not running in a pod); pass --kubeconfig, or --injectConfigFile and \
             --meshConfigFile, or --builtin"
        );
    }

    #[test]
    fn context_flag_in_a_pod_without_kubeconfig_is_an_error() {
        let opts = ClusterOptions {
            context: Some("kind-kind".into()),
            ..ClusterOptions::default()
        };
        let err = read_from_cluster(&opts, &ClusterAccess::InCluster, &both(Source::Cluster))
            .unwrap_err();
        assert!(
            matches!(err, ClusterError::ContextWithoutKubeconfig { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn context_without_server_cannot_be_used() {
        let dir = TempDir::new();
        let path = dir.path().join("kubeconfig");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts:\n- name: c\n  context:\n    cluster: gone\n",
        )
        .unwrap();
        let opts = ClusterOptions {
            kubeconfig: Some(path),
            ..ClusterOptions::default()
        };
        let err = read(&opts).unwrap_err();
        assert!(
            matches!(err, ClusterError::ContextInvalid { .. }),
            "{err:?}"
        );
        assert!(
            err.to_string().starts_with("context \"c\" of kubeconfig "),
            "{err}"
        );
    }

    /// The error and its causes, as `{:#}` of anyhow would print them.
    fn error_chain(err: &dyn std::error::Error) -> String {
        let mut text = err.to_string();
        let mut source = err.source();
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }
}
