//! Plan renderers: the human dry-run report (table, markdown), the versioned
//! data (json, yaml) and a Graphviz drawing (dot).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};

use super::model::{NodeType, Plan, PlanNode, PlanOwners};
use crate::owners::Manager;
use crate::report::{DataError, DataFormat, to_data};
use crate::rules::Severity;

/// Output formats of `cgmig plan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanFormat {
    /// Human dry-run report with tables.
    Table,
    /// The same report in Markdown.
    Markdown,
    /// Versioned JSON (`schema: cgmig.plan/v1`), what `apply` reads.
    Json,
    /// The same document as YAML.
    Yaml,
    /// Graphviz: v1 hierarchies beside the v2 tree, with origin edges.
    Dot,
}

/// A plan that could not be written: the serializer's error, or the
/// writer's.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// JSON or YAML could not be made.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The writer failed (a closed pipe, a full disk).
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Write a plan to `w`, byte for byte what [`render`] returns.
///
/// Why: the JSON of a 100k-cgroup host is over 100 MB; serialized into a
/// `String` first, it doubled the memory of writing the plan. JSON and YAML
/// stream through the serializer (give a buffered writer); the human and
/// Graphviz formats are a fraction of the size and are written whole.
pub fn render_to(p: &Plan, f: PlanFormat, w: &mut dyn std::io::Write) -> Result<(), RenderError> {
    match f {
        PlanFormat::Json => {
            serde_json::to_writer_pretty(&mut *w, p).map_err(|e| match e.is_io() {
                true => RenderError::Io(e.into()),
                false => RenderError::Data(e.into()),
            })?;
            w.write_all(b"\n")?;
        }
        PlanFormat::Yaml => serde_yaml_ng::to_writer(&mut *w, p).map_err(DataError::from)?,
        PlanFormat::Table | PlanFormat::Markdown | PlanFormat::Dot => {
            w.write_all(render(p, f)?.as_bytes())?;
        }
    }
    Ok(())
}

/// Render a plan.
/// Human formats cannot fail; JSON and YAML return the serializer's error
/// (the CLI exits 2) rather than an empty document.
pub fn render(p: &Plan, f: PlanFormat) -> Result<String, DataError> {
    Ok(match f {
        PlanFormat::Table => human(p, false),
        PlanFormat::Markdown => human(p, true),
        PlanFormat::Json => to_data(p, DataFormat::Json)?,
        PlanFormat::Yaml => to_data(p, DataFormat::Yaml)?,
        PlanFormat::Dot => dot(p),
    })
}

fn tree(p: &Plan) -> String {
    let mut kids_of: BTreeMap<&str, Vec<&PlanNode>> = BTreeMap::new();
    for n in &p.nodes {
        if let Some(pp) = n.parent_path() {
            kids_of.entry(pp).or_default().push(n);
        }
    }
    let Some(root) = p.nodes.first() else {
        return String::new();
    };
    let label = |n: &PlanNode, top: bool| -> String {
        let mut line = if top {
            n.path.clone()
        } else {
            n.path.rsplit('/').next().unwrap_or("").to_string()
        };
        match n.node_type {
            NodeType::Domain => {}
            NodeType::DomainThreaded => line.push_str("  <domain threaded>"),
            NodeType::Threaded => line.push_str("  <threaded>"),
        }
        if !n.subtree_control.is_empty() {
            let _ = write!(line, "  [+{}]", n.subtree_control.join(" +"));
        }
        if !n.processes.is_empty() {
            let _ = write!(line, "  ({} procs)", n.processes.len());
        }
        if !n.threads.is_empty() {
            let _ = write!(line, "  ({} threads)", n.threads.len());
        }
        if let Some(o) = n.owner {
            let _ = write!(line, "  [delegated to uid {}]", o.uid);
        }
        if let Some(note) = &n.note {
            let _ = write!(line, "  ({note})");
        }
        if !n.settings.is_empty() {
            let s: Vec<String> = n
                .settings
                .iter()
                .map(|s| format!("{}={}", s.file, s.value.replace('\n', "; ")))
                .collect();
            let _ = write!(line, "  {}", s.join(" "));
        }
        line
    };
    crate::report::draw_tree(
        root,
        |n: &PlanNode| kids_of.get(n.path.as_str()).cloned().unwrap_or_default(),
        label,
    )
}

fn table(md: bool, header: &[&str], rows: Vec<Vec<String>>) -> String {
    if md {
        let mut s = format!("| {} |\n|{}\n", header.join(" | "), "---|".repeat(header.len()));
        for r in rows {
            let cells: Vec<String> = r
                .iter()
                .map(|c| c.replace('|', "\\|").replace('\n', "<br>"))
                .collect();
            let _ = writeln!(s, "| {} |", cells.join(" | "));
        }
        s
    } else {
        let mut t = Table::new();
        t.load_preset(UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_width(150)
            .set_header(header.to_vec());
        for r in rows {
            t.add_row(r);
        }
        format!("{t}\n")
    }
}

/// The human report (text or Markdown): header, target tree, then one
/// section per kind of content, each left out when empty.
fn human(p: &Plan, md: bool) -> String {
    let mut out = String::new();
    human_header(p, md, &mut out);
    out.push_str(&heading(md, "Target v2 tree"));
    if md {
        out.push_str("```\n");
    }
    out.push_str(&tree(p));
    if md {
        out.push_str("```\n");
    }
    settings_section(p, md, &mut out);
    conflicts_section(p, md, &mut out);
    findings_section(p, md, &mut out);
    stages_section(p, md, &mut out);
    let _ = writeln!(out, "\nactions: {}", action_counts(p));
    out
}

/// A section heading in text or Markdown.
fn heading(md: bool, s: &str) -> String {
    if md {
        format!("\n## {s}\n\n")
    } else {
        format!("\n{s}\n")
    }
}

/// Title (Markdown), the one-line summary, the spine and the blocker line.
fn human_header(p: &Plan, md: bool, out: &mut String) {
    if md {
        let _ = writeln!(
            out,
            "# cgroup v2 plan: {}\n",
            p.host.hostname.as_deref().unwrap_or("host")
        );
    }
    let _ = writeln!(
        out,
        "plan for {} — kernel {} — mode {:?}{} — {} nodes, {} actions, controllers: {}",
        p.host.hostname.as_deref().unwrap_or("?"),
        p.host.kernel.as_deref().unwrap_or("?"),
        p.host.mode,
        p.stage.map(|s| format!(" — stage {s}")).unwrap_or_default(),
        p.nodes.len(),
        p.actions.len(),
        if p.controllers.is_empty() {
            "none".into()
        } else {
            p.controllers.join(" ")
        }
    );
    let tried: Vec<String> = p
        .spine
        .tried
        .iter()
        .map(|(h, n)| format!("{h} first: {n}"))
        .collect();
    let _ = writeln!(
        out,
        "spine: {} ({} settings affected by conflicts; tried {})",
        p.spine.order.join(" > "),
        p.spine.settings_affected,
        tried.join(", ")
    );
    let blockers = p
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Blocker)
        .count();
    if blockers > 0 {
        let _ = writeln!(
            out,
            "BLOCKED: {blockers} blocker(s) below; v2 cannot express this host as it is"
        );
    }
}

/// "Before → after": every converted setting with its v1 origin.
fn settings_section(p: &Plan, md: bool, out: &mut String) {
    let mut rows = Vec::new();
    for n in &p.nodes {
        for s in &n.settings {
            let inputs: Vec<String> = s
                .inputs
                .iter()
                .map(|(k, v)| format!("{k}={}", v.replace('\n', "; ")))
                .collect();
            rows.push(vec![
                n.path.clone(),
                format!("{}:{}\n{}", s.origin.label, s.origin.path, inputs.join("\n")),
                format!("{}={}", s.file, s.value.replace('\n', "; ")),
                format!(
                    "{}{}{}",
                    s.function,
                    s.formula.as_ref().map(|f| format!(" ({f})")).unwrap_or_default(),
                    if s.split_copy {
                        "\ncopied onto a piece of a split cgroup"
                    } else {
                        ""
                    }
                ),
            ]);
        }
    }
    if !rows.is_empty() {
        out.push_str(&heading(md, "Before → after"));
        out.push_str(&table(
            md,
            &["v2 node", "v1 origin", "v2 setting", "conversion"],
            rows,
        ));
    }
}

/// Cgroups of one hierarchy that cross cgroups of another.
fn conflicts_section(p: &Plan, md: bool, out: &mut String) {
    if p.conflicts.is_empty() {
        return;
    }
    out.push_str(&heading(md, "Conflicts (crossing cgroups)"));
    let rows = p
        .conflicts
        .iter()
        .map(|c| {
            vec![
                format!("{}:{}", c.rejected.label, c.rejected.path),
                c.crosses
                    .iter()
                    .map(|o| format!("{}:{}", o.label, o.path))
                    .collect::<Vec<_>>()
                    .join("\n"),
                format!(
                    "both: {:?}\nonly first: {:?}\nonly second: {:?}",
                    c.shared_tasks, c.only_rejected, c.only_crossed
                ),
                c.resolution.clone(),
            ]
        })
        .collect();
    out.push_str(&table(
        md,
        &["cgroup", "crosses", "processes", "resolution"],
        rows,
    ));
}

/// Findings of warning severity and above, one row per (severity, rule).
fn findings_section(p: &Plan, md: bool, out: &mut String) {
    let serious: Vec<_> = p
        .findings
        .iter()
        .filter(|f| f.severity >= Severity::Warning)
        .collect();
    if serious.is_empty() {
        return;
    }
    out.push_str(&heading(md, "Losses, behaviour changes and blockers"));
    let mut grouped: BTreeMap<(std::cmp::Reverse<Severity>, &str), Vec<&crate::rules::Finding>> =
        BTreeMap::new();
    for f in serious {
        grouped
            .entry((std::cmp::Reverse(f.severity), f.rule.as_str()))
            .or_default()
            .push(f);
    }
    let rows = grouped
        .into_iter()
        .map(|((sev, rule), fs)| {
            vec![
                sev.0.to_string(),
                rule.to_string(),
                fs.len().to_string(),
                format!("{}\n{}", fs[0].title, fs[0].why),
                fs[0].remediation.to_string(),
            ]
        })
        .collect();
    out.push_str(&table(
        md,
        &["severity", "rule", "count", "what (first)", "remediation"],
        rows,
    ));
}

/// The boots a staged move takes.
fn stages_section(p: &Plan, md: bool, out: &mut String) {
    if p.stages.is_empty() {
        return;
    }
    out.push_str(&heading(md, "Stages (one boot each)"));
    let rows = p
        .stages
        .iter()
        .map(|s| vec![s.number.to_string(), s.adds.join(","), s.cmdline.clone()])
        .collect();
    out.push_str(&table(md, &["stage", "moves to v2", "kernel command line"], rows));
}

/// "3 create, 2 enable controllers, ...": the actions counted by kind.
fn action_counts(p: &Plan) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for a in &p.actions {
        let k = match a {
            super::Action::Create { .. } => "create",
            super::Action::SetType { .. } => "set type",
            super::Action::MoveProcess { .. } => "move process",
            super::Action::MoveThread { .. } => "move thread",
            super::Action::EnableControllers { .. } => "enable controllers",
            super::Action::Write { .. } => "write setting",
            super::Action::Chown { .. } => "chown (delegate)",
        };
        *counts.entry(k).or_default() += 1;
    }
    let c: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    c.join(", ")
}

fn dot_id(prefix: &str, path: &str) -> String {
    let mut s = String::from(prefix);
    for ch in path.chars() {
        if ch.is_ascii_alphanumeric() {
            s.push(ch);
        } else {
            let _ = write!(s, "_{:x}", ch as u32);
        }
    }
    s
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn dot(p: &Plan) -> String {
    let mut out = String::from("digraph cgmig_plan {\n  rankdir=LR;\n  node [shape=box, fontsize=10];\n");
    // v1 hierarchies, reconstructed from the origins.
    let mut v1: BTreeMap<(crate::model::HierarchyId, String), BTreeSet<String>> = BTreeMap::new();
    for n in &p.nodes {
        for o in &n.origins {
            let set = v1.entry((o.hierarchy, o.label.clone())).or_default();
            let mut cur = Some(o.path.as_str());
            while let Some(c) = cur {
                set.insert(c.to_string());
                cur = crate::model::path::parent(c);
            }
        }
    }
    for ((id, label), paths) in &v1 {
        let _ = writeln!(
            out,
            "  subgraph cluster_h{id} {{\n    label=\"v1 {}\"; style=dashed;",
            esc(label)
        );
        for path in paths {
            let name = if path == "/" {
                "/"
            } else {
                path.rsplit('/').next().unwrap_or("")
            };
            let _ = writeln!(
                out,
                "    {} [label=\"{}\"];",
                dot_id(&format!("h{id}_"), path),
                esc(name)
            );
            if let Some(pp) = crate::model::path::parent(path) {
                let _ = writeln!(
                    out,
                    "    {} -> {};",
                    dot_id(&format!("h{id}_"), pp),
                    dot_id(&format!("h{id}_"), path)
                );
            }
        }
        out.push_str("  }\n");
    }
    out.push_str("  subgraph cluster_v2 {\n    label=\"v2 plan\"; style=bold;\n");
    for n in &p.nodes {
        let name = if n.path == "/" {
            "/"
        } else {
            n.path.rsplit('/').next().unwrap_or("")
        };
        let mut label = esc(name);
        match n.node_type {
            NodeType::Domain => {}
            NodeType::DomainThreaded => label.push_str("\\n(domain threaded)"),
            NodeType::Threaded => label.push_str("\\n(threaded)"),
        }
        for s in n.settings.iter().take(4) {
            let _ = write!(label, "\\n{}={}", esc(&s.file), esc(&s.value.replace('\n', "; ")));
        }
        let style = if n.owner.is_some() { ", color=blue" } else { "" };
        let _ = writeln!(out, "    {} [label=\"{label}\"{style}];", dot_id("v2_", &n.path));
        if let Some(pp) = n.parent_path() {
            let _ = writeln!(out, "    {} -> {};", dot_id("v2_", pp), dot_id("v2_", &n.path));
        }
    }
    out.push_str("  }\n");
    for n in &p.nodes {
        for o in &n.origins {
            let _ = writeln!(
                out,
                "  {} -> {} [style=dotted, arrowhead=open, constraint=false];",
                dot_id(&format!("h{}_", o.hierarchy), &o.path),
                dot_id("v2_", &n.path)
            );
        }
    }
    out.push_str("}\n");
    out
}

/// The owners section of the plan's table output.
pub fn owners_section(p: &Plan) -> String {
    let o: &PlanOwners = &p.owners;
    if o.is_empty() {
        return String::new();
    }
    let mut out = String::from("\nOwners (cgmig writes only the custom and unowned nodes)\n");
    crate::owners::owners_table(&o.nodes, &mut out);
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
