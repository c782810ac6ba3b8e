//! strata-tree: the layout of the output directory and the files strata generates in it.
//!
//! This crate owns what the build sees, shared by `strata fetch` (eager copy-out),
//! `strata mount` (FUSE) and `strata serve`: Hermeto's output layout (`deps/pip/`,
//! `deps/npm/`, `deps/rpm/<arch>/<repoid>/`, `deps/generic/`, whatever path each
//! [`strata_lock::Artifact`] carries), and the generated files a Containerfile written for
//! Hermeto relies on, byte-compatible with Hermeto's:
//!
//! - [`Tree`]: the whole output as an in-memory arena of nodes with inode-like [`NodeId`]s;
//!   lookup, readdir and getattr are answered from memory.
//! - `bom.json` ([`bom_json`]): the CycloneDX 1.6 SBOM with Hermeto's purls and properties.
//! - `.build-config.json` ([`BuildConfig`]): environment variables and project files as
//!   templates over `${output_dir}`; [`env_vars`] / [`format_env`] are `strata env`
//!   (Hermeto's `generate-env`).
//! - [`rewrite_npm_lockfile`] and [`inject_files`]: `strata inject-files`, pointing npm
//!   lockfiles at `file://<for-output-dir>/deps/npm/...` and writing
//!   `deps/rpm/<arch>/repos.d/strata.repo` ([`rpm_repo_file`]).
//!
//! Everything is pure except [`inject_files`], [`load_npm_projects`],
//! [`default_for_output_dir`] and [`write_atomically`], which touch the local filesystem.
//! This crate never downloads, never reads the store, and never parses lockfiles other than
//! rewriting npm's.
//!
//! `--for-output-dir` defaults, as in Hermeto, to the output directory's own absolute path;
//! Hermeto's documentation mounts it at `/tmp/hermeto-output`, Konflux at `/cachi2/output`.

mod build_config;
mod inject;
mod npm;
pub mod purl;
mod rpm;
mod sbom;
pub mod template;
mod tree;

pub use build_config::{
    BuildConfig, EnvError, EnvFormat, EnvironmentVariable, ProjectFile, env_vars, format_env,
    shell_quote,
};
pub use inject::{
    InjectError, InjectReport, default_for_output_dir, inject_files, load_npm_projects,
    write_atomically, write_regenerable,
};
pub use npm::{NpmRewriteError, npm_archive_name, npm_lockfile_template, rewrite_npm_lockfile};
pub use rpm::{GENERATED_REPOID_PREFIXES, REPO_FILE_NAME, is_generated_repoid, rpm_repo_file};
pub use sbom::{SbomOptions, bom_json, iso8601, write_bom_json};
pub use tree::{
    BOM_JSON, BUILD_CONFIG_JSON, Children, DirEntry, Node, NodeId, NpmProject, Tree, TreeError,
    TreeOptions, build_config, split_path,
};
