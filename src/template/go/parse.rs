//! Builds the tree of a Go template from its segments: text, output actions, `if` / `else if` /
//! `else`, `range` (with `$i, $v :=`), `with`, variable declarations and pipelines.
//!
//! Mirrors Go's `text/template/parse/parse.go` for that subset. Everything else Go accepts
//! (`define`, `template`, `block`, `break`, `continue`, assignment with `=`, `else with`) is
//! refused here with its position, so a template that loads is one this project renders.

use super::GoError;
use super::lex::{Segment, Tok, Token};

/// A node of the template tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// Literal text.
    Text(String),
    /// `{{ pipeline }}`: prints the value, or declares variables (`{{ $x := … }}`).
    Action(Pipeline),
    /// `{{ if }}` with its `else if` branches and `else`.
    If {
        /// Conditions and their bodies, in order.
        branches: Vec<(Pipeline, Vec<Node>)>,
        /// The `else` body.
        otherwise: Option<Vec<Node>>,
    },
    /// `{{ range }}`.
    Range {
        /// What to iterate over; its `decl` names the key and value variables.
        pipe: Pipeline,
        /// Rendered per item, with `.` the item.
        body: Vec<Node>,
        /// Rendered when there is no item.
        otherwise: Option<Vec<Node>>,
    },
    /// `{{ with }}`.
    With {
        /// The value `.` becomes.
        pipe: Pipeline,
        /// Rendered when the value is not empty.
        body: Vec<Node>,
        /// Rendered when it is.
        otherwise: Option<Vec<Node>>,
    },
}

/// `$x := cmd | cmd …`
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    /// Variables declared (`$i, $v :=` in `range`, `$x :=` elsewhere), without the `$`.
    pub decl: Vec<String>,
    /// The commands; each one's value is the last argument of the next.
    pub commands: Vec<Command>,
    /// Byte offset of the pipeline.
    pub at: usize,
}

/// A command: a function call or a single value.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// The operands; a function call's first operand is [`Operand::Function`].
    pub operands: Vec<Operand>,
    /// Byte offset of the command.
    pub at: usize,
}

/// An operand of a command.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// `.`
    Dot,
    /// `.A.B`
    Field(Vec<String>),
    /// `$x.A` (empty name for `$`).
    Var(String, Vec<String>),
    /// A function name.
    Function(String),
    /// A string constant.
    Str(String),
    /// An integer constant.
    Int(i64),
    /// A float constant.
    Float(f64),
    /// `true` or `false`.
    Bool(bool),
    /// `( pipeline )`.
    Pipe(Box<Pipeline>),
}

/// How a list of nodes ended: the template's end, `{{ end }}`, or `{{ else [if …] }}`.
enum Stop {
    Eof,
    End,
    Else(Option<Pipeline>),
}

/// Parses the segments into a node list.
pub fn parse(segments: Vec<Segment>) -> Result<Vec<Node>, GoError> {
    let mut parser = Parser {
        segments: segments.into_iter(),
        depth: 0,
    };
    let (nodes, end, at) = parser.list()?;
    match end {
        Stop::Eof => Ok(nodes),
        Stop::End => Err(GoError::new(at, "unexpected `end`")),
        Stop::Else(_) => Err(GoError::new(at, "unexpected `else`")),
    }
}

struct Parser {
    segments: std::vec::IntoIter<Segment>,
    /// How many blocks (`if`, `range`, `with`) enclose the current list.
    depth: usize,
}

/// How deep blocks and parentheses may nest: Istio's templates nest three or four levels, and
/// the parser (and upon's, after translation) recurses per level, so a text nested without
/// bound would overflow the stack (the policy's wasm stack is 1 MiB).
pub const MAX_DEPTH: usize = 64;

impl Parser {
    /// Nodes up to `end`, `else` or the end of the template; the offset is the terminator's.
    fn list(&mut self) -> Result<(Vec<Node>, Stop, usize), GoError> {
        self.depth += 1;
        let listed = self.list_inner();
        self.depth -= 1;
        listed
    }

    fn list_inner(&mut self) -> Result<(Vec<Node>, Stop, usize), GoError> {
        let mut nodes = Vec::new();
        while let Some(segment) = self.segments.next() {
            let (tokens, at) = match segment {
                Segment::Text(text) => {
                    nodes.push(Node::Text(text));
                    continue;
                }
                Segment::Action { tokens, at } => (tokens, at),
            };
            let keyword = match tokens.first() {
                Some(Token {
                    kind: Tok::Ident(name),
                    ..
                }) => name.as_str(),
                None => return Err(GoError::new(at, "missing value for command")),
                _ => "",
            };
            let rest = tokens.get(1..).unwrap_or_default();
            if matches!(keyword, "if" | "range" | "with") && self.depth >= MAX_DEPTH {
                return Err(GoError::new(
                    at,
                    format!("blocks nest more than {MAX_DEPTH} deep"),
                ));
            }
            match keyword {
                "end" => {
                    if !rest.is_empty() {
                        return Err(GoError::new(at, "unexpected words after `end`"));
                    }
                    return Ok((nodes, Stop::End, at));
                }
                "else" => {
                    return match rest.first().map(|t| &t.kind) {
                        None => Ok((nodes, Stop::Else(None), at)),
                        Some(Tok::Ident(word)) if word == "if" => {
                            let cond = pipeline(rest.get(1..).unwrap_or_default(), at, false)?;
                            Ok((nodes, Stop::Else(Some(cond)), at))
                        }
                        Some(Tok::Ident(word)) => Err(GoError::new(
                            at,
                            format!("`else {word}` is not supported; only `else if`"),
                        )),
                        Some(_) => Err(GoError::new(at, "unexpected words after `else`")),
                    };
                }
                "if" => nodes.push(self.if_chain(pipeline(rest, at, false)?, at)?),
                "range" => {
                    let pipe = pipeline(rest, at, true)?;
                    let (body, otherwise) = self.body("range", at)?;
                    nodes.push(Node::Range {
                        pipe,
                        body,
                        otherwise,
                    });
                }
                "with" => {
                    let pipe = pipeline(rest, at, false)?;
                    let (body, otherwise) = self.body("with", at)?;
                    nodes.push(Node::With {
                        pipe,
                        body,
                        otherwise,
                    });
                }
                "define" | "template" | "block" | "break" | "continue" => {
                    return Err(GoError::new(
                        at,
                        format!("`{keyword}` is not supported in sidecar templates"),
                    ));
                }
                _ => nodes.push(Node::Action(pipeline(&tokens, at, true)?)),
            }
        }
        Ok((nodes, Stop::Eof, usize::MAX))
    }

    /// The body of `range` or `with` and its optional `else`, up to `end`.
    fn body(&mut self, what: &str, at: usize) -> Result<(Vec<Node>, Option<Vec<Node>>), GoError> {
        let (body, end, end_at) = self.list()?;
        match end {
            Stop::End => Ok((body, None)),
            Stop::Else(None) => {
                let (otherwise, end, end_at) = self.list()?;
                match end {
                    Stop::End => Ok((body, Some(otherwise))),
                    _ => Err(unclosed(what, at, end_at)),
                }
            }
            Stop::Else(Some(_)) => Err(GoError::new(
                end_at,
                format!("`else if` is not allowed in `{what}`"),
            )),
            Stop::Eof => Err(unclosed(what, at, end_at)),
        }
    }

    /// An `if` and its `else if` / `else` branches, up to the one `end` they share.
    fn if_chain(&mut self, first: Pipeline, at: usize) -> Result<Node, GoError> {
        let mut branches = Vec::new();
        let mut cond = first;
        loop {
            let (body, end, end_at) = self.list()?;
            branches.push((cond, body));
            match end {
                Stop::End => {
                    return Ok(Node::If {
                        branches,
                        otherwise: None,
                    });
                }
                Stop::Else(Some(next)) => cond = next,
                Stop::Else(None) => {
                    let (otherwise, end, end_at) = self.list()?;
                    return match end {
                        Stop::End => Ok(Node::If {
                            branches,
                            otherwise: Some(otherwise),
                        }),
                        _ => Err(unclosed("if", at, end_at)),
                    };
                }
                Stop::Eof => return Err(unclosed("if", at, end_at)),
            }
        }
    }
}

fn unclosed(what: &str, at: usize, end_at: usize) -> GoError {
    let _ = end_at;
    GoError::new(at, format!("`{what}` has no matching `end`"))
}

/// Parses a pipeline; `allow_decl` lets it start with `$x :=` (or `$i, $v :=` in `range`).
fn pipeline(tokens: &[Token], at: usize, allow_decl: bool) -> Result<Pipeline, GoError> {
    let mut rest = tokens;
    let mut decl = Vec::new();
    let declared = |t: &[Token]| -> Option<(Vec<String>, usize)> {
        match t {
            [
                Token {
                    kind: Tok::Var(a, ca),
                    ..
                },
                Token {
                    kind: Tok::Comma, ..
                },
                Token {
                    kind: Tok::Var(b, cb),
                    ..
                },
                Token {
                    kind: Tok::Declare, ..
                },
                ..,
            ] if ca.is_empty() && cb.is_empty() => Some((vec![a.clone(), b.clone()], 4)),
            [
                Token {
                    kind: Tok::Var(a, ca),
                    ..
                },
                Token {
                    kind: Tok::Declare, ..
                },
                ..,
            ] if ca.is_empty() => Some((vec![a.clone()], 2)),
            _ => None,
        }
    };
    if let Some((names, used)) = declared(rest) {
        if !allow_decl {
            return Err(GoError::new(
                at,
                "declaring variables here is not supported; declare them in their own action",
            ));
        }
        if names.iter().any(String::is_empty) {
            return Err(GoError::new(at, "`$` cannot be declared"));
        }
        decl = names;
        rest = rest.get(used..).unwrap_or_default();
    } else if matches!(
        rest,
        [
            Token {
                kind: Tok::Var(..),
                ..
            },
            Token {
                kind: Tok::Assign,
                ..
            },
            ..
        ]
    ) {
        return Err(GoError::new(
            at,
            "assigning to a variable with `=` is not supported",
        ));
    }
    let (pipe, used) = commands(rest, at, 0)?;
    if let Some(extra) = rest.get(used) {
        return Err(GoError::new(extra.at, "unexpected `)`"));
    }
    Ok(Pipeline {
        decl,
        commands: pipe,
        at,
    })
}

/// Commands separated by `|`, up to the end of `tokens` or an unmatched `)`; returns how many
/// tokens they used.
fn commands(tokens: &[Token], at: usize, depth: usize) -> Result<(Vec<Command>, usize), GoError> {
    if depth >= MAX_DEPTH {
        return Err(GoError::new(
            at,
            format!("parentheses nest more than {MAX_DEPTH} deep"),
        ));
    }
    let mut pipe = Vec::new();
    let mut i = 0;
    loop {
        let start = tokens.get(i).map_or(at, |t| t.at);
        let mut operands = Vec::new();
        while let Some(token) = tokens.get(i) {
            let operand = match &token.kind {
                Tok::Pipe | Tok::RParen => break,
                Tok::Dot => Operand::Dot,
                Tok::Field(chain) => Operand::Field(chain.clone()),
                Tok::Var(name, chain) => Operand::Var(name.clone(), chain.clone()),
                Tok::Str(s) => Operand::Str(s.clone()),
                Tok::Int(n) => Operand::Int(*n),
                Tok::Float(f) => Operand::Float(*f),
                Tok::Ident(word) => match word.as_str() {
                    "true" => Operand::Bool(true),
                    "false" => Operand::Bool(false),
                    "nil" => {
                        return Err(GoError::new(token.at, "`nil` is not supported"));
                    }
                    "if" | "else" | "end" | "range" | "with" | "define" | "template" | "block"
                    | "break" | "continue" => {
                        return Err(GoError::new(
                            token.at,
                            format!("unexpected keyword `{word}` in a pipeline"),
                        ));
                    }
                    _ => Operand::Function(word.clone()),
                },
                Tok::LParen => {
                    let inner = tokens.get(i + 1..).unwrap_or_default();
                    let (nested, used) = commands(inner, token.at, depth + 1)?;
                    match inner.get(used) {
                        Some(Token {
                            kind: Tok::RParen, ..
                        }) => {}
                        _ => return Err(GoError::new(token.at, "unclosed `(`")),
                    }
                    i += used + 1;
                    Operand::Pipe(Box::new(Pipeline {
                        decl: Vec::new(),
                        commands: nested,
                        at: token.at,
                    }))
                }
                Tok::Declare | Tok::Assign | Tok::Comma => {
                    return Err(GoError::new(token.at, "unexpected `:=`, `=` or `,`"));
                }
            };
            operands.push(operand);
            i += 1;
        }
        if operands.is_empty() {
            return Err(GoError::new(start, "missing value for command"));
        }
        pipe.push(Command {
            operands,
            at: start,
        });
        match tokens.get(i) {
            Some(Token {
                kind: Tok::Pipe, ..
            }) => i += 1,
            _ => return Ok((pipe, i)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::lex::{Delims, segments};
    use super::*;

    fn tree(source: &str) -> Result<Vec<Node>, GoError> {
        parse(segments(source, Delims::BRACES)?)
    }

    #[test]
    fn else_if_chains_share_one_end() {
        let nodes = tree("{{ if .A }}a{{ else if .B }}b{{ else }}c{{ end }}").unwrap();
        let [
            Node::If {
                branches,
                otherwise,
            },
        ] = nodes.as_slice()
        else {
            panic!("{nodes:?}")
        };
        assert_eq!(branches.len(), 2);
        assert_eq!(otherwise.as_deref(), Some(&[Node::Text("c".into())][..]));
    }

    #[test]
    fn range_declares_index_and_value() {
        let nodes = tree("{{ range $i, $c := .Spec.Containers }}{{ $c.Name }}{{ end }}").unwrap();
        let [Node::Range { pipe, .. }] = nodes.as_slice() else {
            panic!("{nodes:?}")
        };
        assert_eq!(pipe.decl, vec!["i".to_string(), "c".to_string()]);
    }

    #[test]
    fn parenthesized_pipelines_nest() {
        let nodes = tree(r#"{{ or (index .A "k") .B | printf "%s" }}"#).unwrap();
        let [Node::Action(pipe)] = nodes.as_slice() else {
            panic!("{nodes:?}")
        };
        assert_eq!(pipe.commands.len(), 2);
        assert!(matches!(&pipe.commands[0].operands[1], Operand::Pipe(_)));
    }

    #[test]
    fn unsupported_constructs_are_named() {
        for (source, construct) in [
            ("{{ define \"x\" }}{{ end }}", "`define`"),
            ("{{ template \"x\" }}", "`template`"),
            ("{{ $x = 1 }}", "`=`"),
            ("{{ if .A }}", "`if` has no matching `end`"),
            ("{{ end }}", "unexpected `end`"),
            ("{{ eq nil .A }}", "`nil`"),
        ] {
            let e = tree(source).unwrap_err();
            assert!(e.message.contains(construct), "{source}: {}", e.message);
        }
    }
}
