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
    fn threaded_controllers_match_kernel_doc() {
        let threaded: Vec<_> = Controller::KNOWN
            .iter()
            .filter(|c| c.is_threaded())
            .map(|c| c.as_str())
            .collect();
        assert_eq!(threaded, ["cpuset", "cpu", "cpuacct", "perf_event", "pids"]);
    }
}
