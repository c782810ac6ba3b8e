//! The image manifest (`strata-image.toml`): parsing with positions, and validation that
//! names the key and line of every problem.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

/// A manifest problem, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {key}{message}")]
pub struct ManifestError {
    /// The manifest file as given.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The key involved (`download.vscode.packages`), with `: ` appended; empty when none.
    pub key: String,
    /// What is wrong and what to do.
    pub message: String,
}

/// Which package manager the base image uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageManager {
    /// dnf (Fedora, RHEL, CentOS Stream): `dnf download`, RPMs in `/rpms`.
    Dnf,
    /// apt (Debian, Ubuntu): `apt-get download`, debs in `/debs`.
    Apt,
}

/// A validated manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The base image reference.
    pub from: String,
    /// The package manager.
    pub package_manager: PackageManager,
    /// `[download.<name>]` entries, sorted by name.
    pub downloads: Vec<Download>,
    /// `[install] packages`.
    pub install: Vec<String>,
    /// The install stage's epoch ARG.
    pub install_epoch_arg: String,
    /// `[binary.<name>]` entries, sorted by name.
    pub binaries: Vec<Binary>,
}

/// One parallel download stage, `dl-<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    /// The entry name.
    pub name: String,
    /// Packages to download.
    pub packages: Vec<String>,
    /// The stage's epoch ARG (default `<NAME>_CACHE_EPOCH`).
    pub epoch_arg: String,
}

/// How a binary is packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Archive {
    /// `.tar.gz` / `.tgz`.
    TarGz,
    /// `.tar.xz` / `.txz`.
    TarXz,
    /// `.tar.bz2` / `.tbz2`.
    TarBz2,
    /// `.tar.zst`.
    TarZst,
    /// `.tar`.
    Tar,
    /// `.zip`.
    Zip,
}

impl Archive {
    fn parse(s: &str) -> Option<Archive> {
        Some(match s {
            "tar.gz" | "tgz" => Archive::TarGz,
            "tar.xz" | "txz" => Archive::TarXz,
            "tar.bz2" | "tbz2" => Archive::TarBz2,
            "tar.zst" => Archive::TarZst,
            "tar" => Archive::Tar,
            "zip" => Archive::Zip,
            _ => return None,
        })
    }

    /// The archive type a URL's path ends with.
    pub fn from_url(url: &str) -> Option<Archive> {
        let path = url
            .split(['?', '#'])
            .next()
            .unwrap_or(url)
            .to_ascii_lowercase();
        [
            "tar.gz", "tgz", "tar.xz", "txz", "tar.bz2", "tbz2", "tar.zst", "tar", "zip",
        ]
        .iter()
        .find(|ext| path.ends_with(&format!(".{ext}")))
        .and_then(|ext| Archive::parse(ext))
    }
}

/// One parallel binary fetch stage, `fetch-<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binary {
    /// The entry name.
    pub name: String,
    /// Where to download from.
    pub url: String,
    /// Expected sha256 (lower-case hex) of the download.
    pub sha256: String,
    /// The member to take from the archive, and the archive type; `None` for a plain file.
    pub extract: Option<(String, Archive)>,
    /// Absolute destination path in the image.
    pub dest: String,
    /// File mode (octal).
    pub mode: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    image: Spanned<RawImage>,
    #[serde(default)]
    download: BTreeMap<Spanned<String>, Spanned<RawDownload>>,
    #[serde(default)]
    install: Option<Spanned<RawInstall>>,
    #[serde(default)]
    binary: BTreeMap<Spanned<String>, Spanned<RawBinary>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawImage {
    from: Spanned<String>,
    package_manager: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawDownload {
    packages: Spanned<Vec<Spanned<String>>>,
    epoch_arg: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawInstall {
    #[serde(default)]
    packages: Vec<Spanned<String>>,
    epoch_arg: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawBinary {
    url: Spanned<String>,
    sha256: Spanned<String>,
    extract: Option<Spanned<String>>,
    archive: Option<Spanned<String>>,
    dest: Spanned<String>,
    mode: Option<Spanned<String>>,
}

struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
}

impl Ctx<'_> {
    fn err(&self, span: Range<usize>, key: &str, message: impl Into<String>) -> ManifestError {
        let before = &self.text[..span.start.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        ManifestError {
            file: self.file.to_owned(),
            line,
            column,
            key: if key.is_empty() {
                String::new()
            } else {
                format!("{key}: ")
            },
            message: message.into(),
        }
    }
}

/// Parses and validates a manifest. `file` is only used in messages.
pub fn parse(file: &str, text: &str) -> Result<Manifest, ManifestError> {
    let cx = Ctx { file, text };
    let raw: RawManifest = toml::from_str(text).map_err(|e| {
        cx.err(
            e.span().unwrap_or(0..0),
            "",
            format!(
                "{}; see `strata generate --help` for the manifest format",
                e.message().trim_end()
            ),
        )
    })?;
    let image = raw.image.get_ref();
    let from = image.from.get_ref().trim();
    if from.is_empty() || from.contains(char::is_whitespace) {
        return Err(cx.err(
            image.from.span(),
            "image.from",
            "give the base image as one reference, e.g. \"registry.example/fedora:42\"",
        ));
    }
    let package_manager = match image.package_manager.as_ref() {
        None => PackageManager::Dnf,
        Some(pm) => match pm.get_ref().as_str() {
            "dnf" => PackageManager::Dnf,
            "apt" => PackageManager::Apt,
            other => {
                return Err(cx.err(
                    pm.span(),
                    "image.package-manager",
                    format!("`{other}` is not supported; use \"dnf\" or \"apt\""),
                ));
            }
        },
    };
    let mut downloads = Vec::new();
    for (name, d) in &raw.download {
        let key = format!("download.{}", name.get_ref());
        check_stage_name(&cx, name, &key)?;
        let d = d.get_ref();
        if d.packages.get_ref().is_empty() {
            return Err(cx.err(
                d.packages.span(),
                &format!("{key}.packages"),
                "list at least one package",
            ));
        }
        let packages = d
            .packages
            .get_ref()
            .iter()
            .map(|p| check_package(&cx, p, &format!("{key}.packages")))
            .collect::<Result<_, _>>()?;
        let epoch_arg = match &d.epoch_arg {
            Some(a) => check_arg(&cx, a, &format!("{key}.epoch-arg"))?,
            None => default_epoch_arg(name.get_ref()),
        };
        downloads.push(Download {
            name: name.get_ref().clone(),
            packages,
            epoch_arg,
        });
    }
    let (install, install_epoch_arg) = match &raw.install {
        None => (Vec::new(), "INSTALL_CACHE_EPOCH".to_owned()),
        Some(i) => {
            let i = i.get_ref();
            let packages = i
                .packages
                .iter()
                .map(|p| check_package(&cx, p, "install.packages"))
                .collect::<Result<_, _>>()?;
            let arg = match &i.epoch_arg {
                Some(a) => check_arg(&cx, a, "install.epoch-arg")?,
                None => "INSTALL_CACHE_EPOCH".to_owned(),
            };
            (packages, arg)
        }
    };
    let mut binaries = Vec::new();
    for (name, b) in &raw.binary {
        let key = format!("binary.{}", name.get_ref());
        check_stage_name(&cx, name, &key)?;
        binaries.push(check_binary(&cx, name.get_ref(), b.get_ref(), &key)?);
    }
    let mut args: BTreeMap<&str, &str> = BTreeMap::new();
    for d in &downloads {
        if let Some(other) = args.insert(&d.epoch_arg, &d.name) {
            let span = raw
                .download
                .keys()
                .find(|k| k.get_ref() == &d.name)
                .map(|k| k.span())
                .unwrap_or(0..0);
            return Err(cx.err(
                span,
                &format!("download.{}", d.name),
                format!(
                    "its epoch ARG {} is also download.{other}'s; give one of them its own epoch-arg",
                    d.epoch_arg
                ),
            ));
        }
    }
    let taken: Vec<String> = downloads
        .iter()
        .map(|d| format!("dl-{}", d.name))
        .chain(binaries.iter().map(|b| format!("fetch-{}", b.name)))
        .collect();
    debug_assert!(taken.iter().all(|t| t != "base" && t != "image"));
    Ok(Manifest {
        from: from.to_owned(),
        package_manager,
        downloads,
        install,
        install_epoch_arg,
        binaries,
    })
}

/// `<NAME>_CACHE_EPOCH` for a download name (upper-cased, non-alphanumerics as `_`), the
/// name `strata epochs` prints for a repo id of the same spelling.
pub fn default_epoch_arg(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out + "_CACHE_EPOCH"
}

fn check_stage_name(cx: &Ctx<'_>, name: &Spanned<String>, key: &str) -> Result<(), ManifestError> {
    let n = name.get_ref();
    let ok = !n.is_empty()
        && n.len() <= 60
        && n.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && n.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_' || c == '.'
        });
    if ok {
        Ok(())
    } else {
        Err(cx.err(
            name.span(),
            key,
            format!(
                "`{n}` cannot name a build stage; use lower-case letters, digits, `-`, `_` and `.`"
            ),
        ))
    }
}

fn check_package(cx: &Ctx<'_>, p: &Spanned<String>, key: &str) -> Result<String, ManifestError> {
    let v = p.get_ref();
    let ok = !v.is_empty()
        && !v.starts_with('-')
        && v.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(
                    c,
                    '.' | '_' | '+' | '-' | ':' | '~' | '^' | '*' | '=' | '/' | '@'
                )
        });
    if ok {
        Ok(v.clone())
    } else {
        Err(cx.err(
            p.span(),
            key,
            format!("`{v}` is not a package name (letters, digits and . _ + - : ~ ^ * = / @ only)"),
        ))
    }
}

fn check_arg(cx: &Ctx<'_>, a: &Spanned<String>, key: &str) -> Result<String, ManifestError> {
    let v = a.get_ref();
    let ok = v.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(v.clone())
    } else {
        Err(cx.err(
            a.span(),
            key,
            format!(
                "`{v}` is not a build ARG name (letters, digits and _, not starting with a digit)"
            ),
        ))
    }
}

fn safe_text(v: &str) -> bool {
    !v.is_empty()
        && !v.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, '\'' | '"' | '\\' | '`' | '$')
        })
}

fn check_binary(
    cx: &Ctx<'_>,
    name: &str,
    b: &RawBinary,
    key: &str,
) -> Result<Binary, ManifestError> {
    let url = b.url.get_ref();
    if !(url.starts_with("https://") || url.starts_with("http://")) || !safe_text(url) {
        return Err(cx.err(
            b.url.span(),
            &format!("{key}.url"),
            format!("`{url}` is not an http(s) URL without quotes or spaces"),
        ));
    }
    let sha = b.sha256.get_ref().to_ascii_lowercase();
    if sha.len() != 64 || !sha.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(cx.err(
            b.sha256.span(),
            &format!("{key}.sha256"),
            "give the download's sha256 as 64 hex digits (sha256sum FILE)",
        ));
    }
    let dest = b.dest.get_ref();
    if !dest.starts_with('/')
        || dest.ends_with('/')
        || !safe_text(dest)
        || dest.split('/').any(|c| c == "..")
    {
        return Err(cx.err(
            b.dest.span(),
            &format!("{key}.dest"),
            format!("`{dest}` is not an absolute file path (no quotes, spaces or `..`)"),
        ));
    }
    let mode = match &b.mode {
        None => "0755".to_owned(),
        Some(m) => {
            let v = m.get_ref();
            if v.is_empty() || v.len() > 4 || !v.chars().all(|c| ('0'..='7').contains(&c)) {
                return Err(cx.err(
                    m.span(),
                    &format!("{key}.mode"),
                    format!("`{v}` is not an octal mode like \"0755\""),
                ));
            }
            v.clone()
        }
    };
    let extract = match &b.extract {
        None => {
            if let Some(a) = &b.archive {
                return Err(cx.err(
                    a.span(),
                    &format!("{key}.archive"),
                    "`archive` needs `extract` (the member to take)",
                ));
            }
            None
        }
        Some(member) => {
            let m = member.get_ref();
            if !safe_text(m) || m.starts_with('/') || m.split('/').any(|c| c == "..") {
                return Err(cx.err(
                    member.span(),
                    &format!("{key}.extract"),
                    format!("`{m}` is not a relative path inside the archive"),
                ));
            }
            let archive = match &b.archive {
                Some(a) => Archive::parse(a.get_ref()).ok_or_else(|| {
                    cx.err(
                        a.span(),
                        &format!("{key}.archive"),
                        format!("`{}` is not one of tar.gz, tar.xz, tar.bz2, tar.zst, tar, zip", a.get_ref()),
                    )
                })?,
                None => Archive::from_url(url).ok_or_else(|| {
                    cx.err(
                        b.url.span(),
                        &format!("{key}.url"),
                        "cannot tell the archive type from the URL; add archive = \"tar.gz\" (or tar.xz, tar.bz2, tar.zst, tar, zip)",
                    )
                })?,
            };
            Some((m.clone(), archive))
        }
    };
    Ok(Binary {
        name: name.to_owned(),
        url: url.clone(),
        sha256: sha,
        extract,
        dest: dest.clone(),
        mode,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    #[test]
    fn parses_the_issue_example() {
        let text = format!(
            r#"[image]
from = "registry.example/fedora:42"
package-manager = "dnf"
[download.vscode]
packages = ["code", "code-insiders"]
epoch-arg = "VSCODE_CACHE_EPOCH"
[download.ms-edge]
packages = ["microsoft-edge-stable"]
[install]
packages = ["curl", "jq"]
[binary.starship]
url = "https://example.org/starship.tar.gz"
sha256 = "{SHA}"
extract = "starship"
dest = "/usr/bin/starship"
"#
        );
        let m = parse("m.toml", &text).unwrap();
        assert_eq!(m.package_manager, PackageManager::Dnf);
        assert_eq!(m.downloads[0].name, "ms-edge");
        assert_eq!(m.downloads[0].epoch_arg, "MS_EDGE_CACHE_EPOCH");
        assert_eq!(m.downloads[1].packages, ["code", "code-insiders"]);
        assert_eq!(m.install, ["curl", "jq"]);
        assert_eq!(
            m.binaries[0].extract,
            Some(("starship".into(), Archive::TarGz))
        );
        assert_eq!(m.binaries[0].mode, "0755");
    }

    #[test]
    fn errors_name_key_and_line() {
        let base = "[image]\nfrom = \"x\"\n";
        let cases: &[(String, &str)] = &[
            (
                format!("{base}package-manager = \"yum\"\n"),
                "m.toml:3:19: image.package-manager: `yum` is not supported",
            ),
            (
                format!("{base}[download.vscode]\npackages = []\n"),
                "m.toml:4:12: download.vscode.packages: list at least one package",
            ),
            (
                format!("{base}[download.vscode]\npackages = [\"a; rm -rf /\"]\n"),
                "m.toml:4:13: download.vscode.packages: `a; rm -rf /` is not a package name",
            ),
            (
                format!("{base}[download.\"VS Code\"]\npackages = [\"a\"]\n"),
                "m.toml:3:11: download.VS Code: `VS Code` cannot name a build stage",
            ),
            (
                format!("{base}[download.a]\npackages = [\"a\"]\nepoch = 1\n"),
                "m.toml:5:1: unknown field `epoch`",
            ),
            (
                format!(
                    "{base}[binary.x]\nurl = \"https://h/x\"\nsha256 = \"abc\"\ndest = \"/x\"\n"
                ),
                "m.toml:5:10: binary.x.sha256: give the download's sha256",
            ),
            (
                format!(
                    "{base}[binary.x]\nurl = \"https://h/x.bin\"\nsha256 = \"{SHA}\"\nextract = \"x\"\ndest = \"/x\"\n"
                ),
                "m.toml:4:7: binary.x.url: cannot tell the archive type",
            ),
            (
                format!(
                    "{base}[binary.x]\nurl = \"https://h/x\"\nsha256 = \"{SHA}\"\ndest = \"rel/x\"\n"
                ),
                "m.toml:6:8: binary.x.dest: `rel/x` is not an absolute file path",
            ),
            (
                format!(
                    "{base}[download.a]\npackages = [\"a\"]\nepoch-arg = \"B\"\n[download.b]\npackages = [\"b\"]\nepoch-arg = \"B\"\n"
                ),
                "m.toml:6:11: download.b: its epoch ARG B is also download.a's",
            ),
            ("[image]\n".into(), "m.toml:1:1: missing field `from`"),
            ("[image\n".into(), "m.toml:1:7: "),
        ];
        for (text, want) in cases {
            let err = parse("m.toml", text).unwrap_err().to_string();
            assert!(err.starts_with(want), "{text}\n got: {err}\nwant: {want}");
        }
    }

    #[test]
    fn archive_types_from_urls() {
        assert_eq!(
            Archive::from_url("https://h/a.TGZ?x=1"),
            Some(Archive::TarGz)
        );
        assert_eq!(
            Archive::from_url("https://h/a.tar.zst"),
            Some(Archive::TarZst)
        );
        assert_eq!(Archive::from_url("https://h/a.zip#f"), Some(Archive::Zip));
        assert_eq!(Archive::from_url("https://h/a"), None);
        assert_eq!(default_epoch_arg("1pw.x"), "_1PW_X_CACHE_EPOCH");
    }
}
