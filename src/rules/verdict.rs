//! The verdict: one function from a host's findings to what it means for the
//! switch, used by every command (audit, plan, fleet, apply, verify) and for
//! every kind of document (snapshot, audit, plan), so no two of them can
//! disagree on the same host.

use serde::{Deserialize, Serialize};

use super::{Finding, Severity};

/// The readiness verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Nothing to convert, nothing lost.
    Ready,
    /// Settings convert or need attention, nothing blocks.
    ReadyWithChanges,
    /// Part of the host could not be read (an `unreadable:` diagnostic):
    /// nothing blocks in what was read, but the rest is unknown.
    Incomplete,
    /// v2 cannot express the current state (a blocker that is not waived).
    Blocked,
}

impl Verdict {
    /// The verdict of a host: its worst finding that is not waived, whether
    /// any setting converts, and whether part of the host could not be read
    /// (partial data is at best `incomplete`: only a blocker outranks it).
    /// The one definition every command uses.
    pub fn judge<'a>(
        findings: impl IntoIterator<Item = &'a Finding>,
        converts: bool,
        incomplete: bool,
    ) -> Verdict {
        let worst = findings
            .into_iter()
            .filter(|f| f.waived.is_none())
            .map(|f| f.severity)
            .max();
        match worst {
            Some(Severity::Blocker) => Verdict::Blocked,
            _ if incomplete => Verdict::Incomplete,
            Some(Severity::Error | Severity::Warning) => Verdict::ReadyWithChanges,
            _ if converts => Verdict::ReadyWithChanges,
            _ => Verdict::Ready,
        }
    }

    /// Text for humans (`READY WITH CHANGES`).
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Ready => "READY",
            Verdict::ReadyWithChanges => "READY WITH CHANGES",
            Verdict::Incomplete => "INCOMPLETE",
            Verdict::Blocked => "BLOCKED",
        }
    }
}

/// `--fail-on` threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOn {
    /// Never fail.
    Never,
    /// Fail on warning or worse.
    Warning,
    /// Fail on error or worse.
    Error,
    /// Fail on blockers only.
    Blocker,
}

impl FailOn {
    /// Whether a finding at or above the threshold exists that is not waived.
    pub fn fails<'a>(self, findings: impl IntoIterator<Item = &'a Finding>) -> bool {
        let min = match self {
            FailOn::Never => return false,
            FailOn::Warning => Severity::Warning,
            FailOn::Error => Severity::Error,
            FailOn::Blocker => Severity::Blocker,
        };
        findings
            .into_iter()
            .any(|f| f.waived.is_none() && f.severity >= min)
    }
}
