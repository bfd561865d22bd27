//! Fleet aggregation benchmark: time and peak memory (VmHWM) to aggregate
//! 1,000 and 10,000 audit reports with `cgmig::fleet::run`.
//!
//! `cargo bench --bench fleet`. The audits are the fixture hosts' real audit
//! JSON, multiplied with per-host hostnames and container ids, written to a
//! tmpfs directory. Each aggregation runs in a child process (this binary
//! with `--child DIR`) so its VmHWM is the aggregation's alone; bounded
//! memory shows as a small difference between the 1,000- and 10,000-host
//! peaks (a few words per host, not a report per host).

use std::path::{Path, PathBuf};
use std::time::Instant;

use cgmig::fixture::{HostSpec, materialize};
use cgmig::fleet::{FleetOptions, collect_inputs, run};
use cgmig::rules::RuleSet;

const TEMPLATES: &[&str] = &[
    "k8s-cgroupfs",
    "docker-cgroupfs",
    "centos7-legacy",
    "libvirt-vcpu-threads",
];

fn vm_hwm_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// One audit JSON per template host, with its hostname.
fn templates(rules: &RuleSet) -> Vec<(String, String)> {
    let hosts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/hosts");
    TEMPLATES
        .iter()
        .map(|name| {
            let spec = HostSpec::load(&hosts.join(format!("{name}.yaml"))).unwrap();
            let dir = tempfile::tempdir_in("/dev/shm").unwrap_or_else(|_| tempfile::tempdir().unwrap());
            materialize(&spec, dir.path(), rules).unwrap();
            let snap = cgmig::scan::scan(&cgmig::host::Root::new(dir.path()).unwrap()).unwrap();
            let r = cgmig::assess::audit(&snap, rules);
            (
                spec.hostname.clone(),
                cgmig::audit::render(&r, cgmig::audit::AuditFormat::Json).unwrap(),
            )
        })
        .collect()
}

/// `n` audit files: template `i % 4` with hostname `host-i` and its
/// container ids (12-hex tokens) replaced by per-host ones.
fn generate(dir: &Path, n: usize, templates: &[(String, String)]) {
    for i in 0..n {
        let (host, text) = &templates[i % templates.len()];
        let mut t = text.replace(&format!("\"{host}\""), &format!("\"host-{i:05}\""));
        for id in ["b29faf21b7ef", "0bd31f558c42", "c17eb535a477", "1d3d308a7d48"] {
            t = t.replace(id, &format!("{:012x}", 0x1000_0000_0000u64 + (i as u64) * 7919));
        }
        std::fs::write(dir.join(format!("host-{i:05}.json")), t).unwrap();
    }
}

fn child(dir: &Path) {
    let (rules, _) = RuleSet::embedded();
    let before = vm_hwm_kib();
    let t = Instant::now();
    let inputs = collect_inputs(&[dir.to_path_buf()]).unwrap();
    let report = run(&inputs, &rules, &FleetOptions::default()).unwrap();
    let json = cgmig::fleet::render(&report, cgmig::fleet::FleetFormat::Json).unwrap();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{} {} {:.3} {} {} {}",
        report.hosts,
        report.families.len(),
        secs,
        before,
        vm_hwm_kib(),
        json.len()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(Path::new(&args[i + 1]));
        return;
    }
    let (rules, _) = RuleSet::embedded();
    let templates = templates(&rules);
    println!("fleet aggregation of audit JSONs (child process per run; VmHWM = peak resident memory)");
    println!(
        "{:>7} {:>9} {:>9} {:>11} {:>12} {:>12}",
        "hosts", "families", "time s", "hosts/s", "VmHWM MiB", "report KiB"
    );
    for n in [1_000usize, 10_000] {
        let dir = tempfile::tempdir_in("/dev/shm").unwrap_or_else(|_| tempfile::tempdir().unwrap());
        generate(dir.path(), n, &templates);
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--child", dir.path().to_str().unwrap()])
            .output()
            .unwrap();
        let line = String::from_utf8_lossy(&out.stdout);
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            f.len(),
            6,
            "child failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let secs: f64 = f[2].parse().unwrap();
        let hwm: f64 = f[4].parse::<f64>().unwrap() / 1024.0;
        let report: f64 = f[5].parse::<f64>().unwrap() / 1024.0;
        println!(
            "{:>7} {:>9} {:>9.3} {:>11.0} {:>12.1} {:>12.0}",
            f[0],
            f[1],
            secs,
            n as f64 / secs,
            hwm,
            report
        );
    }
}
