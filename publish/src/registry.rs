//! Pushing the policy as the OCI artifact Kubewarden's tooling pushes and policy-server pulls,
//! pulling it back with its checks, and the credentials and transport users expect.
//!
//! The artifact (kwctl's `push`, policy-fetcher's `do_push`): an image manifest whose config is
//! `{}` of media type `application/vnd.wasm.config.v1+json` and whose one layer is the module,
//! `application/vnd.wasm.content.layer.v1+wasm`; the manifest carries the metadata's single-line
//! annotations. Nothing in it depends on the time, so pushing the same module twice gives the
//! same manifest digest.

use std::collections::BTreeMap;
use std::path::PathBuf;

use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::manifest::{OciImageManifest, WASM_CONFIG_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use sha2::{Digest as _, Sha256};

/// The config blob of a policy artifact.
pub const CONFIG_DATA: &[u8] = b"{}";

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// `~/.docker/config.json` (or `$DOCKER_CONFIG/config.json`) could not be used.
    #[error("cannot read the credentials for {registry} from {config}: {reason}")]
    Credentials {
        /// The registry whose credentials were looked up.
        registry: String,
        /// The config file.
        config: String,
        /// docker_credential's reason, on one line.
        reason: String,
    },
    /// The registry or the network refused.
    #[error("{operation} {reference}{hint}")]
    Oci {
        /// `push to`, `pull of`...
        operation: &'static str,
        /// The reference.
        reference: String,
        /// What to try, when there is an obvious thing (empty or starting with ` (`).
        hint: String,
        /// oci-client's error.
        #[source]
        source: oci_client::errors::OciDistributionError,
    },
    /// The pulled manifest is not a policy's.
    #[error("{reference} is not a Kubewarden policy artifact: {reason}")]
    NotAPolicy {
        /// The reference.
        reference: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Where credentials come from: Docker's config file, as docker, cosign and kwctl read it.
pub fn docker_config_file() -> Option<PathBuf> {
    std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker")))
        .map(|dir| dir.join("config.json"))
}

/// The credentials for `registry` (`host[:port]`) in Docker's config file (credential helpers
/// included); anonymous when there is no file or no entry for it.
pub fn credentials_for(registry: &str) -> Result<RegistryAuth, RegistryError> {
    let Some(file) = docker_config_file().filter(|f| f.exists()) else {
        return Ok(RegistryAuth::Anonymous);
    };
    let server = if registry == "docker.io" || registry == "index.docker.io" {
        "https://index.docker.io/v1/"
    } else {
        registry
    };
    let failed = |reason: String| RegistryError::Credentials {
        registry: registry.to_string(),
        config: file.display().to_string(),
        reason: reason.split_whitespace().collect::<Vec<_>>().join(" "),
    };
    use docker_credential::{CredentialRetrievalError as E, DockerCredential};
    match docker_credential::get_credential(server) {
        Ok(DockerCredential::UsernamePassword(user, password)) => {
            Ok(RegistryAuth::Basic(user, password))
        }
        Ok(DockerCredential::IdentityToken(_)) => Err(failed(
            "identity tokens are not supported: log in with a user name and password".into(),
        )),
        Err(E::NoCredentialConfigured | E::ConfigNotFound) => Ok(RegistryAuth::Anonymous),
        Err(e) => Err(failed(e.to_string())),
    }
}

/// What a push did.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// `host/path@sha256:…`: the reference that always names these bytes.
    pub immutable_ref: String,
    /// The manifest digest, `sha256:…`.
    pub manifest_digest: String,
    /// The module layer's digest, `sha256:…`.
    pub layer_digest: String,
    /// The module's size in bytes.
    pub size: usize,
}

/// A policy pulled back and checked.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The manifest digest, `sha256:…`.
    pub manifest_digest: String,
    /// The manifest as the registry serves it.
    pub manifest: OciImageManifest,
    /// The module's bytes, checked against the layer's digest and size.
    pub module: Vec<u8>,
}

/// An OCI client with the transport and credentials of one command.
pub struct Registry {
    client: Client,
    insecure: Vec<String>,
}

impl Registry {
    /// A client that speaks HTTPS except to the `insecure` registries (`host:port`), which it
    /// reaches over plain HTTP.
    pub fn new(insecure: &[String]) -> Self {
        Self {
            client: Client::new(client_config(insecure)),
            insecure: insecure.to_vec(),
        }
    }

    /// The error of an oci-client call, with a hint when a registry reached over HTTPS could not
    /// be connected to (it may speak plain HTTP).
    fn oci_error(
        &self,
        operation: &'static str,
        reference: &Reference,
        source: oci_client::errors::OciDistributionError,
    ) -> RegistryError {
        let registry = reference.resolve_registry();
        let connect = matches!(
            &source,
            oci_client::errors::OciDistributionError::RequestError(e) if e.is_connect()
        );
        let hint = if connect && !self.insecure.iter().any(|h| h == registry) {
            format!(
                " (over HTTPS; a plain-HTTP registry must be named in $INSECURE_REGISTRIES or --insecure {registry})"
            )
        } else {
            String::new()
        };
        RegistryError::Oci {
            operation,
            reference: reference.whole(),
            hint,
            source,
        }
    }

    /// Pushes `module` to `reference` (a tag) with the manifest `annotations`, then asks the
    /// registry for the manifest's digest.
    pub async fn push(
        &self,
        reference: &Reference,
        module: &[u8],
        annotations: BTreeMap<String, String>,
    ) -> Result<Pushed, RegistryError> {
        let auth = credentials_for(reference.resolve_registry())?;
        let oci = |source| self.oci_error("push to", reference, source);
        let layers = [ImageLayer::new(
            module.to_vec(),
            WASM_LAYER_MEDIA_TYPE.to_string(),
            None,
        )];
        let config = Config::new(CONFIG_DATA, WASM_CONFIG_MEDIA_TYPE.to_string(), None);
        let manifest = OciImageManifest::build(&layers, &config, Some(annotations));
        let layer_digest = layers[0].sha256_digest();
        self.client
            .push(reference, &layers, config, &auth, Some(manifest))
            .await
            .map_err(oci)?;
        let manifest_digest = self
            .client
            .fetch_manifest_digest(reference, &auth)
            .await
            .map_err(oci)?;
        Ok(Pushed {
            immutable_ref: immutable_reference(reference, &manifest_digest),
            manifest_digest,
            layer_digest,
            size: module.len(),
        })
    }

    /// Pulls the policy at `reference` and checks it is one: the config's media type, exactly
    /// one layer of the wasm media type, and the layer's bytes against its digest and size.
    pub async fn pull(&self, reference: &Reference) -> Result<Pulled, RegistryError> {
        let auth = credentials_for(reference.resolve_registry())?;
        let oci = |source| self.oci_error("pull of", reference, source);
        let not_a_policy = |reason: String| RegistryError::NotAPolicy {
            reference: reference.whole(),
            reason,
        };
        let image = self
            .client
            .pull(reference, &auth, vec![WASM_LAYER_MEDIA_TYPE])
            .await
            .map_err(oci)?;
        let manifest = image
            .manifest
            .ok_or_else(|| not_a_policy("the registry sent no image manifest".into()))?;
        let manifest_digest = image
            .digest
            .ok_or_else(|| not_a_policy("the registry sent no manifest digest".into()))?;
        if manifest.config.media_type != WASM_CONFIG_MEDIA_TYPE {
            return Err(not_a_policy(format!(
                "config media type `{}`, expected `{WASM_CONFIG_MEDIA_TYPE}`",
                manifest.config.media_type
            )));
        }
        let (descriptor, layer) = match (manifest.layers.as_slice(), image.layers.as_slice()) {
            ([descriptor], [layer]) => (descriptor, layer),
            (layers, _) => {
                return Err(not_a_policy(format!(
                    "{} layers, expected one",
                    layers.len()
                )));
            }
        };
        let digest = sha256_digest(&layer.data);
        if descriptor.digest != digest {
            return Err(not_a_policy(format!(
                "the layer's bytes hash to {digest}, the manifest says {}",
                descriptor.digest
            )));
        }
        if usize::try_from(descriptor.size).ok() != Some(layer.data.len()) {
            return Err(not_a_policy(format!(
                "the layer is {} bytes, the manifest says {}",
                layer.data.len(),
                descriptor.size
            )));
        }
        Ok(Pulled {
            manifest_digest,
            manifest,
            module: layer.data.to_vec(),
        })
    }
}

/// oci-client's configuration for the given insecure registries.
pub fn client_config(insecure: &[String]) -> ClientConfig {
    ClientConfig {
        protocol: if insecure.is_empty() {
            ClientProtocol::Https
        } else {
            ClientProtocol::HttpsExcept(insecure.to_vec())
        },
        ..ClientConfig::default()
    }
}

/// `host/path@sha256:…` for a reference and a manifest digest.
pub fn immutable_reference(reference: &Reference, digest: &str) -> String {
    format!(
        "{}/{}@{digest}",
        reference.registry(),
        reference.repository()
    )
}

/// `sha256:<hex>` of some bytes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_immutable_reference_drops_the_tag() {
        let r: Reference = "127.0.0.1:5000/policies/p:v0.1.0".parse().unwrap();
        assert_eq!(
            immutable_reference(&r, "sha256:ab"),
            "127.0.0.1:5000/policies/p@sha256:ab"
        );
    }

    #[test]
    fn digests_are_sha256_hex() {
        assert_eq!(
            sha256_digest(b"{}"),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }
}
