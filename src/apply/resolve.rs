//! Match the plan's processes to live ones by their stable key.
//!
//! Rules (documented in `docs/apply.md`, "Stable process key"):
//! 1. The live process with the plan's PID is taken when its uid, `comm` and
//!    `cmdline` equal the key (same boot, or a PID that came back the same).
//! 2. In the plan's own boot, a PID is the identity: a planned process that
//!    is gone has exited (reported), and no namesake stands in for it.
//! 3. Otherwise every live process with the key's uid, `comm` and `cmdline`
//!    is a candidate. Keys of one identity that all go to one node take all
//!    candidates there. When they go to several nodes, a candidate goes where
//!    a key's v1 cgroups equal its own; one that fits no key or several is
//!    ambiguous: reported, not moved.
//! 4. A key with no candidate is reported ("no process matches").
//! 5. A live process that is the plan's own process by rule 1 belongs to its
//!    key, wherever that key's node is (the root included): no other key
//!    takes it by identity.
//! 6. PID 1 and the chain of processes that runs this cgmig (itself, the
//!    shell, sudo, the session: [`Protected`]) are never taken by identity
//!    (rule 3), and never by a PID after a reboot except PID 1 by its own
//!    key. A key read from a process caught between fork and exec carries
//!    its parent's identity; moving the parent on that key's word once froze
//!    a whole scenario (the boots guest's init, moved into its frozen
//!    cgroup), and on a real host it would move the operator's shell or init.
//!
//! Threads placed on their own follow by thread `comm` inside the matched
//! process when that is unique; otherwise they are reported.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{Pid, Snapshot, Tid, Version};
use crate::plan::{Plan, ProcessKey};

/// A live process as the key sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Live {
    /// PID.
    pub pid: Pid,
    /// uid.
    pub uid: u32,
    /// comm.
    pub comm: String,
    /// cmdline.
    pub cmdline: Vec<String>,
    /// (hierarchy label, path) of its v1 cgroups.
    pub v1: Vec<(String, String)>,
    /// (tid, comm).
    pub threads: Vec<(Tid, String)>,
}

/// The plan's PIDs and TIDs mapped to live ones, and what could not be.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    /// Plan PID → live PIDs (several when one key matches several processes).
    pub pids: BTreeMap<Pid, Vec<Pid>>,
    /// Plan TID → live TID.
    pub tids: BTreeMap<Tid, Tid>,
    /// What could not be matched: (plan pid or tid, reason).
    pub unmatched: Vec<(TaskId, String)>,
}

/// A task the plan names: a whole process or one thread of it. Printed as
/// the bare number, the way the kernel's `cgroup.procs` and `tasks` show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TaskId {
    /// A process (moved with all its threads).
    Process(Pid),
    /// One thread, placed on its own.
    Thread(Tid),
}

impl std::fmt::Display for TaskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TaskId::Process(p) => p.fmt(f),
            TaskId::Thread(t) => t.fmt(f),
        }
    }
}

impl Resolved {
    /// Every planned PID and TID taken as it is, with no live process
    /// checked: only for the simulator, whose processes are the plan's by
    /// construction (tests, replays).
    pub fn trusting(plan: &Plan) -> Resolved {
        let mut r = Resolved::default();
        for n in plan.nodes.iter().filter(|n| n.path != "/") {
            for p in &n.processes {
                r.pids.insert(*p, vec![*p]);
            }
            for t in &n.threads {
                r.tids.insert(t.tid, t.tid);
                r.pids.entry(t.pid).or_insert_with(|| vec![t.pid]);
            }
        }
        r
    }
}

/// Processes no key takes by identity (rule 6), each with the reason
/// reported when a key would have.
#[derive(Debug, Clone, Default)]
pub struct Protected(BTreeMap<Pid, String>);

impl Protected {
    /// PID 1, this process and its ancestors, walked with `parent` (a
    /// process's parent PID; `None` ends the walk).
    pub fn chain(this: Pid, parent: impl Fn(Pid) -> Option<Pid>) -> Protected {
        let mut m = BTreeMap::new();
        m.insert(Pid::new(1), "PID 1 (init)".to_string());
        let mut at = Some(this);
        // A bound, not a trust: /proc's PPid chain always ends at 0.
        for _ in 0..64 {
            let Some(p) = at.filter(|p| p.get() > 1) else {
                break;
            };
            m.entry(p).or_insert_with(|| {
                "this cgmig or a process that runs it (its shell, sudo, the session)".to_string()
            });
            at = parent(p);
        }
        Protected(m)
    }

    /// Why `pid` is protected, if it is.
    pub fn why(&self, pid: Pid) -> Option<&str> {
        self.0.get(&pid).map(String::as_str)
    }
}

/// Live processes from a (fresh) snapshot.
pub fn live_from_snapshot(snap: &Snapshot) -> Vec<Live> {
    snap.processes()
        .into_iter()
        .map(|(pi, p)| {
            let ts = snap.threads(pi);
            let mut v1 = BTreeSet::new();
            if let Some((ti, _)) = ts
                .iter()
                .find(|(_, t)| t.tid == p.pid.main_thread())
                .or(ts.first())
            {
                for cg in snap.memberships(*ti) {
                    let c = snap.cgroup(cg);
                    if let Some((_, h)) = snap.hierarchy(c.hierarchy)
                        && h.version == Version::V1
                    {
                        v1.insert((h.label(), c.path.clone()));
                    }
                }
            }
            Live {
                pid: p.pid,
                uid: p.uid,
                comm: p.comm.clone(),
                cmdline: p.cmdline.clone(),
                v1: v1.into_iter().collect(),
                threads: ts.iter().map(|(_, t)| (t.tid, t.comm.clone())).collect(),
            }
        })
        .collect()
}

fn same_identity(k: &ProcessKey, l: &Live) -> bool {
    k.uid == l.uid && k.comm == l.comm && k.cmdline == l.cmdline
}

/// Resolve every process and thread the plan places. In the boot the plan
/// was made in (`same_boot`), a PID is the identity: a planned process that
/// is gone has exited, and is not replaced by a namesake started since.
pub fn resolve(plan: &Plan, live: &[Live], same_boot: bool, protected: &Protected) -> Resolved {
    let mut r = Resolved::default();
    // Processes the plan leaves at the root are never moved: not matched either.
    let node_of: BTreeMap<Pid, &str> = plan
        .nodes
        .iter()
        .filter(|n| n.path != "/")
        .flat_map(|n| n.processes.iter().map(move |p| (*p, n.path.as_str())))
        .collect();
    let by_pid: BTreeMap<Pid, &Live> = live.iter().map(|l| (l.pid, l)).collect();
    let keyed: BTreeSet<Pid> = plan.process_keys.iter().map(|k| k.pid).collect();
    for pid in node_of.keys().filter(|p| !keyed.contains(p)) {
        // No key, no identity to check a live process against: a bare PID
        // may name anything by now (issue 20), so it is not moved.
        r.pids.insert(*pid, Vec::new());
        r.unmatched.push((
            TaskId::Process(*pid),
            format!("the plan has no stable key for process {pid} (made by an older cgmig?): not moved"),
        ));
    }
    // Rule 5: the plan's own processes, wherever their nodes are.
    let mut taken: BTreeSet<Pid> = plan
        .process_keys
        .iter()
        .filter(|k| by_pid.get(&k.pid).is_some_and(|l| same_identity(k, l)))
        .map(|k| k.pid)
        .collect();
    let mut pending: Vec<&ProcessKey> = Vec::new();
    for k in plan.process_keys.iter().filter(|k| node_of.contains_key(&k.pid)) {
        match by_pid.get(&k.pid) {
            // Rule 6: after a reboot a PID alone does not make this
            // session's shell the plan's process (PID 1 is init in every boot).
            Some(l) if !same_boot && k.pid.get() != 1 && protected.why(l.pid).is_some() => {
                taken.remove(&l.pid);
                pending.push(k);
            }
            Some(l) if same_identity(k, l) => {
                taken.insert(l.pid);
                r.pids.insert(k.pid, vec![l.pid]);
                for (tid, _) in &k.threads {
                    if l.threads.iter().any(|(t, _)| t == tid) {
                        r.tids.insert(*tid, *tid);
                    } else {
                        r.unmatched.push((
                            TaskId::Thread(*tid),
                            format!("thread {tid} of process {} has exited", k.pid),
                        ));
                    }
                }
            }
            _ if same_boot => {
                r.pids.insert(k.pid, Vec::new());
                r.unmatched.push((
                    TaskId::Process(k.pid),
                    format!("process {} ({}) has exited since the plan", k.pid, k.comm),
                ));
            }
            _ => pending.push(k),
        }
    }
    // Group the rest by identity.
    let mut groups: BTreeMap<(u32, &str, &Vec<String>), Vec<&ProcessKey>> = BTreeMap::new();
    for k in pending {
        groups
            .entry((k.uid, k.comm.as_str(), &k.cmdline))
            .or_default()
            .push(k);
    }
    for keys in groups.values() {
        let (cands, kept): (Vec<&Live>, Vec<&Live>) = live
            .iter()
            .filter(|l| !taken.contains(&l.pid) && same_identity(keys[0], l))
            .partition(|l| protected.why(l.pid).is_none());
        for l in kept {
            r.unmatched.push((
                TaskId::Process(l.pid),
                format!(
                    "process {} ({}) has the identity of the plan's process {} but is {}: never moved by a key",
                    l.pid,
                    l.comm,
                    keys[0].pid,
                    protected.why(l.pid).unwrap_or_default()
                ),
            ));
        }
        assign_group(keys, &cands, &node_of, &mut r);
    }
    r
}

fn assign_group(keys: &[&ProcessKey], cands: &[&Live], node_of: &BTreeMap<Pid, &str>, r: &mut Resolved) {
    let key_desc = |k: &ProcessKey| format!("{} (uid {}, {:?})", k.comm, k.uid, k.cmdline.join(" "));
    if cands.is_empty() {
        for k in keys {
            r.pids.insert(k.pid, Vec::new());
            r.unmatched.push((
                TaskId::Process(k.pid),
                format!("no live process matches the key of {}: {}", k.pid, key_desc(k)),
            ));
        }
        return;
    }
    let nodes: BTreeSet<&str> = keys.iter().filter_map(|k| node_of.get(&k.pid).copied()).collect();
    if nodes.len() <= 1 {
        // One destination: every candidate goes there, under the first key.
        r.pids.insert(keys[0].pid, cands.iter().map(|l| l.pid).collect());
        for k in &keys[1..] {
            r.pids.insert(k.pid, Vec::new());
        }
        if keys.len() == 1 && cands.len() == 1 {
            match_threads(keys[0], cands[0], r);
        }
        return;
    }
    for k in keys {
        r.pids.entry(k.pid).or_default();
    }
    for l in cands {
        let fits: Vec<&&ProcessKey> = keys.iter().filter(|k| k.v1 == l.v1).collect();
        match fits.as_slice() {
            [k] => {
                r.pids.entry(k.pid).or_default().push(l.pid);
                match_threads(k, l, r);
            }
            _ => r.unmatched.push((
                TaskId::Process(l.pid),
                format!(
                    "process {} matches the key {} of {} processes planned for different nodes: not moved",
                    l.pid,
                    key_desc(keys[0]),
                    keys.len()
                ),
            )),
        }
    }
}

fn match_threads(k: &ProcessKey, l: &Live, r: &mut Resolved) {
    for (tid, comm) in &k.threads {
        let hits: Vec<Tid> = l
            .threads
            .iter()
            .filter(|(_, c)| c == comm)
            .map(|(t, _)| *t)
            .collect();
        match hits.as_slice() {
            [t] => {
                r.tids.insert(*tid, *t);
            }
            _ => r.unmatched.push((
                TaskId::Thread(*tid),
                format!(
                    "thread {tid} ({comm:?}) has {} namesakes in process {}: not moved",
                    hits.len(),
                    l.pid
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{NodeType, PlanNode};

    fn pids(raw: &[u32]) -> Vec<Pid> {
        raw.iter().copied().map(Pid::new).collect()
    }

    fn key(pid: u32, cmd: &str, v1: &str) -> ProcessKey {
        ProcessKey {
            pid: Pid::new(pid),
            uid: 0,
            comm: "x".into(),
            cmdline: vec![cmd.into()],
            v1: vec![("cpu".into(), v1.into())],
            threads: Vec::new(),
        }
    }

    fn live(pid: u32, cmd: &str, v1: &str) -> Live {
        Live {
            pid: Pid::new(pid),
            uid: 0,
            comm: "x".into(),
            cmdline: vec![cmd.into()],
            v1: vec![("cpu".into(), v1.into())],
            threads: vec![(Tid::new(pid), "x".into())],
        }
    }

    fn plan(nodes: &[(&str, &[u32])], keys: Vec<ProcessKey>) -> Plan {
        let mut p: Plan = serde_json::from_str(
            r#"{"schema":"cgmig.plan/v1","host":{"hostname":null,"kernel":null,"mode":"legacy"},
               "controllers":[],"nodes":[],"actions":[],"findings":[],"conflicts":[],
               "spine":{"order":[],"settings_affected":0,"tried":[]},"stages":[]}"#,
        )
        .unwrap();
        for (path, pids) in nodes {
            let mut n = PlanNode::new(path.to_string(), NodeType::Domain, None);
            n.processes = pids.iter().copied().map(Pid::new).collect();
            p.nodes.push(n);
        }
        p.process_keys = keys;
        p
    }

    #[test]
    fn same_pid_same_identity_is_kept() {
        let p = plan(&[("/a", &[10])], vec![key(10, "a", "/a")]);
        let r = resolve(&p, &[live(10, "a", "/a")], false, &Protected::default());
        assert_eq!(r.pids[&Pid::new(10)], pids(&[10]));
    }

    #[test]
    fn after_reboot_matches_by_key() {
        let p = plan(
            &[("/a", &[10]), ("/b", &[11])],
            vec![key(10, "a", "/a"), key(11, "b", "/b")],
        );
        let r = resolve(
            &p,
            &[live(500, "b", "/b"), live(501, "a", "/a"), live(10, "other", "/")],
            false,
            &Protected::default(),
        );
        assert_eq!(r.pids[&Pid::new(10)], pids(&[501]));
        assert_eq!(r.pids[&Pid::new(11)], pids(&[500]));
        assert!(r.unmatched.is_empty());
    }

    #[test]
    fn several_same_node_all_go_several_nodes_by_v1_else_ambiguous() {
        let p = plan(&[("/a", &[10, 11])], vec![key(10, "w", "/a"), key(11, "w", "/a")]);
        let r = resolve(
            &p,
            &[live(20, "w", "/a"), live(21, "w", "/a"), live(22, "w", "/zz")],
            false,
            &Protected::default(),
        );
        assert_eq!(r.pids[&Pid::new(10)], pids(&[20, 21, 22]));
        let p = plan(
            &[("/a", &[10]), ("/b", &[11])],
            vec![key(10, "w", "/a"), key(11, "w", "/b")],
        );
        let r = resolve(
            &p,
            &[live(20, "w", "/b"), live(21, "w", "/q")],
            false,
            &Protected::default(),
        );
        assert_eq!(r.pids[&Pid::new(11)], pids(&[20]));
        assert!(r.pids[&Pid::new(10)].is_empty());
        assert_eq!(r.unmatched.len(), 1);
        assert!(r.unmatched[0].1.contains("different nodes"));
    }

    #[test]
    fn no_match_is_reported() {
        let p = plan(&[("/a", &[10])], vec![key(10, "a", "/a")]);
        let r = resolve(&p, &[live(10, "b", "/a")], false, &Protected::default());
        assert!(r.pids[&Pid::new(10)].is_empty());
        let r = resolve(&p, &[live(11, "a", "/a")], true, &Protected::default());
        assert!(
            r.pids[&Pid::new(10)].is_empty(),
            "same boot: a namesake does not stand in"
        );
        assert!(r.unmatched[0].1.contains("exited since the plan"));
        let r = resolve(&p, &[live(10, "b", "/a")], false, &Protected::default());
        assert!(r.pids[&Pid::new(10)].is_empty());
        assert!(r.unmatched[0].1.contains("no live process matches"));
    }

    #[test]
    fn a_key_never_sweeps_up_init_or_the_chain_that_runs_cgmig() {
        // The boots guest: the plan's process 160 was caught between fork
        // and exec, so its key is init's identity; after the reboot that
        // key must not take init (PID 1, at the root by its own key) nor
        // the shell running cgmig (protected), only the real namesake.
        let mut init = key(1, "sh /init", "/");
        init.comm = "init".into();
        let mut forked = key(160, "sh /init", "/frozen");
        forked.comm = "init".into();
        let p = plan(&[("/", &[1]), ("/frozen", &[160])], vec![init, forked]);
        let mut l1 = live(1, "sh /init", "/");
        l1.comm = "init".into();
        let mut shell = live(300, "sh /init", "/");
        shell.comm = "init".into();
        let mut other = live(301, "sh /init", "/");
        other.comm = "init".into();
        let prot = Protected::chain(Pid::new(400), |p| (p.get() == 400).then(|| Pid::new(300)));
        let r = resolve(&p, &[l1, shell, other], false, &prot);
        assert_eq!(r.pids[&Pid::new(160)], pids(&[301]), "{:?}", r.unmatched);
        assert!(
            r.unmatched
                .iter()
                .any(|(t, why)| *t == TaskId::Process(Pid::new(300)) && why.contains("never moved by a key")),
            "{:?}",
            r.unmatched
        );
        // Without the protection the shell would have gone too; init is
        // kept by its own key either way (rule 5).
        let mut l1 = live(1, "sh /init", "/");
        l1.comm = "init".into();
        let mut shell = live(300, "sh /init", "/");
        shell.comm = "init".into();
        let r = resolve(&p, &[l1, shell], false, &Protected::default());
        assert_eq!(r.pids[&Pid::new(160)], pids(&[300]));
    }

    #[test]
    fn after_a_reboot_a_protected_pid_is_not_the_plan_process_by_pid() {
        let p = plan(&[("/a", &[300])], vec![key(300, "bash", "/a")]);
        let prot = Protected::chain(Pid::new(300), |_| None);
        let r = resolve(&p, &[live(300, "bash", "/")], false, &prot);
        assert!(r.pids[&Pid::new(300)].is_empty(), "{r:?}");
        // In the plan's own boot the PID is the identity.
        let r = resolve(&p, &[live(300, "bash", "/")], true, &prot);
        assert_eq!(r.pids[&Pid::new(300)], pids(&[300]));
    }
}
