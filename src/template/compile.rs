//! Compiling a template text: its syntax recognised, a Go template translated to upon, the
//! upon engine with Istio's functions and the placeholder formatter; and the positions errors
//! report, in the text as the user wrote it.

use sha2::{Digest, Sha256};

use super::cache::memo::Renderings;
use super::placeholder::{TOKEN_START, capture_formatter};
use super::{TemplateError, TemplateSyntax, functions, go};

/// Name under which the template is stored; it appears in upon's error locations.
pub(super) const TEMPLATE_NAME: &str = "sidecar";

/// What compiling a template text yields, and what rendering it has learnt.
pub(super) struct Compiled {
    pub(super) source: String,
    /// The syntax asked for when compiling (`None`: recognised from the text).
    pub(super) syntax: Option<TemplateSyntax>,
    /// The upon text a Go template was translated to, and where its parts came from.
    pub(super) translated: Option<go::Translated>,
    /// Loop variables the template declares (see [`TemplateData::lookup`]).
    pub(super) loop_variables: Vec<String>,
    pub(super) engine: upon::Engine<'static>,
    pub(super) version: String,
    /// What rendering it has learnt.
    pub(super) renderings: Renderings,
}

impl Compiled {
    pub(super) fn new(source: &str, syntax: Option<TemplateSyntax>) -> Result<Self, TemplateError> {
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
    pub(super) fn locate(&self, error: &upon::Error) -> (usize, usize, String) {
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
pub(super) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Byte offset of 1-based `line` and `column` in `text`.
pub(super) fn offset_of(text: &str, line: usize, column: usize) -> usize {
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
pub(super) fn loop_variables(text: &str) -> Vec<String> {
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

/// Line, column and reason from an upon error (upon only exposes them through `{:#}`).
pub(super) fn locate(error: &upon::Error) -> (usize, usize, String) {
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

pub(super) fn hex_sha256(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
