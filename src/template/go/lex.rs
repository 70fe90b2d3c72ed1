//! Splits a Go `text/template` into literal text and actions, and an action into tokens.
//!
//! Follows Go's `text/template/parse/lex.go` where Istio's templates need it: both delimiter
//! pairs (`{{ }}` and Istio 0.8's `[[ ]]`), the trim markers `{{- ` and ` -}}` (which remove all
//! whitespace on that side, newlines included), comments `{{/* */}}`, interpreted and raw
//! strings, numbers, field chains (`.A.B`) and variables (`$x.A`).

use super::GoError;

/// The delimiters of a Go template's actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delims {
    /// Opens an action: `{{` or `[[`.
    pub left: &'static str,
    /// Closes an action: `}}` or `]]`.
    pub right: &'static str,
}

impl Delims {
    /// Go's own delimiters, used by Istio up to 0.7.
    pub const BRACES: Self = Self {
        left: "{{",
        right: "}}",
    };
    /// The delimiters Istio 0.8 to 1.0 parse sidecar templates with (Helm owns `{{ }}` there).
    pub const BRACKETS: Self = Self {
        left: "[[",
        right: "]]",
    };
}

/// A piece of the template: text to copy, or an action's tokens.
#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    /// Literal text, already trimmed by its neighbours' trim markers.
    Text(String),
    /// An action (comments produce none); `at` is the byte offset of its left delimiter.
    Action { tokens: Vec<Token>, at: usize },
}

/// One token of an action, with the byte offset it starts at.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// What it is.
    pub kind: Tok,
    /// Byte offset in the template.
    pub at: usize,
}

/// The kinds of token an action holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// `.` alone: the current value.
    Dot,
    /// `.A.B`: a field chain on the current value.
    Field(Vec<String>),
    /// `$`, `$x`, `$x.A.B`: a variable (empty name for `$`) and a field chain on it.
    Var(String, Vec<String>),
    /// A keyword, function name, `true`, `false` or `nil`.
    Ident(String),
    /// A string constant, unquoted.
    Str(String),
    /// An integer constant.
    Int(i64),
    /// A floating-point constant.
    Float(f64),
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `|`
    Pipe,
    /// `:=`
    Declare,
    /// `=`
    Assign,
    /// `,`
    Comma,
}

/// Splits `source` into segments.
pub fn segments(source: &str, delims: Delims) -> Result<Vec<Segment>, GoError> {
    let mut out = Vec::new();
    let mut pos = 0;
    let mut trim_next = false;
    while pos <= source.len() {
        let rest = source.get(pos..).unwrap_or_default();
        let Some(found) = rest.find(delims.left) else {
            let text = if trim_next { rest.trim_start() } else { rest };
            out.push(Segment::Text(text.to_string()));
            break;
        };
        let start = pos + found;
        let after_left = start + delims.left.len();
        let trim_before = has_left_trim(source.get(after_left..).unwrap_or_default());
        let mut text = rest.get(..found).unwrap_or_default();
        if trim_next {
            text = text.trim_start();
        }
        if trim_before {
            text = text.trim_end();
        }
        out.push(Segment::Text(text.to_string()));
        let body = if trim_before {
            after_left + 2
        } else {
            after_left
        };
        let (tokens, end, trim_after) = action(source, start, body, delims)?;
        if let Some(tokens) = tokens {
            out.push(Segment::Action { tokens, at: start });
        }
        trim_next = trim_after;
        pos = end;
    }
    // Texts a comment separated are one text: as two, the end of one and the start of the next
    // could not be told apart from a delimiter written across them.
    let mut merged: Vec<Segment> = Vec::with_capacity(out.len());
    for segment in out {
        match (merged.last_mut(), segment) {
            (Some(Segment::Text(previous)), Segment::Text(next)) => previous.push_str(&next),
            (_, segment) => merged.push(segment),
        }
    }
    merged.retain(|s| !matches!(s, Segment::Text(t) if t.is_empty()));
    Ok(merged)
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

/// `{{- `: a dash then a space.
fn has_left_trim(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && b.first() == Some(&b'-') && b.get(1).is_some_and(|c| is_space(*c))
}

/// Lexes one action starting at `pos` (just after the left delimiter at `open` and its trim
/// marker).
/// Returns its tokens (none for a comment), where the template continues, and whether the
/// action ends with a trim marker.
fn action(
    source: &str,
    open: usize,
    mut pos: usize,
    delims: Delims,
) -> Result<(Option<Vec<Token>>, usize, bool), GoError> {
    let bytes = source.as_bytes();
    let at_right = |p: usize| -> Option<(usize, bool)> {
        let rest = source.get(p..)?;
        if rest.starts_with(delims.right) {
            return Some((p + delims.right.len(), false));
        }
        let b = rest.as_bytes();
        if b.len() >= 2
            && b.first().is_some_and(|c| is_space(*c))
            && b.get(1) == Some(&b'-')
            && rest.get(2..).is_some_and(|r| r.starts_with(delims.right))
        {
            return Some((p + 2 + delims.right.len(), true));
        }
        None
    };
    // A comment: `/*` right after the delimiter, `*/` right before the closing one.
    if source.get(pos..).is_some_and(|r| r.starts_with("/*")) {
        let close = source
            .get(pos + 2..)
            .and_then(|r| r.find("*/"))
            .ok_or_else(|| GoError::new(pos, "unclosed comment"))?;
        let after = pos + 2 + close + 2;
        return match at_right(after) {
            Some((end, trim)) => Ok((None, end, trim)),
            None => Err(GoError::new(
                after,
                "comment ends before the closing delimiter",
            )),
        };
    }
    let mut tokens = Vec::new();
    loop {
        if let Some((end, trim)) = at_right(pos) {
            return Ok((Some(tokens), end, trim));
        }
        let Some(&c) = bytes.get(pos) else {
            return Err(GoError::new(
                open,
                format!("unclosed action: `{}` missing", delims.right),
            ));
        };
        let start = pos;
        let push = |tokens: &mut Vec<Token>, kind: Tok| tokens.push(Token { kind, at: start });
        match c {
            c if is_space(c) => pos += 1,
            b'(' => {
                push(&mut tokens, Tok::LParen);
                pos += 1;
            }
            b')' => {
                push(&mut tokens, Tok::RParen);
                pos += 1;
                if bytes.get(pos) == Some(&b'.') {
                    return Err(GoError::new(
                        pos,
                        "a field of a parenthesized value (`(…).Field`) is not supported; use `index`",
                    ));
                }
            }
            b'|' => {
                push(&mut tokens, Tok::Pipe);
                pos += 1;
            }
            b',' => {
                push(&mut tokens, Tok::Comma);
                pos += 1;
            }
            b':' if bytes.get(pos + 1) == Some(&b'=') => {
                push(&mut tokens, Tok::Declare);
                pos += 2;
            }
            b'=' => {
                push(&mut tokens, Tok::Assign);
                pos += 1;
            }
            b'"' => {
                let (text, end) = interpreted_string(source, pos)?;
                push(&mut tokens, Tok::Str(text));
                pos = end;
            }
            b'`' => {
                let close = source
                    .get(pos + 1..)
                    .and_then(|r| r.find('`'))
                    .ok_or_else(|| GoError::new(pos, "unterminated raw string"))?;
                let text = source.get(pos + 1..pos + 1 + close).unwrap_or_default();
                push(&mut tokens, Tok::Str(text.to_string()));
                pos += close + 2;
            }
            b'\'' => return Err(GoError::new(pos, "character constants are not supported")),
            b'.' if bytes.get(pos + 1).is_some_and(u8::is_ascii_digit) => {
                let (kind, end) = number(source, pos)?;
                push(&mut tokens, kind);
                pos = end;
            }
            b'.' => {
                let (chain, end) = field_chain(source, pos);
                push(
                    &mut tokens,
                    if chain.is_empty() {
                        Tok::Dot
                    } else {
                        Tok::Field(chain)
                    },
                );
                pos = end;
            }
            b'$' => {
                let name_end = ident_end(source, pos + 1);
                let name = source
                    .get(pos + 1..name_end)
                    .unwrap_or_default()
                    .to_string();
                let (chain, end) = field_chain(source, name_end);
                push(&mut tokens, Tok::Var(name, chain));
                pos = end;
            }
            b'0'..=b'9' | b'-' | b'+' => {
                let (kind, end) = number(source, pos)?;
                push(&mut tokens, kind);
                pos = end;
            }
            c if c == b'_' || c.is_ascii_alphabetic() => {
                let end = ident_end(source, pos);
                let name = source.get(pos..end).unwrap_or_default().to_string();
                if bytes.get(end) == Some(&b'.') {
                    return Err(GoError::new(end, format!("unexpected `.` after `{name}`")));
                }
                push(&mut tokens, Tok::Ident(name));
                pos = end;
            }
            _ => {
                let ch = source
                    .get(pos..)
                    .and_then(|r| r.chars().next())
                    .unwrap_or('?');
                return Err(GoError::new(
                    pos,
                    format!("unexpected character `{ch}` in action"),
                ));
            }
        }
    }
}

/// End of the identifier starting at `pos` (letters, digits, `_`).
fn ident_end(source: &str, pos: usize) -> usize {
    let bytes = source.as_bytes();
    let mut end = pos;
    while bytes
        .get(end)
        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
    {
        end += 1;
    }
    end
}

/// `.A.B.C` from `pos`: the names (empty for a lone `.`) and where the chain ends.
fn field_chain(source: &str, mut pos: usize) -> (Vec<String>, usize) {
    let bytes = source.as_bytes();
    let mut chain = Vec::new();
    if bytes.get(pos) == Some(&b'.') && chain.is_empty() {
        // `.` alone, or the first field.
        let end = ident_end(source, pos + 1);
        if end == pos + 1 {
            return (chain, pos + 1);
        }
    }
    while bytes.get(pos) == Some(&b'.') {
        let end = ident_end(source, pos + 1);
        if end == pos + 1 {
            break;
        }
        chain.push(source.get(pos + 1..end).unwrap_or_default().to_string());
        pos = end;
    }
    (chain, pos)
}

/// A number constant: decimal or hex integer, or a decimal float.
fn number(source: &str, pos: usize) -> Result<(Tok, usize), GoError> {
    let bytes = source.as_bytes();
    let mut end = pos;
    if matches!(bytes.get(end), Some(b'-' | b'+')) {
        end += 1;
    }
    while bytes.get(end).is_some_and(|c| {
        c.is_ascii_alphanumeric()
            || *c == b'.'
            || *c == b'_'
            || (matches!(c, b'-' | b'+')
                && matches!(bytes.get(end.wrapping_sub(1)), Some(b'e' | b'E')))
    }) {
        end += 1;
    }
    let text: String = source
        .get(pos..end)
        .unwrap_or_default()
        .chars()
        .filter(|c| *c != '_')
        .collect();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, text.strip_prefix('+').unwrap_or(&text)),
    };
    let bad = || GoError::new(pos, format!("bad number syntax: `{text}`"));
    let parsed = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        i64::from_str_radix(hex, 16).ok().map(Tok::Int)
    } else if digits.bytes().all(|c| c.is_ascii_digit()) && !digits.is_empty() {
        digits.parse::<i64>().ok().map(Tok::Int)
    } else {
        digits
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Tok::Float)
    };
    match parsed.ok_or_else(bad)? {
        Tok::Int(i) if negative => Ok((Tok::Int(-i), end)),
        Tok::Float(f) if negative => Ok((Tok::Float(-f), end)),
        other => Ok((other, end)),
    }
}

/// A `"…"` string with Go's escapes, from its opening quote; returns the text and its end.
fn interpreted_string(source: &str, pos: usize) -> Result<(String, usize), GoError> {
    let mut out = String::new();
    let mut chars = source
        .get(pos + 1..)
        .unwrap_or_default()
        .char_indices()
        .map(|(i, c)| (pos + 1 + i, c));
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, i + 1)),
            '\n' => break,
            '\\' => {
                let Some((j, esc)) = chars.next() else { break };
                match esc {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    'a' => out.push('\u{7}'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'v' => out.push('\u{b}'),
                    '\\' | '"' | '\'' => out.push(esc),
                    'x' | 'u' | 'U' => {
                        let len = match esc {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let hex: String = (0..len)
                            .filter_map(|_| chars.next().map(|(_, c)| c))
                            .collect();
                        let ch = u32::from_str_radix(&hex, 16)
                            .ok()
                            .and_then(char::from_u32)
                            .ok_or_else(|| GoError::new(j, format!("bad escape `\\{esc}{hex}`")))?;
                        out.push(ch);
                    }
                    other => {
                        return Err(GoError::new(
                            j,
                            format!("unknown escape sequence `\\{other}`"),
                        ));
                    }
                }
            }
            c => out.push(c),
        }
    }
    Err(GoError::new(pos, "unterminated quoted string"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(source: &str) -> Vec<Segment> {
        segments(source, Delims::BRACKETS).unwrap()
    }

    #[test]
    fn trim_markers_remove_whitespace_and_newlines_on_their_side() {
        let s = kinds("a  \n[[- .X -]]\n  b");
        assert_eq!(s.len(), 3);
        assert_eq!(s[0], Segment::Text("a".into()));
        assert_eq!(s[2], Segment::Text("b".into()));
    }

    #[test]
    fn dash_without_space_is_a_number_not_a_trim_marker() {
        let s = kinds("[[-3]]");
        assert!(matches!(&s[0], Segment::Action { tokens, .. } if tokens[0].kind == Tok::Int(-3)));
    }

    #[test]
    fn fields_variables_and_strings() {
        let s = kinds(r#"[[ index .ObjectMeta.Labels "a]]b" $x.Name `raw` ]]"#);
        let Segment::Action { tokens, .. } = &s[0] else {
            panic!("{s:?}")
        };
        let kinds: Vec<_> = tokens.iter().map(|t| t.kind.clone()).collect();
        assert_eq!(
            kinds,
            vec![
                Tok::Ident("index".into()),
                Tok::Field(vec!["ObjectMeta".into(), "Labels".into()]),
                Tok::Str("a]]b".into()),
                Tok::Var("x".into(), vec!["Name".into()]),
                Tok::Str("raw".into()),
            ]
        );
    }

    #[test]
    fn comments_produce_nothing() {
        assert_eq!(kinds("a[[/* c ]] */]]b"), vec![Segment::Text("ab".into())]);
    }

    #[test]
    fn unclosed_action_names_the_delimiter() {
        let e = segments("x [[ .A ", Delims::BRACKETS).unwrap_err();
        assert!(e.message.contains("`]]` missing"), "{e:?}");
    }

    #[test]
    fn escapes_in_strings() {
        let s = kinds(r#"[[ "a\n\x41\u00e9\"" ]]"#);
        let Segment::Action { tokens, .. } = &s[0] else {
            panic!()
        };
        assert_eq!(tokens[0].kind, Tok::Str("a\nAé\"".into()));
    }
}
