//! Renderings: a plan as text, JSON, Graphviz dot or Mermaid; a comparison as text; lint
//! findings as text, JSON or SARIF 2.1.0.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::compare::StageDiff;
use crate::lint::{Finding, RULES};
use crate::plan::Plan;

fn short(key: &str) -> &str {
    let hex = key.strip_prefix("sha256:").unwrap_or(key);
    &hex[..hex.len().min(12)]
}

/// Human-readable plan: summary, levels, one line per stage, notes.
pub fn plan_text(plan: &Plan) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "target {}: {} stages in {} levels, up to {} in parallel",
        plan.target,
        plan.stages.len(),
        plan.levels.len(),
        plan.max_parallelism
    );
    let _ = writeln!(s, "critical path: {}", plan.critical_path.join(" → "));
    for (i, level) in plan.levels.iter().enumerate() {
        let _ = writeln!(s, "  level {i}: {}", level.join(", "));
    }
    let _ = writeln!(s);
    let width = plan
        .stages
        .iter()
        .map(|st| st.name.len())
        .max()
        .unwrap_or(4)
        .max(5);
    let _ = writeln!(
        s,
        "{:<width$}  {:<12}  {:<5}  from",
        "stage", "key", "level"
    );
    for st in &plan.stages {
        let mut from = st.base.clone();
        if st.base_pinned == Some(false) {
            from.push_str(" (tag, unpinned)");
        }
        let extra: Vec<&str> = st
            .depends_on
            .iter()
            .filter(|d| **d != st.base)
            .map(String::as_str)
            .collect();
        if !extra.is_empty() {
            let _ = write!(from, " + {}", extra.join(", "));
        }
        let _ = writeln!(
            s,
            "{:<width$}  {:<12}  {:<5}  {from}",
            st.name,
            short(&st.cache_key),
            st.level
        );
    }
    if !plan.pruned.is_empty() {
        let _ = writeln!(
            s,
            "\nnot needed for {}: {}",
            plan.target,
            plan.pruned.join(", ")
        );
    }
    let c = &plan.context;
    let _ = writeln!(
        s,
        "\ncontext: {} files selected, {} hashed ({} bytes), {} from the stat cache, {} ignored",
        c.files_selected, c.files_hashed, c.bytes_hashed, c.stat_cache_hits, c.ignored
    );
    for n in &plan.notes {
        let _ = writeln!(s, "note: {n}");
    }
    s
}

/// The plan as JSON (the shape plus extra fields).
pub fn plan_json(plan: &Plan) -> Value {
    serde_json::to_value(plan).unwrap_or(Value::Null)
}

fn dot_id(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Graphviz: stages as boxes ranked by level, edges from dependency to dependent.
pub fn plan_dot(plan: &Plan) -> String {
    let mut s = String::from("digraph strata {\n  rankdir=LR;\n  node [shape=box];\n");
    for st in &plan.stages {
        let _ = writeln!(
            s,
            "  {} [label={}];",
            dot_id(&st.name),
            dot_id(&format!(
                "{}\\nlevel {}\\n{}",
                st.name,
                st.level,
                short(&st.cache_key)
            ))
        );
        if st.base_kind != "stage" {
            let _ = writeln!(
                s,
                "  {} [shape=ellipse, style=dashed];\n  {} -> {};",
                dot_id(&format!("image:{}", st.base)),
                dot_id(&format!("image:{}", st.base)),
                dot_id(&st.name)
            );
        }
        for d in &st.depends_on {
            let _ = writeln!(s, "  {} -> {};", dot_id(d), dot_id(&st.name));
        }
    }
    for (i, level) in plan.levels.iter().enumerate() {
        let ids: Vec<String> = level.iter().map(|n| dot_id(n)).collect();
        let _ = writeln!(s, "  {{ rank=same; {} }} // level {i}", ids.join("; "));
    }
    s.push_str("}\n");
    s
}

/// Mermaid flowchart.
pub fn plan_mermaid(plan: &Plan) -> String {
    let id = |name: &str| {
        plan.stages
            .iter()
            .find(|s| s.name == name)
            .map_or_else(|| "x".to_string(), |s| format!("s{}", s.index))
    };
    let mut s = String::from("flowchart LR\n");
    for st in &plan.stages {
        let _ = writeln!(
            s,
            "  s{}[\"{} (level {})\"]",
            st.index,
            st.name.replace('"', "'"),
            st.level
        );
        if st.base_kind != "stage" {
            let _ = writeln!(
                s,
                "  b{}([\"{}\"]) --> s{}",
                st.index,
                st.base.replace('"', "'"),
                st.index
            );
        }
        for d in &st.depends_on {
            let _ = writeln!(s, "  {} --> s{}", id(d), st.index);
        }
    }
    s
}

/// A comparison as text: one line per stage, reasons indented.
pub fn compare_text(rev: &str, diffs: &[StageDiff]) -> String {
    let mut s = String::new();
    let changed = diffs.iter().filter(|d| d.status != "unchanged").count();
    let _ = writeln!(
        s,
        "compared with {rev}: {changed} of {} stages would miss the cache",
        diffs.len()
    );
    for d in diffs {
        let mark = match d.status {
            "unchanged" => "  hit ",
            "changed" => "  MISS",
            "added" => "  new ",
            _ => "  gone",
        };
        let _ = writeln!(s, "{mark} {}", d.name);
        for r in &d.reasons {
            let _ = writeln!(s, "         {r}");
        }
    }
    s
}

/// Lint findings as `file:line: severity[rule]: message` with the fix below.
pub fn lint_text(file: &str, findings: &[Finding]) -> String {
    let mut s = String::new();
    for f in findings {
        let _ = writeln!(
            s,
            "{file}:{}: {}[{}]: {}\n  fix: {}",
            f.line,
            f.severity.as_str(),
            f.rule,
            f.message,
            f.fix
        );
    }
    let errors = findings
        .iter()
        .filter(|f| f.severity == crate::lint::Severity::Error)
        .count();
    let _ = writeln!(s, "{} findings ({errors} errors)", findings.len());
    s
}

/// Lint findings as SARIF 2.1.0.
pub fn lint_sarif(file: &str, findings: &[Finding]) -> Value {
    let level = |sev: crate::lint::Severity| match sev {
        crate::lint::Severity::Error => "error",
        crate::lint::Severity::Warning => "warning",
        crate::lint::Severity::Info => "note",
    };
    let rules: Vec<Value> = RULES
        .iter()
        .map(|(id, sev, desc)| {
            json!({"id": id, "shortDescription": {"text": desc},
                   "defaultConfiguration": {"level": level(*sev)}})
        })
        .collect();
    let results: Vec<Value> = findings
        .iter()
        .map(|f| {
            json!({
                "ruleId": f.rule,
                "level": level(f.severity),
                "message": {"text": format!("{} Fix: {}", f.message, f.fix)},
                "locations": [{"physicalLocation": {
                    "artifactLocation": {"uri": file},
                    "region": {"startLine": f.line}
                }}]
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "strata", "informationUri": "https://example.invalid/strata", "rules": rules}},
            "results": results
        }]
    })
}
