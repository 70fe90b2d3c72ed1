//! Known Istio pains this design answers, each named after its issue.

use predicates::prelude::*;

use crate::util::{at_root, docs, inject, kube_inject, names, read};

// See: https://github.com/istio/istio/issues/2489 (an empty output file when the ConfigMap or
// kubeconfig is missing)
#[test]
fn istio_2489_missing_config_is_an_error_not_an_empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sleep-injected.yaml");
    kube_inject()
        .args(["--meshConfigFile", "no-such-mesh.yaml", "-f"])
        .arg(at_root("samples/sleep/sleep.yaml"))
        .arg("-o")
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no-such-mesh.yaml"));
    assert!(!out.exists());
}

// See: https://github.com/istio/istio/issues/6731 (kube-inject silently ignored `kind: Pod`)
#[test]
fn istio_6731_a_bare_pod_is_injected() {
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {app: p}}\nspec: {containers: [{name: p, image: x}]}\n";
    let out = inject(pod, &[]);
    assert_eq!(names(&docs(&out)[0], "containers"), ["p", "istio-proxy"]);
}

// See: https://github.com/istio/istio/issues/14445 (running kube-inject twice doubled the sidecar)
#[test]
fn istio_14445_injecting_twice_does_not_duplicate_the_sidecar() {
    let sleep = read(&at_root("samples/sleep/sleep.yaml"));
    let twice = inject(&inject(&sleep, &[]), &[]);
    let pod = &docs(&twice)[1]["spec"]["template"];
    assert_eq!(names(pod, "containers"), ["sleep", "istio-proxy"]);
    assert_eq!(names(pod, "initContainers"), ["istio-init"]);
}

// See: https://github.com/istio/istio/issues/36469 ("skip if injected" blocked upgrades)
#[test]
fn istio_36469_old_injection_is_upgraded_not_skipped() {
    let old = read(&crate::util::golden_dir().join("old-injection.yaml"));
    let out = inject(&old, &[]);
    assert!(!out.contains("proxy:0.4.0"), "{out}");
    assert!(out.contains("istio.io/proxy:0.5.0"));
}
