//! The parsed form of a Dockerfile and BuildKit's `AST.Dump()` rendering of it.

use crate::gostr;

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// Parser directives found at the top (`# syntax=`, `# escape=`, `# check=`), in order.
    pub directives: Vec<Directive>,
    /// The instructions, in file order.
    pub instructions: Vec<Instruction>,
    /// The escape token in force: `\` unless `# escape=` chose `` ` ``.
    pub escape: char,
    /// Non-fatal findings of the parser (empty continuation lines).
    pub warnings: Vec<Warning>,
}

impl Dockerfile {
    /// The value of a parser directive (`"syntax"`, `"escape"` or `"check"`), if present.
    pub fn directive(&self, name: &str) -> Option<&str> {
        self.directives
            .iter()
            .find(|d| d.name == name)
            .map(|d| d.value.as_str())
    }

    /// BuildKit's `AST.Dump()`: one S-expression per instruction, one per line, e.g.
    /// `(copy ["--from=build"] "/out" "/usr/bin/")`. BuildKit's parser tests compare this plus
    /// a trailing newline with their `result` files.
    pub fn dump(&self) -> String {
        let lines: Vec<String> = self
            .instructions
            .iter()
            .map(|i| format!("({})", i.dump()))
            .collect();
        lines.join("\n").trim().to_string()
    }
}

/// A parser directive such as `# syntax=docker/dockerfile:1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// The lower-cased name: `syntax`, `escape` or `check`.
    pub name: String,
    /// The value, trimmed.
    pub value: String,
    /// The 1-based line it was on.
    pub line: usize,
}

/// A non-fatal finding of the parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// What was found, as BuildKit words it.
    pub message: String,
    /// The 1-based line the instruction ended on.
    pub line: usize,
}

/// The arguments of an instruction, in the form they were written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgsForm {
    /// Exec form, a JSON array of strings (`CMD ["a", "b"]`); for `HEALTHCHECK` the first
    /// element is the type (`CMD`) followed by the command's elements.
    Json(Vec<String>),
    /// Shell form: the argument text after the flags, trimmed, with line continuations joined
    /// but quotes, escapes and variables untouched.
    Shell(String),
}

/// A heredoc attached to an instruction (`RUN <<EOF` … `EOF`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word with quotes removed (`EOF` for `<<'EOF'`).
    pub name: String,
    /// The file descriptor written before `<<` (`3<<EOF`), 0 when absent.
    pub file_descriptor: u64,
    /// Whether the content undergoes variable expansion (no part of the delimiter was quoted).
    pub expand: bool,
    /// Whether leading tabs are stripped (`<<-EOF`); [`Heredoc::content`] keeps them, see
    /// [`chomp_heredoc_content`].
    pub chomp: bool,
    /// The lines between the instruction and the delimiter, each with its line ending.
    pub content: String,
}

/// Removes leading tabs from every line, as BuildKit does for `<<-` heredocs.
pub fn chomp_heredoc_content(content: &str) -> String {
    content
        .split_inclusive('\n')
        .map(|line| line.trim_start_matches('\t'))
        .collect()
}

/// One instruction of a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// The instruction keyword, lower-cased (`from`, `run`, …). Unknown keywords are kept
    /// (BuildKit's parser accepts them and leaves rejecting them to a later stage).
    pub keyword: String,
    /// Flags such as `--from=build` or `--mount=type=cache,target=/x`, in order, with quotes
    /// and escapes removed.
    pub flags: Vec<String>,
    /// The arguments as written.
    pub args: ArgsForm,
    /// The argument nodes exactly as BuildKit's parser builds them, which is what
    /// [`Instruction::dump`] prints: `ENV`/`LABEL` give `key, value, separator` triples
    /// (separator `=` or empty for the `KEY value` form), `FROM`/`EXPOSE`/shell-form
    /// `COPY`/`ADD`/`VOLUME` give white-space separated words, `ARG` gives quote-aware words,
    /// exec forms give the JSON elements, other shell forms give the whole text, `HEALTHCHECK`
    /// gives its type then its command, and unknown instructions give one empty string.
    pub values: Vec<String>,
    /// For `ONBUILD`, the instruction it wraps.
    pub onbuild: Option<Box<Instruction>>,
    /// Heredocs read after this instruction (only `RUN`, `COPY`, `ADD`, also under `ONBUILD`).
    pub heredocs: Vec<Heredoc>,
    /// The 1-based line the instruction starts on.
    pub start_line: usize,
    /// The 1-based line it ends on (after continuations and heredocs).
    pub end_line: usize,
    /// The logical line, continuations joined (without the heredoc bodies).
    pub original: String,
    /// The comment lines directly above the instruction, without `#`.
    pub comments: Vec<String>,
}

impl Instruction {
    /// Whether the arguments were written in exec (JSON) form.
    pub fn is_json(&self) -> bool {
        matches!(self.args, ArgsForm::Json(_))
    }

    /// The value of the flag `--name=value` (the last one when repeated).
    pub fn flag(&self, name: &str) -> Option<&str> {
        self.flags.iter().rev().find_map(|f| {
            f.strip_prefix("--")
                .and_then(|f| f.strip_prefix(name))
                .and_then(|f| f.strip_prefix('='))
        })
    }

    /// This instruction's S-expression without the surrounding parentheses, as BuildKit's
    /// `Node.Dump()` prints it.
    pub fn dump(&self) -> String {
        let mut s = gostr::to_lower(&self.keyword);
        if !self.flags.is_empty() {
            s.push(' ');
            s.push_str(&gostr::quote_list(&self.flags));
        }
        for v in &self.values {
            s.push(' ');
            s.push_str(&gostr::quote(v));
        }
        if let Some(child) = &self.onbuild {
            s.push_str(" (");
            s.push_str(&child.dump());
            s.push(')');
        }
        s.trim().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chomp_strips_leading_tabs_per_line() {
        assert_eq!(
            chomp_heredoc_content("\thello\n\t\tworld\n x\t\n"),
            "hello\nworld\n x\t\n"
        );
    }
}
