//! `cgmig verify` on the two boots captured from the real systemd guest:
//! the plan made on the hybrid boot against the unified boot's snapshot, the
//! systemd v2 mappings against what the guest's systemd wrote, mutations
//! that must become unannounced differences, and the command line.

use cgmig::model::{Node, Snapshot, Version};
use cgmig::owners::systemd;
use cgmig::plan::plan;
use cgmig::verify::{CheckKind, verify};

use crate::owners::captured;
use crate::util::{cgmig, rules};

fn v2_set(s: &mut Snapshot, path: &str, file: &str, value: &str) {
    let ci = s
        .cgroups()
        .find(|(_, c)| {
            c.path == path
                && s.hierarchy(c.hierarchy)
                    .is_some_and(|(_, h)| h.version == Version::V2)
        })
        .map_or_else(|| panic!("no v2 cgroup {path}"), |(i, _)| i);
    if let Node::Cgroup(c) = &mut s.graph[ci] {
        c.settings.insert(file.into(), value.into());
    }
}

fn v2_get(s: &Snapshot, path: &str, file: &str) -> Option<String> {
    s.cgroups()
        .find(|(_, c)| {
            c.path == path
                && s.hierarchy(c.hierarchy)
                    .is_some_and(|(_, h)| h.version == Version::V2)
        })
        .and_then(|(_, c)| c.settings.get(file).cloned())
}

/// systemd's v2 values on the unified boot, against cgmig's predictions from
/// the same unit files (captured on the hybrid boot).
#[test]
fn systemd_v2_mappings_match_the_guest() {
    let before = captured("systemd-hybrid");
    let after = captured("systemd-unified");
    let ctx = systemd::context(&before);
    let table = [
        (
            "v1dirs.service",
            "/cgmig.slice/cgmig-test.slice/v1dirs.service",
            "cpu.weight",
            "200",
        ),
        (
            "v1dirs.service",
            "/cgmig.slice/cgmig-test.slice/v1dirs.service",
            "memory.max",
            "268435456",
        ),
        (
            "v1dirs.service",
            "/cgmig.slice/cgmig-test.slice/v1dirs.service",
            "io.weight",
            "default 50",
        ),
        (
            "v1dirs.service",
            "/cgmig.slice/cgmig-test.slice/v1dirs.service",
            "pids.max",
            "64",
        ),
        (
            "v2dirs.service",
            "/cgmig.slice/cgmig-test.slice/v2dirs.service",
            "cpu.weight",
            "50",
        ),
        (
            "cgmig-test.slice",
            "/cgmig.slice/cgmig-test.slice",
            "cpu.max",
            "50000 100000",
        ),
    ];
    for (unit, path, file, guest) in table {
        let actual = v2_get(&after, path, file);
        assert_eq!(
            actual.as_deref().map(|a| a.lines().next().unwrap_or("")),
            Some(guest),
            "{path} {file} on the guest"
        );
        let d = &before.owner_evidence.units[unit].directives;
        let (pred, _) = systemd::predict_v2(unit, d, &ctx);
        let ours = pred.iter().find(|w| w.file == file).map(|w| w.value.as_str());
        assert_eq!(ours, Some(guest), "{unit}: {file}");
    }
}

#[test]
fn the_unified_boot_matches_the_hybrid_plan() {
    let p = plan(&captured("systemd-hybrid"), &rules());
    let after = captured("systemd-unified");
    let r = verify(&p, &after);
    let systemd_values: Vec<_> = r
        .checks
        .iter()
        .filter(|c| c.owner == "systemd" && c.file.is_some())
        .collect();
    assert!(systemd_values.len() >= 15, "{systemd_values:#?}");
    let wrong: Vec<_> = systemd_values
        .iter()
        .filter(|c| c.kind != CheckKind::Match)
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert_eq!(
        r.unexpected,
        0,
        "{:#?}",
        r.checks
            .iter()
            .filter(|c| !c.announced && c.kind != CheckKind::Match)
            .collect::<Vec<_>>()
    );
    // The custom manager could not rebuild its tree without delegation: announced.
    assert!(
        r.checks.iter().any(|c| c.announced
            && c.path.starts_with("/system.slice/borg.service")
            && c.kind != CheckKind::Match),
        "{:#?}",
        r.checks
    );
    assert!(!r.fails(cgmig::audit::FailOn::Error));
    assert!(r.fails(cgmig::audit::FailOn::Warning));
}

#[test]
fn a_value_systemd_did_not_build_is_an_unannounced_error() {
    let p = plan(&captured("systemd-hybrid"), &rules());
    let mut after = captured("systemd-unified");
    v2_set(
        &mut after,
        "/cgmig.slice/cgmig-test.slice/v2dirs.service",
        "cpu.weight",
        "174",
    );
    let r = verify(&p, &after);
    let c = r
        .checks
        .iter()
        .find(|c| c.kind == CheckKind::Value && c.path.ends_with("v2dirs.service"))
        .expect("the changed weight is reported");
    assert_eq!(
        (c.expected.as_deref(), c.actual.as_deref()),
        (Some("50"), Some("174"))
    );
    assert!(!c.announced);
    assert_eq!(r.unexpected, 1);
    assert!(r.fails(cgmig::audit::FailOn::Error));
    // "default 50" and "50" are the same io weight.
    let mut same = captured("systemd-unified");
    v2_set(
        &mut same,
        "/cgmig.slice/cgmig-test.slice/v1dirs.service",
        "io.weight",
        "default 50\n8:0 50",
    );
    assert_eq!(verify(&p, &same).unexpected, 0);
}

#[test]
fn verify_command_line_formats_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = crate::util::hosts_dir();
    let snap = hosts.join("systemd-hybrid.snapshot.json");
    let after = hosts.join("systemd-unified.snapshot.json");
    let plan_path = dir.path().join("plan.json");
    let o = cgmig(&[
        "plan",
        "--snapshot",
        snap.to_str().unwrap(),
        "--format",
        "json",
        "-o",
        plan_path.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let args = |fmt: &str, fail: &str| {
        cgmig(&[
            "verify",
            "--plan",
            plan_path.to_str().unwrap(),
            "--snapshot",
            after.to_str().unwrap(),
            "--format",
            fmt,
            "--fail-on",
            fail,
        ])
    };
    let o = args("json", "error");
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let r: cgmig::verify::VerifyReport = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r.schema, "cgmig.verify/v1");
    assert_eq!(
        args("table", "warning").status.code(),
        Some(1),
        "announced differences are warnings"
    );
    let o = args("prometheus", "never");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("cgmig_verify_ok 1"), "{text}");
    assert!(
        text.contains("cgmig_verify_checks{kind=\"match\",owner=\"systemd\",severity=\"info\"}"),
        "{text}"
    );
    // A file that is not a plan: exit 2, naming it.
    let o = cgmig(&[
        "verify",
        "--plan",
        snap.to_str().unwrap(),
        "--snapshot",
        after.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("systemd-hybrid.snapshot.json"));
}

/// `DefaultTasksMax=15%` scales with the booted host's threads-max, which
/// moves with the memory the kernel sees (a bigger initramfs is enough):
/// verify resolves the percentage on the verified host.
#[test]
fn percentage_task_limits_resolve_on_the_verified_host() {
    let p = plan(&captured("systemd-hybrid"), &rules());
    let mut after = captured("systemd-unified");
    after.owner_evidence.threads_max = Some(23174); // 15% -> 3476
    let paths: Vec<String> = p
        .owners
        .units
        .iter()
        .filter(|u| {
            u.files
                .iter()
                .any(|w| w.file == "pids.max" && w.from.starts_with("DefaultTasksMax="))
        })
        .map(|u| u.path.clone())
        .filter(|path| v2_get(&after, path, "pids.max").is_some())
        .collect();
    assert!(paths.len() >= 5, "{paths:?}");
    for path in &paths {
        v2_set(&mut after, path, "pids.max", "3476");
    }
    let r = verify(&p, &after);
    assert_eq!(
        r.unexpected,
        0,
        "{:#?}",
        r.checks
            .iter()
            .filter(|c| !c.announced && c.kind != CheckKind::Match)
            .collect::<Vec<_>>()
    );
    // An explicit TasksMax=64 does not scale.
    v2_set(
        &mut after,
        "/cgmig.slice/cgmig-test.slice/v1dirs.service",
        "pids.max",
        "63",
    );
    assert_eq!(verify(&p, &after).unexpected, 1);
}

/// Add a v2 cgroup (a copy of `/user.slice` with other settings) below the
/// v2 root, as a runtime would have built it after the switch.
fn v2_add(s: &mut Snapshot, path: &str, settings: &[(&str, &str)]) {
    let (root, template) = {
        let (_, c) = s
            .cgroups()
            .find(|(_, c)| {
                c.path == "/user.slice"
                    && s.hierarchy(c.hierarchy)
                        .is_some_and(|(_, h)| h.version == Version::V2)
            })
            .unwrap();
        let root = s
            .cgroups()
            .find(|(_, r)| r.path == "/" && r.hierarchy == c.hierarchy)
            .map(|(i, _)| i)
            .unwrap();
        (root, c.clone())
    };
    let mut c = template;
    c.path = path.into();
    c.settings = settings
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let i = s.graph.add_node(Node::Cgroup(c));
    s.graph.add_edge(root, i, cgmig::model::Edge::Child);
}

/// kubelet's tree: the plan predicts where the systemd driver rebuilds each
/// node and the values it writes (the container's cpu.shares 102 as the
/// plan converts it); verify compares them by meaning, reports a value the
/// plan did not predict as unpredicted (info, not a mismatch), a node not
/// rebuilt yet as announced, and a value that differs as an unannounced error.
#[test]
fn runtime_trees_are_verified_against_their_predicted_values() {
    let p = plan(
        &crate::owners::with_kubelet_state(captured("systemd-hybrid")),
        &rules(),
    );
    let k = p
        .owners
        .runtimes
        .iter()
        .find(|r| r.manager == cgmig::owners::Manager::Kubelet)
        .unwrap();
    let container = k
        .predicted
        .iter()
        .find(|x| x.ends_with("cri-containerd-c0ffee01.scope"))
        .unwrap()
        .clone();
    let vals = k
        .values
        .iter()
        .find(|v| v.path == container)
        .expect("values for the container");
    let weight = vals.files.iter().find(|w| w.file == "cpu.weight").unwrap();
    assert!(weight.from.contains("cpu.shares=102"), "{weight:?}");
    let mut after = crate::owners::with_kubelet_state(captured("systemd-unified"));
    v2_add(
        &mut after,
        &container,
        &[
            ("cpu.weight", &weight.value),
            ("memory.max", "1073741824"),
            ("pids.max", "max"),
        ],
    );
    v2_add(&mut after, "/kubepods.slice/kubepods-besteffort.slice", &[]);
    let r = verify(&p, &after);
    let at = |kind: CheckKind, path: &str| -> Vec<cgmig::verify::Check> {
        r.checks
            .iter()
            .filter(|c| c.kind == kind && c.path == path)
            .cloned()
            .collect()
    };
    let m = at(CheckKind::Match, &container);
    assert_eq!(m.len(), 1, "{:#?}", r.checks);
    assert_eq!(m[0].owner, "kubelet");
    let u = at(CheckKind::Unpredicted, &container);
    assert_eq!(u.len(), 1, "memory.max only (pids.max is the default): {u:#?}");
    assert_eq!(u[0].file.as_deref(), Some("memory.max"));
    assert_eq!(u[0].severity, cgmig::rules::Severity::Info);
    assert_eq!(
        at(
            CheckKind::Unpredicted,
            "/kubepods.slice/kubepods-besteffort.slice"
        )
        .len(),
        1,
        "a node the plan did not predict"
    );
    assert!(r.unpredicted >= 2);
    let missing: Vec<_> = r
        .checks
        .iter()
        .filter(|c| c.owner == "kubelet" && c.kind == CheckKind::Missing)
        .collect();
    assert!(
        !missing.is_empty() && missing.iter().all(|c| c.announced),
        "{missing:#?}"
    );
    assert_eq!(
        r.unexpected,
        0,
        "{:#?}",
        r.checks
            .iter()
            .filter(|c| c.is_difference() && !c.announced)
            .collect::<Vec<_>>()
    );
    // The runtime wrote another weight than predicted: an unannounced error.
    let mut wrong = captured("systemd-unified");
    v2_add(&mut wrong, &container, &[("cpu.weight", "4")]);
    let r = verify(&p, &wrong);
    let v: Vec<_> = r
        .checks
        .iter()
        .filter(|c| c.kind == CheckKind::Value && c.path == container)
        .collect();
    assert_eq!(v.len(), 1, "{:#?}", r.checks);
    assert!(!v[0].announced && v[0].severity == cgmig::rules::Severity::Error);
    assert!(r.fails(cgmig::audit::FailOn::Error));
}

/// A manager that still builds its top-level tree (`/borg-batch`) beside
/// systemd's after the switch: the plan named that tree and the unit it
/// belongs in, so the extra cgroup is an announced difference.
#[test]
fn a_top_level_tree_the_plan_asked_to_move_is_announced() {
    let p = plan(&captured("systemd-hybrid"), &rules());
    let mut after = captured("systemd-unified");
    v2_add(&mut after, "/borg-batch", &[]);
    v2_add(&mut after, "/stray", &[]);
    let r = verify(&p, &after);
    let extra = |path: &str| {
        r.checks
            .iter()
            .find(|c| c.kind == CheckKind::Extra && c.path == path)
            .unwrap_or_else(|| panic!("no extra {path}: {:#?}", r.checks))
    };
    assert!(extra("/borg-batch").announced);
    assert!(!extra("/stray").announced, "no owner's plan knows /stray");
}

/// A unit whose cgroup held nothing on v1 (an exited oneshot, a socket, a
/// mount) may be gone on v2: systemd removes an empty unit's cgroup on the
/// unified hierarchy (Debian 11's systemd 247 kept them on the hybrid boot).
/// That is said (a warning), not an unexpected difference; a unit that ran
/// processes and has no cgroup still is one.
#[test]
fn an_empty_unit_cgroup_gone_on_v2_is_expected() {
    let mut p = plan(&captured("systemd-hybrid"), &rules());
    let after = captured("systemd-unified");
    let busy = p
        .owners
        .units
        .iter()
        .find(|u| {
            p.nodes
                .iter()
                .any(|n| n.path == u.path && !n.processes.is_empty())
        })
        .expect("a unit with processes")
        .clone();
    let node = p.nodes.iter().find(|n| n.path == busy.path).unwrap().clone();
    for (name, procs) in [
        ("gone-busy.service", node.processes.clone()),
        ("gone-idle.service", vec![]),
    ] {
        let path = format!("/system.slice/{name}");
        let mut u = busy.clone();
        u.unit = name.into();
        u.path = path.clone();
        u.differences.clear();
        p.owners.units.push(u);
        let mut n = node.clone();
        n.path = path;
        n.processes = procs;
        n.threads.clear();
        p.nodes.push(n);
    }
    let r = verify(&p, &after);
    let check = |name: &str| {
        r.checks
            .iter()
            .find(|c| c.kind == CheckKind::Missing && c.unit.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no missing check for {name}: {:#?}", r.checks))
    };
    let idle = check("gone-idle.service");
    assert!(idle.announced, "{idle:?}");
    assert!(idle.message.contains("held no process"), "{idle:?}");
    let busy = check("gone-busy.service");
    assert!(!busy.announced, "{busy:?}");
    assert_eq!(r.unexpected, 1, "only the unit that ran processes is unexpected");
}

/// systemd 247 (Debian 11, the fleet scenario's guest) leaves init.scope's
/// pids.max at "max" on a unified boot where 252 writes DefaultTasksMax:
/// announced, not unexpected. Any other value is still a difference.
#[test]
fn init_scope_left_unlimited_is_announced() {
    let p = plan(&captured("systemd-hybrid"), &rules());
    let mut after = captured("systemd-unified");
    v2_set(&mut after, "/init.scope", "pids.max", "max");
    let r = verify(&p, &after);
    let c = r
        .checks
        .iter()
        .find(|c| c.path == "/init.scope" && c.file.as_deref() == Some("pids.max"))
        .expect("init.scope's pids.max is checked");
    assert!(c.announced && c.kind == CheckKind::Value, "{c:?}");
    assert_eq!(r.unexpected, 0);
    v2_set(&mut after, "/init.scope", "pids.max", "17");
    assert_eq!(verify(&p, &after).unexpected, 1);
}
