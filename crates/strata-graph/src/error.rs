//! Errors of building the stage graph.

/// A Dockerfile that parses but cannot be turned into a build graph, or bad build options.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// The file has no `FROM` instruction.
    #[error("no FROM instruction: a Dockerfile needs at least one stage")]
    NoStages,
    /// An instruction other than `ARG` (or a parser directive/comment) appears before the first `FROM`.
    #[error("line {line}: {keyword} before the first FROM (only ARG may come first)")]
    BeforeFrom {
        /// 1-based line.
        line: usize,
        /// The instruction keyword, upper-cased.
        keyword: String,
    },
    /// An instruction whose arguments are wrong for the graph (bad stage reference, empty
    /// base name, a word that does not expand, a malformed `--mount`).
    #[error("line {line}: {message}")]
    Invalid {
        /// 1-based line of the instruction.
        line: usize,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// `--target` names no stage.
    #[error("target stage `{0}` could not be found (stage names: {1})")]
    UnknownTarget(String, String),
    /// Stages depend on each other in a cycle.
    #[error("circular dependency between stages: {0}")]
    Cycle(String),
}

impl GraphError {
    /// The message without its `line N:` prefix.
    pub fn message(&self) -> String {
        match self {
            GraphError::BeforeFrom { keyword, .. } => {
                format!("{keyword} before the first FROM (only ARG may come first)")
            }
            GraphError::Invalid { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }

    /// The 1-based line the error is about, when there is one.
    pub fn line(&self) -> Option<usize> {
        match self {
            GraphError::BeforeFrom { line, .. } | GraphError::Invalid { line, .. } => Some(*line),
            _ => None,
        }
    }
}
