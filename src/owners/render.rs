//! Human-readable owners sections for `audit` and `plan` table output.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::annotate::PlanOwners;
use super::detect::{Manager, OwnerMap, detect};
use crate::model::Snapshot;
use crate::plan::Plan;

/// A run of paths with one owner label: a subtree's top and its size.
struct Subtree<'a> {
    /// The first path of the run.
    top: &'a str,
    /// The owner's label.
    label: String,
    /// Paths in the run, the top included.
    paths: usize,
}

/// Top-level subtrees per owner label: the first path of each run of one owner.
fn subtrees(map: &BTreeMap<String, super::Owner>) -> Vec<Subtree<'_>> {
    let mut out: Vec<Subtree<'_>> = Vec::new();
    for (path, o) in map {
        let label = o.label();
        match out.last_mut() {
            Some(s) if s.label == label && path.strip_prefix(s.top).is_some_and(|r| r.starts_with('/')) => {
                s.paths += 1;
            }
            _ => out.push(Subtree {
                top: path,
                label,
                paths: 1,
            }),
        }
    }
    out
}

fn owners_table(map: &OwnerMap, out: &mut String) {
    for Subtree {
        top: path,
        label,
        paths: n,
    } in subtrees(map)
    {
        let more = if n > 1 {
            format!(" (+{} below)", n - 1)
        } else {
            String::new()
        };
        let _ = writeln!(out, "  {path}  {label}{more}");
        // The evidence beyond the path itself (unit files, xattrs, processes).
        if let Some(o) = map.get(path) {
            let ev: Vec<&str> = o
                .evidence
                .iter()
                .map(String::as_str)
                .filter(|e| !e.starts_with("path "))
                .collect();
            if !ev.is_empty() {
                let _ = writeln!(out, "      evidence: {}", ev.join("; "));
            }
        }
    }
}

/// The owners section of the audit's table output.
pub fn audit_section(snap: &Snapshot) -> String {
    let map = detect(snap);
    if map.is_empty() {
        return String::new();
    }
    let mut out = String::from("\nOwners (who writes each cgroup; one line per subtree)\n");
    owners_table(&map, &mut out);
    out
}

/// The owners section of the plan's table output.
pub fn plan_section(p: &Plan) -> String {
    let o: &PlanOwners = &p.owners;
    if o.is_empty() {
        return String::new();
    }
    let mut out = String::from("\nOwners (cgmig writes only the custom and unowned nodes)\n");
    owners_table(&o.nodes, &mut out);
    if let Some(ctx) = &o.systemd {
        let _ = writeln!(
            out,
            "\nsystemd {} rebuilds its units on v2 (DefaultTasksMax={}, task base {})",
            ctx.version
                .map_or_else(|| "(version unknown)".into(), |v| v.to_string()),
            ctx.default_tasks_max,
            ctx.tasks_base.map_or_else(|| "unknown".into(), |v| v.to_string())
        );
    }
    for u in o
        .units
        .iter()
        .filter(|u| !u.files.is_empty() || u.dropin.is_some())
    {
        let _ = writeln!(out, "  {} ({})", u.unit, u.path);
        for w in &u.files {
            let _ = writeln!(
                out,
                "    {} = {}   <- {} [{}]",
                w.file, w.value, w.from, w.formula
            );
        }
        for d in &u.differences {
            let _ = writeln!(out, "    differs: {d}");
        }
        if let Some(f) = &u.dropin {
            let _ = writeln!(out, "    drop-in {}:", f.path);
            for l in f.text.lines() {
                let _ = writeln!(out, "      {l}");
            }
        }
    }
    for d in &o.delegations {
        let state = if d.delegates { "delegates" } else { "MUST DELEGATE" };
        let _ = writeln!(
            out,
            "\n{} {state} [{}] to the manager of {}",
            d.unit,
            d.controllers.join(" "),
            d.subtree.join(", ")
        );
        if let Some(f) = &d.dropin {
            let _ = writeln!(out, "  drop-in {}:", f.path);
            for l in f.text.lines() {
                let _ = writeln!(out, "    {l}");
            }
        }
    }
    for s in &o.suggestions {
        let how = if s.existing_unit {
            "delegating drop-in for"
        } else {
            "suggested unit"
        };
        let _ = writeln!(
            out,
            "\n{} (custom manager, top level): {how} {} -> {}",
            s.path, s.unit, s.placed_at
        );
        let _ = writeln!(out, "  {}:", s.file.path);
        for l in s.file.text.lines() {
            let _ = writeln!(out, "    {l}");
        }
        if let Some(c) = &s.scope_command {
            let _ = writeln!(out, "  or as a scope: {c}");
        }
        for p in s.predicted.iter().take(10) {
            let _ = writeln!(out, "  on v2: {p}");
        }
    }
    for r in &o.runtimes {
        let _ = writeln!(out, "\n{} ({}): {}", r.manager, r.driver, r.paths.join(", "));
        for c in &r.changes {
            let _ = writeln!(out, "  change: {c}");
        }
        if r.manager != Manager::Custom {
            for p in r.predicted.iter().take(10) {
                let _ = writeln!(out, "  builds: {p}");
            }
        }
    }
    out
}
