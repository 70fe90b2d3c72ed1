//! Registry references as users write them (`[registry://]host[:port]/path:tag` or
//! `…@sha256:…`), checked before any network call, and the registries reached over plain HTTP.

use oci_client::Reference;

/// Environment variable listing the registries (`host:port`, comma-separated) reached over plain
/// HTTP, like kwctl's `insecure_sources` in `sources.yaml`.
pub const INSECURE_REGISTRIES_ENV: &str = "INSECURE_REGISTRIES";

/// Why a reference cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    /// Not a reference at all (bad characters, bad digest, upper-case repository...).
    #[error("invalid reference `{input}`: {reason}")]
    Invalid {
        /// What the user wrote.
        input: String,
        /// oci-client's reason.
        reason: String,
    },
    /// A push names no tag.
    #[error("`{0}` names no tag: push to `host[:port]/path:vX.Y.Z`")]
    NoTag(String),
    /// A push names a digest: the registry computes it.
    #[error("`{0}` names a digest: push to a tag, the registry gives the digest")]
    DigestOnPush(String),
    /// A version-like tag that is not `v` and the module's version.
    #[error(
        "tag `{tag}` does not name the module's version: a release tag is `v{version}` (io.kubewarden.policy.version in metadata.yml)"
    )]
    VersionTag {
        /// The tag given.
        tag: String,
        /// The module's version.
        version: String,
    },
}

/// Parses a reference; a leading `registry://` (as in `policy.yaml`'s `module`) is accepted.
pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
    let bare = input.strip_prefix("registry://").unwrap_or(input);
    bare.parse::<Reference>()
        .map_err(|e| ReferenceError::Invalid {
            input: input.to_string(),
            reason: e.to_string(),
        })
}

/// Parses a reference to push to: it must name a tag and no digest, and a tag that looks like a
/// version (`v1.2.3`, `1.2.3`) must be `v` followed by the module's own version, as Kubewarden's
/// release workflow requires; other tags (`latest`, `dev`) are taken as they are.
pub fn parse_push_target(input: &str, version: &str) -> Result<Reference, ReferenceError> {
    let reference = parse(input)?;
    if reference.digest().is_some() {
        return Err(ReferenceError::DigestOnPush(input.to_string()));
    }
    // oci-client reads a missing tag as `latest`: look at what was written.
    let last = input.rsplit('/').next().unwrap_or(input);
    let tag = match (last.split_once(':'), reference.tag()) {
        (Some(_), Some(tag)) => tag,
        _ => return Err(ReferenceError::NoTag(input.to_string())),
    };
    let looks_like_version = tag
        .trim_start_matches('v')
        .starts_with(|c: char| c.is_ascii_digit());
    if looks_like_version && tag != format!("v{version}") {
        return Err(ReferenceError::VersionTag {
            tag: tag.to_string(),
            version: version.to_string(),
        });
    }
    Ok(reference)
}

/// The registries to reach over plain HTTP: the command's flags, then `$INSECURE_REGISTRIES`
/// (comma-separated), without blanks or duplicates.
pub fn insecure_registries(flags: &[String], env: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let from_env = env.unwrap_or_default().split(',');
    for host in flags.iter().map(String::as_str).chain(from_env) {
        let host = host.trim();
        if !host.is_empty() && !out.iter().any(|h| h == host) {
            out.push(host.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_scheme_and_port_are_read() {
        let r = parse("registry://127.0.0.1:5000/policies/sidecar-injector:v0.1.0").unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.repository(), "policies/sidecar-injector");
        assert_eq!(r.tag(), Some("v0.1.0"));
    }

    #[test]
    fn push_needs_the_version_tag() {
        assert!(parse_push_target("ghcr.io/o/p:v0.1.0", "0.1.0").is_ok());
        assert!(parse_push_target("ghcr.io/o/p:latest", "0.1.0").is_ok());
        assert_eq!(
            parse_push_target("ghcr.io/o/p:0.1.0", "0.1.0"),
            Err(ReferenceError::VersionTag {
                tag: "0.1.0".into(),
                version: "0.1.0".into()
            })
        );
        assert!(matches!(
            parse_push_target("ghcr.io/o/p:v0.2.0", "0.1.0"),
            Err(ReferenceError::VersionTag { .. })
        ));
        assert!(matches!(
            parse_push_target("localhost:5000/o/p", "0.1.0"),
            Err(ReferenceError::NoTag(_))
        ));
        let digest = format!("ghcr.io/o/p@sha256:{}", "a".repeat(64));
        assert!(matches!(
            parse_push_target(&digest, "0.1.0"),
            Err(ReferenceError::DigestOnPush(_))
        ));
    }

    #[test]
    fn bad_tags_are_invalid_references() {
        let err = parse("ghcr.io/o/p:v0.1.0+build!").unwrap_err();
        assert!(err.to_string().starts_with("invalid reference"), "{err}");
    }

    #[test]
    fn insecure_registries_merge_flags_and_environment() {
        let flags = vec!["127.0.0.1:5000".to_string()];
        assert_eq!(
            insecure_registries(&flags, Some(" localhost:5001 ,127.0.0.1:5000,,")),
            ["127.0.0.1:5000", "localhost:5001"]
        );
    }
}
