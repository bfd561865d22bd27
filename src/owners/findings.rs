//! The owners findings: one table of (id, severity, title, remediation).

use super::detect::Manager;
use crate::rules::{Rebuilt, Severity};

/// One kind of owners finding (the shared built-in kind type).
pub use crate::rules::FindingKind as Kind;

const SOURCE: &str = "cgmig owners";

/// A v1 directive this systemd ignores on v2: the limit silently vanishes.
pub const DIRECTIVE_DROPPED: Kind = Kind {
    id: "owners.directive-dropped",
    severity: Severity::Error,
    title: "a unit directive has no effect on v2 with this systemd",
    remediation: "Replace the v1 directive with its v2 form (the plan's drop-in) before the switch.",
    source: SOURCE,
};

/// A deprecated directive systemd still translates (with a warning in the journal).
pub const DIRECTIVE_DEPRECATED: Kind = Kind {
    id: "owners.directive-deprecated",
    severity: Severity::Info,
    title: "a deprecated v1 unit directive is translated by systemd on v2",
    remediation: "Move to the v2 directive (the plan's drop-in): systemd 258 and later ignore the v1 one.",
    source: SOURCE,
};

/// A v1 value on a unit's cgroup that no directive explains (written by hand or a tool).
pub const SET_OUTSIDE_UNIT: Kind = Kind {
    id: "owners.set-outside-unit",
    severity: Severity::Warning,
    title: "a value in a systemd unit's cgroup was not set by systemd",
    remediation: "systemd will not restore it on v2; the plan's drop-in sets it through the unit.",
    source: SOURCE,
};

/// Another manager's cgroups inside a unit that does not delegate.
pub const DELEGATE_NEEDED: Kind = Kind {
    id: "owners.delegate-needed",
    severity: Severity::Error,
    title: "cgroups of another manager inside a unit that does not delegate",
    remediation: "Add the plan's drop-in (`Delegate=` with the controllers) to the unit; on v2 systemd otherwise owns the whole subtree and the manager cannot create or configure cgroups there.",
    source: SOURCE,
};

/// Another manager's cgroups inside a delegating unit (fine; controllers listed).
pub const DELEGATED: Kind = Kind {
    id: "owners.delegated",
    severity: Severity::Info,
    title: "another manager's cgroups inside a delegated unit",
    remediation: "Check that the unit delegates the controllers the plan lists.",
    source: SOURCE,
};

/// Top-level cgroups of a custom manager on a systemd host.
pub const CUSTOM_TOP_LEVEL: Kind = Kind {
    id: "owners.custom-top-level",
    severity: Severity::Warning,
    title: "a custom manager's cgroups beside systemd's tree",
    remediation: "Run the manager in a unit that delegates (the plan suggests one) so its cgroups live in a delegated subtree on v2.",
    source: SOURCE,
};

/// A runtime's tree that the runtime rebuilds after the switch, with settings to change.
pub const RUNTIME_SETTINGS: Kind = Kind {
    id: "owners.runtime-settings",
    severity: Severity::Warning,
    title: "a runtime rebuilds its tree on v2; its settings must change first",
    remediation: "Apply the runtime settings the plan lists (cgroup driver, shim, config keys) before the switch; cgmig does not write the runtime's cgroups.",
    source: SOURCE,
};

/// A runtime's tree that the runtime rebuilds unchanged.
pub const RUNTIME_REBUILDS: Kind = Kind {
    id: "owners.runtime-rebuilds",
    severity: Severity::Info,
    title: "a runtime rebuilds its tree on v2",
    remediation: "Nothing for cgmig to write; check the runtime's version supports v2.",
    source: SOURCE,
};

/// systemd's own device policy (journald, logind, ...): BPF on v2, not an error.
pub const SYSTEMD_DEVICES: Kind = Kind {
    id: "owners.systemd-device-policy",
    severity: Severity::Info,
    title: "systemd's own device policy; systemd installs it as BPF on v2",
    remediation: "Nothing to do: systemd rebuilds DevicePolicy=/DeviceAllow= as a BPF program on v2.",
    source: SOURCE,
};

/// A container runtime's, libvirt's or LXC's device list: rebuilt as BPF on v2.
pub const RUNTIME_DEVICES: Kind = Kind {
    id: "owners.runtime-device-policy",
    severity: Severity::Info,
    title: "a runtime's device policy; the runtime compiles it to BPF on v2",
    remediation: "Nothing to do: the runtime (runc, crun, libvirt, LXC) rebuilds the container's device list as a BPF_CGROUP_DEVICE program from its own configuration.",
    source: SOURCE,
};

/// An action cgmig keeps in a cgroup another owner builds, because its own
/// nodes need it and that owner does not do it (a root enable on a systemd
/// host for a custom top-level tree).
pub const KEPT_ACTION: Kind = Kind {
    id: "owners.kept-action",
    severity: Severity::Warning,
    title: "cgmig writes into a cgroup another owner builds, for its own nodes",
    remediation: "Prefer a unit that delegates the tree's controllers (Delegate=): then systemd enables them itself and keeps them; until then re-run cgmig apply after the owner rewrites the cgroup.",
    source: SOURCE,
};

/// A threaded subtree the plan roots in a cgroup another owner builds as a
/// domain (a systemd slice enables memory and pids for its units).
pub const THREADED_IN_OWNER: Kind = Kind {
    id: "owners.threaded-in-owner",
    severity: Severity::Error,
    title: "threads split inside a cgroup another owner builds as a domain",
    remediation: "Run the process in a unit with Delegate= and let it place its own threads in its delegated subtree; a slice or the root of a systemd host cannot hold a threaded subtree on v2.",
    source: SOURCE,
};

/// Every kind, for documentation and `explain`.
pub const ALL: &[Kind] = &[
    DIRECTIVE_DROPPED,
    DIRECTIVE_DEPRECATED,
    SET_OUTSIDE_UNIT,
    DELEGATE_NEEDED,
    DELEGATED,
    CUSTOM_TOP_LEVEL,
    RUNTIME_SETTINGS,
    RUNTIME_REBUILDS,
    SYSTEMD_DEVICES,
    RUNTIME_DEVICES,
    KEPT_ACTION,
    THREADED_IN_OWNER,
];

/// The finding that stands for a rule's on a cgroup whose manager rebuilds
/// what the rule is about (the rule's `rebuilt_by_owner`), if that manager
/// does: systemd's own units, and the runtimes' containers and machines.
/// Custom managers rebuild nothing: the rule's own finding stands.
pub fn rebuilt_by(what: Rebuilt, manager: Manager) -> Option<&'static Kind> {
    match (what, manager) {
        (_, Manager::Custom) => None,
        (Rebuilt::DevicePolicy, Manager::Systemd) => Some(&SYSTEMD_DEVICES),
        (Rebuilt::DevicePolicy, _) => Some(&RUNTIME_DEVICES),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_unique_and_namespaced() {
        crate::rules::kind::check_table(super::ALL, "owners.");
        let mut ids: Vec<&str> = super::ALL.iter().map(|k| k.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), super::ALL.len(), "an owners id is listed twice");
    }
}
