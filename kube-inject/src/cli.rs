//! The command line, in istioctl's spellings. Each field's `///` is its `--help` text.

use std::path::{Path, PathBuf};

use clap::builder::NonEmptyStringValueParser;
use clap::{Args, Parser, Subcommand, ValueEnum};
use sidecar_injector::TemplateSyntax;

const EXIT_STATUS: &str = "\
Exit status:
  0  success; with --diff, nothing would change; with check, no findings
  1  with --diff, some document would change; with check, findings were reported
  2  error (unreadable or invalid input, config or template; a missing ConfigMap or key, an
     unreachable cluster, a forbidden read, a bad kubeconfig); nothing is written

Examples:
  kube-inject -f samples/sleep/sleep.yaml | kubectl apply -f -
  kube-inject --context kind-kind -i istio-system -f sleep.yaml
  kube-inject --builtin -f sleep.yaml
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
    /// Port-name protocols Service ports may use, comma-separated or repeated, as in the policy's
    /// `protocols` setting [default: http,http2,grpc,mongo,redis].
    #[arg(long = "protocols", value_name = "PROTOCOL", value_delimiter = ',')]
    pub protocols: Vec<String>,
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
/// Per configuration: its file flag, else the cluster (its ConfigMap in `-i/--istioNamespace`,
/// through `--kubeconfig`, `$KUBECONFIG`, `~/.kube/config` or the in-cluster service account),
/// else, only when no cluster is configured at all, the built-in default. `--builtin` forces the
/// built-in default and so excludes every other configuration flag.
#[derive(Debug, Default, Args)]
pub struct ConfigArgs {
    /// Injector config: the `config` document of the istio-sidecar-injector ConfigMap (policy,
    /// template, neverInjectSelector, alwaysInjectSelector), or that ConfigMap itself as YAML.
    /// Without it, key `config` of --injectConfigMapName is read from the cluster (the built-in
    /// default when no cluster is configured).
    #[arg(long = "injectConfigFile", value_name = "FILE")]
    pub inject_config_file: Option<PathBuf>,
    /// Mesh config: the `mesh` document of the istio ConfigMap (MeshConfig, with
    /// defaultConfig as the ProxyConfig), or that ConfigMap itself as YAML. Without it, key
    /// `mesh` of --meshConfigMapName is read from the cluster (the built-in default when no
    /// cluster is configured).
    #[arg(long = "meshConfigFile", value_name = "FILE")]
    pub mesh_config_file: Option<PathBuf>,
    /// Use the built-in default injector and mesh config; contact no cluster.
    #[arg(long, conflicts_with_all = BUILTIN_CONFLICTS)]
    pub builtin: bool,
    /// The injector template's syntax, for a template whose text does not tell: `go` (Istio's
    /// ConfigMaps) or `upon` [default: recognised from the text]
    #[arg(long = "templateSyntax", value_name = "SYNTAX", value_parser = parse_template_syntax)]
    pub template_syntax: Option<TemplateSyntax>,
    /// The control-plane revision to inject for (`istio.io/rev`): the cluster's ConfigMaps are
    /// then istio-sidecar-injector-REV and istio-REV (unless --injectConfigMapName or
    /// --meshConfigMapName name others), pods labelled for another revision are skipped, and the
    /// status annotation records it. `default` is the revision installed without a name.
    #[arg(short = 'r', long = "revision", value_name = "REV", value_parser = parse_revision)]
    pub revision: Option<String>,
    /// Inject the proxy as a native sidecar (an init container with `restartPolicy: Always`,
    /// Kubernetes ≥ 1.29), as istiod's ENABLE_NATIVE_SIDECARS does; `--nativeSidecars=false`
    /// turns it off. A pod's `sidecar.istio.io/nativeSidecar` annotation wins [default: the
    /// injector config's `nativeSidecars`, else false]
    #[arg(long = "nativeSidecars", value_name = "BOOL", num_args = 0..=1,
          default_missing_value = "true", require_equals = true)]
    pub native_sidecars: Option<bool>,
    /// The cluster to read the ConfigMaps from.
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

fn parse_template_syntax(text: &str) -> Result<TemplateSyntax, String> {
    match text {
        "go" => Ok(TemplateSyntax::Go),
        "upon" => Ok(TemplateSyntax::Upon),
        other => Err(format!("expected `go` or `upon`, got `{other}`")),
    }
}

fn parse_revision(text: &str) -> Result<String, String> {
    sidecar_injector::revision::validate(text).map(|()| text.to_string())
}

/// The flags `--builtin` excludes: the file flags and the cluster flags.
const BUILTIN_CONFLICTS: [&str; 7] = [
    "inject_config_file",
    "mesh_config_file",
    "istio_namespace",
    "inject_config_map_name",
    "mesh_config_map_name",
    "kubeconfig",
    "context",
];

/// The cluster flags, as istioctl spells them. Each given one means "read from the cluster": with
/// no cluster configured that is an error, not the built-in default.
#[derive(Debug, Default, Args)]
pub struct ClusterArgs {
    /// Namespace of the Istio ConfigMaps [default: istio-system]
    #[arg(short = 'i', long = "istioNamespace", value_name = "NAMESPACE", value_parser = NonEmptyStringValueParser::new())]
    pub istio_namespace: Option<String>,
    /// ConfigMap whose key `config` is the injector config (unless --injectConfigFile)
    /// [default: istio-sidecar-injector]
    #[arg(long = "injectConfigMapName", value_name = "NAME", value_parser = NonEmptyStringValueParser::new())]
    pub inject_config_map_name: Option<String>,
    /// ConfigMap whose key `mesh` is the mesh config (unless --meshConfigFile) [default: istio]
    #[arg(long = "meshConfigMapName", value_name = "NAME", value_parser = NonEmptyStringValueParser::new())]
    pub mesh_config_map_name: Option<String>,
    /// Kubeconfig file to use, alone [default: $KUBECONFIG, else ~/.kube/config, else the
    /// in-cluster service account]
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context to use [default: its current-context]
    #[arg(long, value_name = "NAME", value_parser = NonEmptyStringValueParser::new())]
    pub context: Option<String>,
}

impl ClusterArgs {
    /// Whether any cluster flag was given.
    pub fn any(&self) -> bool {
        self.istio_namespace.is_some()
            || self.inject_config_map_name.is_some()
            || self.mesh_config_map_name.is_some()
            || self.kubeconfig.is_some()
            || self.context.is_some()
    }
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

    #[test]
    fn cluster_flags_parse_in_istioctl_spellings() {
        let cli = Cli::try_parse_from([
            "kube-inject",
            "inject",
            "-f",
            "x",
            "-i",
            "mesh-ns",
            "--injectConfigMapName",
            "inj",
            "--meshConfigMapName",
            "mesh",
            "--kubeconfig",
            "kc",
            "--context",
            "ctx",
            "--diff",
        ])
        .unwrap();
        let Some(Command::Inject(args)) = cli.command else {
            panic!("not inject");
        };
        let cluster = &args.config.cluster;
        assert_eq!(cluster.istio_namespace.as_deref(), Some("mesh-ns"));
        assert_eq!(cluster.inject_config_map_name.as_deref(), Some("inj"));
        assert_eq!(cluster.mesh_config_map_name.as_deref(), Some("mesh"));
        assert_eq!(cluster.kubeconfig, Some(PathBuf::from("kc")));
        assert_eq!(cluster.context.as_deref(), Some("ctx"));
        assert!(cluster.any());
        let cli =
            Cli::try_parse_from(["kube-inject", "--istioNamespace", "ns", "-f", "x"]).unwrap();
        assert_eq!(
            cli.inject.config.cluster.istio_namespace.as_deref(),
            Some("ns")
        );
        let cli = Cli::try_parse_from(["kube-inject", "-f", "x"]).unwrap();
        assert!(!cli.inject.config.cluster.any());
    }

    #[test]
    fn builtin_conflicts_with_every_cluster_flag() {
        for flag in [
            ["-i", "ns"],
            ["--injectConfigMapName", "a"],
            ["--meshConfigMapName", "b"],
            ["--kubeconfig", "kc"],
            ["--context", "c"],
        ] {
            let err =
                Cli::try_parse_from(["kube-inject", "-f", "x", "--builtin", flag[0], flag[1]])
                    .unwrap_err();
            assert_eq!(
                err.kind(),
                clap::error::ErrorKind::ArgumentConflict,
                "{flag:?}"
            );
        }
    }

    #[test]
    fn empty_cluster_names_are_rejected() {
        for flag in [
            "-i",
            "--injectConfigMapName",
            "--meshConfigMapName",
            "--context",
            "--kubeconfig",
        ] {
            assert!(
                Cli::try_parse_from(["kube-inject", "-f", "x", flag, ""]).is_err(),
                "{flag}"
            );
        }
    }

    #[test]
    fn uninject_and_check_take_no_cluster_flags() {
        assert!(
            Cli::try_parse_from(["kube-inject", "uninject", "-f", "x", "--context", "c"]).is_err()
        );
        assert!(Cli::try_parse_from(["kube-inject", "check", "-f", "x", "-i", "ns"]).is_err());
    }

    #[test]
    fn help_shows_the_cluster_defaults() {
        let help = Cli::command().render_long_help().to_string();
        for default in [
            crate::cluster::DEFAULT_ISTIO_NAMESPACE,
            crate::cluster::DEFAULT_INJECT_CONFIG_MAP_NAME,
            crate::cluster::DEFAULT_MESH_CONFIG_MAP_NAME,
        ] {
            assert!(help.contains(&format!("[default: {default}]")), "{help}");
        }
    }
}
