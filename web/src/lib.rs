//! The JS face: the core's manual injection, uninjection, requirement checks and admission
//! reviews, exported through wasm-bindgen for a browser page (`web/www/`) or any JS host.
//!
//! Inputs and outputs are text, as a person pastes and reads them: manifests in YAML, settings
//! in the Kubewarden policy's shape (YAML or JSON), AdmissionReviews in JSON. What fails throws a
//! JS `Error` whose message is the one `kube-inject` or the policy would give.
//!
//! Nothing here decides anything: every function is a thin mapping onto the core that
//! `kube-inject` and `policy.wasm` call, so their answers agree. Objects keep their keys' order
//! here, as in `kube-inject`; the policy sorts them, so a patch may list its operations in
//! another order for the same result.

use serde_json::Value;
use sidecar_injector::ConfigError;
use sidecar_injector::admission::{self, ObjectCluster};
use sidecar_injector::config::BUILTIN_TEMPLATE;
use sidecar_injector::manifest::{self, Manifest, ManifestError};
use sidecar_injector::requirements;
use sidecar_injector::settings::{PolicySettings, SettingsError, embedded_injector};
use wasm_bindgen::prelude::*;

/// A rewritten manifest: what `kube-inject` would print, and what it would say on stderr.
#[wasm_bindgen(getter_with_clone)]
pub struct ManifestResult {
    /// The manifest, every pod template injected (or uninjected); untouched documents keep
    /// their bytes.
    pub yaml: String,
    /// Whether any document changed.
    pub changed: bool,
    /// One line per note: pods skipped and why, values that fell back to a default.
    pub warnings: Vec<String>,
}

impl From<Manifest<'_>> for ManifestResult {
    fn from(manifest: Manifest<'_>) -> Self {
        Self {
            yaml: manifest.to_yaml(),
            changed: manifest.changed(),
            warnings: manifest.warnings().map(str::to_string).collect(),
        }
    }
}

/// Injects the sidecar into every pod template of `manifest` (Pods, Deployments, StatefulSets,
/// Jobs, Lists, multi-document YAML), as `kube-inject -f` does, with the config that policy
/// `settings` carry (`undefined` or empty: the built-in defaults).
#[wasm_bindgen(js_name = injectManifest)]
pub fn inject_manifest(
    manifest: &str,
    settings: Option<String>,
) -> Result<ManifestResult, JsError> {
    let settings = parse_settings(settings.as_deref())?;
    // Say so rather than inject with a config the user did not mean: there is no cluster here.
    let ignored = settings.config_maps.as_ref().map(|maps| {
        format!(
            "the settings read the config from the ConfigMaps {} and {}, which a manifest \
             injection here cannot reach: injected with the config embedded in the settings",
            maps.injector, maps.mesh
        )
    });
    let injector = embedded_injector(settings.config).map_err(|e| JsError::new(&e.to_string()))?;
    let mut result =
        ManifestResult::from(manifest::inject(manifest, &injector).map_err(manifest_error)?);
    result.warnings.extend(ignored);
    Ok(result)
}

/// Removes the sidecar from every pod template of `manifest`, as `kube-inject uninject` does.
#[wasm_bindgen(js_name = uninjectManifest)]
pub fn uninject_manifest(manifest: &str) -> Result<ManifestResult, JsError> {
    Ok(manifest::uninject(manifest).map_err(manifest_error)?.into())
}

/// Checks the seed's pod spec requirements (named Service ports, the `app` label, one Service
/// per pod) across `manifest`, as `kube-inject check --output-format json` does: a JSON array of
/// findings, each with its document's index. `settings` may name the accepted port protocols.
#[wasm_bindgen(js_name = checkManifest)]
pub fn check_manifest(manifest: &str, settings: Option<String>) -> Result<String, JsError> {
    let settings = parse_settings(settings.as_deref())?;
    let objects = manifest::objects(manifest).map_err(manifest_error)?;
    let findings = requirements::check_bundle(&objects, &settings.protocols);
    serde_json::to_string(&requirements::records(&findings))
        .map_err(|e| JsError::new(&e.to_string()))
}

/// Answers an AdmissionReview (JSON) as the policy's webhook face does: the AdmissionReview
/// response, with its JSON patch base64-encoded. `cluster` stands for the API server: YAML or
/// JSON documents (Services for the requirements, Istio's ConfigMaps for `configMaps` settings);
/// `undefined` is an empty cluster. A review that is not JSON, or settings that do not parse,
/// give a rejection in the response, as the webhook would answer; only unreadable `cluster`
/// text throws.
#[wasm_bindgen(js_name = reviewAdmission)]
pub fn review_admission(
    review: &str,
    settings: Option<String>,
    cluster: Option<String>,
) -> Result<String, JsError> {
    let documents = match cluster.as_deref() {
        Some(text) => manifest::objects(text).map_err(manifest_error)?,
        None => Vec::new(),
    };
    let cluster = ObjectCluster::new(&documents);
    let settings =
        settings_value(settings.as_deref()).and_then(|v| PolicySettings::from_payload(&v));
    let response = match serde_json::from_str::<Value>(review) {
        Ok(review) => admission::respond_to_review(settings, &cluster, &review),
        Err(e) => admission::unreadable_review(&e),
    };
    Ok(response.to_string())
}

/// Why the policy would refuse these settings (`validate_settings`), or `undefined` when it
/// would load them: they parse, and their template compiles and injects a sample pod.
#[wasm_bindgen(js_name = validateSettings)]
pub fn validate_settings(settings: &str) -> Option<String> {
    settings_value(Some(settings))
        .and_then(|v| PolicySettings::validate(&v))
        .err()
        .map(|e| e.to_string())
}

/// The built-in sidecar template, to start an edited one from.
#[wasm_bindgen(js_name = builtinTemplate)]
pub fn builtin_template() -> String {
    BUILTIN_TEMPLATE.to_string()
}

/// Settings text (YAML or JSON) as the policy would receive it; blank means `{}`.
fn settings_value(text: Option<&str>) -> Result<Value, SettingsError> {
    match text.map(str::trim) {
        None | Some("") => Ok(Value::Object(Default::default())),
        Some(text) => serde_yaml::from_str(text).map_err(|cause| {
            SettingsError::Config(ConfigError::Syntax {
                document: "settings",
                cause,
            })
        }),
    }
}

fn parse_settings(text: Option<&str>) -> Result<PolicySettings, JsError> {
    settings_value(text)
        .and_then(|v| PolicySettings::from_payload(&v))
        .map_err(|e| JsError::new(&e.to_string()))
}

fn manifest_error(e: ManifestError) -> JsError {
    // The whole chain, as kube-inject prints it (`{:#}`): the document, then why.
    let mut message = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(reason) = cause {
        message.push_str(": ");
        message.push_str(&reason.to_string());
        cause = reason.source();
    }
    JsError::new(&message)
}
