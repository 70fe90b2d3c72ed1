//! The sidecar template: upon syntax, Istio's data names and functions, YAML-safe output.
//!
//! The data has the seed's top-level names `ObjectMeta`, `Spec`, `ProxyConfig` and `MeshConfig`,
//! with the JSON field names users see in YAML below them (`ObjectMeta.labels`,
//! `ProxyConfig.configPath`). `ObjectMeta.labels` and `ObjectMeta.annotations` always exist, so
//! `{% if ObjectMeta.labels?.app %}` tests for a missing label.
//!
//! # Why values can never change the structure
//! The formatter never writes a string, list or map into the YAML text. It writes a placeholder
//! token, remembers the value, and after the text is parsed as YAML each placeholder is replaced
//! by its value in the parsed tree. A value from the pod therefore lands as exactly one scalar
//! (or, for maps and lists, exactly one node) wherever the template put it — plain, quoted or in a
//! list — whatever newlines, colons, quotes or `---` it holds. Numbers and booleans are written as
//! text: they cannot carry YAML syntax.

mod fill;
mod functions;
pub mod go;
mod memo;
mod spec;

use std::cell::RefCell;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

pub use spec::{InjectionEntries, SidecarInjectionSpec, SpecError};

use crate::config::{BUILTIN_TEMPLATE, MeshConfig};
use crate::shared::Shared;
use functions::{from_json_value, to_json_value};
use memo::{MemoWriter, Renderings, remember, same_text};

/// Name under which the template is stored; it appears in upon's error locations.
const TEMPLATE_NAME: &str = "sidecar";
/// Start of a placeholder token: letters only, so it is a plain scalar in every YAML context.
const TOKEN_START: &str = "sidecarinjectorvalue";
/// End of a placeholder token (after the index digits).
const TOKEN_END: char = 'x';

thread_local! {
    /// Values written by the formatter during the current render, indexed by placeholder number.
    static CAPTURED: RefCell<Vec<upon::Value>> = const { RefCell::new(Vec::new()) };
}

/// Why a template could not be compiled or rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The template's syntax is wrong.
    #[error("template syntax error at line {line}, column {column}: {reason}")]
    Syntax {
        /// 1-based line in the template.
        line: usize,
        /// 1-based column in the template.
        column: usize,
        /// What upon found.
        reason: String,
    },
    /// Rendering failed, e.g. a missing field or a function error.
    #[error("template render error at line {line}, column {column}: {reason}")]
    Render {
        /// 1-based line in the template.
        line: usize,
        /// 1-based column in the template.
        column: usize,
        /// What went wrong.
        reason: String,
    },
    /// The rendered text is not YAML.
    #[error("the rendered template is not valid YAML: {0}")]
    Yaml(String),
    /// A list or map was written inside a longer text.
    #[error(
        "the rendered template puts {0} inside a longer text; a map or list must be a whole value (use toJson for text)"
    )]
    Interpolation(&'static str),
    /// The rendered YAML is not a SidecarInjectionSpec.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The template text contains our placeholder marker.
    #[error("the template must not contain the reserved text `{TOKEN_START}`")]
    Reserved,
}

/// The language a template is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TemplateSyntax {
    /// upon's (`{{ ObjectMeta.name }}`, `{% if %}`): the built-in template's.
    Upon,
    /// Go's `text/template`, as Istio's ConfigMaps hold it (`[[ .ObjectMeta.Name ]]`).
    Go,
}

impl<'de> serde::Deserialize<'de> for TemplateSyntax {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.as_str() {
            "upon" => Ok(Self::Upon),
            "go" => Ok(Self::Go),
            other => Err(serde::de::Error::custom(format!(
                "templateSyntax must be `go` or `upon`, got `{other}`"
            ))),
        }
    }
}

impl TemplateSyntax {
    /// The syntax `source` is written in: Go when an action references a field (`.Name`) or a
    /// variable (`$`), upon otherwise.
    pub fn detect(source: &str) -> Self {
        if go::detect(source).is_some() {
            Self::Go
        } else {
            Self::Upon
        }
    }
}

/// A compiled sidecar template. Clones share the compiled form.
#[derive(Clone)]
pub struct SidecarTemplate {
    compiled: Shared<Compiled>,
}

/// What compiling a template text yields, and what rendering it has learnt.
struct Compiled {
    source: String,
    /// The syntax asked for when compiling (`None`: recognised from the text).
    syntax: Option<TemplateSyntax>,
    /// The upon text a Go template was translated to, and where its parts came from.
    translated: Option<go::Translated>,
    /// Loop variables the template declares (see [`TemplateData::lookup`]).
    loop_variables: Vec<String>,
    engine: upon::Engine<'static>,
    version: String,
    /// What rendering it has learnt.
    renderings: Renderings,
}

/// Templates other than the built-in one compiled so far in this process, newest last.
static COMPILED: Mutex<Vec<Arc<Compiled>>> = Mutex::new(Vec::new());

/// The built-in template, compiled once for the process (see [`Shared`] for why not an `Arc`).
static BUILTIN: OnceLock<Result<Compiled, TemplateError>> = OnceLock::new();

impl std::fmt::Debug for SidecarTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SidecarTemplate")
            .field("version", &self.compiled.version)
            .finish()
    }
}

impl SidecarTemplate {
    /// Compiles `source`, recognising its syntax from the text; see [`Self::compile_as`].
    pub fn compile(source: &str) -> Result<Self, TemplateError> {
        Self::compile_as(source, None)
    }

    /// Compiles `source` written in `syntax` (recognised from the text when `None`); syntax
    /// errors carry the line and column. A Go template is translated to upon here, once. A text
    /// compiled before in this process is not compiled again.
    pub fn compile_as(source: &str, syntax: Option<TemplateSyntax>) -> Result<Self, TemplateError> {
        // The default config borrows the built-in text itself: no need to read it to know.
        if syntax != Some(TemplateSyntax::Go)
            && (std::ptr::eq(source, BUILTIN_TEMPLATE) || same_text(source, BUILTIN_TEMPLATE))
        {
            let builtin = BUILTIN.get_or_init(|| Compiled::new(BUILTIN_TEMPLATE, None));
            return match builtin {
                Ok(compiled) => Ok(Self {
                    compiled: Shared::Static(compiled),
                }),
                Err(e) => Err(e.clone()),
            };
        }
        let mut known = COMPILED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(compiled) = known
            .iter()
            .find(|c| c.syntax == syntax && same_text(&c.source, source))
        {
            return Ok(Self {
                compiled: Shared::Counted(Arc::clone(compiled)),
            });
        }
        let compiled = Arc::new(Compiled::new(source, syntax)?);
        remember(&mut known, Arc::clone(&compiled));
        Ok(Self {
            compiled: Shared::Counted(compiled),
        })
    }

    /// The sha256 of the template text: the `version` in `sidecar.istio.io/status`.
    pub fn version(&self) -> &str {
        &self.compiled.version
    }

    /// Renders the template for one pod and reads the result as a SidecarInjectionSpec.
    pub fn render(&self, data: &TemplateData) -> Result<SidecarInjectionSpec, TemplateError> {
        let tree = self.render_tree(data)?;
        let mut spec = SidecarInjectionSpec::from_value(tree)?;
        if self.reads_as_istio_1_0() {
            for c in spec.init_containers.iter_mut().chain(&mut spec.containers) {
                c.restart_policy = None;
            }
        }
        Ok(spec)
    }

    /// Whether the rendering is read as Istio 0.5–1.0 read it: a Go template is one of theirs,
    /// and their Kubernetes types had no container `restartPolicy`. Their templates set it
    /// (`restartPolicy: Always`, ignored then); today it would make `istio-init` a native
    /// sidecar that never lets the pod start, and the API server refuses it on a container.
    fn reads_as_istio_1_0(&self) -> bool {
        self.compiled.translated.is_some()
    }

    /// Drops what [`Self::reads_as_istio_1_0`] says Istio's reader dropped.
    fn as_istio_1_0_read(&self, mut entries: InjectionEntries) -> InjectionEntries {
        if self.reads_as_istio_1_0() {
            for c in entries
                .init_containers
                .iter_mut()
                .chain(&mut entries.containers)
            {
                if let Some(c) = c.as_object_mut() {
                    c.remove("restartPolicy");
                }
            }
        }
        entries
    }

    /// Whether two compiled templates are one (a text is compiled once per process).
    #[cfg(test)]
    fn same_compiled(&self, other: &Self) -> bool {
        std::ptr::eq::<Compiled>(&*self.compiled, &*other.compiled)
    }

    /// Renders the template for one pod into the entries the pod gets: what [`Self::render`]
    /// gives, as JSON. A rendering seen before is not parsed or read again: the pod's values
    /// go straight into its remembered entries when they are all text.
    pub fn render_entries(&self, data: &TemplateData) -> Result<InjectionEntries, TemplateError> {
        self.compiled.renderings.render_and_read(
            |writer| self.render_to(data, writer),
            |parsed, captured| {
                if let Some(recipe) = &parsed.recipe
                    && let Some(entries) = recipe.fill(&captured)?
                {
                    entries.check_names()?;
                    return Ok(self.as_istio_1_0_read(entries));
                }
                let tree = substitute(&parsed.tree, &captured)?;
                let entries = SidecarInjectionSpec::from_value(tree)?.to_entries()?;
                Ok(self.as_istio_1_0_read(entries))
            },
        )
    }

    /// Renders to the parsed YAML tree with every placeholder replaced by its value.
    pub fn render_tree(&self, data: &TemplateData) -> Result<Value, TemplateError> {
        self.compiled.renderings.render_and_read(
            |writer| self.render_to(data, writer),
            |parsed, captured| substitute(&parsed.tree, &captured),
        )
    }

    /// Renders into `writer` as text with placeholders; returns the values they stand for.
    fn render_to(
        &self,
        data: &TemplateData,
        writer: &mut MemoWriter<'_>,
    ) -> Result<Vec<upon::Value>, TemplateError> {
        CAPTURED.with(|c| c.borrow_mut().clear());
        let rendered = self
            .compiled
            .engine
            .template(TEMPLATE_NAME)
            .render_from_fn(|path| data.lookup(path, &self.compiled.loop_variables))
            .to_writer(writer);
        let captured = CAPTURED.with(|c| std::mem::take(&mut *c.borrow_mut()));
        rendered.map_err(|e| {
            let (line, column, reason) = self.compiled.locate(&e);
            TemplateError::Render {
                line,
                column,
                reason,
            }
        })?;
        Ok(captured)
    }
}

impl Compiled {
    fn new(source: &str, syntax: Option<TemplateSyntax>) -> Result<Self, TemplateError> {
        if source.contains(TOKEN_START) {
            return Err(TemplateError::Reserved);
        }
        let mut engine = upon::Engine::new();
        engine.set_default_formatter(&capture_formatter);
        functions::register(&mut engine);
        let translated = match syntax.unwrap_or_else(|| TemplateSyntax::detect(source)) {
            TemplateSyntax::Upon => None,
            TemplateSyntax::Go => {
                go::register(&mut engine);
                let translated = go::translate(source, go::delimiters(source)).map_err(|e| {
                    let (line, column) = line_column(source, e.at);
                    TemplateError::Syntax {
                        line,
                        column,
                        reason: e.message,
                    }
                })?;
                Some(translated)
            }
        };
        let text = translated
            .as_ref()
            .map_or_else(|| source.to_string(), |t| t.text.clone());
        let loop_variables = loop_variables(&text);
        let mut compiled = Self {
            source: source.to_string(),
            syntax,
            translated,
            loop_variables,
            engine,
            version: hex_sha256(source),
            renderings: Renderings::default(),
        };
        let added = compiled.engine.add_template(TEMPLATE_NAME, text);
        if let Err(e) = added {
            let (line, column, reason) = compiled.locate(&e);
            return Err(TemplateError::Syntax {
                line,
                column,
                reason,
            });
        }
        Ok(compiled)
    }

    /// Line, column and reason of an upon error, in the template as the user wrote it: for a
    /// Go template, the position of the Go action the failing upon tag was written for.
    fn locate(&self, error: &upon::Error) -> (usize, usize, String) {
        let (line, column, reason) = locate(error);
        let Some(translated) = &self.translated else {
            return (line, column, reason);
        };
        let offset = offset_of(&translated.text, line, column);
        match translated.origin(offset) {
            Some(at) => {
                let (line, column) = line_column(&self.source, at);
                (line, column, reason)
            }
            None => (line, column, reason),
        }
    }
}

/// 1-based line and column of byte `offset` in `text` (columns count characters).
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Byte offset of 1-based `line` and `column` in `text`.
fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let mut offset = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            return offset
                + l.char_indices()
                    .nth(column.saturating_sub(1))
                    .map_or(l.len(), |(b, _)| b);
        }
        offset += l.len();
    }
    offset
}

/// The names an upon template binds with `{% for a in … %}` / `{% for k, v in … %}`.
fn loop_variables(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    for block in text.split("{%").skip(1) {
        let block = block.trim_start_matches('-').trim_start();
        let Some(rest) = block.strip_prefix("for") else {
            continue;
        };
        let Some((vars, _)) = rest.split_once(" in ") else {
            continue;
        };
        for var in vars.split(',') {
            let var = var.trim();
            if !var.is_empty() && !names.iter().any(|n| n == var) {
                names.push(var.to_string());
            }
        }
    }
    names
}

/// The data a template sees, for one pod.
///
/// Values are converted for the template only when the template reads them: a pod with
/// thousands of env vars or volumes costs nothing for the parts the template never looks at.
#[derive(Debug, Clone)]
pub struct TemplateData<'a> {
    meta: upon::Value,
    spec: Option<&'a Value>,
    mesh: &'a MeshData,
}

impl<'a> TemplateData<'a> {
    /// Data for `pod` (a Pod or pod template: `metadata` and `spec` are read).
    ///
    /// `namespace` fills `ObjectMeta.namespace` when the pod has none (pods created by
    /// controllers arrive without one).
    pub fn new(pod: &'a Value, namespace: Option<&str>, mesh: &'a MeshData) -> Self {
        let mut meta = match pod.get("metadata").map(from_json_value) {
            Some(upon::Value::Map(m)) => m,
            _ => Default::default(),
        };
        for key in ["labels", "annotations"] {
            if !matches!(meta.get(key), Some(upon::Value::Map(_))) {
                meta.insert(key.to_string(), upon::Value::Map(Default::default()));
            }
        }
        if let Some(ns) = namespace.filter(|ns| !ns.is_empty()) {
            let has_namespace =
                matches!(meta.get("namespace"), Some(upon::Value::String(s)) if !s.is_empty());
            if !has_namespace {
                meta.insert("namespace".into(), upon::Value::from(ns));
            }
        }
        Self {
            meta: upon::Value::Map(meta),
            spec: pod.get("spec").filter(|s| s.is_object()),
            mesh,
        }
    }

    /// The value at `path`, as upon resolves a variable: a missing member is an error after `.`
    /// and nothing after `?.`.
    ///
    /// upon 0.11 asks here, with the whole path, when a `?.` member of a *loop variable* is
    /// missing (it treats the miss as an unknown name); `loop_variables` are the template's, so
    /// that miss is nothing, as `?.` promises, rather than an error about the data.
    fn lookup(
        &self,
        path: &[upon::ValueMember<'_>],
        loop_variables: &[String],
    ) -> Result<upon::Value, String> {
        use upon::{ValueAccess, ValueAccessOp};
        let Some((root, rest)) = path.split_first() else {
            return Ok(upon::Value::None);
        };
        let missing = |member: &upon::ValueMember<'_>, what: String| {
            if member.op == ValueAccessOp::Optional {
                Ok(upon::Value::None)
            } else {
                Err(what)
            }
        };
        let ValueAccess::Key(name) = root.access else {
            return missing(root, "the data is a map, not a list".into());
        };
        let upon_root = match name {
            "ObjectMeta" => &self.meta,
            "ProxyConfig" => &self.mesh.proxy,
            "MeshConfig" => &self.mesh.mesh,
            "Spec" => {
                let empty = Value::Object(Map::new());
                let mut current = self.spec.unwrap_or(&empty);
                for member in rest {
                    let next = match member.access {
                        ValueAccess::Key(key) => current.get(key),
                        ValueAccess::Index(i) => current.get(i),
                    };
                    match next {
                        Some(value) => current = value,
                        None => return missing(member, not_found(member)),
                    }
                }
                return Ok(from_json_value(current));
            }
            other if loop_variables.iter().any(|v| v == other) => {
                return if path.iter().any(|m| m.op == ValueAccessOp::Optional) {
                    Ok(upon::Value::None)
                } else {
                    Err(format!("loop variable `{other}` is used outside its loop"))
                };
            }
            other => {
                return missing(
                    root,
                    format!(
                        "unknown name `{other}`: the data has ObjectMeta, Spec, ProxyConfig and MeshConfig"
                    ),
                );
            }
        };
        let mut current = upon_root;
        for member in rest {
            let next = match (current, member.access) {
                (upon::Value::Map(m), ValueAccess::Key(key)) => m.get(key),
                (upon::Value::List(l), ValueAccess::Index(i)) => l.get(i),
                _ => None,
            };
            match next {
                Some(value) => current = value,
                None => return missing(member, not_found(member)),
            }
        }
        Ok(current.clone())
    }
}

fn not_found(member: &upon::ValueMember<'_>) -> String {
    match member.access {
        upon::ValueAccess::Key(key) => {
            format!("not found: `{key}` (use `?.{key}` when it may be missing)")
        }
        upon::ValueAccess::Index(i) => format!("not found: index {i}"),
    }
}

/// ProxyConfig and MeshConfig converted for templates once, not once per pod.
#[derive(Debug, Clone)]
pub struct MeshData {
    proxy: upon::Value,
    mesh: upon::Value,
}

impl MeshData {
    /// The conversion of `mesh`, made once per distinct mesh config in this process (and, in a
    /// pre-initialised policy module, already made for the default one).
    pub(crate) fn shared(mesh: &MeshConfig) -> Shared<Self> {
        static DEFAULT: OnceLock<(MeshConfig, MeshData)> = OnceLock::new();
        static CONVERTED: Mutex<Vec<(MeshConfig, Arc<MeshData>)>> = Mutex::new(Vec::new());
        let (default, data) = DEFAULT.get_or_init(|| {
            let default = MeshConfig::default();
            let data = Self::new(&default);
            (default, data)
        });
        if default == mesh {
            return Shared::Static(data);
        }
        let mut known = CONVERTED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, data)) = known.iter().find(|(config, _)| config == mesh) {
            return Shared::Counted(Arc::clone(data));
        }
        let data = Arc::new(Self::new(mesh));
        remember(&mut known, (mesh.clone(), Arc::clone(&data)));
        Shared::Counted(data)
    }

    /// Converts the mesh config (JSON field names, unknown fields included).
    pub fn new(mesh: &MeshConfig) -> Self {
        let mesh_json = serde_json::to_value(mesh).unwrap_or(Value::Null);
        let proxy = mesh_json
            .get("defaultConfig")
            .map(from_json_value)
            .unwrap_or_default();
        Self {
            proxy,
            mesh: from_json_value(&mesh_json),
        }
    }
}

/// The default formatter: numbers and booleans as text, everything else as a placeholder.
fn capture_formatter(f: &mut upon::fmt::Formatter<'_>, value: &upon::Value) -> upon::fmt::Result {
    use std::fmt::Write;
    match value {
        upon::Value::None => {}
        upon::Value::Bool(b) => f.write_str(if *b { "true" } else { "false" })?,
        upon::Value::Integer(n) => write!(f, "{n}")?,
        upon::Value::Float(x) if x.is_finite() => write!(f, "{x:?}")?,
        other => {
            let index = CAPTURED.with(|c| {
                let mut c = c.borrow_mut();
                c.push(other.clone());
                c.len() - 1
            });
            // Written piece by piece: `write!` goes through core::fmt, a cost per value.
            f.write_str(TOKEN_START)?;
            f.write_str(decimal(index, &mut [0; 20]))?;
            f.write_char(TOKEN_END)?;
        }
    }
    Ok(())
}

/// `n` in decimal, written at the end of `buffer`.
fn decimal(mut n: usize, buffer: &mut [u8; 20]) -> &str {
    let mut start = buffer.len();
    for slot in buffer.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        start -= 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(buffer.get(start..).unwrap_or_default()).unwrap_or_default()
}

/// A copy of `tree` with the placeholders in every string and key replaced by the captured
/// values.
fn substitute(tree: &Value, captured: &[upon::Value]) -> Result<Value, TemplateError> {
    Ok(match tree {
        Value::String(s) => substitute_text(s, captured)?,
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| substitute(item, captured))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => {
            let mut out = Map::with_capacity(map.len());
            for (key, value) in map {
                let key = match substitute_text(key, captured)? {
                    Value::String(k) => k,
                    other => scalar_key(&other)
                        .ok_or(TemplateError::Interpolation("a map or list as a key"))?,
                };
                out.insert(key, substitute(value, captured)?);
            }
            Value::Object(out)
        }
        other => other.clone(),
    })
}

/// Whether `text` holds a placeholder.
fn has_token(text: &str) -> bool {
    find_token(text).is_some()
}

/// Where the first placeholder in `text` starts; one searcher for the whole process, where
/// `str::find` would build one per call.
fn find_token(text: &str) -> Option<usize> {
    static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(TOKEN_START));
    FINDER.find(text.as_bytes())
}

fn scalar_key(value: &Value) -> Option<String> {
    match value {
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

/// A string that is exactly one placeholder becomes the value; otherwise the values' text is
/// spliced into the string.
fn substitute_text(text: &str, captured: &[upon::Value]) -> Result<Value, TemplateError> {
    if !has_token(text) {
        return Ok(Value::String(text.to_string()));
    }
    join_pieces(split_placeholders(text).into_iter(), captured)
}

/// One piece of a text that may hold placeholders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece<'a> {
    /// Text as it is.
    Text(&'a str),
    /// A placeholder: the captured value's index, and the placeholder as written.
    Placeholder { index: usize, raw: &'a str },
}

impl<'a> Piece<'a> {
    /// The piece as written.
    fn text(&self) -> &'a str {
        match *self {
            Piece::Text(text) | Piece::Placeholder { raw: text, .. } => text,
        }
    }
}

/// `text` cut at its placeholders, without empty texts.
fn split_placeholders(text: &str) -> Vec<Piece<'_>> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(start) = find_token(rest) {
        let (before, token) = rest.split_at(start);
        let after = token.get(TOKEN_START.len()..).unwrap_or_default();
        let digits = after
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(after.len());
        let index = after.get(..digits).and_then(|d| d.parse::<usize>().ok());
        let closed = after
            .get(digits..)
            .is_some_and(|a| a.starts_with(TOKEN_END));
        let length = TOKEN_START.len() + digits + TOKEN_END.len_utf8();
        match (index, closed, token.split_at_checked(length)) {
            (Some(index), true, Some((raw, next))) => {
                pieces.push(Piece::Text(before));
                pieces.push(Piece::Placeholder { index, raw });
                rest = next;
            }
            // Not one of ours (the marker followed by no number or no end): kept as text. A
            // template cannot contain the marker, but can assemble one around a value.
            _ => {
                let (text, next) = token.split_at(TOKEN_START.len());
                pieces.push(Piece::Text(before));
                pieces.push(Piece::Text(text));
                rest = next;
            }
        }
    }
    pieces.push(Piece::Text(rest));
    pieces.retain(|p| !matches!(p, Piece::Text("")));
    pieces
}

/// The value of a text made of `pieces`: a placeholder alone becomes its value, anything else
/// becomes text. A placeholder without a captured value stays as written.
fn join_pieces<'p>(
    mut pieces: impl ExactSizeIterator<Item = Piece<'p>>,
    captured: &[upon::Value],
) -> Result<Value, TemplateError> {
    let value_of = |piece: &Piece<'_>| match *piece {
        Piece::Placeholder { index, .. } => captured.get(index),
        Piece::Text(_) => None,
    };
    let mut out = String::new();
    if pieces.len() == 1
        && let Some(only) = pieces.next()
    {
        match value_of(&only) {
            Some(value) => return Ok(to_json_value(value)),
            None => return Ok(Value::String(only.text().to_string())),
        }
    }
    for piece in pieces {
        match (piece, value_of(&piece)) {
            (Piece::Text(t) | Piece::Placeholder { raw: t, .. }, None) => out.push_str(t),
            (_, Some(upon::Value::String(s))) => out.push_str(s),
            (_, Some(upon::Value::Float(f))) => out.push_str(&f.to_string()),
            (_, Some(upon::Value::List(_))) => return Err(TemplateError::Interpolation("a list")),
            (_, Some(upon::Value::Map(_))) => return Err(TemplateError::Interpolation("a map")),
            (_, Some(other)) => out.push_str(&to_json_value(other).to_string()),
        }
    }
    Ok(Value::String(out))
}

/// Line, column and reason from an upon error (upon only exposes them through `{:#}`).
fn locate(error: &upon::Error) -> (usize, usize, String) {
    let pretty = format!("{error:#}");
    let marker = format!("--> {TEMPLATE_NAME}:");
    let (line, column) = pretty
        .lines()
        .find_map(|l| l.trim().strip_prefix(marker.as_str()).map(str::to_string))
        .and_then(|loc| {
            let (l, c) = loc.split_once(':')?;
            Some((l.parse().ok()?, c.parse().ok()?))
        })
        .unwrap_or((0, 0));
    let reason = pretty
        .lines()
        .find_map(|l| l.trim().strip_prefix("= reason: ").map(str::to_string))
        .unwrap_or_else(|| error.to_string());
    (line, column, reason)
}

fn hex_sha256(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
