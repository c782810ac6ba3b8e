//! zstd:chunked layers: where a layer's table of contents (TOC) is, and what it says.
//!
//! podman and buildah write zstd:chunked layers with `--compression-format zstd:chunked`:
//! an ordinary zstd-compressed tar in which every file's content starts a new zstd frame,
//! followed by a zstd-compressed JSON TOC that lists every tar member with its metadata and
//! the compressed byte range of its content. The layer descriptor in the manifest carries the
//! TOC's position and checksum as annotations, so a client reads the TOC with one range
//! request and any file's content with another, without the rest of the layer.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The TOC-position annotation (containers/storage ≥ 1.44, then ≤ 1.43).
pub const POSITION_ANNOTATIONS: [&str; 2] = [
    "io.github.containers.zstd-chunked.manifest-position",
    "io.containers.zstd-chunked.manifest-position",
];
/// The TOC-checksum annotation (sha256 of the compressed TOC), new name then old.
pub const CHECKSUM_ANNOTATIONS: [&str; 2] = [
    "io.github.containers.zstd-chunked.manifest-checksum",
    "io.containers.zstd-chunked.manifest-checksum",
];
/// The only TOC type there is (`ManifestTypeCRFS` in containers/storage).
const TOC_TYPE_CRFS: u64 = 1;
/// The largest TOC strata reads (containers/storage's own limit).
pub const MAX_TOC_BYTES: u64 = 50 * 1024 * 1024;

/// Why a layer's TOC could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TocError {
    /// The position annotation is not `offset:length:uncompressed:type`.
    #[error("bad zstd:chunked position annotation {0:?}")]
    BadPosition(String),
    /// The TOC is of a type other than 1, or larger than [`MAX_TOC_BYTES`].
    #[error("unsupported zstd:chunked TOC ({0})")]
    Unsupported(String),
    /// The TOC's bytes do not match the checksum annotation.
    #[error("the TOC's checksum is {actual}, the manifest says {expected}")]
    Checksum {
        /// From the manifest.
        expected: String,
        /// Of the bytes read.
        actual: String,
    },
    /// The TOC could not be decompressed or parsed.
    #[error("unreadable TOC: {0}")]
    Unreadable(String),
}

/// Where a layer's compressed TOC is, from its annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TocLocation {
    /// Byte offset of the compressed TOC in the layer blob.
    pub offset: u64,
    /// Its compressed length.
    pub length: u64,
    /// Its length once decompressed.
    pub uncompressed: u64,
    /// `sha256:…` of the compressed bytes, when the manifest gives it.
    pub checksum: Option<String>,
}

/// The TOC location a layer's annotations give, `Ok(None)` for a layer that is not
/// zstd:chunked.
pub fn locate(annotations: &BTreeMap<String, String>) -> Result<Option<TocLocation>, TocError> {
    let Some(position) = POSITION_ANNOTATIONS
        .iter()
        .find_map(|key| annotations.get(*key))
    else {
        return Ok(None);
    };
    let bad = || TocError::BadPosition(position.clone());
    let fields: Vec<u64> = position
        .split(':')
        .map(|f| f.parse::<u64>().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let [offset, length, uncompressed, kind] = fields[..] else {
        return Err(bad());
    };
    if kind != TOC_TYPE_CRFS {
        return Err(TocError::Unsupported(format!("type {kind}")));
    }
    if length > MAX_TOC_BYTES || uncompressed > MAX_TOC_BYTES {
        return Err(TocError::Unsupported(format!(
            "{length} bytes compressed, {uncompressed} uncompressed; at most {MAX_TOC_BYTES}"
        )));
    }
    let checksum = CHECKSUM_ANNOTATIONS
        .iter()
        .find_map(|key| annotations.get(*key))
        .cloned();
    Ok(Some(TocLocation {
        offset,
        length,
        uncompressed,
        checksum,
    }))
}

/// The magic at the very end of a zstd:chunked blob.
pub const FOOTER_MAGIC: &[u8; 8] = b"GnUlInUx";
/// How many bytes at the end of a blob [`locate_in_footer`] needs.
pub const FOOTER_READ: u64 = 64;

/// The TOC location a zstd:chunked blob's footer gives, for a layer whose descriptor lost its
/// annotations (containers/image drops them when a push reuses a blob already in the
/// registry). `tail` is the blob's last bytes (up to [`FOOTER_READ`]), `blob_size` its size.
/// Two footer layouts exist: 40 bytes (containers/storage ≤ 1.46: offset, length,
/// uncompressed length, type, magic) and 64 (≥ 1.50: the same four, three tar-split fields,
/// magic). Without the manifest's checksum the TOC cannot be checked before use; each file is
/// still checked against the digest the TOC gives it.
pub fn locate_in_footer(tail: &[u8], blob_size: u64) -> Option<TocLocation> {
    if tail.len() < 40 || !tail.ends_with(FOOTER_MAGIC) {
        return None;
    }
    let field = |from_end: usize| {
        let at = tail.len().checked_sub(from_end)?;
        Some(u64::from_le_bytes(tail[at..at + 8].try_into().ok()?))
    };
    let layouts: [usize; 2] = [40, 64];
    layouts.into_iter().find_map(|size| {
        let (offset, length, uncompressed, kind) = (
            field(size)?,
            field(size - 8)?,
            field(size - 16)?,
            field(size - 24)?,
        );
        let plausible = kind == TOC_TYPE_CRFS
            && length <= MAX_TOC_BYTES
            && uncompressed <= MAX_TOC_BYTES
            && offset.checked_add(length)? <= blob_size;
        plausible.then_some(TocLocation {
            offset,
            length,
            uncompressed,
            checksum: None,
        })
    })
}

/// One tar member as the TOC describes it. `chunk` entries (the further chunks of a large
/// file) are parsed too; a file's content is read whole from `offset` to `end_offset`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct TocEntry {
    /// `reg`, `chunk`, `hardlink`, `symlink`, `dir`, `char`, `block` or `fifo`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The member's path in the layer (`usr/bin/`, `./etc/passwd`…).
    pub name: String,
    /// A symlink's target, or a hard link's target path in the layer.
    #[serde(rename = "linkName")]
    pub link_name: String,
    /// The tar header's mode (permission bits, and sometimes the type bits too).
    pub mode: i64,
    /// A regular file's size.
    pub size: u64,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time, RFC 3339.
    pub modtime: Option<String>,
    /// Device major number (`char`, `block`).
    #[serde(rename = "devMajor")]
    pub dev_major: u32,
    /// Device minor number.
    #[serde(rename = "devMinor")]
    pub dev_minor: u32,
    /// Extended attributes, values base64-encoded.
    pub xattrs: BTreeMap<String, String>,
    /// `sha256:…` of the whole file content.
    pub digest: Option<String>,
    /// Compressed offset of the content's first frame.
    pub offset: u64,
    /// Compressed offset just past the content's last frame.
    #[serde(rename = "endOffset")]
    pub end_offset: u64,
}

#[derive(Debug, Deserialize)]
struct TocDocument {
    version: u32,
    #[serde(default)]
    entries: Vec<TocEntry>,
}

/// Checks the compressed TOC against the manifest's checksum, then decompresses and parses it.
pub fn decode(compressed: &[u8], location: &TocLocation) -> Result<Vec<TocEntry>, TocError> {
    if let Some(expected) = &location.checksum {
        let actual = strata_registry::client::digest_of(compressed);
        if &actual != expected {
            return Err(TocError::Checksum {
                expected: expected.clone(),
                actual,
            });
        }
    }
    let capacity = usize::try_from(location.uncompressed).unwrap_or(0);
    let json = zstd::bulk::decompress(compressed, capacity.max(1))
        .map_err(|e| TocError::Unreadable(format!("zstd: {e}")))?;
    let doc: TocDocument =
        serde_json::from_slice(&json).map_err(|e| TocError::Unreadable(format!("JSON: {e}")))?;
    if doc.version != 1 {
        return Err(TocError::Unsupported(format!("version {}", doc.version)));
    }
    Ok(doc.entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_layer_without_the_annotation_is_not_chunked() {
        assert_eq!(locate(&BTreeMap::new()), Ok(None));
    }

    #[test]
    fn both_annotation_names_are_read() {
        for key in POSITION_ANNOTATIONS {
            let found = locate(&annotations(&[(key, "1059580:2213:7387:1")]))
                .unwrap()
                .unwrap();
            assert_eq!(
                (found.offset, found.length, found.uncompressed),
                (1059580, 2213, 7387)
            );
            assert_eq!(found.checksum, None);
        }
        let old = annotations(&[
            (POSITION_ANNOTATIONS[1], "5:6:7:1"),
            (CHECKSUM_ANNOTATIONS[1], "sha256:ab"),
        ]);
        assert_eq!(
            locate(&old).unwrap().unwrap().checksum.as_deref(),
            Some("sha256:ab")
        );
    }

    #[test]
    fn malformed_or_unsupported_positions_are_errors() {
        for bad in ["1:2:3", "a:2:3:1", "1:2:3:1:5", ""] {
            assert!(matches!(
                locate(&annotations(&[(POSITION_ANNOTATIONS[0], bad)])),
                Err(TocError::BadPosition(_))
            ));
        }
        assert!(matches!(
            locate(&annotations(&[(POSITION_ANNOTATIONS[0], "1:2:3:2")])),
            Err(TocError::Unsupported(_))
        ));
        assert!(matches!(
            locate(&annotations(&[(
                POSITION_ANNOTATIONS[0],
                "1:99999999999:3:1"
            )])),
            Err(TocError::Unsupported(_))
        ));
    }

    #[test]
    fn the_footer_locates_the_toc_in_either_layout() {
        let mut old = Vec::new();
        for v in [1000u64, 200, 900, 1] {
            old.extend_from_slice(&v.to_le_bytes());
        }
        old.extend_from_slice(FOOTER_MAGIC);
        let found = locate_in_footer(&old, 5000).unwrap();
        assert_eq!(
            (found.offset, found.length, found.uncompressed),
            (1000, 200, 900)
        );
        assert_eq!(found.checksum, None);
        let mut new = Vec::new();
        for v in [1000u64, 200, 900, 1, 1300, 50, 400] {
            new.extend_from_slice(&v.to_le_bytes());
        }
        new.extend_from_slice(FOOTER_MAGIC);
        let found = locate_in_footer(&new, 5000).unwrap();
        assert_eq!((found.offset, found.length), (1000, 200));
        assert_eq!(
            locate_in_footer(&old, 1100),
            None,
            "a TOC past the blob's end"
        );
        assert_eq!(
            locate_in_footer(&old[..old.len() - 1], 5000),
            None,
            "no magic"
        );
    }

    fn location_for(compressed: &[u8], json_len: usize, checksum: bool) -> TocLocation {
        TocLocation {
            offset: 0,
            length: compressed.len() as u64,
            uncompressed: json_len as u64,
            checksum: checksum.then(|| strata_registry::client::digest_of(compressed)),
        }
    }

    #[test]
    fn a_toc_decodes_with_its_checksum_and_fails_without_a_match() {
        let json = br#"{"version":1,"entries":[{"type":"reg","name":"bin/sh","mode":33261,"size":3,"digest":"sha256:00","offset":10,"endOffset":20,"xattrs":{"user.a":"eQ=="}},{"type":"chunk","name":"bin/sh","offset":15,"chunkSize":1}]}"#;
        let compressed = zstd::bulk::compress(json, 3).unwrap();
        let entries = decode(&compressed, &location_for(&compressed, json.len(), true)).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].kind, "reg");
        assert_eq!(
            (entries[0].offset, entries[0].end_offset, entries[0].size),
            (10, 20, 3)
        );
        assert_eq!(entries[0].xattrs["user.a"], "eQ==");
        let mut wrong = location_for(&compressed, json.len(), true);
        wrong.checksum = Some("sha256:0000".into());
        assert!(matches!(
            decode(&compressed, &wrong),
            Err(TocError::Checksum { .. })
        ));
        assert!(matches!(
            decode(b"not zstd", &location_for(b"not zstd", 10, false)),
            Err(TocError::Unreadable(_))
        ));
        let v2 = zstd::bulk::compress(br#"{"version":2}"#, 3).unwrap();
        assert!(matches!(
            decode(&v2, &location_for(&v2, 13, false)),
            Err(TocError::Unsupported(_))
        ));
    }
}
