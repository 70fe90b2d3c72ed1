//! Key-based signatures as cosign writes and Kubewarden verifies them, through the `sigstore`
//! crate (the one policy-server uses): a simple-signing payload naming the manifest digest,
//! signed with the key, pushed as a layer of the `sha256-<digest>.sig` tag with the signature in
//! the `dev.cosignproject.cosign/signature` annotation.
//!
//! # Differences from cosign
//! Keyless signing (Fulcio certificates, Rekor entries) needs the public Sigstore services and is
//! out of scope. Signing again replaces the `.sig` manifest with the new signature instead of
//! adding a layer to it; since ECDSA signatures here are deterministic (RFC 6979), signing the
//! same digest with the same key twice writes the same manifest.

use std::collections::BTreeMap;

use sigstore::cosign::constraint::{AnnotationMarker, PrivateKeySigner};
use sigstore::cosign::verification_constraint::{
    AnnotationVerifier, PublicKeyVerifier, VerificationConstraint,
};
use sigstore::cosign::{Constraint as _, CosignCapabilities as _, SignatureLayer};
use sigstore::crypto::SigningScheme;
use sigstore::crypto::signing_key::SigStoreKeyPair;
use sigstore::crypto::signing_key::ecdsa::{ECDSAKeys, EllipticCurve};
use sigstore::registry::{Auth, ClientConfig, ClientProtocol, OciReference};
use zeroize::Zeroizing;

use crate::registry::{RegistryError, credentials_for};

/// Environment variable holding the private key's password, as cosign reads it.
pub const PASSWORD_ENV: &str = "COSIGN_PASSWORD";

/// Why signing or verifying failed.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// The reference is not one sigstore can use.
    #[error("invalid reference `{0}`")]
    Reference(String, #[source] sigstore::errors::SigstoreError),
    /// The private key cannot be read with the password given.
    #[error("cannot read the private key (wrong {PASSWORD_ENV}, or not a cosign/sigstore key)")]
    PrivateKey(#[source] sigstore::errors::SigstoreError),
    /// The key is of a kind this tool does not sign with.
    #[error("unsupported key: {0} (cosign's default, ECDSA P-256, and Ed25519 are)")]
    KeyKind(String),
    /// The public key cannot be read.
    #[error("cannot read the public key (a PEM `PUBLIC KEY` is expected)")]
    PublicKey(#[source] sigstore::errors::SigstoreError),
    /// Credentials could not be found.
    #[error(transparent)]
    Credentials(#[from] RegistryError),
    /// The registry or the network refused.
    #[error("{operation} {reference}")]
    Sigstore {
        /// What was being done.
        operation: &'static str,
        /// The reference.
        reference: String,
        /// sigstore's error.
        #[source]
        source: sigstore::errors::SigstoreError,
    },
    /// No signature satisfies the key (and annotations).
    #[error("no signature of {reference} verifies with the given key{annotations}")]
    NotVerified {
        /// The reference.
        reference: String,
        /// ` and annotations k=v, …` when some were required.
        annotations: String,
    },
}

/// Where a signature went.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The digest that was signed, `sha256:…`.
    pub manifest_digest: String,
    /// The signature's tag reference, `host/path:sha256-<hex>.sig`.
    pub signature_ref: String,
}

/// What a verification established.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The digest whose signature verified, `sha256:…`.
    pub manifest_digest: String,
    /// How many signature layers were found.
    pub signatures: usize,
}

/// A new ECDSA P-256 key pair (cosign's `generate-key-pair`): the private key encrypted with
/// `password` as cosign encrypts it (scrypt and NaCl secretbox), and the public key, both PEM.
pub fn generate_key_pair(password: &[u8]) -> Result<(Zeroizing<String>, String), SigningError> {
    let keys = ECDSAKeys::new(EllipticCurve::P256).map_err(SigningError::PrivateKey)?;
    let pair = SigStoreKeyPair::ECDSA(keys);
    let private = pair
        .private_key_to_encrypted_pem(password)
        .map_err(SigningError::PrivateKey)?;
    let public = pair.public_key_to_pem().map_err(SigningError::PublicKey)?;
    Ok((private, public))
}

/// Signs the manifest `reference` names (a tag is resolved to its digest first) with the PEM
/// private key, adding `annotations` to the signed payload, and pushes the signature.
pub async fn sign(
    reference: &str,
    private_key_pem: &[u8],
    password: &[u8],
    annotations: BTreeMap<String, String>,
    insecure: &[String],
) -> Result<Signed, SigningError> {
    let image = oci_reference(reference)?;
    let pair = if std::str::from_utf8(private_key_pem).is_ok_and(|pem| pem.contains("ENCRYPTED")) {
        SigStoreKeyPair::from_encrypted_pem(private_key_pem, password)
    } else {
        SigStoreKeyPair::from_pem(private_key_pem)
    }
    .map_err(SigningError::PrivateKey)?;
    let scheme = signing_scheme(&pair)?;
    let signer = pair
        .to_sigstore_signer(&scheme)
        .map_err(SigningError::PrivateKey)?;

    let auth = auth_for(&image)?;
    let mut client = client(insecure, reference)?;
    let failed = |operation| sigstore_error(operation, reference);
    let (signature_image, digest) = client
        .triangulate(&image, &auth)
        .await
        .map_err(failed("cannot resolve"))?;
    let mut layer = SignatureLayer::new_unsigned(&image, &digest).map_err(failed("cannot sign"))?;
    if !annotations.is_empty() {
        AnnotationMarker::new(annotations.into_iter().collect())
            .add_constraint(&mut layer)
            .map_err(failed("cannot annotate the signature of"))?;
    }
    PrivateKeySigner::new_with_signer(signer)
        .add_constraint(&mut layer)
        .map_err(failed("cannot sign"))?;
    client
        .push_signature(None, &auth, &signature_image, vec![layer])
        .await
        .map_err(failed("cannot push the signature of"))?;
    Ok(Signed {
        manifest_digest: digest,
        signature_ref: signature_image.whole(),
    })
}

/// Verifies that a signature of the manifest `reference` names verifies with the PEM public key
/// and carries every one of `annotations`.
pub async fn verify(
    reference: &str,
    public_key_pem: &[u8],
    annotations: BTreeMap<String, String>,
    insecure: &[String],
) -> Result<Verified, SigningError> {
    let image = oci_reference(reference)?;
    let key = PublicKeyVerifier::try_from(public_key_pem).map_err(SigningError::PublicKey)?;
    let auth = auth_for(&image)?;
    let mut client = client(insecure, reference)?;
    let failed = |operation| sigstore_error(operation, reference);
    let (_, digest) = client
        .triangulate(&image, &auth)
        .await
        .map_err(failed("cannot resolve"))?;
    let layers = client
        .trusted_signature_layers(&auth, &image)
        .await
        .map_err(failed("cannot read the signatures of"))?;
    let described = annotations
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut constraints: Vec<Box<dyn VerificationConstraint>> = vec![Box::new(key)];
    if !annotations.is_empty() {
        constraints.push(Box::new(AnnotationVerifier { annotations }));
    }
    sigstore::cosign::verify_constraints(&layers, constraints.iter()).map_err(|_| {
        SigningError::NotVerified {
            reference: reference.to_string(),
            annotations: if described.is_empty() {
                String::new()
            } else {
                format!(" and annotations {described}")
            },
        }
    })?;
    Ok(Verified {
        manifest_digest: digest,
        signatures: layers.len(),
    })
}

/// The signing scheme of a key pair, as cosign picks it.
fn signing_scheme(pair: &SigStoreKeyPair) -> Result<SigningScheme, SigningError> {
    match pair {
        SigStoreKeyPair::ECDSA(ECDSAKeys::P256(_)) => Ok(SigningScheme::ECDSA_P256_SHA256_ASN1),
        SigStoreKeyPair::ED25519(_) => Ok(SigningScheme::ED25519),
        other => Err(SigningError::KeyKind(other.to_string())),
    }
}

fn oci_reference(reference: &str) -> Result<OciReference, SigningError> {
    let bare = reference.strip_prefix("registry://").unwrap_or(reference);
    bare.parse()
        .map_err(|e| SigningError::Reference(reference.to_string(), e))
}

fn auth_for(image: &OciReference) -> Result<Auth, SigningError> {
    Ok(match credentials_for(image.resolve_registry())? {
        oci_client::secrets::RegistryAuth::Basic(user, password) => Auth::Basic(user, password),
        oci_client::secrets::RegistryAuth::Bearer(token) => Auth::Bearer(token),
        oci_client::secrets::RegistryAuth::Anonymous => Auth::Anonymous,
    })
}

fn client(insecure: &[String], reference: &str) -> Result<sigstore::cosign::Client, SigningError> {
    let config = ClientConfig {
        protocol: if insecure.is_empty() {
            ClientProtocol::Https
        } else {
            ClientProtocol::HttpsExcept(insecure.to_vec())
        },
        ..ClientConfig::default()
    };
    sigstore::cosign::ClientBuilder::default()
        .with_oci_client_config(config)
        .build()
        .map_err(|source| SigningError::Sigstore {
            operation: "cannot make a registry client for",
            reference: reference.to_string(),
            source,
        })
}

/// The error of sigstore `operation` on `reference`, for `map_err`.
fn sigstore_error<'r>(
    operation: &'static str,
    reference: &'r str,
) -> impl FnOnce(sigstore::errors::SigstoreError) -> SigningError + 'r {
    move |source| SigningError::Sigstore {
        operation,
        reference: reference.to_string(),
        source,
    }
}
