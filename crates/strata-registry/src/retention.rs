//! Retention decisions: which tags of a repository a policy deletes, and why. Pure.
//!
//! Semantics:
//! - A tag matching a `protect` glob is kept, and so is every digest it points to.
//! - Otherwise the *first* `keep` rule whose `tags` glob matches decides:
//!   - `newest = "all"` keeps every tag it matches;
//!   - `newest = N` keeps the N newest (by image creation time) of the tags this rule decides;
//!   - `max-age = "7d"` keeps tags whose image is younger than that;
//!   - with both `newest` and `max-age`, a tag is kept when either keeps it.
//! - A tag that no rule matches is kept.
//! - A tag whose creation time is unknown is kept (age cannot be proven).
//! - A registry deletes by digest, taking every tag of that digest with it, so a digest is
//!   deleted only when *every* tag pointing to it is to be deleted; otherwise the tags that
//!   would have gone are kept, with the reason naming the tag that holds the digest.
//!
//! Key tags (`sk-<24 hex>`, see [`crate::keytag`]) are strata's bookkeeping, pushed by
//! `strata build --push` next to an image's tags so that later builds can reuse it:
//! - On a digest that also carries other tags, a key tag gets no verdict of its own and never
//!   holds the digest: no `keep` rule or `protect` glob is asked about it. It goes with its
//!   digest when every other tag of that digest goes, and stays when the digest stays.
//! - A digest that carries only key tags (its tags moved to newer images) is kept, with a
//!   reason saying so: it is what lets a build of those inputs be reused. Only rules written
//!   for key tags decide otherwise: a `protect` glob matching the key tag keeps it, and
//!   otherwise the first `keep` rule whose glob *starts with `sk-`* (e.g.
//!   `{ tags = "sk-*", max-age = "30d" }`) and matches decides it like any other tag. A
//!   catch-all such as `{ tags = "*", newest = 5 }` is written for the tags people push and
//!   does not decide key tags; a protect glob is honoured whatever its form, since keeping
//!   more is never a surprise.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::keytag::{KEY_TAG_PREFIX, is_key_tag};

/// How many of a rule's tags to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Newest {
    /// Every tag the rule matches.
    All,
    /// The N newest.
    Count(usize),
}

impl<'de> Deserialize<'de> for Newest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(i64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) if n >= 0 => Ok(Newest::Count(n as usize)),
            Raw::N(n) => Err(serde::de::Error::custom(format!(
                "newest = {n}: must be a count >= 0 or \"all\""
            ))),
            Raw::S(s) if s == "all" => Ok(Newest::All),
            Raw::S(s) => Err(serde::de::Error::custom(format!(
                "newest = {s:?}: must be a count or \"all\""
            ))),
        }
    }
}

/// A duration written like `7d`, `12h`, `30m`, `2w`, `1d12h` or `90s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Age {
    /// Seconds.
    pub secs: u64,
}

impl Age {
    /// Parses `7d`, `12h`, `30m`, `45s`, `2w`, or a sequence such as `1d12h`.
    pub fn parse(text: &str) -> Result<Age, String> {
        let t = text.trim();
        if t.is_empty() {
            return Err("empty duration (write e.g. \"7d\", \"12h\", \"2w\")".into());
        }
        let mut secs = 0u64;
        let mut num = String::new();
        for c in t.chars() {
            if c.is_ascii_digit() {
                num.push(c);
                continue;
            }
            let unit = match c {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86400,
                'w' => 7 * 86400,
                _ => {
                    return Err(format!(
                        "{text:?}: unknown unit {c:?} (use s, m, h, d or w, e.g. \"7d\")"
                    ));
                }
            };
            let n: u64 = num
                .parse()
                .map_err(|_| format!("{text:?}: a number must come before {c:?}"))?;
            secs += n * unit;
            num.clear();
        }
        if !num.is_empty() {
            return Err(format!(
                "{text:?}: the number {num} has no unit (use s, m, h, d or w, e.g. \"7d\")"
            ));
        }
        Ok(Age { secs })
    }
}

impl fmt::Display for Age {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.secs;
        if s.is_multiple_of(604800) && s > 0 {
            write!(f, "{}w", s / 604800)
        } else if s.is_multiple_of(86400) && s > 0 {
            write!(f, "{}d", s / 86400)
        } else if s.is_multiple_of(3600) && s > 0 {
            write!(f, "{}h", s / 3600)
        } else if s.is_multiple_of(60) && s > 0 {
            write!(f, "{}m", s / 60)
        } else {
            write!(f, "{s}s")
        }
    }
}

impl<'de> Deserialize<'de> for Age {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Age::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A tag glob: `*` matches any run of characters, `?` one character.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Glob(pub String);

impl Glob {
    /// Compiles (validates) a glob.
    pub fn new(pattern: &str) -> Result<Glob, String> {
        if pattern.is_empty() {
            return Err("empty tag glob".into());
        }
        if let Some(c) = pattern
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "_.-*?".contains(*c)))
        {
            return Err(format!(
                "tag glob {pattern:?}: {c:?} cannot appear in a tag (tags use A-Z a-z 0-9 _ . -; globs add * and ?)"
            ));
        }
        Ok(Glob(pattern.to_string()))
    }

    /// Whether `tag` matches.
    pub fn matches(&self, tag: &str) -> bool {
        fn m(p: &[u8], t: &[u8]) -> bool {
            match p.first() {
                None => t.is_empty(),
                Some(b'*') => (0..=t.len()).any(|i| m(&p[1..], &t[i..])),
                Some(b'?') => !t.is_empty() && m(&p[1..], &t[1..]),
                Some(c) => t.first() == Some(c) && m(&p[1..], &t[1..]),
            }
        }
        m(self.0.as_bytes(), tag.as_bytes())
    }
}

impl<'de> Deserialize<'de> for Glob {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Glob::new(&s).map_err(serde::de::Error::custom)
    }
}

/// One `keep` rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeepRule {
    /// Which tags the rule decides.
    pub tags: Glob,
    /// Keep the newest N (or all).
    pub newest: Option<Newest>,
    /// Keep tags younger than this.
    pub max_age: Option<Age>,
}

impl<'de> Deserialize<'de> for KeepRule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            tags: Glob,
            newest: Option<Newest>,
            #[serde(rename = "max-age")]
            max_age: Option<Age>,
        }
        let r = Raw::deserialize(d)?;
        if r.newest.is_none() && r.max_age.is_none() {
            return Err(serde::de::Error::custom(format!(
                "keep rule for tags {:?} says nothing to keep: add newest = N | \"all\" or max-age = \"7d\"",
                r.tags.0
            )));
        }
        Ok(KeepRule {
            tags: r.tags,
            newest: r.newest,
            max_age: r.max_age,
        })
    }
}

impl fmt::Display for KeepRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{ tags = {:?}", self.tags.0)?;
        match self.newest {
            Some(Newest::All) => write!(f, ", newest = \"all\"")?,
            Some(Newest::Count(n)) => write!(f, ", newest = {n}")?,
            None => {}
        }
        if let Some(a) = self.max_age {
            write!(f, ", max-age = \"{a}\"")?;
        }
        write!(f, " }}")
    }
}

/// A retention policy (`[retention]` in `strata.toml`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Rules, first match decides.
    #[serde(default)]
    pub keep: Vec<KeepRule>,
    /// Tags never deleted, nor any digest they point to.
    #[serde(default)]
    pub protect: Vec<Glob>,
}

/// What the registry says about one tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagInfo {
    /// The tag.
    pub tag: String,
    /// The manifest digest it points to.
    pub digest: String,
    /// Image creation time, seconds since the epoch, if known.
    pub created: Option<i64>,
}

/// What happens to one tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// The tag.
    pub tag: String,
    /// Its digest.
    pub digest: String,
    /// Creation time (epoch seconds), if known.
    pub created: Option<i64>,
    /// Whether the digest (and so the tag) is deleted.
    pub delete: bool,
    /// Why.
    pub reason: String,
}

/// Decides, for every tag, whether it goes. `now` is epoch seconds. The result is in the
/// order of `tags`. Deleting is by digest, and key tags follow their digest: see the module
/// docs.
pub fn decide(policy: &Policy, tags: &[TagInfo], now: i64) -> Vec<Decision> {
    // Digests that carry at least one tag other than key tags: their key tags follow them.
    let mut tagged_by_people: BTreeMap<&str, bool> = BTreeMap::new();
    for t in tags {
        *tagged_by_people.entry(t.digest.as_str()).or_default() |= !is_key_tag(&t.tag);
    }
    let follows = |t: &TagInfo| is_key_tag(&t.tag) && tagged_by_people[t.digest.as_str()];
    // First pass: per-tag verdict ignoring digest sharing (`None`: follows its digest).
    let mut verdict: Vec<Option<(bool, String)>> = vec![None; tags.len()];
    let mut by_rule: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, t) in tags.iter().enumerate() {
        if follows(t) {
            continue;
        }
        if let Some(p) = policy.protect.iter().find(|g| g.matches(&t.tag)) {
            verdict[i] = Some((false, format!("protected by {:?}", p.0)));
            continue;
        }
        let key_only = is_key_tag(&t.tag);
        let rule = policy.keep.iter().position(|r| {
            r.tags.matches(&t.tag) && (!key_only || r.tags.0.starts_with(KEY_TAG_PREFIX))
        });
        match rule {
            None if key_only => {
                verdict[i] = Some((
                    false,
                    "key tag, and only key tags point to this digest (its other tags moved on): \
                     kept for reuse by later builds; a keep rule for \"sk-*\" decides these"
                        .into(),
                ))
            }
            None => verdict[i] = Some((false, "no keep rule matches: kept".into())),
            Some(r) => by_rule.entry(r).or_default().push(i),
        }
    }
    for (r, mut members) in by_rule {
        let rule = &policy.keep[r];
        // Newest first; unknown creation times last; ties broken by tag for stability.
        members.sort_by(|&a, &b| {
            tags[b]
                .created
                .unwrap_or(i64::MIN)
                .cmp(&tags[a].created.unwrap_or(i64::MIN))
                .then_with(|| tags[a].tag.cmp(&tags[b].tag))
        });
        for (rank, &i) in members.iter().enumerate() {
            let t = &tags[i];
            let Some(created) = t.created else {
                verdict[i] = Some((false, format!("rule {rule}: creation time unknown: kept")));
                continue;
            };
            let age = now.saturating_sub(created).max(0) as u64;
            let by_newest = match rule.newest {
                Some(Newest::All) => Some(true),
                Some(Newest::Count(n)) => Some(rank < n),
                None => None,
            };
            let by_age = rule.max_age.map(|m| age <= m.secs);
            let keep = by_newest.unwrap_or(false) || by_age.unwrap_or(false);
            let age_text = Age { secs: age }.to_string();
            let reason = match (keep, rule.newest, rule.max_age) {
                (true, Some(Newest::All), _) => format!("rule {rule}: keeps all"),
                (true, _, _) if by_newest == Some(true) => format!(
                    "rule {rule}: number {} of {} by creation time",
                    rank + 1,
                    members.len()
                ),
                (true, _, Some(m)) => format!("rule {rule}: {age_text} old, within {m}"),
                (false, Some(Newest::Count(n)), Some(m)) => format!(
                    "rule {rule}: number {} of {} (keeps {n}) and {age_text} old (older than {m})",
                    rank + 1,
                    members.len()
                ),
                (false, Some(Newest::Count(n)), None) => format!(
                    "rule {rule}: number {} of {} by creation time, keeps the newest {n}",
                    rank + 1,
                    members.len()
                ),
                (false, None, Some(m)) => {
                    format!("rule {rule}: {age_text} old, older than {m}")
                }
                _ => format!("rule {rule}"),
            };
            verdict[i] = Some((!keep, reason));
        }
    }
    // Second pass: a digest goes only if every tag that has a verdict goes. Every digest has
    // one: either a tag other than a key tag, or (carrying only key tags) its key tags.
    let mut holders: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, t) in tags.iter().enumerate() {
        if verdict[i].is_some() {
            holders.entry(t.digest.as_str()).or_default().push(i);
        }
    }
    let stays = |digest: &str| {
        holders[digest]
            .iter()
            .copied()
            .find(|&k| verdict[k].as_ref().is_some_and(|v| !v.0))
    };
    let mut out = Vec::with_capacity(tags.len());
    for (i, t) in tags.iter().enumerate() {
        let (delete, reason) = match &verdict[i] {
            Some((true, reason)) => match stays(&t.digest) {
                Some(k) => (
                    false,
                    format!(
                        "{reason}; but kept: its digest is also tagged {:?}, which stays ({})",
                        tags[k].tag,
                        verdict[k].as_ref().expect("a holder").1
                    ),
                ),
                None => (true, reason.clone()),
            },
            Some((false, reason)) => (false, reason.clone()),
            None => match stays(&t.digest) {
                Some(k) => (
                    false,
                    format!(
                        "key tag: stays with its digest, which {:?} keeps",
                        tags[k].tag
                    ),
                ),
                None => (
                    true,
                    format!(
                        "key tag: goes with its digest (every other tag of it goes: {})",
                        holders[t.digest.as_str()]
                            .iter()
                            .map(|&k| format!("{:?}", tags[k].tag))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ),
            },
        };
        out.push(Decision {
            tag: t.tag.clone(),
            digest: t.digest.clone(),
            created: t.created,
            delete,
            reason,
        });
    }
    out
}

/// A fresh look before deleting: of the digests `decisions` delete, those still safe to
/// delete given `current` (tag, digest) pairs read again from the registry just before, and
/// the digests spared, each with the tag that now holds it. A tag pushed or moved onto a
/// doomed digest since the decisions were made spares it, so a concurrent push is never lost.
pub fn recheck(
    decisions: &[Decision],
    current: &[(String, String)],
) -> (std::collections::BTreeSet<String>, Vec<(String, String)>) {
    let mut doomed: std::collections::BTreeSet<String> = decisions
        .iter()
        .filter(|d| d.delete)
        .map(|d| d.digest.clone())
        .collect();
    let planned: std::collections::BTreeSet<(&str, &str)> = decisions
        .iter()
        .filter(|d| d.delete)
        .map(|d| (d.tag.as_str(), d.digest.as_str()))
        .collect();
    let mut spared = Vec::new();
    for (tag, digest) in current {
        if !planned.contains(&(tag.as_str(), digest.as_str())) && doomed.remove(digest) {
            spared.push((digest.clone(), tag.clone()));
        }
    }
    (doomed, spared)
}

/// Keeps the manifests that kept indexes (multi-arch images) list. A registry deletes a
/// manifest an index still names, which breaks that index for every platform, so a decision
/// to delete a digest that a kept index reaches (directly or through nested indexes) is
/// turned into a keep naming the index's tag. `children` maps an index digest to the
/// digests it lists; a digest absent from it lists none.
pub fn hold_index_children(decisions: &mut [Decision], children: &BTreeMap<String, Vec<String>>) {
    // Every digest reachable from a kept index, with the kept tag whose index reaches it.
    let mut held: BTreeMap<String, String> = BTreeMap::new();
    let mut stack: Vec<(String, String)> = decisions
        .iter()
        .filter(|d| !d.delete)
        .map(|d| (d.digest.clone(), d.tag.clone()))
        .collect();
    while let Some((digest, tag)) = stack.pop() {
        for child in children.get(&digest).into_iter().flatten() {
            if !held.contains_key(child) {
                held.insert(child.clone(), tag.clone());
                stack.push((child.clone(), tag.clone()));
            }
        }
    }
    for d in decisions.iter_mut().filter(|d| d.delete) {
        if let Some(tag) = held.get(&d.digest) {
            d.delete = false;
            d.reason = format!(
                "{}; but kept: the index {tag:?} keeps lists this manifest",
                d.reason
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86400;
    const NOW: i64 = 1_000 * DAY;

    fn policy(toml_like: &[(&str, Option<Newest>, Option<&str>)], protect: &[&str]) -> Policy {
        Policy {
            keep: toml_like
                .iter()
                .map(|(g, n, a)| KeepRule {
                    tags: Glob::new(g).unwrap(),
                    newest: *n,
                    max_age: a.map(|a| Age::parse(a).unwrap()),
                })
                .collect(),
            protect: protect.iter().map(|p| Glob::new(p).unwrap()).collect(),
        }
    }

    #[test]
    fn manifests_a_kept_index_lists_are_kept() {
        // `latest` (kept, protected) is an index over `d-amd` and `d-arm`; the per-platform
        // tags pointing at those manifests would go, and so would `old` (no index lists it).
        // `nested` is an index listed by the `latest` index, listing `d-nested`.
        let p = policy(&[("*", Some(Newest::Count(0)), None)], &["latest"]);
        let tags = [
            t("latest", "d-index", Some(1)),
            t("app-amd64", "d-amd", Some(2)),
            t("app-arm64", "d-arm", Some(2)),
            t("inner", "d-nested-leaf", Some(2)),
            t("old", "d-old", Some(3)),
        ];
        let mut decisions = decide(&p, &tags, NOW);
        assert!(decisions[1].delete && decisions[2].delete && decisions[3].delete);
        let children = BTreeMap::from([
            (
                "d-index".to_string(),
                vec![
                    "d-amd".to_string(),
                    "d-arm".to_string(),
                    "d-nested".to_string(),
                ],
            ),
            ("d-nested".to_string(), vec!["d-nested-leaf".to_string()]),
        ]);
        hold_index_children(&mut decisions, &children);
        let kept: Vec<(&str, bool)> = decisions
            .iter()
            .map(|d| (d.tag.as_str(), d.delete))
            .collect();
        assert_eq!(
            kept,
            [
                ("latest", false),
                ("app-amd64", false),
                ("app-arm64", false),
                ("inner", false),
                ("old", true)
            ]
        );
        assert!(
            decisions[1]
                .reason
                .contains("the index \"latest\" keeps lists this manifest"),
            "{}",
            decisions[1].reason
        );
        // An index that goes holds nothing.
        let mut decisions = decide(
            &policy(&[("*", Some(Newest::Count(0)), None)], &[]),
            &tags,
            NOW,
        );
        hold_index_children(&mut decisions, &children);
        assert!(decisions.iter().all(|d| d.delete));
    }

    fn t(tag: &str, digest: &str, days_ago: Option<i64>) -> TagInfo {
        TagInfo {
            tag: tag.into(),
            digest: digest.into(),
            created: days_ago.map(|d| NOW - d * DAY),
        }
    }

    fn deleted(p: &Policy, tags: &[TagInfo]) -> Vec<String> {
        decide(p, tags, NOW)
            .into_iter()
            .filter(|d| d.delete)
            .map(|d| d.tag)
            .collect()
    }

    #[test]
    fn glob_table() {
        for (g, tag, want) in [
            ("base-*", "base-abc", true),
            ("base-*", "base-", true),
            ("base-*", "xbase-a", false),
            ("*-stable", "tooling-stable", true),
            ("*-stable", "stable", false),
            ("latest", "latest", true),
            ("latest", "latest2", false),
            ("pr-?-*", "pr-1-abc", true),
            ("pr-?-*", "pr-12-abc", false),
            ("*", "anything", true),
        ] {
            assert_eq!(Glob::new(g).unwrap().matches(tag), want, "{g} vs {tag}");
        }
        assert!(Glob::new("a/b").is_err());
        assert!(Glob::new("").is_err());
    }

    #[test]
    fn age_table() {
        for (text, secs) in [
            ("7d", 7 * 86400),
            ("12h", 12 * 3600),
            ("30m", 1800),
            ("2w", 14 * 86400),
            ("1d12h", 36 * 3600),
            ("90s", 90),
        ] {
            assert_eq!(Age::parse(text).unwrap().secs, secs, "{text}");
        }
        for bad in ["", "7", "d", "7y", "-1d"] {
            assert!(Age::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Age::parse("14d").unwrap().to_string(), "2w");
    }

    #[test]
    fn decision_table() {
        let issue = policy(
            &[
                ("base-*", Some(Newest::All), None),
                ("tooling-*", Some(Newest::Count(3)), None),
                ("pr-*", None, Some("7d")),
                ("main-*", Some(Newest::Count(10)), None),
            ],
            &["*-stable", "latest"],
        );
        struct Case {
            name: &'static str,
            tags: Vec<TagInfo>,
            want: Vec<&'static str>,
        }
        let cases = vec![
            Case {
                name: "base keeps all, unmatched kept",
                tags: vec![
                    t("base-a", "d1", Some(500)),
                    t("base-b", "d2", Some(400)),
                    t("random", "d3", Some(900)),
                ],
                want: vec![],
            },
            Case {
                name: "tooling keeps newest 3",
                tags: vec![
                    t("tooling-1", "t1", Some(50)),
                    t("tooling-2", "t2", Some(40)),
                    t("tooling-3", "t3", Some(30)),
                    t("tooling-4", "t4", Some(20)),
                    t("tooling-5", "t5", Some(10)),
                ],
                want: vec!["tooling-1", "tooling-2"],
            },
            Case {
                name: "pr older than 7d goes",
                tags: vec![
                    t("pr-1-a", "p1", Some(8)),
                    t("pr-2-a", "p2", Some(6)),
                    t("pr-3-a", "p3", Some(30)),
                ],
                want: vec!["pr-1-a", "pr-3-a"],
            },
            Case {
                name: "stable tag shares the digest of an old tooling tag",
                tags: vec![
                    t("tooling-1", "t1", Some(50)),
                    t("tooling-2", "t2", Some(40)),
                    t("tooling-3", "t3", Some(30)),
                    t("tooling-4", "t4", Some(20)),
                    t("tooling-stable", "t1", Some(50)),
                ],
                want: vec![],
            },
            Case {
                name: "kept tag shares the digest of an old pr tag",
                tags: vec![t("pr-9-x", "same", Some(30)), t("main-x", "same", Some(30))],
                want: vec![],
            },
            Case {
                name: "two doomed tags of one digest both go",
                tags: vec![t("pr-1-x", "same", Some(30)), t("pr-2-x", "same", Some(30))],
                want: vec!["pr-1-x", "pr-2-x"],
            },
            Case {
                name: "unknown creation time is kept",
                tags: vec![t("pr-1-x", "a", None), t("pr-2-x", "b", Some(30))],
                want: vec!["pr-2-x"],
            },
            Case {
                name: "protected latest never goes",
                tags: vec![t("latest", "l", Some(9000))],
                want: vec![],
            },
        ];
        for c in cases {
            let mut got = deleted(&issue, &c.tags);
            got.sort();
            assert_eq!(got, c.want, "case: {}", c.name);
        }
    }

    /// Key tags as `strata build --push` writes them (`sk-` + 24 lowercase hex).
    const SK1: &str = "sk-111111111111111111111111";
    const SK2: &str = "sk-222222222222222222222222";
    const SK3: &str = "sk-333333333333333333333333";

    #[test]
    fn key_tags_follow_their_digest() {
        let issue = policy(
            &[
                ("base-*", Some(Newest::All), None),
                ("app-*", Some(Newest::Count(1)), None),
                ("pr-*", None, Some("7d")),
                ("*", Some(Newest::Count(5)), None),
            ],
            &["*-stable", "latest"],
        );
        let with_sk_rule = |rule: (&'static str, Option<Newest>, Option<&'static str>)| {
            policy(
                &[("app-*", Some(Newest::Count(1)), None), rule],
                &["latest"],
            )
        };
        struct Case {
            name: &'static str,
            policy: Policy,
            tags: Vec<TagInfo>,
            want: Vec<&'static str>,
        }
        let cases = vec![
            Case {
                name: "an old app image goes with its key tag; the newest keeps its key tag",
                policy: issue.clone(),
                tags: vec![
                    t("app-1", "a1", Some(20)),
                    t(SK1, "a1", Some(20)),
                    t("app-2", "a2", Some(10)),
                    t(SK2, "a2", Some(10)),
                    t("latest", "a2", Some(10)),
                ],
                want: vec!["app-1", SK1],
            },
            Case {
                name: "a catch-all keep rule does not make key tags hold a digest",
                policy: policy(
                    &[("pr-*", None, Some("7d")), ("*", Some(Newest::All), None)],
                    &[],
                ),
                tags: vec![t("pr-1", "p1", Some(30)), t(SK1, "p1", Some(30))],
                want: vec!["pr-1", SK1],
            },
            Case {
                name: "a protect glob matching the key tag does not hold a doomed digest",
                policy: policy(&[("pr-*", None, Some("7d"))], &["sk-*"]),
                tags: vec![t("pr-1", "p1", Some(30)), t(SK1, "p1", Some(30))],
                want: vec!["pr-1", SK1],
            },
            Case {
                name: "a key tag stays when another tag of its digest is kept",
                policy: issue.clone(),
                tags: vec![
                    t("pr-1", "p1", Some(30)),
                    t("tooling-stable", "p1", Some(30)),
                    t(SK1, "p1", Some(30)),
                ],
                want: vec![],
            },
            Case {
                name: "a digest with only key tags is kept by default",
                policy: issue.clone(),
                tags: vec![t(SK1, "old", Some(900)), t(SK2, "older", None)],
                want: vec![],
            },
            Case {
                name: "an explicit sk- rule decides digests with only key tags",
                policy: with_sk_rule(("sk-*", None, Some("30d"))),
                tags: vec![
                    t(SK1, "k1", Some(40)),
                    t(SK2, "k2", Some(5)),
                    t(SK3, "k3", None),
                ],
                want: vec![SK1],
            },
            Case {
                name: "an sk- rule ranks only key-only digests; key tags beside other tags follow",
                policy: with_sk_rule(("sk-*", Some(Newest::Count(1)), None)),
                tags: vec![
                    t("app-1", "a1", Some(1)),
                    t(SK1, "a1", Some(1)),
                    t(SK2, "k2", Some(20)),
                    t(SK3, "k3", Some(30)),
                ],
                want: vec![SK3],
            },
            Case {
                name: "a protect glob keeps a key-only digest an sk- rule would delete",
                policy: policy(&[("sk-*", Some(Newest::Count(0)), None)], &["sk-1*"]),
                tags: vec![t(SK1, "k1", Some(40)), t(SK2, "k2", Some(40))],
                want: vec![SK2],
            },
            Case {
                name: "two key tags of one key-only digest: it goes only when both go",
                policy: policy(&[("sk-*", None, Some("30d"))], &["sk-2*"]),
                tags: vec![
                    t(SK1, "k", Some(40)),
                    t(SK2, "k", Some(40)),
                    t(SK3, "j", Some(40)),
                ],
                want: vec![SK3],
            },
            Case {
                name: "tags that only look like key tags are ordinary tags",
                policy: policy(&[("*", Some(Newest::Count(0)), None)], &[]),
                tags: vec![
                    t("sk-release", "r", Some(1)),
                    t("sk-ABCDEFABCDEFABCDEFABCDEF", "u", Some(1)),
                    t("sk-1111111111111111111111111", "l", Some(1)),
                ],
                want: vec![
                    "sk-1111111111111111111111111",
                    "sk-ABCDEFABCDEFABCDEFABCDEF",
                    "sk-release",
                ],
            },
        ];
        for c in cases {
            let mut got = deleted(&c.policy, &c.tags);
            got.sort();
            let mut want = c.want.clone();
            want.sort();
            assert_eq!(got, want, "case: {}", c.name);
        }
    }

    #[test]
    fn key_tag_reasons() {
        let p = policy(&[("app-*", Some(Newest::Count(1)), None)], &["latest"]);
        let d = decide(
            &p,
            &[
                t("app-1", "a1", Some(20)),
                t(SK1, "a1", Some(20)),
                t("app-2", "a2", Some(10)),
                t(SK2, "a2", Some(10)),
                t(SK3, "k3", Some(30)),
            ],
            NOW,
        );
        assert!(d[1].delete);
        assert!(
            d[1].reason.contains("goes with its digest") && d[1].reason.contains("\"app-1\""),
            "{}",
            d[1].reason
        );
        assert!(!d[3].delete);
        assert!(
            d[3].reason
                .contains("stays with its digest, which \"app-2\" keeps"),
            "{}",
            d[3].reason
        );
        assert!(!d[4].delete);
        assert!(
            d[4].reason.contains("only key tags point to this digest")
                && d[4].reason.contains("\"sk-*\""),
            "{}",
            d[4].reason
        );
    }

    #[test]
    fn first_rule_wins_and_both_limits_or() {
        let p = policy(
            &[
                ("main-*", Some(Newest::Count(1)), Some("5d")),
                ("*", Some(Newest::Count(0)), None),
            ],
            &[],
        );
        let tags = vec![
            t("main-1", "a", Some(1)),
            t("main-2", "b", Some(2)),
            t("main-3", "c", Some(9)),
            t("other", "d", Some(1)),
        ];
        assert_eq!(deleted(&p, &tags), vec!["main-3", "other"]);
        let why = decide(&p, &tags, NOW);
        assert!(why[2].reason.contains("older than 5d"), "{}", why[2].reason);
        assert!(why[1].reason.contains("within 5d"), "{}", why[1].reason);
    }

    #[test]
    fn reasons_explain_shared_digests() {
        let p = policy(&[("pr-*", None, Some("1d"))], &["latest"]);
        let d = decide(
            &p,
            &[t("pr-1", "x", Some(3)), t("latest", "x", Some(3))],
            NOW,
        );
        assert!(!d[0].delete);
        assert!(
            d[0].reason.contains("also tagged \"latest\""),
            "{}",
            d[0].reason
        );
    }

    #[test]
    fn recheck_spares_digests_a_new_or_moved_tag_now_holds() {
        let p = policy(&[("pr-*", Some(Newest::Count(0)), None)], &[]);
        let tags = [
            t("pr-1", "sha256:a", Some(10)),
            t("pr-2", "sha256:b", Some(9)),
            t("pr-3", "sha256:c", Some(8)),
            t("latest", "sha256:d", Some(1)),
        ];
        let decisions = decide(&p, &tags, NOW);
        let pair = |t: &str, d: &str| (t.to_string(), d.to_string());
        // Nothing changed: all three pr digests go.
        let now: Vec<_> = tags.iter().map(|t| pair(&t.tag, &t.digest)).collect();
        let (doomed, spared) = recheck(&decisions, &now);
        assert_eq!(doomed.len(), 3);
        assert!(spared.is_empty());
        // Since the listing: `release` was pushed onto b, `latest` moved onto c, pr-1 is gone.
        let now = vec![
            pair("pr-2", "sha256:b"),
            pair("pr-3", "sha256:c"),
            pair("release", "sha256:b"),
            pair("latest", "sha256:c"),
        ];
        let (doomed, spared) = recheck(&decisions, &now);
        assert_eq!(doomed.into_iter().collect::<Vec<_>>(), ["sha256:a"]);
        assert_eq!(
            spared,
            [pair("sha256:b", "release"), pair("sha256:c", "latest")]
        );
    }
}
