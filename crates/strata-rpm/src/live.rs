//! Reading a live repository's metadata: `repomd.xml` and the primary document it lists,
//! compressed with gzip, xz or zstd (or not at all). Pure: bytes in, facts out; the HTTP is in
//! [`crate::source`].

use std::io::Read as _;

use quick_xml::events::Event;

/// Why repository metadata could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// The XML is malformed.
    #[error("{what} is not valid XML: {message}")]
    Xml {
        /// Which document.
        what: String,
        /// The parser's complaint.
        message: String,
    },
    /// `repomd.xml` lists no primary metadata.
    #[error("repomd.xml lists no primary metadata (no <data type=\"primary\">)")]
    NoPrimary,
    /// The compression is one strata cannot read.
    #[error("{file}: cannot decompress: {message}")]
    Decompress {
        /// The file.
        file: String,
        /// Why.
        message: String,
    },
}

/// One `<data>` entry of `repomd.xml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepomdEntry {
    /// The type (`primary`, `filelists`, `modules`...).
    pub kind: String,
    /// Location relative to the repository root.
    pub href: String,
    /// Checksum algorithm as written (`sha256`...).
    pub checksum_type: String,
    /// Checksum hex of the file as stored.
    pub checksum: String,
}

/// One package of a primary document.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PrimaryPackage {
    /// Name.
    pub name: String,
    /// Architecture.
    pub arch: String,
    /// Epoch.
    pub epoch: String,
    /// Version.
    pub ver: String,
    /// Release.
    pub rel: String,
    /// The package checksum (pkgid).
    pub pkgid: String,
    /// Location relative to the repository root.
    pub href: String,
}

impl PrimaryPackage {
    /// `epoch:version-release.arch`.
    pub fn nevra_tail(&self) -> String {
        format!("{}:{}-{}.{}", self.epoch, self.ver, self.rel, self.arch)
    }
}

/// Decompresses `bytes` according to `name`'s extension: `.gz`, `.xz`, `.zst`; anything else
/// is returned as it is. `.bz2` is refused with a clear message.
pub fn decompress(name: &str, bytes: &[u8]) -> Result<Vec<u8>, MetadataError> {
    let err = |message: String| MetadataError::Decompress {
        file: name.to_owned(),
        message,
    };
    let mut out = Vec::new();
    if name.ends_with(".gz") {
        flate2::read::MultiGzDecoder::new(bytes)
            .read_to_end(&mut out)
            .map_err(|e| err(e.to_string()))?;
    } else if name.ends_with(".xz") {
        lzma_rs::xz_decompress(&mut std::io::BufReader::new(bytes), &mut out)
            .map_err(|e| err(format!("{e:?}")))?;
    } else if name.ends_with(".zst") {
        ruzstd::decoding::StreamingDecoder::new(bytes)
            .map_err(|e| err(e.to_string()))?
            .read_to_end(&mut out)
            .map_err(|e| err(e.to_string()))?;
    } else if name.ends_with(".bz2") {
        return Err(err(
            "bzip2 metadata is not supported (createrepo_c --general-compress-type gz|xz|zstd)"
                .into(),
        ));
    } else {
        out = bytes.to_vec();
    }
    Ok(out)
}

/// Walks an XML document, calling `on` for each start/empty element (with its attributes) and
/// each element end (with the text collected inside it).
fn walk(what: &str, xml: &[u8], mut on: impl FnMut(XmlEvent<'_>)) -> Result<(), MetadataError> {
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut text = String::new();
    let bad = |e: &dyn std::fmt::Display| MetadataError::Xml {
        what: what.to_owned(),
        message: e.to_string(),
    };
    loop {
        match reader.read_event_into(&mut buf).map_err(|e| bad(&e))? {
            Event::Start(e) | Event::Empty(e) => {
                let name = e.local_name().as_ref().to_owned();
                let mut attrs = Vec::new();
                for a in e.attributes() {
                    let a = a.map_err(|e| bad(&e))?;
                    let key = a.key.local_name().as_ref().to_owned();
                    let value = a
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map_err(|e| bad(&e))?
                        .into_owned();
                    attrs.push((key, value));
                }
                text.clear();
                on(XmlEvent::Start(&name, &attrs));
            }
            Event::End(e) => {
                let name = e.local_name().as_ref().to_owned();
                on(XmlEvent::End(&name, text.trim()));
                text.clear();
            }
            Event::Text(t) => text.push_str(&t.into_inner()),
            Event::CData(t) => text.push_str(&t.into_inner()),
            Event::GeneralRef(r) => {
                if let Ok(Some(c)) = r.resolve_char_ref() {
                    text.push(c);
                } else {
                    text.push_str(match r.into_inner().as_ref() {
                        "lt" => "<",
                        "gt" => ">",
                        "amp" => "&",
                        "quot" => "\"",
                        "apos" => "'",
                        _ => "",
                    });
                }
            }
            Event::Eof => return Ok(()),
            _ => {}
        }
        buf.clear();
    }
}

enum XmlEvent<'a> {
    Start(&'a str, &'a [(String, String)]),
    End(&'a str, &'a str),
}

fn attr<'a>(attrs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Parses `repomd.xml`.
pub fn parse_repomd(xml: &[u8]) -> Result<Vec<RepomdEntry>, MetadataError> {
    let mut out = Vec::new();
    let mut cur: Option<RepomdEntry> = None;
    walk("repomd.xml", xml, |ev| match ev {
        XmlEvent::Start("data", attrs) => {
            cur = Some(RepomdEntry {
                kind: attr(attrs, "type").unwrap_or_default().to_owned(),
                href: String::new(),
                checksum_type: String::new(),
                checksum: String::new(),
            });
        }
        XmlEvent::Start("location", attrs) => {
            if let Some(c) = &mut cur {
                c.href = attr(attrs, "href").unwrap_or_default().to_owned();
            }
        }
        XmlEvent::Start("checksum", attrs) => {
            if let Some(c) = &mut cur {
                c.checksum_type = attr(attrs, "type").unwrap_or_default().to_owned();
            }
        }
        XmlEvent::End("checksum", text) => {
            if let Some(c) = &mut cur {
                c.checksum = text.to_ascii_lowercase();
            }
        }
        XmlEvent::End("data", _) => out.extend(cur.take()),
        _ => {}
    })?;
    Ok(out)
}

/// The primary entry of a parsed `repomd.xml`.
pub fn primary_entry(entries: &[RepomdEntry]) -> Result<&RepomdEntry, MetadataError> {
    entries
        .iter()
        .find(|e| e.kind == "primary")
        .ok_or(MetadataError::NoPrimary)
}

/// Parses a (decompressed) primary document into its packages.
pub fn parse_primary(xml: &[u8]) -> Result<Vec<PrimaryPackage>, MetadataError> {
    let mut out = Vec::new();
    let mut cur: Option<PrimaryPackage> = None;
    walk("primary.xml", xml, |ev| match ev {
        XmlEvent::Start("package", _) => {
            cur = Some(PrimaryPackage {
                name: String::new(),
                arch: String::new(),
                epoch: "0".into(),
                ver: String::new(),
                rel: String::new(),
                pkgid: String::new(),
                href: String::new(),
            })
        }
        XmlEvent::Start("version", attrs) => {
            if let Some(c) = &mut cur {
                c.epoch = attr(attrs, "epoch").unwrap_or("0").to_owned();
                c.ver = attr(attrs, "ver").unwrap_or_default().to_owned();
                c.rel = attr(attrs, "rel").unwrap_or_default().to_owned();
            }
        }
        XmlEvent::Start("location", attrs) => {
            if let Some(c) = &mut cur {
                c.href = attr(attrs, "href").unwrap_or_default().to_owned();
            }
        }
        XmlEvent::End(name, text) => {
            if let Some(c) = &mut cur {
                match name {
                    "name" => c.name = text.to_owned(),
                    "arch" => c.arch = text.to_owned(),
                    "checksum" => c.pkgid = text.to_ascii_lowercase(),
                    "package" => out.extend(cur.take()),
                    _ => {}
                }
            }
        }
        _ => {}
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPOMD: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm">
  <revision>1</revision>
  <data type="filelists"><checksum type="sha256">AA</checksum><location href="repodata/f.xml.zst"/></data>
  <data type="primary">
    <checksum type="sha256">bb</checksum>
    <open-checksum type="sha256">cc</open-checksum>
    <location href="repodata/p.xml.xz"/>
  </data>
</repomd>"#;

    #[test]
    fn repomd_entries() {
        let entries = parse_repomd(REPOMD.as_bytes()).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].checksum, "aa");
        let p = primary_entry(&entries).unwrap();
        assert_eq!(p.href, "repodata/p.xml.xz");
        assert_eq!(
            (p.checksum_type.as_str(), p.checksum.as_str()),
            ("sha256", "bb")
        );
        assert!(matches!(
            primary_entry(&entries[..1]),
            Err(MetadataError::NoPrimary)
        ));
        assert!(parse_repomd(b"<repomd><data></repomd>").is_err());
    }

    #[test]
    fn primary_packages() {
        let xml = r#"<metadata packages="1"><package type="rpm"><name>a&amp;b</name><arch>noarch</arch>
<version epoch="1" ver="2.0" rel="3"/><checksum type="sha256" pkgid="YES">DD</checksum>
<location href="a.rpm"/><format><rpm:provides><rpm:entry name="x"/></rpm:provides></format></package></metadata>"#;
        let p = parse_primary(xml.as_bytes()).unwrap();
        assert_eq!(
            p,
            vec![PrimaryPackage {
                name: "a&b".into(),
                arch: "noarch".into(),
                epoch: "1".into(),
                ver: "2.0".into(),
                rel: "3".into(),
                pkgid: "dd".into(),
                href: "a.rpm".into(),
            }]
        );
        assert_eq!(p[0].nevra_tail(), "1:2.0-3.noarch");
    }

    #[test]
    fn decompression_by_extension() {
        use std::io::Write as _;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"hello").unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(decompress("x.xml.gz", &gz).unwrap(), b"hello");
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut &b"hello"[..], &mut xz).unwrap();
        assert_eq!(decompress("x.xml.xz", &xz).unwrap(), b"hello");
        let mut zst = Vec::new();
        ruzstd::encoding::compress(
            &b"hello"[..],
            &mut zst,
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        assert_eq!(decompress("x.xml.zst", &zst).unwrap(), b"hello");
        assert_eq!(decompress("x.xml", b"plain").unwrap(), b"plain");
        assert!(decompress("x.xml.bz2", b"x").is_err());
        assert!(decompress("x.xml.gz", b"not gzip").is_err());
    }
}
