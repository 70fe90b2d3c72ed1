//! `--diff`: a unified diff per changed document; exit 0 no change, 1 changes, 2 error.

use predicates::prelude::*;

use crate::util::{at_root, inject, kube_inject, read};

#[test]
fn diff_shows_the_injection_and_exits_1() {
    kube_inject()
        .arg("--diff")
        .arg("-f")
        .arg(at_root("samples/sleep/sleep.yaml"))
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "sleep.yaml: document 2 (Deployment sleep), from line 16, injected\n",
        ))
        .stdout(predicate::str::contains("\n+      - name: istio-proxy\n"))
        .stdout(
            predicate::str::contains("\n+      - name: istio-init\n")
                .or(predicate::str::contains("\n+        name: istio-init\n")),
        )
        // The Service does not change, so it has no diff.
        .stdout(predicate::str::contains("document 1").not());
}

#[test]
fn diff_of_injected_output_is_empty_and_exits_0() {
    let injected = inject(&read(&at_root("samples/sleep/sleep.yaml")), &[]);
    kube_inject()
        .args(["--diff", "-f", "-"])
        .write_stdin(injected)
        .assert()
        .code(0)
        .stdout("");
}

#[test]
fn diff_writes_no_file_and_refuses_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.yaml");
    kube_inject()
        .arg("--diff")
        .arg("-f")
        .arg(at_root("samples/sleep/sleep.yaml"))
        .arg("-o")
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot be used with"));
    assert!(!out.exists());
}

#[test]
fn diff_on_bad_input_exits_2() {
    kube_inject()
        .args(["--diff", "-f", "-"])
        .write_stdin("kind: Deployment\nspec: [\n")
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains(
            "\nkube-inject: error: document 1 (from line 1): not valid YAML",
        ));
}

#[test]
fn uninject_diff_shows_removals() {
    let injected = inject(&read(&at_root("samples/sleep/sleep.yaml")), &[]);
    kube_inject()
        .args(["uninject", "--diff", "-f", "-"])
        .write_stdin(injected)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("uninjected\n"))
        .stdout(predicate::str::contains("\n-      - name: istio-proxy\n"));
}
