//! The configuration read from a cluster, end to end: the built binary against the fake API server
//! (`fake_apiserver.rs`) on 127.0.0.1, reached through a kubeconfig (`--kubeconfig`,
//! `$KUBECONFIG`, `~/.kube/config`) or the in-cluster variables; and every way that read can fail,
//! each an exit 2 with nothing written (istio/istio#2489).

use std::fs;
use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use crate::fake_apiserver::{self, FAKE_TOKEN, FakeApiServer, Kubeconfig};
use crate::util::{at_root, docs, kube_inject, names, read, template_config_text};

const SLEEP: &str = "samples/sleep/sleep.yaml";
/// The proxy image of the built-in template, and the one the cluster's template uses instead.
const BUILTIN_IMAGE: &str = "istio.io/proxy:0.5.0";
const CLUSTER_IMAGE: &str = "registry.cluster.example/proxy:9.9.9";
/// A mesh config whose discovery address shows up in the injected sidecar.
const MESH: &str = "defaultConfig:\n  discoveryAddress: istiod.from-the-cluster:15012\n";
const CLUSTER_ADDRESS: &str = "istiod.from-the-cluster:15012";
const INJECTOR_PATH: &str = "/api/v1/namespaces/istio-system/configmaps/istio-sidecar-injector";
const MESH_PATH: &str = "/api/v1/namespaces/istio-system/configmaps/istio";

/// The injector config a cluster of these tests holds: the built-in template with its own image.
fn cluster_injector_config() -> String {
    template_config_text(BUILTIN_IMAGE, CLUSTER_IMAGE)
}

/// A fake API server holding Istio's two ConfigMaps, and a kubeconfig pointing at it.
struct Cluster {
    server: FakeApiServer,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl Cluster {
    /// Istio's ConfigMaps in `istio-system`, with the test template and mesh config.
    fn istio() -> Self {
        Self::with(FakeApiServer::with_istio(&cluster_injector_config(), MESH))
    }

    /// A server set up by the test; the kubeconfig's only context, `fake`, points at it.
    fn with(server: FakeApiServer) -> Self {
        server.require_token(FAKE_TOKEN);
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = Kubeconfig::new(&server.url()).write(dir.path());
        Cluster {
            server,
            dir,
            kubeconfig,
        }
    }

    /// `kube-inject ARGS --kubeconfig KUBECONFIG -f samples/sleep/sleep.yaml`.
    fn run(&self, args: &[&str]) -> Output {
        kube_inject()
            .args(args)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("-f")
            .arg(at_root(SLEEP))
            .output()
            .unwrap()
    }

    /// The stderr line for a ConfigMap read from this server through context `fake`.
    fn source_line(&self, kind: &str, name: &str, key: &str) -> String {
        format!(
            "kube-inject: {kind}: configmap istio-system/{name}, key \"{key}\", from {} (context \"fake\")",
            self.server.url()
        )
    }
}

/// Expects success; returns stdout and stderr.
fn ok(output: Output) -> (String, String) {
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    (String::from_utf8(output.stdout).unwrap(), stderr)
}

/// Expects exit 2, an empty stdout and exactly one stderr line, the error; returns that line.
fn fails(output: Output) -> String {
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        output.stdout.is_empty(),
        "stdout: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    stderr
        .strip_prefix("kube-inject: error: ")
        .unwrap_or_else(|| panic!("not an error line: {stderr}"))
        .trim_end()
        .to_string()
}

/// Runs `cluster` with `args` and `-o` onto an existing file; expects the failure of [`fails`],
/// the file untouched and nothing left beside it; returns the error line.
fn fails_without_writing(cluster: &Cluster, args: &[&str]) -> String {
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("sleep-injected.yaml");
    fs::write(&out, "previous\n").unwrap();
    let mut all = args.to_vec();
    let out_arg = out.display().to_string();
    all.extend(["-o", out_arg.as_str()]);
    let error = fails(cluster.run(&all));
    assert_eq!(fs::read_to_string(&out).unwrap(), "previous\n");
    assert_eq!(
        fs::read_dir(out_dir.path()).unwrap().count(),
        1,
        "a file was left"
    );
    error
}

/// The injected sleep Deployment's sidecar, as data.
fn sidecar(stdout: &str) -> serde_json::Value {
    let docs = docs(stdout);
    let pod = &docs[1]["spec"]["template"];
    assert_eq!(
        names(pod, "containers"),
        ["sleep", "istio-proxy"],
        "{stdout}"
    );
    pod["spec"]["containers"][1].clone()
}

/// What the hermetic binary prints with the built-in configuration.
fn builtin_output() -> String {
    let output = kube_inject()
        .args(["--builtin", "-f"])
        .arg(at_root(SLEEP))
        .output()
        .unwrap();
    ok(output).0
}

// --- reading the ConfigMaps ---

#[test]
fn reads_both_configmaps_of_the_current_context() {
    let cluster = Cluster::istio();
    let (stdout, stderr) = ok(cluster.run(&[]));

    let proxy = sidecar(&stdout);
    assert_eq!(proxy["image"], CLUSTER_IMAGE, "{stdout}");
    assert!(stdout.contains(CLUSTER_ADDRESS), "{stdout}");
    assert!(!stdout.contains(BUILTIN_IMAGE), "{stdout}");
    assert_eq!(
        stderr,
        format!(
            "{}\n{}\n",
            cluster.source_line("injection config", "istio-sidecar-injector", "config"),
            cluster.source_line("mesh config", "istio", "mesh"),
        )
    );
    // The mesh config first, then the injector's, as istioctl does; GETs with the user's token.
    assert_eq!(cluster.server.paths(), [MESH_PATH, INJECTOR_PATH]);
    for request in cluster.server.requests() {
        assert_eq!(request.method, "GET");
        assert_eq!(request.authorization.as_deref(), Some("Bearer fake-token"));
    }
}

#[test]
fn the_inject_subcommand_and_output_file_read_the_cluster_too() {
    let cluster = Cluster::istio();
    let (expected, _) = ok(cluster.run(&[]));
    let out = cluster.dir.path().join("out.yaml");
    let out_arg = out.display().to_string();
    let (stdout, _) = ok(kube_inject()
        .args(["inject", "--kubeconfig"])
        .arg(&cluster.kubeconfig)
        .args(["-o", &out_arg, "-f"])
        .arg(at_root(SLEEP))
        .output()
        .unwrap());
    assert_eq!(stdout, "");
    assert_eq!(read(&out), expected);
}

#[test]
fn diff_compares_against_the_cluster_configuration() {
    let cluster = Cluster::istio();
    let output = cluster.run(&["--diff"]);
    assert_eq!(output.status.code(), Some(1));
    let diff = String::from_utf8(output.stdout).unwrap();
    assert!(
        diff.contains(&format!("+        image: {CLUSTER_IMAGE}")),
        "{diff}"
    );
    assert_eq!(cluster.server.paths(), [MESH_PATH, INJECTOR_PATH]);
}

#[test]
fn the_default_kubeconfig_in_home_is_used_without_flags() {
    let cluster = Cluster::istio();
    let home = tempfile::tempdir().unwrap();
    fs::create_dir(home.path().join(".kube")).unwrap();
    fs::copy(&cluster.kubeconfig, home.path().join(".kube/config")).unwrap();
    let (stdout, stderr) = ok(kube_inject()
        .env("HOME", home.path())
        .arg("-f")
        .arg(at_root(SLEEP))
        .output()
        .unwrap());
    assert_eq!(sidecar(&stdout)["image"], CLUSTER_IMAGE);
    assert!(stderr.contains("(context \"fake\")"), "{stderr}");
    assert_eq!(cluster.server.paths().len(), 2);
}

#[test]
fn the_kubeconfig_env_var_is_used_and_merged() {
    let cluster = Cluster::istio();
    let missing = cluster.dir.path().join("missing");
    let list = std::env::join_paths([&missing, &cluster.kubeconfig]).unwrap();
    let (stdout, _) = ok(kube_inject()
        .env("KUBECONFIG", list)
        .arg("-f")
        .arg(at_root(SLEEP))
        .output()
        .unwrap());
    assert_eq!(sidecar(&stdout)["image"], CLUSTER_IMAGE);
}

#[test]
fn custom_namespace_and_configmap_names() {
    let server = FakeApiServer::start();
    server.config_map(
        "mesh-ns",
        "my-injector",
        &[("config", &cluster_injector_config())],
    );
    server.config_map(
        "mesh-ns",
        "my-mesh",
        &[("mesh", MESH), ("meshNetworks", "{}")],
    );
    // The default names in the default namespace hold something else: they must not be read.
    server.config_map(
        "istio-system",
        "istio-sidecar-injector",
        &[("config", "policy: disabled\n")],
    );
    let cluster = Cluster::with(server);
    for namespace_flag in ["-i", "--istioNamespace"] {
        let (stdout, stderr) = ok(cluster.run(&[
            namespace_flag,
            "mesh-ns",
            "--injectConfigMapName",
            "my-injector",
            "--meshConfigMapName",
            "my-mesh",
        ]));
        assert_eq!(sidecar(&stdout)["image"], CLUSTER_IMAGE);
        assert!(stdout.contains(CLUSTER_ADDRESS), "{stdout}");
        assert!(
            stderr.contains("injection config: configmap mesh-ns/my-injector, key \"config\""),
            "{stderr}"
        );
        assert!(
            stderr.contains("mesh config: configmap mesh-ns/my-mesh, key \"mesh\""),
            "{stderr}"
        );
    }
    let paths = cluster.server.paths();
    assert_eq!(
        paths[..2],
        [
            "/api/v1/namespaces/mesh-ns/configmaps/my-mesh",
            "/api/v1/namespaces/mesh-ns/configmaps/my-injector",
        ]
    );
    assert_eq!(paths.len(), 4);
}

#[test]
fn context_selects_another_cluster() {
    let current = FakeApiServer::with_istio("policy: disabled\n", MESH);
    let other = FakeApiServer::with_istio(&cluster_injector_config(), MESH);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = Kubeconfig::new(&current.url())
        .context("other", &other.url())
        .write(dir.path());
    let (stdout, stderr) = ok(kube_inject()
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--context", "other", "-f"])
        .arg(at_root(SLEEP))
        .output()
        .unwrap());
    assert_eq!(sidecar(&stdout)["image"], CLUSTER_IMAGE);
    assert!(
        stderr.contains(&format!("from {} (context \"other\")", other.url())),
        "{stderr}"
    );
    assert!(current.paths().is_empty());
    assert_eq!(other.paths().len(), 2);
}

#[test]
fn an_inject_config_file_and_the_mesh_config_from_the_cluster() {
    let server = FakeApiServer::start();
    server.config_map("istio-system", "istio", &[("mesh", MESH)]);
    let cluster = Cluster::with(server);
    let config = cluster.dir.path().join("inject-config.yaml");
    fs::write(&config, cluster_injector_config()).unwrap();
    let (stdout, stderr) = ok(cluster.run(&["--injectConfigFile", &config.display().to_string()]));
    assert_eq!(sidecar(&stdout)["image"], CLUSTER_IMAGE);
    assert!(stdout.contains(CLUSTER_ADDRESS), "{stdout}");
    assert_eq!(
        stderr,
        format!(
            "kube-inject: injection config: --injectConfigFile {}\n{}\n",
            config.display(),
            cluster.source_line("mesh config", "istio", "mesh"),
        )
    );
    // The injector ConfigMap is not even asked for.
    assert_eq!(cluster.server.paths(), [MESH_PATH]);
}

#[test]
fn a_mesh_config_file_and_the_inject_config_from_the_cluster() {
    let server = FakeApiServer::start();
    server.config_map(
        "istio-system",
        "istio-sidecar-injector",
        &[("config", &cluster_injector_config())],
    );
    let cluster = Cluster::with(server);
    let mesh = cluster.dir.path().join("mesh-config.yaml");
    fs::write(
        &mesh,
        "defaultConfig:\n  discoveryAddress: istiod.from-a-file:15012\n",
    )
    .unwrap();
    let (stdout, stderr) = ok(cluster.run(&["--meshConfigFile", &mesh.display().to_string()]));
    assert_eq!(sidecar(&stdout)["image"], CLUSTER_IMAGE);
    assert!(stdout.contains("istiod.from-a-file:15012"), "{stdout}");
    assert!(
        stderr.ends_with(&format!(
            "kube-inject: mesh config: --meshConfigFile {}\n",
            mesh.display()
        )),
        "{stderr}"
    );
    assert_eq!(cluster.server.paths(), [INJECTOR_PATH]);
}

#[test]
fn both_files_beat_a_configured_cluster_without_a_request() {
    let cluster = Cluster::istio();
    let dir = cluster.dir.path();
    let config = dir.join("inject-config.yaml");
    fs::write(&config, "policy: enabled\n").unwrap();
    let mesh = dir.join("mesh-config.yaml");
    fs::write(&mesh, "defaultConfig: {}\n").unwrap();
    let (stdout, _) = ok(cluster.run(&[
        "--injectConfigFile",
        &config.display().to_string(),
        "--meshConfigFile",
        &mesh.display().to_string(),
    ]));
    assert_eq!(sidecar(&stdout)["image"], BUILTIN_IMAGE);
    assert!(cluster.server.paths().is_empty());
}

#[test]
fn builtin_ignores_a_configured_cluster_without_a_request() {
    let cluster = Cluster::istio();
    // Every way the cluster could be found: $KUBECONFIG, ~/.kube/config, the in-cluster variables.
    let home = tempfile::tempdir().unwrap();
    fs::create_dir(home.path().join(".kube")).unwrap();
    fs::copy(&cluster.kubeconfig, home.path().join(".kube/config")).unwrap();
    let output = kube_inject()
        .env("HOME", home.path())
        .env("KUBECONFIG", &cluster.kubeconfig)
        .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        .env("KUBERNETES_SERVICE_PORT", "1")
        .args(["--builtin", "-f"])
        .arg(at_root(SLEEP))
        .output()
        .unwrap();
    let (stdout, stderr) = ok(output);
    assert_eq!(stdout, builtin_output());
    assert_eq!(
        stderr,
        "kube-inject: using the built-in default configuration (--builtin)\n"
    );
    assert!(cluster.server.paths().is_empty());
}

#[test]
fn builtin_cannot_be_combined_with_cluster_flags() {
    let cluster = Cluster::istio();
    let output = cluster.run(&["--builtin"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("'--builtin' cannot be used with '--kubeconfig <FILE>'"),
        "{stderr}"
    );
    assert!(cluster.server.paths().is_empty());
}

#[test]
fn a_kubeconfig_beats_the_in_cluster_service_account() {
    let cluster = Cluster::istio();
    let output = kube_inject()
        .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        .env("KUBERNETES_SERVICE_PORT", "1")
        .env("KUBECONFIG", &cluster.kubeconfig)
        .arg("-f")
        .arg(at_root(SLEEP))
        .output()
        .unwrap();
    let (stdout, _) = ok(output);
    assert_eq!(sidecar(&stdout)["image"], CLUSTER_IMAGE);
}

// --- errors: exit 2, nothing written ---

#[test]
fn istio_2489_missing_configmap_is_an_error() {
    // See: https://github.com/istio/istio/issues/2489 (empty output when the ConfigMap is missing)
    let server = FakeApiServer::start();
    server.config_map("istio-system", "istio", &[("mesh", MESH)]);
    let cluster = Cluster::with(server);
    let error = fails_without_writing(&cluster, &[]);
    assert_eq!(
        error,
        format!(
            "configmap istio-system/istio-sidecar-injector (injection config) not found in the cluster at \
             {} (context \"fake\"); install Istio, select the right one with -i/--istioNamespace and \
             --injectConfigMapName, or pass --injectConfigFile (or --builtin)",
            cluster.server.url()
        )
    );
    // Also straight to standard output: nothing there, not an empty manifest.
    fails(cluster.run(&[]));
}

#[test]
fn missing_mesh_configmap_in_another_namespace_is_an_error() {
    let cluster = Cluster::istio();
    let error = fails_without_writing(&cluster, &["-i", "istio-1-20"]);
    assert!(
        error.starts_with("configmap istio-1-20/istio (mesh config) not found in the cluster at "),
        "{error}"
    );
    assert!(
        error.contains("--meshConfigMapName, or pass --meshConfigFile"),
        "{error}"
    );
    assert_eq!(
        cluster.server.paths(),
        ["/api/v1/namespaces/istio-1-20/configmaps/istio"]
    );
}

#[test]
fn missing_key_is_an_error_naming_the_keys_present() {
    let server = FakeApiServer::start();
    server.config_map("istio-system", "istio", &[("mesh", MESH)]);
    server.config_map(
        "istio-system",
        "istio-sidecar-injector",
        &[("values", "{}")],
    );
    let cluster = Cluster::with(server);
    assert_eq!(
        fails_without_writing(&cluster, &[]),
        "configmap istio-system/istio-sidecar-injector has no key \"config\" (the injection config; it \
         has keys \"values\"); fix the configmap, select another with --injectConfigMapName, or pass \
         --injectConfigFile"
    );
}

#[test]
fn configmap_without_data_is_a_missing_key() {
    let server = FakeApiServer::start();
    server.config_map("istio-system", "istio", &[]);
    let cluster = Cluster::with(server);
    assert_eq!(
        fails_without_writing(&cluster, &[]),
        "configmap istio-system/istio has no key \"mesh\" (the mesh config; it has no data); fix the \
         configmap, select another with --meshConfigMapName, or pass --meshConfigFile"
    );
}

#[test]
fn empty_key_is_an_error() {
    let cluster = Cluster::with(FakeApiServer::with_istio(&cluster_injector_config(), ""));
    assert_eq!(
        fails_without_writing(&cluster, &[]),
        "key \"mesh\" of configmap istio-system/istio (the mesh config) is empty; fix the configmap or \
         pass --meshConfigFile"
    );
}

#[test]
fn invalid_configuration_in_a_configmap_names_the_configmap() {
    let broken = "template: |\n  containers:\n  - name: {{ oops\n";
    let cluster = Cluster::with(FakeApiServer::with_istio(broken, MESH));
    let error = fails_without_writing(&cluster, &[]);
    assert!(
        error.starts_with(
            "configmap istio-system/istio-sidecar-injector, key \"config\": invalid `template`"
        ),
        "{error}"
    );
    let cluster = Cluster::with(FakeApiServer::with_istio(
        &cluster_injector_config(),
        "defaultConfig: [not, a, mapping]\n",
    ));
    let error = fails_without_writing(&cluster, &[]);
    assert!(
        error.starts_with("configmap istio-system/istio, key \"mesh\": "),
        "{error}"
    );
}

#[test]
fn forbidden_read_is_an_error() {
    let cluster = Cluster::istio();
    cluster
        .server
        .forbid("istio-system", "istio-sidecar-injector");
    let error = fails_without_writing(&cluster, &[]);
    assert!(
        error.starts_with(&format!(
            "not allowed to read configmap istio-system/istio-sidecar-injector (injection config) from {} \
             (context \"fake\"): configmaps \"istio-sidecar-injector\" is forbidden: User \
             \"system:serviceaccount:default:fake\" cannot get resource \"configmaps\"",
            cluster.server.url()
        )),
        "{error}"
    );
    assert!(
        error.ends_with(
            "; get permission to read configmaps in istio-system, or pass --injectConfigFile"
        ),
        "{error}"
    );
}

#[test]
fn rejected_credentials_are_an_error() {
    let cluster = Cluster::istio();
    cluster.server.require_token("another-token");
    let error = fails_without_writing(&cluster, &[]);
    assert!(
        error.contains("rejected the credentials (401 Unauthorized: Unauthorized); log in again"),
        "{error}"
    );
}

#[test]
fn unreachable_server_is_an_error_and_fails_fast() {
    let dir = tempfile::tempdir().unwrap();
    let url = fake_apiserver::unreachable_url();
    let kubeconfig = Kubeconfig::new(&url).write(dir.path());
    let start = Instant::now();
    let output = kube_inject()
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("-f")
        .arg(at_root(SLEEP))
        .output()
        .unwrap();
    let elapsed = start.elapsed();
    let error = fails(output);
    assert!(elapsed < Duration::from_secs(8), "took {elapsed:?}");
    assert!(
        error.starts_with(&format!(
            "cannot reach the Kubernetes API server {url} (context \"fake\"); check that the cluster is up"
        )),
        "{error}"
    );
    assert!(error.contains("Connection refused"), "{error}");
}

#[test]
fn unreachable_https_server_sets_up_tls_and_fails_cleanly() {
    // Builds the rustls client (crypto provider, native roots) before failing to connect.
    let dir = tempfile::tempdir().unwrap();
    let url = fake_apiserver::unreachable_url().replace("http://", "https://");
    let kubeconfig = Kubeconfig::new(&url).write(dir.path());
    let error = fails(
        kube_inject()
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("-f")
            .arg(at_root(SLEEP))
            .output()
            .unwrap(),
    );
    assert!(
        error.starts_with(&format!(
            "cannot reach the Kubernetes API server {url} (context \"fake\"); check that the cluster is up"
        )),
        "{error}"
    );
}

#[test]
fn invalid_kubeconfig_is_an_error_on_one_line_without_its_content() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    // The YAML error comes with a snippet of the file around it: it must not reach stderr.
    fs::write(
        &kubeconfig,
        "users:\n- name: u\n  user:\n    token: secret-token-123\n    extra: [unclosed\n",
    )
    .unwrap();
    let error = fails(
        kube_inject()
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("-f")
            .arg(at_root(SLEEP))
            .output()
            .unwrap(),
    );
    assert!(
        error.starts_with(&format!("invalid kubeconfig {}: ", kubeconfig.display())),
        "{error}"
    );
    assert!(error.contains("line 5 column"), "{error}");
    assert!(!error.contains("secret-token"), "{error}");
}

#[test]
fn a_broken_default_kubeconfig_is_an_error_not_the_builtin_default() {
    let home = tempfile::tempdir().unwrap();
    fs::create_dir(home.path().join(".kube")).unwrap();
    let path = home.path().join(".kube/config");
    fs::write(&path, "clusters: [unclosed\n").unwrap();
    let error = fails(
        kube_inject()
            .env("HOME", home.path())
            .arg("-f")
            .arg(at_root(SLEEP))
            .output()
            .unwrap(),
    );
    assert!(
        error.starts_with(&format!("invalid kubeconfig {}", path.display())),
        "{error}"
    );
}

#[test]
fn missing_kubeconfig_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let error = fails(
        kube_inject()
            .arg("--kubeconfig")
            .arg(&missing)
            .arg("-f")
            .arg(at_root(SLEEP))
            .output()
            .unwrap(),
    );
    assert!(
        error.starts_with(&format!("cannot read kubeconfig {}: ", missing.display())),
        "{error}"
    );
    let error = fails(
        kube_inject()
            .env("KUBECONFIG", &missing)
            .arg("-f")
            .arg(at_root(SLEEP))
            .output()
            .unwrap(),
    );
    assert!(
        error.starts_with("none of the files in $KUBECONFIG exist ("),
        "{error}"
    );
}

#[test]
fn unknown_context_is_an_error_listing_the_contexts() {
    let cluster = Cluster::istio();
    let error = fails_without_writing(&cluster, &["--context", "prod"]);
    assert_eq!(
        error,
        format!(
            "context \"prod\" not found in kubeconfig {} (contexts: fake)",
            cluster.kubeconfig.display()
        )
    );
    assert!(cluster.server.paths().is_empty());
}

#[test]
fn kubeconfig_without_current_context_asks_for_one() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = Kubeconfig::new("http://127.0.0.1:1")
        .current(None)
        .write(dir.path());
    let error = fails(
        kube_inject()
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("-f")
            .arg(at_root(SLEEP))
            .output()
            .unwrap(),
    );
    assert_eq!(
        error,
        format!(
            "kubeconfig {} sets no current-context; pass --context (contexts: fake)",
            kubeconfig.display()
        )
    );
}

#[test]
fn context_without_a_server_cannot_be_used() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts:\n- name: c\n  context:\n    cluster: gone\n",
    )
    .unwrap();
    let error = fails(
        kube_inject()
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("-f")
            .arg(at_root(SLEEP))
            .output()
            .unwrap(),
    );
    assert!(
        error.starts_with(&format!(
            "context \"c\" of kubeconfig {} cannot be used: ",
            kubeconfig.display()
        )),
        "{error}"
    );
}

#[test]
fn a_cluster_flag_without_any_cluster_is_an_error() {
    let error = fails(
        kube_inject()
            .args(["-i", "istio-system", "-f"])
            .arg(at_root(SLEEP))
            .output()
            .unwrap(),
    );
    assert!(
        error.starts_with(
            "no cluster configured to read the Istio configuration from (no --kubeconfig, \
             $KUBECONFIG unset, "
        ),
        "{error}"
    );
    assert!(
        error.ends_with(
            "/kube-inject-empty-home/.kube/config missing, not running in a pod); pass \
             --kubeconfig, or --injectConfigFile and --meshConfigFile, or --builtin"
        ),
        "{error}"
    );
}

#[test]
fn in_cluster_service_account_path_is_tried_and_its_failure_is_an_error() {
    // In a pod (KUBERNETES_SERVICE_HOST/PORT set) and no kubeconfig: the service account is used.
    // Outside a pod its token is missing; inside one, nothing listens on port 1. Either way: an
    // error naming the in-cluster service account, never the built-in default.
    let output = kube_inject()
        .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        .env("KUBERNETES_SERVICE_PORT", "1")
        .arg("-f")
        .arg(at_root(SLEEP))
        .output()
        .unwrap();
    let error = fails(output);
    assert!(error.contains("in-cluster service account"), "{error}");
}

#[test]
fn context_flag_with_only_the_in_cluster_service_account_is_an_error() {
    let error = fails(
        kube_inject()
            .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
            .env("KUBERNETES_SERVICE_PORT", "1")
            .args(["--context", "kind-kind", "-f"])
            .arg(at_root(SLEEP))
            .output()
            .unwrap(),
    );
    assert!(
        error.starts_with("--context \"kind-kind\" needs a kubeconfig"),
        "{error}"
    );
}

#[test]
fn a_server_error_is_an_error_with_its_status() {
    let cluster = Cluster::istio();
    cluster.server.reply(
        "istio-system",
        "istio",
        fake_apiserver::Reply::Status {
            code: 500,
            reason: "InternalError".into(),
            message: "etcd is down".into(),
        },
    );
    let error = fails_without_writing(&cluster, &[]);
    assert!(
        error.ends_with("failed with HTTP 500 (InternalError): etcd is down"),
        "{error}"
    );
}

#[test]
fn a_proxy_error_page_keeps_its_http_status() {
    let cluster = Cluster::istio();
    cluster.server.reply(
        "istio-system",
        "istio",
        fake_apiserver::Reply::Raw {
            code: 502,
            content_type: "text/html".into(),
            body: "<html>bad gateway</html>".into(),
        },
    );
    let error = fails_without_writing(&cluster, &[]);
    assert!(
        error.starts_with(&format!(
            "reading configmap istio-system/istio from {} (context \"fake\") failed with HTTP 502",
            cluster.server.url()
        )),
        "{error}"
    );
    assert!(error.ends_with(": <html>bad gateway</html>"), "{error}");
}

#[test]
fn an_answer_that_is_not_a_configmap_is_an_error() {
    let cluster = Cluster::istio();
    cluster.server.reply(
        "istio-system",
        "istio",
        fake_apiserver::Reply::Raw {
            code: 200,
            content_type: "text/html".into(),
            body: "<html>login page</html>".into(),
        },
    );
    let error = fails_without_writing(&cluster, &[]);
    assert!(
        error.starts_with(&format!(
            "reading configmap istio-system/istio from {} (context \"fake\") failed: ",
            cluster.server.url()
        )),
        "{error}"
    );
}

#[test]
fn a_connection_dropped_mid_response_is_an_error_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let url = fake_apiserver::dropping_url();
    let kubeconfig = Kubeconfig::new(&url).write(dir.path());
    let out = dir.path().join("sleep-injected.yaml");
    fs::write(&out, "previous\n").unwrap();
    let error = fails(
        kube_inject()
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("-f")
            .arg(at_root(SLEEP))
            .arg("-o")
            .arg(&out)
            .output()
            .unwrap(),
    );
    assert!(
        error.starts_with(&format!(
            "the connection to the Kubernetes API server {url} (context \"fake\") broke while reading configmap istio-system/"
        )),
        "{error}"
    );
    assert!(
        error.contains("end of file before message length reached"),
        "{error}"
    );
    assert_eq!(fs::read_to_string(&out).unwrap(), "previous\n");
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        2,
        "a file was left"
    );
}

#[test]
fn the_test_environment_is_hermetic() {
    // Without any cluster variable or kubeconfig, the binary reports that no cluster is configured,
    // whatever the machine running the tests has (see util::kube_inject_std).
    let output = kube_inject()
        .arg("-f")
        .arg(at_root(SLEEP))
        .output()
        .unwrap();
    let (stdout, stderr) = ok(output);
    assert_eq!(
        stderr,
        "kube-inject: no cluster configured (no kubeconfig); using the built-in default configuration\n"
    );
    assert_eq!(stdout, builtin_output());
}
