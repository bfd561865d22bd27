//! Runtime-owned trees: the settings that must change before the switch and
//! the tree each runtime builds on v2 (docs/research/workload-readiness.md §2,
//! §5.2–§5.4, §5.7; docs/research/real-layouts.md §3–§7). cgmig writes none of it.

use std::collections::BTreeMap;

use super::lookup::Lookup;
use super::model::{RuntimePlan, RuntimeValues};
use crate::owners::detect::{Manager, Owner};
use crate::owners::findings as fk;
use crate::owners::systemd::Written;
use crate::rules::Finding;

/// Settings to change for a runtime, by driver, on a systemd host or not.
fn changes(m: Manager, cgroupfs: bool, systemd_host: bool) -> Vec<String> {
    let switch = cgroupfs && systemd_host;
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

/// The values the runtime writes into a node it rebuilds: the plan node's
/// converted settings (the runtime converts the same container spec).
fn runtime_values(look: &Lookup<'_>, m: Manager, path: &str, systemd_host: bool) -> Option<RuntimeValues> {
    let n = look.node(path)?;
    let files: Vec<Written> = n
        .settings
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
        .collect();
    (!files.is_empty()).then(|| RuntimeValues {
        path: predicted_path(m, path, systemd_host),
        from: path.to_string(),
        files,
    })
}

/// One plan per runtime, with its findings.
pub(super) fn plan_runtimes(
    nodes: &BTreeMap<String, Owner>,
    look: &Lookup<'_>,
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
    let mut out = Vec::new();
    for ((m, driver), (tops, all)) in groups {
        let cgroupfs = driver.contains("cgroupfs");
        let ch = changes(m, cgroupfs, systemd_host);
        let predicted: Vec<String> = all.iter().map(|x| predicted_path(m, x, systemd_host)).collect();
        let values: Vec<RuntimeValues> = all
            .iter()
            .filter_map(|x| runtime_values(look, m, x, systemd_host))
            .collect();
        let needs_change = cgroupfs && systemd_host;
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
