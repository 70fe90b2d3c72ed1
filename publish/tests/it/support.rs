//! A registry process per test, the policy-publish command, and the modules to publish.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The registry binary Debian's `docker-registry` package installs.
pub const REGISTRY_BIN: &str = "docker-registry";
/// User of the registries started with authentication.
pub const USER: &str = "publisher";
/// Their password.
pub const PASSWORD: &str = "right-password";
/// bcrypt (cost 4, so that each request stays cheap) of [`PASSWORD`], as htpasswd files hold it.
const PASSWORD_BCRYPT: &str = "$2b$04$4kHuKTxdrVmJs20IYgH79eJvmOvcRMHizl4piRthceXkVngC/1saK";

/// The repository root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from(".."), Path::to_path_buf)
}

/// A registry serving on 127.0.0.1, storing under a temporary folder; killed on drop.
pub struct Registry {
    child: Child,
    /// `127.0.0.1:<port>`.
    pub host: String,
    /// The temporary folder (config, storage, logs).
    pub dir: tempfile::TempDir,
}

impl Registry {
    /// Starts an anonymous registry, or returns `None` (saying so on stderr) when the
    /// `docker-registry` binary is not installed.
    pub fn start() -> Option<Self> {
        Self::start_with(false)
    }

    /// Starts a registry that wants [`USER`] and [`PASSWORD`] (htpasswd).
    pub fn start_with_auth() -> Option<Self> {
        Self::start_with(true)
    }

    fn start_with(auth: bool) -> Option<Self> {
        if !installed() {
            eprintln!(
                "skipped: `{REGISTRY_BIN}` is not installed (apt-get install docker-registry; .ci/run installs it)"
            );
            return None;
        }
        let dir = tempfile::tempdir().expect("temporary folder");
        let host = format!("127.0.0.1:{}", free_port());
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {host}\n  secret: test-only\n",
            dir.path().join("data").display()
        );
        if auth {
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, format!("{USER}:{PASSWORD_BCRYPT}\n")).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let registry = Self { child, host, dir };
        registry.wait_ready();
        Some(registry)
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(mut stream) = TcpStream::connect(&self.host) {
                let request = format!("GET /v2/ HTTP/1.0\r\nHost: {}\r\n\r\n", self.host);
                let mut answer = String::new();
                if stream.write_all(request.as_bytes()).is_ok()
                    && stream.read_to_string(&mut answer).is_ok()
                    && answer.starts_with("HTTP/1.")
                {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default();
        panic!("the registry on {} did not start: {log}", self.host);
    }

    /// Whether the registry stores anything for `repository` (blobs or tags).
    pub fn has_repository(&self, repository: &str) -> bool {
        self.dir
            .path()
            .join("data/docker/registry/v2/repositories")
            .join(repository)
            .exists()
    }

    /// A Docker config folder whose config.json logs in to this registry as `user`/`password`.
    pub fn docker_config(&self, user: &str, password: &str) -> PathBuf {
        use base64::Engine as _;
        let dir = self.dir.path().join(format!("docker-{password}"));
        std::fs::create_dir_all(&dir).unwrap();
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let config = serde_json::json!({"auths": {&self.host: {"auth": auth}}});
        std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
        dir
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn installed() -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| dir.join(REGISTRY_BIN).is_file())
    })
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

/// The policy-publish command, with no credentials or insecure registries from the
/// environment it runs in.
pub fn publish() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_policy-publish"));
    let empty = std::env::temp_dir().join("policy-publish-tests-no-docker-config");
    command
        .env("DOCKER_CONFIG", empty)
        .env_remove("INSECURE_REGISTRIES")
        .env_remove("COSIGN_PASSWORD");
    command
}

/// Runs a command and returns its output.
pub fn run(command: &mut Command) -> Output {
    command.output().expect("run policy-publish")
}

/// stdout as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts a failure: exit status `code`, nothing on stdout, and one line of error on stderr
/// that contains `needle`.
pub fn assert_error(output: &Output, code: i32, needle: &str) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(code), "stderr: {err}");
    assert!(output.stdout.is_empty(), "stdout: {}", stdout(output));
    assert_eq!(err.lines().count(), 1, "one line of error, got: {err}");
    assert!(err.starts_with("policy-publish: error: "), "{err}");
    assert!(err.contains(needle), "`{needle}` not in: {err}");
}

/// The module `make annotated-policy.wasm` built, or `None` (saying so) when it was not built.
pub fn annotated_policy() -> Option<PathBuf> {
    let path = workspace().join("annotated-policy.wasm");
    if path.exists() {
        Some(path)
    } else {
        eprintln!("skipped: annotated-policy.wasm is not built (make annotated-policy.wasm)");
        None
    }
}

/// A small annotated module (an empty module with an `io.kubewarden.metadata` section of
/// version 0.1.0), written to `dir`.
pub fn small_module(dir: &Path) -> PathBuf {
    let metadata = serde_json::json!({
        "protocolVersion": "v1",
        "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"], "operations": ["CREATE"]}],
        "mutating": true,
        "annotations": {
            "io.kubewarden.policy.title": "small",
            "io.kubewarden.policy.version": "0.1.0",
            "io.kubewarden.policy.usage": "two\nlines"
        }
    })
    .to_string();
    let name = b"io.kubewarden.metadata";
    let mut section = vec![u8::try_from(name.len()).unwrap()];
    section.extend_from_slice(name);
    section.extend_from_slice(metadata.as_bytes());
    let mut module = b"\0asm\x01\0\0\0".to_vec();
    module.push(0);
    let mut size = section.len();
    loop {
        let byte = u8::try_from(size & 0x7f).unwrap();
        size >>= 7;
        module.push(if size == 0 { byte } else { byte | 0x80 });
        if size == 0 {
            break;
        }
    }
    module.extend_from_slice(&section);
    let path = dir.join("small.wasm");
    std::fs::write(&path, module).unwrap();
    path
}
