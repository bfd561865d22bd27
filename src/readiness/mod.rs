//! Workload readiness: the software and configuration on a host that breaks,
//! or already misbehaves, once cgroup v2 is the only hierarchy.
//!
//! The cgroup tree is half a migration; the other half is what runs on it:
//! JVMs, Node and .NET runtimes and Go binaries that size themselves from v1
//! files only, container stacks and kubelets with settings that stop them on
//! v2, systemd units whose `CPUShares=`/`MemoryLimit=` are ignored on v2, LXC
//! and libcgroup configurations, boot parameters and kernel configs.
//!
//! Everything is found from files, without running anything, so it works on a
//! captured tree (`--root`) as on the live host. The work is split in two:
//!
//! * **detection** (this module's [`scan`], one file per detector family:
//!   [`runtimes`], [`stack`], [`kernel`], [`config`]) records an inventory in
//!   the [`Readiness`] value that the snapshot carries;
//! * **evaluation** ([`mod@evaluate`]) turns the inventory into [`Finding`]s
//!   using the researched table (`docs/readiness.md`), a pure function;
//! * **conversion** ([`convert`]) writes the v2 configuration the host needs.
//!
//! All reads go through [`io::Reader`]: bounded per file, counted, contained
//! in the root, regular files only.

pub mod apps;
pub mod config;
pub mod convert;
pub mod devices;
pub mod elf;
pub mod evaluate;
mod evaluate_config;
pub mod images;
pub mod io;
pub mod kernel;
pub mod rpmdb;
mod rule;
pub mod runtimes;
pub mod stack;
mod stores;
pub mod unit;
pub mod unit_env;
pub mod version;

use crate::host::Root;
use crate::model::Diagnostic;

pub use crate::model::readiness::{Component, ConfigFile, KernelConfig, Place, Readiness, Setting, Stats};
pub use evaluate::{Class, Confidence, Finding, evaluate};
pub use evaluate_config::LEGACY_IGNORED_FROM;
pub use rule::RuleRow;

/// Run every detector on a host. Unreadable files become diagnostics.
/// `systemd` is the version the scan read (`host::systemd::version`): it
/// joins the inventory as a component, not read again.
pub fn scan(
    root: &Root,
    kernel_release: Option<&str>,
    systemd: Option<&crate::host::systemd::Version>,
    diags: &mut Vec<Diagnostic>,
) -> Readiness {
    scan_with(root, kernel_release, systemd, io::Limits::default(), diags)
}

/// [`scan`] with explicit bounds (benchmarks and tests).
pub fn scan_with(
    root: &Root,
    kernel_release: Option<&str>,
    systemd: Option<&crate::host::systemd::Version>,
    limits: io::Limits,
    diags: &mut Vec<Diagnostic>,
) -> Readiness {
    let mut rd = io::Reader::new(root, limits);
    let mut out = Readiness {
        scanned: true,
        ..Default::default()
    };
    runtimes::scan(&mut rd, &mut out);
    stack::scan(&mut rd, systemd, &mut out);
    kernel::scan(&mut rd, kernel_release, &mut out);
    config::scan(&mut rd, &mut out);
    apps::scan(&mut rd, &mut out);
    out.components.sort();
    out.components.dedup();
    out.settings.sort();
    out.settings.dedup();
    let (stats, d) = rd.finish();
    out.stats = stats;
    diags.extend(d);
    out
}

/// Every readiness rule: the one table the findings are made from
/// (`evaluate`, `evaluate_config`, `apps`), for `explain` and `rules list`.
pub fn rule_table() -> Vec<RuleRow> {
    evaluate::rules()
        .chain(evaluate_config::RULES.iter().copied())
        .chain(apps::RULES.iter().copied())
        .map(|r| RuleRow {
            id: r.id,
            severity: rule::cap(r.severity, r.confidence),
            title: r.title,
            needed: r.needed,
            why: r.why,
            source: r.source,
        })
        .collect()
}
