//! The YAML rule schema. Documented for users in `docs/rules.md`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// How serious a finding is. Ordered: `Info < Warning < Error < Blocker`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; nothing changes for workloads.
    Info,
    /// Converted, but behaviour changes in a way someone should check.
    Warning,
    /// A setting or feature is lost: v2 has no equivalent, a replacement is needed.
    Error,
    /// v2 cannot express the current state at all; the switch is blocked.
    Blocker,
}

impl Severity {
    /// All severities, ascending.
    pub const ALL: [Severity; 4] = [
        Severity::Info,
        Severity::Warning,
        Severity::Error,
        Severity::Blocker,
    ];

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Blocker => "blocker",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Host-level facts a rule can match (computed by the audit, not read from a file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fact {
    /// A named v1 hierarchy (`name=systemd`, `name=openrc`, ...).
    NamedHierarchy,
    /// A v1 hierarchy alive (in `/proc/cgroups` or `/proc/PID/cgroup`) but mounted nowhere.
    UnmountedHierarchy,
    /// A hierarchy with a `release_agent` mount option or root file set.
    ReleaseAgent,
    /// A process's threads are in different cgroups only in threaded controllers.
    SplitThreadsThreaded,
    /// A process's threads are in different cgroups in a domain controller.
    SplitThreadsDomain,
    /// A non-root cgroup with tasks and child cgroups, in a hierarchy with domain controllers.
    InternalProcesses,
    /// A cgroup owned by a non-root user (self-managed, to be delegated).
    Delegated,
    /// One user owns cgroups whose only common ancestor is root-owned.
    DelegationCommonAncestor,
    /// A kernel boot parameter is present (`param:` names it).
    BootParam,
    /// The kernel is older than a v2 feature the host's settings need.
    KernelTooOld,
    /// A controller bound to a v1 hierarchy (unavailable to v2 until released).
    ControllerV1Bound,
    /// A controller enabled in the kernel but neither mounted in v1 nor offered by v2.
    ControllerUnused,
    /// The host runs in legacy mode (v1 only).
    LegacyMode,
    /// The host runs in hybrid mode (v1 controllers + controller-less v2).
    HybridMode,
    /// A process holds a v1 notification file open (`cgroup.event_control`, ...).
    EventListener,
    /// A process sits at different paths in different hierarchies.
    DivergedPlacement,
    /// No cgroup filesystem is mounted.
    NoCgroupfs,
    /// The kernel has no cgroup2 at all (`audit::kernel`).
    KernelNoCgroup2,
    /// The layout sets a controller the kernel does not offer on cgroup2.
    KernelLacksController,
    /// The layout sets a controller and nothing tells whether the kernel offers it on cgroup2.
    KernelControllerUnknown,
    /// systemd is older than 226, the first that runs a unified hierarchy.
    SystemdTooOld,
    /// The layout needs thread mode and the kernel's cgroup2 lacks it.
    KernelNoThreadMode,
}

impl Fact {
    /// The kebab-case name rules files use (`named-hierarchy`): the serde
    /// name, serialized, so it can't drift from what `match.fact` parses.
    pub fn rules_name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

/// Where in a hierarchy a file rule applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Non-root cgroups only (the default: v2 roots take no resource settings).
    #[default]
    Nonroot,
    /// Hierarchy roots only (`release_agent`, `memory.use_hierarchy` at `/`).
    Root,
    /// Every cgroup.
    Any,
}

/// A predicate on a file's raw value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValuePred {
    /// Value equals this (after trimming).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<String>,
    /// Value differs from this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_equals: Option<String>,
    /// Value matches this regex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// Value does not match this regex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_regex: Option<String>,
}

/// What a rule matches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Match {
    /// A controller the hierarchy must have bound (`cpu`, `memory`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<String>,
    /// The hierarchy's `name=` must be this (`systemd`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The hierarchy's `name=` must not be this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_name: Option<String>,
    /// An interface file name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// A regex over interface file names; groups feed `{1}` in `convert.target`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_regex: Option<String>,
    /// A predicate on the file's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<ValuePred>,
    /// A host-level fact instead of a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fact: Option<Fact>,
    /// The boot parameter for `fact: boot-param`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
    /// For `fact: controller-v1-bound`/`controller-unused`: restrict to one controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
}

/// What counts as the default (untouched) value of a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DefaultSpec {
    /// Exactly this text.
    Exact(String),
    /// A richer description.
    Spec(DefaultDetail),
}

/// The structured form of [`DefaultSpec`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultDetail {
    /// Any of these texts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub any_of: Vec<String>,
    /// The v1 "unlimited" limit (page-aligned LONG_MAX, `-1`, `max`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unlimited: bool,
    /// Equal to the parent cgroup's value (cpuset lists copied down).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub parent: bool,
    /// Matches this regex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// What a fresh kernel shows, for generated test hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub example: Option<String>,
}

/// A conversion to a v2 file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvertSpec {
    /// The v2 file written (`cpu.weight`; `{1}` takes a `file_regex` group).
    pub target: String,
    /// A conversion function name (`cgmig explain` lists them).
    pub function: String,
    /// Function parameters (`formula: systemd`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
}

/// A finding to report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindingSpec {
    /// How serious.
    pub severity: Severity,
    /// Why it matters, in one or two sentences.
    pub why: String,
    /// The v2 replacement or the remediation.
    pub remediation: String,
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Stable id (`cpu.shares`, `host.named-hierarchy`, ...).
    pub id: String,
    /// One-line summary.
    pub title: String,
    /// What it matches.
    #[serde(rename = "match")]
    pub matcher: Match,
    /// The file's default value; a default value is never a finding or conversion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<DefaultSpec>,
    /// The conversion, if the setting maps to v2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub convert: Option<ConvertSpec>,
    /// The finding, if the setting or fact needs attention.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding: Option<FindingSpec>,
    /// First kernel with the v2 replacement (`5.14`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
    /// Where the facts come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// What the cgroup's manager rebuilds on v2 by itself (systemd from the
    /// unit, a container runtime from the container's spec): on a cgroup such
    /// an owner manages, the finding is that owner's (`owners.*`, info), made
    /// in place of this rule's, where the finding is made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebuilt_by_owner: Option<Rebuilt>,
}

/// What an owner rebuilds on v2 (a rule's `rebuilt_by_owner`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rebuilt {
    /// The device access list: systemd (`DevicePolicy=`, `DeviceAllow=`) and
    /// the OCI runtimes (runc, crun; libvirt, LXC) compile it to a
    /// `BPF_CGROUP_DEVICE` program on v2.
    DevicePolicy,
}

/// How to resolve a cgroup whose tasks cross an accepted cgroup of another hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Copy the settings onto the pieces of the tree the cgroup covers.
    Split,
    /// Drop the settings.
    Drop,
    /// Report a blocker.
    Fail,
}

/// The planner's policy (`plan:` in a rules file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanPolicy {
    /// Hierarchy priority: controller names, `named`, `unified`.
    #[serde(default)]
    pub priority: Vec<String>,
    /// Name of the leaf child that takes an inner cgroup's processes.
    #[serde(default = "default_leaf")]
    pub leaf_name: String,
    /// Conflict strategy by controller, with a `default`.
    #[serde(default)]
    pub conflict: BTreeMap<String, Strategy>,
    /// Try every hierarchy as the spine and keep the one that loses the fewest settings.
    #[serde(default = "yes")]
    pub search_spine: bool,
    /// v1 paths to keep as nodes.
    #[serde(default)]
    pub keep: Vec<String>,
}

fn default_leaf() -> String {
    "leaf".into()
}

fn yes() -> bool {
    true
}

impl Default for PlanPolicy {
    fn default() -> Self {
        PlanPolicy {
            priority: Vec::new(),
            leaf_name: default_leaf(),
            conflict: BTreeMap::new(),
            search_spine: true,
            keep: Vec::new(),
        }
    }
}

impl PlanPolicy {
    /// The strategy for a crossing cgroup of a hierarchy with these controllers.
    pub fn strategy(&self, controllers: &[crate::model::Controller]) -> Strategy {
        controllers
            .iter()
            .find_map(|c| self.conflict.get(c.as_str()))
            .or_else(|| self.conflict.get("default"))
            .copied()
            .unwrap_or(Strategy::Split)
    }

    /// Rank of a hierarchy in the priority list (lower = earlier).
    pub fn rank(&self, h: &crate::model::Hierarchy) -> usize {
        let keys: Vec<String> = if h.version == crate::model::Version::V2 {
            vec!["unified".into()]
        } else if h.controllers.is_empty() {
            vec!["named".into()]
        } else {
            h.controllers.iter().map(|c| c.to_string()).collect()
        };
        keys.iter()
            .filter_map(|k| self.priority.iter().position(|p| p == k))
            .min()
            .unwrap_or(self.priority.len())
    }
}

/// Whether `s` can be the name of one interface file or cgroup directory:
/// one path component (no `/`, not `.` or `..`), no NUL, whitespace or
/// control character, at most 255 bytes (`NAME_MAX`).
pub fn is_single_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s != "."
        && s != ".."
        && !s.chars().any(|c| c == '/' || c.is_whitespace() || c.is_control())
}

/// The v2 file-name prefixes a conversion of a rule for `controller` may
/// write: the controller's v2 name (`blkio` writes `io.*`), and `cgroup.`
/// only for `freezer` (`cgroup.freeze`). A rule without a controller may
/// write any v2 controller's files, never a core `cgroup.*` file (which
/// would move processes or change the tree's type).
fn allowed_prefixes(controller: Option<&str>) -> Vec<&'static str> {
    use crate::model::Controller;
    match controller {
        Some("freezer") => vec!["cgroup.freeze"],
        Some(c) => c
            .parse::<Controller>()
            .ok()
            .and_then(|c| c.v2_name())
            .into_iter()
            .collect(),
        None => Controller::KNOWN.iter().filter_map(|c| c.v2_name()).collect(),
    }
}

/// A conversion target that is not a file the rule's controller owns.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum TargetError {
    /// Not one interface-file name.
    #[error(
        "convert target {0:?} is not an interface file name (one name, no '/', '..', spaces or control characters)"
    )]
    NotAName(String),
    /// A file of another controller (or a core `cgroup.*` file).
    #[error(
        "convert target {target:?} is not a file of controller {} (allowed: {})",
        .controller.as_deref().unwrap_or("(any)"),
        star_list(.allowed)
    )]
    OtherController {
        /// The target as filled in.
        target: String,
        /// The rule's controller, if it names one.
        controller: Option<String>,
        /// The prefixes it may write.
        allowed: Vec<&'static str>,
    },
}

/// `cpu.*, io.*` for the prefixes `cpu`, `io`.
fn star_list(prefixes: &[&str]) -> String {
    prefixes
        .iter()
        .map(|p| format!("{p}.*"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Check a conversion target (after `{N}` placeholders are filled): one
/// interface-file name of the rule's controller (`cpu.weight` for `cpu`).
pub fn check_target(target: &str, controller: Option<&str>) -> Result<(), TargetError> {
    if !is_single_name(target) {
        return Err(TargetError::NotAName(target.to_string()));
    }
    let allowed = allowed_prefixes(controller);
    let ok = allowed.iter().any(|p| {
        (p.contains('.') && target == *p)
            || target
                .strip_prefix(p)
                .is_some_and(|rest| rest.starts_with('.') && rest.len() > 1)
    });
    if !ok {
        return Err(TargetError::OtherController {
            target: target.to_string(),
            controller: controller.map(str::to_string),
            allowed,
        });
    }
    Ok(())
}

/// A planner leaf name (`plan: leaf_name:`) that cannot be a cgroup's name.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum LeafNameError {
    /// Not one cgroup name.
    #[error("leaf_name {0:?} is not a cgroup name (one name, no '/', '..', spaces or control characters)")]
    NotAName(String),
    /// It would collide with an interface file.
    #[error("leaf_name {name:?} looks like an interface file ({prefix}.*)")]
    InterfaceFile {
        /// The name.
        name: String,
        /// Its prefix before the first dot.
        prefix: String,
    },
}

/// Check the planner's leaf name: one cgroup name that cannot collide with
/// an interface file (`cgroup.*` or a controller's `NAME.*`).
pub fn check_leaf_name(name: &str) -> Result<(), LeafNameError> {
    if !is_single_name(name) {
        return Err(LeafNameError::NotAName(name.to_string()));
    }
    if crate::model::Controller::name_collides_with_interface_file(name) {
        return Err(LeafNameError::InterfaceFile {
            name: name.to_string(),
            prefix: name.split('.').next().unwrap_or("").to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod name_tests {
    use super::*;

    #[test]
    fn targets_stay_inside_their_controller() {
        assert!(check_target("cpu.weight", Some("cpu")).is_ok());
        assert!(check_target("io.max", Some("blkio")).is_ok());
        assert!(check_target("cgroup.freeze", Some("freezer")).is_ok());
        assert!(check_target("hugetlb.2MB.max", Some("hugetlb")).is_ok());
        for bad in [
            "../../etc/passwd",
            "cpu.weight/x",
            "..",
            "",
            "cpu weight",
            "cpu.\n",
        ] {
            assert!(check_target(bad, Some("cpu")).is_err(), "{bad:?}");
        }
        assert!(check_target("memory.max", Some("cpu")).is_err());
        assert!(check_target("cgroup.procs", None).is_err());
        assert!(check_target("cgroup.procs", Some("freezer")).is_err());
        assert!(check_target("cpu", Some("cpu")).is_err());
    }

    #[test]
    fn leaf_names_are_cgroup_names() {
        assert!(check_leaf_name("leaf").is_ok());
        assert!(check_leaf_name("leaf-1.x").is_ok());
        for bad in ["", ".", "..", "a/b", "../x", "cgroup.procs", "memory.max", "a b"] {
            assert!(check_leaf_name(bad).is_err(), "{bad:?}");
        }
    }
}
