//! Finding heredoc markers (`<<EOF`, `<<-EOF`, `3<<'EOF'`) on an instruction line.

use crate::ast::{Heredoc, Instruction};
use crate::shell::{EmptyEnv, Lexer};

/// Whether heredocs after this instruction are read: shell-form `RUN`, `COPY` and `ADD`, also
/// when wrapped in `ONBUILD`.
pub(crate) fn can_contain_heredoc(inst: &Instruction) -> bool {
    let target = match (&*inst.keyword, &inst.onbuild) {
        ("onbuild", Some(child)) => child,
        _ => inst,
    };
    matches!(&*target.keyword, "add" | "copy" | "run") && !target.is_json()
}

/// The heredocs a logical line opens, in order (their content not yet read).
///
/// The line is split into words with quotes and escapes kept, so a quoted `"<<EOF"` is not a
/// marker; a line that does not split (an unterminated quote) opens none.
pub(crate) fn heredocs_from_line(line: &str) -> Result<Vec<Heredoc>, String> {
    let mut lex = Lexer::new('\\');
    lex.raw_quotes = true;
    lex.raw_escapes = true;
    lex.skip_unset_env = true;
    let words = lex.process_words(line, &EmptyEnv).unwrap_or_default();
    let mut docs = Vec::new();
    for word in words {
        if let Some(doc) = parse_heredoc(&word)? {
            docs.push(doc);
        }
    }
    Ok(docs)
}

/// Parses one word as a heredoc marker: `^(\d*)<<(-?)\s*([^<]*)$` whose delimiter is one
/// shell word. `Ok(None)` when it is not a marker; an error when its quoting is broken.
pub fn parse_heredoc(word: &str) -> Result<Option<Heredoc>, String> {
    let digits_len = word.bytes().take_while(u8::is_ascii_digit).count();
    let (digits, rest) = word.split_at(digits_len);
    let Some(rest) = rest.strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let rest = rest.trim_start_matches(['\t', '\n', '\u{c}', '\r', ' ']);
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let mut lex = Lexer::new('\\');
    lex.skip_unset_env = true;
    let words = lex
        .process_words(rest, &EmptyEnv)
        .map_err(|e| e.to_string())?;
    let [name] = words.as_slice() else {
        return Ok(None);
    };
    lex.raw_quotes = true;
    let raw = lex
        .process_words(rest, &EmptyEnv)
        .map_err(|e| e.to_string())?;
    if raw.len() != 1 {
        return Err(format!(
            "internal lexing of heredoc produced inconsistent results: {rest}"
        ));
    }
    // Quotes removed by the first pass mean some part of the delimiter was quoted.
    let expand = count_quotes(name) == count_quotes(&raw[0]);
    Ok(Some(Heredoc {
        name: name.clone(),
        file_descriptor: digits.parse().unwrap_or(0),
        expand,
        chomp,
        content: String::new(),
    }))
}

fn count_quotes(s: &str) -> usize {
    s.chars().filter(|&c| c == '\'' || c == '"').count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers() {
        for valid in [
            "<<EOF",
            "<<'EOF'",
            "<<\"EOF\"",
            "<<-EOF",
            "<<-'EOF'",
            "<<-\"EOF\"",
            "<<EO\"F\"",
            "<< EOF",
            "<<- EOF",
        ] {
            let doc = parse_heredoc(valid).unwrap().expect(valid);
            assert_eq!(doc.name, "EOF", "{valid}");
        }
        for invalid in ["<<'EOF", "<<\"EOF", "<<EOF'", "<<EOF\""] {
            assert!(parse_heredoc(invalid).is_err(), "{invalid}");
        }
        for not in ["", "EOF", "<<", "<<-", "<EOF", "<<<EOF", "<<EOF sh"] {
            assert_eq!(parse_heredoc(not).unwrap(), None, "{not}");
        }
    }

    #[test]
    fn from_line() {
        let names = |line: &str| -> Vec<String> {
            heredocs_from_line(line)
                .unwrap()
                .into_iter()
                .map(|h| h.name)
                .collect()
        };
        assert_eq!(names("RUN <<EOF"), ["EOF"]);
        // Only blanks right after `<<` are absorbed into the marker word, so in BuildKit
        // `<<- EOF` splits into `<<-` and `EOF` and opens no heredoc (its own test passes
        // vacuously on this line).
        assert!(names("RUN <<- EOF").is_empty());
        assert_eq!(names("RUN << -EOF"), ["-EOF"]);
        assert_eq!(names("RUN 4<<EOF"), ["EOF"]);
        assert_eq!(names("RUN <<EOF <<EOF2"), ["EOF", "EOF2"]);
        assert!(names("RUN '<<EOF'").is_empty());
        assert!(names("RUN \"<<EOF\"").is_empty());
        let doc = &heredocs_from_line("RUN 3<<-'X'").unwrap()[0];
        assert_eq!(
            (doc.file_descriptor, doc.chomp, doc.expand),
            (3, true, false)
        );
    }
}
