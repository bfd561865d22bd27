//! Audit: every finding rule fires where its feature is used and stays silent
//! where it is not; every fixture host audits to a reviewed summary.

use std::collections::BTreeSet;
use std::fmt::Write;

use cgmig::assess::audit;
use cgmig::audit::{AuditFormat, Report, Verdict, render};
use cgmig::fixture::HostSpec;

use crate::util::*;

fn audit_host(name: &str) -> Report {
    audit(&host(name).scan(), &rules())
}

/// A compact, reviewable rendering: verdict, grouped findings, conversions.
fn summary(r: &Report) -> String {
    let mut s = format!("verdict: {:?}\n", r.verdict);
    for g in &r.groups {
        let _ = writeln!(
            s,
            "{:8} {:40} x{}  e.g. {}",
            g.severity, g.rule, g.count, g.examples[0]
        );
    }
    for c in &r.conversions {
        let inputs: Vec<String> = c
            .conversion
            .inputs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let _ = writeln!(
            s,
            "convert {}:{} {} -> {}={}{}",
            c.hierarchy,
            c.path,
            inputs.join(" "),
            c.conversion.target,
            c.conversion.value.replace('\n', "; "),
            c.conversion
                .formula
                .as_ref()
                .map(|f| format!(" [{f}]"))
                .unwrap_or_default()
        );
    }
    s
}

/// A fixture host audits to its reviewed summary.
fn audits_to_its_reviewed_summary(name: &str) {
    let r = audit_host(name);
    insta::assert_snapshot!(format!("audit-{name}"), summary(&r));
}
per_host!(reviewed_summary, audits_to_its_reviewed_summary);

#[test]
fn every_finding_rule_fires_on_some_fixture() {
    let rules = rules();
    let mut fired: BTreeSet<String> = BTreeSet::new();
    let mut converted: BTreeSet<String> = BTreeSet::new();
    for name in host_names() {
        let r = audit_host(&name);
        fired.extend(r.findings.iter().map(|f| f.rule.to_string()));
        converted.extend(r.conversions.iter().map(|c| c.conversion.rule.clone()));
    }
    // Rules whose trigger no fixture can show, with the reason.
    let untestable: &[(&str, &str)] = &[
        (
            "host.no-cgroupfs",
            "covered by quiet_host_is_silent_where_features_are_unused (empty mount table)",
        ),
        (
            "host.kernel-controller-unknown",
            "covered by kernel_readiness_follows_the_vendor_series (an el8 build before 8.2)",
        ),
        (
            "host.kernel-no-thread-mode",
            "covered by assessment::a_split_thread_layout_needs_thread_mode_in_every_command (libvirt on 4.9)",
        ),
        (
            "host.release-agent",
            "only when a hierarchy's root can't be read; the root file rule covers readable ones",
        ),
    ];
    let mut missing = Vec::new();
    for r in rules.rules() {
        let id = &r.rule.id;
        if untestable.iter().any(|(u, _)| u == id) {
            continue;
        }
        if r.rule.finding.is_some() && !fired.contains(id) {
            missing.push(format!("finding {id}"));
        }
        if r.rule.convert.is_some() && r.rule.finding.is_none() && !converted.contains(id) {
            missing.push(format!("conversion {id}"));
        }
    }
    // Conversions nobody uses in fixtures yet are allowed only if listed here.
    let allowed: &[&str] = &[
        "conversion cpu.uclamp.min",
        "conversion cpu.uclamp.max",
        "conversion blkio.bfq.weight",
        "conversion blkio.bfq.weight_device",
        "conversion hugetlb.rsvd.limit",
        "conversion rdma.max",
        "conversion misc.max",
        "conversion cpu.cfs_period_us",
    ];
    missing.retain(|m| !allowed.contains(&m.as_str()));
    assert!(missing.is_empty(), "rules no fixture exercises: {missing:#?}");
}

/// The same layout as centos7-legacy with every setting at its default, no
/// owners, no boot parameters, only kernel threads and PID 1.
fn quiet_spec() -> HostSpec {
    let mut spec = HostSpec::load(&hosts_dir().join("centos7-legacy.yaml")).unwrap();
    spec.cmdline = "ro quiet".into();
    spec.kernel = "6.1.0".into();
    // Not CentOS 7's os-release and systemd 219 either.
    spec.files.clear();
    for h in &mut spec.hierarchies {
        for c in h.cgroups.values_mut() {
            c.settings.clear();
            c.owner = None;
        }
        for m in &mut h.mounts {
            m.options.retain(|o| !o.starts_with("release_agent"));
        }
    }
    spec.processes.retain(|p| p.pid <= 2);
    spec.processes[0].cgroups.clear();
    spec
}

#[test]
fn quiet_host_is_silent_where_features_are_unused() {
    let r = audit(&build_spec(quiet_spec()).scan(), &rules());
    let ids: BTreeSet<&str> = r.findings.iter().map(|f| f.rule.as_str()).collect();
    let expected: BTreeSet<&str> = [
        "host.legacy-mode",
        "host.named-hierarchy",
        "host.controller-v1-bound",
    ]
    .into_iter()
    .collect();
    assert_eq!(ids, expected, "{}", summary(&r));
    assert!(r.conversions.is_empty());
    assert_eq!(
        r.verdict,
        Verdict::ReadyWithChanges,
        "named hierarchy is a warning"
    );

    // No cgroup filesystem at all.
    let mut none = quiet_spec();
    none.hierarchies.clear();
    let r = audit(&build_spec(none).scan(), &rules());
    assert!(r.findings.iter().any(|f| f.rule == "host.no-cgroupfs"));
}

#[test]
fn pure_v2_is_ready() {
    let r = audit_host("pure-v2");
    assert_eq!(r.verdict, Verdict::Ready, "{}", summary(&r));
    assert!(!r.fails(cgmig::audit::FailOn::Warning));
}

#[test]
fn blockers_and_fail_on() {
    use cgmig::audit::FailOn;
    let r = audit_host("legacy-exotic");
    assert_eq!(r.verdict, Verdict::Blocked);
    let b = r
        .findings
        .iter()
        .find(|f| f.rule == "host.split-threads-domain")
        .unwrap();
    assert!(
        b.why.contains("process 900 (qemu-dm-1) has 3 threads across"),
        "{}",
        b.why
    );
    assert!(r.fails(FailOn::Blocker) && r.fails(FailOn::Error) && !r.fails(FailOn::Never));
    let lib = audit_host("libvirt-vcpu-threads");
    assert_eq!(lib.verdict, Verdict::ReadyWithChanges);
    assert!(
        lib.findings
            .iter()
            .any(|f| f.rule == "host.split-threads-threaded")
    );
    assert!(!lib.fails(FailOn::Blocker));
    assert!(
        lib.fails(FailOn::Error),
        "systemd.unified_cgroup_hierarchy=0 is an error"
    );
}

/// A hybrid host half way through a staged rollout: io is on cgroup2 and a
/// process's threads are split there inside a threaded subtree (as `cgmig
/// apply --stage` builds it), and in cpu,cpuacct on v1. Only the v1 split is
/// a finding; the cgroup2 one is already the v2 form, not a blocker.
#[test]
fn thread_split_on_cgroup2_is_not_a_v1_finding() {
    let spec: HostSpec = serde_yaml_ng::from_str(
        r"
description: stage 1 of a staged rollout applied, io on cgroup2
kernel: 6.1.0-50-amd64
cmdline: root=/dev/vda1 cgroup_no_v1=blkio systemd.unified_cgroup_hierarchy=0
hostname: half-way
hierarchies:
  - id: 0
    controllers: [io]
    mounts: [{point: /sys/fs/cgroup/unified, source: cgroup2}]
    cgroups:
      /batch: {settings: {cgroup.subtree_control: io}}
      /batch/job2: {settings: {cgroup.type: domain threaded}}
      /batch/job2/rt: {settings: {cgroup.type: threaded}}
  - id: 2
    controllers: [cpu, cpuacct]
    mounts: [{point: '/sys/fs/cgroup/cpu,cpuacct'}]
    cgroups: {/batch/job2: {}, /batch/job2/rt: {}}
processes:
  - pid: 601
    comm: python3
    cmdline: [python3, job2]
    cgroups: {0: /batch/job2, 2: /batch/job2}
    threads:
      - {tid: 610, comm: job2-rt, cgroups: {0: /batch/job2/rt, 2: /batch/job2/rt}}
",
    )
    .unwrap();
    let r = audit(&build_spec(spec).scan(), &rules());
    let rules_hit: Vec<&str> = r.findings.iter().map(|f| f.rule.as_str()).collect();
    assert!(
        !rules_hit.contains(&"host.split-threads-domain"),
        "a cgroup2 threaded subtree read as a v1 domain split: {rules_hit:?}"
    );
    let threaded = r
        .findings
        .iter()
        .find(|f| f.rule == "host.split-threads-threaded")
        .expect("the v1 cpu,cpuacct split is still reported");
    assert!(threaded.why.contains("cpu,cpuacct"), "{}", threaded.why);
    assert!(!threaded.why.contains("unified"), "{}", threaded.why);
}

#[test]
fn devices_remediation_lists_systemd_lines() {
    // Docker's containers: Docker rebuilds their device lists as BPF, so the
    // finding is the runtime's (info), decided where it is made, with the
    // rule's explanation kept.
    let r = audit_host("docker-cgroupfs");
    let f = r
        .findings
        .iter()
        .find(|f| f.value.as_deref().is_some_and(|v| v.starts_with("c 1:3")))
        .unwrap();
    assert_eq!(f.rule, "owners.runtime-device-policy");
    assert_eq!(f.severity, cgmig::rules::Severity::Info);
    assert!(f.why.contains("3 entries"), "{}", f.why);
    // A custom manager's device list stays the rule's error, with the
    // systemd lines that re-express it.
    let mut spec = HostSpec::load(&hosts_dir().join("docker-cgroupfs.yaml")).unwrap();
    let devices = spec
        .hierarchies
        .iter_mut()
        .find(|h| h.controllers.iter().any(|c| c == "devices"))
        .unwrap();
    let docker: Vec<String> = devices
        .cgroups
        .keys()
        .filter(|k| k.starts_with("/docker/"))
        .cloned()
        .collect();
    for k in docker {
        let c = devices.cgroups.remove(&k).unwrap();
        devices.cgroups.insert(k.replace("/docker/", "/jobs/"), c);
    }
    let r = audit(&build_spec(spec).scan(), &rules());
    let f = r
        .findings
        .iter()
        .find(|f| f.rule == "devices.list" && f.value.as_deref().is_some_and(|v| v.starts_with("c 1:3")))
        .unwrap();
    assert_eq!(f.severity, cgmig::rules::Severity::Error);
    assert!(
        f.remediation.contains(
            "DeviceAllow=/dev/char/1:3 rwm; DeviceAllow=/dev/char/1:5 rwm; DeviceAllow=char-136 rwm"
        ),
        "{}",
        f.remediation
    );
}

/// `host.kernel-too-old` names the v2 file and the kernel it came with, for
/// files newer than a controller the kernel offers; a controller the kernel
/// lacks on cgroup2 (or no cgroup2 at all) is its controller's one finding,
/// not one more per file.
#[test]
fn kernel_too_old_names_the_features() {
    let too_old = |host: &str| -> Vec<String> {
        audit_host(host)
            .findings
            .iter()
            .filter(|f| f.rule == "host.kernel-too-old")
            .map(|f| f.why.clone())
            .collect()
    };
    // Amazon Linux 2 (4.14): io is on cgroup2, io.weight came with 5.4; cpu
    // is not (4.15): `host.kernel-lacks-controller` says so, not cpu.max.
    let al2 = too_old("docker-cgroupfs");
    assert!(
        al2.iter()
            .any(|w| w.contains("io.weight") && w.contains("kernel 5.4")),
        "{al2:#?}"
    );
    assert!(!al2.iter().any(|w| w.contains("cpu.")), "{al2:#?}");
    // CentOS 7 (3.10, no cgroup2): `host.kernel-no-cgroup2` alone.
    assert_eq!(too_old("centos7-legacy"), Vec::<String>::new());
}

#[test]
fn many_identical_findings_fold_into_one_line() {
    use cgmig::fixture::CgroupSpec;
    let mut spec = quiet_spec();
    let cpu = spec.hierarchies.iter_mut().find(|h| h.id == 11).unwrap();
    for i in 0..5000 {
        let mut c = CgroupSpec::default();
        c.settings.insert("cpu.rt_runtime_us".into(), "1000".into());
        cpu.cgroups.insert(format!("/rt/job{i}"), c);
    }
    let r = audit(&build_spec(spec).scan(), &rules());
    let g = r.groups.iter().find(|g| g.rule == "cpu.rt_runtime_us").unwrap();
    assert_eq!(g.count, 5000);
    assert_eq!(g.examples.len(), 3);
    let table = render(&r, AuditFormat::Table).unwrap();
    assert_eq!(
        table.matches("cpu.rt_runtime_us").count(),
        1,
        "one line, not 5000"
    );
}

/// A fixture host's audit renders in every format; the machine formats parse.
fn renders_and_machine_formats_parse(name: &str) {
    let r = audit_host(name);
    for f in [AuditFormat::Table, AuditFormat::Markdown, AuditFormat::Prometheus] {
        assert!(!render(&r, f).unwrap().is_empty());
    }
    let j: Report = serde_json::from_str(&render(&r, AuditFormat::Json).unwrap()).unwrap();
    assert_eq!(j, r);
    let y: Report = serde_yaml_ng::from_str(&render(&r, AuditFormat::Yaml).unwrap()).unwrap();
    assert_eq!(y, r);
    let prom = render(&r, AuditFormat::Prometheus).unwrap();
    for line in prom.lines().filter(|l| !l.starts_with('#')) {
        let (metric, value) = line.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
        assert!(metric.starts_with("cgmig_"), "{line}");
    }
}
per_host!(every_format, renders_and_machine_formats_parse);

/// The kernel findings follow what the kernel offers: cgroup2 at all, then
/// each controller the layout sets, by the vendor series where there is one
/// (RHEL 8 backports cpuset to 4.18) and by the upstream version otherwise.
#[test]
fn kernel_readiness_follows_the_vendor_series() {
    use cgmig::model::builder::SnapshotBuilder;
    let layout = |kernel: &str| {
        SnapshotBuilder::new()
            .kernel(kernel)
            .v1(2, &["cpuset"])
            .setting(2, "/job", "cpuset.cpus", "0-1")
            .setting(2, "/job", "cpuset.mems", "0")
            .v1(3, &["memory"])
            .setting(3, "/job", "memory.limit_in_bytes", "1073741824")
            .build()
    };
    let kernel_findings = |kernel: &str| -> Vec<(String, String)> {
        let r = audit(&layout(kernel), &rules());
        r.findings
            .iter()
            .filter(|f| f.rule.starts_with("host.kernel") || f.rule.starts_with("host.systemd"))
            .map(|f| (format!("{} {:?}", f.rule, f.severity), f.why.clone()))
            .collect()
    };
    // The rules that fired, once each (kernel-too-old comes once per file).
    let ids = |kernel: &str| -> Vec<String> {
        let mut v: Vec<String> = kernel_findings(kernel).into_iter().map(|(id, _)| id).collect();
        v.dedup();
        v
    };
    // No cgroup2: one blocker, no per-file finding besides it.
    assert_eq!(ids("3.10.0-1160.el7.x86_64"), ["host.kernel-no-cgroup2 Blocker"]);
    let el7 = &kernel_findings("3.10.0-1160.el7.x86_64")[0].1;
    assert!(el7.contains("need 5.0 or later (cpuset)"), "{el7}");
    // Upstream 4.18: memory is there, cpuset is not; the controller's
    // finding names cpuset's files (no per-file finding for them besides).
    assert_eq!(ids("4.18.20"), ["host.kernel-lacks-controller Blocker"]);
    let why = &kernel_findings("4.18.20")[0].1;
    assert!(
        why.contains("cpuset (1 cgroups set cpuset.cpus, cpuset.mems)") && why.contains("4ec22e9c5a90"),
        "{why}"
    );
    // RHEL 8.0: nothing tells; a warning that says so, not a blocker, and
    // it speaks for cpuset's files (no per-file error besides).
    assert_eq!(
        ids("4.18.0-80.el8.x86_64"),
        ["host.kernel-controller-unknown Warning"]
    );
    // RHEL 8.7: offered; nothing to say.
    assert!(
        ids("4.18.0-425.19.2.el8_7.x86_64").is_empty(),
        "{:?}",
        kernel_findings("4.18.0-425.19.2.el8_7.x86_64")
    );
    assert!(ids("5.10.0-28-amd64").is_empty());
}

/// The disks' scheduler decides which weight file is written, so it decides
/// which file's first kernel the audit asks about: on a 4.15 host whose disk
/// uses BFQ the weight goes to io.bfq.weight (4.12) and io.weight's 5.4
/// (iocost) does not matter; with no scheduler shown io.weight is written.
#[test]
fn the_weight_file_the_disks_read_decides_its_kernel_finding() {
    use cgmig::model::builder::SnapshotBuilder;
    let host = |bfq: bool| {
        let b = SnapshotBuilder::new()
            .kernel("4.15.0-112-generic")
            .v1(2, &["blkio"])
            .setting(2, "/db", "blkio.weight", "800");
        if bfq {
            b.block_device("sda", "8:0", "bfq")
        } else {
            b
        }
        .build()
    };
    let too_old = |bfq: bool| -> Vec<String> {
        audit(&host(bfq), &rules())
            .findings
            .iter()
            .filter(|f| f.rule == "host.kernel-too-old")
            .filter_map(|f| f.file.clone())
            .collect()
    };
    assert_eq!(too_old(false), ["io.weight"]);
    assert!(too_old(true).is_empty(), "{:?}", too_old(true));
    let p = cgmig::plan::plan(&host(true), &rules());
    let files: Vec<&str> = p
        .nodes
        .iter()
        .flat_map(|n| &n.settings)
        .map(|s| s.file.as_str())
        .collect();
    assert_eq!(files, ["io.bfq.weight"]);
    assert!(
        p.findings
            .iter()
            .any(|f| f.rule == "plan.io-weight-bfq" && f.why.contains("sda"))
    );
}
