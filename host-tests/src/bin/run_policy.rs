//! Sends one admission through a built policy module as Kubewarden's policy-server would, and
//! prints the AdmissionReview response with its JSON patch decoded.
//!
//! ```text
//! make policy.wasm
//! cargo run -p host-tests --bin run-policy -- [--module policy.wasm] [--settings settings.json]
//!     [--kubernetes kubernetes.json] [--raw-answer] [REVIEW.json]
//! ```
//! The request defaults to `samples/sleep/admission-review.json` (an AdmissionReview or a bare
//! AdmissionRequest), the settings to `{}`, and the answers to context-aware calls to
//! `samples/sleep/kubernetes.json` (the sleep Service), in the format of `host-tests/fixtures`.
//! With `--raw-answer` it prints instead exactly the bytes `validate` returned (the waPC
//! `ValidationResponse`, no newline added): what `scripts/real-hosts-bench` bakes into the
//! pass-through module's answer floor.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use host_tests::requests::admission_request_of;
use host_tests::{
    KubernetesFixtures, Policy, admission_response, decode_patch, validation_payload,
};
use serde_json::{Value, json};

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("run-policy: error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut module = root.join("policy.wasm");
    let mut settings = json!({});
    let mut review_path = root.join("samples/sleep/admission-review.json");
    let mut kubernetes = root.join("samples/sleep/kubernetes.json");
    let mut raw_answer = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--module" => module = args.next().context("--module needs a path")?.into(),
            "--settings" => {
                let path = args.next().context("--settings needs a path")?;
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {path}"))?;
                settings = serde_yaml::from_str(&text)
                    .with_context(|| format!("{path} is not YAML or JSON"))?;
            }
            "--kubernetes" => kubernetes = args.next().context("--kubernetes needs a path")?.into(),
            "--raw-answer" => raw_answer = true,
            "-h" | "--help" => {
                println!(
                    "usage: run-policy [--module policy.wasm] [--settings FILE] [--kubernetes FILE] [--raw-answer] [REVIEW.json]"
                );
                return Ok(ExitCode::SUCCESS);
            }
            other if other.starts_with('-') => bail!("unknown option {other}; see --help"),
            other => review_path = other.into(),
        }
    }
    if !module.exists() {
        bail!(
            "{} not found: build it first with `make policy.wasm`",
            module.display()
        );
    }
    let text = std::fs::read_to_string(&review_path)
        .with_context(|| format!("cannot read {}", review_path.display()))?;
    let document: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not JSON", review_path.display()))?;
    let request = admission_request_of(&document).clone();

    let policy = Policy::load(&module)?.with_fixtures(KubernetesFixtures::load(&kubernetes)?);
    let verdict = policy.validate_settings(&settings);
    if verdict["valid"] != json!(true) {
        bail!("settings refused: {}", verdict["message"]);
    }
    if raw_answer {
        let answer = policy
            .call("validate", &validation_payload(&request, &settings))
            .context("validate failed")?;
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(&answer)?;
        stdout.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let validation = policy
        .validate(&request, &settings)
        .context("validate failed")?;
    let object = request.get("object").cloned().unwrap_or(Value::Null);
    let mut response = admission_response(&object, &validation);
    response["uid"] = request.get("uid").cloned().unwrap_or(Value::Null);
    let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response});
    println!("{}", serde_json::to_string_pretty(&review)?);
    if let Some(patch) = review["response"]["patch"].as_str() {
        println!("\n# the patch, decoded:");
        println!("{}", serde_json::to_string_pretty(&decode_patch(patch)?)?);
    }
    Ok(ExitCode::SUCCESS)
}
