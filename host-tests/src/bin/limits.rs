//! The policy's limits, measured: for each large request (`requests::large_pods`, and one
//! nested 10k deep), the time `policy.wasm` takes on a fresh instance as policy-server runs it,
//! the module's memory at the end of the call (wasm memory never shrinks, so this is its peak),
//! the request's size and the answer. Results go to RELIABILITY.md.
//!
//! ```text
//! make policy.wasm
//! cargo run --release -p host-tests --bin limits [-- --samples 5]
//! ```

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use host_tests::{Policy, PolicyOptions, requests, validation_payload};
use serde_json::{Value, json};

fn summary(response: &[u8]) -> String {
    match serde_json::from_slice::<Value>(response) {
        Ok(answer) if answer["accepted"] == true => {
            let containers = answer["mutated_object"]["spec"]["containers"]
                .as_array()
                .map_or(0, Vec::len);
            format!("injected ({containers} containers)")
        }
        Ok(answer) => {
            let message: String = answer["message"]
                .as_str()
                .unwrap_or_default()
                .chars()
                .take(90)
                .collect();
            format!("rejected: {message}")
        }
        Err(e) => format!("not JSON: {e}"),
    }
}

fn run() -> anyhow::Result<()> {
    let samples: usize = match std::env::args().skip(1).collect::<Vec<_>>().as_slice() {
        [] => 5,
        [flag, n] if flag == "--samples" => n.parse().context("--samples needs a number")?,
        other => anyhow::bail!("unknown arguments {other:?} (accepted: --samples N)"),
    };
    // A generous deadline, so that the time is measured even past policy-server's 2 s.
    let options = PolicyOptions {
        deadline: Duration::from_secs(60),
        ..PolicyOptions::default()
    };
    let policy = Policy::load_with(host_tests::injector_wasm(), options)
        .with_context(|| format!("cannot load policy.wasm ({})", host_tests::BUILD_INJECTOR))?;
    let settings = json!({"requirements": "off"});
    let mut cases: Vec<(String, Vec<u8>)> = vec![(
        "sleep pod (for scale)".into(),
        validation_payload(&requests::sleep_pod_request(), &settings),
    )];
    for (name, pod) in requests::large_pods() {
        let request = requests::pod_create_request(pod);
        cases.push((name.into(), validation_payload(&request, &settings)));
    }
    cases.push((
        "unknown fields 10k deep".into(),
        requests::deeply_nested_validate_payload(10_000),
    ));
    println!("| request | size | median | max | module memory | answer |");
    println!("|---|---|---|---|---|---|");
    for (name, payload) in cases {
        eprintln!("limits: {name}…");
        let mut times = Vec::new();
        let mut memory = 0;
        let mut answer = String::new();
        for _ in 0..samples.max(1) {
            let start = Instant::now();
            let result = policy.call_on_one_instance("validate", std::slice::from_ref(&payload));
            times.push(start.elapsed());
            match result {
                Ok(calls) => {
                    if let Some((response, size)) = calls.into_iter().next() {
                        memory = size;
                        answer = summary(&response);
                    }
                }
                Err(e) => answer = format!("FAILED: {e}"),
            }
        }
        times.sort_unstable();
        let median = times[times.len() / 2];
        let max = times[times.len() - 1];
        println!(
            "| {name} | {:.2} MB | {:.1} ms | {:.1} ms | {:.1} MiB | {answer} |",
            payload.len() as f64 / 1e6,
            median.as_secs_f64() * 1e3,
            max.as_secs_f64() * 1e3,
            memory as f64 / (1024.0 * 1024.0),
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("limits: {e:#}");
            ExitCode::FAILURE
        }
    }
}
