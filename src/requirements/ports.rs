//! The seed's *named ports* requirement: the port-name protocols ([`Protocols`]), the
//! `<protocol>[-<suffix>]` rule ([`port_protocol`]) and the check of a Service's ports with
//! rename suggestions ([`check_service`]).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Finding, Requirement};
use crate::object::{self, at, type_and_value};

/// The protocols the seed recognises in a port name: `http`, `http2`, `grpc`, `mongo`, `redis`.
///
/// Chain it with more to extend rather than replace the seed's list:
/// `Protocols::new(SEED_PROTOCOLS.into_iter().chain(["https", "tcp"]))`.
pub const SEED_PROTOCOLS: [&str; 5] = ["http", "http2", "grpc", "mongo", "redis"];

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

/// Checks the seed's *named ports* requirement on a Service: every port in `spec.ports` must be
/// named `<protocol>[-<suffix>]` with a protocol from `protocols`.
///
/// An unnamed port, or one whose name declares no recognised protocol, is reported: its traffic
/// is plain TCP to Istio. UDP ports (the seed: they signal themselves) and SCTP ports are exempt,
/// and so is a port whose `appProtocol` is a recognised protocol. A Service without ports
/// (headless, `ExternalName`) has nothing to report; one with ports is checked whatever its type.
/// `spec.ports` or an entry of the wrong type is reported, never a panic.
pub fn check_service(service: &Value, protocols: &Protocols) -> Vec<Finding> {
    let object = object::describe(service, "Service");
    let ports = match at(service, &["spec", "ports"]) {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Array(ports)) => ports,
        Some(other) => {
            return vec![Finding {
                object,
                field: "spec.ports".to_owned(),
                requirement: Requirement::NamedPorts,
                message: format!("spec.ports is {}, not a list", type_and_value(other)),
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
            format!("{path} is {}, not a port", type_and_value(port)),
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
                format!(
                    "{field} is {}, not a string; {traffic}",
                    type_and_value(other)
                ),
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::super::test_support::*;
    use super::*;

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

    proptest! {
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
