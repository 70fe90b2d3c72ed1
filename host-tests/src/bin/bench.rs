//! Per-admission cost of the sidecar injector against the pass-through floor, as policy-server
//! pays it: a fresh `Store` and instance, `wapc_init`, then `validate`.
//!
//! ```text
//! make policy.wasm      # both modules, and policy.wasm pre-initialised
//! cargo run --release -p host-tests --bin bench [-- --samples 200 --warmup 20]
//! ```
//!
//! Three modules: `policy.wasm` (what ships), the same before pre-initialisation (to show what
//! the snapshot saves) and the pass-through floor, called twice: accepting (`validate`, the
//! floor) and handing the pod back unchanged (`mutate`, the floor of any mutating policy).
//!
//! Timed: `Policy::call("validate", payload)` (new store with WASI, instantiate, `wapc_init`,
//! `__guest_call`, copying the response out). Not timed: building the payload and the diff,
//! which are host work equal for every module. The modules are called in turn so
//! drift hits both. Prints a markdown table on stdout; progress goes to stderr.

use std::process::ExitCode;
use std::rc::Rc;
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
    /// Admissions sent to one kept instance in the reused-instance table.
    reused: usize,
    /// Only the reused-instance table.
    only_reused: bool,
    /// Only the case labelled exactly this, or else those whose label contains it (and no
    /// reused-instance table, unless `--only-reused`, whose cases it then filters).
    only_cases: Option<String>,
    /// Only the modules whose name contains this, in the reused-instance table (to profile one).
    only_modules: Option<String>,
    /// The pre-initialised module measured as `policy.wasm` (e.g. one built with function
    /// names, for a profile), instead of the workspace's.
    policy: Option<std::path::PathBuf>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        warmup: 20,
        samples: 200,
        reused: 100_000,
        only_reused: false,
        only_cases: None,
        only_modules: None,
        policy: None,
    };
    let mut argv = std::env::args().skip(1);
    while let Some(flag) = argv.next() {
        if flag == "--only-reused" {
            args.only_reused = true;
            continue;
        }
        if flag == "--cases" {
            args.only_cases = Some(argv.next().context("--cases needs a text")?);
            continue;
        }
        if flag == "--policy" {
            args.policy = Some(argv.next().context("--policy needs a path")?.into());
            continue;
        }
        if flag == "--modules" {
            args.only_modules = Some(argv.next().context("--modules needs a text")?);
            continue;
        }
        let value = argv
            .next()
            .with_context(|| format!("{flag} needs a number"))?;
        let number: usize = value
            .parse()
            .with_context(|| format!("{flag} needs a number, got '{value}'"))?;
        match flag.as_str() {
            "--warmup" => args.warmup = number,
            "--samples" => args.samples = number.max(1),
            "--reused" => args.reused = number.max(1),
            other => anyhow::bail!(
                "unknown argument '{other}' (accepted: --samples N, --warmup N, --reused N, --only-reused, --cases TEXT, --modules TEXT, --policy PATH)"
            ),
        }
    }
    Ok(args)
}

/// One module under test.
struct Subject {
    name: &'static str,
    /// Shared: the two floors are one compiled module called two ways.
    policy: Rc<Policy>,
    size: u64,
    /// The operation called in place of `validate`.
    validate_as: &'static str,
}

fn load(name: &'static str, path: &std::path::Path, build: &str) -> anyhow::Result<Subject> {
    let policy = host_tests::load_built(path, build)?;
    let size = std::fs::metadata(path)?.len();
    Ok(Subject {
        name,
        policy: Rc::new(policy),
        size,
        validate_as: "validate",
    })
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
    let operation = match operation {
        "validate" => subject.validate_as,
        other => other,
    };
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
fn describe_answer(subject: &Subject, request: &Value, settings: &Value) -> String {
    match subject.policy.validate(request, settings) {
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

/// The `spec.settings` of the workspace's `policy.yaml`: what a cluster that applied it sends.
fn policy_yaml_settings() -> anyhow::Result<Value> {
    let path = host_tests::workspace_dir().join("policy.yaml");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let manifest: Value =
        serde_yaml::from_str(&text).with_context(|| format!("{} is not YAML", path.display()))?;
    Ok(manifest["spec"]["settings"].clone())
}

/// One row of the table: what is sent, and with which settings.
struct Case {
    label: String,
    operation: &'static str,
    payload: Vec<u8>,
    /// The admission request and settings, for the footnote describing the answer.
    request: Option<(Value, Value)>,
}

/// Admissions whose cost the reused-instance table shows: the first, the thousandth, the last.
fn marks(last: usize) -> Vec<usize> {
    let mut marks = vec![1, 1000.min(last), last];
    marks.dedup();
    marks
}

/// One kept instance of `subject`, sent `payload` `last` times, as `kwctl bench` does: the
/// median cost of the 100 admissions up to each mark (the first alone), and the instance's
/// memory at each mark.
fn reused(
    subject: &Subject,
    payload: &[u8],
    last: usize,
) -> anyhow::Result<Vec<(usize, Duration, usize)>> {
    let mut instance = subject
        .policy
        .instance()
        .with_context(|| format!("{} does not start", subject.name))?;
    let marks = marks(last);
    let mut window: Vec<Duration> = Vec::with_capacity(100);
    let mut rows = Vec::new();
    let mut first_answer = None;
    for admission in 1..=last {
        let started = Instant::now();
        let answer = instance.call(subject.validate_as, payload);
        let elapsed = started.elapsed();
        let answer =
            answer.with_context(|| format!("{} failed at admission {admission}", subject.name))?;
        match &first_answer {
            None => first_answer = Some(answer),
            Some(first) if *first != answer => {
                anyhow::bail!(
                    "{} answered differently at admission {admission}",
                    subject.name
                )
            }
            Some(_) => {}
        }
        if window.len() == 100 {
            window.remove(0);
        }
        window.push(elapsed);
        if marks.contains(&admission) {
            let mut sorted = window.clone();
            sorted.sort();
            rows.push((admission, sorted[sorted.len() / 2], instance.memory_size()));
        }
    }
    Ok(rows)
}

/// The reused-instance table: what a host that keeps one instance (`kwctl bench`) pays at
/// admission 1, 1k and `last`, and whether the instance's memory stays bounded.
fn reused_table(subjects: &[&Subject], args: &Args) -> anyhow::Result<()> {
    let cases = [
        ("sleep pod", requests::sleep_pod(), args.reused),
        (
            "2000 env vars (100×)",
            requests::pod_with_env_vars(2000),
            args.reused.min(2000),
        ),
    ];
    println!("### One instance kept for every admission (as `kwctl bench` runs a policy)\n");
    println!(
        "Median of the 100 admissions up to the one named (the first alone); memory is the instance's linear memory then. Every answer is checked to equal the first.\n"
    );
    println!("| case | module | admission | median | memory |");
    println!("|---|---|---|---|---|");
    for (label, pod, last) in cases {
        if args
            .only_cases
            .as_ref()
            .is_some_and(|text| !label.contains(text.as_str()))
        {
            continue;
        }
        let payload = validation_payload(&requests::pod_create_request(pod), &json!({}));
        for subject in subjects {
            eprintln!("bench: one instance: {label}, {}…", subject.name);
            for (admission, median, memory) in reused(subject, &payload, last)? {
                println!(
                    "| {label} | {} | {admission} | {} | {:.1} MiB |",
                    subject.name,
                    format_duration(median),
                    memory as f64 / f64::from(1 << 20)
                );
            }
        }
    }
    println!();
    Ok(())
}

fn run() -> anyhow::Result<()> {
    let args = parse_args()?;
    eprintln!("bench: compiling modules…");
    let floor = load(
        "passthrough",
        &host_tests::passthrough_wasm(),
        host_tests::BUILD_PASSTHROUGH,
    )?;
    let injector = load(
        "policy.wasm",
        &args
            .policy
            .clone()
            .unwrap_or_else(host_tests::injector_wasm),
        host_tests::BUILD_INJECTOR,
    )?;
    let cold = load(
        "sidecar_injector.wasm",
        &host_tests::injector_cargo_wasm(),
        host_tests::BUILD_INJECTOR_CARGO,
    )?;
    // The same pass-through module answering with the pod unchanged: what any mutating policy
    // pays to hand the whole object back.
    let mutating_floor = Subject {
        name: "passthrough (mutate)",
        policy: Rc::clone(&floor.policy),
        size: floor.size,
        validate_as: "mutate",
    };

    // First the fixed cost (instantiate + `wapc_init`, through `protocol_version`), then
    // `validate` on a pod that is not injected (request and settings in, accept out), on pods of
    // growing size, then the sleep pod with policy.yaml's settings.
    let mut cases = vec![Case {
        label: "instantiate + `wapc_init` only (`protocol_version`)".to_owned(),
        operation: "protocol_version",
        payload: Vec::new(),
        request: None,
    }];
    let mut opted_out = requests::sleep_pod();
    opted_out["metadata"]["annotations"] = json!({"sidecar.istio.io/inject": "false"});
    let pods = [
        (
            "sleep pod, `sidecar.istio.io/inject: \"false\"` (not injected)",
            opted_out,
        ),
        ("sleep pod", requests::sleep_pod()),
        (
            "sleep pod as its Deployment creates it (defaults, `managedFields`)",
            requests::sleep_pod_from_deployment(),
        ),
        ("20 env vars (1×)", requests::pod_with_env_vars(20)),
        ("200 env vars (10×)", requests::pod_with_env_vars(200)),
        ("2000 env vars (100×)", requests::pod_with_env_vars(2000)),
        // Issue #16's comparison: the same pod with three probes, as defaults inject it (no
        // agent, probes kept) and with a native sidecar (the agent, probes rewritten) and an
        // override of the proxy.
        ("three probes, defaults", requests::pod_with_probes(false)),
        (
            "three probes, native sidecar, proxy override (probes rewritten)",
            requests::pod_with_probes(true),
        ),
    ];
    // An Istio 1.0-shaped Go template in the settings (translated to upon on every admission,
    // as policy-server's fresh instance loads the settings each time), and the same template
    // written in upon: what reading Istio's ConfigMaps as they are costs.
    let settings = [
        ("", json!({})),
        (", settings of `policy.yaml`", policy_yaml_settings()?),
        (
            ", Istio 1.0 Go template in the settings",
            json!({"template": include_str!("../../../src/template/go/test_data/istio-1.0.yaml")}),
        ),
        (
            ", the same template in upon in the settings",
            json!({"template": include_str!("../../../src/template/go/test_data/istio-1.0.upon.yaml")}),
        ),
    ];
    for (suffix, settings) in &settings {
        for (label, pod) in &pods {
            if !suffix.is_empty() && *label != "sleep pod" {
                // policy.yaml's settings only change the settings part: one pod shows it.
                continue;
            }
            let request = requests::pod_create_request(pod.clone());
            cases.push(Case {
                label: format!("{label}{suffix}"),
                operation: "validate",
                payload: validation_payload(&request, settings),
                request: Some((request, settings.clone())),
            });
        }
    }

    let mut subjects = vec![&injector, &cold, &floor, &mutating_floor];
    if let Some(text) = &args.only_modules {
        // The fresh-instance table compares the four modules; one alone has no ratio.
        anyhow::ensure!(args.only_reused, "--modules needs --only-reused");
        subjects.retain(|subject| subject.name.contains(text.as_str()));
    }
    if let Some(text) = &args.only_cases {
        // A label given whole picks that case alone ("sleep pod" is in several labels).
        if cases.iter().any(|case| case.label == *text) {
            cases.retain(|case| case.label == *text);
        } else {
            cases.retain(|case| case.label.contains(text.as_str()));
        }
    }
    if args.only_reused || args.only_cases.is_none() {
        reused_table(&subjects, &args)?;
    }
    if args.only_reused {
        return Ok(());
    }
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for case in cases {
        if let Some((request, settings)) = &case.request {
            let answer = describe_answer(&injector, request, settings);
            notes.push(format!("{}: policy.wasm answered {answer}", case.label));
        }
        eprintln!(
            "bench: {} ({})…",
            case.label,
            format_bytes(case.payload.len())
        );
        let samples = measure(&subjects, case.operation, &case.payload, &args)?;
        let [warm, cold, floor, mutating_floor] = samples.as_slice() else {
            anyhow::bail!("one set of samples per module expected");
        };
        let ratio = warm.median().as_secs_f64() / floor.median().as_secs_f64();
        let mutating_ratio = warm.median().as_secs_f64() / mutating_floor.median().as_secs_f64();
        rows.push(format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {ratio:.2}× | {mutating_ratio:.2}× | {} |",
            case.label,
            format_bytes(case.payload.len()),
            format_duration(warm.median()),
            format_duration(warm.p99()),
            format_duration(cold.median()),
            format_duration(floor.median()),
            format_duration(floor.p99()),
            format_duration(mutating_floor.median()),
            floor.0.len(),
        ));
    }

    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    println!("### Per-admission cost: fresh instance + `wapc_init` + `validate`\n");
    println!(
        "Machine: {}, {cores} cores (nproc). Host: host-tests (wasmtime 48, Cranelift, epoch interruption on, a fresh `Store` per call like policy-server).",
        cpu_model()
    );
    println!(
        "Modules: `policy.wasm` (pre-initialised) {} B, `sidecar_injector.wasm` (as cargo builds it) {} B, `passthrough.wasm` {} B (floor: SDK parse + accept; mutating floor: SDK parse + the pod handed back unchanged as `mutated_object`). Settings `{{}}` unless the case says. Warmup {}, samples per cell in the last column (capped by a {} s budget per case).\n",
        injector.size,
        cold.size,
        floor.size,
        args.warmup,
        TIME_BUDGET.as_secs()
    );
    println!(
        "| case | payload | policy.wasm median | policy.wasm p99 | not pre-initialised median | floor median | floor p99 | mutating floor median | policy.wasm / floor (median) | policy.wasm / mutating floor | samples |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
    println!();
    for note in notes {
        println!("- {note}");
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
