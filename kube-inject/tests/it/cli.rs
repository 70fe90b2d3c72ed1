//! The command line on the samples: kinds, passthrough, stdin, `-o`, stderr.

use std::fs;

use predicates::prelude::*;
use serde_json::Value;

use crate::util::{at_root, docs, kube_inject, names, read};

const SLEEP: &str = "samples/sleep/sleep.yaml";
const ALL_KINDS: &str = "samples/multi/all-kinds.yaml";

/// The first document of a file, as written (up to its `---` line).
fn first_document(text: &str) -> &str {
    &text[..text.find("\n---\n").map_or(text.len(), |i| i + 1)]
}

/// The pod template of a workload.
fn template(workload: &Value) -> &Value {
    &workload["spec"]["template"]
}

fn assert_injected(pod: &Value, app: &str) {
    assert_eq!(names(pod, "containers"), [app, "istio-proxy"], "{pod:#}");
    assert_eq!(names(pod, "initContainers"), ["istio-init"]);
    assert_eq!(names(pod, "volumes"), ["istio-envoy", "istio-certs"]);
    let status = pod["metadata"]["annotations"]["sidecar.istio.io/status"]
        .as_str()
        .expect("a status annotation");
    let status: Value = serde_json::from_str(status).unwrap();
    assert_eq!(status["containers"], serde_json::json!(["istio-proxy"]));
}

fn run_file(path: &str) -> (String, String) {
    let out = kube_inject()
        .current_dir(crate::util::root())
        .args(["-f", path])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn sleep_sample_gets_the_sidecar_and_the_service_passes_through() {
    let (stdout, stderr) = run_file(SLEEP);
    let input = read(&at_root(SLEEP));
    // The Service, with the file's header comments, comes out byte for byte.
    assert!(stdout.starts_with(first_document(&input)), "{stdout}");
    let docs = docs(&stdout);
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0]["kind"], "Service");
    assert_injected(template(&docs[1]), "sleep");
    assert_eq!(
        stderr,
        "kube-inject: no cluster configured (no kubeconfig); using the built-in default configuration\n"
    );
}

#[test]
fn stdin_is_read_with_dash() {
    let input = read(&at_root(SLEEP));
    let (from_file, _) = run_file(SLEEP);
    kube_inject()
        .args(["-f", "-"])
        .write_stdin(input)
        .assert()
        .success()
        .stdout(from_file);
}

#[test]
fn output_file_gets_what_stdout_would() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sleep-injected.yaml");
    let (expected, _) = run_file(SLEEP);
    kube_inject()
        .arg("-f")
        .arg(at_root(SLEEP))
        .arg("-o")
        .arg(&out)
        .assert()
        .success()
        .stdout("");
    assert_eq!(read(&out), expected);
    // Nothing but the output is left in the directory.
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn output_file_may_be_the_input_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sleep.yaml");
    fs::copy(at_root(SLEEP), &file).unwrap();
    let (expected, _) = run_file(SLEEP);
    kube_inject()
        .arg("-f")
        .arg(&file)
        .arg("-o")
        .arg(&file)
        .assert()
        .success();
    assert_eq!(read(&file), expected);
}

#[test]
fn all_kinds_sample_injects_each_workload_kind() {
    let (stdout, stderr) = run_file(ALL_KINDS);
    let input = read(&at_root(ALL_KINDS));
    // The commented Service passes through byte for byte, header included.
    assert!(stdout.starts_with(first_document(&input)), "{stdout}");
    assert!(first_document(&input).contains("# selects the Deployment below"));
    let original = docs(&input);
    let docs = docs(&stdout);
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "Service",
            "Deployment",
            "StatefulSet",
            "CronJob",
            "List",
            "DaemonSet"
        ]
    );
    assert_injected(template(&docs[1]), "web");
    assert_injected(template(&docs[2]), "redis");
    // CronJob: the template inside the job template.
    assert_injected(
        &docs[3]["spec"]["jobTemplate"]["spec"]["template"],
        "report",
    );
    // List: the Deployment item is injected, the ConfigMap item is left as it was.
    assert_injected(template(&docs[4]["items"][0]), "api");
    assert_eq!(
        docs[4]["items"][1], original[4]["items"][1],
        "the ConfigMap item is unchanged"
    );
    // The hostNetwork DaemonSet: warned about, and byte for byte.
    assert_eq!(names(template(&docs[5]), "containers"), ["agent"]);
    assert!(stdout.ends_with(last_document(&input)), "{stdout}");
    assert!(
        stderr.contains(
            "kube-inject: warning: document 6 (DaemonSet node-agent): skipping injection: \
             the pod has host networking enabled (spec.hostNetwork)\n"
        ),
        "{stderr}"
    );
}

fn last_document(text: &str) -> &str {
    &text[text.rfind("\n---\n").map_or(0, |i| i + 5)..]
}

#[test]
fn a_bare_pod_is_injected() {
    let input = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels: {app: p}\nspec:\n  containers:\n  - name: p\n    image: example/p\n";
    let out = crate::util::inject(input, &[]);
    assert_injected(&docs(&out)[0], "p");
}

#[test]
fn unknown_kinds_and_api_versions_pass_through_byte_for_byte() {
    let input = "apiVersion: example.com/v1\nkind: Widget   # not ours\nmetadata: {name: w}\nspec:\n  template:\n    spec: {containers: [{name: w}]}\n---\n# DaemonSets were never in apps/v1beta1\napiVersion: apps/v1beta1\nkind: DaemonSet\nmetadata:\n  name: odd\nspec:\n  template:\n    spec:\n      containers:\n      - {name: odd, image: tutum/curl}\n";
    kube_inject()
        .args(["-f", "-"])
        .write_stdin(input)
        .assert()
        .success()
        .stdout(input)
        .stderr(predicate::str::contains(
            "kube-inject: warning: document 2 (DaemonSet odd): apiVersion apps/v1beta1 \
             is not injected (DaemonSet is injected as apps/v1); passed through unchanged",
        ))
        .stderr(predicate::str::contains("Widget").not());
}

#[test]
fn old_api_versions_are_injected_with_a_warning_naming_the_current_one() {
    let input = read(&crate::util::golden_dir().join("old-api-versions.yaml"));
    let out = kube_inject()
        .args(["-f", "-"])
        .write_stdin(input.as_str())
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    for expected in [
        "document 1 (Deployment web): apiVersion apps/v1beta1 is not served by Kubernetes 1.16 and later; move to apps/v1",
        "document 2 (Deployment api): apiVersion apps/v1beta2 is not served by Kubernetes 1.16 and later; move to apps/v1",
        "document 3 (DaemonSet agent): apiVersion extensions/v1beta1 is not served by Kubernetes 1.16 and later; move to apps/v1",
        "document 4 (ReplicaSet cache): apiVersion apps/v1beta2 is not served by Kubernetes 1.16 and later; move to apps/v1",
        "document 5 (StatefulSet db): apiVersion apps/v1beta1 is not served by Kubernetes 1.16 and later; move to apps/v1",
        "document 6 (CronJob cleanup): apiVersion batch/v1beta1 is not served by Kubernetes 1.25 and later; move to batch/v1",
        "document 7 (CronJob rollup): apiVersion batch/v2alpha1 is not served by Kubernetes 1.21 and later; move to batch/v1",
    ] {
        assert!(
            stderr.contains(&format!("kube-inject: warning: {expected}\n")),
            "{expected}\n{stderr}"
        );
    }
    let before = docs(&input);
    let after = docs(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(after.len(), 7);
    for (old, new) in before.iter().zip(&after) {
        // The apiVersion is the user's to change; the pod template is where it always was.
        assert_eq!(old["apiVersion"], new["apiVersion"]);
        let pod = if new["kind"] == "CronJob" {
            &new["spec"]["jobTemplate"]["spec"]["template"]
        } else {
            template(new)
        };
        assert_eq!(names(pod, "initContainers"), ["istio-init"], "{new:#}");
        assert!(names(pod, "containers").contains(&"istio-proxy".to_string()));
    }
}

#[test]
fn config_files_are_named_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let mesh = dir.path().join("mesh-config.yaml");
    fs::write(
        &mesh,
        "defaultConfig:\n  discoveryAddress: istiod.istio-system:15012\n",
    )
    .unwrap();
    let out = kube_inject()
        .arg("--meshConfigFile")
        .arg(&mesh)
        .arg("-f")
        .arg(at_root(SLEEP))
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        stderr,
        format!(
            "kube-inject: injection config: the built-in default (no cluster configured: no kubeconfig)\n\
             kube-inject: mesh config: --meshConfigFile {}\n",
            mesh.display()
        )
    );
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("istiod.istio-system:15012")
    );
}

#[test]
fn builtin_flag_uses_the_built_in_config() {
    let (expected, _) = run_file(SLEEP);
    kube_inject()
        .arg("--builtin")
        .arg("-f")
        .arg(at_root(SLEEP))
        .assert()
        .success()
        .stdout(expected)
        .stderr("kube-inject: using the built-in default configuration (--builtin)\n");
}

#[test]
fn inject_subcommand_is_the_default() {
    let (expected, _) = run_file(SLEEP);
    kube_inject()
        .arg("inject")
        .arg("-f")
        .arg(at_root(SLEEP))
        .assert()
        .success()
        .stdout(expected);
}

#[test]
fn an_inject_config_file_sets_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("inject-config.yaml");
    fs::write(&config, "policy: disabled\n").unwrap();
    let input = read(&at_root(SLEEP));
    kube_inject()
        .arg("--injectConfigFile")
        .arg(&config)
        .args(["-f", "-"])
        .write_stdin(input.clone())
        .assert()
        .success()
        .stdout(input)
        .stderr(predicate::str::contains(
            "document 2 (Deployment sleep): skipping injection: the injection policy is disabled",
        ));
}

#[test]
fn help_documents_flags_and_exit_codes() {
    kube_inject()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("-f, --filename <FILE>"))
        .stdout(predicate::str::contains("-o, --output <FILE>"))
        .stdout(predicate::str::contains("--injectConfigFile <FILE>"))
        .stdout(predicate::str::contains("--meshConfigFile <FILE>"))
        .stdout(predicate::str::contains("--builtin"))
        .stdout(predicate::str::contains("-i, --istioNamespace <NAMESPACE>"))
        .stdout(predicate::str::contains("[default: istio-system]"))
        .stdout(predicate::str::contains("--injectConfigMapName <NAME>"))
        .stdout(predicate::str::contains(
            "[default: istio-sidecar-injector]",
        ))
        .stdout(predicate::str::contains("--meshConfigMapName <NAME>"))
        .stdout(predicate::str::contains("[default: istio]"))
        .stdout(predicate::str::contains("--kubeconfig <FILE>"))
        .stdout(predicate::str::contains("--context <NAME>"))
        .stdout(predicate::str::contains("--diff"))
        .stdout(predicate::str::contains("uninject"))
        .stdout(predicate::str::contains("check"))
        .stdout(predicate::str::contains("Exit status:"))
        .stdout(predicate::str::contains("2  error"));
}

#[test]
fn missing_filename_is_a_usage_error() {
    kube_inject()
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--filename <FILE>"));
}

#[test]
fn a_closed_stdout_exits_zero() {
    use std::io::Read;
    use std::process::Stdio;
    // Enough output to overflow a pipe buffer, so writing hits the closed pipe.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("many.yaml");
    let one = read(&at_root(SLEEP));
    fs::write(&input, vec![one.as_str(); 300].join("---\n")).unwrap();
    let mut child = crate::util::kube_inject_std()
        .arg("-f")
        .arg(&input)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("error"), "{stderr}");
}

#[test]
fn output_dash_is_stdout() {
    let (expected, _) = run_file(SLEEP);
    kube_inject()
        .arg("-f")
        .arg(at_root(SLEEP))
        .args(["-o", "-"])
        .assert()
        .success()
        .stdout(expected);
}
