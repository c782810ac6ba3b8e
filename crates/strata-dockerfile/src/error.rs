//! Parse errors with the location BuildKit would report.

use std::fmt;

/// A Dockerfile that BuildKit's parser would reject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    /// The 1-based line where the problem starts (for an instruction, its first line).
    pub line: usize,
    /// The 1-based line where it ends (equal to `line` for a single line).
    pub end_line: usize,
    /// The 1-based column, where one is meaningful.
    pub column: Option<usize>,
    /// What is wrong, worded as BuildKit words it.
    pub message: String,
}

impl ParseError {
    /// An error spanning `line..=end_line`.
    pub(crate) fn new(line: usize, end_line: usize, message: impl Into<String>) -> Self {
        ParseError {
            line,
            end_line: end_line.max(line),
            column: None,
            message: message.into(),
        }
    }

    /// The same error at a column.
    pub(crate) fn at_column(mut self, column: usize) -> Self {
        self.column = Some(column);
        self
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}", self.line)?;
        if let Some(c) = self.column {
            write!(f, ", column {c}")?;
        }
        if self.end_line != self.line {
            write!(f, " (to line {})", self.end_line)?;
        }
        write!(f, ": {}", self.message)
    }
}
