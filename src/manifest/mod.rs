//! Multi-document YAML manifests for `kube-inject`: split, find each workload's pod template,
//! apply one operation per pod (inject, uninject, …), join.
//!
//! Port of Istio's `IntoResourceFile` / `IntoObject` (pkg/kube/inject/inject.go) and of the kinds
//! its `injectScheme` registers (pkg/kube/inject/initializer.go), which
//! [`object::kinds`](crate::object::kinds) holds:
//!
//! - The input is split *textually* on document markers, so a document that is not changed is
//!   written back byte for byte, comments included.
//! - Each document is parsed into a `serde_json::Value` (key order kept); its `kind` and
//!   `apiVersion` say where its pods are. A kind at an `apiVersion` not in the table, and any
//!   other kind, passes through unchanged.
//! - The caller's operation runs on every pod or pod template ([`process`]); [`inject`](fn@inject) and
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
//! - The workload `apiVersion`s Kubernetes no longer serves (`extensions/v1beta1`,
//!   `apps/v1beta1`, `apps/v1beta2`; CronJobs in `batch/v2alpha1`, `batch/v1beta1`) are handled
//!   like the current ones, with a warning naming the `apiVersion` to move to. Istio master
//!   registers only the current ones and passes the others through; Istio 0.5–1.0 registered
//!   only some (`extensions/v1beta1` Deployment, DaemonSet and ReplicaSet, `apps/v1beta1`
//!   StatefulSet, `batch/v2alpha1` CronJob).
//! - A document whose `kind` is injectable but whose `apiVersion` is in neither list gets a
//!   warning; Istio passes it through silently (istio/istio#6731 was the same surprise for
//!   `kind: Pod`).
//! - A CronJob's status annotation is written on its pod template, like every other kind's;
//!   `istioctl` writes it on `spec.jobTemplate.metadata`. Both places are read: a status found
//!   on the job template (and none on the pod template) is moved to the pod template before the
//!   operation, so re-injecting or uninjecting istioctl's output works on what it injected.
//! - A document with only comments is written back unchanged; Istio fails on it (no `kind`).
//! - A leading byte order mark is dropped (it is no part of a document); CRLF line ends are read
//!   as line ends, and unchanged documents keep theirs.
//! - Documents are read as YAML 1.2 (`yes`, `on` are strings), as `serde_yaml` does; kubectl reads
//!   YAML 1.1. The writer quotes every string YAML 1.1 would read as something else, so what is
//!   written means the same to both; a bare `yes` in a *changed* document becomes `"yes"`.

use std::borrow::Cow;
use std::fmt;

use serde_json::Value;

use crate::injector::{Injector, Outcome};
use crate::object::kinds::{self, PodsAt, Superseded, lookup};
use crate::object::{self, at, at_mut, str_at};
use crate::surgery::{self, Uninjection};

mod yaml;
pub use yaml::to_yaml;

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
    /// The output: documents in order, `---` between them.
    ///
    /// No newline is added at the end: only an input's last document can lack one, and written
    /// back as it was it must stay so, since a line break there is data (a `|` block ending the
    /// file, `echo ` without it, reads as `"echo \n"` with it).
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

/// Removes the sidecar from every pod template of the manifest ([`surgery::uninject`]).
///
/// What the status annotation lists is removed; a pod with an `istio-proxy` container but no
/// status annotation loses Istio's well-known names, with a warning saying so.
pub fn uninject(input: &str) -> Result<Manifest<'_>, ManifestError> {
    process(input, |pod, _| match surgery::uninject(pod)? {
        Uninjection::FromStatus { kept, .. } => Ok::<_, surgery::SurgeryError>(PodChange {
            changed: true,
            warnings: if kept.is_empty() {
                Vec::new()
            } else {
                vec![surgery::kept_warning(&kept)]
            },
        }),
        Uninjection::WellKnownNames(status) => {
            let names: Vec<&str> = status
                .names
                .iter()
                .flat_map(|(_, names)| names.iter().map(String::as_str))
                .collect();
            Ok(PodChange {
                changed: true,
                warnings: vec![format!(
                    "no {} annotation; removed Istio's well-known names where present ({})",
                    surgery::STATUS_ANNOTATION,
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
        let kind = object::kind(&value).map(str::to_string);
        let name = object::name(&value).map(str::to_string);
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
    let Some(kind) = object::kind(object).filter(|k| !k.is_empty()) else {
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
        name: object::name(object).map(str::to_string),
        namespace: object::namespace(object).map(str::to_string),
        path: String::new(),
    };
    let Some(registered) = lookup(api_version, kind) else {
        let versions = kinds::current_api_versions(kind);
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
    if let Some(Superseded { by, removed_in }) = registered.superseded {
        warnings.push(format!(
            "{workload}: apiVersion {api_version} is not served by Kubernetes {removed_in} and later; move to {by}"
        ));
    }
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
            if !matches!(at(object, path), Some(Value::Object(_))) {
                return Err(ManifestError::MissingTemplate {
                    workload: Box::new(workload),
                });
            }
            if let Some(holder) = registered.istio_status_on {
                adopt_istio_status(object, holder, path).map_err(|source| ManifestError::Pod {
                    workload: Box::new(workload.clone()),
                    source: Box::new(source),
                })?;
            }
            match at_mut(object, path) {
                Some(pod) => pod,
                None => {
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
    // A byte order mark (editors on Windows write one) is not part of any document: the YAML
    // parser would read it as content. It is dropped from the output.
    let input = input.strip_prefix('\u{feff}').unwrap_or(input);
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
            if object::kind(&value).is_none_or(str::is_empty) {
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
            found: object::type_name(&other),
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

/// Moves the status annotation istioctl wrote on the object at `holder` onto the pod template
/// at `template`, unless the pod template has one of its own: every operation then reads, strips
/// and replaces (or removes) it where ours is. Whether the document changes is the operation's
/// to say, so a pod it leaves alone is written back as it was read.
fn adopt_istio_status(
    object: &mut Value,
    holder: &[&str],
    template: &[&str],
) -> Result<(), surgery::SurgeryError> {
    if at(object, template).is_some_and(surgery::has_status) {
        return Ok(());
    }
    let Some(status) = at_mut(object, holder).and_then(surgery::take_status) else {
        return Ok(());
    };
    match at_mut(object, template) {
        Some(pod) => surgery::put_status(pod, status),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
