//! Host-level facts computed from a snapshot (the `fact:` side of the rules).

use crate::model::{HierarchyId, Tid};
use std::collections::BTreeMap;

use petgraph::graph::NodeIndex;
use petgraph::visit::EdgeRef;

use super::{Finding, Subject, kernel_at_least};
use crate::model::{Controller, Hierarchy, Mode, Node, Process, Snapshot, Version};
use crate::rules::{Fact, RuleSet};

/// One observed fact.
#[derive(Debug, Clone)]
pub struct Observed {
    /// Which fact.
    pub fact: Fact,
    /// What it is about.
    pub subject: Subject,
    /// A sentence describing this instance (`{detail}`).
    pub detail: String,
    /// Boot parameter name, for `boot-param`.
    pub param: Option<String>,
    /// A value (`{value}`): boot parameter value, ...
    pub value: Option<String>,
}

fn obs(fact: Fact, subject: Subject, detail: String) -> Observed {
    Observed {
        fact,
        subject,
        detail,
        param: None,
        value: None,
    }
}

/// Whether a v1 hierarchy has a controller that acts on whole processes only.
pub fn has_domain_controller(h: &Hierarchy) -> bool {
    h.controllers.iter().any(|c| !c.is_threaded())
}

/// Split a kernel command line into `(key, value)` pairs (quotes honoured).
pub fn boot_params(cmdline: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for ch in cmdline.chars().chain(std::iter::once(' ')) {
        match ch {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    let item = std::mem::take(&mut cur);
                    match item.split_once('=') {
                        Some((k, v)) => out.push((k.to_string(), Some(v.to_string()))),
                        None => out.push((item, None)),
                    }
                }
            }
            c => cur.push(c),
        }
    }
    // Everything after a bare `--` goes to init, not the kernel.
    if let Some(i) = out.iter().position(|(k, v)| k == "--" && v.is_none()) {
        out.truncate(i);
    }
    out
}

/// Compute every fact the rules can match, host-wide facts first, then per
/// hierarchy, per process, boot parameters, controllers and open files.
pub fn compute(snap: &Snapshot) -> Vec<Observed> {
    let view = View::new(snap);
    let processes = snap.processes();
    let mut out = Vec::new();
    mode_facts(snap, &mut out);
    for (hi, h) in &view.v1 {
        hierarchy_facts(snap, *hi, h, &mut out);
    }
    split_thread_facts(&view, &processes, &mut out);
    for ((_, h), cgroups) in view.v1.iter().zip(view.v1_cgroups()) {
        internal_process_and_delegation_facts(snap, h, &cgroups, &mut out);
    }
    boot_param_facts(snap, &mut out);
    controller_facts(&view, &mut out);
    for (pi, p) in processes {
        out.extend(event_listener_fact(p));
        out.extend(diverged_placement_fact(&view, pi, p));
    }
    out
}

/// The snapshot's hierarchies, looked up once for every fact.
struct View<'a> {
    snap: &'a Snapshot,
    all: Vec<(NodeIndex, &'a Hierarchy)>,
    v1: Vec<(NodeIndex, &'a Hierarchy)>,
    /// Each hierarchy's label, made once (a finding per process needs them).
    labels: Vec<(HierarchyId, String)>,
}

impl<'a> View<'a> {
    fn new(snap: &'a Snapshot) -> Self {
        let all = snap.hierarchies();
        let v1 = all
            .iter()
            .filter(|(_, h)| h.version == Version::V1)
            .copied()
            .collect();
        let labels = all.iter().map(|(_, h)| (h.id, h.label())).collect();
        View {
            snap,
            all,
            v1,
            labels,
        }
    }

    /// A hierarchy's label by id (the id itself when it is unknown).
    fn label_of(&self, id: HierarchyId) -> String {
        self.labels
            .iter()
            .find(|(i, _)| *i == id)
            .map_or_else(|| id.to_string(), |(_, l)| l.clone())
    }

    /// The cgroups of each v1 hierarchy (in `v1`'s order), in graph order:
    /// one walk of the graph instead of one per hierarchy.
    fn v1_cgroups(&self) -> Vec<Vec<NodeIndex>> {
        let mut per = vec![Vec::new(); self.v1.len()];
        for (ci, c) in self.snap.cgroups() {
            if let Some(i) = self.v1.iter().position(|(_, h)| h.id == c.hierarchy) {
                per[i].push(ci);
            }
        }
        per
    }
}

fn hierarchy_subject(h: &Hierarchy) -> Subject {
    Subject::Hierarchy {
        id: h.id,
        label: h.label(),
    }
}

fn cgroup_subject(h: &Hierarchy, path: &str) -> Subject {
    Subject::Cgroup {
        hierarchy: h.id,
        label: h.label(),
        path: path.to_string(),
    }
}

fn process_subject(p: &Process) -> Subject {
    Subject::Process {
        pid: p.pid,
        comm: p.comm.clone(),
    }
}

/// `legacy-mode`, `hybrid-mode`, `no-cgroupfs`.
fn mode_facts(snap: &Snapshot, out: &mut Vec<Observed>) {
    match snap.host.mode {
        Mode::Legacy => out.push(obs(Fact::LegacyMode, Subject::Host, "legacy".into())),
        Mode::Hybrid => out.push(obs(Fact::HybridMode, Subject::Host, "hybrid".into())),
        Mode::None => out.push(obs(Fact::NoCgroupfs, Subject::Host, "none".into())),
        Mode::Unified => {}
    }
}

/// Facts about one v1 hierarchy itself: named, unmounted, release agent, ...
fn hierarchy_facts(snap: &Snapshot, hi: NodeIndex, h: &Hierarchy, out: &mut Vec<Observed>) {
    if let Some(n) = &h.name {
        out.push(obs(
            Fact::NamedHierarchy,
            hierarchy_subject(h),
            format!("name={n} (id {})", h.id),
        ));
    }
    if h.mounts.is_empty() {
        out.push(obs(
            Fact::UnmountedHierarchy,
            hierarchy_subject(h),
            format!("{} (id {})", h.label(), h.id),
        ));
    }
    // The root's release_agent file is a file rule; the mount option is
    // only reported when the root could not be read.
    if let Some(agent) = h.release_agent.as_ref().filter(|a| !a.is_empty())
        && snap.root_cgroup(hi).is_none()
    {
        out.push(obs(
            Fact::ReleaseAgent,
            hierarchy_subject(h),
            format!("{} ({agent})", h.label()),
        ));
    }
}

/// `split-threads-*`: a process whose threads sit in different cgroups of
/// one v1 hierarchy, split by whether that hierarchy has a domain
/// controller. A split on cgroup2 is left out: the kernel allows one only
/// inside a threaded subtree, which is already the v2 form (a hybrid host
/// half way through a staged rollout has one), not a v1 layout to move.
fn split_thread_facts(view: &View<'_>, processes: &[(NodeIndex, &Process)], out: &mut Vec<Observed>) {
    let snap = view.snap;
    let hierarchy = |id: HierarchyId| view.all.iter().find(|(_, h)| h.id == id).map(|(_, h)| *h);
    for (pi, split) in split_processes(snap, processes) {
        let Node::Process(p) = &snap.graph[pi] else {
            continue;
        };
        let (domain, threaded): (Vec<HierarchyId>, Vec<HierarchyId>) = split
            .iter()
            .filter(|id| hierarchy(**id).is_some_and(|h| h.version == Version::V1))
            .partition(|id| hierarchy(**id).is_some_and(has_domain_controller));
        if !domain.is_empty() {
            let detail = describe_split(view, pi, p, &domain);
            out.push(obs(Fact::SplitThreadsDomain, process_subject(p), detail));
        }
        if !threaded.is_empty() {
            let detail = describe_split(view, pi, p, &threaded);
            out.push(obs(Fact::SplitThreadsThreaded, process_subject(p), detail));
        }
    }
}

/// [`Snapshot::split_processes`] for these processes (in their order),
/// with one reused buffer of (hierarchy, cgroup) pairs instead of a map of
/// sets per process: most processes are not split.
fn split_processes(
    snap: &Snapshot,
    processes: &[(NodeIndex, &Process)],
) -> Vec<(NodeIndex, Vec<HierarchyId>)> {
    let mut out = Vec::new();
    let mut places: Vec<(HierarchyId, NodeIndex)> = Vec::new();
    for (pi, _) in processes {
        places.clear();
        for t in snap
            .graph
            .edges_directed(*pi, petgraph::Direction::Outgoing)
            .filter(|e| *e.weight() == crate::model::Edge::Thread)
        {
            places.extend(
                snap.memberships(t.target())
                    .map(|cg| (snap.cgroup(cg).hierarchy, cg)),
            );
        }
        places.sort_unstable();
        places.dedup();
        let mut split: Vec<HierarchyId> = places
            .windows(2)
            .filter(|w| w[0].0 == w[1].0)
            .map(|w| w[0].0)
            .collect();
        split.dedup();
        if !split.is_empty() {
            out.push((*pi, split));
        }
    }
    out
}

/// "process P (comm) has N threads across cgroups of H (threads 1,2 in /a; ...)".
fn describe_split(view: &View<'_>, pi: NodeIndex, p: &Process, ids: &[HierarchyId]) -> String {
    let snap = view.snap;
    let threads = snap.threads(pi);
    let per: Vec<String> = ids
        .iter()
        .map(|id| {
            let mut by_cg: BTreeMap<String, Vec<Tid>> = BTreeMap::new();
            for (ti, t) in &threads {
                for cg in snap
                    .memberships(*ti)
                    .filter(|cg| snap.cgroup(*cg).hierarchy == *id)
                {
                    by_cg.entry(snap.cgroup(cg).path.clone()).or_default().push(t.tid);
                }
            }
            let places: Vec<String> = by_cg
                .iter()
                .map(|(path, tids)| {
                    let t: Vec<String> = tids.iter().map(|t| t.to_string()).collect();
                    format!("threads {} in {path}", t.join(","))
                })
                .collect();
            format!("{} ({})", view.label_of(*id), places.join("; "))
        })
        .collect();
    format!(
        "process {} ({}) has {} threads across cgroups of {}",
        p.pid,
        p.comm,
        threads.len(),
        per.join(" and ")
    )
}

/// `internal-processes` for inner cgroups of a hierarchy with a domain
/// controller, then the delegation facts of that hierarchy.
fn internal_process_and_delegation_facts(
    snap: &Snapshot,
    h: &Hierarchy,
    cgroups: &[NodeIndex],
    out: &mut Vec<Observed>,
) {
    let domain = has_domain_controller(h);
    let mut owned: BTreeMap<u32, Vec<NodeIndex>> = BTreeMap::new();
    for &ci in cgroups {
        let c = snap.cgroup(ci);
        if domain && !c.is_root() {
            out.extend(internal_processes_fact(snap, h, ci));
        }
        if let Some(uid) = c.owner.delegate_uid() {
            let parent_same = snap
                .parent(ci)
                .is_some_and(|p| snap.cgroup(p).owner.delegate_uid() == Some(uid));
            if !parent_same {
                owned.entry(uid).or_default().push(ci);
            }
        }
    }
    for (uid, tops) in owned {
        delegation_facts(snap, h, uid, &tops, out);
    }
}

/// `internal-processes`: an inner cgroup that holds tasks.
fn internal_processes_fact(snap: &Snapshot, h: &Hierarchy, ci: NodeIndex) -> Option<Observed> {
    // Leaves (most cgroups) cannot hold internal processes: count their
    // tasks only for inner cgroups.
    let kids = snap
        .graph
        .edges_directed(ci, petgraph::Direction::Outgoing)
        .filter(|e| *e.weight() == crate::model::Edge::Child)
        .count();
    if kids == 0 {
        return None;
    }
    let (procs, threads) = snap.task_counts(ci);
    if threads == 0 {
        return None;
    }
    let c = snap.cgroup(ci);
    Some(obs(
        Fact::InternalProcesses,
        cgroup_subject(h, &c.path),
        format!(
            "{} holds {procs} processes ({threads} threads) and has {kids} child cgroups in {}",
            c.path,
            h.label()
        ),
    ))
}

/// `delegated` for each top cgroup a uid owns, and
/// `delegation-common-ancestor` when it owns more than one subtree.
fn delegation_facts(snap: &Snapshot, h: &Hierarchy, uid: u32, tops: &[NodeIndex], out: &mut Vec<Observed>) {
    for &ci in tops {
        let c = snap.cgroup(ci);
        let below = count_owned_below(snap, ci, uid);
        out.push(obs(
            Fact::Delegated,
            cgroup_subject(h, &c.path),
            format!(
                "uid {uid} owns {} and {below} cgroups below it in {}",
                c.path,
                h.label()
            ),
        ));
    }
    if tops.len() > 1 {
        let paths: Vec<&str> = tops.iter().map(|i| snap.cgroup(*i).path.as_str()).collect();
        out.push(obs(
            Fact::DelegationCommonAncestor,
            hierarchy_subject(h),
            format!(
                "uid {uid} owns {} separate subtrees in {} ({}) whose common ancestor is root-owned",
                tops.len(),
                h.label(),
                paths.join(", ")
            ),
        ));
    }
}

/// `boot-param`: one per kernel command-line parameter.
fn boot_param_facts(snap: &Snapshot, out: &mut Vec<Observed>) {
    let Some(cmd) = &snap.host.cmdline else {
        return;
    };
    for (k, v) in boot_params(cmd) {
        out.push(Observed {
            fact: Fact::BootParam,
            subject: Subject::Host,
            detail: format!("{k}{}", v.as_ref().map(|v| format!("={v}")).unwrap_or_default()),
            param: Some(k),
            value: v,
        });
    }
}

/// `controller-v1-bound` and `controller-unused` from `/proc/cgroups`.
fn controller_facts(view: &View<'_>, out: &mut Vec<Observed>) {
    let has_v2 = view.all.iter().any(|(_, h)| h.version == Version::V2);
    // perf_event needs no enabling on v2: it is implicitly there.
    let perf_implicit = |c: &crate::model::ControllerStatus| has_v2 && c.controller == Controller::PerfEvent;
    for c in view.snap.host.controllers.iter().filter(|c| c.enabled) {
        if c.hierarchy != HierarchyId::UNIFIED {
            out.push(obs(
                Fact::ControllerV1Bound,
                Subject::Host,
                format!("{} (hierarchy {})", c.controller, c.hierarchy),
            ));
        } else if !c.in_v2 && !perf_implicit(c) {
            out.push(obs(
                Fact::ControllerUnused,
                Subject::Host,
                c.controller.to_string(),
            ));
        }
    }
}

/// v1 files whose open descriptors are event listeners (eventfd-based
/// notifications that have no v2 equivalent at the same path).
const EVENT_FILES: &[&str] = &[
    "cgroup.event_control",
    "memory.oom_control",
    "memory.pressure_level",
    "memory.usage_in_bytes",
    "memory.memsw.usage_in_bytes",
];

/// `event-listener`: a process holding v1 event files open.
fn event_listener_fact(p: &Process) -> Option<Observed> {
    let files: Vec<&str> = p
        .cgroup_files
        .iter()
        .filter(|f| EVENT_FILES.iter().any(|e| f.ends_with(&format!("/{e}"))))
        .map(String::as_str)
        .collect();
    (!files.is_empty()).then(|| {
        obs(
            Fact::EventListener,
            process_subject(p),
            format!("process {} ({}) holds {} open", p.pid, p.comm, files.join(", ")),
        )
    })
}

/// `diverged-placement`: a user process whose main thread sits at different
/// paths in different v1 hierarchies.
fn diverged_placement_fact(view: &View<'_>, pi: NodeIndex, p: &Process) -> Option<Observed> {
    let snap = view.snap;
    if p.is_kernel_thread() {
        return None;
    }
    let main = snap
        .graph
        .edges_directed(pi, petgraph::Direction::Outgoing)
        .filter(|e| *e.weight() == crate::model::Edge::Thread)
        .map(|e| e.target())
        .find(|t| matches!(&snap.graph[*t], Node::Thread(t) if t.tid == p.pid.main_thread()))?;
    // (path, hierarchy id) of the main thread in each v1 hierarchy; labels
    // and the map by path are only made for a finding.
    let mut at: Vec<(&str, HierarchyId)> = snap
        .memberships(main)
        .map(|cg| snap.cgroup(cg))
        .filter(|c| view.v1.iter().any(|(_, h)| h.id == c.hierarchy))
        .map(|c| (c.path.as_str(), c.hierarchy))
        .collect();
    if at.windows(2).all(|w| w[0].0 == w[1].0) {
        return None;
    }
    at.sort_by(|a, b| a.0.cmp(b.0));
    let mut paths: BTreeMap<&str, Vec<HierarchyId>> = BTreeMap::new();
    for (path, id) in at {
        paths.entry(path).or_default().push(id);
    }
    let parts: Vec<String> = paths
        .iter()
        .map(|(p, ids)| {
            let ls: Vec<String> = ids.iter().map(|id| view.label_of(*id)).collect();
            format!("{p} in {}", ls.join(","))
        })
        .collect();
    Some(obs(
        Fact::DivergedPlacement,
        process_subject(p),
        format!("process {} ({}) is at {}", p.pid, p.comm, parts.join("; ")),
    ))
}

fn count_owned_below(snap: &Snapshot, ci: NodeIndex, uid: u32) -> usize {
    let mut n = 0;
    let mut stack = snap.children(ci);
    while let Some(c) = stack.pop() {
        if snap.cgroup(c).owner.delegate_uid() == Some(uid) {
            n += 1;
        }
        stack.extend(snap.children(c));
    }
    n
}

/// What the kernel and init system cannot do for this layout on cgroup2
/// (see [`super::kernel`]): no cgroup2, a controller it sets that the kernel
/// lacks or may lack there, a systemd too old for a unified hierarchy.
pub fn kernel_facts(
    snap: &Snapshot,
    usage: &BTreeMap<Controller, super::kernel::Usage>,
    split_threads: usize,
) -> Vec<Observed> {
    use super::kernel::{KernelFact, Support};
    Support::of(snap)
        .facts(usage, split_threads)
        .into_iter()
        .map(|f| match f {
            KernelFact::NoCgroup2(d) => obs(Fact::KernelNoCgroup2, Subject::Host, d),
            KernelFact::LacksController(d) => obs(Fact::KernelLacksController, Subject::Host, d),
            KernelFact::ControllerUnknown(d) => obs(Fact::KernelControllerUnknown, Subject::Host, d),
            KernelFact::SystemdTooOld(d) => obs(Fact::SystemdTooOld, Subject::Host, d),
            KernelFact::NoThreadMode(d) => obs(Fact::KernelNoThreadMode, Subject::Host, d),
        })
        .collect()
}

/// Conversions whose v2 target needs a newer kernel than the host's.
pub fn kernel_too_old<'a>(
    snap: &Snapshot,
    rules: &RuleSet,
    conversions: impl IntoIterator<Item = &'a crate::rules::Conversion>,
) -> Vec<Finding> {
    let Some(rule) = rules.fact_rules(Fact::KernelTooOld).next() else {
        return Vec::new();
    };
    let Some(spec) = &rule.rule.finding else {
        return Vec::new();
    };
    // The rules whose kernel is newer than the host's, decided once per rule
    // instead of once per conversion; usually none, and then the
    // conversions are not even walked.
    let too_new: Vec<(&str, &str)> = rules
        .rules()
        .iter()
        .filter_map(|r| Some((r.rule.id.as_str(), r.rule.kernel.as_deref()?)))
        .filter(|(_, k)| !kernel_at_least(snap, k))
        .collect();
    if too_new.is_empty() {
        return Vec::new();
    }
    let mut need: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let support = super::kernel::Support::of(snap);
    // A weight file the host's disks do not read is not written (the plan's
    // I/O weight step), so its first kernel does not matter here.
    let weights = crate::model::weight_files(&snap.host.shows.block_devices);
    for c in conversions {
        if matches!(c.target.as_str(), "io.weight" | "io.bfq.weight") && !weights.writes(&c.target) {
            continue;
        }
        // The first rule with the id, as `RuleSet::get` finds it.
        if let Some((_, k)) = too_new.iter().find(|(id, _)| *id == c.rule) {
            // No cgroup2, or a controller the kernel lacks (or may lack) on
            // it, is its controller's finding (`audit::kernel`), not one
            // per file.
            let v1 = c
                .inputs
                .iter()
                .filter_map(|(f, _)| super::kernel::v1_controller(f));
            if v1.into_iter().any(|v1| support.speaks_for(&v1)) {
                continue;
            }
            // A vendor kernel that offers the target's controller has the
            // files the controller came with (RHEL 8's cpuset).
            let ctl = Controller::of_v2_file(&c.target).and_then(Controller::v2_named);
            if crate::rules::parse_kernel(k).is_some_and(|want| support.satisfies(ctl, want)) {
                continue;
            }
            *need.entry((c.target.as_str(), k)).or_default() += 1;
        }
    }
    let kernel = snap.host.kernel.clone().unwrap_or_default();
    need.into_iter()
        .map(|((target, k), n)| {
            let (target, k) = (target.to_string(), k.to_string());
            let detail =
                format!("{target} (needed by {n} cgroups) appears in kernel {k}; this kernel is {kernel}");
            Finding {
                rule: rule.text().id.clone(),
                severity: spec.severity,
                title: rule.text().title.clone(),
                subject: Subject::Host,
                file: Some(target),
                value: None,
                detail: Some(detail.clone()),
                why: super::fill(&spec.why, &[("detail", &detail)]),
                remediation: spec.remediation.trim().into(),
                kernel: Some(k),
                source: rule.text().source.clone(),
                waived: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_params_split_and_stop_at_init_args() {
        let p = boot_params(
            r#"BOOT_IMAGE=/vmlinuz ro quiet cgroup_no_v1="memory,cpu" systemd.unified_cgroup_hierarchy=0 -- --init-arg=1"#,
        );
        assert!(p.contains(&("ro".into(), None)));
        assert!(p.contains(&("cgroup_no_v1".into(), Some("memory,cpu".into()))));
        assert!(p.contains(&("systemd.unified_cgroup_hierarchy".into(), Some("0".into()))));
        assert!(!p.iter().any(|(k, _)| k.starts_with("--init")));
    }
}
