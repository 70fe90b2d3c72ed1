//! The YAML writer for rewritten manifests: block style, key order kept, and strings quoted
//! whenever YAML 1.1 (kubectl) and YAML 1.2 could read them differently.
//!
//! serde_yaml 0.9 writes YAML 1.2, where `yes`, `on` or `0777` are plain strings; kubectl reads
//! them as booleans and octal numbers, so a rewritten env value `"on"` would change type. This
//! writer quotes those. Every rewritten document is read back and compared with its data
//! (`super::rewrite`), so a writer bug is an error, never a silently different manifest.

use serde_json::{Map, Value};

/// Writes a value as block-style YAML in the layout kubectl users know (key order kept,
/// sequences under a key at the key's indentation, multi-line strings as `|` blocks).
///
/// Strings are left unquoted only when both YAML 1.1 (kubectl) and YAML 1.2 read them back as
/// the same string: `on`, `yes`, `y`, `0777`, `1.0`, `~`, `-` and anything starting with a digit
/// are quoted. Quoting uses single quotes for one-line text and JSON-style double quotes for text
/// with control characters.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => write_map(&mut out, map, 0, false),
        Value::Array(items) if !items.is_empty() => write_seq(&mut out, items, 0, false),
        scalar => {
            write_scalar(&mut out, scalar, None);
            out.push('\n');
        }
    }
    out
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// Writes a non-empty map with its keys at `indent`; `inline` when the cursor already sits there
/// (after `- `).
fn write_map(out: &mut String, map: &Map<String, Value>, indent: usize, inline: bool) {
    for (i, (key, value)) in map.iter().enumerate() {
        if i > 0 || !inline {
            pad(out, indent);
        }
        write_string(out, key, None);
        out.push(':');
        match value {
            Value::Object(inner) if !inner.is_empty() => {
                out.push('\n');
                write_map(out, inner, indent + 2, false);
            }
            Value::Array(items) if !items.is_empty() => {
                out.push('\n');
                write_seq(out, items, indent, false);
            }
            scalar => {
                out.push(' ');
                write_scalar(out, scalar, Some(indent + 2));
                out.push('\n');
            }
        }
    }
}

/// Writes a non-empty sequence with its dashes at `indent`.
fn write_seq(out: &mut String, items: &[Value], indent: usize, inline: bool) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 || !inline {
            pad(out, indent);
        }
        out.push_str("- ");
        match item {
            Value::Object(map) if !map.is_empty() => write_map(out, map, indent + 2, true),
            Value::Array(inner) if !inner.is_empty() => write_seq(out, inner, indent + 2, true),
            scalar => {
                write_scalar(out, scalar, Some(indent + 2));
                out.push('\n');
            }
        }
    }
}

/// Writes a scalar (or an empty map/list) on the current line; `block` is the indentation a `|`
/// block would use, `None` where none may be used.
fn write_scalar(out: &mut String, value: &Value, block: Option<usize>) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_string(out, s, block),
        Value::Array(_) => out.push_str("[]"),
        Value::Object(_) => out.push_str("{}"),
    }
}

fn write_string(out: &mut String, s: &str, block: Option<usize>) {
    if plain_ok(s) {
        out.push_str(s);
    } else if let Some(indent) = block.filter(|i| *i > 0 && literal_ok(s)) {
        write_literal(out, s, indent);
    } else if !s.chars().any(needs_escape) {
        out.push('\'');
        out.push_str(&s.replace('\'', "''"));
        out.push('\'');
    } else {
        write_double_quoted(out, s);
    }
}

/// Characters that only a double-quoted scalar can carry: controls (including line breaks) and
/// the characters YAML 1.1 treats as line breaks or byte-order marks.
fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')
}

fn write_double_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if needs_escape(c) => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Whether `s` may be written as a `|` block: it spans lines, has something printable, its first
/// non-empty line does not start with whitespace (the block's indentation is detected from it),
/// and no line is only whitespace or holds characters a block cannot carry.
fn literal_ok(s: &str) -> bool {
    s.contains('\n')
        && s.split('\n').any(|l| !l.is_empty())
        && !s
            .split('\n')
            .find(|l| !l.is_empty())
            .is_some_and(|l| l.starts_with([' ', '\t']))
        && s.split('\n').all(|l| l.is_empty() || !l.trim().is_empty())
        && !s.chars().any(|c| c != '\n' && c != '\t' && needs_escape(c))
}

fn write_literal(out: &mut String, s: &str, indent: usize) {
    let (header, body) = match s.strip_suffix('\n') {
        None => ("|-", s),
        Some(rest) if rest.ends_with('\n') => ("|+", rest),
        Some(rest) => ("|", rest),
    };
    out.push_str(header);
    for line in body.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            pad(out, indent);
            out.push_str(line);
        }
    }
}

/// Whether `s` reads back as the same string, unquoted, under YAML 1.1 and 1.2, in a key or a
/// value. Deliberately narrow: anything doubtful is quoted.
fn plain_ok(s: &str) -> bool {
    let bytes = s.as_bytes();
    let Some(&first) = bytes.first() else {
        return false;
    };
    let first_ok = first.is_ascii_alphabetic()
        || matches!(first, b'/' | b'_' | b'$' | b'(')
        || (first == b'-'
            && bytes
                .get(1)
                .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'-'));
    first_ok
        && !s.ends_with([' ', ':'])
        && !s.contains(": ")
        && bytes.iter().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b' ' | b'-'
                        | b'_'
                        | b'.'
                        | b'/'
                        | b'+'
                        | b':'
                        | b'@'
                        | b'('
                        | b')'
                        | b'$'
                        | b'='
                        | b','
                )
        })
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null"
        )
}
