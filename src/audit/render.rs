//! Audit renderers: table, json, yaml, markdown, prometheus.

use std::fmt::Write;

use super::{Report, Verdict};
use crate::report::table::{Cell, Col, Table};
use crate::report::{DataError, DataFormat, Style, escape, to_data, units};
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

/// Render a report (human formats at [`Style::PLAIN`], every finding).
/// Human formats cannot fail; JSON and YAML return the serializer's error
/// (the CLI exits 2) rather than an empty document.
pub fn render(r: &Report, f: AuditFormat) -> Result<String, DataError> {
    render_with(r, f, &Style::PLAIN, Severity::Info)
}

/// Render a report; the table fits `style`, and the human formats list
/// findings from `min` up (the data formats keep every finding).
pub fn render_with(r: &Report, f: AuditFormat, style: &Style, min: Severity) -> Result<String, DataError> {
    Ok(match f {
        AuditFormat::Table => table(r, style, min),
        AuditFormat::Json => to_data(r, DataFormat::Json)?,
        AuditFormat::Yaml => to_data(r, DataFormat::Yaml)?,
        AuditFormat::Markdown => markdown(r, min),
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

/// The severity a verdict is coloured with (ready is green).
fn verdict_severity(v: Verdict) -> Severity {
    match v {
        Verdict::Ready => Severity::Info,
        Verdict::ReadyWithChanges | Verdict::Incomplete => Severity::Warning,
        Verdict::Blocked => Severity::Blocker,
    }
}

fn header(r: &Report) -> String {
    format!(
        "host {} — kernel {} — mode {:?} — {} v1 hierarchies, {} cgroups, {} processes",
        escape::line(r.host.hostname.as_deref().unwrap_or("?")),
        escape::line(r.host.kernel.as_deref().unwrap_or("?")),
        r.host.mode,
        r.host.v1_hierarchies,
        r.host.cgroups,
        r.host.processes
    )
}

/// The finding groups from `min` up, as a table.
fn findings_table(r: &Report, min: Severity) -> Table {
    let mut t = Table::new(&[
        ("severity", Col::Key),
        ("rule", Col::Key),
        ("count", Col::Num),
        ("what", Col::Text),
        ("examples", Col::Text),
        ("v2 replacement / remediation", Col::Text),
    ]);
    for g in r.groups.iter().filter(|g| g.severity >= min) {
        t.row([
            Cell::severity(g.severity, severity_cell(g)),
            g.rule.clone().into(),
            g.count.to_string().into(),
            format!("{}\n{}", g.title, g.why).into(),
            (g.examples.join("\n") + if g.count > g.examples.len() { "\n…" } else { "" }).into(),
            g.remediation.clone().into(),
        ]);
    }
    t
}

/// One example per conversion rule, as a table.
fn conversions_table(r: &Report) -> Table {
    let mut t = Table::new(&[("rule", Col::Key), ("settings", Col::Num), ("example", Col::Text)]);
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
                    .map(|(k, v)| format!("{k}={}", units::with_units(k, v)))
                    .collect();
                format!(
                    "{}: {} → {}={}{}",
                    c.path,
                    inputs.join(" "),
                    c.conversion.target,
                    units::with_units(&c.conversion.target, &c.conversion.value.replace('\n', "; ")),
                    c.conversion
                        .formula
                        .as_ref()
                        .map(|f| format!(" (formula {f})"))
                        .unwrap_or_default()
                )
            })
            .unwrap_or_default();
        t.row([rule.clone(), n.to_string(), ex]);
    }
    t
}

/// A group's severity, with how many of its findings are waived.
fn severity_cell(g: &super::Group) -> String {
    match g.waived {
        0 => g.severity.to_string(),
        n => format!("{} ({n} waived)", g.severity),
    }
}

/// The waivers section: every waiver that accepted findings, with who and
/// why (text from a waivers file or a plan: escaped like any other input).
fn waived_section(r: &Report, out: &mut String, heading: &str, bullet: &str, md: bool) {
    let lines = super::waived_lines(&r.findings);
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(out, "{heading}");
    for l in lines {
        let l = if md {
            escape::md_cell(&l)
        } else {
            escape::line(&l).into_owned()
        };
        let _ = writeln!(out, "{bullet}{l}");
    }
}

fn table(r: &Report, style: &Style, min: Severity) -> String {
    let mut out = String::new();
    out.push_str(&style.wrap(&header(r), 2));
    let verdict = format!("verdict: {}", verdict_text(r.verdict));
    let verdict = style.wrap(&verdict, 2);
    out.push_str(&match r.verdict {
        Verdict::Ready => style.good(verdict.trim_end()),
        v => style.severity(verdict_severity(v), verdict.trim_end()),
    });
    out.push_str("\n\n");
    let sev: Vec<String> = Severity::ALL
        .iter()
        .rev()
        .map(|s| format!("{}: {}", s, r.by_severity.get(s).copied().unwrap_or(0)))
        .collect();
    out.push_str(&style.wrap(&format!("findings: {}", sev.join(", ")), 2));
    let total_conv: usize = r.conversions_by_rule.values().sum();
    out.push_str(&style.wrap(
        &format!(
            "conversions: {total_conv} settings by {} rules",
            r.conversions_by_rule.len()
        ),
        2,
    ));
    out.push('\n');
    let findings = findings_table(r, min);
    if !findings.is_empty() {
        out.push_str(&findings.render(style));
    }
    let hidden = r.groups.iter().filter(|g| g.severity < min).count();
    if hidden > 0 {
        out.push_str(&style.wrap(
            &format!("({hidden} finding groups below {min} not shown: --min-severity)"),
            2,
        ));
    }
    waived_section(
        r,
        &mut out,
        "waived (accepted; left out of the verdict and --fail-on):",
        "  ",
        false,
    );
    if !r.conversions_by_rule.is_empty() {
        out.push_str("\nconversions:\n");
        out.push_str(&conversions_table(r).render(style));
    }
    let _ = write!(out, "\n{}", super::readiness::render(&r.readiness, style));
    if !r.diagnostics.is_empty() {
        let _ = writeln!(
            out,
            "\n{} parts of the host could not be read:",
            r.diagnostics.len()
        );
        for d in &r.diagnostics {
            out.push_str(&style.wrap(&escape::line(&format!("  {}: {}", d.path, d.message)), 4));
        }
    }
    out
}

fn markdown(r: &Report, min: Severity) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# cgroup v2 readiness: {}\n",
        escape::md_cell(r.host.hostname.as_deref().unwrap_or("host"))
    );
    let _ = writeln!(out, "{}\n", escape::md_cell(&header(r)));
    let _ = writeln!(out, "**Verdict:** {}\n", verdict_text(r.verdict));
    let _ = writeln!(out, "| severity | findings |\n|---|---:|");
    for s in Severity::ALL.iter().rev() {
        let _ = writeln!(out, "| {s} | {} |", r.by_severity.get(s).copied().unwrap_or(0));
    }
    let findings = findings_table(r, min);
    if !findings.is_empty() {
        let _ = write!(out, "\n## Findings\n\n{}", findings.markdown());
    }
    waived_section(r, &mut out, "\n## Waived\n", "- ", true);
    if !r.conversions_by_rule.is_empty() {
        let _ = write!(out, "\n## Conversions\n\n{}", conversions_table(r).markdown());
    }
    // A fence in the text would end the code block early.
    let readiness = super::readiness::render(&r.readiness, &Style::UNBOUNDED).replace("```", "'''");
    let _ = write!(out, "\n## Workload readiness\n\n```text\n{readiness}```\n");
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
