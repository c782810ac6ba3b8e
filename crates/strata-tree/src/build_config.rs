//! `.build-config.json` in Hermeto's shape, and what `generate-env` makes of it.
//!
//! Hermeto (`hermeto/core/models/output.py`, `BuildConfig`) writes
//! `{"environment_variables": [{"name", "value"}...], "project_files": [{"abspath",
//! "template"}...], "options": {...}}` with `model_dump_json(indent=2, exclude_none=True)`:
//! two-space indent, no trailing newline, `options` omitted when there are none, environment
//! variables sorted by name and project files sorted by path. Values and templates hold the
//! `${output_dir}` placeholder, resolved only when the environment or project files are
//! generated for a concrete `--for-output-dir`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::template::{self, OUTPUT_DIR_PLACEHOLDER};

/// One environment variable; `value` is a template (see [`crate::template`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentVariable {
    /// Variable name.
    pub name: String,
    /// Templated value, e.g. `${output_dir}/deps/pip`.
    pub value: String,
    /// Legacy Cachi2 field (`"path"` or `"literal"`), never written. When an old
    /// `.build-config.json` says `"path"`, the value is relative to the output directory.
    #[serde(default, skip_serializing)]
    pub kind: Option<String>,
}

impl EnvironmentVariable {
    /// A variable with a templated value.
    pub fn new(name: &str, value: &str) -> EnvironmentVariable {
        EnvironmentVariable {
            name: name.to_owned(),
            value: value.to_owned(),
            kind: None,
        }
    }

    fn template(&self) -> String {
        if self.kind.as_deref() == Some("path") {
            format!("{OUTPUT_DIR_PLACEHOLDER}/{}", self.value)
        } else {
            self.value.clone()
        }
    }
}

/// A file that `inject-files` writes into the user's project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectFile {
    /// Absolute path of the file to write.
    pub abspath: PathBuf,
    /// The content, a template in which `${output_dir}` is replaced by the for-output-dir.
    pub template: String,
}

impl ProjectFile {
    /// The content to write for an output directory seen at `for_output_dir`.
    pub fn resolve_content(&self, for_output_dir: &str) -> String {
        template::safe_substitute(&self.template, |k| {
            (k == "output_dir").then_some(for_output_dir)
        })
    }
}

/// The whole `.build-config.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildConfig {
    /// Environment variables, sorted by name and unique.
    #[serde(default)]
    pub environment_variables: Vec<EnvironmentVariable>,
    /// Project files, sorted by path and unique.
    #[serde(default)]
    pub project_files: Vec<ProjectFile>,
    /// Backend options (Hermeto: `{"rpm": {"dnf": ...}}`); omitted when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<serde_json::Map<String, serde_json::Value>>,
}

impl BuildConfig {
    /// Sorts and de-duplicates like Hermeto's validators (by name, by path; the first wins).
    pub fn normalize(&mut self) {
        self.environment_variables
            .sort_by(|a, b| a.name.cmp(&b.name));
        self.environment_variables.dedup_by(|a, b| a.name == b.name);
        // `Path` orders by components, like Python's `PurePath` does.
        self.project_files.sort_by(|a, b| a.abspath.cmp(&b.abspath));
        self.project_files.dedup_by(|a, b| a.abspath == b.abspath);
    }

    /// Serialises exactly as Hermeto writes the file: two-space indent, no trailing newline.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a BuildConfig always serialises")
    }

    /// Parses a `.build-config.json` (Hermeto's, Cachi2's legacy one, or strata's).
    pub fn from_json(bytes: &[u8]) -> Result<BuildConfig, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// Why the environment could not be generated.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvError {
    /// Variables refer to each other in a loop.
    #[error(
        "environment variable `{0}` expands to itself through other variables; \
         fix .build-config.json so no variable refers back to itself"
    )]
    Cycle(String),
}

/// Resolves every environment variable for an output directory seen at `for_output_dir`, in
/// the order of the build config (sorted by name), as Hermeto's `generate-env` does:
/// `${output_dir}` and references to other variables are substituted, repeatedly, and a
/// reference cycle is an error.
pub fn env_vars(
    build_config: &BuildConfig,
    for_output_dir: &str,
) -> Result<Vec<(String, String)>, EnvError> {
    let mut mappings: Vec<(String, String)> = build_config
        .environment_variables
        .iter()
        .map(|v| (v.name.clone(), v.template()))
        .collect();
    mappings.retain(|(k, _)| k != "output_dir");
    mappings.push(("output_dir".to_owned(), for_output_dir.to_owned()));
    let lookup = |k: &str| {
        mappings
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    };

    let mut out = Vec::with_capacity(build_config.environment_variables.len());
    for var in &build_config.environment_variables {
        let mut value = var.template();
        let mut substituted: Vec<String> = Vec::new();
        for _ in 0..mappings.len() {
            let before: Vec<String> = template::placeholders(&value)
                .into_iter()
                .map(str::to_owned)
                .collect();
            value = template::safe_substitute(&value, lookup);
            for p in before {
                if lookup(&p).is_some() && !substituted.contains(&p) {
                    substituted.push(p);
                }
            }
            if template::placeholders(&value)
                .iter()
                .any(|p| substituted.iter().any(|s| s == p))
            {
                return Err(EnvError::Cycle(var.name.clone()));
            }
        }
        out.push((var.name.clone(), value));
    }
    Ok(out)
}

/// Output formats of `strata env` (Hermeto's `generate-env --format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvFormat {
    /// `export NAME=value` lines, values quoted for POSIX shells.
    Env,
    /// `[{"name": ..., "value": ...}, ...]` on one line.
    Json,
}

impl std::str::FromStr for EnvFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "env" | "sh" => Ok(EnvFormat::Env),
            "json" => Ok(EnvFormat::Json),
            other => Err(format!(
                "unknown environment format `{other}` (use env, sh or json)"
            )),
        }
    }
}

/// Renders resolved variables exactly as Hermeto's `generate-env` prints them, including the
/// final newline its `print` adds.
///
/// `env`: `export NAME=VALUE` per line, both quoted with Python's `shlex.quote` rules.
/// `json`: Python's `json.dumps` of `[{"name", "value"}]` (`, ` and `: ` separators, non-ASCII
/// escaped as `\uXXXX`).
pub fn format_env(vars: &[(String, String)], format: EnvFormat) -> String {
    let mut out = String::new();
    match format {
        EnvFormat::Env => {
            for (i, (name, value)) in vars.iter().enumerate() {
                if i > 0 {
                    out.push('\n');
                }
                out.push_str("export ");
                out.push_str(&shell_quote(name));
                out.push('=');
                out.push_str(&shell_quote(value));
            }
        }
        EnvFormat::Json => {
            out.push('[');
            for (i, (name, value)) in vars.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str("{\"name\": ");
                python_json_string(&mut out, name);
                out.push_str(", \"value\": ");
                python_json_string(&mut out, value);
                out.push('}');
            }
            out.push(']');
        }
    }
    out.push('\n');
    out
}

/// Quotes `s` for a POSIX shell like Python's `shlex.quote`: unchanged when it only holds
/// ASCII letters, digits and `@%+=:,./_-`; `''` when empty; otherwise single-quoted with each
/// `'` written as `'"'"'`.
pub fn shell_quote(s: &str) -> String {
    if s.is_empty() {
        return "''".to_owned();
    }
    let safe = s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"@%+=:,./_-".contains(&b));
    if safe {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\"'\"'"))
    }
}

/// Appends `s` as a JSON string the way Python's `json.dumps` (with `ensure_ascii`) writes it.
fn python_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> BuildConfig {
        let mut c = BuildConfig {
            environment_variables: vars
                .iter()
                .map(|(n, v)| EnvironmentVariable::new(n, v))
                .collect(),
            ..BuildConfig::default()
        };
        c.normalize();
        c
    }

    #[test]
    fn shell_quote_matches_shlex() {
        let cases = [
            ("", "''"),
            ("/cachi2/output/deps/pip", "/cachi2/output/deps/pip"),
            ("true", "true"),
            ("a b", "'a b'"),
            ("it's", "'it'\"'\"'s'"),
            ("$HOME", "'$HOME'"),
            ("x;rm -rf /", "'x;rm -rf /'"),
            ("a=b,c:d@e%f+g", "a=b,c:d@e%f+g"),
            ("ünï", "'ünï'"),
            ("back\\slash", "'back\\slash'"),
        ];
        for (input, want) in cases {
            assert_eq!(shell_quote(input), want, "{input:?}");
        }
    }

    #[test]
    fn env_and_json_formats() {
        let c = config(&[
            ("PIP_NO_INDEX", "true"),
            ("PIP_FIND_LINKS", "${output_dir}/deps/pip"),
        ]);
        let vars = env_vars(&c, "/tmp/my output").unwrap();
        assert_eq!(
            format_env(&vars, EnvFormat::Env),
            "export PIP_FIND_LINKS='/tmp/my output/deps/pip'\nexport PIP_NO_INDEX=true\n"
        );
        assert_eq!(
            format_env(&vars, EnvFormat::Json),
            "[{\"name\": \"PIP_FIND_LINKS\", \"value\": \"/tmp/my output/deps/pip\"}, \
             {\"name\": \"PIP_NO_INDEX\", \"value\": \"true\"}]\n"
        );
        assert_eq!(format_env(&[], EnvFormat::Json), "[]\n");
        assert_eq!(format_env(&[], EnvFormat::Env), "\n");
        let uni = vec![("X".to_owned(), "é\"\u{1F600}".to_owned())];
        assert_eq!(
            format_env(&uni, EnvFormat::Json),
            "[{\"name\": \"X\", \"value\": \"\\u00e9\\\"\\ud83d\\ude00\"}]\n"
        );
    }

    #[test]
    fn nested_variables_and_cycles() {
        let c = config(&[
            ("A", "${B}/a"),
            ("B", "${output_dir}/b"),
            ("C", "$$literal"),
        ]);
        assert_eq!(
            env_vars(&c, "/o").unwrap(),
            vec![
                ("A".to_owned(), "/o/b/a".to_owned()),
                ("B".to_owned(), "/o/b".to_owned()),
                ("C".to_owned(), "$literal".to_owned()),
            ]
        );
        let c = config(&[("A", "${B}"), ("B", "${A}")]);
        assert_eq!(env_vars(&c, "/o"), Err(EnvError::Cycle("A".to_owned())));
    }

    #[test]
    fn legacy_path_kind_is_relative_to_output_dir() {
        let c = BuildConfig::from_json(
            br#"{"environment_variables":[{"name":"GOCACHE","value":"deps/gomod","kind":"path"},
                {"name":"GOFLAGS","value":"-mod=mod","kind":"literal"}],"project_files":[]}"#,
        )
        .unwrap();
        assert_eq!(
            env_vars(&c, "/o").unwrap(),
            vec![
                ("GOCACHE".to_owned(), "/o/deps/gomod".to_owned()),
                ("GOFLAGS".to_owned(), "-mod=mod".to_owned()),
            ]
        );
        // and `kind` is never written back
        assert!(!String::from_utf8(c.to_json()).unwrap().contains("kind"));
    }
}
