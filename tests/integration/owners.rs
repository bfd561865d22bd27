//! Ownership and systemd predictions on the snapshots captured from a real
//! Debian 12 guest (systemd 252) by scripts/vm-systemd: detection, the plan
//! post-pass, and table tests of systemd's directive mappings against the
//! values the guest's systemd wrote.

use cgmig::model::{Snapshot, Version};
use cgmig::owners::{self, Manager, systemd};
use cgmig::plan::{Action, plan, validate};

use crate::util::{hosts_dir, rules};

pub fn captured(name: &str) -> Snapshot {
    let p = hosts_dir().join(format!("{name}.snapshot.json"));
    cgmig::cli::read_snapshot(&p).unwrap_or_else(|e| panic!("{e:#}"))
}

/// A setting of a cgroup in the hierarchy that carries `controller`.
fn v1_value(s: &Snapshot, controller: &str, path: &str, file: &str) -> Option<String> {
    let (hid, _) = s
        .hierarchies()
        .into_iter()
        .find(|(_, h)| h.version == Version::V1 && h.controllers.iter().any(|c| c.as_str() == controller))?;
    let id = match &s.graph[hid] {
        cgmig::model::Node::Hierarchy(h) => h.id,
        _ => return None,
    };
    let ci = s.find_cgroup(id, path)?;
    s.cgroup(ci).settings.get(file).cloned()
}

#[test]
fn owners_of_the_guest_cgroups() {
    let s = captured("systemd-hybrid");
    assert!(owners::is_systemd_host(&s));
    assert_eq!(s.owner_evidence.systemd_version, Some(252));
    let o = owners::detect(&s);
    let v1 = &o["/cgmig.slice/cgmig-test.slice/v1dirs.service"];
    assert_eq!(
        (v1.manager, v1.unit.as_deref()),
        (Manager::Systemd, Some("v1dirs.service"))
    );
    assert!(
        v1.evidence
            .iter()
            .any(|e| e.contains("/etc/systemd/system/v1dirs.service")),
        "{:?}",
        v1.evidence
    );
    assert!(v1.evidence.iter().any(|e| e.contains("trusted.invocation_id")));
    let task = &o["/system.slice/borg.service/borg/task1"];
    assert_eq!(
        (task.manager, task.unit.as_deref()),
        (Manager::Custom, Some("borg.service"))
    );
    assert!(task.evidence.iter().any(|e| e.starts_with("populated by sleep")));
    let batch = &o["/borg-batch/job1"];
    assert_eq!((batch.manager, batch.unit.as_deref()), (Manager::Custom, None));
    assert_eq!(batch.detail.as_deref(), Some("beside systemd's tree"));
    let kube = &o["/kubepods/burstable/pod8d6c2a1e-0b7f/c0ffee01"];
    assert_eq!(
        (kube.manager, kube.detail.as_deref()),
        (Manager::Kubelet, Some("cgroupfs driver"))
    );
    assert_eq!(
        o["/system.slice/systemd-journald.service"].manager,
        Manager::Systemd
    );
}

/// What systemd 252 wrote on the hybrid boot, against cgmig's reverse
/// mappings of the units' directives (the guest's own unit files).
#[test]
fn systemd_v1_mappings_match_the_guest() {
    let s = captured("systemd-hybrid");
    let ctx = owners::annotate::systemd_context(&s);
    assert_eq!(
        ctx.tasks_base,
        Some(23180),
        "min(threads-max, pid_max - 1) on the guest"
    );
    let table = [
        (
            "v1dirs.service",
            "/cgmig.slice/cgmig-test.slice/v1dirs.service",
            "cpu",
            "cpu.shares",
            "2048",
        ),
        (
            "v1dirs.service",
            "/cgmig.slice/cgmig-test.slice/v1dirs.service",
            "memory",
            "memory.limit_in_bytes",
            "268435456",
        ),
        (
            "v1dirs.service",
            "/cgmig.slice/cgmig-test.slice/v1dirs.service",
            "pids",
            "pids.max",
            "64",
        ),
        (
            "v2dirs.service",
            "/cgmig.slice/cgmig-test.slice/v2dirs.service",
            "cpu",
            "cpu.shares",
            "512",
        ),
        (
            "v2dirs.service",
            "/cgmig.slice/cgmig-test.slice/v2dirs.service",
            "pids",
            "pids.max",
            "3477",
        ),
        (
            "cgmig-test.slice",
            "/cgmig.slice/cgmig-test.slice",
            "cpu",
            "cpu.cfs_quota_us",
            "50000",
        ),
        (
            "cgmig-test.slice",
            "/cgmig.slice/cgmig-test.slice",
            "cpu",
            "cpu.cfs_period_us",
            "100000",
        ),
        (
            "dbus.service",
            "/system.slice/dbus.service",
            "pids",
            "pids.max",
            "3477",
        ),
    ];
    for (unit, path, ctl, file, guest) in table {
        assert_eq!(
            v1_value(&s, ctl, path, file).as_deref(),
            Some(guest),
            "{path} {file} on the guest"
        );
        let d = &s.owner_evidence.units[unit].directives;
        let ours = systemd::expected_v1(unit, d, &ctx);
        assert_eq!(ours.get(file).map(String::as_str), Some(guest), "{unit}: {file}");
    }
}

#[test]
fn plan_leaves_systemd_and_runtimes_alone_and_predicts_systemd() {
    let s = captured("systemd-hybrid");
    let p = plan(&s, &rules());
    assert!(validate(&p).is_empty(), "{:#?}", validate(&p));
    let unit = |u: &str| p.owners.units.iter().find(|x| x.unit == u).unwrap();
    let val = |u: &str, f: &str| {
        unit(u)
            .files
            .iter()
            .find(|w| w.file == f)
            .map(|w| w.value.clone())
    };
    assert_eq!(
        val("v1dirs.service", "cpu.weight").as_deref(),
        Some("200"),
        "systemd's formula, not OCI's 174"
    );
    assert_eq!(val("v1dirs.service", "memory.max").as_deref(), Some("268435456"));
    assert_eq!(val("v1dirs.service", "io.weight").as_deref(), Some("default 50"));
    assert_eq!(val("v1dirs.service", "pids.max").as_deref(), Some("64"));
    assert_eq!(val("v2dirs.service", "cpu.weight").as_deref(), Some("50"));
    assert_eq!(val("v2dirs.service", "pids.max").as_deref(), Some("3477"));
    assert_eq!(
        val("cgmig-test.slice", "cpu.max").as_deref(),
        Some("50000 100000")
    );
    let dropin = unit("v1dirs.service")
        .dropin
        .as_ref()
        .expect("drop-in for the deprecated directives");
    assert_eq!(
        dropin.path,
        "/etc/systemd/system/v1dirs.service.d/50-cgmig-v2.conf"
    );
    assert!(
        dropin
            .text
            .contains("[Service]\nCPUWeight=200\nMemoryMax=268435456\nIOWeight=50\n"),
        "{}",
        dropin.text
    );
    // No action touches systemd's or kubelet's cgroups.
    for a in &p.actions {
        let o = p.owners.owner_of(a.path());
        assert!(
            o.is_none_or(|o| o.manager == Manager::Custom)
                || matches!(a, Action::EnableControllers { .. })
                    && p.owners.delegations.iter().any(|d| d.path == a.path()),
            "{a:?} writes into {:?}",
            o.map(|o| o.label())
        );
        assert!(owners::writable_by_cgmig(&p, a.path()).is_ok(), "{a:?}");
    }
    let refusal = owners::writable_by_cgmig(&p, "/cgmig.slice/cgmig-test.slice/v1dirs.service").unwrap_err();
    assert!(
        refusal.to_string().contains("systemd (v1dirs.service)"),
        "{refusal}"
    );
    assert!(owners::writable_by_cgmig(&p, "/kubepods").is_err());
    // The custom manager's tree inside borg.service needs delegation.
    let d = p
        .owners
        .delegations
        .iter()
        .find(|d| d.unit == "borg.service")
        .unwrap();
    assert!(!d.delegates);
    assert_eq!(d.controllers, ["cpu", "memory"]);
    assert!(d.dropin.as_ref().unwrap().text.contains("Delegate=cpu memory"));
    assert!(p.findings.iter().any(|f| f.rule == "owners.delegate-needed"));
    // kubelet's cgroupfs tree: settings to change, tree predicted, no actions.
    let k = p
        .owners
        .runtimes
        .iter()
        .find(|r| r.manager == Manager::Kubelet)
        .unwrap();
    assert!(k.changes.iter().any(|c| c.contains("cgroupDriver: systemd")));
    assert!(
        k.predicted
            .iter()
            .any(|x| x.ends_with("kubepods-burstable-pod8d6c2a1e_0b7f.slice/cri-containerd-c0ffee01.scope"))
    );
    // journald's and logind's device policies are systemd's, not errors.
    assert!(!p.findings.iter().any(|f| f.rule == "devices.list"));
    assert!(
        p.findings
            .iter()
            .any(|f| f.rule == "owners.systemd-device-policy")
    );
    // Deprecated directives are announced.
    assert!(
        p.findings
            .iter()
            .any(|f| f.rule == "owners.directive-deprecated" && f.why.contains("CPUShares=2048"))
    );
}

#[test]
fn newer_systemd_drops_the_v1_directives() {
    let mut s = captured("systemd-hybrid");
    s.owner_evidence.systemd_version = Some(258);
    let p = plan(&s, &rules());
    let u = p
        .owners
        .units
        .iter()
        .find(|x| x.unit == "v1dirs.service")
        .unwrap();
    assert!(u.files.iter().all(|w| w.file == "pids.max"), "{:?}", u.files);
    let dropped: Vec<&str> = u.dropped.iter().map(|d| d.directive.as_str()).collect();
    assert_eq!(
        dropped,
        ["CPUShares=2048", "MemoryLimit=256M", "BlockIOWeight=250"]
    );
    assert!(
        p.findings
            .iter()
            .filter(|f| f.rule == "owners.directive-dropped")
            .count()
            >= 3
    );
}

#[test]
fn a_value_written_by_hand_into_a_unit_is_flagged_with_its_drop_in() {
    let mut s = captured("systemd-hybrid");
    let (hid, _) = s
        .hierarchies()
        .into_iter()
        .find(|(_, h)| h.controllers.iter().any(|c| c.as_str() == "cpu"))
        .unwrap();
    let id = match &s.graph[hid] {
        cgmig::model::Node::Hierarchy(h) => h.id,
        _ => unreachable!(),
    };
    let ci = s.find_cgroup(id, "/system.slice/dbus.service").unwrap();
    if let cgmig::model::Node::Cgroup(c) = &mut s.graph[ci] {
        c.settings.insert("cpu.shares".into(), "4096".into());
    }
    let p = plan(&s, &rules());
    let u = p.owners.units.iter().find(|x| x.unit == "dbus.service").unwrap();
    assert!(
        u.dropin.as_ref().unwrap().text.contains("CPUWeight=400"),
        "{:?}",
        u.dropin
    );
    assert!(
        p.findings
            .iter()
            .any(|f| f.rule == "owners.set-outside-unit" && f.why.contains("cpu.shares=4096"))
    );
}

#[test]
fn snapshot_evidence_round_trips() {
    let s = captured("systemd-hybrid");
    let text = serde_json::to_string(&s).unwrap();
    let back: Snapshot = serde_json::from_str(&text).unwrap();
    assert_eq!(back, s);
    assert!(!s.owner_evidence.units["v1dirs.service"].directives.is_empty());
}

#[test]
fn top_level_custom_trees_get_a_suggested_unit_and_keep_their_actions() {
    let p = plan(&crate::util::host("legacy-exotic").scan(), &rules());
    let s = p
        .owners
        .suggestions
        .iter()
        .find(|s| s.path == "/daemons")
        .expect("a suggestion for /daemons");
    assert_eq!(s.unit, "daemons-manager.service");
    assert_eq!(s.placed_at, "/system.slice/daemons-manager.service/daemons");
    assert!(s.file.text.contains("Delegate="), "{}", s.file.text);
    assert!(p.findings.iter().any(|f| f.rule == "owners.custom-top-level"));
    assert!(
        p.actions.iter().any(|a| a.path().starts_with("/daemons")),
        "cgmig still builds custom trees"
    );
    assert!(owners::writable_by_cgmig(&p, "/daemons").is_ok());
}

#[test]
fn without_systemd_every_cgroup_is_a_custom_managers() {
    let p = plan(&crate::util::host("borg-like").scan(), &rules());
    assert!(p.owners.systemd.is_none());
    assert!(
        p.owners
            .nodes
            .values()
            .all(|o| o.manager == Manager::Custom && o.unit.is_none())
    );
    assert!(p.owners.units.is_empty() && p.owners.suggestions.is_empty());
    assert!(p.actions.iter().any(|a| matches!(a, Action::Create { .. })));
}
