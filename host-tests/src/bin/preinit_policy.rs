//! `wizer` for this workspace: pre-initialises the policy module (see `host_tests::preinit`).
//!
//! ```text
//! preinit-policy target/wasm32-wasip1/release/sidecar_injector.wasm policy.wasm
//! ```
//!
//! Exit codes: 0 written, 2 error (message on stderr, output left untouched).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

const USAGE: &str = "usage: preinit-policy INPUT.wasm OUTPUT.wasm";

fn run() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output] = args.as_slice() else {
        anyhow::bail!("{USAGE}");
    };
    let (input, output) = (Path::new(input), PathBuf::from(output));
    let wasm = std::fs::read(input).with_context(|| format!("cannot read {}", input.display()))?;
    let initialized = host_tests::preinitialize(&wasm)
        .with_context(|| format!("cannot pre-initialise {}", input.display()))?;
    // Written beside the output and renamed, so a failed run never leaves half a module.
    let partial = output.with_extension("wasm.partial");
    std::fs::write(&partial, &initialized)
        .with_context(|| format!("cannot write {}", partial.display()))?;
    std::fs::rename(&partial, &output)
        .with_context(|| format!("cannot write {}", output.display()))?;
    eprintln!(
        "preinit-policy: {} ({} B) -> {} ({} B)",
        input.display(),
        wasm.len(),
        output.display(),
        initialized.len()
    );
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("preinit-policy: error: {err:#}");
            ExitCode::from(2)
        }
    }
}
