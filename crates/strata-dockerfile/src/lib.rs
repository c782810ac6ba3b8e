//! strata-dockerfile: Dockerfile parsing, shell word expansion and `.dockerignore` matching
//! that agree with BuildKit exactly.
//!
//! This crate owns three pure jobs, each checked against BuildKit's and moby's own test
//! vectors (see `tests/conformance.rs`):
//!
//! - **Parsing** ([`parse`]): parser directives (`# syntax=`, `# escape=`, `# check=`, only at
//!   the top), line continuations with the escape token, comments and empty lines inside
//!   continuations, heredocs (`<<EOF`, `<<-EOF`, quoted delimiters, several per line), exec
//!   (JSON) versus shell form, `--flags`, and per-instruction line ranges. The result is a
//!   [`Dockerfile`] whose [`Dockerfile::dump`] reproduces BuildKit's `AST.Dump()` byte for byte.
//! - **Word expansion** ([`shell::Lexer`]): BuildKit's `$VAR`/`${VAR…}` expansion with quotes
//!   and the configurable escape token, reporting which variables each word used.
//! - **`.dockerignore`** ([`dockerignore`]): moby's ignore-file reading and pattern matching,
//!   and the choice between `<Dockerfile>.dockerignore` and `.dockerignore`.
//!
//! It does no I/O except reading a `.dockerignore` file ([`dockerignore::read_dockerignore`]),
//! never talks to a build engine, and does not interpret instructions beyond BuildKit's parser
//! (stage graphs and cache keys are built on top of it elsewhere).
//!
//! Why not the `parse-dockerfile` crate: it is well kept, but it rejects unknown instructions
//! (BuildKit's parser keeps them), and its typed AST does not retain the node shapes that
//! BuildKit's dump, and so the conformance suite, are defined by (e.g. the `KEY value` form of
//! `ENV`, the byte-wise flag splitting, JSON fallbacks).
//!
//! ```
//! let df = strata_dockerfile::parse("FROM alpine\nCOPY --from=build /out /bin/\n").unwrap();
//! assert_eq!(df.instructions[1].keyword, "copy");
//! assert_eq!(df.instructions[1].flag("from"), Some("build"));
//! assert_eq!(df.dump(), "(from \"alpine\")\n(copy [\"--from=build\"] \"/out\" \"/bin/\")");
//! ```

mod ast;
pub mod dockerignore;
mod error;
mod gostr;
mod heredoc;
mod json;
mod line_parsers;
mod parser;
pub mod shell;

pub use ast::{
    ArgsForm, Directive, Dockerfile, Heredoc, Instruction, Warning, chomp_heredoc_content,
};
pub use error::ParseError;
pub use heredoc::parse_heredoc;
pub use parser::parse;
