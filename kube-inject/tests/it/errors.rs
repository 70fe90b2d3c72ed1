//! Errors: one `kube-inject: error:` line naming the document or file, exit 2, no output file.

use std::fs;

use predicates::prelude::*;

use crate::util::{at_root, kube_inject};

/// Runs with `-o` into a directory holding an older `out.yaml`; expects exit 2, that file
/// untouched, nothing else left behind, and returns stderr.
fn fails_without_writing(args: &[&str], stdin: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.yaml");
    fs::write(&out, "previous\n").unwrap();
    let output = kube_inject()
        .current_dir(at_root(""))
        .args(args)
        .arg("-o")
        .arg(&out)
        .write_stdin(stdin)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    assert_eq!(fs::read_to_string(&out).unwrap(), "previous\n");
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        1,
        "a temporary file was left"
    );
    let stderr = String::from_utf8(output.stderr).unwrap();
    let errors = stderr
        .lines()
        .filter(|l| l.starts_with("kube-inject: error: "))
        .count();
    assert_eq!(errors, 1, "{stderr}");
    stderr
}

fn error_line(stderr: &str) -> &str {
    stderr
        .lines()
        .find(|l| l.starts_with("kube-inject: error: "))
        .unwrap()
}

#[test]
fn invalid_yaml_names_the_document_and_the_input_line() {
    let stderr = fails_without_writing(
        &["-f", "-"],
        "apiVersion: v1\nkind: Service\n---\napiVersion: apps/v1\nkind: Deployment\nspec: {template: [}\n",
    );
    let line = error_line(&stderr);
    assert!(
        line.starts_with("kube-inject: error: document 2 (from line 4): not valid YAML: "),
        "{line}"
    );
    assert!(line.contains("line 6 column"), "{line}");
}

#[test]
fn a_document_without_kind_is_an_error() {
    let stderr = fails_without_writing(&["-f", "-"], "apiVersion: v1\nmetadata: {name: x}\n");
    assert_eq!(
        error_line(&stderr),
        "kube-inject: error: document 1 (from line 1): no `kind`; every Kubernetes object needs one, e.g. `kind: Deployment`"
    );
}

#[test]
fn an_unreadable_input_file_is_named() {
    let stderr = fails_without_writing(&["-f", "does/not/exist.yaml"], "");
    assert!(
        error_line(&stderr)
            .starts_with("kube-inject: error: -f does/not/exist.yaml: cannot read: "),
        "{stderr}"
    );
}

#[test]
fn an_unreadable_config_file_is_named() {
    let stderr = fails_without_writing(
        &[
            "--injectConfigFile",
            "missing-inject-config.yaml",
            "-f",
            "samples/sleep/sleep.yaml",
        ],
        "",
    );
    assert!(
        error_line(&stderr).starts_with(
            "kube-inject: error: --injectConfigFile missing-inject-config.yaml: cannot read: "
        ),
        "{stderr}"
    );
}

#[test]
fn an_invalid_config_file_is_named_with_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let mesh = dir.path().join("mesh.yaml");
    fs::write(&mesh, "defaultConfig:\n  drainDuration: soon\n").unwrap();
    let stderr = fails_without_writing(
        &[
            "--meshConfigFile",
            mesh.to_str().unwrap(),
            "-f",
            "samples/sleep/sleep.yaml",
        ],
        "",
    );
    let line = error_line(&stderr);
    assert!(
        line.starts_with(&format!(
            "kube-inject: error: --meshConfigFile {}: mesh config: field `defaultConfig.drainDuration`",
            mesh.display()
        )),
        "{line}"
    );
    let policy = dir.path().join("inject.yaml");
    fs::write(&policy, "policy: Enabled\n").unwrap();
    let stderr = fails_without_writing(
        &[
            "--injectConfigFile",
            policy.to_str().unwrap(),
            "-f",
            "samples/sleep/sleep.yaml",
        ],
        "",
    );
    assert!(error_line(&stderr).contains("policy must be `enabled` or `disabled`, got `Enabled`"));
}

#[test]
fn a_template_syntax_error_gives_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("broken.yaml");
    fs::write(
        &config,
        "template: |\n  containers:\n  - name: istio-proxy\n    image: {{ ObjectMeta.name | }}\n    args: [x]\n",
    )
    .unwrap();
    let stderr = fails_without_writing(
        &[
            "--injectConfigFile",
            config.to_str().unwrap(),
            "-f",
            "samples/sleep/sleep.yaml",
        ],
        "",
    );
    let line = error_line(&stderr);
    assert!(
        line.starts_with(&format!(
            "kube-inject: error: --injectConfigFile {}: invalid `template`",
            config.display()
        )),
        "{line}"
    );
    assert!(
        line.contains("template syntax error at line 3, column 31"),
        "{line}"
    );
}

#[test]
fn a_render_error_names_the_document_kind_and_name() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("needs-app.yaml");
    // Renders for pods with an `app` label only (the load-time sample pod has one).
    fs::write(
        &config,
        "template: |\n  containers:\n  - name: istio-proxy\n    image: istio.io/proxy:{{ ObjectMeta.labels.app }}\n",
    )
    .unwrap();
    let input = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: labelled}\nspec:\n  template:\n    metadata: {labels: {app: a}}\n    spec: {containers: [{name: a}]}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: unlabelled}\nspec:\n  template:\n    spec: {containers: [{name: a}]}\n";
    let stderr = fails_without_writing(
        &["--injectConfigFile", config.to_str().unwrap(), "-f", "-"],
        input,
    );
    let line = error_line(&stderr);
    assert!(
        line.starts_with(
            "kube-inject: error: document 2 (Deployment unlabelled): spec.template: template render error at line 3, column"
        ),
        "{line}"
    );
}

#[test]
fn missing_template_in_a_workload_is_named() {
    let stderr = fails_without_writing(
        &["-f", "-"],
        "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: nightly}\nspec: {schedule: '@daily'}\n",
    );
    assert_eq!(
        error_line(&stderr),
        "kube-inject: error: document 1 (CronJob nightly): spec.jobTemplate.spec.template is missing or not an object; a CronJob needs a pod template there"
    );
}

#[test]
fn non_utf8_input_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("latin1.yaml");
    fs::write(&bad, b"kind: Pod\nname: caf\xe9\n").unwrap();
    kube_inject()
        .arg("-f")
        .arg(&bad)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot read"));
}

/// Istio's annotation checks: every bad value named with its annotation, exit 2, no output.
#[test]
fn bad_annotations_are_an_error_naming_each_annotation_and_value() {
    let input = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    metadata:\n      labels: {app: web}\n      annotations:\n        traffic.sidecar.istio.io/includeOutboundIPRanges: bad\n        sidecar.istio.io/interceptionMode: redirect\n    spec: {containers: [{name: web, image: nginx}]}\n";
    let stderr = fails_without_writing(&["-f", "-"], input);
    assert_eq!(
        error_line(&stderr),
        "kube-inject: error: document 1 (Deployment web): spec.template: \
         invalid value 'redirect' for annotation 'sidecar.istio.io/interceptionMode': \
         interceptionMode invalid, use REDIRECT,TPROXY,NONE: redirect; \
         invalid value 'bad' for annotation 'traffic.sidecar.istio.io/includeOutboundIPRanges': \
         includeIPRanges invalid: failed parsing cidr 'bad': no '/'"
    );
}
