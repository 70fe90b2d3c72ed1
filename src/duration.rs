//! Durations as Istio writes them: protobuf JSON (`"45s"`, `"1.5s"`) in, Go's `time.Duration` text out.
//!
//! Istio's `formatDuration` template function turns a protobuf Duration into Go's string form, so
//! `60s` prints as `1m0s`. Mesh configs written by hand also use Go's form (`1m0s`, `500ms`), so
//! the parser accepts both.

use std::fmt;

/// A non-negative duration with nanosecond precision, as found in ProxyConfig and MeshConfig.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct GoDuration {
    nanos: u128,
}

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration {input:?}: expected a number with a unit (ns, us, ms, s, m, h), e.g. \"45s\" or \"1m0s\""
)]
pub struct ParseDurationError {
    /// The text that did not parse.
    pub input: String,
}

const UNITS: [(&str, u128); 7] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

impl GoDuration {
    /// A duration of whole seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self {
            nanos: secs as u128 * 1_000_000_000,
        }
    }

    /// Parses `"2s"`, `"1.5s"`, `"1m0s"`, `"2h45m"`, `"500ms"` (Go `time.ParseDuration` without signs).
    pub fn parse(input: &str) -> Result<Self, ParseDurationError> {
        let err = || ParseDurationError {
            input: input.to_string(),
        };
        let s = input.trim();
        if s == "0" {
            return Ok(Self { nanos: 0 });
        }
        if s.is_empty() {
            return Err(err());
        }
        let mut rest = s;
        let mut total: u128 = 0;
        while !rest.is_empty() {
            let num_len = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(err)?;
            let (number, tail) = rest.split_at(num_len);
            if number.is_empty() || number == "." {
                return Err(err());
            }
            let unit_len = tail
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(tail.len());
            let (unit, tail) = tail.split_at(unit_len);
            let scale = UNITS
                .iter()
                .find(|(name, _)| *name == unit)
                .map(|(_, scale)| *scale)
                .ok_or_else(err)?;
            let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
            let whole: u128 = if whole.is_empty() {
                0
            } else {
                whole.parse().map_err(|_| err())?
            };
            let mut part = whole.checked_mul(scale).ok_or_else(err)?;
            let mut denominator: u128 = 1;
            for digit in frac.chars().take(30) {
                denominator *= 10;
                let d = u128::from(digit.to_digit(10).ok_or_else(err)?);
                part += d * scale / denominator;
            }
            total = total.checked_add(part).ok_or_else(err)?;
            rest = tail;
        }
        Ok(Self { nanos: total })
    }
}

impl fmt::Display for GoDuration {
    /// Go's `time.Duration.String`: `1h2m3.5s`, `1m0s`, `1.5s`, `500ms`, `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.nanos;
        if n == 0 {
            return f.write_str("0s");
        }
        if n < 1_000_000_000 {
            let (unit, scale) = if n < 1_000 {
                ("ns", 1)
            } else if n < 1_000_000 {
                ("µs", 1_000)
            } else {
                ("ms", 1_000_000)
            };
            return write!(f, "{}{unit}", decimal(n, scale));
        }
        let hours = n / 3_600_000_000_000;
        let minutes = (n / 60_000_000_000) % 60;
        let seconds = n % 60_000_000_000;
        if hours > 0 {
            write!(f, "{hours}h{minutes}m")?;
        } else if minutes > 0 {
            write!(f, "{minutes}m")?;
        }
        write!(f, "{}s", decimal(seconds, 1_000_000_000))
    }
}

/// `value / scale` with the fraction's trailing zeros trimmed, as Go prints it.
fn decimal(value: u128, scale: u128) -> String {
    let whole = value / scale;
    let frac = value % scale;
    if frac == 0 {
        return whole.to_string();
    }
    let width = scale.to_string().len() - 1;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_like_go() {
        for (input, expected) in [
            ("2s", "2s"),
            ("60s", "1m0s"),
            ("45s", "45s"),
            ("1.5s", "1.5s"),
            ("500ms", "500ms"),
            ("1m0s", "1m0s"),
            ("3600s", "1h0m0s"),
            ("2h45m", "2h45m0s"),
            ("0", "0s"),
            ("0s", "0s"),
            ("1500us", "1.5ms"),
            ("10ns", "10ns"),
            ("90.25s", "1m30.25s"),
        ] {
            let parsed = GoDuration::parse(input).unwrap();
            assert_eq!(parsed.to_string(), expected, "input {input}");
        }
    }

    #[test]
    fn refuses_text_without_unit_or_number() {
        for input in ["", "s", "10", "1x", "-1s", "1.2.3s", "abc", "."] {
            assert!(GoDuration::parse(input).is_err(), "input {input:?}");
        }
    }
}
