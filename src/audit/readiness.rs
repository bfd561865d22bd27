//! The audit's readiness section: what `crate::readiness` found on the host
//! (runtimes, stack, kernel, boot lines, configuration), its findings split
//! into "breaks after the switch" and "already wrong before it", and what
//! the scan cost. Findings also join the audit's own list, so the verdict
//! and `--fail-on` account for them.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::report::term::cut;
use crate::report::{Style, escape};

use serde::{Deserialize, Serialize};

use super::{Finding, Subject};
use crate::model::Snapshot;
use crate::readiness::{self, Class, Component, Stats};

/// The readiness part of an audit report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Section {
    /// Whether the snapshot had a readiness scan.
    pub scanned: bool,
    /// Components found (host and images), with versions.
    pub components: Vec<Component>,
    /// Findings, worst first.
    pub findings: Vec<readiness::Finding>,
    /// Finding counts per class.
    pub by_class: BTreeMap<Class, usize>,
    /// Settings and boot lines inspected.
    pub settings: usize,
    /// Kernel config file read, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_config: Option<String>,
    /// Work done.
    pub stats: Stats,
}

/// Evaluate a snapshot's readiness inventory.
pub fn section(snap: &Snapshot) -> Section {
    let r = &snap.readiness;
    let cx = readiness::evaluate::Context {
        mode: snap.host.mode,
        kernel: snap.host.kernel.as_deref(),
    };
    let findings = readiness::evaluate(r, cx);
    let mut by_class = BTreeMap::new();
    for f in &findings {
        *by_class.entry(f.class).or_default() += 1;
    }
    Section {
        scanned: r.scanned,
        components: r.components.clone(),
        findings,
        by_class,
        settings: r.settings.len(),
        kernel_config: r.kernel_config.as_ref().map(|k| k.path.clone()),
        stats: r.stats.clone(),
    }
}

/// The section's findings as audit findings.
pub fn audit_findings(s: &Section) -> Vec<Finding> {
    s.findings
        .iter()
        .map(|f| Finding {
            rule: f.rule.as_str().into(),
            severity: f.severity,
            title: f.title.as_str().into(),
            subject: Subject::Host,
            file: Some(f.file.clone()),
            value: Some(f.found.clone()),
            detail: Some(format!(
                "{} [{}]: {} — needs {}",
                f.file, f.place, f.found, f.needed
            )),
            why: format!("{} ({}, {})", f.why, f.class.label(), confidence(f.confidence)),
            remediation: f.needed.as_str().into(),
            kernel: None,
            source: Some(f.source.as_str().into()),
            waived: None,
        })
        .collect()
}

fn confidence(c: readiness::Confidence) -> &'static str {
    match c {
        readiness::Confidence::Verified => "verified",
        readiness::Confidence::Partial => "partially verified: at most a warning",
        readiness::Confidence::Unverified => "unverified: info, needs review",
    }
}

/// Human rendering for the table and markdown formats, fitting `style`
/// (every text from the host escaped: version strings come from binaries).
pub fn render(s: &Section, style: &Style) -> String {
    let mut out = String::new();
    if !s.scanned {
        return "readiness: not in this snapshot (taken before readiness scanning)\n".into();
    }
    let st = &s.stats;
    out.push_str(&style.wrap(
        &format!(
            "readiness: {} components, {} settings; read {} files ({} bytes), {} directories, {} image layers; {} skipped, {} truncated",
            s.components.len(),
            s.settings,
            st.files_read,
            st.bytes_read,
            st.dirs_listed,
            st.layers,
            st.skipped,
            st.truncated
        ),
        2,
    ));
    if let Some(k) = &s.kernel_config {
        out.push_str(&style.wrap(&escape::line(&format!("  kernel config: {k}")), 4));
    }
    let mut by_name: BTreeMap<(&str, String), Vec<&str>> = BTreeMap::new();
    for c in &s.components {
        by_name
            .entry((c.name.as_str(), c.place.to_string()))
            .or_default()
            .push(c.version.as_str());
    }
    for ((name, place), mut versions) in by_name {
        versions.sort_unstable();
        versions.dedup();
        // A version string can be anything a binary holds (a 1 MiB one
        // included): each is cut to a line's worth.
        let shown: Vec<String> = versions.iter().map(|v| cut(&escape::line(v), 80)).collect();
        let line = escape::line(&format!("  {name} [{place}]: ")).into_owned() + &shown.join(", ");
        out.push_str(&style.wrap(&line, 4));
    }
    for class in [Class::BreaksAfterSwitch, Class::AlreadyWrong, Class::Neutral] {
        let list: Vec<_> = s.findings.iter().filter(|f| f.class == class).collect();
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{} ({}):", class.label(), list.len());
        for f in list {
            let _ = write!(
                out,
                "  {} ",
                style.severity(f.severity, &format!("{:8}", f.severity))
            );
            out.push_str(&style.wrap(&escape::line(&format!("{:13} {}", f.rule, f.title)), 11));
            let found = format!(
                "{} [{}]: found {}; needs {}",
                f.file,
                f.place,
                cut(&f.found, 400),
                f.needed
            );
            out.push_str(&" ".repeat(11));
            out.push_str(&style.wrap(&escape::line(&found), 11));
            out.push_str(&" ".repeat(11));
            out.push_str(&style.wrap(&escape::line(&format!("source: {}", f.source)), 11));
        }
    }
    if s.findings.is_empty() {
        let _ = writeln!(out, "  no readiness findings");
    }
    out
}
