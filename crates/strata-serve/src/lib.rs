//! strata-serve: `strata serve`, the lazy HTTP and NFS transports over the store.
//!
//! This crate owns what `strata serve` answers, for clients that cannot use the FUSE mount
//! (a podman machine on macOS, a CI runner without `/dev/fuse`):
//!
//! - [`serve_http`]: a pip/uv simple index (PEP 503 HTML and PEP 691 JSON, chosen by
//!   `Accept`), an npm registry (packuments with only the locked versions, and tarballs), the
//!   output tree under a path prefix with `Range` support, and a dnf `baseurl` per
//!   `<arch>/<repoid>`. See [`http`] for the routes.
//! - [`bind_nfs`]: the same tree over NFSv3, read-only ([`NfsView`]).
//! - [`LazyTree`]: what both share: the [`strata_tree::Tree`] answered from memory, artifact
//!   bytes made present in the store on first use through [`strata_store::Fetcher::ensure`]
//!   (so concurrent requests, from any transport or process, download a file once).
//! - Pure cores with table tests: [`index`] (catalog, index pages, packuments, content
//!   negotiation), [`names`] (PEP 503 normalisation, npm request paths, percent-coding) and
//!   [`range`] (`Range` headers).
//!
//! Anything the lockfiles do not pin answers 404 (HTTP) or `NOENT` (NFS), with an HTTP body
//! that says it is not locked: a build through `strata serve` stays hermetic.
//!
//! This crate never parses lockfiles, never downloads except through the
//! [`strata_store::Fetcher`] it is given, and never writes into the store itself.

pub mod http;
pub mod index;
mod lazy;
pub mod names;
mod nfs;
pub mod range;
mod stream;

pub use http::{HttpOptions, serve_http};
pub use lazy::{LazyTree, Opened, ServeStats};
pub use nfs::{NfsView, bind_nfs};
