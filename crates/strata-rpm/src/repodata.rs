//! Rendering repodata (`repomd.xml`, `primary.xml.gz`, `filelists.xml.gz`, `other.xml.gz`)
//! from package headers, the way `createrepo_c` lays it out. Pure: bytes in, bytes out.
//!
//! The package checksum (`pkgid`), size and location come from the lockfile, not from reading
//! the whole package: the lockfile's sha256 is the package's sha256, and dnf verifies every
//! package it installs against it, so metadata built from headers fetched with a `Range`
//! request cannot smuggle in a different package.

use std::fmt::Write as _;
use std::io::Write as _;

use sha2::{Digest as _, Sha256};

use crate::header::{Dep, FileKind, PackageHeader};

/// One package of a repository: its headers plus what the lockfile says about the file.
#[derive(Debug, Clone)]
pub struct RepoPackage {
    /// Parsed headers.
    pub header: PackageHeader,
    /// Path of the package relative to the repository root (its file name, for strata).
    pub location: String,
    /// Lower-case hex sha256 of the whole package file.
    pub sha256: String,
    /// Size of the package file in bytes.
    pub size: u64,
}

/// A metadata file that is not generated but listed in `repomd.xml` as it is (module
/// metadata, `modules.yaml.gz`, from a lockfile's `module_metadata`).
#[derive(Debug, Clone)]
pub struct ExtraMetadata {
    /// The repomd data type (`modules`).
    pub kind: String,
    /// Path relative to the repository root.
    pub location: String,
    /// Lower-case hex sha256 of the file.
    pub sha256: String,
    /// Size in bytes, when known.
    pub size: Option<u64>,
}

/// A generated repodata file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepodataFile {
    /// Path relative to the repository root, e.g. `repodata/repomd.xml`.
    pub path: String,
    /// The content.
    pub bytes: Vec<u8>,
}

/// The version of the generator; part of every repodata cache key, so a change to the
/// output format regenerates cached repodata.
pub const GENERATOR_VERSION: &str = "strata-rpm-repodata-1";

/// Generates the repodata of one repository. `packages` may come in any order (they are
/// sorted by location). `repomd.xml` is the last file returned. Deterministic: the same
/// input gives the same bytes.
pub fn generate(packages: &[RepoPackage], extra: &[ExtraMetadata]) -> Vec<RepodataFile> {
    let mut packages: Vec<&RepoPackage> = packages.iter().collect();
    packages.sort_by(|a, b| a.location.cmp(&b.location));
    let timestamp = packages
        .iter()
        .map(|p| p.header.build_time)
        .max()
        .unwrap_or(0);
    let docs = [
        ("primary", primary_xml(&packages)),
        ("filelists", filelists_xml(&packages)),
        ("other", other_xml(&packages)),
    ];
    let mut files = Vec::new();
    let mut repomd = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <repomd xmlns=\"http://linux.duke.edu/metadata/repo\" xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\">\n",
    );
    let _ = writeln!(repomd, "  <revision>{timestamp}</revision>");
    for (kind, xml) in docs {
        let gz = gzip(xml.as_bytes());
        let gz_sum = sha256_hex(&gz);
        let path = format!("repodata/{gz_sum}-{kind}.xml.gz");
        let _ = write!(
            repomd,
            "  <data type=\"{kind}\">\n    <checksum type=\"sha256\">{gz_sum}</checksum>\n    \
             <open-checksum type=\"sha256\">{}</open-checksum>\n    <location href=\"{path}\"/>\n    \
             <timestamp>{timestamp}</timestamp>\n    <size>{}</size>\n    <open-size>{}</open-size>\n  </data>\n",
            sha256_hex(xml.as_bytes()),
            gz.len(),
            xml.len()
        );
        files.push(RepodataFile { path, bytes: gz });
    }
    for e in extra {
        let _ = write!(
            repomd,
            "  <data type=\"{}\">\n    <checksum type=\"sha256\">{}</checksum>\n    \
             <location href=\"{}\"/>\n    <timestamp>{timestamp}</timestamp>\n",
            esc(&e.kind),
            e.sha256,
            esc(&e.location)
        );
        if let Some(size) = e.size {
            let _ = writeln!(repomd, "    <size>{size}</size>");
        }
        repomd.push_str("  </data>\n");
    }
    repomd.push_str("</repomd>\n");
    files.push(RepodataFile {
        path: "repodata/repomd.xml".into(),
        bytes: repomd.into_bytes(),
    });
    files
}

/// The primary XML document.
pub fn primary_xml(packages: &[&RepoPackage]) -> String {
    let mut x = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<metadata xmlns=\"http://linux.duke.edu/metadata/common\" xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\" packages=\"{}\">\n",
        packages.len()
    );
    for p in packages {
        let h = &p.header;
        let _ = write!(
            x,
            "<package type=\"rpm\">\n  <name>{}</name>\n  <arch>{}</arch>\n  {}\n  \
             <checksum type=\"sha256\" pkgid=\"YES\">{}</checksum>\n  <summary>{}</summary>\n  \
             <description>{}</description>\n  <packager>{}</packager>\n  <url>{}</url>\n  \
             <time file=\"{}\" build=\"{}\"/>\n  <size package=\"{}\" installed=\"{}\" archive=\"{}\"/>\n  \
             <location href=\"{}\"/>\n  <format>\n    <rpm:license>{}</rpm:license>\n    \
             <rpm:vendor>{}</rpm:vendor>\n    <rpm:group>{}</rpm:group>\n    \
             <rpm:buildhost>{}</rpm:buildhost>\n    <rpm:sourcerpm>{}</rpm:sourcerpm>\n    \
             <rpm:header-range start=\"{}\" end=\"{}\"/>\n",
            esc(&h.name),
            esc(&h.arch),
            version_elem(h),
            p.sha256,
            esc(&h.summary),
            esc(&h.description),
            esc(&h.packager),
            esc(&h.url),
            h.build_time,
            h.build_time,
            p.size,
            h.installed_size,
            h.archive_size,
            esc(&p.location),
            esc(&h.license),
            esc(&h.vendor),
            esc(&h.group),
            esc(&h.build_host),
            esc(&h.source_rpm),
            h.header_start,
            h.header_end,
        );
        for (elem, deps) in [
            ("provides", &h.provides),
            ("requires", &h.requires),
            ("conflicts", &h.conflicts),
            ("obsoletes", &h.obsoletes),
            ("suggests", &h.suggests),
            ("enhances", &h.enhances),
            ("recommends", &h.recommends),
            ("supplements", &h.supplements),
        ] {
            dep_list(&mut x, elem, deps, elem == "requires");
        }
        for (path, kind) in &h.files {
            if is_primary_file(path) {
                file_elem(&mut x, "    ", path, *kind);
            }
        }
        x.push_str("  </format>\n</package>\n");
    }
    x.push_str("</metadata>\n");
    x
}

/// The filelists XML document.
pub fn filelists_xml(packages: &[&RepoPackage]) -> String {
    let mut x = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<filelists xmlns=\"http://linux.duke.edu/metadata/filelists\" packages=\"{}\">\n",
        packages.len()
    );
    for p in packages {
        let h = &p.header;
        let _ = writeln!(
            x,
            "<package pkgid=\"{}\" name=\"{}\" arch=\"{}\">\n  {}",
            p.sha256,
            esc(&h.name),
            esc(&h.arch),
            version_elem(h)
        );
        for (path, kind) in &h.files {
            file_elem(&mut x, "  ", path, *kind);
        }
        x.push_str("</package>\n");
    }
    x.push_str("</filelists>\n");
    x
}

/// The other XML document (changelogs).
pub fn other_xml(packages: &[&RepoPackage]) -> String {
    let mut x = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<otherdata xmlns=\"http://linux.duke.edu/metadata/other\" packages=\"{}\">\n",
        packages.len()
    );
    for p in packages {
        let h = &p.header;
        let _ = writeln!(
            x,
            "<package pkgid=\"{}\" name=\"{}\" arch=\"{}\">\n  {}",
            p.sha256,
            esc(&h.name),
            esc(&h.arch),
            version_elem(h)
        );
        for c in &h.changelog {
            let _ = writeln!(
                x,
                "  <changelog author=\"{}\" date=\"{}\">{}</changelog>",
                esc(&c.author),
                c.date,
                esc(&c.text)
            );
        }
        x.push_str("</package>\n");
    }
    x.push_str("</otherdata>\n");
    x
}

fn version_elem(h: &PackageHeader) -> String {
    format!(
        "<version epoch=\"{}\" ver=\"{}\" rel=\"{}\"/>",
        h.epoch,
        esc(&h.version),
        esc(&h.release)
    )
}

fn dep_list(x: &mut String, elem: &str, deps: &[Dep], with_pre: bool) {
    if deps.is_empty() {
        return;
    }
    let _ = writeln!(x, "    <rpm:{elem}>");
    for d in deps {
        let _ = write!(x, "      <rpm:entry name=\"{}\"", esc(&d.name));
        if let Some(flags) = d.flags {
            let _ = write!(x, " flags=\"{flags}\"");
            if let Some(e) = &d.epoch {
                let _ = write!(x, " epoch=\"{}\"", esc(e));
            }
            if let Some(v) = &d.ver {
                let _ = write!(x, " ver=\"{}\"", esc(v));
            }
            if let Some(r) = &d.rel {
                let _ = write!(x, " rel=\"{}\"", esc(r));
            }
        }
        if with_pre && d.pre {
            x.push_str(" pre=\"1\"");
        }
        x.push_str("/>\n");
    }
    let _ = writeln!(x, "    </rpm:{elem}>");
}

fn file_elem(x: &mut String, indent: &str, path: &str, kind: FileKind) {
    let attr = match kind {
        FileKind::File => "",
        FileKind::Dir => " type=\"dir\"",
        FileKind::Ghost => " type=\"ghost\"",
    };
    let _ = writeln!(x, "{indent}<file{attr}>{}</file>", esc(path));
}

/// createrepo_c's rule for which files go into primary: `/etc/*`, `*bin/*` and
/// `/usr/lib/sendmail` (what file dependencies usually name).
pub fn is_primary_file(path: &str) -> bool {
    path.starts_with("/etc/") || path.contains("bin/") || path == "/usr/lib/sendmail"
}

/// XML-escapes text and attribute values; drops characters XML 1.0 forbids.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

/// Lower-case hex sha256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Deterministic gzip (no file name, mtime 0).
fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).expect("writing to memory");
    enc.finish().expect("writing to memory")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header;

    fn pkg(name: &str) -> RepoPackage {
        RepoPackage {
            header: header::parse(&header::tests::package(name, "1.0")).unwrap(),
            location: format!("{name}-1.0-1.noarch.rpm"),
            sha256: sha256_hex(name.as_bytes()),
            size: 1000,
        }
    }

    #[test]
    fn generates_listed_files_with_matching_checksums() {
        let files = generate(&[pkg("b"), pkg("a")], &[]);
        assert_eq!(files.len(), 4);
        let repomd = String::from_utf8(files[3].bytes.clone()).unwrap();
        assert_eq!(files[3].path, "repodata/repomd.xml");
        for f in &files[..3] {
            assert!(repomd.contains(&format!("<location href=\"{}\"/>", f.path)));
            assert!(repomd.contains(&sha256_hex(&f.bytes)));
            assert!(f.path.contains(&sha256_hex(&f.bytes)));
        }
        let primary = crate::live::decompress(&files[0].path, &files[0].bytes).unwrap();
        let primary = String::from_utf8(primary).unwrap();
        assert!(primary.contains("packages=\"2\""));
        assert!(primary.find("<name>a</name>").unwrap() < primary.find("<name>b</name>").unwrap());
        assert!(primary.contains("<summary>A &lt;test&gt; &amp; more</summary>"));
        assert!(primary.contains("<version epoch=\"2\" ver=\"1.0\" rel=\"1\"/>"));
        assert!(
            primary.contains(
                "<rpm:entry name=\"base\" flags=\"GE\" epoch=\"1\" ver=\"2.0\" rel=\"3\"/>"
            )
        );
        assert!(primary.contains("<rpm:entry name=\"/bin/sh\" pre=\"1\"/>"));
        assert!(primary.contains("<file>/usr/bin/tool</file>"));
        assert!(!primary.contains("/usr/share/doc"), "only primary files");
        let filelists = crate::live::decompress(&files[1].path, &files[1].bytes).unwrap();
        let filelists = String::from_utf8(filelists).unwrap();
        assert!(filelists.contains("<file type=\"dir\">/usr/share/doc</file>"));
        assert!(filelists.contains("<file type=\"ghost\">/usr/share/ghost</file>"));
        assert_eq!(
            generate(&[pkg("a"), pkg("b")], &[]),
            files,
            "order does not matter"
        );
    }

    #[test]
    fn extra_metadata_is_listed() {
        let files = generate(
            &[],
            &[ExtraMetadata {
                kind: "modules".into(),
                location: "x-modules.yaml.gz".into(),
                sha256: "ab".repeat(32),
                size: Some(5),
            }],
        );
        let repomd = String::from_utf8(files.last().unwrap().bytes.clone()).unwrap();
        assert!(repomd.contains("<data type=\"modules\">"));
        assert!(repomd.contains("<location href=\"x-modules.yaml.gz\"/>"));
        assert!(repomd.contains("<size>5</size>"));
    }

    #[test]
    fn escaping() {
        assert_eq!(esc("a<&>\"b\u{1}\n"), "a&lt;&amp;&gt;&quot;b\n");
        assert!(is_primary_file("/usr/bin/x"));
        assert!(is_primary_file("/etc/x.conf"));
        assert!(is_primary_file("/usr/sbin/y"));
        assert!(!is_primary_file("/usr/share/doc/x"));
    }
}
