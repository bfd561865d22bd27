//! The steps an apply runs, and what each replaced: the journal's payload.
//!
//! A step is a plan action (with PIDs resolved to live processes) or one of
//! the steps only `apply` knows: enabling controllers above `--target`,
//! creating the target directory, and the live handover of a v1 hierarchy.
//! Paths are cgroup paths on the cgroup2 mount (not plan paths), so a journal
//! can be rolled back without the plan.

use serde::{Deserialize, Serialize};

use crate::plan::Action;

/// One unit of work, journaled on its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// `mkdir` the `--target` directory (or an ancestor of it).
    MkdirTarget {
        /// Path on the mount.
        path: String,
    },
    /// `+controllers` in `cgroup.subtree_control` of a cgroup above the target.
    EnableAbove {
        /// Path on the mount.
        path: String,
        /// Controllers.
        controllers: Vec<String>,
    },
    /// A plan action; its paths are already mapped onto the mount.
    Action(Action),
    /// Live handover: move every task of a v1 hierarchy to its root.
    Evacuate {
        /// The v1 controller(s) of the hierarchy (`hugetlb`).
        hierarchy: String,
        /// Where it is mounted (the first mount).
        mount: String,
    },
    /// Live handover: `rmdir` every v1 cgroup, deepest first.
    RemoveV1 {
        /// Hierarchy.
        hierarchy: String,
        /// Mount.
        mount: String,
    },
    /// Live handover: wait until `/proc/cgroups` counts 1 cgroup.
    WaitRelease {
        /// A v1 controller of the hierarchy.
        controller: String,
        /// Bound.
        timeout_ms: u64,
    },
    /// Live handover: unmount every mount of the hierarchy.
    Unmount {
        /// Hierarchy.
        hierarchy: String,
        /// Mount points.
        mounts: Vec<String>,
    },
    /// Live handover: wait until the v2 root offers the controller.
    WaitV2 {
        /// The v2 controller.
        controller: String,
        /// Bound.
        timeout_ms: u64,
    },
}

impl Step {
    /// A short human label.
    pub fn label(&self) -> String {
        match self {
            Step::MkdirTarget { path } => format!("mkdir target {path}"),
            Step::EnableAbove { path, controllers } => format!("enable {} at {path}", controllers.join(" ")),
            Step::Action(a) => match a {
                Action::Create { path } => format!("create {path}"),
                Action::SetType { path, value } => format!("type {value} {path}"),
                Action::MoveProcess { pid, path } => format!("move process {pid} to {path}"),
                Action::MoveThread { tid, pid, path } => format!("move thread {tid} (of {pid}) to {path}"),
                Action::EnableControllers { path, controllers } => {
                    format!("enable {} at {path}", controllers.join(" "))
                }
                Action::Write { path, file, value } => format!("write {path}/{file} = {value}"),
                Action::Chown { path, uid, gid, .. } => format!("chown {path} {uid}:{gid}"),
            },
            Step::Evacuate { hierarchy, .. } => format!("v1 {hierarchy}: tasks to root"),
            Step::RemoveV1 { hierarchy, .. } => format!("v1 {hierarchy}: rmdir cgroups"),
            Step::WaitRelease { controller, .. } => format!("v1 {controller}: wait for release"),
            Step::Unmount { hierarchy, .. } => format!("v1 {hierarchy}: unmount"),
            Step::WaitV2 { controller, .. } => format!("v2: wait for {controller}"),
        }
    }
}

/// One cgroup of a v1 hierarchy as the handover found it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct V1Cgroup {
    /// Path in the hierarchy.
    pub path: String,
    /// The controller's writable files and their values.
    pub settings: Vec<(String, String)>,
    /// `tasks` (thread ids).
    pub tasks: Vec<crate::model::Tid>,
    /// Files not owned by root:root (a delegated subtree: the directory,
    /// `cgroup.procs`, `tasks`) as (file, uid, gid), `.` for the directory;
    /// rollback chowns them back after the mkdir.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owners: Vec<(String, u32, u32)>,
}

/// One mount of a v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct V1Mount {
    /// Mount point.
    pub point: String,
    /// Source (`cgroup`).
    pub source: String,
    /// Per-mount options (`rw,nosuid,relatime`).
    pub options: String,
    /// Superblock options (`rw,hugetlb`): what the mount data was.
    pub super_options: String,
}

/// A v1 hierarchy the handover removes: enough to build it again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct V1State {
    /// Its mounts.
    pub mounts: Vec<V1Mount>,
    /// Its cgroups, parents first (the root included).
    pub cgroups: Vec<V1Cgroup>,
}

/// What was there before a step: what rollback restores.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Before {
    /// Whether the cgroup existed (create, mkdir).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub existed: Option<bool>,
    /// The file's old value (write, set-type, enable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The task's cgroup before a move (path on the mount).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    /// Old owners: (file, or "" for the directory; uid; gid).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owners: Vec<(String, u32, u32)>,
    /// The v1 hierarchy the handover takes apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v1: Option<V1State>,
}
