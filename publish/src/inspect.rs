//! What `inspect` prints about a pulled policy: the artifact (digests, media types, size) and
//! the embedded metadata, in the sections `kwctl inspect` shows (details, annotations, rules,
//! usage).

use std::fmt::Write as _;

use crate::metadata::{AUTHOR, DESCRIPTION, LICENSE, PolicyMetadata, SOURCE, TITLE, URL, USAGE};
use crate::registry::Pulled;

/// The report for a policy pulled from `reference`.
pub fn render(reference: &str, pulled: &Pulled, metadata: &PolicyMetadata) -> String {
    let mut out = String::new();
    let line = |out: &mut String, key: &str, value: &str| {
        let _ = writeln!(out, "{:<26}{value}", format!("{key}:"));
    };
    let _ = writeln!(out, "Artifact");
    line(&mut out, "reference", reference);
    line(&mut out, "manifest digest", &pulled.manifest_digest);
    if let Some(layer) = pulled.manifest.layers.first() {
        line(&mut out, "layer digest", &layer.digest);
        line(&mut out, "layer media type", &layer.media_type);
    }
    line(
        &mut out,
        "config media type",
        &pulled.manifest.config.media_type,
    );
    line(&mut out, "size", &format!("{} bytes", pulled.module.len()));

    let annotation = |key: &str| metadata.annotations.get(key).map_or("", String::as_str);
    let _ = writeln!(out, "\nDetails");
    for (label, key) in [
        ("title", TITLE),
        ("description", DESCRIPTION),
        ("author", AUTHOR),
        ("url", URL),
        ("source", SOURCE),
        ("license", LICENSE),
    ] {
        line(&mut out, label, annotation(key));
    }
    line(&mut out, "mutating", &metadata.mutating.to_string());
    line(
        &mut out,
        "background audit support",
        &metadata.background_audit.to_string(),
    );
    let resources: Vec<String> = metadata
        .context_aware_resources
        .iter()
        .map(|r| format!("{}/{}", r.api_version, r.kind))
        .collect();
    line(
        &mut out,
        "context aware resources",
        &if resources.is_empty() {
            "none".to_string()
        } else {
            resources.join(", ")
        },
    );
    if let Some(capabilities) = &metadata.host_capabilities {
        line(&mut out, "host capabilities", &capabilities.join(", "));
    }
    line(&mut out, "execution mode", &metadata.execution_mode);
    line(
        &mut out,
        "protocol version",
        metadata.protocol_version.as_deref().unwrap_or("unknown"),
    );

    let _ = writeln!(out, "\nAnnotations");
    for (key, value) in metadata.annotations.iter().filter(|(k, _)| *k != USAGE) {
        let _ = writeln!(out, "{key:<40} {value}");
    }

    let _ = writeln!(out, "\nRules");
    let rules = serde_yaml::to_string(&metadata.rules).unwrap_or_else(|e| format!("{e}\n"));
    out.push_str(&rules);

    if let Some(usage) = metadata.annotations.get(USAGE) {
        let _ = writeln!(out, "\nUsage");
        out.push_str(usage);
        if !usage.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}
