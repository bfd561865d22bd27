//! Audit renderers: table, json, yaml, markdown, prometheus.

use std::fmt::Write;

use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};

use super::{Report, Verdict};
use crate::report::{DataError, DataFormat, to_data};
use crate::rules::Severity;

/// Output formats of `cgmig audit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditFormat {
    /// Human tables.
    Table,
    /// Versioned JSON (`schema: cgmig.audit/v1`).
    Json,
    /// The same document as YAML.
    Yaml,
    /// Markdown for tickets and wikis.
    Markdown,
    /// node_exporter textfile-collector format.
    Prometheus,
}

/// Render a report.
/// Human formats cannot fail; JSON and YAML return the serializer's error
/// (the CLI exits 2) rather than an empty document.
pub fn render(r: &Report, f: AuditFormat) -> Result<String, DataError> {
    Ok(match f {
        AuditFormat::Table => table(r),
        AuditFormat::Json => to_data(r, DataFormat::Json)?,
        AuditFormat::Yaml => to_data(r, DataFormat::Yaml)?,
        AuditFormat::Markdown => markdown(r),
        AuditFormat::Prometheus => prometheus(r),
    })
}

fn verdict_text(v: Verdict) -> &'static str {
    match v {
        Verdict::Ready => "READY: nothing to convert, nothing lost",
        Verdict::ReadyWithChanges => {
            "READY WITH CHANGES: settings convert or need a replacement; nothing blocks"
        }
        Verdict::Incomplete => "INCOMPLETE: part of the host could not be read (see scan.unreadable)",
        Verdict::Blocked => "BLOCKED: v2 cannot express the current state (see blockers)",
    }
}

fn header(r: &Report) -> String {
    format!(
        "host {} — kernel {} — mode {:?} — {} v1 hierarchies, {} cgroups, {} processes",
        r.host.hostname.as_deref().unwrap_or("?"),
        r.host.kernel.as_deref().unwrap_or("?"),
        r.host.mode,
        r.host.v1_hierarchies,
        r.host.cgroups,
        r.host.processes
    )
}

/// A group's severity, with how many of its findings are waived.
fn severity_cell(g: &super::Group) -> String {
    match g.waived {
        0 => g.severity.to_string(),
        n => format!("{} ({n} waived)", g.severity),
    }
}

/// The waivers section: every waiver that accepted findings, with who and why.
fn waived_section(r: &Report, out: &mut String, heading: &str, bullet: &str) {
    let lines = super::waived_lines(&r.findings);
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(out, "{heading}");
    for l in lines {
        let _ = writeln!(out, "{bullet}{l}");
    }
}

fn table(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", header(r));
    let _ = writeln!(out, "verdict: {}\n", verdict_text(r.verdict));
    let sev: Vec<String> = Severity::ALL
        .iter()
        .rev()
        .map(|s| format!("{}: {}", s, r.by_severity.get(s).copied().unwrap_or(0)))
        .collect();
    let _ = writeln!(out, "findings: {}", sev.join(", "));
    let total_conv: usize = r.conversions_by_rule.values().sum();
    let _ = writeln!(
        out,
        "conversions: {total_conv} settings by {} rules\n",
        r.conversions_by_rule.len()
    );

    if !r.groups.is_empty() {
        let mut t = Table::new();
        t.load_preset(UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_width(140)
            .set_header([
                "severity",
                "rule",
                "count",
                "what",
                "examples",
                "v2 replacement / remediation",
            ]);
        for g in &r.groups {
            t.add_row([
                severity_cell(g),
                g.rule.clone(),
                g.count.to_string(),
                format!("{}\n{}", g.title, g.why),
                g.examples.join("\n") + if g.count > g.examples.len() { "\n…" } else { "" },
                g.remediation.clone(),
            ]);
        }
        let _ = writeln!(out, "{t}");
    }
    waived_section(
        r,
        &mut out,
        "waived (accepted; left out of the verdict and --fail-on):",
        "  ",
    );
    if !r.conversions_by_rule.is_empty() {
        let mut t = Table::new();
        t.load_preset(UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_width(140)
            .set_header(["rule", "settings", "example"]);
        for (rule, n) in &r.conversions_by_rule {
            let ex = r
                .conversions
                .iter()
                .find(|c| &c.conversion.rule == rule)
                .map(|c| {
                    let inputs: Vec<String> = c
                        .conversion
                        .inputs
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect();
                    format!(
                        "{}: {} → {}={}{}",
                        c.path,
                        inputs.join(" "),
                        c.conversion.target,
                        c.conversion.value.replace('\n', "; "),
                        c.conversion
                            .formula
                            .as_ref()
                            .map(|f| format!(" (formula {f})"))
                            .unwrap_or_default()
                    )
                })
                .unwrap_or_default();
            t.add_row([rule.clone(), n.to_string(), ex]);
        }
        let _ = writeln!(out, "\nconversions:\n{t}");
    }
    let _ = write!(out, "\n{}", super::readiness::render(&r.readiness));
    if !r.diagnostics.is_empty() {
        let _ = writeln!(
            out,
            "\n{} parts of the host could not be read:",
            r.diagnostics.len()
        );
        for d in &r.diagnostics {
            let _ = writeln!(out, "  {}: {}", d.path, d.message);
        }
    }
    out
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', "<br>")
}

fn markdown(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# cgroup v2 readiness: {}\n",
        r.host.hostname.as_deref().unwrap_or("host")
    );
    let _ = writeln!(out, "{}\n", header(r));
    let _ = writeln!(out, "**Verdict:** {}\n", verdict_text(r.verdict));
    let _ = writeln!(out, "| severity | findings |\n|---|---|");
    for s in Severity::ALL.iter().rev() {
        let _ = writeln!(out, "| {s} | {} |", r.by_severity.get(s).copied().unwrap_or(0));
    }
    if !r.groups.is_empty() {
        let _ = writeln!(
            out,
            "\n## Findings\n\n| severity | rule | count | why | examples | remediation |\n|---|---|---|---|---|---|"
        );
        for g in &r.groups {
            let _ = writeln!(
                out,
                "| {} | `{}` | {} | {} | {} | {} |",
                severity_cell(g),
                g.rule,
                g.count,
                md_escape(&format!("**{}**. {}", g.title, g.why)),
                md_escape(&g.examples.join("\n")),
                md_escape(&g.remediation)
            );
        }
    }
    waived_section(r, &mut out, "\n## Waived\n", "- ");
    if !r.conversions_by_rule.is_empty() {
        let _ = writeln!(out, "\n## Conversions\n\n| rule | settings |\n|---|---|");
        for (rule, n) in &r.conversions_by_rule {
            let _ = writeln!(out, "| `{rule}` | {n} |");
        }
    }
    let _ = write!(
        out,
        "\n## Workload readiness\n\n```text\n{}```\n",
        super::readiness::render(&r.readiness)
    );
    out
}

fn prom_label(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn prometheus(r: &Report) -> String {
    let mut out = String::new();
    let host = prom_label(r.host.hostname.as_deref().unwrap_or(""));
    let _ = writeln!(out, "# HELP cgmig_audit_info Audit metadata; always 1.");
    let _ = writeln!(out, "# TYPE cgmig_audit_info gauge");
    let _ = writeln!(
        out,
        "cgmig_audit_info{{host=\"{host}\",kernel=\"{}\",mode=\"{}\",schema=\"{}\"}} 1",
        prom_label(r.host.kernel.as_deref().unwrap_or("")),
        format!("{:?}", r.host.mode).to_lowercase(),
        r.schema
    );
    let _ = writeln!(out, "# HELP cgmig_audit_verdict Readiness verdict, one-hot.");
    let _ = writeln!(out, "# TYPE cgmig_audit_verdict gauge");
    for (name, v) in [
        ("ready", Verdict::Ready),
        ("ready-with-changes", Verdict::ReadyWithChanges),
        ("incomplete", Verdict::Incomplete),
        ("blocked", Verdict::Blocked),
    ] {
        let _ = writeln!(
            out,
            "cgmig_audit_verdict{{verdict=\"{name}\"}} {}",
            u8::from(r.verdict == v)
        );
    }
    let _ = writeln!(out, "# HELP cgmig_audit_findings Findings by severity.");
    let _ = writeln!(out, "# TYPE cgmig_audit_findings gauge");
    for s in Severity::ALL {
        let _ = writeln!(
            out,
            "cgmig_audit_findings{{severity=\"{s}\"}} {}",
            r.by_severity.get(&s).copied().unwrap_or(0)
        );
    }
    let _ = writeln!(out, "# HELP cgmig_audit_rule_findings Findings by rule.");
    let _ = writeln!(out, "# TYPE cgmig_audit_rule_findings gauge");
    for g in &r.groups {
        let _ = writeln!(
            out,
            "cgmig_audit_rule_findings{{rule=\"{}\",severity=\"{}\"}} {}",
            prom_label(&g.rule),
            g.severity,
            g.count
        );
    }
    let _ = writeln!(out, "# HELP cgmig_audit_conversions Settings converted, by rule.");
    let _ = writeln!(out, "# TYPE cgmig_audit_conversions gauge");
    for (rule, n) in &r.conversions_by_rule {
        let _ = writeln!(
            out,
            "cgmig_audit_conversions{{rule=\"{}\"}} {n}",
            prom_label(rule)
        );
    }
    let _ = writeln!(
        out,
        "# HELP cgmig_scan_diagnostics Parts of the host that could not be read."
    );
    let _ = writeln!(out, "# TYPE cgmig_scan_diagnostics gauge");
    let _ = writeln!(out, "cgmig_scan_diagnostics {}", r.diagnostics.len());
    out
}
