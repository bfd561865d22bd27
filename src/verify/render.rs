//! Verify report renderers: table, json, prometheus textfile.

use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL};

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

/// Render a verify report.
/// Human formats cannot fail; JSON and YAML return the serializer's error
/// (the CLI exits 2) rather than an empty document.
pub fn render(r: &VerifyReport, f: VerifyFormat) -> Result<String, crate::report::DataError> {
    Ok(match f {
        VerifyFormat::Table => table(r),
        VerifyFormat::Json => crate::report::to_data(r, crate::report::DataFormat::Json)?,
        VerifyFormat::Prometheus => prometheus(r),
    })
}

fn table(r: &VerifyReport) -> String {
    let mut out = format!(
        "verify {}: {} as predicted, {} announced differences, {} unexpected, {} unpredicted runtime values\n",
        r.hostname.as_deref().unwrap_or("?"),
        r.matched,
        r.announced,
        r.unexpected,
        r.unpredicted
    );
    if let Some(v) = r.plan_verdict {
        out.push_str(&format!("plan verdict: {}\n", v.label()));
    }
    for c in r.checks.iter().filter(|c| c.kind == CheckKind::Unpredicted) {
        let what = match (&c.file, &c.actual) {
            (Some(f), Some(v)) => format!("{}/{f} = {v}", c.path),
            _ => c.path.clone(),
        };
        out.push_str(&format!("  unpredicted ({}): {what}\n", c.owner));
    }
    let diffs: Vec<_> = r.checks.iter().filter(|c| c.is_difference()).collect();
    if diffs.is_empty() {
        out.push_str("every prediction matches the host\n");
        return out;
    }
    let mut t = Table::new();
    t.load_preset(UTF8_FULL)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(140)
        .set_header(["severity", "kind", "owner", "path", "expected", "actual", "why"]);
    for c in diffs {
        let path = match &c.file {
            Some(f) => format!("{}/{f}", c.path),
            None => c.path.clone(),
        };
        t.add_row([
            c.severity.to_string(),
            format!("{:?}", c.kind).to_lowercase(),
            match &c.unit {
                Some(u) => format!("{} ({u})", c.owner),
                None => c.owner.clone(),
            },
            path,
            c.expected.clone().unwrap_or_default(),
            c.actual.clone().unwrap_or_default(),
            format!("{}{}", if c.announced { "announced: " } else { "" }, c.message),
        ]);
    }
    out.push_str(&t.to_string());
    out.push('\n');
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
