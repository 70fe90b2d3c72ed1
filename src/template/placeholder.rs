//! Placeholders: how a pod's values stay data. The formatter writes a token for every string,
//! list or map, the rendered text is parsed as YAML, and each token is then replaced by its value
//! in the parsed tree (see the parent module's "Why values can never change the structure").

use std::cell::RefCell;

use serde_json::{Map, Value};

use super::TemplateError;
use super::cache::write_decimal;
use super::functions::to_json_value;

/// Start of a placeholder token: letters only, so it is a plain scalar in every YAML context.
pub(super) const TOKEN_START: &str = "sidecarinjectorvalue";
/// End of a placeholder token (after the index digits).
pub(super) const TOKEN_END: char = 'x';

thread_local! {
    /// Values written by the formatter during the current render, indexed by placeholder number.
    pub(super) static CAPTURED: RefCell<Vec<upon::Value>> = const { RefCell::new(Vec::new()) };
}

/// The default formatter: numbers and booleans as text, everything else as a placeholder.
pub(super) fn capture_formatter(
    f: &mut upon::fmt::Formatter<'_>,
    value: &upon::Value,
) -> upon::fmt::Result {
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
            write_decimal(f, index)?;
            f.write_char(TOKEN_END)?;
        }
    }
    Ok(())
}

/// A copy of `tree` with the placeholders in every string and key replaced by the captured
/// values.
pub(super) fn substitute(tree: &Value, captured: &[upon::Value]) -> Result<Value, TemplateError> {
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
pub(super) fn has_token(text: &str) -> bool {
    find_token(text).is_some()
}

/// Where the first placeholder in `text` starts; one searcher for the whole process, where
/// `str::find` would build one per call.
pub(super) fn find_token(text: &str) -> Option<usize> {
    static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(TOKEN_START));
    FINDER.find(text.as_bytes())
}

pub(super) fn scalar_key(value: &Value) -> Option<String> {
    match value {
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

/// A string that is exactly one placeholder becomes the value; otherwise the values' text is
/// spliced into the string.
pub(super) fn substitute_text(
    text: &str,
    captured: &[upon::Value],
) -> Result<Value, TemplateError> {
    if !has_token(text) {
        return Ok(Value::String(text.to_string()));
    }
    join_pieces(split_placeholders(text).into_iter(), captured)
}

/// One piece of a text that may hold placeholders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Piece<'a> {
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
pub(super) fn split_placeholders(text: &str) -> Vec<Piece<'_>> {
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
pub(super) fn join_pieces<'p>(
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
