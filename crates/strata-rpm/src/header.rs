//! Reading an RPM package's metadata from the start of the file: the lead, the signature
//! header and the main header (everything before the compressed payload).
//!
//! The format (rpm's `doc/manual/format.md`): a 96-byte lead starting `ed ab ee db`; then the
//! signature header and the main header, each `8e ad e8 01`, 4 reserved bytes, the number of
//! index entries and the size of the data store (big-endian u32s), 16-byte index entries
//! `(tag, type, offset, count)` and the data store. The signature header is padded to a
//! multiple of 8 bytes. The payload follows the main header and is never needed here, which
//! is what lets strata build repodata from a few kilobytes fetched with an HTTP `Range`.

use std::collections::HashMap;

/// Bytes of the lead.
const LEAD_LEN: usize = 96;
const LEAD_MAGIC: [u8; 4] = [0xed, 0xab, 0xee, 0xdb];
const HEADER_MAGIC: [u8; 4] = [0x8e, 0xad, 0xe8, 0x01];
/// Headers larger than this are refused (rpm itself caps the data store at 256 MiB).
const MAX_HEADER: usize = 256 << 20;

/// Why an RPM's headers could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HeaderError {
    /// The bytes end before the headers do; `needed` is how many bytes the headers take at
    /// least, judged from what was read so far.
    #[error("the file ends inside the RPM headers ({have} bytes read, at least {needed} needed)")]
    Truncated {
        /// Bytes available.
        have: usize,
        /// Bytes needed, at least.
        needed: usize,
    },
    /// The bytes are not an RPM package.
    #[error("not an RPM package: {0}")]
    NotRpm(String),
    /// A required tag is missing or has the wrong type.
    #[error("the RPM header lacks a usable {0} tag")]
    MissingTag(&'static str),
}

/// Where the headers end: how many leading bytes of the file [`parse`] needs. Returns
/// [`HeaderError::Truncated`] with a larger `needed` when `prefix` is too short to tell, so a
/// caller can fetch `needed` bytes and ask again.
pub fn headers_len(prefix: &[u8]) -> Result<usize, HeaderError> {
    Ok(layout(prefix)?.header_end)
}

/// Byte offsets of the two headers.
#[derive(Debug, Clone, Copy)]
struct Layout {
    sig_start: usize,
    header_start: usize,
    header_end: usize,
}

fn layout(bytes: &[u8]) -> Result<Layout, HeaderError> {
    need(bytes, LEAD_LEN + 16)?;
    if bytes[..4] != LEAD_MAGIC {
        return Err(HeaderError::NotRpm("the lead magic is missing".into()));
    }
    let sig_start = LEAD_LEN;
    let sig_len = header_len_at(bytes, sig_start, "signature")?;
    let header_start = (sig_start + sig_len).div_ceil(8) * 8;
    need(bytes, header_start + 16)?;
    let header_len = header_len_at(bytes, header_start, "main")?;
    Ok(Layout {
        sig_start,
        header_start,
        header_end: header_start + header_len,
    })
}

fn need(bytes: &[u8], needed: usize) -> Result<(), HeaderError> {
    if bytes.len() < needed {
        Err(HeaderError::Truncated {
            have: bytes.len(),
            needed,
        })
    } else {
        Ok(())
    }
}

/// The total length of the header structure starting at `at` (intro + index + store).
fn header_len_at(bytes: &[u8], at: usize, which: &str) -> Result<usize, HeaderError> {
    if bytes[at..at + 4] != HEADER_MAGIC {
        return Err(HeaderError::NotRpm(format!(
            "the {which} header magic is missing at byte {at}"
        )));
    }
    let count = be32(&bytes[at + 8..]) as usize;
    let store = be32(&bytes[at + 12..]) as usize;
    let len = 16 + count.saturating_mul(16) + store;
    if count > MAX_HEADER / 16 || len > MAX_HEADER {
        return Err(HeaderError::NotRpm(format!(
            "the {which} header claims {count} entries and {store} bytes"
        )));
    }
    Ok(len)
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// A tag's value, as far as repodata needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Ints(Vec<u64>),
    Strings(Vec<String>),
    Binary,
}

/// One parsed header: tag → value.
#[derive(Debug, Default)]
struct Header {
    tags: HashMap<u32, Value>,
}

impl Header {
    fn parse(bytes: &[u8], which: &str) -> Result<Header, HeaderError> {
        let count = be32(&bytes[8..]) as usize;
        let store_len = be32(&bytes[12..]) as usize;
        let index = &bytes[16..16 + count * 16];
        let store = &bytes[16 + count * 16..16 + count * 16 + store_len];
        let bad = |what: String| HeaderError::NotRpm(format!("{which} header: {what}"));
        let mut tags = HashMap::with_capacity(count);
        for entry in index.chunks_exact(16) {
            let (tag, kind, offset, n) = (
                be32(entry),
                be32(&entry[4..]),
                be32(&entry[8..]) as usize,
                be32(&entry[12..]) as usize,
            );
            if offset > store.len() {
                return Err(bad(format!("tag {tag} points outside the data store")));
            }
            let data = &store[offset..];
            let ints = |width: usize| -> Result<Value, HeaderError> {
                let len = n.checked_mul(width).filter(|l| *l <= data.len());
                let len = len.ok_or_else(|| bad(format!("tag {tag} overruns the data store")))?;
                Ok(Value::Ints(
                    data[..len]
                        .chunks_exact(width)
                        .map(|c| c.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
                        .collect(),
                ))
            };
            let value = match kind {
                1 | 2 => ints(1)?,
                3 => ints(2)?,
                4 => ints(4)?,
                5 => ints(8)?,
                6 => Value::Strings(vec![
                    cstr(data)
                        .ok_or_else(|| bad(format!("tag {tag} has an unterminated string")))?,
                ]),
                8 | 9 => {
                    let mut out = Vec::with_capacity(n);
                    let mut rest = data;
                    for _ in 0..n {
                        let s = cstr(rest)
                            .ok_or_else(|| bad(format!("tag {tag} has an unterminated string")))?;
                        rest = &rest[s.len() + 1..];
                        out.push(s);
                    }
                    Value::Strings(out)
                }
                _ => Value::Binary,
            };
            tags.insert(tag, value);
        }
        Ok(Header { tags })
    }

    fn string(&self, tag: u32) -> Option<&str> {
        match self.tags.get(&tag)? {
            Value::Strings(v) => v.first().map(String::as_str),
            _ => None,
        }
    }

    fn strings(&self, tag: u32) -> &[String] {
        match self.tags.get(&tag) {
            Some(Value::Strings(v)) => v,
            _ => &[],
        }
    }

    fn int(&self, tag: u32) -> Option<u64> {
        match self.tags.get(&tag)? {
            Value::Ints(v) => v.first().copied(),
            _ => None,
        }
    }

    fn ints(&self, tag: u32) -> &[u64] {
        match self.tags.get(&tag) {
            Some(Value::Ints(v)) => v,
            _ => &[],
        }
    }
}

/// A string up to its NUL (invalid UTF-8 replaced), or `None` without a NUL.
fn cstr(data: &[u8]) -> Option<String> {
    let end = data.iter().position(|b| *b == 0)?;
    Some(String::from_utf8_lossy(&data[..end]).into_owned())
}

mod tag {
    pub const NAME: u32 = 1000;
    pub const VERSION: u32 = 1001;
    pub const RELEASE: u32 = 1002;
    pub const EPOCH: u32 = 1003;
    pub const SUMMARY: u32 = 1004;
    pub const DESCRIPTION: u32 = 1005;
    pub const BUILDTIME: u32 = 1006;
    pub const BUILDHOST: u32 = 1007;
    pub const SIZE: u32 = 1009;
    pub const VENDOR: u32 = 1011;
    pub const LICENSE: u32 = 1014;
    pub const PACKAGER: u32 = 1015;
    pub const GROUP: u32 = 1016;
    pub const URL: u32 = 1020;
    pub const ARCH: u32 = 1022;
    pub const FILEMODES: u32 = 1030;
    pub const FILEFLAGS: u32 = 1037;
    pub const SOURCERPM: u32 = 1044;
    pub const ARCHIVESIZE: u32 = 1046;
    pub const PROVIDENAME: u32 = 1047;
    pub const REQUIREFLAGS: u32 = 1048;
    pub const REQUIRENAME: u32 = 1049;
    pub const REQUIREVERSION: u32 = 1050;
    pub const CONFLICTFLAGS: u32 = 1053;
    pub const CONFLICTNAME: u32 = 1054;
    pub const CONFLICTVERSION: u32 = 1055;
    pub const CHANGELOGTIME: u32 = 1080;
    pub const CHANGELOGNAME: u32 = 1081;
    pub const CHANGELOGTEXT: u32 = 1082;
    pub const OBSOLETENAME: u32 = 1090;
    pub const SOURCEPACKAGE: u32 = 1106;
    pub const PROVIDEFLAGS: u32 = 1112;
    pub const PROVIDEVERSION: u32 = 1113;
    pub const OBSOLETEFLAGS: u32 = 1114;
    pub const OBSOLETEVERSION: u32 = 1115;
    pub const DIRINDEXES: u32 = 1116;
    pub const BASENAMES: u32 = 1117;
    pub const DIRNAMES: u32 = 1118;
    pub const LONGSIZE: u32 = 5009;
    pub const RECOMMENDNAME: u32 = 5046;
    pub const RECOMMENDVERSION: u32 = 5047;
    pub const RECOMMENDFLAGS: u32 = 5048;
    pub const SUGGESTNAME: u32 = 5049;
    pub const SUGGESTVERSION: u32 = 5050;
    pub const SUGGESTFLAGS: u32 = 5051;
    pub const SUPPLEMENTNAME: u32 = 5052;
    pub const SUPPLEMENTVERSION: u32 = 5053;
    pub const SUPPLEMENTFLAGS: u32 = 5054;
    pub const ENHANCENAME: u32 = 5055;
    pub const ENHANCEVERSION: u32 = 5056;
    pub const ENHANCEFLAGS: u32 = 5057;
    /// Signature header: uncompressed payload size (32-bit).
    pub const SIG_PAYLOADSIZE: u32 = 1007;
    /// Signature header: uncompressed payload size (64-bit).
    pub const SIG_LONGARCHIVESIZE: u32 = 271;
}

/// A dependency relation (`Requires: foo >= 1.2`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dep {
    /// The capability name.
    pub name: String,
    /// The comparison (`EQ`, `LT`, `GT`, `LE`, `GE`), when there is a version.
    pub flags: Option<&'static str>,
    /// Epoch of the version, when given.
    pub epoch: Option<String>,
    /// Version, when given.
    pub ver: Option<String>,
    /// Release, when given.
    pub rel: Option<String>,
    /// Whether the dependency is needed by install scriptlets (`Requires(pre)`...).
    pub pre: bool,
}

/// The kind of a file in the package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FileKind {
    /// A regular file (or symlink, device...).
    File,
    /// A directory.
    Dir,
    /// A `%ghost` file: owned but not shipped.
    Ghost,
}

/// One changelog entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangelogEntry {
    /// Author line.
    pub author: String,
    /// Seconds since the epoch.
    pub date: u64,
    /// Text.
    pub text: String,
}

/// Everything repodata says about a package that comes from its headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageHeader {
    /// Name.
    pub name: String,
    /// Architecture (`src` for source packages).
    pub arch: String,
    /// Epoch (0 when absent).
    pub epoch: u64,
    /// Version.
    pub version: String,
    /// Release.
    pub release: String,
    /// One-line summary.
    pub summary: String,
    /// Description.
    pub description: String,
    /// Packager.
    pub packager: String,
    /// Upstream URL.
    pub url: String,
    /// Build time (seconds since the epoch).
    pub build_time: u64,
    /// License.
    pub license: String,
    /// Vendor.
    pub vendor: String,
    /// Group.
    pub group: String,
    /// Build host.
    pub build_host: String,
    /// The source RPM (empty for source packages).
    pub source_rpm: String,
    /// Byte offset where the main header starts.
    pub header_start: u64,
    /// Byte offset where the main header ends (the payload starts).
    pub header_end: u64,
    /// Installed size.
    pub installed_size: u64,
    /// Uncompressed payload size.
    pub archive_size: u64,
    /// `Provides`.
    pub provides: Vec<Dep>,
    /// `Requires` (without `rpmlib(...)` ones, as createrepo_c does).
    pub requires: Vec<Dep>,
    /// `Conflicts`.
    pub conflicts: Vec<Dep>,
    /// `Obsoletes`.
    pub obsoletes: Vec<Dep>,
    /// `Recommends`.
    pub recommends: Vec<Dep>,
    /// `Suggests`.
    pub suggests: Vec<Dep>,
    /// `Supplements`.
    pub supplements: Vec<Dep>,
    /// `Enhances`.
    pub enhances: Vec<Dep>,
    /// Every file, with its kind, sorted by path.
    pub files: Vec<(String, FileKind)>,
    /// Changelog, newest first as in the header.
    pub changelog: Vec<ChangelogEntry>,
}

impl PackageHeader {
    /// Whether this is a source package.
    pub fn is_source(&self) -> bool {
        self.arch == "src"
    }
}

/// Parses the lead and both headers from the first bytes of an RPM file (the whole file
/// works too). `prefix` must hold at least [`headers_len`] bytes.
pub fn parse(prefix: &[u8]) -> Result<PackageHeader, HeaderError> {
    let l = layout(prefix)?;
    need(prefix, l.header_end)?;
    let sig = Header::parse(&prefix[l.sig_start..l.header_start], "signature")?;
    let h = Header::parse(&prefix[l.header_start..l.header_end], "main")?;
    let s = |t: u32| h.string(t).unwrap_or_default().to_owned();
    let name = h.string(tag::NAME).ok_or(HeaderError::MissingTag("NAME"))?;
    let version = h
        .string(tag::VERSION)
        .ok_or(HeaderError::MissingTag("VERSION"))?;
    let release = h
        .string(tag::RELEASE)
        .ok_or(HeaderError::MissingTag("RELEASE"))?;
    let is_source =
        h.tags.contains_key(&tag::SOURCEPACKAGE) || !h.tags.contains_key(&tag::SOURCERPM);
    let arch = if is_source {
        "src".to_owned()
    } else {
        h.string(tag::ARCH)
            .ok_or(HeaderError::MissingTag("ARCH"))?
            .to_owned()
    };
    let mut requires = deps(&h, tag::REQUIRENAME, tag::REQUIREFLAGS, tag::REQUIREVERSION);
    requires.retain(|d| !d.name.starts_with("rpmlib("));
    Ok(PackageHeader {
        name: name.to_owned(),
        arch,
        epoch: h.int(tag::EPOCH).unwrap_or(0),
        version: version.to_owned(),
        release: release.to_owned(),
        summary: s(tag::SUMMARY),
        description: s(tag::DESCRIPTION),
        packager: s(tag::PACKAGER),
        url: s(tag::URL),
        build_time: h.int(tag::BUILDTIME).unwrap_or(0),
        license: s(tag::LICENSE),
        vendor: s(tag::VENDOR),
        group: s(tag::GROUP),
        build_host: s(tag::BUILDHOST),
        source_rpm: if is_source {
            String::new()
        } else {
            s(tag::SOURCERPM)
        },
        header_start: l.header_start as u64,
        header_end: l.header_end as u64,
        installed_size: h.int(tag::LONGSIZE).or(h.int(tag::SIZE)).unwrap_or(0),
        archive_size: sig
            .int(tag::SIG_LONGARCHIVESIZE)
            .or(sig.int(tag::SIG_PAYLOADSIZE))
            .or(h.int(tag::ARCHIVESIZE))
            .unwrap_or(0),
        provides: deps(&h, tag::PROVIDENAME, tag::PROVIDEFLAGS, tag::PROVIDEVERSION),
        requires,
        conflicts: deps(
            &h,
            tag::CONFLICTNAME,
            tag::CONFLICTFLAGS,
            tag::CONFLICTVERSION,
        ),
        obsoletes: deps(
            &h,
            tag::OBSOLETENAME,
            tag::OBSOLETEFLAGS,
            tag::OBSOLETEVERSION,
        ),
        recommends: deps(
            &h,
            tag::RECOMMENDNAME,
            tag::RECOMMENDFLAGS,
            tag::RECOMMENDVERSION,
        ),
        suggests: deps(&h, tag::SUGGESTNAME, tag::SUGGESTFLAGS, tag::SUGGESTVERSION),
        supplements: deps(
            &h,
            tag::SUPPLEMENTNAME,
            tag::SUPPLEMENTFLAGS,
            tag::SUPPLEMENTVERSION,
        ),
        enhances: deps(&h, tag::ENHANCENAME, tag::ENHANCEFLAGS, tag::ENHANCEVERSION),
        files: files(&h),
        changelog: changelog(&h),
    })
}

const RPMSENSE_LESS: u64 = 1 << 1;
const RPMSENSE_GREATER: u64 = 1 << 2;
const RPMSENSE_EQUAL: u64 = 1 << 3;
/// `PREREQ | SCRIPT_PRE | SCRIPT_POST`: what createrepo_c marks `pre="1"`.
const RPMSENSE_PRE: u64 = (1 << 6) | (1 << 9) | (1 << 10);
const RPMFILE_GHOST: u64 = 1 << 6;
const S_IFMT: u64 = 0o170000;
const S_IFDIR: u64 = 0o040000;

fn deps(h: &Header, name_tag: u32, flags_tag: u32, version_tag: u32) -> Vec<Dep> {
    let names = h.strings(name_tag);
    let flags = h.ints(flags_tag);
    let versions = h.strings(version_tag);
    let mut out: Vec<Dep> = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let f = flags.get(i).copied().unwrap_or(0);
        let v = versions.get(i).map(String::as_str).unwrap_or("");
        let cmp = match f & (RPMSENSE_LESS | RPMSENSE_GREATER | RPMSENSE_EQUAL) {
            x if x == RPMSENSE_EQUAL => Some("EQ"),
            x if x == RPMSENSE_LESS => Some("LT"),
            x if x == RPMSENSE_GREATER => Some("GT"),
            x if x == RPMSENSE_LESS | RPMSENSE_EQUAL => Some("LE"),
            x if x == RPMSENSE_GREATER | RPMSENSE_EQUAL => Some("GE"),
            _ => None,
        };
        let (epoch, ver, rel) = if v.is_empty() {
            (None, None, None)
        } else {
            let (e, vr) = match v.split_once(':') {
                Some((e, vr)) => (Some(e.to_owned()), vr),
                None => (Some("0".to_owned()), v),
            };
            let (ver, rel) = match vr.rsplit_once('-') {
                Some((ver, rel)) => (ver.to_owned(), Some(rel.to_owned())),
                None => (vr.to_owned(), None),
            };
            (e, Some(ver), rel)
        };
        let dep = Dep {
            name: name.clone(),
            flags: if v.is_empty() { None } else { cmp },
            epoch,
            ver,
            rel,
            pre: f & RPMSENSE_PRE != 0,
        };
        if !out.contains(&dep) {
            out.push(dep);
        }
    }
    out
}

fn files(h: &Header) -> Vec<(String, FileKind)> {
    let dirs = h.strings(tag::DIRNAMES);
    let bases = h.strings(tag::BASENAMES);
    let indexes = h.ints(tag::DIRINDEXES);
    let modes = h.ints(tag::FILEMODES);
    let flags = h.ints(tag::FILEFLAGS);
    let mut out: Vec<(String, FileKind)> = bases
        .iter()
        .enumerate()
        .filter_map(|(i, base)| {
            let dir = dirs.get(*indexes.get(i)? as usize)?;
            let kind = if flags.get(i).is_some_and(|f| f & RPMFILE_GHOST != 0) {
                FileKind::Ghost
            } else if modes.get(i).is_some_and(|m| m & S_IFMT == S_IFDIR) {
                FileKind::Dir
            } else {
                FileKind::File
            };
            Some((format!("{dir}{base}"), kind))
        })
        .collect();
    out.sort();
    out
}

fn changelog(h: &Header) -> Vec<ChangelogEntry> {
    let times = h.ints(tag::CHANGELOGTIME);
    let names = h.strings(tag::CHANGELOGNAME);
    let texts = h.strings(tag::CHANGELOGTEXT);
    times
        .iter()
        .zip(names)
        .zip(texts)
        .map(|((date, author), text)| ChangelogEntry {
            author: author.clone(),
            date: *date,
            text: text.clone(),
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a header structure from (tag, type, data, count) entries.
    pub(crate) fn header(entries: &[(u32, u32, Vec<u8>, u32)]) -> Vec<u8> {
        let mut index = Vec::new();
        let mut store = Vec::new();
        for (tag, kind, data, count) in entries {
            let align = match kind {
                3 => 2,
                4 => 4,
                5 => 8,
                _ => 1,
            };
            while !store.len().is_multiple_of(align) {
                store.push(0);
            }
            for v in [*tag, *kind, store.len() as u32, *count] {
                index.extend_from_slice(&v.to_be_bytes());
            }
            store.extend_from_slice(data);
        }
        let mut out = HEADER_MAGIC.to_vec();
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        out.extend_from_slice(&(store.len() as u32).to_be_bytes());
        out.extend(index);
        out.extend(store);
        out
    }

    fn s(v: &str) -> Vec<u8> {
        let mut b = v.as_bytes().to_vec();
        b.push(0);
        b
    }

    fn sa(vs: &[&str]) -> Vec<u8> {
        vs.iter().flat_map(|v| s(v)).collect()
    }

    fn i32s(vs: &[u32]) -> Vec<u8> {
        vs.iter().flat_map(|v| v.to_be_bytes()).collect()
    }

    fn i16s(vs: &[u16]) -> Vec<u8> {
        vs.iter().flat_map(|v| v.to_be_bytes()).collect()
    }

    /// A synthetic package: lead, signature with a payload size, main header.
    pub(crate) fn package(name: &str, version: &str) -> Vec<u8> {
        let mut out = LEAD_MAGIC.to_vec();
        out.resize(LEAD_LEN, 0);
        let sig = header(&[(tag::SIG_PAYLOADSIZE, 4, i32s(&[4096]), 1)]);
        out.extend(&sig);
        while !out.len().is_multiple_of(8) {
            out.push(0);
        }
        let main = header(&[
            (tag::NAME, 6, s(name), 1),
            (tag::VERSION, 6, s(version), 1),
            (tag::RELEASE, 6, s("1"), 1),
            (tag::EPOCH, 4, i32s(&[2]), 1),
            (tag::SUMMARY, 9, s("A <test> & more"), 1),
            (tag::ARCH, 6, s("noarch"), 1),
            (
                tag::SOURCERPM,
                6,
                s(&format!("{name}-{version}-1.src.rpm")),
                1,
            ),
            (tag::SIZE, 4, i32s(&[123]), 1),
            (
                tag::REQUIRENAME,
                8,
                sa(&["rpmlib(X)", "base", "/bin/sh", "base"]),
                4,
            ),
            (
                tag::REQUIREFLAGS,
                4,
                i32s(&[8 | (1 << 24), 12, 1 << 9, 12]),
                4,
            ),
            (
                tag::REQUIREVERSION,
                8,
                sa(&["4.0", "1:2.0-3", "", "1:2.0-3"]),
                4,
            ),
            (tag::PROVIDENAME, 8, sa(&[name]), 1),
            (tag::PROVIDEFLAGS, 4, i32s(&[8]), 1),
            (tag::PROVIDEVERSION, 8, sa(&[&format!("2:{version}-1")]), 1),
            (tag::DIRNAMES, 8, sa(&["/usr/bin/", "/usr/share/"]), 2),
            (tag::BASENAMES, 8, sa(&["tool", "doc", "ghost"]), 3),
            (tag::DIRINDEXES, 4, i32s(&[0, 1, 1]), 3),
            (tag::FILEMODES, 3, i16s(&[0o100755, 0o040755, 0o100644]), 3),
            (tag::FILEFLAGS, 4, i32s(&[0, 0, 64]), 3),
        ]);
        out.extend(main);
        out.extend_from_slice(b"PAYLOAD");
        out
    }

    #[test]
    fn parses_a_synthetic_package() {
        let bytes = package("hello", "1.0");
        let end = headers_len(&bytes).unwrap();
        assert_eq!(end, bytes.len() - b"PAYLOAD".len());
        let p = parse(&bytes[..end]).unwrap();
        assert_eq!(p.name, "hello");
        assert_eq!(
            (p.epoch, p.version.as_str(), p.release.as_str()),
            (2, "1.0", "1")
        );
        assert_eq!(p.arch, "noarch");
        assert_eq!(p.summary, "A <test> & more");
        assert_eq!(p.archive_size, 4096);
        assert_eq!(p.installed_size, 123);
        assert_eq!(p.header_end, end as u64);
        assert_eq!(p.requires.len(), 2, "rpmlib dropped, duplicates merged");
        assert_eq!(p.requires[0].name, "base");
        assert_eq!(p.requires[0].flags, Some("GE"));
        assert_eq!(p.requires[0].epoch.as_deref(), Some("1"));
        assert_eq!(p.requires[0].ver.as_deref(), Some("2.0"));
        assert_eq!(p.requires[0].rel.as_deref(), Some("3"));
        assert!(p.requires[1].pre && p.requires[1].flags.is_none());
        assert_eq!(
            p.files,
            vec![
                ("/usr/bin/tool".to_owned(), FileKind::File),
                ("/usr/share/doc".to_owned(), FileKind::Dir),
                ("/usr/share/ghost".to_owned(), FileKind::Ghost),
            ]
        );
    }

    #[test]
    fn truncation_says_how_much_is_needed() {
        let bytes = package("hello", "1.0");
        let end = headers_len(&bytes).unwrap();
        match headers_len(&bytes[..50]) {
            Err(HeaderError::Truncated { needed, .. }) => assert_eq!(needed, LEAD_LEN + 16),
            other => panic!("{other:?}"),
        }
        match headers_len(&bytes[..LEAD_LEN + 16]) {
            Err(HeaderError::Truncated { needed, .. }) => assert!(needed > LEAD_LEN + 16),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(&bytes[..end - 1]),
            Err(HeaderError::Truncated { needed, .. }) if needed == end
        ));
        assert!(matches!(parse(&[b'x'; 200]), Err(HeaderError::NotRpm(_))));
    }
}
