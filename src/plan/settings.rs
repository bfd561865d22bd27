//! Settings step: the converted v2 settings a plan node carries, at most one
//! value per file (and per key of a keyed file).
//!
//! A node collects settings from every v1 cgroup merged into it and, after a
//! conflict split, copies of a crossing cgroup's settings. Writing two values
//! to one file means the later wins, silently; so the node's own value wins
//! over a split copy (it is the more specific: in v1 the process sat in that
//! cgroup), and among own values the first (highest-priority hierarchy) wins.

use std::collections::BTreeSet;

use petgraph::graph::NodeIndex;

use super::model::{Origin, Setting};
use super::unify::Prepared;
use crate::model::Version;

/// Files whose value is one line per key (`MAJ:MIN ...`, `default N`).
pub fn is_keyed(file: &str) -> bool {
    matches!(
        file,
        "io.max" | "io.weight" | "io.bfq.weight" | "io.latency" | "rdma.max" | "misc.max"
    )
}

/// The key of one line of a keyed file: its first word.
pub fn line_key(line: &str) -> &str {
    line.split_whitespace().next().unwrap_or("")
}

/// Keep one value per file (and per key of keyed files): own settings
/// before split copies, first come first served.
///
/// The result has no spare capacity: a plan holds a vector of settings per
/// node, and growth left three unused slots in most of them.
pub fn one_value_per_file(mut settings: Vec<Setting>) -> Vec<Setting> {
    if settings.len() < 2 {
        settings.shrink_to_fit();
        return settings;
    }
    let (own, copies): (Vec<Setting>, Vec<Setting>) = settings.into_iter().partition(|s| !s.split_copy);
    let mut out: Vec<Setting> = Vec::new();
    for s in own.into_iter().chain(copies) {
        if !is_keyed(&s.file) {
            if !out.iter().any(|x| x.file == s.file) {
                out.push(s);
            }
            continue;
        }
        let taken: BTreeSet<String> = out
            .iter()
            .filter(|x| x.file == s.file)
            .flat_map(|x| x.value.lines().map(|l| line_key(l).to_string()))
            .collect();
        let rest: Vec<&str> = s.value.lines().filter(|l| !taken.contains(line_key(l))).collect();
        if !rest.is_empty() {
            let value = rest.join("\n");
            out.push(Setting { value, ..s });
        }
    }
    out.shrink_to_fit();
    out
}

/// Settings of one cgroup as plan settings.
pub fn settings_of(
    prep: &Prepared,
    hid: crate::model::HierarchyId,
    cg: NodeIndex,
    split_copy: bool,
) -> Vec<Setting> {
    let h = prep.hierarchy(hid);
    let origin = Origin {
        hierarchy: hid,
        label: prep.label(hid),
        path: prep.snap.cgroup(cg).path.clone(),
    };
    if h.version == Version::V2 {
        // Already v2: carry non-default values as they are.
        return prep
            .snap
            .cgroup(cg)
            .settings
            .iter()
            .filter(|(k, v)| {
                // cpu.weight.nice is another view of cpu.weight: write one.
                let derived = k.as_str() == "cpu.weight.nice"
                    && prep.snap.cgroup(cg).settings.contains_key("cpu.weight");
                !matches!(k.as_str(), "cgroup.subtree_control" | "cgroup.type")
                    && !derived
                    && !crate::model::files::is_v2_default(k, v)
            })
            .map(|(k, v)| Setting {
                file: k.clone(),
                value: v.clone(),
                origin: origin.clone(),
                rule: "v2.existing".into(),
                function: "copy".into(),
                formula: None,
                inputs: vec![(k.clone(), v.clone())],
                split_copy,
                owner: None,
                converted: None,
            })
            .collect();
    }
    prep.outcome(cg)
        .map(|o| {
            o.conversions
                .iter()
                .map(|c| Setting {
                    file: c.target.clone(),
                    value: c.value.clone(),
                    origin: origin.clone(),
                    rule: c.rule.clone(),
                    function: c.function.clone(),
                    formula: c.formula.clone(),
                    inputs: c.inputs.clone(),
                    split_copy,
                    owner: None,
                    converted: None,
                })
                .collect()
        })
        .unwrap_or_default()
}
