//! Benchmark: plan a large synthetic v1 host.
//!
//! `cargo bench --bench plan` builds in-memory snapshots (planning consumes a
//! snapshot; the scan benchmark covers I/O) with 10k, 25k, 50k and 100k
//! cgroups over 6 hierarchies and twice as many threads (5 per process), then
//! times planning (unification with spine search, threaded subtrees, actions),
//! validation and rendering. Each size runs in a child process so the peak
//! RSS (`VmHWM`) is that size's alone; it is also read per phase (building
//! the snapshot, planning, validating and rendering), resetting it between. `CGMIG_BENCH_SIZES=10000,100000`
//! chooses sizes.

use std::collections::BTreeMap;
use std::time::Instant;

use cgmig::model::*;
use petgraph::graph::{DiGraph, NodeIndex};

/// Six hierarchies shaped like a big systemd/container host: name=systemd,
/// cpu,cpuacct and memory carry the full slice/job tree; devices too; pids only
/// the slices (pruned); cpuset is flat. Settings on half the cgroups; one
/// process in 50 splits its threads in cpu (a threaded subtree).
fn synthetic(cgroups: usize, threads: usize) -> Snapshot {
    let per_h_full = cgroups / 4; // systemd, cpu, memory, devices full; pids slices; cpuset root
    let fanout = 100usize;
    let slices = per_h_full / fanout;
    let mut g: DiGraph<Node, Edge> = DiGraph::new();
    let specs: [(u32, &[Controller], Option<&str>, usize); 6] = [
        (1, &[], Some("systemd"), 2),
        (2, &[Controller::Cpu, Controller::Cpuacct], None, 2),
        (3, &[Controller::Memory], None, 2),
        (4, &[Controller::Devices], None, 2),
        (5, &[Controller::Pids], None, 1),
        (6, &[Controller::Cpuset], None, 0),
    ];
    let mut leaf: BTreeMap<(u32, usize, usize), NodeIndex> = BTreeMap::new();
    let mut slice_ix: BTreeMap<(u32, usize), NodeIndex> = BTreeMap::new();
    let mut roots = BTreeMap::new();
    for (id, ctl, name, depth) in specs {
        let label = if ctl.is_empty() {
            "systemd".to_string()
        } else {
            ctl[0].to_string()
        };
        let h = g.add_node(Node::Hierarchy(Hierarchy {
            id: HierarchyId::new(id),
            version: Version::V1,
            controllers: ctl.to_vec(),
            name: name.map(str::to_string),
            mounts: vec![Mount {
                mount_point: format!("/sys/fs/cgroup/{label}"),
                root: "/".into(),
                source: Some("cgroup".into()),
                options: vec![],
                majmin: format!("0:{id}"),
            }],
            scanned_mount: Some(0),
            release_agent: None,
        }));
        let cg = |path: String, settings: BTreeMap<String, String>| {
            Node::Cgroup(Cgroup {
                hierarchy: HierarchyId::new(id),
                path,
                owner: Ownership::default(),
                settings,
            })
        };
        let setting = |i: usize| -> BTreeMap<String, String> {
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
        };
        let root = g.add_node(cg("/".into(), BTreeMap::new()));
        g.add_edge(h, root, Edge::Child);
        roots.insert(id, root);
        if depth >= 1 {
            for s in 0..slices {
                let si = g.add_node(cg(format!("/s{s}.slice"), setting(s)));
                g.add_edge(root, si, Edge::Child);
                slice_ix.insert((id, s), si);
                if depth >= 2 {
                    for j in 0..fanout {
                        let ji = g.add_node(cg(format!("/s{s}.slice/j{j}.scope"), setting(s * fanout + j)));
                        g.add_edge(si, ji, Edge::Child);
                        leaf.insert((id, s, j), ji);
                    }
                }
            }
        }
    }
    let nprocs = threads / 5;
    for p in 0..nprocs {
        let pid = 1000 + p as u32 * 5;
        let (s, j) = ((p / fanout) % slices.max(1), p % fanout);
        let pi = g.add_node(Node::Process(Process {
            pid: Pid::new(pid),
            comm: format!("w{p}"),
            cmdline: vec![format!("/bin/w{p}")],
            uid: 0,
            gid: 0,
            cgroup_files: vec![],
        }));
        for t in 0..5u32 {
            let ti = g.add_node(Node::Thread(Thread {
                tid: Tid::new(pid + t),
                comm: format!("w{p}"),
                unresolved: vec![],
            }));
            g.add_edge(pi, ti, Edge::Thread);
            for (id, _, _, depth) in specs {
                let target = match depth {
                    // One process in 50 keeps threads 1-4 in its slice in cpu:
                    // split in a threaded controller.
                    2 if id == 2 && p % 50 == 0 && t > 0 => slice_ix[&(id, s)],
                    2 => leaf[&(id, s, j)],
                    1 => slice_ix[&(id, s)],
                    _ => roots[&id],
                };
                g.add_edge(ti, target, Edge::Member);
            }
        }
    }
    Snapshot {
        readiness: Default::default(),
        schema: SNAPSHOT_SCHEMA.into(),
        host: HostInfo {
            kernel: Some("6.1.0".into()),
            cmdline: Some("ro".into()),
            hostname: Some("bench".into()),
            mode: Mode::Legacy,
            controllers: vec![],
            os: Default::default(),
        },
        graph: g,
        diagnostics: vec![],
        vanished: Vanished::default(),
        owner_evidence: Default::default(),
    }
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

fn one(cgroups: usize) {
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
    let plan = cgmig::plan::plan(&snap, &rules);
    let plan_t = t.elapsed();
    let plan_cpu = std::time::Duration::from_nanos(cpu_ns() - cpu);
    let plan_peak = vm_hwm_kib();
    reset_hwm();
    let t = Instant::now();
    let v = cgmig::plan::validate(&plan);
    let val_t = t.elapsed();
    assert!(v.is_empty(), "invalid: {:?}", &v[..v.len().min(3)]);
    let t = Instant::now();
    let text = cgmig::plan::render(&plan, cgmig::plan::PlanFormat::Json).unwrap();
    let json_t = t.elapsed();
    let t = Instant::now();
    let table = cgmig::plan::render(&plan, cgmig::plan::PlanFormat::Table).unwrap();
    let table_t = t.elapsed();
    std::hint::black_box(table.len());
    println!(
        "cgroups {n_cg:>7}  threads {n_thr:>7}  nodes {:>6}  actions {:>7}  build {:>8.2?}  plan {:>8.2?} (cpu {:>8.2?})  validate {:>8.2?}  json {:>8.2?} ({} MB)  table {:>8.2?}  peak RSS {} MiB (snapshot {}, plan {}, render {})",
        plan.nodes.len(),
        plan.actions.len(),
        build,
        plan_t,
        plan_cpu,
        val_t,
        json_t,
        text.len() >> 20,
        table_t,
        snap_peak.max(plan_peak).max(vm_hwm_kib()) >> 10,
        snap_peak >> 10,
        plan_peak >> 10,
        vm_hwm_kib() >> 10
    );
}

fn main() {
    if let Ok(n) = std::env::var("CGMIG_BENCH_ONE") {
        one(n.parse().expect("size"));
        return;
    }
    let sizes = std::env::var("CGMIG_BENCH_SIZES").unwrap_or_else(|_| "10000,25000,50000,100000".into());
    let me = std::env::current_exe().expect("exe");
    for s in sizes.split(',') {
        let st = std::process::Command::new(&me)
            .env("CGMIG_BENCH_ONE", s.trim())
            .status()
            .expect("child");
        assert!(st.success(), "size {s} failed");
    }
}
