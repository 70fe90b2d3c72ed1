//! Control-plane revisions (`istio.io/rev`): which pods an injector serving one revision acts on.
//!
//! Istio installs one set of webhooks per revision and lets their selectors choose
//! (`manifests/charts/istio-control/istio-discovery/templates/mutatingwebhook.yaml`): a
//! namespace's `istio-injection` label belongs to the default revision and comes first, then the
//! namespace's `istio.io/rev`, then the pod's `istio.io/rev` label; a pod that neither its
//! namespace nor its own label places reaches the default revision only when its
//! `sidecar.istio.io/inject` label says `"true"`. An injector configured with a revision
//! applies the same rules itself, so a policy per revision can run side by side with the others
//! and every pod gets exactly one sidecar, each from its own revision.
//!
//! # Differences from Istio
//! - With no revision configured every pod is served, as before revisions existed (the seed's
//!   behaviour, and what a single policy selected by `istio-injection=enabled` wants).
//! - Without the namespace's labels (kube-inject; a policy whose read of the namespace failed)
//!   the pod's label alone decides: a pod labelled for another revision is skipped, a pod
//!   without the label is served (the webhook's selectors, or the user's command, chose it).
//! - Revision tags (extra webhooks that map `istio.io/rev=<tag>` onto a revision) are not
//!   followed: a tag is a revision name of its own here.

use std::borrow::Cow;
use std::fmt;

use serde_json::{Map, Value};

use crate::decision::INJECT_KEY;

/// The label, on a namespace or a pod, naming the revision that injects it.
pub const REVISION_LABEL: &str = "istio.io/rev";

/// The namespace label of the default revision (`enabled` turns injection on).
pub const INJECTION_LABEL: &str = "istio-injection";

/// The revision Istio calls the one installed without a revision name.
pub const DEFAULT_REVISION: &str = "default";

/// Why a pod belongs to another revision than the one served, with what the labels said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// The namespace's `istio-injection` label: the default revision's when `enabled`, nobody's
    /// otherwise.
    NamespaceInjection(String),
    /// The namespace's `istio.io/rev` names another revision.
    NamespaceRevision(String),
    /// The pod's `istio.io/rev` names another revision.
    PodRevision(String),
    /// Neither the namespace nor the pod names a revision, and the pod does not ask the default
    /// revision with `sidecar.istio.io/inject: "true"`.
    Unselected,
}

impl Mismatch {
    /// The user message, for an injector serving `serving`.
    pub fn describe(&self, serving: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::NamespaceInjection(v) if v == "enabled" => write!(
                f,
                "namespace label {INJECTION_LABEL}=enabled belongs to the {DEFAULT_REVISION} revision, not to revision {serving:?}"
            ),
            Mismatch::NamespaceInjection(v) => write!(
                f,
                "namespace label {INJECTION_LABEL}={v:?} turns injection off for every revision"
            ),
            Mismatch::NamespaceRevision(v) => write!(
                f,
                "namespace label {REVISION_LABEL}={v:?} selects another revision than {serving:?}"
            ),
            Mismatch::PodRevision(v) => write!(
                f,
                "label {REVISION_LABEL}={v:?} selects another revision than {serving:?}"
            ),
            Mismatch::Unselected => write!(
                f,
                "neither the namespace nor the pod selects revision {serving:?} (label {REVISION_LABEL})"
            ),
        }
    }
}

/// Whether an injector serving revision `serving` acts on a pod with `pod_labels` in a namespace
/// with `namespace_labels` (`None`: not known, see the module's differences from Istio).
pub fn check(
    serving: &str,
    pod_labels: Option<&Map<String, Value>>,
    namespace_labels: Option<&Map<String, Value>>,
) -> Result<(), Mismatch> {
    let default = serving == DEFAULT_REVISION;
    if let Some(namespace) = namespace_labels {
        if let Some(value) = text(namespace, INJECTION_LABEL) {
            return if value == "enabled" && default {
                Ok(())
            } else {
                Err(Mismatch::NamespaceInjection(value.into_owned()))
            };
        }
        if let Some(value) = text(namespace, REVISION_LABEL) {
            return if value == serving {
                Ok(())
            } else {
                Err(Mismatch::NamespaceRevision(value.into_owned()))
            };
        }
    }
    match pod_labels.and_then(|labels| text(labels, REVISION_LABEL)) {
        Some(value) if value == serving => Ok(()),
        Some(value) => Err(Mismatch::PodRevision(value.into_owned())),
        None if namespace_labels.is_none() => Ok(()),
        None if default
            && pod_labels
                .and_then(|labels| text(labels, INJECT_KEY))
                .as_deref()
                == Some("true") =>
        {
            Ok(())
        }
        None => Err(Mismatch::Unselected),
    }
}

/// A label's value; a value that is not a string (a hand-written object) counts as its JSON text.
fn text<'a>(labels: &'a Map<String, Value>, key: &str) -> Option<Cow<'a, str>> {
    labels.get(key).map(|value| match value {
        Value::String(s) => Cow::Borrowed(s.as_str()),
        other => Cow::Owned(other.to_string()),
    })
}

/// A revision name must be usable as the label value that selects it: 1–63 characters,
/// alphanumerics with `-`, `_` or `.` inside.
pub fn validate(revision: &str) -> Result<(), String> {
    let edges_ok = revision
        .chars()
        .next()
        .zip(revision.chars().last())
        .is_some_and(|(first, last)| first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric());
    let chars_ok = revision
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if revision.len() <= 63 && edges_ok && chars_ok {
        Ok(())
    } else {
        Err(format!(
            "a revision must be a label value (1-63 letters, digits, `-`, `_` or `.`, starting and ending with a letter or digit), got {revision:?}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    fn labels(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    /// (case, serving, pod labels, namespace labels (None: unknown), expected)
    type Case = (
        &'static str,
        &'static str,
        Value,
        Option<Value>,
        Result<(), Mismatch>,
    );

    #[test]
    fn istios_webhook_selectors_decide_in_order() {
        let cases: Vec<Case> = vec![
            (
                "injection_label_is_the_default_revisions",
                "default",
                json!({REVISION_LABEL: "canary"}),
                Some(json!({INJECTION_LABEL: "enabled", REVISION_LABEL: "canary"})),
                Ok(()),
            ),
            (
                "injection_label_wins_over_the_namespace_revision",
                "canary",
                json!({}),
                Some(json!({INJECTION_LABEL: "enabled", REVISION_LABEL: "canary"})),
                Err(Mismatch::NamespaceInjection("enabled".into())),
            ),
            (
                "injection_disabled_is_nobodys",
                "default",
                json!({INJECT_KEY: "true"}),
                Some(json!({INJECTION_LABEL: "disabled"})),
                Err(Mismatch::NamespaceInjection("disabled".into())),
            ),
            (
                "namespace_revision_wins_over_the_pods",
                "canary",
                json!({REVISION_LABEL: "stable"}),
                Some(json!({REVISION_LABEL: "canary"})),
                Ok(()),
            ),
            (
                "namespace_of_another_revision",
                "canary",
                json!({REVISION_LABEL: "canary"}),
                Some(json!({REVISION_LABEL: "stable"})),
                Err(Mismatch::NamespaceRevision("stable".into())),
            ),
            (
                "pod_label_in_an_unlabelled_namespace",
                "canary",
                json!({REVISION_LABEL: "canary"}),
                Some(json!({})),
                Ok(()),
            ),
            (
                "pod_label_of_another_revision",
                "canary",
                json!({REVISION_LABEL: "stable"}),
                Some(json!({})),
                Err(Mismatch::PodRevision("stable".into())),
            ),
            (
                "unlabelled_pod_asking_the_default_revision",
                "default",
                json!({INJECT_KEY: "true"}),
                Some(json!({})),
                Ok(()),
            ),
            (
                "unlabelled_pod_asking_another_revision_is_not_its",
                "canary",
                json!({INJECT_KEY: "true"}),
                Some(json!({})),
                Err(Mismatch::Unselected),
            ),
            (
                "unlabelled_pod_that_does_not_ask",
                "default",
                json!({}),
                Some(json!({})),
                Err(Mismatch::Unselected),
            ),
            (
                "unknown_namespace_pod_label_decides",
                "canary",
                json!({REVISION_LABEL: "stable"}),
                None,
                Err(Mismatch::PodRevision("stable".into())),
            ),
            (
                "unknown_namespace_unlabelled_pod_is_served",
                "canary",
                json!({}),
                None,
                Ok(()),
            ),
        ];
        for (case, serving, pod, namespace, expected) in cases {
            let pod = labels(pod);
            let namespace = namespace.map(labels);
            assert_eq!(
                check(serving, Some(&pod), namespace.as_ref()),
                expected,
                "{case}"
            );
        }
    }

    #[test]
    fn revision_names_are_label_values() {
        for good in ["canary", "1-20-3", "default", "a", "x.y_z"] {
            assert!(validate(good).is_ok(), "{good}");
        }
        for bad in ["", "-x", "x-", "a/b", "has space", &"x".repeat(64)] {
            let err = validate(bad).unwrap_err();
            assert!(err.contains("label value"), "{err}");
        }
    }

    fn injector(revision: &str) -> crate::Injector {
        let mut config = crate::Config::default();
        config.injector.revision = Some(revision.to_string());
        crate::Injector::new(config).unwrap()
    }

    fn pod(labels: Value) -> Value {
        json!({
            "metadata": {"name": "app", "namespace": "apps", "labels": labels},
            "spec": {"containers": [{"name": "app", "image": "app:1"}]}
        })
    }

    #[test]
    fn an_injector_serving_a_revision_skips_the_others_and_records_its_own() {
        let canary = injector("canary");
        let mut stable_pod = pod(json!({REVISION_LABEL: "stable"}));
        let outcome = canary.inject(&mut stable_pod, None).unwrap();
        let crate::Outcome::Skipped(decision) = outcome else {
            panic!("injected a pod of another revision");
        };
        assert_eq!(
            decision.to_string(),
            "skipping injection: label istio.io/rev=\"stable\" selects another revision than \"canary\""
        );

        // The namespace's label wins over the pod's, as Istio's webhook selectors have it.
        let namespace = labels(json!({REVISION_LABEL: "canary"}));
        let mut pod_in_canary = pod(json!({REVISION_LABEL: "stable"}));
        canary
            .inject_in(&mut pod_in_canary, None, Some(&namespace))
            .unwrap();
        let text = pod_in_canary["metadata"]["annotations"][crate::surgery::STATUS_ANNOTATION]
            .as_str()
            .unwrap();
        let status: crate::surgery::InjectionStatus = serde_json::from_str(text).unwrap();
        assert_eq!(status.revision.as_deref(), Some("canary"));
        assert!(text.ends_with(r#","revision":"canary"}"#), "{text}");

        let enabled = labels(json!({INJECTION_LABEL: "enabled"}));
        let mut pod_in_default = pod(json!({}));
        let outcome = canary
            .inject_in(&mut pod_in_default, None, Some(&enabled))
            .unwrap();
        assert!(matches!(outcome, crate::Outcome::Skipped(_)));
        let outcome = injector(DEFAULT_REVISION)
            .inject_in(&mut pod_in_default, None, Some(&enabled))
            .unwrap();
        assert!(matches!(outcome, crate::Outcome::Injected { .. }));
    }

    #[test]
    fn without_a_revision_every_pod_is_served_and_the_status_has_none() {
        let mut config = crate::Config::default();
        config.injector.revision = None;
        let injector = crate::Injector::new(config).unwrap();
        let mut labelled = pod(json!({REVISION_LABEL: "stable"}));
        let stable_ns = labels(json!({REVISION_LABEL: "stable"}));
        injector
            .inject_in(&mut labelled, None, Some(&stable_ns))
            .unwrap();
        let text = labelled["metadata"]["annotations"][crate::surgery::STATUS_ANNOTATION]
            .as_str()
            .unwrap();
        assert!(!text.contains("revision"), "{text}");
    }

    /// The per-revision example at the end of `policy.yaml`, uncommented: its documents.
    fn policy_yaml_revision_example() -> Vec<Value> {
        let text = include_str!("../policy.yaml");
        let start = text
            .find("# One policy per control-plane revision")
            .expect("policy.yaml has the per-revision example");
        let yaml: String = text[start..]
            .lines()
            .skip_while(|line| *line != "# ---")
            .map(|line| {
                line.strip_prefix("# ")
                    .unwrap_or(line.trim_start_matches('#'))
            })
            .collect::<Vec<_>>()
            .join("\n");
        serde_yaml::Deserializer::from_str(&yaml)
            .map(|doc| Value::deserialize(doc).unwrap())
            .collect()
    }

    #[test]
    fn policy_yaml_revision_example_selects_what_the_revision_rules_serve() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
        let policies = policy_yaml_revision_example();
        assert_eq!(policies.len(), 2, "{policies:?}");
        let mut selectors = Vec::new();
        for policy in &policies {
            assert_eq!(policy["kind"], "ClusterAdmissionPolicy");
            let spec = &policy["spec"];
            let settings = crate::settings::PolicySettings::validate(&spec["settings"]).unwrap();
            assert_eq!(settings.config.injector.revision.as_deref(), Some("canary"));
            let kinds: Vec<&Value> = spec["contextAwareResources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| &r["kind"])
                .collect();
            assert!(kinds.contains(&&json!("Namespace")), "{kinds:?}");
            let selector = |field: &str| -> LabelSelector {
                assert!(
                    spec[field].get("matchLabels").is_none(),
                    "dropped by the controller"
                );
                serde_json::from_value(spec[field].clone()).unwrap()
            };
            selectors.push((selector("namespaceSelector"), selector("objectSelector")));
        }
        // Every combination of the labels that matter: the two policies together let through
        // exactly the pods the revision rules give to `canary` (and that do not refuse).
        let namespaces = [
            json!({}),
            json!({INJECTION_LABEL: "enabled"}),
            json!({REVISION_LABEL: "canary"}),
            json!({REVISION_LABEL: "stable"}),
            json!({INJECTION_LABEL: "enabled", REVISION_LABEL: "canary"}),
        ];
        let pods = [
            json!({}),
            json!({REVISION_LABEL: "canary"}),
            json!({REVISION_LABEL: "stable"}),
            json!({INJECT_KEY: "true"}),
            json!({INJECT_KEY: "false", REVISION_LABEL: "canary"}),
        ];
        for namespace in &namespaces {
            for pod in &pods {
                let (namespace, pod) = (labels(namespace.clone()), labels(pod.clone()));
                let selected = selectors.iter().any(|(ns, object)| {
                    crate::selector::matches(ns, Some(&namespace))
                        && crate::selector::matches(object, Some(&pod))
                });
                let served = check("canary", Some(&pod), Some(&namespace)).is_ok()
                    && pod.get(INJECT_KEY) != Some(&json!("false"));
                assert_eq!(selected, served, "namespace {namespace:?}, pod {pod:?}");
            }
        }
    }
}
