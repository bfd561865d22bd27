//! Runtime-owned trees: the settings that must change before the switch and
//! the tree each runtime builds on v2 (docs/research/workload-readiness.md §2,
//! §5.2–§5.4, §5.7; docs/research/real-layouts.md §3–§7). cgmig writes none of it.

use std::collections::BTreeMap;

use super::lookup::Lookup;
use super::model::{PlanNode, RuntimePlan, RuntimeValues};
use crate::model::Snapshot;
use crate::model::value::v2_meaning;
use crate::owners::detect::{Manager, Owner};
use crate::owners::engines;
use crate::owners::findings as fk;
use crate::owners::systemd::Written;
use crate::rules::Finding;

/// Settings to change for a runtime, by driver, on a systemd host or not;
/// `switches_itself`: the runtime moves to the systemd driver on v2 without
/// being told (dockerd >= 20.10 with no driver configured).
fn changes(m: Manager, cgroupfs: bool, systemd_host: bool, switches_itself: bool) -> Vec<String> {
    let switch = cgroupfs && systemd_host && !switches_itself;
    let mut v: Vec<String> = Vec::new();
    match m {
        Manager::Kubelet => {
            v.push("kubelet >= 1.25 (v2 GA), kernel >= 5.8; containerd >= 1.4 or CRI-O >= 1.20".into());
            if switch {
                v.push(
                    "/var/lib/kubelet/config.yaml: cgroupDriver: systemd (--cgroup-driver=systemd)".into(),
                );
                v.push("the runtime's driver too: containerd SystemdCgroup = true, or CRI-O cgroup_manager = \"systemd\"".into());
            }
        }
        Manager::Docker => {
            v.push("Docker Engine >= 20.10 (earlier versions fail on a unified host)".into());
            if cgroupfs && switches_itself {
                v.push("nothing to set for the driver: dockerd >= 20.10 with no native.cgroupdriver moves to the systemd driver on v2 by itself (/docker/<id> becomes /system.slice/docker-<id>.scope)".into());
                v.push("a \"cgroup-parent\" must then be a slice name (docker.slice), not a path".into());
            }
            if switch {
                v.push("/etc/docker/daemon.json: \"exec-opts\": [\"native.cgroupdriver=systemd\"] (the v2 default with systemd)".into());
                v.push("a \"cgroup-parent\" must then be a slice name (docker.slice), not a path".into());
            }
            v.push("no daemon-level cpu-rt-period/cpu-rt-runtime (dockerd refuses to start on v2)".into());
        }
        Manager::Containerd => {
            v.push("containerd >= 1.4; runtime_type = \"io.containerd.runc.v2\" (runtime.v1.linux and runc.v1 shims fail on v2)".into());
            if switch {
                v.push("[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options] SystemdCgroup = true".into());
            }
        }
        Manager::Crio => {
            v.push("CRI-O >= 1.20".into());
            if switch {
                v.push("/etc/crio/crio.conf: cgroup_manager = \"systemd\"".into());
            }
        }
        Manager::Podman => {
            v.push("podman >= 4 with crun".into());
            if switch {
                v.push("/etc/containers/containers.conf: cgroup_manager = \"systemd\"".into());
            }
        }
        Manager::Libvirt => {
            v.push("libvirt rebuilds each VM's cgroup at start (machine.slice/machine-qemu…scope[/libvirt]/{vcpuN,emulator}); vcpu/emulator children become threaded on v2".into());
            if cgroupfs {
                v.push("on a systemd host libvirt places VMs through systemd-machined (machine.slice), not /machine".into());
            }
        }
        Manager::Lxc => {
            v.push("LXC >= 3.0 (4.0.2+ recommended); lxc.cgroup.* keys are ignored on v2: rewrite them as lxc.cgroup2.*".into());
            v.push("containers with systemd < 232 inside do not boot on v2".into());
        }
        Manager::Systemd | Manager::Custom => {}
    }
    v
}

/// The path a runtime uses on v2 (systemd driver) for a v1 path.
pub fn predicted_path(m: Manager, path: &str, systemd_host: bool) -> String {
    let comps: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if !systemd_host {
        return path.to_string();
    }
    match (m, comps.first().copied()) {
        (Manager::Kubelet, Some("kubepods")) => {
            let mut out = String::from("/kubepods.slice");
            let mut prefix = String::from("kubepods");
            for c in &comps[1..] {
                if c.starts_with("pod") || matches!(*c, "burstable" | "besteffort") {
                    prefix = format!("{prefix}-{}", c.replace('-', "_"));
                    out.push_str(&format!("/{prefix}.slice"));
                } else {
                    out.push_str(&format!("/cri-containerd-{c}.scope"));
                }
            }
            out
        }
        (Manager::Docker, Some("docker")) if comps.len() == 2 => {
            format!("/system.slice/docker-{}.scope", comps[1])
        }
        (Manager::Libvirt, Some("machine")) if comps.len() >= 2 => {
            let vm = comps[1].trim_end_matches(".libvirt-qemu");
            let rest: String = comps[2..].iter().map(|c| format!("/{c}")).collect();
            format!("/machine.slice/machine-qemu\\x2d{vm}.scope/libvirt{rest}")
        }
        _ => path.to_string(),
    }
}

/// The values the runtime writes into a node it rebuilds when no record of
/// the container was read: the plan node's converted settings (the runtime
/// converts the same container spec, with the formula of the plan's rule).
fn node_values(look: &Lookup<'_>, path: &str, v2_path: String) -> Option<RuntimeValues> {
    let files = settings_written(look, path);
    (!files.is_empty()).then(|| RuntimeValues {
        path: v2_path,
        from: path.to_string(),
        files,
        container: None,
    })
}

/// A plan node's settings as the values written into it.
fn settings_written(look: &Lookup<'_>, path: &str) -> Vec<Written> {
    let Some(n) = look.node(path) else {
        return Vec::new();
    };
    n.settings
        .iter()
        .map(|s| Written {
            file: s.file.clone(),
            value: s.value.clone(),
            from: s
                .inputs
                .iter()
                .map(|(f, v)| format!("{f}={v}"))
                .collect::<Vec<_>>()
                .join(" "),
            formula: match &s.formula {
                Some(f) => format!("{} ({f})", s.function),
                None => s.function.clone(),
            },
        })
        .collect()
}

/// The containers the engines' records name, by their v1 path: each with
/// its v2 path and the values its runtime writes there (an LXC container's
/// are the plan's own conversion, which `cgmig convert` writes into its
/// `lxc.cgroup2.*` keys).
fn containers(snap: &Snapshot, look: &Lookup<'_>, systemd_host: bool) -> Containers {
    let mut out = BTreeMap::new();
    let mut scopes = BTreeMap::new();
    let found = engines::oci_containers(snap, systemd_host)
        .into_iter()
        .chain(engines::lxc_containers(snap));
    for c in found {
        // A container that had no cgroup at the scan (not running) has no node.
        if look.owner(&c.v1_path).is_none_or(|o| o.manager != c.engine) {
            continue;
        }
        if let Some(sc) = c.scope {
            scopes.insert(sc.v1_path, (sc.v2_path, sc.files));
        }
        let v1 = settings_written(look, &c.v1_path);
        let mut info = c.info;
        let files = if c.engine == Manager::Lxc {
            v1
        } else {
            info.lost.extend(set_outside_record(&v1, &c.files, &info.runtime));
            c.files
        };
        out.insert(
            c.v1_path.clone(),
            RuntimeValues {
                path: c.v2_path,
                from: c.v1_path,
                files,
                container: Some(info),
            },
        );
    }
    Containers { by_v1: out, scopes }
}

/// The containers by their v1 path, and the scopes some of them run in a
/// child of (by the scope's v1 path: its v2 path and the files the
/// runtime has systemd write there).
struct Containers {
    by_v1: BTreeMap<String, RuntimeValues>,
    scopes: BTreeMap<String, (String, Vec<Written>)>,
}

/// A container's scope as the runtime rebuilds it: the plan node's values,
/// with the files the runtime has systemd write replacing cgmig's
/// conversion of the scope's v1 files (crun sets the scope's `CPUWeight=`
/// from the container's shares with its own formula).
fn scope_values(look: &Lookup<'_>, path: &str, v2_path: String, files: &[Written]) -> RuntimeValues {
    let mut out: Vec<Written> = settings_written(look, path)
        .into_iter()
        .filter(|w| !files.iter().any(|f| f.file == w.file))
        .collect();
    out.extend(files.iter().cloned());
    out.sort_by(|a, b| a.file.cmp(&b.file));
    RuntimeValues {
        path: v2_path,
        from: path.to_string(),
        files: out,
        container: None,
    }
}

/// v1 values on a container's cgroup that its engine's record does not
/// have (written by hand or by another tool): the runtime rebuilds the
/// container from its record, so they are lost on v2.
fn set_outside_record(v1: &[Written], files: &[Written], runtime: &str) -> Vec<String> {
    // One blkio weight becomes io.bfq.weight or io.weight, by the disk's scheduler.
    fn family(f: &str) -> &str {
        if f == "io.bfq.weight" { "io.weight" } else { f }
    }
    v1.iter()
        .filter(|w| !files.iter().any(|f| family(&f.file) == family(&w.file)))
        .map(|w| {
            format!(
                "{} {} (from {}) is on its v1 cgroup but not in its engine's record of it: {runtime} does not write it on v2",
                w.file, w.value, w.from
            )
        })
        .collect()
}

/// Where a plan node's processes go on v2 when a runtime owns it: its
/// container's v2 path (or the same place below it).
pub(super) fn v2_place(runtimes: &[RuntimePlan], n: &PlanNode) -> Option<String> {
    let vals = runtimes.iter().flat_map(|r| r.values.iter());
    for v in vals.filter(|v| v.container.is_some()) {
        for p in n.origins.iter().map(|o| o.path.as_str()).chain([n.path.as_str()]) {
            if p == v.from {
                return Some(v.path.clone());
            }
            if let Some(rest) = p.strip_prefix(v.from.as_str()).filter(|r| r.starts_with('/')) {
                return Some(format!("{}{rest}", v.path));
            }
        }
    }
    None
}

/// The node a runtime builds on v2 for a v1 node of its tree: the
/// container's own path, the same place below a container, the driver's
/// path for a node no record names, or nothing for a parent that the
/// driver switch leaves behind (`/docker` when docker moves to systemd).
fn v2_node(
    m: Manager,
    path: &str,
    systemd_host: bool,
    by_v1: &BTreeMap<String, RuntimeValues>,
) -> Option<String> {
    if let Some(c) = by_v1.get(path) {
        return Some(c.path.clone());
    }
    let mut cur = crate::model::path::parent(path);
    while let Some(pp) = cur {
        if let Some(c) = by_v1.get(pp) {
            return Some(format!("{}{}", c.path, &path[pp.len()..]));
        }
        cur = crate::model::path::parent(pp);
    }
    let below: Vec<&RuntimeValues> = by_v1
        .values()
        .filter(|c| c.from.strip_prefix(path).is_some_and(|r| r.starts_with('/')))
        .collect();
    // A parent of containers that now live elsewhere (the driver switched).
    if !below.is_empty() && below.iter().all(|c| !c.path.starts_with(&format!("{path}/"))) {
        return None;
    }
    Some(predicted_path(m, path, systemd_host))
}

/// Findings about one container's values: limits its runtime loses (a
/// warning), and values that differ from the plan's conversion of the v1
/// files (its runtime's own formula; info).
fn container_findings(c: &RuntimeValues, look: &Lookup<'_>, findings: &mut Vec<Finding>) {
    let Some(info) = &c.container else { return };
    let label = match &info.name {
        Some(n) => format!("{n} ({})", short_id(&info.id)),
        None => info.id.clone(),
    };
    for l in &info.lost {
        findings.push(fk::RUNTIME_LOSES.at(&c.from, format!("{label}: {l}")));
    }
    let plan: BTreeMap<String, String> = settings_written(look, &c.from)
        .into_iter()
        .map(|w| (w.file, w.value))
        .collect();
    let differ: Vec<String> = c
        .files
        .iter()
        .filter_map(|w| {
            let p = plan.get(&w.file)?;
            (v2_meaning(&w.file, p) != v2_meaning(&w.file, &w.value)).then(|| {
                format!(
                    "{} {} where the plan's conversion gives {p} ({})",
                    w.file, w.value, w.formula
                )
            })
        })
        .collect();
    if !differ.is_empty() {
        findings.push(fk::RUNTIME_VALUES.at(
            &c.from,
            format!(
                "{label} is recreated by {} at {}: {}",
                info.runtime,
                c.path,
                differ.join("; ")
            ),
        ));
    }
}

/// The first 12 characters of a container id, as the engines print it.
fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// One plan per runtime, with its findings.
pub(super) fn plan_runtimes(
    nodes: &BTreeMap<String, Owner>,
    look: &Lookup<'_>,
    snap: &Snapshot,
    systemd_host: bool,
    findings: &mut Vec<Finding>,
) -> Vec<RuntimePlan> {
    // (manager, driver) -> top-level nodes and all nodes
    let mut groups: BTreeMap<(Manager, String), (Vec<String>, Vec<String>)> = BTreeMap::new();
    for (path, o) in nodes.iter().filter(|(_, o)| o.manager.is_runtime()) {
        let driver = o
            .detail
            .as_deref()
            .map(|d| d.split(',').next().unwrap_or(d).to_string())
            .unwrap_or_default();
        let parent_same = crate::model::path::parent(path)
            .and_then(|pp| look.owner(pp))
            .is_some_and(|po| po.manager == o.manager);
        let g = groups.entry((o.manager, driver)).or_default();
        if !parent_same {
            g.0.push(path.clone());
        }
        g.1.push(path.clone());
    }
    let Containers { by_v1, scopes } = containers(snap, look, systemd_host);
    let mut out = Vec::new();
    for ((m, driver), (tops, all)) in groups {
        let cgroupfs = driver.contains("cgroupfs");
        let switches_itself = m == Manager::Docker && engines::docker_switches_itself(snap, systemd_host);
        let ch = changes(m, cgroupfs, systemd_host, switches_itself);
        let mut predicted = Vec::new();
        let mut values = Vec::new();
        for x in &all {
            let Some(v2) = v2_node(m, x, systemd_host, &by_v1) else {
                continue;
            };
            predicted.push(v2.clone());
            match by_v1.get(x) {
                Some(c) => {
                    container_findings(c, look, findings);
                    values.push(c.clone());
                }
                None => match scopes.get(x) {
                    Some((_, files)) => values.push(scope_values(look, x, v2, files)),
                    None => values.extend(node_values(look, x, v2)),
                },
            }
        }
        let needs_change = cgroupfs && systemd_host && !switches_itself;
        let kind = if needs_change {
            fk::RUNTIME_SETTINGS
        } else {
            fk::RUNTIME_REBUILDS
        };
        if let Some(first) = tops.first() {
            findings.push(kind.at(
                first,
                format!(
                    "{m} ({driver}) owns {} cgroups ({}); it rebuilds them after the switch: {}",
                    all.len(),
                    tops.iter().take(3).cloned().collect::<Vec<_>>().join(", "),
                    ch.join("; ")
                ),
            ));
        }
        out.push(RuntimePlan {
            manager: m,
            driver,
            paths: tops,
            changes: ch,
            predicted,
            values,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroupfs_paths_map_to_systemd_driver_paths() {
        assert_eq!(
            predicted_path(Manager::Kubelet, "/kubepods/burstable/pod1a-2b/c0ffee", true),
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1a_2b.slice/cri-containerd-c0ffee.scope"
        );
        assert_eq!(
            predicted_path(Manager::Docker, "/docker/abc", true),
            "/system.slice/docker-abc.scope"
        );
        assert_eq!(
            predicted_path(Manager::Docker, "/docker/abc", false),
            "/docker/abc"
        );
    }
}
