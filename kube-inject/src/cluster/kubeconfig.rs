//! How the cluster is reached: which kubeconfig (or the in-cluster service account) applies, as
//! client-go finds it (`clientcmd.NewDefaultClientConfigLoadingRules`), and the `kube` client
//! configuration loaded from it.
//!
//! `kube::config` parses, merges and resolves contexts ([`Kubeconfig::read_from`],
//! [`Kubeconfig::merge`], [`Config::from_custom_kubeconfig`], [`Config::incluster`]); this module
//! only decides which files it is given and turns its errors into ones that say what to do.
//!
//! # Differences from `Kubeconfig::from_env`
//! `$KUBECONFIG` is read from an [`Environment`] captured once, so discovery is testable, and its
//! missing files are skipped as client-go skips them (`from_env` fails on the first one); all of
//! them missing is an error ([`ClusterError::KubeconfigEnvMissing`]).

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::Config;
use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};

use super::{ClusterError, ClusterOptions};

/// Bound on opening the TCP (and TLS) connection, within [`ClusterOptions::timeout`]: a refused
/// or silent address is reported before the whole budget is spent on it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

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
    Kubeconfig(KubeconfigFiles),
    /// Through the pod's service account (`KUBERNETES_SERVICE_HOST`, mounted token and CA).
    InCluster,
    /// Nothing points at a cluster.
    Unconfigured {
        /// Where `~/.kube/config` was looked for, if a home directory is known.
        default_path: Option<PathBuf>,
    },
}

/// Which kubeconfig file(s) to read; its `Display` names them in messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KubeconfigFiles {
    /// `--kubeconfig PATH`.
    Flag(PathBuf),
    /// `$KUBECONFIG`: its existing files, merged (the first to set a value wins).
    EnvVar(Vec<PathBuf>),
    /// `~/.kube/config`.
    Default(PathBuf),
}

impl fmt::Display for KubeconfigFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KubeconfigFiles::Flag(path) | KubeconfigFiles::Default(path) => {
                write!(f, "{}", path.display())
            }
            KubeconfigFiles::EnvVar(paths) => {
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
/// counts as configured even if missing, so that reading it reports it instead of the built-in
/// default hiding it.
pub fn discover(opts: &ClusterOptions, env: &Environment) -> ClusterAccess {
    if let Some(path) = &opts.kubeconfig {
        return ClusterAccess::Kubeconfig(KubeconfigFiles::Flag(path.clone()));
    }
    if let Some(value) = &env.kubeconfig {
        let paths: Vec<PathBuf> = std::env::split_paths(value)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
        if !paths.is_empty() {
            return ClusterAccess::Kubeconfig(KubeconfigFiles::EnvVar(paths));
        }
    }
    let default_path = env.home.as_ref().map(|h| h.join(".kube").join("config"));
    if let Some(path) = default_path.as_ref().filter(|p| p.is_file()) {
        return ClusterAccess::Kubeconfig(KubeconfigFiles::Default(path.clone()));
    }
    if env.in_cluster {
        return ClusterAccess::InCluster;
    }
    ClusterAccess::Unconfigured { default_path }
}

/// The API server that was (or would have been) asked; its `Display` goes into messages.
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

/// Turns `access` into a client configuration bounded by `opts.timeout`, and says which server it
/// names.
pub async fn client_config(
    opts: &ClusterOptions,
    access: &ClusterAccess,
) -> Result<(Config, Endpoint), ClusterError> {
    let (mut config, context) = match access {
        ClusterAccess::Kubeconfig(files) => {
            let kubeconfig = read_kubeconfig(files)?;
            let (config, context) =
                from_kubeconfig(kubeconfig, opts.context.as_deref(), files).await?;
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

/// Reads `files`; for `$KUBECONFIG`, the existing ones merged in order.
fn read_kubeconfig(files: &KubeconfigFiles) -> Result<Kubeconfig, ClusterError> {
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
    match files {
        KubeconfigFiles::Flag(path) | KubeconfigFiles::Default(path) => read(path),
        KubeconfigFiles::EnvVar(paths) => {
            let existing: Vec<&PathBuf> = paths.iter().filter(|p| p.exists()).collect();
            if existing.is_empty() {
                return Err(ClusterError::KubeconfigEnvMissing {
                    value: std::env::join_paths(paths).unwrap_or_default(),
                });
            }
            existing
                .into_iter()
                .try_fold(Kubeconfig::default(), |merged, path| {
                    merged
                        .merge(read(path)?)
                        .map_err(|source| ClusterError::KubeconfigInvalid {
                            kubeconfig: files.to_string(),
                            source,
                        })
                })
        }
    }
}

/// The client configuration of `flag` (`--context`), else of the `current-context`, as `kube`
/// resolves it; with the context's name, which `kube` does not keep.
///
/// `kube` reports a missing or unknown context without naming the contexts there are; the
/// errors here list them, so the user can pick one.
async fn from_kubeconfig(
    kubeconfig: Kubeconfig,
    flag: Option<&str>,
    files: &KubeconfigFiles,
) -> Result<(Config, String), ClusterError> {
    let available: Vec<String> = kubeconfig.contexts.iter().map(|c| c.name.clone()).collect();
    let context = flag
        .map(str::to_owned)
        .or_else(|| kubeconfig.current_context.clone())
        .unwrap_or_default();
    let options = KubeConfigOptions {
        context: flag.map(str::to_owned),
        ..KubeConfigOptions::default()
    };
    match Config::from_custom_kubeconfig(kubeconfig, &options).await {
        Ok(config) => Ok((config, context)),
        Err(KubeconfigError::CurrentContextNotSet) => Err(ClusterError::NoCurrentContext {
            kubeconfig: files.to_string(),
            available,
        }),
        Err(KubeconfigError::LoadContext(name)) if name.is_empty() => {
            Err(ClusterError::NoCurrentContext {
                kubeconfig: files.to_string(),
                available,
            })
        }
        Err(KubeconfigError::LoadContext(name)) if !available.contains(&name) => {
            Err(ClusterError::UnknownContext {
                context: name,
                kubeconfig: files.to_string(),
                available,
            })
        }
        Err(source) => Err(ClusterError::ContextInvalid {
            context,
            kubeconfig: files.to_string(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_kubeconfig(home: &Path) -> PathBuf {
        let path = home.join(".kube").join("config");
        std::fs::create_dir_all(home.join(".kube")).unwrap();
        std::fs::write(&path, "").unwrap();
        path
    }

    #[test]
    fn kubeconfig_flag_wins_even_if_missing() {
        let opts = ClusterOptions {
            kubeconfig: Some("/nonexistent/kubeconfig".into()),
            ..ClusterOptions::default()
        };
        let home = tempfile::tempdir().unwrap();
        with_kubeconfig(home.path());
        let env = Environment {
            kubeconfig: Some("/other".into()),
            home: Some(home.path().to_owned()),
            in_cluster: true,
        };
        assert_eq!(
            discover(&opts, &env),
            ClusterAccess::Kubeconfig(KubeconfigFiles::Flag("/nonexistent/kubeconfig".into()))
        );
    }

    #[test]
    fn kubeconfig_env_var_is_a_path_list_without_empty_entries() {
        let env = Environment {
            kubeconfig: Some("/a/config::/b/config".into()),
            ..Environment::default()
        };
        assert_eq!(
            discover(&ClusterOptions::default(), &env),
            ClusterAccess::Kubeconfig(KubeconfigFiles::EnvVar(vec![
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
    fn default_kubeconfig_beats_in_cluster() {
        let home = tempfile::tempdir().unwrap();
        let path = with_kubeconfig(home.path());
        let env = Environment {
            home: Some(home.path().to_owned()),
            in_cluster: true,
            ..Environment::default()
        };
        assert_eq!(
            discover(&ClusterOptions::default(), &env),
            ClusterAccess::Kubeconfig(KubeconfigFiles::Default(path))
        );
    }
}
