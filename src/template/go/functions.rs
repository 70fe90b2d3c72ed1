//! The functions a translated Go template calls: Go's built-ins (`and`, `or`, `not`, `len`,
//! `index`, `print`, `printf`, `println`, `eq`, `ne`, `lt`, `le`, `gt`, `ge`) and Istio's
//! (`pkg/kube/inject` `InjectionFuncmap`, with Sprig's `contains`, `join`, `default`, `quote`),
//! with Go's argument order.
//!
//! The translation calls every function through one entry, [`call`], by name: upon functions
//! have a fixed arity of at most five arguments, Go's are variadic. The upon functions that
//! carry the calls are registered by [`register`].
//!
//! # Go's semantics kept
//! - A missing value (upon's `None`, where Go has a struct field's or a map's zero value) equals
//!   `""`, `0` and `false` in comparisons, has length 0, and ranges zero times.
//! - `and` / `or` return one of their arguments, as Go's do.
//! - Numbers compare across integer and float; comparing a number with a string is an error, as
//!   in Go.

use std::collections::BTreeMap;

use upon::{Engine, Value};

use super::super::functions as istio;

/// A Go function: its name, how many arguments it takes, and what it does.
struct Function {
    name: &'static str,
    min: usize,
    max: Option<usize>,
    run: fn(&[Value]) -> Result<Value, String>,
}

const fn f(
    name: &'static str,
    min: usize,
    max: Option<usize>,
    run: fn(&[Value]) -> Result<Value, String>,
) -> Function {
    Function {
        name,
        min,
        max,
        run,
    }
}

/// Every function a Go template may call.
const FUNCTIONS: &[Function] = &[
    f("and", 1, None, and),
    f("or", 1, None, or),
    f("not", 1, Some(1), |a| Ok(Value::Bool(!truthy(arg(a, 0))))),
    f("len", 1, Some(1), len),
    f("index", 1, None, index),
    f("print", 0, None, |a| Ok(Value::String(sprint(a)))),
    f("println", 0, None, println),
    f("printf", 1, None, printf),
    f("eq", 2, None, eq),
    f("ne", 2, Some(2), |a| {
        compare(arg(a, 0), arg(a, 1)).map(|o| Value::Bool(o != Some(std::cmp::Ordering::Equal)))
    }),
    f("lt", 2, Some(2), |a| ordered(a, |o| o.is_lt())),
    f("le", 2, Some(2), |a| ordered(a, |o| o.is_le())),
    f("gt", 2, Some(2), |a| ordered(a, |o| o.is_gt())),
    f("ge", 2, Some(2), |a| ordered(a, |o| o.is_ge())),
    // Istio's.
    f("annotation", 3, Some(3), |a| {
        Ok(istio::annotation(
            arg(a, 0),
            &text(arg(a, 1))?,
            arg(a, 2).clone(),
        ))
    }),
    f("valueOrDefault", 2, Some(2), |a| {
        Ok(istio::value_or_default(arg(a, 0), arg(a, 1).clone()))
    }),
    f("isset", 2, Some(2), |a| {
        Ok(Value::Bool(istio::isset(arg(a, 0), &text(arg(a, 1))?)))
    }),
    f("formatDuration", 1, Some(1), |a| {
        istio::format_duration(arg(a, 0)).map(Value::String)
    }),
    f("toJSON", 1, Some(1), |a| {
        Ok(Value::String(istio::to_json(arg(a, 0))))
    }),
    f("toJson", 1, Some(1), |a| {
        Ok(Value::String(istio::to_json(arg(a, 0))))
    }),
    f("structToJSON", 1, Some(1), |a| {
        Ok(Value::String(istio::to_json(arg(a, 0))))
    }),
    f("fromJSON", 1, Some(1), from_json),
    f("toYaml", 1, Some(1), |a| Ok(istio::to_yaml(arg(a, 0)))),
    f("indent", 2, Some(2), |a| {
        Ok(istio::indent(arg(a, 1), integer(arg(a, 0))?))
    }),
    f("includeInboundPorts", 1, Some(1), |a| {
        Ok(Value::String(istio::include_inbound_ports(arg(a, 0))))
    }),
    f("applicationPorts", 1, Some(1), application_ports),
    f("excludeInboundPort", 2, Some(2), |a| {
        Ok(Value::String(istio::exclude_inbound_port(
            arg(a, 0),
            &text(arg(a, 1))?,
        )))
    }),
    f("kubevirtInterfaces", 1, Some(1), |a| Ok(arg(a, 0).clone())),
    f("excludeInterfaces", 1, Some(1), |a| Ok(arg(a, 0).clone())),
    f("directory", 1, Some(1), |a| {
        let path = text(arg(a, 0))?;
        Ok(Value::String(match path.rfind('/') {
            Some(i) => path.get(..=i).unwrap_or_default().to_string(),
            None => String::new(),
        }))
    }),
    f("contains", 2, Some(2), |a| {
        Ok(Value::Bool(text(arg(a, 1))?.contains(&text(arg(a, 0))?)))
    }),
    f("toLower", 1, Some(1), |a| {
        Ok(Value::String(text(arg(a, 0))?.to_lowercase()))
    }),
    f("toUpper", 1, Some(1), |a| {
        Ok(Value::String(text(arg(a, 0))?.to_uppercase()))
    }),
    f("join", 2, Some(2), join),
    f("default", 2, Some(2), |a| {
        Ok(if truthy(arg(a, 1)) {
            arg(a, 1).clone()
        } else {
            arg(a, 0).clone()
        })
    }),
    f("quote", 0, None, |a| {
        let quoted: Result<Vec<String>, String> =
            a.iter().map(|v| text(v).map(|s| go_quote(&s))).collect();
        Ok(Value::String(quoted?.join(" ")))
    }),
    // The translation's own: what `range` iterates over.
    f(RANGE, 1, Some(1), range_items),
];

/// The name under which the translation asks for `range`'s items: `[key, value]` pairs.
pub const RANGE: &str = "range";

/// Whether a Go template may call `name` with `count` arguments; the refusal says why.
pub fn check(name: &str, count: usize) -> Result<(), String> {
    let Some(function) = FUNCTIONS.iter().find(|f| f.name == name && f.name != RANGE) else {
        return Err(match name {
            "html" | "js" | "urlquery" | "call" | "slice" | "env" => {
                format!("function `{name}` is not supported in sidecar templates")
            }
            _ => format!("function `{name}` is not defined"),
        });
    };
    if count < function.min || function.max.is_some_and(|max| count > max) {
        let wanted = match function.max {
            Some(max) if max == function.min => format!("{max}"),
            Some(max) => format!("{} to {max}", function.min),
            None => format!("at least {}", function.min),
        };
        return Err(format!(
            "wrong number of arguments for `{name}`: want {wanted}, got {count}"
        ));
    }
    Ok(())
}

/// Calls the Go function `name`.
pub fn call(name: &str, args: &[Value]) -> Result<Value, String> {
    match FUNCTIONS.iter().find(|f| f.name == name) {
        Some(function) => (function.run)(args).map_err(|e| format!("{name}: {e}")),
        None => Err(format!("function `{name}` is not defined")),
    }
}

/// Names of the upon functions the translation emits.
pub mod upon_names {
    /// `first | go1: "name"`, up to `go4: "name", a, b, c`.
    pub const CALL: [&str; 4] = ["go1", "go2", "go3", "go4"];
    /// `a | goargs: b, c, d, e`: the first five arguments of a longer call, as a list.
    pub const ARGS: &str = "goargs";
    /// `list | gomore1: f` … `gomore4: f, g, h, i`: more arguments.
    pub const MORE: [&str; 4] = ["gomore1", "gomore2", "gomore3", "gomore4"];
    /// `list | goapply: "name"`: the call with the collected arguments.
    pub const APPLY: &str = "goapply";
}

/// Registers the upon functions a translated Go template calls.
pub fn register(engine: &mut Engine<'_>) {
    use upon_names::{APPLY, ARGS, CALL, MORE};
    let [c1, c2, c3, c4] = CALL;
    engine.add_function(c1, |a: &Value, name: &str| {
        call(name, std::slice::from_ref(a))
    });
    engine.add_function(c2, |a: &Value, name: &str, b: Value| {
        call(name, &[a.clone(), b])
    });
    engine.add_function(c3, |a: &Value, name: &str, b: Value, c: Value| {
        call(name, &[a.clone(), b, c])
    });
    engine.add_function(c4, |a: &Value, name: &str, b: Value, c: Value, d: Value| {
        call(name, &[a.clone(), b, c, d])
    });
    engine.add_function(ARGS, |a: &Value, b: Value, c: Value, d: Value, e: Value| {
        Value::List(vec![a.clone(), b, c, d, e])
    });
    let [m1, m2, m3, m4] = MORE;
    engine.add_function(m1, |l: Vec<Value>, b: Value| push(l, [b]));
    engine.add_function(m2, |l: Vec<Value>, b: Value, c: Value| push(l, [b, c]));
    engine.add_function(m3, |l: Vec<Value>, b: Value, c: Value, d: Value| {
        push(l, [b, c, d])
    });
    engine.add_function(
        m4,
        |l: Vec<Value>, b: Value, c: Value, d: Value, e: Value| push(l, [b, c, d, e]),
    );
    engine.add_function(APPLY, |l: &[Value], name: &str| call(name, l));
}

fn push<const N: usize>(mut list: Vec<Value>, more: [Value; N]) -> Value {
    list.extend(more);
    Value::List(list)
}

fn arg(args: &[Value], i: usize) -> &Value {
    args.get(i).unwrap_or(&Value::None)
}

fn truthy(value: &Value) -> bool {
    istio::truthy(value)
}

/// A scalar's text (a missing value is `""`, as a zero string is in Go).
fn text(value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::None => Ok(String::new()),
        Value::Integer(_) | Value::Float(_) | Value::Bool(_) => {
            Ok(sprint(std::slice::from_ref(value)))
        }
        other => Err(format!(
            "expected a string, got {}",
            istio::other_kind(other)
        )),
    }
}

fn integer(value: &Value) -> Result<i64, String> {
    match value {
        Value::Integer(n) => Ok(*n),
        Value::None => Ok(0),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("expected an integer, got {s:?}")),
        other => Err(format!(
            "expected an integer, got {}",
            istio::other_kind(other)
        )),
    }
}

fn and(args: &[Value]) -> Result<Value, String> {
    for a in args {
        if !truthy(a) {
            return Ok(a.clone());
        }
    }
    Ok(args.last().cloned().unwrap_or(Value::None))
}

fn or(args: &[Value]) -> Result<Value, String> {
    for a in args {
        if truthy(a) {
            return Ok(a.clone());
        }
    }
    Ok(args.last().cloned().unwrap_or(Value::None))
}

fn len(args: &[Value]) -> Result<Value, String> {
    let n = match arg(args, 0) {
        Value::None => 0,
        Value::String(s) => s.len(),
        Value::List(l) => l.len(),
        Value::Map(m) => m.len(),
        other => return Err(format!("len of {}", istio::other_kind(other))),
    };
    Ok(Value::Integer(i64::try_from(n).unwrap_or(i64::MAX)))
}

/// `index m k1 k2 …`: a missing map key (or a missing map) is the zero value, as for Go's
/// `map[string]string` (labels, annotations); a list index out of range is an error, as in Go.
fn index(args: &[Value]) -> Result<Value, String> {
    let mut current = arg(args, 0).clone();
    for key in args.iter().skip(1) {
        current = match (&current, key) {
            (Value::None, _) => Value::None,
            (Value::Map(m), Value::String(k)) => m.get(k).cloned().unwrap_or(Value::None),
            (Value::List(l), Value::Integer(i)) => usize::try_from(*i)
                .ok()
                .and_then(|i| l.get(i))
                .cloned()
                .ok_or_else(|| format!("index out of range: {i}"))?,
            (container, key) => {
                return Err(format!(
                    "cannot index {} with {}",
                    istio::other_kind(container),
                    istio::other_kind(key)
                ));
            }
        };
    }
    Ok(current)
}

fn eq(args: &[Value]) -> Result<Value, String> {
    let first = arg(args, 0);
    for other in args.iter().skip(1) {
        if compare(first, other)? == Some(std::cmp::Ordering::Equal) {
            return Ok(Value::Bool(true));
        }
    }
    Ok(Value::Bool(false))
}

fn ordered(args: &[Value], test: fn(std::cmp::Ordering) -> bool) -> Result<Value, String> {
    match compare(arg(args, 0), arg(args, 1))? {
        Some(o) => Ok(Value::Bool(test(o))),
        None => Err("values are not ordered".into()),
    }
}

/// Go's comparison of basic values; `None` is the zero value of the other side's type.
/// `Ok(None)` for values that are equal-comparable but unordered (lists, maps, booleans that
/// differ are still `Some`).
fn compare(a: &Value, b: &Value) -> Result<Option<std::cmp::Ordering>, String> {
    use std::cmp::Ordering;
    let zero_of = |other: &Value| match other {
        Value::String(_) => Value::String(String::new()),
        Value::Integer(_) => Value::Integer(0),
        Value::Float(_) => Value::Float(0.0),
        Value::Bool(_) => Value::Bool(false),
        Value::List(_) => Value::List(Vec::new()),
        Value::Map(_) => Value::Map(BTreeMap::new()),
        Value::None => Value::None,
    };
    let (a, b) = match (a, b) {
        (Value::None, b) => (zero_of(b), b.clone()),
        (a, Value::None) => (a.clone(), zero_of(a)),
        (a, b) => (a.clone(), b.clone()),
    };
    Ok(match (&a, &b) {
        (Value::None, Value::None) => Some(Ordering::Equal),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Integer(x), Value::Integer(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Float(_) | Value::Integer(_), Value::Float(_) | Value::Integer(_)) => {
            let as_f = |v: &Value| match v {
                Value::Integer(i) => *i as f64,
                Value::Float(f) => *f,
                _ => 0.0,
            };
            as_f(&a).partial_cmp(&as_f(&b))
        }
        (Value::List(x), Value::List(y)) if x.is_empty() && y.is_empty() => Some(Ordering::Equal),
        (Value::Map(x), Value::Map(y)) if x.is_empty() && y.is_empty() => Some(Ordering::Equal),
        _ => {
            return Err(format!(
                "incompatible types for comparison: {} and {}",
                istio::other_kind(&a),
                istio::other_kind(&b)
            ));
        }
    })
}

/// Go's `fmt.Sprint`: operands joined, with a space between two that are both not strings.
fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    let mut previous_string = true;
    for (i, a) in args.iter().enumerate() {
        let is_string = matches!(a, Value::String(_));
        if i > 0 && !is_string && !previous_string {
            out.push(' ');
        }
        out.push_str(&go_value(a));
        previous_string = is_string;
    }
    out
}

fn println(args: &[Value]) -> Result<Value, String> {
    let parts: Vec<String> = args.iter().map(go_value).collect();
    Ok(Value::String(parts.join(" ") + "\n"))
}

/// A value as Go's `%v` prints it.
fn go_value(value: &Value) -> String {
    match value {
        // A missing field or key prints as nothing (README: a missing value renders as nothing).
        Value::None => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Integer(n) => n.to_string(),
        Value::Float(f) => go_float(*f),
        Value::String(s) => s.clone(),
        Value::List(items) => {
            let parts: Vec<String> = items.iter().map(go_value).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Map(m) => {
            let parts: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k}:{}", go_value(v)))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

/// A float as Go's `%v` (shortest `%g`) prints it: `1.5`, `3`, `100000`, `1e+06`, `1e-05`:
/// exponent form when the decimal exponent is below -4 or 6 and above.
fn go_float(f: f64) -> String {
    if f.is_finite() && f == f.trunc() && f.abs() < 1e6 {
        format!("{f:.0}")
    } else if f.abs() >= 1e6 || (f != 0.0 && f.abs() < 1e-4) {
        let s = format!("{f:e}");
        match s.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e:0>2}"),
            Some((m, e)) => format!("{m}e-{:0>2}", e.trim_start_matches('-')),
            None => s,
        }
    } else {
        f.to_string()
    }
}

/// Go's `%q` of a string.
fn go_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

/// The verbs `printf` supports; any other is refused when the template loads (when the format
/// is a constant) or when it renders.
pub const PRINTF_VERBS: &str = "vsdqtfx%";

/// Checks a constant `printf` format; the refusal names the verb.
pub fn check_format(format: &str) -> Result<(), String> {
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            continue;
        }
        while chars
            .peek()
            .is_some_and(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | ' ' | '#' | '.'))
        {
            chars.next();
        }
        match chars.next() {
            Some(verb) if PRINTF_VERBS.contains(verb) => {}
            Some(verb) => return Err(format!("printf verb `%{verb}` is not supported")),
            None => return Err("printf format ends with `%`".into()),
        }
    }
    Ok(())
}

/// Go's `fmt.Sprintf` for the verbs in [`PRINTF_VERBS`], with width, precision and the `-`
/// and `0` flags.
fn printf(args: &[Value]) -> Result<Value, String> {
    let format = text(arg(args, 0))?;
    let mut rest = args.iter().skip(1);
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut flags = String::new();
        while let Some(&f) = chars
            .peek()
            .filter(|c| matches!(c, '-' | '+' | ' ' | '#' | '0'))
        {
            flags.push(f);
            chars.next();
        }
        let mut width = String::new();
        while let Some(&d) = chars.peek().filter(|c| c.is_ascii_digit()) {
            width.push(d);
            chars.next();
        }
        let mut precision: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut p = String::new();
            while let Some(&d) = chars.peek().filter(|c| c.is_ascii_digit()) {
                p.push(d);
                chars.next();
            }
            precision = Some(p.parse().unwrap_or(0).min(4096));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(value) = rest.next() else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        let body = match (verb, value) {
            ('v' | 's', Value::Float(x)) if precision.is_some() => {
                format!("{x:.*}", precision.unwrap_or(6))
            }
            ('v' | 's', v) => {
                let s = go_value(v);
                match precision {
                    Some(p) if verb == 's' => s.chars().take(p).collect(),
                    _ => s,
                }
            }
            ('d', Value::Integer(n)) => n.to_string(),
            ('d', Value::None) => "0".into(),
            ('x', Value::Integer(n)) if *n < 0 => format!("-{:x}", n.unsigned_abs()),
            ('x', Value::Integer(n)) => format!("{n:x}"),
            ('x', Value::String(s)) => s.bytes().map(|b| format!("{b:02x}")).collect(),
            ('f', Value::Float(x)) => format!("{x:.*}", precision.unwrap_or(6)),
            ('f', Value::Integer(n)) => format!("%!f(int={n})"),
            ('q', v) => go_quote(&go_value(v)),
            ('t', Value::Bool(b)) => b.to_string(),
            (verb, v) if PRINTF_VERBS.contains(verb) => {
                format!("%!{verb}({}={})", istio::other_kind(v), go_value(v))
            }
            (verb, _) => return Err(format!("verb `%{verb}` is not supported")),
        };
        let width: usize = width.parse().unwrap_or(0).min(4096);
        let len = body.chars().count();
        if len >= width {
            out.push_str(&body);
        } else if flags.contains('-') {
            out.push_str(&body);
            out.push_str(&" ".repeat(width - len));
        } else if flags.contains('0') && matches!(verb, 'd' | 'f' | 'x') {
            let (sign, digits) = match body.strip_prefix('-') {
                Some(d) => ("-", d),
                None => ("", body.as_str()),
            };
            out.push_str(sign);
            out.push_str(&"0".repeat(width - len));
            out.push_str(digits);
        } else {
            out.push_str(&" ".repeat(width - len));
            out.push_str(&body);
        }
    }
    let extra: Vec<&Value> = rest.collect();
    if !extra.is_empty() {
        let parts: Vec<String> = extra
            .iter()
            .map(|v| format!("{}={}", istio::other_kind(v), go_value(v)))
            .collect();
        out.push_str(&format!("%!(EXTRA {})", parts.join(", ")));
    }
    Ok(Value::String(out))
}

/// Istio's `fromJSON`: the parsed value, or the text `"{}"` when it is not JSON.
fn from_json(args: &[Value]) -> Result<Value, String> {
    let source = text(arg(args, 0))?;
    Ok(match serde_json::from_str::<serde_json::Value>(&source) {
        Ok(v) => istio::from_json_value(&v),
        Err(_) => Value::String("{}".into()),
    })
}

/// Istio's `applicationPorts`: `includeInboundPorts` without the proxy's own container.
fn application_ports(args: &[Value]) -> Result<Value, String> {
    let containers = match arg(args, 0) {
        Value::List(items) => Value::List(
            items
                .iter()
                .filter(|c| {
                    !matches!(c, Value::Map(m) if m.get("name") == Some(&Value::from("istio-proxy")))
                })
                .cloned()
                .collect(),
        ),
        other => other.clone(),
    };
    Ok(Value::String(istio::include_inbound_ports(&containers)))
}

/// Sprig's `join sep list`.
fn join(args: &[Value]) -> Result<Value, String> {
    let sep = text(arg(args, 0))?;
    let items = match arg(args, 1) {
        Value::List(items) => items.clone(),
        Value::None => Vec::new(),
        other => vec![other.clone()],
    };
    let parts: Result<Vec<String>, String> = items.iter().map(text).collect();
    Ok(Value::String(parts?.join(&sep)))
}

/// What `range` iterates over, as `[key, value]` pairs: a list's index and item, a map's keys
/// in sorted order (as Go ranges over maps), `0..n` for an integer, nothing for a missing value.
fn range_items(args: &[Value]) -> Result<Value, String> {
    let pair = |k: Value, v: Value| Value::List(vec![k, v]);
    Ok(Value::List(match arg(args, 0) {
        Value::None => Vec::new(),
        Value::List(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                pair(
                    Value::Integer(i64::try_from(i).unwrap_or(i64::MAX)),
                    v.clone(),
                )
            })
            .collect(),
        Value::Map(m) => m
            .iter()
            .map(|(k, v)| pair(Value::String(k.clone()), v.clone()))
            .collect(),
        Value::Integer(n) => (0..(*n).clamp(0, 1 << 16))
            .map(|i| pair(Value::Integer(i), Value::Integer(i)))
            .collect(),
        other => {
            return Err(format!(
                "range can't iterate over {}",
                istio::other_kind(other)
            ));
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::from(v)
    }

    #[test]
    fn missing_values_are_zero_values() {
        assert_eq!(
            call("eq", &[Value::None, s("")]).unwrap(),
            Value::Bool(true)
        );
        assert_eq!(
            call("eq", &[Value::Integer(0), Value::None]).unwrap(),
            Value::Bool(true)
        );
        assert_eq!(
            call("ne", &[s(""), Value::None]).unwrap(),
            Value::Bool(false)
        );
        assert_eq!(call("len", &[Value::None]).unwrap(), Value::Integer(0));
        assert_eq!(
            call("index", &[Value::None, s("app")]).unwrap(),
            Value::None
        );
        assert_eq!(call("range", &[Value::None]).unwrap(), Value::List(vec![]));
    }

    #[test]
    fn comparing_a_number_with_a_string_is_an_error() {
        let e = call("eq", &[Value::Integer(1), s("1")]).unwrap_err();
        assert!(e.contains("incompatible types"), "{e}");
    }

    #[test]
    fn eq_takes_several_alternatives() {
        assert_eq!(
            call("eq", &[s("b"), s("a"), s("b")]).unwrap(),
            Value::Bool(true)
        );
    }

    #[test]
    fn and_or_return_an_argument() {
        assert_eq!(call("or", &[s(""), s("x"), s("y")]).unwrap(), s("x"));
        assert_eq!(call("or", &[s(""), Value::None]).unwrap(), Value::None);
        assert_eq!(call("and", &[s("a"), s(""), s("b")]).unwrap(), s(""));
        assert_eq!(call("and", &[s("a"), s("b")]).unwrap(), s("b"));
    }

    #[test]
    fn printf_verbs() {
        let out = |args: &[Value]| call("printf", args).unwrap();
        assert_eq!(out(&[s("istio.%s"), s("default")]), s("istio.default"));
        assert_eq!(
            out(&[
                s("%d-%v|%5s|%-3d|"),
                Value::Integer(7),
                Value::Bool(true),
                s("ab"),
                Value::Integer(1)
            ]),
            s("7-true|   ab|1  |")
        );
        assert_eq!(out(&[s("%q %%"), s("a\"b")]), s("\"a\\\"b\" %"));
        assert_eq!(out(&[s("%s")]), s("%!s(MISSING)"));
        assert_eq!(out(&[s("%03d"), Value::Integer(-5)]), s("-05"));
        assert!(check_format("%s %d %v %q %t %5.2f %x %%").is_ok());
        assert!(check_format("%w").unwrap_err().contains("`%w`"));
    }

    #[test]
    fn print_spaces_between_non_strings() {
        assert_eq!(
            call(
                "print",
                &[
                    Value::Integer(1),
                    Value::Integer(2),
                    s("a"),
                    Value::Integer(3)
                ]
            )
            .unwrap(),
            s("1 2a3")
        );
        assert_eq!(call("print", &[Value::Float(1.5)]).unwrap(), s("1.5"));
        assert_eq!(call("print", &[Value::Float(3.0)]).unwrap(), s("3"));
    }

    #[test]
    fn range_pairs_lists_and_sorted_maps() {
        let list = Value::List(vec![s("a"), s("b")]);
        assert_eq!(
            call("range", &[list]).unwrap(),
            Value::List(vec![
                Value::List(vec![Value::Integer(0), s("a")]),
                Value::List(vec![Value::Integer(1), s("b")]),
            ])
        );
        let map = upon::value! { b: 2, a: 1 };
        assert_eq!(
            call("range", &[map]).unwrap(),
            Value::List(vec![
                Value::List(vec![s("a"), Value::Integer(1)]),
                Value::List(vec![s("b"), Value::Integer(2)]),
            ])
        );
        assert!(call("range", &[s("x")]).is_err());
    }

    #[test]
    fn istio_functions_take_go_argument_order() {
        assert_eq!(
            call("contains", &[s("cat"), s("catch")]).unwrap(),
            Value::Bool(true)
        );
        assert_eq!(
            call("indent", &[Value::Integer(2), s("a\nb")]).unwrap(),
            s("a\n  b")
        );
        assert_eq!(
            call(
                "join",
                &[s(","), Value::List(vec![s("a"), Value::Integer(1)])]
            )
            .unwrap(),
            s("a,1")
        );
        assert_eq!(call("default", &[s("d"), s("")]).unwrap(), s("d"));
        assert_eq!(
            call("directory", &[s("/etc/istio/proxy")]).unwrap(),
            s("/etc/istio/")
        );
        assert_eq!(call("quote", &[s("a")]).unwrap(), s("\"a\""));
        assert_eq!(call("fromJSON", &[s("not json")]).unwrap(), s("{}"));
    }

    #[test]
    fn arity_is_checked_before_rendering() {
        assert!(check("index", 3).is_ok());
        assert!(check("not", 2).unwrap_err().contains("want 1, got 2"));
        assert!(check("html", 1).unwrap_err().contains("not supported"));
        assert!(check("nope", 1).unwrap_err().contains("not defined"));
        assert!(check("range", 1).is_err(), "range is the translation's own");
    }
}
