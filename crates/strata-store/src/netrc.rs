//! A small `.netrc` reader: credentials for downloads, never logged.
//!
//! Written here rather than taken from a crate: the crates.io netrc parsers are unmaintained or
//! pull in parsing frameworks, while the format is a dozen lines of tokenising.

use std::path::{Path, PathBuf};

/// Login and password for one machine.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The login name.
    pub login: String,
    /// The password (never printed: `Debug` hides it).
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Credentials {{ login: {:?}, password: <hidden> }}",
            self.login
        )
    }
}

/// Parsed `.netrc` contents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Netrc {
    machines: Vec<(String, Credentials)>,
    default: Option<Credentials>,
}

impl Netrc {
    /// Parses netrc text. Unknown tokens are ignored, `macdef` bodies skipped.
    pub fn parse(text: &str) -> Netrc {
        let mut netrc = Netrc::default();
        let mut tokens = Tokens::new(text);
        let mut current: Option<(Option<String>, Credentials)> = None;
        let finish = |entry: Option<(Option<String>, Credentials)>, netrc: &mut Netrc| {
            if let Some((machine, creds)) = entry {
                match machine {
                    Some(m) => netrc.machines.push((m, creds)),
                    None => netrc.default = Some(creds),
                }
            }
        };
        while let Some(token) = tokens.next() {
            match token.as_str() {
                "machine" => {
                    finish(current.take(), &mut netrc);
                    let name = tokens.next().unwrap_or_default();
                    current = Some((Some(name), empty_credentials()));
                }
                "default" => {
                    finish(current.take(), &mut netrc);
                    current = Some((None, empty_credentials()));
                }
                "login" => {
                    let value = tokens.next().unwrap_or_default();
                    if let Some((_, c)) = current.as_mut() {
                        c.login = value;
                    }
                }
                "password" => {
                    let value = tokens.next().unwrap_or_default();
                    if let Some((_, c)) = current.as_mut() {
                        c.password = value;
                    }
                }
                "account" => {
                    tokens.next();
                }
                "macdef" => {
                    tokens.next();
                    tokens.skip_macro_body();
                }
                _ => {}
            }
        }
        finish(current.take(), &mut netrc);
        netrc
    }

    /// Reads `$NETRC`, else `~/.netrc`; a missing file gives empty credentials.
    pub fn load_default() -> Netrc {
        default_path()
            .and_then(|p| Netrc::load(&p).ok())
            .unwrap_or_default()
    }

    /// Reads a netrc file.
    pub fn load(path: &Path) -> std::io::Result<Netrc> {
        Ok(Netrc::parse(&std::fs::read_to_string(path)?))
    }

    /// Credentials for `host`: its own `machine` entry, else `default`.
    pub fn lookup(&self, host: &str) -> Option<&Credentials> {
        self.machines
            .iter()
            .find(|(m, _)| m.eq_ignore_ascii_case(host))
            .map(|(_, c)| c)
            .or(self.default.as_ref())
    }
}

fn empty_credentials() -> Credentials {
    Credentials {
        login: String::new(),
        password: String::new(),
    }
}

fn default_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("NETRC").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".netrc"))
}

struct Tokens<'a> {
    rest: &'a str,
}

impl<'a> Tokens<'a> {
    fn new(text: &'a str) -> Self {
        Tokens { rest: text }
    }

    /// Skips a `macdef` body: everything up to the next empty line.
    fn skip_macro_body(&mut self) {
        match self.rest.find("\n\n") {
            Some(i) => self.rest = &self.rest[i + 2..],
            None => self.rest = "",
        }
    }
}

impl Iterator for Tokens<'_> {
    type Item = String;
    fn next(&mut self) -> Option<String> {
        loop {
            self.rest = self.rest.trim_start();
            if self.rest.starts_with('#') {
                let end = self.rest.find('\n').unwrap_or(self.rest.len());
                self.rest = &self.rest[end..];
                continue;
            }
            break;
        }
        if self.rest.is_empty() {
            return None;
        }
        if let Some(quoted) = self.rest.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            let token = quoted[..end].to_string();
            self.rest = quoted.get(end + 1..).unwrap_or("");
            return Some(token);
        }
        let end = self
            .rest
            .find(char::is_whitespace)
            .unwrap_or(self.rest.len());
        let token = self.rest[..end].to_string();
        self.rest = &self.rest[end..];
        Some(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machines_default_comments_and_macros() {
        let text = "# comment\nmachine 127.0.0.1 login alice password s3cret\n\
                    macdef init\ncd /pub\nget x\n\n\
                    machine other.invalid\n  login bob\n  password \"with space\"\n\
                    default login anon password guest\n";
        let n = Netrc::parse(text);
        let a = n.lookup("127.0.0.1").unwrap();
        assert_eq!((a.login.as_str(), a.password.as_str()), ("alice", "s3cret"));
        let b = n.lookup("OTHER.invalid").unwrap();
        assert_eq!(
            (b.login.as_str(), b.password.as_str()),
            ("bob", "with space")
        );
        let d = n.lookup("elsewhere").unwrap();
        assert_eq!(d.login, "anon");
        assert!(!format!("{a:?}").contains("s3cret"));
    }

    #[test]
    fn empty_and_no_default() {
        let n = Netrc::parse("machine h login u password p");
        assert!(n.lookup("x").is_none());
        assert!(Netrc::parse("").lookup("h").is_none());
    }
}
