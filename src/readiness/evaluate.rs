//! Readiness findings: the researched table (`docs/readiness.md`, from
//! `docs/research/workload-readiness.md`) applied to what the scan found. Pure.
//!
//! Every finding names the file, the version or value found, what is needed
//! and the source, and says whether the problem **breaks after the switch**
//! (a regression: fine on v1, wrong on v2) or is **already wrong before it**
//! (pre-existing, or already failing on this v1 host). Severity follows the
//! reference's confidence: a verified row keeps its severity, a partially
//! verified row is capped at `warning`, an unverified row is `info` (it never
//! blocks).

use super::version::{self, java, less};
use super::{Component, Place, Readiness, Setting};
use crate::model::Mode;

use super::rule::*;
pub use super::rule::{Class, Confidence, Context, Finding, cap};

/// Components whose problem is "version below X", with the row behind it.
const BELOW: &[(&str, &str, Rule)] = &[
    (
        "dotnet",
        "5.0",
        Rule {
            id: "WR-DOTNET-001",
            severity: Error,
            class: BREAKS,
            confidence: V,
            title: ".NET runtime reads v1 limits only",
            needed: ".NET 5.0 or later",
            why: ".NET Core 3.x and older size the GC heap and ProcessorCount from host RAM and CPUs on v2: OOM kills.",
            source: "dotnet/runtime PRs #34334, #34665; issue #75180; Microsoft AKS memory-saturation article",
        },
    ),
    (
        "node",
        "20.3.0",
        Rule {
            id: "WR-NODE-001",
            severity: Warning,
            class: BREAKS,
            confidence: V,
            title: "Node.js reads v1 memory limits only",
            needed: "Node 20.3.0 (libuv 1.45) or later",
            why: "On v2 the V8 heap limit is derived from host memory, so the process outgrows its container limit and is OOM-killed.",
            source: "nodejs/node#47259; kubernetes/website PR #56253; libuv PR #3744",
        },
    ),
    (
        "docker",
        "20.10",
        Rule {
            id: "WR-RT-001",
            severity: Blocker,
            class: BREAKS,
            confidence: V,
            title: "Docker Engine without cgroup v2 support",
            needed: "Docker 20.10 or later",
            why: "Older dockerd fails on a unified host: 'cgroup mountpoint does not exist', 'Devices cgroup isn't mounted'.",
            source: "moby commit 491531c12b (v20.10.0); docker/cli#2104",
        },
    ),
    (
        "containerd",
        "1.4",
        Rule {
            id: "WR-RT-002",
            severity: Blocker,
            class: BREAKS,
            confidence: V,
            title: "containerd without cgroup v2 support",
            needed: "containerd 1.4 or later",
            why: "containerd gained cgroup v2 support in 1.4.0.",
            source: "containerd releases/v1.4.0.toml",
        },
    ),
    (
        "runc",
        "1.0.0-rc93",
        Rule {
            id: "WR-RT-003",
            severity: Blocker,
            class: BREAKS,
            confidence: V,
            title: "runc without full cgroup v2 support",
            needed: "runc 1.0.0-rc93 or later",
            why: "runc fully supports cgroup v2 only since 1.0.0-rc93.",
            source: "runc docs/cgroup-v2.md",
        },
    ),
    (
        "crio",
        "1.20",
        Rule {
            id: "WR-RT-007",
            severity: Error,
            class: BREAKS,
            confidence: V,
            title: "CRI-O below the v2 minimum",
            needed: "CRI-O 1.20 or later",
            why: "Kubernetes requires CRI-O 1.20+ for cgroup v2.",
            source: "kubernetes.io cgroups page",
        },
    ),
    (
        "kubelet",
        "1.25",
        Rule {
            id: "WR-K8S-001",
            severity: Blocker,
            class: BREAKS,
            confidence: V,
            title: "kubelet before cgroup v2 GA",
            needed: "Kubernetes 1.25 or later",
            why: "cgroup v2 support is GA from Kubernetes 1.25.",
            source: "kubernetes.io cgroups page; KEP-2254",
        },
    ),
    (
        "cadvisor",
        "0.43.0",
        Rule {
            id: "WR-AGT-002",
            severity: Warning,
            class: BREAKS,
            confidence: V,
            title: "cAdvisor misses container metrics on v2",
            needed: "cAdvisor 0.43.0 or later",
            why: "Older cAdvisor reports no or wrong container metrics on v2.",
            source: "kubernetes.io cgroups page",
        },
    ),
    (
        "datadog-agent",
        "7.33",
        Rule {
            id: "WR-AGT-001",
            severity: Warning,
            class: BREAKS,
            confidence: P,
            title: "Datadog Agent misses container metrics on v2",
            needed: "Datadog Agent 7.33 or later",
            why: "container.* metrics on v2 are GA from 7.33.",
            source: "DataDog/datadog-agent#7865 (maintainer comment)",
        },
    ),
    (
        "newrelic-infra",
        "1.26.0",
        Rule {
            id: "WR-AGT-001",
            severity: Warning,
            class: BREAKS,
            confidence: P,
            title: "New Relic infrastructure agent misses Docker metrics on v2",
            needed: "newrelic-infra 1.26.0 (and nri-docker 1.7.0)",
            why: "Docker metrics are missing on v2 below these versions.",
            source: "New Relic docs",
        },
    ),
    (
        "metricbeat",
        "7.15.0",
        Rule {
            id: "WR-AGT-001",
            severity: Warning,
            class: BREAKS,
            confidence: V,
            title: "Metricbeat reports zero cgroup metrics on v2",
            needed: "Metricbeat 7.15.0 or later",
            why: "cgroup v2 metrics arrived with elastic/beats PR #27242.",
            source: "elastic/beats PR #27242; #16958",
        },
    ),
    (
        "ecs-agent",
        "1.61.0",
        Rule {
            id: "WR-AGT-001",
            severity: Warning,
            class: BREAKS,
            confidence: V,
            title: "Amazon ECS agent misses task metrics on v2",
            needed: "ECS agent 1.61.0 or later",
            why: "Task metrics fail on cgroup v2 hosts (AL2022/AL2023) below 1.61.0.",
            source: "amazon-ecs-agent CHANGELOG; #3052",
        },
    ),
    (
        "nomad",
        "1.3.0",
        Rule {
            id: "WR-NOMAD-001",
            severity: Error,
            class: BREAKS,
            confidence: V,
            title: "Nomad client without cgroup v2 support",
            needed: "Nomad 1.3.0 or later",
            why: "Nomad < 1.3 reports memory as 0 and cannot manage cpusets on v2.",
            source: "hashicorp/nomad CHANGELOG (GH-12274); #10251",
        },
    ),
    (
        "elasticsearch",
        "7.16",
        Rule {
            id: "WR-ES-001",
            severity: Warning,
            class: BREAKS,
            confidence: U,
            title: "Elasticsearch without cgroup v2 stats",
            needed: "Elasticsearch 7.16 (release of PR #77306, unverified)",
            why: "OsProbe reports no cgroup stats on v2 before the fix.",
            source: "elastic/elasticsearch PR #76883, #77306",
        },
    ),
];

const JVM: Rule = Rule {
    id: "WR-JVM-001",
    severity: Error,
    class: BREAKS,
    confidence: V,
    title: "JVM is container-aware on v1 only",
    needed: "8u372, 11.0.16, or 15 and later",
    why: "The JVM sizes its heap and thread pools from host RAM and CPUs on v2: OOM kills (exit 137) and CPU thrashing.",
    source: "JDK-8230305 (15 b07); jdk11u-dev PR #840 (11.0.16); jdk8u-dev PR #127 (8u372)",
};
const JVM_OLD: Rule = Rule {
    id: "WR-JVM-003",
    severity: Info,
    class: PRE,
    confidence: U,
    title: "JVM is not container-aware even on v1",
    needed: "8u372, 11.0.16, or 15 and later",
    why: "Before 8u191 (JDK-8146115 backport) the JVM ignores cgroup limits on v1 too.",
    source: "JDK-8146115 (cut-off not re-verified)",
};
const AUTOMAXPROCS: Rule = Rule {
    id: "WR-GO-001",
    severity: Error,
    class: BREAKS,
    confidence: V,
    title: "automaxprocs cannot read v2 CPU quota",
    needed: "go.uber.org/automaxprocs v1.5.1, or Go 1.25 built with go ≥ 1.25",
    why: "automaxprocs < v1.5.1 logs 'CPU quota undefined' on v2 and leaves GOMAXPROCS at the host CPU count: CFS throttling.",
    source: "uber-go/automaxprocs CHANGELOG (v1.5.1); uber-go/automaxprocs#49",
};
const GO_NO_QUOTA: Rule = Rule {
    id: "WR-GO-002",
    severity: Info,
    class: PRE,
    confidence: V,
    title: "Go binary ignores CPU quota (v1 and v2 alike)",
    needed: "Go 1.25 with go.mod go ≥ 1.25, or automaxprocs ≥ v1.5.1, or GOMAXPROCS set",
    why: "Before Go 1.25 (or with containermaxprocs=0) GOMAXPROCS is the host CPU count on both versions: not a migration regression.",
    source: "golang/go src/internal/runtime/cgroup; go.dev/doc/go1.25",
};
const NODE_22: Rule = Rule {
    id: "WR-NODE-002",
    severity: Info,
    class: BREAKS,
    confidence: U,
    title: "Node 22.12+ availableParallelism() may return 1 on v2",
    needed: "a Node release with the libuv#4740 fix (version unverified)",
    why: "os.availableParallelism() returned 1 under cgroup v2 (nodejs/node#58428).",
    source: "nodejs/node#58428; libuv#4740",
};
const ES_CRASH: Rule = Rule {
    id: "WR-ES-002",
    severity: Blocker,
    class: BREAKS,
    confidence: V,
    title: "Elasticsearch 5.1.1–5.3.0 never starts with cgroup2 mounted",
    needed: "Elasticsearch 5.3.1 or later",
    why: "OsProbe throws a NullPointerException at start when cgroup2 is mounted.",
    source: "elastic/elasticsearch PR #28267, #28278",
};
const SHARES_FORMULA: Rule = Rule {
    id: "WR-RT-008",
    severity: Info,
    class: BREAKS,
    confidence: V,
    title: "Old CPU shares → weight formula (1024 shares → weight 39)",
    needed: "runc 1.3.2+/1.4.0+, crun 1.23+",
    why: "Containers rank below systemd services at CPUWeight=100; a mixed fleet gives one pod spec different weights.",
    source: "opencontainers/runc#4772; kubernetes#131216; containers/crun PR #1767",
};
const SYSTEMD_CPUSET: Rule = Rule {
    id: "WR-SD-004",
    severity: Warning,
    class: BREAKS,
    confidence: V,
    title: "systemd below 244 cannot delegate cpuset",
    needed: "systemd 244 or later",
    why: "runc recommends systemd ≥ 244 for cpuset delegation on v2.",
    source: "runc docs/cgroup-v2.md",
};
const SYSTEMD_IMAGE_OLD: Rule = Rule {
    id: "WR-LXC-002",
    severity: Error,
    class: BREAKS,
    confidence: V,
    title: "Container image runs systemd < 230: it will not boot on a v2 host",
    needed: "systemd 230 or later in the image (232 for Proxmox)",
    why: "'Failed to mount cgroup at /sys/fs/cgroup/systemd': CentOS 7 / Ubuntu 16.04 based system containers hang.",
    source: "containers/podman#6183; lxc/lxc#3503; canonical/lxd#9228",
};
const SYSTEMD_REFUSES_V1: Rule = Rule {
    id: "WR-SD-005",
    severity: Warning,
    class: PRE,
    confidence: V,
    title: "systemd ≥ 256 refuses to boot v1 (258 removed it)",
    needed: "cgroup v2 (unified) before this systemd boots again",
    why: "systemd 256-257 need SYSTEMD_CGROUP_ENABLE_LEGACY_FORCE=1 to boot v1; 258 has no v1 support at all.",
    source: "systemd NEWS 256, 258",
};
const NVIDIA: Rule = Rule {
    id: "WR-GPU-001",
    severity: Info,
    class: BREAKS,
    confidence: V,
    title: "GPU containers can lose device access after daemon-reload (systemd driver, v2)",
    needed: "devices passed with --device, or CDI",
    why: "'Failed to initialize NVML: Unknown Error' after systemctl daemon-reload.",
    source: "NVIDIA/nvidia-container-toolkit#251; NVIDIA/nvidia-docker#1650",
};
const NODE_EXPORTER: Rule = Rule {
    id: "WR-AGT-003",
    severity: Info,
    class: NEUTRAL,
    confidence: U,
    title: "node_exporter has no cgroup collector (PSI needs kernel 4.20)",
    needed: "nothing for v2",
    why: "Neutral: same on v1 and v2.",
    source: "reference §2.1 (unverified)",
};

/// Evaluate everything the scan found.
pub fn evaluate(r: &Readiness, cx: Context<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for c in &r.components {
        component(c, cx, r, &mut out);
    }
    super::evaluate_config::settings(r, cx, &mut out);
    super::evaluate_config::kernel(r, cx, &mut out);
    super::apps::evaluate(r, &mut out);
    out.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.class.cmp(&b.class))
            .then_with(|| a.rule.cmp(&b.rule))
            .then_with(|| a.file.cmp(&b.file))
            .then_with(|| a.found.cmp(&b.found))
    });
    out.dedup();
    out
}

fn component(c: &Component, cx: Context<'_>, r: &Readiness, out: &mut Vec<Finding>) {
    let v = c.version.as_str();
    for (name, min, rule) in BELOW {
        if c.name == *name && less(v, min) == Some(true) {
            out.push(rule.on(c));
        }
    }
    match c.name.as_str() {
        "openjdk" => {
            if let Some((feature, update)) = java(v) {
                let regresses = matches!(feature, 9 | 10 | 12 | 13 | 14)
                    || (feature == 8 && update < 372)
                    || (feature == 11 && update < 16);
                let opts = jvm_settings(c, r);
                if let Some(s) = opts.iter().find(|s| s.key == "-XX:-UseContainerSupport") {
                    out.push(with_setting(JVM_NO_SUPPORT.on(c), s));
                } else if feature == 8 && update < 191 {
                    out.push(JVM_OLD.on(c));
                } else if regresses {
                    out.push(jvm_regression(c, &opts));
                }
            }
        }
        "go" => go(c, r, out),
        "rust" if less(v, "1.59") == Some(false) && less(v, "1.61") == Some(true) => {
            out.push(RUST_NO_QUOTA.on(c));
        }
        "rust" if less(v, "1.61") == Some(false) && less(v, "1.64") == Some(true) => {
            out.push(RUST_V2_ONLY.on(c));
        }
        "node" if less(v, "22.12").is_some_and(|l| !l) && less(v, "23").unwrap_or(false) => {
            out.push(NODE_22.on(c));
        }
        "elasticsearch" if less(v, "5.1.1") == Some(false) && less(v, "5.3.1") == Some(true) => {
            out.push(ES_CRASH.on(c));
        }
        "runc" if less(v, "1.3.2") == Some(true) && less(v, "1.0.0-rc93") == Some(false) => {
            out.push(SHARES_FORMULA.on(c));
        }
        "crun" if less(v, "1.23") == Some(true) => out.push(SHARES_FORMULA.on(c)),
        "systemd" => systemd(c, cx, out),
        "nvidia-container-toolkit" => out.push(NVIDIA.on(c)),
        "node_exporter" => out.push(NODE_EXPORTER.on(c)),
        "kubelet" => super::evaluate_config::kubelet_version(c, cx, r, out),
        _ => {}
    }
}

const RUST_NO_QUOTA: Rule = Rule {
    id: "WR-RUST-001",
    severity: Info,
    class: PRE,
    confidence: U,
    title: "Rust 1.59–1.60 available_parallelism() ignores CPU quota (v1 and v2 alike)",
    needed: "Rust 1.64 or later (reads v1 and v2 quota)",
    why: "Quota support came in 1.61 (v2, PR #92697) and 1.64 (v1, PR #97925): not a migration regression. Found through .comment, a method the reference lists as unverified.",
    source: "rust-lang/rust PRs #92697, #97925",
};
const RUST_V2_ONLY: Rule = Rule {
    id: "WR-RUST-002",
    severity: Info,
    class: NEUTRAL,
    confidence: U,
    title: "Rust 1.61–1.63 reads only v2 CPU quota: the switch improves it",
    needed: "nothing for v2",
    why: "available_parallelism() honours cpu.max but not cpu.cfs_quota_us before 1.64. Found through .comment (unverified method).",
    source: "rust-lang/rust PRs #92697, #97925",
};
const JVM_HEAP_SET: Rule = Rule {
    id: "WR-JVM-004",
    severity: Warning,
    class: BREAKS,
    confidence: V,
    title: "JVM is container-aware on v1 only; its heap is set explicitly (mitigated)",
    needed: "8u372, 11.0.16, or 15 and later (the CPU count still comes from the host)",
    why: "-Xmx or -XX:MaxRAM bounds the heap whatever the JVM detects, so no heap OOM kill; availableProcessors() still returns the host CPU count on v2.",
    source: "reference §1.3 and §5.8 (an explicit -Xmx lowers WR-JVM-001 to a warning); JDK-8230305",
};
const JVM_NO_SUPPORT: Rule = Rule {
    id: "WR-JVM-005",
    severity: Info,
    class: PRE,
    confidence: V,
    title: "JVM container support disabled explicitly (-XX:-UseContainerSupport)",
    needed: "remove -XX:-UseContainerSupport, or size heap and CPUs explicitly",
    why: "With container support off the JVM ignores cgroup limits on v1 and v2 alike: not a migration regression.",
    source: "reference §5.8 (-XX:-UseContainerSupport disables detection everywhere)",
};

/// The JVM options (family `jvm`) that apply to a host JDK: host-wide ones
/// (`*`), those of a program inside the JDK's home, and those of a generic
/// `java` launcher (`/usr/bin/java`, an alternatives link to some JDK).
fn jvm_settings<'a>(c: &Component, r: &'a Readiness) -> Vec<&'a Setting> {
    if c.place != Place::Host {
        return Vec::new();
    }
    let home = c.path.strip_suffix("/release").map(|h| format!("{h}/"));
    r.settings
        .iter()
        .filter(|s| s.family == "jvm")
        .filter(|s| {
            let prog = s.section.as_deref().unwrap_or("");
            prog == "*"
                || home.as_deref().is_some_and(|h| prog.starts_with(h))
                || matches!(
                    prog,
                    "java" | "/usr/bin/java" | "/bin/java" | "/etc/alternatives/java"
                )
        })
        .collect()
}

fn with_setting(mut f: Finding, s: &Setting) -> Finding {
    f.found = format!("{}; {} at {}:{}", f.found, s.value, s.file, s.line.unwrap_or(0));
    f
}

/// WR-JVM-001, lowered to WR-JVM-004 when `-Xmx`/`-XX:MaxRAM=` bounds the
/// heap. `-XX:MaxRAMPercentage=` alone does not: on a JVM that cannot read
/// v2 it is a percentage of host RAM, and the finding says so.
fn jvm_regression(c: &Component, opts: &[&Setting]) -> Finding {
    if let Some(s) = opts.iter().find(|s| s.key == "-Xmx" || s.key == "-XX:MaxRAM=") {
        return with_setting(JVM_HEAP_SET.on(c), s);
    }
    let mut f = JVM.on(c);
    if let Some(s) = opts.iter().find(|s| s.key == "-XX:MaxRAMPercentage=") {
        f = with_setting(f, s);
        f.found += " (a percentage of host RAM on this JVM: does not bound the heap on v2)";
    }
    f
}

const GO_MITIGATED: Rule = Rule {
    id: "WR-GO-003",
    severity: Info,
    class: NEUTRAL,
    confidence: V,
    title: "Go binary ignores CPU quota, but its unit sets GOMAXPROCS",
    needed: "nothing while GOMAXPROCS matches the unit's CPU quota",
    why: "An explicit GOMAXPROCS overrides both the runtime default and automaxprocs.",
    source: "reference §1.2 (a unit or env with GOMAXPROCS= is mitigated)",
};

/// A unit (file, drop-in or environment file) that sets `var` for this host binary.
fn go_env<'a>(c: &Component, r: &'a Readiness, var: &str) -> Option<&'a Setting> {
    r.settings
        .iter()
        .filter(|_| c.place == Place::Host)
        .find(|s| s.family == "unit" && s.key == var && s.value == c.path)
}

fn go(c: &Component, r: &Readiness, out: &mut Vec<Finding>) {
    if let Some(s) = go_env(c, r, "GOMAXPROCS") {
        let mut f = GO_MITIGATED.on(c);
        f.found = format!(
            "{} {}; GOMAXPROCS set at {}:{}",
            c.name,
            c.version,
            s.file,
            s.line.unwrap_or(0)
        );
        if let Some(m) = go_env(c, r, "GOMEMLIMIT") {
            f.found += &format!(", GOMEMLIMIT at {}:{}", m.file, m.line.unwrap_or(0));
        }
        out.push(f);
        return;
    }
    let go125 = version::parse(&c.version).is_some_and(|v| v >= version::parse("1.25").unwrap_or(v.clone()));
    let aware = go125 && c.details.get("containermaxprocs").map(String::as_str) != Some("0");
    match c.details.get("automaxprocs") {
        Some(amp) if less(amp, "v1.5.1") == Some(true) && !aware => {
            let mut f = AUTOMAXPROCS.on(c);
            f.found = format!("go.uber.org/automaxprocs {amp}, {} ({})", c.version, c.evidence);
            out.push(f);
        }
        Some(_) => {}
        None if !aware => out.push(GO_NO_QUOTA.on(c)),
        None => {}
    }
}

fn systemd(c: &Component, cx: Context<'_>, out: &mut Vec<Finding>) {
    let v = c.version.as_str();
    match &c.place {
        Place::Host => {
            // A host systemd too old to run a unified hierarchy at all
            // (< 226) is the audit's one blocker, `host.systemd-too-old`
            // (audit::kernel, with the kernel's readiness); this rule only
            // says what a systemd that can run it still lacks.
            let unified = crate::host::systemd::UNIFIED_SINCE.to_string();
            if less(v, &unified) == Some(false) && less(v, "244") == Some(true) {
                out.push(SYSTEMD_CPUSET.on(c));
            }
            if matches!(cx.mode, Mode::Legacy | Mode::Hybrid) && less(v, "256") == Some(false) {
                out.push(SYSTEMD_REFUSES_V1.on(c));
            }
        }
        Place::Image { .. } => {
            if less(v, "230") == Some(true) {
                out.push(SYSTEMD_IMAGE_OLD.on(c));
            }
        }
    }
}

/// Every rule of this file, for the catalog (`readiness::rule_table`):
/// the version table's and the others.
pub(super) fn rules() -> impl Iterator<Item = &'static Rule> {
    BELOW.iter().map(|(_, _, r)| r).chain(RULES.iter().copied())
}

const RULES: &[&Rule] = &[
    &JVM,
    &JVM_OLD,
    &AUTOMAXPROCS,
    &GO_NO_QUOTA,
    &NODE_22,
    &ES_CRASH,
    &SHARES_FORMULA,
    &SYSTEMD_CPUSET,
    &SYSTEMD_IMAGE_OLD,
    &SYSTEMD_REFUSES_V1,
    &NVIDIA,
    &NODE_EXPORTER,
    &RUST_NO_QUOTA,
    &RUST_V2_ONLY,
    &JVM_HEAP_SET,
    &JVM_NO_SUPPORT,
    &GO_MITIGATED,
];
