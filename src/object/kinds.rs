//! The workload kinds: each `kind` at each `apiVersion` it is handled for, where it keeps its
//! pods, and which old `apiVersion`s Kubernetes stopped serving (with the one to move to).
//!
//! Port of the kinds Istio's `injectScheme` registers (pkg/kube/inject/initializer.go), plus the
//! workload `apiVersion`s of the seed's era; see [`KINDS`]. `kube-inject` finds pod templates
//! here ([`lookup`]), and the requirement checks find them by kind name ([`template_of`]).

/// Where a registered kind keeps its pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodsAt {
    /// The object is the pod (`kind: Pod`).
    Object,
    /// The pod template sits at this path of map keys, e.g. `spec.template`.
    Template(&'static [&'static str]),
    /// A `List`: each of `items` is handled as an object of its own.
    Items,
}

/// One entry of the kind table: a `kind` for exactly one `apiVersion`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    /// The `apiVersion` the kind is registered for.
    pub api_version: &'static str,
    /// The `kind`.
    pub kind: &'static str,
    /// Where its pods are.
    pub pods: PodsAt,
    /// For an `apiVersion` Kubernetes no longer serves: the one to move to. Manifests of the
    /// seed's era use these, and their pod template sits where it always did.
    pub superseded: Option<Superseded>,
    /// The object whose `metadata` `istioctl kube-inject` writes the status annotation on, when
    /// that is not the pod template (a CronJob's `spec.jobTemplate`).
    pub istio_status_on: Option<&'static [&'static str]>,
}

/// The current `apiVersion` of a kind registered for an old one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Superseded {
    /// The `apiVersion` to move to.
    pub by: &'static str,
    /// The Kubernetes release that stopped serving the old one.
    pub removed_in: &'static str,
}

/// Where most workloads keep their pod template (a Deployment, a StatefulSet, a Job, …).
pub const SPEC_TEMPLATE: &[&str] = &["spec", "template"];

/// Where a CronJob keeps its pod template.
pub const JOB_TEMPLATE: &[&str] = &["spec", "jobTemplate", "spec", "template"];

const fn kind(api_version: &'static str, kind: &'static str, pods: PodsAt) -> Kind {
    Kind {
        api_version,
        kind,
        pods,
        superseded: None,
        istio_status_on: None,
    }
}

/// A workload that keeps its pod template at [`SPEC_TEMPLATE`].
const fn at_spec_template(api_version: &'static str, kind_name: &'static str) -> Kind {
    kind(api_version, kind_name, PodsAt::Template(SPEC_TEMPLATE))
}

/// A CronJob keeps its pods in its job template, and istioctl writes the status on that.
const fn cron_job(api_version: &'static str) -> Kind {
    Kind {
        istio_status_on: Some(&["spec", "jobTemplate"]),
        ..kind(api_version, "CronJob", PodsAt::Template(JOB_TEMPLATE))
    }
}

/// `kind` at an `apiVersion` Kubernetes stopped serving in `removed_in`; `by` replaces it.
const fn old(kind: Kind, by: &'static str, removed_in: &'static str) -> Kind {
    Kind {
        superseded: Some(Superseded { by, removed_in }),
        ..kind
    }
}

/// A workload at a beta `apiVersion` of `extensions` or `apps`, which Kubernetes 1.16 stopped
/// serving.
const fn apps_beta(api_version: &'static str, kind_name: &'static str) -> Kind {
    old(at_spec_template(api_version, kind_name), "apps/v1", "1.16")
}

/// The kinds `kube-inject` handles: Istio master's `injectScheme` (plus the legacy `v1`
/// DeploymentConfig Istio registered from 0.6), and the workload `apiVersion`s Kubernetes no
/// longer serves, some of which Istio 0.5–1.0 registered. Anything else passes through unchanged.
pub const KINDS: &[Kind] = &[
    kind("v1", "Pod", PodsAt::Object),
    at_spec_template("v1", "ReplicationController"),
    kind("v1", "List", PodsAt::Items),
    at_spec_template("apps/v1", "Deployment"),
    at_spec_template("apps/v1", "StatefulSet"),
    at_spec_template("apps/v1", "DaemonSet"),
    at_spec_template("apps/v1", "ReplicaSet"),
    at_spec_template("batch/v1", "Job"),
    cron_job("batch/v1"),
    at_spec_template("apps.openshift.io/v1", "DeploymentConfig"),
    at_spec_template("v1", "DeploymentConfig"),
    apps_beta("extensions/v1beta1", "Deployment"),
    apps_beta("apps/v1beta1", "Deployment"),
    apps_beta("apps/v1beta2", "Deployment"),
    apps_beta("extensions/v1beta1", "DaemonSet"),
    apps_beta("apps/v1beta2", "DaemonSet"),
    apps_beta("extensions/v1beta1", "ReplicaSet"),
    apps_beta("apps/v1beta2", "ReplicaSet"),
    apps_beta("apps/v1beta1", "StatefulSet"),
    apps_beta("apps/v1beta2", "StatefulSet"),
    old(cron_job("batch/v2alpha1"), "batch/v1", "1.21"),
    old(cron_job("batch/v1beta1"), "batch/v1", "1.25"),
];

/// The table entry for `apiVersion` + `kind`, if that pair is handled.
pub fn lookup(api_version: &str, kind: &str) -> Option<&'static Kind> {
    KINDS
        .iter()
        .find(|k| k.api_version == api_version && k.kind == kind)
}

/// The current `apiVersion`s `kind` is handled at (empty when it is not a handled kind).
pub fn current_api_versions(kind: &str) -> Vec<&'static str> {
    KINDS
        .iter()
        .filter(|k| k.kind == kind && k.superseded.is_none())
        .map(|k| k.api_version)
        .collect()
}

/// Where a workload of `kind` keeps its pod template, whatever its `apiVersion`: `None` for a
/// Pod, a List and any kind that is not a workload. A kind keeps its template at the same path
/// at every `apiVersion` it is handled for.
pub fn template_of(kind: &str) -> Option<&'static [&'static str]> {
    KINDS.iter().find_map(|k| match k.pods {
        PodsAt::Template(path) if k.kind == kind => Some(path),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kind_keeps_its_template_at_one_path_at_every_api_version() {
        for k in KINDS {
            if let PodsAt::Template(path) = k.pods {
                assert_eq!(template_of(k.kind), Some(path), "{}", k.kind);
            }
        }
        assert_eq!(template_of("Pod"), None);
        assert_eq!(template_of("List"), None);
        assert_eq!(template_of("Service"), None);
    }
}
