//! One module per command; each exposes `run(args) -> CmdResult`.

pub mod cache;
pub mod env;
pub mod fetch;
pub mod inject;
pub mod lint;
pub mod mount;
pub mod plan;
