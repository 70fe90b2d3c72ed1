//! `uninject`: removes what the status annotation lists, or Istio's well-known names.

use predicates::prelude::*;

use crate::util::{at_root, docs, inject, kube_inject, names, read};

#[test]
fn uninject_restores_the_sleep_sample() {
    let sleep = read(&at_root("samples/sleep/sleep.yaml"));
    let injected = inject(&sleep, &[]);
    let out = kube_inject()
        .args(["uninject", "-f", "-"])
        .write_stdin(injected)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(docs(&String::from_utf8(out.stdout).unwrap()), docs(&sleep));
    // Uninject needs no configuration and says nothing when all goes well.
    assert_eq!(String::from_utf8(out.stderr).unwrap(), "");
}

#[test]
fn without_status_the_well_known_names_go_with_a_note() {
    let input = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  initContainers: [{name: istio-init}]\n  containers: [{name: app}, {name: istio-proxy}]\n  volumes: [{name: istio-envoy}, {name: data}]\n";
    let out = kube_inject()
        .args(["uninject", "-f", "-"])
        .write_stdin(input)
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "kube-inject: warning: document 1 (Pod p): no sidecar.istio.io/status annotation; \
             removed Istio's well-known names where present",
        ))
        .get_output()
        .stdout
        .clone();
    let pod = &docs(&String::from_utf8(out).unwrap())[0];
    assert_eq!(names(pod, "containers"), ["app"]);
    assert_eq!(names(pod, "volumes"), ["data"]);
    assert!(pod["spec"].get("initContainers").is_none());
}

#[test]
fn uninject_writes_output_files_too() {
    let dir = tempfile::tempdir().unwrap();
    let injected = dir.path().join("injected.yaml");
    let restored = dir.path().join("restored.yaml");
    let sleep = read(&at_root("samples/sleep/sleep.yaml"));
    std::fs::write(&injected, inject(&sleep, &[])).unwrap();
    kube_inject()
        .arg("uninject")
        .arg("-f")
        .arg(&injected)
        .arg("-o")
        .arg(&restored)
        .assert()
        .success()
        .stdout("");
    assert_eq!(docs(&read(&restored)), docs(&sleep));
}

/// istioctl writes a CronJob's status on `spec.jobTemplate.metadata`; uninject reads it there and
/// removes it from there, with what it lists.
#[test]
fn istioctl_cronjob_output_is_uninjected() {
    let istioctl = read(&crate::util::golden_dir().join("cronjob-istioctl.yaml"));
    let out = kube_inject()
        .args(["uninject", "-f", "-"])
        .write_stdin(istioctl.as_str())
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!stderr.contains("well-known names"), "{stderr}");
    let cron = &docs(&String::from_utf8(out.stdout).unwrap())[0];
    let job = &cron["spec"]["jobTemplate"];
    assert_eq!(
        job["metadata"],
        serde_json::json!({"creationTimestamp": null})
    );
    let pod = &job["spec"]["template"];
    assert_eq!(names(pod, "containers"), ["report"]);
    assert!(pod["spec"].get("initContainers").is_none(), "{pod:#}");
    assert!(pod["spec"].get("volumes").is_none(), "{pod:#}");
    assert!(pod["metadata"].get("annotations").is_none(), "{pod:#}");
    // What is left injects as istioctl's output re-injects.
    let uninjected = String::from_utf8(
        kube_inject()
            .args(["uninject", "-f", "-"])
            .write_stdin(istioctl.as_str())
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(
        docs(&inject(&uninjected, &[])),
        docs(&inject(&istioctl, &[]))
    );
}

#[test]
fn a_forged_status_never_uninjects_the_application() {
    let manifest = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: app\n  annotations:\n    sidecar.istio.io/status: '{\"containers\":[\"app\",\"istio-proxy\"]}'\nspec:\n  containers:\n  - name: app\n    image: app:1\n  - name: istio-proxy\n    image: proxy\n";
    let output = kube_inject()
        .args(["uninject", "-f", "-"])
        .write_stdin(manifest)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("- name: app"), "{stdout}");
    assert!(!stdout.contains("istio-proxy"), "{stdout}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains(r#"spec.containers entry "app""#) && stderr.contains("kept, not removed"),
        "{stderr}"
    );
}
