//! Writes a parsed Go template as an upon template that renders the same text.
//!
//! upon expressions are a value and a chain of filters whose arguments are plain values, so a
//! Go pipeline is written in A-normal form: every call is bound to a fresh variable with
//! `{% with … as gtN %}` before the value is used. Go's `.` becomes the variable it stands for
//! (`range` and `with` bind it), its field names become the data's JSON names, and every member
//! access is optional (`?.`): a missing field is Go's zero value, not an error. Printing goes
//! through the same formatter as upon templates, so a pod's values stay data whatever the dialect.

use super::GoError;
use super::functions::{self, RANGE, upon_names};
use super::parse::{Command, Node, Operand, Pipeline};

/// The upon text, and where its tags came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Translation {
    /// The upon template.
    pub text: String,
    /// `(offset in text, offset in the Go template)` for each tag written, in text order.
    pub positions: Vec<(usize, usize)>,
}

/// The names the template data has at its top level, as Go and the data spell them.
/// `NativeSidecars` is Istio's (≥ 1.19) name for the injector's choice of placement.
pub const ROOTS: [&str; 5] = [
    "ObjectMeta",
    "Spec",
    "ProxyConfig",
    "MeshConfig",
    "NativeSidecars",
];

/// Fields whose value is a map: the names after them are keys, kept as written.
const MAP_FIELDS: [&str; 5] = [
    "Labels",
    "Annotations",
    "NodeSelector",
    "ProxyMetadata",
    "Data",
];

/// Translates the parsed template.
pub fn emit(nodes: &[Node]) -> Result<Translation, GoError> {
    let mut emitter = Emitter {
        out: String::new(),
        positions: Vec::new(),
        next: 0,
        vars: Vec::new(),
        depth: 0,
    };
    emitter.list(nodes, &Dot::Root)?;
    Ok(Translation {
        text: emitter.out,
        positions: emitter.positions,
    })
}

/// What `.` is: the data, or an upon variable.
#[derive(Debug, Clone)]
enum Dot {
    Root,
    Local(String),
}

struct Emitter {
    out: String,
    positions: Vec<(usize, usize)>,
    next: usize,
    /// Go variables in scope (without `$`) and the upon expression each stands for.
    vars: Vec<(String, String)>,
    /// upon blocks open at the point being written.
    depth: usize,
}

/// How deep the upon text may nest. upon's compiler recurses once per block, and a flat Go
/// text can nest without bound once translated (every `else if`, and every variable, stays open
/// to the end of its list); Istio's templates need about ten.
pub const MAX_NESTING: usize = 200;

impl Emitter {
    fn fresh(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}{}", self.next)
    }

    /// Writes a tag that came from the Go template at `at`.
    fn tag(&mut self, text: &str, at: usize) {
        self.positions.push((self.out.len(), at));
        self.out.push_str(text);
    }

    fn close(&mut self, withs: usize) {
        for _ in 0..withs {
            self.out.push_str("{% endwith %}");
        }
        self.leave(withs);
    }

    /// Counts `levels` more open upon blocks; refuses a template that nests too deep.
    fn enter(&mut self, levels: usize, at: usize) -> Result<(), GoError> {
        self.depth += levels;
        if self.depth > MAX_NESTING {
            return Err(GoError::new(
                at,
                format!(
                    "the template nests more than {MAX_NESTING} levels once translated (each block, \
                     `else if` and variable adds one); split it"
                ),
            ));
        }
        Ok(())
    }

    fn leave(&mut self, levels: usize) {
        self.depth = self.depth.saturating_sub(levels);
    }

    fn list(&mut self, nodes: &[Node], dot: &Dot) -> Result<(), GoError> {
        let mut open = 0;
        let scope = self.vars.len();
        for node in nodes {
            match node {
                Node::Text(text) => self.text(text),
                Node::Action(pipe) if !pipe.decl.is_empty() => {
                    let value = self.pipeline(pipe, dot, &mut open)?;
                    for name in &pipe.decl {
                        let var = self.fresh("gv");
                        self.enter(1, pipe.at)?;
                        self.tag(&format!("{{% with {value} as {var} %}}"), pipe.at);
                        open += 1;
                        self.vars.push((name.clone(), var));
                    }
                }
                Node::Action(pipe) => {
                    let mut temps = 0;
                    let value = self.pipeline(pipe, dot, &mut temps)?;
                    self.tag(&format!("{{{{ {value} }}}}"), pipe.at);
                    self.close(temps);
                }
                Node::If {
                    branches,
                    otherwise,
                } => self.branches(branches, otherwise.as_deref(), dot)?,
                Node::Range {
                    pipe,
                    body,
                    otherwise,
                } => self.range(pipe, body, otherwise.as_deref(), dot)?,
                Node::With {
                    pipe,
                    body,
                    otherwise,
                } => {
                    let mut temps = 0;
                    let value = self.pipeline(pipe, dot, &mut temps)?;
                    let var = self.bind(value, pipe.at, &mut temps, "gw")?;
                    self.enter(1, pipe.at)?;
                    self.tag(&format!("{{% if {var} %}}"), pipe.at);
                    self.list(body, &Dot::Local(var))?;
                    if let Some(otherwise) = otherwise {
                        self.out.push_str("{% else %}");
                        self.list(otherwise, dot)?;
                    }
                    self.out.push_str("{% endif %}");
                    self.leave(1);
                    self.close(temps);
                }
            }
        }
        self.vars.truncate(scope);
        self.close(open);
        Ok(())
    }

    /// Literal text; upon's own delimiters in it (which upon's lexer would read, or refuse as
    /// unbalanced) are written as string values.
    fn text(&mut self, text: &str) {
        let mut rest = text;
        // A `}` just after a tag would be read as part of its end (`}}}`).
        if let Some(after) = rest.strip_prefix('}') {
            self.out.push_str("{{ \"}\" }}");
            rest = after;
        }
        while let Some(i) = ["{{", "{%", "{#", "}}", "%}", "#}"]
            .iter()
            .filter_map(|d| rest.find(d))
            .min()
        {
            let (before, after) = rest.split_at(i);
            self.out.push_str(before);
            let (delim, after) = after.split_at(2);
            self.out.push_str(&format!("{{{{ \"{delim}\" }}}}"));
            rest = after;
        }
        // A `{` just before the next tag would make an upon delimiter with it (`{{{`, `{{%`).
        match rest.strip_suffix('{') {
            Some(before) => {
                self.out.push_str(before);
                self.out.push_str("{{ \"{\" }}");
            }
            None => self.out.push_str(rest),
        }
    }

    fn branches(
        &mut self,
        branches: &[(Pipeline, Vec<Node>)],
        otherwise: Option<&[Node]>,
        dot: &Dot,
    ) -> Result<(), GoError> {
        let Some(((cond, body), later)) = branches.split_first() else {
            if let Some(otherwise) = otherwise {
                self.list(otherwise, dot)?;
            }
            return Ok(());
        };
        let mut temps = 0;
        let value = self.pipeline(cond, dot, &mut temps)?;
        self.enter(1, cond.at)?;
        self.tag(&format!("{{% if {value} %}}"), cond.at);
        self.list(body, dot)?;
        if !later.is_empty() || otherwise.is_some() {
            self.out.push_str("{% else %}");
            // `else if` evaluates its condition only when reached, as Go does.
            self.branches(later, otherwise, dot)?;
        }
        self.out.push_str("{% endif %}");
        self.leave(1);
        self.close(temps);
        Ok(())
    }

    fn range(
        &mut self,
        pipe: &Pipeline,
        body: &[Node],
        otherwise: Option<&[Node]>,
        dot: &Dot,
    ) -> Result<(), GoError> {
        let mut temps = 0;
        let value = self.pipeline(pipe, dot, &mut temps)?;
        let [c1, ..] = upon_names::CALL;
        let items = self.bind(
            format!("{value} | {c1}: \"{RANGE}\""),
            pipe.at,
            &mut temps,
            "gr",
        )?;
        let item = self.fresh("gi");
        let key = self.fresh("gk");
        let current = self.fresh("gd");
        self.enter(4, pipe.at)?;
        self.tag(
            &format!(
                "{{% if {items} %}}{{% for {item} in {items} %}}{{% with {item}.0 as {key} %}}{{% with {item}.1 as {current} %}}"
            ),
            pipe.at,
        );
        let scope = self.vars.len();
        match pipe.decl.as_slice() {
            [] => {}
            [value] => self.vars.push((value.clone(), current.clone())),
            [k, v, ..] => {
                self.vars.push((k.clone(), key.clone()));
                self.vars.push((v.clone(), current.clone()));
            }
        }
        self.list(body, &Dot::Local(current))?;
        self.vars.truncate(scope);
        self.out.push_str("{% endwith %}{% endwith %}{% endfor %}");
        if let Some(otherwise) = otherwise {
            self.out.push_str("{% else %}");
            self.list(otherwise, dot)?;
        }
        self.out.push_str("{% endif %}");
        self.leave(4);
        self.close(temps);
        Ok(())
    }

    /// Binds `expr` to a fresh variable; its `endwith` is counted in `open`.
    fn bind(
        &mut self,
        expr: String,
        at: usize,
        open: &mut usize,
        prefix: &str,
    ) -> Result<String, GoError> {
        let var = self.fresh(prefix);
        self.enter(1, at)?;
        self.tag(&format!("{{% with {expr} as {var} %}}"), at);
        *open += 1;
        Ok(var)
    }

    /// The pipeline's value, as an upon value (a variable path or a literal).
    fn pipeline(
        &mut self,
        pipe: &Pipeline,
        dot: &Dot,
        open: &mut usize,
    ) -> Result<String, GoError> {
        let mut piped: Option<String> = None;
        for command in &pipe.commands {
            piped = Some(self.command(command, dot, open, piped)?);
        }
        piped.ok_or_else(|| GoError::new(pipe.at, "missing value for command"))
    }

    fn command(
        &mut self,
        command: &Command,
        dot: &Dot,
        open: &mut usize,
        piped: Option<String>,
    ) -> Result<String, GoError> {
        let Some((first, rest)) = command.operands.split_first() else {
            return Err(GoError::new(command.at, "missing value for command"));
        };
        let Operand::Function(name) = first else {
            if !rest.is_empty() {
                return Err(GoError::new(
                    command.at,
                    "a value cannot take arguments (methods are not supported)",
                ));
            }
            if piped.is_some() {
                return Err(GoError::new(
                    command.at,
                    "only a function call can follow `|` in a pipeline",
                ));
            }
            return self.operand(first, dot, open, command.at);
        };
        if name == "printf"
            && let Some(Operand::Str(format)) = rest.first()
        {
            functions::check_format(format).map_err(|m| GoError::new(command.at, m))?;
        }
        let mut args = Vec::with_capacity(rest.len() + 1);
        for operand in rest {
            args.push(self.operand(operand, dot, open, command.at)?);
        }
        args.extend(piped);
        self.call(name, args, command.at, open)
    }

    fn call(
        &mut self,
        name: &str,
        args: Vec<String>,
        at: usize,
        open: &mut usize,
    ) -> Result<String, GoError> {
        functions::check(name, args.len()).map_err(|m| GoError::new(at, m))?;
        let Some((first, rest)) = args.split_first() else {
            // No argument to pipe into an upon function: the value is known now.
            let value = functions::call(name, &[]).map_err(|m| GoError::new(at, m))?;
            return Ok(string_literal(&match value {
                upon::Value::String(s) => s,
                _ => String::new(),
            }));
        };
        let list = |values: &[String]| values.iter().map(|v| format!(", {v}")).collect::<String>();
        if let Some(function) = upon_names::CALL.get(rest.len()) {
            let expr = format!("{first} | {function}: \"{name}\"{}", list(rest));
            return self.bind(expr, at, open, "gt");
        }
        // More arguments than an upon function takes: collect them into a list first.
        let (head, tail) = rest.split_at(4);
        let head = head.join(", ");
        let mut collected = self.bind(
            format!("{first} | {}: {head}", upon_names::ARGS),
            at,
            open,
            "ga",
        )?;
        for chunk in tail.chunks(4) {
            let more = upon_names::MORE
                .get(chunk.len().saturating_sub(1))
                .copied()
                .unwrap_or(upon_names::MORE[0]);
            let args = chunk.join(", ");
            collected = self.bind(format!("{collected} | {more}: {args}"), at, open, "ga")?;
        }
        let apply = format!("{collected} | {}: \"{name}\"", upon_names::APPLY);
        self.bind(apply, at, open, "gt")
    }

    fn operand(
        &mut self,
        operand: &Operand,
        dot: &Dot,
        open: &mut usize,
        at: usize,
    ) -> Result<String, GoError> {
        Ok(match operand {
            Operand::Dot => match dot {
                Dot::Local(var) => var.clone(),
                Dot::Root => {
                    return Err(GoError::new(
                        at,
                        "`.` is the whole template data here; name a field (.ObjectMeta, .Spec, .ProxyConfig, .MeshConfig)",
                    ));
                }
            },
            Operand::Field(chain) => match dot {
                Dot::Root => root_path(chain, at)?,
                Dot::Local(var) => path(var, chain),
            },
            Operand::Var(name, chain) if name.is_empty() => {
                if chain.is_empty() {
                    return Err(GoError::new(
                        at,
                        "`$` is the whole template data; name a field ($.ObjectMeta, $.Spec, …)",
                    ));
                }
                root_path(chain, at)?
            }
            Operand::Var(name, chain) => {
                let Some((_, var)) = self.vars.iter().rev().find(|(n, _)| n == name) else {
                    return Err(GoError::new(at, format!("undefined variable `${name}`")));
                };
                path(var, chain)
            }
            Operand::Function(name) => self.call(name, Vec::new(), at, open)?,
            Operand::Str(s) => string_literal(s),
            Operand::Int(n) => n.to_string(),
            Operand::Float(x) => format!("{x:?}"),
            Operand::Bool(b) => b.to_string(),
            Operand::Pipe(pipe) => self.pipeline(pipe, dot, open)?,
        })
    }
}

/// A field chain on the data: its first name must be one of [`ROOTS`].
fn root_path(chain: &[String], at: usize) -> Result<String, GoError> {
    let Some((root, rest)) = chain.split_first() else {
        return Err(GoError::new(at, "missing field name"));
    };
    if !ROOTS.contains(&root.as_str()) {
        return Err(GoError::new(
            at,
            format!(
                "`.{root}` is not in the template data: it has .ObjectMeta, .Spec, .ProxyConfig, .MeshConfig and .NativeSidecars{}",
                if matches!(
                    root.as_str(),
                    "Values" | "DeploymentMeta" | "TypeMeta" | "Revision"
                ) {
                    " (templates of Istio 1.1 and later, which read Helm values and workload metadata, are not supported)"
                } else {
                    ""
                }
            ),
        ));
    }
    let mut out = root.clone();
    out.push_str(&members(root, rest));
    Ok(out)
}

/// `var` followed by the chain's members.
fn path(var: &str, chain: &[String]) -> String {
    format!("{var}{}", members("", chain))
}

/// `?.name` for each field, Go's names turned into the data's JSON names; a trailing `.String`
/// (Istio's enums) is the value itself.
fn members(parent: &str, chain: &[String]) -> String {
    let mut out = String::new();
    let mut in_map = MAP_FIELDS.contains(&parent);
    let chain = match chain.split_last() {
        Some((last, init)) if last == "String" => init,
        _ => chain,
    };
    for name in chain {
        out.push_str("?.");
        if in_map {
            out.push_str(name);
        } else {
            out.push_str(&json_name(name));
        }
        in_map = MAP_FIELDS.contains(&name.as_str());
    }
    out
}

/// A Go field name as Kubernetes and Istio spell it in JSON: the leading capital (or the
/// leading acronym, but for the capital that starts the next word) in lower case:
/// `ServiceAccountName` → `serviceAccountName`, `UID` → `uid`, `DNSPolicy` → `dnsPolicy`,
/// `HostIP` → `hostIP`. Names that start in lower case are map keys and stay as written.
pub fn json_name(go: &str) -> String {
    let chars: Vec<char> = go.chars().collect();
    let upper = chars.iter().take_while(|c| c.is_ascii_uppercase()).count();
    let lower_up_to = match upper {
        0 => 0,
        n if n == chars.len() => n,
        1 => 1,
        n if chars.get(n).is_some_and(|c| c.is_ascii_lowercase()) => n - 1,
        n => n,
    };
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i < lower_up_to {
                c.to_ascii_lowercase()
            } else {
                *c
            }
        })
        .collect()
}

/// An upon string literal for `s`.
fn string_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_field_names_become_json_names() {
        for (go, json) in [
            ("Labels", "labels"),
            ("ServiceAccountName", "serviceAccountName"),
            ("DiscoveryRefreshDelay", "discoveryRefreshDelay"),
            ("UID", "uid"),
            ("DNSPolicy", "dnsPolicy"),
            ("HostIP", "hostIP"),
            ("StatsdUdpAddress", "statsdUdpAddress"),
            ("app", "app"),
        ] {
            assert_eq!(json_name(go), json, "{go}");
        }
    }

    #[test]
    fn keys_after_a_map_field_stay_as_written() {
        assert_eq!(
            members("ObjectMeta", &["Labels".into(), "App".into()]),
            "?.labels?.App"
        );
        assert_eq!(
            members("ProxyConfig", &["InterceptionMode".into(), "String".into()]),
            "?.interceptionMode"
        );
    }

    #[test]
    fn unknown_roots_are_refused_with_a_hint_for_helm_values() {
        let e = root_path(&["Values".into(), "global".into()], 0).unwrap_err();
        assert!(e.message.contains("`.Values` is not in the template data"));
        assert!(e.message.contains("Istio 1.1"));
    }
}
