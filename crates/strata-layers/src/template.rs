//! Tag templates: `{registry}`, `{sha}`, `{short_sha}`, `{branch}`, `{pr}`, `{timestamp}`,
//! plus `{image}` (the image's name). Pure.

use std::collections::BTreeMap;

/// Every variable a template may use.
pub const VARIABLES: &[&str] = &[
    "registry",
    "sha",
    "short_sha",
    "branch",
    "pr",
    "timestamp",
    "image",
];

/// Values for the variables; a missing one is an error only when a template uses it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vars {
    /// Values by variable name.
    pub values: BTreeMap<String, String>,
}

impl Vars {
    /// Sets a variable.
    pub fn set(&mut self, name: &str, value: impl Into<String>) -> &mut Self {
        self.values.insert(name.to_string(), value.into());
        self
    }

    /// The common variables: `sha` (and `short_sha`, its first 7 characters), `branch`
    /// (sanitised for tags: `/` and other characters become `-`), `pr`, `timestamp`
    /// (`YYYYMMDDhhmmss`, UTC) and `registry`.
    pub fn new(
        registry: Option<&str>,
        sha: Option<&str>,
        branch: Option<&str>,
        pr: Option<&str>,
        timestamp: i64,
    ) -> Vars {
        let mut v = Vars::default();
        if let Some(r) = registry {
            v.set("registry", r.trim_end_matches('/'));
        }
        if let Some(s) = sha {
            v.set("sha", s);
            v.set("short_sha", &s[..s.len().min(7)]);
        }
        if let Some(b) = branch {
            v.set("branch", sanitize_tag(b));
        }
        if let Some(p) = pr {
            v.set("pr", p);
        }
        v.set("timestamp", format_timestamp(timestamp));
        v
    }
}

/// Makes a string usable in a tag: `[A-Za-z0-9_.-]`, at most 128 characters, not starting
/// with `.` or `-`.
pub fn sanitize_tag(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    while out.starts_with(['.', '-']) {
        out.remove(0);
    }
    out.truncate(128);
    out
}

/// `YYYYMMDDhhmmss` in UTC.
pub fn format_timestamp(epoch: i64) -> String {
    let days = epoch.div_euclid(86400);
    let secs = epoch.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// `YYYY-MM-DDThh:mm:ssZ`.
pub fn format_rfc3339(epoch: i64) -> String {
    let t = format_timestamp(epoch);
    format!(
        "{}-{}-{}T{}:{}:{}Z",
        &t[0..4],
        &t[4..6],
        &t[6..8],
        &t[8..10],
        &t[10..12],
        &t[12..14]
    )
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

enum Part<'a> {
    Lit(&'a str),
    Var(&'a str),
}

fn split(t: &str) -> Result<Vec<Part<'_>>, String> {
    let mut parts = Vec::new();
    let mut rest = t;
    while let Some(i) = rest.find(['{', '}']) {
        if rest.as_bytes()[i] == b'}' {
            return Err(format!("{t:?}: '}}' without '{{'"));
        }
        parts.push(Part::Lit(&rest[..i]));
        let Some(j) = rest[i..].find('}') else {
            return Err(format!("{t:?}: '{{' without '}}'"));
        };
        parts.push(Part::Var(&rest[i + 1..i + j]));
        rest = &rest[i + j + 1..];
    }
    parts.push(Part::Lit(rest));
    Ok(parts)
}

/// Checks a template's syntax and variable names.
pub fn validate(t: &str) -> Result<(), String> {
    if t.trim().is_empty() {
        return Err("empty tag".into());
    }
    for p in split(t)? {
        if let Part::Var(v) = p
            && !VARIABLES.contains(&v)
        {
            return Err(format!(
                "unknown variable {{{v}}} in {t:?} (known: {})",
                VARIABLES
                    .iter()
                    .map(|v| format!("{{{v}}}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ));
        }
    }
    Ok(())
}

/// Renders a template. A variable without a value is an error saying how to set it.
pub fn render(t: &str, vars: &Vars) -> Result<String, String> {
    let mut out = String::new();
    for p in split(t)? {
        match p {
            Part::Lit(l) => out.push_str(l),
            Part::Var(v) => match vars.values.get(v) {
                Some(x) if !x.is_empty() => out.push_str(x),
                _ => {
                    return Err(format!(
                        "tag {t:?} uses {{{v}}}, which has no value here ({})",
                        match v {
                            "registry" =>
                                "set registry = \"HOST/REPO\" in strata.toml or pass --registry",
                            "pr" =>
                                "not a pull request: set STRATA_PR, or GITHUB_REF=refs/pull/N/merge",
                            "branch" => "detached HEAD: set STRATA_BRANCH",
                            "sha" | "short_sha" => "not a git checkout",
                            _ => "unknown",
                        }
                    ));
                }
            },
        }
    }
    check_reference(&out).map_err(|m| format!("tag {t:?} renders to {out:?}: {m}"))?;
    Ok(out)
}

/// Whether `t` is a valid image tag: A-Z a-z 0-9 `_ . -`, 1 to 128 characters, not starting
/// with `.` or `-`.
pub fn is_valid_tag(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && !t.starts_with(['.', '-'])
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Checks that a rendered reference is `NAME[:TAG]` with a valid tag.
pub fn check_reference(r: &str) -> Result<(), String> {
    let (name, tag) = match r.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n, Some(t)),
        _ => (r, None),
    };
    if name.is_empty() || name.starts_with('/') || name.ends_with('/') || name.contains("//") {
        return Err("not an image name".into());
    }
    if let Some(t) = tag
        && !is_valid_tag(t)
    {
        return Err(format!(
            "{t:?} is not a valid tag (A-Z a-z 0-9 _ . -, at most 128, not starting with . or -)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_table() {
        let v = Vars::new(
            Some("127.0.0.1:5000/app/"),
            Some("0123456789abcdef"),
            Some("feature/x"),
            Some("42"),
            1_700_000_000,
        );
        for (t, want) in [
            (
                "{registry}:base-{sha}",
                "127.0.0.1:5000/app:base-0123456789abcdef",
            ),
            (
                "{registry}:pr-{pr}-{short_sha}",
                "127.0.0.1:5000/app:pr-42-0123456",
            ),
            ("app:{branch}-{timestamp}", "app:feature-x-20231114221320"),
            ("plain", "plain"),
        ] {
            assert_eq!(render(t, &v).unwrap(), want, "{t}");
        }
        let none = Vars::new(None, None, None, None, 0);
        assert!(
            render("{registry}:x", &none)
                .unwrap_err()
                .contains("--registry")
        );
        assert!(
            render("a:pr-{pr}", &none)
                .unwrap_err()
                .contains("STRATA_PR")
        );
        assert!(
            validate("a:{nope}")
                .unwrap_err()
                .contains("unknown variable {nope}")
        );
        assert!(validate("a:{sha").is_err());
        assert!(render("a:-x", &none).is_err());
    }

    #[test]
    fn timestamps() {
        assert_eq!(format_timestamp(0), "19700101000000");
        assert_eq!(format_rfc3339(1_709_296_205), "2024-03-01T12:30:05Z");
        assert_eq!(sanitize_tag("/-feat/ü"), "feat--");
    }
}
