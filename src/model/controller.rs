//! The cgroup controller names, in one table.
//!
//! Every place that needs a controller's name or its v2 behaviour asks this
//! enum; the name table is written once (`as_str`) and `FromStr` is its
//! inverse, so the two can't drift apart.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A cgroup controller (subsystem), as the kernel names it in `/proc/cgroups`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Controller {
    /// `cpu`: CFS shares/quota, RT bandwidth (v1); weight/max (v2).
    Cpu,
    /// `cpuacct`: v1 CPU accounting; folded into v2 `cpu.stat`.
    Cpuacct,
    /// `cpuset`: CPU and memory-node placement.
    Cpuset,
    /// `memory`: memory limits and accounting.
    Memory,
    /// `devices`: device access lists (v1); BPF programs in v2.
    Devices,
    /// `freezer`: v1 freezer; `cgroup.freeze` in v2 core.
    Freezer,
    /// `net_cls`: v1-only socket class ids.
    NetCls,
    /// `net_prio`: v1-only per-interface priorities.
    NetPrio,
    /// `blkio`: v1 block I/O; `io` in v2.
    Blkio,
    /// `io`: the v2 name of the block I/O controller.
    Io,
    /// `perf_event`: perf grouping; implicit on v2.
    PerfEvent,
    /// `hugetlb`: huge page limits.
    Hugetlb,
    /// `pids`: process count limits.
    Pids,
    /// `rdma`: RDMA/IB resource limits.
    Rdma,
    /// `misc`: misc scalar resources (5.13+).
    Misc,
    /// `debug`: kernel debugging controller.
    Debug,
    /// `dmem`: device memory (v2 only, ~6.14).
    Dmem,
    /// A controller this build does not know (vendor kernels have some).
    Other(String),
}

impl Controller {
    /// Every controller this build knows, in `/proc/cgroups` order.
    pub const KNOWN: &'static [Controller] = &[
        Controller::Cpuset,
        Controller::Cpu,
        Controller::Cpuacct,
        Controller::Blkio,
        Controller::Io,
        Controller::Memory,
        Controller::Devices,
        Controller::Freezer,
        Controller::NetCls,
        Controller::PerfEvent,
        Controller::NetPrio,
        Controller::Hugetlb,
        Controller::Pids,
        Controller::Rdma,
        Controller::Misc,
        Controller::Debug,
        Controller::Dmem,
    ];

    /// The controllers cgroup2 has, in subsystem id order (`cgroup_subsys.h`):
    /// the order `cgroup.controllers` prints them in and
    /// `cgroup_subtree_control_write` checks them in.
    pub const V2: &'static [Controller] = &[
        Controller::Cpuset,
        Controller::Cpu,
        Controller::Io,
        Controller::Memory,
        Controller::PerfEvent,
        Controller::Hugetlb,
        Controller::Pids,
        Controller::Rdma,
        Controller::Misc,
        Controller::Dmem,
    ];

    /// The v2 controller called `name`, if cgroup2 has one by that name.
    pub fn v2_named(name: &str) -> Option<&'static Controller> {
        Self::V2.iter().find(|c| c.as_str() == name)
    }

    /// The position of the v2 controller `name` in subsystem id order
    /// (`None` when cgroup2 has no such controller).
    pub fn v2_rank(name: &str) -> Option<usize> {
        Self::V2.iter().position(|c| c.as_str() == name)
    }

    /// Names of the v2 controllers, in subsystem id order.
    pub fn v2_names() -> impl Iterator<Item = &'static str> {
        Self::V2.iter().map(|c| c.as_str())
    }

    /// The v2 controller owning an interface file (`memory` of
    /// `memory.max`), or `None` for core files (`cgroup.*`, `irq.pressure`).
    pub fn of_v2_file(file: &str) -> Option<&str> {
        let prefix = file.split('.').next().unwrap_or(file);
        Self::v2_named(prefix).map(|_| prefix)
    }

    /// Whether the controller called `name` acts inside threaded subtrees
    /// (see [`Controller::is_threaded`]).
    pub fn is_threaded_name(name: &str) -> bool {
        name.parse::<Controller>().is_ok_and(|c| c.is_threaded())
    }

    /// Whether v2 has this controller implicitly (`cgrp_dfl_implicit_ss_mask`):
    /// on in every cgroup, never listed in `cgroup.controllers`, never
    /// written to `cgroup.subtree_control`.
    pub fn is_implicit_on_v2(&self) -> bool {
        matches!(self, Controller::PerfEvent)
    }

    /// Whether v2 has no controller for this v1 one, so it is handed over by
    /// releasing its hierarchy: `devices` becomes a BPF program, `freezer`
    /// the core `cgroup.freeze`, `net_cls`/`net_prio` socket matching by
    /// cgroup path.
    pub fn is_v1_only(&self) -> bool {
        matches!(
            self,
            Controller::Devices | Controller::Freezer | Controller::NetCls | Controller::NetPrio
        )
    }

    /// The first upstream kernel (major, minor) that offers this
    /// controller's job on cgroup2; 4.5 (cgroup2 itself) for the first ones
    /// and for the rest. For `devices` and `freezer`, which have no v2
    /// controller, the kernel of their v2 replacement: device access by a
    /// cgroup BPF program (4.15) and the core `cgroup.freeze` (5.2). The
    /// commits are in [`Controller::v2_commit`]. A vendor kernel may offer a
    /// controller earlier (RHEL 8's 4.18 has `cpuset`): `audit::kernel`
    /// asks the host first and this table only as the fallback.
    pub fn v2_since(&self) -> (u32, u32) {
        match self {
            Controller::Cpu | Controller::Cpuacct | Controller::Devices => (4, 15),
            Controller::Cpuset => (5, 0),
            Controller::Freezer => (5, 2),
            Controller::Hugetlb => (5, 6),
            Controller::Misc => (5, 13),
            Controller::Rdma | Controller::PerfEvent => (4, 11),
            Controller::Dmem => (6, 14),
            _ => (4, 5),
        }
    }

    /// The upstream commit that brought this controller (or its v2
    /// replacement) to cgroup2, where one commit did (torvalds/linux):
    /// the version in [`Controller::v2_since`] is the release it first
    /// appeared in.
    pub fn v2_commit(&self) -> Option<&'static str> {
        Some(match self {
            // "sched: Implement interface for cgroup unified hierarchy"
            Controller::Cpu | Controller::Cpuacct => "0d5936344f30",
            // "cpuset: Enable cpuset controller in default hierarchy"
            Controller::Cpuset => "4ec22e9c5a90",
            // "cgroup: cgroup v2 freezer"
            Controller::Freezer => "76f969e8948d",
            // "bpf, cgroup: implement eBPF-based device controller for cgroup v2"
            Controller::Devices => "ebc614f68736",
            // "mm: hugetlb controller for cgroups v2"
            Controller::Hugetlb => "faced7e0806c",
            // "cgroup: Add misc cgroup controller"
            Controller::Misc => "a72232eabdfc",
            // "rdma cgroup: Add RDMA cgroup" (v1 and v2 from the start)
            Controller::Rdma => "39d3e7584a68",
            // "cgroup: replace __DEVEL__sane_behavior with cgroup2 fs type"
            Controller::Memory | Controller::Blkio | Controller::Io | Controller::Pids => "67e9c74b8a87",
            _ => return None,
        })
    }

    /// Whether a cgroup name could be mistaken for an interface file, which
    /// cgroup-v2.rst "Avoid Name Collisions" forbids: `cgroup.*`, `irq.*` (the
    /// core `irq.pressure`) and `<controller>.*` for every controller this build
    /// knows, v1 names included.
    pub fn name_collides_with_interface_file(name: &str) -> bool {
        match name.split_once('.') {
            Some((prefix, _)) => {
                matches!(prefix, "cgroup" | "irq") || Controller::KNOWN.iter().any(|c| c.as_str() == prefix)
            }
            None => false,
        }
    }

    /// The kernel's name for this controller.
    pub fn as_str(&self) -> &str {
        match self {
            Controller::Cpu => "cpu",
            Controller::Cpuacct => "cpuacct",
            Controller::Cpuset => "cpuset",
            Controller::Memory => "memory",
            Controller::Devices => "devices",
            Controller::Freezer => "freezer",
            Controller::NetCls => "net_cls",
            Controller::NetPrio => "net_prio",
            Controller::Blkio => "blkio",
            Controller::Io => "io",
            Controller::PerfEvent => "perf_event",
            Controller::Hugetlb => "hugetlb",
            Controller::Pids => "pids",
            Controller::Rdma => "rdma",
            Controller::Misc => "misc",
            Controller::Debug => "debug",
            Controller::Dmem => "dmem",
            Controller::Other(s) => s,
        }
    }

    /// The v2 controller that takes over this v1 controller's job, if any.
    ///
    /// `cpuacct` folds into `cpu` (v2 `cpu.stat` is always present), `blkio`
    /// becomes `io`; `devices` and `freezer` become core features (BPF and
    /// `cgroup.freeze`), and `net_cls`/`net_prio` have no v2 controller.
    pub fn v2_name(&self) -> Option<&'static str> {
        Some(match self {
            Controller::Cpu | Controller::Cpuacct => "cpu",
            Controller::Cpuset => "cpuset",
            Controller::Memory => "memory",
            Controller::Blkio | Controller::Io => "io",
            Controller::PerfEvent => "perf_event",
            Controller::Hugetlb => "hugetlb",
            Controller::Pids => "pids",
            Controller::Rdma => "rdma",
            Controller::Misc => "misc",
            Controller::Dmem => "dmem",
            _ => return None,
        })
    }

    /// Whether v2 lets this controller act inside threaded subtrees.
    ///
    /// Kernel `cgroup-v2.rst` "Threads": cpu, cpuset, perf_event and pids are
    /// the threaded controllers; every other one is domain-only.
    pub fn is_threaded(&self) -> bool {
        matches!(
            self,
            Controller::Cpu
                | Controller::Cpuacct
                | Controller::Cpuset
                | Controller::PerfEvent
                | Controller::Pids
        )
    }
}

impl fmt::Display for Controller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Controller {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Controller::KNOWN
            .iter()
            .find(|c| c.as_str() == s)
            .cloned()
            .unwrap_or_else(|| Controller::Other(s.to_string())))
    }
}

impl Serialize for Controller {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Controller {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(s.parse().unwrap_or_else(|e| match e {}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_table_round_trips() {
        for c in Controller::KNOWN {
            assert_eq!(&c.as_str().parse::<Controller>().unwrap(), c);
        }
        assert_eq!(
            "net_cgroup".parse::<Controller>().unwrap(),
            Controller::Other("net_cgroup".into())
        );
    }

    #[test]
    fn v2_table_is_in_subsystem_order_and_named_by_v2_name() {
        let names: Vec<_> = Controller::v2_names().collect();
        assert_eq!(
            names,
            [
                "cpuset",
                "cpu",
                "io",
                "memory",
                "perf_event",
                "hugetlb",
                "pids",
                "rdma",
                "misc",
                "dmem"
            ]
        );
        for c in Controller::V2 {
            assert_eq!(c.v2_name(), Some(c.as_str()), "{c}");
        }
        assert_eq!(Controller::of_v2_file("dmem.max"), Some("dmem"));
        assert_eq!(Controller::of_v2_file("cgroup.procs"), None);
        assert_eq!(Controller::of_v2_file("blkio.weight"), None);
        assert!(
            Controller::KNOWN
                .iter()
                .all(|c| c.v2_name().is_some() != c.is_v1_only() || *c == Controller::Debug)
        );
    }

    #[test]
    fn interface_file_names_collide() {
        for n in [
            "cgroup.x",
            "memory.a",
            "irq.b",
            "blkio.c",
            "dmem.d",
            "perf_event.e",
        ] {
            assert!(Controller::name_collides_with_interface_file(n), "{n}");
        }
        for n in ["memory", "foo.bar", "system.slice"] {
            assert!(!Controller::name_collides_with_interface_file(n), "{n}");
        }
    }

    #[test]
    fn threaded_controllers_match_kernel_doc() {
        let threaded: Vec<_> = Controller::KNOWN
            .iter()
            .filter(|c| c.is_threaded())
            .map(|c| c.as_str())
            .collect();
        assert_eq!(threaded, ["cpuset", "cpu", "cpuacct", "perf_event", "pids"]);
    }
}
