//! `cgmig explain` and `cgmig rules list` text.

use std::fmt::Write;

use crate::report::Style;
use crate::report::table::{Col, Table};

use crate::rules::convert::{self, BlkioFormula, SharesFormula};
use crate::rules::{FUNCTIONS, LoadedRule, RuleSet};

/// Sample inputs shown for a function's variants.
fn samples(function: &str) -> Option<Table> {
    let mut t;
    match function {
        "shares_to_weight" => {
            t = Table::new(&[
                ("cpu.shares", Col::Text),
                ("oci (default)", Col::Text),
                ("oci-legacy", Col::Text),
                ("systemd", Col::Text),
            ]);
            for s in [2u64, 100, 512, 1024, 2048, 10240, 102400, 262144] {
                let w = |f| {
                    convert::shares_to_weight(s, f)
                        .map(|v| v.to_string())
                        .unwrap_or_default()
                };
                t.row([
                    s.to_string(),
                    w(SharesFormula::Oci),
                    w(SharesFormula::OciLegacy),
                    w(SharesFormula::Systemd),
                ]);
            }
        }
        "blkio_weight_to_io_weight"
        | "weight_device_to_io_weight"
        | "blkio_weight_to_bfq"
        | "weight_device_to_bfq" => {
            t = Table::new(&[
                ("blkio.weight", Col::Text),
                ("systemd io.weight (default)", Col::Text),
                ("systemd io.bfq.weight", Col::Text),
                ("oci io.weight", Col::Text),
                ("oci io.bfq.weight", Col::Text),
            ]);
            for w in [10u64, 100, 250, 500, 1000] {
                let show = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
                t.row([
                    w.to_string(),
                    show(convert::blkio_weight_to_io_weight(w, BlkioFormula::Systemd)),
                    show(convert::blkio_weight_to_bfq(w, BlkioFormula::Systemd)),
                    show(convert::blkio_weight_to_io_weight(w, BlkioFormula::Oci)),
                    show(convert::blkio_weight_to_bfq(w, BlkioFormula::Oci)),
                ]);
            }
        }
        "quota_period_to_max" => {
            t = Table::new(&[
                ("cfs_quota_us", Col::Text),
                ("cfs_period_us", Col::Text),
                ("cpu.max", Col::Text),
            ]);
            for (q, p) in [
                (-1i64, 100000u64),
                (50000, 100000),
                (200000, 100000),
                (25000, 50000),
                (50000, 2_000_000),
            ] {
                let v = convert::quota_period_to_max(q, p).unwrap_or_else(|e| format!("error: {e}"));
                t.row([q.to_string(), p.to_string(), v]);
            }
        }
        "memsw_to_swap_max" => {
            use crate::model::value::Limit;
            t = Table::new(&[
                ("memory.limit_in_bytes", Col::Text),
                ("memsw.limit_in_bytes", Col::Text),
                ("memory.swap.max", Col::Text),
            ]);
            let g = 1u64 << 30;
            for (m, s) in [
                (Some(Limit::Max), None),
                (Some(Limit::Bytes(g)), Some(Limit::Bytes(g))),
                (Some(Limit::Bytes(g)), Some(Limit::Bytes(2 * g))),
                (Some(Limit::Bytes(g)), Some(Limit::Max)),
                (Some(Limit::Max), Some(Limit::Bytes(g))),
                (Some(Limit::Bytes(2 * g)), Some(Limit::Bytes(g))),
            ] {
                let show = |l: Option<Limit>| l.map_or_else(|| "(unset)".into(), |l| l.to_string());
                let out = match convert::memsw_to_swap_max(m, s) {
                    Ok(Some(v)) => v,
                    Ok(None) => "(not written)".into(),
                    Err(e) => format!("error: {e}"),
                };
                t.row([show(m), show(s), out]);
            }
        }
        _ => return None,
    }
    Some(t)
}

fn describe(r: &LoadedRule, style: &Style, out: &mut String) {
    let rule = &r.rule;
    let _ = writeln!(out, "rule {} ({})", rule.id, r.origin);
    let _ = writeln!(out, "  {}", rule.title);
    if let Some(c) = &rule.matcher.controller {
        let _ = writeln!(out, "  controller: {c}");
    }
    if let Some(f) = rule.matcher.file.as_ref().or(rule.matcher.file_regex.as_ref()) {
        let _ = writeln!(out, "  v1 file: {f}");
    }
    if let Some(f) = &rule.matcher.fact {
        let _ = writeln!(out, "  host fact: {}", f.rules_name());
    }
    if let Some(d) = &rule.default {
        let _ = writeln!(out, "  default: {}", serde_json::to_string(d).unwrap_or_default());
    }
    if let Some(c) = &rule.convert {
        let _ = writeln!(out, "  v2 target: {}", c.target);
        let info = FUNCTIONS.iter().find(|f| f.name == c.function);
        let _ = writeln!(
            out,
            "  function: {}{} — {}",
            c.function,
            if c.params.is_empty() {
                String::new()
            } else {
                format!(" {:?}", c.params)
            },
            info.map_or("", |i| i.summary)
        );
        match c.function.as_str() {
            "shares_to_weight" => {
                for f in SharesFormula::ALL {
                    let _ = writeln!(out, "    {f}: {}", f.formula());
                }
            }
            "blkio_weight_to_io_weight" | "weight_device_to_io_weight" => {
                for f in [BlkioFormula::Oci, BlkioFormula::Systemd] {
                    let _ = writeln!(out, "    {f}: {}", f.formula());
                }
            }
            _ => {}
        }
        if let Some(t) = samples(&c.function) {
            out.push_str(&t.render(style));
        }
    }
    if let Some(f) = &rule.finding {
        let _ = writeln!(out, "  finding: {}", f.severity);
        let _ = writeln!(out, "  why: {}", f.why.trim());
        let _ = writeln!(out, "  remediation: {}", f.remediation.trim());
    }
    if let Some(k) = &rule.kernel {
        let _ = writeln!(out, "  kernel: {k}");
    }
    if let Some(s) = &rule.source {
        let _ = writeln!(out, "  source: {s}");
    }
}

/// Explain a rule id or v1 file; `None` when nothing matches.
pub fn explain(target: &str, rules: &RuleSet, style: &Style) -> Option<String> {
    let mut matched: Vec<&LoadedRule> = Vec::new();
    if let Some(r) = rules.get(target) {
        matched.push(r);
    }
    for r in rules.rules() {
        if r.is_file_rule()
            && r.file_captures(target).is_some()
            && !matched.iter().any(|m| m.rule.id == r.rule.id)
        {
            matched.push(r);
        }
    }
    if matched.is_empty() {
        return builtin_finding(target).map(|t| style.wrap_text(&t));
    }
    let mut out = String::new();
    for (i, r) in matched.into_iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        describe(r, style, &mut out);
    }
    Some(style.wrap_text(&out))
}

/// A built-in id (planner, owners, readiness, scan): those findings come
/// from cgmig's own tables (`assess::catalog`), not from rules files, so a
/// user who meets one in a report can still ask what it means. One id may
/// have several kinds (the same id for three reasons of renaming, three
/// severities of a conflict, one readiness row per component).
fn builtin_finding(id: &str) -> Option<String> {
    let kinds = crate::assess::catalog::builtin(id);
    if kinds.is_empty() {
        return None;
    }
    let mut out = String::new();
    for k in kinds {
        let _ = writeln!(
            out,
            "{}: {}\n  severity: {}\n  origin: built in ({})\n  remediation: {}",
            k.id, k.title, k.severity, k.origin, k.remediation
        );
    }
    Some(out)
}

/// One line per rule.
pub fn list(rules: &RuleSet, style: &Style) -> String {
    let mut t = Table::new(&[
        ("id", Col::Key),
        ("matches", Col::Text),
        ("does", Col::Text),
        ("origin", Col::Text),
    ]);
    for r in rules.rules() {
        let m = &r.rule.matcher;
        let what = match (&m.file, &m.file_regex, &m.fact) {
            (Some(f), _, _) => f.clone(),
            (_, Some(re), _) => format!("/{re}/"),
            (_, _, Some(f)) => format!("fact {}", f.rules_name()),
            _ => String::new(),
        };
        let mut does = Vec::new();
        if let Some(c) = &r.rule.convert {
            does.push(format!("→ {} ({})", c.target, c.function));
        }
        if let Some(f) = &r.rule.finding {
            does.push(f.severity.to_string());
        }
        if does.is_empty() {
            does.push("default only".into());
        }
        t.row([r.rule.id.clone(), what, does.join(", "), r.origin.to_string()]);
    }
    let mut b = Table::new(&[
        ("id", Col::Key),
        ("severity", Col::Key),
        ("what", Col::Text),
        ("origin", Col::Text),
    ]);
    let builtins = crate::assess::catalog::builtins();
    for k in &builtins {
        b.row([
            k.id.to_string(),
            k.severity.to_string(),
            k.title.to_string(),
            format!("built in ({})", k.origin),
        ]);
    }
    format!(
        "{}{} rules\n\nBuilt-in findings (planner, owners, readiness, scan):\n{}{} built-in kinds\n",
        t.render(style),
        rules.rules().len(),
        b.render(style),
        builtins.len()
    )
}
