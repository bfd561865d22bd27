//! The executor against the simulator: a whole plan applies and verifies,
//! an interrupted apply resumes to the same end state, rollback restores
//! the state before, and vanished processes are recorded, not fatal.

use cgmig::apply::exec::{self, Outcome, Runner};
use cgmig::apply::journal::{JOURNAL_SCHEMA, Journal, Record, RunOptions, Writer};
use cgmig::apply::resolve::{self, Resolved};
use cgmig::apply::step::Step;
use cgmig::apply::{Host, Simulator, Target};
use cgmig::model::{Pid, Tid};
use cgmig::plan::Plan;

use crate::util::*;

fn plan_of(host_name: &str) -> Plan {
    let snap = host(host_name).scan();
    cgmig::plan::plan(&snap, &rules())
}

/// A simulated v2 host with every controller and the plan's processes at the root.
fn sim_for(plan: &Plan) -> Simulator {
    let mut sim = Simulator::new(&["cpu", "cpuset", "io", "memory", "pids", "hugetlb", "rdma", "misc"]);
    for n in &plan.nodes {
        for pid in &n.processes {
            let tids: Vec<Tid> = plan
                .nodes
                .iter()
                .flat_map(|m| m.threads.iter())
                .filter(|t| t.pid == *pid)
                .map(|t| t.tid)
                .collect();
            sim.add_process(*pid, &tids, "/").unwrap();
        }
    }
    // systemd's and runtimes' cgroups exist before cgmig acts.
    sim.prebuild(
        cgmig::plan::prebuilt(plan)
            .iter()
            .map(|(p, c)| (*p, c.as_slice())),
    )
    .unwrap();
    sim
}

fn steps_for(plan: &Plan, sim: &Simulator, prefix: &str) -> Vec<Step> {
    let (steps, _) = exec::build_steps(plan, prefix, &Resolved::trusting(plan), sim, &[]);
    steps
}

/// Everything observable: tree, types, enabled controllers, the plan's
/// settings, and where each planned task is.
fn state(sim: &Simulator, plan: &Plan) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec!["/".to_string()];
    while let Some(p) = stack.pop() {
        let ty = sim.read(&p, "cgroup.type").unwrap_or_default();
        let sc = sim.read(&p, "cgroup.subtree_control").unwrap_or_default();
        out.push(format!("{p} {} [{}]", ty.trim(), sc.trim()));
        for c in sim.children(&p).unwrap() {
            stack.push(cgmig::model::path::join(&p, &c));
        }
    }
    for n in &plan.nodes {
        for s in &n.settings {
            if let Ok(v) = sim.read(&n.path, &s.file) {
                out.push(format!("{}/{} = {}", n.path, s.file, v.trim()));
            }
        }
        for pid in &n.processes {
            out.push(format!("pid {pid} in {:?}", sim.cgroup_of(pid.main_thread())));
        }
        for t in &n.threads {
            out.push(format!("tid {} in {:?}", t.tid, sim.cgroup_of(t.tid)));
        }
    }
    out.sort();
    out
}

fn failed(o: &[Outcome]) -> Vec<&Outcome> {
    o.iter().filter(|o| o.status.is_failed()).collect()
}

fn header(steps: &[Step]) -> Record {
    Record::Header {
        schema: JOURNAL_SCHEMA.into(),
        plan_hash: "h".into(),
        plan: "p".into(),
        boot_id: "b".into(),
        options: RunOptions {
            mount: "/sys/fs/cgroup".into(),
            prefix: "/".into(),
            ..RunOptions::default()
        },
        steps: steps.to_vec(),
    }
}

/// A whole plan applies on the simulator; every node, process and thread
/// ends where the plan says.
fn whole_plan_applies_and_verifies_on_the_simulator(name: &str) {
    let plan = plan_of(name);
    let mut sim = sim_for(&plan);
    let steps = steps_for(&plan, &sim, "/");
    let out = Runner::new(&mut sim, None, false)
        .run(&steps, None)
        .unwrap()
        .outcomes;
    assert!(failed(&out).is_empty(), "{name}: {:#?}", failed(&out));
    // Other owners place their own processes (after the switch, on their own).
    let prebuilt: std::collections::BTreeSet<&str> =
        cgmig::plan::prebuilt(&plan).into_iter().map(|(p, _)| p).collect();
    for n in &plan.nodes {
        assert!(sim.exists(&n.path), "{name}: {} missing", n.path);
        if prebuilt.contains(n.path.as_str()) {
            continue;
        }
        for pid in &n.processes {
            // A leader placed on its own as a thread is checked as a thread.
            let leader_placed = plan
                .nodes
                .iter()
                .any(|m| m.threads.iter().any(|t| t.tid == pid.main_thread()));
            if !leader_placed {
                assert_eq!(
                    sim.cgroup_of(pid.main_thread()).as_deref(),
                    Some(n.path.as_str()),
                    "{name}: pid {pid}"
                );
            }
        }
        for t in &n.threads {
            assert_eq!(
                sim.cgroup_of(t.tid).as_deref(),
                Some(n.path.as_str()),
                "{name}: tid {}",
                t.tid
            );
        }
    }
}
tests_named!(whole_plan_on_the_simulator, whole_plan_applies_and_verifies_on_the_simulator;
    borg_like => "borg-like",
    libvirt_vcpu_threads => "libvirt-vcpu-threads",
    k8s_systemd => "k8s-systemd",
);

#[test]
fn under_a_target_prefix_the_tree_is_built_below_it() {
    let plan = plan_of("borg-like");
    let mut sim = sim_for(&plan);
    let steps = steps_for(&plan, &sim, "/t/sub");
    assert!(matches!(&steps[0], Step::MkdirTarget { path } if path == "/t"));
    let out = Runner::new(&mut sim, None, false)
        .run(&steps, None)
        .unwrap()
        .outcomes;
    assert!(failed(&out).is_empty(), "{:#?}", failed(&out));
    assert!(sim.exists("/t/sub/batch/task1"));
    assert!(!sim.exists("/batch"), "nothing outside the target");
    let sc = sim.read("/t", "cgroup.subtree_control").unwrap();
    assert!(
        sc.contains("cpu") && sc.contains("memory"),
        "enabled down to the target: {sc}"
    );
}

#[test]
fn interrupted_at_every_step_resume_reaches_the_same_state() {
    let plan = plan_of("borg-like");
    let mut reference = sim_for(&plan);
    let steps = steps_for(&plan, &reference, "/");
    Runner::new(&mut reference, None, false)
        .run(&steps, None)
        .unwrap();
    let want = state(&reference, &plan);
    let dir = tempfile::tempdir().unwrap();
    for cut in 0..steps.len() {
        let mut sim = sim_for(&plan);
        let jp = dir.path().join(format!("j{cut}"));
        let w = Writer::create(&jp, &header(&steps)).unwrap();
        // The first `cut` steps, then a crash that leaves an intent without outcome.
        Runner::new(&mut sim, Some(w), false)
            .run(&steps[..cut], None)
            .unwrap();
        let mut w = Writer::open(&jp).unwrap();
        let before = cgmig::apply::step::Before::default();
        w.append(&Record::Intent {
            seq: cut,
            step: steps[cut].clone(),
            before,
        })
        .unwrap();
        let j = Journal::read(&jp).unwrap();
        assert_eq!(j.first_unfinished(steps.len()), cut);
        let out = Runner::new(&mut sim, Some(Writer::open(&jp).unwrap()), false)
            .run(&j.steps, Some(&j))
            .unwrap()
            .outcomes;
        assert!(failed(&out).is_empty(), "cut {cut}: {:#?}", failed(&out));
        assert_eq!(state(&sim, &plan), want, "cut {cut}");
    }
}

#[test]
fn rollback_restores_the_state_before_after_full_and_partial_applies() {
    let plan = plan_of("borg-like");
    let pristine = sim_for(&plan);
    let want = state(&pristine, &plan);
    let steps = steps_for(&plan, &pristine, "/");
    let dir = tempfile::tempdir().unwrap();
    for cut in [steps.len(), steps.len() / 2, 1] {
        let mut sim = sim_for(&plan);
        let jp = dir.path().join(format!("j{cut}"));
        let w = Writer::create(&jp, &header(&steps)).unwrap();
        Runner::new(&mut sim, Some(w), false)
            .run(&steps[..cut], None)
            .unwrap();
        let j = Journal::read(&jp).unwrap();
        let mut w = Writer::open(&jp).unwrap();
        let out = exec::rollback(&mut sim as &mut dyn Host, &j, Some(&mut w)).unwrap();
        assert!(failed(&out).is_empty(), "cut {cut}: {:#?}", failed(&out));
        assert_eq!(state(&sim, &plan), want, "cut {cut}");
        // A second rollback finds everything undone.
        let again = exec::rollback(&mut sim as &mut dyn Host, &Journal::read(&jp).unwrap(), None).unwrap();
        assert!(again.is_empty(), "{again:#?}");
    }
}

#[test]
fn a_process_that_exited_is_recorded_not_fatal() {
    let plan = plan_of("borg-like");
    let mut sim = sim_for(&plan);
    let gone = plan
        .nodes
        .iter()
        .find(|n| n.path != "/" && !n.processes.is_empty())
        .unwrap()
        .processes[0];
    sim.exit_process(gone);
    let steps = steps_for(&plan, &sim, "/");
    let out = Runner::new(&mut sim, None, false)
        .run(&steps, None)
        .unwrap()
        .outcomes;
    let o = out
        .iter()
        .find(|o| o.label.starts_with(&format!("move process {gone} ")))
        .unwrap();
    assert!(o.status.is_done(), "{o:?}");
    assert!(o.note.as_deref().unwrap_or("").contains("exited"), "{o:?}");
    assert!(failed(&out).is_empty());
}

#[test]
fn a_refused_write_is_listed_with_the_kernel_reason() {
    let plan = plan_of("borg-like");
    // memory not offered on v2 (still bound to v1): enabling it fails.
    let mut sim = Simulator::new(&["cpu"]);
    for n in &plan.nodes {
        for pid in &n.processes {
            sim.add_process(*pid, &[], "/").unwrap();
        }
    }
    let steps = steps_for(&plan, &sim, "/");
    let out = Runner::new(&mut sim, None, false)
        .run(&steps, None)
        .unwrap()
        .outcomes;
    let f = failed(&out);
    assert!(!f.is_empty());
    assert!(
        f.iter().any(|o| o.label.contains("memory")
            && o.note.as_deref().unwrap_or("").contains("cgroup.subtree_control")),
        "{f:#?}"
    );
}

#[test]
fn processes_are_matched_by_their_stable_key_after_a_reboot() {
    let snap = host("borg-like").scan();
    let plan = cgmig::plan::plan(&snap, &rules());
    assert!(!plan.process_keys.is_empty(), "the plan records keys");
    // "Reboot": same programs, every PID shifted by 10000.
    let mut live = resolve::live_from_snapshot(&snap);
    for l in &mut live {
        l.pid = Pid::new(l.pid.get() + 10_000);
    }
    let r = resolve::resolve(&plan, &live, false, &resolve::Protected::default());
    for n in plan.nodes.iter().filter(|n| n.path != "/") {
        for pid in &n.processes {
            let got = r.pids.get(pid).cloned().unwrap_or_default();
            assert!(
                got.contains(&Pid::new(pid.get() + 10_000)),
                "{pid} → {got:?} ({:?})",
                r.unmatched
            );
        }
    }
}

#[test]
fn live_steps_place_tasks_first_then_hand_over_then_configure() {
    let plan = plan_of("borg-like");
    let sim = sim_for(&plan);
    let spec = cgmig::apply::handover::Spec {
        hierarchy: "memory".into(),
        v1: vec!["memory".into()],
        v2: vec!["memory".into()],
        mounts: vec![cgmig::apply::step::V1Mount {
            point: "/sys/fs/cgroup/memory".into(),
            source: "cgroup".into(),
            options: "rw".into(),
            super_options: "rw,memory".into(),
        }],
    };
    let (steps, _) = exec::build_steps(&plan, "/m", &Resolved::trusting(&plan), &sim, &[spec]);
    let pos = |f: &dyn Fn(&Step) -> bool| steps.iter().position(f).unwrap();
    let last = |f: &dyn Fn(&Step) -> bool| steps.iter().rposition(f).unwrap();
    use cgmig::plan::Action;
    let last_move = last(&|s| matches!(s, Step::Action(Action::MoveProcess { .. })));
    let evac = pos(&|s| matches!(s, Step::Evacuate { .. }));
    let wait = pos(&|s| matches!(s, Step::WaitV2 { .. }));
    let first_enable = pos(&|s| {
        matches!(
            s,
            Step::EnableAbove { .. } | Step::Action(Action::EnableControllers { .. })
        )
    });
    let first_write = pos(&|s| matches!(s, Step::Action(Action::Write { .. })));
    assert!(
        last_move < evac && evac < wait && wait < first_enable && first_enable < first_write,
        "{steps:#?}"
    );
    let kinds: Vec<&str> = steps[evac..=wait]
        .iter()
        .map(|s| match s {
            Step::Evacuate { .. } => "evacuate",
            Step::RemoveV1 { .. } => "remove",
            Step::WaitRelease { .. } => "release",
            Step::Unmount { .. } => "unmount",
            Step::WaitV2 { .. } => "v2",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["evacuate", "remove", "release", "unmount", "v2"]);
}
