//! The committed ArtifactHub files are what `make artifacthub` writes, the settings form asks
//! for the settings the policy reads, and the release's references agree with the metadata.

use std::collections::BTreeSet;

use policy_publish::PolicyMetadata;
use policy_publish::artifacthub;
use serde_yaml::Value;

use crate::support::{assert_error, publish, run, stderr, stdout, workspace};

fn read(name: &str) -> String {
    std::fs::read_to_string(workspace().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn metadata() -> PolicyMetadata {
    PolicyMetadata::from_yaml(&read("metadata.yml")).unwrap()
}

#[test]
fn artifacthub_pkg_is_not_stale() {
    let committed = read("artifacthub-pkg.yml");
    let metadata = metadata();
    let created_at = artifacthub::created_at(Some(&committed), metadata.version().unwrap(), "");
    let expected =
        artifacthub::generate(&metadata, &read("questions-ui.yml"), &created_at).unwrap();
    assert!(
        committed == expected,
        "artifacthub-pkg.yml is stale: run `make artifacthub` and commit it"
    );
}

#[test]
fn the_check_command_fails_on_a_stale_file() {
    let dir = tempfile::tempdir().unwrap();
    let stale = dir.path().join("artifacthub-pkg.yml");
    std::fs::write(
        &stale,
        read("artifacthub-pkg.yml").replace("kubewarden/mutation", "x"),
    )
    .unwrap();
    let output = run(publish()
        .current_dir(workspace())
        .args(["artifacthub", "--check", "--output"])
        .arg(&stale));
    assert_error(&output, 1, "is stale: run `make artifacthub`");
}

/// The questions' variables, top-level keys only (`configMaps.injector` → `configMaps`).
fn question_keys(questions: &Value) -> BTreeSet<String> {
    questions["questions"]
        .as_sequence()
        .expect("a `questions` list")
        .iter()
        .map(|q| {
            let variable = q["variable"]
                .as_str()
                .expect("every question has a variable");
            variable.split('.').next().unwrap_or(variable).to_string()
        })
        .collect()
}

#[test]
fn the_settings_form_covers_policy_yaml_and_its_defaults_are_valid_settings() {
    let questions: Value = serde_yaml::from_str(&read("questions-ui.yml")).unwrap();
    let policy: Value = serde_yaml::from_str(&read("policy.yaml")).unwrap();
    let asked = question_keys(&questions);
    let set: BTreeSet<String> = policy["spec"]["settings"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    let missing: Vec<_> = set.difference(&asked).collect();
    assert!(
        missing.is_empty(),
        "policy.yaml sets {missing:?}, which questions-ui.yml does not ask"
    );
    let known = [
        "requirements",
        "protocols",
        "configMaps",
        "policy",
        "template",
        "templateSyntax",
        "neverInjectSelector",
        "alwaysInjectSelector",
        "mesh",
        "config",
        "revision",
    ];
    let unknown: Vec<_> = asked
        .iter()
        .filter(|k| !known.contains(&k.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "questions-ui.yml asks for unknown settings {unknown:?}"
    );

    // The form's defaults, as settings: the policy's own validation accepts them.
    let mut settings = serde_json::Map::new();
    for question in questions["questions"].as_sequence().unwrap() {
        let Some(default) = question.get("default") else {
            continue;
        };
        let default: serde_json::Value = serde_yaml::from_value(default.clone()).unwrap();
        let variable = question["variable"].as_str().unwrap();
        let mut path = variable.split('.').peekable();
        let mut at = &mut settings;
        while let Some(key) = path.next() {
            if path.peek().is_none() {
                at.insert(key.to_string(), default.clone());
                break;
            }
            at = at
                .entry(key.to_string())
                .or_insert_with(|| serde_json::json!({}))
                .as_object_mut()
                .unwrap();
        }
    }
    let settings = serde_json::Value::Object(settings);
    if let Err(e) = sidecar_injector::settings::PolicySettings::validate(&settings) {
        panic!("the form's defaults {settings} are not valid settings: {e}");
    }
}

#[test]
fn policy_yaml_installs_the_release_this_metadata_describes() {
    let metadata = metadata();
    let oci_url = metadata.annotation("io.kubewarden.policy.ociUrl").unwrap();
    let expected = format!("registry://{oci_url}:v{}", metadata.version().unwrap());
    let policy: Value = serde_yaml::from_str(&read("policy.yaml")).unwrap();
    assert_eq!(policy["spec"]["module"].as_str(), Some(expected.as_str()));
}

#[test]
fn cargo_toml_and_metadata_yml_agree_on_the_version() {
    let output = run(publish().current_dir(workspace()).arg("version"));
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output).trim(), metadata().version().unwrap());

    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("metadata.yml");
    std::fs::write(
        &other,
        read("metadata.yml").replace("version: 0.1.0", "version: 9.9.9"),
    )
    .unwrap();
    let output = run(publish()
        .current_dir(workspace())
        .arg("version")
        .arg("--metadata")
        .arg(&other));
    assert_error(&output, 1, "versions disagree");
}
