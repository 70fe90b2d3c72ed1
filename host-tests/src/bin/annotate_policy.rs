//! `kwctl annotate` for this workspace: writes the `io.kubewarden.metadata` section
//! policy-server requires.
//!
//! ```text
//! annotate-policy --metadata metadata.yml --input policy.wasm --output annotated-policy.wasm [--usage README.md]
//! ```
//!
//! The module must answer `protocol_version` with `"v1"` on the host-tests host (kwctl asks it
//! too). Exit codes: 0 written, 2 error (message on stderr, output left untouched).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

const USAGE: &str = "usage: annotate-policy --metadata metadata.yml --input policy.wasm --output annotated-policy.wasm [--usage README.md]";

/// The command line, after parsing.
struct Args {
    metadata: PathBuf,
    input: PathBuf,
    output: PathBuf,
    usage: Option<PathBuf>,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> anyhow::Result<Option<Args>> {
    let (mut metadata, mut input, mut output, mut usage) = (None, None, None, None);
    while let Some(flag) = args.next() {
        let slot = match flag.as_str() {
            "-m" | "--metadata" | "--metadata-path" => &mut metadata,
            "-i" | "--input" => &mut input,
            "-o" | "--output" | "--output-path" => &mut output,
            "-u" | "--usage" | "--usage-path" => &mut usage,
            "-h" | "--help" => return Ok(None),
            other => anyhow::bail!("unknown argument '{other}'\n{USAGE}"),
        };
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value\n{USAGE}"))?;
        *slot = Some(PathBuf::from(value));
    }
    let required = |value: Option<PathBuf>, flag: &str| {
        value.with_context(|| format!("{flag} is required\n{USAGE}"))
    };
    Ok(Some(Args {
        metadata: required(metadata, "--metadata")?,
        input: required(input, "--input")?,
        output: required(output, "--output")?,
        usage,
    }))
}

fn run() -> anyhow::Result<()> {
    let Some(args) = parse_args(std::env::args().skip(1))? else {
        println!("{USAGE}");
        return Ok(());
    };
    host_tests::annotate_file(
        &args.metadata,
        &args.input,
        &args.output,
        args.usage.as_deref(),
    )?;
    eprintln!("annotate-policy: wrote {}", args.output.display());
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("annotate-policy: error: {err:#}");
            ExitCode::from(2)
        }
    }
}
