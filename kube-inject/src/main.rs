//! `kube-inject`: Istio's manual sidecar injection (`istioctl kube-inject`) on manifests.
//!
//! A thin face over the core: flags are turned into a config once ([`config::load_config`]: files,
//! the cluster's ConfigMaps through [`cluster`], or the built-in default),
//! documents go through [`sidecar_injector::manifest`], YAML goes to standard output (or `-o`),
//! everything else to standard error. Exit status: 0 ok or no change, 1 changes (`--diff`) or
//! findings (`check`), 2 error.
//!
//! You can run it with `cargo run -p kube-inject -- -f samples/sleep/sleep.yaml`.

mod cli;
mod cluster;
mod config;
mod output;

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use sidecar_injector::Injector;
use sidecar_injector::manifest::{self, Manifest};
use sidecar_injector::requirements::{self, Protocols};

use cli::{CheckArgs, Cli, Command, Format, InjectArgs, UninjectArgs};

/// Nothing to report: success, no change (`--diff`), no findings (`check`).
const OK: ExitCode = ExitCode::SUCCESS;
/// `--diff` found changes; `check` found something.
const FOUND: u8 = 1;
/// Any error.
const ERROR: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => OK,
        Err(err) => {
            eprintln!("kube-inject: error: {err:#}");
            ExitCode::from(ERROR)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Some(Command::Inject(args)) => inject(&args),
        None => inject(&cli.inject),
        Some(Command::Uninject(args)) => uninject(&args),
        Some(Command::Check(args)) => check(&args),
    }
}

fn inject(args: &InjectArgs) -> Result<ExitCode> {
    let (config, source) = config::load_config(&args.config)?;
    for line in source.lines() {
        note(&line);
    }
    let injector = Injector::new(config).context("invalid template")?;
    let filename = args.io.filename()?;
    let input = output::read_input(filename)?;
    let manifest = manifest::inject(&input, &injector)?;
    finish(
        &manifest,
        filename,
        args.io.output.as_deref(),
        args.diff,
        "injected",
    )
}

fn uninject(args: &UninjectArgs) -> Result<ExitCode> {
    let filename = args.io.filename()?;
    let input = output::read_input(filename)?;
    let manifest = manifest::uninject(&input)?;
    finish(
        &manifest,
        filename,
        args.io.output.as_deref(),
        args.diff,
        "uninjected",
    )
}

/// Warnings, then either the diff (exit 1 when something changed) or the manifest.
fn finish(
    manifest: &Manifest<'_>,
    input: &Path,
    output: Option<&Path>,
    diff: bool,
    verb: &str,
) -> Result<ExitCode> {
    for warning in manifest.warnings() {
        warn(warning);
    }
    if diff {
        output::write_output(None, &output::diff(manifest, input, verb))?;
        return Ok(if manifest.changed() {
            ExitCode::from(FOUND)
        } else {
            OK
        });
    }
    output::write_output(output, &manifest.to_yaml())?;
    Ok(OK)
}

/// The port-name protocols `check` accepts: `--protocols`, checked as the policy checks its
/// `protocols` setting, or the seed's.
fn protocols(names: &[String]) -> Result<Protocols> {
    if names.is_empty() {
        return Ok(Protocols::default());
    }
    Protocols::new(names.iter().cloned()).context("--protocols")
}

fn check(args: &CheckArgs) -> Result<ExitCode> {
    let input = output::read_input(&args.filename)?;
    let objects = manifest::objects(&input)?;
    let findings = requirements::check_bundle(&objects, &protocols(&args.protocols)?);
    let text = match args.output_format {
        Format::Text => findings
            .iter()
            .map(|(document, finding)| format!("document {document}: {finding}\n"))
            .collect::<String>(),
        Format::Json => serde_json::to_string_pretty(&requirements::records(&findings))? + "\n",
    };
    output::write_output(None, &text)?;
    let documents = findings
        .iter()
        .map(|(d, _)| *d)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    match findings.len() {
        0 => {
            note("no findings");
            Ok(OK)
        }
        n => {
            note(&format!(
                "{n} finding{} in {documents} document{}",
                plural(n),
                plural(documents)
            ));
            Ok(ExitCode::from(FOUND))
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn note(message: &str) {
    let _ = writeln!(io::stderr(), "kube-inject: {message}");
}

fn warn(message: &str) {
    let _ = writeln!(io::stderr(), "kube-inject: warning: {message}");
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}
