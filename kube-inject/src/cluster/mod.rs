//! Reading Istio's ConfigMaps from a live cluster: the in-cluster config path of
//! `istioctl kube-inject` (`getMeshConfigFromConfigMap` and `getInjectConfigFromConfigMap`, istio 1.0
//! `istioctl/cmd/istioctl/kubeinject.go`).
//!
//! With no `--injectConfigFile`/`--meshConfigFile`, istioctl reads key `config` of ConfigMap
//! `istio-sidecar-injector` and key `mesh` of ConfigMap `istio`, both in `istio-system` (`-i`), through
//! the user's kubeconfig. This module does the same with the `kube` crate's client, in two steps:
//!
//! 1. [`kubeconfig`]: [`discover`] finds how a cluster could be reached ([`ClusterAccess`]):
//!    `--kubeconfig`, then `$KUBECONFIG`, then `~/.kube/config`, then the in-cluster service
//!    account, as client-go does; the client configuration is loaded with `kube::config`.
//! 2. [`read`]: [`read_from_cluster`] (blocking, bounded by [`ClusterOptions::timeout`]) reads the
//!    ConfigMaps asked for.
//!
//! Every failure is a [`ClusterError`] ([`error`]) that names the namespace, ConfigMap, key, server
//! or kubeconfig and says what to do. Whether the cluster is asked at all (files and `--builtin`
//! come first) is decided in [`crate::config`].
//!
//! # Differences from Istio
//! - A key that is present but empty is an error ([`ClusterError::EmptyKey`]); istioctl would render
//!   with an empty template.
//! - `$KUBECONFIG` naming no existing file is an error, not a silent fallback to in-cluster config.
//! - Every read is bounded by [`ClusterOptions::timeout`], so an unreachable cluster fails fast.

pub mod error;
pub mod kubeconfig;
pub mod read;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub use error::ClusterError;
pub use kubeconfig::{ClusterAccess, Endpoint, Environment, discover};
pub use read::{ClusterConfig, read_from_cluster};

/// Namespace of Istio's ConfigMaps unless `-i/--istioNamespace` says otherwise.
pub const DEFAULT_ISTIO_NAMESPACE: &str = "istio-system";
/// ConfigMap holding the injection config unless `--injectConfigMapName` says otherwise.
pub const DEFAULT_INJECT_CONFIG_MAP_NAME: &str = "istio-sidecar-injector";
/// ConfigMap holding the mesh config unless `--meshConfigMapName` says otherwise.
pub const DEFAULT_MESH_CONFIG_MAP_NAME: &str = "istio";
/// Default bound on all cluster reads of one run: long enough for a remote cluster, short enough
/// that a dead one is reported before the user gives up.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

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

/// One of the two configurations kube-inject needs; errors and notes name it, its key and its
/// flags, so that each message says which one went wrong and how to replace it.
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
            ConfigKind::Injector => "config",
            ConfigKind::Mesh => "mesh",
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
