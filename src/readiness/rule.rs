//! The vocabulary of readiness findings, shared by the files that make them
//! (`evaluate`, `evaluate_config`, `apps`): a finding, its class and
//! confidence, the confidence cap, the host context, and a reference row as a
//! [`Rule`]. Kept apart so those files import it, not each other.

use serde::{Deserialize, Serialize};

use super::{Component, Place, Setting};
use crate::model::Mode;
use crate::rules::Severity;

/// How well the reference row behind a finding is sourced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    /// Verified in a primary source.
    Verified,
    /// Partially verified (secondary source, or part of the fact).
    Partial,
    /// Not confirmed in a source: info / needs review, never blocks.
    Unverified,
}

/// When the problem bites.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    /// Works on v1, misbehaves or fails on v2: fix before switching.
    BreaksAfterSwitch,
    /// Wrong already (on v1 and v2 alike, or failing on this v1 host now).
    AlreadyWrong,
    /// Worth knowing; behaviour is the same or better on v2.
    Neutral,
}

impl Class {
    /// Heading text.
    pub fn label(self) -> &'static str {
        match self {
            Class::BreaksAfterSwitch => "breaks after the switch",
            Class::AlreadyWrong => "already wrong before it",
            Class::Neutral => "worth knowing",
        }
    }
}

/// One readiness finding.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Finding {
    /// Rule id (`WR-JVM-001`, as in the reference's catalogue).
    pub rule: String,
    /// Severity after the confidence cap.
    pub severity: Severity,
    /// Regression or pre-existing.
    pub class: Class,
    /// Confidence of the reference row.
    pub confidence: Confidence,
    /// Short title.
    pub title: String,
    /// The file (with `:line` when known).
    pub file: String,
    /// Host or image layer.
    pub place: Place,
    /// What was found (version or value).
    pub found: String,
    /// What is needed.
    pub needed: String,
    /// Why it matters.
    pub why: String,
    /// Where the fact comes from.
    pub source: String,
}

/// The confidence cap: verified keeps, partial ≤ warning, unverified = info.
pub fn cap(s: Severity, c: Confidence) -> Severity {
    match c {
        Confidence::Verified => s,
        Confidence::Partial => s.min(Warning),
        Confidence::Unverified => Info,
    }
}

/// Host context the rules need.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The host's current cgroup mode.
    pub mode: Mode,
    /// Kernel release.
    pub kernel: Option<&'a str>,
}

/// One row of the reference turned into a rule (`evaluate`, `evaluate_config`, `apps`).
pub(super) struct Rule {
    pub(super) id: &'static str,
    pub(super) severity: Severity,
    pub(super) class: Class,
    pub(super) confidence: Confidence,
    pub(super) title: &'static str,
    pub(super) needed: &'static str,
    pub(super) why: &'static str,
    pub(super) source: &'static str,
}

impl Rule {
    pub(super) fn at(&self, file: String, place: &Place, found: impl Into<String>) -> Finding {
        Finding {
            rule: self.id.into(),
            severity: cap(self.severity, self.confidence),
            class: self.class,
            confidence: self.confidence,
            title: self.title.into(),
            file,
            place: place.clone(),
            found: found.into(),
            needed: self.needed.into(),
            why: self.why.into(),
            source: self.source.into(),
        }
    }
    pub(super) fn on(&self, c: &Component) -> Finding {
        self.at(
            c.path.clone(),
            &c.place,
            format!("{} {} ({})", c.name, c.version, c.evidence),
        )
    }
    pub(super) fn on_setting(&self, s: &Setting) -> Finding {
        self.at(file_line(s), &Place::Host, format!("{}={}", s.key, s.value))
    }
}

fn file_line(s: &Setting) -> String {
    match s.line {
        Some(l) => format!("{}:{l}", s.file),
        None => s.file.clone(),
    }
}

pub(super) use Class::{AlreadyWrong as PRE, BreaksAfterSwitch as BREAKS, Neutral as NEUTRAL};
pub(super) use Confidence::{Partial as P, Unverified as U, Verified as V};
pub(super) use Severity::{Blocker, Error, Info, Warning};

/// One row of the readiness table, as `explain` and `rules list` show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleRow {
    /// The id (`WR-GO-002`); one id may have several rows (one per component).
    pub id: &'static str,
    /// Severity after the confidence cap (what a finding of it has).
    pub severity: Severity,
    /// Title.
    pub title: &'static str,
    /// What is needed.
    pub needed: &'static str,
    /// Why it matters.
    pub why: &'static str,
    /// Where the fact comes from.
    pub source: &'static str,
}
