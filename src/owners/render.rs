//! The human-readable owners table, for the audit's section ([`audit_section`])
//! and the plan's (`plan::owners_section`).

use std::collections::BTreeMap;
use std::fmt::Write;

use super::detect::{OwnerMap, detect};
use crate::model::Snapshot;

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

/// One line per subtree of one owner, with the evidence beyond the path
/// (the audit's and the plan's owners sections).
pub fn owners_table(map: &OwnerMap, out: &mut String) {
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
                .map(|c| c.text.as_str())
                .filter(|e| !e.starts_with("path "))
                .collect();
            if !ev.is_empty() {
                let _ = writeln!(out, "      evidence: {}", ev.join("; "));
            }
            let _ = writeln!(out, "      decided by: {}", o.decided_by);
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
