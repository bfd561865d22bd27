//! Which cgroup interface files are *settings* (configuration a migration must
//! carry over) as opposed to statistics or triggers.
//!
//! The scanner reads only these files, once each: statistics change every
//! second and say nothing about what the v2 tree must look like, and some
//! files are write-only triggers (`memory.force_empty`, `devices.allow`).

/// v1 core files that are settings (present in every hierarchy).
pub const V1_CORE_SETTINGS: &[&str] = &["notify_on_release", "cgroup.clone_children"];

/// v1 core files present only in a hierarchy's root.
pub const V1_ROOT_SETTINGS: &[&str] = &["release_agent"];

/// v1 controller files that are settings.
pub const V1_SETTINGS: &[&str] = &[
    // cpu
    "cpu.shares",
    "cpu.cfs_quota_us",
    "cpu.cfs_period_us",
    "cpu.cfs_burst_us",
    "cpu.rt_runtime_us",
    "cpu.rt_period_us",
    "cpu.idle",
    "cpu.uclamp.min",
    "cpu.uclamp.max",
    // cpuset
    "cpuset.cpus",
    "cpuset.mems",
    "cpuset.cpu_exclusive",
    "cpuset.mem_exclusive",
    "cpuset.mem_hardwall",
    "cpuset.memory_migrate",
    "cpuset.memory_pressure_enabled",
    "cpuset.memory_spread_page",
    "cpuset.memory_spread_slab",
    "cpuset.sched_load_balance",
    "cpuset.sched_relax_domain_level",
    // memory
    "memory.limit_in_bytes",
    "memory.soft_limit_in_bytes",
    "memory.memsw.limit_in_bytes",
    "memory.kmem.limit_in_bytes",
    "memory.kmem.tcp.limit_in_bytes",
    "memory.swappiness",
    "memory.oom_control",
    "memory.use_hierarchy",
    "memory.move_charge_at_immigrate",
    // devices: the effective list (allow/deny are write-only)
    "devices.list",
    // freezer
    "freezer.state",
    // whether the state is the cgroup's own (1) or inherited (0)
    "freezer.self_freezing",
    // net
    "net_cls.classid",
    "net_prio.ifpriomap",
    // blkio
    "blkio.weight",
    "blkio.weight_device",
    "blkio.leaf_weight",
    "blkio.leaf_weight_device",
    "blkio.bfq.weight",
    "blkio.bfq.weight_device",
    "blkio.throttle.read_bps_device",
    "blkio.throttle.write_bps_device",
    "blkio.throttle.read_iops_device",
    "blkio.throttle.write_iops_device",
    "blkio.prio.class",
    // pids, rdma, misc
    "pids.max",
    "rdma.max",
    "misc.max",
];

/// v2 files that are settings (core and controller).
pub const V2_SETTINGS: &[&str] = &[
    "cgroup.type",
    "cgroup.subtree_control",
    "cgroup.max.depth",
    "cgroup.max.descendants",
    "cgroup.freeze",
    "cpu.weight",
    "cpu.weight.nice",
    "cpu.max",
    "cpu.max.burst",
    "cpu.idle",
    "cpu.uclamp.min",
    "cpu.uclamp.max",
    "cpuset.cpus",
    "cpuset.mems",
    "cpuset.cpus.partition",
    "cpuset.cpus.exclusive",
    "memory.min",
    "memory.low",
    "memory.high",
    "memory.max",
    "memory.swap.high",
    "memory.swap.max",
    "memory.zswap.max",
    "memory.oom.group",
    "io.weight",
    "io.bfq.weight",
    "io.max",
    "io.latency",
    "io.prio.class",
    "pids.max",
    "rdma.max",
    "misc.max",
];

/// Whether a file in a v1 hierarchy is a setting the scanner records.
///
/// `hugetlb.<size>.limit_in_bytes` and `.rsvd.limit_in_bytes` carry the page
/// size in their name, so they are matched by shape.
pub fn is_v1_setting(name: &str, is_root: bool) -> bool {
    V1_SETTINGS.contains(&name)
        || V1_CORE_SETTINGS.contains(&name)
        || (is_root && V1_ROOT_SETTINGS.contains(&name))
        || (name.starts_with("hugetlb.") && name.ends_with("limit_in_bytes"))
}

/// Whether a file in the v2 hierarchy is a setting the scanner records.
pub fn is_v2_setting(name: &str) -> bool {
    V2_SETTINGS.contains(&name) || (name.starts_with("hugetlb.") && (name.ends_with(".max")))
}

/// The core files `apply` writes through its own actions, not as settings:
/// a type, the enabled controllers, and the two membership files a planned
/// move writes a PID or TID to. `cgroup.kill` is in no list: cgmig never
/// kills.
pub const V2_APPLY_CORE_FILES: &[&str] = &[
    "cgroup.type",
    "cgroup.subtree_control",
    "cgroup.procs",
    "cgroup.threads",
];

/// The files a delegation hands to its owner besides the directory (the
/// kernel's `/sys/kernel/cgroup/delegate` core set).
pub const V2_DELEGATION_FILES: &[&str] = &["cgroup.procs", "cgroup.threads", "cgroup.subtree_control"];

/// Whether `name` is a v2 file a plan may write a *setting* to: a value in
/// [`V2_SETTINGS`] other than the type and the enabled controllers (which
/// have their own actions), or `hugetlb.<size>.max` / `.rsvd.max` with a
/// size the kernel names (`2MB`, `1GB`, `64KB`).
///
/// Why strict: this is the only check between a plan's file name and a
/// `write(2)` as root; a name that is not in the catalogue (`../x`,
/// `cgroup.kill`, `cgroup.procs`) is refused when the plan is loaded.
pub fn is_v2_setting_target(name: &str) -> bool {
    if matches!(name, "cgroup.type" | "cgroup.subtree_control") {
        return false;
    }
    if V2_SETTINGS.contains(&name) {
        return true;
    }
    let Some(rest) = name.strip_prefix("hugetlb.") else {
        return false;
    };
    let size = rest
        .strip_suffix(".rsvd.max")
        .or_else(|| rest.strip_suffix(".max"))
        .unwrap_or("");
    let unit_at = size.find(|c: char| !c.is_ascii_digit()).unwrap_or(size.len());
    unit_at > 0 && matches!(&size[unit_at..], "KB" | "MB" | "GB")
}

/// Whether a v2 file shows what a fresh cgroup shows (so `tree` can hide it).
///
/// v1 defaults are rules (they decide what needs converting); v2 values are
/// only displayed, so a short list of the kernel's initial values is enough.
pub fn is_v2_default(name: &str, value: &str) -> bool {
    let v = value.trim();
    v.is_empty()
        || matches!(v, "max" | "domain" | "member" | "max 100000" | "default 100")
        || (v == "0" && name != "cpuset.cpus" && name != "cpuset.mems")
        || (v == "100" && name.ends_with(".weight"))
}

/// The controller prefix of an interface file (`memory` of `memory.max`).
pub fn file_prefix(name: &str) -> &str {
    name.split('.').next().unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_recognised_by_name_and_shape() {
        assert!(is_v1_setting("cpu.shares", false));
        assert!(is_v1_setting("hugetlb.2MB.limit_in_bytes", false));
        assert!(is_v1_setting("hugetlb.1GB.rsvd.limit_in_bytes", false));
        assert!(!is_v1_setting("hugetlb.2MB.usage_in_bytes", false));
        assert!(!is_v1_setting("memory.usage_in_bytes", false));
        assert!(!is_v1_setting("release_agent", false));
        assert!(is_v1_setting("release_agent", true));
        assert!(is_v2_setting("hugetlb.2MB.max"));
        assert!(is_v2_setting("hugetlb.2MB.rsvd.max"));
        assert!(!is_v2_setting("memory.current"));
    }

    #[test]
    fn setting_targets_are_catalogue_names_only() {
        for ok in [
            "memory.max",
            "cpu.weight",
            "cgroup.freeze",
            "cgroup.max.depth",
            "hugetlb.2MB.max",
            "hugetlb.1GB.rsvd.max",
            "hugetlb.64KB.max",
        ] {
            assert!(is_v2_setting_target(ok), "{ok}");
        }
        for bad in [
            "../x",
            "/etc/passwd",
            "cgroup.kill",
            "cgroup.procs",
            "cgroup.threads",
            "cgroup.type",
            "cgroup.subtree_control",
            "memory.current",
            "hugetlb..max",
            "hugetlb.x/../y.max",
            "hugetlb.2MB/../../x.max",
            "hugetlb.MB.max",
            "hugetlb.2XB.max",
            "notes.txt",
            "",
        ] {
            assert!(!is_v2_setting_target(bad), "{bad}");
        }
    }
}
