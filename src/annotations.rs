//! The pod annotations checked before a sidecar is rendered: a table name → validator, after
//! Istio master's `AnnotationValidation` (pkg/kube/inject/validate.go).
//!
//! The values of these annotations end up in the sidecar's command line and resources, where a
//! bad one fails late (an `istio-init` that cannot parse its `-b`, a pod the API server refuses).
//! Istio refuses the injection instead, naming every bad annotation; so does [`validate`], the
//! step [`Injector::inject`](crate::Injector::inject) takes once the decision says inject.
//!
//! # Differences from Istio
//! - `traffic.sidecar.istio.io/includeOutboundPorts` is checked as a port list, like
//!   `excludeOutboundPorts`; Istio leaves it to `istio-iptables`, which fails in the pod.
//! - `proxy.istio.io/config` (a ProxyConfig in YAML or JSON) is checked by merging it over Istio's
//!   default ProxyConfig ([`crate::proxy_overlay`]): a field of the wrong type or a bad duration
//!   is refused with its path; Istio checks only that it parses.
//! - The reasons say what is accepted where Istio quotes Go's `strconv` error
//!   (`expected an integer from 0 to 65535`, not `strconv.ParseUint: parsing "x": invalid
//!   syntax`), and a bad `status.sidecar.istio.io/port` is reported as `statusPort invalid`
//!   (Istio says `excludeInboundPorts invalid` there).
//! - Bad annotations are reported in the order of [`ANNOTATIONS`], joined with `; `; Istio lists
//!   them in map order, as a multi-line multierror.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::Value;

/// A check of one annotation's value: `Err` says why the value is refused.
pub type Validator = fn(&str) -> Result<(), String>;

/// Every annotation checked, with its validator.
pub const ANNOTATIONS: &[(&str, Validator)] = &[
    ("sidecar.istio.io/interceptionMode", interception_mode),
    ("status.sidecar.istio.io/port", status_port),
    (
        "readiness.status.sidecar.istio.io/initialDelaySeconds",
        uint32,
    ),
    ("readiness.status.sidecar.istio.io/periodSeconds", uint32),
    ("readiness.status.sidecar.istio.io/failureThreshold", uint32),
    (
        "traffic.sidecar.istio.io/includeOutboundIPRanges",
        include_ip_ranges,
    ),
    (
        "traffic.sidecar.istio.io/excludeOutboundIPRanges",
        exclude_ip_ranges,
    ),
    (
        "traffic.sidecar.istio.io/includeInboundPorts",
        include_inbound_ports,
    ),
    (
        "traffic.sidecar.istio.io/excludeInboundPorts",
        exclude_inbound_ports,
    ),
    (
        "traffic.sidecar.istio.io/includeOutboundPorts",
        include_outbound_ports,
    ),
    (
        "traffic.sidecar.istio.io/excludeOutboundPorts",
        exclude_outbound_ports,
    ),
    ("traffic.sidecar.istio.io/excludeInterfaces", interfaces),
    ("traffic.sidecar.istio.io/kubevirtInterfaces", interfaces),
    ("istio.io/reroute-virtual-interfaces", interfaces),
    ("prometheus.istio.io/merge-metrics", boolean),
    ("sidecar.istio.io/proxyCPU", quantity),
    ("sidecar.istio.io/proxyMemory", quantity),
    ("sidecar.istio.io/proxyCPULimit", quantity),
    ("sidecar.istio.io/proxyMemoryLimit", quantity),
    (
        crate::proxy_overlay::PROXY_CONFIG_ANNOTATION,
        crate::proxy_overlay::check,
    ),
];

/// One annotation whose value was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidAnnotation {
    /// The annotation's name.
    pub name: String,
    /// Its value, as found on the pod.
    pub value: String,
    /// Why the value is refused.
    pub reason: String,
}

impl fmt::Display for InvalidAnnotation {
    /// Istio's wording: `invalid value 'bad' for annotation 'name': reason`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid value '{}' for annotation '{}': {}",
            self.value, self.name, self.reason
        )
    }
}

/// Every refused annotation of one pod (never empty).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct InvalidAnnotations(pub Vec<InvalidAnnotation>);

impl InvalidAnnotations {
    /// `pod`'s annotation `name` (its value read from the pod), refused for `reason`: for checks
    /// made later than [`validate`], against the pod's config rather than the defaults.
    pub fn one(name: &str, pod: &Value, reason: String) -> Self {
        let value = pod
            .get("metadata")
            .and_then(|m| m.get("annotations"))
            .and_then(|a| a.get(name))
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .unwrap_or_default();
        Self(vec![InvalidAnnotation {
            name: name.to_string(),
            value,
            reason,
        }])
    }
}

impl fmt::Display for InvalidAnnotations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, invalid) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{invalid}")?;
        }
        Ok(())
    }
}

/// Checks the pod's annotations against [`ANNOTATIONS`]; the error lists every bad one.
///
/// Numbers and booleans (a YAML `excludeInboundPorts: 8080`) are checked as the text they stand
/// for, which is what the template renders; other non-strings are left to the template.
pub fn validate(pod: &Value) -> Result<(), InvalidAnnotations> {
    let Some(annotations) = pod
        .get("metadata")
        .and_then(|meta| meta.get("annotations"))
        .and_then(Value::as_object)
    else {
        return Ok(());
    };
    let mut invalid = Vec::new();
    for (name, check) in ANNOTATIONS {
        let value = match annotations.get(*name) {
            Some(Value::String(s)) => s.clone(),
            Some(n @ (Value::Number(_) | Value::Bool(_))) => n.to_string(),
            _ => continue,
        };
        if let Err(reason) = check(&value) {
            invalid.push(InvalidAnnotation {
                name: name.to_string(),
                value,
                reason,
            });
        }
    }
    if invalid.is_empty() {
        Ok(())
    } else {
        Err(InvalidAnnotations(invalid))
    }
}

fn interception_mode(mode: &str) -> Result<(), String> {
    match mode {
        "REDIRECT" | "TPROXY" | "NONE" => Ok(()),
        _ => Err(format!(
            "interceptionMode invalid, use REDIRECT,TPROXY,NONE: {mode}"
        )),
    }
}

fn include_ip_ranges(ranges: &str) -> Result<(), String> {
    if ranges == "*" {
        return Ok(());
    }
    cidr_list(ranges).map_err(|e| format!("includeIPRanges invalid: {e}"))
}

fn exclude_ip_ranges(ranges: &str) -> Result<(), String> {
    cidr_list(ranges).map_err(|e| format!("excludeIPRanges invalid: {e}"))
}

fn include_inbound_ports(ports: &str) -> Result<(), String> {
    if ports == "*" {
        return Ok(());
    }
    port_list(ports).map_err(|e| format!("includeInboundPorts invalid: {e}"))
}

fn exclude_inbound_ports(ports: &str) -> Result<(), String> {
    port_list(ports).map_err(|e| format!("excludeInboundPorts invalid: {e}"))
}

fn include_outbound_ports(ports: &str) -> Result<(), String> {
    port_list(ports).map_err(|e| format!("includeOutboundPorts invalid: {e}"))
}

fn exclude_outbound_ports(ports: &str) -> Result<(), String> {
    port_list(ports).map_err(|e| format!("excludeOutboundPorts invalid: {e}"))
}

fn status_port(port: &str) -> Result<(), String> {
    parse_port(port).map_err(|e| format!("statusPort invalid: {e}"))
}

/// Go's `strconv.ParseUint(value, 10, 32)`: decimal digits only, no sign, no spaces.
fn uint32(value: &str) -> Result<(), String> {
    if !value.is_empty()
        && value.bytes().all(|b| b.is_ascii_digit())
        && value.parse::<u32>().is_ok()
    {
        Ok(())
    } else {
        Err(format!("expected an integer from 0 to {}", u32::MAX))
    }
}

/// Go's `strconv.ParseBool`.
fn boolean(value: &str) -> Result<(), String> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" | "0" | "f" | "F" | "FALSE" | "false"
        | "False" => Ok(()),
        _ => Err(
            "expected a boolean: 1, t, T, TRUE, true, True, 0, f, F, FALSE, false or False".into(),
        ),
    }
}

/// A comma-separated list of ports (spaces around each allowed); empty is an empty list.
fn port_list(ports: &str) -> Result<(), String> {
    let ports = ports.trim();
    if ports.is_empty() {
        return Ok(());
    }
    ports.split(',').try_for_each(parse_port)
}

/// One port, 0–65535, spaces around it allowed (Istio's `parsePort`).
fn parse_port(port: &str) -> Result<(), String> {
    let digits = port.trim();
    if !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && digits.parse::<u16>().is_ok()
    {
        Ok(())
    } else {
        Err(format!(
            "failed parsing port '{port}': expected an integer from 0 to 65535"
        ))
    }
}

/// A comma-separated list of CIDR prefixes, as Go's `netip.ParsePrefix` reads each (no spaces);
/// empty is an empty list.
fn cidr_list(cidrs: &str) -> Result<(), String> {
    if cidrs.is_empty() {
        return Ok(());
    }
    cidrs.split(',').try_for_each(|cidr| {
        prefix(cidr).map_err(|why| format!("failed parsing cidr '{cidr}': {why}"))
    })
}

/// `address/bits`: an IPv4 or IPv6 address without zone, and a prefix length within its size
/// written without sign or leading zeros.
fn prefix(cidr: &str) -> Result<(), String> {
    let Some((address, bits)) = cidr.rsplit_once('/') else {
        return Err("no '/'".into());
    };
    let max = if address.parse::<Ipv4Addr>().is_ok() {
        32
    } else if address.parse::<Ipv6Addr>().is_ok() {
        128
    } else if address
        .split_once('%')
        .is_some_and(|(ip, _)| ip.parse::<Ipv6Addr>().is_ok())
    {
        return Err("IPv6 zones cannot be present in a prefix".into());
    } else {
        return Err(format!("unable to parse IP address {address:?}"));
    };
    let canonical = bits == "0" || bits.starts_with(|c: char| ('1'..='9').contains(&c));
    let length = bits
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| bits.parse::<u64>().ok())
        .flatten()
        .filter(|_| canonical);
    match length {
        None => Err(format!("bad bits after slash: {bits:?}")),
        Some(length) if length > max => Err("prefix length out of range".into()),
        Some(_) => Ok(()),
    }
}

/// Comma-separated network interface names (Istio's `ValidateInterfaceNames`): each up to 15
/// bytes, a letter then letters, digits, `_`, `.` or `-`; empty is an empty list.
fn interfaces(names: &str) -> Result<(), String> {
    if names.is_empty() {
        return Ok(());
    }
    names.split(',').try_for_each(|name| {
        let name = name.trim();
        if name.is_empty() {
            return Err("empty interface name".to_string());
        }
        if name.len() > 15 {
            return Err(format!("interface name {name:?} too long (max 15 chars)"));
        }
        let mut bytes = name.bytes();
        let first_is_letter = bytes.next().is_some_and(|b| b.is_ascii_alphabetic());
        if first_is_letter && bytes.all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)) {
            Ok(())
        } else {
            Err(format!(
                "interface name {name:?} contains invalid characters"
            ))
        }
    })
}

/// The grammar Kubernetes' `resource.ParseQuantity` reports when a quantity does not scan.
const QUANTITY_FORMAT: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// A Kubernetes resource quantity (`100m`, `128Mi`, `1e3`), as `resource.ParseQuantity` reads
/// it, and no control characters (which would otherwise reach the rendered YAML as they are).
fn quantity(value: &str) -> Result<(), String> {
    if value.chars().any(char::is_control) {
        return Err("value contains control characters".into());
    }
    if value.is_empty() {
        return Err(QUANTITY_FORMAT.into());
    }
    let parts = scan_quantity(value).ok_or(QUANTITY_FORMAT)?;
    let (binary, exponent) =
        quantity_suffix(parts.suffix).ok_or("unable to parse quantity's suffix")?;
    // ParseQuantity reads small numbers exactly (any numeric part, even "." or "-", is 0 there)
    // and larger or finer ones as a decimal, which needs a digit.
    let (num, denom) = (parts.num_len as i64, parts.denom_len as i64);
    let exact = if binary {
        denom == 0 && 14 - num - i64::from(exponent) * 3 / 10 >= 0
    } else {
        // Go computes the scale in 32 bits, wrapping.
        18 - (num + denom) >= 0 && exponent.wrapping_sub(denom as i32) >= -9
    };
    if !exact && !parts.number.bytes().any(|b| b.is_ascii_digit()) {
        return Err("unable to parse numeric part of quantity".into());
    }
    Ok(())
}

/// A quantity split as Kubernetes' `parseQuantityString` splits it.
struct QuantityParts<'a> {
    /// Sign, digits and fraction as written.
    number: &'a str,
    /// Digits before the point once leading zeros are dropped (at least 1: none reads as `0`).
    num_len: usize,
    /// Digits after the point.
    denom_len: usize,
    /// What follows the number: an SI suffix or an exponent.
    suffix: &'a str,
}

/// `[+-]? 0* digits* (. digits*)? [eEinumkKMGTP]* [+-]? digits*`, or `None`.
fn scan_quantity(text: &str) -> Option<QuantityParts<'_>> {
    let bytes = text.as_bytes();
    let at = |i: usize| bytes.get(i).copied();
    let digits_from = |mut i: usize| {
        while at(i).is_some_and(|b| b.is_ascii_digit()) {
            i += 1;
        }
        i
    };
    let mut pos = usize::from(matches!(at(0), Some(b'+' | b'-')));
    while at(pos) == Some(b'0') {
        pos += 1;
    }
    let num_start = pos;
    pos = digits_from(pos);
    let num_len = (pos - num_start).max(1);
    let mut denom_len = 0;
    if at(pos) == Some(b'.') {
        let denom_start = pos + 1;
        pos = digits_from(denom_start);
        denom_len = pos - denom_start;
    }
    let (number, suffix) = text.split_at(pos);
    let mut end = pos;
    while at(end).is_some_and(|b| b"eEinumkKMGTP".contains(&b)) {
        end += 1;
    }
    if matches!(at(end), Some(b'+' | b'-')) {
        end += 1;
    }
    end = digits_from(end);
    (end == bytes.len()).then_some(QuantityParts {
        number,
        num_len,
        denom_len,
        suffix,
    })
}

/// Whether the suffix is binary, and its power (of 2 for binary, of 10 otherwise).
fn quantity_suffix(suffix: &str) -> Option<(bool, i32)> {
    let decimal = match suffix {
        "n" => Some(-9),
        "u" => Some(-6),
        "m" => Some(-3),
        "" => Some(0),
        "k" => Some(3),
        "M" => Some(6),
        "G" => Some(9),
        "T" => Some(12),
        "P" => Some(15),
        "E" => Some(18),
        _ => None,
    };
    if let Some(power) = decimal {
        return Some((false, power));
    }
    let binary = match suffix {
        "Ki" => Some(10),
        "Mi" => Some(20),
        "Gi" => Some(30),
        "Ti" => Some(40),
        "Pi" => Some(50),
        "Ei" => Some(60),
        _ => None,
    };
    if let Some(power) = binary {
        return Some((true, power));
    }
    // `e3`, `E-2`: Go parses the exponent as an int64 and keeps its low 32 bits.
    let exponent = suffix
        .strip_prefix(['e', 'E'])
        .filter(|rest| !rest.is_empty())?;
    exponent.parse::<i64>().ok().map(|e| (false, e as i32))
}

#[cfg(test)]
mod tests;
