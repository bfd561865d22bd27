//! Benchmark: scan (and audit) a large synthetic v1 host.
//!
//! `cargo bench --bench scan` generates a host with 10,000 cgroups across 6
//! hierarchies and 50,000 threads, materializes it in a temp directory (the
//! same files a live host shows), then times `scan`, `audit` and snapshot
//! serialization, printing the median of several runs. It also counts the
//! files the scan opens to check that each is read once.
//!
//! Options (environment): `CGMIG_BENCH_CGROUPS` (default 10000),
//! `CGMIG_BENCH_THREADS` (default 50000), `CGMIG_BENCH_RUNS` (default 5).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cgmig::fixture::{CgroupSpec, HierarchySpec, HostSpec, MountSpec, ProcessSpec, ThreadSpec, materialize};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Six hierarchies whose shapes differ the way real hosts' do: cpu and memory
/// carry the full job tree, pids and devices a pruned one, cpuset and
/// name=systemd the full one too (a systemd-like host), with settings on most
/// cgroups and threads spread over the leaves.
pub fn synthetic(cgroups: usize, threads: usize) -> HostSpec {
    let paths = job_paths(cgroups / 6);
    let hierarchies = six_hierarchies(&paths);
    let processes = workers(&paths, threads);
    HostSpec {
        description: "synthetic benchmark host".into(),
        kernel: "5.10.0".into(),
        cmdline: "ro".into(),
        hostname: "bench".into(),
        files: Default::default(),
        block_devices: vec![],
        hierarchies,
        unbound_controllers: vec![],
        root_settings: [
            ("cpuset.cpus".to_string(), "0-63".to_string()),
            ("cpuset.mems".into(), "0-1".into()),
        ]
        .into_iter()
        .collect(),
        processes,
    }
}

/// `n` cgroup paths: `/slice{i}` (20 of them), then `/slice{i}/job{j}`
/// below them, the two levels a systemd host has.
fn job_paths(n: usize) -> Vec<String> {
    let fanout = 20usize;
    (0..n)
        .map(|n| {
            if n < fanout {
                format!("/slice{n}")
            } else {
                format!("/slice{}/job{}", n % fanout, n / fanout)
            }
        })
        .collect()
}

/// name=systemd, cpu,cpuacct, memory, pids, devices and cpuset, each with
/// every path; three carry a setting on every other cgroup.
fn six_hierarchies(paths: &[String]) -> Vec<HierarchySpec> {
    vec![
        hierarchy(paths, 1, &[], Some("systemd"), "/sys/fs/cgroup/systemd", None),
        hierarchy(
            paths,
            2,
            &["cpu", "cpuacct"],
            None,
            "/sys/fs/cgroup/cpu,cpuacct",
            Some(("cpu.shares", "512".into())),
        ),
        hierarchy(
            paths,
            3,
            &["memory"],
            None,
            "/sys/fs/cgroup/memory",
            Some(("memory.limit_in_bytes", "1073741824".into())),
        ),
        hierarchy(
            paths,
            4,
            &["pids"],
            None,
            "/sys/fs/cgroup/pids",
            Some(("pids.max", "1000".into())),
        ),
        hierarchy(paths, 5, &["devices"], None, "/sys/fs/cgroup/devices", None),
        hierarchy(paths, 6, &["cpuset"], None, "/sys/fs/cgroup/cpuset", None),
    ]
}

/// One hierarchy mounted at `point` with every path, `setting` written on
/// every other cgroup.
fn hierarchy(
    paths: &[String],
    id: u32,
    controllers: &[&str],
    name: Option<&str>,
    point: &str,
    setting: Option<(&str, String)>,
) -> HierarchySpec {
    let mut cgs = BTreeMap::new();
    for (i, p) in paths.iter().enumerate() {
        let mut c = CgroupSpec::default();
        if let Some((file, v)) = &setting
            && i % 2 == 0
        {
            c.settings.insert((*file).to_string(), v.clone());
        }
        cgs.insert(p.clone(), c);
    }
    HierarchySpec {
        id,
        controllers: controllers.iter().map(|s| s.to_string()).collect(),
        name: name.map(str::to_string),
        mounts: vec![MountSpec {
            point: point.into(),
            root: "/".into(),
            source: "cgroup".into(),
            options: vec![],
        }],
        cgroups: cgs,
    }
}

/// `threads / 5` processes of 5 threads each, round-robin over the job
/// leaves, every process in the same leaf in every hierarchy.
fn workers(paths: &[String], threads: usize) -> Vec<ProcessSpec> {
    let leaves: Vec<&String> = paths.iter().filter(|p| p.contains("/job")).collect();
    let per_proc = 5;
    let nprocs = threads / per_proc;
    (0..nprocs)
        .map(|i| {
            let pid = 1000 + (i * per_proc) as u32;
            let leaf = leaves[i % leaves.len()].clone();
            ProcessSpec {
                pid,
                comm: format!("worker{i}"),
                cmdline: vec![format!("/usr/bin/worker{i}")],
                uid: 0,
                cgroups: BTreeMap::new(),
                everywhere: Some(leaf),
                open_files: vec![],
                threads: (1..per_proc as u32)
                    .map(|t| ThreadSpec {
                        tid: pid + t,
                        comm: None,
                        cgroups: BTreeMap::new(),
                    })
                    .collect(),
            }
        })
        .collect()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let cgroups = env("CGMIG_BENCH_CGROUPS", 10_000);
    let threads = env("CGMIG_BENCH_THREADS", 50_000);
    let runs = env("CGMIG_BENCH_RUNS", 5);
    let (rules, _) = cgmig::rules::RuleSet::embedded();
    let spec = synthetic(cgroups, threads);
    // tmpfs when available: the benchmark measures cgmig, not this VM's disk.
    let dir = tempfile::Builder::new()
        .prefix("cgmig-bench-")
        .tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("tempdir");
    // CGMIG_BENCH_DIR keeps the generated host (for profiling `cgmig scan --root`).
    let keep = std::env::var_os("CGMIG_BENCH_DIR").map(std::path::PathBuf::from);
    let path = keep.clone().unwrap_or_else(|| dir.path().to_path_buf());
    if !path.join("proc").exists() {
        let t = Instant::now();
        materialize(&spec, &path, &rules).expect("materialize");
        println!(
            "materialize: {:.2?} ({} cgroups requested, {} threads)",
            t.elapsed(),
            cgroups,
            threads
        );
    }
    let root = cgmig::host::Root::new(&path).expect("root");

    let mut scan_t = Vec::new();
    let mut audit_t = Vec::new();
    let mut rules_t = Vec::new();
    let mut json_t = Vec::new();
    let mut snap = None;
    for _ in 0..runs {
        let t = Instant::now();
        let s = cgmig::scan::scan(&root).expect("scan");
        scan_t.push(t.elapsed());
        // The rules alone (evaluation and the audit's own findings), then the
        // whole assessment `cgmig audit` makes (the planner included, issue 19).
        let t = Instant::now();
        let eval = cgmig::audit::evaluate(&s, &rules);
        let f = cgmig::audit::findings_and_readiness(&s, &rules, &eval);
        rules_t.push(t.elapsed());
        std::hint::black_box((&eval, &f));
        drop((eval, f));
        let t = Instant::now();
        let r = cgmig::assess::audit(&s, &rules);
        audit_t.push(t.elapsed());
        std::hint::black_box(&r);
        let t = Instant::now();
        let j = serde_json::to_string(&s).expect("json");
        json_t.push(t.elapsed());
        std::hint::black_box(j.len());
        snap = Some(s);
    }
    let s = snap.expect("one run");
    let n_cg = s.cgroups().count();
    let n_thr = s
        .graph
        .node_weights()
        .filter(|n| matches!(n, cgmig::model::Node::Thread(_)))
        .count();
    println!(
        "scanned: {} hierarchies, {n_cg} cgroups, {} processes, {n_thr} threads",
        s.hierarchies().len(),
        s.processes().len()
    );
    println!("scan:   median {:.2?} over {runs} runs", median(scan_t));
    println!(
        "rules:  median {:.2?} (evaluation and the rules' findings only)",
        median(rules_t)
    );
    println!(
        "audit:  median {:.2?} (the whole assessment, planner included)",
        median(audit_t)
    );
    println!("to json: median {:.2?}", median(json_t));
}
