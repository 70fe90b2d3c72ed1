//! Tests of the parent module, compiled only under #[cfg(test)].

use serde_json::json;

use super::*;

/// Runs `check` over named cases; `Ok` cases must pass, `Err(text)` cases must fail with a
/// reason containing `text`. Every failing case is reported, with its name.
fn table(check: Validator, cases: &[(&str, &str, Result<(), &str>)]) {
    let mut wrong = Vec::new();
    for (name, value, expected) in cases {
        let got = check(value);
        let fine = match (expected, &got) {
            (Ok(()), Ok(())) => true,
            (Err(text), Err(reason)) => reason.contains(text),
            _ => false,
        };
        if !fine {
            wrong.push(format!(
                "{name}: {value:?} gave {got:?}, expected {expected:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn interception_mode_is_redirect_tproxy_or_none() {
    table(
        interception_mode,
        &[
            ("redirect", "REDIRECT", Ok(())),
            ("tproxy", "TPROXY", Ok(())),
            ("none", "NONE", Ok(())),
            (
                "lower_case",
                "redirect",
                Err("interceptionMode invalid, use REDIRECT,TPROXY,NONE: redirect"),
            ),
            ("empty", "", Err("interceptionMode invalid")),
        ],
    );
}

#[test]
fn include_ip_ranges_are_cidrs_or_a_star() {
    table(
        include_ip_ranges,
        &[
            ("star", "*", Ok(())),
            ("empty", "", Ok(())),
            ("one", "10.0.0.0/8", Ok(())),
            ("several", "10.0.0.0/8,172.16.0.0/12", Ok(())),
            ("host_bits_set", "10.1.2.3/8", Ok(())),
            ("ipv6", "fd00::/8,::1/128", Ok(())),
            ("zero_length", "0.0.0.0/0", Ok(())),
            (
                "no_slash",
                "bad",
                Err("includeIPRanges invalid: failed parsing cidr 'bad': no '/'"),
            ),
            (
                "not_an_address",
                "10.0.0/8",
                Err("unable to parse IP address \"10.0.0\""),
            ),
            (
                "leading_zero_octet",
                "10.0.0.01/8",
                Err("unable to parse IP"),
            ),
            ("too_long", "10.0.0.0/33", Err("prefix length out of range")),
            ("ipv6_too_long", "::/129", Err("prefix length out of range")),
            (
                "leading_zero_bits",
                "10.0.0.0/08",
                Err("bad bits after slash: \"08\""),
            ),
            ("signed_bits", "10.0.0.0/+8", Err("bad bits after slash")),
            ("no_bits", "10.0.0.0/", Err("bad bits after slash: \"\"")),
            (
                "space_after_comma",
                "10.0.0.0/8, 1.2.3.0/24",
                Err("cidr ' 1.2.3.0/24'"),
            ),
            (
                "trailing_comma",
                "10.0.0.0/8,",
                Err("failed parsing cidr ''"),
            ),
            (
                "star_in_list",
                "*,10.0.0.0/8",
                Err("failed parsing cidr '*'"),
            ),
            (
                "zone",
                "fe80::1%eth0/64",
                Err("IPv6 zones cannot be present in a prefix"),
            ),
        ],
    );
}

#[test]
fn exclude_ip_ranges_refuse_a_star() {
    table(
        exclude_ip_ranges,
        &[
            ("empty", "", Ok(())),
            ("one", "10.96.0.2/24", Ok(())),
            (
                "star",
                "*",
                Err("excludeIPRanges invalid: failed parsing cidr '*': no '/'"),
            ),
        ],
    );
}

#[test]
fn inbound_ports_are_port_lists_with_a_star_only_for_include() {
    let common: &[(&str, &str, Result<(), &str>)] = &[
        ("empty", "", Ok(())),
        ("blank", "  ", Ok(())),
        ("one", "80", Ok(())),
        ("several_with_spaces", "80, 443 ,8080", Ok(())),
        ("zero", "0", Ok(())),
        ("max", "65535", Ok(())),
        (
            "too_big",
            "65536",
            Err("failed parsing port '65536': expected an integer from 0 to 65535"),
        ),
        ("negative", "-1", Err("failed parsing port '-1'")),
        ("plus", "+80", Err("failed parsing port '+80'")),
        ("word", "http", Err("failed parsing port 'http'")),
        ("empty_item", "80,,443", Err("failed parsing port ''")),
        ("range", "80-90", Err("failed parsing port '80-90'")),
    ];
    table(include_inbound_ports, common);
    table(exclude_inbound_ports, common);
    table(include_inbound_ports, &[("star", "*", Ok(()))]);
    table(
        exclude_inbound_ports,
        &[(
            "star",
            "*",
            Err("excludeInboundPorts invalid: failed parsing port '*'"),
        )],
    );
    table(
        include_inbound_ports,
        &[("bad", "x", Err("includeInboundPorts invalid: "))],
    );
}

#[test]
fn outbound_ports_are_port_lists_without_a_star() {
    for (check, parameter) in [
        (
            include_outbound_ports as Validator,
            "includeOutboundPorts invalid: ",
        ),
        (exclude_outbound_ports, "excludeOutboundPorts invalid: "),
    ] {
        table(
            check,
            &[
                ("empty", "", Ok(())),
                ("several", "3306,5432", Ok(())),
                ("star", "*", Err(parameter)),
                ("word", "mysql", Err("failed parsing port 'mysql'")),
            ],
        );
    }
}

#[test]
fn status_port_is_one_port() {
    table(
        status_port,
        &[
            ("default", "15020", Ok(())),
            ("spaces", " 15020 ", Ok(())),
            (
                "empty",
                "",
                Err("statusPort invalid: failed parsing port ''"),
            ),
            (
                "list",
                "15020,15021",
                Err("failed parsing port '15020,15021'"),
            ),
            (
                "too_big",
                "70000",
                Err("expected an integer from 0 to 65535"),
            ),
        ],
    );
}

#[test]
fn readiness_settings_are_unsigned_32_bit_integers() {
    table(
        uint32,
        &[
            ("zero", "0", Ok(())),
            ("seconds", "10", Ok(())),
            ("leading_zeros", "007", Ok(())),
            ("max", "4294967295", Ok(())),
            (
                "too_big",
                "4294967296",
                Err("expected an integer from 0 to 4294967295"),
            ),
            ("negative", "-1", Err("expected an integer")),
            ("plus", "+1", Err("expected an integer")),
            ("space", " 1", Err("expected an integer")),
            ("duration", "10s", Err("expected an integer")),
            ("empty", "", Err("expected an integer")),
        ],
    );
}

#[test]
fn booleans_are_what_go_parse_bool_reads() {
    let mut cases: Vec<(&str, &str, Result<(), &str>)> = [
        "1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False",
    ]
    .iter()
    .map(|v| (*v, *v, Ok(())))
    .collect();
    for bad in ["yes", "on", "tRUE", "", " true", "2"] {
        cases.push((bad, bad, Err("expected a boolean: 1, t, T, TRUE")));
    }
    table(boolean, &cases);
}

#[test]
fn interfaces_are_short_names_starting_with_a_letter() {
    table(
        interfaces,
        &[
            ("empty", "", Ok(())),
            ("one", "eth0", Ok(())),
            ("several_with_spaces", "eth0, net1,veth-a_b.1", Ok(())),
            ("fifteen_bytes", "abcdefghijklmno", Ok(())),
            (
                "sixteen_bytes",
                "abcdefghijklmnop",
                Err("interface name \"abcdefghijklmnop\" too long (max 15 chars)"),
            ),
            ("empty_item", "eth0,", Err("empty interface name")),
            ("blank_item", "eth0, ,eth1", Err("empty interface name")),
            (
                "digit_first",
                "0eth",
                Err("interface name \"0eth\" contains invalid characters"),
            ),
            ("slash", "eth0/1", Err("contains invalid characters")),
            ("non_ascii", "ethé", Err("contains invalid characters")),
        ],
    );
}

#[test]
fn quantities_are_what_kubernetes_parses() {
    table(
        quantity,
        &[
            ("milli_cpu", "100m", Ok(())),
            ("mebibytes", "128Mi", Ok(())),
            ("plain", "2", Ok(())),
            ("zero", "0", Ok(())),
            ("fraction", "0.5", Ok(())),
            ("fraction_with_suffix", "1.5Gi", Ok(())),
            ("exponent", "1e3", Ok(())),
            ("signed_exponent", "12E-2", Ok(())),
            ("exa", "1E", Ok(())),
            ("signed", "+1k", Ok(())),
            ("point_only", ".", Ok(())),
            ("trailing_point", "1.G", Ok(())),
            ("many_digits", "123456789012345678901234567890", Ok(())),
            (
                "empty",
                "",
                Err("quantities must match the regular expression"),
            ),
            (
                "word",
                "invalid",
                Err("quantities must match the regular expression"),
            ),
            ("two_points", "1.5.5", Err("quantities must match")),
            ("space", "100 m", Err("quantities must match")),
            (
                "unknown_suffix",
                "1Ki3",
                Err("unable to parse quantity's suffix"),
            ),
            (
                "lower_k_binary",
                "1ki",
                Err("unable to parse quantity's suffix"),
            ),
            ("bare_e", "1e", Err("unable to parse quantity's suffix")),
            (
                "exponent_sign_only",
                "1e+",
                Err("unable to parse quantity's suffix"),
            ),
            (
                "tiny_without_digits",
                ".e-10",
                Err("unable to parse numeric part of quantity"),
            ),
            (
                "newline",
                "100m\"\n  - name: injected",
                Err("value contains control characters"),
            ),
            (
                "carriage_return",
                "100m\r",
                Err("value contains control characters"),
            ),
            ("tab", "100m\t", Err("value contains control characters")),
            ("nul", "100m\0", Err("value contains control characters")),
        ],
    );
}

#[test]
fn the_table_names_each_annotation_once() {
    let mut names: Vec<&str> = ANNOTATIONS.iter().map(|(name, _)| *name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), ANNOTATIONS.len());
}

#[test]
fn a_pod_without_annotations_or_with_good_ones_passes() {
    assert_eq!(validate(&json!({})), Ok(()));
    assert_eq!(
        validate(&json!({"metadata": {"annotations": null}})),
        Ok(())
    );
    let pod = json!({"metadata": {"annotations": {
        "sidecar.istio.io/interceptionMode": "TPROXY",
        "traffic.sidecar.istio.io/includeOutboundIPRanges": "*",
        "traffic.sidecar.istio.io/excludeInboundPorts": 8080,
        "prometheus.istio.io/merge-metrics": false,
        "sidecar.istio.io/proxyCPU": "100m",
        "unrelated.example.com/x": "anything at all",
    }}});
    assert_eq!(validate(&pod), Ok(()));
}

#[test]
fn every_bad_annotation_is_reported_in_table_order_with_istio_wording() {
    let pod = json!({"metadata": {"annotations": {
        "traffic.sidecar.istio.io/includeOutboundIPRanges": "bad",
        "sidecar.istio.io/interceptionMode": "redirect",
        "traffic.sidecar.istio.io/excludeInboundPorts": 70000,
        "sidecar.istio.io/proxyMemory": "lots",
    }}});
    let err = validate(&pod).unwrap_err();
    let names: Vec<&str> = err.0.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "sidecar.istio.io/interceptionMode",
            "traffic.sidecar.istio.io/includeOutboundIPRanges",
            "traffic.sidecar.istio.io/excludeInboundPorts",
            "sidecar.istio.io/proxyMemory",
        ]
    );
    assert_eq!(
        err.0[1].to_string(),
        "invalid value 'bad' for annotation 'traffic.sidecar.istio.io/includeOutboundIPRanges': includeIPRanges invalid: failed parsing cidr 'bad': no '/'"
    );
    assert_eq!(err.0[2].value, "70000");
    let message = err.to_string();
    assert_eq!(message.matches("; invalid value '").count(), 3, "{message}");
    assert!(
        message.starts_with(
            "invalid value 'redirect' for annotation 'sidecar.istio.io/interceptionMode': "
        ),
        "{message}"
    );
}
