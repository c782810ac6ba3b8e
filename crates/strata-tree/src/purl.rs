//! Package URLs spelled exactly as Hermeto spells them.
//!
//! Hermeto builds its purls with `packageurl-python`, whose encoding differs from a strict
//! reading of the purl spec in ways that show up in every SBOM (`:` and `/` are left unescaped
//! inside qualifier values, `+` and `@` are escaped, upper-case hex). SBOM consumers dedupe and
//! merge components by their purl *string*, so strata reproduces that spelling byte for byte
//! instead of using a generic purl library.

/// Percent-encodes `s` the way `packageurl-python`'s `quote` does: every byte except ASCII
/// letters, digits, `_.-~`, `/` and `:` becomes `%XX` (upper-case hex).
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'~' | b'/' | b':') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(
                char::from_digit(u32::from(b >> 4), 16)
                    .unwrap()
                    .to_ascii_uppercase(),
            );
            out.push(
                char::from_digit(u32::from(b & 0xf), 16)
                    .unwrap()
                    .to_ascii_uppercase(),
            );
        }
    }
    out
}

/// The parts of a package URL, before normalisation and encoding.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Purl {
    /// The purl type (`pypi`, `npm`, `rpm`, `generic`).
    pub ty: String,
    /// Optional namespace, `/`-separated segments (e.g. an RPM vendor).
    pub namespace: Option<String>,
    /// The package name (for npm it may be `@scope/name`, as Hermeto passes it).
    pub name: String,
    /// Optional version.
    pub version: Option<String>,
    /// Qualifiers; empty values are dropped and keys are sorted when rendered.
    pub qualifiers: Vec<(String, String)>,
}

impl Purl {
    /// Starts a purl of type `ty` for `name`.
    pub fn new(ty: &str, name: &str) -> Purl {
        Purl {
            ty: ty.to_owned(),
            name: name.to_owned(),
            ..Purl::default()
        }
    }

    /// Sets the version (an empty string means none).
    pub fn version(mut self, version: Option<&str>) -> Purl {
        self.version = version.filter(|v| !v.trim().is_empty()).map(str::to_owned);
        self
    }

    /// Sets the namespace (an empty string means none).
    pub fn namespace(mut self, namespace: Option<&str>) -> Purl {
        self.namespace = namespace
            .filter(|n| !n.trim().is_empty())
            .map(str::to_owned);
        self
    }

    /// Adds a qualifier; `None` or empty values are skipped.
    pub fn qualifier(mut self, key: &str, value: Option<&str>) -> Purl {
        if let Some(v) = value.filter(|v| !v.trim().is_empty()) {
            self.qualifiers
                .push((key.to_ascii_lowercase(), v.to_owned()));
        }
        self
    }
}

impl std::fmt::Display for Purl {
    /// Renders the purl with `packageurl-python`'s normalisation: the type is lower-cased,
    /// names of the `pypi` and `npm` types are lower-cased (`pypi` also turns `_` into `-`),
    /// qualifiers are sorted by key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ty = self.ty.to_ascii_lowercase();
        write!(f, "pkg:{ty}/")?;
        if let Some(ns) = &self.namespace {
            let segments: Vec<String> = ns
                .trim()
                .trim_matches('/')
                .split('/')
                .filter(|s| !s.trim().is_empty())
                .map(|s| {
                    if ty == "pypi" {
                        quote(&s.to_lowercase())
                    } else {
                        quote(s)
                    }
                })
                .collect();
            if !segments.is_empty() {
                write!(f, "{}/", segments.join("/"))?;
            }
        }
        let mut name = quote(&self.name).trim().trim_matches('/').to_owned();
        if ty == "pypi" || ty == "npm" {
            name = name.to_lowercase();
        }
        if ty == "pypi" {
            name = name.replace('_', "-");
        }
        f.write_str(&name)?;
        if let Some(v) = &self.version {
            write!(f, "@{}", quote(v.trim()))?;
        }
        let mut qualifiers: Vec<&(String, String)> = self.qualifiers.iter().collect();
        qualifiers.sort_by(|a, b| a.0.cmp(&b.0));
        qualifiers.dedup_by(|a, b| a.0 == b.0);
        for (i, (k, v)) in qualifiers.iter().enumerate() {
            let sep = if i == 0 { '?' } else { '&' };
            write!(f, "{sep}{k}={}", quote(v))?;
        }
        Ok(())
    }
}

/// PEP 503 name normalisation (what `packaging.utils.canonicalize_name` returns): lower case,
/// every run of `-`, `_` and `.` collapsed to a single `-`.
pub fn canonicalize_pypi_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_sep {
                out.push('-');
            }
            in_sep = true;
        } else {
            out.extend(c.to_lowercase());
            in_sep = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_matches_packageurl_python() {
        let cases = [
            ("abc-1.0_x.y~z", "abc-1.0_x.y~z"),
            ("sha256:abcd", "sha256:abcd"),
            (
                "https://127.0.0.1:8080/a/b.tgz",
                "https://127.0.0.1:8080/a/b.tgz",
            ),
            ("git+https://h/r.git@abc", "git%2Bhttps://h/r.git%40abc"),
            ("a b?c=d&e#f", "a%20b%3Fc%3Dd%26e%23f"),
            ("é", "%C3%A9"),
        ];
        for (input, want) in cases {
            assert_eq!(quote(input), want, "{input}");
        }
    }

    #[test]
    fn purls_as_hermeto_writes_them() {
        let cases = [
            // hermeto tests/integration/npm/scenarios/*/out/bom.json
            (
                Purl::new("npm", "@types/React").version(Some("18.2.18")),
                "pkg:npm/%40types/react@18.2.18",
            ),
            (
                Purl::new("pypi", "Flit_Core").version(Some("3.12.0")),
                "pkg:pypi/flit-core@3.12.0",
            ),
            (
                Purl::new("pypi", "torch").version(Some("2.1.0+cpu")),
                "pkg:pypi/torch@2.1.0%2Bcpu",
            ),
            // hermeto tests/unit/package_managers/test_rpm.py purl_format_str
            (
                Purl::new("rpm", "foo")
                    .namespace(Some("redhat"))
                    .version(Some("1.0-2.fc39"))
                    .qualifier("repository_id", Some("foorepo"))
                    .qualifier("checksum", Some("sha256:21bb2a09"))
                    .qualifier("arch", Some("x86_64"))
                    .qualifier("epoch", None),
                "pkg:rpm/redhat/foo@1.0-2.fc39?arch=x86_64&checksum=sha256:21bb2a09&repository_id=foorepo",
            ),
            (
                Purl::new("generic", "Some File.tgz")
                    .qualifier("download_url", Some("http://127.0.0.1/x.tgz?a=b"))
                    .qualifier("checksum", Some("sha256:00")),
                "pkg:generic/Some%20File.tgz?checksum=sha256:00&download_url=http://127.0.0.1/x.tgz%3Fa%3Db",
            ),
        ];
        for (purl, want) in cases {
            assert_eq!(purl.to_string(), want);
        }
    }

    #[test]
    fn pep503() {
        for (input, want) in [
            ("Flask", "flask"),
            ("zope.interface", "zope-interface"),
            ("a__b-.c", "a-b-c"),
            ("typing_extensions", "typing-extensions"),
        ] {
            assert_eq!(canonicalize_pypi_name(input), want);
        }
    }
}
