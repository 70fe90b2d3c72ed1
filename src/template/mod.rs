//! The sidecar template: upon syntax (or Go's, translated to upon by [`go`]), Istio's data names
//! and functions, YAML-safe output.
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

mod cache;
mod compile;
mod data;
mod functions;
pub mod go;
mod placeholder;
mod spec;

use serde_json::Value;

pub(crate) use cache::is_builtin_text;
pub(crate) use cache::shared::Shared;
pub use data::{MeshData, TemplateData};
pub use spec::{InjectionEntries, SidecarInjectionSpec, SpecError};

use cache::memo::MemoWriter;
use compile::{Compiled, TEMPLATE_NAME};
use placeholder::{CAPTURED, TOKEN_START, substitute};

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
    /// One of the named templates (`templates.<name>`) failed; `reason` says how.
    #[error("templates.{name}: {reason}")]
    Named {
        /// The template's name.
        name: String,
        /// What went wrong in it.
        reason: Box<TemplateError>,
    },
    /// The config's named templates do not fit together (a default or alias naming no template).
    #[error("{0}")]
    Config(String),
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
        Ok(Self {
            compiled: cache::compiled(source, syntax)?,
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

    /// Whether this is the built-in template: the only one compiled into a static (a text equal
    /// to it is recognised when compiled), so telling costs nothing per admission.
    pub fn is_builtin(&self) -> bool {
        matches!(self.compiled, Shared::Static(_))
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

#[cfg(test)]
mod tests;
