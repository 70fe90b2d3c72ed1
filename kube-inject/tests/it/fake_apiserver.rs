//! A fake Kubernetes API server for tests: plain HTTP/1.1 on 127.0.0.1 that answers the ConfigMap reads
//! `istioctl kube-inject` makes (`GET /api/v1/namespaces/{ns}/configmaps/{name}`), plus kubeconfig helpers.
//!
//! Self-contained (std and serde_json) so that both the unit tests of `src/cluster.rs` and the integration tests
//! can `mod` it in:
//!
//! ```ignore
//! #[path = "../support/fake_apiserver.rs"]
//! mod fake_apiserver;
//! ```
//!
//! It answers like a real API server where it matters to a client: `200` with the ConfigMap as JSON,
//! `404` and `403` with a `Status` object (`reason: NotFound` / `Forbidden`), and `401` when a bearer
//! token is required and missing. Every request is recorded so a test can assert what was asked for.
//! The server thread stops when the [`FakeApiServer`] is dropped.

#![allow(dead_code)] // Each test binary uses a different part of this helper.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The bearer token that [`Kubeconfig::new`] gives its user and [`FakeApiServer::require_token`] expects.
pub const FAKE_TOKEN: &str = "fake-token";

/// How long a [`Reply::Stall`] holds a request before giving up, so a test can never hang forever.
const STALL_LIMIT: Duration = Duration::from_secs(30);

/// What the server answers for one ConfigMap path.
#[derive(Clone, Debug)]
pub enum Reply {
    /// `200 OK` with a ConfigMap holding these `data` entries.
    ConfigMap(BTreeMap<String, String>),
    /// `403 Forbidden` with the Status an RBAC denial produces.
    Forbidden,
    /// Any status code with a Kubernetes `Status` body (`reason`, `message`).
    Status {
        /// HTTP status code, also the Status `code`.
        code: u16,
        /// The Status `reason`, e.g. `InternalError`.
        reason: String,
        /// The Status `message`.
        message: String,
    },
    /// Any status code with a raw body (e.g. a proxy's HTML error page).
    Raw {
        /// HTTP status code.
        code: u16,
        /// `Content-Type` of the body.
        content_type: String,
        /// The body, sent as is.
        body: String,
    },
    /// Accept the request and never answer (until the server is dropped): a hung API server.
    Stall,
}

/// One request the server received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// HTTP method, e.g. `GET`.
    pub method: String,
    /// Path and query, e.g. `/api/v1/namespaces/istio-system/configmaps/istio`.
    pub path: String,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
}

#[derive(Default)]
struct State {
    replies: BTreeMap<(String, String), Reply>,
    required_token: Option<String>,
    requests: Vec<Request>,
}

/// A running fake API server; stops (and joins its thread) on drop.
pub struct FakeApiServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    shutdown: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeApiServer {
    /// Starts a server on `127.0.0.1:0` that knows no ConfigMaps yet (every read is a 404).
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        // Non-blocking accept lets the loop notice `shutdown` without a wake-up connection.
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("local address");
        let state = Arc::new(Mutex::new(State::default()));
        let shutdown = Arc::new(AtomicBool::new(false));
        let thread = {
            let state = Arc::clone(&state);
            let shutdown = Arc::clone(&shutdown);
            std::thread::spawn(move || accept_loop(&listener, &state, &shutdown))
        };
        FakeApiServer {
            addr,
            state,
            shutdown,
            thread: Some(thread),
        }
    }

    /// Starts a server holding the two ConfigMaps a default Istio install has in `istio-system`:
    /// `istio-sidecar-injector` (key `config`) and `istio` (key `mesh`).
    pub fn with_istio(injector_config: &str, mesh_config: &str) -> Self {
        let server = Self::start();
        server.config_map(
            "istio-system",
            "istio-sidecar-injector",
            &[("config", injector_config)],
        );
        server.config_map("istio-system", "istio", &[("mesh", mesh_config)]);
        server
    }

    /// Serves ConfigMap `namespace/name` with these `data` entries.
    pub fn config_map(&self, namespace: &str, name: &str, data: &[(&str, &str)]) -> &Self {
        let data = data
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.reply(namespace, name, Reply::ConfigMap(data))
    }

    /// Answers reads of ConfigMap `namespace/name` with `403 Forbidden`.
    pub fn forbid(&self, namespace: &str, name: &str) -> &Self {
        self.reply(namespace, name, Reply::Forbidden)
    }

    /// Sets the reply for ConfigMap `namespace/name`.
    pub fn reply(&self, namespace: &str, name: &str, reply: Reply) -> &Self {
        self.lock()
            .replies
            .insert((namespace.to_owned(), name.to_owned()), reply);
        self
    }

    /// Answers `401 Unauthorized` to any request without `Authorization: Bearer {token}`.
    pub fn require_token(&self, token: &str) -> &Self {
        self.lock().required_token = Some(token.to_owned());
        self
    }

    /// The base URL to put in a kubeconfig, e.g. `http://127.0.0.1:38211`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.lock().requests.clone()
    }

    /// The paths of every request received so far, in order.
    pub fn paths(&self) -> Vec<String> {
        self.lock()
            .requests
            .iter()
            .map(|r| r.path.clone())
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panicking handler thread must not hide the test's own assertion behind a PoisonError.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.shutdown.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The path a client reads ConfigMap `namespace/name` from.
pub fn config_map_path(namespace: &str, name: &str) -> String {
    format!("/api/v1/namespaces/{namespace}/configmaps/{name}")
}

/// A URL where nothing listens: binds a port on 127.0.0.1, then frees it.
pub fn unreachable_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    drop(listener);
    format!("http://{addr}")
}

fn accept_loop(listener: &TcpListener, state: &Arc<Mutex<State>>, shutdown: &Arc<AtomicBool>) {
    let mut handlers = Vec::new();
    while !shutdown.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let state = Arc::clone(state);
                let shutdown = Arc::clone(shutdown);
                handlers.push(std::thread::spawn(move || {
                    let _ = serve_connection(stream, &state, &shutdown);
                }));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => break,
        }
    }
    for handler in handlers {
        let _ = handler.join();
    }
}

/// Serves requests on one connection until the client closes it (HTTP/1.1 keep-alive).
fn serve_connection(
    stream: TcpStream,
    state: &Mutex<State>,
    shutdown: &AtomicBool,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    // Bounded reads: an idle keep-alive connection must not outlive the server.
    stream.set_read_timeout(Some(Duration::from_millis(200)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let Some(request) = read_request(&mut reader, shutdown)? else {
            return Ok(());
        };
        let reply = {
            let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
            state.requests.push(request.clone());
            respond_to(&request, &state)
        };
        match reply {
            Some((code, content_type, body)) => {
                write_response(&mut writer, code, &content_type, &body)?;
            }
            None => {
                stall(shutdown);
                return Ok(());
            }
        }
    }
}

/// Reads one request head (and skips any body); `None` when the client closed or the server stops.
fn read_request(
    reader: &mut BufReader<TcpStream>,
    shutdown: &AtomicBool,
) -> std::io::Result<Option<Request>> {
    let mut lines = Vec::new();
    let mut line = String::new();
    loop {
        match reader.read_line(&mut line) {
            Ok(0) => return Ok(None),
            Ok(_) => {
                if line == "\r\n" || line == "\n" {
                    if lines.is_empty() {
                        line.clear();
                        continue;
                    }
                    break;
                }
                lines.push(line.trim_end().to_owned());
                line.clear();
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                // `line` keeps what was read so far; carry on unless the server is stopping.
                if shutdown.load(Ordering::SeqCst) {
                    return Ok(None);
                }
            }
            Err(e) => return Err(e),
        }
    }
    let mut request_line = lines[0].split_whitespace();
    let method = request_line.next().unwrap_or_default().to_owned();
    let path = request_line.next().unwrap_or_default().to_owned();
    let mut authorization = None;
    let mut content_length = 0usize;
    for header in &lines[1..] {
        let Some((name, value)) = header.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("authorization") {
            authorization = Some(value.to_owned());
        } else if name.eq_ignore_ascii_case("content-length") {
            content_length = value.parse().unwrap_or(0);
        }
    }
    if content_length > 0 {
        let mut body = vec![0; content_length];
        reader.read_exact(&mut body)?;
    }
    Ok(Some(Request {
        method,
        path,
        authorization,
    }))
}

/// Status code, content type and body for a request; `None` to stall.
fn respond_to(request: &Request, state: &State) -> Option<(u16, String, String)> {
    const JSON: &str = "application/json";
    if let Some(token) = &state.required_token
        && request.authorization.as_deref() != Some(format!("Bearer {token}").as_str())
    {
        let body = status_json(401, "Unauthorized", "Unauthorized", None);
        return Some((401, JSON.to_owned(), body));
    }
    let path = request.path.split('?').next().unwrap_or_default();
    let target = path
        .strip_prefix("/api/v1/namespaces/")
        .and_then(|rest| rest.split_once("/configmaps/"))
        .filter(|(ns, name)| !ns.contains('/') && !name.contains('/') && !name.is_empty());
    let Some((namespace, name)) = target else {
        let message = "the server could not find the requested resource";
        return Some((
            404,
            JSON.to_owned(),
            status_json(404, "NotFound", message, None),
        ));
    };
    if request.method != "GET" {
        let message = format!("{} is not supported by the fake API server", request.method);
        let body = status_json(405, "MethodNotAllowed", &message, None);
        return Some((405, JSON.to_owned(), body));
    }
    let details = Some((name, "configmaps"));
    match state.replies.get(&(namespace.to_owned(), name.to_owned())) {
        None => {
            let message = format!("configmaps \"{name}\" not found");
            let body = status_json(404, "NotFound", &message, details);
            Some((404, JSON.to_owned(), body))
        }
        Some(Reply::ConfigMap(data)) => {
            Some((200, JSON.to_owned(), config_map_json(namespace, name, data)))
        }
        Some(Reply::Forbidden) => {
            let message = format!(
                "configmaps \"{name}\" is forbidden: User \"system:serviceaccount:default:fake\" \
                 cannot get resource \"configmaps\" in API group \"\" in the namespace \"{namespace}\""
            );
            let body = status_json(403, "Forbidden", &message, details);
            Some((403, JSON.to_owned(), body))
        }
        Some(Reply::Status {
            code,
            reason,
            message,
        }) => Some((
            *code,
            JSON.to_owned(),
            status_json(*code, reason, message, details),
        )),
        Some(Reply::Raw {
            code,
            content_type,
            body,
        }) => Some((*code, content_type.clone(), body.clone())),
        Some(Reply::Stall) => None,
    }
}

fn stall(shutdown: &AtomicBool) {
    let start = Instant::now();
    while !shutdown.load(Ordering::SeqCst) && start.elapsed() < STALL_LIMIT {
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn write_response(
    writer: &mut TcpStream,
    code: u16,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    let reason = match code {
        200 => "OK",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let head = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    writer.write_all(head.as_bytes())?;
    writer.write_all(body.as_bytes())?;
    writer.flush()
}

fn config_map_json(namespace: &str, name: &str, data: &BTreeMap<String, String>) -> String {
    serde_json::json!({
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": "1"},
        "data": data,
    })
    .to_string()
}

fn status_json(code: u16, reason: &str, message: &str, details: Option<(&str, &str)>) -> String {
    let mut status = serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    });
    if let Some((name, kind)) = details {
        status["details"] = serde_json::json!({"name": name, "kind": kind});
    }
    status.to_string()
}

/// A kubeconfig to write for tests: named contexts, each with its own cluster (server URL) and the
/// user `fake` holding [`FAKE_TOKEN`].
#[derive(Clone, Debug)]
pub struct Kubeconfig {
    contexts: Vec<(String, String)>,
    current: Option<String>,
}

impl Kubeconfig {
    /// A kubeconfig whose only context, `fake` (also the current context), points at `server`.
    pub fn new(server: &str) -> Self {
        Kubeconfig {
            contexts: vec![("fake".to_owned(), server.to_owned())],
            current: Some("fake".to_owned()),
        }
    }

    /// Adds context `name` pointing at `server` (through a cluster of the same name).
    pub fn context(mut self, name: &str, server: &str) -> Self {
        self.contexts.push((name.to_owned(), server.to_owned()));
        self
    }

    /// Sets `current-context` (`None` leaves it out).
    pub fn current(mut self, name: Option<&str>) -> Self {
        self.current = name.map(str::to_owned);
        self
    }

    /// The kubeconfig as YAML.
    pub fn to_yaml(&self) -> String {
        let mut yaml = String::from("apiVersion: v1\nkind: Config\n");
        if let Some(current) = &self.current {
            let _ = writeln!(yaml, "current-context: {current}");
        }
        yaml.push_str("clusters:\n");
        for (name, server) in &self.contexts {
            let _ = writeln!(yaml, "- name: {name}\n  cluster:\n    server: {server}");
        }
        yaml.push_str("contexts:\n");
        for (name, _) in &self.contexts {
            let _ = writeln!(
                yaml,
                "- name: {name}\n  context:\n    cluster: {name}\n    user: fake"
            );
        }
        let _ = writeln!(
            yaml,
            "users:\n- name: fake\n  user:\n    token: {FAKE_TOKEN}"
        );
        yaml
    }

    /// Writes the kubeconfig to `dir/kubeconfig` and returns that path.
    pub fn write(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        std::fs::write(&path, self.to_yaml()).expect("write kubeconfig");
        path
    }
}

/// A fresh directory under the system temp dir, removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `$TMPDIR/kube-inject-test-{pid}-{n}-{nanos}`.
    pub fn new() -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!(
            "kube-inject-test-{}-{n}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod self_tests {
    use super::*;

    fn get(url: &str, path: &str) -> String {
        let addr = url.strip_prefix("http://").unwrap();
        let mut stream = TcpStream::connect(addr).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {FAKE_TOKEN}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        // The server keeps the connection open for keep-alive; read just the one response.
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        let mut length = 0;
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            response.push_str(&line);
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        response.push_str(&String::from_utf8(body).unwrap());
        response
    }

    #[test]
    fn serves_config_maps_and_records_paths() {
        let server = FakeApiServer::with_istio("policy: enabled\n", "a \"quoted\" value");
        let path = config_map_path("istio-system", "istio");
        let response = get(&server.url(), &path);
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(
            response.contains(r#""data":{"mesh":"a \"quoted\" value"}"#),
            "{response}"
        );
        assert_eq!(server.paths(), vec![path]);
        assert_eq!(
            server.requests()[0].authorization.as_deref(),
            Some("Bearer fake-token")
        );
    }

    #[test]
    fn unknown_config_map_is_a_not_found_status() {
        let server = FakeApiServer::start();
        let response = get(&server.url(), &config_map_path("istio-system", "istio"));
        assert!(
            response.starts_with("HTTP/1.1 404 Not Found\r\n"),
            "{response}"
        );
        assert!(response.contains(r#""reason":"NotFound""#), "{response}");
    }

    #[test]
    fn forbidden_config_map_is_a_forbidden_status() {
        let server = FakeApiServer::start();
        server.forbid("istio-system", "istio");
        let response = get(&server.url(), &config_map_path("istio-system", "istio"));
        assert!(
            response.starts_with("HTTP/1.1 403 Forbidden\r\n"),
            "{response}"
        );
        assert!(response.contains(r#""reason":"Forbidden""#), "{response}");
    }

    #[test]
    fn kubeconfig_lists_every_context() {
        let yaml = Kubeconfig::new("http://127.0.0.1:1")
            .context("other", "http://127.0.0.1:2")
            .to_yaml();
        assert!(yaml.contains("current-context: fake\n"), "{yaml}");
        assert!(
            yaml.contains("- name: other\n  cluster:\n    server: http://127.0.0.1:2\n"),
            "{yaml}"
        );
        assert!(yaml.contains("    token: fake-token\n"), "{yaml}");
    }

    #[test]
    fn unreachable_url_refuses_connections() {
        let url = unreachable_url();
        assert!(TcpStream::connect(url.strip_prefix("http://").unwrap()).is_err());
    }
}
