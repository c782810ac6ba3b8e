//! strata-registry: the OCI registry edge of strata's layered builds.
//!
//! This crate owns:
//!
//! - [`client`]: a small blocking client for the OCI Distribution (Registry HTTP API v2):
//!   list tags, get/head/put/delete manifests (OCI index and manifest, Docker v2 list and
//!   manifest media types), get/put blobs, and the creation time of an image from its config
//!   blob. Plain HTTP for loopback registries, HTTPS otherwise; anonymous, Basic or
//!   Bearer-token auth.
//! - [`auth`]: where a registry's credentials are: the engines' auth files (`docker login`,
//!   `buildah login`) and credential helpers, or strata's environment variables.
//! - [`retention`]: the pure decision of which tags a retention policy deletes (`keep` rules
//!   with `newest`/`max-age`, `protect` globs), working by digest so that a manifest another
//!   kept or protected tag points to is never deleted, and treating strata's key tags
//!   (`sk-<24 hex>`) as bookkeeping that follows its digest. Tested with tables.
//! - [`keytag`]: what a key tag is, shared by the builder that pushes key tags and retention.
//!
//! [`testing`] starts a real loopback registry for tests.
//!
//! It must not read `strata.toml` files, run container engines or decide what to build.

pub mod auth;
pub mod client;
pub mod keytag;
pub mod retention;
pub mod testing;

pub use auth::Credentials;
pub use client::{Manifest, Registry, RegistryError, RepoRef};
pub use keytag::{is_key_tag, key_tag};
pub use retention::{Decision, KeepRule, Newest, Policy, TagInfo, decide};
