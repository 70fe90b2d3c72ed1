//! `policy-publish`: push the annotated policy to an OCI registry, pull and inspect it, sign and
//! verify it with a cosign key, and write its ArtifactHub package file.
//!
//! Exit status: 0 success, 1 a check failed (a signature that does not verify, a stale file),
//! 2 an error. Errors are one line on stderr: `policy-publish: error: …`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand};
use policy_publish::reference::{self, INSECURE_REGISTRIES_ENV};
use policy_publish::signing::{self, PASSWORD_ENV, SigningError};
use policy_publish::{PolicyMetadata, Registry, artifacthub, inspect};
use zeroize::Zeroizing;

/// Publish the Kubewarden policy to an OCI registry, and read it back.
#[derive(Debug, Parser)]
#[command(name = "policy-publish", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Push an annotated module; prints its immutable reference (`…@sha256:…`).
    Push {
        /// The annotated module (`make annotated-policy.wasm`).
        module: PathBuf,
        /// Where to push: `[registry://]host[:port]/path:vX.Y.Z` (the tag of a version must be
        /// `v` and the module's version).
        reference: String,
        #[command(flatten)]
        transport: Transport,
    },
    /// Pull a policy, check its manifest and layer, and print its metadata.
    #[command(alias = "pull")]
    Inspect {
        /// `[registry://]host[:port]/path:tag` or `…@sha256:…`.
        reference: String,
        /// Also write the pulled module here.
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        transport: Transport,
    },
    /// Sign a pushed policy with a cosign private key (password in $COSIGN_PASSWORD).
    Sign {
        /// The policy, by tag or digest (a tag is resolved to the digest that is signed).
        reference: String,
        /// The private key (`cosign generate-key-pair`, or this tool's `generate-key-pair`).
        #[arg(short, long)]
        key: PathBuf,
        /// Annotation `key=value` added to the signed payload (repeatable).
        #[arg(short, long = "annotation", value_parser = annotation)]
        annotations: Vec<(String, String)>,
        #[command(flatten)]
        transport: Transport,
    },
    /// Verify a policy's signature with a cosign public key.
    Verify {
        /// The policy, by tag or digest.
        reference: String,
        /// The public key (PEM).
        #[arg(short, long)]
        key: PathBuf,
        /// Annotation `key=value` the signature must carry (repeatable).
        #[arg(short, long = "annotation", value_parser = annotation)]
        annotations: Vec<(String, String)>,
        #[command(flatten)]
        transport: Transport,
    },
    /// Write a new ECDSA P-256 key pair as cosign does: `<prefix>.key` (encrypted with
    /// $COSIGN_PASSWORD, empty if unset) and `<prefix>.pub`.
    GenerateKeyPair {
        /// Path prefix of the two files.
        #[arg(long, default_value = "cosign")]
        output_prefix: String,
    },
    /// Write artifacthub-pkg.yml from metadata.yml and questions-ui.yml (or check it is current).
    Artifacthub {
        /// The policy metadata.
        #[arg(long, default_value = "metadata.yml")]
        metadata: PathBuf,
        /// Rancher's settings form.
        #[arg(long, default_value = "questions-ui.yml")]
        questions: PathBuf,
        /// The package file.
        #[arg(long, default_value = "artifacthub-pkg.yml")]
        output: PathBuf,
        /// Do not write: fail when the file is not what would be written.
        #[arg(long)]
        check: bool,
    },
    /// Print the release version after checking that Cargo.toml and metadata.yml agree.
    Version {
        /// The workspace manifest (its `[workspace.package]` version).
        #[arg(long, default_value = "Cargo.toml")]
        cargo: PathBuf,
        /// The policy metadata (its `io.kubewarden.policy.version`).
        #[arg(long, default_value = "metadata.yml")]
        metadata: PathBuf,
    },
}

#[derive(Debug, Args)]
struct Transport {
    /// A registry (`host:port`) reached over plain HTTP (repeatable); $INSECURE_REGISTRIES adds
    /// more, comma-separated.
    #[arg(long = "insecure", value_name = "HOST:PORT")]
    insecure: Vec<String>,
}

impl Transport {
    fn registries(&self) -> Vec<String> {
        let env = std::env::var(INSECURE_REGISTRIES_ENV).ok();
        reference::insecure_registries(&self.insecure, env.as_deref())
    }
}

/// A failed check, as opposed to an error: exit status 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct CheckFailed(String);

fn annotation(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected key=value, got `{text}`")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let message = format!("{err:#}").replace('\n', " ");
            eprintln!("policy-publish: error: {message}");
            if err.downcast_ref::<CheckFailed>().is_some() {
                ExitCode::from(1)
            } else {
                ExitCode::from(2)
            }
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match cli.command {
        Command::Push {
            module,
            reference,
            transport,
        } => runtime.block_on(push(&module, &reference, &transport)),
        Command::Inspect {
            reference,
            output,
            transport,
        } => runtime.block_on(inspect(&reference, output.as_deref(), &transport)),
        Command::Sign {
            reference,
            key,
            annotations,
            transport,
        } => {
            let pem = Zeroizing::new(read(&key)?);
            let password = Zeroizing::new(std::env::var(PASSWORD_ENV).unwrap_or_default());
            let signed = runtime.block_on(signing::sign(
                &reference,
                &pem,
                password.as_bytes(),
                annotations.into_iter().collect(),
                &transport.registries(),
            ))?;
            eprintln!(
                "signed {} ({}) with {}",
                reference,
                signed.manifest_digest,
                key.display()
            );
            println!("{}", signed.signature_ref);
            Ok(())
        }
        Command::Verify {
            reference,
            key,
            annotations,
            transport,
        } => {
            let pem = read(&key)?;
            let annotations: BTreeMap<String, String> = annotations.into_iter().collect();
            match runtime.block_on(signing::verify(
                &reference,
                &pem,
                annotations,
                &transport.registries(),
            )) {
                Ok(verified) => {
                    println!(
                        "verified: {reference} ({}) is signed by {}",
                        verified.manifest_digest,
                        key.display()
                    );
                    Ok(())
                }
                Err(err @ SigningError::NotVerified { .. }) => {
                    Err(CheckFailed(err.to_string()).into())
                }
                Err(err) => Err(err.into()),
            }
        }
        Command::GenerateKeyPair { output_prefix } => {
            let private_path = PathBuf::from(format!("{output_prefix}.key"));
            let public_path = PathBuf::from(format!("{output_prefix}.pub"));
            for path in [&private_path, &public_path] {
                if path.exists() {
                    bail!("{} exists: not overwriting a key", path.display());
                }
            }
            let password = Zeroizing::new(std::env::var(PASSWORD_ENV).unwrap_or_default());
            let (private, public) = signing::generate_key_pair(password.as_bytes())?;
            write_private(&private_path, private.as_bytes())?;
            std::fs::write(&public_path, public)
                .with_context(|| format!("cannot write {}", public_path.display()))?;
            eprintln!(
                "wrote {} and {}",
                private_path.display(),
                public_path.display()
            );
            Ok(())
        }
        Command::Artifacthub {
            metadata,
            questions,
            output,
            check,
        } => artifacthub_file(&metadata, &questions, &output, check),
        Command::Version { cargo, metadata } => {
            let cargo_text = read_text(&cargo)?;
            let cargo_version = cargo_version(&cargo_text)
                .with_context(|| format!("{} has no package version", cargo.display()))?;
            let policy = PolicyMetadata::from_yaml(&read_text(&metadata)?)
                .with_context(|| metadata.display().to_string())?;
            let policy_version = policy.version()?;
            if cargo_version != policy_version {
                return Err(CheckFailed(format!(
                    "versions disagree: {} says {cargo_version}, {} says {policy_version}",
                    cargo.display(),
                    metadata.display()
                ))
                .into());
            }
            println!("{cargo_version}");
            Ok(())
        }
    }
}

async fn push(module: &Path, target: &str, transport: &Transport) -> anyhow::Result<()> {
    let bytes = read(module)?;
    let metadata = PolicyMetadata::from_module(&bytes)
        .with_context(|| format!("cannot publish {}", module.display()))?;
    let version = metadata.version()?;
    let reference = reference::parse_push_target(target, version)?;
    let started = Instant::now();
    let pushed = Registry::new(&transport.registries())
        .push(&reference, &bytes, metadata.manifest_annotations())
        .await?;
    eprintln!(
        "pushed {} ({} bytes, layer {}) in {:.2} s",
        module.display(),
        pushed.size,
        pushed.layer_digest,
        started.elapsed().as_secs_f64()
    );
    println!("{}", pushed.immutable_ref);
    Ok(())
}

async fn inspect(
    reference: &str,
    output: Option<&Path>,
    transport: &Transport,
) -> anyhow::Result<()> {
    let parsed = reference::parse(reference)?;
    let started = Instant::now();
    let pulled = Registry::new(&transport.registries()).pull(&parsed).await?;
    let elapsed = started.elapsed();
    let metadata = PolicyMetadata::from_module(&pulled.module)
        .with_context(|| format!("cannot read the metadata of {reference}"))?;
    if let Some(path) = output {
        std::fs::write(path, &pulled.module)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    eprintln!(
        "pulled {} bytes in {:.2} s",
        pulled.module.len(),
        elapsed.as_secs_f64()
    );
    print!("{}", inspect::render(reference, &pulled, &metadata));
    Ok(())
}

fn artifacthub_file(
    metadata: &Path,
    questions: &Path,
    output: &Path,
    check: bool,
) -> anyhow::Result<()> {
    let policy = PolicyMetadata::from_yaml(&read_text(metadata)?)
        .with_context(|| metadata.display().to_string())?;
    let questions_text = read_text(questions)?;
    let existing = std::fs::read_to_string(output).ok();
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let created_at = artifacthub::created_at(existing.as_deref(), policy.version()?, &now);
    let text = artifacthub::generate(&policy, &questions_text, &created_at)?;
    if check {
        if existing.as_deref() != Some(text.as_str()) {
            return Err(CheckFailed(format!(
                "{} is stale: run `make artifacthub` and commit it",
                output.display()
            ))
            .into());
        }
        eprintln!("{} is current", output.display());
    } else {
        std::fs::write(output, text)
            .with_context(|| format!("cannot write {}", output.display()))?;
        eprintln!("wrote {}", output.display());
    }
    Ok(())
}

/// `version = "…"` of `[workspace.package]` (or `[package]`) in a Cargo.toml.
fn cargo_version(text: &str) -> Option<&str> {
    let mut section = "";
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line;
        } else if (section == "[workspace.package]" || section == "[package]")
            && let Some(value) = line.strip_prefix("version").map(str::trim_start)
            && let Some(value) = value.strip_prefix('=')
        {
            return value.trim().strip_prefix('"')?.strip_suffix('"');
        }
    }
    None
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn read_text(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}
