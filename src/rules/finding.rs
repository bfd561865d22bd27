//! The finding vocabulary every producer of findings shares: what a finding
//! is about ([`Subject`]), the finding itself ([`Finding`]) and the shared
//! strings it repeats ([`Text`]). It lives with the rules because a rule is
//! the first thing that makes findings; the audit, the planner, the owners
//! pass and readiness all build the same type.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Severity;
use crate::model::{HierarchyId, Pid};

/// What a finding is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Subject {
    /// The host as a whole.
    Host,
    /// A hierarchy.
    Hierarchy {
        /// Hierarchy id.
        id: HierarchyId,
        /// Its label (`cpu,cpuacct`, `name=systemd`).
        label: String,
    },
    /// A cgroup.
    Cgroup {
        /// Hierarchy id.
        hierarchy: HierarchyId,
        /// Hierarchy label.
        label: String,
        /// Cgroup path.
        path: String,
    },
    /// A process.
    Process {
        /// PID.
        pid: Pid,
        /// Its comm.
        comm: String,
    },
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Subject::Host => f.write_str("host"),
            Subject::Hierarchy { label, .. } => write!(f, "hierarchy {label}"),
            Subject::Cgroup { label, path, .. } => write!(f, "{label}:{path}"),
            Subject::Process { pid, comm } => write!(f, "pid {pid} ({comm})"),
        }
    }
}

/// An immutable string shared by every finding that repeats it (a rule's id,
/// title, remediation and source): cloning it copies a pointer. It compares
/// with `str` and `String`, and serializes as a plain string.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Text(Arc<str>);

impl Text {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Self {
        Text(s.into())
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        Text(s.into())
    }
}

impl From<Arc<str>> for Text {
    fn from(s: Arc<str>) -> Self {
        Text(s)
    }
}

impl From<Text> for String {
    fn from(t: Text) -> Self {
        t.0.as_ref().to_string()
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<String> for Text {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<Text> for str {
    fn eq(&self, other: &Text) -> bool {
        *self == *other.0
    }
}

impl PartialEq<Text> for &str {
    fn eq(&self, other: &Text) -> bool {
        **self == *other.0
    }
}

impl PartialEq<Text> for String {
    fn eq(&self, other: &Text) -> bool {
        **self == *other.0
    }
}

impl Serialize for Text {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Text::from)
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Rule id.
    pub rule: Text,
    /// Severity.
    pub severity: Severity,
    /// The rule's title.
    pub title: Text,
    /// What it is about.
    pub subject: Subject,
    /// The v1 file, for file rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The v1 value, for file rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The instance, for host facts (`cpuset (hierarchy 3)`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Why it matters (placeholders filled in).
    pub why: String,
    /// The v2 replacement or remediation.
    pub remediation: Text,
    /// First kernel with the replacement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
    /// Source of the facts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Text>,
    /// The waiver that accepts it, with who and why: the finding keeps its
    /// severity and stays in every report; the verdict and `--fail-on` leave
    /// it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waived: Option<Box<super::Waiver>>,
}
