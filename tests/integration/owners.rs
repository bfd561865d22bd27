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

/// The guest's `/kubepods` tree is built by a stand-in script, not by a
/// kubelet: on the capture it is a custom tree named like kubelet's (a
/// name alone makes no owner). The runtime tests give it the state a real
/// kubelet leaves (`/var/lib/kubelet/pods`), the mark that makes it kubelet's.
pub fn with_kubelet_state(mut s: Snapshot) -> Snapshot {
    s.owner_evidence
        .runtime_state
        .insert("kubelet".into(), vec!["/var/lib/kubelet/pods".into()]);
    s
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
            .any(|e| e.text.contains("/etc/systemd/system/v1dirs.service")),
        "{:?}",
        v1.evidence
    );
    assert!(
        v1.evidence
            .iter()
            .any(|e| e.text.contains("trusted.invocation_id"))
    );
    let task = &o["/system.slice/borg.service/borg/task1"];
    assert_eq!(
        (task.manager, task.unit.as_deref()),
        (Manager::Custom, Some("borg.service"))
    );
    assert!(
        task.evidence
            .iter()
            .any(|e| e.text.starts_with("populated by sleep"))
    );
    let batch = &o["/borg-batch/job1"];
    assert_eq!((batch.manager, batch.unit.as_deref()), (Manager::Custom, None));
    assert_eq!(batch.detail.as_deref(), Some("beside systemd's tree"));
    // The stand-in kubelet left no kubelet mark: named like kubelet's, custom.
    let kube = &o["/kubepods/burstable/pod8d6c2a1e-0b7f/c0ffee01"];
    assert_eq!(kube.manager, Manager::Custom);
    assert!(
        kube.evidence
            .iter()
            .any(|c| c.text.contains("named like kubelet's")),
        "{kube:?}"
    );
    let o = owners::detect(&with_kubelet_state(s.clone()));
    let kube = &o["/kubepods/burstable/pod8d6c2a1e-0b7f/c0ffee01"];
    assert_eq!(
        (kube.manager, kube.detail.as_deref()),
        (Manager::Kubelet, Some("cgroupfs driver"))
    );
    assert_eq!(kube.decided_by, owners::detect::Strength::PathShape);
    assert_eq!(
        o["/cgmig.slice/cgmig-test.slice/v1dirs.service"].decided_by,
        owners::detect::Strength::ManagerMark,
        "PID 1 is systemd and the unit has its files"
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
    let ctx = systemd::context(&s);
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
    let s = with_kubelet_state(captured("systemd-hybrid"));
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
        assert!(cgmig::plan::writable_by_cgmig(&p, a.path()).is_ok(), "{a:?}");
    }
    let refusal =
        cgmig::plan::writable_by_cgmig(&p, "/cgmig.slice/cgmig-test.slice/v1dirs.service").unwrap_err();
    assert!(
        refusal.to_string().contains("systemd (v1dirs.service)"),
        "{refusal}"
    );
    assert!(cgmig::plan::writable_by_cgmig(&p, "/kubepods").is_err());
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
    assert!(!s.existing_unit);
    assert!(s.file.text.contains("Delegate="), "{}", s.file.text);
    assert!(
        s.scope_command
            .as_deref()
            .is_some_and(|c| c.contains("-p Delegate=")),
        "{:?}",
        s.scope_command
    );
    assert!(
        s.predicted
            .iter()
            .all(|x| x.starts_with("/system.slice/daemons-manager.service/daemons")),
        "{:?}",
        s.predicted
    );
    assert!(p.findings.iter().any(|f| f.rule == "owners.custom-top-level"));
    assert!(
        p.actions.iter().any(|a| a.path().starts_with("/daemons")),
        "cgmig still builds custom trees"
    );
    assert!(cgmig::plan::writable_by_cgmig(&p, "/daemons").is_ok());
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

/// The per-version directive table against the guest: every v1 directive the
/// guest's units use is, on systemd 252, translated into exactly the v2 value
/// the unified boot's systemd wrote; with the same units, a v258 systemd (the
/// table's boundary) drops each one and the drop-in carries its v2 form.
#[test]
fn directive_table_against_the_guest_values() {
    use cgmig::owners::directives::{self, Handling};
    let before = captured("systemd-hybrid");
    let after = captured("systemd-unified");
    let unit = "v1dirs.service";
    let path = "/cgmig.slice/cgmig-test.slice/v1dirs.service";
    let d = &before.owner_evidence.units[unit].directives;
    let mut ctx = systemd::context(&before);
    assert_eq!(ctx.version, Some(252));
    let guest_v2 = |file: &str| -> Option<String> {
        let ci = after.cgroups().find(|(_, c)| {
            c.path == path
                && after
                    .hierarchy(c.hierarchy)
                    .is_some_and(|(_, h)| h.version == Version::V2)
        })?;
        ci.1.settings.get(file).cloned()
    };
    let mut checked = 0;
    for row in directives::TABLE {
        let Some(value) = d.get(row.directive) else {
            continue;
        };
        let Some(file) = row.file else { continue };
        assert_eq!(
            directives::handling(row.directive, Some(252)),
            Some(Handling::Translated { warns: true })
        );
        ctx.version = Some(252);
        let (written, dropped) = systemd::predict_v2(unit, d, &ctx);
        let ours = written.iter().find(|w| w.file == file).map(|w| w.value.clone());
        let guest = guest_v2(file).map(|g| cgmig::verify::normalise(file, &g));
        assert_eq!(
            ours.as_deref().map(|o| cgmig::verify::normalise(file, o)),
            guest,
            "{}={value} -> {file}",
            row.directive
        );
        assert!(dropped.is_empty());
        ctx.version = Some(row.ignored_from);
        let (written, dropped) = systemd::predict_v2(unit, d, &ctx);
        assert!(!written.iter().any(|w| w.from.starts_with(row.directive)));
        let x = dropped
            .iter()
            .find(|x| x.directive == format!("{}={value}", row.directive))
            .unwrap_or_else(|| panic!("{} not dropped on {}", row.directive, row.ignored_from));
        // The replacement restores exactly what systemd 252 wrote.
        let repl = x.replacement.as_deref().unwrap();
        let (_, rv) = repl.split_once('=').unwrap();
        assert_eq!(Some(rv.to_string()), guest, "{repl}");
        checked += 1;
    }
    assert_eq!(
        checked, 3,
        "CPUShares, MemoryLimit and BlockIOWeight on the guest"
    );
}

/// Every fixture host's custom-manager trees: on a systemd host each
/// top-level custom tree (at the top of the plan, or moved by the plan into
/// the unit its processes run in) gets a suggested unit or drop-in with
/// `Delegate=`, and its predicted v2 tree lies under the suggested place.
#[test]
fn every_fixture_top_level_custom_tree_gets_a_unit() {
    let mut snaps: Vec<(String, Snapshot)> = crate::util::host_names()
        .into_iter()
        .map(|n| (n.clone(), crate::util::host(&n).scan()))
        .collect();
    snaps.push(("systemd-hybrid".into(), captured("systemd-hybrid")));
    let mut suggested = 0;
    for (name, s) in &snaps {
        let p = plan(s, &rules());
        // Every owners finding is a row of the one table, word for word.
        for f in p.findings.iter().filter(|f| f.rule.starts_with("owners.")) {
            let row = owners::findings::ALL
                .iter()
                .find(|k| k.id == f.rule)
                .unwrap_or_else(|| panic!("{name}: {} is not in owners::findings::ALL", f.rule));
            assert_eq!(
                (f.severity, f.title.as_str(), f.remediation.as_str()),
                (row.severity, row.title, row.remediation),
                "{name}: {}",
                f.rule
            );
        }
        if p.owners.systemd.is_none() {
            assert!(p.owners.suggestions.is_empty(), "{name}");
            continue;
        }
        let map = owners::detect(s);
        for n in &p.nodes {
            let Some(o) = p.owners.nodes.get(&n.path) else {
                continue;
            };
            if o.manager != Manager::Custom {
                continue;
            }
            let top = n.parent_path() == Some("/");
            let moved_top = n
                .parent_path()
                .and_then(|pp| p.owners.nodes.get(pp))
                .is_some_and(|po| {
                    po.manager == Manager::Systemd
                        && n.origins.iter().any(|x| {
                            cgmig::model::path::parent(&x.path) == Some("/")
                                && map
                                    .get(&x.path)
                                    .is_some_and(|m| m.manager == Manager::Custom && m.unit.is_none())
                        })
                });
            if !(top || moved_top) {
                continue;
            }
            let sg = p
                .owners
                .suggestions
                .iter()
                .find(|x| x.placed_at == n.path || x.path == n.path)
                .unwrap_or_else(|| panic!("{name}: no unit suggested for {}", n.path));
            assert!(sg.file.text.contains("Delegate="), "{name}: {}", sg.file.text);
            assert!(!sg.predicted.is_empty(), "{name}: {}", n.path);
            for x in &sg.predicted {
                assert!(
                    x == &sg.placed_at || x.starts_with(&format!("{}/", sg.placed_at)),
                    "{name}: {x} not under {}",
                    sg.placed_at
                );
            }
            assert!(
                p.findings
                    .iter()
                    .any(|f| f.rule == "owners.custom-top-level" && f.why.contains(&sg.path)),
                "{name}: {}",
                sg.path
            );
            suggested += 1;
        }
    }
    assert!(suggested >= 15, "{suggested} suggestions over the fixtures");
}

/// The guest's `/borg-batch`: populated by borg.service's processes, placed by
/// the plan in borg.service; the plan names that unit, its delegation drop-in
/// (one file with the controllers of the whole delegated subtree) and the
/// tree's v2 place.
#[test]
fn the_guests_top_level_batch_tree_lives_in_its_units_delegated_subtree() {
    let p = plan(&captured("systemd-hybrid"), &rules());
    let s = p
        .owners
        .suggestions
        .iter()
        .find(|s| s.path == "/borg-batch")
        .expect("a suggestion for /borg-batch");
    assert_eq!(s.unit, "borg.service");
    assert!(s.existing_unit);
    assert_eq!(s.placed_at, "/system.slice/borg.service/borg-batch");
    assert_eq!(s.controllers, ["cpu", "memory"]);
    assert_eq!(
        s.predicted,
        [
            "/system.slice/borg.service/borg-batch",
            "/system.slice/borg.service/borg-batch/job1"
        ]
    );
    let d = p
        .owners
        .delegations
        .iter()
        .find(|d| d.unit == "borg.service")
        .unwrap();
    assert_eq!(
        Some(&s.file),
        d.dropin.as_ref(),
        "the same drop-in as the delegation"
    );
    assert!(s.file.path.ends_with("borg.service.d/50-cgmig-delegate.conf"));
}

/// The audit shows each cgroup's owner and evidence: in its JSON (`owners`,
/// by path) and in its table (one line per subtree, with the evidence).
#[test]
fn the_audit_shows_owners_and_evidence() {
    let snap = hosts_dir().join("systemd-hybrid.snapshot.json");
    let snap = snap.to_str().unwrap();
    let out = crate::util::cgmig(&["audit", "--snapshot", snap, "--format", "json"]);
    assert_ne!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let unit = &v["owners"]["/cgmig.slice/cgmig-test.slice/v1dirs.service"];
    assert_eq!(unit["manager"], "systemd");
    assert_eq!(unit["unit"], "v1dirs.service");
    assert!(
        unit["evidence"].as_array().unwrap().iter().any(|e| e["text"]
            .as_str()
            .unwrap()
            .contains("/etc/systemd/system/v1dirs.service")),
        "{unit}"
    );
    let batch = &v["owners"]["/borg-batch/job1"];
    assert_eq!(batch["manager"], "custom");
    assert!(
        batch["evidence"].to_string().contains("populated by sleep"),
        "{batch}"
    );
    // The guest's stand-in kubelet left no kubelet mark.
    assert_eq!(v["owners"]["/kubepods"]["manager"], "custom");
    assert_eq!(
        v["owners"]["/cgmig.slice/cgmig-test.slice/v1dirs.service"]["decided_by"],
        "manager-mark"
    );
    let out = crate::util::cgmig(&["audit", "--snapshot", snap]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("/borg-batch  custom (beside systemd's tree)"),
        "{text}"
    );
    assert!(text.contains("evidence: populated by sleep (145)"), "{text}");
}
