//! strata-lock: parses lockfiles into the one [`Artifact`] model.
//!
//! This crate owns reading `pylock.toml` (PEP 751), `package-lock.json` /
//! `npm-shrinkwrap.json`, `rpms.lock.yaml` and Hermeto's `artifacts.lock.yaml`, detecting the
//! format from the file name, validating every field that later becomes a path or a digest, and
//! reporting malformed input with file, line and column. It does no I/O beyond reading the
//! lockfile and never touches the network: everything downstream works on `Vec<Artifact>`.

mod artifact;

pub use artifact::{
    Algorithm, Artifact, Details, Digest, Ecosystem, Origin, RpmKind, check_file_name,
    check_path_component,
};
