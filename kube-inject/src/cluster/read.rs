//! Reading the ConfigMap keys from the API server: two `GET`s, mesh config first as istioctl
//! does, all within one time bound, each failure sorted into the [`ClusterError`] the user can act
//! on.

use std::fmt;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, Client};

use super::kubeconfig::{self, ClusterAccess, Endpoint};
use super::{ClusterError, ClusterOptions, ConfigKind};

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

/// What [`read_from_cluster`] read, and from which server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterConfig {
    /// Key `config` of the injector ConfigMap, if it was asked for.
    pub injector: Option<ConfigMapValue>,
    /// Key `mesh` of the mesh ConfigMap, if it was asked for.
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

/// Reads the ConfigMap keys of `kinds`: the mesh config first, then the injection config, as
/// istioctl does. Blocking: runs its own current-thread tokio runtime, so it must not be called
/// from within a runtime.
///
/// `access` comes from [`kubeconfig::discover`]. With no `kinds` it only loads the client
/// configuration (to fill [`ClusterConfig::endpoint`]) and contacts no server.
pub fn read_from_cluster(
    opts: &ClusterOptions,
    access: &ClusterAccess,
    kinds: &[ConfigKind],
) -> Result<ClusterConfig, ClusterError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| ClusterError::Runtime { source })?;
    runtime.block_on(read_async(opts, access, kinds))
}

async fn read_async(
    opts: &ClusterOptions,
    access: &ClusterAccess,
    kinds: &[ConfigKind],
) -> Result<ClusterConfig, ClusterError> {
    let (config, endpoint) = kubeconfig::client_config(opts, access).await?;
    let mut result = ClusterConfig {
        injector: None,
        mesh: None,
        endpoint,
    };
    if kinds.is_empty() {
        return Ok(result);
    }
    let client = Client::try_from(config).map_err(|source| ClusterError::Client {
        endpoint: result.endpoint.clone(),
        source: Box::new(source),
    })?;
    let api: Api<ConfigMap> = Api::namespaced(client, &opts.istio_namespace);
    let endpoint = &result.endpoint;
    let reads = async {
        let (mut injector, mut mesh) = (None, None);
        if kinds.contains(&ConfigKind::Mesh) {
            mesh = Some(read_value(&api, opts, ConfigKind::Mesh, endpoint).await?);
        }
        if kinds.contains(&ConfigKind::Injector) {
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

/// Reads key `kind.key()` of the ConfigMap for `kind`; an absent or blank key is an error, since
/// there would be nothing to inject.
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

/// Whether `error`'s chain holds a hyper error: an HTTP exchange that started and broke off.
fn broke_off(error: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(error), |e| e.source()).any(|e| e.is::<hyper::Error>())
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
        kube::Error::HyperError(source) => ClusterError::Interrupted {
            namespace,
            name,
            endpoint,
            source: Box::new(source),
        },
        // A failed connection carries an I/O or TLS error; a hyper error in the chain means the
        // exchange was under way (the response's head or body broke off), so the server is up.
        kube::Error::Service(source) if broke_off(source.as_ref()) => ClusterError::Interrupted {
            namespace,
            name,
            endpoint,
            source,
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

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::cluster::kubeconfig::KubeconfigFiles;

    /// The end-to-end tests cannot wait out the 10 s default; this one shortens the bound.
    #[test]
    fn a_server_that_never_answers_times_out_within_the_bound() {
        // Connections are queued by the kernel and never accepted: requests get no answer.
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let server = format!("http://{}", silent.local_addr().unwrap());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubeconfig");
        let kubeconfig = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: c\n  cluster:\n    \
             server: {server}\ncontexts:\n- name: c\n  context:\n    cluster: c\n"
        );
        std::fs::write(&path, kubeconfig).unwrap();
        let opts = ClusterOptions {
            timeout: Duration::from_millis(300),
            ..ClusterOptions::default()
        };
        let access = ClusterAccess::Kubeconfig(KubeconfigFiles::Flag(path));
        let start = Instant::now();
        let err = read_from_cluster(&opts, &access, &[ConfigKind::Mesh]).unwrap_err();
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
}
