//! The ownership evidence a snapshot carries (`Snapshot::owner_evidence`):
//! systemd's version and defaults, the effective configuration of its units,
//! and the extended attributes on its cgroups, as data. `crate::owners`
//! reads it at scan time (`owners::evidence::read`, `owners::units::read_unit`)
//! and decides owners from it; the types live here because they are part of
//! the snapshot document (`cgmig.snapshot/v1`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Everything the scan found about who manages the cgroups.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// systemd's version (from `libsystemd-shared-NNN.so` or the package database).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd_version: Option<u32>,
    /// `kernel.pid_max`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_max: Option<u64>,
    /// `kernel.threads-max`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads_max: Option<u64>,
    /// `[Manager]` settings of `system.conf` and its drop-ins (`DefaultTasksMax`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub manager_defaults: BTreeMap<String, String>,
    /// Unit configuration (fragment plus drop-ins) of every unit seen in the cgroup trees.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub units: BTreeMap<String, UnitConfig>,
    /// systemd's extended attributes per cgroup path (`trusted.invocation_id`, `user.delegate`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub xattrs: BTreeMap<String, BTreeMap<String, String>>,
    /// PID 1's executable (`/proc/1/exe`), when it could be read: with PID
    /// 1's `comm`, the strongest evidence of who manages the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid1_exe: Option<String>,
    /// The runtimes' own state on disk, by manager (`docker` → the entries
    /// of `/var/lib/docker/containers`, `lxc` → `/var/lib/lxc/c1`, ...): a
    /// manager's own marks, which a cgroup's name alone never is.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub runtime_state: BTreeMap<String, Vec<String>>,
}

impl Evidence {
    /// Nothing was found (keeps snapshots of non-systemd hosts unchanged).
    pub fn is_empty(&self) -> bool {
        *self == Evidence::default()
    }
}

/// The effective configuration of one unit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitConfig {
    /// Files read, in the order applied (fragment first, then drop-ins).
    pub files: Vec<String>,
    /// Effective directives (`CPUShares` → `2048`), last assignment wins.
    pub directives: BTreeMap<String, String>,
}

impl UnitConfig {
    /// A directive's value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.directives.get(key).map(String::as_str)
    }

    /// Whether the unit delegates its cgroup (`Delegate=yes` or a controller list).
    pub fn delegates(&self) -> bool {
        match self.get("Delegate") {
            Some(v) => !matches!(v.trim(), "no" | "false" | "0" | "off" | ""),
            None => false,
        }
    }
}
