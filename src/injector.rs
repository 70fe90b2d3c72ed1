//! The injection pipeline every face calls: decide, strip, render, merge, record.
//!
//! Reads top to bottom like Istio's `injectPod` (pkg/kube/inject/webhook.go): decision →
//! annotation checks (Istio's `RunTemplate` starts with them) → strip the previous injection →
//! render the template for the stripped pod → merge → status.

use serde_json::{Map, Value};

use crate::agent_shape;
use crate::annotations::{self, InvalidAnnotations};
use crate::config::{Config, InjectorConfig};
use crate::decision::{self, Decision};
use crate::object::{self, PodList};
use crate::overrides;
use crate::placement::Placement;
use crate::probes;
use crate::proxy_overlay::{self, PROXY_CONFIG_ANNOTATION};
use crate::surgery::{self, InjectionStatus, SurgeryError};
use crate::template::{MeshData, Shared, SidecarTemplate, TemplateData, TemplateError};
use crate::templates::{NamedTemplates, Selection, SelectionError};

/// A config with its template compiled, ready to inject pods.
#[derive(Debug)]
pub struct Injector {
    config: Config,
    /// The template a plain pod gets (`sidecar`, unless `defaultTemplates` says otherwise).
    template: SidecarTemplate,
    /// Every named template, compiled; what a pod's `inject.istio.io/templates` chooses from.
    templates: NamedTemplates,
    mesh: Shared<MeshData>,
}

/// What happened to one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The rules said no; the pod is untouched.
    Skipped(Decision),
    /// The pod carries the sidecar now.
    Injected {
        /// Why it was injected (and any warnings).
        decision: Decision,
        /// False when the pod already carried exactly this injection.
        changed: bool,
        /// What the pod's status annotation now says.
        status: InjectionStatus,
    },
}

/// Why injection failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InjectionError {
    /// Annotations of the pod hold values Istio refuses; every bad one is listed.
    #[error(transparent)]
    Annotations(#[from] InvalidAnnotations),
    /// The pod chooses templates the config does not have.
    #[error(transparent)]
    Templates(#[from] SelectionError),
    /// The template could not be rendered for this pod.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// The pod could not take the rendered sidecar.
    #[error(transparent)]
    Pod(#[from] SurgeryError),
}

/// A pod every valid template must render for; used to check settings before any admission.
const SAMPLE_POD: &str = r#"{
  "metadata": {"name": "sleep", "namespace": "default", "labels": {"app": "sleep"}, "annotations": {}},
  "spec": {"containers": [{"name": "sleep", "image": "tutum/curl", "command": ["/bin/sleep", "infinity"],
            "ports": [{"containerPort": 80}]}]}
}"#;

impl Injector {
    /// Compiles the config's templates, every named one included.
    pub fn new(config: Config) -> Result<Self, TemplateError> {
        let templates = NamedTemplates::compile(&config.injector)?;
        let template = templates
            .primary()
            .cloned()
            .ok_or_else(|| TemplateError::Config("defaultTemplates names no template".into()))?;
        let mesh = MeshData::shared(&config.mesh);
        Ok(Self {
            config,
            template,
            templates,
            mesh,
        })
    }

    /// The configuration this injector was built from.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The compiled template a plain pod gets.
    pub fn template(&self) -> &SidecarTemplate {
        &self.template
    }

    /// Every compiled template, by name.
    pub fn templates(&self) -> &NamedTemplates {
        &self.templates
    }

    /// Renders the template once for a sample pod, so a template that cannot work is refused
    /// when the config is loaded rather than at the first admission.
    pub fn check(&self) -> Result<(), InjectionError> {
        let mut pod: Value =
            serde_json::from_str(SAMPLE_POD).map_err(|e| SurgeryError::NotAPod(e.to_string()))?;
        self.inject(&mut pod, None).map(|_| ())
    }

    /// Injects `pod` (a Pod or a pod template) in place.
    ///
    /// `namespace` is the namespace the pod will live in when the pod does not say (admission
    /// requests carry it beside the object). On error the pod may be half-stripped: callers
    /// discard it.
    pub fn inject(
        &self,
        pod: &mut Value,
        namespace: Option<&str>,
    ) -> Result<Outcome, InjectionError> {
        self.inject_in(pod, namespace, None)
    }

    /// [`Self::inject`], knowing the labels of the pod's namespace (`None`: not known), which
    /// decide first, when the injector serves a revision, whether the pod is that revision's.
    pub fn inject_in(
        &self,
        pod: &mut Value,
        namespace: Option<&str>,
        namespace_labels: Option<&Map<String, Value>>,
    ) -> Result<Outcome, InjectionError> {
        // Owned: the pod is changed below, and its namespace with it would be borrowed.
        let namespace = object::pod_namespace(pod, namespace).map(str::to_owned);
        let namespace = namespace.as_deref();
        let decision =
            decision::evaluate_in(pod, namespace, namespace_labels, &self.config.injector);
        if !decision.inject {
            return Ok(Outcome::Skipped(decision));
        }
        surgery::spec_mut(pod)?;
        surgery::check_unique_containers(pod)?;
        annotations::validate(pod)?;
        let selection = self.templates.select(pod)?;

        let mut decision = decision;
        let previous = match surgery::read_status(pod)? {
            Some(status) => {
                let (trusted, kept) = self.trusted_part(&selection, &status, pod, namespace);
                if !kept.is_empty() {
                    decision.warnings.push(surgery::kept_warning(&kept));
                }
                Some(trusted)
            }
            None => None,
        };
        let before = previous.as_ref().map(|s| fingerprint(pod, s));
        if let Some(status) = &previous {
            surgery::strip(pod, status, false)?;
        } else {
            // Not injected before: overrides remembered by hand are honoured, as Istio does.
            let well_known = |name: &str| {
                surgery::is_well_known(PodList::Containers, name)
                    || surgery::is_well_known(PodList::InitContainers, name)
            };
            overrides::reinsert(pod, well_known).map_err(SurgeryError::from)?;
        }
        // The pod's `proxy.istio.io/config` over the mesh default: converted for the template
        // per pod only when the pod has one.
        let pod_mesh = proxy_overlay::mesh_for_pod(pod, &self.config.mesh)
            .map_err(|reason| InvalidAnnotations::one(PROXY_CONFIG_ANNOTATION, pod, reason))?;
        let pod_mesh_data = pod_mesh.as_ref().map(MeshData::new);
        let mesh_data: &MeshData = pod_mesh_data.as_ref().unwrap_or(&self.mesh);
        let proxy = pod_mesh
            .as_ref()
            .map_or(&self.config.mesh.default_config, |m| &m.default_config);
        let (placement, warning) = Placement::for_pod(
            pod,
            self.config.injector.native_sidecars,
            proxy.hold_application_until_proxy_starts,
        );
        decision.warnings.extend(warning);
        let data =
            TemplateData::new(pod, namespace, mesh_data).with_native_sidecars(placement.native);
        let mut rendered = selection.render(&data)?;
        let mut version = selection.version();
        // The modern agent shape is written for the built-in template alone ([`agent_shape`]).
        if agent_shape::wanted(placement, proxy) && selection.includes_builtin() {
            let modern = agent_shape::template()?;
            agent_shape::lay_over(&mut rendered, modern.render_entries(&data)?);
            version = agent_shape::version(&version, modern.version());
        }
        placement.apply(&mut rendered);
        let declared = overrides::apply(pod, &mut rendered);
        let mut status = surgery::merge(pod, rendered, &version, placement)?;
        self.record(pod, &selection, &mut status)?;
        overrides::record(pod, &declared);
        let rewrite = probes::rewrite(pod, self.config.injector.rewrite_app_http_probe);
        decision.warnings.extend(rewrite);
        // A pod injected for the first time has changed; only a re-injection is compared.
        let changed = before.is_none_or(|before| before != fingerprint(pod, &status));
        Ok(Outcome::Injected {
            decision,
            changed,
            status,
        })
    }

    /// Adds to the status what only the injector knows: the templates chosen, unless `sidecar`
    /// alone, and the revision it serves. Nothing to add leaves the status as `merge` wrote it.
    fn record(
        &self,
        pod: &mut Value,
        selection: &Selection<'_>,
        status: &mut InjectionStatus,
    ) -> Result<(), SurgeryError> {
        let revision = self.config.injector.revision.clone();
        if selection.is_sidecar_alone() && revision.is_none() {
            return Ok(());
        }
        if !selection.is_sidecar_alone() {
            status.templates = selection.names();
        }
        status.revision = revision;
        surgery::write_status(pod, status)
    }

    /// The part of a previous status that may be stripped: Istio's well-known names, and the
    /// names the pod's templates produce for it (rendered as the pod is, only when the status
    /// names anything else; a template's names rarely depend on the pod).
    fn trusted_part(
        &self,
        selection: &Selection<'_>,
        status: &InjectionStatus,
        pod: &Value,
        namespace: Option<&str>,
    ) -> (InjectionStatus, surgery::Kept) {
        let only_well_known = status
            .names
            .iter()
            .all(|(list, names)| names.iter().all(|n| surgery::is_well_known(list, n)));
        let produced = if only_well_known {
            None
        } else {
            let data = TemplateData::new(pod, namespace, &self.mesh);
            let mut produced = selection.render(&data).ok();
            // The templates the status says made the previous injection, while the config still
            // has them: a pod that changes its choice has their entries replaced, not kept.
            if !status.templates.is_empty()
                && status.templates != selection.names()
                && let Ok(previous) = self.templates.choose(&status.templates)
                && let Ok(earlier) = previous.render(&data)
                && let Some(entries) = &mut produced
            {
                crate::templates::overlay(entries, earlier);
            }
            produced
        };
        surgery::distrust(status, |list, name| {
            surgery::is_well_known(list, name)
                || produced.as_ref().is_some_and(|entries| {
                    entries
                        .get(list)
                        .iter()
                        .any(|e| e.get("name").and_then(Value::as_str) == Some(name))
                })
        })
    }
}

/// The decision [`Injector::inject`] takes first, without compiling a template: callers that
/// build an injector per pod ask this before paying for the template.
pub fn decide(pod: &Value, namespace: Option<&str>, config: &InjectorConfig) -> Decision {
    decide_in(pod, namespace, None, config)
}

/// [`decide`], knowing the labels of the pod's namespace (see [`Injector::inject_in`]).
pub fn decide_in(
    pod: &Value,
    namespace: Option<&str>,
    namespace_labels: Option<&Map<String, Value>>,
    config: &InjectorConfig,
) -> Decision {
    decision::evaluate_in(
        pod,
        object::pod_namespace(pod, namespace),
        namespace_labels,
        config,
    )
}

/// What "the injection changed nothing" is judged on: the injected entries where they are, the
/// status, and the remembered overrides. The application's probes need no place here: they are
/// rewritten from the same originals to the port the proxy (in the footprint) serves.
fn fingerprint(
    pod: &Value,
    status: &InjectionStatus,
) -> (surgery::Footprint, Option<String>, Option<String>) {
    (
        surgery::footprint(pod, status),
        status_text(pod),
        overrides::remembered(pod),
    )
}

fn status_text(pod: &Value) -> Option<String> {
    pod.get("metadata")
        .and_then(|meta| meta.get("annotations"))
        .and_then(|a| a.get(surgery::STATUS_ANNOTATION))
        .and_then(Value::as_str)
        .map(str::to_string)
}

#[cfg(test)]
mod placement_tests;
#[cfg(test)]
pub(crate) mod roundtrip;
#[cfg(test)]
mod tests;
