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
