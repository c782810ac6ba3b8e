//! strata-graph: what a Containerfile will do when built, without building it.
//!
//! This crate owns the build-graph half of strata's Containerfile engine, on top of the
//! parser in `strata-dockerfile`:
//!
//! - [`stages`]: the stage DAG: stages from `FROM` (`AS name`, else the index), edges from
//!   `FROM <stage>`, `COPY --from=<name|index>` and `RUN --mount=…,from=<stage>`, global ARGs
//!   and `FROM ${X}` with `--build-arg` overrides, `--target` pruning. Pure.
//! - [`dag`]: parallel levels, the critical path and the widest level. Pure.
//! - [`keys`]: cache keys per step and per stage following BuildKit's rules (see that module
//!   for exactly what goes in). Pure over a [`keys::ContextIndex`].
//! - [`context`]: the one edge: reading the build context (parallel walk honouring
//!   `.dockerignore`, parallel sha256, a persistent stat cache).
//! - [`plan`]: the three above put together into a serialisable [`plan::Plan`], and
//!   [`compare`]: why two plans' keys differ.
//! - [`lint`]: cache and layer hygiene rules over the graph. Pure.
//! - [`render`]: text, JSON, Graphviz dot and Mermaid renderings of a plan, and text, JSON and
//!   SARIF renderings of lint findings.
//!
//! It must not run builds, talk to engines or registries, or write anywhere except its stat
//! cache under the directory it is given.
//!
//! # Agreement with BuildKit, and what still differs
//!
//! `crates/strata/tests/buildkit_agreement.rs` builds a multi-stage Dockerfile with real
//! BuildKit (Docker 20.10's built-in builder and Dockerfile frontend, `--progress=plain`)
//! before and after 21 kinds of edit and checks that a stage's key changes exactly when
//! BuildKit re-runs one of its steps. They agree on: content edits, ignored files, mtime-only
//! changes (hit), file modes (miss), owners (hit), files added under a glob or a copied
//! directory, empty directories appearing in a copied directory (miss; fixed after this test
//! found it) and directory modes (hit), symlinks, files added under a `RUN --mount=type=bind`
//! source, `!` patterns re-including a file, `ENV` edits, ARGs used or unused after their
//! declaration (both miss), undeclared and proxy build args (hit), Dockerfile comments (hit),
//! RUN edits and edits of a stage read with `COPY --from`.
//!
//! Known differences (a prediction is never a promise):
//! - **Content-keyed `COPY --from` and `RUN --mount=from=`**: BuildKit keys them by the content
//!   of the copied paths, known only after the source stage ran, so when a stage re-runs but
//!   produces the same files its dependants still hit. strata keys them by the source
//!   stage's key and predicts a miss (conservative). The test pins this case for `COPY
//!   --from`; for read-only `RUN --mount=from=` it follows from BuildKit's exec op and is not
//!   exercised.
//! - **Image bases** are keyed by the reference as written: a moved tag is not seen (BuildKit
//!   resolves it to a digest). Pin by digest. Remote `ADD` URLs are keyed by URL text only.
//! - **Cache state**: predictions assume BuildKit's cache still holds the compared build (no
//!   garbage collection, `--no-cache`, `--cache-from` imports or other builders).
//! - **Untested corners**: newer Dockerfile frontends (`# syntax=`; `COPY --link`, `--parents`,
//!   `--exclude` need them and cannot be pulled here), extended attributes (not keyed),
//!   file names that are not UTF-8 (skipped by the walk; BuildKit sends them), special files
//!   (skipped), hard links, `.dockerignore` `!` exclusions re-including files under ignored
//!   directories (the parent directory entries BuildKit then sends are not modelled).
//! - Keys are strata's own sha256s: equal keys predict a hit, they are not BuildKit digests.
//!
//! ```
//! use strata_graph::stages::{analyze, BuildOptions};
//! let df = strata_dockerfile::parse(
//!     "FROM alpine AS base\nFROM base AS a\nFROM base AS b\nFROM scratch\nCOPY --from=a /x /\nCOPY --from=b /y /\n",
//! ).unwrap();
//! let graph = analyze(&df, &BuildOptions::default()).unwrap();
//! let s = strata_graph::dag::schedule(&graph);
//! assert_eq!(s.levels, vec![vec![0], vec![1, 2], vec![3]]);
//! assert_eq!(s.max_parallelism, 2);
//! ```

pub mod compare;
pub mod context;
pub mod dag;
mod error;
pub mod keys;
pub mod lint;
pub mod mount;
pub mod plan;
pub mod render;
pub mod stages;

pub use error::GraphError;
