//! Failures and their exit codes: 1 when the work failed, 2 when the input or usage was wrong.

use std::process::ExitCode;

/// A failed command, carrying the exit code it maps to.
#[derive(Debug)]
pub enum Failure {
    /// Bad input (malformed lockfile, unknown file, bad flag value): exit 2.
    Input(anyhow::Error),
    /// The work failed (a download, the disk): exit 1.
    Work(anyhow::Error),
}

impl Failure {
    /// Prints the error chain to stderr and returns the exit code.
    pub fn report(self) -> ExitCode {
        let (error, code) = match self {
            Failure::Input(e) => (e, 2),
            Failure::Work(e) => (e, 1),
        };
        eprintln!("error: {error:#}");
        ExitCode::from(code)
    }
}

/// Shorthand for command results.
pub type CmdResult = Result<ExitCode, Failure>;

/// Marks an error as bad input.
pub fn input(e: impl Into<anyhow::Error>) -> Failure {
    Failure::Input(e.into())
}

/// Marks an error as a failure of the work.
pub fn work(e: impl Into<anyhow::Error>) -> Failure {
    Failure::Work(e.into())
}
