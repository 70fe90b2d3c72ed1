//! Multi-document YAML manifests for `kube-inject`: split, find each workload's pod template,
//! apply one operation per pod (inject, uninject, …), join.
//!
//! Port of Istio's `IntoResourceFile` / `IntoObject` (pkg/kube/inject/inject.go) and of the kinds
//! its `injectScheme` registers (pkg/kube/inject/initializer.go), see [`KINDS`]:
//!
//! - The input is split *textually* on document markers, so a document that is not changed is
//!   written back byte for byte, comments included.
//! - Each document is parsed into a `serde_json::Value` (key order kept); its `kind` and
//!   `apiVersion` say where its pods are. A kind registered for another `apiVersion`, and any
//!   other kind, passes through unchanged.
//! - The caller's operation runs on every pod or pod template ([`process`]); [`inject`] and
//!   [`uninject`] are the two operations the CLI uses, [`objects`] feeds the requirement checks.
//! - A changed document is written again by this module's YAML writer ([`to_yaml`]), which keeps
//!   key order. Its leading comment lines are kept; comments inside it are not.
//!
//! Documents are numbered **from 1**, in input order, counting only documents that hold something:
//! blank documents are dropped from the output, and documents holding only comments are written
//! back as they are without a number. Every error and warning names the document by that number
//! and, where known, its kind and name: `document 2 (Deployment sleep)`.
//!
//! # Differences from Istio
//! - Documents are joined with `---` lines *between* them; Istio writes `---` after every
//!   document. A single document therefore comes out without any marker, and re-running on the
//!   output splits it into the same documents.
//! - A changed document keeps its key order and its leading comment lines; Istio re-marshals the
//!   typed object (keys sorted, comments lost, `creationTimestamp: null`, `status: {}` added).
//! - A document whose `kind` is injectable but whose `apiVersion` is not the registered one (e.g. an
//!   `extensions/v1beta1` Deployment) gets a warning; Istio passes it through silently
//!   (istio/istio#6731 was the same surprise for `kind: Pod`).
//! - A document with only comments is written back unchanged; Istio fails on it (no `kind`).
//! - Documents are read as YAML 1.2 (`yes`, `on` are strings), as `serde_yaml` does; kubectl reads
//!   YAML 1.1. The writer quotes every string YAML 1.1 would read as something else, so what is
//!   written means the same to both; a bare `yes` in a *changed* document becomes `"yes"`.

use std::borrow::Cow;
use std::fmt;

use serde_json::Value;

use crate::inject::{self, Uninjection};

mod yaml;
use crate::injector::{Injector, Outcome};
pub use yaml::to_yaml;

/// Where a registered kind keeps its pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodsAt {
    /// The object is the pod (`kind: Pod`).
    Object,
    /// The pod template sits at this path of map keys, e.g. `spec.template`.
    Template(&'static [&'static str]),
    /// A `List`: each of `items` is handled as an object of its own.
    Items,
}

/// One entry of the kind table: a `kind` for exactly one `apiVersion`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    /// The `apiVersion` the kind is registered for.
    pub api_version: &'static str,
    /// The `kind`.
    pub kind: &'static str,
    /// Where its pods are.
    pub pods: PodsAt,
}

const SPEC_TEMPLATE: PodsAt = PodsAt::Template(&["spec", "template"]);

const fn kind(api_version: &'static str, kind: &'static str, pods: PodsAt) -> Kind {
    Kind {
        api_version,
        kind,
        pods,
    }
}

/// The kinds `kube-inject` handles: Istio master's `injectScheme` (plus the legacy `v1`
/// DeploymentConfig Istio registered from 0.6). Anything else passes through unchanged.
pub const KINDS: &[Kind] = &[
    kind("v1", "Pod", PodsAt::Object),
    kind("v1", "ReplicationController", SPEC_TEMPLATE),
    kind("v1", "List", PodsAt::Items),
    kind("apps/v1", "Deployment", SPEC_TEMPLATE),
    kind("apps/v1", "StatefulSet", SPEC_TEMPLATE),
    kind("apps/v1", "DaemonSet", SPEC_TEMPLATE),
    kind("apps/v1", "ReplicaSet", SPEC_TEMPLATE),
    kind("batch/v1", "Job", SPEC_TEMPLATE),
    kind(
        "batch/v1",
        "CronJob",
        PodsAt::Template(&["spec", "jobTemplate", "spec", "template"]),
    ),
    kind("apps.openshift.io/v1", "DeploymentConfig", SPEC_TEMPLATE),
    kind("v1", "DeploymentConfig", SPEC_TEMPLATE),
];

/// The table entry for `apiVersion` + `kind`, if that pair is handled.
pub fn lookup(api_version: &str, kind: &str) -> Option<&'static Kind> {
    KINDS
        .iter()
        .find(|k| k.api_version == api_version && k.kind == kind)
}

/// A pod or pod template the operation is applied to, and where it sits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// The document's number, from 1.
    pub document: usize,
    /// Path of the `List` item holding the object (`items[0]`), if it is one.
    pub item: Option<String>,
    /// The object's `kind`.
    pub kind: String,
    /// The object's `metadata.name`.
    pub name: Option<String>,
    /// The object's `metadata.namespace`: the namespace the injection decision uses.
    pub namespace: Option<String>,
    /// Path of the pod inside the object (`spec.template`; empty for a Pod).
    pub path: String,
}

impl fmt::Display for Workload {
    /// `document 2 (Deployment sleep)`, `document 4 (List items[0]: Deployment web)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "document {} (", self.document)?;
        if let Some(item) = &self.item {
            write!(f, "List {item}: ")?;
        }
        f.write_str(&self.kind)?;
        if let Some(name) = &self.name {
            write!(f, " {name}")?;
        }
        f.write_str(")")
    }
}

/// What an operation did to one pod.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodChange {
    /// Whether the pod was modified. When false the document is written back as it was read,
    /// even if the operation touched the value.
    pub changed: bool,
    /// Messages for the user; the walker prefixes them with the workload.
    pub warnings: Vec<String>,
}

/// Why a manifest could not be processed. Every variant names the document (from 1).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// A document is not YAML; the parser's error carries the line and column in the input.
    #[error("document {index} (from line {line}): not valid YAML")]
    InvalidYaml {
        /// The document's number, from 1.
        index: usize,
        /// The input line the document starts on, from 1.
        line: usize,
        /// The parser's error, positioned in the whole input.
        #[source]
        source: serde_yaml::Error,
    },
    /// A document is a list or a scalar, not a Kubernetes object.
    #[error("document {index} (from line {line}) is {found}, not a Kubernetes object")]
    NotAnObject {
        /// The document's number, from 1.
        index: usize,
        /// The input line the document starts on, from 1.
        line: usize,
        /// What it is, e.g. `a list`.
        found: &'static str,
    },
    /// A document, or an item of a `List`, has no `kind` (or one that is not a string).
    #[error("document {index} (from line {line}){}: no `kind`; every Kubernetes object needs one, e.g. `kind: Deployment`", at.as_deref().map(|at| format!(", {at}")).unwrap_or_default())]
    MissingKind {
        /// The document's number, from 1.
        index: usize,
        /// The input line the document starts on, from 1.
        line: usize,
        /// The `List` item without a kind (`items[1]`), if it is one.
        at: Option<String>,
    },
    /// A workload has no pod template where its kind keeps it.
    #[error("{workload}: {} is missing or not an object; a {} needs a pod template there", workload.path, workload.kind)]
    MissingTemplate {
        /// The workload.
        workload: Box<Workload>,
    },
    /// The operation failed on a pod; the cause says why (template error, name clash…).
    #[error("{workload}{}", if workload.path.is_empty() { String::new() } else { format!(": {}", workload.path) })]
    Pod {
        /// The workload.
        workload: Box<Workload>,
        /// What the operation reported.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// A changed document did not read back as the value written (a bug in the writer).
    #[error(
        "document {index}: the rewritten document does not read back the same ({reason}); please report this with the input"
    )]
    Rewrite {
        /// The document's number, from 1.
        index: usize,
        /// What differed or failed.
        reason: String,
    },
}

/// One document of the output, with what happened to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document<'a> {
    /// The document's number, from 1; `None` for a document holding only comments.
    pub index: Option<usize>,
    /// The input line the document starts on, from 1.
    pub line: usize,
    /// The object's `kind`.
    pub kind: Option<String>,
    /// The object's `metadata.name`.
    pub name: Option<String>,
    /// The document as read (without the `---` line before it).
    pub original: &'a str,
    /// The document as written: `original` when unchanged.
    pub output: Cow<'a, str>,
    /// Whether the operation changed it.
    pub changed: bool,
    /// Messages for the user, each starting with the workload (`document 2 (DaemonSet x): …`).
    pub warnings: Vec<String>,
}

impl Document<'_> {
    /// `document 2 (Deployment sleep)`, or `comments at line 1` for a comment-only document.
    pub fn label(&self) -> String {
        let Some(index) = self.index else {
            return format!("comments at line {}", self.line);
        };
        let mut label = format!("document {index}");
        if let Some(kind) = &self.kind {
            label.push_str(" (");
            label.push_str(kind);
            if let Some(name) = &self.name {
                label.push(' ');
                label.push_str(name);
            }
            label.push(')');
        }
        label
    }
}

/// A processed manifest: the documents in input order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest<'a> {
    /// Every non-blank document of the input.
    pub documents: Vec<Document<'a>>,
}

impl Manifest<'_> {
    /// The output: documents in order, `---` between them, ending with a newline.
    pub fn to_yaml(&self) -> String {
        let mut out = String::new();
        for (i, document) in self.documents.iter().enumerate() {
            if i > 0 {
                if !out.ends_with('\n') {
                    out.push('\n');
                }
                // A document that opens with its own `--- content` line needs no other marker.
                if !first_line_is_start_marker(&document.output) {
                    out.push_str("---\n");
                }
            }
            out.push_str(&document.output);
        }
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out
    }

    /// Whether any document changed.
    pub fn changed(&self) -> bool {
        self.documents.iter().any(|d| d.changed)
    }

    /// Every warning, in document order.
    pub fn warnings(&self) -> impl Iterator<Item = &str> {
        self.documents
            .iter()
            .flat_map(|d| d.warnings.iter().map(String::as_str))
    }
}

/// Injects every pod template of the manifest with `injector`.
///
/// Pods the rules skip are left as they are, with a warning saying why (`skipping injection: the
/// pod has host networking enabled (spec.hostNetwork)`); so are documents already carrying
/// exactly this injection, which makes a second run a no-op. An older injection is replaced.
pub fn inject<'a>(input: &'a str, injector: &Injector) -> Result<Manifest<'a>, ManifestError> {
    process(input, |pod, workload| {
        match injector.inject(pod, workload.namespace.as_deref())? {
            Outcome::Skipped(decision) => {
                let mut warnings = decision.warnings.clone();
                warnings.push(decision.to_string());
                Ok::<_, crate::injector::InjectionError>(PodChange {
                    changed: false,
                    warnings,
                })
            }
            Outcome::Injected {
                decision, changed, ..
            } => Ok(PodChange {
                changed,
                warnings: decision.warnings,
            }),
        }
    })
}

/// Removes the sidecar from every pod template of the manifest ([`inject::uninject`]).
///
/// What the status annotation lists is removed; a pod with an `istio-proxy` container but no
/// status annotation loses Istio's well-known names, with a warning saying so.
pub fn uninject(input: &str) -> Result<Manifest<'_>, ManifestError> {
    process(input, |pod, _| match inject::uninject(pod)? {
        Uninjection::FromStatus(_) => Ok::<_, inject::InjectError>(PodChange {
            changed: true,
            warnings: Vec::new(),
        }),
        Uninjection::WellKnownNames(status) => {
            let names: Vec<&str> = status
                .init_containers
                .iter()
                .chain(&status.containers)
                .chain(&status.volumes)
                .map(String::as_str)
                .collect();
            Ok(PodChange {
                changed: true,
                warnings: vec![format!(
                    "no {} annotation; removed Istio's well-known names where present ({})",
                    inject::STATUS_ANNOTATION,
                    names.join(", ")
                )],
            })
        }
        Uninjection::NotInjected => Ok(PodChange::default()),
    })
}

/// The objects of the manifest with their document numbers, as
/// [`check_bundle`](crate::requirements::check_bundle) takes them.
pub fn objects(input: &str) -> Result<Vec<(usize, Value)>, ManifestError> {
    let mut out = Vec::new();
    for chunk in numbered(split(input)) {
        if let Some((index, value)) = parse(&chunk)? {
            out.push((index, value));
        }
    }
    Ok(out)
}

/// Applies `op` to every pod and pod template of the manifest; see the module docs.
///
/// `op` gets the pod (a Pod, or the `{metadata, spec}` template inside a workload) and where it
/// sits; the namespace the injection decision needs is [`Workload::namespace`]. An error from
/// `op` stops the run: nothing is returned but the error, naming the document.
pub fn process<E, F>(input: &str, mut op: F) -> Result<Manifest<'_>, ManifestError>
where
    E: std::error::Error + Send + Sync + 'static,
    F: FnMut(&mut Value, &Workload) -> Result<PodChange, E>,
{
    let mut documents = Vec::new();
    for chunk in numbered(split(input)) {
        let Some((index, mut value)) = parse(&chunk)? else {
            documents.push(Document {
                index: None,
                line: chunk.line,
                kind: None,
                name: None,
                original: chunk.text,
                output: Cow::Borrowed(chunk.text),
                changed: false,
                warnings: Vec::new(),
            });
            continue;
        };
        let kind = str_at(&value, &["kind"]).map(str::to_string);
        let name = str_at(&value, &["metadata", "name"]).map(str::to_string);
        let mut warnings = Vec::new();
        let changed = walk(&mut value, index, chunk.line, None, &mut op, &mut warnings)?;
        let output = if changed {
            let mut text = leading_comments(chunk.text).to_string();
            text.push_str(&rewrite(&value, index)?);
            Cow::Owned(text)
        } else {
            Cow::Borrowed(chunk.text)
        };
        documents.push(Document {
            index: Some(index),
            line: chunk.line,
            kind,
            name,
            original: chunk.text,
            output,
            changed,
            warnings,
        });
    }
    Ok(Manifest { documents })
}

/// Finds the pods of one object and applies `op`; returns whether anything changed.
fn walk<E, F>(
    object: &mut Value,
    index: usize,
    line: usize,
    item: Option<String>,
    op: &mut F,
    warnings: &mut Vec<String>,
) -> Result<bool, ManifestError>
where
    E: std::error::Error + Send + Sync + 'static,
    F: FnMut(&mut Value, &Workload) -> Result<PodChange, E>,
{
    let Some(kind) = str_at(object, &["kind"]).filter(|k| !k.is_empty()) else {
        return Err(ManifestError::MissingKind {
            index,
            line,
            at: item,
        });
    };
    let api_version = str_at(object, &["apiVersion"]).unwrap_or("");
    let mut workload = Workload {
        document: index,
        item,
        kind: kind.to_string(),
        name: str_at(object, &["metadata", "name"]).map(str::to_string),
        namespace: str_at(object, &["metadata", "namespace"])
            .filter(|ns| !ns.is_empty())
            .map(str::to_string),
        path: String::new(),
    };
    let Some(registered) = lookup(api_version, kind) else {
        let versions: Vec<&str> = KINDS
            .iter()
            .filter(|k| k.kind == kind)
            .map(|k| k.api_version)
            .collect();
        if !versions.is_empty() {
            let api_version = if api_version.is_empty() {
                "(none)"
            } else {
                api_version
            };
            warnings.push(format!(
                "{workload}: apiVersion {api_version} is not injected ({kind} is injected as {}); passed through unchanged",
                versions.join(" or ")
            ));
        }
        return Ok(false);
    };
    let pod = match registered.pods {
        PodsAt::Items => {
            let prefix = workload.item.clone();
            let Some(Value::Array(items)) = object.get_mut("items") else {
                return Ok(false);
            };
            let mut changed = false;
            for (i, item) in items.iter_mut().enumerate() {
                let path = match &prefix {
                    Some(prefix) => format!("{prefix}.items[{i}]"),
                    None => format!("items[{i}]"),
                };
                changed |= walk(item, index, line, Some(path), op, warnings)?;
            }
            return Ok(changed);
        }
        PodsAt::Object => object,
        PodsAt::Template(path) => {
            workload.path = path.join(".");
            match path.iter().try_fold(object, |v, key| v.get_mut(*key)) {
                Some(pod @ Value::Object(_)) => pod,
                _ => {
                    return Err(ManifestError::MissingTemplate {
                        workload: Box::new(workload),
                    });
                }
            }
        }
    };
    let change = op(pod, &workload).map_err(|source| ManifestError::Pod {
        workload: Box::new(workload.clone()),
        source: Box::new(source),
    })?;
    warnings.extend(
        change
            .warnings
            .into_iter()
            .map(|w| format!("{workload}: {w}")),
    );
    Ok(change.changed)
}

/// A piece of the input between document markers.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Chunk<'a> {
    /// The text, with an opening `--- content` line if it had one.
    text: &'a str,
    /// The input line it starts on, from 1.
    line: usize,
    /// Its document number, once known to hold something.
    index: usize,
}

/// Splits the input into documents as `k8s.io/apimachinery`'s YAMLReader does, but keeping the
/// text: a line `---` (alone, or followed by whitespace) separates documents and is dropped; a
/// line `--- content` starts a document and stays in it; a line `...` ends the document it is
/// in. Markers only count at column 0. Blank documents are dropped.
fn split(input: &str) -> Vec<Chunk<'_>> {
    let mut chunks = Vec::new();
    let mut start = 0; // byte offset of the current chunk
    let mut start_line = 1;
    let mut offset = 0;
    let mut push = |from: usize, to: usize, line: usize| {
        let text = &input[from..to];
        if !text.trim().is_empty() {
            chunks.push(Chunk {
                text,
                line,
                index: 0,
            });
        }
    };
    for (n, line) in input.split_inclusive('\n').enumerate() {
        let line_no = n + 1;
        let end = offset + line.len();
        let content = line.trim_end_matches(['\n', '\r']);
        if let Some(rest) = marker(content, "---") {
            push(start, offset, start_line);
            if rest.trim().is_empty() {
                start = end;
                start_line = line_no + 1;
            } else {
                start = offset;
                start_line = line_no;
            }
        } else if marker(content, "...").is_some() {
            push(start, end, start_line);
            start = end;
            start_line = line_no + 1;
        }
        offset = end;
    }
    push(start, input.len(), start_line);
    chunks
}

/// The rest of the line after a `---`/`...` marker, if the line is one.
fn marker<'l>(line: &'l str, marker: &str) -> Option<&'l str> {
    let rest = line.strip_prefix(marker)?;
    (rest.is_empty() || rest.starts_with([' ', '\t'])).then_some(rest)
}

fn first_line_is_start_marker(text: &str) -> bool {
    let first = text.split('\n').next().unwrap_or("");
    marker(first.trim_end_matches('\r'), "---").is_some()
}

/// Numbers the chunks that hold something, from 1 (a cheap textual test; parsing confirms it).
fn numbered(chunks: Vec<Chunk<'_>>) -> Vec<Chunk<'_>> {
    let mut next = 0;
    chunks
        .into_iter()
        .map(|mut chunk| {
            if !only_comments(chunk.text) {
                next += 1;
                chunk.index = next;
            }
            chunk
        })
        .collect()
}

/// Whether every line is blank, a comment, or a bare marker (`--- # note`, `...`).
fn only_comments(text: &str) -> bool {
    text.lines().all(|line| {
        let line = marker(line, "---")
            .or_else(|| marker(line, "..."))
            .unwrap_or(line)
            .trim();
        line.is_empty() || line.starts_with('#')
    })
}

/// The leading blank and comment lines of a document, with an opening `--- # comment` line
/// (kept when the document is rewritten).
fn leading_comments(text: &str) -> &str {
    let mut end = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let content = line.trim_end_matches(['\n', '\r']);
        let content = match marker(content, "---") {
            Some(rest) if i == 0 => rest,
            _ => content,
        };
        let trimmed = content.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            end += line.len();
        } else {
            break;
        }
    }
    &text[..end]
}

/// Parses one chunk; `None` for a chunk holding only comments.
fn parse(chunk: &Chunk<'_>) -> Result<Option<(usize, Value)>, ManifestError> {
    if chunk.index == 0 {
        return Ok(None);
    }
    let index = chunk.index;
    let line = chunk.line;
    let value: Value = serde_yaml::from_str(chunk.text).map_err(|_| {
        // Parse again behind blank lines so the error's position is the input's, not the chunk's.
        let padded = "\n".repeat(line - 1) + chunk.text;
        let source = serde_yaml::from_str::<Value>(&padded)
            .err()
            .unwrap_or_else(|| serde::de::Error::custom("unreadable document"));
        ManifestError::InvalidYaml {
            index,
            line,
            source,
        }
    })?;
    match value {
        Value::Object(_) => {
            if str_at(&value, &["kind"]).is_none_or(str::is_empty) {
                return Err(ManifestError::MissingKind {
                    index,
                    line,
                    at: None,
                });
            }
            Ok(Some((index, value)))
        }
        // `null`, `~`: nothing there.
        Value::Null => Ok(None),
        other => Err(ManifestError::NotAnObject {
            index,
            line,
            found: crate::config::kind_of(&other),
        }),
    }
}

/// Writes a changed document and checks that it reads back as the same value.
fn rewrite(value: &Value, index: usize) -> Result<String, ManifestError> {
    let text = to_yaml(value);
    match serde_yaml::from_str::<Value>(&text) {
        Ok(back) if back == *value => Ok(text),
        Ok(_) => Err(ManifestError::Rewrite {
            index,
            reason: "values differ".into(),
        }),
        Err(e) => Err(ManifestError::Rewrite {
            index,
            reason: e.to_string(),
        }),
    }
}

fn str_at<'v>(value: &'v Value, path: &[&str]) -> Option<&'v str> {
    path.iter()
        .try_fold(value, |v, key| v.get(*key))
        .and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, InjectorConfig};
    use serde_json::json;

    const SLEEP: &str = include_str!("../../samples/sleep/sleep.yaml");

    fn builtin() -> Injector {
        Injector::new(Config::default()).unwrap()
    }

    /// The sleep sample's first document (comments and Service), as written.
    fn manifest_service() -> &'static str {
        &SLEEP[..SLEEP.find("---\n").unwrap()]
    }

    fn texts<'a>(chunks: &[Chunk<'a>]) -> Vec<&'a str> {
        chunks.iter().map(|c| c.text).collect()
    }

    /// An operation that marks every pod it sees.
    fn mark(pod: &mut Value, _: &Workload) -> Result<PodChange, std::convert::Infallible> {
        pod["metadata"]["annotations"] = json!({"marked": "yes"});
        Ok(PodChange {
            changed: true,
            warnings: vec!["marked".into()],
        })
    }

    #[test]
    fn split_drops_bare_markers_and_blank_documents() {
        let chunks = split("---\na: 1\n---   \n\n---\nb: 2\n");
        assert_eq!(texts(&chunks), ["a: 1\n", "b: 2\n"]);
        assert_eq!(chunks[0].line, 2);
        assert_eq!(chunks[1].line, 6);
    }

    #[test]
    fn split_keeps_a_start_marker_with_content() {
        let chunks = split("a: 1\n--- {b: 2}\n--- # note\nc: 3\n");
        assert_eq!(
            texts(&chunks),
            ["a: 1\n", "--- {b: 2}\n", "--- # note\nc: 3\n"]
        );
    }

    #[test]
    fn split_ends_a_document_at_an_end_marker() {
        let chunks = split("a: 1\n...\nb: 2\n");
        assert_eq!(texts(&chunks), ["a: 1\n...\n", "b: 2\n"]);
    }

    #[test]
    fn split_ignores_indented_and_longer_dashes() {
        let chunks = split("a: |\n  ---\n----\nb: ---x\n");
        assert_eq!(chunks.len(), 1);
    }

    #[test]
    fn split_handles_crlf_and_missing_final_newline() {
        let chunks = split("a: 1\r\n---\r\nb: 2");
        assert_eq!(texts(&chunks), ["a: 1\r\n", "b: 2"]);
    }

    #[test]
    fn documents_are_numbered_from_one_skipping_comment_only_ones() {
        let manifest = process("# header\n---\nkind: A\n---\nkind: B\n", mark).unwrap();
        let indexes: Vec<_> = manifest.documents.iter().map(|d| d.index).collect();
        assert_eq!(indexes, [None, Some(1), Some(2)]);
    }

    #[test]
    fn unregistered_documents_pass_through_byte_for_byte() {
        let input = "# a comment\napiVersion: v1\nkind: ConfigMap   # odd spacing\ndata: {k: v}\n---\napiVersion: example.com/v1\nkind: Widget\n";
        let manifest = process(input, mark).unwrap();
        assert!(!manifest.changed());
        assert_eq!(manifest.to_yaml(), input);
    }

    #[test]
    fn a_deployment_on_another_api_version_passes_through_with_a_warning() {
        let input = "apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata: {name: old}\nspec:\n  template:\n    spec: {containers: [{name: a}]}\n";
        let manifest = process(input, mark).unwrap();
        assert_eq!(manifest.to_yaml(), input);
        let warnings: Vec<_> = manifest.warnings().collect();
        assert_eq!(
            warnings,
            [
                "document 1 (Deployment old): apiVersion extensions/v1beta1 is not injected (Deployment is injected as apps/v1); passed through unchanged"
            ]
        );
    }

    #[test]
    fn every_registered_kind_reaches_its_pod() {
        for k in KINDS.iter().filter(|k| k.pods != PodsAt::Items) {
            let pod = json!({"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "a"}]}});
            let mut object =
                json!({"apiVersion": k.api_version, "kind": k.kind, "metadata": {"name": "w"}});
            match k.pods {
                PodsAt::Object => {
                    object["spec"] = pod["spec"].clone();
                }
                PodsAt::Template(path) => {
                    let pointer: String = path.iter().map(|p| format!("/{p}")).collect();
                    let mut holder = json!({});
                    let mut at = &mut holder;
                    for key in path {
                        at = at
                            .as_object_mut()
                            .unwrap()
                            .entry(key.to_string())
                            .or_insert(json!({}));
                    }
                    *at = pod.clone();
                    object["spec"] = holder["spec"].clone();
                    assert!(object.pointer(&pointer).is_some());
                }
                PodsAt::Items => unreachable!(),
            }
            let input = to_yaml(&object);
            let mut seen = Vec::new();
            let manifest = process(&input, |pod, w| {
                seen.push(w.path.clone());
                mark(pod, w)
            })
            .unwrap();
            assert!(manifest.changed(), "{}/{}", k.api_version, k.kind);
            assert!(
                manifest.to_yaml().contains("marked: 'yes'"),
                "{}",
                manifest.to_yaml()
            );
            assert_eq!(seen.len(), 1);
        }
    }

    #[test]
    fn list_items_are_walked_and_named() {
        let input = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: apps/v1\n  kind: Deployment\n  metadata: {name: web}\n  spec:\n    template:\n      spec: {containers: [{name: a}]}\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: cfg}\n";
        let manifest = process(input, mark).unwrap();
        assert!(manifest.changed());
        let warnings: Vec<_> = manifest.warnings().collect();
        assert_eq!(
            warnings,
            ["document 1 (List items[0]: Deployment web): marked"]
        );
        let out: Value = serde_yaml::from_str(&manifest.to_yaml()).unwrap();
        assert_eq!(
            out["items"][0]["spec"]["template"]["metadata"]["annotations"]["marked"],
            "yes"
        );
        assert_eq!(out["items"][1]["metadata"]["name"], "cfg");
    }

    #[test]
    fn namespace_comes_from_the_object() {
        let input = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a, namespace: kube-system}\nspec: {template: {spec: {containers: [{name: a}]}}}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: b}\nspec: {containers: [{name: b}]}\n";
        let mut seen = Vec::new();
        process(input, |pod, w| {
            seen.push(w.namespace.clone());
            mark(pod, w)
        })
        .unwrap();
        assert_eq!(seen, [Some("kube-system".to_string()), None]);
    }

    #[test]
    fn errors_name_the_document() {
        let bad = "kind: A\n---\na: [\n";
        let err = process(bad, mark).unwrap_err();
        assert!(
            matches!(
                err,
                ManifestError::InvalidYaml {
                    index: 2,
                    line: 3,
                    ..
                }
            ),
            "{err:?}"
        );
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert!(source.contains("line 4"), "{source}");

        let err = process("kind: A\n---\nmetadata: {}\n", mark).unwrap_err();
        assert_eq!(
            err.to_string(),
            "document 2 (from line 3): no `kind`; every Kubernetes object needs one, e.g. `kind: Deployment`"
        );
        let err = process("- a\n", mark).unwrap_err();
        assert_eq!(
            err.to_string(),
            "document 1 (from line 1) is a list, not a Kubernetes object"
        );
        let err = process("apiVersion: v1\nkind: List\nitems: [{a: 1}]\n", mark).unwrap_err();
        assert!(err.to_string().contains(", items[0]: no `kind`"), "{err}");
        let err = process(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {}\n",
            mark,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "document 1 (Deployment x): spec.template is missing or not an object; a Deployment needs a pod template there"
        );
    }

    #[test]
    fn operation_errors_keep_their_cause() {
        let config = Config {
            injector: InjectorConfig {
                template: "containers: [{name: x, image: '{{ Nope.nothing }}'}]".into(),
                ..InjectorConfig::default()
            },
            ..Config::default()
        };
        let injector = Injector::new(config).unwrap();
        let err = inject(SLEEP, &injector).unwrap_err();
        assert_eq!(
            err.to_string(),
            "document 2 (Deployment sleep): spec.template"
        );
        let cause = std::error::Error::source(&err).unwrap().to_string();
        assert!(cause.contains("line 1, column"), "{cause}");
    }

    #[test]
    fn inject_sleep_changes_only_the_deployment() {
        let manifest = inject(SLEEP, &builtin()).unwrap();
        let service = &manifest.documents[0];
        assert!(!service.changed);
        assert_eq!(service.output, service.original);
        assert!(manifest.documents[1].changed);
        let out = manifest.to_yaml();
        assert!(out.starts_with(service.original), "{out}");
        let docs: Vec<Value> = serde_yaml::Deserializer::from_str(&out)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .collect();
        let containers = &docs[1]["spec"]["template"]["spec"]["containers"];
        assert_eq!(containers[1]["name"], "istio-proxy");
    }

    #[test]
    fn inject_is_idempotent_on_its_output_byte_for_byte() {
        let injector = builtin();
        let once = inject(SLEEP, &injector).unwrap().to_yaml();
        let twice = inject(&once, &injector).unwrap();
        assert!(!twice.changed());
        assert_eq!(twice.to_yaml(), once);
    }

    #[test]
    fn uninject_restores_the_data() {
        let injected = inject(SLEEP, &builtin()).unwrap().to_yaml();
        let restored = uninject(&injected).unwrap().to_yaml();
        assert_eq!(objects(&restored).unwrap(), objects(SLEEP).unwrap());
        // The Service is untouched and the rewritten Deployment keeps its leading comment lines;
        // only its layout is the writer's (`command: [..]` becomes a block list).
        assert!(restored.starts_with(manifest_service()), "{restored}");
    }

    #[test]
    fn skipped_pods_are_warned_and_untouched() {
        let input = "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: agent}\nspec:\n  template:\n    spec: {hostNetwork: true, containers: [{name: a}]}\n";
        let manifest = inject(input, &builtin()).unwrap();
        assert_eq!(manifest.to_yaml(), input);
        let warnings: Vec<_> = manifest.warnings().collect();
        assert_eq!(
            warnings,
            [
                "document 1 (DaemonSet agent): skipping injection: the pod has host networking enabled (spec.hostNetwork)"
            ]
        );
    }

    #[test]
    fn output_joins_with_markers_between_documents() {
        let manifest = process("kind: A\n---\n--- {kind: B}\n---\nkind: C", mark).unwrap();
        assert_eq!(manifest.to_yaml(), "kind: A\n--- {kind: B}\n---\nkind: C\n");
    }

    #[test]
    fn a_rewritten_document_keeps_its_leading_comments_and_marker_comment() {
        let input =
            "kind: A\n--- # note\n# about b\napiVersion: v1\nkind: Pod\nspec: {containers: []}\n";
        let manifest = process(input, mark).unwrap();
        let out = manifest.to_yaml();
        assert!(
            out.starts_with("kind: A\n--- # note\n# about b\napiVersion: v1\nkind: Pod\n"),
            "{out}"
        );
        // The output splits into the same documents again.
        assert_eq!(objects(&out).unwrap().len(), 2);
    }

    #[test]
    fn empty_input_gives_empty_output() {
        for input in ["", "\n", "---\n", "---\n---\n\n"] {
            let manifest = process(input, mark).unwrap();
            assert!(manifest.documents.is_empty(), "{input:?}");
            assert_eq!(manifest.to_yaml(), "");
        }
    }

    #[test]
    fn yaml_writer_quotes_what_yaml_1_1_would_misread() {
        let tricky = [
            "yes",
            "No",
            "on",
            "OFF",
            "y",
            "n",
            "true",
            "null",
            "~",
            "",
            "-",
            "- x",
            "0777",
            "1.0",
            "1e3",
            "12:30",
            ".inf",
            "-1",
            "+1",
            "=",
            "<<",
            "a: b",
            "a #b",
            "#x",
            "'q'",
            "\"q\"",
            "{x}",
            "[x]",
            "*a",
            "&a",
            "!t",
            "%d",
            "@x",
            "`x",
            "|",
            ">",
            "?",
            ":x",
            "x:",
            " x",
            "x ",
            "é",
            "\u{2028}",
            "\u{7f}",
            "tab\there",
            "a\nb",
            "a\nb\n",
            "a\n\n",
            "\nlead",
            "  indented\nx",
            "x\n  \ny",
            "\r\n",
            "ends\\",
            "--flag",
            "-p",
            "$(POD_NAME)",
            "/bin/sleep",
            "http://x:80/y",
            "istio.io/proxy:0.5.0",
        ];
        let value = Value::Object(
            tricky
                .iter()
                .map(|s| (s.to_string(), json!([s, {"k": s}])))
                .collect(),
        );
        let text = to_yaml(&value);
        let back: Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(back, value, "{text}");
        for word in ["yes", "No", "on", "OFF", "y", "n"] {
            assert!(text.contains(&format!("- '{word}'")), "{word}: {text}");
        }
    }

    /// The layout includes each map's key order, which only a `preserve_order` build keeps
    /// (kube-inject's; the policy module never writes YAML).
    #[cfg(feature = "preserve_order")]
    #[test]
    fn yaml_writer_uses_kubectl_layout() {
        let value = json!({
            "spec": {
                "containers": [{"name": "a", "args": ["-p", 15001], "env": []}],
                "script": "echo a\necho b\n",
                "empty": {},
                "nested": [[1, 2], {}],
                "annotation": "{\"version\":\"x\"}",
            }
        });
        assert_eq!(
            to_yaml(&value),
            "spec:\n  containers:\n  - name: a\n    args:\n    - -p\n    - 15001\n    env: []\n  script: |\n    echo a\n    echo b\n  empty: {}\n  nested:\n  - - 1\n    - 2\n  - {}\n  annotation: '{\"version\":\"x\"}'\n"
        );
    }
}
