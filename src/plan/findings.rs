//! The planner's findings: one table of (id, severity, title, remediation).
//!
//! Each step names the kind it reports; only the `why` (which cgroups, which
//! values) is written where the finding is made. `explain plan.<id>` reads
//! this table, and `finish` recognises the findings it derives by their
//! kind's id ([`LEAF`]), not by a string of its own.

use crate::rules::FindingKind;
use crate::rules::Severity;

const SOURCE: &str = "cgmig planner";

const fn kind(
    id: &'static str,
    severity: Severity,
    title: &'static str,
    remediation: &'static str,
) -> FindingKind {
    FindingKind {
        id,
        severity,
        title,
        remediation,
        source: SOURCE,
    }
}

const CONFLICT_TITLE: &str = "cgroups of two hierarchies cross; v2 can keep only one shape";
const CONFLICT_FIX: &str = "Align the two hierarchies in v1 (move the processes so one cgroup contains the other), or accept the resolution.";

/// Crossing cgroups, resolved by splitting the rejected one into pieces.
pub const CONFLICT_SPLIT: FindingKind =
    kind("plan.conflict", Severity::Warning, CONFLICT_TITLE, CONFLICT_FIX);
/// Crossing cgroups, resolved by dropping the rejected one's settings.
pub const CONFLICT_DROP: FindingKind = kind("plan.conflict", Severity::Error, CONFLICT_TITLE, CONFLICT_FIX);
/// Crossing cgroups under `--conflict fail`: the plan is blocked.
pub const CONFLICT_FAIL: FindingKind = kind("plan.conflict", Severity::Blocker, CONFLICT_TITLE, CONFLICT_FIX);

/// One user's delegated subtrees have no common delegated parent.
pub const DELEGATION_RESTRUCTURE: FindingKind = kind(
    "plan.delegation-restructure",
    Severity::Warning,
    "one user's delegated subtrees need a common delegated parent in v2",
    "Create a cgroup owned by the user above its subtrees and move them under it.",
);

/// A stage needs controllers or files the host's kernel lacks on v2.
pub const KERNEL_TOO_OLD: FindingKind = kind(
    "plan.kernel-too-old",
    Severity::Blocker,
    "a stage needs a newer kernel than the host's",
    "Boot a kernel that offers the stage's controllers and files on v2 before that stage.",
);

/// The host's disks use BFQ: blkio weights go to `io.bfq.weight` (plan::io_weight).
pub const IO_WEIGHT_BFQ: FindingKind = kind(
    "plan.io-weight-bfq",
    Severity::Info,
    "I/O weights go to io.bfq.weight (the disks use BFQ)",
    "Keep BFQ as these disks' scheduler on v2 (a udev rule or elevator= setting that changes it would leave the weights unread).",
);

/// The host's disks use no BFQ: blkio weights go to `io.weight`, read only by iocost.
pub const IO_WEIGHT_IOCOST: FindingKind = kind(
    "plan.io-weight-iocost",
    Severity::Warning,
    "I/O weights go to io.weight, which acts only with the io.cost controller enabled",
    "Enable iocost on these disks (write \"MAJ:MIN enable=1\" to the root's io.cost.qos, kernel 5.4 or later), or switch them to BFQ and re-plan so the weights go to io.bfq.weight.",
);

/// No scheduler evidence: blkio weights go to `io.weight` by default.
pub const IO_SCHEDULER_UNKNOWN: FindingKind = kind(
    "plan.io-scheduler-unknown",
    Severity::Warning,
    "unknown whether the disks use BFQ; I/O weights go to io.weight",
    "Scan the live host (or capture /sys/block/*/queue/scheduler with the root) so the plan can choose io.bfq.weight where the disks use BFQ.",
);

/// Cgroups merged into one node were owned by different users.
pub const OWNER_CONFLICT: FindingKind = kind(
    "plan.owner-conflict",
    Severity::Warning,
    "merged cgroups have different owners",
    "Decide which user manages this subtree and chown the others' cgroups accordingly.",
);

/// A name that is an interface file in v2.
pub const RENAMED_INTERFACE_FILE: FindingKind = kind(
    "plan.renamed",
    Severity::Info,
    "cgroup renamed: its name collides with v2 interface files",
    "Update tools that refer to the old name.",
);

/// Two hierarchies' cgroups of one name hold different tasks.
pub const RENAMED_COLLISION: FindingKind = kind(
    "plan.renamed",
    Severity::Info,
    "cgroup renamed: another cgroup of the same name holds different tasks",
    "Align the hierarchies in v1 (same tasks in cgroups of the same path), or update tools that use the old path.",
);

/// A thread cgroup whose name a domain node already has.
pub const RENAMED_THREADED: FindingKind = kind(
    "plan.renamed",
    Severity::Info,
    "threaded cgroup renamed: a domain cgroup has its name",
    "Update tools that place threads by path.",
);

/// Threads split in a domain controller: v2 keeps a process's threads together there.
pub const THREAD_PLACEMENT_LOST: FindingKind = kind(
    "plan.thread-placement-lost",
    Severity::Error,
    "per-thread placement in a domain controller is dropped",
    "Move all threads of the process into one cgroup in v1 first, or accept the loss.",
);

/// Split threads in a cgroup that also has domain children.
pub const THREADED_NEEDS_LEAF_DOMAIN: FindingKind = kind(
    "plan.threaded-needs-leaf-domain",
    Severity::Error,
    "a process with split threads sits in a cgroup with domain children",
    "Move the process into its own cgroup in v1 (or let it keep all threads together).",
);

/// A v1 thread cgroup becomes one threaded node per v2 home of its processes.
pub const THREAD_CGROUP_SPLIT: FindingKind = kind(
    "plan.thread-cgroup-split",
    Severity::Warning,
    "a v1 thread cgroup holds threads of processes placed apart in v2",
    "Keep threads that must share a limit in processes that share a cgroup.",
);

/// A domain controller's setting on a cgroup that becomes threaded.
pub const THREADED_SETTING_LOST: FindingKind = kind(
    "plan.threaded-setting-lost",
    Severity::Error,
    "a domain setting on a thread cgroup has no place in a threaded subtree",
    "Only cpu, cpuset, pids and perf_event act inside threaded subtrees.",
);

/// Two threaded hierarchies place one thread differently.
pub const THREAD_CONFLICT: FindingKind = kind(
    "plan.thread-conflict",
    Severity::Warning,
    "a thread is placed differently by two threaded hierarchies",
    "Place the thread at the same relative path in every threaded hierarchy.",
);

/// A weight whose siblings change between v1 and v2.
pub const WEIGHT_SHARE: FindingKind = kind(
    "plan.weight-share",
    Severity::Warning,
    "a weight competes with different siblings in v2",
    "Set weights on the new siblings (or restructure in v1) to keep the v1 ratio.",
);

/// Processes of an inner node moved into a leaf child (derived by `finish`).
pub const LEAF: FindingKind = kind(
    "plan.leaf",
    Severity::Info,
    "processes of an inner cgroup move into a leaf child",
    "Tools that place tasks in the inner cgroup must target the leaf.",
);

/// Every planner finding kind, for `explain` and the uniqueness test.
pub const ALL: [FindingKind; 19] = [
    IO_WEIGHT_BFQ,
    IO_WEIGHT_IOCOST,
    IO_SCHEDULER_UNKNOWN,
    CONFLICT_SPLIT,
    CONFLICT_DROP,
    CONFLICT_FAIL,
    DELEGATION_RESTRUCTURE,
    KERNEL_TOO_OLD,
    OWNER_CONFLICT,
    RENAMED_INTERFACE_FILE,
    RENAMED_COLLISION,
    RENAMED_THREADED,
    THREAD_PLACEMENT_LOST,
    THREADED_NEEDS_LEAF_DOMAIN,
    THREAD_CGROUP_SPLIT,
    THREADED_SETTING_LOST,
    THREAD_CONFLICT,
    WEIGHT_SHARE,
    LEAF,
];

#[cfg(test)]
mod tests {
    #[test]
    fn table_is_namespaced_and_has_no_duplicates() {
        crate::rules::kind::check_table(&super::ALL, "plan.");
    }
}
