//! Benchmark: replay a large tree on the simulator.
//!
//! `cargo bench --bench sim` builds, on `cgmig::apply::Simulator`, a tree of
//! N leaf cgroups (100 slices of N/100 leaves, controllers enabled
//! top-down), writes two values to each leaf, adds and moves one process
//! into each, then makes a threaded subtree per slice for a tenth of them,
//! and finally empties and removes everything bottom-up: the calls a
//! `apply --dry-run` or a stage replay makes. `CGMIG_BENCH_SIZES=10000,50000`
//! chooses sizes. Prints calls, total time and time per call.

use std::time::Instant;

use cgmig::apply::{Simulator, Target};
use cgmig::model::{Pid, Tid};

fn run(leaves: usize) -> (usize, std::time::Duration) {
    let t = Instant::now();
    let mut calls = 0usize;
    let mut s = Simulator::new(&["cpu", "memory", "pids", "io"]);
    let mut call = |r: Result<(), cgmig::apply::TargetError>| {
        r.expect("simulator refused a valid call");
        calls += 1;
    };
    call(s.write("/", "cgroup.subtree_control", "+cpu +memory +pids"));
    let slices = 100;
    let per = leaves / slices;
    let mut pid = 1000u32;
    for i in 0..slices {
        let slice = format!("/s{i}");
        call(s.mkdir(&slice));
        call(s.write(&slice, "cgroup.subtree_control", "+cpu +memory"));
        for j in 0..per {
            let leaf = format!("{slice}/c{j}");
            call(s.mkdir(&leaf));
            call(s.write(&leaf, "memory.max", "1G"));
            call(s.write(&leaf, "cpu.weight", "200"));
            pid += 2;
            s.add_process(Pid::new(pid), &[Tid::new(pid + 1)], "/").unwrap();
            call(s.write(&leaf, "cgroup.procs", &pid.to_string()));
        }
    }
    // Threaded subtrees: types first, then the process, then a thread.
    for i in (0..slices).step_by(10) {
        let app = format!("/t{i}");
        call(s.mkdir(&app));
        for k in ["main", "io"] {
            call(s.mkdir(&format!("{app}/{k}")));
            call(s.write(&format!("{app}/{k}"), "cgroup.type", "threaded"));
        }
        pid += 2;
        s.add_process(Pid::new(pid), &[Tid::new(pid + 1)], "/").unwrap();
        call(s.write(&format!("{app}/main"), "cgroup.procs", &pid.to_string()));
        call(s.write(&format!("{app}/io"), "cgroup.threads", &(pid + 1).to_string()));
    }
    // Roll back: processes to the root, cgroups removed deepest first.
    for p in (1002..=pid).step_by(2) {
        call(s.write("/", "cgroup.procs", &p.to_string()));
    }
    let mut paths: Vec<String> = Vec::new();
    let mut stack = vec!["/".to_string()];
    while let Some(p) = stack.pop() {
        for c in s.children(&p).unwrap() {
            let cp = if p == "/" {
                format!("/{c}")
            } else {
                format!("{p}/{c}")
            };
            stack.push(cp.clone());
            paths.push(cp);
        }
    }
    paths.sort_by_key(|p| std::cmp::Reverse(p.matches('/').count()));
    for p in paths {
        call(s.rmdir(&p));
    }
    (calls, t.elapsed())
}

fn main() {
    let sizes: Vec<usize> = std::env::var("CGMIG_BENCH_SIZES").ok().map_or_else(
        || vec![10_000, 50_000],
        |v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect(),
    );
    println!(
        "{:>8} {:>8} {:>10} {:>10}",
        "leaves", "calls", "total", "per call"
    );
    for n in sizes {
        let (calls, d) = run(n);
        println!(
            "{:>8} {:>8} {:>9.3}s {:>8.2}µs",
            n,
            calls,
            d.as_secs_f64(),
            d.as_secs_f64() * 1e6 / calls as f64
        );
    }
}
