//! A test helper for the VM tests: a process with N extra threads that sleep,
//! printing `pid tid tid ...` so the scenario can place threads in cgroups.
//!
//! `threads N SECONDS`

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(2);
    let secs: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(600);
    let (tx, rx) = std::sync::mpsc::channel();
    for _ in 0..n {
        let tx = tx.clone();
        std::thread::spawn(move || {
            tx.send(nix::unistd::gettid().as_raw()).ok();
            std::thread::sleep(std::time::Duration::from_secs(secs));
        });
    }
    let mut tids: Vec<i32> = (0..n).filter_map(|_| rx.recv().ok()).collect();
    tids.sort();
    let t: Vec<String> = tids.iter().map(|t| t.to_string()).collect();
    println!("{} {}", std::process::id(), t.join(" "));
    std::thread::sleep(std::time::Duration::from_secs(secs));
}
