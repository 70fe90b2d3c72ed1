//! Per-admission cost of the sidecar injector against the pass-through floor, as policy-server
//! pays it: a fresh `Store` and instance, `wapc_init`, then `validate` with settings `{}`.
//!
//! ```text
//! cargo build --target wasm32-wasip1 --release
//! cargo build --target wasm32-wasip1 --release -p passthrough
//! cargo run --release -p host-tests --bin bench [-- --samples 200 --warmup 20]
//! ```
//!
//! Timed: `Policy::call("validate", payload)` (new store with WASI, instantiate, `wapc_init`,
//! `__guest_call`, copying the response out). Not timed: building the payload and the diff,
//! which are host work equal for both modules. The two modules are called alternately so
//! drift hits both. Prints a markdown table on stdout; progress goes to stderr.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use host_tests::{Policy, admission_response, requests, validation_payload};
use serde_json::{Value, json};

/// Stop sampling a pod once both modules together have used this much time.
const TIME_BUDGET: Duration = Duration::from_secs(10);
/// Fewer samples than this make p99 meaningless.
const MIN_SAMPLES: usize = 30;

/// Sample counts from the command line.
struct Args {
    warmup: usize,
    samples: usize,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        warmup: 20,
        samples: 200,
    };
    let mut argv = std::env::args().skip(1);
    while let Some(flag) = argv.next() {
        let value = argv
            .next()
            .with_context(|| format!("{flag} needs a number"))?;
        let number: usize = value
            .parse()
            .with_context(|| format!("{flag} needs a number, got '{value}'"))?;
        match flag.as_str() {
            "--warmup" => args.warmup = number,
            "--samples" => args.samples = number.max(1),
            other => {
                anyhow::bail!("unknown argument '{other}' (accepted: --samples N, --warmup N)")
            }
        }
    }
    Ok(args)
}

/// One module under test.
struct Subject {
    name: &'static str,
    policy: Policy,
    size: u64,
}

fn load(name: &'static str, path: &std::path::Path, build: &str) -> anyhow::Result<Subject> {
    let policy = host_tests::load_built(path, build)?;
    let size = std::fs::metadata(path)?.len();
    Ok(Subject { name, policy, size })
}

/// Sorted call durations.
struct Samples(Vec<Duration>);

impl Samples {
    fn median(&self) -> Duration {
        self.0[self.0.len() / 2]
    }

    /// Nearest-rank 99th percentile.
    fn p99(&self) -> Duration {
        let rank = (self.0.len() * 99).div_ceil(100).max(1);
        self.0[rank - 1]
    }
}

fn time_call(subject: &Subject, operation: &str, payload: &[u8]) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let result = subject.policy.call(operation, payload);
    let elapsed = started.elapsed();
    result.with_context(|| format!("{} failed on {operation}", subject.name))?;
    Ok(elapsed)
}

/// Warms up, then samples the subjects alternately within the time budget.
fn measure(
    subjects: &[&Subject],
    operation: &str,
    payload: &[u8],
    args: &Args,
) -> anyhow::Result<Vec<Samples>> {
    let mut per_round = Duration::ZERO;
    for _ in 0..args.warmup.max(1) {
        per_round = Duration::ZERO;
        for subject in subjects {
            per_round += time_call(subject, operation, payload)?;
        }
    }
    let affordable = (TIME_BUDGET.as_nanos() / per_round.as_nanos().max(1)) as usize;
    let rounds = args.samples.min(affordable.max(MIN_SAMPLES));
    let mut samples: Vec<Vec<Duration>> = vec![Vec::with_capacity(rounds); subjects.len()];
    for _ in 0..rounds {
        for (subject, samples) in subjects.iter().zip(&mut samples) {
            samples.push(time_call(subject, operation, payload)?);
        }
    }
    Ok(samples
        .into_iter()
        .map(|mut durations| {
            durations.sort();
            Samples(durations)
        })
        .collect())
}

/// What the module answered, for the table's footnotes: accepted, mutated, patch size.
fn describe_answer(subject: &Subject, request: &Value) -> String {
    match subject.policy.validate(request, &json!({})) {
        Ok(validation) => {
            let admission = admission_response(&request["object"], &validation);
            let patch_ops = admission
                .get("patch")
                .and_then(Value::as_str)
                .and_then(|patch| host_tests::decode_patch(patch).ok())
                .and_then(|ops| ops.as_array().map(Vec::len));
            match patch_ops {
                Some(ops) => format!("allowed={}, patch of {ops} op(s)", admission["allowed"]),
                None => format!("allowed={}, no patch", admission["allowed"]),
            }
        }
        Err(err) => format!("error: {err}"),
    }
}

fn format_duration(duration: Duration) -> String {
    let micros = duration.as_secs_f64() * 1e6;
    if micros >= 10_000.0 {
        format!("{:.2} ms", micros / 1000.0)
    } else {
        format!("{micros:.1} µs")
    }
}

fn format_bytes(bytes: usize) -> String {
    if bytes >= 1024 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{bytes} B")
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}

fn run() -> anyhow::Result<()> {
    let args = parse_args()?;
    eprintln!("bench: compiling modules…");
    let floor = load(
        "passthrough",
        &host_tests::passthrough_wasm(),
        host_tests::BUILD_PASSTHROUGH,
    )?;
    let injector = match load(
        "sidecar_injector",
        &host_tests::injector_wasm(),
        host_tests::BUILD_INJECTOR,
    ) {
        Ok(injector) => Some(injector),
        Err(err) => {
            eprintln!("bench: measuring the floor only: {err:#}");
            None
        }
    };

    // First the fixed cost (instantiate + `wapc_init`, through `protocol_version`), then
    // `validate` on pods of growing size.
    let mut cases = vec![(
        "instantiate + `wapc_init` only (`protocol_version`)".to_owned(),
        "protocol_version",
        Vec::new(),
        None,
    )];
    let pods = [
        ("sleep pod", requests::sleep_pod()),
        ("20 env vars (1×)", requests::pod_with_env_vars(20)),
        ("200 env vars (10×)", requests::pod_with_env_vars(200)),
        ("2000 env vars (100×)", requests::pod_with_env_vars(2000)),
    ];
    for (label, pod) in pods {
        let request = requests::pod_create_request(pod);
        let payload = validation_payload(&request, &json!({}));
        cases.push((label.to_owned(), "validate", payload, Some(request)));
    }

    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for (label, operation, payload, request) in cases {
        let mut subjects = vec![&floor];
        if let Some(injector) = &injector {
            subjects.insert(0, injector);
            if let Some(request) = &request {
                let answer = describe_answer(injector, request);
                notes.push(format!("{label}: injector answered {answer}"));
            }
        }
        eprintln!("bench: {label} ({})…", format_bytes(payload.len()));
        let samples = measure(&subjects, operation, &payload, &args)?;
        let floor_samples = &samples[samples.len() - 1];
        let row = match injector.as_ref().map(|_| &samples[0]) {
            Some(injector_samples) => {
                let ratio =
                    injector_samples.median().as_secs_f64() / floor_samples.median().as_secs_f64();
                format!(
                    "| {label} | {} | {} | {} | {} | {} | {ratio:.2}× | {} |",
                    format_bytes(payload.len()),
                    format_duration(injector_samples.median()),
                    format_duration(injector_samples.p99()),
                    format_duration(floor_samples.median()),
                    format_duration(floor_samples.p99()),
                    floor_samples.0.len(),
                )
            }
            None => format!(
                "| {label} | {} | — | — | {} | {} | — | {} |",
                format_bytes(payload.len()),
                format_duration(floor_samples.median()),
                format_duration(floor_samples.p99()),
                floor_samples.0.len(),
            ),
        };
        rows.push(row);
    }

    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    println!(
        "### Per-admission cost: fresh instance + `wapc_init` + `validate`, settings `{{}}`\n"
    );
    println!(
        "Machine: {}, {cores} cores (nproc). Host: host-tests (wasmtime 48, Cranelift, epoch interruption on, a fresh `Store` per call like policy-server).",
        cpu_model()
    );
    match &injector {
        Some(injector) => println!(
            "Modules: `sidecar_injector.wasm` {} B, `passthrough.wasm` {} B (floor: SDK parse + accept). Warmup {}, samples per cell in the last column (capped by a {} s budget per pod).\n",
            injector.size,
            floor.size,
            args.warmup,
            TIME_BUDGET.as_secs()
        ),
        None => println!(
            "Modules: `passthrough.wasm` {} B only (sidecar_injector.wasm not built). Warmup {}, samples in the last column.\n",
            floor.size, args.warmup
        ),
    }
    println!(
        "| case | payload | injector median | injector p99 | floor median | floor p99 | injector / floor (median) | samples |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
    if !notes.is_empty() {
        println!();
        for note in notes {
            println!("- {note}");
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bench: error: {err:#}");
            ExitCode::from(2)
        }
    }
}
