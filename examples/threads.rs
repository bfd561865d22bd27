//! A test helper for the VM tests (built static, placed in the guest's
//! initramfs): real workloads whose behaviour the scenarios measure.
//!
//! * `threads N SECONDS`: a process with N extra threads that sleep, printing
//!   `pid tid tid ...` so the scenario can place threads in cgroups.
//! * `threads hog MB`: allocates and touches memory one MiB at a time, printing
//!   `hog N` after each MiB, so an OOM kill shows how far it got.
//! * `threads forks N SECONDS`: starts up to N `sleep SECONDS` children and
//!   prints `forks OK FAILED`, so a pids limit shows as refused forks; the
//!   children are killed before it exits.
//!
//! It is written in Rust rather than C because the project already builds it
//! static (`-C target-feature=+crt-static`) with the static cgmig.

use std::io::Write;
use std::process::{Child, Command};
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let num = |i: usize, d: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    match args.get(1).map(String::as_str) {
        Some("hog") => hog(num(2, 64)),
        Some("forks") => forks(num(2, 10), num(3, 30)),
        _ => sleepers(num(1, 2) as usize, num(2, 600)),
    }
}

/// N sleeping threads; prints the pid and the thread ids.
fn sleepers(n: usize, secs: u64) {
    let (tx, rx) = std::sync::mpsc::channel();
    for i in 0..n {
        let tx = tx.clone();
        // Named threads (their comm), so a plan's stable key can tell them
        // apart after a reboot.
        std::thread::Builder::new()
            .name(format!("worker{i}"))
            .spawn(move || {
                tx.send(nix::unistd::gettid().as_raw()).ok();
                std::thread::sleep(Duration::from_secs(secs));
            })
            .expect("spawn a thread");
    }
    let mut tids: Vec<i32> = (0..n).filter_map(|_| rx.recv().ok()).collect();
    tids.sort();
    let t: Vec<String> = tids.iter().map(|t| t.to_string()).collect();
    println!("{} {}", std::process::id(), t.join(" "));
    std::thread::sleep(Duration::from_secs(secs));
}

/// Touch `mb` MiB, one page at a time, reporting progress after each MiB.
fn hog(mb: u64) {
    const MIB: usize = 1 << 20;
    let mut held: Vec<Vec<u8>> = Vec::new();
    let mut out = std::io::stdout();
    for i in 1..=mb {
        let mut chunk = vec![0u8; MIB];
        // Write every page so the memory is really charged (calloc'd pages
        // that are never written would not be).
        for p in (0..MIB).step_by(4096) {
            chunk[p] = 1;
        }
        held.push(chunk);
        writeln!(out, "hog {i}").ok();
        out.flush().ok();
    }
    println!("hog done {}", held.len());
}

/// Start up to `n` children; count the ones the kernel refused.
fn forks(n: u64, secs: u64) {
    let mut kids: Vec<Child> = Vec::new();
    let mut failed = 0;
    for _ in 0..n {
        match Command::new("sleep").arg(secs.to_string()).spawn() {
            Ok(c) => kids.push(c),
            Err(_) => failed += 1,
        }
    }
    println!("forks {} {failed}", kids.len());
    for mut k in kids {
        k.kill().ok();
        k.wait().ok();
    }
}
