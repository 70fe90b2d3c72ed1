//! `--revision`: the ConfigMaps of a revisioned Istio install read from the fake API server
//! (`istio-sidecar-injector-<rev>`, `istio-<rev>`), the revision in the status annotation, and
//! pods labelled for another revision left alone.

use std::process::Output;

use crate::fake_apiserver::{FAKE_TOKEN, FakeApiServer, Kubeconfig, config_map_path};
use crate::util::{at_root, docs, kube_inject, names, template_config_text};

const SLEEP: &str = "samples/sleep/sleep.yaml";
const BUILTIN_IMAGE: &str = "istio.io/proxy:0.5.0";
const CANARY_IMAGE: &str = "registry.cluster.example/proxy:canary";
const MESH: &str = "defaultConfig:\n  discoveryAddress: istiod:15012\n";

/// The status annotation of the sleep Deployment's pod template in `stdout`, as data.
fn sleep_status(stdout: &str) -> serde_json::Value {
    let pod = &docs(stdout)[1]["spec"]["template"];
    let text = pod["metadata"]["annotations"]["sidecar.istio.io/status"]
        .as_str()
        .unwrap_or_else(|| panic!("no status annotation: {stdout}"));
    serde_json::from_str(text).unwrap()
}

/// `kube-inject ARGS --kubeconfig <a kubeconfig for server> -f FILE`.
fn run(server: &FakeApiServer, args: &[&str], file: &str) -> Output {
    server.require_token(FAKE_TOKEN);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = Kubeconfig::new(&server.url()).write(dir.path());
    kube_inject()
        .args(args)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("-f")
        .arg(at_root(file))
        .output()
        .unwrap()
}

/// A cluster with both a default and a `canary` install, told apart by the proxy image.
fn two_revisions() -> FakeApiServer {
    let server =
        FakeApiServer::with_istio(&template_config_text(BUILTIN_IMAGE, BUILTIN_IMAGE), MESH);
    server.config_map(
        "istio-system",
        "istio-sidecar-injector-canary",
        &[("config", &template_config_text(BUILTIN_IMAGE, CANARY_IMAGE))],
    );
    server.config_map("istio-system", "istio-canary", &[("mesh", MESH)]);
    server
}

#[test]
fn revision_reads_its_own_configmaps_and_records_itself() {
    let server = two_revisions();
    let output = run(&server, &["--revision", "canary"], SLEEP);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!(
        server.paths(),
        [
            config_map_path("istio-system", "istio-canary"),
            config_map_path("istio-system", "istio-sidecar-injector-canary"),
        ]
    );
    assert!(
        stderr.contains("configmap istio-system/istio-sidecar-injector-canary, key \"config\""),
        "{stderr}"
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let pod = &docs(&stdout)[1]["spec"]["template"];
    assert_eq!(names(pod, "containers"), ["sleep", "istio-proxy"]);
    assert_eq!(pod["spec"]["containers"][1]["image"], CANARY_IMAGE);
    assert_eq!(sleep_status(&stdout)["revision"], "canary", "{stdout}");
}

#[test]
fn the_default_revision_reads_the_unrevisioned_configmaps() {
    let server = two_revisions();
    let output = run(&server, &["-r", "default"], SLEEP);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        server.paths(),
        [
            config_map_path("istio-system", "istio"),
            config_map_path("istio-system", "istio-sidecar-injector"),
        ]
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(sleep_status(&stdout)["revision"], "default", "{stdout}");
}

#[test]
fn a_missing_revision_is_an_error_naming_its_configmap() {
    let server =
        FakeApiServer::with_istio(&template_config_text(BUILTIN_IMAGE, BUILTIN_IMAGE), MESH);
    let output = run(&server, &["--revision", "canary"], SLEEP);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(output.stdout.is_empty());
    assert!(stderr.contains("istio-system/istio-canary"), "{stderr}");
}

#[test]
fn pods_of_another_revision_are_left_alone_with_a_warning() {
    let output = kube_inject()
        .args(["--builtin", "--revision", "canary", "-f"])
        .arg(at_root("kube-inject/tests/testdata/inject/revision.yaml"))
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(
            "skipping injection: label istio.io/rev=\"stable\" selects another revision than \"canary\""
        ),
        "{stderr}"
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let pods = docs(&stdout);
    assert_eq!(names(&pods[0], "containers"), ["app", "istio-proxy"]);
    assert_eq!(names(&pods[1], "containers"), ["app"]);
    assert_eq!(names(&pods[2], "containers"), ["app", "istio-proxy"]);
}

#[test]
fn a_revision_must_be_a_label_value() {
    let output = kube_inject()
        .args(["--builtin", "--revision", "no/slash", "-f"])
        .arg(at_root(SLEEP))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("a revision must be a label value"),
        "{stderr}"
    );
}
