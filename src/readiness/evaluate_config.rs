//! Readiness rules for configuration files, boot lines, the kernel and the
//! kubelet (the component rules are in `evaluate`). Pure.

use std::collections::{BTreeMap, BTreeSet};

use super::rule::*;
use super::version::less;
use super::{Component, Readiness, Setting};
use crate::model::Mode;

fn v1_host(cx: Context<'_>) -> bool {
    matches!(cx.mode, Mode::Legacy | Mode::Hybrid)
}

/// The unit a unit file or drop-in configures (`a.service` for `a.service.d/x.conf`).
pub fn unit_of(file: &str) -> String {
    let mut parts = file.rsplit('/');
    let last = parts.next().unwrap_or(file);
    match parts.next() {
        Some(dir) if dir.ends_with(".d") && last.ends_with(".conf") => dir.trim_end_matches(".d").to_string(),
        _ => last.to_string(),
    }
}

/// The v2 directive that replaces a legacy one.
pub fn v2_counterpart(legacy: &str) -> Option<&'static str> {
    Some(match legacy {
        "CPUShares" => "CPUWeight",
        "StartupCPUShares" => "StartupCPUWeight",
        "MemoryLimit" => "MemoryMax",
        "BlockIOAccounting" => "IOAccounting",
        "BlockIOWeight" => "IOWeight",
        "StartupBlockIOWeight" => "StartupIOWeight",
        "BlockIODeviceWeight" => "IODeviceWeight",
        "BlockIOReadBandwidth" => "IOReadBandwidthMax",
        "BlockIOWriteBandwidth" => "IOWriteBandwidthMax",
        _ => return None,
    })
}

/// The first systemd that ignores the v1 resource directives (the boundary
/// of `owners::directives::TABLE`, which cites the sources; a test there
/// keeps the two equal: this layer sits below the owners module).
pub const LEGACY_IGNORED_FROM: &str = "258";

const UNIT_LEGACY: Rule = Rule {
    id: "WR-SD-001",
    severity: Error,
    class: BREAKS,
    confidence: V,
    title: "Unit uses a v1-only directive that this systemd (258 or later) ignores: the limit vanishes on v2",
    needed: "the v2 directive (cgmig convert writes a drop-in)",
    why: "systemd 258 and later parse CPUShares=/MemoryLimit=/BlockIO*= as removed and ignore them on v2: no limit is applied. Up to 257 they are translated.",
    source: "systemd v258 load-fragment-gperf.gperf.in (DISABLED_LEGACY, PR #37026)",
};
const UNIT_LEGACY_TRANSLATED: Rule = Rule {
    id: "WR-SD-001",
    severity: Info,
    class: NEUTRAL,
    confidence: V,
    title: "Unit uses a deprecated v1 directive that this systemd (257 or earlier) still translates on v2",
    needed: "the v2 directive before systemd 258 (cgmig convert writes a drop-in)",
    why: "systemd up to 257 translates CPUShares=/MemoryLimit=/BlockIO*= into their v2 files (from 252 with a deprecation warning in the journal); 258 and later ignore them.",
    source: "systemd v247-v257 src/core/cgroup.c (cgroup_cpu_shares_to_weight, cgroup_weight_blkio_to_io); v258 DISABLED_LEGACY",
};
const UNIT_LEGACY_UNKNOWN: Rule = Rule {
    id: "WR-SD-001",
    severity: Warning,
    class: BREAKS,
    confidence: V,
    title: "Unit uses a deprecated v1 directive; its effect on v2 depends on the systemd version, which was not found",
    needed: "the v2 directive (cgmig convert writes a drop-in)",
    why: "systemd up to 257 translates CPUShares=/MemoryLimit=/BlockIO*= on v2; 258 and later ignore them.",
    source: "systemd src/core/cgroup.c (v247-v257); v258 DISABLED_LEGACY",
};
const UNIT_LEGACY_COVERED: Rule = Rule {
    id: "WR-SD-001",
    severity: Info,
    class: NEUTRAL,
    confidence: V,
    title: "Unit has a v1 directive and its v2 counterpart",
    needed: "nothing (remove the v1 directive when convenient)",
    why: "With a unified setting present, systemd ignores the legacy one.",
    source: "systemd.resource-control(5)",
};
const UNIT_NETCLASS: Rule = Rule {
    id: "WR-SD-001",
    severity: Error,
    class: BREAKS,
    confidence: V,
    title: "Unit uses NetClass=: net_cls has no v2 equivalent",
    needed: "BPF or nftables cgroup matching (socket cgroupv2 path)",
    why: "net_cls exists only in v1; NetClass= is ignored.",
    source: "systemd.resource-control(5)",
};
const UNIT_V1_PATH: Rule = Rule {
    id: "WR-SD-002",
    severity: Error,
    class: BREAKS,
    confidence: V,
    title: "Unit command writes to a v1 cgroup path",
    needed: "the v2 file under the unit's own cgroup, or a resource directive",
    why: "/sys/fs/cgroup/<controller>/ does not exist on a unified host: the command fails.",
    source: "reference §5.1 (v1 paths)",
};
const DOCKER_RT: Rule = Rule {
    id: "WR-RT-004",
    severity: Blocker,
    class: BREAKS,
    confidence: V,
    title: "dockerd refuses to start on v2 with daemon-level cpu-rt-*",
    needed: "remove cpu-rt-period/cpu-rt-runtime",
    why: "'daemon-scoped cpu-rt-period and cpu-rt-runtime are not implemented for cgroup v2'.",
    source: "moby daemon/command/daemon_linux.go",
};
const DOCKER_CGROUPFS: Rule = Rule {
    id: "WR-RT-005",
    severity: Warning,
    class: BREAKS,
    confidence: V,
    title: "Docker uses the cgroupfs driver",
    needed: "native.cgroupdriver=systemd (default on v2 with systemd; required by Kubernetes)",
    why: "On v2 the systemd driver is the default and what Kubernetes requires; cgroupfs must match the kubelet.",
    source: "moby daemon/daemon_unix.go; kubernetes.io cgroups page",
};
const DOCKER_PARENT: Rule = Rule {
    id: "WR-RT-005",
    severity: Warning,
    class: BREAKS,
    confidence: V,
    title: "cgroup-parent is not a systemd slice",
    needed: "a *.slice name (e.g. docker.slice) with the systemd driver",
    why: "With the systemd driver (the v2 default) cgroup-parent must be a slice, not a path.",
    source: "moby",
};
const DOCKER_CGROUPNS: Rule = Rule {
    id: "WR-RT-006",
    severity: Info,
    class: NEUTRAL,
    confidence: V,
    title: "default-cgroupns-mode host",
    needed: "private is the v2 default",
    why: "host cgroupns shows the host tree to containers (some agents need it).",
    source: "moby",
};
const BAD_FILE: Rule = Rule {
    id: "WR-CFG-000",
    severity: Warning,
    class: PRE,
    confidence: V,
    title: "Configuration file cannot be parsed",
    needed: "a valid file",
    why: "The daemon reading it will fail to start too.",
    source: "format specification",
};
const CONTAINERD_V1_SHIM: Rule = Rule {
    id: "WR-RT-002",
    severity: Blocker,
    class: BREAKS,
    confidence: V,
    title: "containerd runtime shim without v2 support",
    needed: "runtime_type = \"io.containerd.runc.v2\"",
    why: "io.containerd.runtime.v1.linux and io.containerd.runc.v1 do not work on v2.",
    source: "minikube PR #11325; containerd#6472",
};
const CONTAINERD_LEGACY_KEY: Rule = Rule {
    id: "WR-RT-009",
    severity: Warning,
    class: BREAKS,
    confidence: P,
    title: "containerd CRI systemd_cgroup is the legacy key (removed in 2.0)",
    needed: "runc options SystemdCgroup = true",
    why: "The CRI plugin's systemd_cgroup was removed in containerd 2.0.",
    source: "containerd RELEASES.md",
};
const CONTAINERD_CGROUPFS: Rule = Rule {
    id: "WR-RT-005",
    severity: Warning,
    class: BREAKS,
    confidence: V,
    title: "containerd runc uses the cgroupfs driver",
    needed: "SystemdCgroup = true (Kubernetes v2 requirement)",
    why: "Kubernetes requires the systemd driver for kubelet and runtime on v2.",
    source: "kubernetes.io cgroups page",
};
const FLATCAR_PIN: Rule = Rule {
    id: "WR-RT-010",
    severity: Warning,
    class: BREAKS,
    confidence: V,
    title: "Flatcar v1 pin drop-in for containerd",
    needed: "remove the drop-in when switching",
    why: "Left from a v1 pin: forces containerd onto cgroupfs.",
    source: "flatcar-docs switching-to-unified-cgroups.md",
};
const KUBELET_DRIVER: Rule = Rule {
    id: "WR-K8S-002",
    severity: Warning,
    class: BREAKS,
    confidence: V,
    title: "kubelet cgroupDriver is not systemd",
    needed: "cgroupDriver: systemd (and the same in the runtime)",
    why: "Kubernetes' v2 requirements call for the systemd driver.",
    source: "kubernetes.io cgroups page",
};
const KUBELET_FAILV1: Rule = Rule {
    id: "WR-K8S-003",
    severity: Blocker,
    class: PRE,
    confidence: V,
    title: "kubelet refuses to start on this v1 host",
    needed: "cgroup v2, or failCgroupV1: false until the switch",
    why: "kubelet ≥ 1.35 (or failCgroupV1: true) will not run on a host using cgroup v1.",
    source: "KEP-5573; kubernetes.io cgroups page",
};
const KUBELET_OOM: Rule = Rule {
    id: "WR-K8S-004",
    severity: Info,
    class: BREAKS,
    confidence: V,
    title: "kubelet ≥ 1.28 on v2 kills whole containers on OOM",
    needed: "singleProcessOOMKill: true to keep per-process OOM kills",
    why: "memory.oom.group=1 is set on v2: multi-process containers lose every process, not one worker.",
    source: "kubernetes PR #117793, #126096",
};
const KUBELET_KERNEL: Rule = Rule {
    id: "WR-K8S-005",
    severity: Warning,
    class: BREAKS,
    confidence: V,
    title: "Kernel below Kubernetes' v2 minimum",
    needed: "kernel 5.8 or later",
    why: "Kubernetes requires 5.8+ for cgroup v2.",
    source: "kubernetes.io cgroups page",
};
const PODMAN_MANAGER: Rule = Rule {
    id: "WR-RT-011",
    severity: Info,
    class: NEUTRAL,
    confidence: V,
    title: "cgroup_manager is cgroupfs",
    needed: "systemd (recommended on v2)",
    why: "Works, but systemd is the recommended manager on v2.",
    source: "containers.conf(5); CRI-O docs",
};
const LXC_V1_KEY: Rule = Rule {
    id: "WR-LXC-001",
    severity: Error,
    class: BREAKS,
    confidence: V,
    title: "LXC lxc.cgroup.* key is ignored on v2: the limit is lost",
    needed: "lxc.cgroup2.* (cgmig convert writes it)",
    why: "lxc.cgroup.* applies only to v1 hierarchies.",
    source: "lxc.container.conf(5); wiki.debian.org/LXC/CGroupV2",
};
const LXC_NO_EQUIVALENT: Rule = Rule {
    id: "WR-LXC-001",
    severity: Error,
    class: BREAKS,
    confidence: V,
    title: "LXC key for a v1-only controller (no v2 equivalent)",
    needed: "a replacement outside cgroups (BPF, nftables)",
    why: "net_cls/net_prio do not exist on v2.",
    source: "lxc.container.conf(5)",
};
const CGCONFIG_MOUNT: Rule = Rule {
    id: "WR-LIBCG-001",
    severity: Error,
    class: BREAKS,
    confidence: V,
    title: "cgconfig.conf mounts v1 hierarchies",
    needed: "no mount section (libcgroup 3 uses the cgroup2 mount)",
    why: "A mount {} section is a v1 concept: cgconfigparser fails or mounts nothing on v2.",
    source: "libcgroup/libcgroup#12; reference §5.5",
};
const CGCONFIG_V1_FILE: Rule = Rule {
    id: "WR-LIBCG-001",
    severity: Error,
    class: BREAKS,
    confidence: V,
    title: "cgconfig.conf group sets a v1 file",
    needed: "the v2 file (cgmig convert writes a v2 cgconfig.conf)",
    why: "v1 interface files do not exist on v2.",
    source: "reference §5.5",
};
const CGRULES: Rule = Rule {
    id: "WR-LIBCG-002",
    severity: Warning,
    class: BREAKS,
    confidence: U,
    title: "cgrules.conf classification on v2 is unverified",
    needed: "review cgred on v2, or systemd slices",
    why: "Whether the current cgred classifies correctly on v2 is not confirmed.",
    source: "reference §5.5",
};
const LIBCG_SERVICE: Rule = Rule {
    id: "WR-LIBCG-001",
    severity: Warning,
    class: BREAKS,
    confidence: V,
    title: "libcgroup service enabled",
    needed: "a v2 cgconfig.conf, or systemd slices",
    why: "cgconfig/cgred act on the configuration at boot; on v2 they need v2 files.",
    source: "reference §5.5",
};

const UNIFIED_OFF: Rule = Rule {
    id: "WR-SD-003",
    severity: Error,
    class: BREAKS,
    confidence: V,
    title: "Boot configuration forces cgroup v1",
    needed: "systemd.unified_cgroup_hierarchy removed or =1 (cgmig convert writes the line)",
    why: "The parameter keeps the host on v1 at every boot; systemd ≥ 258 ignores it, 256-257 refuse to boot with it alone.",
    source: "systemd NEWS 233, 256, 258",
};
const LEGACY_CTRL: Rule = Rule {
    id: "WR-SD-003",
    severity: Error,
    class: BREAKS,
    confidence: V,
    title: "Boot configuration selects the legacy name=systemd hierarchy",
    needed: "parameter removed",
    why: "systemd.legacy_systemd_cgroup_controller keeps a v1 systemd hierarchy.",
    source: "systemd NEWS 233",
};
const FORCE: Rule = Rule {
    id: "WR-SD-003",
    severity: Error,
    class: PRE,
    confidence: V,
    title: "SYSTEMD_CGROUP_ENABLE_LEGACY_FORCE=1: v1 kept alive by an escape hatch",
    needed: "cgroup v2; the hatch has no effect from systemd 258",
    why: "A time bomb: the next systemd upgrade (258+) boots v2 regardless.",
    source: "systemd NEWS 256, 258",
};
const NO_MEMCG: Rule = Rule {
    id: "WR-SD-003",
    severity: Error,
    class: BREAKS,
    confidence: V,
    title: "cgroup_disable=memory: no memory controller on v2",
    needed: "parameter removed",
    why: "v2 memory limits cannot work with memcg disabled.",
    source: "kernel-parameters.txt",
};
const SWAPACCOUNT: Rule = Rule {
    id: "WR-SD-006",
    severity: Info,
    class: NEUTRAL,
    confidence: U,
    title: "swapaccount= is a v1-era parameter",
    needed: "nothing (swap accounting is the default)",
    why: "Obsolete on modern kernels.",
    source: "mm: memcontrol: deprecate swapaccounting=0 mode",
};
const PSI_OFF: Rule = Rule {
    id: "WR-SD-006",
    severity: Info,
    class: NEUTRAL,
    confidence: V,
    title: "psi=0 hides pressure files v2 tools use",
    needed: "psi enabled for systemd-oomd / PSI metrics",
    why: "systemd-oomd and Kubernetes PSI metrics need cpu/memory/io.pressure.",
    source: "reference §5.6",
};

/// Boot parameter rules: (param, value predicate, rule).
fn boot_rule(param: &str, value: Option<&str>) -> Option<&'static Rule> {
    let off = |v: Option<&str>| matches!(v, Some("0" | "false" | "no" | "off"));
    Some(match param {
        "systemd.unified_cgroup_hierarchy" if off(value) => &UNIFIED_OFF,
        "systemd.legacy_systemd_cgroup_controller" if !off(value) => &LEGACY_CTRL,
        "SYSTEMD_CGROUP_ENABLE_LEGACY_FORCE" if value == Some("1") => &FORCE,
        "cgroup_disable" if value.is_some_and(|v| v.split(',').any(|c| c == "memory")) => &NO_MEMCG,
        "swapaccount" => &SWAPACCOUNT,
        "psi" if off(value) => &PSI_OFF,
        _ => return None,
    })
}

/// Split a command line into `(param, value)`.
pub fn params(line: &str) -> Vec<(&str, Option<&str>)> {
    line.split_whitespace()
        .map(|w| match w.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (w, None),
        })
        .collect()
}

/// Configuration settings.
pub(super) fn settings(r: &Readiness, cx: Context<'_>, out: &mut Vec<Finding>) {
    let mut v2_by_unit: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for s in r.settings.iter().filter(|s| s.family == "unit") {
        v2_by_unit
            .entry(unit_of(&s.file))
            .or_default()
            .insert(s.key.as_str());
    }
    // The host's systemd decides what a deprecated directive does on v2.
    let systemd = r
        .components
        .iter()
        .find(|c| c.name == "systemd" && c.place == super::Place::Host)
        .map(|c| c.version.as_str());
    for s in &r.settings {
        match s.family.as_str() {
            "unit" => unit(s, &v2_by_unit, systemd, out),
            "daemon.json" | "containerd" | "crio" | "containers.conf" => runtime_setting(s, out),
            "kubelet" if s.key == "cgroupDriver" && s.value != "systemd" => {
                out.push(KUBELET_DRIVER.on_setting(s));
            }
            "kubelet" if s.key == "failCgroupV1" && s.value == "true" && v1_host(cx) => {
                out.push(KUBELET_FAILV1.on_setting(s));
            }
            "lxc" if s.key.starts_with("lxc.cgroup.net_") => out.push(LXC_NO_EQUIVALENT.on_setting(s)),
            "lxc" if s.key.starts_with("lxc.cgroup.") => out.push(LXC_V1_KEY.on_setting(s)),
            "cgconfig" if s.key == "invalid" => out.push(BAD_FILE.on_setting(s)),
            "cgconfig" if s.section.as_deref() == Some("mount") => out.push(CGCONFIG_MOUNT.on_setting(s)),
            "cgconfig" if !crate::model::files::is_v2_setting(&s.key) => {
                out.push(CGCONFIG_V1_FILE.on_setting(s));
            }
            "cgrules" if s.key == "rule" => out.push(CGRULES.on_setting(s)),
            "cgrules" if s.key == "enabled" => out.push(LIBCG_SERVICE.on_setting(s)),
            "boot" => boot(s, out),
            _ => {}
        }
    }
}

/// A unit's setting. A deprecated v1 directive is an error only where the
/// host's systemd ignores it (258 and later); a systemd that still
/// translates it gets the info, and an unknown one the warning that says both.
fn unit(
    s: &Setting,
    v2_by_unit: &BTreeMap<String, BTreeSet<&str>>,
    systemd: Option<&str>,
    out: &mut Vec<Finding>,
) {
    if s.key == "ExecV1Path" {
        out.push(UNIT_V1_PATH.on_setting(s));
    } else if s.key == "NetClass" {
        out.push(UNIT_NETCLASS.on_setting(s));
    } else if let Some(v2) = v2_counterpart(&s.key) {
        let covered = v2_by_unit.get(&unit_of(&s.file)).is_some_and(|k| k.contains(v2));
        let rule = if covered {
            &UNIT_LEGACY_COVERED
        } else {
            match systemd.and_then(|v| less(v, LEGACY_IGNORED_FROM)) {
                Some(false) => &UNIT_LEGACY,
                Some(true) => &UNIT_LEGACY_TRANSLATED,
                None => &UNIT_LEGACY_UNKNOWN,
            }
        };
        let mut f = rule.on_setting(s);
        if let Some(v) = systemd.filter(|_| !covered) {
            f.found = format!("{} (systemd {v})", f.found);
        }
        out.push(f);
    }
}

fn runtime_setting(s: &Setting, out: &mut Vec<Finding>) {
    let rule = match (s.key.as_str(), s.value.as_str()) {
        ("cpu-rt-period" | "cpu-rt-runtime", _) => &DOCKER_RT,
        ("exec-opts", v) if v.ends_with("=cgroupfs") => &DOCKER_CGROUPFS,
        ("cgroup-parent", v) if !v.ends_with(".slice") => &DOCKER_PARENT,
        ("default-cgroupns-mode", "host") => &DOCKER_CGROUPNS,
        ("invalid-json", _) => &BAD_FILE,
        ("runtime_type", "io.containerd.runtime.v1.linux" | "io.containerd.runc.v1") => &CONTAINERD_V1_SHIM,
        ("systemd_cgroup", _) => &CONTAINERD_LEGACY_KEY,
        ("SystemdCgroup", "false") => &CONTAINERD_CGROUPFS,
        ("cgroupfs-pin", _) => &FLATCAR_PIN,
        ("cgroup_manager", "cgroupfs") => &PODMAN_MANAGER,
        _ => return,
    };
    out.push(rule.on_setting(s));
}

fn boot(s: &Setting, out: &mut Vec<Finding>) {
    for (p, v) in params(&s.value) {
        // The running line's v1 parameters are the audit's host rules; only
        // the escape hatch and psi are readiness's.
        if s.key == "running" && !matches!(p, "SYSTEMD_CGROUP_ENABLE_LEGACY_FORCE" | "psi") {
            continue;
        }
        if let Some(rule) = boot_rule(p, v) {
            let mut f = rule.on_setting(s);
            f.found = match v {
                Some(v) => format!("{p}={v} ({})", s.key),
                None => format!("{p} ({})", s.key),
            };
            out.push(f);
        }
    }
}

/// kubelet version rules that need the host's mode and settings.
pub(super) fn kubelet_version(c: &Component, cx: Context<'_>, r: &Readiness, out: &mut Vec<Finding>) {
    let setting = |k: &str| r.settings.iter().find(|s| s.family == "kubelet" && s.key == k);
    let v = c.version.as_str();
    if v1_host(cx)
        && less(v, "1.35") == Some(false)
        && setting("failCgroupV1").is_none_or(|s| s.value != "false")
    {
        let mut f = KUBELET_FAILV1.on(c);
        f.found = format!(
            "{} {} with failCgroupV1 unset (default true from 1.35)",
            c.name, c.version
        );
        out.push(f);
    }
    if less(v, "1.28") == Some(false) && setting("singleProcessOOMKill").is_none() {
        out.push(KUBELET_OOM.on(c));
    }
    if let Some(k) = cx.kernel
        && less(k, "5.8") == Some(true)
    {
        let mut f = KUBELET_KERNEL.on(c);
        f.found = format!("kernel {k} with {} {}", c.name, c.version);
        out.push(f);
    }
}

/// Kernel version and config.
pub(super) fn kernel(r: &Readiness, _cx: Context<'_>, out: &mut Vec<Finding>) {
    // The kernel version itself is the audit's `host.kernel-too-old`; the
    // config options are readiness's.
    if !r.scanned {
        return;
    }
    let Some(cfg) = &r.kernel_config else { return };
    for (opt, rule) in [
        ("CONFIG_CGROUP_BPF", &KCONF_BPF),
        ("CONFIG_MEMCG", &KCONF_OTHER),
        ("CONFIG_CFS_BANDWIDTH", &KCONF_OTHER),
        ("CONFIG_PSI", &KCONF_PSI),
    ] {
        if cfg.options.get(opt).is_none_or(|v| v == "n") {
            let mut f = rule.at(cfg.path.clone(), &super::Place::Host, format!("{opt} not set"));
            f.needed = format!("{opt}=y");
            out.push(f);
        }
    }
}

const KCONF_BPF: Rule = Rule {
    id: "WR-KERN-002",
    severity: Error,
    class: BREAKS,
    confidence: V,
    title: "Kernel built without CONFIG_CGROUP_BPF: no device control on v2",
    needed: "",
    why: "runc, crun and systemd DeviceAllow= need cgroup BPF for device rules on v2.",
    source: "runc docs/cgroup-v2.md",
};
const KCONF_OTHER: Rule = Rule {
    id: "WR-KERN-002",
    severity: Error,
    class: BREAKS,
    confidence: U,
    title: "Kernel config lacks a cgroup option v2 workloads use",
    needed: "",
    why: "memory limits need MEMCG, cpu.max needs CFS_BANDWIDTH (standard names; list not verified).",
    source: "reference §3.2",
};
const KCONF_PSI: Rule = Rule {
    id: "WR-KERN-002",
    severity: Info,
    class: NEUTRAL,
    confidence: V,
    title: "Kernel without PSI: no pressure files",
    needed: "",
    why: "systemd-oomd and PSI metrics need CONFIG_PSI.",
    source: "reference §3.2",
};

/// Every rule of this file, for the catalog (`readiness::rule_table`).
pub(super) const RULES: &[&Rule] = &[
    &UNIT_LEGACY,
    &UNIT_LEGACY_COVERED,
    &UNIT_NETCLASS,
    &UNIT_V1_PATH,
    &DOCKER_RT,
    &DOCKER_CGROUPFS,
    &DOCKER_PARENT,
    &DOCKER_CGROUPNS,
    &BAD_FILE,
    &CONTAINERD_V1_SHIM,
    &CONTAINERD_LEGACY_KEY,
    &CONTAINERD_CGROUPFS,
    &FLATCAR_PIN,
    &KUBELET_DRIVER,
    &KUBELET_FAILV1,
    &KUBELET_OOM,
    &KUBELET_KERNEL,
    &PODMAN_MANAGER,
    &LXC_V1_KEY,
    &LXC_NO_EQUIVALENT,
    &CGCONFIG_MOUNT,
    &CGCONFIG_V1_FILE,
    &CGRULES,
    &LIBCG_SERVICE,
    &UNIFIED_OFF,
    &LEGACY_CTRL,
    &FORCE,
    &NO_MEMCG,
    &SWAPACCOUNT,
    &PSI_OFF,
    &KCONF_BPF,
    &KCONF_OTHER,
    &KCONF_PSI,
];
