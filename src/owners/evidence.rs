//! What the scanner records for ownership: systemd's unit configuration,
//! its version and defaults, and the extended attributes it leaves on its
//! cgroups.
//!
//! Stored in the snapshot (`Snapshot::owner_evidence`) so that `plan` and
//! `verify` work from a snapshot taken on another machine. Reading is the
//! only I/O; everything after it is pure ([`mod@super::detect`]).

use std::collections::{BTreeMap, BTreeSet};

use super::units;
use crate::host::{HostError, Root};
use crate::model::{Diagnostic, Node, Snapshot, Version};
use crate::readiness::io::{Limits, Reader};

pub use crate::model::evidence::Evidence;

/// Read the evidence for a scanned snapshot. Unreadable parts become
/// diagnostics; nothing here is fatal.
pub fn read(root: &Root, snap: &Snapshot, diags: &mut Vec<Diagnostic>) -> Evidence {
    let mut ev = Evidence::default();
    let mut note = |e: HostError| {
        let (path, message) = e.diagnostic();
        diags.push(Diagnostic { path, message });
    };
    let num = |s: Option<String>| s.and_then(|v| v.trim().parse().ok());
    match root.read_text("/proc/sys/kernel/pid_max") {
        Ok(v) => ev.pid_max = num(v),
        Err(e) => note(e),
    }
    match root.read_text("/proc/sys/kernel/threads-max") {
        Ok(v) => ev.threads_max = num(v),
        Err(e) => note(e),
    }
    match root.read_link("/proc/1/exe") {
        Ok(v) => ev.pid1_exe = v,
        Err(e) => note(e),
    }
    ev.runtime_state = runtime_state(root, &mut note);
    if !super::detect::is_systemd_host_with(snap, &ev) {
        return ev;
    }
    // Read once by the scan (`host::systemd::version`, `host.os.systemd`).
    ev.systemd_version = snap.host.os.systemd.as_deref().and_then(|v| v.parse().ok());
    // Unit files and system.conf through the readiness reader: its I/O
    // diagnostics come back with `finish`, malformed lines through `parse`.
    let mut rd = Reader::new(root, Limits::default());
    let mut malformed = Vec::new();
    let mut parse = |e: HostError| malformed.push(e);
    ev.manager_defaults = units::manager_defaults(&mut rd, &mut parse);
    for name in unit_names(snap) {
        if let Some(cfg) = units::read_unit(&mut rd, &name, &mut parse)
            && !cfg.files.is_empty()
        {
            ev.units.insert(name, cfg);
        }
    }
    let (_, read_diags) = rd.finish();
    malformed.into_iter().for_each(&mut note);
    ev.xattrs = cgroup_xattrs(root, snap, &mut note);
    diags.extend(read_diags);
    ev
}

/// Where each runtime keeps its own state: (manager, directory, depth).
/// Depth 1 lists the directory's entries (container ids, container names,
/// VM files); depth 2 lists one level further (containerd's namespaces,
/// then ids). These are the managers' own marks: a cgroup named like a
/// runtime's is that runtime's only when the runtime is there too.
const RUNTIME_STATE: &[(&str, &str, u8)] = &[
    ("docker", "/var/lib/docker/containers", 1),
    ("containerd", "/run/containerd/io.containerd.runtime.v2.task", 2),
    ("containerd", "/run/containerd/io.containerd.runtime.v1.linux", 2),
    ("podman", "/var/lib/containers/storage/overlay-containers", 1),
    ("podman", "/run/libpod", 0),
    ("cri-o", "/run/crio", 0),
    ("kubelet", "/var/lib/kubelet/pods", 1),
    ("kubelet", "/var/lib/kubelet/config.yaml", 0),
    ("lxc", "/var/lib/lxc", 1),
    ("libvirt", "/run/libvirt/qemu", 1),
];

/// Entries kept per state directory (a host with more containers than this
/// still shows its runtime; only per-container marks beyond it are lost).
const STATE_ENTRIES: usize = 4096;

/// The runtimes' state found on disk, by manager name.
fn runtime_state(root: &Root, note: &mut impl FnMut(HostError)) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for &(manager, dir, depth) in RUNTIME_STATE {
        let mut found = Vec::new();
        list_state(root, dir, depth, &mut found, note);
        if !found.is_empty() {
            out.entry(manager.to_string()).or_default().extend(found);
        }
    }
    for v in out.values_mut() {
        v.sort();
        v.dedup();
    }
    out
}

/// `dir` itself when it exists, and its entries down to `depth` levels.
fn list_state(root: &Root, dir: &str, depth: u8, found: &mut Vec<String>, note: &mut impl FnMut(HostError)) {
    if depth == 0 {
        // A file or directory whose existence is the mark.
        let (Some(parent), Some(name)) = (crate::model::path::parent(dir), dir.rsplit('/').next()) else {
            return;
        };
        match root.list_names(parent) {
            Ok(Some(names)) if names.iter().any(|n| n == name) => found.push(dir.to_string()),
            Ok(_) => {}
            Err(e) => note(e),
        }
        return;
    }
    match root.list_names(dir) {
        Ok(Some(names)) => {
            found.push(dir.to_string());
            for n in names.into_iter().take(STATE_ENTRIES) {
                let child = format!("{dir}/{n}");
                if depth > 1 {
                    list_state(root, &child, depth - 1, found, note);
                } else {
                    found.push(child);
                }
            }
        }
        Ok(None) => {}
        Err(e) => note(e),
    }
}

/// Every systemd unit name that appears as a cgroup path component.
fn unit_names(snap: &Snapshot) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (_, c) in snap.cgroups() {
        for comp in c.path.split('/').filter(|s| !s.is_empty()) {
            if units::is_unit_name(comp) {
                out.insert(comp.to_string());
            }
        }
    }
    out
}

/// The upstream major version of a package in a dpkg status file (the one
/// reader is `host::systemd`).
pub use crate::host::systemd::dpkg_version;

/// xattrs on the cgroups of the v2 and `name=systemd` hierarchies.
fn cgroup_xattrs(
    root: &Root,
    snap: &Snapshot,
    note: &mut impl FnMut(HostError),
) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (hi, h) in snap.hierarchies() {
        let tracked = h.version == Version::V2 || h.name.as_deref() == Some("systemd");
        let Some(m) = h.scanned_mount.and_then(|i| h.mounts.get(i)) else {
            continue;
        };
        if !tracked {
            continue;
        }
        let mroot = m.root.trim_end_matches('/');
        if let Some(ci) = snap.root_cgroup(hi) {
            walk(snap, ci, &mut |path: &str| {
                let rel = if mroot.is_empty() {
                    Some(path)
                } else if path == m.root {
                    Some("")
                } else {
                    path.strip_prefix(mroot)
                };
                let Some(rel) = rel else { return };
                let dir = format!(
                    "{}{}",
                    m.mount_point.trim_end_matches('/'),
                    rel.trim_end_matches('/')
                );
                match root.xattrs(&dir, &["trusted.", "user."]) {
                    Ok(v) if !v.is_empty() => {
                        out.entry(path.to_string()).or_default().extend(v);
                    }
                    Ok(_) => {}
                    Err(e) => note(e),
                }
            });
        }
    }
    out
}

fn walk(snap: &Snapshot, ci: petgraph::graph::NodeIndex, f: &mut impl FnMut(&str)) {
    if let Node::Cgroup(c) = &snap.graph[ci] {
        f(&c.path);
        for ch in snap.children(ci) {
            walk(snap, ch, f);
        }
    }
}
