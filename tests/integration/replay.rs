//! Replay a plan's actions against the simulator of the v2 kernel rules
//! (`cgmig::apply::Simulator`): every stage of every plan must be a sequence
//! of calls the kernel accepts (issue 8, class 3).
//!
//! Each plan action maps to the file operation apply will make: create =
//! mkdir, set-type = write `cgroup.type`, move-process = write
//! `cgroup.procs`, move-thread = write `cgroup.threads`, enable-controllers =
//! write `cgroup.subtree_control` (`+c` per controller), write = write the
//! file, chown = chown the directory and each named file. Writes to files
//! that exist only under some device's scheduler (`io.bfq.weight`) may fail
//! with ENOENT: apply treats them as optional.

use cgmig::apply::{Simulator, Target};
use cgmig::model::{Snapshot, Tid};
use cgmig::plan::{Action, Plan};

/// The host's kernel as (major, minor), if the snapshot records it.
fn kernel(snap: &Snapshot) -> Option<(u32, u32)> {
    snap.host.kernel.as_deref().and_then(cgmig::rules::parse_kernel)
}

/// A fresh v2 root offering the plan's controllers, with every process of
/// the snapshot (and its threads) in the root, on the snapshot's kernel, or
/// on the oldest kernel with cgroup2 (and thread mode, when the plan has
/// threaded nodes) if the host's is older: such a plan carries a
/// `plan.kernel-too-old` blocker, and what it writes must still be what that
/// kernel offers.
fn fresh(snap: &Snapshot, plan: &Plan) -> Simulator {
    let offered: Vec<&str> = plan.controllers.iter().map(String::as_str).collect();
    let mut sim = Simulator::new(&offered);
    let threaded = plan
        .nodes
        .iter()
        .any(|n| n.node_type != cgmig::plan::NodeType::Domain);
    let base = if threaded { (4, 14) } else { (4, 5) };
    if let Some(k) = kernel(snap) {
        if k < base {
            assert!(
                plan.findings.iter().any(|f| f.rule == "plan.kernel-too-old"),
                "kernel {k:?} has no cgroup2 for this plan and no finding says so"
            );
        }
        sim.set_kernel(k.max(base));
    }
    for (pi, p) in snap.processes() {
        let tids: Vec<Tid> = snap.threads(pi).iter().map(|(_, t)| t.tid).collect();
        sim.add_process(p.pid, &tids, "/").expect("the root exists");
    }
    // What systemd or a runtime builds exists before cgmig acts, with the
    // processes it places there (a unit's, a container's). An owner cannot
    // place a process where the kernel refuses it either (a process the
    // plan leaves in a slice whose children need domain controllers): that
    // one stays where it is, as on a real host.
    let pre = cgmig::plan::prebuilt(plan);
    sim.prebuild(pre.iter().map(|(p, c)| (*p, c.as_slice())))
        .expect("other owners' cgroups can be built");
    for (path, _) in pre.iter().filter(|(p, _)| *p != "/") {
        for pid in plan
            .node(path)
            .map(|n| n.processes.as_slice())
            .unwrap_or_default()
        {
            let _ = sim.write(path, "cgroup.procs", &pid.to_string());
        }
    }
    sim
}

/// Carry out one action; `Err` names the action and the errno.
fn step(sim: &mut Simulator, i: usize, a: &Action) -> Result<(), String> {
    let r = match a {
        Action::Create { path } => sim.mkdir(path),
        Action::SetType { path, value } => sim.write(path, "cgroup.type", value),
        Action::MoveProcess { pid, path } => sim.write(path, "cgroup.procs", &pid.to_string()),
        Action::MoveThread { tid, path, .. } => sim.write(path, "cgroup.threads", &tid.to_string()),
        Action::EnableControllers { path, controllers } => {
            let v: Vec<String> = controllers.iter().map(|c| format!("+{c}")).collect();
            sim.write(path, "cgroup.subtree_control", &v.join(" "))
        }
        Action::Write { path, file, value } => match sim.write(path, file, value) {
            Err(e) if e.errno == nix::errno::Errno::ENOENT && cgmig::plan::is_optional_file(file) => Ok(()),
            other => other,
        },
        Action::Chown {
            path,
            uid,
            gid,
            files,
        } => sim.chown(path, None, *uid, *gid).and_then(|_| {
            files
                .iter()
                .try_for_each(|f| sim.chown(path, Some(f), *uid, *gid))
        }),
    };
    r.map_err(|e| format!("action {i} {a:?}: {e}"))
}

/// Replay every action of `plan` on a fresh simulator.
pub fn replay(snap: &Snapshot, plan: &Plan) -> Result<(), String> {
    let mut sim = fresh(snap, plan);
    // Built by other owners (and their parents) before cgmig acts.
    let existing: std::collections::BTreeSet<String> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Create { path } if sim.exists(path) => Some(path.clone()),
            _ => None,
        })
        .collect();
    for (i, a) in plan.actions.iter().enumerate() {
        // The applier takes an existing directory as created (its resume
        // rule); an owner's cgroup that cgmig also names is one.
        if matches!(a, Action::Create { path } if existing.contains(path)) {
            continue;
        }
        step(&mut sim, i, a)?;
    }
    Ok(())
}

/// Replay the whole plan and each of its stages.
pub fn every_stage(snap: &Snapshot, plan: &Plan) -> Vec<String> {
    let mut out = Vec::new();
    if let Err(e) = replay(snap, plan) {
        out.push(format!("whole plan: {e}"));
    }
    for s in &plan.stages {
        let sp = plan.for_stage(s.number, "leaf").expect("listed stage");
        if let Err(e) = replay(snap, &sp) {
            out.push(format!("stage {}: {e}", s.number));
        }
    }
    out
}
