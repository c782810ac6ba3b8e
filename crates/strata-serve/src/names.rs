//! Names and URL paths: PEP 503 project names, npm package names in request paths, and
//! percent-encoding. Pure functions.

/// PEP 503 normalisation: lower case, every run of `-`, `_` and `.` becomes one `-`.
///
/// `Foo.Bar__baz` → `foo-bar-baz`.
pub fn normalize_project(name: &str) -> String {
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

/// Decodes `%XX` escapes (invalid escapes are kept as they are). Returns `None` when the
/// result is not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex_val(bytes[i + 1]), hex_val(bytes[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-encodes a path (keeping `/` and the RFC 3986 unreserved characters plus `@`,
/// `+`, `!`, `~`), so any file name can be put in an `href` or a URL.
pub fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/@+!".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An npm package name as it appears in registry request paths: `@scope/name` may come as
/// `@scope%2fname` (npm's encoding of scoped names) or `@scope/name`.
pub fn npm_name_from_path(path: &str) -> Option<String> {
    let decoded = percent_decode(path)?;
    let name = decoded.trim_matches('/');
    let valid = match name.strip_prefix('@') {
        Some(scoped) => {
            matches!(scoped.split_once('/'), Some((s, n)) if !s.is_empty() && !n.is_empty() && !n.contains('/'))
        }
        None => !name.is_empty() && !name.contains('/'),
    };
    valid.then(|| name.to_owned())
}

/// What an npm registry request path (below the registry root) asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NpmRequest {
    /// The packument of a package.
    Packument(String),
    /// A tarball: the package name and the tarball's file name.
    Tarball {
        /// The package name (`@scope/name` or `name`).
        name: String,
        /// The last path segment (`name-1.0.0.tgz`).
        file: String,
    },
}

/// Parses a request path below the npm registry root: `name`, `@s%2fn`, `@s/n` are
/// packuments; `.../<name>/-/<file>` is a tarball, whatever comes before the name (npm keeps
/// the path of a lockfile's `resolved` URL when it swaps the host for the registry's).
pub fn parse_npm_path(path: &str) -> Option<NpmRequest> {
    let path = path.trim_start_matches('/');
    if let Some((before, file)) = path.rsplit_once("/-/") {
        let file = percent_decode(file)?;
        if file.is_empty() || file.contains('/') {
            return None;
        }
        let before = percent_decode(before)?;
        let segs: Vec<&str> = before.split('/').filter(|s| !s.is_empty()).collect();
        let name = match segs.as_slice() {
            [.., scope, n] if scope.starts_with('@') => format!("{scope}/{n}"),
            [.., n] if n.starts_with('@') && n.contains('/') => (*n).to_owned(),
            [.., n] => (*n).to_owned(),
            [] => return None,
        };
        return npm_name_from_path(&name).map(|name| NpmRequest::Tarball { name, file });
    }
    npm_name_from_path(path).map(NpmRequest::Packument)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pep503_normalisation() {
        for (name, want) in [
            ("Django", "django"),
            ("zope.interface", "zope-interface"),
            ("Foo.Bar__baz", "foo-bar-baz"),
            ("a-_-.b", "a-b"),
            ("typing_extensions", "typing-extensions"),
            ("already-normal", "already-normal"),
            ("pkg0", "pkg0"),
        ] {
            assert_eq!(normalize_project(name), want, "{name}");
        }
    }

    #[test]
    fn percent_coding() {
        assert_eq!(percent_decode("a%2Fb%2fc").as_deref(), Some("a/b/c"));
        assert_eq!(percent_decode("100%").as_deref(), Some("100%"));
        assert_eq!(percent_decode("%zz").as_deref(), Some("%zz"));
        assert_eq!(percent_decode("%ff"), None);
        assert_eq!(encode_path("deps/pip/a b+c.whl"), "deps/pip/a%20b+c.whl");
        assert_eq!(encode_path("x#y?z"), "x%23y%3Fz");
    }

    #[test]
    fn npm_paths() {
        let tarball = |name: &str, file: &str| {
            Some(NpmRequest::Tarball {
                name: name.into(),
                file: file.into(),
            })
        };
        let cases: &[(&str, Option<NpmRequest>)] = &[
            ("left-pad", Some(NpmRequest::Packument("left-pad".into()))),
            (
                "/@types%2freact",
                Some(NpmRequest::Packument("@types/react".into())),
            ),
            (
                "@types%2Freact",
                Some(NpmRequest::Packument("@types/react".into())),
            ),
            (
                "@types/react",
                Some(NpmRequest::Packument("@types/react".into())),
            ),
            ("a/b", None),
            ("@scope", None),
            ("", None),
            (
                "left-pad/-/left-pad-1.3.0.tgz",
                tarball("left-pad", "left-pad-1.3.0.tgz"),
            ),
            (
                "@types/react/-/react-18.2.0.tgz",
                tarball("@types/react", "react-18.2.0.tgz"),
            ),
            (
                "@types%2freact/-/react-18.2.0.tgz",
                tarball("@types/react", "react-18.2.0.tgz"),
            ),
            (
                "npm/mod0/-/mod0-1.0.0.tgz",
                tarball("mod0", "mod0-1.0.0.tgz"),
            ),
            ("/-/x.tgz", None),
        ];
        for (path, want) in cases {
            assert_eq!(&parse_npm_path(path), want, "{path}");
        }
    }
}
