//! Live handover: move a controller from its v1 hierarchy to cgroup2 on a
//! running kernel, and back (rollback).
//!
//! The sequence and its traps are measured in
//! `docs/research/live-handover.md`: tasks to the v1 root, rmdir deepest
//! first, wait for `/proc/cgroups` to count 1 cgroup (rmdir is asynchronous;
//! unmounting earlier leaves the hierarchy alive and mounted nowhere),
//! unmount every mount, wait for the controller in the v2 root's
//! `cgroup.controllers`. The v2 tree and its tasks are placed before, the
//! controller enabled and configured right after (the executor orders that),
//! so the window without limits is as short as the kernel allows.
//!
//! Mounts in other mount namespaces are refused in the preflight, not
//! entered with `setns`: a container's mount is its owner's business, and
//! unmounting it from outside would break that container's view silently.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;

use super::beneath::{Beneath, CGROUP_SUPER_MAGIC};
use super::step::{Before, OwnedFile, Step, UidGid, V1Cgroup, V1Mount, V1State};
use super::tasks::Host;
use crate::host::ProcCgroupsEntry;
use crate::model::Controller;
use crate::model::{HierarchyId, Tid};
use crate::plan::Plan;

/// Why a handover step (or its undo) failed: each names the cgroup, file
/// or mount it was working on. The kernel's error is part of the text and
/// not a `source()`, so it is said once; the executor journals the text as
/// the step's note.
#[derive(Debug, thiserror::Error)]
pub enum HandoverError {
    /// The hierarchy's cgroups were removed but the kernel still counts them.
    #[error(
        "{controller}: /proc/cgroups still counts {count} cgroups after {timeout_ms} ms: offline cgroups are pinned (memory: charged page cache or tmpfs files); the hierarchy was NOT unmounted (unmounting now would leave it alive and mounted nowhere)"
    )]
    Pinned {
        /// The v1 controller.
        controller: String,
        /// How many cgroups `/proc/cgroups` still counts.
        count: u32,
        /// How long cgmig waited.
        timeout_ms: u64,
    },
    /// A v1 mount could not be unmounted.
    #[error("umount {mount}: {errno}")]
    Umount {
        /// The mount point.
        mount: String,
        /// What the kernel said.
        errno: Errno,
    },
    /// The controller never appeared on the cgroup2 root.
    #[error("{controller} did not show up in the cgroup2 root's cgroup.controllers within {timeout_ms} ms")]
    NotOffered {
        /// The v2 controller.
        controller: String,
        /// How long cgmig waited.
        timeout_ms: u64,
    },
    /// The executor passed a step that is not a handover step (a cgmig bug).
    #[error("not a handover step: {label}")]
    NotHandover {
        /// The step's label.
        label: String,
    },
    /// A v1 interface file refused a value.
    #[error("{}: write {value}: {errno}", file.display())]
    Write {
        /// The file.
        file: PathBuf,
        /// The value written.
        value: String,
        /// What the kernel said.
        errno: Errno,
    },
    /// A task could not be moved to the v1 root.
    #[error("{cgroup}: move task {tid} to the root: {errno}")]
    MoveToRoot {
        /// The v1 cgroup (mount point and path).
        cgroup: String,
        /// The task.
        tid: Tid,
        /// What the kernel said.
        errno: Errno,
    },
    /// Tasks kept arriving in these v1 cgroups during the sweep.
    #[error("tasks keep appearing in {}", cgroups.join(", "))]
    Busy {
        /// The v1 cgroups (paths in the hierarchy).
        cgroups: Vec<String>,
    },
    /// A v1 cgroup could not be removed.
    #[error("rmdir {}: {err}", dir.display())]
    Rmdir {
        /// The cgroup directory.
        dir: PathBuf,
        /// What the kernel said.
        err: std::io::Error,
    },
    /// A v1 cgroup or mount point could not be made again.
    #[error("mkdir {}: {err}", dir.display())]
    Mkdir {
        /// The directory.
        dir: PathBuf,
        /// What the kernel said.
        err: std::io::Error,
    },
    /// A task could not go back to its v1 cgroup.
    #[error("{cgroup}: move task {tid} back: {errno}")]
    MoveBack {
        /// The v1 cgroup (mount point and path).
        cgroup: String,
        /// The task.
        tid: Tid,
        /// What the kernel said.
        errno: Errno,
    },
    /// A journaled v1 setting could not be written back.
    #[error("{}: cannot restore {value:?}", file.display())]
    Restore {
        /// The interface file.
        file: PathBuf,
        /// The journaled value.
        value: String,
    },
    /// A delegated file could not be given back to its owner.
    #[error("chown {uid}:{gid} {}: {err}", path.display())]
    Chown {
        /// The file or directory.
        path: PathBuf,
        /// The owner.
        uid: u32,
        /// The group.
        gid: u32,
        /// What the kernel said.
        err: std::io::Error,
    },
    /// A v1 mount named by a step is not that hierarchy's mount.
    #[error("{mount}: not a v1 cgroup mount of {hierarchy}: {why}")]
    NotV1 {
        /// The mount point.
        mount: String,
        /// The hierarchy.
        hierarchy: String,
        /// What was found instead.
        why: String,
    },
    /// A value cgmig will not write back.
    #[error("{}: not restoring {value:?}: {why}", file.display())]
    Unsafe {
        /// The file.
        file: PathBuf,
        /// The journaled value.
        value: String,
        /// Why not.
        why: String,
    },
    /// Where a hierarchy would be mounted again is not a safe, empty directory.
    #[error("{point}: not mounting a v1 hierarchy there: {why}")]
    MountPoint {
        /// The mount point.
        point: String,
        /// Why not.
        why: String,
    },
    /// A v1 hierarchy could not be mounted again.
    #[error("mount -t cgroup -o {data} {device} {point}: {errno}")]
    Mount {
        /// The mount options.
        data: String,
        /// The mount source (not named `source`: thiserror would take it
        /// for the cause).
        device: String,
        /// The mount point.
        point: String,
        /// What the kernel said.
        errno: Errno,
    },
}

/// Bound on each wait (release, v2 offer, remount).
pub const WAIT_MS: u64 = 10_000;

/// One v1 hierarchy to hand over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// Its v1 controllers, comma-joined (`hugetlb`, `cpu,cpuacct`).
    pub hierarchy: String,
    /// The v1 controllers.
    pub v1: Vec<String>,
    /// Their v2 controllers.
    pub v2: Vec<String>,
    /// Its mounts in this mount namespace.
    pub mounts: Vec<V1Mount>,
}

/// The v2 controller a v1 controller becomes (`None`: v2 has none), from
/// the one controller table ([`Controller::v2_name`]).
pub fn v2_name(v1: &str) -> Option<&'static str> {
    v1.parse::<Controller>().ok()?.v2_name()
}

/// Whether v2 has no controller for this v1 one, so it is handed over by
/// just releasing its hierarchy ([`Controller::is_v1_only`]).
pub fn is_v1_only(v1: &str) -> bool {
    v1.parse::<Controller>().is_ok_and(|c| c.is_v1_only())
}

/// Whether a v2 controller is implicit: nothing to wait for or enable
/// ([`Controller::is_implicit_on_v2`]).
pub fn is_implicit(v2: &str) -> bool {
    Controller::v2_named(v2).is_some_and(Controller::is_implicit_on_v2)
}

/// `/proc/cgroups` rows, read live while the handover waits (a malformed
/// row is skipped: the count is polled again).
pub fn proc_cgroups() -> Vec<ProcCgroupsEntry> {
    let text = std::fs::read_to_string("/proc/cgroups").unwrap_or_default();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some(ProcCgroupsEntry {
                name: f.first()?.to_string(),
                hierarchy: f.get(1)?.parse().ok()?,
                num_cgroups: f.get(2)?.parse().ok()?,
                enabled: *f.get(3)? == "1",
            })
        })
        .collect()
}

/// v1 cgroup mounts in a mountinfo text.
pub fn v1_mounts(mountinfo: &str) -> Vec<V1Mount> {
    mountinfo
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let r: Vec<&str> = right.split_whitespace().collect();
            if r.first() != Some(&"cgroup") {
                return None;
            }
            let lf: Vec<&str> = left.split_whitespace().collect();
            Some(V1Mount {
                point: crate::model::path::unescape_octal(lf.get(4)?),
                source: r.get(1)?.to_string(),
                options: lf.get(5)?.to_string(),
                super_options: r.get(2)?.to_string(),
            })
        })
        .collect()
}

fn binds(m: &V1Mount, ctrl: &str) -> bool {
    m.super_options.split(',').any(|o| o == ctrl)
}

/// The v1 controllers a plan moves to v2: its stage's (cumulative), or
/// every stage's for a whole plan, plus those its v2 controllers name.
pub fn moved_controllers(plan: &Plan) -> Vec<String> {
    let mut v: Vec<String> = match plan
        .stage
        .and_then(|n| plan.stages.iter().find(|s| s.number == n))
    {
        Some(s) => s.controllers.clone(),
        None => plan.stages.iter().flat_map(|s| s.adds.iter().cloned()).collect(),
    };
    v.extend(plan.controllers.iter().cloned());
    v.sort();
    v.dedup();
    v
}

/// The v1 hierarchies, still bound to v1, that carry a controller the plan moves.
pub fn specs_for(plan: &Plan) -> Vec<Spec> {
    let wanted = moved_controllers(plan);
    let rows = proc_cgroups();
    let mounts = v1_mounts(&std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default());
    let mut ids: Vec<HierarchyId> = Vec::new();
    let mut specs = Vec::new();
    for ProcCgroupsEntry {
        name: c,
        hierarchy: hid,
        ..
    } in &rows
    {
        if *hid == HierarchyId::UNIFIED
            || ids.contains(hid)
            || !wanted.iter().any(|w| w == c || v2_name(c) == Some(w.as_str()))
        {
            continue;
        }
        ids.push(*hid);
        let v1: Vec<String> = rows
            .iter()
            .filter(|r| r.hierarchy == *hid)
            .map(|r| r.name.clone())
            .collect();
        let mut v2: Vec<String> = v1.iter().filter_map(|c| v2_name(c)).map(str::to_string).collect();
        v2.dedup();
        specs.push(Spec {
            hierarchy: v1.join(","),
            mounts: mounts
                .iter()
                .filter(|m| binds(m, c))
                .map(without_release_agent)
                .collect(),
            v1,
            v2,
        });
    }
    specs
}

/// A mount as the journal records it for a remount: without `release_agent=`
/// in its data. A rollback never passes that option to `mount(2)` (the
/// kernel would run the program as root, and the journal is read back as
/// untrusted: `apply::scope` refuses the word); the agent comes back through
/// its `release_agent` file instead, under that file's own checks.
fn without_release_agent(m: &V1Mount) -> V1Mount {
    let mut m = m.clone();
    m.super_options = m
        .super_options
        .split(',')
        .filter(|o| !o.starts_with("release_agent="))
        .collect::<Vec<_>>()
        .join(",");
    m
}

/// The handover steps of one hierarchy.
pub fn steps(s: &Spec) -> Vec<Step> {
    let first = s.mounts.first().map(|m| m.point.clone()).unwrap_or_default();
    let mut v = vec![
        Step::Evacuate {
            hierarchy: s.hierarchy.clone(),
            mount: first.clone(),
        },
        Step::RemoveV1 {
            hierarchy: s.hierarchy.clone(),
            mount: first,
        },
        Step::WaitRelease {
            controller: s.v1[0].clone(),
            timeout_ms: WAIT_MS,
        },
        Step::Unmount {
            hierarchy: s.hierarchy.clone(),
            mounts: s.mounts.iter().map(|m| m.point.clone()).collect(),
        },
    ];
    for c in s.v2.iter().filter(|c| !is_implicit(c)) {
        v.push(Step::WaitV2 {
            controller: c.clone(),
            timeout_ms: WAIT_MS,
        });
    }
    v
}

/// Everything that would make the handover fail or hurt, found without
/// touching anything. Empty: go.
pub fn preflight(specs: &[Spec], v2_root: Option<&Path>, systemd_v1: bool) -> Vec<String> {
    let mut why = Vec::new();
    if v2_root.is_none() {
        why.push("no cgroup2 mount: the controller would have nowhere to go".into());
    }
    for s in specs {
        for c in &s.v1 {
            if v2_name(c).is_none() && !is_v1_only(c) {
                why.push(format!(
                    "{}: v1 controller {c} has no cgroup2 counterpart on this kernel",
                    s.hierarchy
                ));
            }
        }
        let Some(m) = s.mounts.first() else {
            why.push(format!("{}: not mounted in this mount namespace", s.hierarchy));
            continue;
        };
        let paths = walk(Path::new(&m.point));
        why.extend(managers(&s.hierarchy, &paths, systemd_v1));
        if s.v1.iter().any(|c| c == "memory") {
            why.extend(pinned_memcgs(Path::new(&m.point), &paths));
        }
        why.extend(other_namespaces(s));
    }
    why
}

/// What to do instead when the preflight refuses.
pub fn staged_boot_hint(plan: &Plan) -> String {
    let line = plan
        .stages
        .first()
        .map_or("cgroup_no_v1=…", |s| s.cmdline.as_str());
    format!(
        "The staged boot is the path for these: boot with the plan's stage line ({line}), then run `cgmig apply PLAN` without --live."
    )
}

fn managers(h: &str, paths: &[String], systemd_v1: bool) -> Vec<String> {
    let mut why = Vec::new();
    let mut hit = |who: &str, p: &String, fix: &str| {
        why.push(format!("{h}: {who} holds {p} ({fix})"));
    };
    if let Some(p) = paths.iter().find(|p| p.contains("kubepods")) {
        hit("kubelet", p, "kubelet writes pod limits there");
    }
    if let Some(p) = paths
        .iter()
        .find(|p| p.split('/').any(|c| c == "docker" || c.starts_with("docker-")))
    {
        hit("docker", p, "dockerd writes container limits there");
    }
    if let Some(p) = paths
        .iter()
        .find(|p| p.contains("machine.slice") || p.contains("libvirt") || p.starts_with("/machine"))
    {
        hit("libvirt", p, "libvirtd places VMs there");
    }
    if systemd_v1
        && let Some(p) = paths
            .iter()
            .find(|p| [".slice", ".service", ".scope"].iter().any(|s| p.ends_with(s)))
    {
        hit(
            "systemd (legacy/hybrid mode)",
            p,
            "systemd writes unit settings there",
        );
    }
    why
}

fn pinned_memcgs(mount: &Path, paths: &[String]) -> Vec<String> {
    let mut why = Vec::new();
    let counted = proc_cgroups()
        .into_iter()
        .find(|r| r.name == "memory")
        .map_or(0, |r| r.num_cgroups);
    let visible = paths.len() as u32 + 1;
    if counted > visible {
        why.push(format!(
            "memory: /proc/cgroups counts {counted} cgroups but {visible} are visible: {} offline memcgs are pinned by charged pages (page cache, tmpfs or /dev/shm files); they go when those files are deleted or the cache dropped (sync; echo 1 > /proc/sys/vm/drop_caches)",
            counted - visible
        ));
    }
    for p in paths {
        let stat = std::fs::read_to_string(
            mount
                .join(crate::model::path::to_os(p.trim_start_matches('/')))
                .join("memory.stat"),
        )
        .unwrap_or_default();
        let get = |k: &str| {
            stat.lines()
                .find_map(|l| l.strip_prefix(k).and_then(|v| v.trim().parse::<u64>().ok()))
                .unwrap_or(0)
        };
        let (shmem, file) = (get("shmem "), get("cache ").max(get("file ")));
        if shmem > 0 {
            why.push(format!(
                "memory:{p}: {shmem} bytes of tmpfs/shm are charged to it: after rmdir it stays a zombie until those files are deleted"
            ));
        } else if file > 0 {
            why.push(format!(
                "memory:{p}: {file} bytes of page cache are charged to it (memory.force_empty may reclaim them; drop_caches does)"
            ));
        }
    }
    why
}

/// Mounts of the hierarchy in mount namespaces other than ours.
fn other_namespaces(s: &Spec) -> Vec<String> {
    let ours = std::fs::read_link("/proc/self/ns/mnt").ok();
    let mut seen = std::collections::BTreeSet::new();
    let mut why = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return why;
    };
    for e in rd.filter_map(Result::ok) {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(ns) = std::fs::read_link(e.path().join("ns/mnt")) else {
            continue;
        };
        if Some(&ns) == ours.as_ref() || !seen.insert(ns.clone()) {
            continue;
        }
        let info = std::fs::read_to_string(e.path().join("mountinfo")).unwrap_or_default();
        for m in v1_mounts(&info) {
            if s.v1.iter().any(|c| binds(&m, c)) {
                why.push(format!(
                    "{}: also mounted at {} in mount namespace {} (process {name}); cgmig does not unmount in other namespaces",
                    s.hierarchy,
                    m.point,
                    ns.display()
                ));
            }
        }
    }
    why
}

/// Every cgroup path below a mount, parents first (the root excluded).
pub fn walk(mount: &Path) -> Vec<String> {
    fn rec(dir: &Path, rel: &str, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else { return };
        // Raw names to recurse, escaped names (model form) for the paths.
        let mut names: Vec<std::ffi::OsString> = rd
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.file_name())
            .collect();
        names.sort();
        for n in names {
            let p = format!("{rel}/{}", crate::model::path::from_bytes(n.as_encoded_bytes()));
            out.push(p.clone());
            rec(&dir.join(&n), &p, out);
        }
    }
    let mut out = Vec::new();
    rec(mount, "", &mut out);
    out
}

fn dir(mount: &str, path: &str) -> PathBuf {
    let p = Path::new(mount);
    if path == "/" {
        p.to_path_buf()
    } else {
        p.join(crate::model::path::to_os(path.trim_start_matches('/')))
    }
}

/// The thread ids a v1 `tasks` file lists (an unreadable file: none).
fn read_ids(f: &Path) -> Vec<Tid> {
    std::fs::read_to_string(f)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// A v1 hierarchy's mount, open and checked before anything in it is
/// written: the filesystem there is a v1 cgroup one (`fstatfs`), and this
/// mount namespace's table shows a cgroup mount at that point binding the
/// hierarchy's controllers. Every cgroup and file is then resolved beneath
/// it ([`Beneath`]), so a journal that names another directory (or a path
/// that climbs out) reaches nothing.
pub struct V1Fs {
    fs: Beneath,
    mount: String,
}

impl std::fmt::Debug for V1Fs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("V1Fs")
            .field("mount", &self.mount)
            .finish_non_exhaustive()
    }
}

impl V1Fs {
    /// Open `mount`, the v1 mount of `hierarchy` (comma-joined controllers).
    pub fn open(mount: &str, hierarchy: &str) -> Result<V1Fs, HandoverError> {
        let not = |why: String| HandoverError::NotV1 {
            mount: mount.to_string(),
            hierarchy: hierarchy.to_string(),
            why,
        };
        let table = v1_mounts(&std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default());
        if !table
            .iter()
            .any(|m| m.point == mount && hierarchy.split(',').all(|c| binds(m, c)))
        {
            return Err(not("no such cgroup mount in this mount namespace".into()));
        }
        let fs = Beneath::open(Path::new(mount), CGROUP_SUPER_MAGIC, None).map_err(|e| not(e.to_string()))?;
        Ok(V1Fs {
            fs,
            mount: mount.to_string(),
        })
    }

    /// Over any directory, unchecked (unit tests of the file handling).
    #[cfg(test)]
    fn unchecked(dir: &Path) -> V1Fs {
        use std::os::fd::FromRawFd;
        let fd = nix::fcntl::open(
            dir,
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY,
            nix::sys::stat::Mode::empty(),
        )
        .unwrap();
        // SAFETY: open returned a fresh descriptor we own.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        V1Fs {
            fs: Beneath::from_fd(fd, dir, None).unwrap(),
            mount: dir.display().to_string(),
        }
    }

    fn names(&self, path: &str, file: Option<&str>) -> Result<Vec<Vec<u8>>, Errno> {
        let mut n = crate::model::path::cgroup_names(path).map_err(|_| Errno::EINVAL)?;
        if let Some(f) = file.filter(|f| *f != ".") {
            super::beneath::check_name(f.as_bytes())?;
            n.push(f.as_bytes().to_vec());
        }
        Ok(n)
    }

    /// The path of a cgroup (or its file) for messages.
    fn shown(&self, path: &str, file: Option<&str>) -> PathBuf {
        let d = dir(&self.mount, path);
        match file {
            Some(f) => d.join(f),
            None => d,
        }
    }

    /// One `write(2)` to an existing file (never created).
    fn write(&self, path: &str, file: &str, value: &str) -> Result<(), Errno> {
        use std::io::Write as _;
        let fd = self
            .fs
            .open_at(&self.names(path, Some(file))?, nix::fcntl::OFlag::O_WRONLY)?;
        std::fs::File::from(fd)
            .write_all(value.as_bytes())
            .map_err(|e| e.raw_os_error().map_or(Errno::EIO, Errno::from_raw))
    }

    fn read(&self, path: &str, file: &str) -> Option<String> {
        let flags = nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_NONBLOCK;
        let fd = self.fs.open_at(&self.names(path, Some(file)).ok()?, flags).ok()?;
        let bytes = crate::host::contain::read_fd(fd, crate::host::contain::MAX_SETTING_BYTES).ok()?;
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// The thread ids a `tasks` file lists (an unreadable file: none).
    fn tasks(&self, path: &str) -> Vec<Tid> {
        self.read(path, "tasks")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Every cgroup below the mount, parents first (the root excluded).
    fn walk(&self) -> Vec<String> {
        fn rec(fs: &V1Fs, path: &str, out: &mut Vec<String>) {
            let Ok(names) = fs.names(path, None) else { return };
            let Ok(subs) = fs.fs.subdirs(&names) else { return };
            for n in subs {
                let p = crate::model::path::join(path, &crate::model::path::from_bytes(&n));
                out.push(p.clone());
                rec(fs, &p, out);
            }
        }
        let mut out = Vec::new();
        rec(self, "/", &mut out);
        out
    }
}

/// A controller file worth restoring (limits and knobs, not counters), or
/// the core `notify_on_release`. Files without a write bit (`pids.peak`,
/// `cpuset.effective_cpus`, `devices.list`) are left out by [`writable`].
fn is_setting(file: &str, ctrls: &[&str]) -> bool {
    if file == "notify_on_release" {
        return true;
    }
    let Some((prefix, _)) = file.split_once('.') else {
        return false;
    };
    // Whole words: `freezer.state` is a setting, `memory.numa_stat` is not.
    ctrls.contains(&prefix)
        && !file
            .split(['.', '_'])
            .any(|w| ["usage", "failcnt", "stat", "events", "peak"].contains(&w))
}

/// Whether a journal may name `file` as a v1 setting to restore: one name,
/// a setting of the hierarchy's controllers ([`is_setting`], which takes
/// `devices.list` too), or at the root the release agent and charge moving.
pub fn restorable_file(file: &str, ctrls: &[&str], is_root: bool) -> bool {
    super::beneath::check_name(file.as_bytes()).is_ok()
        && if is_root {
            is_root_setting(file)
        } else {
            is_setting(file, ctrls)
        }
}

/// Settings of the v1 root worth restoring: the release agent, and the
/// charge-moving knob the handover turns on (see [`evacuate`]).
fn is_root_setting(file: &str) -> bool {
    file == "release_agent" || file == MOVE_CHARGE
}

/// Whether a cgroupfs file has a write bit (read-only ones are statistics).
fn writable(f: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(f).is_ok_and(|m| m.permissions().mode() & 0o222 != 0)
}

/// The value to write back for a read one: `memory.oom_control` reads as
/// `oom_kill_disable N` lines but takes the number.
fn restorable(file: &str, read: &str) -> String {
    if file == "memory.oom_control" {
        return read
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill_disable "))
            .unwrap_or("0")
            .trim()
            .to_string();
    }
    read.trim().to_string()
}

/// The v1 device whitelist: read-only, restored through
/// `devices.deny`/`devices.allow` (see [`restore`]).
const DEVICES_LIST: &str = "devices.list";

/// v1 memcg knob: charges follow a task that moves *into* a cgroup with it
/// set (3 = anonymous and file pages).
const MOVE_CHARGE: &str = "memory.move_charge_at_immigrate";

/// Read a mounted v1 hierarchy: its cgroups, settings and tasks.
pub fn read_v1(mount: &str, hierarchy: &str) -> V1State {
    let ctrls: Vec<&str> = hierarchy.split(',').collect();
    let mut paths = vec!["/".to_string()];
    paths.extend(walk(Path::new(mount)));
    let cgroups = paths
        .into_iter()
        .map(|p| {
            let d = dir(mount, &p);
            let mut settings = Vec::new();
            if let Ok(rd) = std::fs::read_dir(&d) {
                let mut files: Vec<String> = rd
                    .filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|f| {
                        if p == "/" {
                            is_root_setting(f)
                        } else {
                            is_setting(f, &ctrls)
                        }
                    })
                    .filter(|f| writable(&d.join(f)) || (p != "/" && f == DEVICES_LIST))
                    .collect();
                files.sort();
                for f in files {
                    if let Ok(v) = std::fs::read_to_string(d.join(&f)) {
                        let v = restorable(&f, &v);
                        settings.push((f, v));
                    }
                }
            }
            V1Cgroup {
                tasks: read_ids(&d.join("tasks")),
                owners: delegated_owners(&d),
                path: p,
                settings,
            }
        })
        .collect();
    let mounts = v1_mounts(&std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default())
        .iter()
        .filter(|m| ctrls.iter().any(|c| binds(m, c)))
        .map(without_release_agent)
        .collect();
    V1State { mounts, cgroups }
}

/// The files of a cgroup a user owns (v1 delegation chowns the directory,
/// `cgroup.procs` and `tasks`); root-owned files are not listed.
fn delegated_owners(d: &Path) -> Vec<OwnedFile> {
    use std::os::unix::fs::MetadataExt;
    [".", "cgroup.procs", "tasks"]
        .into_iter()
        .filter_map(|f| {
            let m = std::fs::metadata(d.join(f)).ok()?;
            (m.uid() != 0 || m.gid() != 0).then(|| OwnedFile::new(f, UidGid::new(m.uid(), m.gid())))
        })
        .collect()
}

/// Give a re-made cgroup's files back to their owners (see [`delegated_owners`]).
fn restore_owners(fs: &V1Fs, path: &str, owners: &[OwnedFile]) -> Result<(), HandoverError> {
    for OwnedFile { file, owner } in owners {
        let UidGid { uid, gid } = *owner;
        fs.names(path, Some(file))
            .and_then(|n| fs.fs.chown(&n, uid, gid))
            .map_err(|errno| HandoverError::Chown {
                path: fs.shown(path, Some(file)),
                uid,
                gid,
                err: errno.into(),
            })?;
    }
    Ok(())
}

/// What a handover step removes (the executor journals it).
pub fn capture(step: &Step) -> Before {
    match step {
        // Read only from a mount that is the hierarchy's (a resumed
        // journal names it).
        Step::Evacuate { hierarchy, mount } | Step::RemoveV1 { hierarchy, mount } => Before {
            v1: V1Fs::open(mount, hierarchy)
                .ok()
                .map(|_| read_v1(mount, hierarchy)),
            ..Before::default()
        },
        Step::Unmount { hierarchy, .. } => {
            let ctrls: Vec<&str> = hierarchy.split(',').collect();
            let mounts = v1_mounts(&std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default())
                .iter()
                .filter(|m| ctrls.iter().any(|c| binds(m, c)))
                .map(without_release_agent)
                .collect();
            Before {
                v1: Some(V1State {
                    mounts,
                    cgroups: Vec::new(),
                }),
                ..Before::default()
            }
        }
        _ => Before::default(),
    }
}

/// Run one handover step.
pub fn perform(step: &Step, _before: &Before, host: &mut dyn Host) -> Result<Option<String>, HandoverError> {
    match step {
        Step::Evacuate { mount, hierarchy } => evacuate(mount, hierarchy),
        Step::RemoveV1 { mount, hierarchy } => remove_v1(mount, hierarchy),
        Step::WaitRelease {
            controller,
            timeout_ms,
        } => wait(*timeout_ms, || {
            let n = proc_cgroups()
                .into_iter()
                .find(|r| &r.name == controller)
                .map_or(1, |r| {
                    if r.hierarchy == HierarchyId::UNIFIED {
                        1
                    } else {
                        r.num_cgroups
                    }
                });
            (n <= 1).then_some(()).ok_or_else(|| HandoverError::Pinned {
                controller: controller.clone(),
                count: n,
                timeout_ms: *timeout_ms,
            })
        }),
        Step::Unmount { mounts, hierarchy } => {
            let table = v1_mounts(&std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default());
            for m in mounts {
                // Only the hierarchy's own mounts: one already gone is done,
                // anything else mounted there is not cgmig's to unmount.
                let Some(found) = table.iter().find(|x| x.point == *m) else {
                    continue;
                };
                if !hierarchy.split(',').all(|c| binds(found, c)) {
                    return Err(HandoverError::NotV1 {
                        mount: m.clone(),
                        hierarchy: hierarchy.clone(),
                        why: format!("{} is mounted there, not this hierarchy", found.super_options),
                    });
                }
                match nix::mount::umount(m.as_str()) {
                    Ok(()) | Err(Errno::EINVAL | Errno::ENOENT) => {}
                    Err(errno) => {
                        return Err(HandoverError::Umount {
                            mount: m.clone(),
                            errno,
                        });
                    }
                }
            }
            Ok(None)
        }
        Step::WaitV2 {
            controller,
            timeout_ms,
        } => wait(*timeout_ms, || {
            let have = host.read("/", "cgroup.controllers").unwrap_or_default();
            have.split_whitespace()
                .any(|c| c == controller)
                .then_some(())
                .ok_or_else(|| HandoverError::NotOffered {
                    controller: controller.clone(),
                    timeout_ms: *timeout_ms,
                })
        }),
        _ => Err(HandoverError::NotHandover { label: step.label() }),
    }
}

fn wait(
    timeout_ms: u64,
    mut ok: impl FnMut() -> Result<(), HandoverError>,
) -> Result<Option<String>, HandoverError> {
    let start = Instant::now();
    loop {
        match ok() {
            Ok(()) => return Ok(Some(format!("after {} ms", start.elapsed().as_millis()))),
            Err(e) if start.elapsed() >= Duration::from_millis(timeout_ms) => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

fn evacuate(mount: &str, hierarchy: &str) -> Result<Option<String>, HandoverError> {
    let fs = V1Fs::open(mount, hierarchy)?;
    if hierarchy.split(',').any(|c| c == "memory") {
        // A running task's pages stay charged to the memcg it leaves, which
        // then never dies after rmdir: make the charges follow the tasks to
        // the root (the old values are journaled by the capture).
        for p in std::iter::once("/".to_string()).chain(fs.walk()) {
            match fs.write(&p, MOVE_CHARGE, "3") {
                // ENOENT/EINVAL: a kernel without charge moving; the
                // release wait then names what stays pinned.
                Ok(()) | Err(Errno::ENOENT | Errno::EINVAL) => {}
                Err(errno) => {
                    return Err(HandoverError::Write {
                        file: fs.shown(&p, Some(MOVE_CHARGE)),
                        value: "3".into(),
                        errno,
                    });
                }
            }
        }
    }
    // Forks during the sweep land in the cgroup of their parent: sweep until empty.
    for _ in 0..5 {
        let mut left = 0;
        for p in fs.walk().iter().rev() {
            for tid in fs.tasks(p) {
                match fs.write("/", "tasks", &tid.to_string()) {
                    Ok(()) | Err(Errno::ESRCH) => {}
                    Err(errno) => {
                        return Err(HandoverError::MoveToRoot {
                            cgroup: format!("{mount}{p}"),
                            tid,
                            errno,
                        });
                    }
                }
                left += 1;
            }
        }
        if left == 0 {
            return Ok(None);
        }
    }
    let busy: Vec<String> = fs
        .walk()
        .into_iter()
        .filter(|p| !fs.tasks(p).is_empty())
        .collect();
    if busy.is_empty() {
        Ok(None)
    } else {
        Err(HandoverError::Busy { cgroups: busy })
    }
}

fn remove_v1(mount: &str, hierarchy: &str) -> Result<Option<String>, HandoverError> {
    let fs = V1Fs::open(mount, hierarchy)?;
    let memory = hierarchy.split(',').any(|c| c == "memory");
    for p in fs.walk().iter().rev() {
        if memory {
            let _ = fs.write(p, "memory.force_empty", "0");
        }
        match fs.names(p, None).and_then(|n| fs.fs.rmdir(&n)) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(errno) => {
                return Err(HandoverError::Rmdir {
                    dir: fs.shown(p, None),
                    err: errno.into(),
                });
            }
        }
    }
    Ok(None)
}

/// Undo a handover step (rollback). Each acts only on the hierarchy's own
/// mount, checked again ([`V1Fs::open`]) after the pause since the apply.
pub fn undo(step: &Step, before: &Before, host: &mut dyn Host) -> Result<Option<String>, HandoverError> {
    let state = before.v1.clone().unwrap_or_default();
    match step {
        Step::Unmount { hierarchy, .. } => remount(&state, hierarchy, host),
        Step::RemoveV1 { mount, hierarchy } => {
            let fs = V1Fs::open(mount, hierarchy)?;
            for c in state.cgroups.iter().filter(|c| c.path != "/") {
                match fs.names(&c.path, None).and_then(|n| fs.fs.mkdir(&n)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(errno) => {
                        return Err(HandoverError::Mkdir {
                            dir: fs.shown(&c.path, None),
                            err: errno.into(),
                        });
                    }
                }
                restore(&fs, &c.path, &c.settings)?;
                restore_owners(&fs, &c.path, &c.owners)?;
            }
            Ok(None)
        }
        Step::Evacuate { mount, hierarchy } => {
            let fs = V1Fs::open(mount, hierarchy)?;
            let mut gone = 0;
            for c in state.cgroups.iter().filter(|c| c.path != "/") {
                for t in &c.tasks {
                    match fs.write(&c.path, "tasks", &t.to_string()) {
                        Ok(()) => {}
                        Err(Errno::ESRCH) => gone += 1,
                        Err(errno) => {
                            return Err(HandoverError::MoveBack {
                                cgroup: format!("{mount}{}", c.path),
                                tid: *t,
                                errno,
                            });
                        }
                    }
                }
            }
            // Last undo of the hierarchy: the settings as they were before
            // the handover touched them (charge moving, release agent).
            for c in &state.cgroups {
                restore(&fs, &c.path, &c.settings)?;
            }
            Ok((gone > 0).then(|| format!("{gone} tasks had exited")))
        }
        _ => Ok(None),
    }
}

/// A v1 device whitelist back: deny all, allow each listed rule. The kernel
/// refuses `a` with children, so this runs right after the cgroup's mkdir,
/// before its children are made again (parents come first).
fn restore_devices(fs: &V1Fs, path: &str, list: &str) -> Result<(), Errno> {
    fs.write(path, "devices.deny", "a")?;
    for rule in list.lines().filter(|l| !l.trim().is_empty()) {
        fs.write(path, "devices.allow", rule.trim())?;
    }
    Ok(())
}

/// Write back the settings that differ from their journaled values. A
/// release agent is written back only when it names a program only root
/// can change (the kernel runs it as root).
fn restore(fs: &V1Fs, path: &str, settings: &[(String, String)]) -> Result<(), HandoverError> {
    for (f, v) in settings {
        let now = fs.read(path, f).unwrap_or_default();
        if restorable(f, &now) == *v {
            continue;
        }
        if f == "release_agent" && !v.is_empty() {
            safe_agent(v).map_err(|why| HandoverError::Unsafe {
                file: fs.shown(path, Some(f)),
                value: v.clone(),
                why,
            })?;
        }
        let done = if f == DEVICES_LIST {
            restore_devices(fs, path, v)
        } else {
            fs.write(path, f, v)
        };
        if done.is_err() {
            return Err(HandoverError::Restore {
                file: fs.shown(path, Some(f)),
                value: v.clone(),
            });
        }
    }
    Ok(())
}

/// A release agent cgmig writes back: an absolute path of a regular file
/// owned by root and writable by nobody else, in directories owned by root
/// and writable by nobody else.
fn safe_agent(v: &str) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let p = Path::new(v.trim());
    if !p.is_absolute() {
        return Err("not an absolute path".into());
    }
    let m = std::fs::metadata(p).map_err(|e| e.to_string())?;
    if !m.is_file() || m.uid() != 0 || m.mode() & 0o022 != 0 {
        return Err("not a regular file owned by root and writable by root only".into());
    }
    for d in p.ancestors().skip(1) {
        let m = std::fs::metadata(d).map_err(|e| e.to_string())?;
        if m.uid() != 0 || m.mode() & 0o022 != 0 {
            return Err(format!(
                "{} is not owned by root or is writable by others",
                d.display()
            ));
        }
    }
    Ok(())
}

fn remount(state: &V1State, hierarchy: &str, _host: &mut dyn Host) -> Result<Option<String>, HandoverError> {
    use nix::mount::MsFlags;
    for m in &state.mounts {
        if v1_mounts(&std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default())
            .iter()
            .any(|x| x.point == m.point)
        {
            continue;
        }
        // The journal's words were checked when it was read (no
        // release_agent=); here they must bind this hierarchy.
        if !hierarchy.split(',').all(|c| binds(m, c)) {
            return Err(HandoverError::NotV1 {
                mount: m.point.clone(),
                hierarchy: hierarchy.to_string(),
                why: format!("the journal's mount data {:?} does not bind it", m.super_options),
            });
        }
        let mut flags = MsFlags::empty();
        for o in m.options.split(',') {
            flags |= match o {
                "ro" => MsFlags::MS_RDONLY,
                "nosuid" => MsFlags::MS_NOSUID,
                "nodev" => MsFlags::MS_NODEV,
                "noexec" => MsFlags::MS_NOEXEC,
                "noatime" => MsFlags::MS_NOATIME,
                "relatime" => MsFlags::MS_RELATIME,
                _ => MsFlags::empty(),
            };
        }
        let data: Vec<&str> = m
            .super_options
            .split(',')
            .filter(|o| *o != "rw" && *o != "ro")
            .collect();
        let data = data.join(",");
        let point = mount_point_dir(&m.point)?;
        let target = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&point));
        // v2 releases the controller's css asynchronously after `-ctrl`: EBUSY for a moment.
        wait(WAIT_MS, || {
            nix::mount::mount(
                Some(m.source.as_str()),
                target.as_str(),
                Some("cgroup"),
                flags,
                Some(data.as_str()),
            )
            .map_err(|errno| HandoverError::Mount {
                data: data.clone(),
                device: m.source.clone(),
                point: m.point.clone(),
                errno,
            })
        })?;
    }
    Ok(None)
}

/// The directory a hierarchy is mounted on again: reached without
/// following a link at any step, owned by root, not writable by others, and
/// empty (a mount there hides nothing). It is never created: the unmount
/// left it in place.
fn mount_point_dir(point: &str) -> Result<std::os::fd::OwnedFd, HandoverError> {
    use nix::fcntl::OFlag;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let refuse = |why: String| HandoverError::MountPoint {
        point: point.to_string(),
        why,
    };
    super::beneath::mount_point("mount point", point).map_err(refuse)?;
    let open = |dir: Option<&OwnedFd>, name: &str, flags: OFlag| -> Result<OwnedFd, Errno> {
        let fd = nix::fcntl::openat(
            dir.map(AsRawFd::as_raw_fd),
            name,
            flags | OFlag::O_NOFOLLOW | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )?;
        // SAFETY: openat returned a fresh descriptor we own.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    };
    let mut cur = open(None, "/", OFlag::O_RDONLY).map_err(|e| refuse(e.to_string()))?;
    for n in point.trim_start_matches('/').split('/') {
        cur = open(Some(&cur), n, OFlag::O_RDONLY).map_err(|e| {
            refuse(match e {
                Errno::ENOTDIR | Errno::ELOOP => format!("{n} is not a directory (or is a link)"),
                e => format!("{n}: {e}"),
            })
        })?;
    }
    let st = nix::sys::stat::fstat(cur.as_raw_fd()).map_err(|e| refuse(e.to_string()))?;
    if st.st_uid != 0 || st.st_mode & 0o022 != 0 {
        return Err(refuse("not owned by root, or writable by others".into()));
    }
    let dup = nix::unistd::dup(cur.as_raw_fd()).map_err(|e| refuse(e.to_string()))?;
    let mut d = nix::dir::Dir::from_fd(dup).map_err(|e| refuse(e.to_string()))?;
    let entries = d
        .iter()
        .filter_map(Result::ok)
        .filter(|e| !matches!(e.file_name().to_bytes(), b"." | b".."))
        .count();
    if entries > 0 {
        return Err(refuse(format!(
            "not empty ({entries} entries): a mount would hide them"
        )));
    }
    Ok(cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_journaled_mount_never_carries_a_release_agent() {
        let m = &v1_mounts(
            "32 31 0:29 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids,release_agent=/bin/true\n",
        )[0];
        let kept = without_release_agent(m);
        assert_eq!(kept.super_options, "rw,pids");
        assert!(binds(&kept, "pids"));
    }

    #[test]
    fn mountinfo_v1_mounts() {
        let info = "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n\
                    32 31 0:29 / /sys/fs/cgroup/cpu rw,nosuid,relatime - cgroup cgroup rw,cpu\n\
                    90 31 0:50 / /tmp/h\\040x rw,relatime shared:5 - cgroup x rw,hugetlb\n";
        let m = v1_mounts(info);
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].point, "/tmp/h x");
        assert_eq!(m[1].super_options, "rw,hugetlb");
        assert_eq!(m[0].options, "rw,nosuid,relatime");
    }

    #[test]
    fn managers_are_named() {
        let paths = vec![
            "/system.slice".to_string(),
            "/kubepods/burstable".into(),
            "/docker/abc".into(),
        ];
        let why = managers("cpu", &paths, true);
        assert_eq!(why.len(), 3, "{why:?}");
        assert!(why.iter().any(|w| w.contains("kubelet")));
        assert!(why.iter().any(|w| w.contains("systemd")));
        assert!(managers("cpu", &["/mine/a".to_string()], true).is_empty());
        assert!(managers("cpu", &["/x.slice".to_string()], false).is_empty());
    }

    #[test]
    fn a_stage_hands_over_its_cumulative_controllers() {
        let mut p: Plan = serde_json::from_str(
            r#"{"schema":"cgmig.plan/v1","host":{"hostname":null,"kernel":null,"mode":"hybrid"},
               "controllers":["hugetlb"],"nodes":[],"actions":[],"findings":[],"conflicts":[],
               "spine":{"order":[],"settings_affected":0,"tried":[]},
               "stages":[{"number":1,"adds":["pids"],"controllers":["pids"],"cmdline":"cgroup_no_v1=pids"},
                         {"number":2,"adds":["memory"],"controllers":["pids","memory"],"cmdline":"cgroup_no_v1=all"}]}"#,
        )
        .unwrap();
        assert_eq!(moved_controllers(&p), ["hugetlb", "memory", "pids"]);
        p.stage = Some(1);
        assert_eq!(moved_controllers(&p), ["hugetlb", "pids"]);
        assert!(staged_boot_hint(&p).contains("cgroup_no_v1=pids"));
    }

    /// A delegated v1 cgroup's owners are journaled and given back (issue 9:
    /// rollback re-made memory:/user as root's).
    #[test]
    fn delegated_owners_are_read_and_restored() {
        use std::os::unix::fs::MetadataExt;
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("user");
        std::fs::create_dir(&d).unwrap();
        std::fs::write(d.join("tasks"), "").unwrap();
        std::fs::write(d.join("cgroup.procs"), "").unwrap();
        let me = std::fs::metadata(&d).unwrap();
        // As root, hand the files to 1000 as a delegation does; otherwise
        // they are already ours (not root's).
        let (uid, gid) = if me.uid() == 0 {
            (1000, 1000)
        } else {
            (me.uid(), me.gid())
        };
        for f in [".", "tasks"] {
            std::os::unix::fs::chown(d.join(f), Some(uid), Some(gid)).unwrap();
        }
        let owners = delegated_owners(&d);
        let owned = |file: &str| OwnedFile::new(file, UidGid::new(uid, gid));
        assert!(owners.contains(&owned(".")), "{owners:?}");
        assert!(owners.contains(&owned("tasks")), "{owners:?}");
        if me.uid() == 0 {
            assert_eq!(owners.len(), 2, "cgroup.procs stays root's: {owners:?}");
            std::fs::remove_dir_all(&d).unwrap();
            std::fs::create_dir(&d).unwrap();
            std::fs::write(d.join("tasks"), "").unwrap();
            restore_owners(&V1Fs::unchecked(t.path()), "/user", &owners).unwrap();
            assert_eq!(delegated_owners(&d), owners);
        }
    }

    #[test]
    fn settings_not_counters() {
        assert!(is_setting("hugetlb.2MB.limit_in_bytes", &["hugetlb"]));
        assert!(!is_setting("hugetlb.2MB.usage_in_bytes", &["hugetlb"]));
        assert!(!is_setting("hugetlb.2MB.max_usage_in_bytes", &["hugetlb"]));
        assert!(!is_setting("cgroup.procs", &["hugetlb"]));
        assert!(!is_setting("pids.peak", &["pids"]));
        assert!(is_setting("freezer.state", &["freezer"]));
        assert!(!is_setting("memory.numa_stat", &["memory"]));
        assert!(is_setting("notify_on_release", &["pids"]));
        assert!(is_root_setting("release_agent"));
        assert!(!is_root_setting("notify_on_release"));
    }

    #[test]
    fn oom_control_is_restored_as_its_number() {
        let read = "oom_kill_disable 1\nunder_oom 0\noom_kill 3\n";
        assert_eq!(restorable("memory.oom_control", read), "1");
        assert_eq!(restorable("pids.max", "max\n"), "max");
        assert_eq!(
            restorable("devices.list", "c 1:3 rwm\nc 1:5 rwm\n"),
            "c 1:3 rwm\nc 1:5 rwm"
        );
    }

    #[test]
    fn read_only_files_are_not_settings() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let (ro, rw) = (d.path().join("pids.peak"), d.path().join("pids.max"));
        std::fs::write(&ro, "3").unwrap();
        std::fs::write(&rw, "max").unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o444)).unwrap();
        assert!(!writable(&ro));
        assert!(writable(&rw));
    }

    #[test]
    fn implicit_and_v1_only_controllers_are_not_waited_for() {
        let spec = |v1: &[&str]| Spec {
            hierarchy: v1.join(","),
            v1: v1.iter().map(|s| s.to_string()).collect(),
            v2: v1.iter().filter_map(|c| v2_name(c)).map(str::to_string).collect(),
            mounts: Vec::new(),
        };
        for h in [
            &["perf_event"][..],
            &["devices"],
            &["freezer"],
            &["net_cls", "net_prio"],
        ] {
            let s = spec(h);
            assert!(
                !steps(&s).iter().any(|st| matches!(st, Step::WaitV2 { .. })),
                "{h:?}"
            );
            assert!(steps(&s).iter().any(|st| matches!(st, Step::Unmount { .. })));
            // The preflight names no "no counterpart" reason for them.
            let why = preflight(&[s], Some(Path::new("/sys/fs/cgroup")), false);
            assert!(!why.iter().any(|w| w.contains("counterpart")), "{why:?}");
        }
        let odd = spec(&["debug"]);
        let why = preflight(&[odd], Some(Path::new("/sys/fs/cgroup")), false);
        assert!(why.iter().any(|w| w.contains("counterpart")), "{why:?}");
        assert!(
            steps(&spec(&["pids"]))
                .iter()
                .any(|st| matches!(st, Step::WaitV2 { .. }))
        );
    }
}
