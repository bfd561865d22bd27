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
    /// Containers as their engines keep them (docker, podman, containerd):
    /// what each is recreated with on v2 (read by `owners::containers`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<Container>,
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

/// A container engine whose records the scan reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// dockerd (its containers run by containerd and runc).
    Docker,
    /// podman (conmon and crun or runc).
    Podman,
    /// containerd's own clients (ctr, nerdctl, the CRI plugin).
    Containerd,
}

/// The OCI resources of a container, as its engine hands them to the OCI
/// runtime (`linux.resources` of the spec; docker's `hostconfig.json`
/// mapped the way dockerd maps it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// `cpu.shares` (v1 shares; 0 or absent: unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_shares: Option<u64>,
    /// `cpu.quota` in µs (≤ 0: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_quota: Option<i64>,
    /// `cpu.period` in µs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_period: Option<u64>,
    /// `cpu.cpus`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpuset_cpus: Option<String>,
    /// `cpu.mems`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpuset_mems: Option<String>,
    /// `memory.limit` in bytes (-1: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit: Option<i64>,
    /// `memory.swap`: memory **plus** swap, in bytes, as v1 counts it (-1: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_swap: Option<i64>,
    /// `memory.reservation` in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<i64>,
    /// `pids.limit` (-1 or 0: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<i64>,
    /// `blockIO.weight` (v1 blkio weight, 10..1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blkio_weight: Option<u64>,
    /// `hugepageLimits`: page size (`2MB`) and limit in bytes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hugepage_limits: Vec<(String, u64)>,
}

impl Resources {
    /// No limit at all.
    pub fn is_empty(&self) -> bool {
        *self == Resources::default()
    }
}

/// One container and what its engine recreates it with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    /// The engine that keeps it.
    pub engine: Engine,
    /// Its id (full).
    pub id: String,
    /// Its name, when the engine names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Which instance of the engine: docker's data root, containerd's namespace,
    /// podman's graph root.
    pub instance: String,
    /// The OCI runtime that runs it (`runc`, `crun`), when the state says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oci_runtime: Option<String>,
    /// The cgroup driver its engine is configured with (`systemd`,
    /// `cgroupfs`), when set explicitly, with where it was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_setting: Option<String>,
    /// `linux.cgroupsPath` of its spec (`/docker/<id>`, `machine.slice:libpod:<id>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroups_path: Option<String>,
    /// The spec's `run.oci.systemd.subgroup` annotation (crun: the child of
    /// the systemd scope the container runs in; empty: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd_subgroup: Option<String>,
    /// docker's `CgroupParent` (empty: the daemon's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup_parent: Option<String>,
    /// The limits.
    #[serde(default, skip_serializing_if = "Resources::is_empty")]
    pub resources: Resources,
    /// The restart policy (`always`, `unless-stopped`, `on-failure`, `no`), when recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<String>,
    /// Whether it runs, when the state says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<bool>,
    /// The file the record was read from.
    pub source: String,
}
