//! Layout families: the normalized shape of a host, so hosts that differ
//! only in names that vary per host (pod UIDs, container ids, PIDs, session
//! numbers) share one family and one reviewed plan.
//!
//! A host's *layout* is a set of text lines, each one normalized fact:
//! a hierarchy, a cgroup (normalized path, the names of its non-default
//! settings, whether it is delegated), a process role (normalized comm and
//! where its main thread sits in each hierarchy, whether its threads are
//! split). It is a *set*: two pods whose normalized lines are equal count
//! once, so the number of identical pods on a node is not part of its layout,
//! while a pod with another shape or other settings adds a line. Values are
//! not part of it either (a 2 GiB and a 4 GiB limit convert by the same rule);
//! which files are set is. The fingerprint is FNV-1a over the sorted lines;
//! `docs/fleet.md` describes the rules with examples.

use crate::model::{HierarchyId, Pid};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use regex::Regex;

use crate::audit::{Report, Subject};
use crate::model::{Controller, Mode, Snapshot, Version};
use crate::plan::Plan;
use crate::rules::RuleSet;

/// A host's normalized layout and its fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Sorted, distinct normalized lines.
    pub lines: BTreeSet<String>,
}

impl Layout {
    /// FNV-1a 64 over the lines (a stable hash: ids must not change between
    /// Rust versions or runs, so `std`'s `DefaultHasher` is not used).
    pub fn fingerprint(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for line in &self.lines {
            for b in line.bytes().chain(std::iter::once(b'\n')) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        h
    }

    /// The family id shown to users: 12 hex digits of the fingerprint.
    pub fn id(&self) -> String {
        format!("{:012x}", self.fingerprint() >> 16)
    }
}

static UUID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)[0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12}")
        .expect("valid regex")
});
/// A systemd `\xHH` escape (kept verbatim: `\x2d` is a `-` in a unit name,
/// not a number), or an alphanumeric token.
static TOKEN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\\x[0-9A-Fa-f]{2}|[A-Za-z0-9]+").expect("valid regex"));
static DIGITS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"[0-9]+").expect("valid regex"));

/// Replace the parts of a name that vary per host by placeholders.
///
/// 1. a UUID (dashes, or underscores as systemd escapes them) → `{uid}`;
/// 2. an alphanumeric token that is (after an optional `pod` prefix) 8 or more
///    hex digits with at least one digit → `{id}` (container ids, hashes);
/// 3. every other run of digits → `{n}` (PIDs, session and vCPU numbers).
///
/// A systemd escape such as `\x2d` is left as it is. Numbers inside words
/// are normalized too (`cpu0`, `numa1`, `vcpu3` → `cpu{n}` ...): per-CPU or
/// per-NUMA-node cgroups of one shape convert by the same rule, and the set
/// semantics of [`Layout`] then make a 4-node and an 8-node machine one
/// family. Hex words without a digit (`deadbeef`, `cafe`) are real names.
pub fn normalize_name(s: &str) -> String {
    let s = UUID.replace_all(s, "{uid}");
    TOKEN
        .replace_all(&s, |c: &regex::Captures<'_>| normalize_token(&c[0]))
        .into_owned()
}

fn normalize_token(tok: &str) -> String {
    if tok.starts_with('\\') {
        return tok.to_string();
    }
    let (prefix, rest) = match tok.strip_prefix("pod") {
        Some(r) if r.len() >= 8 => ("pod", r),
        _ => ("", tok),
    };
    let is_id = rest.len() >= 8
        && rest.bytes().all(|b| b.is_ascii_hexdigit())
        && rest.bytes().any(|b| b.is_ascii_digit());
    if is_id {
        format!("{prefix}{{id}}")
    } else {
        DIGITS.replace_all(tok, "{n}").into_owned()
    }
}

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Legacy => "legacy",
        Mode::Hybrid => "hybrid",
        Mode::Unified => "unified",
        Mode::None => "none",
    }
}

/// Per hierarchy id: its label, controllers and version.
type Hierarchies = BTreeMap<HierarchyId, (String, Vec<Controller>, Version)>;

/// The layout of a scanned host: hierarchies, cgroups with their settings
/// pattern and delegation, and process roles.
pub fn snapshot_layout(snap: &Snapshot, rules: &RuleSet) -> Layout {
    let mut lines = BTreeSet::new();
    lines.insert("input snapshot".to_string());
    lines.insert(format!("mode {}", mode_name(snap.host.mode)));
    let hierarchies: Hierarchies = snap
        .hierarchies()
        .into_iter()
        .map(|(_, h)| (h.id, (h.label(), h.controllers.clone(), h.version)))
        .collect();
    for (label, _, version) in hierarchies.values() {
        lines.insert(format!("hierarchy {label} {version:?}"));
    }
    cgroup_lines(snap, rules, &hierarchies, &mut lines);
    process_lines(snap, &hierarchies, &mut lines);
    Layout { lines }
}

/// One line per cgroup: normalized path, the files set to a non-default
/// value (every written file on v2, where there is no v1 default to compare
/// with), and whether it is delegated.
fn cgroup_lines(snap: &Snapshot, rules: &RuleSet, hierarchies: &Hierarchies, lines: &mut BTreeSet<String>) {
    for (ci, cg) in snap.cgroups() {
        let Some((label, controllers, version)) = hierarchies.get(&cg.hierarchy) else {
            continue;
        };
        let parent = snap.parent(ci).map(|p| snap.cgroup(p));
        let set: Vec<&str> = cg
            .settings
            .iter()
            .filter(|(file, value)| {
                *version == Version::V2
                    || !rules.is_default(
                        file,
                        controllers,
                        value,
                        parent.and_then(|p| p.settings.get(*file)).map(String::as_str),
                    )
            })
            .map(|(f, _)| f.as_str())
            .collect();
        let delegated = if cg.owner.delegate_uid().is_some() {
            " delegated"
        } else {
            ""
        };
        lines.insert(format!(
            "cgroup {label}:{} [{}]{delegated}",
            normalize_name(&cg.path),
            set.join(",")
        ));
    }
}

/// One line per user process: normalized comm, uid, where its main thread
/// sits in every hierarchy, and whether its threads are split.
fn process_lines(snap: &Snapshot, hierarchies: &Hierarchies, lines: &mut BTreeSet<String>) {
    let split: BTreeSet<Pid> = snap
        .split_processes()
        .into_iter()
        .map(|(pi, _)| match &snap.graph[pi] {
            crate::model::Node::Process(p) => p.pid,
            _ => Pid::default(),
        })
        .collect();
    for (pi, p) in snap.processes() {
        if p.is_kernel_thread() {
            continue;
        }
        let threads = snap.threads(pi);
        let main = threads
            .iter()
            .find(|(_, t)| t.tid == p.pid.main_thread())
            .or(threads.first())
            .map(|(ti, _)| *ti);
        let mut places: Vec<String> = main
            .into_iter()
            .flat_map(|ti| snap.memberships(ti))
            .map(|ci| {
                let cg = snap.cgroup(ci);
                let label = hierarchies.get(&cg.hierarchy).map_or("?", |h| h.0.as_str());
                format!("{label}:{}", normalize_name(&cg.path))
            })
            .collect();
        places.sort();
        let split = if split.contains(&p.pid) {
            " split-threads"
        } else {
            ""
        };
        lines.insert(format!(
            "process {} uid={} in {}{split}",
            normalize_name(&p.comm),
            p.uid,
            places.join(" ")
        ));
    }
}

fn subject_text(s: &Subject) -> String {
    match s {
        Subject::Host => "host".into(),
        Subject::Hierarchy { label, .. } => format!("hierarchy {label}"),
        Subject::Cgroup { label, path, .. } => format!("{label}:{}", normalize_name(path)),
        Subject::Process { comm, .. } => format!("process {}", normalize_name(comm)),
    }
}

/// The layout seen through an audit report: only the cgroups and processes
/// that have findings or conversions (an audit holds no full tree).
pub fn audit_layout(r: &Report) -> Layout {
    let mut lines = BTreeSet::new();
    lines.insert("input audit".to_string());
    lines.insert(format!("mode {}", mode_name(r.host.mode)));
    for f in &r.findings {
        let detail = f.detail.as_deref().map(normalize_name).unwrap_or_default();
        lines.insert(format!(
            "finding {} {} {} {detail}",
            f.rule,
            subject_text(&f.subject),
            f.file.as_deref().unwrap_or("")
        ));
    }
    for c in &r.conversions {
        lines.insert(format!(
            "convert {} h{}:{}",
            c.conversion.rule,
            c.hierarchy,
            normalize_name(&c.path)
        ));
    }
    Layout { lines }
}

/// The layout of a plan: the target v2 tree (node types, enabled
/// controllers, which files are written, delegation, threaded placement).
pub fn plan_layout(p: &Plan) -> Layout {
    let mut lines = BTreeSet::new();
    lines.insert("input plan".to_string());
    lines.insert(format!("mode {}", mode_name(p.host.mode)));
    for n in &p.nodes {
        let mut files: Vec<&str> = n.settings.iter().map(|s| s.file.as_str()).collect();
        files.sort_unstable();
        files.dedup();
        lines.insert(format!(
            "node {} {:?} +{} [{}]{}{}",
            normalize_name(&n.path),
            n.node_type,
            n.subtree_control.join("+"),
            files.join(","),
            if n.owner.is_some() { " delegated" } else { "" },
            if n.threads.is_empty() { "" } else { " threads" },
        ));
    }
    for f in &p.findings {
        lines.insert(format!("finding {} {}", f.rule, subject_text(&f.subject)));
    }
    Layout { lines }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_vary_per_host() {
        let cases = [
            (
                "/kubepods/burstable/pod7a96c459-d529-4f1e-9b2a-0123456789ab/1d3d308a7d48",
                "/kubepods/burstable/pod{uid}/{id}",
            ),
            (
                "/kubepods.slice/kubepods-pod7a96c459_d529_4f1e_9b2a_0123456789ab.slice",
                "/kubepods.slice/kubepods-pod{uid}.slice",
            ),
            (
                "/kubepods/besteffort/pod1bf924dd/c17eb535a477",
                "/kubepods/besteffort/pod{id}/{id}",
            ),
            (
                "/system.slice/docker-0123456789abcdef0123456789abcdef.scope",
                "/system.slice/docker-{id}.scope",
            ),
            (
                "/user.slice/user-1000.slice/session-42.scope",
                "/user.slice/user-{n}.slice/session-{n}.scope",
            ),
            ("CPU 3/KVM", "CPU {n}/KVM"),
            ("/machine/vcpu0", "/machine/vcpu{n}"),
            ("/system.slice/sshd.service", "/system.slice/sshd.service"),
            ("/databases/deadbeef", "/databases/deadbeef"),
            (
                "/system.slice/system-systemd\\x2dfsck.slice/systemd-fsck@dev-sda1.service",
                "/system.slice/system-systemd\\x2dfsck.slice/systemd-fsck@dev-sda{n}.service",
            ),
            ("/lxc/10.0.3.15", "/lxc/{n}.{n}.{n}.{n}"),
            ("/numa1/cpu0", "/numa{n}/cpu{n}"),
            // 8+ digits read as an id: a container id can be all digits, a PID
            // (at most 4194304) never has 8.
            ("/batch/20240101", "/batch/{id}"),
            ("/batch/1234567", "/batch/{n}"),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize_name(raw), want, "{raw}");
        }
    }

    #[test]
    fn fingerprint_is_order_free_and_stable() {
        let a = Layout {
            lines: ["b".to_string(), "a".to_string()].into(),
        };
        let b = Layout {
            lines: ["a".to_string(), "b".to_string()].into(),
        };
        assert_eq!(a.fingerprint(), b.fingerprint());
        // Pinned: changing the hash changes every family id users have seen.
        assert_eq!(a.id(), format!("{:012x}", a.fingerprint() >> 16));
        let c = Layout {
            lines: ["a".to_string()].into(),
        };
        assert_ne!(a.id(), c.id());
    }
}
