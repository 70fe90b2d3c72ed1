//! Shared helpers: the binary, paths, YAML parsing, config files.

use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

/// A command running the built `kube-inject`, hermetically (see [`kube_inject_std`]).
pub fn kube_inject() -> Command {
    Command::from_std(kube_inject_std())
}

/// The variables through which the binary would find a cluster of the developer's machine.
pub const CLUSTER_ENV: [&str; 3] = [
    "KUBECONFIG",
    "KUBERNETES_SERVICE_HOST",
    "KUBERNETES_SERVICE_PORT",
];

/// The built `kube-inject` as a `std` command, in a hermetic environment: `HOME` is an empty
/// directory and `$KUBECONFIG` and the in-cluster variables are removed, so no kubeconfig or
/// service account of the machine running the tests is found ("no cluster configured"). A test
/// that wants a cluster sets those variables again on the command (the last setting wins).
pub fn kube_inject_std() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_kube-inject"));
    let home = empty_home();
    command.env("HOME", &home).env("USERPROFILE", &home);
    for name in CLUSTER_ENV {
        command.env_remove(name);
    }
    command
}

/// An empty directory for `HOME`, shared by every test (none writes into it).
fn empty_home() -> PathBuf {
    let home = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kube-inject-empty-home");
    fs::create_dir_all(&home).unwrap_or_else(|e| panic!("{}: {e}", home.display()));
    assert!(
        !home.join(".kube").exists(),
        "{} must stay empty",
        home.display()
    );
    home
}

/// The workspace root (samples/ lives there).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate sits inside the workspace")
        .to_path_buf()
}

/// A file under the workspace root.
pub fn at_root(path: &str) -> PathBuf {
    root().join(path)
}

/// The golden corpus directory.
pub fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/inject")
}

/// Reads a file as text.
pub fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every document of a multi-document YAML text, as data (blank and comment-only ones dropped).
pub fn docs(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|d| serde::Deserialize::deserialize(d).expect("valid YAML"))
        .filter(|v: &Value| !v.is_null())
        .collect()
}

/// The names in a pod list (`containers`, `initContainers`, `volumes`).
pub fn names(pod: &Value, list: &str) -> Vec<String> {
    pod["spec"][list]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| i["name"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Replaces the template hash in every `"version":"…"` of a status annotation with `<version>`.
pub fn mask_version(text: &str) -> String {
    const KEY: &str = "\"version\":\"";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(KEY) {
        let (head, tail) = rest.split_at(at + KEY.len());
        out.push_str(head);
        let end = tail.find('"').unwrap_or(tail.len());
        out.push_str("<version>");
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Runs `kube-inject ARGS` with `stdin`, expects success, returns stdout.
pub fn run_ok(args: &[&str], stdin: &str) -> String {
    let out = kube_inject()
        .args(args)
        .write_stdin(stdin)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kube-inject {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Injects `input` (through stdin) with extra flags.
pub fn inject(input: &str, flags: &[&str]) -> String {
    let mut args = vec!["-f", "-"];
    args.extend_from_slice(flags);
    run_ok(&args, input)
}

/// Uninjects `input` (through stdin).
pub fn uninject(input: &str) -> String {
    run_ok(&["uninject", "-f", "-"], input)
}

/// An injector config file whose template is the built-in one with `from` replaced by `to`.
pub fn template_config(dir: &Path, name: &str, from: &str, to: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, template_config_text(from, to)).unwrap();
    path
}

/// An injector config (the `config` document) whose template is the built-in one with `from`
/// replaced by `to`.
pub fn template_config_text(from: &str, to: &str) -> String {
    let builtin = read(&at_root("src/builtin/sidecar-template.yaml"));
    assert!(
        builtin.contains(from),
        "the built-in template has no {from:?}"
    );
    let template = builtin.replace(from, to);
    let mut config = String::from("template: |\n");
    for line in template.lines() {
        if !line.is_empty() {
            config.push_str("  ");
        }
        config.push_str(line);
        config.push('\n');
    }
    config
}

/// The sample manifests under `samples/` and the golden inputs: every fixture.
pub fn fixtures() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in [
        at_root("samples/sleep"),
        at_root("samples/multi"),
        at_root("samples/requirements"),
        golden_dir(),
    ] {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}
