//! Istio's own ConfigMaps as they are: an Istio 1.0 `istio-sidecar-injector` ConfigMap (its
//! template Go text/template with `[[ ]]`) and `istio` ConfigMap, given as manifests.

use std::fs;

use crate::util::{at_root, kube_inject};

const INJECTOR: &str = "kube-inject/tests/testdata/istio-1.0/istio-sidecar-injector.yaml";
const MESH: &str = "kube-inject/tests/testdata/istio-1.0/istio.yaml";
const MANIFEST: &str = "kube-inject/tests/testdata/inject/istio-1.0-configmap.yaml";

fn inject(args: &[&str]) -> std::process::Output {
    kube_inject()
        .current_dir(at_root(""))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn configmap_manifests_with_a_go_template_inject_as_the_golden_file() {
    let output = inject(&[
        "--injectConfigFile",
        INJECTOR,
        "--meshConfigFile",
        MESH,
        "-f",
        MANIFEST,
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    // The golden file was made from the bare `config` and `mesh` documents of the same maps.
    let golden = fs::read_to_string(at_root(&format!("{MANIFEST}.injected"))).unwrap();
    assert_eq!(stdout, golden);
    assert!(stdout.contains("image: docker.io/istio/proxyv2:1.0.0"));
    assert!(stdout.contains("- '80, 8443,'"), "{stdout}");

    // Injecting the output again changes nothing.
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first.yaml");
    fs::write(&first, &stdout).unwrap();
    let again = inject(&[
        "--injectConfigFile",
        INJECTOR,
        "--meshConfigFile",
        MESH,
        "-f",
        first.to_str().unwrap(),
    ]);
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(String::from_utf8(again.stdout).unwrap(), stdout);
}

#[test]
fn a_go_construct_outside_the_supported_set_is_refused_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    fs::write(
        &config,
        "policy: enabled\ntemplate: |-\n  containers:\n  - name: istio-proxy\n    image: [[ template \"image\" . ]]\n",
    )
    .unwrap();
    let output = inject(&[
        "--injectConfigFile",
        config.to_str().unwrap(),
        "-f",
        "samples/sleep/sleep.yaml",
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("template syntax error at line 3, column 10: `template` is not supported"),
        "{stderr}"
    );
}

#[test]
fn template_syntax_flag_overrides_recognition() {
    // Read as upon, Istio's Go template is not a template upon accepts.
    let output = inject(&[
        "--injectConfigFile",
        INJECTOR,
        "--meshConfigFile",
        MESH,
        "--templateSyntax",
        "upon",
        "-f",
        MANIFEST,
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("invalid `template`"));

    let output = inject(&["--builtin", "--templateSyntax", "jinja", "-f", MANIFEST]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("expected `go` or `upon`, got `jinja`")
    );
}
