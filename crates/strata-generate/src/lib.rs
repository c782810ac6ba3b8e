//! strata-generate: renders RFC 0041's parallel-download Containerfile from a manifest.
//!
//! This crate owns the manifest format (`strata-image.toml`), its validation (every error
//! names the file, line, column and key), the rendering of the Containerfile and the custom
//! regions that survive regeneration. It is pure: text in, text out; the `strata generate`
//! command reads and writes the files.
//!
//! ```toml
//! [image]
//! from = "registry.example/fedora:42@sha256:..."
//! package-manager = "dnf"              # or "apt"
//! [download.vscode]                    # stage `dl-vscode`, in parallel with the others
//! packages = ["code", "code-insiders"]
//! epoch-arg = "VSCODE_CACHE_EPOCH"     # default <NAME>_CACHE_EPOCH
//! [install]
//! packages = ["curl", "jq"]            # same single transaction as the downloads
//! epoch-arg = "INSTALL_CACHE_EPOCH"    # the default
//! [binary.starship]                    # stage `fetch-starship`
//! url = "https://example.org/starship.tar.gz"
//! sha256 = "<64 hex digits>"
//! extract = "starship"                 # member of the archive; omit for a plain file
//! archive = "tar.gz"                   # optional: told from the URL otherwise
//! dest = "/usr/bin/starship"
//! mode = "0755"                        # the default
//! ```
//!
//! The output has a `base` stage, one `dl-<name>` stage per download (`dnf download
//! --destdir=/rpms` or `apt-get download` into `/debs`) with its own epoch ARG, one
//! `fetch-<name>` stage per binary (curl, `sha256sum -c`, extract, `install` under `/out`),
//! and an `image` stage that COPYs every download into one directory and installs them with
//! the `[install]` packages in a single transaction that also cleans the package caches.
//! Three custom regions (`base`, `stages`, `image`; see [`regions`]) keep hand-written text.

pub mod manifest;
pub mod regions;
mod render;

pub use manifest::{Manifest, ManifestError, PackageManager, default_epoch_arg, parse};
pub use regions::{RegionError, extract, merge};
pub use render::{GENERATED_MARK, REGIONS, render};

/// Renders `manifest_text` and carries the custom regions of `existing` (the previous
/// output, if any) over. `manifest_name` appears in messages and the header comment.
pub fn regenerate(
    manifest_name: &str,
    manifest_text: &str,
    existing: Option<&str>,
) -> Result<String, GenerateError> {
    let manifest = parse(manifest_name, manifest_text)?;
    let rendered = render(&manifest, manifest_name);
    match existing {
        None => Ok(rendered),
        Some(old) => {
            let bodies = extract(old)?;
            Ok(merge(&rendered, &bodies)?)
        }
    }
}

/// Why generation failed.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// The manifest is invalid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The existing output's regions are malformed or would be lost.
    #[error("the existing Containerfile: {0}")]
    Regions(#[from] RegionError),
}
