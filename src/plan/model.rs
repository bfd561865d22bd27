//! The plan: the target v2 tree, the actions that build it, and what it costs.

use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use crate::model::{HierarchyId, Pid, Tid};
use crate::owners::detect::{self, Manager};
use crate::owners::systemd::{Dropped, SystemdContext, Written};
use crate::rules::{Finding, Subject, Verdict};

/// Schema id of a serialized plan.
pub const PLAN_SCHEMA: &str = "cgmig.plan/v1";

/// The v2 type of a node (`cgroup.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeType {
    /// A normal cgroup: whole processes, domain and threaded controllers.
    Domain,
    /// The root of a threaded subtree (has `threaded` children).
    DomainThreaded,
    /// A threaded cgroup: threads of processes of its threaded domain.
    Threaded,
}

/// Where a node's shape or setting came from: one v1 (or v2) cgroup.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Origin {
    /// Hierarchy id.
    pub hierarchy: HierarchyId,
    /// Hierarchy label (`cpu,cpuacct`, `name=systemd`, `unified`).
    pub label: String,
    /// Path in that hierarchy.
    pub path: String,
}

/// One converted v2 setting on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setting {
    /// The v2 file.
    pub file: String,
    /// The value to write.
    pub value: String,
    /// The v1 cgroup it came from.
    pub origin: Origin,
    /// The rule that converted it.
    pub rule: String,
    /// The conversion function.
    pub function: String,
    /// The formula variant, when there are several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formula: Option<String>,
    /// The v1 files and values it was computed from.
    pub inputs: Vec<(String, String)>,
    /// Set when the value was copied onto this piece of a split cgroup.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub split_copy: bool,
    /// Who writes this value on v2 when it is not cgmig (`systemd 252
    /// (v1dirs.service)`, `docker (cgroupfs driver)`): the node holds what
    /// that owner writes, and `function`, `formula` and `inputs` are the
    /// owner's (its formula, its directive), so they reproduce `value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// cgmig's own conversion of the v1 value, kept as provenance where an
    /// owner's prediction replaced it (`174` by the OCI formula where
    /// systemd writes `200` for `CPUShares=2048`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub converted: Option<Box<Converted>>,
}

/// cgmig's conversion of a v1 value, where an owner writes the v2 file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Converted {
    /// The value cgmig's rules give.
    pub value: String,
    /// The rule that converted it.
    pub rule: String,
    /// The conversion function.
    pub function: String,
    /// The formula variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formula: Option<String>,
    /// The v1 files and values it was computed from.
    pub inputs: Vec<(String, String)>,
}

impl Setting {
    /// The v2 controller that owns the file (`None` for core files like `cgroup.freeze`).
    pub fn controller(&self) -> Option<&str> {
        controller_of(&self.file)
    }
}

/// The v2 controller owning an interface file.
pub fn controller_of(file: &str) -> Option<&str> {
    crate::model::Controller::of_v2_file(file)
}

/// Whether a v2 file may be absent on a correct host, so that apply treats
/// ENOENT on writing it as "skipped" (and reports it) rather than a failure:
/// `io.bfq.weight` exists only while some device uses the BFQ scheduler.
pub fn is_optional_file(file: &str) -> bool {
    file == "io.bfq.weight"
}

/// Whether a v2 controller acts in threaded subtrees.
pub fn is_threaded_controller(c: &str) -> bool {
    crate::model::Controller::is_threaded_name(c)
}

/// A thread placed on its own, and its process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ThreadPlace {
    /// Thread id.
    pub tid: Tid,
    /// Its process.
    pub pid: Pid,
}

/// Owner of a delegated node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// uid.
    pub uid: u32,
    /// gid.
    pub gid: u32,
}

/// One node of the target v2 tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanNode {
    /// Path in the v2 hierarchy (`/` for the root).
    pub path: String,
    /// `cgroup.type`.
    #[serde(rename = "type")]
    pub node_type: NodeType,
    /// Controllers to enable in `cgroup.subtree_control`.
    pub subtree_control: Vec<String>,
    /// Converted settings.
    pub settings: Vec<Setting>,
    /// Processes placed here (whole processes).
    pub processes: Vec<Pid>,
    /// Threads placed here (threaded subtrees only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub threads: Vec<ThreadPlace>,
    /// Owner, when the node is delegated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
    /// Every v1 cgroup merged into this node.
    pub origins: Vec<Origin>,
    /// Why the node exists when it has no origin of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<NodeNote>,
}

/// Why a node with no v1 origin of its own is in the plan. Typed, so that
/// `finish` recognises the leaves it derived (to undo them for a stage) by
/// their kind rather than by matching the text a reader sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeNote {
    /// A leaf child `finish` made for an inner node's processes (v2 has no
    /// internal processes); undone and re-derived per stage.
    #[serde(rename = "leaf for internal processes")]
    Leaf,
    /// A v1 path's ancestor that no hierarchy had as a significant cgroup,
    /// kept so that paths managers look up stay where they are.
    #[serde(rename = "intermediate v1 path")]
    Intermediate,
}

impl NodeNote {
    /// The text plans show (the same as the JSON value).
    pub fn text(self) -> &'static str {
        match self {
            NodeNote::Leaf => "leaf for internal processes",
            NodeNote::Intermediate => "intermediate v1 path",
        }
    }
}

impl std::fmt::Display for NodeNote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.text())
    }
}

impl PlanNode {
    /// A node with nothing in it yet.
    pub fn new(path: String, node_type: NodeType, note: Option<NodeNote>) -> PlanNode {
        PlanNode {
            path,
            node_type,
            subtree_control: Vec::new(),
            settings: Vec::new(),
            processes: Vec::new(),
            threads: Vec::new(),
            owner: None,
            origins: Vec::new(),
            note,
        }
    }

    /// Parent path (`None` for the root).
    pub fn parent_path(&self) -> Option<&str> {
        crate::model::path::parent(&self.path)
    }
}

/// One step of the plan. Every action can be checked on its own after it ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// `mkdir` a cgroup (check: the directory exists).
    Create {
        /// Path.
        path: String,
    },
    /// Write `threaded` to `cgroup.type` (check: it reads `threaded`).
    SetType {
        /// Path.
        path: String,
        /// Type to write.
        value: String,
    },
    /// Move a whole process (check: `/proc/PID/cgroup` shows the path).
    MoveProcess {
        /// PID.
        pid: Pid,
        /// Destination.
        path: String,
    },
    /// Move one thread (check: `/proc/PID/task/TID/cgroup`).
    MoveThread {
        /// TID.
        tid: Tid,
        /// Its process.
        pid: Pid,
        /// Destination.
        path: String,
    },
    /// Enable controllers in `cgroup.subtree_control` (check: it lists them).
    EnableControllers {
        /// Path.
        path: String,
        /// Controllers.
        controllers: Vec<String>,
    },
    /// Write a setting (check: it reads back).
    Write {
        /// Path.
        path: String,
        /// File.
        file: String,
        /// Value.
        value: String,
    },
    /// Delegate: chown the directory and its delegation files (check: owners).
    Chown {
        /// Path.
        path: String,
        /// uid.
        uid: u32,
        /// gid.
        gid: u32,
        /// Files chowned besides the directory.
        files: Vec<String>,
    },
}

impl Action {
    /// The cgroup path the action touches.
    pub fn path(&self) -> &str {
        match self {
            Action::Create { path }
            | Action::SetType { path, .. }
            | Action::MoveProcess { path, .. }
            | Action::MoveThread { path, .. }
            | Action::EnableControllers { path, .. }
            | Action::Write { path, .. }
            | Action::Chown { path, .. } => path,
        }
    }
}

/// Two cgroups whose task sets cross: v2 can't keep both as nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    /// The cgroup that could not be placed.
    pub rejected: Origin,
    /// The accepted cgroup(s) it crosses.
    pub crosses: Vec<Origin>,
    /// Processes in both (up to 10).
    pub shared_tasks: Vec<Pid>,
    /// Processes of the rejected cgroup outside the crossed ones (up to 10).
    pub only_rejected: Vec<Pid>,
    /// Processes of the crossed cgroups outside the rejected one (up to 10).
    pub only_crossed: Vec<Pid>,
    /// How it was resolved (`split onto 3 pieces`, `dropped`, `failed`).
    pub resolution: String,
    /// Settings that no longer apply exactly.
    pub settings_affected: usize,
}

/// The spine (hierarchy order) chosen and what the alternatives would lose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spine {
    /// Hierarchy labels in the order used.
    pub order: Vec<String>,
    /// Settings affected by conflicts with this order.
    pub settings_affected: usize,
    /// Every order tried: (first hierarchy, settings affected).
    pub tried: Vec<(String, usize)>,
}

/// One stage of a staged rollout: a boot with more controllers on v2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    /// 1-based.
    pub number: usize,
    /// v1 controllers that move to v2 in this stage.
    pub adds: Vec<String>,
    /// All v1 controllers on v2 after this stage.
    pub controllers: Vec<String>,
    /// Kernel command line parameters for this boot.
    pub cmdline: String,
    /// The oldest kernel that carries out this stage with every setting it
    /// moves (`5.6`); a `plan.kernel-too-old` blocker names the stage when
    /// the host's kernel is older.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
    /// Why this stage is where it is (plan::stages); empty in plans made
    /// before stages said so.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub why: String,
}

/// Host header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanHost {
    /// Hostname.
    pub hostname: Option<String>,
    /// Kernel.
    pub kernel: Option<String>,
    /// Mode.
    pub mode: crate::model::Mode,
    /// `/etc/machine-id` of the host, when the plan was made on it (live scan).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_id: Option<String>,
    /// `/proc/sys/kernel/random/boot_id` at planning time: the same boot means
    /// the plan's PIDs are still meaningful (checked against the keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
}

/// A process's identity that survives a reboot (PIDs do not): what `apply`
/// matches live processes on. See `docs/apply.md` ("Stable process key").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessKey {
    /// PID at planning time (the plan's actions name it).
    pub pid: Pid,
    /// Real uid.
    pub uid: u32,
    /// `comm`.
    pub comm: String,
    /// Exact `cmdline` arguments.
    pub cmdline: Vec<String>,
    /// The v1 cgroups it was in: (hierarchy label, path), sorted. Used only to
    /// tell apart processes with the same uid, comm and cmdline.
    pub v1: Vec<(String, String)>,
    /// Threads placed on their own: (tid at planning time, thread comm).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub threads: Vec<(Tid, String)>,
}

/// A complete plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Always [`PLAN_SCHEMA`].
    pub schema: String,
    /// Host header.
    pub host: PlanHost,
    /// The host's verdict: [`Verdict::judge`] over `findings` (waived ones
    /// left out), `converts` and `incomplete`; the same as its audit's.
    /// Absent in plans older than the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// Whether any setting converts (a verdict input).
    #[serde(default)]
    pub converts: bool,
    /// Part of the host could not be read (a verdict input).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub incomplete: bool,
    /// Which stage this plan is (`None`: the whole migration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<usize>,
    /// v2 controllers this plan may use (the stage's, or all).
    pub controllers: Vec<String>,
    /// Target tree, parents before children.
    pub nodes: Vec<PlanNode>,
    /// Ordered actions.
    pub actions: Vec<Action>,
    /// Audit findings plus the planner's own.
    pub findings: Vec<Finding>,
    /// Crossing cgroups and how they were resolved.
    pub conflicts: Vec<Conflict>,
    /// The spine used.
    pub spine: Spine,
    /// The staged rollout.
    pub stages: Vec<Stage>,
    /// Who owns each node, what other owners will build, and what they need (the owners pass, `plan::owners`).
    #[serde(default, skip_serializing_if = "PlanOwners::is_empty")]
    pub owners: PlanOwners,
    /// Stable keys of the processes the plan places (`plan::keys`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub process_keys: Vec<ProcessKey>,
}

impl Plan {
    /// Judge the plan's findings again (after waivers were applied to
    /// them): the verdict is [`Verdict::judge`]'s, as for the audit.
    pub fn judge(&mut self) {
        self.verdict = Some(Verdict::judge(&self.findings, self.converts, self.incomplete));
    }

    /// The findings that block the switch and are not waived (`apply`
    /// refuses the plan while there is one).
    pub fn blockers(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == crate::rules::Severity::Blocker && f.waived.is_none())
    }

    /// The node at a path.
    pub fn node(&self, path: &str) -> Option<&PlanNode> {
        self.nodes.iter().find(|n| n.path == path)
    }
}

/// The subject of a finding about a node of the v2 tree.
pub(super) fn node_subject(path: &str) -> Subject {
    Subject::Cgroup {
        hierarchy: HierarchyId::UNIFIED,
        label: "v2".into(),
        path: path.to_string(),
    }
}

/// The v1 controllers a setting's origin hierarchy carries (from its label).
pub(super) fn origin_controllers(o: &Origin) -> Vec<String> {
    if o.label == "unified" {
        return Vec::new();
    }
    o.label
        .split(',')
        .filter(|p| !p.starts_with("name="))
        .map(str::to_string)
        .collect()
}

/// Whether `path` is `anc` or below it (`/a/b` is within `/a` and `/`,
/// `/ab` is not within `/a`).
pub(super) fn is_within(path: &str, anc: &str) -> bool {
    path == anc || anc == "/" || path.strip_prefix(anc).is_some_and(|r| r.starts_with('/'))
}

/// A file to install on the host (a drop-in or a unit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallFile {
    /// Where it goes.
    pub path: String,
    /// Its contents.
    pub text: String,
}

/// What systemd will build for one unit on v2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitPrediction {
    /// The unit.
    pub unit: String,
    /// Its v2 path in the plan.
    pub path: String,
    /// Files systemd writes, with the directive and formula.
    pub files: Vec<Written>,
    /// Directives that will have no effect on v2.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<Dropped>,
    /// Where v2 differs from v1 behaviour, in words.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub differences: Vec<String>,
    /// The drop-in that restores v1 behaviour (or moves to the v2 directives).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropin: Option<InstallFile>,
}

/// A unit that must delegate a subtree to another manager.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delegation {
    /// The unit.
    pub unit: String,
    /// Its v2 path.
    pub path: String,
    /// Whether its configuration already delegates.
    pub delegates: bool,
    /// Controllers the manager's subtree uses (to list in `Delegate=`).
    pub controllers: Vec<String>,
    /// The manager's nodes inside the unit.
    pub subtree: Vec<String>,
    /// The drop-in to install (none when it delegates already).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropin: Option<InstallFile>,
}

/// A unit suggested for a custom manager's top-level cgroups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suggestion {
    /// The top-level path of the manager's tree on v1 (`/borg-batch`).
    pub path: String,
    /// The unit to live under: a new one (`borg-batch-manager.service`), or
    /// the existing unit whose processes populate the tree.
    pub unit: String,
    /// Whether `unit` exists already (then `file` is a drop-in for it).
    #[serde(default)]
    pub existing_unit: bool,
    /// Where the tree's top then lives on v2.
    pub placed_at: String,
    /// The v2 controllers the unit must delegate (`Delegate=` list).
    #[serde(default)]
    pub controllers: Vec<String>,
    /// The processes that populate it.
    pub processes: Vec<String>,
    /// The unit file, or the drop-in for an existing unit.
    pub file: InstallFile,
    /// The same as a transient scope, for a manager started by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope_command: Option<String>,
    /// The manager's tree as it is predicted on v2, under `placed_at`.
    #[serde(default)]
    pub predicted: Vec<String>,
}

/// A runtime's tree: what must change, and what it will build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimePlan {
    /// The runtime.
    pub manager: Manager,
    /// Driver or mode seen (`cgroupfs driver`, `systemd driver`, ...).
    pub driver: String,
    /// Its top-level nodes.
    pub paths: Vec<String>,
    /// Settings to change before the switch.
    pub changes: Vec<String>,
    /// The tree the runtime builds on v2 (paths).
    pub predicted: Vec<String>,
    /// The values the runtime is predicted to write, per predicted path
    /// (the container's v1 limits as the plan converts them: the runtime
    /// recomputes them from the same container spec).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<RuntimeValues>,
}

/// The values a runtime is predicted to write into one node it rebuilds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeValues {
    /// The predicted v2 path.
    pub path: String,
    /// The v1 path it comes from.
    pub from: String,
    /// Files and values, with the conversion used.
    pub files: Vec<Written>,
}

/// Owners, predictions and per-owner plans; a section of the plan, made by
/// the owners pass (`plan::owners`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanOwners {
    /// The systemd facts used, when the host runs systemd.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd: Option<SystemdContext>,
    /// The owner of every non-root node, by v2 path.
    pub nodes: BTreeMap<String, detect::Owner>,
    /// What systemd builds, per unit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub units: Vec<UnitPrediction>,
    /// Units that must delegate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delegations: Vec<Delegation>,
    /// Units suggested for top-level custom trees.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suggestions: Vec<Suggestion>,
    /// Runtime trees.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runtimes: Vec<RuntimePlan>,
    /// Where each (non-kernel) process belongs, by command line: PIDs change
    /// across a reboot, so `verify` finds processes again by what they run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub places: Vec<ProcessPlace>,
}

/// Where a process belongs on v2, by its command line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessPlace {
    /// `comm`.
    pub comm: String,
    /// The command line, joined by spaces.
    pub cmdline: String,
    /// The v2 path: the plan node, or the unit's path for systemd's units.
    pub path: String,
    /// Who places it there.
    pub owner: Manager,
}

impl PlanOwners {
    /// No owner information (plans of hosts with no managed cgroups).
    pub fn is_empty(&self) -> bool {
        *self == PlanOwners::default()
    }

    /// The owner of a v2 path: its own entry or, for a node the planner
    /// derived later (a leaf), its nearest ancestor's.
    pub fn owner_of(&self, path: &str) -> Option<&detect::Owner> {
        Self::lookup(&self.nodes, path)
    }

    fn lookup<'a>(nodes: &'a BTreeMap<String, detect::Owner>, path: &str) -> Option<&'a detect::Owner> {
        let mut cur = Some(path);
        while let Some(p) = cur {
            if let Some(o) = nodes.get(p) {
                return Some(o);
            }
            cur = crate::model::path::parent(p);
        }
        None
    }

    /// Whether another manager builds the cgroup at `path` itself (see
    /// [`detect::builds_at`]): systemd or a runtime, at a path its own naming
    /// gives. A node merged from an owned cgroup at another path is cgmig's
    /// to create, even though its owner label stays (for predictions).
    pub fn built_by_owner(&self, path: &str) -> bool {
        self.owner_of(path)
            .is_some_and(|o| detect::builds_at(path, o, self.systemd.is_some()))
    }
}

/// Why `apply` must not write a path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path} belongs to {owner}: {why}")]
pub struct OwnerRefusal {
    /// The path.
    pub path: String,
    /// Its owner's label.
    pub owner: String,
    /// What to do instead.
    pub why: String,
}
