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

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The protocols the seed recognises in a port name: `http`, `http2`, `grpc`, `mongo`, `redis`.
///
/// Chain it with more to extend rather than replace the seed's list:
/// `Protocols::new(SEED_PROTOCOLS.into_iter().chain(["https", "tcp"]))`.
pub const SEED_PROTOCOLS: [&str; 5] = ["http", "http2", "grpc", "mongo", "redis"];

/// The namespace of an object that names none, as `kubectl apply` without `-n` assumes.
const DEFAULT_NAMESPACE: &str = "default";

/// The recognised port-name protocols: the `<protocol>` of `<protocol>[-<suffix>]`.
///
/// [`Default`] is the seed's list ([`SEED_PROTOCOLS`]). A user whose Istio knows more (`https`,
/// `tcp`, `tls`, `udp`, `mysql`, `grpc-web`, …) builds the list with [`Protocols::new`] or
/// deserializes it from a list of strings (policy settings, a CLI config file). Entries are
/// compared ignoring ASCII case and kept in the order given, which is the order messages list
/// them in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct Protocols(Vec<String>);

impl Default for Protocols {
    fn default() -> Self {
        Self(SEED_PROTOCOLS.iter().map(|p| (*p).to_owned()).collect())
    }
}

impl Protocols {
    /// Builds the list from protocol names, dropping repeats (ignoring case).
    ///
    /// Refuses an empty list (every TCP port would be reported) and an entry that cannot be the
    /// head of a port name: it must be letters, digits, `-` and `_`, and neither start nor end
    /// with `-`. An empty entry in particular would make every unnamed port look named.
    pub fn new<I, S>(names: I) -> Result<Self, ProtocolsError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut protocols: Vec<String> = Vec::new();
        for (index, name) in names.into_iter().enumerate() {
            let name = name.into();
            if !is_protocol_name(&name) {
                return Err(ProtocolsError::Invalid { index, name });
            }
            if !protocols.iter().any(|p| p.eq_ignore_ascii_case(&name)) {
                protocols.push(name);
            }
        }
        if protocols.is_empty() {
            return Err(ProtocolsError::Empty);
        }
        Ok(Self(protocols))
    }

    /// The protocols, in the order given.
    pub fn names(&self) -> impl ExactSizeIterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// Whether `protocol` is one of the list, ignoring ASCII case (used for `appProtocol`, which
    /// carries a protocol without a suffix).
    pub fn contains(&self, protocol: &str) -> bool {
        self.0.iter().any(|p| p.eq_ignore_ascii_case(protocol))
    }

    /// The protocol used in example names ("e.g. `http-web`"); the list is never empty.
    fn example(&self) -> &str {
        self.0.first().map_or("http", String::as_str)
    }
}

impl TryFrom<Vec<String>> for Protocols {
    type Error = ProtocolsError;

    fn try_from(names: Vec<String>) -> Result<Self, Self::Error> {
        Self::new(names)
    }
}

impl From<Protocols> for Vec<String> {
    fn from(protocols: Protocols) -> Self {
        protocols.0
    }
}

impl fmt::Display for Protocols {
    /// The list as messages show it: `http, http2, grpc, mongo, redis`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(", "))
    }
}

fn is_protocol_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('-')
        && !name.ends_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Why a list of port-name protocols was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolsError {
    /// The list holds no protocol.
    #[error("the list of port-name protocols is empty; give at least one, e.g. `http`")]
    Empty,
    /// An entry cannot be the `<protocol>` head of a port name.
    #[error(
        "protocol {index} `{name}` is not a port-name protocol: use letters, digits, `-` and `_`, \
         not starting or ending with `-`"
    )]
    Invalid {
        /// Position of the entry in the list, from 0.
        index: usize,
        /// The entry as given.
        name: String,
    },
}

/// The protocol a Service port name declares under the seed's `<protocol>[-<suffix>]` rule, or
/// `None` when the name declares none (Istio then treats the traffic as plain TCP).
///
/// `http` and `http2-foo` declare `http` and `http2`; `http2foo` declares nothing, because a
/// protocol must be the whole name or be followed by `-`. Matching ignores ASCII case, as Istio
/// does; the protocol is returned as spelled in `protocols`. When several protocols match
/// (`grpc` and `grpc-web` for `grpc-web-ui`) the longest wins.
pub fn port_protocol<'p>(name: &str, protocols: &'p Protocols) -> Option<&'p str> {
    protocols
        .names()
        .filter(|protocol| {
            // `get` rather than slicing: a name with multi-byte characters must not panic.
            match (name.get(..protocol.len()), name.get(protocol.len()..)) {
                (Some(head), Some(rest)) => {
                    head.eq_ignore_ascii_case(protocol)
                        && (rest.is_empty() || rest.starts_with('-'))
                }
                _ => false,
            }
        })
        .max_by_key(|protocol| protocol.len())
}

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

/// Checks the seed's *named ports* requirement on a Service: every port in `spec.ports` must be
/// named `<protocol>[-<suffix>]` with a protocol from `protocols`.
///
/// An unnamed port, or one whose name declares no recognised protocol, is reported: its traffic
/// is plain TCP to Istio. UDP ports (the seed: they signal themselves) and SCTP ports are exempt,
/// and so is a port whose `appProtocol` is a recognised protocol. A Service without ports
/// (headless, `ExternalName`) has nothing to report; one with ports is checked whatever its type.
/// `spec.ports` or an entry of the wrong type is reported, never a panic.
pub fn check_service(service: &Value, protocols: &Protocols) -> Vec<Finding> {
    let object = describe(service, "Service");
    let ports = match at(service, &["spec", "ports"]) {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Array(ports)) => ports,
        Some(other) => {
            return vec![Finding {
                object,
                field: "spec.ports".to_owned(),
                requirement: Requirement::NamedPorts,
                message: format!("spec.ports is {}, not a list", type_of(other)),
                fix: format!(
                    "write spec.ports as a list of ports, each named <protocol>[-<suffix>] with \
                     protocol one of {protocols}"
                ),
            }];
        }
    };
    ports
        .iter()
        .enumerate()
        .filter_map(|(index, port)| check_port(&object, index, port, protocols))
        .collect()
}

fn check_port(object: &str, index: usize, port: &Value, protocols: &Protocols) -> Option<Finding> {
    let path = format!("spec.ports[{index}]");
    let finding = |field: String, message: String, fix: String| Finding {
        object: object.to_owned(),
        field,
        requirement: Requirement::NamedPorts,
        message,
        fix,
    };
    let Value::Object(port) = port else {
        return Some(finding(
            path.clone(),
            format!("{path} is {}, not a port", type_of(port)),
            "write each entry of spec.ports as a map with port, protocol and name".to_owned(),
        ));
    };
    // The name only tells Istio how to handle TCP traffic; UDP and SCTP ports signal themselves.
    if matches!(
        port.get("protocol").and_then(Value::as_str),
        Some("UDP" | "SCTP")
    ) {
        return None;
    }
    if port
        .get("appProtocol")
        .and_then(Value::as_str)
        .is_some_and(|p| protocols.contains(p))
    {
        return None;
    }

    let field = format!("{path}.name");
    let traffic = match port.get("port").and_then(Value::as_u64) {
        Some(number) => format!("traffic on port {number} is treated as plain TCP"),
        None => "traffic on this port is treated as plain TCP".to_owned(),
    };
    let example = protocols.example();
    let form = format!("<protocol>[-<suffix>] with protocol one of {protocols}");
    let name = match port.get("name") {
        None | Some(Value::Null) => "",
        Some(Value::String(name)) => name.as_str(),
        Some(other) => {
            return Some(finding(
                field.clone(),
                format!("{field} is {}, not a string; {traffic}", type_of(other)),
                format!(
                    "make it a name of the form {form}, e.g. \"{example}-{}\" for {example} traffic",
                    unnamed_suffix(port)
                ),
            ));
        }
    };
    if name.is_empty() {
        return Some(finding(
            field,
            format!("{path} has no name; {traffic}"),
            format!(
                "name it after the protocol it carries, as {form}, e.g. \"{example}-{}\" for \
                 {example} traffic",
                unnamed_suffix(port)
            ),
        ));
    }
    match port_protocol(name, protocols) {
        // Istio ignores a UDP name on a TCP port (`ConvertProtocol`), so the name misleads.
        Some(protocol) if protocol.eq_ignore_ascii_case("udp") => Some(finding(
            field.clone(),
            format!("{field} {name:?} names UDP but the port's protocol is TCP; {traffic}"),
            "set protocol: UDP if the port carries UDP, or rename it after the TCP protocol it \
             carries"
                .to_owned(),
        )),
        Some(_) => None,
        None => Some(finding(
            field.clone(),
            format!("{field} {name:?} is not of the form {form}; {traffic}"),
            rename_fix(name, protocols),
        )),
    }
}

/// The suffix for an example name of an unnamed port: the target port's name if it has one
/// (it says what the port is), else the port number.
fn unnamed_suffix(port: &Map<String, Value>) -> String {
    match (
        port.get("targetPort"),
        port.get("port").and_then(Value::as_u64),
    ) {
        (Some(Value::String(target)), _) if !target.is_empty() => target.clone(),
        (_, Some(number)) => number.to_string(),
        _ => "web".to_owned(),
    }
}

/// How to rename a port whose name declares no protocol.
fn rename_fix(name: &str, protocols: &Protocols) -> String {
    // The seed's own example: `http2foo` is a protocol glued to its suffix; insert the dash. A
    // one-character rest (`https`) is more likely another protocol than a suffix, so it gets the
    // general advice instead of a rename that would change how the traffic is handled.
    let glued = protocols
        .names()
        .filter_map(|protocol| {
            let head = name.get(..protocol.len())?;
            let rest = name.get(protocol.len()..)?;
            let glued = head.eq_ignore_ascii_case(protocol)
                && rest.len() >= 2
                && rest.starts_with(|c: char| c.is_ascii_alphanumeric());
            glued.then_some((head, rest))
        })
        .max_by_key(|(head, _)| head.len());
    match glued {
        Some((head, rest)) => format!("rename it, e.g. \"{head}-{rest}\""),
        None => {
            let example = protocols.example();
            format!(
                "rename it after the protocol it carries, e.g. \"{example}-{name}\" for {example} \
                 traffic"
            )
        }
    }
}

/// The Services in `namespace` that select a pod with `pod_labels`, in the order given.
///
/// Kubernetes semantics: a Service selects a pod when its `spec.selector` (equality-based, a map
/// of label to value) is non-empty and every entry equals the pod's label. A Service without a
/// selector, with an empty one, or with one that is not a map selects nothing, and so does an
/// `ExternalName` Service. A selector or label value that is not a string matches nothing. A
/// Service without `metadata.namespace` is in `default`.
pub fn services_selecting<'s>(
    pod_labels: &Value,
    namespace: &str,
    services: &'s [Value],
) -> Vec<&'s Value> {
    select(pod_labels, namespace, services)
}

fn select<'s>(
    pod_labels: &Value,
    namespace: &str,
    services: impl IntoIterator<Item = &'s Value>,
) -> Vec<&'s Value> {
    services
        .into_iter()
        .filter(|service| namespace_of(service) == namespace && selects(service, pod_labels))
        .collect()
}

fn selects(service: &Value, pod_labels: &Value) -> bool {
    if str_at(service, &["spec", "type"]) == Some("ExternalName") {
        return false;
    }
    let Some(Value::Object(selector)) = at(service, &["spec", "selector"]) else {
        return false;
    };
    !selector.is_empty()
        && selector.iter().all(|(key, wanted)| {
            wanted
                .as_str()
                .is_some_and(|wanted| pod_labels.get(key).and_then(Value::as_str) == Some(wanted))
        })
}

/// Checks the seed's pod requirements on a Pod or a pod template (`{metadata, spec}`).
///
/// - *Service association*, when `services` is given: exactly one of them must select the pod
///   (see [`services_selecting`]); none or several is a finding. The pod's namespace is
///   `metadata.namespace`, or `default` when absent; the API server sets it on every Pod it sends
///   to admission. With `None` (the caller cannot list Services) the check is skipped.
/// - *App label*, for a Pod created by a Deployment, which is one owned by a ReplicaSet
///   (`metadata.ownerReferences`) and carrying a `pod-template-hash` label. The fix names the
///   Deployment, since a label added to the Pod itself would be lost on the next rollout.
pub fn check_pod(pod: &Value, services: Option<&[Value]>) -> Vec<Finding> {
    let services: Option<Vec<&Value>> = services.map(|s| s.iter().collect());
    pod_findings(pod, services.as_deref())
}

fn pod_findings(pod: &Value, services: Option<&[&Value]>) -> Vec<Finding> {
    let owner = deployment_of(pod);
    let hint = owner
        .as_deref()
        .filter(|deployment| !deployment.is_empty())
        .map_or_else(|| name_hint(pod), str::to_owned);
    let template = Template {
        template: pod,
        object: describe(pod, "pod template"),
        prefix: "",
        namespace: namespace_of(pod),
        hint,
    };
    let app_rule = owner.map_or(AppRule::Skip, AppRule::OwnedBy);
    template.check(services, &app_rule)
}

/// Checks a Deployment: the seed's *app label* requirement on `spec.template.metadata.labels.app`
/// (missing, empty or not a string is a finding whose fix suggests the Deployment's name), then
/// the pod checks of [`check_pod`] on its pod template, in the Deployment's namespace.
pub fn check_deployment(deployment: &Value, services: Option<&[Value]>) -> Vec<Finding> {
    let services: Option<Vec<&Value>> = services.map(|s| s.iter().collect());
    workload_template(deployment, &DEPLOYMENT).check(services.as_deref(), &AppRule::Template)
}

/// Findings of [`check_bundle`] as the records of `kube-inject check --output-format json`:
/// each finding's fields plus `document`, the index of the document it was found in.
pub fn bundle_records(findings: &[(usize, Finding)]) -> Value {
    let records = findings
        .iter()
        .map(|(document, finding)| {
            let mut record = Map::new();
            record.insert("document".into(), Value::from(*document));
            // A finding is strings and a unit enum: it always serializes to an object.
            if let Ok(Value::Object(fields)) = serde_json::to_value(finding) {
                record.extend(fields);
            }
            Value::Object(record)
        })
        .collect();
    Value::Array(records)
}

/// Checks a manifest bundle, as `kube-inject` reads it: `(document index, object)` pairs.
///
/// Services get [`check_service`]. Workloads (the kinds `kube-inject` injects: Deployment,
/// StatefulSet, DaemonSet, ReplicaSet, Job, CronJob through `spec.jobTemplate.spec.template`,
/// ReplicationController, DeploymentConfig, Pod) get the Service association check of their pod
/// template against the bundle's Services in the same namespace (absent means `default`), taken
/// as the complete set. The app label rule applies to Deployments (and Pods owned by one), see the
/// module's differences. Items of a `List` are checked as documents of their own and reported
/// with the List's index; Services inside a List count too. Other kinds are ignored.
///
/// Kinds are matched by name, whatever the `apiVersion`: the requirements concern the pods a
/// workload creates, not whether `kube-inject` can inject that version.
pub fn check_bundle(objects: &[(usize, Value)], protocols: &Protocols) -> Vec<(usize, Finding)> {
    let documents = flatten(objects);
    let services: Vec<&Value> = documents
        .iter()
        .filter(|(_, object)| kind_of(object) == Some("Service"))
        .map(|(_, object)| *object)
        .collect();
    let mut findings = Vec::new();
    for (index, object) in documents {
        let found = match kind_of(object) {
            Some("Service") => check_service(object, protocols),
            Some("Pod") => pod_findings(object, Some(&services)),
            Some(kind) => match WORKLOADS.iter().find(|workload| workload.kind == kind) {
                Some(workload) => {
                    let app_rule = if workload.app_label {
                        AppRule::Template
                    } else {
                        AppRule::Skip
                    };
                    workload_template(object, workload).check(Some(&services), &app_rule)
                }
                None => Vec::new(),
            },
            None => Vec::new(),
        };
        findings.extend(found.into_iter().map(|finding| (index, finding)));
    }
    findings
}

/// Where a workload keeps its pod template, and whether the app label rule applies to it.
struct Workload {
    kind: &'static str,
    template: &'static [&'static str],
    prefix: &'static str,
    /// The seed's app label rule applies (Deployments only).
    app_label: bool,
}

const DEPLOYMENT: Workload = Workload {
    kind: "Deployment",
    template: &["spec", "template"],
    prefix: "spec.template.",
    app_label: true,
};

/// The workload kinds `kube-inject` injects (Istio's `injectScheme`), other than Pod and List.
const WORKLOADS: &[Workload] = &[
    DEPLOYMENT,
    spec_template("StatefulSet"),
    spec_template("DaemonSet"),
    spec_template("ReplicaSet"),
    spec_template("Job"),
    spec_template("ReplicationController"),
    spec_template("DeploymentConfig"),
    Workload {
        kind: "CronJob",
        template: &["spec", "jobTemplate", "spec", "template"],
        prefix: "spec.jobTemplate.spec.template.",
        app_label: false,
    },
];

const fn spec_template(kind: &'static str) -> Workload {
    Workload {
        kind,
        template: &["spec", "template"],
        prefix: "spec.template.",
        app_label: false,
    }
}

/// Whether and how the seed's app label rule applies to a pod template.
enum AppRule {
    /// Not a Deployment's pods.
    Skip,
    /// The template of a Deployment: fix the label right there.
    Template,
    /// A Pod created by the named Deployment: fix the label in the Deployment.
    OwnedBy(String),
}

/// A pod template in context: the object it belongs to, where it sits, its namespace.
struct Template<'v> {
    /// `{metadata, spec}`: a Pod or the template inside a workload.
    template: &'v Value,
    /// The object findings name: the Pod or the workload.
    object: String,
    /// The template's path inside the object, ending in `.` (empty for a Pod).
    prefix: &'static str,
    namespace: &'v str,
    /// An `app` value to suggest: the Deployment's or the object's name.
    hint: String,
}

static NULL: Value = Value::Null;

fn workload_template<'v>(workload: &'v Value, kind: &Workload) -> Template<'v> {
    Template {
        template: at(workload, kind.template).unwrap_or(&NULL),
        object: describe(workload, kind.kind),
        prefix: kind.prefix,
        namespace: namespace_of(workload),
        hint: name_hint(workload),
    }
}

impl Template<'_> {
    fn check(&self, services: Option<&[&Value]>, app_rule: &AppRule) -> Vec<Finding> {
        let mut findings = Vec::new();
        if !matches!(app_rule, AppRule::Skip) {
            findings.extend(self.check_app_label(app_rule));
        }
        if let Some(services) = services {
            findings.extend(self.check_association(services));
        }
        findings
    }

    fn labels(&self) -> &Value {
        at(self.template, &["metadata", "labels"]).unwrap_or(&NULL)
    }

    fn check_association(&self, services: &[&Value]) -> Option<Finding> {
        let labels = self.labels();
        let selecting = select(labels, self.namespace, services.iter().copied());
        let namespace = self.namespace;
        let field = format!("{}metadata.labels", self.prefix);
        let (message, fix) = match selecting.as_slice() {
            [_] => return None,
            [] => {
                let shown = string_labels(labels);
                if shown.is_empty() {
                    (
                        format!(
                            "{field} is empty, so no Service can select this pod; a pod in the \
                             mesh must belong to exactly one Service"
                        ),
                        format!(
                            "add a label, e.g. app: {}, and a Service in namespace {namespace} \
                             whose spec.selector matches it",
                            self.hint
                        ),
                    )
                } else {
                    let (key, value) = shown
                        .iter()
                        .find(|(key, _)| *key == "app")
                        .or_else(|| shown.first())
                        .copied()
                        .unwrap_or(("app", self.hint.as_str()));
                    (
                        format!(
                            "no Service in namespace {namespace} selects this pod (labels {}); a \
                             pod in the mesh must belong to exactly one Service",
                            join_labels(&shown)
                        ),
                        format!(
                            "create a Service in namespace {namespace} whose spec.selector \
                             matches these labels, e.g. selector: {{{key}: {value}}}"
                        ),
                    )
                }
            }
            several => (
                format!(
                    "{} Services in namespace {namespace} select this pod ({}); a pod in the mesh \
                     must belong to a single Service",
                    several.len(),
                    several
                        .iter()
                        .map(|s| object_name(s).unwrap_or_else(|| "(unnamed)".to_owned()))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                format!(
                    "change {field} or the Services' selectors so that exactly one Service \
                     selects this pod"
                ),
            ),
        };
        Some(Finding {
            object: self.object.clone(),
            field,
            requirement: Requirement::ServiceAssociation,
            message,
            fix,
        })
    }

    fn check_app_label(&self, app_rule: &AppRule) -> Option<Finding> {
        let field = format!("{}metadata.labels.app", self.prefix);
        let problem = match self.labels().get("app") {
            None | Some(Value::Null) => "is missing".to_owned(),
            Some(Value::String(app)) if app.trim().is_empty() => "is empty".to_owned(),
            Some(Value::String(_)) => return None,
            Some(other) => format!("is {}, not a string", type_of(other)),
        };
        let place = match app_rule {
            AppRule::OwnedBy(deployment) if !deployment.is_empty() => {
                format!(" to the pod template of Deployment {deployment}")
            }
            AppRule::OwnedBy(_) => " to the pod template of its Deployment".to_owned(),
            AppRule::Skip | AppRule::Template => String::new(),
        };
        Some(Finding {
            object: self.object.clone(),
            field: field.clone(),
            requirement: Requirement::AppLabel,
            message: format!(
                "{field} {problem} (Istio uses the app label as context in distributed tracing)"
            ),
            fix: format!("add a distinct app label{place}, e.g. app: {}", self.hint),
        })
    }
}

/// The Deployment that created a Pod: the Pod is owned by a ReplicaSet and carries the
/// `pod-template-hash` label that a Deployment's ReplicaSets add. The ReplicaSet is named
/// `<deployment>-<hash>`, which gives the Deployment's name back (empty if the owner has none).
fn deployment_of(pod: &Value) -> Option<String> {
    let hash = str_at(pod, &["metadata", "labels", "pod-template-hash"])?;
    let owners = at(pod, &["metadata", "ownerReferences"])?.as_array()?;
    let replica_set = owners
        .iter()
        .find(|owner| str_at(owner, &["kind"]) == Some("ReplicaSet"))?;
    let name = str_at(replica_set, &["name"]).unwrap_or_default();
    let deployment = name
        .strip_suffix(hash)
        .and_then(|rest| rest.strip_suffix('-'))
        .filter(|rest| !rest.is_empty())
        .unwrap_or(name);
    Some(deployment.to_owned())
}

/// Flattens `List` documents into their items, keeping the List's index and the document order.
pub(crate) fn flatten(objects: &[(usize, Value)]) -> Vec<(usize, &Value)> {
    let mut out = Vec::new();
    // An explicit stack rather than recursion: a deeply nested List cannot overflow it.
    let mut stack: Vec<(usize, &Value)> = objects
        .iter()
        .rev()
        .map(|(index, object)| (*index, object))
        .collect();
    while let Some((index, object)) = stack.pop() {
        match (kind_of(object), object.get("items")) {
            (Some("List"), Some(Value::Array(items))) => {
                stack.extend(items.iter().rev().map(|item| (index, item)));
            }
            _ => out.push((index, object)),
        }
    }
    out
}

/// The value at a path of map keys; `None` when a key is missing or a step is not a map.
fn at<'v>(value: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(value, |value, key| value.get(key))
}

fn str_at<'v>(value: &'v Value, path: &[&str]) -> Option<&'v str> {
    at(value, path)?.as_str()
}

fn kind_of(object: &Value) -> Option<&str> {
    str_at(object, &["kind"])
}

fn namespace_of(object: &Value) -> &str {
    str_at(object, &["metadata", "namespace"])
        .filter(|namespace| !namespace.is_empty())
        .unwrap_or(DEFAULT_NAMESPACE)
}

/// The object's name; a Pod created by a controller has only `generateName` at admission, shown
/// as `sleep-7f9c8d-*`.
fn object_name(object: &Value) -> Option<String> {
    if let Some(name) = str_at(object, &["metadata", "name"]).filter(|n| !n.is_empty()) {
        return Some(name.to_owned());
    }
    str_at(object, &["metadata", "generateName"])
        .filter(|n| !n.is_empty())
        .map(|prefix| format!("{prefix}*"))
}

/// `Kind namespace/name`, or `Kind name` when the object names no namespace (a manifest applied
/// with `-n`), or just the kind when it has no name either.
fn describe(object: &Value, default_kind: &str) -> String {
    let kind = kind_of(object)
        .filter(|kind| !kind.is_empty())
        .unwrap_or(default_kind);
    let namespace = str_at(object, &["metadata", "namespace"]).filter(|n| !n.is_empty());
    match (namespace, object_name(object)) {
        (Some(namespace), Some(name)) => format!("{kind} {namespace}/{name}"),
        (None, Some(name)) => format!("{kind} {name}"),
        (_, None) => kind.to_owned(),
    }
}

/// A value for `app` to suggest: the object's name, else its `generateName` without the trailing
/// dash, else a placeholder.
fn name_hint(object: &Value) -> String {
    str_at(object, &["metadata", "name"])
        .or_else(|| str_at(object, &["metadata", "generateName"]))
        .map(|name| name.trim_end_matches('-'))
        .filter(|name| !name.is_empty())
        .unwrap_or("my-app")
        .to_owned()
}

/// The labels with string values, in their order; others can never match a selector.
fn string_labels(labels: &Value) -> Vec<(&str, &str)> {
    labels
        .as_object()
        .map(|labels| {
            labels
                .iter()
                .filter_map(|(key, value)| Some((key.as_str(), value.as_str()?)))
                .collect()
        })
        .unwrap_or_default()
}

fn join_labels(labels: &[(&str, &str)]) -> String {
    labels
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How a value of the wrong type is named in a message: `a number (80)`, `a list`.
fn type_of(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("a boolean ({b})"),
        Value::Number(n) => format!("a number ({n})"),
        Value::String(_) => "a string".to_owned(),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "a map".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    /// The seed's sleep sample (`samples/sleep/sleep.yaml`), as documents of a bundle.
    fn sleep_bundle() -> Vec<(usize, Value)> {
        vec![
            (
                0,
                json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sleep"}}),
            ),
            (1, sleep_service()),
            (2, sleep_deployment()),
        ]
    }

    fn sleep_service() -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "sleep", "labels": {"app": "sleep", "service": "sleep"}},
            "spec": {"ports": [{"port": 80, "name": "http"}], "selector": {"app": "sleep"}}
        })
    }

    fn sleep_deployment() -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "sleep"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "sleep"}},
                "template": {
                    "metadata": {"labels": {"app": "sleep"}},
                    "spec": {
                        "serviceAccountName": "sleep",
                        "containers": [{"name": "sleep", "image": "curlimages/curl"}]
                    }
                }
            }
        })
    }

    fn service(name: &str, selector: Value) -> Value {
        json!({
            "kind": "Service",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"selector": selector, "ports": [{"port": 80, "name": "http"}]}
        })
    }

    fn service_with_ports(ports: Value) -> Value {
        json!({
            "kind": "Service",
            "metadata": {"name": "sleep", "namespace": "default"},
            "spec": {"ports": ports}
        })
    }

    /// A Pod as a Deployment's ReplicaSet creates it at admission: generateName, owner, hash.
    fn deployment_pod(labels: Value) -> Value {
        json!({
            "kind": "Pod",
            "metadata": {
                "generateName": "sleep-7f9c8d-",
                "namespace": "default",
                "labels": labels,
                "ownerReferences": [
                    {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "sleep-7f9c8d"}
                ]
            },
            "spec": {"containers": [{"name": "sleep"}]}
        })
    }

    fn fields_of(findings: &[Finding]) -> Vec<&str> {
        findings.iter().map(|f| f.field.as_str()).collect()
    }

    fn requirements_of(findings: &[Finding]) -> Vec<Requirement> {
        findings.iter().map(|f| f.requirement).collect()
    }

    #[test]
    fn default_protocols_are_the_seeds() {
        let protocols = Protocols::default();
        assert_eq!(protocols.names().collect::<Vec<_>>(), SEED_PROTOCOLS);
        assert_eq!(protocols.to_string(), "http, http2, grpc, mongo, redis");
    }

    #[test]
    fn port_names_follow_protocol_dash_suffix() {
        let seed = Protocols::default();
        let cases: &[(&str, Option<&str>)] = &[
            ("http", Some("http")),
            ("http2-foo", Some("http2")),
            ("http2foo", None),
            ("http-", Some("http")),
            ("http-web-v1", Some("http")),
            ("grpc", Some("grpc")),
            ("grpc-web", Some("grpc")),
            ("mongo", Some("mongo")),
            ("redis-cache", Some("redis")),
            ("HTTP-web", Some("http")),
            ("Http2", Some("http2")),
            ("https", None),
            ("tcp", None),
            ("web", None),
            ("", None),
            ("-http", None),
            ("h\u{e9}llo", None),
            ("htt\u{e9}", None),
            ("\u{1f600}", None),
        ];
        for (name, expected) in cases {
            assert_eq!(port_protocol(name, &seed), *expected, "port name {name:?}");
        }
    }

    #[test]
    fn http2foo_is_not_a_valid_port_name() {
        let service = json!({
            "kind": "Service",
            "metadata": {"name": "sleep", "namespace": "default"},
            "spec": {"ports": [{"port": 80, "name": "http2foo"}]}
        });
        let findings = check_service(&service, &Protocols::default());
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].field, "spec.ports[0].name");
        assert_eq!(findings[0].requirement, Requirement::NamedPorts);
        assert_eq!(
            findings[0].to_string(),
            "Service default/sleep: spec.ports[0].name \"http2foo\" is not of the form \
             <protocol>[-<suffix>] with protocol one of http, http2, grpc, mongo, redis; traffic \
             on port 80 is treated as plain TCP; rename it, e.g. \"http2-foo\""
        );
    }

    #[test]
    fn user_protocols_extend_the_seed_list() {
        let protocols =
            Protocols::new(SEED_PROTOCOLS.into_iter().chain(["https", "tcp", "mysql"])).unwrap();
        assert_eq!(port_protocol("https", &protocols), Some("https"));
        assert_eq!(port_protocol("tcp-db", &protocols), Some("tcp"));
        assert_eq!(port_protocol("mysql", &protocols), Some("mysql"));
        assert_eq!(port_protocol("tls", &protocols), None);
        let service = service_with_ports(json!([{"port": 443, "name": "https"}]));
        assert!(check_service(&service, &protocols).is_empty());
    }

    #[test]
    fn longest_matching_protocol_wins() {
        let protocols = Protocols::new(["grpc", "grpc-web"]).unwrap();
        assert_eq!(port_protocol("grpc-web-ui", &protocols), Some("grpc-web"));
        assert_eq!(port_protocol("grpc-ui", &protocols), Some("grpc"));
    }

    #[test]
    fn protocol_is_returned_as_configured() {
        let protocols = Protocols::new(["HTTP", "http"]).unwrap();
        assert_eq!(protocols.names().collect::<Vec<_>>(), ["HTTP"]);
        assert_eq!(port_protocol("http-web", &protocols), Some("HTTP"));
    }

    #[test]
    fn protocols_refuse_empty_lists_and_unusable_entries() {
        let cases: &[(&[&str], ProtocolsError)] = &[
            (&[], ProtocolsError::Empty),
            (
                &["http", ""],
                ProtocolsError::Invalid {
                    index: 1,
                    name: String::new(),
                },
            ),
            (
                &["-http"],
                ProtocolsError::Invalid {
                    index: 0,
                    name: "-http".to_owned(),
                },
            ),
            (
                &["http", "grpc-"],
                ProtocolsError::Invalid {
                    index: 1,
                    name: "grpc-".to_owned(),
                },
            ),
            (
                &["my sql"],
                ProtocolsError::Invalid {
                    index: 0,
                    name: "my sql".to_owned(),
                },
            ),
        ];
        for (names, expected) in cases {
            assert_eq!(
                Protocols::new(names.iter().copied()).as_ref(),
                Err(expected),
                "{names:?}"
            );
        }
    }

    #[test]
    fn protocols_deserialize_from_a_list_of_strings() {
        let protocols: Protocols = serde_json::from_value(json!(["http", "https", "tcp"])).unwrap();
        assert_eq!(
            protocols.names().collect::<Vec<_>>(),
            ["http", "https", "tcp"]
        );
        assert_eq!(
            serde_json::to_value(&protocols).unwrap(),
            json!(["http", "https", "tcp"])
        );

        let error = serde_json::from_value::<Protocols>(json!(["http", ""]))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("protocol 1 `` is not a port-name protocol"),
            "{error}"
        );
        assert!(serde_json::from_value::<Protocols>(json!([])).is_err());
        assert!(serde_json::from_value::<Protocols>(json!("http")).is_err());
        assert!(serde_json::from_value::<Protocols>(json!([80])).is_err());
    }

    #[test]
    fn well_named_service_has_no_findings() {
        assert!(check_service(&sleep_service(), &Protocols::default()).is_empty());
    }

    #[test]
    fn unnamed_tcp_port_is_reported() {
        let cases = [
            json!({"port": 80}),
            json!({"port": 80, "protocol": "TCP"}),
            json!({"port": 80, "name": ""}),
            json!({"port": 80, "name": null}),
        ];
        for port in cases {
            let findings = check_service(&service_with_ports(json!([port])), &Protocols::default());
            assert_eq!(findings.len(), 1, "{port}");
            assert_eq!(findings[0].field, "spec.ports[0].name");
            assert_eq!(
                findings[0].to_string(),
                "Service default/sleep: spec.ports[0] has no name; traffic on port 80 is treated \
                 as plain TCP; name it after the protocol it carries, as <protocol>[-<suffix>] \
                 with protocol one of http, http2, grpc, mongo, redis, e.g. \"http-80\" for http \
                 traffic"
            );
        }
    }

    #[test]
    fn unnamed_port_example_uses_the_target_port_name() {
        let service = service_with_ports(json!([{"port": 80, "targetPort": "web"}]));
        let findings = check_service(&service, &Protocols::default());
        assert!(
            findings[0].fix.contains("e.g. \"http-web\""),
            "{}",
            findings[0]
        );
    }

    #[test]
    fn udp_port_may_be_unnamed() {
        let cases = [
            json!({"port": 53, "protocol": "UDP"}),
            json!({"port": 53, "protocol": "UDP", "name": "dns"}),
            json!({"port": 9899, "protocol": "SCTP"}),
        ];
        for port in cases {
            let service = service_with_ports(json!([port]));
            assert!(
                check_service(&service, &Protocols::default()).is_empty(),
                "{port}"
            );
        }
    }

    #[test]
    fn tcp_port_named_udp_is_reported() {
        let protocols = Protocols::new(["http", "udp"]).unwrap();
        let service = service_with_ports(json!([{"port": 53, "name": "udp-dns"}]));
        let findings = check_service(&service, &protocols);
        assert_eq!(findings.len(), 1);
        assert!(findings[0].message.contains("names UDP"), "{}", findings[0]);
        assert!(findings[0].fix.contains("protocol: UDP"), "{}", findings[0]);
    }

    #[test]
    fn recognised_app_protocol_names_the_port() {
        let service = service_with_ports(json!([
            {"port": 80, "appProtocol": "http"},
            {"port": 81, "name": "web", "appProtocol": "HTTP2"},
            {"port": 82, "name": "web", "appProtocol": "kubernetes.io/h2c"}
        ]));
        let findings = check_service(&service, &Protocols::default());
        assert_eq!(fields_of(&findings), ["spec.ports[2].name"]);
    }

    #[test]
    fn every_bad_port_is_reported_with_its_index() {
        let service = service_with_ports(json!([
            {"port": 80, "name": "http"},
            {"port": 81, "name": "web"},
            {"port": 53, "protocol": "UDP"},
            {"port": 82}
        ]));
        let findings = check_service(&service, &Protocols::default());
        assert_eq!(
            fields_of(&findings),
            ["spec.ports[1].name", "spec.ports[3].name"]
        );
    }

    #[test]
    fn rename_suggestions_never_change_the_protocol_by_accident() {
        let seed = Protocols::default();
        let cases = [
            ("http2foo", "rename it, e.g. \"http2-foo\""),
            ("grpcweb", "rename it, e.g. \"grpc-web\""),
            ("HTTPbin", "rename it, e.g. \"HTTP-bin\""),
            (
                "https",
                "rename it after the protocol it carries, e.g. \"http-https\" for http traffic",
            ),
            (
                "web",
                "rename it after the protocol it carries, e.g. \"http-web\" for http traffic",
            ),
            (
                "http_web",
                "rename it after the protocol it carries, e.g. \"http-http_web\" for http traffic",
            ),
        ];
        for (name, fix) in cases {
            assert_eq!(rename_fix(name, &seed), fix, "{name}");
        }
    }

    #[test]
    fn service_without_ports_has_no_findings() {
        let protocols = Protocols::default();
        let cases = [
            json!({"kind": "Service", "metadata": {"name": "db"}, "spec": {"clusterIP": "None"}}),
            json!({"kind": "Service", "metadata": {"name": "ext"},
                   "spec": {"type": "ExternalName", "externalName": "example.com"}}),
            json!({"kind": "Service", "metadata": {"name": "db"}, "spec": {"ports": null}}),
            json!({"kind": "Service", "metadata": {"name": "db"}, "spec": {"ports": []}}),
        ];
        for service in cases {
            assert!(check_service(&service, &protocols).is_empty(), "{service}");
        }
    }

    #[test]
    fn headless_and_external_name_service_ports_are_still_checked() {
        let protocols = Protocols::default();
        for spec in [
            json!({"clusterIP": "None", "ports": [{"port": 5432}]}),
            json!({"type": "ExternalName", "externalName": "example.com", "ports": [{"port": 5432}]}),
        ] {
            let service = json!({"kind": "Service", "metadata": {"name": "db"}, "spec": spec});
            assert_eq!(check_service(&service, &protocols).len(), 1, "{service}");
        }
    }

    #[test]
    fn malformed_services_are_reported_or_ignored_without_panicking() {
        let protocols = Protocols::default();
        // (service, expected finding fields)
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (json!(null), vec![]),
            (json!("Service"), vec![]),
            (json!([]), vec![]),
            (json!({"spec": []}), vec![]),
            (json!({"spec": {"ports": "80"}}), vec!["spec.ports"]),
            (json!({"spec": {"ports": {"port": 80}}}), vec!["spec.ports"]),
            (
                json!({"spec": {"ports": [80, null, "http"]}}),
                vec!["spec.ports[0]", "spec.ports[1]", "spec.ports[2]"],
            ),
            (
                json!({"spec": {"ports": [{"port": 80, "name": 80}]}}),
                vec!["spec.ports[0].name"],
            ),
            (
                json!({"spec": {"ports": [{"port": "eighty", "name": ["http"]}]}}),
                vec!["spec.ports[0].name"],
            ),
            (
                json!({"spec": {"ports": [{"port": 80, "protocol": 17, "appProtocol": 1}]}}),
                vec!["spec.ports[0].name"],
            ),
            (
                json!({"metadata": "sleep", "spec": {"ports": [{"name": "http"}]}}),
                vec![],
            ),
        ];
        for (service, fields) in cases {
            let findings = check_service(&service, &protocols);
            assert_eq!(fields_of(&findings), fields, "{service}");
        }
    }

    #[test]
    fn wrong_typed_port_name_is_described() {
        let service = service_with_ports(json!([{"port": 80, "name": 80}]));
        let findings = check_service(&service, &Protocols::default());
        assert_eq!(
            findings[0].message,
            "spec.ports[0].name is a number (80), not a string; traffic on port 80 is treated as \
             plain TCP"
        );
    }

    #[test]
    fn service_selects_pods_whose_labels_include_its_selector() {
        let services = [
            service("app", json!({"app": "sleep"})),
            service("app-and-version", json!({"app": "sleep", "version": "v1"})),
            service("other-app", json!({"app": "httpbin"})),
            service("more-labels", json!({"app": "sleep", "tier": "web"})),
        ];
        let labels = json!({"app": "sleep", "version": "v1"});
        let selected: Vec<_> = services_selecting(&labels, "default", &services)
            .into_iter()
            .filter_map(object_name)
            .collect();
        assert_eq!(selected, ["app", "app-and-version"]);
    }

    #[test]
    fn service_without_selector_selects_nothing() {
        let labels = json!({"app": "sleep"});
        let services = [
            json!({"kind": "Service", "metadata": {"name": "manual"}, "spec": {"ports": []}}),
            service("empty", json!({})),
            service("null", json!(null)),
        ];
        assert!(services_selecting(&labels, "default", &services).is_empty());
    }

    #[test]
    fn service_selects_only_in_its_namespace() {
        let labels = json!({"app": "sleep"});
        let mut elsewhere = service("sleep", json!({"app": "sleep"}));
        elsewhere["metadata"]["namespace"] = json!("prod");
        let mut unset = service("sleep", json!({"app": "sleep"}));
        unset["metadata"]
            .as_object_mut()
            .map(|m| m.remove("namespace"));
        let services = [elsewhere, unset];
        assert_eq!(services_selecting(&labels, "prod", &services).len(), 1);
        assert_eq!(services_selecting(&labels, "default", &services).len(), 1);
        assert!(services_selecting(&labels, "staging", &services).is_empty());
    }

    #[test]
    fn external_name_service_selects_nothing() {
        let mut external = service("ext", json!({"app": "sleep"}));
        external["spec"]["type"] = json!("ExternalName");
        let services = [external];
        assert!(services_selecting(&json!({"app": "sleep"}), "default", &services).is_empty());
    }

    #[test]
    fn malformed_selectors_and_labels_match_nothing() {
        // (selector, pod labels): none of these may select the pod.
        let cases = [
            (json!("app=sleep"), json!({"app": "sleep"})),
            (json!(["app", "sleep"]), json!({"app": "sleep"})),
            (json!({"app": 1}), json!({"app": 1})),
            (json!({"app": null}), json!({"app": null})),
            (json!({"app": true}), json!({"app": "true"})),
            (json!({"app": "sleep"}), json!({"app": ["sleep"]})),
            (json!({"app": "sleep"}), json!("app=sleep")),
            (json!({"app": "sleep"}), json!(null)),
            (json!({"app": "sleep"}), json!({"App": "sleep"})),
        ];
        for (selector, labels) in cases {
            let services = [service("sleep", selector.clone())];
            assert!(
                services_selecting(&labels, "default", &services).is_empty(),
                "selector {selector} labels {labels}"
            );
        }
    }

    #[test]
    fn pod_selected_by_one_service_has_no_findings() {
        let pod = json!({
            "kind": "Pod",
            "metadata": {"name": "sleep", "namespace": "default", "labels": {"app": "sleep"}}
        });
        let services = [service("sleep", json!({"app": "sleep"}))];
        assert!(check_pod(&pod, Some(&services)).is_empty());
    }

    #[test]
    fn pod_selected_by_two_services_is_reported() {
        let pod = json!({
            "kind": "Pod",
            "metadata": {"name": "sleep-abc", "namespace": "default", "labels": {"app": "sleep"}}
        });
        let services = [
            service("sleep", json!({"app": "sleep"})),
            service("sleep-admin", json!({"app": "sleep"})),
        ];
        let findings = check_pod(&pod, Some(&services));
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].requirement, Requirement::ServiceAssociation);
        assert_eq!(findings[0].field, "metadata.labels");
        assert_eq!(
            findings[0].to_string(),
            "Pod default/sleep-abc: 2 Services in namespace default select this pod (sleep, \
             sleep-admin); a pod in the mesh must belong to a single Service; change \
             metadata.labels or the Services' selectors so that exactly one Service selects this \
             pod"
        );
    }

    #[test]
    fn pod_selected_by_no_service_is_reported() {
        let pod = json!({
            "kind": "Pod",
            "metadata": {"name": "sleep-abc", "namespace": "default",
                         "labels": {"app": "sleep", "version": "v1"}}
        });
        let services = [service("httpbin", json!({"app": "httpbin"}))];
        let findings = check_pod(&pod, Some(&services));
        assert_eq!(findings.len(), 1);
        assert_eq!(
            findings[0].to_string(),
            "Pod default/sleep-abc: no Service in namespace default selects this pod (labels \
             app=sleep, version=v1); a pod in the mesh must belong to exactly one Service; create \
             a Service in namespace default whose spec.selector matches these labels, e.g. \
             selector: {app: sleep}"
        );
    }

    #[test]
    fn pod_without_labels_cannot_be_selected() {
        for labels in [
            json!(null),
            json!({}),
            json!({"app": 3}),
            json!("app=sleep"),
        ] {
            let pod = json!({"kind": "Pod", "metadata": {"name": "sleep", "labels": labels}});
            let findings = check_pod(&pod, Some(&[]));
            assert_eq!(findings.len(), 1, "{labels}");
            assert_eq!(
                findings[0].to_string(),
                "Pod sleep: metadata.labels is empty, so no Service can select this pod; a pod in \
                 the mesh must belong to exactly one Service; add a label, e.g. app: sleep, and a \
                 Service in namespace default whose spec.selector matches it",
                "{labels}"
            );
        }
    }

    #[test]
    fn pod_without_known_services_skips_association() {
        let pod = json!({"kind": "Pod", "metadata": {"name": "sleep"}});
        assert!(check_pod(&pod, None).is_empty());
    }

    #[test]
    fn pod_template_is_named_as_such() {
        let template = json!({"metadata": {"labels": {"app": "sleep"}}, "spec": {}});
        let findings = check_pod(&template, Some(&[]));
        assert_eq!(findings[0].object, "pod template");
    }

    #[test]
    fn pod_from_deployment_without_app_label_is_reported() {
        let pod = deployment_pod(json!({"pod-template-hash": "7f9c8d", "run": "sleep"}));
        let findings = check_pod(&pod, None);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].requirement, Requirement::AppLabel);
        assert_eq!(
            findings[0].to_string(),
            "Pod default/sleep-7f9c8d-*: metadata.labels.app is missing (Istio uses the app label \
             as context in distributed tracing); add a distinct app label to the pod template of \
             Deployment sleep, e.g. app: sleep"
        );
    }

    #[test]
    fn pod_from_deployment_with_app_label_passes() {
        let pod = deployment_pod(json!({"pod-template-hash": "7f9c8d", "app": "sleep"}));
        let services = [service("sleep", json!({"app": "sleep"}))];
        assert!(check_pod(&pod, Some(&services)).is_empty());
    }

    #[test]
    fn app_label_rule_needs_both_replica_set_owner_and_template_hash() {
        let mut no_hash = deployment_pod(json!({"run": "sleep"}));
        let mut other_owner = deployment_pod(json!({"pod-template-hash": "7f9c8d"}));
        other_owner["metadata"]["ownerReferences"][0]["kind"] = json!("StatefulSet");
        let mut owners_not_a_list = deployment_pod(json!({"pod-template-hash": "7f9c8d"}));
        owners_not_a_list["metadata"]["ownerReferences"] = json!({"kind": "ReplicaSet"});
        let mut hash_not_a_string = deployment_pod(json!({"pod-template-hash": 7}));
        hash_not_a_string["metadata"]["name"] = json!("sleep-1");
        no_hash["metadata"]["name"] = json!("sleep-2");
        for pod in [no_hash, other_owner, owners_not_a_list, hash_not_a_string] {
            assert!(check_pod(&pod, None).is_empty(), "{pod}");
        }
    }

    #[test]
    fn deployment_name_comes_from_the_replica_set_name() {
        let cases = [
            ("sleep-7f9c8d", Some("sleep")),
            ("my-app-v2-7f9c8d", Some("my-app-v2")),
            ("renamed", Some("renamed")),
            ("7f9c8d", Some("7f9c8d")),
        ];
        for (replica_set, deployment) in cases {
            let mut pod = deployment_pod(json!({"pod-template-hash": "7f9c8d"}));
            pod["metadata"]["ownerReferences"][0]["name"] = json!(replica_set);
            assert_eq!(deployment_of(&pod).as_deref(), deployment, "{replica_set}");
        }
    }

    #[test]
    fn deployment_without_app_label_is_reported() {
        let mut deployment = sleep_deployment();
        deployment["spec"]["template"]["metadata"]["labels"] = json!({"run": "sleep"});
        let findings = check_deployment(&deployment, None);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].field, "spec.template.metadata.labels.app");
        assert_eq!(findings[0].requirement, Requirement::AppLabel);
        assert_eq!(
            findings[0].to_string(),
            "Deployment sleep: spec.template.metadata.labels.app is missing (Istio uses the app \
             label as context in distributed tracing); add a distinct app label, e.g. app: sleep"
        );
    }

    #[test]
    fn deployment_app_label_must_be_a_non_empty_string() {
        let cases = [
            (json!(""), "is empty"),
            (json!("  "), "is empty"),
            (json!(7), "is a number (7), not a string"),
            (json!(null), "is missing"),
            (json!({"name": "sleep"}), "is a map, not a string"),
        ];
        for (app, problem) in cases {
            let mut deployment = sleep_deployment();
            deployment["spec"]["template"]["metadata"]["labels"]["app"] = app.clone();
            let findings = check_deployment(&deployment, None);
            assert_eq!(findings.len(), 1, "{app}");
            assert!(
                findings[0]
                    .message
                    .starts_with(&format!("spec.template.metadata.labels.app {problem}")),
                "{}",
                findings[0]
            );
        }
    }

    #[test]
    fn deployment_template_is_checked_against_services_in_its_namespace() {
        let mut deployment = sleep_deployment();
        deployment["metadata"]["namespace"] = json!("prod");
        let services = [service("sleep", json!({"app": "sleep"}))];
        let findings = check_deployment(&deployment, Some(&services));
        assert_eq!(
            requirements_of(&findings),
            [Requirement::ServiceAssociation]
        );
        assert_eq!(findings[0].object, "Deployment prod/sleep");
        assert_eq!(findings[0].field, "spec.template.metadata.labels");
        assert!(
            findings[0].message.contains("namespace prod"),
            "{}",
            findings[0]
        );
    }

    #[test]
    fn malformed_deployments_do_not_panic() {
        let cases = [
            json!(null),
            json!({"kind": "Deployment"}),
            json!({"kind": "Deployment", "spec": "x"}),
            json!({"kind": "Deployment", "spec": {"template": []}}),
            json!({"kind": "Deployment", "metadata": [], "spec": {"template": {"metadata": 1}}}),
        ];
        for deployment in cases {
            let findings = check_deployment(&deployment, Some(&[]));
            assert_eq!(
                requirements_of(&findings),
                [Requirement::AppLabel, Requirement::ServiceAssociation],
                "{deployment}"
            );
            assert!(
                findings[0].fix.ends_with("e.g. app: my-app"),
                "{}",
                findings[0]
            );
        }
    }

    #[test]
    fn sleep_sample_meets_every_requirement() {
        assert!(check_bundle(&sleep_bundle(), &Protocols::default()).is_empty());
    }

    #[test]
    fn bundle_findings_carry_their_document_index() {
        let bundle = vec![
            (
                0,
                service_with_ports(json!([{"port": 80, "name": "http2foo"}])),
            ),
            (1, json!({"kind": "ConfigMap", "metadata": {"name": "x"}})),
            (
                2,
                json!({"kind": "Deployment", "metadata": {"name": "httpbin"},
                       "spec": {"template": {"metadata": {"labels": {"run": "httpbin"}}}}}),
            ),
        ];
        let findings = check_bundle(&bundle, &Protocols::default());
        let summary: Vec<_> = findings
            .iter()
            .map(|(index, f)| (*index, f.requirement, f.object.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                (0, Requirement::NamedPorts, "Service default/sleep"),
                (2, Requirement::AppLabel, "Deployment httpbin"),
                (2, Requirement::ServiceAssociation, "Deployment httpbin"),
            ]
        );
    }

    /// A workload of `kind` whose pod template carries `labels`, placed where that kind keeps it.
    fn workload(kind: &str, labels: Value) -> Value {
        let template = json!({"metadata": {"labels": labels}, "spec": {"containers": []}});
        let spec = if kind == "CronJob" {
            json!({"jobTemplate": {"spec": {"template": template}}})
        } else {
            json!({"template": template})
        };
        json!({"kind": kind, "metadata": {"name": "w"}, "spec": spec})
    }

    #[test]
    fn bundle_workloads_are_checked_at_their_pod_template() {
        let cases = [
            ("Deployment", "spec.template."),
            ("StatefulSet", "spec.template."),
            ("DaemonSet", "spec.template."),
            ("ReplicaSet", "spec.template."),
            ("Job", "spec.template."),
            ("ReplicationController", "spec.template."),
            ("DeploymentConfig", "spec.template."),
            ("CronJob", "spec.jobTemplate.spec.template."),
        ];
        let protocols = Protocols::default();
        for (kind, prefix) in cases {
            let selected = [
                (0, sleep_service()),
                (1, workload(kind, json!({"app": "sleep"}))),
            ];
            assert!(check_bundle(&selected, &protocols).is_empty(), "{kind}");

            let unselected = [
                (0, sleep_service()),
                (1, workload(kind, json!({"app": "other"}))),
            ];
            let findings = check_bundle(&unselected, &protocols);
            assert_eq!(findings.len(), 1, "{kind}");
            assert_eq!(findings[0].0, 1);
            assert_eq!(findings[0].1.object, format!("{kind} w"));
            assert_eq!(findings[0].1.field, format!("{prefix}metadata.labels"));
        }
    }

    #[test]
    fn bundle_applies_the_app_label_rule_to_deployments_only() {
        let protocols = Protocols::default();
        let service = (0, service("sleep", json!({"run": "sleep"})));
        for kind in [
            "StatefulSet",
            "DaemonSet",
            "ReplicaSet",
            "Job",
            "CronJob",
            "DeploymentConfig",
        ] {
            let bundle = [
                service.clone(),
                (1, workload(kind, json!({"run": "sleep"}))),
            ];
            assert!(check_bundle(&bundle, &protocols).is_empty(), "{kind}");
        }
        let bundle = [
            service,
            (1, workload("Deployment", json!({"run": "sleep"}))),
        ];
        let findings = check_bundle(&bundle, &protocols);
        assert_eq!(
            findings
                .iter()
                .map(|(_, f)| f.requirement)
                .collect::<Vec<_>>(),
            [Requirement::AppLabel]
        );
        assert!(
            findings[0].1.fix.ends_with("e.g. app: w"),
            "{}",
            findings[0].1
        );
    }

    #[test]
    fn bundle_pods_are_checked_like_admitted_pods() {
        let pod = json!({"kind": "Pod", "metadata": {"name": "sleep", "labels": {"app": "sleep"}}});
        let protocols = Protocols::default();
        assert!(check_bundle(&[(0, pod.clone()), (1, sleep_service())], &protocols).is_empty());
        let findings = check_bundle(&[(0, pod)], &protocols);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].1.object, "Pod sleep");
        assert_eq!(findings[0].1.requirement, Requirement::ServiceAssociation);
    }

    #[test]
    fn bundle_without_namespace_means_default() {
        let mut service = sleep_service();
        service["metadata"]["namespace"] = json!("default");
        let mut elsewhere = sleep_deployment();
        elsewhere["metadata"]["namespace"] = json!("prod");
        let protocols = Protocols::default();
        assert!(
            check_bundle(&[(0, service.clone()), (1, sleep_deployment())], &protocols).is_empty()
        );
        let findings = check_bundle(&[(0, service), (1, elsewhere)], &protocols);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].1.object, "Deployment prod/sleep");
    }

    #[test]
    fn list_items_are_checked_with_the_list_index() {
        let list = json!({
            "apiVersion": "v1",
            "kind": "List",
            "items": [
                sleep_service(),
                {"kind": "List", "items": [workload("Deployment", json!({"run": "x"}))]},
                service_with_ports(json!([{"port": 80}]))
            ]
        });
        let bundle = [
            (0, json!({"kind": "ConfigMap"})),
            (3, list),
            (4, sleep_deployment()),
        ];
        let findings = check_bundle(&bundle, &Protocols::default());
        let summary: Vec<_> = findings
            .iter()
            .map(|(index, f)| (*index, f.requirement, f.object.as_str()))
            .collect();
        // The sleep Deployment (document 4) is selected by the Service inside the List.
        assert_eq!(
            summary,
            [
                (3, Requirement::AppLabel, "Deployment w"),
                (3, Requirement::ServiceAssociation, "Deployment w"),
                (3, Requirement::NamedPorts, "Service default/sleep"),
            ]
        );
    }

    #[test]
    fn malformed_lists_and_documents_do_not_panic() {
        let bundle = [
            (0, json!({"kind": "List", "items": "none"})),
            (1, json!({"kind": "List", "items": [null, 1, "x", []]})),
            (2, json!({"kind": 5})),
            (3, json!(null)),
            (4, json!({"kind": "CronJob", "spec": {"jobTemplate": []}})),
        ];
        let findings = check_bundle(&bundle, &Protocols::default());
        // Only the CronJob is a workload; its missing template has no labels to select.
        assert_eq!(
            findings
                .iter()
                .map(|(i, f)| (*i, f.requirement))
                .collect::<Vec<_>>(),
            [(4, Requirement::ServiceAssociation)]
        );
    }

    #[test]
    fn bundle_records_are_each_finding_with_its_document_index() {
        let finding = Finding {
            object: "Service default/sleep".into(),
            field: "spec.ports[0].name".into(),
            requirement: Requirement::NamedPorts,
            message: "unnamed".into(),
            fix: "name it".into(),
        };
        let records = bundle_records(&[(3, finding.clone()), (5, finding)]);
        let expected = json!({"document": 3, "object": "Service default/sleep",
            "field": "spec.ports[0].name", "requirement": "namedPorts",
            "message": "unnamed", "fix": "name it"});
        assert_eq!(records[0], expected);
        assert_eq!(records[1]["document"], 5);
        assert_eq!(records.as_array().map(Vec::len), Some(2));
        assert_eq!(bundle_records(&[]), json!([]));
    }

    #[test]
    fn deeply_nested_lists_do_not_overflow_the_stack() {
        let mut list = sleep_service();
        for _ in 0..100_000 {
            // Built by hand: `json!` would serialize (recursively) the value it interpolates.
            let mut outer = Map::new();
            outer.insert("kind".to_owned(), Value::from("List"));
            outer.insert("items".to_owned(), Value::Array(vec![list]));
            list = Value::Object(outer);
        }
        let bundle = [(7, list)];
        assert!(check_bundle(&bundle, &Protocols::default()).is_empty());
        // `Value`'s own drop recurses and would overflow: leak the test input instead.
        std::mem::forget(bundle);
    }

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

    /// Arbitrary JSON whose map keys are the field names the checks look at, so that random
    /// documents reach deep into the checks instead of stopping at the first lookup.
    fn kubernetes_like_json() -> impl Strategy<Value = Value> {
        let key = prop::sample::select(vec![
            "kind",
            "metadata",
            "name",
            "generateName",
            "namespace",
            "labels",
            "app",
            "pod-template-hash",
            "ownerReferences",
            "spec",
            "ports",
            "port",
            "protocol",
            "appProtocol",
            "targetPort",
            "selector",
            "type",
            "template",
            "jobTemplate",
            "items",
        ]);
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            prop::sample::select(vec![
                "",
                "Service",
                "Pod",
                "Deployment",
                "CronJob",
                "List",
                "ReplicaSet",
                "UDP",
                "TCP",
                "http",
                "http2foo",
                "grpc-web",
                "sleep",
                "sleep-7f9c8d",
                "7f9c8d",
                "ExternalName",
                "h\u{e9}",
                "\u{1f600}",
                "-",
            ])
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(6, 64, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((key.clone(), inner), 0..6).prop_map(|entries| {
                    Value::Object(
                        entries
                            .into_iter()
                            .map(|(k, v)| (k.to_owned(), v))
                            .collect(),
                    )
                }),
            ]
        })
    }

    proptest! {
        #[test]
        fn arbitrary_objects_never_panic(
            objects in prop::collection::vec(kubernetes_like_json(), 0..6)
        ) {
            let protocols = Protocols::default();
            let bundle: Vec<(usize, Value)> = objects.iter().cloned().enumerate().collect();
            let findings = check_bundle(&bundle, &protocols);
            for object in &objects {
                check_service(object, &protocols);
                check_pod(object, Some(&objects));
                check_pod(object, None);
                check_deployment(object, Some(&objects));
                services_selecting(object, "default", &objects);
            }
            for (index, finding) in findings {
                prop_assert!(index < objects.len());
                prop_assert!(!finding.to_string().is_empty());
            }
        }

        #[test]
        fn port_protocol_never_panics_and_declares_only_prefixes(name in ".{0,12}") {
            let protocols = Protocols::new(SEED_PROTOCOLS.into_iter().chain(["grpc-web"])).unwrap();
            if let Some(protocol) = port_protocol(&name, &protocols) {
                let lower = name.to_ascii_lowercase();
                let with_suffix = format!("{protocol}-");
                prop_assert!(lower == protocol || lower.starts_with(&with_suffix));
            }
        }
    }
}
