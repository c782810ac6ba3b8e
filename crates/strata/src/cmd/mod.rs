//! One module per command; each exposes `run(args) -> CmdResult`.

pub mod affected;
pub mod build;
pub mod cache;
pub mod env;
pub mod epochs;
pub mod fetch;
pub mod fetch_plan;
pub mod gc;
pub mod generate;
pub mod inject;
pub mod layer_store;
pub mod lint;
pub mod mount;
pub mod plan;
pub mod repodata;
pub mod report;
pub mod serve;
