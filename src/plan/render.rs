//! Plan renderers: the human dry-run report (table, markdown), the versioned
//! data (json, yaml) and a Graphviz drawing (dot).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use super::model::{NodeType, Plan, PlanNode, PlanOwners};
use crate::owners::Manager;
use crate::report::escape;
use crate::report::table::{Cell, Col, Table};
use crate::report::{DataError, DataFormat, Style, to_data};
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

/// Render a plan (human formats at [`Style::PLAIN`]).
/// Human formats cannot fail; JSON and YAML return the serializer's error
/// (the CLI exits 2) rather than an empty document.
pub fn render(p: &Plan, f: PlanFormat) -> Result<String, DataError> {
    render_with(p, f, &Style::PLAIN, Severity::Warning)
}

/// Render a plan; the table fits `style` (markdown keeps every cell whole),
/// and both list findings from `min` up.
pub fn render_with(p: &Plan, f: PlanFormat, style: &Style, min: Severity) -> Result<String, DataError> {
    Ok(match f {
        PlanFormat::Table => human(p, None, style, min),
        PlanFormat::Markdown => human(p, Some(()), &Style::UNBOUNDED, min),
        PlanFormat::Json => to_data(p, DataFormat::Json)?,
        PlanFormat::Yaml => to_data(p, DataFormat::Yaml)?,
        PlanFormat::Dot => dot(p),
    })
}

/// The target tree, one line per node cut to the style's width (the
/// settings, with human units, last on the line).
fn tree(p: &Plan, style: &Style) -> String {
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
            escape::line(&n.path).into_owned()
        } else {
            escape::line(n.path.rsplit('/').next().unwrap_or("")).into_owned()
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
            let s: Vec<String> = n.settings.iter().map(setting_text).collect();
            let _ = write!(line, "  {}", s.join(" "));
        }
        line
    };
    let drawn = crate::report::draw_tree(
        root,
        |n: &PlanNode| kids_of.get(n.path.as_str()).cloned().unwrap_or_default(),
        label,
    );
    drawn.lines().map(|l| style.fit(l) + "\n").collect()
}

/// `file=value (human)`, one line, escaped.
fn setting_text(s: &super::Setting) -> String {
    let value = crate::report::units::with_units(&s.file, &s.value.replace('\n', "; "));
    escape::line(&format!("{}={value}", s.file)).into_owned()
}

/// A table as text fitting the style, or as markdown.
fn table(md: Option<()>, t: &Table, style: &Style) -> String {
    match md {
        Some(()) => t.markdown(),
        None => t.render(style),
    }
}

/// The human report (text or Markdown): header and summary, the stages
/// (the first thing a rollout needs), the target tree, then one section per
/// kind of content, each left out when empty.
fn human(p: &Plan, md: Option<()>, style: &Style, min: Severity) -> String {
    let mut out = String::new();
    human_header(p, md, style, &mut out);
    stages_section(p, md, style, &mut out);
    out.push_str(&heading(md, style, "Target v2 tree"));
    if md.is_some() {
        out.push_str("```\n");
    }
    out.push_str(&tree(p, style));
    if md.is_some() {
        out.push_str("```\n");
    }
    settings_section(p, md, style, &mut out);
    conflicts_section(p, md, style, &mut out);
    findings_section(p, md, style, min, &mut out);
    let _ = write!(
        out,
        "\n{}",
        style.wrap(&format!("actions: {}", action_counts(p)), 2)
    );
    out
}

/// A section heading in text or Markdown.
fn heading(md: Option<()>, style: &Style, s: &str) -> String {
    match md {
        Some(()) => format!("\n## {s}\n\n"),
        None => format!("\n{}\n", style.bold(s)),
    }
}

/// Title (Markdown), the summary (boots, what cgmig writes, what owners
/// rebuild), the host line, the spine and the blocker line.
fn human_header(p: &Plan, md: Option<()>, style: &Style, out: &mut String) {
    let host = escape::line(p.host.hostname.as_deref().unwrap_or("?")).into_owned();
    if md.is_some() {
        let _ = writeln!(out, "# cgroup v2 plan: {}\n", escape::md_cell(&host));
    }
    // Markdown joins adjacent lines into one paragraph: a blank line
    // between them keeps each on its own.
    let gap = if md.is_some() { "\n" } else { "" };
    out.push_str(&style.wrap(&summary(p), 2));
    out.push_str(gap);
    let host_line = format!(
        "plan for {host} — kernel {} — mode {:?}{} — {} nodes, {} actions, controllers: {}",
        escape::line(p.host.kernel.as_deref().unwrap_or("?")),
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
    out.push_str(&style.wrap(&host_line, 2));
    out.push_str(gap);
    let tried: Vec<String> = p
        .spine
        .tried
        .iter()
        .map(|(h, n)| format!("{h} first: {n}"))
        .collect();
    let spine = format!(
        "spine: {} ({} settings affected by conflicts; tried {})",
        p.spine.order.join(" > "),
        p.spine.settings_affected,
        tried.join(", ")
    );
    out.push_str(&style.wrap(&escape::line(&spine), 2));
    // The assessment's verdict (the audit's): blockers no waiver accepts.
    let blockers = p.blockers().count();
    if blockers > 0 {
        let line = format!("BLOCKED: {blockers} blocker(s) below; v2 cannot express this host as it is");
        out.push_str(&style.severity(Severity::Blocker, style.wrap(&line, 2).trim_end()));
        out.push('\n');
    } else if let Some(v) = p.verdict {
        out.push_str(&style.wrap(&format!("verdict: {}", v.label()), 2));
    }
}

/// The answer first: how many boots, how many cgroups cgmig writes, how
/// many their owners (systemd, runtimes) rebuild.
fn summary(p: &Plan) -> String {
    let nodes = p.nodes.iter().filter(|n| n.path != "/");
    let (mut cgmig, mut owners) = (0, 0);
    for n in nodes {
        match super::writable_by_cgmig(p, &n.path) {
            Ok(()) => cgmig += 1,
            Err(_) => owners += 1,
        }
    }
    let boots = match (p.stage, p.stages.len()) {
        (Some(n), total) => format!("stage {n} of {total}"),
        (None, 0) => "no boot (nothing on v1)".to_string(),
        (None, 1) => "1 boot".to_string(),
        (None, n) => format!("{n} boots"),
    };
    format!(
        "summary: {boots}; cgmig writes {cgmig} cgroups, their owners rebuild {owners}; {} actions",
        p.actions.len()
    )
}

/// "Before → after": every converted setting with its v1 origin.
fn settings_section(p: &Plan, md: Option<()>, style: &Style, out: &mut String) {
    let mut t = Table::new(&[
        ("v2 node", Col::Text),
        ("v1 origin", Col::Text),
        ("v2 setting", Col::Text),
        ("conversion", Col::Text),
    ]);
    for n in &p.nodes {
        for s in &n.settings {
            let inputs: Vec<String> = s
                .inputs
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{k}={}",
                        crate::report::units::with_units(k, &v.replace('\n', "; "))
                    )
                })
                .collect();
            t.row([
                n.path.clone(),
                format!("{}:{}\n{}", s.origin.label, s.origin.path, inputs.join("\n")),
                format!(
                    "{}={}",
                    s.file,
                    crate::report::units::with_units(&s.file, &s.value.replace('\n', "; "))
                ),
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
    if !t.is_empty() {
        out.push_str(&heading(md, style, "Before → after"));
        out.push_str(&table(md, &t, style));
    }
}

/// Cgroups of one hierarchy that cross cgroups of another.
fn conflicts_section(p: &Plan, md: Option<()>, style: &Style, out: &mut String) {
    if p.conflicts.is_empty() {
        return;
    }
    out.push_str(&heading(md, style, "Conflicts (crossing cgroups)"));
    let mut t = Table::new(&[
        ("cgroup", Col::Text),
        ("crosses", Col::Text),
        ("processes", Col::Text),
        ("resolution", Col::Text),
    ]);
    for c in &p.conflicts {
        t.row([
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
        ]);
    }
    out.push_str(&table(md, &t, style));
}

/// Findings of severity `min` and above, one row per (severity, rule).
fn findings_section(p: &Plan, md: Option<()>, style: &Style, min: Severity, out: &mut String) {
    let serious: Vec<_> = p.findings.iter().filter(|f| f.severity >= min).collect();
    if serious.is_empty() {
        return;
    }
    out.push_str(&heading(md, style, "Losses, behaviour changes and blockers"));
    let mut grouped: BTreeMap<(std::cmp::Reverse<Severity>, &str), Vec<&crate::rules::Finding>> =
        BTreeMap::new();
    for f in serious {
        grouped
            .entry((std::cmp::Reverse(f.severity), f.rule.as_str()))
            .or_default()
            .push(f);
    }
    let mut t = Table::new(&[
        ("severity", Col::Key),
        ("rule", Col::Key),
        ("count", Col::Num),
        ("what (first)", Col::Text),
        ("remediation", Col::Text),
    ]);
    for ((sev, rule), fs) in grouped {
        let count = match fs.iter().filter(|f| f.waived.is_some()).count() {
            0 => fs.len().to_string(),
            w => format!("{} ({w} waived)", fs.len()),
        };
        t.row([
            Cell::severity(sev.0, sev.0.to_string()),
            rule.into(),
            count.into(),
            format!("{}\n{}", fs[0].title, fs[0].why).into(),
            fs[0].remediation.to_string().into(),
        ]);
    }
    out.push_str(&table(md, &t, style));
    for l in crate::audit::waived_lines(&p.findings) {
        let l = if md.is_some() {
            escape::md_cell(&l)
        } else {
            escape::line(&l).into_owned()
        };
        let _ = writeln!(out, "waived: {l}");
    }
}

/// The boots a staged move takes, and why each is where it is.
fn stages_section(p: &Plan, md: Option<()>, style: &Style, out: &mut String) {
    if p.stages.is_empty() {
        return;
    }
    out.push_str(&heading(md, style, "Stages (one boot each)"));
    let mut t = Table::new(&[
        ("stage", Col::Num),
        ("moves to v2", Col::Text),
        ("kernel command line", Col::Text),
        ("why here", Col::Text),
    ]);
    for s in &p.stages {
        let mark = if p.stage == Some(s.number) { " ◀" } else { "" };
        t.row([
            format!("{}{mark}", s.number),
            s.adds.join(","),
            s.cmdline.clone(),
            s.why.clone(),
        ]);
    }
    out.push_str(&table(md, &t, style));
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

/// A Graphviz string: escaped for a human first (a label is drawn text),
/// then `\` and `"` for dot.
fn esc(s: &str) -> String {
    escape::line(s).replace('\\', "\\\\").replace('"', "\\\"")
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
        // The cgroup2 hierarchy of a hybrid host is "v2 unified", not v1.
        let version = if *id == crate::model::HierarchyId::UNIFIED || label == "unified" {
            "v2"
        } else {
            "v1"
        };
        let _ = writeln!(
            out,
            "  subgraph cluster_h{id} {{\n    label=\"{version} {}\"; style=dashed;",
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
