//! `RUN --mount=...` specifications: BuildKit parses the flag value as one CSV record of
//! `key=value` fields (Go's `encoding/csv`, so fields may be double-quoted).

use std::collections::BTreeMap;

/// One parsed `--mount` flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `bind` (the default), `cache`, `tmpfs`, `secret` or `ssh`.
    pub kind: String,
    /// Every `key=value` field except `type`, with BuildKit's aliases folded
    /// (`dst`/`destination` → `target`, `src` → `source`, `ro`/`readonly` → `readonly`).
    pub fields: BTreeMap<String, String>,
}

impl Mount {
    /// The `from=` field: a stage name or index, or an image reference.
    pub fn from(&self) -> Option<&str> {
        self.fields.get("from").map(String::as_str)
    }

    /// The `source=` field (a path inside `from`, or inside the build context).
    pub fn source(&self) -> Option<&str> {
        self.fields.get("source").map(String::as_str)
    }

    /// The `target=` field.
    pub fn target(&self) -> Option<&str> {
        self.fields.get("target").map(String::as_str)
    }

    /// A canonical text form (`type=bind,from=x,source=/y,target=/z`), fields sorted.
    pub fn canonical(&self) -> String {
        let mut s = format!("type={}", self.kind);
        for (k, v) in &self.fields {
            s.push(',');
            s.push_str(k);
            if !v.is_empty() {
                s.push('=');
                s.push_str(v);
            }
        }
        s
    }
}

/// Splits one CSV record the way Go's `encoding/csv` reader does for a single line: commas
/// separate fields, a field that starts with `"` is quoted and `""` inside it is a quote.
pub fn split_csv(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err(format!("unterminated quote in `{line}`")),
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => {}
                Some(c) => {
                    return Err(format!("unexpected `{c}` after a quoted field in `{line}`"));
                }
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                    Some(',') => break,
                    Some(c) => field.push(c),
                }
            }
        }
        fields.push(field);
    }
}

/// Parses a `--mount` value such as `type=cache,target=/var/cache/dnf` or
/// `from=build,source=/out,target=/in`.
pub fn parse_mount(value: &str) -> Result<Mount, String> {
    let mut kind = "bind".to_string();
    let mut fields = BTreeMap::new();
    for field in split_csv(value)? {
        let field = field.trim();
        if field.is_empty() {
            continue;
        }
        let (key, val) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), v.to_string()),
            None => (field.to_ascii_lowercase(), String::new()),
        };
        let key = match key.as_str() {
            "dst" | "destination" => "target".to_string(),
            "src" => "source".to_string(),
            "ro" | "readonly" => "readonly".to_string(),
            _ => key,
        };
        if key == "type" {
            kind = val.to_ascii_lowercase();
        } else {
            fields.insert(key, val);
        }
    }
    if matches!(kind.as_str(), "bind" | "cache" | "tmpfs") && !fields.contains_key("target") {
        return Err(format!("a {kind} mount needs target=<path> (in `{value}`)"));
    }
    if !matches!(kind.as_str(), "bind" | "cache" | "tmpfs" | "secret" | "ssh") {
        return Err(format!(
            "unknown mount type `{kind}` (bind, cache, tmpfs, secret or ssh)"
        ));
    }
    Ok(Mount { kind, fields })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields() {
        let cases: &[(&str, &[&str])] = &[
            ("a=1,b=2", &["a=1", "b=2"]),
            ("\"a=1,2\",b", &["a=1,2", "b"]),
            ("\"say \"\"hi\"\"\"", &["say \"hi\""]),
            ("a,,b", &["a", "", "b"]),
        ];
        for (input, want) in cases {
            assert_eq!(split_csv(input).unwrap(), *want, "{input}");
        }
        assert!(split_csv("\"open").is_err());
    }

    #[test]
    fn mounts() {
        let m = parse_mount("type=cache,target=/var/cache/dnf,sharing=locked").unwrap();
        assert_eq!(m.kind, "cache");
        assert_eq!(m.target(), Some("/var/cache/dnf"));
        let m = parse_mount("from=build,src=/out,dst=/in,ro").unwrap();
        assert_eq!(m.kind, "bind");
        assert_eq!(
            (m.from(), m.source(), m.target()),
            (Some("build"), Some("/out"), Some("/in"))
        );
        assert_eq!(
            m.canonical(),
            "type=bind,from=build,readonly,source=/out,target=/in"
        );
        let m = parse_mount("\"type=secret\",id=tok").unwrap();
        assert_eq!(m.kind, "secret");
        assert!(parse_mount("type=cache").unwrap_err().contains("target"));
        assert!(parse_mount("type=volume,target=/x").is_err());
    }
}
