//! AFL++ harness for cgmig: one coverage-guided target per parser and loader.
//!
//! One instrumented binary serves every target (`cgmig-fuzz TARGET`), so the
//! expensive instrumented build compiles and links cgmig once instead of
//! once per target; each target still has its own corpus
//! (`fuzz/corpus/TARGET/`) and its own AFL output directory. `cgmig-fuzz
//! list` prints the target names (scripts/fuzz runs them all).
//!
//! A target feeds the input to the same public entry point the product
//! uses and lets it fail however it likes with an error; what it must never
//! do is panic (the `afl::fuzz!` hook turns a panic into an abort, which AFL
//! saves as a crash), loop, or allocate without bound (AFL's timeout and
//! memory limit catch those). Where the product offers both directions,
//! the target also asserts the round trip: what parses and renders must
//! parse back to the same value.

mod documents;
mod host_files;
mod readiness;

/// A fuzz target: takes the raw input, panics on a broken invariant.
type Target = fn(&[u8]);

/// Every target, by name. The name is the corpus directory's name.
const TARGETS: &[(&str, Target)] = &[
    ("mountinfo", host_files::mountinfo),
    ("proc-cgroups", host_files::proc_cgroups),
    ("pid-cgroup", host_files::pid_cgroup),
    ("status", host_files::status),
    ("values", host_files::values),
    ("snapshot-json", documents::snapshot_json),
    ("snapshot-yaml", documents::snapshot_yaml),
    ("rules-yaml", documents::rules_yaml),
    ("plan-json", documents::plan_json),
    ("fleet-input", documents::fleet_input),
    ("journal", documents::journal),
    ("go-buildinfo", readiness::go_buildinfo),
    ("elf", readiness::elf),
    ("jdk-release", readiness::jdk_release),
    ("unit-file", readiness::unit_file),
    ("rpm-sqlite", readiness::rpm_sqlite),
    ("rpm-bdb", readiness::rpm_bdb),
    ("daemon-json", readiness::daemon_json),
    ("kubelet-config", readiness::kubelet_config),
    ("containerd-toml", readiness::containerd_toml),
    ("cgconfig", readiness::cgconfig),
    ("lxc-config", readiness::lxc_config),
    ("kernel-config", readiness::kernel_config),
    ("grub-default", readiness::grub_default),
    ("dpkg-status", readiness::dpkg_status),
    ("runtime-versions", readiness::runtime_versions),
];

fn main() {
    let name = std::env::args().nth(1).unwrap_or_default();
    if name == "list" {
        for (n, _) in TARGETS {
            println!("{n}");
        }
        return;
    }
    let Some(&(_, target)) = TARGETS.iter().find(|(n, _)| *n == name) else {
        eprintln!("usage: cgmig-fuzz TARGET < input   (cgmig-fuzz list: the targets)");
        std::process::exit(2);
    };
    afl::fuzz!(|data: &[u8]| target(data));
}
