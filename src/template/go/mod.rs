//! Istio's sidecar templates as they are: Go `text/template` text, translated once into an upon
//! template when the configuration is loaded.
//!
//! Every `istio-sidecar-injector` ConfigMap in a real cluster holds a Go template
//! (`[[ .ProxyConfig.ConfigPath ]]` in Istio 0.8–1.0, `{{ }}` before). Rendering stays upon's:
//! [`translate`] turns the Go text into upon text ([`emit`]), and the renderer, its YAML-safe
//! formatter and its memo are the same for both dialects, so a pod's values can never change
//! the structure of the rendered YAML whichever dialect the template is written in.
//!
//! What is accepted is the subset Istio's templates of 0.5 to 1.0 use, and Go's built-ins around
//! it (see [`functions`]); anything else is refused at load time with its line and column.
//!
//! # Differences from Go
//! - A missing field or key renders as nothing (Go prints `<no value>` for a missing key of a
//!   `map[string]interface{}`); in comparisons it is the zero value of the other side.
//! - An empty map or list counts as false, as in Go; an empty *struct* (a field the pod sets to
//!   `{}`) also counts as false, where Go's struct is always true.
//! - Lists and maps printed whole are written as YAML structure (upon's rule), not as Go's
//!   `[a b]` / `map[k:v]` text; `toYaml` returns structure as in upon templates.

mod emit;
pub(super) mod functions;
mod lex;
mod parse;

pub use emit::json_name;
pub use lex::Delims;

/// A construct a Go template may not use, or a syntax error, at a byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoError {
    /// Byte offset in the Go template.
    pub at: usize,
    /// What is wrong, naming the construct.
    pub message: String,
}

impl GoError {
    fn new(at: usize, message: impl Into<String>) -> Self {
        Self {
            at,
            message: message.into(),
        }
    }
}

/// A Go template translated to upon.
#[derive(Debug, Clone, PartialEq)]
pub struct Translated {
    /// The upon template.
    pub text: String,
    /// Where each of its tags came from, to report render errors at the Go template's position.
    positions: Vec<(usize, usize)>,
}

impl Translated {
    /// The byte offset in the Go template that the upon template's `offset` came from.
    pub fn origin(&self, offset: usize) -> Option<usize> {
        let i = self.positions.partition_point(|(upon, _)| *upon <= offset);
        self.positions.get(i.checked_sub(1)?).map(|(_, go)| *go)
    }
}

/// Translates a Go template written with `delims`.
pub fn translate(source: &str, delims: Delims) -> Result<Translated, GoError> {
    let segments = lex::segments(source, delims)?;
    let nodes = parse::parse(segments)?;
    let translation = emit::emit(&nodes)?;
    Ok(Translated {
        text: translation.text,
        positions: translation.positions,
    })
}

/// Registers the functions a translated template calls.
pub fn register(engine: &mut upon::Engine<'_>) {
    functions::register(engine);
}

/// The delimiters of `source` if it reads as a Go template: an action that references a field
/// (`.Name`), a variable (`$`), or starts with one of Go's control words. `[[ ]]` wins over
/// `{{ }}`, as Istio 0.8–1.0 parse with it.
pub fn detect(source: &str) -> Option<Delims> {
    [Delims::BRACKETS, Delims::BRACES]
        .into_iter()
        .find(|d| actions(source, *d).any(looks_like_go))
}

/// The delimiters to read `source` with when it is known to be a Go template.
pub fn delimiters(source: &str) -> Delims {
    detect(source).unwrap_or(if source.contains(Delims::BRACKETS.left) {
        Delims::BRACKETS
    } else {
        Delims::BRACES
    })
}

/// The inner text of each `left … right` pair in `source`.
fn actions(source: &str, delims: Delims) -> impl Iterator<Item = &str> {
    let mut rest = source;
    std::iter::from_fn(move || {
        let start = rest.find(delims.left)? + delims.left.len();
        let inner = rest.get(start..)?;
        let end = inner.find(delims.right)?;
        rest = inner.get(end + delims.right.len()..).unwrap_or_default();
        inner.get(..end)
    })
}

/// Whether an action's text is Go: outside string literals, a token starts with `.` and a
/// letter, or with `$`, or the action starts with a control word.
fn looks_like_go(action: &str) -> bool {
    let trimmed = action.trim_start_matches('-').trim_start();
    let first = trimmed
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .next()
        .unwrap_or_default();
    if matches!(
        first,
        "if" | "range" | "with" | "end" | "else" | "define" | "template" | "block"
    ) || trimmed.starts_with("/*")
    {
        // upon writes these as `{% %}` blocks; in an expression tag they are Go's.
        return true;
    }
    let bytes = action.as_bytes();
    let mut quote: Option<u8> = None;
    let mut previous = b' ';
    for (i, &c) in bytes.iter().enumerate() {
        match quote {
            Some(q) if c == q && previous != b'\\' => quote = None,
            Some(_) => {}
            None => match c {
                b'"' | b'`' => quote = Some(c),
                b'$' => return true,
                b'.' if matches!(previous, b' ' | b'\t' | b'\n' | b'(' | b'-')
                    && bytes
                        .get(i + 1)
                        .is_some_and(|n| n.is_ascii_alphabetic() || *n == b'_') =>
                {
                    return true;
                }
                _ => {}
            },
        }
        previous = c;
    }
    false
}

#[cfg(test)]
mod tests;
