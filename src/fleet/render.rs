//! Fleet renderers: table, markdown, json, prometheus (html in [`super::html`]).

use std::fmt::Write;

use super::{Bucket, FleetReport, RuleSummary, some_of};
use crate::report::table::{Cell, Col, Table};
use crate::report::{DataError, DataFormat, Style, escape, to_data};

/// Output formats of `cgmig fleet`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FleetFormat {
    /// Human tables.
    Table,
    /// Markdown for tickets and wikis.
    Markdown,
    /// Versioned JSON (`schema: cgmig.fleet/v1`).
    Json,
    /// node_exporter textfile-collector format.
    Prometheus,
    /// A self-contained HTML page with charts.
    Html,
}

/// Render a fleet report (the table at [`Style::PLAIN`]).
/// Human formats cannot fail; JSON and YAML return the serializer's error
/// (the CLI exits 2) rather than an empty document.
pub fn render(r: &FleetReport, f: FleetFormat) -> Result<String, DataError> {
    render_with(r, f, &Style::PLAIN)
}

/// Render a fleet report; the table fits `style`.
pub fn render_with(r: &FleetReport, f: FleetFormat, style: &Style) -> Result<String, DataError> {
    Ok(match f {
        FleetFormat::Table => table(r, style),
        FleetFormat::Markdown => markdown(r),
        FleetFormat::Json => to_data(r, DataFormat::Json)?,
        FleetFormat::Prometheus => prometheus(r),
        FleetFormat::Html => super::html::page(r),
    })
}

fn summary_line(r: &FleetReport) -> String {
    format!(
        "{} hosts: {} ready, {} ready with changes, {} blocked, {} incomplete; {} layout families; {} unreadable inputs",
        r.hosts,
        r.verdicts.ready,
        r.verdicts.ready_with_changes,
        r.verdicts.blocked,
        r.verdicts.incomplete,
        r.families.len(),
        r.unreadable.len()
    )
}

fn bucket_table(name: &str, buckets: &[Bucket]) -> Table {
    let mut t = Table::new(&[
        (name, Col::Text),
        ("hosts", Col::Num),
        ("ready", Col::Num),
        ("with changes", Col::Num),
        ("blocked", Col::Num),
        ("incomplete", Col::Num),
    ]);
    for b in buckets {
        t.row([
            b.value.clone(),
            b.hosts.to_string(),
            b.verdicts.ready.to_string(),
            b.verdicts.ready_with_changes.to_string(),
            b.verdicts.blocked.to_string(),
            b.verdicts.incomplete.to_string(),
        ]);
    }
    t
}

fn rule_table(rules: &[RuleSummary]) -> Table {
    let mut t = Table::new(&[
        ("rule", Col::Key),
        ("severity", Col::Key),
        ("hosts", Col::Num),
        ("which", Col::Text),
    ]);
    for r in rules {
        t.row([
            Cell::from(r.rule.clone()),
            Cell::severity(r.severity, r.severity.to_string()),
            r.hosts.to_string().into(),
            some_of(&r.members).into(),
        ]);
    }
    t
}

fn family_table(r: &FleetReport) -> Table {
    let mut t = Table::new(&[
        ("family", Col::Key),
        ("hosts", Col::Num),
        ("ready/changes/blocked/incomplete", Col::Text),
        ("representative", Col::Text),
        ("plan", Col::Text),
        ("members", Col::Text),
    ]);
    for f in &r.families {
        let plan = f.plan.as_ref().map_or_else(
            || "run `cgmig plan` on the representative".to_string(),
            |p| format!("{} nodes, {} actions, {} stages", p.nodes, p.actions, p.stages),
        );
        t.row([
            f.id.clone(),
            f.hosts.to_string(),
            format!(
                "{}/{}/{}/{}",
                f.verdicts.ready, f.verdicts.ready_with_changes, f.verdicts.blocked, f.verdicts.incomplete
            ),
            f.representative.host.clone(),
            plan,
            some_of(&f.members),
        ]);
    }
    t
}

fn table(r: &FleetReport, style: &Style) -> String {
    let mut out = style.wrap(&summary_line(r), 2);
    out.push('\n');
    for (name, b) in [
        ("kernel", &r.by_kernel),
        ("distribution", &r.by_distribution),
        ("systemd", &r.by_systemd),
        ("mode", &r.by_mode),
    ] {
        let _ = writeln!(out, "{}", bucket_table(name, b).render(style));
    }
    if !r.blockers.is_empty() {
        let _ = writeln!(
            out,
            "blockers, by hosts affected:\n{}",
            rule_table(&r.blockers).render(style)
        );
    }
    if !r.rules.is_empty() {
        let _ = writeln!(out, "rules:\n{}", rule_table(&r.rules).render(style));
    }
    let _ = write!(out, "layout families:\n{}", family_table(r).render(style));
    for u in &r.unreadable {
        out.push_str(&style.wrap(
            &escape::line(&format!("unreadable: {}: {}", u.path.display(), u.error)),
            2,
        ));
    }
    for line in identity_notes(r) {
        let _ = writeln!(out, "{}", escape::line(&line));
    }
    out
}

/// Hosts whose inputs disagree, and inputs with no identity: said in every
/// human format (the counts above count each host once).
fn identity_notes(r: &FleetReport) -> Vec<String> {
    let mut out = Vec::new();
    for c in &r.conflicts {
        let inputs: Vec<String> = c
            .inputs
            .iter()
            .map(|i| format!("{:?} {} says {:?}", i.input, i.path.display(), i.verdict).to_lowercase())
            .collect();
        out.push(format!(
            "conflict: host {} (counted once, at its worst verdict): its {} differ: {}",
            c.host,
            c.differs.join(" and "),
            inputs.join("; ")
        ));
    }
    for p in &r.anonymous {
        out.push(format!(
            "no identity: {} names no hostname or machine id (counted as a host of its own)",
            p.display()
        ));
    }
    out
}

fn markdown(r: &FleetReport) -> String {
    let mut out = format!("# cgmig fleet report\n\n{}\n", summary_line(r));
    for (name, b) in [
        ("kernel", &r.by_kernel),
        ("distribution", &r.by_distribution),
        ("systemd", &r.by_systemd),
        ("mode", &r.by_mode),
    ] {
        let _ = write!(out, "\n### By {name}\n\n{}", bucket_table(name, b).markdown());
    }
    if !r.blockers.is_empty() {
        let _ = write!(
            out,
            "\n## Blockers by hosts affected\n\n{}",
            rule_table(&r.blockers).markdown()
        );
    }
    let _ = write!(out, "\n## Rules\n\n{}", rule_table(&r.rules).markdown());
    let _ = write!(out, "\n## Layout families\n\n{}", family_table(r).markdown());
    if !r.unreadable.is_empty() {
        let _ = writeln!(out, "\n## Unreadable inputs\n");
        for u in &r.unreadable {
            let _ = writeln!(
                out,
                "- `{}`: {}",
                escape::md_code(&u.path.display().to_string()),
                escape::md_cell(&u.error)
            );
        }
    }
    let notes = identity_notes(r);
    if !notes.is_empty() {
        let _ = writeln!(out, "\n## Host identity\n");
        for n in notes {
            let _ = writeln!(out, "- {}", escape::md_cell(&n));
        }
    }
    out
}

fn prom_label(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn prometheus(r: &FleetReport) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# HELP cgmig_fleet_hosts Hosts aggregated by cgmig fleet.\n# TYPE cgmig_fleet_hosts gauge"
    );
    let _ = writeln!(o, "cgmig_fleet_hosts{{schema=\"{}\"}} {}", r.schema, r.hosts);
    let _ = writeln!(
        o,
        "# HELP cgmig_fleet_unreadable Inputs that could not be read.\n# TYPE cgmig_fleet_unreadable gauge"
    );
    let _ = writeln!(o, "cgmig_fleet_unreadable {}", r.unreadable.len());
    let _ = writeln!(
        o,
        "# HELP cgmig_fleet_verdict_hosts Hosts per readiness verdict.\n# TYPE cgmig_fleet_verdict_hosts gauge"
    );
    for (v, n) in [
        ("ready", r.verdicts.ready),
        ("ready-with-changes", r.verdicts.ready_with_changes),
        ("blocked", r.verdicts.blocked),
        ("incomplete", r.verdicts.incomplete),
    ] {
        let _ = writeln!(o, "cgmig_fleet_verdict_hosts{{verdict=\"{v}\"}} {n}");
    }
    let _ = writeln!(
        o,
        "# HELP cgmig_fleet_group_hosts Hosts per kernel, distribution, systemd version or mode, and verdict.\n# TYPE cgmig_fleet_group_hosts gauge"
    );
    for (by, buckets) in [
        ("kernel", &r.by_kernel),
        ("distribution", &r.by_distribution),
        ("systemd", &r.by_systemd),
        ("mode", &r.by_mode),
    ] {
        for b in buckets {
            for (v, n) in [
                ("ready", b.verdicts.ready),
                ("ready-with-changes", b.verdicts.ready_with_changes),
                ("blocked", b.verdicts.blocked),
                ("incomplete", b.verdicts.incomplete),
            ] {
                let _ = writeln!(
                    o,
                    "cgmig_fleet_group_hosts{{by=\"{by}\",value=\"{}\",verdict=\"{v}\"}} {n}",
                    prom_label(&b.value)
                );
            }
        }
    }
    let _ = writeln!(
        o,
        "# HELP cgmig_fleet_rule_hosts Hosts with findings of a rule.\n# TYPE cgmig_fleet_rule_hosts gauge"
    );
    for rule in &r.rules {
        let _ = writeln!(
            o,
            "cgmig_fleet_rule_hosts{{rule=\"{}\",severity=\"{}\"}} {}",
            prom_label(&rule.rule),
            rule.severity,
            rule.hosts
        );
    }
    let _ = writeln!(
        o,
        "# HELP cgmig_fleet_families Layout families.\n# TYPE cgmig_fleet_families gauge"
    );
    let _ = writeln!(o, "cgmig_fleet_families {}", r.families.len());
    let _ = writeln!(
        o,
        "# HELP cgmig_fleet_family_hosts Hosts per layout family.\n# TYPE cgmig_fleet_family_hosts gauge"
    );
    for f in &r.families {
        let _ = writeln!(
            o,
            "cgmig_fleet_family_hosts{{family=\"{}\",representative=\"{}\"}} {}",
            f.id,
            prom_label(&f.representative.host),
            f.hosts
        );
    }
    o
}
