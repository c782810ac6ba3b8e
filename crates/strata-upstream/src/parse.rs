//! Small, pure parsers: byte sizes, fault specs, `Range` headers and URL paths.

use std::fmt;
use std::str::FromStr;

use crate::Fault;

/// Parses a byte count such as `20MB`, `512KiB`, `1.5GB`, `4096` or `20MB/s`.
///
/// Decimal units (`k`/`KB`, `M`/`MB`, `G`/`GB`) are powers of 1000, binary units
/// (`KiB`, `MiB`, `GiB`) powers of 1024; `B` or no unit means bytes. Units are
/// case-insensitive and an optional trailing `/s` is accepted, so the same
/// function parses sizes and rates.
pub fn parse_bytes(input: &str) -> Result<u64, String> {
    let s = input.trim();
    let s = s.strip_suffix("/s").unwrap_or(s).trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let unit = unit.trim().to_ascii_lowercase();
    let multiplier: u64 = match unit.as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "ki" | "kib" => 1 << 10,
        "mi" | "mib" => 1 << 20,
        "gi" | "gib" => 1 << 30,
        _ => {
            return Err(format!(
                "`{input}`: unknown unit `{unit}` (use B, KB, MB, GB, KiB, MiB or GiB)"
            ));
        }
    };
    if number.is_empty() {
        return Err(format!("`{input}`: expected a number, e.g. 20MB or 4096"));
    }
    if let Ok(whole) = number.parse::<u64>() {
        return whole
            .checked_mul(multiplier)
            .ok_or_else(|| format!("`{input}`: too large"));
    }
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{input}`: `{number}` is not a number"))?;
    let bytes = value * multiplier as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(format!("`{input}`: out of range"));
    }
    Ok(bytes.round() as u64)
}

/// Error from parsing a [`Fault`] spec with [`str::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultParseError(String);

impl fmt::Display for FaultParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FaultParseError {}

/// `times` value meaning "every request" in a spec without an explicit count.
const FOREVER: u32 = u32::MAX;

impl FromStr for Fault {
    type Err = FaultParseError;

    /// Parses the compact spec used by `strata-upstream --fault PATH=SPEC`:
    ///
    /// | spec | fault |
    /// | --- | --- |
    /// | `wrong-bytes` | [`Fault::WrongBytes`] |
    /// | `status:CODE[:TIMES]` | [`Fault::Status`] (without TIMES: every request) |
    /// | `stall:BYTES` | [`Fault::Stall`] |
    /// | `stall:BYTES:TIMES` | [`Fault::StallTimes`] |
    /// | `reset:BYTES[:TIMES]` | [`Fault::Reset`] (without TIMES: every request) |
    /// | `truncate:BYTES` | [`Fault::Truncate`] |
    /// | `slow:RATE` | [`Fault::Slow`] (RATE as in [`parse_bytes`], e.g. `64KiB`) |
    /// | `no-ranges` | [`Fault::NoRanges`] |
    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let err = |why: String| FaultParseError(format!("fault spec `{spec}`: {why}"));
        let mut parts = spec.trim().split(':');
        let kind = parts.next().unwrap_or_default().to_ascii_lowercase();
        let args: Vec<&str> = parts.collect();
        let bytes = |i: usize| -> Result<u64, FaultParseError> {
            let arg = args
                .get(i)
                .ok_or_else(|| err("missing a byte count".into()))?;
            parse_bytes(arg).map_err(err)
        };
        let times = |i: usize| -> Result<u32, FaultParseError> {
            match args.get(i) {
                None => Ok(FOREVER),
                Some(t) => t
                    .trim()
                    .parse()
                    .map_err(|_| err(format!("`{t}` is not a request count"))),
            }
        };
        let arity = |max: usize| -> Result<(), FaultParseError> {
            if args.len() > max {
                Err(err(format!("too many `:` arguments for `{kind}`")))
            } else {
                Ok(())
            }
        };
        let fault = match kind.as_str() {
            "wrong-bytes" | "wrongbytes" => {
                arity(0)?;
                Fault::WrongBytes
            }
            "no-ranges" => {
                arity(0)?;
                Fault::NoRanges
            }
            "status" => {
                arity(2)?;
                let code = args
                    .first()
                    .ok_or_else(|| err("missing a status code, e.g. status:503:2".into()))?;
                let code: u16 = code
                    .trim()
                    .parse()
                    .ok()
                    .filter(|c| (100..=999).contains(c))
                    .ok_or_else(|| err(format!("`{code}` is not an HTTP status code")))?;
                Fault::Status {
                    code,
                    times: times(1)?,
                }
            }
            "stall" => {
                arity(2)?;
                let after_bytes = bytes(0)?;
                match args.get(1) {
                    None => Fault::Stall { after_bytes },
                    Some(_) => Fault::StallTimes {
                        after_bytes,
                        times: times(1)?,
                    },
                }
            }
            "reset" => {
                arity(2)?;
                Fault::Reset {
                    after_bytes: bytes(0)?,
                    times: times(1)?,
                }
            }
            "truncate" => {
                arity(1)?;
                Fault::Truncate {
                    after_bytes: bytes(0)?,
                }
            }
            "slow" => {
                arity(1)?;
                let bytes_per_sec = bytes(0)?;
                if bytes_per_sec == 0 {
                    return Err(err("the rate must be above zero".into()));
                }
                Fault::Slow { bytes_per_sec }
            }
            _ => {
                return Err(err(format!(
                    "unknown fault `{kind}` (expected wrong-bytes, status, stall, reset, \
                     truncate, slow or no-ranges)"
                )));
            }
        };
        Ok(fault)
    }
}

impl fmt::Display for Fault {
    /// Formats the fault in the spec syntax that [`Fault::from_str`] parses.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let times = |f: &mut fmt::Formatter<'_>, t: u32| {
            if t == FOREVER {
                Ok(())
            } else {
                write!(f, ":{t}")
            }
        };
        match *self {
            Fault::WrongBytes => f.write_str("wrong-bytes"),
            Fault::NoRanges => f.write_str("no-ranges"),
            Fault::Status { code, times: t } => {
                write!(f, "status:{code}")?;
                times(f, t)
            }
            Fault::Stall { after_bytes } => write!(f, "stall:{after_bytes}"),
            Fault::StallTimes { after_bytes, times } => write!(f, "stall:{after_bytes}:{times}"),
            Fault::Reset {
                after_bytes,
                times: t,
            } => {
                write!(f, "reset:{after_bytes}")?;
                times(f, t)
            }
            Fault::Slow { bytes_per_sec } => write!(f, "slow:{bytes_per_sec}"),
            Fault::Truncate { after_bytes } => write!(f, "truncate:{after_bytes}"),
        }
    }
}

/// What a `Range` request header asks of a body of a known length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeOutcome {
    /// No (usable) range: serve the whole body with 200.
    Full,
    /// Serve `start..=end` with 206.
    Partial { start: u64, end: u64 },
    /// 416 Range Not Satisfiable.
    Unsatisfiable,
}

/// Interprets a `Range` header value against a body of `len` bytes (RFC 9110 §14).
///
/// Only one `bytes` range is honoured; several ranges, other units or a malformed
/// value are ignored (the whole body is served), as the RFC allows.
pub(crate) fn parse_range(header: &str, len: u64) -> RangeOutcome {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return RangeOutcome::Full;
    };
    if spec.contains(',') {
        return RangeOutcome::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeOutcome::Full;
    };
    let number = |s: &str| -> Option<u64> {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            None
        } else {
            // Absurdly long digit strings saturate instead of being "malformed".
            Some(s.parse().unwrap_or(u64::MAX))
        }
    };
    match (first.trim().is_empty(), number(first), number(last)) {
        // `-n`: the last n bytes.
        (true, _, Some(n)) => {
            if n == 0 || len == 0 {
                RangeOutcome::Unsatisfiable
            } else {
                RangeOutcome::Partial {
                    start: len.saturating_sub(n),
                    end: len - 1,
                }
            }
        }
        // `a-`: from a to the end.
        (false, Some(start), None) if last.trim().is_empty() => {
            if start >= len {
                RangeOutcome::Unsatisfiable
            } else {
                RangeOutcome::Partial {
                    start,
                    end: len - 1,
                }
            }
        }
        // `a-b`.
        (false, Some(start), Some(end)) if start <= end => {
            if start >= len {
                RangeOutcome::Unsatisfiable
            } else {
                RangeOutcome::Partial {
                    start,
                    end: end.min(len - 1),
                }
            }
        }
        _ => RangeOutcome::Full,
    }
}

/// Decodes `%XX` escapes of a URL path. Returns `None` for an escape that is not
/// hex or a result that is not UTF-8.
pub(crate) fn percent_decode(path: &str) -> Option<String> {
    if !path.contains('%') {
        return Some(path.to_owned());
    }
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The key under which a URL path is served and counted: `/` followed by the
/// path without leading slashes. `"a/b"`, `"/a/b"` and `"//a/b"` are all `"/a/b"`.
pub(crate) fn path_key(url_path: &str) -> String {
    format!("/{}", url_path.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_units() {
        let cases = [
            ("4096", 4096),
            ("20MB", 20_000_000),
            ("20mb", 20_000_000),
            ("20 MB/s", 20_000_000),
            ("512KiB", 512 * 1024),
            ("1.5GB", 1_500_000_000),
            ("1GiB", 1 << 30),
            ("3k", 3000),
            ("7B", 7),
        ];
        for (input, want) in cases {
            assert_eq!(parse_bytes(input), Ok(want), "{input}");
        }
        for bad in ["", "MB", "12XB", "1..2MB", "-3"] {
            assert!(parse_bytes(bad).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn fault_specs_round_trip() {
        let cases = [
            ("wrong-bytes", Fault::WrongBytes),
            ("no-ranges", Fault::NoRanges),
            (
                "status:503:2",
                Fault::Status {
                    code: 503,
                    times: 2,
                },
            ),
            (
                "status:404",
                Fault::Status {
                    code: 404,
                    times: u32::MAX,
                },
            ),
            ("stall:1024", Fault::Stall { after_bytes: 1024 }),
            (
                "stall:10:3",
                Fault::StallTimes {
                    after_bytes: 10,
                    times: 3,
                },
            ),
            (
                "reset:5:1",
                Fault::Reset {
                    after_bytes: 5,
                    times: 1,
                },
            ),
            ("truncate:100", Fault::Truncate { after_bytes: 100 }),
            (
                "slow:64000",
                Fault::Slow {
                    bytes_per_sec: 64_000,
                },
            ),
        ];
        for (spec, fault) in cases {
            assert_eq!(spec.parse::<Fault>(), Ok(fault.clone()), "{spec}");
            assert_eq!(fault.to_string(), spec);
        }
        assert_eq!(
            "stall:1KiB".parse::<Fault>(),
            Ok(Fault::Stall { after_bytes: 1024 })
        );
        for bad in [
            "",
            "boom",
            "status",
            "status:abc",
            "status:42",
            "stall",
            "slow:0",
            "truncate:1:2",
            "reset:1:x",
        ] {
            assert!(bad.parse::<Fault>().is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn ranges() {
        use RangeOutcome::*;
        let cases = [
            ("bytes=0-9", 100, Partial { start: 0, end: 9 }),
            ("bytes=90-", 100, Partial { start: 90, end: 99 }),
            ("bytes=-10", 100, Partial { start: 90, end: 99 }),
            ("bytes=-1000", 100, Partial { start: 0, end: 99 }),
            ("bytes=50-5000", 100, Partial { start: 50, end: 99 }),
            ("bytes=100-", 100, Unsatisfiable),
            ("bytes=100-200", 100, Unsatisfiable),
            ("bytes=-0", 100, Unsatisfiable),
            ("bytes=-5", 0, Unsatisfiable),
            ("bytes=9-3", 100, Full),
            ("bytes=0-1,5-6", 100, Full),
            ("items=0-1", 100, Full),
            ("bytes=x-1", 100, Full),
            ("bytes=-", 100, Full),
        ];
        for (header, len, want) in cases {
            assert_eq!(parse_range(header, len), want, "{header} of {len}");
        }
    }

    #[test]
    fn decoding_and_keys() {
        assert_eq!(percent_decode("/a%20b/%40s").as_deref(), Some("/a b/@s"));
        assert_eq!(percent_decode("/plain").as_deref(), Some("/plain"));
        assert_eq!(percent_decode("/bad%2"), None);
        assert_eq!(percent_decode("/bad%zz"), None);
        assert_eq!(path_key("a/b"), "/a/b");
        assert_eq!(path_key("//a/b"), "/a/b");
    }
}
