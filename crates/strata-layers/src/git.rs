//! The git edge: resolving revisions (with clear advice for shallow clones and first
//! commits), the changed paths between two trees, and files at a revision. Runs `git`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::affected::{Change, ChangeKind};

/// A git problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GitError {
    /// `git` could not run or failed unexpectedly.
    #[error("git {args}: {message}")]
    Failed {
        /// The arguments.
        args: String,
        /// stderr.
        message: String,
    },
    /// A revision does not exist.
    #[error("{0}")]
    BadRevision(String),
}

/// What `--base` resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// A commit.
    Commit(String),
    /// Nothing before: the first commit, or an all-zero SHA (a new branch on GitHub).
    /// Everything in the head tree counts as added.
    Empty(String),
}

/// A git work tree (or any directory inside one).
#[derive(Debug, Clone)]
pub struct Repo {
    /// The directory git runs in; paths are relative to it.
    pub dir: PathBuf,
}

impl Repo {
    /// A repository at `dir`.
    pub fn new(dir: &Path) -> Repo {
        Repo {
            dir: dir.to_path_buf(),
        }
    }

    fn run(&self, args: &[&str]) -> Result<(bool, Vec<u8>, String), GitError> {
        let out = Command::new("git")
            .arg("-C")
            .arg(&self.dir)
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .output()
            .map_err(|e| GitError::Failed {
                args: args.join(" "),
                message: format!("cannot run git: {e} (install git)"),
            })?;
        Ok((
            out.status.success(),
            out.stdout,
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }

    fn ok(&self, args: &[&str]) -> Result<String, GitError> {
        let (ok, out, err) = self.run(args)?;
        if !ok {
            return Err(GitError::Failed {
                args: args.join(" "),
                message: err,
            });
        }
        Ok(String::from_utf8_lossy(&out).trim().to_string())
    }

    /// Whether this is inside a git work tree.
    pub fn is_repo(&self) -> bool {
        matches!(self.run(&["rev-parse", "--git-dir"]), Ok((true, _, _)))
    }

    /// The commit a revision names, or `None`.
    pub fn resolve(&self, rev: &str) -> Result<Option<String>, GitError> {
        let spec = format!("{rev}^{{commit}}");
        let (ok, out, _) = self.run(&[
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &spec,
        ])?;
        Ok(ok.then(|| String::from_utf8_lossy(&out).trim().to_string()))
    }

    /// Whether the repository is a shallow clone.
    pub fn is_shallow(&self) -> Result<bool, GitError> {
        Ok(self.ok(&["rev-parse", "--is-shallow-repository"])? == "true")
    }

    /// The head commit (`--head`, default `HEAD`).
    pub fn resolve_head(&self, rev: &str) -> Result<String, GitError> {
        if !self.is_repo() {
            return Err(GitError::BadRevision(format!(
                "{} is not in a git repository: strata affected compares git revisions",
                self.dir.display()
            )));
        }
        self.resolve(rev)?.ok_or_else(|| {
            GitError::BadRevision(format!(
                "--head {rev}: no such commit{}",
                if rev == "HEAD" {
                    " (the repository has no commits yet)"
                } else {
                    ""
                }
            ))
        })
    }

    /// Resolves `--base`, saying how to fix a shallow clone when the commit is missing.
    pub fn resolve_base(&self, rev: &str, head: &str) -> Result<Base, GitError> {
        if !rev.is_empty() && rev.chars().all(|c| c == '0') {
            return Ok(Base::Empty(format!(
                "--base {rev} is the all-zero SHA (a new branch): every image is new"
            )));
        }
        if let Some(c) = self.resolve(rev)? {
            return self.merge_base(rev, &c, head);
        }
        let shallow = self.is_shallow()?;
        // `X~N` / `X^`: a first commit has no parent.
        let (anchor, back) = split_ancestry(rev);
        if let (Some(anchor_commit), Some(n)) = (self.resolve(anchor)?, back) {
            let have: usize = self
                .ok(&["rev-list", "--count", &anchor_commit])?
                .parse()
                .unwrap_or(0);
            if !shallow {
                return Ok(Base::Empty(format!(
                    "--base {rev}: {anchor} has only {have} commit(s) of history, so there is nothing before it: every image is new"
                )));
            }
            let need = n + 1;
            return Err(GitError::BadRevision(format!(
                "--base {rev} is not in this shallow clone: {anchor} has {have} commit(s) of history here and {rev} needs {need}. \
                 Fetch {} more: `git fetch --deepen={}` (or everything: `git fetch --unshallow`); \
                 with actions/checkout set `fetch-depth: {need}` (or 0)",
                need.saturating_sub(have),
                need.saturating_sub(have).max(1)
            )));
        }
        if shallow {
            let have = self
                .ok(&["rev-list", "--count", head])
                .unwrap_or_else(|_| "?".into());
            return Err(GitError::BadRevision(format!(
                "--base {rev} is not in this shallow clone ({have} commit(s) of history from HEAD). \
                 Fetch it: `git fetch --depth=1 origin {rev}`, deepen with `git fetch --deepen=N` until it is there, \
                 or `git fetch --unshallow`; with actions/checkout set `fetch-depth: 0`"
            )));
        }
        Err(GitError::BadRevision(format!(
            "--base {rev}: no such commit (is it fetched? try `git fetch origin {rev}`)"
        )))
    }

    /// The merge base of `base` (the commit `rev` names) and `head`: what a pull request
    /// changed is what its head changed since it forked from the base branch, not the
    /// difference between the two tips (which would count the base branch's own later
    /// commits too). The base itself when it is an ancestor of head. Unrelated histories
    /// compare the two commits directly; a merge base cut off by a shallow clone is an
    /// error saying how to fetch more.
    pub fn merge_base(&self, rev: &str, base: &str, head: &str) -> Result<Base, GitError> {
        let (ok, out, err) = self.run(&["merge-base", base, head])?;
        if ok {
            let mb = String::from_utf8_lossy(&out).trim().to_string();
            if !mb.is_empty() {
                return Ok(Base::Commit(mb));
            }
        }
        if !err.is_empty() {
            return Err(GitError::Failed {
                args: format!("merge-base {base} {head}"),
                message: err,
            });
        }
        if self.is_shallow()? {
            return Err(GitError::BadRevision(format!(
                "--base {rev}: its merge base with the head is not in this shallow clone. \
                 Deepen both until it is (`git fetch --deepen=N`, or `git fetch --unshallow`); \
                 with actions/checkout set `fetch-depth: 0`"
            )));
        }
        Ok(Base::Commit(base.to_string()))
    }

    /// Paths changed between `base` and `head`, relative to [`Repo::dir`] (paths outside it
    /// are left out). Renames are detected.
    pub fn changes(&self, base: &Base, head: &str) -> Result<Vec<Change>, GitError> {
        let empty;
        let from = match base {
            Base::Commit(c) => c.as_str(),
            Base::Empty(_) => {
                empty = self.empty_tree()?;
                empty.as_str()
            }
        };
        let (ok, out, err) = self.run(&[
            "diff",
            "--relative",
            "--name-status",
            "-z",
            "-M",
            "--no-ext-diff",
            "--no-textconv",
            from,
            head,
        ])?;
        if !ok {
            return Err(GitError::Failed {
                args: format!("diff {from} {head}"),
                message: err,
            });
        }
        Ok(parse_name_status(&out))
    }

    fn empty_tree(&self) -> Result<String, GitError> {
        let out = Command::new("git")
            .arg("-C")
            .arg(&self.dir)
            .args(["hash-object", "-t", "tree", "--stdin"])
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| GitError::Failed {
                args: "hash-object".into(),
                message: e.to_string(),
            })?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// A file's content at a revision (path relative to [`Repo::dir`]), or `None`.
    pub fn show(&self, rev: &str, path: &str) -> Option<Vec<u8>> {
        let spec = format!("{rev}:./{path}");
        match self.run(&["cat-file", "blob", &spec]) {
            Ok((true, out, _)) => Some(out),
            _ => None,
        }
    }

    /// The current branch name (or `None` when detached).
    pub fn branch(&self) -> Option<String> {
        self.ok(&["symbolic-ref", "--quiet", "--short", "HEAD"])
            .ok()
    }
}

/// Splits `X~N`, `X^`, `X^^` into (`X`, N).
fn split_ancestry(rev: &str) -> (&str, Option<usize>) {
    if let Some((a, n)) = rev.rsplit_once('~') {
        let n = if n.is_empty() {
            Some(1)
        } else {
            n.parse().ok()
        };
        if let Some(n) = n {
            let (a2, m) = split_ancestry(a);
            return (a2, Some(n + m.unwrap_or(0)));
        }
    }
    let trimmed = rev.trim_end_matches('^');
    if trimmed.len() < rev.len() {
        let n = rev.len() - trimmed.len();
        let (a2, m) = split_ancestry(trimmed);
        return (a2, Some(n + m.unwrap_or(0)));
    }
    (rev, None)
}

/// Parses `git diff --name-status -z` output.
pub fn parse_name_status(out: &[u8]) -> Vec<Change> {
    let fields: Vec<String> = out
        .split(|b| *b == 0)
        .map(|f| String::from_utf8_lossy(f).to_string())
        .collect();
    let mut changes = Vec::new();
    let mut i = 0;
    while i < fields.len() {
        let status = &fields[i];
        if status.is_empty() {
            i += 1;
            continue;
        }
        let code = status.as_bytes()[0];
        if code == b'R' || code == b'C' {
            if i + 2 >= fields.len() {
                break;
            }
            let (from, to) = (fields[i + 1].clone(), fields[i + 2].clone());
            changes.push(Change {
                path: to,
                kind: if code == b'R' {
                    ChangeKind::Renamed(from)
                } else {
                    ChangeKind::Added
                },
            });
            i += 3;
            continue;
        }
        if i + 1 >= fields.len() {
            break;
        }
        let path = fields[i + 1].clone();
        changes.push(Change {
            path,
            kind: match code {
                b'A' => ChangeKind::Added,
                b'D' => ChangeKind::Deleted,
                _ => ChangeKind::Modified,
            },
        });
        i += 2;
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ancestry() {
        assert_eq!(split_ancestry("HEAD~3"), ("HEAD", Some(3)));
        assert_eq!(split_ancestry("HEAD^"), ("HEAD", Some(1)));
        assert_eq!(split_ancestry("main~2^"), ("main", Some(3)));
        assert_eq!(split_ancestry("abc123"), ("abc123", None));
    }

    #[test]
    fn name_status() {
        let out = b"M\0a.txt\0R087\0old/x\0new/x\0D\0gone\0A\0new file\0";
        let c = parse_name_status(out);
        assert_eq!(c.len(), 4);
        assert_eq!(c[1].kind, ChangeKind::Renamed("old/x".into()));
        assert_eq!(c[1].path, "new/x");
        assert_eq!(c[2].kind, ChangeKind::Deleted);
        assert_eq!(c[3].path, "new file");
    }
}
