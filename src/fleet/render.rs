//! Fleet renderers: table, markdown, json, prometheus (html in [`super::html`]).

use std::fmt::Write;

use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};

use super::{Bucket, FleetReport, RuleSummary, some_of};
use crate::report::{DataError, DataFormat, to_data};

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

/// Render a fleet report.
/// Human formats cannot fail; JSON and YAML return the serializer's error
/// (the CLI exits 2) rather than an empty document.
pub fn render(r: &FleetReport, f: FleetFormat) -> Result<String, DataError> {
    Ok(match f {
        FleetFormat::Table => table(r),
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

fn new_table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(140)
        .set_header(header.to_vec());
    t
}

fn bucket_table(name: &str, buckets: &[Bucket]) -> Table {
    let mut t = new_table(&[name, "hosts", "ready", "with changes", "blocked", "incomplete"]);
    for b in buckets {
        t.add_row(vec![
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
    let mut t = new_table(&["rule", "severity", "hosts", "which"]);
    for r in rules {
        t.add_row(vec![
            r.rule.clone(),
            r.severity.to_string(),
            r.hosts.to_string(),
            some_of(&r.members),
        ]);
    }
    t
}

fn table(r: &FleetReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}\n", summary_line(r));
    for (name, b) in [
        ("kernel", &r.by_kernel),
        ("distribution", &r.by_distribution),
        ("systemd", &r.by_systemd),
        ("mode", &r.by_mode),
    ] {
        let _ = writeln!(out, "{}\n", bucket_table(name, b));
    }
    if !r.blockers.is_empty() {
        let _ = writeln!(out, "blockers, by hosts affected:\n{}\n", rule_table(&r.blockers));
    }
    if !r.rules.is_empty() {
        let _ = writeln!(out, "rules:\n{}\n", rule_table(&r.rules));
    }
    let mut t = new_table(&[
        "family",
        "hosts",
        "ready/changes/blocked/incomplete",
        "representative",
        "plan",
        "members",
    ]);
    for f in &r.families {
        let plan = f.plan.as_ref().map_or_else(
            || "run `cgmig plan` on the representative".to_string(),
            |p| format!("{} nodes, {} actions, {} stages", p.nodes, p.actions, p.stages),
        );
        t.add_row(vec![
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
    let _ = writeln!(out, "layout families:\n{t}");
    for u in &r.unreadable {
        let _ = writeln!(out, "unreadable: {}: {}", u.path.display(), u.error);
    }
    out
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn md_buckets(out: &mut String, name: &str, buckets: &[Bucket]) {
    let _ = writeln!(
        out,
        "\n### By {name}\n\n| {name} | hosts | ready | with changes | blocked | incomplete |\n|---|---:|---:|---:|---:|---:|"
    );
    for b in buckets {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            md_cell(&b.value),
            b.hosts,
            b.verdicts.ready,
            b.verdicts.ready_with_changes,
            b.verdicts.blocked,
            b.verdicts.incomplete
        );
    }
}

fn md_rules(out: &mut String, title: &str, rules: &[RuleSummary]) {
    let _ = writeln!(
        out,
        "\n## {title}\n\n| rule | severity | hosts | which |\n|---|---|---:|---|"
    );
    for r in rules {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} |",
            r.rule,
            r.severity,
            r.hosts,
            md_cell(&some_of(&r.members))
        );
    }
}

fn markdown(r: &FleetReport) -> String {
    let mut out = format!("# cgmig fleet report\n\n{}\n", summary_line(r));
    for (name, b) in [
        ("kernel", &r.by_kernel),
        ("distribution", &r.by_distribution),
        ("systemd", &r.by_systemd),
        ("mode", &r.by_mode),
    ] {
        md_buckets(&mut out, name, b);
    }
    if !r.blockers.is_empty() {
        md_rules(&mut out, "Blockers by hosts affected", &r.blockers);
    }
    md_rules(&mut out, "Rules", &r.rules);
    let _ = writeln!(
        out,
        "\n## Layout families\n\n| family | hosts | ready / changes / blocked / incomplete | representative | members |\n|---|---:|---|---|---|"
    );
    for f in &r.families {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} / {} / {} / {} | {} | {} |",
            f.id,
            f.hosts,
            f.verdicts.ready,
            f.verdicts.ready_with_changes,
            f.verdicts.blocked,
            f.verdicts.incomplete,
            md_cell(&f.representative.host),
            md_cell(&some_of(&f.members))
        );
    }
    if !r.unreadable.is_empty() {
        let _ = writeln!(out, "\n## Unreadable inputs\n");
        for u in &r.unreadable {
            let _ = writeln!(out, "- `{}`: {}", u.path.display(), md_cell(&u.error));
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
