//! `kwctl annotate` without kwctl: policy metadata in the `io.kubewarden.metadata` custom section.
//!
//! policy-server only runs modules whose `io.kubewarden.metadata` section holds
//! `protocolVersion: "v1"`. kwctl parses `metadata.yml` into policy-evaluator's `Metadata`
//! (camelCase; unknown keys dropped; defaults filled), sets `protocolVersion` from the module's
//! `protocol_version`, adds the usage annotation, validates, and writes the section as compact
//! JSON. [`metadata_from_yaml`] and [`annotate`] do the same; the `annotate-policy` binary also
//! asks the module for its protocol version first.
//!
//! # Differences from kwctl
//! Rule validation checks shape (non-empty lists, known operations), not Kubernetes
//! resource/subresource wildcard rules; no `io.kubewarden.kwctl` annotation is added; the
//! module is not re-emitted through walrus, only the section is replaced or appended.

use std::path::Path;

use anyhow::Context as _;
use serde_json::{Map, Value, json};
use wasm_encoder::{CustomSection, Section as _};
use wasmtime::wasmparser::{Encoding, Parser, Payload};

/// Name of the custom section policy-server reads.
pub const METADATA_SECTION: &str = "io.kubewarden.metadata";
/// Annotation that carries the policy's README (`kwctl annotate -u`).
pub const USAGE_ANNOTATION: &str = "io.kubewarden.policy.usage";

/// Why `metadata.yml` is not valid policy metadata.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// Not YAML, or not representable as JSON.
    #[error("metadata is not valid YAML")]
    Yaml(#[source] serde_yaml::Error),
    /// The document is not a mapping.
    #[error("metadata must be a mapping, got {0}")]
    NotAMapping(String),
    /// A required key is absent.
    #[error("metadata lacks required key `{0}`")]
    MissingKey(&'static str),
    /// A key has a value of the wrong kind or outside the accepted set.
    #[error("metadata key `{key}` must be {accepted}, got {value}")]
    InvalidValue {
        /// Key path, e.g. `rules[0].operations`.
        key: String,
        /// What is accepted.
        accepted: &'static str,
        /// What was found.
        value: String,
    },
}

/// Why a module cannot be annotated or read.
#[derive(Debug, thiserror::Error)]
pub enum AnnotateError {
    /// The bytes are not a WebAssembly binary.
    #[error("not a WebAssembly module")]
    Parse(#[source] wasmtime::wasmparser::BinaryReaderError),
    /// The binary is a component, not a core module.
    #[error("a component, not a core WebAssembly module")]
    NotAModule,
}

/// Parses `metadata.yml` the way kwctl does and returns the section's JSON: `protocolVersion`
/// set to `"v1"`, defaults filled (`backgroundAudit: true`, `executionMode: kubewarden-wapc`,
/// `policyType: kubernetes`, `contextAwareResources: []`), `usage` added as the
/// `io.kubewarden.policy.usage` annotation, unknown keys dropped, then validated.
pub fn metadata_from_yaml(yaml: &str, usage: Option<&str>) -> Result<Value, MetadataError> {
    let input: Value = serde_yaml::from_str(yaml).map_err(MetadataError::Yaml)?;
    let Value::Object(input) = input else {
        return Err(MetadataError::NotAMapping(input.to_string()));
    };
    let get = |key: &str| input.get(key).filter(|value| !value.is_null()).cloned();

    let rules = get("rules").ok_or(MetadataError::MissingKey("rules"))?;
    validate_rules(&rules)?;
    let mutating = get("mutating").ok_or(MetadataError::MissingKey("mutating"))?;
    expect_bool("mutating", &mutating)?;
    let background_audit = get("backgroundAudit").unwrap_or(json!(true));
    expect_bool("backgroundAudit", &background_audit)?;
    let execution_mode = get("executionMode").unwrap_or(json!("kubewarden-wapc"));
    expect_one_of(
        "executionMode",
        &execution_mode,
        &["kubewarden-wapc", "opa", "gatekeeper", "wasi"],
        "one of kubewarden-wapc, opa, gatekeeper, wasi",
    )?;
    let policy_type = get("policyType").unwrap_or(json!("kubernetes"));
    expect_one_of(
        "policyType",
        &policy_type,
        &["kubernetes", "raw"],
        "kubernetes or raw",
    )?;
    let context_aware = get("contextAwareResources").unwrap_or(json!([]));
    validate_context_aware(&context_aware)?;

    let mut annotations = match get("annotations") {
        None => Map::new(),
        Some(Value::Object(annotations)) => annotations,
        Some(other) => return Err(invalid("annotations", "a mapping of strings", &other)),
    };
    if let Some(usage) = usage {
        annotations.insert(USAGE_ANNOTATION.to_owned(), json!(usage));
    }
    for (key, value) in &annotations {
        if !value.is_string() {
            return Err(invalid(&format!("annotations.{key}"), "a string", value));
        }
    }

    let mut metadata = Map::new();
    metadata.insert("protocolVersion".into(), json!("v1"));
    metadata.insert("rules".into(), rules);
    metadata.insert("annotations".into(), Value::Object(annotations));
    metadata.insert("mutating".into(), mutating);
    metadata.insert("backgroundAudit".into(), background_audit);
    metadata.insert("contextAwareResources".into(), context_aware);
    if let Some(version) = get("minimumKubewardenVersion") {
        if !version.is_string() {
            return Err(invalid(
                "minimumKubewardenVersion",
                "a semver string",
                &version,
            ));
        }
        metadata.insert("minimumKubewardenVersion".into(), version);
    }
    metadata.insert("executionMode".into(), execution_mode);
    metadata.insert("policyType".into(), policy_type);
    if let Some(capabilities) = get("hostCapabilities") {
        let all_strings = capabilities
            .as_array()
            .is_some_and(|list| list.iter().all(Value::is_string));
        if !all_strings {
            return Err(invalid(
                "hostCapabilities",
                "a list of strings",
                &capabilities,
            ));
        }
        metadata.insert("hostCapabilities".into(), capabilities);
    }
    Ok(Value::Object(metadata))
}

fn invalid(key: &str, accepted: &'static str, value: &Value) -> MetadataError {
    MetadataError::InvalidValue {
        key: key.to_owned(),
        accepted,
        value: value.to_string(),
    }
}

fn expect_bool(key: &str, value: &Value) -> Result<(), MetadataError> {
    if value.is_boolean() {
        Ok(())
    } else {
        Err(invalid(key, "true or false", value))
    }
}

fn expect_one_of(
    key: &str,
    value: &Value,
    allowed: &[&str],
    accepted: &'static str,
) -> Result<(), MetadataError> {
    match value.as_str() {
        Some(text) if allowed.contains(&text) => Ok(()),
        _ => Err(invalid(key, accepted, value)),
    }
}

fn validate_rules(rules: &Value) -> Result<(), MetadataError> {
    let list = match rules.as_array() {
        Some(list) if !list.is_empty() => list,
        _ => return Err(invalid("rules", "a non-empty list", rules)),
    };
    for (index, rule) in list.iter().enumerate() {
        for key in ["apiGroups", "apiVersions", "resources", "operations"] {
            let path = format!("rules[{index}].{key}");
            let value = rule.get(key).unwrap_or(&Value::Null);
            let strings = value
                .as_array()
                .filter(|items| !items.is_empty() && items.iter().all(Value::is_string));
            let Some(items) = strings else {
                return Err(invalid(&path, "a non-empty list of strings", value));
            };
            if key == "operations" {
                let known = items
                    .iter()
                    .filter_map(Value::as_str)
                    .all(|op| matches!(op, "CREATE" | "UPDATE" | "DELETE" | "CONNECT" | "*"));
                let star_alone = !items.iter().any(|op| op == "*") || items.len() == 1;
                if !known || !star_alone {
                    return Err(invalid(
                        &path,
                        "CREATE, UPDATE, DELETE, CONNECT, or `*` alone",
                        value,
                    ));
                }
            }
        }
    }
    Ok(())
}

fn validate_context_aware(resources: &Value) -> Result<(), MetadataError> {
    let valid = resources.as_array().is_some_and(|list| {
        list.iter().all(|item| {
            item.get("apiVersion").is_some_and(Value::is_string)
                && item.get("kind").is_some_and(Value::is_string)
        })
    });
    if valid {
        Ok(())
    } else {
        Err(invalid(
            "contextAwareResources",
            "a list of {apiVersion, kind}",
            resources,
        ))
    }
}

/// Returns `wasm` with its `io.kubewarden.metadata` section(s) replaced by one holding
/// `metadata` as compact JSON, appended after the module's last section.
pub fn annotate(wasm: &[u8], metadata: &Value) -> Result<Vec<u8>, AnnotateError> {
    let mut output = Vec::with_capacity(wasm.len() + 1024);
    let mut section_start = 0;
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(AnnotateError::Parse)?;
        if let Payload::Version {
            encoding, range, ..
        } = &payload
        {
            if *encoding != Encoding::Module {
                return Err(AnnotateError::NotAModule);
            }
            output.extend_from_slice(&wasm[range.clone()]);
            section_start = range.end;
            continue;
        }
        // Sections are contiguous: each one's header starts where the previous one ended.
        let Some((_, contents)) = payload.as_section() else {
            continue;
        };
        let is_metadata = matches!(&payload, Payload::CustomSection(section) if section.name() == METADATA_SECTION);
        if !is_metadata {
            output.extend_from_slice(&wasm[section_start..contents.end]);
        }
        section_start = contents.end;
    }
    let data = metadata.to_string().into_bytes();
    CustomSection {
        name: METADATA_SECTION.into(),
        data: data.into(),
    }
    .append_to(&mut output);
    Ok(output)
}

/// The JSON in the module's first `io.kubewarden.metadata` section, if any (what policy-server
/// and `kwctl inspect` read).
pub fn read_metadata(wasm: &[u8]) -> Option<Value> {
    Parser::new(0)
        .parse_all(wasm)
        .find_map(|payload| match payload {
            Ok(Payload::CustomSection(section)) if section.name() == METADATA_SECTION => {
                serde_json::from_slice(section.data()).ok()
            }
            _ => None,
        })
}

/// `kwctl annotate -m metadata -u usage -o output input`: reads the files, checks that the
/// module answers `protocol_version` with `"v1"` on our host, annotates, and writes `output`
/// atomically (a temporary file in the same directory, then a rename).
pub fn annotate_file(
    metadata: &Path,
    input: &Path,
    output: &Path,
    usage: Option<&Path>,
) -> anyhow::Result<()> {
    let yaml = std::fs::read_to_string(metadata)
        .with_context(|| format!("cannot read {}", metadata.display()))?;
    let usage = usage
        .map(|path| {
            std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
        })
        .transpose()?;
    let metadata_json = metadata_from_yaml(&yaml, usage.as_deref())
        .with_context(|| format!("in {}", metadata.display()))?;
    let wasm = std::fs::read(input).with_context(|| format!("cannot read {}", input.display()))?;

    let policy = crate::Policy::from_bytes(&wasm, crate::PolicyOptions::default())
        .with_context(|| format!("cannot load {}", input.display()))?;
    let version = policy
        .protocol_version()
        .with_context(|| format!("{} does not answer `protocol_version`", input.display()))?;
    anyhow::ensure!(
        version == "v1",
        "{} speaks protocol {version:?}, policy-server needs \"v1\"",
        input.display()
    );

    let annotated = annotate(&wasm, &metadata_json)
        .with_context(|| format!("cannot annotate {}", input.display()))?;
    write_atomically(output, &annotated)
}

/// Writes `bytes` to a temporary file beside `path` and renames it over `path`, so a failed
/// run never leaves a half-written module.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let file_name = path
        .file_name()
        .with_context(|| format!("output {} has no file name", path.display()))?;
    let mut temporary_name = std::ffi::OsString::from(".");
    temporary_name.push(file_name);
    temporary_name.push(format!(".tmp{}", std::process::id()));
    let temporary = path.with_file_name(temporary_name);
    std::fs::write(&temporary, bytes)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    std::fs::rename(&temporary, path).map_err(|err| {
        let _ = std::fs::remove_file(&temporary);
        anyhow::Error::new(err).context(format!(
            "cannot rename {} to {}",
            temporary.display(),
            path.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const METADATA: &str = "
rules:
- apiGroups: ['']
  apiVersions: [v1]
  resources: [pods]
  operations: [CREATE]
mutating: true
backgroundAudit: false
contextAware: false
annotations:
  io.kubewarden.policy.title: sidecar-injector
";

    /// The smallest valid module: just the header.
    const EMPTY_MODULE: &[u8] = b"\0asm\x01\0\0\0";

    #[test]
    fn defaults_are_filled_and_unknown_keys_dropped() {
        let metadata = metadata_from_yaml(METADATA, Some("# usage")).unwrap();
        assert_eq!(metadata["protocolVersion"], "v1");
        assert_eq!(metadata["executionMode"], "kubewarden-wapc");
        assert_eq!(metadata["policyType"], "kubernetes");
        assert_eq!(metadata["backgroundAudit"], false);
        assert_eq!(metadata["contextAwareResources"], json!([]));
        assert_eq!(metadata["annotations"][USAGE_ANNOTATION], "# usage");
        assert!(metadata.get("contextAware").is_none());
    }

    #[test]
    fn rules_and_mutating_are_required() {
        let no_mutating = METADATA.replace("mutating: true\n", "");
        assert!(matches!(
            metadata_from_yaml(&no_mutating, None),
            Err(MetadataError::MissingKey("mutating"))
        ));
        let err = metadata_from_yaml("rules: []\nmutating: true\n", None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "metadata key `rules` must be a non-empty list, got []"
        );
        let bad_op = METADATA.replace("[CREATE]", "[CREATE, '*']");
        assert!(metadata_from_yaml(&bad_op, None).is_err());
    }

    #[test]
    fn annotating_twice_keeps_one_section() {
        let first = annotate(EMPTY_MODULE, &json!({"protocolVersion": "v1"})).unwrap();
        let second = annotate(&first, &json!({"protocolVersion": "v1", "mutating": true})).unwrap();
        assert_eq!(
            read_metadata(&second),
            Some(json!({"protocolVersion": "v1", "mutating": true}))
        );
        let sections = Parser::new(0)
            .parse_all(&second)
            .filter(|payload| matches!(payload, Ok(Payload::CustomSection(_))))
            .count();
        assert_eq!(sections, 1);
        assert_eq!(read_metadata(EMPTY_MODULE), None);
    }
}
