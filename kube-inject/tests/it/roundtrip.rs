//! Properties over every fixture (samples and golden inputs) and several configurations:
//! injecting is idempotent byte for byte, a new template replaces the old sidecar, and
//! uninject undoes inject (as data).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::{docs, fixtures, inject, names, read, template_config, uninject};

/// Flags for each configuration the properties are checked under.
struct Configs {
    _dir: tempfile::TempDir,
    sets: Vec<(&'static str, Vec<String>)>,
    /// The built-in template with a newer proxy image.
    newer: PathBuf,
}

fn configs() -> Configs {
    let dir = tempfile::tempdir().unwrap();
    let newer = template_config(
        dir.path(),
        "newer.yaml",
        "istio.io/proxy:0.5.0",
        "istio.io/proxy:1.0.0",
    );
    let mesh = dir.path().join("hold.yaml");
    std::fs::write(
        &mesh,
        "defaultConfig:\n  holdApplicationUntilProxyStarts: true\n",
    )
    .unwrap();
    let path = |p: &Path| p.display().to_string();
    let sets = vec![
        ("built-in", vec!["--builtin".to_string()]),
        (
            "newer template",
            vec!["--injectConfigFile".into(), path(&newer)],
        ),
        ("proxy first", vec!["--meshConfigFile".into(), path(&mesh)]),
        (
            "native sidecar",
            vec!["--builtin".into(), "--nativeSidecars".into()],
        ),
        (
            "native sidecar, hold",
            vec![
                "--nativeSidecars".into(),
                "--meshConfigFile".into(),
                path(&mesh),
            ],
        ),
    ];
    Configs {
        _dir: dir,
        sets,
        newer,
    }
}

fn flags(set: &[String]) -> Vec<&str> {
    set.iter().map(String::as_str).collect()
}

#[test]
fn injecting_the_output_again_changes_no_byte() {
    let configs = configs();
    for fixture in fixtures() {
        let input = read(&fixture);
        for (name, set) in &configs.sets {
            let once = inject(&input, &flags(set));
            let twice = inject(&once, &flags(set));
            assert!(
                once == twice,
                "{} ({name}): second injection changed the output",
                fixture.display()
            );
        }
    }
}

#[test]
fn uninject_undoes_inject_as_data() {
    let configs = configs();
    for fixture in fixtures() {
        let input = read(&fixture);
        // What the input holds without any sidecar (most fixtures have none to begin with). An
        // input that was never injected is its own bare form: an istio-proxy it declares is the
        // user's override (container-overrides.yaml), which uninject after inject gives back.
        let bare = if input.contains("sidecar.istio.io/status") {
            docs(&uninject(&input))
        } else {
            docs(&input)
        };
        for (name, set) in &configs.sets {
            let injected = inject(&input, &flags(set));
            assert_eq!(
                docs(&uninject(&injected)),
                bare,
                "{} ({name}): uninject(inject(x)) != uninject(x)",
                fixture.display()
            );
        }
    }
}

#[test]
fn uninject_leaves_a_manifest_without_sidecars_byte_for_byte() {
    for fixture in fixtures() {
        // These hold sidecars (an older injection, istioctl's, one in each placement).
        if [
            "old-injection.yaml",
            "cronjob-istioctl.yaml",
            "placement-to-native.yaml",
            "placement-to-regular.yaml",
            // Declares istio-proxy itself: without a status, uninject takes Istio's names.
            "container-overrides.yaml",
        ]
        .iter()
        .any(|name| fixture.ends_with(name))
        {
            continue;
        }
        let input = read(&fixture);
        let output = uninject(&input);
        if fixture.ends_with("document-markers.yaml") {
            // Blank documents are dropped; the rest is kept as written.
            assert_eq!(docs(&output), docs(&input));
            assert!(output.contains("...\n--- # a marker"), "{output}");
        } else {
            assert!(
                output == input,
                "{}: uninject changed a manifest without sidecars",
                fixture.display()
            );
        }
    }
}

#[test]
fn a_newer_template_over_old_output_replaces_the_sidecar() {
    let configs = configs();
    let newer = [
        "--injectConfigFile".to_string(),
        configs.newer.display().to_string(),
    ];
    for fixture in fixtures() {
        let input = read(&fixture);
        let old = inject(&input, &["--builtin"]);
        let upgraded = inject(&old, &flags(&newer));
        let fresh = inject(&input, &flags(&newer));
        assert_eq!(
            docs(&upgraded),
            docs(&fresh),
            "{}: upgrading old output differs from injecting the original",
            fixture.display()
        );
        // The proxy image is the template's unless the pod declares its own (an override).
        if docs(&old) != docs(&input) && !input.contains("name: istio-proxy") {
            assert!(!upgraded.contains("istio.io/proxy:0.5.0"), "{upgraded}");
            assert!(upgraded.contains("istio.io/proxy:1.0.0"));
        }
    }
}

#[test]
fn a_template_with_fewer_entries_removes_the_old_ones() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("proxy-only.yaml");
    std::fs::write(
        &config,
        "template: |\n  containers:\n  - name: istio-proxy\n    image: istio.io/proxy:2.0.0\n",
    )
    .unwrap();
    let sleep = read(&crate::util::at_root("samples/sleep/sleep.yaml"));
    let old = inject(&sleep, &[]);
    let upgraded = inject(&old, &["--injectConfigFile", config.to_str().unwrap()]);
    let pod: &Value = &docs(&upgraded)[1]["spec"]["template"];
    assert_eq!(names(pod, "containers"), ["sleep", "istio-proxy"]);
    assert!(names(pod, "initContainers").is_empty(), "{pod:#}");
    assert!(names(pod, "volumes").is_empty(), "{pod:#}");
    assert_eq!(
        pod["spec"]["containers"][1]["image"],
        "istio.io/proxy:2.0.0"
    );
}
