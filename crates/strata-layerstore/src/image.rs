//! Images in a registry: the reference containers-storage names a layer by, the manifest and
//! config it resolves to, and one layer's TOC and `info`.

use std::collections::BTreeMap;
use std::sync::Arc;

use strata_registry::{Manifest, Registry, RegistryError, RepoRef};

use crate::toc::{self, TocError};
use crate::tree::{LayerTree, TreeError};

/// An image reference as containers/image writes it: `HOST/REPO:TAG`, `HOST/REPO@DIGEST` or
/// `HOST/REPO:TAG@DIGEST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// Registry and repository.
    pub repo: RepoRef,
    /// The tag or digest to fetch the manifest by (the digest when both are given).
    pub reference: String,
}

impl ImageRef {
    /// Parses a reference; `docker.io` means Docker Hub's API host.
    pub fn parse(text: &str) -> Result<ImageRef, String> {
        let (name, digest) = match text.split_once('@') {
            Some((n, d)) => (n, Some(d)),
            None => (text, None),
        };
        let (name, tag) = match name.rsplit_once(':') {
            Some((n, t)) if !t.contains('/') => (n, Some(t)),
            _ => (name, None),
        };
        let reference = digest
            .or(tag)
            .ok_or_else(|| format!("{text:?} names no tag or digest"))?;
        let name = match name.strip_prefix("docker.io/") {
            Some(rest) => format!("registry-1.docker.io/{rest}"),
            None => name.to_string(),
        };
        let repo = RepoRef::parse(&name).map_err(|e| e.to_string())?;
        Ok(ImageRef {
            repo,
            reference: reference.to_string(),
        })
    }
}

/// Why a layer cannot be served lazily (containers-storage then pulls it the usual way).
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// The registry could not be asked, or said no.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The manifest or config is not what an image's should be.
    #[error("{0}")]
    Image(String),
    /// The layer is not one of the image's.
    #[error("layer {0} is not in the image")]
    NotInImage(String),
    /// The layer is not zstd:chunked (no TOC annotation).
    #[error("layer {0} is not zstd:chunked")]
    NotChunked(String),
    /// The TOC is unusable.
    #[error("layer {digest}: {source}")]
    Toc {
        /// The layer.
        digest: String,
        /// Why.
        source: TocError,
    },
    /// The TOC describes an unusable tree.
    #[error("layer {digest}: {source}")]
    Tree {
        /// The layer.
        digest: String,
        /// Why.
        source: TreeError,
    },
}

/// An image's manifest and the parts of it the store needs.
#[derive(Debug)]
pub struct Image {
    /// Where it is.
    pub registry: Arc<Registry>,
    /// The image manifest (for an index: the entry for this platform).
    pub manifest: serde_json::Value,
    /// The config's `rootfs.diff_ids`, in layer order.
    pub diff_ids: Vec<String>,
}

/// One layer of an image, as found in its manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerDescriptor {
    /// The blob's digest.
    pub digest: String,
    /// The blob's size.
    pub size: u64,
    /// `sha256:…` of the uncompressed tar (the config's diff ID).
    pub diff_id: String,
    /// The blob's media type.
    pub media_type: String,
    /// The descriptor's annotations.
    pub annotations: BTreeMap<String, String>,
}

/// The `GOARCH` name of this machine's architecture.
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// The digest of the manifest an index lists for `os`/`architecture`.
pub fn platform_entry(index: &serde_json::Value, architecture: &str) -> Option<String> {
    index
        .get("manifests")?
        .as_array()?
        .iter()
        .find(|m| {
            m.pointer("/platform/os").and_then(|v| v.as_str()) == Some("linux")
                && m.pointer("/platform/architecture").and_then(|v| v.as_str())
                    == Some(architecture)
        })
        .and_then(|m| m.get("digest")?.as_str().map(str::to_string))
}

/// The descriptor of layer `digest` of an image manifest, with its diff ID.
pub fn find_layer(
    manifest: &serde_json::Value,
    diff_ids: &[String],
    digest: &str,
) -> Result<LayerDescriptor, LayerError> {
    let layers = manifest
        .get("layers")
        .and_then(|l| l.as_array())
        .ok_or_else(|| LayerError::Image("the manifest lists no layers".into()))?;
    if layers.len() != diff_ids.len() {
        return Err(LayerError::Image(format!(
            "the manifest lists {} layers, the config {} diff IDs",
            layers.len(),
            diff_ids.len()
        )));
    }
    let (index, layer) = layers
        .iter()
        .enumerate()
        .find(|(_, l)| l.get("digest").and_then(|d| d.as_str()) == Some(digest))
        .ok_or_else(|| LayerError::NotInImage(digest.to_string()))?;
    let annotations = layer
        .get("annotations")
        .and_then(|a| a.as_object())
        .map(|a| {
            a.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    Ok(LayerDescriptor {
        digest: digest.to_string(),
        size: layer.get("size").and_then(|s| s.as_u64()).unwrap_or(0),
        diff_id: diff_ids[index].clone(),
        media_type: layer
            .get("mediaType")
            .and_then(|m| m.as_str())
            .unwrap_or_default()
            .to_string(),
        annotations,
    })
}

/// The `info` file containers-storage reads for a layer: its digests and sizes, and the
/// blob's compression (4: zstd). The uncompressed size is not known without the whole layer
/// and is left out, as stargz-store does.
pub fn info_json(layer: &LayerDescriptor) -> Vec<u8> {
    let info = serde_json::json!({
        "compressed-diff-digest": layer.digest,
        "compressed-size": layer.size,
        "diff-digest": layer.diff_id,
        "compression": 4,
    });
    let mut bytes = serde_json::to_vec(&info).expect("JSON of plain values");
    bytes.push(b'\n');
    bytes
}

/// Fetches an image's manifest (choosing this platform's from an index) and config.
pub fn resolve(image: &ImageRef, insecure: bool) -> Result<Image, LayerError> {
    let registry = Arc::new(Registry::new(image.repo.clone(), insecure)?);
    let missing = |r: &str| LayerError::Image(format!("{}:{r} is not in the registry", image.repo));
    let mut manifest: Manifest = registry
        .get_manifest(&image.reference)?
        .ok_or_else(|| missing(&image.reference))?;
    if manifest.is_index() {
        let entry = platform_entry(&manifest.json(), host_architecture()).ok_or_else(|| {
            LayerError::Image(format!(
                "the index has no linux/{} manifest",
                host_architecture()
            ))
        })?;
        manifest = registry
            .get_manifest(&entry)?
            .ok_or_else(|| missing(&entry))?;
    }
    let config = registry.image_config(&manifest)?;
    let diff_ids = config
        .pointer("/rootfs/diff_ids")
        .and_then(|d| d.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|d| d.as_str().map(str::to_string))
                .collect()
        })
        .ok_or_else(|| LayerError::Image("the config has no rootfs.diff_ids".into()))?;
    Ok(Image {
        registry,
        manifest: manifest.json(),
        diff_ids,
    })
}

/// Reads and checks a zstd:chunked layer's TOC (one range request) and builds its tree.
pub fn load_tree(registry: &Registry, layer: &LayerDescriptor) -> Result<LayerTree, LayerError> {
    let toc_error = |source| LayerError::Toc {
        digest: layer.digest.clone(),
        source,
    };
    let location = match toc::locate(&layer.annotations).map_err(toc_error)? {
        Some(location) => location,
        None => locate_by_footer(registry, layer)?,
    };
    let compressed = registry.get_blob_range(&layer.digest, location.offset, location.length)?;
    let entries = toc::decode(&compressed, &location).map_err(toc_error)?;
    LayerTree::from_entries(&entries).map_err(|source| LayerError::Tree {
        digest: layer.digest.clone(),
        source,
    })
}

/// The TOC location from the footer of a zstd layer whose descriptor has no TOC annotations
/// (one range request for the blob's last bytes).
fn locate_by_footer(
    registry: &Registry,
    layer: &LayerDescriptor,
) -> Result<toc::TocLocation, LayerError> {
    let not_chunked = || LayerError::NotChunked(layer.digest.clone());
    if !layer.media_type.ends_with("+zstd") || layer.size < toc::FOOTER_READ {
        return Err(not_chunked());
    }
    let tail = registry.get_blob_range(
        &layer.digest,
        layer.size - toc::FOOTER_READ,
        toc::FOOTER_READ,
    )?;
    let location = toc::locate_in_footer(&tail, layer.size).ok_or_else(not_chunked)?;
    tracing::debug!(
        "layer {}: TOC located by the blob's footer (the manifest has no TOC annotations)",
        layer.digest
    );
    Ok(location)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_into_repository_and_tag_or_digest() {
        let r = ImageRef::parse("127.0.0.1:5000/team/app:tooling-1").unwrap();
        assert_eq!(
            (r.repo.host.as_str(), r.repo.repository.as_str()),
            ("127.0.0.1:5000", "team/app")
        );
        assert_eq!(r.reference, "tooling-1");
        let d = ImageRef::parse("127.0.0.1:5000/app:t@sha256:abcd").unwrap();
        assert_eq!(d.reference, "sha256:abcd");
        let hub = ImageRef::parse("docker.io/library/alpine:latest").unwrap();
        assert_eq!(hub.repo.host, "registry-1.docker.io");
        assert!(ImageRef::parse("127.0.0.1:5000/app").is_err());
        assert!(ImageRef::parse("app:latest").is_err());
    }

    #[test]
    fn an_index_entry_is_chosen_by_platform() {
        let index = serde_json::json!({"manifests": [
            {"digest": "sha256:arm", "platform": {"os": "linux", "architecture": "arm64"}},
            {"digest": "sha256:x86", "platform": {"os": "linux", "architecture": "amd64"}},
        ]});
        assert_eq!(
            platform_entry(&index, "amd64").as_deref(),
            Some("sha256:x86")
        );
        assert_eq!(platform_entry(&index, "s390x"), None);
    }

    #[test]
    fn a_layer_is_found_with_its_diff_id_and_described_in_info() {
        let manifest = serde_json::json!({"layers": [
            {"digest": "sha256:l1", "size": 10},
            {"digest": "sha256:l2", "size": 20, "annotations": {"k": "v"}},
        ]});
        let ids = vec!["sha256:d1".to_string(), "sha256:d2".to_string()];
        let layer = find_layer(&manifest, &ids, "sha256:l2").unwrap();
        assert_eq!((layer.size, layer.diff_id.as_str()), (20, "sha256:d2"));
        assert_eq!(layer.annotations["k"], "v");
        let info: serde_json::Value = serde_json::from_slice(&info_json(&layer)).unwrap();
        assert_eq!(
            info,
            serde_json::json!({"compressed-diff-digest": "sha256:l2", "compressed-size": 20,
                "diff-digest": "sha256:d2", "compression": 4})
        );
        assert!(matches!(
            find_layer(&manifest, &ids, "sha256:l3"),
            Err(LayerError::NotInImage(_))
        ));
        assert!(matches!(
            find_layer(&manifest, &ids[..1], "sha256:l1"),
            Err(LayerError::Image(_))
        ));
    }
}
