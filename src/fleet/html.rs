//! The fleet report as one self-contained HTML page: inline CSS, inline SVG
//! charts (verdicts by kernel, verdicts by family, top blocking rules), no
//! external assets, so it can be mailed, attached to a ticket or opened from
//! a file on an air-gapped bastion.
//!
//! The page carries its summary as JSON and a small script that checks the
//! drawn charts against it (every chart's bars add up to the host count) and
//! then marks `<body data-fleet-ok="1" data-hosts=N ...>`; a headless browser
//! in CI (`scripts/ci-extra`) asserts those marks and the absence of
//! `data-fleet-error`.

use std::fmt::Write;

use serde_json::json;

use super::{Bucket, FleetReport, VerdictCounts, some_of};

/// Rows a chart draws before folding the rest into "other".
const MAX_ROWS: usize = 15;
const LABEL_W: usize = 300;
const BAR_W: usize = 520;
const ROW_H: usize = 24;

const COLORS: [(&str, &str); 4] = [
    ("ready", "#2e7d32"),
    ("ready-with-changes", "#f9a825"),
    ("blocked", "#c62828"),
    ("incomplete", "#757575"),
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn parts(v: &VerdictCounts) -> [usize; 4] {
    [v.ready, v.ready_with_changes, v.blocked, v.incomplete]
}

/// Keep the first rows, fold the rest into one "other (N values)" row.
fn fold(rows: Vec<(String, VerdictCounts)>) -> Vec<(String, VerdictCounts)> {
    if rows.len() <= MAX_ROWS {
        return rows;
    }
    let rest = rows.len() - (MAX_ROWS - 1);
    let mut out: Vec<_> = rows.iter().take(MAX_ROWS - 1).cloned().collect();
    let mut other = VerdictCounts::default();
    for (_, v) in rows.iter().skip(MAX_ROWS - 1) {
        other.ready += v.ready;
        other.ready_with_changes += v.ready_with_changes;
        other.blocked += v.blocked;
        other.incomplete += v.incomplete;
    }
    out.push((format!("other ({rest} values)"), other));
    out
}

/// Labels longer than the label column are cut (the full text is the tooltip).
fn short(label: &str) -> String {
    const MAX: usize = 44;
    if label.chars().count() <= MAX {
        return label.to_string();
    }
    let head: String = label.chars().take(MAX - 1).collect();
    format!("{head}…")
}

/// A stacked horizontal bar chart of verdicts; every segment is a
/// `<rect data-n>` so the page's script can add them up.
fn verdict_chart(id: &str, rows: &[(String, VerdictCounts)]) -> String {
    let max = rows.iter().map(|(_, v)| v.total()).max().unwrap_or(0).max(1);
    let h = rows.len().max(1) * ROW_H + 8;
    let mut s = format!(
        "<svg id=\"{id}\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{h}\" role=\"img\">",
        LABEL_W + BAR_W + 60
    );
    for (i, (label, v)) in rows.iter().enumerate() {
        let y = i * ROW_H + 4;
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\"><title>{}</title>{}</text>",
            LABEL_W - 8,
            y + 16,
            esc(label),
            esc(&short(label))
        );
        let mut x = LABEL_W;
        for ((name, color), n) in COLORS.iter().zip(parts(v)) {
            if n == 0 {
                continue;
            }
            let w = (n * BAR_W).div_ceil(max).max(1);
            let _ = write!(
                s,
                "<rect class=\"seg\" data-verdict=\"{name}\" data-n=\"{n}\" x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{}\" fill=\"{color}\"><title>{}: {n} {name}</title></rect>",
                ROW_H - 6,
                esc(label)
            );
            x += w;
        }
        let _ = write!(s, "<text x=\"{}\" y=\"{}\">{}</text>", x + 6, y + 16, v.total());
    }
    s.push_str("</svg>");
    s
}

/// Bars of hosts per blocking rule.
fn blocker_chart(r: &FleetReport) -> String {
    let rows: Vec<_> = r.blockers.iter().take(MAX_ROWS).collect();
    let max = rows.iter().map(|b| b.hosts).max().unwrap_or(0).max(1);
    let h = rows.len().max(1) * ROW_H + 8;
    let mut s = format!(
        "<svg id=\"chart-blockers\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{h}\" role=\"img\">",
        LABEL_W + BAR_W + 60
    );
    if rows.is_empty() {
        s.push_str("<text x=\"8\" y=\"20\">no blocking rule on any host</text>");
    }
    for (i, b) in rows.iter().enumerate() {
        let y = i * ROW_H + 4;
        let w = (b.hosts * BAR_W).div_ceil(max).max(1);
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\"><title>{}</title>{}</text><rect class=\"bar\" data-rule=\"{}\" data-n=\"{}\" x=\"{LABEL_W}\" y=\"{y}\" width=\"{w}\" height=\"{}\" fill=\"#c62828\"><title>{}: {} hosts</title></rect><text x=\"{}\" y=\"{}\">{}</text>",
            LABEL_W - 8,
            y + 16,
            esc(&b.rule),
            esc(&short(&b.rule)),
            esc(&b.rule),
            b.hosts,
            ROW_H - 6,
            esc(&b.title),
            b.hosts,
            LABEL_W + w + 6,
            y + 16,
            b.hosts
        );
    }
    s.push_str("</svg>");
    s
}

fn bucket_rows(b: &[Bucket]) -> Vec<(String, VerdictCounts)> {
    b.iter().map(|b| (b.value.clone(), b.verdicts)).collect()
}

fn bucket_table(name: &str, b: &[Bucket]) -> String {
    let mut s = format!(
        "<table><tr><th>{name}</th><th>hosts</th><th>ready</th><th>with changes</th><th>blocked</th><th>incomplete</th></tr>"
    );
    for b in b {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&b.value),
            b.hosts,
            b.verdicts.ready,
            b.verdicts.ready_with_changes,
            b.verdicts.blocked,
            b.verdicts.incomplete
        );
    }
    s.push_str("</table>");
    s
}

fn families_table(r: &FleetReport) -> String {
    let mut s = String::from(
        "<table id=\"families\"><tr><th>family</th><th>hosts</th><th>ready / changes / blocked / incomplete</th><th>representative</th><th>plan</th><th>members</th></tr>",
    );
    for f in &r.families {
        let plan = f.plan.as_ref().map_or_else(
            || "run cgmig plan on the representative".to_string(),
            |p| format!("{} nodes, {} actions, {} stages", p.nodes, p.actions, p.stages),
        );
        let _ = write!(
            s,
            "<tr class=\"family\" data-hosts=\"{}\"><td><code>{}</code></td><td>{}</td><td>{} / {} / {} / {}</td><td>{}</td><td>{}</td><td><details><summary>{}</summary>{}</details></td></tr>",
            f.hosts,
            esc(&f.id),
            f.hosts,
            f.verdicts.ready,
            f.verdicts.ready_with_changes,
            f.verdicts.blocked,
            f.verdicts.incomplete,
            esc(&f.representative.host),
            esc(&plan),
            esc(&some_of(&f.members)),
            esc(&f.members.join(", "))
        );
    }
    s.push_str("</table>");
    s
}

fn rules_table(r: &FleetReport) -> String {
    let mut s = String::from(
        "<table id=\"rules\"><tr><th>rule</th><th>severity</th><th>hosts</th><th>which</th></tr>",
    );
    for x in &r.rules {
        let _ = write!(
            s,
            "<tr><td><code>{}</code></td><td class=\"sev-{}\">{}</td><td>{}</td><td>{}</td></tr>",
            esc(&x.rule),
            x.severity,
            x.severity,
            x.hosts,
            esc(&some_of(&x.members))
        );
    }
    s.push_str("</table>");
    s
}

/// The summary the page's script checks the charts against.
fn data_json(r: &FleetReport) -> String {
    let shown_blockers = r.blockers.len().min(MAX_ROWS);
    let v = json!({
        "schema": r.schema,
        "hosts": r.hosts,
        "families": r.families.len(),
        "verdicts": r.verdicts,
        "blockers_shown": shown_blockers,
        "unreadable": r.unreadable.len(),
    });
    // `<` escaped so no string can close the script element.
    v.to_string().replace('<', "\\u003c")
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}\
.cards{display:flex;gap:1em}.card{border:1px solid #ccc;border-radius:6px;padding:.6em 1.2em}.card b{font-size:1.6em;display:block}\
.chart text{font-size:12px;font-family:system-ui,sans-serif}.sev-blocker{color:#c62828;font-weight:bold}\
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px}";

const SCRIPT: &str = r"(function(){
  var body = document.body;
  window.addEventListener('error', function(e){ body.setAttribute('data-fleet-error', String(e.message)); });
  try {
    var d = JSON.parse(document.getElementById('fleet-data').textContent);
    function sum(sel){ var n = 0; document.querySelectorAll(sel).forEach(function(r){ n += Number(r.getAttribute('data-n')); }); return n; }
    var byKernel = sum('#chart-kernel rect.seg'), byFamily = sum('#chart-family rect.seg');
    var total = d.verdicts['ready'] + d.verdicts['ready-with-changes'] + d.verdicts['blocked'] + (d.verdicts['incomplete'] || 0);
    if (total !== d.hosts) throw new Error('verdicts add up to ' + total + ', not ' + d.hosts);
    if (byKernel !== d.hosts) throw new Error('kernel chart shows ' + byKernel + ' hosts, not ' + d.hosts);
    if (byFamily !== d.hosts) throw new Error('family chart shows ' + byFamily + ' hosts, not ' + d.hosts);
    var bars = document.querySelectorAll('#chart-blockers rect.bar').length;
    if (bars !== d.blockers_shown) throw new Error('blocker chart has ' + bars + ' bars, not ' + d.blockers_shown);
    var fams = document.querySelectorAll('#families tr.family').length;
    if (fams !== d.families) throw new Error('family table has ' + fams + ' rows, not ' + d.families);
    body.setAttribute('data-hosts', String(d.hosts));
    body.setAttribute('data-families', String(d.families));
    body.setAttribute('data-ready', String(d.verdicts['ready']));
    body.setAttribute('data-ready-with-changes', String(d.verdicts['ready-with-changes']));
    body.setAttribute('data-blocked', String(d.verdicts['blocked']));
    body.setAttribute('data-blocker-bars', String(bars));
    body.setAttribute('data-fleet-ok', '1');
    document.getElementById('check').textContent = 'checked: charts add up to ' + d.hosts + ' hosts';
  } catch (e) {
    body.setAttribute('data-fleet-error', String(e && e.message || e));
  }
})();";

/// The whole page.
pub fn page(r: &FleetReport) -> String {
    let kernel_rows = fold(bucket_rows(&r.by_kernel));
    let family_rows = fold(
        r.families
            .iter()
            .map(|f| (format!("{} ({})", f.id, f.representative.host), f.verdicts))
            .collect(),
    );
    let legend: String = COLORS
        .iter()
        .map(|(n, c)| format!("<span style=\"background:{c}\"></span>{n}"))
        .collect();
    let mut s = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>cgmig fleet report</title>",
    );
    let _ = write!(s, "<style>{STYLE}</style></head><body>");
    let _ = write!(s, "<h1>cgmig fleet report</h1><div class=\"cards\">");
    for (id, label, n) in [
        ("hosts", "hosts", r.hosts),
        ("ready", "ready", r.verdicts.ready),
        (
            "ready-with-changes",
            "ready with changes",
            r.verdicts.ready_with_changes,
        ),
        ("blocked", "blocked", r.verdicts.blocked),
        ("incomplete", "incomplete", r.verdicts.incomplete),
        ("families", "layout families", r.families.len()),
        ("unreadable", "unreadable inputs", r.unreadable.len()),
    ] {
        let _ = write!(s, "<div class=\"card\" id=\"count-{id}\"><b>{n}</b>{label}</div>");
    }
    let _ = write!(
        s,
        "</div><p id=\"check\">not checked (scripts disabled)</p><p class=\"legend\">{legend}</p>"
    );
    let _ = write!(
        s,
        "<h2>Verdicts by kernel</h2>{}",
        verdict_chart("chart-kernel", &kernel_rows)
    );
    let _ = write!(
        s,
        "<h2>Verdicts by layout family</h2>{}",
        verdict_chart("chart-family", &family_rows)
    );
    let _ = write!(s, "<h2>Top blocking rules</h2>{}", blocker_chart(r));
    let _ = write!(s, "<h2>Layout families</h2>{}", families_table(r));
    let _ = write!(s, "<h2>Rules</h2>{}", rules_table(r));
    for (name, b) in [
        ("distribution", &r.by_distribution),
        ("systemd", &r.by_systemd),
        ("mode", &r.by_mode),
        ("kernel", &r.by_kernel),
    ] {
        let _ = write!(s, "<h2>By {name}</h2>{}", bucket_table(name, b));
    }
    if !r.unreadable.is_empty() {
        s.push_str("<h2>Unreadable inputs</h2><ul>");
        for u in &r.unreadable {
            let _ = write!(
                s,
                "<li><code>{}</code>: {}</li>",
                esc(&u.path.display().to_string()),
                esc(&u.error)
            );
        }
        s.push_str("</ul>");
    }
    let _ = writeln!(
        s,
        "<script type=\"application/json\" id=\"fleet-data\">{}</script><script>{SCRIPT}</script></body></html>",
        data_json(r)
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_keeps_the_total() {
        let rows: Vec<_> = (0..40)
            .map(|i| {
                (
                    format!("k{i}"),
                    VerdictCounts {
                        ready: 1,
                        ready_with_changes: i,
                        blocked: 2,
                        incomplete: 0,
                    },
                )
            })
            .collect();
        let total: usize = rows.iter().map(|(_, v)| v.total()).sum();
        let folded = fold(rows);
        assert_eq!(folded.len(), MAX_ROWS);
        assert_eq!(folded.iter().map(|(_, v)| v.total()).sum::<usize>(), total);
        assert_eq!(folded.last().unwrap().0, "other (26 values)");
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }
}
