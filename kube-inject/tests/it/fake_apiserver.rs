//! A fake Kubernetes API server on 127.0.0.1 that answers the ConfigMap reads `istioctl
//! kube-inject` makes (`GET /api/v1/namespaces/{ns}/configmaps/{name}`), built on `wiremock`; and
//! kubeconfigs pointing at it.
//!
//! It answers like a real API server where it matters to a client: `200` with the ConfigMap as JSON,
//! `404` and `403` with a `Status` object (`reason: NotFound` / `Forbidden`), and `401` when a bearer
//! token is required and missing. Every request is recorded, so a test can assert what was asked
//! for. The tests are synchronous (they run the binary), so each server keeps a small runtime to
//! drive wiremock's async API; wiremock serves from a thread of its own.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The bearer token that [`Kubeconfig::new`] gives its user and [`FakeApiServer::require_token`] expects.
pub const FAKE_TOKEN: &str = "fake-token";

/// What the server answers for one ConfigMap path.
#[derive(Clone, Debug)]
pub enum Reply {
    /// `200 OK` with a ConfigMap holding these `data` entries.
    ConfigMap(Vec<(String, String)>),
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
}

/// One request the server received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// HTTP method, e.g. `GET`.
    pub method: String,
    /// Path, e.g. `/api/v1/namespaces/istio-system/configmaps/istio`.
    pub path: String,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
}

/// A running fake API server; stops on drop.
pub struct FakeApiServer {
    runtime: tokio::runtime::Runtime,
    server: MockServer,
    /// wiremock answers with the first matching mock of the highest priority (lowest number);
    /// each reply gets a higher one than the last, so a later reply for a ConfigMap replaces an
    /// earlier one. 1 is the token check's, 255 the catch-all 404's.
    next_priority: AtomicU8,
}

impl FakeApiServer {
    /// Starts a server that knows no ConfigMaps yet (every read is a 404).
    pub fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for wiremock");
        let server = runtime.block_on(MockServer::builder().start());
        let fake = FakeApiServer {
            runtime,
            server,
            next_priority: AtomicU8::new(254),
        };
        fake.mount(
            Mock::given(method("GET"))
                .respond_with(|request: &wiremock::Request| not_found(request.url.path()))
                .with_priority(u8::MAX),
        );
        fake
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

    /// Sets the reply for ConfigMap `namespace/name`, replacing any earlier one.
    pub fn reply(&self, namespace: &str, name: &str, reply: Reply) -> &Self {
        let details = Some((name, "configmaps"));
        let response = match reply {
            Reply::ConfigMap(data) => {
                let data: serde_json::Map<String, Value> = data
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect();
                ResponseTemplate::new(200).set_body_json(json!({
                    "kind": "ConfigMap",
                    "apiVersion": "v1",
                    "metadata": {"name": name, "namespace": namespace, "resourceVersion": "1"},
                    "data": data,
                }))
            }
            Reply::Forbidden => status(
                403,
                "Forbidden",
                &format!(
                    "configmaps \"{name}\" is forbidden: User \"system:serviceaccount:default:fake\" \
                     cannot get resource \"configmaps\" in API group \"\" in the namespace \"{namespace}\""
                ),
                details,
            ),
            Reply::Status {
                code,
                reason,
                message,
            } => status(code, &reason, &message, details),
            Reply::Raw {
                code,
                content_type,
                body,
            } => ResponseTemplate::new(code).set_body_raw(body, &content_type),
        };
        let priority = self.next_priority.fetch_sub(1, Ordering::SeqCst);
        assert!(priority > 1, "too many replies for one fake API server");
        self.mount(
            Mock::given(method("GET"))
                .and(path(config_map_path(namespace, name)))
                .respond_with(response)
                .with_priority(priority),
        );
        self
    }

    /// Answers `401 Unauthorized` to any request without `Authorization: Bearer {token}`.
    pub fn require_token(&self, token: &str) -> &Self {
        let expected = format!("Bearer {token}");
        let unauthenticated = move |request: &wiremock::Request| {
            request
                .headers
                .get("authorization")
                .is_none_or(|value| value.as_bytes() != expected.as_bytes())
        };
        self.mount(
            Mock::given(unauthenticated)
                .respond_with(status(401, "Unauthorized", "Unauthorized", None))
                .with_priority(1),
        );
        self
    }

    /// The base URL to put in a kubeconfig, e.g. `http://127.0.0.1:38211`.
    pub fn url(&self) -> String {
        self.server.uri()
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        let received = self.runtime.block_on(self.server.received_requests());
        received
            .expect("wiremock records requests by default")
            .into_iter()
            .map(|request| Request {
                method: request.method.to_string(),
                path: request.url.path().to_owned(),
                authorization: request
                    .headers
                    .get("authorization")
                    .and_then(|value| value.to_str().ok())
                    .map(str::to_owned),
            })
            .collect()
    }

    /// The paths of every request received so far, in order.
    pub fn paths(&self) -> Vec<String> {
        self.requests().into_iter().map(|r| r.path).collect()
    }

    fn mount(&self, mock: Mock) {
        self.runtime.block_on(mock.mount(&self.server));
    }
}

/// The path a client reads ConfigMap `namespace/name` from.
pub fn config_map_path(namespace: &str, name: &str) -> String {
    format!("/api/v1/namespaces/{namespace}/configmaps/{name}")
}

/// A URL where nothing listens: binds a port on 127.0.0.1, then frees it.
pub fn unreachable_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    drop(listener);
    format!("http://{addr}")
}

/// A server that answers every request with the start of a `200` whose body never finishes: the
/// headers promise more than is sent, then the connection is closed (a proxy or API server that
/// dies mid-response). Serves until the test process ends.
pub fn dropping_url() -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"data\":{\"conf",
            );
            let _ = stream.flush();
            // Dropping the stream closes the connection with the body unfinished.
        }
    });
    format!("http://{addr}")
}

/// The API server's `404` for `path`: a missing ConfigMap is named like the real server names it.
fn not_found(path: &str) -> ResponseTemplate {
    let name = path
        .strip_prefix("/api/v1/namespaces/")
        .and_then(|rest| rest.split_once("/configmaps/"))
        .map(|(_, name)| name);
    match name {
        Some(name) => status(
            404,
            "NotFound",
            &format!("configmaps \"{name}\" not found"),
            Some((name, "configmaps")),
        ),
        None => status(
            404,
            "NotFound",
            "the server could not find the requested resource",
            None,
        ),
    }
}

/// A response with a Kubernetes `Status` body, as the API server sends for every error.
fn status(
    code: u16,
    reason: &str,
    message: &str,
    details: Option<(&str, &str)>,
) -> ResponseTemplate {
    let mut body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    });
    if let Some((name, kind)) = details {
        body["details"] = json!({"name": name, "kind": kind});
    }
    ResponseTemplate::new(code).set_body_json(body)
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

    /// Writes the kubeconfig to `dir/kubeconfig` and returns that path.
    pub fn write(&self, dir: &Path) -> PathBuf {
        let cluster = |(name, server): &(String, String)| json!({"name": name, "cluster": {"server": server}});
        let context = |(name, _): &(String, String)| json!({"name": name, "context": {"cluster": name, "user": "fake"}});
        let mut kubeconfig = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": self.contexts.iter().map(cluster).collect::<Vec<_>>(),
            "contexts": self.contexts.iter().map(context).collect::<Vec<_>>(),
            "users": [{"name": "fake", "user": {"token": FAKE_TOKEN}}],
        });
        if let Some(current) = &self.current {
            kubeconfig["current-context"] = json!(current);
        }
        let path = dir.join("kubeconfig");
        let yaml = serde_yaml::to_string(&kubeconfig).expect("a kubeconfig as YAML");
        std::fs::write(&path, yaml).expect("write kubeconfig");
        path
    }
}
