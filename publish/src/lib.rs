//! Publishing the policy: the library behind the `policy-publish` command.
//!
//! | module | holds |
//! |---|---|
//! | [`wasm`] | the custom-section reader that finds `io.kubewarden.metadata` in a module |
//! | [`metadata`] | the policy metadata (metadata.yml, or embedded) and the manifest annotations made from it |
//! | [`reference`] | registry references, the release-tag rule, the registries reached over plain HTTP |
//! | [`registry`] | push and pull of the OCI artifact Kubewarden uses (oci-client), and Docker's credentials |
//! | [`signing`] | cosign-compatible key-based signatures (sigstore): generate a key pair, sign, verify |
//! | [`inspect`] | the report `inspect` prints, in `kwctl inspect`'s sections |
//! | [`artifacthub`] | `artifacthub-pkg.yml`, as `kwctl scaffold artifacthub` writes it |
//!
//! None of this is in the policy module: this crate is a workspace member of its own so that
//! oci-client, sigstore and tokio are only built for the host.

pub mod artifacthub;
pub mod inspect;
pub mod metadata;
pub mod reference;
pub mod registry;
pub mod signing;
pub mod wasm;

pub use metadata::PolicyMetadata;
pub use registry::{Pulled, Pushed, Registry};
