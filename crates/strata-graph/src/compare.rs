//! Why keys differ between two plans (e.g. a git revision and the working tree): per stage,
//! whether its key changed and the first reason: a base, an instruction, a file, an arg.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::keys::{StageKeys, StepKey};
use crate::plan::Plan;

/// The verdict for one stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StageDiff {
    /// The stage name.
    pub name: String,
    /// `unchanged`, `changed`, `added` (only now) or `removed` (only at the revision).
    pub status: &'static str,
    /// The key at the revision.
    pub old_key: Option<String>,
    /// The key now.
    pub new_key: Option<String>,
    /// The line (now) of the first step whose key differs.
    pub first_changed_line: Option<usize>,
    /// Why, most direct cause first.
    pub reasons: Vec<String>,
}

const MAX_REASONS: usize = 12;

/// Compares every stage of `new` with the stage of the same name in `old`.
pub fn compare(old: &Plan, new: &Plan) -> Vec<StageDiff> {
    let old_by_name: BTreeMap<&str, (usize, &StageKeys)> = old
        .stages
        .iter()
        .filter_map(|s| {
            old.keys[s.index]
                .as_ref()
                .map(|k| (s.name.as_str(), (s.index, k)))
        })
        .collect();
    let mut out = Vec::new();
    for s in &new.stages {
        let Some(nk) = new.keys[s.index].as_ref() else {
            continue;
        };
        match old_by_name.get(s.name.as_str()) {
            None => out.push(StageDiff {
                name: s.name.clone(),
                status: "added",
                old_key: None,
                new_key: Some(nk.key.clone()),
                first_changed_line: Some(s.line),
                reasons: vec!["stage is new".into()],
            }),
            Some((oi, ok)) if ok.key == nk.key => {
                let _ = oi;
                out.push(StageDiff {
                    name: s.name.clone(),
                    status: "unchanged",
                    old_key: Some(ok.key.clone()),
                    new_key: Some(nk.key.clone()),
                    first_changed_line: None,
                    reasons: Vec::new(),
                })
            }
            Some((oi, ok)) => {
                let old_base = old
                    .stages
                    .iter()
                    .find(|x| x.index == *oi)
                    .map(|x| x.base.as_str());
                let (line, reasons) = explain(ok, nk, old_base.unwrap_or(""), &s.base, s.base_kind);
                out.push(StageDiff {
                    name: s.name.clone(),
                    status: "changed",
                    old_key: Some(ok.key.clone()),
                    new_key: Some(nk.key.clone()),
                    first_changed_line: line.or(Some(s.line)),
                    reasons,
                });
            }
        }
    }
    for s in &old.stages {
        if !new.stages.iter().any(|n| n.name == s.name) {
            out.push(StageDiff {
                name: s.name.clone(),
                status: "removed",
                old_key: old.keys[s.index].as_ref().map(|k| k.key.clone()),
                new_key: None,
                first_changed_line: None,
                reasons: vec!["stage no longer built".into()],
            });
        }
    }
    out
}

fn explain(
    old: &StageKeys,
    new: &StageKeys,
    old_base: &str,
    new_base: &str,
    base_kind: &str,
) -> (Option<usize>, Vec<String>) {
    if old.base_key != new.base_key {
        let reason = if old_base != new_base {
            format!("base changed: `{old_base}` → `{new_base}`")
        } else if base_kind == "stage" {
            format!("base stage `{new_base}` changed")
        } else {
            format!("base `{new_base}` changed (platform)")
        };
        return (None, vec![reason]);
    }
    for (i, n) in new.steps.iter().enumerate() {
        let Some(o) = old.steps.get(i) else {
            return (
                Some(n.line),
                vec![format!("line {}: instruction added: `{}`", n.line, n.text)],
            );
        };
        if o.key == n.key {
            continue;
        }
        return (Some(n.line), step_reasons(o, n));
    }
    if let Some(o) = old.steps.get(new.steps.len()) {
        return (
            None,
            vec![format!(
                "instruction removed (was line {}): `{}`",
                o.line, o.text
            )],
        );
    }
    (None, vec!["key changed".into()])
}

fn multimap(inputs: &[(String, String)]) -> BTreeMap<&str, Vec<&str>> {
    let mut m: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (k, v) in inputs {
        m.entry(k.as_str()).or_default().push(v.as_str());
    }
    m
}

fn step_reasons(o: &StepKey, n: &StepKey) -> Vec<String> {
    let at = format!("line {} {}", n.line, n.keyword);
    if o.text != n.text {
        return vec![format!(
            "{at}: instruction changed: `{}` → `{}`",
            o.text, n.text
        )];
    }
    let om = multimap(&o.inputs);
    let nm = multimap(&n.inputs);
    let mut reasons = Vec::new();
    let mut names: Vec<&str> = om.keys().chain(nm.keys()).copied().collect();
    names.sort();
    names.dedup();
    for name in names {
        let (ov, nv) = (om.get(name), nm.get(name));
        if ov == nv {
            continue;
        }
        reasons.push(describe(
            &at,
            name,
            ov.map(Vec::as_slice),
            nv.map(Vec::as_slice),
        ));
    }
    if reasons.is_empty() {
        reasons.push(format!("{at}: an earlier step of the stage changed"));
    }
    if reasons.len() > MAX_REASONS {
        let more = reasons.len() - MAX_REASONS;
        reasons.truncate(MAX_REASONS);
        reasons.push(format!("… and {more} more"));
    }
    reasons
}

fn describe(at: &str, name: &str, old: Option<&[&str]>, new: Option<&[&str]>) -> String {
    let join = |v: Option<&[&str]>| v.map(|v| v.join(", ")).unwrap_or_default();
    if let Some(path) = name.strip_prefix("file:") {
        let what = |v: Option<&[&str]>| {
            if v.is_some_and(|v| v == ["dir"]) {
                "directory"
            } else {
                "file"
            }
        };
        return match (old, new) {
            (None, Some(_)) => format!("{at}: {} `{path}` added", what(new)),
            (Some(_), None) => format!("{at}: {} `{path}` removed (or now ignored)", what(old)),
            (Some(o), Some(n)) => {
                let mode = |s: &str| s.split(':').next().unwrap_or("").to_string();
                let content = |s: &str| s.split_once(':').map_or("", |x| x.1).to_string();
                if mode(o[0]) != mode(n[0]) && content(o[0]) == content(n[0]) {
                    format!(
                        "{at}: file `{path}` mode changed: {} → {}",
                        mode(o[0]),
                        mode(n[0])
                    )
                } else {
                    format!("{at}: file `{path}` changed")
                }
            }
            (None, None) => String::new(),
        };
    }
    if let Some(arg) = name.strip_prefix("arg:") {
        return format!("{at}: build arg {arg}: `{}` → `{}`", join(old), join(new));
    }
    if let Some(env) = name.strip_prefix("env:") {
        return format!("{at}: ENV {env}: `{}` → `{}`", join(old), join(new));
    }
    if let Some(stage) = name.strip_prefix("stage:") {
        let stage = stage.rsplit(':').next().unwrap_or(stage);
        return format!("{at}: stage `{stage}` it reads from changed");
    }
    format!("{at}: {name}: `{}` → `{}`", join(old), join(new))
}
