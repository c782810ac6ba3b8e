//! Parser behaviour beyond the conformance files: heredocs, directives, warnings and the
//! errors a user sees, with their line numbers.

use strata_dockerfile::{ArgsForm, Heredoc, chomp_heredoc_content, parse};

fn heredoc(name: &str, content: &str, expand: bool, chomp: bool, fd: u64) -> Heredoc {
    Heredoc {
        name: name.to_string(),
        file_descriptor: fd,
        expand,
        chomp,
        content: content.to_string(),
    }
}

/// BuildKit's `TestParseExtractsHeredoc`, instruction by instruction.
#[test]
fn extracts_heredocs_like_buildkit() {
    let src = "
FROM alpine:3.6

ENV NAME=me

RUN ls

USER <<INVALID
INVALID

RUN <<EMPTY
EMPTY

RUN 3<<EMPTY2
EMPTY2

RUN \"<<NOHEREDOC\"

RUN <<INDENT
\tfoo
\tbar
INDENT

RUN <<-UNINDENT
\tbaz
\tquux
UNINDENT

RUN <<-UNINDENT2
\tbaz
\tquux
\tUNINDENT2

RUN <<-EXPAND
\texpand $NAME
EXPAND

RUN <<-'NOEXPAND'
\tdon't expand $NAME
NOEXPAND

RUN <<COPY
echo hello world
echo foo bar
COPY

RUN <<COMMENT
# internal comment
echo hello world
echo foo bar # trailing comment
COMMENT

RUN --mount=type=cache,target=/foo <<MOUNT
echo hello
MOUNT

COPY <<FILE1 <<FILE2 /dest
content 1
FILE1
content 2
FILE2

COPY <<EOF /quotes
\"foo\"
'bar'
EOF

COPY <<X <<Y /dest
Y
X
X
Y

RUN <<COMPLEX python3
print('hello world')
COMPLEX

COPY <<file.txt /dest
hello world
file.txt

RUN <<eo'f'
echo foo
eof

RUN <<eo\\'f
echo foo
eo'f

RUN <<'e'o\\'f
echo foo
eo'f

RUN <<'one two'
echo bar
one two

RUN <<$EOF
$EOF

RUN <<  EOF
EOF

RUN <<  EOF  > foo
EOF
\t";
    let expected: Vec<Vec<Heredoc>> = vec![
        vec![], // ENV
        vec![], // RUN ls
        vec![], // USER <<INVALID
        vec![], // INVALID (an unknown instruction)
        vec![heredoc("EMPTY", "", true, false, 0)],
        vec![heredoc("EMPTY2", "", true, false, 3)],
        vec![],
        vec![heredoc("INDENT", "\tfoo\n\tbar\n", true, false, 0)],
        vec![heredoc("UNINDENT", "\tbaz\n\tquux\n", true, true, 0)],
        vec![heredoc("UNINDENT2", "\tbaz\n\tquux\n", true, true, 0)],
        vec![heredoc("EXPAND", "\texpand $NAME\n", true, true, 0)],
        vec![heredoc(
            "NOEXPAND",
            "\tdon't expand $NAME\n",
            false,
            true,
            0,
        )],
        vec![heredoc(
            "COPY",
            "echo hello world\necho foo bar\n",
            true,
            false,
            0,
        )],
        vec![heredoc(
            "COMMENT",
            "# internal comment\necho hello world\necho foo bar # trailing comment\n",
            true,
            false,
            0,
        )],
        vec![heredoc("MOUNT", "echo hello\n", true, false, 0)],
        vec![
            heredoc("FILE1", "content 1\n", true, false, 0),
            heredoc("FILE2", "content 2\n", true, false, 0),
        ],
        vec![heredoc("EOF", "\"foo\"\n'bar'\n", true, false, 0)],
        vec![
            heredoc("X", "Y\n", true, false, 0),
            heredoc("Y", "X\n", true, false, 0),
        ],
        vec![heredoc("COMPLEX", "print('hello world')\n", true, false, 0)],
        vec![heredoc("file.txt", "hello world\n", true, false, 0)],
        vec![heredoc("eof", "echo foo\n", false, false, 0)],
        vec![heredoc("eo'f", "echo foo\n", true, false, 0)],
        vec![heredoc("eo'f", "echo foo\n", false, false, 0)],
        vec![heredoc("one two", "echo bar\n", false, false, 0)],
        vec![heredoc("$EOF", "", true, false, 0)],
        vec![heredoc("EOF", "", true, false, 0)],
        vec![heredoc("EOF", "", true, false, 0)],
    ];
    let df = parse(src).unwrap();
    assert_eq!(df.instructions.len(), expected.len() + 1);
    for (i, want) in expected.iter().enumerate() {
        let inst = &df.instructions[i + 1];
        assert_eq!(
            &inst.heredocs,
            want,
            "instruction {} ({})",
            i + 1,
            inst.original
        );
    }
    // The heredoc body counts towards the instruction's line range.
    let multi = &df.instructions[16];
    assert_eq!(multi.original, "COPY <<FILE1 <<FILE2 /dest");
    assert_eq!(multi.end_line - multi.start_line, 4);
    assert_eq!(
        chomp_heredoc_content(&df.instructions[9].heredocs[0].content),
        "baz\nquux\n"
    );
}

#[test]
fn json_form_has_no_heredocs() {
    let df = parse("FROM a\nRUN [\"whoami\"]\nRUN [\"<<EOF\"]\nRUN [\"<<'EOF'\"]\n").unwrap();
    for inst in &df.instructions[1..] {
        assert!(inst.heredocs.is_empty());
        assert!(inst.is_json());
    }
    assert_eq!(
        df.instructions.len(),
        4,
        "no lines were swallowed as heredoc bodies"
    );
}

#[test]
fn onbuild_heredoc_attaches_to_onbuild() {
    let df = parse("FROM a\nONBUILD RUN <<EOF\necho hi\nEOF\nRUN b\n").unwrap();
    let onbuild = &df.instructions[1];
    assert_eq!(onbuild.heredocs[0].content, "echo hi\n");
    assert_eq!((onbuild.start_line, onbuild.end_line), (2, 4));
    let child = onbuild.onbuild.as_deref().unwrap();
    assert_eq!(child.keyword, "run");
    assert_eq!((child.start_line, child.end_line), (2, 4));
    assert_eq!(df.instructions[2].start_line, 5);
    assert_eq!(
        df.dump(),
        "(from \"a\")\n(onbuild (run \"<<EOF\"))\n(run \"b\")"
    );
}

#[test]
fn warns_on_empty_continuation_lines() {
    let src = "
FROM alpine:3.6

RUN valid \\
    continuation

RUN something \\

    following \\

    more

RUN another \\

    thing

RUN non-indented \\
# this is a comment
   after-comment

RUN indented \\
    # this is an indented comment
    comment
\t";
    let df = parse(src).unwrap();
    assert_eq!(df.warnings.len(), 2);
    assert!(
        df.warnings[0]
            .message
            .contains("Empty continuation line found in: RUN something     following     more")
    );
    assert_eq!(df.warnings[0].line, 11);
    assert!(df.warnings[1].message.contains("RUN another     thing"));
    assert_eq!(df.instructions[4].values, ["non-indented    after-comment"]);
}

#[test]
fn directives_at_the_top_only() {
    let df =
        parse("# syntax=docker/dockerfile:1\n# check=skip=all\n#escape=`\nFROM a\nRUN x `\n  y\n")
            .unwrap();
    assert_eq!(df.directive("syntax"), Some("docker/dockerfile:1"));
    assert_eq!(df.directive("check"), Some("skip=all"));
    assert_eq!(df.escape, '`');
    assert_eq!(df.directives[2].line, 3);
    assert_eq!(df.instructions[1].values, ["x   y"]);

    // After an instruction, a comment, or a blank line a "directive" is just a comment.
    for src in [
        "FROM a\n# escape=`\nRUN x `\n",
        "# hello\n# escape=`\nFROM a\nRUN x `\n",
        "\n# escape=`\nFROM a\nRUN x `\n",
    ] {
        let df = parse(src).unwrap();
        assert_eq!(df.escape, '\\', "{src:?}");
        assert_eq!(df.directive("escape"), None);
        assert_eq!(df.instructions.last().unwrap().values, ["x `"]);
    }

    // Comments above an instruction are kept, directives are not.
    let df = parse("# syntax=x\n# about a\nFROM a\n").unwrap();
    assert_eq!(df.instructions[0].comments, ["about a"]);
}

#[test]
fn args_forms() {
    let df = parse(
        "FROM a AS b\nCMD [\"x\", \"y\"]\nCMD [\"x\", oops]\nCOPY --chmod=755 a b\nENV A=1 B=\"2 3\"\nHEALTHCHECK --interval=5s CMD [\"ok\"]\n",
    )
    .unwrap();
    let i = &df.instructions;
    assert_eq!(i[0].values, ["a", "AS", "b"]);
    assert_eq!(i[1].args, ArgsForm::Json(vec!["x".into(), "y".into()]));
    assert_eq!(i[2].args, ArgsForm::Shell("[\"x\", oops]".into()));
    assert_eq!(i[3].flag("chmod"), Some("755"));
    assert_eq!(i[3].args, ArgsForm::Shell("a b".into()));
    assert_eq!(i[4].values, ["A", "1", "=", "B", "\"2 3\"", "="]);
    assert_eq!(i[5].args, ArgsForm::Json(vec!["CMD".into(), "ok".into()]));
    assert_eq!(i[5].flags, ["--interval=5s"]);
}

// ---- errors a user sees -------------------------------------------------------------------

#[test]
fn error_unterminated_heredoc() {
    let err = parse("FROM a\n\nRUN <<EOF\necho hi\n").unwrap_err();
    assert_eq!((err.line, err.end_line), (3, 4));
    assert!(err.message.starts_with("unterminated heredoc"), "{err}");
    assert!(err.message.contains("\"EOF\""), "{err}");
    assert!(err.to_string().starts_with("line 3 (to line 4): "), "{err}");

    // The second of two heredocs is the unterminated one.
    let err = parse("FROM a\nCOPY <<A <<B /x\na\nA\nb\n").unwrap_err();
    assert_eq!((err.line, err.end_line), (2, 5));
    assert!(err.message.contains("\"B\""), "{err}");

    // A line whose quotes do not close opens no heredoc at all (BuildKit ignores the
    // failed split), so the next lines stay instructions.
    let df = parse("FROM a\nRUN <<'EOF\nRUN b\n").unwrap();
    assert!(df.instructions[1].heredocs.is_empty());
    assert_eq!(df.instructions.len(), 3);
}

#[test]
fn error_bad_json() {
    let err = parse("FROM a\nRUN true\nCMD [\"a\", 1]\n").unwrap_err();
    assert_eq!((err.line, err.end_line), (3, 3));
    assert_eq!(
        err.message,
        "when using JSON array syntax, arrays must be comprised of strings only"
    );
    let err = parse("FROM a\nENTRYPOINT [\"a\", \\\n  [\"b\"]]\n").unwrap_err();
    assert_eq!((err.line, err.end_line), (2, 3));
    // Invalid JSON is not an error: it is shell form.
    let df = parse("FROM a\nCMD [\"a\", 'b']\n").unwrap();
    assert!(!df.instructions[1].is_json());
}

#[test]
fn error_directive_problems() {
    let err = parse("# escape=x\nFROM a\n").unwrap_err();
    assert_eq!(err.line, 1);
    assert_eq!(err.column, Some(10));
    assert_eq!(
        err.message,
        "invalid escape token 'x' does not match ` or \\"
    );
    let err = parse("# syntax=a\n# escape=`\n# syntax=b\nFROM a\n").unwrap_err();
    assert_eq!(err.line, 3);
    assert_eq!(err.message, "only one syntax parser directive can be used");
    // An unknown directive name ends the directive block: what follows is a comment.
    let df = parse("# foo=bar\n# escape=`\nFROM a\n").unwrap();
    assert!(df.directives.is_empty());
    assert_eq!(df.escape, '\\');
}

#[test]
fn error_other_messages() {
    let err = parse("").unwrap_err();
    assert_eq!(err.message, "file with no instructions");
    let err = parse("# only\n# comments\n").unwrap_err();
    assert_eq!(
        (err.line, err.message.as_str()),
        (2, "file with no instructions")
    );
    let err = parse("FROM a\nENV\tPATH\n").unwrap_err();
    assert_eq!(
        (err.line, err.message.as_str()),
        (2, "ENV must have two arguments")
    );
    let err = parse("FROM a\nLABEL a=b c\n").unwrap_err();
    assert_eq!(err.line, 2);
    assert_eq!(
        err.message,
        "Syntax error - can't find = in \"c\". Must be of the form: name=value"
    );
}
