//! `${name}` templates with the semantics of Python's `string.Template.safe_substitute`, which
//! Hermeto uses for environment variable values and project file templates.
//!
//! `$$` is an escaped `$`; `$name` and `${name}` (name = ASCII letter or `_`, then letters,
//! digits, `_`) are placeholders; a placeholder without a mapping, and any other `$`, is left
//! exactly as written.

/// The placeholder Hermeto puts where the output directory's path goes.
pub const OUTPUT_DIR_PLACEHOLDER: &str = "${output_dir}";

enum Piece<'a> {
    Text(&'a str),
    /// `$$`.
    Dollar,
    /// A placeholder: its identifier and its literal spelling.
    Placeholder(&'a str, &'a str),
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn pieces(t: &str) -> Vec<Piece<'_>> {
    let bytes = t.as_bytes();
    let mut out = Vec::new();
    let mut text_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        let rest = &bytes[i + 1..];
        let (piece, len) = if rest.first() == Some(&b'$') {
            (Some(Piece::Dollar), 2)
        } else if rest.first() == Some(&b'{') {
            let n = rest[1..].iter().take_while(|&&b| is_ident(b)).count();
            if n > 0 && is_ident_start(rest[1]) && rest.get(1 + n) == Some(&b'}') {
                let id = &t[i + 2..i + 2 + n];
                (Some(Piece::Placeholder(id, &t[i..i + 3 + n])), n + 3)
            } else {
                (None, 1)
            }
        } else {
            let n = rest.iter().take_while(|&&b| is_ident(b)).count();
            if n > 0 && is_ident_start(rest[0]) {
                (
                    Some(Piece::Placeholder(&t[i + 1..i + 1 + n], &t[i..i + 1 + n])),
                    n + 1,
                )
            } else {
                (None, 1)
            }
        };
        match piece {
            Some(p) => {
                if text_start < i {
                    out.push(Piece::Text(&t[text_start..i]));
                }
                out.push(p);
                i += len;
                text_start = i;
            }
            None => i += 1,
        }
    }
    if text_start < bytes.len() {
        out.push(Piece::Text(&t[text_start..]));
    }
    out
}

/// Substitutes every placeholder that `lookup` knows; keeps unknown ones and stray `$` as is,
/// and turns `$$` into `$` (like `safe_substitute`).
pub fn safe_substitute<'m>(template: &str, lookup: impl Fn(&str) -> Option<&'m str>) -> String {
    let mut out = String::with_capacity(template.len());
    for piece in pieces(template) {
        match piece {
            Piece::Text(s) => out.push_str(s),
            Piece::Dollar => out.push('$'),
            Piece::Placeholder(id, literal) => match lookup(id) {
                Some(v) => out.push_str(v),
                None => out.push_str(literal),
            },
        }
    }
    out
}

/// The identifiers of the placeholders in `template`.
pub fn placeholders(template: &str) -> Vec<&str> {
    pieces(template)
        .into_iter()
        .filter_map(|p| match p {
            Piece::Placeholder(id, _) => Some(id),
            _ => None,
        })
        .collect()
}

/// Escapes `s` so that [`safe_substitute`] gives it back unchanged (`$` becomes `$$`).
pub fn escape(s: &str) -> String {
    s.replace('$', "$$")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitution_table() {
        let map = |k: &str| match k {
            "output_dir" => Some("/out"),
            "A" => Some("a"),
            _ => None,
        };
        let cases = [
            ("${output_dir}/deps/pip", "/out/deps/pip"),
            ("$output_dir/x", "/out/x"),
            ("$output_dirx", "$output_dirx"),
            ("${unknown} $unknown", "${unknown} $unknown"),
            ("$$output_dir", "$output_dir"),
            (
                "$ alone, ${ broken, ${1x}, $1",
                "$ alone, ${ broken, ${1x}, $1",
            ),
            ("${A}${A}$A", "aaa"),
            ("trailing $", "trailing $"),
            ("", ""),
            ("ünïcode ${A} ✓", "ünïcode a ✓"),
        ];
        for (t, want) in cases {
            assert_eq!(safe_substitute(t, map), want, "{t:?}");
        }
    }

    #[test]
    fn escape_round_trips() {
        for s in ["$", "$$", "a${output_dir}b", "$x$$y", "plain"] {
            assert_eq!(safe_substitute(&escape(s), |_| Some("NO")), s);
        }
    }

    #[test]
    fn finds_placeholders() {
        assert_eq!(placeholders("$a ${b} $$c ${ d"), vec!["a", "b"]);
    }
}
