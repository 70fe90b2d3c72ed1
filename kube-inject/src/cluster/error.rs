//! Why the configuration could not be read from the cluster: [`ClusterError`], one variant per
//! case of README's error table, each message naming what failed and what to do instead.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::config::{InClusterError, KubeconfigError};

use super::{ConfigKind, Endpoint};

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
        /// The kubeconfig, as [`KubeconfigFiles`](super::kubeconfig::KubeconfigFiles) shows it.
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
        /// The kubeconfig, as [`KubeconfigFiles`](super::kubeconfig::KubeconfigFiles) shows it.
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
        /// The kubeconfig, as [`KubeconfigFiles`](super::kubeconfig::KubeconfigFiles) shows it.
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
        /// The kubeconfig, as [`KubeconfigFiles`](super::kubeconfig::KubeconfigFiles) shows it.
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

    /// The server was reached but the exchange broke off (connection closed mid-response, a
    /// malformed HTTP answer): unlike [`ClusterError::Unreachable`], the cluster is up.
    #[error(
        "the connection to the Kubernetes API server {endpoint} broke while reading configmap \
         {namespace}/{name}; try again, or pass --injectConfigFile and --meshConfigFile, or --builtin"
    )]
    Interrupted {
        /// Namespace of the ConfigMap.
        namespace: String,
        /// Name of the ConfigMap.
        name: String,
        /// The server.
        endpoint: Endpoint,
        /// What broke.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The reads did not finish within [`ClusterOptions::timeout`](super::ClusterOptions::timeout).
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

#[cfg(test)]
mod tests {
    use super::*;

    // The end-to-end tests always have a home directory and cannot wait out the 10 s bound;
    // these two messages are checked here.

    #[test]
    fn no_cluster_without_a_home_names_the_usual_path() {
        let err = ClusterError::NoCluster { default_path: None };
        assert!(
            err.to_string()
                .contains("$KUBECONFIG unset, ~/.kube/config missing, not running in a pod"),
            "{err}"
        );
    }

    #[test]
    fn timeout_names_the_server_and_the_bound_in_seconds() {
        let err = ClusterError::Timeout {
            endpoint: Endpoint {
                server: "https://10.96.0.1:443".into(),
                context: None,
            },
            timeout: crate::cluster::DEFAULT_TIMEOUT,
        };
        assert_eq!(
            err.to_string(),
            "the Kubernetes API server https://10.96.0.1:443 (in-cluster service account) did not \
             answer within 10s; check that the cluster is up, or pass --injectConfigFile and \
             --meshConfigFile, or --builtin"
        );
    }
}
