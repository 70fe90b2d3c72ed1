//! `check`: the seed's pod spec requirements over a manifest.

use predicates::prelude::*;
use serde_json::Value;

use crate::util::{at_root, kube_inject};

#[test]
fn failing_example_reports_each_requirement_and_exits_1() {
    let out = kube_inject()
        .arg("check")
        .arg("-f")
        .arg(at_root("samples/requirements/failing.yaml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(lines[0].starts_with("document 1: Service frontend: spec.ports[0].name \"http2foo\""));
    assert!(lines[1].starts_with(
        "document 3: Deployment frontend: spec.template.metadata.labels.app is missing"
    ));
    assert!(
        lines[2]
            .contains("2 Services in namespace default select this pod (frontend, frontend-admin)")
    );
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "kube-inject: 3 findings in 2 documents\n"
    );
}

#[test]
fn failing_example_as_json() {
    let out = kube_inject()
        .args(["check", "--output-format", "json", "-f"])
        .arg(at_root("samples/requirements/failing.yaml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let findings: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let summary: Vec<(u64, &str)> = findings
        .iter()
        .map(|f| {
            (
                f["document"].as_u64().unwrap(),
                f["requirement"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (1, "namedPorts"),
            (3, "appLabel"),
            (3, "serviceAssociation")
        ]
    );
    assert_eq!(findings[0]["field"], "spec.ports[0].name");
    assert!(findings[0]["fix"].as_str().unwrap().contains("http2-foo"));
}

#[test]
fn fixed_example_has_no_findings() {
    kube_inject()
        .arg("check")
        .arg("-f")
        .arg(at_root("samples/requirements/fixed.yaml"))
        .assert()
        .code(0)
        .stdout("")
        .stderr("kube-inject: no findings\n");
    kube_inject()
        .args(["check", "--output-format", "json", "-f"])
        .arg(at_root("samples/requirements/fixed.yaml"))
        .assert()
        .code(0)
        .stdout("[]\n");
}

#[test]
fn the_sleep_sample_meets_the_requirements() {
    kube_inject()
        .arg("check")
        .arg("-f")
        .arg(at_root("samples/sleep/sleep.yaml"))
        .assert()
        .code(0);
}

#[test]
fn check_on_bad_input_exits_2() {
    kube_inject()
        .args(["check", "-f", "-"])
        .write_stdin("apiVersion: v1\nkind: Service\n---\nmetadata: {name: x}\n")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "document 2 (from line 4): no `kind`",
        ));
}

#[test]
fn protocols_flag_accepts_more_port_names_as_the_policy_setting_does() {
    let manifest = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  ports: [{port: 443, name: https}]\n";
    kube_inject()
        .args(["check", "-f", "-"])
        .write_stdin(manifest)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("\"https\" is not of the form"));
    kube_inject()
        .args(["check", "--protocols", "http,https", "-f", "-"])
        .write_stdin(manifest)
        .assert()
        .success()
        .stdout("");
    kube_inject()
        .args([
            "check",
            "--protocols",
            "http",
            "--protocols=-https",
            "-f",
            "-",
        ])
        .write_stdin(manifest)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "--protocols: protocol 1 `-https` is not a port-name protocol",
        ));
}
