//! Property tests: random multi-hierarchy hosts (shapes that agree, refine
//! and cross; threads split; empty cgroups; internal processes; delegated
//! subtrees) always plan to a valid tree that meets the semantic oracle.

use std::collections::BTreeMap;

use cgmig::fixture::{CgroupSpec, HierarchySpec, HostSpec, MountSpec, OwnerSpec, ProcessSpec, ThreadSpec};
use proptest::prelude::*;

use crate::oracle;
use crate::util::*;

/// A small path universe so that random shapes often coincide, nest or cross.
const PATHS: &[&str] = &["/a", "/a/x", "/a/y", "/b", "/b/x", "/b/z", "/c", "/c/x"];

/// (controllers, setting file, values)
const KINDS: &[(&[&str], &str, &[&str])] = &[
    (
        &["cpu", "cpuacct"],
        "cpu.shares",
        &["2", "256", "512", "2048", "8192"],
    ),
    (
        &["memory"],
        "memory.limit_in_bytes",
        &["1073741824", "2147483648", "536870912"],
    ),
    (&["pids"], "pids.max", &["10", "100", "1000"]),
    (&["cpuset"], "cpuset.cpus", &["0", "1", "0-1"]),
    (&["blkio"], "blkio.weight", &["100", "300", "900"]),
    (&[], "", &[]),
];

/// Per process: a path choice per hierarchy (0 = root), and thread overrides (hierarchy, path choice).
type ProcPlan = (Vec<usize>, Vec<(usize, usize)>);

#[derive(Debug, Clone)]
struct HostPlan {
    kinds: Vec<usize>,
    cgroups: Vec<Vec<(usize, Option<usize>, bool)>>, // per hierarchy: (path, value, owned)
    procs: Vec<ProcPlan>,
}

fn host_strategy() -> impl Strategy<Value = HostPlan> {
    (prop::sample::subsequence((0..KINDS.len()).collect::<Vec<_>>(), 2..=4))
        .prop_flat_map(|kinds| {
            let n = kinds.len();
            let cgs = prop::collection::vec(
                prop::collection::vec(
                    (
                        0..PATHS.len(),
                        prop::option::of(0usize..5),
                        prop::bool::weighted(0.15),
                    ),
                    1..6,
                ),
                n,
            );
            let procs = prop::collection::vec(
                (
                    prop::collection::vec(0..=PATHS.len(), n),
                    prop::collection::vec((0..n, 0..=PATHS.len()), 0..3),
                ),
                1..8,
            );
            (Just(kinds), cgs, procs)
        })
        .prop_map(|(kinds, cgroups, procs)| HostPlan {
            kinds,
            cgroups,
            procs,
        })
}

/// The host spec a random [`HostPlan`] stands for: its hierarchies, then its
/// processes placed in cgroups those hierarchies declare.
fn to_spec(h: &HostPlan) -> HostSpec {
    let (hierarchies, declared) = hierarchy_specs(h);
    HostSpec {
        description: "random".into(),
        kernel: "6.1.0".into(),
        cmdline: String::new(),
        hostname: "prop".into(),
        files: Default::default(),
        block_devices: vec![],
        hierarchies,
        unbound_controllers: vec![],
        root_settings: [
            ("cpuset.cpus".to_string(), "0-3".to_string()),
            ("cpuset.mems".into(), "0".into()),
        ]
        .into_iter()
        .collect(),
        processes: process_specs(h, &declared),
    }
}

/// One hierarchy per kind drawn (ids from 1, mounted under its controllers'
/// name), with its cgroups' settings and owners; and, per hierarchy, the
/// paths it declares (where processes may be placed).
fn hierarchy_specs(h: &HostPlan) -> (Vec<HierarchySpec>, Vec<Vec<String>>) {
    let mut hierarchies = Vec::new();
    let mut declared: Vec<Vec<String>> = Vec::new();
    for (i, &k) in h.kinds.iter().enumerate() {
        let (ctl, file, values) = KINDS[k];
        let id = i as u32 + 1;
        let mut cgroups = BTreeMap::new();
        for &(p, v, owned) in &h.cgroups[i] {
            let mut c = CgroupSpec::default();
            if let Some(v) = v
                && !file.is_empty()
            {
                c.settings
                    .insert(file.to_string(), values[v % values.len()].to_string());
            }
            if owned {
                c.owner = Some(OwnerSpec { uid: 1000, gid: 1000 });
            }
            cgroups.insert(PATHS[p].to_string(), c);
        }
        declared.push(cgroups.keys().cloned().collect());
        let point = if ctl.is_empty() {
            "/sys/fs/cgroup/systemd".to_string()
        } else {
            format!("/sys/fs/cgroup/{}", ctl.join(","))
        };
        hierarchies.push(HierarchySpec {
            id,
            controllers: ctl.iter().map(|s| s.to_string()).collect(),
            name: ctl.is_empty().then(|| "systemd".to_string()),
            mounts: vec![MountSpec {
                point,
                root: "/".into(),
                source: "cgroup".into(),
                options: vec![],
            }],
            cgroups,
        });
    }
    (hierarchies, declared)
}

/// `init` (pid 1, at every root) and the drawn processes, each in a
/// declared path (or the root) of each hierarchy, with threads that may sit
/// elsewhere in one hierarchy (a split process).
fn process_specs(h: &HostPlan, declared: &[Vec<String>]) -> Vec<ProcessSpec> {
    // Placements use declared paths (or the root) of each hierarchy.
    let pick = |i: usize, sel: usize| -> String {
        let d = &declared[i];
        if sel == 0 || d.is_empty() {
            "/".into()
        } else {
            d[(sel - 1) % d.len()].clone()
        }
    };
    let mut processes: Vec<ProcessSpec> = h
        .procs
        .iter()
        .enumerate()
        .map(|(n, (places, threads))| {
            let pid = 100 + n as u32 * 10;
            ProcessSpec {
                pid,
                comm: format!("p{n}"),
                cmdline: vec![format!("/bin/p{n}")],
                uid: 0,
                cgroups: places
                    .iter()
                    .enumerate()
                    .map(|(i, sel)| (i as u32 + 1, pick(i, *sel)))
                    .collect(),
                everywhere: None,
                open_files: vec![],
                threads: threads
                    .iter()
                    .enumerate()
                    .map(|(t, (hi, sel))| ThreadSpec {
                        tid: pid + 1 + t as u32,
                        comm: None,
                        cgroups: [(*hi as u32 + 1, pick(*hi, *sel))].into_iter().collect(),
                    })
                    .collect(),
            }
        })
        .collect();
    processes.insert(0, init_process());
    processes
}

/// pid 1, in the root of every hierarchy.
fn init_process() -> ProcessSpec {
    ProcessSpec {
        pid: 1,
        comm: "init".into(),
        cmdline: vec!["/sbin/init".into()],
        uid: 0,
        cgroups: BTreeMap::new(),
        everywhere: None,
        open_files: vec![],
        threads: vec![],
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn random_hosts_plan_valid_and_meet_the_oracle(h in host_strategy()) {
        let spec = to_spec(&h);
        let host = build_spec(spec);
        let snap = host.scan();
        let rules = rules();
        let p = cgmig::plan::plan(&snap, &rules);
        let v = cgmig::plan::document::check_loaded(&p);
        prop_assert!(v.is_empty(), "invalid plan: {v:#?}\n{}", cgmig::plan::render(&p, cgmig::plan::PlanFormat::Table).unwrap());
        let problems = oracle::check(&snap, &p, &rules);
        prop_assert!(problems.is_empty(), "oracle:\n{}\n{}\n{:#?}", problems.join("\n"), cgmig::plan::render(&p, cgmig::plan::PlanFormat::Table).unwrap(), p.findings.iter().filter(|f| f.rule.starts_with("plan.") || f.rule.contains("split")).map(|f| &f.why).collect::<Vec<_>>());
        for s in &p.stages {
            let sp = p.for_stage(s.number, "leaf").unwrap();
            let v = cgmig::plan::document::check_loaded(&sp);
            prop_assert!(v.is_empty(), "stage {}: {v:#?}", s.number);
            let problems = oracle::structural(&snap, &sp, &rules);
            prop_assert!(problems.is_empty(), "stage {} oracle:\n{}", s.number, problems.join("\n"));
        }
        let refused = crate::replay::every_stage(&snap, &p);
        prop_assert!(refused.is_empty(), "the kernel refuses:\n{}\n{}", refused.join("\n"), cgmig::plan::render(&p, cgmig::plan::PlanFormat::Table).unwrap());
    }
}

/// Paths shaped like every owner's (systemd units and slices, runtimes'
/// trees, custom trees beside and inside units), so random hosts mix them.
const OWNER_PATHS: &[&str] = &[
    "/system.slice",
    "/system.slice/a.service",
    "/system.slice/a.service/job",
    "/system.slice/docker-abc.scope",
    "/init.scope",
    "/user.slice",
    "/docker",
    "/docker/abc",
    "/kubepods",
    "/kubepods/burstable",
    "/kubepods/burstable/pod1",
    "/kubepods/burstable/pod1/c1",
    "/machine.slice",
    "/machine.slice/libpod-abc.scope",
    "/lxc.payload.c1",
    "/prod",
    "/prod/web",
    "/cgtest",
];

/// The evidence a random host shows about its owners.
#[derive(Debug, Clone)]
struct OwnerEvidence {
    /// PID 1 is systemd (else a busybox init).
    systemd_pid1: bool,
    /// The name=systemd hierarchy carries the xattr mount option.
    xattr: bool,
    /// Marks of docker, kubelet, podman, LXC (state on disk or a daemon).
    runtimes: [bool; 4],
    /// `a.service` has a unit file (with these directives).
    unit_file: Option<&'static str>,
}

fn evidence_strategy() -> impl Strategy<Value = OwnerEvidence> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<[bool; 4]>(),
        prop::option::of(prop::sample::select(vec![
            "CPUShares=2048\nMemoryLimit=256M\n",
            "CPUWeight=50\nTasksMax=64\n",
            "Delegate=yes\n",
        ])),
    )
        .prop_map(|(systemd_pid1, xattr, runtimes, unit_file)| OwnerEvidence {
            systemd_pid1,
            xattr,
            runtimes,
            unit_file,
        })
}

/// A random host over [`OWNER_PATHS`]: the drawn kinds' hierarchies plus a
/// `name=systemd` one, processes in owner-shaped places, and the drawn
/// evidence (PID 1, mount option, runtime marks, a unit file).
fn owner_host_spec(h: &HostPlan, ev: &OwnerEvidence) -> HostSpec {
    let mut spec = to_spec(&HostPlan {
        kinds: h.kinds.clone(),
        cgroups: h
            .cgroups
            .iter()
            .map(|cgs| {
                cgs.iter()
                    .map(|&(p, v, o)| (p % OWNER_PATHS.len(), v, o))
                    .collect()
            })
            .collect(),
        procs: h.procs.clone(),
    });
    // The generic spec's paths are PATHS; map them onto the owners' universe.
    for hs in &mut spec.hierarchies {
        hs.cgroups = std::mem::take(&mut hs.cgroups)
            .into_iter()
            .map(|(p, c)| (owner_path(&p), c))
            .collect();
    }
    for p in &mut spec.processes {
        for v in p.cgroups.values_mut() {
            *v = owner_path(v);
        }
        for t in &mut p.threads {
            for v in t.cgroups.values_mut() {
                *v = owner_path(v);
            }
        }
    }
    let named_id = spec.hierarchies.len() as u32 + 1;
    if !spec.hierarchies.iter().any(|x| x.name.is_some()) {
        let mut cgroups = BTreeMap::new();
        for p in ["/system.slice/a.service", "/init.scope", "/prod/web"] {
            cgroups.insert(p.to_string(), CgroupSpec::default());
        }
        spec.hierarchies.push(HierarchySpec {
            id: named_id,
            controllers: vec![],
            name: Some("systemd".into()),
            mounts: vec![MountSpec {
                point: "/sys/fs/cgroup/systemd".into(),
                root: "/".into(),
                source: "cgroup".into(),
                options: vec![],
            }],
            cgroups,
        });
    }
    for hs in spec.hierarchies.iter_mut().filter(|x| x.name.is_some()) {
        if ev.xattr {
            hs.mounts[0].options.push("xattr".into());
        }
    }
    spec.processes[0].comm = if ev.systemd_pid1 { "systemd" } else { "init" }.into();
    let marks = [
        ("/var/lib/docker/containers/abc/config.v2.json", "dockerd"),
        ("/var/lib/kubelet/pods/1/etc-hosts", "kubelet"),
        (
            "/var/lib/containers/storage/overlay-containers/abc/userdata/config.json",
            "conmon",
        ),
        ("/var/lib/lxc/c1/config", "lxc-start"),
    ];
    for (on, (file, daemon)) in ev.runtimes.iter().zip(marks) {
        if *on {
            spec.files.insert(file.into(), String::new());
            let pid = 90 + spec.processes.len() as u32;
            spec.processes.push(ProcessSpec {
                pid,
                comm: daemon.into(),
                cmdline: vec![format!("/usr/bin/{daemon}")],
                uid: 0,
                cgroups: BTreeMap::new(),
                everywhere: None,
                open_files: vec![],
                threads: vec![],
            });
        }
    }
    if let Some(d) = ev.unit_file {
        spec.files.insert(
            "/etc/systemd/system/a.service".into(),
            format!("[Service]\nExecStart=/bin/a\n{d}"),
        );
    }
    spec
}

/// A path of the generic universe ([`PATHS`]) mapped onto [`OWNER_PATHS`]
/// (`/` stays; a path's index picks its place, keeping parents declared).
fn owner_path(p: &str) -> String {
    match PATHS.iter().position(|x| *x == p) {
        Some(i) => {
            // Each generic path maps to an owner path whose ancestors are
            // owner paths too (the fixture builder makes missing parents).
            OWNER_PATHS[(i * 7 + 3) % OWNER_PATHS.len()].to_string()
        }
        None => p.to_string(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, max_global_rejects: 4096, ..ProptestConfig::default() })]

    /// Issue 23: for random hosts with random owner evidence the owners pass
    /// never makes a valid plan invalid: the whole plan and every stage are
    /// valid, and every stage replays on the simulator starting from what
    /// the owners build themselves (`plan::prebuilt`).
    #[test]
    fn owners_never_make_a_plan_invalid(h in host_strategy(), ev in evidence_strategy()) {
        let spec = owner_host_spec(&h, &ev);
        let host = build_spec(spec);
        let snap = host.scan();
        let rules = rules();
        // Only a valid plan must stay valid: the planner's own limits (a
        // host it cannot plan without owners) are the other tests' subject.
        let before = cgmig::plan::plan_without_owners(&snap, &rules);
        prop_assume!(cgmig::plan::validate(&before).is_empty());
        prop_assume!(before.stages.iter().all(|s| {
            before.for_stage(s.number, "leaf").is_some_and(|sp| cgmig::plan::validate(&sp).is_empty())
        }));
        prop_assume!(crate::replay::every_stage(&snap, &before).is_empty());
        let p = cgmig::plan::plan(&snap, &rules);
        let show = || cgmig::plan::render(&p, cgmig::plan::PlanFormat::Table).unwrap();
        // Threads split inside a systemd slice: v2 cannot hold that under
        // systemd at all, and the plan says so with an error.
        if p.findings.iter().any(|f| f.rule == "owners.threaded-in-owner") {
            return Ok(());
        }
        let v = cgmig::plan::validate(&p);
        prop_assert!(v.is_empty(), "invalid plan ({ev:?}): {v:#?}\n{}", show());
        for s in &p.stages {
            let sp = p.for_stage(s.number, "leaf").unwrap();
            let v = cgmig::plan::validate(&sp);
            prop_assert!(v.is_empty(), "stage {} ({ev:?}): {v:#?}\n{}", s.number, show());
        }
        let refused = crate::replay::every_stage(&snap, &p);
        prop_assert!(refused.is_empty(), "the kernel refuses ({ev:?}):\n{}\n{}", refused.join("\n"), show());
        prop_assert!(cgmig::plan::foreign_actions(&p).is_empty(), "apply would refuse its own plan");
    }
}
