//! Pod spec requirements: the seed's "Pod spec requirements" section (Service association, named
//! ports, Deployments with an `app` label) as checks that return [`Finding`]s.
//!
//! The seed (Istio's "Installing the Istio sidecar") lists what a pod needs to be part of the mesh.
//! Each requirement maps to one check here:
//!
//! | seed requirement | check |
//! |---|---|
//! | *Service association*: the pod belongs to a single Kubernetes Service | [`check_pod`], [`services_selecting`] |
//! | *Named ports*: Service ports are named `<protocol>[-<suffix>]` with `http`, `http2`, `grpc`, `mongo` or `redis` as the protocol, else the traffic is plain TCP (unless the port is `protocol: UDP`) | [`check_service`], [`port_protocol`], [`Protocols`] |
//! | *Deployments with app label*: each Deployment has a distinct `app` label, used as context in distributed tracing | [`check_deployment`], [`check_pod`] |
//! | *Sidecar in every pod in mesh* | the rest of the crate; not checked here |
//!
//! [`check_bundle`] applies them all to the documents of a manifest, as `kube-inject` sees them.
//!
//! The folder holds one job a file: `ports.rs` (the protocols and the port-naming rule),
//! `services.rs` (which Services select a pod), `pods.rs` (pod, Deployment and pod-template
//! checks), `bundle.rs` (a manifest's documents, and the [`Record`] both faces print). This file
//! holds what they share: [`Requirement`] and [`Finding`]. Where a kind keeps its pod template,
//! names and namespaces come from [`crate::object`].
//!
//! Objects are Kubernetes JSON as users write it (`serde_json::Value`), never typed structs, and
//! every input is untrusted: a missing field or a field of the wrong type never panics; it is
//! treated as absent or reported as a finding. Findings are advice for people (a policy warning, a
//! `kube-inject` stderr line or JSON record), not errors: nothing here refuses an object.
//!
//! # Differences from the seed
//! - Port-name protocols are matched ignoring ASCII case, as Istio does (`protocol.Parse` and
//!   `ConvertProtocol` in `pkg/config/kube/conversion.go` use `ToLower`/`EqualFold`). Kubernetes
//!   only admits lower-case port names (`IANA_SVC_NAME`), so case only matters for manifests that
//!   have not been applied yet.
//! - `http-` (an empty suffix) is valid: Istio cuts the name at its first `-` and parses the head.
//! - A protocol may itself contain a `-` (Istio's `grpc-web`): a name matches a protocol when it
//!   equals it or continues with `-`, and the longest matching protocol wins.
//! - A port whose `appProtocol` is a recognised protocol needs no protocol in its name: newer
//!   Istio releases read `appProtocol` before the name.
//! - SCTP ports, like the seed's UDP ports, are not reported: the name only decides how Istio
//!   handles TCP traffic.
//! - A TCP port named `udp[-…]` (when `udp` is among the protocols) is reported: Istio ignores a
//!   UDP name on a TCP port, so its traffic is plain TCP.
//! - An `ExternalName` Service selects no pods: Kubernetes ignores its selector.
//! - The `app` label rule covers Deployments and the pods they create, not DeploymentConfig,
//!   StatefulSet or other workloads: the seed names the Kubernetes `Deployment`, and a warning on
//!   kinds it does not name would surprise Istio users.
//! - "Distinct" is not checked across Deployments: Istio's own samples (bookinfo's `reviews-v1`,
//!   `reviews-v2`, `reviews-v3`) share one `app` label between the Deployments behind one Service
//!   and tell them apart by `version`, so such a check would flag the recommended layout.

mod bundle;
mod pods;
mod ports;
mod services;
#[cfg(test)]
mod test_support;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use bundle::{Record, check_bundle, records};
pub use pods::{check_deployment, check_pod};
pub use ports::{Protocols, ProtocolsError, SEED_PROTOCOLS, check_service, port_protocol};
pub use services::services_selecting;

/// Which of the seed's pod spec requirements a [`Finding`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Requirement {
    /// The pod belongs to a single Kubernetes Service.
    ServiceAssociation,
    /// Service ports are named `<protocol>[-<suffix>]` with a recognised protocol.
    NamedPorts,
    /// Pods of a Deployment carry a distinct `app` label.
    AppLabel,
}

impl fmt::Display for Requirement {
    /// The seed's name for the requirement, lower-cased.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ServiceAssociation => "service association",
            Self::NamedPorts => "named ports",
            Self::AppLabel => "deployments with app label",
        })
    }
}

/// One unmet requirement: which object, which field, what is wrong and how to fix it.
///
/// `Display` gives the one line a person reads (`{object}: {message}; {fix}`); `Serialize` gives
/// the record of `--output-format json`, with `requirement` in camelCase (`namedPorts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The object as people name it: `Service default/sleep`, `Pod default/sleep-abc`,
    /// `Deployment sleep` (the namespace appears when the object names one).
    pub object: String,
    /// The field path inside the object, as in `kubectl explain`: `spec.ports[0].name`.
    pub field: String,
    /// The requirement that is not met.
    pub requirement: Requirement,
    /// What is wrong, starting with the field.
    pub message: String,
    /// How to fix it, with an example where one can be given.
    pub fix: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}; {}", self.object, self.message, self.fix)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn finding_serializes_for_json_output() {
        let finding = Finding {
            object: "Service default/sleep".to_owned(),
            field: "spec.ports[0].name".to_owned(),
            requirement: Requirement::NamedPorts,
            message: "spec.ports[0] has no name".to_owned(),
            fix: "name it".to_owned(),
        };
        let json = serde_json::to_value(&finding).unwrap();
        assert_eq!(
            json,
            json!({
                "object": "Service default/sleep",
                "field": "spec.ports[0].name",
                "requirement": "namedPorts",
                "message": "spec.ports[0] has no name",
                "fix": "name it"
            })
        );
        assert_eq!(serde_json::from_value::<Finding>(json).unwrap(), finding);
        assert_eq!(
            serde_json::to_value(Requirement::ServiceAssociation).unwrap(),
            json!("serviceAssociation")
        );
        assert_eq!(
            serde_json::to_value(Requirement::AppLabel).unwrap(),
            json!("appLabel")
        );
    }
}
