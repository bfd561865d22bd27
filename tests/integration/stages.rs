//! The staged rollout (issue 24): the boots a rollout engineer would choose,
//! on every fixture host and on this machine's layout, each replayed on the
//! simulator; `--stages one|SPEC`; a subtree stages only what it uses.
//!
//! "The fewest boots the policy allows" is computed here from the snapshot
//! itself, independently of `plan::stages`: one boot for the hierarchies
//! nothing uses, one for those in use with nothing to convert, then one per
//! hierarchy with settings (memory and cpu among them, last).

use std::collections::BTreeMap;

use cgmig::model::{Snapshot, Version};
use cgmig::plan::{Plan, StagePolicy, plan, plan_with, validate};

use crate::util::*;

/// Per v1 controller hierarchy of the snapshot: (its controllers, non-root
/// cgroups, settings the audit converts from it: the plan's own list has
/// lost those the host's kernel cannot take, which still move).
fn hierarchy_loads(snap: &Snapshot) -> Vec<(Vec<String>, usize, usize)> {
    let mut settings: BTreeMap<cgmig::model::HierarchyId, usize> = BTreeMap::new();
    for c in cgmig::assess::audit(snap, &rules()).conversions {
        *settings.entry(c.hierarchy).or_default() += 1;
    }
    snap.hierarchies()
        .into_iter()
        .filter(|(_, h)| h.version == Version::V1 && !h.controllers.is_empty())
        .map(|(hi, h)| {
            let cgroups = snap.root_cgroup(hi).map_or(0, |r| below(snap, r));
            (
                h.controllers.iter().map(|c| c.to_string()).collect(),
                cgroups,
                settings.get(&h.id).copied().unwrap_or(0),
            )
        })
        .collect()
}

/// The cgroups below one (itself not counted).
fn below(snap: &Snapshot, cg: petgraph::graph::NodeIndex) -> usize {
    let mut stack = snap.children(cg);
    let mut n = 0;
    while let Some(c) = stack.pop() {
        n += 1;
        stack.extend(snap.children(c));
    }
    n
}

/// The boots the policy allows at the fewest, from the snapshot.
fn fewest_boots(loads: &[(Vec<String>, usize, usize)]) -> usize {
    let idle = loads.iter().any(|(_, c, s)| *c == 0 && *s == 0);
    let bare = loads
        .iter()
        .any(|(ctl, c, s)| *c > 0 && *s == 0 && !ctl.iter().any(|x| x == "cpu" || x == "memory"));
    let each = loads
        .iter()
        .filter(|(ctl, c, s)| *s > 0 || (*c > 0 && ctl.iter().any(|x| x == "cpu" || x == "memory")))
        .count();
    usize::from(idle) + usize::from(bare) + each
}

/// The policy's promises, checked on one plan; each stage replayed.
fn check_stages(name: &str, snap: &Snapshot, p: &Plan) {
    let loads = hierarchy_loads(snap);
    assert_eq!(
        p.stages.len(),
        fewest_boots(&loads),
        "{name}: {:#?}\n{loads:?}",
        p.stages
    );
    let boot_of = |c: &str| {
        p.stages
            .iter()
            .find(|s| s.adds.iter().any(|a| a == c))
            .map(|s| s.number)
    };
    for (ctl, cgroups, settings) in &loads {
        // Co-mounted controllers move in one boot.
        let boots: Vec<Option<usize>> = ctl.iter().map(|c| boot_of(c)).collect();
        assert!(
            boots.windows(2).all(|w| w[0] == w[1]) && boots[0].is_some(),
            "{name}: {ctl:?} in boots {boots:?}"
        );
        // Nothing used: the first boot.
        if *cgroups == 0 && *settings == 0 {
            assert_eq!(boots[0], Some(1), "{name}: idle {ctl:?}");
        }
    }
    // memory, then cpu, are the last boots when in use.
    let used = |c: &str| {
        loads
            .iter()
            .any(|(ctl, n, s)| ctl.iter().any(|x| x == c) && (*n > 0 || *s > 0))
    };
    let n = p.stages.len();
    match (used("memory"), used("cpu")) {
        (true, true) => {
            assert_eq!(boot_of("cpu"), Some(n), "{name}");
            assert_eq!(boot_of("memory"), Some(n - 1), "{name}");
        }
        (true, false) => assert_eq!(boot_of("memory"), Some(n), "{name}"),
        (false, true) => assert_eq!(boot_of("cpu"), Some(n), "{name}"),
        (false, false) => {}
    }
    for s in &p.stages {
        assert!(!s.why.is_empty(), "{name}: stage {} says why", s.number);
        let sp = p.for_stage(s.number, "leaf").unwrap();
        let v = validate(&sp);
        assert!(v.is_empty(), "{name} stage {}: {v:#?}", s.number);
    }
    let refused = crate::replay::every_stage(snap, p);
    assert!(refused.is_empty(), "{name}: {}", refused.join("\n"));
    if let Some(last) = p.stages.last() {
        assert!(last.cmdline.starts_with("cgroup_no_v1=all "), "{name}: {last:?}");
    }
}

fn host_stages_by_risk(name: &str) {
    let snap = host(name).scan();
    let rules = rules();
    let p = plan(&snap, &rules);
    check_stages(name, &snap, &p);
    // One boot, and a hand-written order, replay too.
    let one = plan_with(&snap, &rules, &StagePolicy::One).unwrap();
    assert!(one.stages.len() <= 1, "{name}");
    assert!(crate::replay::every_stage(&snap, &one).is_empty(), "{name}: one");
    if p.stages.len() > 1 {
        let reversed: Vec<String> = p.stages.iter().rev().map(|s| s.adds.join(",")).collect();
        let spec: StagePolicy = reversed.join("/").parse().unwrap();
        let by_hand = plan_with(&snap, &rules, &spec).unwrap();
        let got: Vec<String> = by_hand.stages.iter().map(|s| s.adds.join(",")).collect();
        assert_eq!(got, reversed, "{name}");
        assert!(
            crate::replay::every_stage(&snap, &by_hand).is_empty(),
            "{name}: by hand"
        );
    }
}
per_host!(stages_by_risk_host, host_stages_by_risk);

#[test]
fn this_machines_layout_stages_by_risk() {
    // While no test of this run has hugetlb on a private v1 mount (its
    // cgroups would come and go during the scan).
    let _lock = crate::apply_kernel::hugetlb_lock();
    // A read-only scan of the live host: no cgroup is touched.
    let snap = match cgmig::scan::scan(&cgmig::host::Root::live()) {
        Ok(s) => s,
        Err(e) => {
            crate::kernel_util::skip_or_fail(&format!("cannot scan this machine: {e}"));
            return;
        }
    };
    let p = plan(&snap, &rules());
    check_stages("this machine", &snap, &p);
    eprintln!(
        "this machine: {} boots: {}",
        p.stages.len(),
        p.stages
            .iter()
            .map(|s| s.adds.join(","))
            .collect::<Vec<_>>()
            .join(" / ")
    );
}

/// k8s-cgroupfs: eight hierarchies kubelet fills without a setting to
/// convert move together, then pids, memory, cpu: four boots instead of ten.
#[test]
fn k8s_cgroupfs_takes_four_boots() {
    let p = plan(&host("k8s-cgroupfs").scan(), &rules());
    let adds: Vec<String> = p.stages.iter().map(|s| s.adds.join(",")).collect();
    assert_eq!(
        adds,
        [
            "blkio,cpuset,devices,freezer,hugetlb,net_cls,net_prio,perf_event",
            "pids",
            "memory",
            "cpu,cpuacct"
        ]
    );
    assert!(
        p.stages[0].why.contains("no setting to convert"),
        "{}",
        p.stages[0].why
    );
    assert!(p.stages[3].why.contains("cpu goes last"), "{}", p.stages[3].why);
}

#[test]
fn stages_flag_parses_and_fits_the_host() {
    let h = host("k8s-cgroupfs");
    let root = h.root().to_str().unwrap();
    let json = |args: &[&str]| -> Plan {
        let mut a = vec!["plan", "--root", root, "--format", "json"];
        a.extend_from_slice(args);
        let o = cgmig(&a);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        serde_json::from_str(&stdout(&o)).unwrap()
    };
    let p = json(&["--stages", "hugetlb/pids,memory/cpu,cpuacct"]);
    let adds: Vec<String> = p.stages.iter().map(|s| s.adds.join(",")).collect();
    assert_eq!(
        adds,
        [
            "hugetlb",
            "memory,pids",
            "cpu,cpuacct",
            "blkio,cpuset,devices,freezer,net_cls,net_prio,perf_event"
        ]
    );
    assert_eq!(
        p.stages[0].cmdline.split(' ').next(),
        Some("cgroup_no_v1=hugetlb")
    );
    assert_eq!(json(&["--stages", "one"]).stages.len(), 1);
    // The JSON keeps the stages' shape.
    let o = cgmig(&["plan", "--root", root, "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    for key in ["number", "adds", "controllers", "cmdline", "why"] {
        assert!(
            v["stages"][0].get(key).is_some(),
            "stages[0].{key}: {}",
            v["stages"][0]
        );
    }
    for (spec, says) in [
        ("a//b", "boot 2 of \"a//b\" is empty"),
        ("pids,,memory", "empty controller name"),
        ("Memory", "\"Memory\" is not a controller name"),
        ("pids/pids", "pids is named twice (boots 1 and 2)"),
        ("memroy", "memroy is not among the v1 controllers this plan moves"),
        ("cpu/cpuacct", "cpu,cpuacct share one v1 hierarchy"),
        ("cpu", "cpuacct is not named (write cpu,cpuacct)"),
    ] {
        let o = cgmig(&["plan", "--root", root, "--stages", spec]);
        assert_eq!(o.status.code(), Some(2), "{spec}");
        assert!(stderr(&o).contains(says), "{spec}: {}", stderr(&o));
        assert!(stdout(&o).is_empty(), "{spec}: nothing written");
    }
}

/// A subtree plan stages only the hierarchies its settings come from.
#[test]
fn a_subtree_stages_only_what_it_uses() {
    let h = host("k8s-cgroupfs");
    let snap = h.scan();
    let p = plan(&snap, &rules());
    // The deepest node with settings, and the hierarchies they came from.
    let n = p
        .nodes
        .iter()
        .filter(|n| !n.settings.is_empty())
        .max_by_key(|n| n.path.len())
        .unwrap();
    let mut used: Vec<String> = p
        .only(&n.path, "leaf")
        .unwrap()
        .nodes
        .iter()
        .flat_map(|n| &n.settings)
        .flat_map(|s| s.origin.label.split(',').map(str::to_string).collect::<Vec<_>>())
        .collect();
    used.sort();
    used.dedup();
    let sub = p.only(&n.path, "leaf").unwrap();
    let mut staged: Vec<String> = sub.stages.iter().flat_map(|s| s.adds.clone()).collect();
    staged.sort();
    assert_eq!(staged, used, "{}: {:#?}", n.path, sub.stages);
    assert!(staged.len() < p.stages.iter().map(|s| s.adds.len()).sum::<usize>());
    assert!(crate::replay::every_stage(&snap, &sub).is_empty());
    // By the command line too, with --stage N of the subtree's boots.
    let root = h.root().to_str().unwrap();
    let o = cgmig(&[
        "plan", "--root", root, "--only", &n.path, "--stages", "one", "--stage", "1", "--format", "json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let one: Plan = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(one.stages.len(), 1);
    assert_eq!(one.stage, Some(1));
}
