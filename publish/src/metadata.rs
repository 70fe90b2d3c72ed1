//! The policy metadata: as `metadata.yml` says it and as the annotated module embeds it (the
//! `io.kubewarden.metadata` section kwctl reads), and the OCI manifest annotations made from it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::wasm::{self, METADATA_SECTION, WasmError};

/// Annotation holding the policy's title (its ArtifactHub package name).
pub const TITLE: &str = "io.kubewarden.policy.title";
/// Annotation holding the policy's semver version, without a leading `v`.
pub const VERSION: &str = "io.kubewarden.policy.version";
/// Annotation holding the one-paragraph description.
pub const DESCRIPTION: &str = "io.kubewarden.policy.description";
/// Annotation holding the authors.
pub const AUTHOR: &str = "io.kubewarden.policy.author";
/// Annotation holding the home page.
pub const URL: &str = "io.kubewarden.policy.url";
/// Annotation holding the source repository.
pub const SOURCE: &str = "io.kubewarden.policy.source";
/// Annotation holding the SPDX license.
pub const LICENSE: &str = "io.kubewarden.policy.license";
/// Annotation holding the registry repository the policy is published to (no tag).
pub const OCI_URL: &str = "io.kubewarden.policy.ociUrl";
/// Annotation holding the README, added by `make annotated-policy.wasm` (`kwctl annotate -u`).
pub const USAGE: &str = "io.kubewarden.policy.usage";

/// Why the metadata cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// The module could not be walked.
    #[error(transparent)]
    Wasm(#[from] WasmError),
    /// The module carries no metadata: it was not annotated.
    #[error(
        "the module has no `{METADATA_SECTION}` section: publish the annotated module (make annotated-policy.wasm)"
    )]
    NotAnnotated,
    /// The section or file is not metadata.
    #[error("the policy metadata is not valid")]
    Invalid(#[source] serde_json::Error),
    /// `metadata.yml` is not YAML of the expected shape.
    #[error("metadata.yml is not valid policy metadata")]
    Yaml(#[source] serde_yaml::Error),
    /// A required annotation is absent.
    #[error("the policy metadata lacks the annotation `{0}`")]
    MissingAnnotation(&'static str),
}

/// A context-aware resource the policy reads (`apiVersion` and `kind`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextAwareResource {
    /// e.g. `v1`.
    pub api_version: String,
    /// e.g. `ConfigMap`.
    pub kind: String,
}

/// The fields of Kubewarden's policy metadata this tool shows or publishes (policy-evaluator's
/// `Metadata`, camelCase; other keys are ignored, as there).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyMetadata {
    /// `v1` once annotated.
    #[serde(default)]
    pub protocol_version: Option<String>,
    /// The admission rules, as written.
    pub rules: Vec<Value>,
    /// Whether the policy mutates.
    pub mutating: bool,
    /// Whether the audit scanner runs it (Kubewarden's default: true).
    #[serde(default = "yes")]
    pub background_audit: bool,
    /// `kubewarden-wapc` unless said otherwise.
    #[serde(default = "wapc")]
    pub execution_mode: String,
    /// The resources read through Kubewarden's context-aware capabilities.
    #[serde(default)]
    pub context_aware_resources: Vec<ContextAwareResource>,
    /// Host capabilities the policy says it calls.
    #[serde(default)]
    pub host_capabilities: Option<Vec<String>>,
    /// `io.kubewarden.*`, `io.artifacthub.*` and other annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

fn yes() -> bool {
    true
}

fn wapc() -> String {
    "kubewarden-wapc".into()
}

impl PolicyMetadata {
    /// The metadata embedded in an annotated module.
    pub fn from_module(module: &[u8]) -> Result<Self, MetadataError> {
        let section =
            wasm::custom_section(module, METADATA_SECTION)?.ok_or(MetadataError::NotAnnotated)?;
        serde_json::from_slice(section).map_err(MetadataError::Invalid)
    }

    /// The metadata as `metadata.yml` writes it.
    pub fn from_yaml(yaml: &str) -> Result<Self, MetadataError> {
        serde_yaml::from_str(yaml).map_err(MetadataError::Yaml)
    }

    /// A required annotation's value.
    pub fn annotation(&self, key: &'static str) -> Result<&str, MetadataError> {
        self.annotations
            .get(key)
            .map(String::as_str)
            .ok_or(MetadataError::MissingAnnotation(key))
    }

    /// The policy's version (`io.kubewarden.policy.version`), e.g. `0.1.0`.
    pub fn version(&self) -> Result<&str, MetadataError> {
        self.annotation(VERSION)
    }

    /// The OCI manifest annotations of the published artifact: what `kwctl push` writes (every
    /// single-line policy annotation; the README in `usage` is multi-line and stays in the module)
    /// plus the standard `org.opencontainers.image.*` keys mapped from them.
    pub fn manifest_annotations(&self) -> BTreeMap<String, String> {
        let mut out: BTreeMap<String, String> = self
            .annotations
            .iter()
            .filter(|(_, value)| !value.contains('\n'))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        let standard = [
            ("org.opencontainers.image.title", TITLE),
            ("org.opencontainers.image.description", DESCRIPTION),
            ("org.opencontainers.image.source", SOURCE),
            ("org.opencontainers.image.url", URL),
            ("org.opencontainers.image.licenses", LICENSE),
            ("org.opencontainers.image.version", VERSION),
            ("org.opencontainers.image.authors", AUTHOR),
        ];
        for (oci, kubewarden) in standard {
            if let Some(value) = self
                .annotations
                .get(kubewarden)
                .filter(|v| !v.contains('\n'))
            {
                out.insert(oci.to_string(), value.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = r#"
rules:
  - apiGroups: [""]
    apiVersions: ["v1"]
    resources: ["pods"]
    operations: ["CREATE"]
mutating: true
contextAwareResources:
  - apiVersion: v1
    kind: ConfigMap
annotations:
  io.kubewarden.policy.title: sidecar-injector
  io.kubewarden.policy.version: 0.1.0
  io.kubewarden.policy.source: https://example.com/src
  io.kubewarden.policy.license: Apache-2.0
  io.kubewarden.policy.usage: "line one\nline two"
"#;

    #[test]
    fn yaml_takes_kubewardens_defaults() {
        let metadata = PolicyMetadata::from_yaml(YAML).unwrap();
        assert!(metadata.background_audit);
        assert_eq!(metadata.execution_mode, "kubewarden-wapc");
        assert_eq!(metadata.version().unwrap(), "0.1.0");
        assert_eq!(metadata.context_aware_resources[0].kind, "ConfigMap");
    }

    #[test]
    fn manifest_annotations_drop_multi_line_values_and_add_oci_keys() {
        let annotations = PolicyMetadata::from_yaml(YAML)
            .unwrap()
            .manifest_annotations();
        assert!(!annotations.contains_key(USAGE));
        assert_eq!(
            annotations["org.opencontainers.image.title"],
            "sidecar-injector"
        );
        assert_eq!(annotations["org.opencontainers.image.version"], "0.1.0");
        assert_eq!(
            annotations["org.opencontainers.image.licenses"],
            "Apache-2.0"
        );
        assert_eq!(
            annotations["org.opencontainers.image.source"],
            "https://example.com/src"
        );
        assert!(!annotations.contains_key("org.opencontainers.image.url"));
    }

    #[test]
    fn a_module_without_the_section_is_not_annotated() {
        let err = PolicyMetadata::from_module(b"\0asm\x01\0\0\0").unwrap_err();
        assert!(
            err.to_string().contains("make annotated-policy.wasm"),
            "{err}"
        );
    }
}
