//! Runs every `host-tests/fixtures/<case>/` against the sidecar injector module, as
//! policy-server would: `validate_settings`, then `validate` on a fresh instance, then the
//! Kubewarden diff, then the API server's patch. Cases are found by themselves; every failure
//! is reported at once, by case name. The format is in `fixtures/README.md`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use host_tests::{
    HostCall, KubernetesFixtures, Policy, admission_response, apply_admission_response,
    requests::admission_request_of,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// `expected.json`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    /// `false`: the settings must be refused (and `validate` is not run).
    settings_valid: Option<bool>,
    /// `allowed` of the admission response.
    accepted: Option<bool>,
    /// Whether the admission response carries a patch.
    mutated: Option<bool>,
    /// `request.object` after the patch.
    pod: Option<Value>,
    /// Substring of the rejection message (or of the settings message).
    message_contains: Option<String>,
    /// Each must be a substring of some warning.
    #[serde(default)]
    warnings_contain: Vec<String>,
    /// Host calls, in order; each a pattern over `{binding, namespace, operation, request}`.
    calls: Option<Vec<Value>>,
    /// `true`: sending the patched pod again must produce no patch.
    idempotent: Option<bool>,
}

/// `host-tests/fixtures`, or the directory in `HOST_TESTS_FIXTURES`.
fn fixtures_dir() -> PathBuf {
    std::env::var_os("HOST_TESTS_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures"))
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    serde_json::from_str(&text).map_err(|err| format!("{} is not JSON: {err}", path.display()))
}

fn read_optional(path: &Path) -> Result<Option<Value>, String> {
    if path.exists() {
        read_json(path).map(Some)
    } else {
        Ok(None)
    }
}

/// Directories of `fixtures/` that hold a `request.json`, sorted by name.
fn cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .collect()
        })
        .unwrap_or_default();
    cases.retain(|dir| dir.join("request.json").is_file());
    cases.sort();
    cases
}

#[test]
fn fixture_cases_match_expectations() {
    check_every_case(crate::injector::injector());
}

/// The snapshot only warms caches: the module before pre-initialisation answers alike.
#[test]
fn fixture_cases_match_expectations_without_pre_initialisation() {
    check_every_case(crate::preinit::cargo_module());
}

fn check_every_case(policy: &Policy) {
    let cases = cases();
    let mut failures = String::new();
    for case in &cases {
        let name = case
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Err(problems) = run_case(policy, case) {
            let _ = writeln!(failures, "\n--- {name}\n{problems}");
        }
    }
    assert!(
        failures.is_empty(),
        "{} fixture case(s) failed:{failures}",
        failures.matches("\n--- ").count()
    );
    eprintln!("{} fixture case(s) passed", cases.len());
}

fn run_case(policy: &Policy, case: &Path) -> Result<(), String> {
    let document = read_json(&case.join("request.json"))?;
    let request = admission_request_of(&document).clone();
    let settings = read_optional(&case.join("settings.json"))?.unwrap_or_else(|| json!({}));
    let fixtures = match read_optional(&case.join("kubernetes.json"))? {
        Some(value) => KubernetesFixtures::from_json(&value)
            .map_err(|err| format!("kubernetes.json: {err:#}"))?,
        None => KubernetesFixtures::new(),
    };
    let expected: Expected = serde_json::from_value(read_json(&case.join("expected.json"))?)
        .map_err(|err| format!("expected.json: {err}"))?;
    let mut problems = Vec::new();

    let settings_response = policy.validate_settings(&settings);
    let settings_valid = settings_response["valid"] == json!(true);
    if expected.settings_valid == Some(false) {
        if settings_valid {
            problems.push("settings: expected invalid, got valid".to_owned());
        }
        if let Some(needle) = &expected.message_contains {
            let message = settings_response["message"].as_str().unwrap_or_default();
            if !message.contains(needle.as_str()) {
                problems.push(format!(
                    "settings message {message:?} does not contain {needle:?}"
                ));
            }
        }
        return finish(problems);
    }
    if !settings_valid {
        return Err(format!(
            "settings refused: {}",
            settings_response["message"]
        ));
    }

    let (validation, calls) = policy.validate_with(&request, &settings, &fixtures);
    let validation =
        validation.map_err(|err| format!("validate must never fail or trap: {err}"))?;
    let object = request.get("object").cloned().unwrap_or(Value::Null);
    let admission = admission_response(&object, &validation);
    let patched =
        apply_admission_response(&object, &admission).map_err(|err| format!("patch: {err:#}"))?;

    if let Some(accepted) = expected.accepted
        && admission["allowed"] != json!(accepted)
    {
        problems.push(format!("allowed: expected {accepted}, got {admission}"));
    }
    if let Some(mutated) = expected.mutated
        && admission.get("patch").is_some() != mutated
    {
        problems.push(format!("mutated: expected {mutated}, got {admission}"));
    }
    if let Some(pod) = &expected.pod
        && &patched != pod
    {
        if std::env::var_os("REFRESH_FIXTURES").is_some() {
            refresh_pod(case, &patched)?;
        } else {
            let difference = json!(json_patch::diff(pod, &patched));
            problems.push(format!(
                "pod differs from expected.json (JSON patch from expected to actual): {difference}; \
                 after an intended change, REFRESH_FIXTURES=1 cargo test -p host-tests rewrites it: review the diff"
            ));
        }
    }
    if let Some(needle) = &expected.message_contains {
        let message = admission["status"]["message"].as_str().unwrap_or_default();
        if !message.contains(needle.as_str()) {
            problems.push(format!("message {message:?} does not contain {needle:?}"));
        }
    }
    let warnings: Vec<&str> = admission["warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for needle in &expected.warnings_contain {
        if !warnings
            .iter()
            .any(|warning| warning.contains(needle.as_str()))
        {
            problems.push(format!(
                "no warning contains {needle:?}; warnings: {warnings:?}"
            ));
        }
    }
    if let Some(expected_calls) = &expected.calls {
        check_calls(expected_calls, &calls, &mut problems);
    }
    if expected.idempotent == Some(true) {
        let mut again = request.clone();
        again["object"] = patched.clone();
        match policy.validate_with(&again, &settings, &fixtures).0 {
            Ok(second) => {
                let second = admission_response(&patched, &second);
                if second.get("patch").is_some() || second["allowed"] != json!(true) {
                    problems.push(format!(
                        "not idempotent: sending the patched pod again gave {second}"
                    ));
                }
            }
            Err(err) => problems.push(format!("not idempotent: second validate failed: {err}")),
        }
    }
    finish(problems)
}

/// Rewrites `pod` in the case's expected.json with what the module produced.
fn refresh_pod(case: &Path, patched: &Value) -> Result<(), String> {
    let path = case.join("expected.json");
    let mut expected = read_json(&path)?;
    expected["pod"] = patched.clone();
    let text = serde_json::to_string_pretty(&expected).map_err(|err| err.to_string())?;
    std::fs::write(&path, text + "\n")
        .map_err(|err| format!("cannot write {}: {err}", path.display()))
}

fn check_calls(expected: &[Value], actual: &[HostCall], problems: &mut Vec<String>) {
    let fits = expected.len() == actual.len()
        && expected
            .iter()
            .zip(actual)
            .all(|(want, have)| have.matches(want));
    if !fits {
        problems.push(format!(
            "host calls differ: expected {}, got {}",
            json!(expected),
            serde_json::to_string(actual).unwrap_or_default()
        ));
    }
}

fn finish(problems: Vec<String>) -> Result<(), String> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}
