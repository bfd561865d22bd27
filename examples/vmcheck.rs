//! A test helper for the VM tests (built static, placed in the guest's
//! initramfs): reads a plan with cgmig's own types, so the guest's shell
//! scripts need no JSON parser.
//!
//! * `vmcheck nodes PLAN`: one line per node, `PATH<TAB>TYPE<TAB>CONTROLLERS`
//!   (the controllers to enable in its `cgroup.subtree_control`, space
//!   separated), parents before children.
//! * `vmcheck settings PLAN`: one line per converted setting,
//!   `PATH<TAB>FILE<TAB>VALUE`, parents before children.
//! * `vmcheck stages PLAN`: one line per stage,
//!   `NUMBER<TAB>CONTROLLERS<TAB>CMDLINE` (controllers comma separated: all
//!   those on v2 once the stage is done).
//! * `vmcheck find PLAN LABEL V1PATH`: the v2 path of the node that v1 cgroup
//!   `V1PATH` of the hierarchy holding controller (or name) `LABEL` became.
//! * `vmcheck weight FORMULA SHARES`: cpu.shares → cpu.weight by one formula
//!   (`oci`, `oci-legacy`, `systemd`), as the rules compute it.
//!
//! * `vmcheck stage SNAP PLAN N MOUNT`: after `cgmig apply --stage N` (N = 0: the
//!   whole plan), one `CHECK` line (the format of scripts/vm/lib.sh) per
//!   promise of that stage's plan, read from the cgroup2 tree at MOUNT: every
//!   node exists with its type, its `cgroup.subtree_control`, its settings (by
//!   meaning, as the applier verifies them), its owner, its processes and
//!   threads (those still alive; root's are not moved).
//! * `vmcheck v1 SNAP PLAN N`: the v1 hierarchies of snapshot SNAP whose
//!   controllers stage N has not handed over (N = 0: all of them) are as the
//!   snapshot saw them: every cgroup, its settings and its tasks (those still
//!   alive), at the snapshot's mount point. Used after each stage and after
//!   the rollback.
//!
//! After a reboot PIDs change: the planned processes and threads are found
//! again by what the snapshot knew of them (uid, comm, command line; a
//! thread by its comm), the way a plan's stable keys match them.
//!
//! Exit status 2 with a message on bad input, 1 when nothing matched.

use std::process::ExitCode;

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use cgmig::apply::normalize::same;
use cgmig::model::{Node, Snapshot, Version};
use cgmig::plan::{Plan, PlanNode};
use cgmig::rules::convert::{SharesFormula, shares_to_weight};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = match a.as_slice() {
        ["nodes", plan] => load(plan).map(|p| nodes(&p)),
        ["settings", plan] => load(plan).map(|p| settings(&p)),
        ["stages", plan] => load(plan).map(|p| stages(&p)),
        ["find", plan, label, path] => load(plan).map(|p| find(&p, label, path)),
        ["weight", formula, shares] => weight(formula, shares),
        ["stage", snap, plan, n, mount] => load(plan).and_then(|p| stage(snap, &p, n, mount)),
        ["v1", snap, plan, n] => load(plan).and_then(|p| v1(snap, &p, n)),
        _ => Err("usage: vmcheck nodes|settings PLAN | find PLAN LABEL V1PATH | weight FORMULA SHARES | stage PLAN N MOUNT | v1 SNAP PLAN N".into()),
    };
    match r {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("vmcheck: {e}");
            ExitCode::from(2)
        }
    }
}

fn load(path: &str) -> Result<Plan, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))
}

/// The plan's nodes, parents first (fewer slashes, the root before all).
fn by_depth(plan: &Plan) -> Vec<&PlanNode> {
    let mut nodes: Vec<_> = plan.nodes.iter().collect();
    nodes.sort_by_key(|n| (n.path != "/", n.path.matches('/').count()));
    nodes
}

fn nodes(plan: &Plan) -> bool {
    for n in by_depth(plan) {
        let ty = serde_json::to_value(n.node_type).ok();
        let ty = ty.as_ref().and_then(|v| v.as_str()).unwrap_or("?");
        println!("{}\t{ty}\t{}", n.path, n.subtree_control.join(" "));
    }
    true
}

fn stages(plan: &Plan) -> bool {
    for s in &plan.stages {
        println!("{}\t{}\t{}", s.number, s.controllers.join(","), s.cmdline);
    }
    true
}

fn settings(plan: &Plan) -> bool {
    for n in by_depth(plan) {
        for s in &n.settings {
            println!("{}\t{}\t{}", n.path, s.file, s.value);
        }
    }
    true
}

/// Whether a hierarchy label (`cpu,cpuacct`, `name=systemd`) names `want`.
fn label_has(label: &str, want: &str) -> bool {
    label
        .split(',')
        .any(|c| c == want || c.strip_prefix("name=") == Some(want))
}

fn find(plan: &Plan, label: &str, path: &str) -> bool {
    let hit = plan.nodes.iter().find(|n| {
        n.origins
            .iter()
            .any(|o| o.path == path && label_has(&o.label, label))
    });
    if let Some(n) = hit {
        println!("{}", n.path);
    }
    hit.is_some()
}

fn weight(formula: &str, shares: &str) -> Result<bool, String> {
    let f = match formula {
        "oci" => SharesFormula::Oci,
        "oci-legacy" => SharesFormula::OciLegacy,
        "systemd" => SharesFormula::Systemd,
        other => return Err(format!("unknown formula {other}")),
    };
    let s: u64 = shares.parse().map_err(|_| format!("bad shares {shares}"))?;
    match shares_to_weight(s, f) {
        Some(w) => println!("{w}"),
        None => println!("unset"),
    }
    Ok(true)
}

/// One named check, in the line format the host test parses (a multi-line
/// value, like `devices.list`, is shown on one line joined by ` | `).
fn check(name: &str, expected: &str, actual: &str, ok: bool) {
    let mark = if ok { "ok" } else { "FAIL" };
    let one = |s: &str| s.lines().collect::<Vec<_>>().join(" | ");
    println!("CHECK\t{name}\t{}\t{}\t{mark}", one(expected), one(actual));
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).map_or_else(|e| format!("<{e}>"), |s| s.trim().to_string())
}

fn ids(text: &str) -> BTreeSet<u32> {
    text.split_whitespace().filter_map(|w| w.parse().ok()).collect()
}

fn show(set: &BTreeSet<u32>) -> String {
    let v: Vec<String> = set.iter().map(u32::to_string).collect();
    format!("[{}]", v.join(" "))
}

fn stage_number(n: &str) -> Result<usize, String> {
    n.parse().map_err(|_| format!("bad stage number {n}"))
}

/// The plan a stage promised (`0`: the whole plan).
fn scoped(plan: &Plan, n: usize) -> Result<Plan, String> {
    if n == 0 {
        return Ok(plan.clone());
    }
    let (rules, _) = cgmig::rules::RuleSet::load(&[]);
    plan.for_stage(n, &rules.policy().leaf_name)
        .ok_or_else(|| format!("the plan has no stage {n}"))
}

fn load_snap(path: &str) -> Result<Snapshot, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))
}

fn stage(snap: &str, plan: &Plan, n: &str, mount: &str) -> Result<bool, String> {
    let n = stage_number(n)?;
    let p = scoped(plan, n)?;
    let remap = Remap::new(&load_snap(snap)?);
    for node in &p.nodes {
        node_checks(node, Path::new(mount), &remap);
    }
    Ok(true)
}

/// Snapshot task ids → this boot's task ids (identity while the same
/// process still runs under its PID).
struct Remap {
    tasks: std::collections::BTreeMap<u32, u32>,
}

fn proc_text(pid: u32, file: &str) -> Option<String> {
    std::fs::read(format!("/proc/{pid}/{file}")).ok().map(|b| {
        String::from_utf8_lossy(&b)
            .trim_end_matches(['\n', '\0'])
            .to_string()
    })
}

/// What identifies a process across boots: (uid, comm, cmdline).
type Identity = (u32, String, Vec<String>);

/// The identity of a live process.
fn identity(pid: u32) -> Option<Identity> {
    let comm = proc_text(pid, "comm")?;
    let cmd = proc_text(pid, "cmdline")?;
    let cmdline = cmd
        .split('\0')
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect();
    let uid = std::fs::metadata(format!("/proc/{pid}")).ok()?.uid();
    Some((uid, comm, cmdline))
}

fn live_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

impl Remap {
    fn new(snap: &Snapshot) -> Remap {
        let live: Vec<(u32, Identity)> = live_pids()
            .into_iter()
            .filter_map(|p| Some((p, identity(p)?)))
            .collect();
        let mut tasks = std::collections::BTreeMap::new();
        for (pi, p) in snap.processes() {
            let key = (p.uid, p.comm.clone(), p.cmdline.clone());
            let new = if identity(p.pid.get()).as_ref() == Some(&key) {
                Some(p.pid.get())
            } else {
                let hits: Vec<u32> = live.iter().filter(|(_, k)| *k == key).map(|(n, _)| *n).collect();
                (hits.len() == 1).then(|| hits[0])
            };
            let Some(new) = new else { continue };
            tasks.insert(p.pid.get(), new);
            for (_, t) in snap.threads(pi) {
                if t.tid == p.pid.main_thread() {
                    continue;
                }
                let same =
                    proc_text(new, &format!("task/{}/comm", t.tid)).as_deref() == Some(t.comm.as_str());
                let found = if same {
                    Some(t.tid.get())
                } else {
                    let hits: Vec<u32> = std::fs::read_dir(format!("/proc/{new}/task"))
                        .map(|rd| {
                            rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                                .filter(|tid: &u32| {
                                    proc_text(new, &format!("task/{tid}/comm")).as_deref()
                                        == Some(t.comm.as_str())
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    (hits.len() == 1).then(|| hits[0])
                };
                if let Some(f) = found {
                    tasks.insert(t.tid.get(), f);
                }
            }
        }
        Remap { tasks }
    }

    /// The task's id in this boot, if it runs.
    fn get(&self, id: u32) -> Option<u32> {
        self.tasks.get(&id).copied()
    }
}

/// Check names are `v2:PATH.WHAT`; the scenario prefixes its stage or boot.
fn node_checks(node: &PlanNode, mount: &Path, remap: &Remap) {
    let dir = mount.join(node.path.trim_start_matches('/'));
    let at = |what: &str| format!("v2:{}.{what}", node.path);
    let exists = dir.is_dir();
    check(&at("exists"), "true", &exists.to_string(), exists);
    if !exists {
        return;
    }
    if node.path != "/" {
        let want = serde_json::to_value(node.node_type).ok();
        let want = want
            .as_ref()
            .and_then(|v| v.as_str())
            .unwrap_or("?")
            .replace('-', " ");
        let got = read(&dir.join("cgroup.type"));
        check(&at("cgroup.type"), &want, &got, want == got);
    }
    let want: BTreeSet<&str> = node.subtree_control.iter().map(String::as_str).collect();
    let text = read(&dir.join("cgroup.subtree_control"));
    let got: BTreeSet<&str> = text.split_whitespace().collect();
    let w: Vec<&str> = want.iter().copied().collect();
    check(&at("cgroup.subtree_control"), &w.join(" "), &text, want == got);
    for s in &node.settings {
        let got = read(&dir.join(&s.file));
        check(&at(&s.file), &s.value, &got, same(&s.file, &s.value, &got));
    }
    if let Some(o) = node.owner {
        let uid = std::fs::metadata(&dir).map_or(u32::MAX, |m| m.uid());
        check(&at("owner"), &o.uid.to_string(), &uid.to_string(), uid == o.uid);
    }
    if node.path != "/" {
        members(
            &at("processes"),
            &node.processes.iter().map(|p| p.get()).collect::<Vec<u32>>(),
            &read(&dir.join("cgroup.procs")),
            remap,
        );
        let tids: Vec<u32> = node.threads.iter().map(|t| t.tid.get()).collect();
        members(&at("threads"), &tids, &read(&dir.join("cgroup.threads")), remap);
    }
}

/// The planned tasks that run in this boot are all there.
fn members(name: &str, planned: &[u32], live: &str, remap: &Remap) {
    let want: BTreeSet<u32> = planned.iter().filter_map(|p| remap.get(*p)).collect();
    if want.is_empty() {
        return;
    }
    let got: BTreeSet<u32> = ids(live).intersection(&want).copied().collect();
    check(name, &show(&want), &show(&got), want == got);
}

fn v1(snap: &str, plan: &Plan, n: &str) -> Result<bool, String> {
    let n = stage_number(n)?;
    let snap = load_snap(snap)?;
    let remap = Remap::new(&snap);
    let handed: BTreeSet<String> = match n {
        0 => BTreeSet::new(),
        _ => plan
            .stages
            .iter()
            .find(|s| s.number == n)
            .ok_or_else(|| format!("the plan has no stage {n}"))?
            .controllers
            .iter()
            .cloned()
            .collect(),
    };
    for (hi, h) in snap.hierarchies() {
        if h.version != Version::V1 || h.controllers.iter().any(|c| handed.contains(&c.to_string())) {
            continue;
        }
        let Some(m) = h.scanned_mount.and_then(|i| h.mounts.get(i)) else {
            continue;
        };
        hierarchy_checks(&snap, hi, &h.label(), Path::new(&m.mount_point), &remap);
    }
    Ok(true)
}

/// Every cgroup of one v1 hierarchy: present, same settings, same tasks.
fn hierarchy_checks(
    snap: &Snapshot,
    hi: petgraph::graph::NodeIndex,
    label: &str,
    mount: &Path,
    remap: &Remap,
) {
    let mut todo: Vec<_> = snap.root_cgroup(hi).into_iter().collect();
    while let Some(ci) = todo.pop() {
        todo.extend(snap.children(ci));
        let cg = snap.cgroup(ci);
        let dir = mount.join(cg.path.trim_start_matches('/'));
        let at = |what: &str| format!("v1:{label}:{}.{what}", cg.path);
        let exists = dir.is_dir();
        check(&at("exists"), "true", &exists.to_string(), exists);
        if !exists {
            continue;
        }
        for (file, want) in &cg.settings {
            let got = read(&dir.join(file));
            check(&at(file), want, &got, &got == want);
        }
        owner_checks(cg, &dir, &at);
        if cg.is_root() {
            continue;
        }
        let tids: Vec<u32> = snap
            .members(ci)
            .filter_map(|t| match &snap.graph[t] {
                Node::Thread(t) => Some(t.tid.get()),
                _ => None,
            })
            .collect();
        members(&at("tasks"), &tids, &read(&dir.join("tasks")), remap);
    }
}

/// A delegated v1 cgroup (a user owns the directory or its membership
/// files) keeps its owners: rollback must chown them back.
fn owner_checks(cg: &cgmig::model::Cgroup, dir: &Path, at: &dyn Fn(&str) -> String) {
    if cg.owner.delegate_uid().is_none() {
        return;
    }
    let o = &cg.owner;
    for (what, path, want) in [
        ("owner", dir.to_path_buf(), o.dir),
        ("owner.cgroup.procs", dir.join("cgroup.procs"), o.procs),
        ("owner.tasks", dir.join("tasks"), o.tasks),
    ] {
        let Some(want) = want else { continue };
        let want = format!("{}:{}", want.uid, want.gid);
        let got = std::fs::metadata(&path)
            .map_or_else(|e| format!("<{e}>"), |m| format!("{}:{}", m.uid(), m.gid()));
        check(&at(what), &want, &got, got == want);
    }
}
