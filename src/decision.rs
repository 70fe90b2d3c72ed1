//! Whether a pod gets a sidecar, and why: a port of Istio's `injectRequired`
//! (`pkg/kube/inject/inject.go`), returning the reason instead of logging it.
//!
//! Rules, in order: hostNetwork; ignored namespaces; with a configured revision, whether the
//! namespace's and pod's labels place the pod in it ([`crate::revision`], the part Istio leaves
//! to its webhooks' selectors); the `sidecar.istio.io/inject` label, which
//! overrides the annotation of the same name (a present label wins even when empty); only the
//! exact strings `"true"` and `"false"` are explicit, anything else falls back to the default with
//! a warning; on fallback the never-inject selectors, then the always-inject selectors; then the
//! policy.

use std::fmt;

use serde_json::{Map, Value};

use crate::config::{InjectionPolicy, InjectorConfig};
use crate::revision::{self, Mismatch};
use crate::selector;

/// The label and annotation a pod uses to ask for or refuse a sidecar.
pub const INJECT_KEY: &str = "sidecar.istio.io/inject";

/// Namespaces never injected: a broken sidecar there can take the cluster down
/// (Istio `IgnoredNamespaces`, pkg/kube/inject/initializer.go).
pub const IGNORED_NAMESPACES: [&str; 4] = [
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "local-path-storage",
];

/// The outcome of the rules for one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether to inject.
    pub inject: bool,
    /// The rule that decided.
    pub reason: Reason,
    /// Things the user should know, e.g. an inject value that is neither `true` nor `false`.
    pub warnings: Vec<String>,
}

/// The rule that decided, with what it saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// `spec.hostNetwork` is true: the sidecar's iptables rules would apply to the node.
    HostNetwork,
    /// The pod is in one of [`IGNORED_NAMESPACES`].
    IgnoredNamespace(String),
    /// The injector serves revision `serving`, and the labels place the pod in another.
    Revision {
        /// The revision the injector serves.
        serving: String,
        /// What placed the pod elsewhere.
        mismatch: Mismatch,
    },
    /// The `sidecar.istio.io/inject` label said `true` or `false`.
    Label(bool),
    /// The `sidecar.istio.io/inject` annotation said `true` or `false`.
    Annotation(bool),
    /// Entry `n` of `neverInjectSelector` matched the pod's labels.
    NeverSelector(usize),
    /// Entry `n` of `alwaysInjectSelector` matched the pod's labels.
    AlwaysSelector(usize),
    /// Nothing else decided; the policy did.
    Policy(InjectionPolicy),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::HostNetwork => {
                f.write_str("the pod has host networking enabled (spec.hostNetwork)")
            }
            Reason::IgnoredNamespace(ns) => {
                write!(f, "namespace {ns} is never injected")
            }
            Reason::Revision { serving, mismatch } => mismatch.describe(serving, f),
            Reason::Label(v) => write!(f, "label {INJECT_KEY} is \"{v}\""),
            Reason::Annotation(v) => write!(f, "annotation {INJECT_KEY} is \"{v}\""),
            Reason::NeverSelector(i) => write!(f, "the pod matches neverInjectSelector[{i}]"),
            Reason::AlwaysSelector(i) => write!(f, "the pod matches alwaysInjectSelector[{i}]"),
            Reason::Policy(InjectionPolicy::Enabled) => {
                f.write_str("the injection policy is enabled")
            }
            Reason::Policy(InjectionPolicy::Disabled) => f.write_str(
                "the injection policy is disabled and the pod does not ask for a sidecar",
            ),
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.inject {
            "injecting"
        } else {
            "skipping injection"
        };
        write!(f, "{verb}: {}", self.reason)
    }
}

/// Applies the rules to a pod (or pod template): `metadata` and `spec` are read, nothing else.
///
/// `namespace` is the pod's namespace as the caller knows it (the admission request's, or the
/// manifest's); it is only used for the ignored-namespace rule.
pub fn evaluate(pod: &Value, namespace: Option<&str>, config: &InjectorConfig) -> Decision {
    evaluate_in(pod, namespace, None, config)
}

/// [`evaluate`], knowing the labels of the pod's namespace (`None`: not known), which decide
/// first whether the pod is the configured revision's (see [`crate::revision`]).
pub fn evaluate_in(
    pod: &Value,
    namespace: Option<&str>,
    namespace_labels: Option<&Map<String, Value>>,
    config: &InjectorConfig,
) -> Decision {
    let metadata = pod.get("metadata").and_then(Value::as_object);
    let mut warnings = Vec::new();
    let decided = |inject, reason, warnings| Decision {
        inject,
        reason,
        warnings,
    };

    if pod
        .get("spec")
        .and_then(|spec| spec.get("hostNetwork"))
        .and_then(Value::as_bool)
        == Some(true)
    {
        return decided(false, Reason::HostNetwork, warnings);
    }
    if let Some(ns) = namespace.filter(|ns| IGNORED_NAMESPACES.contains(ns)) {
        return decided(false, Reason::IgnoredNamespace(ns.to_string()), warnings);
    }
    if let Some(serving) = &config.revision {
        let pod_labels = metadata
            .and_then(|m| m.get("labels"))
            .and_then(Value::as_object);
        if let Err(mismatch) = revision::check(serving, pod_labels, namespace_labels) {
            let serving = serving.clone();
            return decided(false, Reason::Revision { serving, mismatch }, warnings);
        }
    }

    let label = string_map_entry(metadata, "labels", INJECT_KEY);
    let annotation = string_map_entry(metadata, "annotations", INJECT_KEY);
    let explicit = match (label, annotation) {
        (Some(value), _) => explicit_choice("label", value, &mut warnings).map(Reason::Label),
        (None, Some(value)) => {
            explicit_choice("annotation", value, &mut warnings).map(Reason::Annotation)
        }
        (None, None) => None,
    };
    if let Some(reason) = explicit {
        let inject = matches!(reason, Reason::Label(true) | Reason::Annotation(true));
        return decided(inject, reason, warnings);
    }

    let labels = metadata
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object);
    if let Some(i) = config
        .never_inject_selector
        .iter()
        .position(|s| selector::matches(s, labels))
    {
        return decided(false, Reason::NeverSelector(i), warnings);
    }
    if let Some(i) = config
        .always_inject_selector
        .iter()
        .position(|s| selector::matches(s, labels))
    {
        return decided(true, Reason::AlwaysSelector(i), warnings);
    }
    let inject = config.policy == InjectionPolicy::Enabled;
    decided(inject, Reason::Policy(config.policy), warnings)
}

/// The value of `metadata.<map>.<key>`, if present; a non-string value is kept as its JSON text
/// so it still counts as present (and gets the "neither true nor false" warning).
fn string_map_entry<'a>(
    metadata: Option<&'a Map<String, Value>>,
    map: &str,
    key: &str,
) -> Option<std::borrow::Cow<'a, str>> {
    let value = metadata?.get(map)?.as_object()?.get(key)?;
    Some(match value {
        Value::String(s) => std::borrow::Cow::Borrowed(s.as_str()),
        other => std::borrow::Cow::Owned(other.to_string()),
    })
}

fn explicit_choice(
    source: &str,
    value: std::borrow::Cow<'_, str>,
    warnings: &mut Vec<String>,
) -> Option<bool> {
    match value.as_ref() {
        "true" => Some(true),
        "false" => Some(false),
        other => {
            warnings.push(format!(
                "{source} {INJECT_KEY}={other:?} is neither \"true\" nor \"false\"; using the default"
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(policy: &str, never: Value, always: Value) -> InjectorConfig {
        serde_json::from_value(json!({
            "policy": policy, "neverInjectSelector": never, "alwaysInjectSelector": always
        }))
        .unwrap()
    }

    fn pod(labels: Value, annotations: Value, host_network: bool) -> Value {
        json!({
            "metadata": {"labels": labels, "annotations": annotations},
            "spec": {"hostNetwork": host_network, "containers": [{"name": "app"}]}
        })
    }

    /// (case, policy, never, always, labels, annotations, hostNetwork, namespace, inject, reason)
    type Case<'a> = (
        &'a str,
        &'a str,
        &'a Value,
        &'a Value,
        Value,
        Value,
        bool,
        &'a str,
        bool,
        Reason,
    );

    #[test]
    fn rules_apply_in_order() {
        let never_app = json!([{"matchLabels": {"app": "x"}}]);
        let always_app = json!([{"matchLabels": {"app": "x"}}]);
        let none = json!([]);
        let cases: Vec<Case<'_>> = vec![
            (
                "host_network_beats_everything",
                "enabled",
                &none,
                &none,
                json!({INJECT_KEY: "true"}),
                json!({}),
                true,
                "default",
                false,
                Reason::HostNetwork,
            ),
            (
                "kube_system_is_ignored",
                "enabled",
                &none,
                &none,
                json!({INJECT_KEY: "true"}),
                json!({}),
                false,
                "kube-system",
                false,
                Reason::IgnoredNamespace("kube-system".into()),
            ),
            (
                "kube_node_lease_is_ignored",
                "enabled",
                &none,
                &none,
                json!({}),
                json!({}),
                false,
                "kube-node-lease",
                false,
                Reason::IgnoredNamespace("kube-node-lease".into()),
            ),
            (
                "local_path_storage_is_ignored",
                "enabled",
                &none,
                &none,
                json!({}),
                json!({}),
                false,
                "local-path-storage",
                false,
                Reason::IgnoredNamespace("local-path-storage".into()),
            ),
            (
                "enabled_policy_injects_by_default",
                "enabled",
                &none,
                &none,
                json!({}),
                json!({}),
                false,
                "default",
                true,
                Reason::Policy(InjectionPolicy::Enabled),
            ),
            (
                "disabled_policy_skips_by_default",
                "disabled",
                &none,
                &none,
                json!({}),
                json!({}),
                false,
                "default",
                false,
                Reason::Policy(InjectionPolicy::Disabled),
            ),
            (
                "annotation_false_with_policy_enabled",
                "enabled",
                &none,
                &none,
                json!({}),
                json!({INJECT_KEY: "false"}),
                false,
                "default",
                false,
                Reason::Annotation(false),
            ),
            (
                "annotation_true_with_policy_disabled",
                "disabled",
                &none,
                &none,
                json!({}),
                json!({INJECT_KEY: "true"}),
                false,
                "default",
                true,
                Reason::Annotation(true),
            ),
            (
                "label_overrides_annotation_true",
                "enabled",
                &none,
                &none,
                json!({INJECT_KEY: "false"}),
                json!({INJECT_KEY: "true"}),
                false,
                "default",
                false,
                Reason::Label(false),
            ),
            (
                "label_overrides_annotation_false",
                "disabled",
                &none,
                &none,
                json!({INJECT_KEY: "true"}),
                json!({INJECT_KEY: "false"}),
                false,
                "default",
                true,
                Reason::Label(true),
            ),
            (
                "empty_label_wins_and_falls_back",
                "disabled",
                &none,
                &none,
                json!({INJECT_KEY: ""}),
                json!({INJECT_KEY: "true"}),
                false,
                "default",
                false,
                Reason::Policy(InjectionPolicy::Disabled),
            ),
            (
                "yes_is_not_true",
                "disabled",
                &none,
                &none,
                json!({}),
                json!({INJECT_KEY: "yes"}),
                false,
                "default",
                false,
                Reason::Policy(InjectionPolicy::Disabled),
            ),
            (
                "never_selector_on_fallback",
                "enabled",
                &never_app,
                &none,
                json!({"app": "x"}),
                json!({}),
                false,
                "default",
                false,
                Reason::NeverSelector(0),
            ),
            (
                "always_selector_on_fallback",
                "disabled",
                &none,
                &always_app,
                json!({"app": "x"}),
                json!({}),
                false,
                "default",
                true,
                Reason::AlwaysSelector(0),
            ),
            (
                "never_beats_always",
                "enabled",
                &never_app,
                &always_app,
                json!({"app": "x"}),
                json!({}),
                false,
                "default",
                false,
                Reason::NeverSelector(0),
            ),
            (
                "annotation_beats_never_selector",
                "enabled",
                &never_app,
                &none,
                json!({"app": "x"}),
                json!({INJECT_KEY: "true"}),
                false,
                "default",
                true,
                Reason::Annotation(true),
            ),
            (
                "label_beats_always_selector",
                "disabled",
                &none,
                &always_app,
                json!({"app": "x", INJECT_KEY: "false"}),
                json!({}),
                false,
                "default",
                false,
                Reason::Label(false),
            ),
            (
                "selector_not_matching_leaves_policy",
                "disabled",
                &none,
                &always_app,
                json!({"app": "y"}),
                json!({}),
                false,
                "default",
                false,
                Reason::Policy(InjectionPolicy::Disabled),
            ),
        ];
        for (name, policy, never, always, labels, annotations, host, ns, inject, reason) in cases {
            let decision = evaluate(
                &pod(labels, annotations, host),
                Some(ns),
                &config(policy, never.clone(), always.clone()),
            );
            assert_eq!(decision.inject, inject, "{name}");
            assert_eq!(decision.reason, reason, "{name}");
        }
    }

    #[test]
    fn values_other_than_true_or_false_warn() {
        let d = evaluate(
            &pod(json!({}), json!({INJECT_KEY: "yes"}), false),
            Some("default"),
            &InjectorConfig::default(),
        );
        assert!(d.inject);
        assert_eq!(d.warnings.len(), 1);
        assert!(d.warnings[0].contains("\"yes\""), "{:?}", d.warnings);
    }

    #[test]
    fn pods_without_metadata_or_with_odd_types_do_not_panic() {
        for p in [
            json!({}),
            json!(null),
            json!({"metadata": 3, "spec": []}),
            json!({"metadata": {"labels": [], "annotations": {INJECT_KEY: true}}}),
        ] {
            let d = evaluate(&p, None, &InjectorConfig::default());
            assert!(d.inject);
        }
    }

    #[test]
    fn reasons_read_as_sentences() {
        assert_eq!(
            Reason::Annotation(false).to_string(),
            "annotation sidecar.istio.io/inject is \"false\""
        );
        assert_eq!(
            Decision {
                inject: false,
                reason: Reason::HostNetwork,
                warnings: vec![]
            }
            .to_string(),
            "skipping injection: the pod has host networking enabled (spec.hostNetwork)"
        );
    }
}
