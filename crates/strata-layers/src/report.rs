//! A summary of build records: per image, how often it was built or reused, durations, the
//! cache (reuse) hit rate and sizes; as text, or as one HTML page with an inline SVG
//! timeline of the latest runs showing which images ran in parallel. Pure over records.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::record::Record;

/// Per-image totals.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImageStats {
    /// Times built.
    pub built: usize,
    /// Times reused.
    pub reused: usize,
    /// Times failed.
    pub failed: usize,
    /// Mean build duration (ms) over built runs.
    pub mean_build_ms: Option<u64>,
    /// Mean duration (ms) over reused runs.
    pub mean_reuse_ms: Option<u64>,
    /// Latest size in bytes.
    pub last_size: Option<u64>,
    /// Latest layer count.
    pub last_layers: Option<usize>,
}

/// The whole summary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Runs read.
    pub runs: usize,
    /// Runs that succeeded.
    pub successful: usize,
    /// Mean run duration (ms).
    pub mean_run_ms: u64,
    /// Reused / (built + reused), over the images each run was asked for (all of a run's
    /// images for records that predate the `requested` flag): a prerequisite reused only
    /// because something else was built on it is not a cache hit of the build asked for.
    pub hit_rate: f64,
    /// Images reused as prerequisites only (not asked for), over all runs.
    pub prerequisites_reused: usize,
    /// Per image.
    pub images: BTreeMap<String, ImageStats>,
}

fn mean(v: &[u64]) -> Option<u64> {
    (!v.is_empty()).then(|| v.iter().sum::<u64>() / v.len() as u64)
}

/// Summarises records (oldest first).
pub fn summarize(records: &[Record]) -> Summary {
    let mut s = Summary {
        runs: records.len(),
        successful: records.iter().filter(|r| r.success).count(),
        mean_run_ms: mean(&records.iter().map(|r| r.duration_ms).collect::<Vec<_>>()).unwrap_or(0),
        ..Summary::default()
    };
    let mut build_ms: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut reuse_ms: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let (mut hits, mut total) = (0usize, 0usize);
    for r in records {
        let flagged = r.images.values().any(|i| i.requested);
        for (name, i) in &r.images {
            let st = s.images.entry(name.clone()).or_default();
            let asked = !flagged || i.requested;
            match i.status.as_str() {
                "built" => {
                    st.built += 1;
                    total += usize::from(asked);
                    build_ms
                        .entry(name.clone())
                        .or_default()
                        .push(i.duration_ms);
                }
                "reused" => {
                    st.reused += 1;
                    total += usize::from(asked);
                    hits += usize::from(asked);
                    s.prerequisites_reused += usize::from(!asked);
                    reuse_ms
                        .entry(name.clone())
                        .or_default()
                        .push(i.duration_ms);
                }
                "failed" => st.failed += 1,
                _ => {}
            }
            if i.size.is_some() {
                st.last_size = i.size;
                st.last_layers = i.layers;
            }
        }
    }
    for (name, st) in s.images.iter_mut() {
        st.mean_build_ms = build_ms.get(name).and_then(|v| mean(v));
        st.mean_reuse_ms = reuse_ms.get(name).and_then(|v| mean(v));
    }
    s.hit_rate = if total == 0 {
        0.0
    } else {
        hits as f64 / total as f64
    };
    s
}

fn secs(ms: Option<u64>) -> String {
    ms.map(|m| format!("{:.1}s", m as f64 / 1000.0))
        .unwrap_or_else(|| "-".into())
}

/// Human-readable size.
pub fn size(b: Option<u64>) -> String {
    match b {
        None => "-".into(),
        Some(b) if b >= 1_000_000_000 => format!("{:.1} GB", b as f64 / 1e9),
        Some(b) if b >= 1_000_000 => format!("{:.1} MB", b as f64 / 1e6),
        Some(b) if b >= 1_000 => format!("{:.1} kB", b as f64 / 1e3),
        Some(b) => format!("{b} B"),
    }
}

/// The text summary.
pub fn text(s: &Summary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} run(s), {} successful, mean {}; reuse (cache hit) rate {:.0}% of the images asked for; {} prerequisite(s) reused",
        s.runs,
        s.successful,
        secs(Some(s.mean_run_ms)),
        s.hit_rate * 100.0,
        s.prerequisites_reused
    );
    let _ = writeln!(
        out,
        "{:<16} {:>6} {:>6} {:>6} {:>10} {:>10} {:>10} {:>7}",
        "image", "built", "reused", "failed", "build avg", "reuse avg", "size", "layers"
    );
    for (n, i) in &s.images {
        let _ = writeln!(
            out,
            "{:<16} {:>6} {:>6} {:>6} {:>10} {:>10} {:>10} {:>7}",
            n,
            i.built,
            i.reused,
            i.failed,
            secs(i.mean_build_ms),
            secs(i.mean_reuse_ms),
            size(i.last_size),
            i.last_layers.map(|l| l.to_string()).unwrap_or("-".into())
        );
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An SVG timeline of one run: one row per image, a bar from its start to its end, coloured
/// by status.
pub fn timeline_svg(r: &Record) -> String {
    let width = 720.0;
    let label_w = 120.0;
    let row = 22.0;
    let total = r
        .images
        .values()
        .map(|i| i.end_ms)
        .max()
        .unwrap_or(0)
        .max(r.duration_ms)
        .max(1) as f64;
    let mut rows: Vec<(&String, &crate::record::ImageRecord)> = r.images.iter().collect();
    rows.sort_by_key(|(n, i)| (i.start_ms, (*n).clone()));
    let h = row * rows.len() as f64 + 30.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">",
        width + label_w + 20.0
    );
    for (k, (name, i)) in rows.iter().enumerate() {
        let y = k as f64 * row + 4.0;
        let x = label_w + width * i.start_ms as f64 / total;
        let w = (width * (i.end_ms.saturating_sub(i.start_ms)) as f64 / total).max(2.0);
        let color = match i.status.as_str() {
            "built" => "#3b82f6",
            "reused" => "#22c55e",
            "failed" => "#ef4444",
            _ => "#9ca3af",
        };
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{}\">{}</text><rect x=\"{x:.1}\" y=\"{y}\" width=\"{w:.1}\" height=\"{}\" fill=\"{color}\"><title>{} {} {:.1}s</title></rect>",
            y + 13.0,
            esc(name),
            row - 6.0,
            esc(name),
            esc(&i.status),
            i.duration_ms as f64 / 1000.0
        );
    }
    let axis_y = row * rows.len() as f64 + 20.0;
    for t in 0..=4 {
        let x = label_w + width * t as f64 / 4.0;
        let _ = write!(
            svg,
            "<text x=\"{x:.1}\" y=\"{axis_y}\" text-anchor=\"middle\">{:.1}s</text>",
            total * t as f64 / 4.0 / 1000.0
        );
    }
    svg.push_str("</svg>");
    svg
}

/// One self-contained HTML page: the summary table, then the latest `last` runs with their
/// timelines (newest first).
pub fn html(records: &[Record], last: usize) -> String {
    let s = summarize(records);
    let mut h = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>strata build report</title>\
         <style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px}</style></head><body>",
    );
    let _ = write!(
        h,
        "<h1>strata build report</h1><p>{} run(s), {} successful, mean {}; reuse (cache hit) rate <b>{:.0}%</b> of the images asked for; {} prerequisite(s) reused</p>",
        s.runs,
        s.successful,
        secs(Some(s.mean_run_ms)),
        s.hit_rate * 100.0,
        s.prerequisites_reused
    );
    h.push_str("<table><tr><th>image</th><th>built</th><th>reused</th><th>failed</th><th>build avg</th><th>reuse avg</th><th>size</th><th>layers</th></tr>");
    for (n, i) in &s.images {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(n),
            i.built,
            i.reused,
            i.failed,
            secs(i.mean_build_ms),
            secs(i.mean_reuse_ms),
            size(i.last_size),
            i.last_layers.map(|l| l.to_string()).unwrap_or("-".into())
        );
    }
    h.push_str("</table><p class=\"legend\"><span style=\"background:#3b82f6\"></span>built<span style=\"background:#22c55e\"></span>reused<span style=\"background:#ef4444\"></span>failed<span style=\"background:#9ca3af\"></span>skipped</p>");
    for r in records.iter().rev().take(last) {
        let _ = write!(
            h,
            "<h2>{} — {} ({}, {}, {} job(s))</h2>{}",
            esc(&r.id),
            secs(Some(r.duration_ms)),
            esc(&r.engine),
            if r.success { "ok" } else { "FAILED" },
            r.jobs,
            timeline_svg(r)
        );
    }
    h.push_str("</body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::ImageRecord;

    fn rec(id: &str, images: &[(&str, &str, u64, u64)]) -> Record {
        Record {
            id: id.into(),
            success: true,
            duration_ms: images.iter().map(|i| i.3).max().unwrap_or(0),
            images: images
                .iter()
                .map(|(n, s, a, b)| {
                    (
                        n.to_string(),
                        ImageRecord {
                            status: s.to_string(),
                            start_ms: *a,
                            end_ms: *b,
                            duration_ms: b - a,
                            size: Some(2_000_000),
                            layers: Some(3),
                            ..ImageRecord::default()
                        },
                    )
                })
                .collect(),
            ..Record::default()
        }
    }

    #[test]
    fn summary_table() {
        let rs = vec![
            rec(
                "1",
                &[("base", "built", 0, 4000), ("app", "built", 4000, 5000)],
            ),
            rec(
                "2",
                &[("base", "reused", 0, 100), ("app", "built", 100, 1100)],
            ),
        ];
        let s = summarize(&rs);
        assert_eq!(s.runs, 2);
        assert_eq!(s.hit_rate, 0.25);
        assert_eq!(s.images["app"].mean_build_ms, Some(1000));
        assert_eq!(s.images["base"].mean_reuse_ms, Some(100));
        let t = text(&s);
        assert!(t.contains("rate 25% of the images asked for"), "{t}");
        let h = html(&rs, 5);
        assert!(
            h.contains("<svg") && h.contains("<title>app built 1.0s</title>"),
            "{h}"
        );
        assert_eq!(h.matches("<svg").count(), 2);
    }

    #[test]
    fn prerequisites_reused_are_not_cache_hits() {
        // An app change: app asked for and built; base and tooling reused only because app
        // builds on them. Then a run asking for everything, all reused.
        let mut app_change = rec(
            "1",
            &[
                ("base", "reused", 0, 10),
                ("tooling", "reused", 0, 10),
                ("app", "built", 10, 1000),
            ],
        );
        app_change.images.get_mut("app").unwrap().requested = true;
        let mut all = rec(
            "2",
            &[
                ("base", "reused", 0, 10),
                ("tooling", "reused", 0, 10),
                ("app", "reused", 0, 10),
            ],
        );
        for i in all.images.values_mut() {
            i.requested = true;
        }
        let s = summarize(&[app_change, all]);
        assert_eq!(s.hit_rate, 0.75, "3 of the 4 images asked for were reused");
        assert_eq!(s.prerequisites_reused, 2);
        assert!(
            text(&s).contains("2 prerequisite(s) reused"),
            "{}",
            text(&s)
        );
    }
}
