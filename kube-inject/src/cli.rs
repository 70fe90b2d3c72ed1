//! The command line, in istioctl's spellings. Each field's `///` is its `--help` text.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXIT_STATUS: &str = "\
Exit status:
  0  success; with --diff, nothing would change; with check, no findings
  1  with --diff, some document would change; with check, findings were reported
  2  error (unreadable or invalid input, config or template); nothing is written

Examples:
  kube-inject -f samples/sleep/sleep.yaml | kubectl apply -f -
  kube-inject --injectConfigFile inject-config.yaml --meshConfigFile mesh-config.yaml \\
      -f sleep.yaml -o sleep-injected.yaml
  kube-inject --diff -f sleep.yaml
  kube-inject uninject -f sleep-injected.yaml
  kube-inject check -f samples/requirements/failing.yaml";

/// Inject Istio-style sidecars into Kubernetes manifests, as `istioctl kube-inject` does.
///
/// Reads a multi-document manifest, adds the sidecar to the pod template of every Deployment,
/// StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, ReplicationController, DeploymentConfig, Pod
/// and v1 List item, and writes the manifest. Other documents pass through byte for byte.
/// Running it again on its own output changes nothing; running it with a new template replaces
/// the old sidecar. Warnings and the configuration used go to standard error, YAML only to
/// standard output.
#[derive(Debug, Parser)]
#[command(
    name = "kube-inject",
    version,
    after_help = EXIT_STATUS,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    /// What to do; `inject` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The `inject` flags, accepted without the subcommand name (unset with a subcommand).
    #[command(flatten)]
    pub inject: InjectArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inject the sidecar (the default)
    #[command(after_help = EXIT_STATUS)]
    Inject(InjectArgs),
    /// Remove the sidecar: exactly what each pod's sidecar.istio.io/status annotation lists
    ///
    /// A pod with an istio-proxy container but no status annotation loses Istio's well-known
    /// names (istio-proxy, istio-init, istio-envoy, istio-certs, …), with a note on standard error.
    #[command(after_help = EXIT_STATUS)]
    Uninject(UninjectArgs),
    /// Check the pod spec requirements: named Service ports, app labels, one Service per pod
    ///
    /// Prints one finding per line (or JSON) and exits 1 when there is any.
    #[command(after_help = EXIT_STATUS)]
    Check(CheckArgs),
}

/// Flags of `inject`.
#[derive(Debug, Args)]
pub struct InjectArgs {
    /// Input and output.
    #[command(flatten)]
    pub io: IoArgs,
    /// Where the configuration comes from.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Print a unified diff for each document that would change, instead of the manifest.
    /// Writes nothing; exits 1 when something would change, 0 when nothing would.
    #[arg(long, conflicts_with = "output")]
    pub diff: bool,
}

/// Flags of `uninject`.
#[derive(Debug, Args)]
pub struct UninjectArgs {
    /// Input and output.
    #[command(flatten)]
    pub io: IoArgs,
    /// Print a unified diff for each document that would change, instead of the manifest.
    /// Writes nothing; exits 1 when something would change, 0 when nothing would.
    #[arg(long, conflicts_with = "output")]
    pub diff: bool,
}

/// Flags of `check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Manifest to check: a file, or `-` for standard input.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub filename: PathBuf,
    /// How to print findings.
    #[arg(long = "output-format", value_enum, default_value_t = Format::Text)]
    pub output_format: Format,
}

/// Output formats of `check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One line per finding: `document 1: Service sleep: …; fix`.
    Text,
    /// A JSON array of findings, each with its `document` number.
    Json,
}

/// `-f` and `-o`.
#[derive(Debug, Args)]
pub struct IoArgs {
    /// Input manifest: a file, or `-` for standard input. Multi-document YAML.
    // Required, but an `Option` so that the top-level copy can stay unset under a subcommand.
    #[arg(short = 'f', long = "filename", value_name = "FILE", required = true)]
    pub filename: Option<PathBuf>,
    /// Write the result to FILE instead of standard output (`-` is standard output). The file
    /// is replaced atomically and only when the whole run succeeds; it may be the input file.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Where the injector and mesh configuration come from.
///
/// With neither file, the built-in default is used (the in-cluster ConfigMaps will be read
/// here, through `--injectConfigMapName`, `--meshConfigMapName`, `-i/--istioNamespace`,
/// `--kubeconfig` and `--context`, once `cluster.rs` exists; `--builtin` will then be the way
/// to stay offline).
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Injector config: the `config` document of the istio-sidecar-injector ConfigMap (policy,
    /// template, neverInjectSelector, alwaysInjectSelector), or that ConfigMap itself as YAML.
    /// Without it, the built-in default.
    #[arg(long = "injectConfigFile", value_name = "FILE")]
    pub inject_config_file: Option<PathBuf>,
    /// Mesh config: the `mesh` document of the istio ConfigMap (MeshConfig, with
    /// defaultConfig as the ProxyConfig), or that ConfigMap itself as YAML. Without it, the
    /// built-in default.
    #[arg(long = "meshConfigFile", value_name = "FILE")]
    pub mesh_config_file: Option<PathBuf>,
    /// Use the built-in default injector and mesh config, whatever else is available.
    #[arg(long, conflicts_with_all = ["inject_config_file", "mesh_config_file"])]
    pub builtin: bool,
}

impl IoArgs {
    /// `-f`, which clap has made sure is there.
    pub fn filename(&self) -> anyhow::Result<&Path> {
        self.filename
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("-f/--filename is required; see kube-inject --help"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn inject_is_the_default_subcommand() {
        let cli = Cli::try_parse_from(["kube-inject", "-f", "x.yaml"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.inject.io.filename, Some(PathBuf::from("x.yaml")));
        let cli = Cli::try_parse_from(["kube-inject", "uninject", "-f", "x.yaml"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Uninject(_))));
        assert!(Cli::try_parse_from(["kube-inject"]).is_err());
    }

    #[test]
    fn istioctl_spellings_parse() {
        let cli = Cli::try_parse_from([
            "kube-inject",
            "--injectConfigFile",
            "i.yaml",
            "--meshConfigFile",
            "m.yaml",
            "--filename",
            "-",
            "--output",
            "o.yaml",
        ])
        .unwrap();
        let inject = cli.inject;
        assert_eq!(
            inject.config.inject_config_file,
            Some(PathBuf::from("i.yaml"))
        );
        assert_eq!(inject.io.output, Some(PathBuf::from("o.yaml")));
    }

    #[test]
    fn builtin_conflicts_with_files_and_diff_with_output() {
        assert!(
            Cli::try_parse_from([
                "kube-inject",
                "-f",
                "x",
                "--builtin",
                "--meshConfigFile",
                "m"
            ])
            .is_err()
        );
        assert!(Cli::try_parse_from(["kube-inject", "-f", "x", "--diff", "-o", "y"]).is_err());
    }
}
