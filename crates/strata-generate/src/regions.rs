//! Hand-written regions that survive regeneration:
//!
//! ```text
//! # strata:begin custom image
//! COPY config/ /etc/app/
//! # strata:end custom image
//! ```
//!
//! Regeneration takes the body of each named region from the existing file and puts it into
//! the region of the same name in the new output. Pure.

use std::collections::BTreeMap;

/// Opens a region: `# strata:begin custom <name>`.
pub const BEGIN: &str = "# strata:begin custom";
/// Closes a region: `# strata:end custom <name>`.
pub const END: &str = "# strata:end custom";

/// A malformed region, or hand-written text that would be lost.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegionError {
    /// A begin marker inside another region, an end without a begin, or names that differ.
    #[error("line {line}: {message}")]
    Malformed {
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A region with text in the existing file has no place in the new output.
    #[error(
        "the custom region `{0}` has hand-written text but the new output has no such region; move the text to one of: base, stages, image"
    )]
    Orphaned(String),
}

/// The regions of a file: name → body (the lines between the markers, each ending in `\n`).
pub fn extract(text: &str) -> Result<BTreeMap<String, String>, RegionError> {
    let mut out = BTreeMap::new();
    let mut open: Option<(String, usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let trimmed = line.trim();
        if let Some(name) = marker(trimmed, BEGIN) {
            if let Some((other, at, _)) = &open {
                return Err(RegionError::Malformed {
                    line: n,
                    message: format!(
                        "region `{name}` begins inside region `{other}` (opened on line {at})"
                    ),
                });
            }
            if out.contains_key(&name) {
                return Err(RegionError::Malformed {
                    line: n,
                    message: format!("region `{name}` appears twice"),
                });
            }
            open = Some((name, n, String::new()));
        } else if let Some(name) = marker(trimmed, END) {
            match open.take() {
                Some((begun, _, body)) if begun == name => {
                    out.insert(name, body);
                }
                Some((begun, at, _)) => {
                    return Err(RegionError::Malformed {
                        line: n,
                        message: format!(
                            "`{END} {name}` closes region `{begun}` (opened on line {at})"
                        ),
                    });
                }
                None => {
                    return Err(RegionError::Malformed {
                        line: n,
                        message: format!("`{END} {name}` without a matching begin"),
                    });
                }
            }
        } else if let Some((_, _, body)) = &mut open {
            body.push_str(line);
            body.push('\n');
        }
    }
    match open {
        Some((name, at, _)) => Err(RegionError::Malformed {
            line: at,
            message: format!("region `{name}` is never closed (`{END} {name}`)"),
        }),
        None => Ok(out),
    }
}

fn marker(line: &str, prefix: &str) -> Option<String> {
    let rest = line.strip_prefix(prefix)?;
    let name = rest.trim();
    (rest.starts_with(char::is_whitespace)
        && !name.is_empty()
        && !name.contains(char::is_whitespace))
    .then(|| name.to_owned())
}

/// Puts `bodies` into the same-named (empty) regions of `rendered`. Fails rather than drop a
/// non-blank body that has no region in `rendered`.
pub fn merge(rendered: &str, bodies: &BTreeMap<String, String>) -> Result<String, RegionError> {
    let targets = extract(rendered)?;
    for (name, body) in bodies {
        if !targets.contains_key(name) && !body.trim().is_empty() {
            return Err(RegionError::Orphaned(name.clone()));
        }
    }
    let mut out = String::with_capacity(rendered.len());
    for line in rendered.lines() {
        out.push_str(line);
        out.push('\n');
        if let Some(name) = marker(line.trim(), BEGIN)
            && let Some(body) = bodies.get(&name)
        {
            out.push_str(body);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extract_and_merge() {
        let old = "x\n# strata:begin custom a\nkeep me\n  and me\n# strata:end custom a\n# strata:begin custom b\n# strata:end custom b\n";
        let regions = extract(old).unwrap();
        assert_eq!(regions["a"], "keep me\n  and me\n");
        assert_eq!(regions["b"], "");
        let new = "y\n# strata:begin custom a\n# strata:end custom a\n";
        assert_eq!(
            merge(new, &regions).unwrap(),
            "y\n# strata:begin custom a\nkeep me\n  and me\n# strata:end custom a\n"
        );
        let gone = "y\n";
        assert_eq!(
            merge(
                gone,
                &extract("# strata:begin custom b\n\n# strata:end custom b\n").unwrap()
            )
            .unwrap(),
            "y\n"
        );
        assert_eq!(
            merge(gone, &regions).unwrap_err(),
            RegionError::Orphaned("a".into())
        );
    }

    #[test]
    fn malformed_regions() {
        let cases = [
            (
                "# strata:begin custom a\n# strata:begin custom b\n",
                "line 2: region `b` begins inside region `a`",
            ),
            (
                "# strata:end custom a\n",
                "line 1: `# strata:end custom a` without a matching begin",
            ),
            (
                "# strata:begin custom a\n# strata:end custom b\n",
                "line 2: `# strata:end custom b` closes region `a`",
            ),
            (
                "\n# strata:begin custom a\n",
                "line 2: region `a` is never closed",
            ),
            (
                "# strata:begin custom a\n# strata:end custom a\n# strata:begin custom a\n# strata:end custom a\n",
                "line 3: region `a` appears twice",
            ),
        ];
        for (text, want) in cases {
            let err = extract(text).unwrap_err().to_string();
            assert!(err.starts_with(want), "{err}");
        }
        assert!(extract("# strata:begin customer\n").unwrap().is_empty());
    }
}
