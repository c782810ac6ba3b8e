//! strata-layerstore: image layers from a registry, served lazily to podman and buildah.
//!
//! containers-storage (the image store of podman, buildah and CRI-O) can take layers from an
//! *additional layer store*: a directory, here a FUSE mount, that shows each layer of an image
//! already unpacked. Pulling an image then copies no layer data at all, and a build `FROM`
//! that image reads only the files it opens. This crate is such a store for zstd:chunked
//! layers (podman/buildah `push --compression-format zstd:chunked`): it reads a layer's table
//! of contents with one range request and each file's content, when first opened, with
//! another, verified against the TOC's digest and kept in strata's shared content-addressed
//! store. It owns the TOC format ([`toc`]), the overlay-ready tree ([`tree`]), image
//! resolution ([`image`]) and the filesystem ([`fs`]); other layers are refused, and
//! containers-storage pulls those the usual way.
//!
//! Configure it in `storage.conf`:
//!
//! ```toml
//! [storage.options]
//! additionallayerstores = ["/var/lib/strata/layers:ref"]
//! ```

pub mod fs;
pub mod image;
pub mod stats;
pub mod toc;
pub mod tree;

pub use fs::{LayerStore, MountOptions, MountedStore, STATS_FILE, StoreOptions};
pub use stats::{Stats, Summary};
