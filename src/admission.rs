//! One admission, from the request to the verdict: Kubewarden's `validate` and a plain
//! webhook's AdmissionReview both come through here.
//!
//! Only Pod CREATE is injected (automatic injection happens at pod creation; mutating
//! controllers too would loop, see Kubewarden's mutating-policy docs). Everything else is
//! accepted untouched. The pod is taken out of the request, never copied.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::config::{Config, InjectorConfig, MeshConfig};
use crate::injector::{self, Injector, Outcome};
use crate::object;
use crate::requirements;
use crate::settings::{
    ConfigMapRef, ConfigMaps, OnConfigMapError, PolicySettings, RequirementsMode, SettingsError,
    embedded_injector,
};

/// What the policy answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Allow the object as it is.
    Accept {
        /// Messages kubectl prints to the user.
        warnings: Vec<String>,
    },
    /// Allow the object with these changes (the whole object, as Kubewarden expects).
    Mutate {
        /// The mutated object.
        object: Value,
        /// Messages kubectl prints to the user.
        warnings: Vec<String>,
    },
    /// Refuse the object.
    Reject {
        /// What is wrong and what to do about it.
        message: String,
        /// HTTP-style status code.
        code: u16,
    },
}

impl Verdict {
    fn reject(message: impl Into<String>) -> Self {
        Verdict::Reject {
            message: message.into(),
            code: 400,
        }
    }
}

/// Why the host could not answer a read: its own message (permission denied, not found, …).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ClusterError(pub String);

impl From<&str> for ClusterError {
    fn from(message: &str) -> Self {
        Self(message.to_string())
    }
}

impl From<String> for ClusterError {
    fn from(message: String) -> Self {
        Self(message)
    }
}

/// What the policy may ask of the cluster. Kubewarden answers through its context-aware host
/// capabilities; tests answer from fixtures. Errors are the host's message.
pub trait Cluster {
    /// The Services of `namespace` (for the one-Service-per-pod requirement).
    fn services(&self, namespace: &str) -> Result<Vec<Value>, ClusterError>;
    /// One ConfigMap (for config read from Istio's ConfigMaps).
    fn config_map(&self, config_map: &ConfigMapRef) -> Result<Value, ClusterError>;
    /// One Namespace (for its revision labels, when the policy serves a revision). Hosts that
    /// cannot read namespaces keep this default, and the pod's own labels decide.
    fn namespace(&self, _name: &str) -> Result<Value, ClusterError> {
        Err("this host gives no access to namespaces".into())
    }
}

/// A cluster that answers nothing: for hosts without context-aware capabilities.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCluster;

impl Cluster for NoCluster {
    fn services(&self, _namespace: &str) -> Result<Vec<Value>, ClusterError> {
        Err("this host gives no access to the cluster".into())
    }

    fn config_map(&self, _config_map: &ConfigMapRef) -> Result<Value, ClusterError> {
        Err("this host gives no access to the cluster".into())
    }
}

/// A cluster seen through a fixed set of objects, say the Services and ConfigMaps of a manifest:
/// for trying the policy where no API server answers (the JS face).
///
/// `List` documents are opened as `kube-inject check` opens them. An object that names no
/// namespace is in whichever namespace is asked about, as a manifest applied with `-n` would be.
#[derive(Debug, Clone, Default)]
pub struct ObjectCluster {
    objects: Vec<Value>,
}

impl ObjectCluster {
    /// The cluster holding a manifest's documents, as [`crate::manifest::objects`] reads them.
    pub fn new(documents: &[(usize, Value)]) -> Self {
        let objects = object::flatten(documents)
            .into_iter()
            .map(|(_, object)| object.clone())
            .collect();
        Self { objects }
    }

    fn of_kind<'a>(&'a self, kind: &'a str, namespace: &'a str) -> impl Iterator<Item = &'a Value> {
        self.objects.iter().filter(move |object| {
            object::kind(object) == Some(kind)
                && object::namespace(object).is_none_or(|ns| ns == namespace)
        })
    }
}

impl Cluster for ObjectCluster {
    fn services(&self, namespace: &str) -> Result<Vec<Value>, ClusterError> {
        Ok(self.of_kind("Service", namespace).cloned().collect())
    }

    fn config_map(&self, config_map: &ConfigMapRef) -> Result<Value, ClusterError> {
        self.of_kind("ConfigMap", &config_map.namespace)
            .find(|object| object::name(object) == Some(config_map.name.as_str()))
            .cloned()
            // The API server's own words for a missing object.
            .ok_or_else(|| ClusterError(format!("configmaps \"{}\" not found", config_map.name)))
    }

    fn namespace(&self, name: &str) -> Result<Value, ClusterError> {
        self.objects
            .iter()
            .find(|o| object::kind(o) == Some("Namespace") && object::name(o) == Some(name))
            .cloned()
            .ok_or_else(|| ClusterError(format!("namespaces \"{name}\" not found")))
    }
}

/// Reviews one AdmissionRequest (admission.k8s.io/v1, camelCase JSON): Pod CREATE is injected,
/// Service CREATE/UPDATE has its port names checked, anything else is accepted untouched.
pub fn review(settings: PolicySettings, cluster: &dyn Cluster, request: &mut Value) -> Verdict {
    let Some(fields) = request.as_object_mut() else {
        return Verdict::reject("the admission request is not a JSON object");
    };
    let kind = fields
        .get("kind")
        .and_then(|k| k.get("kind"))
        .and_then(Value::as_str);
    let group = fields
        .get("kind")
        .and_then(|k| k.get("group"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let operation = fields.get("operation").and_then(Value::as_str);
    let target = match (group, kind, operation) {
        ("", Some("Pod"), Some("CREATE")) => Target::Pod,
        ("", Some("Service"), Some("CREATE" | "UPDATE")) => Target::Service,
        _ => {
            return Verdict::Accept {
                warnings: Vec::new(),
            };
        }
    };
    let namespace = fields
        .get("namespace")
        .and_then(Value::as_str)
        .filter(|ns| !ns.is_empty())
        .map(str::to_string);
    let object = match fields.get_mut("object").map(Value::take) {
        Some(object @ Value::Object(_)) => object,
        Some(Value::Null) | None => {
            return Verdict::reject("the request carries no object");
        }
        Some(other) => {
            return Verdict::reject(format!(
                "the request's object is {}, not a Kubernetes object",
                object::type_name(&other)
            ));
        }
    };
    match target {
        Target::Pod => review_pod(settings, cluster, object, namespace.as_deref()),
        Target::Service => review_service(&settings, &object),
    }
}

enum Target {
    Pod,
    Service,
}

fn review_service(settings: &PolicySettings, service: &Value) -> Verdict {
    if settings.requirements == RequirementsMode::Off {
        return Verdict::Accept {
            warnings: Vec::new(),
        };
    }
    let findings = requirements::check_service(service, &settings.protocols);
    judge(
        settings.requirements,
        "service",
        &object::display_name_or_unnamed(service),
        findings,
        Vec::new(),
        None,
    )
}

fn review_pod(
    settings: PolicySettings,
    cluster: &dyn Cluster,
    mut pod: Value,
    namespace: Option<&str>,
) -> Verdict {
    let name = object::display_name_or_unnamed(&pod);
    let mode = settings.requirements;
    let (namespace_labels, namespace_warning) =
        namespace_labels(&settings.config.injector, cluster, &pod, namespace);
    // With the configuration in the settings, a pod the rules skip needs no template: for a
    // template other than the built-in one (which the pre-initialised module has compiled),
    // that spares a compilation per skipped admission. `validate_settings` has already shown
    // the template compiles. Configuration from ConfigMaps is read first, so its errors are
    // reported whatever the pod.
    if settings.config_maps.is_none() {
        let decision = injector::decide_in(
            &pod,
            namespace,
            namespace_labels.as_ref(),
            &settings.config.injector,
        );
        if !decision.inject {
            let mut warnings = decision.warnings;
            warnings.extend(namespace_warning);
            return Verdict::Accept { warnings };
        }
    }
    let (injector, mut warnings) = match injector_for(settings, cluster) {
        Ok(built) => built,
        Err(message) => return Verdict::Reject { message, code: 500 },
    };
    warnings.extend(namespace_warning);
    let labels = namespace_labels.as_ref();
    let (decision, changed) = match injector.inject_in(&mut pod, namespace, labels) {
        Ok(Outcome::Skipped(decision)) => {
            warnings.extend(decision.warnings);
            return Verdict::Accept { warnings };
        }
        Ok(Outcome::Injected {
            decision, changed, ..
        }) => (decision, changed),
        Err(e) => {
            return Verdict::reject(format!("cannot inject the sidecar into pod {name}: {e}"));
        }
    };
    warnings.extend(decision.warnings);
    let findings = match mode {
        RequirementsMode::Off => Vec::new(),
        _ => {
            let pod_namespace = object::pod_namespace(&pod, namespace)
                .unwrap_or(object::DEFAULT_NAMESPACE)
                .to_string();
            match cluster.services(&pod_namespace) {
                Ok(services) => requirements::check_pod(&pod, Some(&services)),
                Err(e) => {
                    warnings.push(format!(
                        "could not list the Services of namespace {pod_namespace} ({e}); the one-Service-per-pod requirement was not checked"
                    ));
                    requirements::check_pod(&pod, None)
                }
            }
        }
    };
    judge(
        mode,
        "pod",
        &name,
        findings,
        warnings,
        changed.then_some(pod),
    )
}

/// The labels of the pod's namespace, read only when the policy serves a revision (they decide
/// whether the pod is its revision's); a failed read is a warning, and the pod's labels decide.
fn namespace_labels(
    config: &InjectorConfig,
    cluster: &dyn Cluster,
    pod: &Value,
    namespace: Option<&str>,
) -> (Option<serde_json::Map<String, Value>>, Option<String>) {
    if config.revision.is_none() {
        return (None, None);
    }
    let name = object::pod_namespace(pod, namespace).unwrap_or(object::DEFAULT_NAMESPACE);
    match cluster.namespace(name) {
        Ok(namespace) => {
            let labels = namespace
                .get("metadata")
                .and_then(|m| m.get("labels"))
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            (Some(labels), None)
        }
        Err(e) => (
            None,
            Some(format!(
                "could not read namespace {name} ({e}); its labels were not consulted, the pod's {} label alone chose the revision",
                crate::revision::REVISION_LABEL
            )),
        ),
    }
}

/// Turns findings into the verdict the requirements mode asks for.
fn judge(
    mode: RequirementsMode,
    what: &str,
    name: &str,
    findings: Vec<requirements::Finding>,
    mut warnings: Vec<String>,
    mutated: Option<Value>,
) -> Verdict {
    if mode == RequirementsMode::Enforce && !findings.is_empty() {
        let list: Vec<String> = findings.iter().map(|f| format!("- {f}")).collect();
        return Verdict::reject(format!(
            "{what} {name} does not meet the mesh's pod spec requirements:\n{}",
            list.join("\n")
        ));
    }
    warnings.extend(findings.iter().map(ToString::to_string));
    match mutated {
        Some(object) => Verdict::Mutate { object, warnings },
        None => Verdict::Accept { warnings },
    }
}

/// The injector for this admission: from the embedded settings, or from Istio's ConfigMaps.
fn injector_for(
    settings: PolicySettings,
    cluster: &dyn Cluster,
) -> Result<(Injector, Vec<String>), String> {
    let Some(maps) = settings.config_maps.clone() else {
        return Ok((
            embedded_injector(settings.config).map_err(|e| e.to_string())?,
            Vec::new(),
        ));
    };
    match config_from_cluster(&maps, &settings.config.injector, cluster) {
        Ok(injector) => Ok((injector, Vec::new())),
        Err(problem) if maps.on_error == OnConfigMapError::Embedded => {
            let injector = embedded_injector(settings.config).map_err(|e| e.to_string())?;
            Ok((
                injector,
                vec![format!(
                    "{problem}; injected with the configuration embedded in the policy settings"
                )],
            ))
        }
        Err(problem) => Err(format!(
            "{problem}; fix the ConfigMap, or set configMaps.onError: embedded in the policy settings"
        )),
    }
}

/// The config in Istio's ConfigMaps; the settings' `templateSyntax` reads the ConfigMap's
/// template when the ConfigMap itself does not say, and the settings' `revision` is the one
/// served whatever the ConfigMap holds (it is the policy's, as a revision is istiod's).
fn config_from_cluster(
    maps: &ConfigMaps,
    embedded: &InjectorConfig,
    cluster: &dyn Cluster,
) -> Result<Injector, String> {
    let injector_doc = config_map_key(cluster, &maps.injector, "config")?;
    let mesh_doc = config_map_key(cluster, &maps.mesh, "mesh")?;
    let mut injector = InjectorConfig::from_yaml(&injector_doc)
        .map_err(|e| format!("ConfigMap {} key `config`: {e}", maps.injector))?;
    injector.template_syntax = injector.template_syntax.or(embedded.template_syntax);
    if embedded.revision.is_some() {
        injector.revision = embedded.revision.clone();
    }
    let mesh = MeshConfig::from_yaml(&mesh_doc)
        .map_err(|e| format!("ConfigMap {} key `mesh`: {e}", maps.mesh))?;
    Injector::new(Config { injector, mesh })
        .map_err(|e| format!("ConfigMap {} key `config`: template: {e}", maps.injector))
}

fn config_map_key(
    cluster: &dyn Cluster,
    config_map: &ConfigMapRef,
    key: &str,
) -> Result<String, String> {
    let object = cluster
        .config_map(config_map)
        .map_err(|e| format!("cannot read ConfigMap {config_map}: {e}"))?;
    // The host passes on whatever it was given; a wrong answer is named, not read as a config.
    match object.get("kind").and_then(Value::as_str) {
        _ if !object.is_object() => {
            return Err(format!(
                "cannot read ConfigMap {config_map}: the host answered {}, not a ConfigMap",
                object::type_name(&object)
            ));
        }
        Some(kind) if kind != "ConfigMap" => {
            return Err(format!(
                "cannot read ConfigMap {config_map}: the host answered a {kind}, not a ConfigMap"
            ));
        }
        _ => {}
    }
    match object.get("data").and_then(|d| d.get(key)) {
        Some(Value::String(text)) => Ok(text.clone()),
        Some(other) => Err(format!(
            "ConfigMap {config_map} key `{key}` holds {}, not text",
            object::type_name(other)
        )),
        None => Err(format!(
            "ConfigMap {config_map} has no `{key}` key in its data"
        )),
    }
}

/// Answers a whole AdmissionReview as a mutating webhook would: `allowed`, an RFC 6902 patch
/// (base64, `patchType: JSONPatch`) computed against the request's object, and the request's
/// `uid`. `settings` are the parsed settings, or why they could not be parsed.
pub fn respond_to_review(
    settings: Result<PolicySettings, SettingsError>,
    cluster: &dyn Cluster,
    admission_review: &Value,
) -> Value {
    let request = admission_review
        .get("request")
        .cloned()
        .unwrap_or(Value::Null);
    let uid = request
        .get("uid")
        .cloned()
        .unwrap_or(Value::String(String::new()));
    let original = request.get("object").cloned().unwrap_or(Value::Null);
    let verdict = match (settings, request.is_null()) {
        (_, true) => Verdict::reject("the AdmissionReview has no request"),
        (Err(error), _) => Verdict::Reject {
            message: error.to_string(),
            code: 500,
        },
        (Ok(settings), false) => {
            let mut request = request;
            review(settings, cluster, &mut request)
        }
    };
    review_response(uid, &original, verdict)
}

/// The AdmissionReview a webhook answers with when the review itself is not JSON: a rejection
/// with no `uid` to echo.
pub fn unreadable_review(error: &serde_json::Error) -> Value {
    review_response(
        Value::String(String::new()),
        &Value::Null,
        Verdict::Reject {
            message: format!("the AdmissionReview is not valid JSON: {error}"),
            code: 400,
        },
    )
}

/// The AdmissionReview a webhook answers with for `verdict`; the patch is the diff from
/// `original` (the request's object) to the mutated object.
pub fn review_response(uid: Value, original: &Value, verdict: Verdict) -> Value {
    let mut response = json!({"uid": uid, "allowed": !matches!(verdict, Verdict::Reject { .. })});
    match verdict {
        Verdict::Accept { warnings } => set_warnings(&mut response, warnings),
        Verdict::Mutate { object, warnings } => {
            let patch = json_patch::diff(original, &object);
            if !patch.0.is_empty() {
                let text = serde_json::to_vec(&patch).unwrap_or_default();
                response["patchType"] = json!("JSONPatch");
                response["patch"] = json!(base64::engine::general_purpose::STANDARD.encode(text));
            }
            set_warnings(&mut response, warnings);
        }
        Verdict::Reject { message, code } => {
            response["status"] = json!({"message": message, "code": code});
        }
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})
}

fn set_warnings(response: &mut Value, warnings: Vec<String>) {
    if !warnings.is_empty() {
        response["warnings"] = json!(warnings);
    }
}

#[cfg(test)]
mod tests;
