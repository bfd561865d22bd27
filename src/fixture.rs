//! Materialize a host description into a root-prefixed directory tree.
//!
//! A [`HostSpec`] (YAML under `testdata/hosts/`) describes a host the way the
//! kernel would show it: hierarchies with their mounts and cgroups, and
//! processes with each thread's placement. [`materialize`] writes the files
//! the scanner reads (`/proc/self/mountinfo`, `/proc/cgroups`,
//! `/proc/PID/task/TID/cgroup`, the cgroupfs trees with their setting files),
//! so tests, benchmarks and users exercise the same code path as a live scan.
//!
//! Setting files a spec doesn't mention get the value a fresh kernel shows,
//! taken from the rules' `default` (one owner for "what is default").

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::model::path as cgpath;
use crate::rules::RuleSet;

/// A fixture that could not be read or written.
#[derive(Debug, Error)]
pub enum FixtureError {
    /// Reading the spec or writing the tree failed.
    ///
    /// The OS error is part of the message and not a `source()`, so an
    /// error chain says it once.
    #[error("{path}: {err}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        err: std::io::Error,
    },
    /// The spec is not valid YAML for a host (the parser's message, with
    /// line and column, is part of the text and not a `source()`).
    #[error("{path}: {err}")]
    Spec {
        /// The spec file.
        path: PathBuf,
        /// What is wrong.
        err: serde_yaml_ng::Error,
    },
    /// A delegated cgroup's owner can only be set by root.
    #[error("{path}: owner uid {uid} needs root to chown: build fixture hosts with owners as root")]
    NeedsRoot {
        /// The file or directory to chown.
        path: PathBuf,
        /// The owner the spec asks for.
        uid: u32,
    },
}

/// One mount of a hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MountSpec {
    /// Mount point.
    pub point: String,
    /// Root of the mount within the hierarchy.
    #[serde(default = "slash")]
    pub root: String,
    /// Mount source (`cgroup`, `none`, ...).
    #[serde(default = "cgroup_src")]
    pub source: String,
    /// Extra super options (`xattr`, `nsdelegate`, `release_agent=...`).
    #[serde(default)]
    pub options: Vec<String>,
}

fn slash() -> String {
    "/".into()
}
fn cgroup_src() -> String {
    "cgroup".into()
}

/// Owner of a cgroup directory and its membership files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnerSpec {
    /// uid.
    pub uid: u32,
    /// gid.
    pub gid: u32,
}

/// One cgroup.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CgroupSpec {
    /// Non-default setting values.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// Owner (directory, `cgroup.procs`, `tasks`/`cgroup.threads`).
    #[serde(default)]
    pub owner: Option<OwnerSpec>,
}

/// One hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HierarchySpec {
    /// Hierarchy id (0 for cgroup2).
    pub id: u32,
    /// Controllers, in the order the kernel prints them.
    #[serde(default)]
    pub controllers: Vec<String>,
    /// `name=` of a named hierarchy.
    #[serde(default)]
    pub name: Option<String>,
    /// Mounts; empty for a hierarchy alive but mounted nowhere.
    #[serde(default)]
    pub mounts: Vec<MountSpec>,
    /// Cgroups by full hierarchy path; `/` is implied.
    #[serde(default)]
    pub cgroups: BTreeMap<String, CgroupSpec>,
}

/// One thread whose placement differs from its process's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThreadSpec {
    /// Thread id.
    pub tid: u32,
    /// Thread name.
    #[serde(default)]
    pub comm: Option<String>,
    /// Placement overrides: hierarchy id → path.
    #[serde(default)]
    pub cgroups: BTreeMap<u32, String>,
}

/// One process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessSpec {
    /// PID.
    pub pid: u32,
    /// `comm`.
    pub comm: String,
    /// `cmdline`; empty for a kernel thread.
    #[serde(default)]
    pub cmdline: Vec<String>,
    /// Real uid.
    #[serde(default)]
    pub uid: u32,
    /// Placement: hierarchy id → path. Hierarchies not listed: `everywhere`.
    #[serde(default)]
    pub cgroups: BTreeMap<u32, String>,
    /// Placement in every hierarchy not in `cgroups` (default `/`).
    #[serde(default)]
    pub everywhere: Option<String>,
    /// Open files (fd targets), e.g. a v1 `cgroup.event_control` listener.
    #[serde(default)]
    pub open_files: Vec<String>,
    /// Extra threads (the main thread, tid = pid, is implied).
    #[serde(default)]
    pub threads: Vec<ThreadSpec>,
}

/// A `/proc/cgroups` line for a controller not bound to any listed hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControllerSpec {
    /// Controller name.
    pub name: String,
    /// Enabled flag.
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// A whole host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    /// What this host stands for, and its sources.
    pub description: String,
    /// Kernel release.
    pub kernel: String,
    /// Boot command line.
    #[serde(default)]
    pub cmdline: String,
    /// Hostname.
    #[serde(default = "default_hostname")]
    pub hostname: String,
    /// Hierarchies.
    pub hierarchies: Vec<HierarchySpec>,
    /// Controllers compiled in but bound to no hierarchy (`/proc/cgroups` hierarchy 0).
    #[serde(default)]
    pub unbound_controllers: Vec<ControllerSpec>,
    /// Values for settings at hierarchy roots (e.g. `cpuset.cpus: 0-3`).
    #[serde(default)]
    pub root_settings: BTreeMap<String, String>,
    /// Processes.
    #[serde(default)]
    pub processes: Vec<ProcessSpec>,
    /// Other files of the host by absolute path (configuration, JDK `release`
    /// files, image layers under `/var/lib/docker/...`), written verbatim.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, String>,
    /// Block devices: `/sys/block/NAME/dev` and `queue/scheduler` (the
    /// scheduler line as the kernel prints it, `mq-deadline [bfq] none`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub block_devices: Vec<BlockDeviceSpec>,
}

/// One block device of a fixture host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockDeviceSpec {
    /// Kernel name (`sda`).
    pub name: String,
    /// `MAJ:MIN`.
    pub dev: String,
    /// The `queue/scheduler` line.
    pub scheduler: String,
}

fn default_hostname() -> String {
    "fixture".into()
}

impl HostSpec {
    /// Read a spec from a YAML file.
    pub fn load(path: &Path) -> Result<HostSpec, FixtureError> {
        let text = fs::read_to_string(path).map_err(|source| FixtureError::Io {
            path: path.to_path_buf(),
            err: source,
        })?;
        serde_yaml_ng::from_str(&text).map_err(|err| FixtureError::Spec {
            path: path.to_path_buf(),
            err,
        })
    }
}

/// Interface files every v1 cgroup has, with the settings each controller
/// owns (their default content comes from the rules).
fn v1_setting_files(controller: &str) -> &'static [&'static str] {
    match controller {
        "cpu" => &[
            "cpu.shares",
            "cpu.cfs_quota_us",
            "cpu.cfs_period_us",
            "cpu.rt_runtime_us",
            "cpu.rt_period_us",
        ],
        "cpuset" => &[
            "cpuset.cpus",
            "cpuset.mems",
            "cpuset.cpu_exclusive",
            "cpuset.mem_exclusive",
            "cpuset.memory_migrate",
            "cpuset.sched_load_balance",
        ],
        "memory" => &[
            "memory.limit_in_bytes",
            "memory.soft_limit_in_bytes",
            "memory.memsw.limit_in_bytes",
            "memory.kmem.limit_in_bytes",
            "memory.swappiness",
            "memory.oom_control",
            "memory.use_hierarchy",
            "memory.move_charge_at_immigrate",
        ],
        "devices" => &["devices.list"],
        "freezer" => &["freezer.state"],
        "net_cls" => &["net_cls.classid"],
        "net_prio" => &["net_prio.ifpriomap"],
        "blkio" => &[
            "blkio.weight",
            "blkio.weight_device",
            "blkio.throttle.read_bps_device",
            "blkio.throttle.write_bps_device",
            "blkio.throttle.read_iops_device",
            "blkio.throttle.write_iops_device",
        ],
        "pids" => &["pids.max"],
        "hugetlb" => &["hugetlb.2MB.limit_in_bytes"],
        _ => &[],
    }
}

/// Statistics files written too, so the scanner proves it skips them.
fn v1_stat_files(controller: &str) -> &'static [&'static str] {
    match controller {
        "cpu" => &["cpu.stat"],
        "cpuacct" => &["cpuacct.usage", "cpuacct.stat"],
        "memory" => &["memory.usage_in_bytes", "memory.stat"],
        "pids" => &["pids.current"],
        _ => &[],
    }
}

/// Direct members of each (hierarchy id, path): pids and tids.
type Members = BTreeMap<(u32, String), (Vec<u32>, Vec<u32>)>;

struct Writer {
    root: PathBuf,
}

impl Writer {
    fn path(&self, abs: &str) -> PathBuf {
        self.root.join(abs.trim_start_matches('/'))
    }
    fn mkdir(&self, abs: &str) -> Result<PathBuf, FixtureError> {
        let p = self.path(abs);
        fs::create_dir_all(&p).map_err(|source| FixtureError::Io {
            path: p.clone(),
            err: source,
        })?;
        Ok(p)
    }
    fn write(&self, p: &Path, content: &str) -> Result<(), FixtureError> {
        let mut f = fs::File::create(p).map_err(|source| FixtureError::Io {
            path: p.to_path_buf(),
            err: source,
        })?;
        f.write_all(content.as_bytes())
            .map_err(|source| FixtureError::Io {
                path: p.to_path_buf(),
                err: source,
            })
    }
    fn file(&self, abs: &str, content: &str) -> Result<(), FixtureError> {
        let p = self.path(abs);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).map_err(|source| FixtureError::Io {
                path: parent.to_path_buf(),
                err: source,
            })?;
        }
        self.write(&p, content)
    }
}

fn escape_mount_field(s: &str) -> String {
    s.replace('\\', "\\134")
        .replace(' ', "\\040")
        .replace('\t', "\\011")
        .replace('\n', "\\012")
}

/// Write the host into `dir` (which must exist and be empty or absent):
/// host files, the mount table, `/proc/cgroups`, every process and thread,
/// then each hierarchy's cgroup tree with its members.
pub fn materialize(spec: &HostSpec, dir: &Path, rules: &RuleSet) -> Result<(), FixtureError> {
    let w = Writer {
        root: dir.to_path_buf(),
    };
    w.file("/proc/sys/kernel/osrelease", &format!("{}\n", spec.kernel))?;
    w.file("/proc/sys/kernel/hostname", &format!("{}\n", spec.hostname))?;
    w.file("/proc/cmdline", &format!("{}\n", spec.cmdline))?;
    for (path, content) in &spec.files {
        w.file(path, content)?;
    }
    for d in &spec.block_devices {
        w.file(&format!("/sys/block/{}/dev", d.name), &format!("{}\n", d.dev))?;
        w.file(
            &format!("/sys/block/{}/queue/scheduler", d.name),
            &format!("{}\n", d.scheduler),
        )?;
    }
    w.file("/proc/self/mountinfo", &mountinfo(spec))?;
    w.file("/proc/cgroups", &proc_cgroups(spec))?;
    // Membership per (hierarchy, path): pids and tids.
    let mut members: Members = BTreeMap::new();
    for p in &spec.processes {
        write_process(&w, spec, p, &mut members)?;
    }
    // cgroupfs trees, under the first mount of each hierarchy (others are
    // further views of the same tree; they are written too when their root is
    // inside, so a fixture can show bind mounts).
    for h in &spec.hierarchies {
        for m in &h.mounts {
            write_tree(&w, spec, h, m, &members, rules)?;
        }
    }
    Ok(())
}

/// `/proc/self/mountinfo`: a root, /proc, /sys, a tmpfs at /sys/fs/cgroup
/// unless cgroup2 is there, then every hierarchy's mounts.
fn mountinfo(spec: &HostSpec) -> String {
    let mut mi = String::new();
    mi.push_str("20 1 0:2 / / rw,relatime - ext4 /dev/vda rw\n");
    mi.push_str("21 20 0:4 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n");
    mi.push_str("22 20 0:20 / /sys rw,nosuid,nodev,noexec,relatime - sysfs sysfs rw\n");
    let v2_at_top = spec
        .hierarchies
        .iter()
        .any(|h| h.id == 0 && h.mounts.iter().any(|m| m.point == "/sys/fs/cgroup"));
    if !v2_at_top {
        mi.push_str("23 22 0:25 / /sys/fs/cgroup ro,nosuid,nodev,noexec - tmpfs tmpfs ro,mode=755\n");
    }
    let mut mnt_id = 30;
    for h in &spec.hierarchies {
        let majmin = format!("0:{}", 100 + h.id);
        for m in &h.mounts {
            let (fstype, opts) = if h.id == 0 {
                let mut o = vec!["rw".to_string()];
                o.extend(m.options.iter().cloned());
                ("cgroup2", o.join(","))
            } else {
                let mut o = vec!["rw".to_string()];
                o.extend(h.controllers.iter().cloned());
                o.extend(m.options.iter().cloned());
                if let Some(n) = &h.name {
                    o.push(format!("name={n}"));
                }
                ("cgroup", o.join(","))
            };
            mi.push_str(&format!(
                "{mnt_id} 23 {majmin} {} {} rw,nosuid,nodev,noexec,relatime shared:{mnt_id} - {fstype} {} {opts}\n",
                escape_mount_field(&m.root),
                escape_mount_field(&m.point),
                escape_mount_field(&m.source),
            ));
            mnt_id += 1;
        }
    }
    mi
}

/// `/proc/cgroups`: v1 controllers with their hierarchy, v2 ones with 0.
fn proc_cgroups(spec: &HostSpec) -> String {
    let mut pc = String::from("#subsys_name\thierarchy\tnum_cgroups\tenabled\n");
    for h in spec.hierarchies.iter().filter(|h| h.id != 0) {
        let n = 1 + h.cgroups.keys().filter(|k| k.as_str() != "/").count();
        for c in &h.controllers {
            pc.push_str(&format!("{c}\t{}\t{n}\t1\n", h.id));
        }
    }
    // Controllers on the v2 hierarchy show hierarchy 0 (`io` is `blkio` there).
    for h in spec.hierarchies.iter().filter(|h| h.id == 0) {
        for c in &h.controllers {
            let name = if c == "io" { "blkio" } else { c.as_str() };
            pc.push_str(&format!("{name}\t0\t1\t1\n"));
        }
    }
    for c in &spec.unbound_controllers {
        pc.push_str(&format!("{}\t0\t1\t{}\n", c.name, u8::from(c.enabled)));
    }
    pc
}

/// Where a thread sits in a hierarchy: its own placement, its process's,
/// the process's `everywhere`, or the root.
fn placement(p: &ProcessSpec, t: Option<&ThreadSpec>, h: &HierarchySpec) -> String {
    t.and_then(|t| t.cgroups.get(&h.id))
        .or_else(|| p.cgroups.get(&h.id))
        .or(p.everywhere.as_ref())
        .cloned()
        .unwrap_or_else(|| "/".into())
}

/// One process's `/proc/PID` files and its threads', recording where each
/// task is a member.
fn write_process(
    w: &Writer,
    spec: &HostSpec,
    p: &ProcessSpec,
    members: &mut Members,
) -> Result<(), FixtureError> {
    let main = ThreadSpec {
        tid: p.pid,
        comm: None,
        cgroups: BTreeMap::new(),
    };
    let threads: Vec<&ThreadSpec> = std::iter::once(&main).chain(p.threads.iter()).collect();
    for t in &threads {
        let tdir = format!("/proc/{}/task/{}", p.pid, t.tid);
        let mut lines = String::new();
        let mut hs: Vec<&HierarchySpec> = spec.hierarchies.iter().collect();
        hs.sort_by_key(|h| std::cmp::Reverse(h.id));
        for h in hs {
            let path = placement(p, Some(t), h);
            let ctl = if h.id == 0 {
                String::new()
            } else {
                let mut c = h.controllers.clone();
                if let Some(n) = &h.name {
                    c.push(format!("name={n}"));
                }
                c.join(",")
            };
            lines.push_str(&format!("{}:{ctl}:{path}\n", h.id));
            let e = members.entry((h.id, path)).or_default();
            if t.tid == p.pid {
                e.0.push(p.pid);
            }
            e.1.push(t.tid);
        }
        w.file(&format!("{tdir}/cgroup"), &lines)?;
        w.file(
            &format!("{tdir}/comm"),
            &format!("{}\n", t.comm.as_deref().unwrap_or(&p.comm)),
        )?;
    }
    let pdir = format!("/proc/{}", p.pid);
    w.file(&format!("{pdir}/comm"), &format!("{}\n", p.comm))?;
    let mut cmd = p.cmdline.join("\0");
    if !cmd.is_empty() {
        cmd.push('\0');
    }
    w.file(&format!("{pdir}/cmdline"), &cmd)?;
    if !p.open_files.is_empty() {
        w.file(
            &format!("{pdir}/fds"),
            &p.open_files.iter().map(|f| format!("{f}\n")).collect::<String>(),
        )?;
    }
    w.file(
        &format!("{pdir}/status"),
        &format!(
            "Name:\t{}\nTgid:\t{}\nPid:\t{}\nUid:\t{u}\t{u}\t{u}\t{u}\nGid:\t{u}\t{u}\t{u}\t{u}\nThreads:\t{}\n",
            p.comm,
            p.pid,
            p.pid,
            threads.len(),
            u = p.uid
        ),
    )?;
    Ok(())
}

/// One hierarchy's cgroup tree as seen through mount `m`: every cgroup of
/// the spec and every ancestor of a member, parents first, each with its
/// core files, its settings (spec, else the rules' defaults) and its owner.
fn write_tree(
    w: &Writer,
    spec: &HostSpec,
    h: &HierarchySpec,
    m: &MountSpec,
    members: &Members,
    rules: &RuleSet,
) -> Result<(), FixtureError> {
    let controllers: Vec<crate::model::Controller> = h
        .controllers
        .iter()
        .map(|c| c.parse().unwrap_or_else(|e| match e {}))
        .collect();
    let tree = Tree {
        w,
        spec,
        h,
        m,
        rules,
        controllers,
    };
    let mut values: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for path in tree_paths(h, members) {
        // Only cgroups at or below the mount root are visible through this mount.
        let Some(rel) = visible_path(m, &path) else {
            continue;
        };
        let dir_abs = if rel == "/" {
            m.point.clone()
        } else {
            format!("{}{}", m.point.trim_end_matches('/'), rel)
        };
        let dir = w.mkdir(&dir_abs)?;
        let (pids, tids) = members.get(&(h.id, path.clone())).cloned().unwrap_or_default();
        if h.id == 0 {
            tree.v2_core_files(&dir, &path, &pids, &tids)?;
        } else {
            tree.v1_core_files(&dir, &path, &pids, &tids)?;
        }
        let parent_vals = cgpath::parent(&path)
            .and_then(|p| values.get(p))
            .cloned()
            .unwrap_or_default();
        let mut mine = if h.id == 0 {
            BTreeMap::new()
        } else {
            tree.v1_defaults(&dir, &path, &parent_vals)?
        };
        let spec_cg = h.cgroups.get(&path).cloned().unwrap_or_default();
        for (k, v) in &spec_cg.settings {
            mine.insert(k.clone(), v.clone());
        }
        for (k, v) in &mine {
            w.write(&dir.join(k), &format!("{v}\n"))?;
        }
        values.insert(path.clone(), mine);
        if let Some(o) = spec_cg.owner {
            chown_delegated(&dir, h, o.uid, o.gid)?;
        }
    }
    Ok(())
}

/// What writing one hierarchy's tree needs.
struct Tree<'a> {
    w: &'a Writer,
    spec: &'a HostSpec,
    h: &'a HierarchySpec,
    m: &'a MountSpec,
    rules: &'a RuleSet,
    controllers: Vec<crate::model::Controller>,
}

impl Tree<'_> {
    fn v2_core_files(&self, dir: &Path, path: &str, pids: &[u32], tids: &[u32]) -> Result<(), FixtureError> {
        let w = self.w;
        w.write(&dir.join("cgroup.procs"), &id_list(pids))?;
        // Thread mode (cgroup.threads, cgroup.type) came with Linux 4.14.
        let threads = crate::rules::parse_kernel(&self.spec.kernel).is_none_or(|k| k >= (4, 14));
        if threads {
            w.write(&dir.join("cgroup.threads"), &id_list(tids))?;
        }
        w.write(&dir.join("cgroup.subtree_control"), "")?;
        if path == "/" {
            w.write(
                &dir.join("cgroup.controllers"),
                &format!("{}\n", self.h.controllers.join(" ")),
            )?;
        } else if threads {
            w.write(&dir.join("cgroup.type"), "domain\n")?;
        }
        w.write(
            &dir.join("cgroup.stat"),
            "nr_descendants 0\nnr_dying_descendants 0\n",
        )
    }

    fn v1_core_files(&self, dir: &Path, path: &str, pids: &[u32], tids: &[u32]) -> Result<(), FixtureError> {
        let w = self.w;
        w.write(&dir.join("cgroup.procs"), &id_list(pids))?;
        w.write(&dir.join("tasks"), &id_list(tids))?;
        w.write(&dir.join("notify_on_release"), "0\n")?;
        w.write(&dir.join("cgroup.clone_children"), "0\n")?;
        if path == "/" {
            let agent = self
                .m
                .options
                .iter()
                .find_map(|o| o.strip_prefix("release_agent="))
                .unwrap_or("");
            w.write(&dir.join("release_agent"), &format!("{agent}\n"))?;
            w.write(&dir.join("cgroup.sane_behavior"), "0\n")?;
        }
        Ok(())
    }

    /// Every v1 setting file of the hierarchy's controllers with its value
    /// (the spec's root setting, else the rule's default, inherited from
    /// the parent where the rule says so); the stat files are written as 0.
    fn v1_defaults(
        &self,
        dir: &Path,
        path: &str,
        parent_vals: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, FixtureError> {
        let is_root = path == "/";
        let mut mine = BTreeMap::new();
        for c in &self.h.controllers {
            for f in v1_setting_files(c) {
                let v = if is_root {
                    self.spec.root_settings.get(*f).cloned()
                } else {
                    None
                }
                .or_else(|| self.rule_default(f, parent_vals))
                .unwrap_or_default();
                mine.insert(f.to_string(), v);
            }
            for f in v1_stat_files(c) {
                self.w.write(&dir.join(f), "0\n")?;
            }
        }
        Ok(mine)
    }

    /// The default the rules give file `f`: inherited from the parent, or
    /// from the host's root when the parent is outside this mount, for a
    /// `parent: true` default; the rule's example otherwise.
    fn rule_default(&self, f: &str, parent_vals: &BTreeMap<String, String>) -> Option<String> {
        let rule = self
            .rules
            .file_rules(f, &self.controllers)
            .find(|(r, _)| r.rule.default.is_some());
        match rule {
            Some((r, _)) if matches!(&r.rule.default, Some(crate::rules::DefaultSpec::Spec(d)) if d.parent) => {
                parent_vals
                    .get(f)
                    .or_else(|| self.spec.root_settings.get(f))
                    .cloned()
                    .or_else(|| r.example_default())
            }
            Some((r, _)) => r.example_default(),
            None => None,
        }
    }
}

/// One id per line, as `cgroup.procs`, `tasks` and `cgroup.threads` list them.
fn id_list(v: &[u32]) -> String {
    v.iter().map(|x| format!("{x}\n")).collect()
}

/// Every cgroup of the hierarchy's spec and every ancestor of one, plus
/// every ancestor of a cgroup that has members, sorted (parents first).
fn tree_paths(h: &HierarchySpec, members: &Members) -> Vec<String> {
    let mut all: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    all.insert("/".into());
    let member_paths = members
        .keys()
        .filter(|(hid, _)| *hid == h.id)
        .map(|(_, path)| path);
    for p in h.cgroups.keys().chain(member_paths) {
        let mut cur = Some(p.as_str());
        while let Some(c) = cur {
            all.insert(c.to_string());
            cur = cgpath::parent(c);
        }
    }
    all.into_iter().collect()
}

/// A cgroup's path below mount `m`'s root (`None`: outside this mount).
fn visible_path(m: &MountSpec, path: &str) -> Option<String> {
    let root = m.root.trim_end_matches('/');
    if m.root == "/" {
        Some(path.to_string())
    } else if path == m.root {
        Some("/".to_string())
    } else {
        path.strip_prefix(&format!("{root}/")).map(|r| format!("/{r}"))
    }
}

/// A delegated cgroup: its directory, `cgroup.procs` and its membership
/// file belong to the owner.
fn chown_delegated(dir: &Path, h: &HierarchySpec, uid: u32, gid: u32) -> Result<(), FixtureError> {
    let membership = if h.id == 0 { "cgroup.threads" } else { "tasks" };
    for p in [dir.to_path_buf(), dir.join("cgroup.procs"), dir.join(membership)] {
        std::os::unix::fs::chown(&p, Some(uid), Some(gid)).map_err(|source| {
            if source.kind() == std::io::ErrorKind::PermissionDenied {
                FixtureError::NeedsRoot { path: p.clone(), uid }
            } else {
                FixtureError::Io {
                    path: p.clone(),
                    err: source,
                }
            }
        })?;
    }
    Ok(())
}
