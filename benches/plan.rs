//! Benchmark: plan a large synthetic v1 host.
//!
//! `cargo bench --bench plan` builds in-memory snapshots (planning consumes a
//! snapshot; the scan benchmark covers I/O) with 10k, 25k, 50k and 100k
//! cgroups over 6 hierarchies and twice as many threads (5 per process), then
//! times planning (unification with spine search, threaded subtrees, actions),
//! validation and rendering (JSON and the table, streamed into a byte
//! counter as `cgmig plan` streams them to its output). Each size is planned
//! twice, each time in a child process of its own so the peak RSS (`VmHWM`)
//! is that run's alone: by the planner alone (`plan::plan`, line `planner`)
//! and by what `cgmig plan` runs (`assess::plan`, line `command`: the one
//! assessment's findings, waivers and verdict). The peak is also
//! read per phase (building the snapshot, planning, validating and
//! rendering), resetting it between. `CGMIG_BENCH_SIZES=10000,100000`
//! chooses sizes.

use std::collections::BTreeMap;
use std::time::Instant;

use cgmig::model::*;
use petgraph::graph::{DiGraph, NodeIndex};

/// One synthetic hierarchy: id, controllers, name, and how deep its
/// slice/job tree goes (0: root only, 1: slices, 2: slices and jobs).
struct Spec {
    id: u32,
    controllers: &'static [Controller],
    name: Option<&'static str>,
    depth: usize,
}

/// Six hierarchies shaped like a big systemd/container host: name=systemd,
/// cpu,cpuacct and memory carry the full slice/job tree; devices too; pids only
/// the slices (pruned); cpuset is flat.
const SPECS: [Spec; 6] = [
    Spec {
        id: 1,
        controllers: &[],
        name: Some("systemd"),
        depth: 2,
    },
    Spec {
        id: 2,
        controllers: &[Controller::Cpu, Controller::Cpuacct],
        name: None,
        depth: 2,
    },
    Spec {
        id: 3,
        controllers: &[Controller::Memory],
        name: None,
        depth: 2,
    },
    Spec {
        id: 4,
        controllers: &[Controller::Devices],
        name: None,
        depth: 2,
    },
    Spec {
        id: 5,
        controllers: &[Controller::Pids],
        name: None,
        depth: 1,
    },
    Spec {
        id: 6,
        controllers: &[Controller::Cpuset],
        name: None,
        depth: 0,
    },
];

/// Children per slice.
const FANOUT: usize = 100;

/// The graph being built and the cgroups processes join, by hierarchy id.
#[derive(Default)]
struct Host {
    g: DiGraph<Node, Edge>,
    roots: BTreeMap<u32, NodeIndex>,
    slices: BTreeMap<(u32, usize), NodeIndex>,
    leaves: BTreeMap<(u32, usize, usize), NodeIndex>,
}

/// Settings on half the cgroups (cpu.shares, memory limit, pids.max).
fn setting(id: u32, i: usize) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    if i.is_multiple_of(2) {
        match id {
            2 => drop(m.insert("cpu.shares".into(), (512 + i % 4096).to_string())),
            3 => drop(m.insert("memory.limit_in_bytes".into(), ((1 + i % 64) << 28).to_string())),
            5 => drop(m.insert("pids.max".into(), (100 + i % 1000).to_string())),
            _ => {}
        }
    }
    m
}

fn hierarchy_node(spec: &Spec) -> Node {
    let label = if spec.controllers.is_empty() {
        "systemd".to_string()
    } else {
        spec.controllers[0].to_string()
    };
    Node::Hierarchy(Hierarchy {
        id: HierarchyId::new(spec.id),
        version: Version::V1,
        controllers: spec.controllers.to_vec(),
        name: spec.name.map(str::to_string),
        mounts: vec![Mount {
            mount_point: format!("/sys/fs/cgroup/{label}"),
            root: "/".into(),
            source: Some("cgroup".into()),
            options: vec![],
            majmin: format!("0:{}", spec.id),
        }],
        scanned_mount: Some(0),
        release_agent: None,
    })
}

impl Host {
    fn cgroup(
        &mut self,
        parent: NodeIndex,
        id: u32,
        path: String,
        settings: BTreeMap<String, String>,
    ) -> NodeIndex {
        let owner = Ownership::default();
        let c = self.g.add_node(Node::Cgroup(Cgroup {
            hierarchy: HierarchyId::new(id),
            path,
            owner,
            settings,
        }));
        self.g.add_edge(parent, c, Edge::Child);
        c
    }

    /// One hierarchy: its root, `slices` slices and `FANOUT` jobs in each,
    /// as deep as the spec says.
    fn add_hierarchy(&mut self, spec: &Spec, slices: usize) {
        let id = spec.id;
        let h = self.g.add_node(hierarchy_node(spec));
        let root = self.cgroup(h, id, "/".into(), BTreeMap::new());
        self.roots.insert(id, root);
        for s in (0..slices).filter(|_| spec.depth >= 1) {
            let si = self.cgroup(root, id, format!("/s{s}.slice"), setting(id, s));
            self.slices.insert((id, s), si);
            for j in (0..FANOUT).filter(|_| spec.depth >= 2) {
                let path = format!("/s{s}.slice/j{j}.scope");
                let ji = self.cgroup(si, id, path, setting(id, s * FANOUT + j));
                self.leaves.insert((id, s, j), ji);
            }
        }
    }

    /// `threads / 5` processes of 5 threads each, every thread a member of
    /// one cgroup per hierarchy. One process in 50 keeps threads 1-4 in its
    /// slice in cpu: split in a threaded controller (a threaded subtree).
    fn add_processes(&mut self, threads: usize, slices: usize) {
        for p in 0..threads / 5 {
            let pid = 1000 + p as u32 * 5;
            let (s, j) = ((p / FANOUT) % slices.max(1), p % FANOUT);
            let comm = format!("w{p}");
            let cmdline = vec![format!("/bin/w{p}")];
            let process = Process {
                pid: Pid::new(pid),
                comm: comm.clone(),
                cmdline,
                uid: 0,
                gid: 0,
                cgroup_files: vec![],
            };
            let pi = self.g.add_node(Node::Process(process));
            for t in 0..5u32 {
                let thread = Thread {
                    tid: Tid::new(pid + t),
                    comm: comm.clone(),
                    unresolved: vec![],
                };
                let ti = self.g.add_node(Node::Thread(thread));
                self.g.add_edge(pi, ti, Edge::Thread);
                for spec in &SPECS {
                    let target = match spec.depth {
                        2 if spec.id == 2 && p % 50 == 0 && t > 0 => self.slices[&(spec.id, s)],
                        2 => self.leaves[&(spec.id, s, j)],
                        1 => self.slices[&(spec.id, s)],
                        _ => self.roots[&spec.id],
                    };
                    self.g.add_edge(ti, target, Edge::Member);
                }
            }
        }
    }
}

/// The synthetic host: [`SPECS`] with `cgroups` cgroups in all, settings
/// on half of them, and `threads` threads.
fn synthetic(cgroups: usize, threads: usize) -> Snapshot {
    let slices = cgroups / 4 / FANOUT; // systemd, cpu, memory, devices full; pids slices; cpuset root
    let mut host = Host::default();
    for spec in &SPECS {
        host.add_hierarchy(spec, slices);
    }
    host.add_processes(threads, slices);
    Snapshot {
        readiness: Default::default(),
        schema: SNAPSHOT_SCHEMA.into(),
        host: HostInfo {
            kernel: Some("6.1.0".into()),
            cmdline: Some("ro".into()),
            hostname: Some("bench".into()),
            machine_id: None,
            mode: Mode::Legacy,
            controllers: vec![],
            os: Default::default(),
            shows: Default::default(),
        },
        graph: host.g,
        diagnostics: vec![],
        vanished: Vanished::default(),
        owner_evidence: Default::default(),
    }
}

/// A writer that only counts bytes: the render phase streams the plan as
/// `cgmig plan -o` does, without the disk.
#[derive(Default)]
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Stream a plan in one format through a buffer into a counter: its size.
fn render_size(plan: &cgmig::plan::Plan, f: cgmig::plan::PlanFormat) -> usize {
    let mut w = std::io::BufWriter::with_capacity(1 << 16, Counter::default());
    cgmig::plan::render_to(plan, f, &mut w).expect("render");
    w.into_inner().map_err(|_| "flush").expect("flush").0
}

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| l.to_string()))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// CPU time this thread has run, in ns (`/proc/thread-self/schedstat`): on a
/// shared machine it varies less than wall time.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// Reset `VmHWM` to the current RSS (Linux ≥ 4.0), so the next reading is
/// the peak of one phase alone.
fn reset_hwm() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Which entry a child measures: the planner alone (`plan::plan`, the
/// figures since 2026-11) or what `cgmig plan` runs (`assess::plan`: the
/// same plan with the readiness findings, waivers and verdict of the one
/// assessment).
#[derive(Clone, Copy, PartialEq)]
enum Entry {
    Planner,
    Command,
}

fn one(cgroups: usize, entry: Entry) {
    let (rules, _) = cgmig::rules::RuleSet::embedded();
    let t = Instant::now();
    let snap = synthetic(cgroups, cgroups * 2);
    let build = t.elapsed();
    let snap_peak = vm_hwm_kib();
    reset_hwm();
    let n_cg = snap.cgroups().count();
    let n_thr = snap
        .graph
        .node_weights()
        .filter(|n| matches!(n, Node::Thread(_)))
        .count();
    let (t, cpu) = (Instant::now(), cpu_ns());
    let plan = match entry {
        Entry::Planner => cgmig::plan::plan(&snap, &rules),
        Entry::Command => cgmig::assess::plan(
            &snap,
            &rules,
            &cgmig::rules::Waivers::none(),
            &cgmig::plan::StagePolicy::Auto,
        )
        .expect("the automatic stages cannot fail"),
    };
    let plan_t = t.elapsed();
    let plan_cpu = std::time::Duration::from_nanos(cpu_ns() - cpu);
    let plan_peak = vm_hwm_kib();
    reset_hwm();
    let t = Instant::now();
    let v = cgmig::plan::validate(&plan);
    let val_t = t.elapsed();
    assert!(v.is_empty(), "invalid: {:?}", &v[..v.len().min(3)]);
    let val_peak = vm_hwm_kib();
    reset_hwm();
    let t = Instant::now();
    let json_bytes = render_size(&plan, cgmig::plan::PlanFormat::Json);
    let json_t = t.elapsed();
    let t = Instant::now();
    std::hint::black_box(render_size(&plan, cgmig::plan::PlanFormat::Table));
    let table_t = t.elapsed();
    let render_peak = vm_hwm_kib();
    println!(
        "{:<8} cgroups {n_cg:>7}  threads {n_thr:>7}  nodes {:>6}  actions {:>7}  findings {:>6}  build {:>8.2?}  plan {:>8.2?} (cpu {:>8.2?})  validate {:>8.2?}  json {:>8.2?} ({} MB)  table {:>8.2?}  peak RSS {} MiB (snapshot {}, plan {}, validate {}, render {})",
        if entry == Entry::Planner {
            "planner"
        } else {
            "command"
        },
        plan.nodes.len(),
        plan.actions.len(),
        plan.findings.len(),
        build,
        plan_t,
        plan_cpu,
        val_t,
        json_t,
        json_bytes >> 20,
        table_t,
        snap_peak.max(plan_peak).max(val_peak).max(render_peak) >> 10,
        snap_peak >> 10,
        plan_peak >> 10,
        val_peak >> 10,
        render_peak >> 10
    );
}

fn main() {
    // Each size and entry in a child of its own: peak RSS is per process.
    if let Ok(n) = std::env::var("CGMIG_BENCH_ONE") {
        let entry = match std::env::var("CGMIG_BENCH_ENTRY").as_deref() {
            Ok("command") => Entry::Command,
            _ => Entry::Planner,
        };
        one(n.parse().expect("size"), entry);
        return;
    }
    let sizes = std::env::var("CGMIG_BENCH_SIZES").unwrap_or_else(|_| "10000,25000,50000,100000".into());
    let me = std::env::current_exe().expect("exe");
    for s in sizes.split(',') {
        for entry in ["planner", "command"] {
            let st = std::process::Command::new(&me)
                .env("CGMIG_BENCH_ONE", s.trim())
                .env("CGMIG_BENCH_ENTRY", entry)
                .status()
                .expect("child");
            assert!(st.success(), "size {s} ({entry}) failed");
        }
    }
}
