//! Which interface files a v2 cgroup has, from the kernel's `cftype` tables.
//!
//! Why a table: a write or read of a file that does not exist is ENOENT, and
//! which files exist depends on where the cgroup is (root or not:
//! `CFTYPE_NOT_ON_ROOT`, `CFTYPE_ONLY_ON_ROOT`), which controllers its parent
//! enables (`css_visible`: `cgroup_control` of the cgroup), the kernel
//! version (files were added over time) and, for `io.bfq.weight`, whether a
//! device uses BFQ. Entries follow `cgroup_base_files`/`cgroup_psi_files`
//! (kernel/cgroup/cgroup.c), `cpu_files` (kernel/sched/core.c),
//! `memory_files`/`swap_files`/`zswap_files` (mm/memcontrol.c), the blkcg
//! policies (block/), `dfl_files` (kernel/cgroup/cpuset.c), `pids_files`,
//! the hugetlb templates (mm/hugetlb_cgroup.c), rdma, misc and dmem.

/// Which way a file may be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// `seq_show` only (mode 0444).
    Read,
    /// `write` only (mode 0200).
    Write,
    /// Both.
    ReadWrite,
}

impl Access {
    /// Whether a file of this kind can be opened for `want` (kernfs_fop_open
    /// gives EACCES otherwise, even to root).
    pub(crate) fn allows(self, want: Access) -> bool {
        self == Access::ReadWrite || self == want
    }
}

/// Where a file exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Every cgroup.
    All,
    /// `CFTYPE_NOT_ON_ROOT`.
    NotOnRoot,
    /// `CFTYPE_ONLY_ON_ROOT`.
    OnlyOnRoot,
}

/// What the simulator knows about one existing file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Spec {
    /// Read, write or both.
    pub access: Access,
    /// The controller that provides it (`None`: cgroup core).
    pub controller: Option<&'static str>,
}

/// What decides whether a file exists in one cgroup.
pub(crate) struct Ctx<'a> {
    pub is_root: bool,
    /// `cgroup_control` of the cgroup: the controllers whose files it shows.
    pub controllers: Vec<String>,
    pub kernel: (u32, u32),
    pub bfq: bool,
    pub hugepage_sizes: &'a [String],
}

use Access::{Read as R, ReadWrite as RW, Write as W};
use Place::{All, NotOnRoot as NR, OnlyOnRoot as OR};

/// (name, controller, place, access, first kernel version).
type Entry = (&'static str, Option<&'static str>, Place, Access, (u32, u32));

/// Core files: `cgroup_base_files` and `cgroup_psi_files` (CONFIG_PSI).
const CORE: &[Entry] = &[
    ("cgroup.type", None, NR, RW, (4, 14)),
    ("cgroup.procs", None, All, RW, (4, 5)),
    ("cgroup.threads", None, All, RW, (4, 14)),
    ("cgroup.controllers", None, All, R, (4, 5)),
    ("cgroup.subtree_control", None, All, RW, (4, 5)),
    ("cgroup.events", None, NR, R, (4, 5)),
    ("cgroup.max.descendants", None, All, RW, (4, 14)),
    ("cgroup.max.depth", None, All, RW, (4, 14)),
    ("cgroup.stat", None, All, R, (4, 14)),
    ("cgroup.freeze", None, NR, RW, (5, 2)),
    ("cgroup.kill", None, NR, W, (5, 14)),
    ("cpu.stat", None, All, R, (4, 15)),
    ("cpu.stat.local", None, All, R, (6, 7)),
    ("cgroup.pressure", None, All, RW, (6, 1)),
    ("io.pressure", None, All, RW, (4, 20)),
    ("memory.pressure", None, All, RW, (4, 20)),
    ("cpu.pressure", None, All, RW, (4, 20)),
];

/// Controller files with a fixed name.
const CONTROLLER: &[Entry] = &[
    // kernel/sched/core.c cpu_files
    ("cpu.weight", Some("cpu"), NR, RW, (4, 15)),
    ("cpu.weight.nice", Some("cpu"), NR, RW, (4, 15)),
    ("cpu.idle", Some("cpu"), NR, RW, (5, 15)),
    ("cpu.max", Some("cpu"), NR, RW, (4, 15)),
    ("cpu.max.burst", Some("cpu"), NR, RW, (5, 14)),
    ("cpu.uclamp.min", Some("cpu"), NR, RW, (5, 4)),
    ("cpu.uclamp.max", Some("cpu"), NR, RW, (5, 4)),
    // mm/memcontrol.c memory_files, swap_files, zswap_files
    ("memory.current", Some("memory"), NR, R, (4, 5)),
    ("memory.peak", Some("memory"), NR, R, (5, 19)),
    ("memory.min", Some("memory"), NR, RW, (4, 18)),
    ("memory.low", Some("memory"), NR, RW, (4, 5)),
    ("memory.high", Some("memory"), NR, RW, (4, 5)),
    ("memory.max", Some("memory"), NR, RW, (4, 5)),
    ("memory.events", Some("memory"), NR, R, (4, 5)),
    ("memory.events.local", Some("memory"), NR, R, (5, 2)),
    ("memory.stat", Some("memory"), All, R, (4, 5)),
    ("memory.numa_stat", Some("memory"), All, R, (5, 8)),
    ("memory.oom.group", Some("memory"), NR, RW, (4, 19)),
    ("memory.reclaim", Some("memory"), All, W, (5, 19)),
    ("memory.swap.current", Some("memory"), NR, R, (4, 5)),
    ("memory.swap.high", Some("memory"), NR, RW, (5, 8)),
    ("memory.swap.max", Some("memory"), NR, RW, (4, 5)),
    ("memory.swap.peak", Some("memory"), NR, R, (6, 5)),
    ("memory.swap.events", Some("memory"), NR, R, (5, 0)),
    ("memory.zswap.current", Some("memory"), NR, R, (5, 19)),
    ("memory.zswap.max", Some("memory"), NR, RW, (5, 19)),
    ("memory.zswap.writeback", Some("memory"), NR, RW, (6, 8)),
    // block/: blkcg core, blk-throttle, blk-iocost, blk-iolatency, blk-ioprio
    ("io.stat", Some("io"), All, R, (4, 5)),
    ("io.max", Some("io"), NR, RW, (4, 5)),
    ("io.weight", Some("io"), NR, RW, (5, 4)),
    ("io.cost.qos", Some("io"), OR, RW, (5, 4)),
    ("io.cost.model", Some("io"), OR, RW, (5, 4)),
    ("io.latency", Some("io"), NR, RW, (4, 19)),
    ("io.prio.class", Some("io"), NR, RW, (5, 14)),
    // kernel/cgroup/cpuset.c dfl_files
    ("cpuset.cpus", Some("cpuset"), NR, RW, (5, 0)),
    ("cpuset.mems", Some("cpuset"), NR, RW, (5, 0)),
    ("cpuset.cpus.effective", Some("cpuset"), All, R, (5, 0)),
    ("cpuset.mems.effective", Some("cpuset"), All, R, (5, 0)),
    ("cpuset.cpus.partition", Some("cpuset"), NR, RW, (5, 11)),
    ("cpuset.cpus.exclusive", Some("cpuset"), NR, RW, (6, 7)),
    ("cpuset.cpus.exclusive.effective", Some("cpuset"), NR, R, (6, 7)),
    ("cpuset.cpus.isolated", Some("cpuset"), OR, R, (6, 7)),
    // kernel/cgroup/pids.c
    ("pids.max", Some("pids"), NR, RW, (4, 5)),
    ("pids.current", Some("pids"), NR, R, (4, 5)),
    ("pids.peak", Some("pids"), NR, R, (6, 1)),
    ("pids.events", Some("pids"), NR, R, (4, 5)),
    // kernel/cgroup/rdma.c, misc.c; kernel/cgroup/dmem.c
    ("rdma.max", Some("rdma"), NR, RW, (4, 11)),
    ("rdma.current", Some("rdma"), NR, R, (4, 11)),
    ("misc.max", Some("misc"), NR, RW, (5, 13)),
    ("misc.current", Some("misc"), NR, R, (5, 13)),
    ("misc.capacity", Some("misc"), OR, R, (5, 13)),
    ("misc.events", Some("misc"), NR, R, (5, 16)),
    ("dmem.max", Some("dmem"), NR, RW, (6, 14)),
    ("dmem.min", Some("dmem"), NR, RW, (6, 14)),
    ("dmem.low", Some("dmem"), NR, RW, (6, 14)),
    ("dmem.current", Some("dmem"), NR, R, (6, 14)),
    ("dmem.capacity", Some("dmem"), OR, R, (6, 14)),
];

/// The per-page-size hugetlb files (`hugetlb.2MB.max`, ...): the dfl
/// templates in mm/hugetlb_cgroup.c, all `CFTYPE_NOT_ON_ROOT`.
const HUGETLB: &[(&str, Access, (u32, u32))] = &[
    ("max", RW, (5, 6)),
    ("rsvd.max", RW, (5, 7)),
    ("current", R, (5, 6)),
    ("rsvd.current", R, (5, 7)),
    ("events", R, (5, 6)),
    ("events.local", R, (5, 6)),
    ("numa_stat", R, (5, 14)),
];

fn place_ok(place: Place, is_root: bool) -> bool {
    match place {
        All => true,
        NR => !is_root,
        OR => is_root,
    }
}

/// The file `name` in a cgroup described by `ctx`, if it exists there.
pub(crate) fn lookup(ctx: &Ctx, name: &str) -> Option<Spec> {
    let visible = |c: &str| ctx.controllers.iter().any(|x| x == c);
    for (n, ctrl, place, access, since) in CORE.iter().chain(CONTROLLER) {
        if *n == name {
            let ok = place_ok(*place, ctx.is_root) && ctx.kernel >= *since && ctrl.is_none_or(visible);
            return ok.then_some(Spec {
                access: *access,
                controller: *ctrl,
            });
        }
    }
    if name == "io.bfq.weight" {
        let ok = !ctx.is_root && ctx.bfq && visible("io");
        return ok.then_some(Spec {
            access: RW,
            controller: Some("io"),
        });
    }
    let rest = name.strip_prefix("hugetlb.")?;
    let (size, tail) = rest.split_once('.')?;
    if ctx.is_root || !visible("hugetlb") || !ctx.hugepage_sizes.iter().any(|s| s == size) {
        return None;
    }
    HUGETLB
        .iter()
        .find(|(t, _, since)| *t == tail && ctx.kernel >= *since)
        .map(|(_, access, _)| Spec {
            access: *access,
            controller: Some("hugetlb"),
        })
}

/// The controller whose name prefixes a file (`memory` of `memory.max`), for
/// the files that belong to a controller. Core files (`cgroup.*`, `cpu.stat`,
/// the PSI files) give `None`.
pub(crate) fn controller_of(name: &str) -> Option<&'static str> {
    if CORE.iter().any(|(n, ..)| *n == name) {
        return None;
    }
    if let Some((_, c, ..)) = CONTROLLER.iter().find(|(n, ..)| *n == name) {
        return *c;
    }
    if name == "io.bfq.weight" {
        return Some("io");
    }
    name.starts_with("hugetlb.").then_some("hugetlb")
}
