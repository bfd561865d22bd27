//! Verify report renderers: table, json, prometheus textfile.

use crate::report::table::{Cell, Col, Table};
use crate::report::{Style, escape, units};

use super::{CheckKind, VerifyReport};
use crate::rules::Severity;

/// Output format of `cgmig verify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyFormat {
    /// Human table.
    Table,
    /// JSON (`cgmig.verify/v1`).
    Json,
    /// Prometheus textfile-collector metrics.
    Prometheus,
}

/// Render a verify report (the table at [`Style::PLAIN`]).
/// Human formats cannot fail; JSON and YAML return the serializer's error
/// (the CLI exits 2) rather than an empty document.
pub fn render(r: &VerifyReport, f: VerifyFormat) -> Result<String, crate::report::DataError> {
    render_with(r, f, &Style::PLAIN, Severity::Info)
}

/// Render a verify report; the table fits `style` and lists differences
/// from `min` up.
pub fn render_with(
    r: &VerifyReport,
    f: VerifyFormat,
    style: &Style,
    min: Severity,
) -> Result<String, crate::report::DataError> {
    Ok(match f {
        VerifyFormat::Table => table(r, style, min),
        VerifyFormat::Json => crate::report::to_data(r, crate::report::DataFormat::Json)?,
        VerifyFormat::Prometheus => prometheus(r),
    })
}

fn table(r: &VerifyReport, style: &Style, min: Severity) -> String {
    let mut out = style.wrap(
        &format!(
            "verify {}: {} as predicted, {} announced differences, {} unexpected, {} unpredicted runtime values",
            escape::line(r.hostname.as_deref().unwrap_or("?")),
            r.matched,
            r.announced,
            r.unexpected,
            r.unpredicted
        ),
        2,
    );
    if let Some(v) = r.plan_verdict {
        out.push_str(&format!("plan verdict: {}\n", v.label()));
    }
    for c in r.checks.iter().filter(|c| c.kind == CheckKind::Unpredicted) {
        let what = match (&c.file, &c.actual) {
            (Some(f), Some(v)) => format!("{}/{f} = {v}", c.path),
            _ => c.path.clone(),
        };
        out.push_str(&style.wrap(&escape::line(&format!("  unpredicted ({}): {what}", c.owner)), 4));
    }
    let diffs: Vec<_> = r.checks.iter().filter(|c| c.is_difference()).collect();
    if diffs.is_empty() {
        out.push_str("every prediction matches the host\n");
        return out;
    }
    let mut t = Table::new(&[
        ("severity", Col::Key),
        ("kind", Col::Key),
        ("owner", Col::Text),
        ("path", Col::Text),
        ("expected", Col::Text),
        ("actual", Col::Text),
        ("why", Col::Text),
    ]);
    for c in diffs.iter().filter(|c| c.severity >= min) {
        let path = match &c.file {
            Some(f) => format!("{}/{f}", c.path),
            None => c.path.clone(),
        };
        let file = c.file.as_deref().unwrap_or("");
        t.row([
            Cell::severity(c.severity, c.severity.to_string()),
            format!("{:?}", c.kind).to_lowercase().into(),
            match &c.unit {
                Some(u) => format!("{} ({u})", c.owner),
                None => c.owner.clone(),
            }
            .into(),
            path.into(),
            units::with_units(file, c.expected.as_deref().unwrap_or_default()).into(),
            units::with_units(file, c.actual.as_deref().unwrap_or_default()).into(),
            format!("{}{}", if c.announced { "announced: " } else { "" }, c.message).into(),
        ]);
    }
    out.push_str(&t.render(style));
    out
}

fn prometheus(r: &VerifyReport) -> String {
    let mut out = String::from(
        "# HELP cgmig_verify_checks Checks of the host against its plan, by kind, owner and severity.\n# TYPE cgmig_verify_checks gauge\n",
    );
    let mut counts: std::collections::BTreeMap<(String, String, String), usize> = Default::default();
    for c in &r.checks {
        let kind = format!("{:?}", c.kind).to_lowercase();
        let owner = c.owner.split(' ').next().unwrap_or(&c.owner).to_string();
        *counts.entry((kind, owner, c.severity.to_string())).or_default() += 1;
    }
    for ((kind, owner, sev), n) in counts {
        out.push_str(&format!(
            "cgmig_verify_checks{{kind=\"{kind}\",owner=\"{owner}\",severity=\"{sev}\"}} {n}\n"
        ));
    }
    let ok = !r.checks.iter().any(|c| c.severity >= Severity::Error);
    out.push_str("# HELP cgmig_verify_ok 1 when every difference was announced by the plan.\n# TYPE cgmig_verify_ok gauge\n");
    out.push_str(&format!("cgmig_verify_ok {}\n", u8::from(ok)));
    out
}
