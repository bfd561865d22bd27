//! Host-level facts computed from a snapshot (the `fact:` side of the rules).

use std::collections::BTreeMap;

use petgraph::graph::NodeIndex;

use super::{Finding, Subject, kernel_at_least};
use crate::model::{Controller, Hierarchy, Mode, Node, Snapshot, Version};
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

/// Compute every fact the rules can match.
pub fn compute(snap: &Snapshot) -> Vec<Observed> {
    let mut out = Vec::new();
    let hs = snap.hierarchies();
    let v1: Vec<(NodeIndex, &Hierarchy)> = hs
        .iter()
        .filter(|(_, h)| h.version == Version::V1)
        .cloned()
        .collect();
    let label_of = |id: u32| -> String {
        hs.iter()
            .find(|(_, h)| h.id == id)
            .map(|(_, h)| h.label())
            .unwrap_or_else(|| id.to_string())
    };
    let hsub = |h: &Hierarchy| Subject::Hierarchy {
        id: h.id,
        label: h.label(),
    };

    match snap.host.mode {
        Mode::Legacy => out.push(obs(Fact::LegacyMode, Subject::Host, "legacy".into())),
        Mode::Hybrid => out.push(obs(Fact::HybridMode, Subject::Host, "hybrid".into())),
        Mode::None => out.push(obs(Fact::NoCgroupfs, Subject::Host, "none".into())),
        Mode::Unified => {}
    }

    for (hi, h) in &v1 {
        if let Some(n) = &h.name {
            out.push(obs(
                Fact::NamedHierarchy,
                hsub(h),
                format!("name={n} (id {})", h.id),
            ));
        }
        if h.mounts.is_empty() {
            out.push(obs(
                Fact::UnmountedHierarchy,
                hsub(h),
                format!("{} (id {})", h.label(), h.id),
            ));
        }
        // The root's release_agent file is a file rule; the mount option is
        // only reported when the root could not be read.
        if let Some(agent) = h.release_agent.as_ref().filter(|a| !a.is_empty())
            && snap.root_cgroup(*hi).is_none()
        {
            out.push(obs(
                Fact::ReleaseAgent,
                hsub(h),
                format!("{} ({agent})", h.label()),
            ));
        }
    }

    // Threads split across cgroups of one hierarchy.
    for (pi, split) in snap.split_processes() {
        let Node::Process(p) = &snap.graph[pi] else {
            continue;
        };
        let threads = snap.threads(pi);
        let (domain, threaded): (Vec<u32>, Vec<u32>) = split.iter().partition(|id| {
            hs.iter()
                .find(|(_, h)| h.id == **id)
                .is_some_and(|(_, h)| has_domain_controller(h))
        });
        let describe = |ids: &[u32]| -> String {
            let per: Vec<String> = ids
                .iter()
                .map(|id| {
                    let mut by_cg: BTreeMap<String, Vec<u32>> = BTreeMap::new();
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
                    format!("{} ({})", label_of(*id), places.join("; "))
                })
                .collect();
            format!(
                "process {} ({}) has {} threads across cgroups of {}",
                p.pid,
                p.comm,
                threads.len(),
                per.join(" and ")
            )
        };
        let subject = Subject::Process {
            pid: p.pid,
            comm: p.comm.clone(),
        };
        if !domain.is_empty() {
            out.push(obs(Fact::SplitThreadsDomain, subject.clone(), describe(&domain)));
        }
        if !threaded.is_empty() {
            out.push(obs(Fact::SplitThreadsThreaded, subject, describe(&threaded)));
        }
    }

    // Internal processes, delegation.
    for (_, h) in &v1 {
        let domain = has_domain_controller(h);
        let mut owned: BTreeMap<u32, Vec<NodeIndex>> = BTreeMap::new();
        for (ci, c) in snap.cgroups().filter(|(_, c)| c.hierarchy == h.id) {
            if domain && !c.is_root() {
                // Leaves (most cgroups) cannot hold internal processes:
                // count their tasks only for inner cgroups.
                let kids = snap.children(ci).len();
                let (procs, threads) = if kids > 0 { snap.task_counts(ci) } else { (0, 0) };
                if threads > 0 && kids > 0 {
                    out.push(obs(
                        Fact::InternalProcesses,
                        Subject::Cgroup {
                            hierarchy: h.id,
                            label: h.label(),
                            path: c.path.clone(),
                        },
                        format!(
                            "{} holds {procs} processes ({threads} threads) and has {kids} child cgroups in {}",
                            c.path,
                            h.label()
                        ),
                    ));
                }
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
            for &ci in &tops {
                let c = snap.cgroup(ci);
                let below = count_owned_below(snap, ci, uid);
                out.push(obs(
                    Fact::Delegated,
                    Subject::Cgroup {
                        hierarchy: h.id,
                        label: h.label(),
                        path: c.path.clone(),
                    },
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
                    Subject::Hierarchy {
                        id: h.id,
                        label: h.label(),
                    },
                    format!(
                        "uid {uid} owns {} separate subtrees in {} ({}) whose common ancestor is root-owned",
                        tops.len(),
                        h.label(),
                        paths.join(", ")
                    ),
                ));
            }
        }
    }

    if let Some(cmd) = &snap.host.cmdline {
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

    let has_v2 = hs.iter().any(|(_, h)| h.version == Version::V2);
    // perf_event needs no enabling on v2: it is implicitly there.
    let perf_implicit = |c: &crate::model::ControllerStatus| has_v2 && c.controller == Controller::PerfEvent;
    for c in &snap.host.controllers {
        if !c.enabled {
            continue;
        }
        if c.hierarchy != 0 {
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

    const EVENT_FILES: &[&str] = &[
        "cgroup.event_control",
        "memory.oom_control",
        "memory.pressure_level",
        "memory.usage_in_bytes",
        "memory.memsw.usage_in_bytes",
    ];
    for (pi, p) in snap.processes() {
        let files: Vec<&str> = p
            .cgroup_files
            .iter()
            .filter(|f| EVENT_FILES.iter().any(|e| f.ends_with(&format!("/{e}"))))
            .map(String::as_str)
            .collect();
        if !files.is_empty() {
            out.push(obs(
                Fact::EventListener,
                Subject::Process {
                    pid: p.pid,
                    comm: p.comm.clone(),
                },
                format!("process {} ({}) holds {} open", p.pid, p.comm, files.join(", ")),
            ));
        }
        // Placement that differs between v1 hierarchies.
        if p.is_kernel_thread() {
            continue;
        }
        let Some((main, _)) = snap.threads(pi).into_iter().find(|(_, t)| t.tid == p.pid) else {
            continue;
        };
        // Hierarchy ids per path; labels are only made for a finding.
        let mut paths: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
        for cg in snap.memberships(main) {
            let c = snap.cgroup(cg);
            if v1.iter().any(|(_, h)| h.id == c.hierarchy) {
                paths.entry(c.path.as_str()).or_default().push(c.hierarchy);
            }
        }
        if paths.len() > 1 {
            let parts: Vec<String> = paths
                .iter()
                .map(|(p, ids)| {
                    let ls: Vec<String> = ids.iter().map(|id| label_of(*id)).collect();
                    format!("{p} in {}", ls.join(","))
                })
                .collect();
            out.push(obs(
                Fact::DivergedPlacement,
                Subject::Process {
                    pid: p.pid,
                    comm: p.comm.clone(),
                },
                format!("process {} ({}) is at {}", p.pid, p.comm, parts.join("; ")),
            ));
        }
    }
    out
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
    let mut need: BTreeMap<(String, String), usize> = BTreeMap::new();
    for c in conversions {
        if let Some(k) = rules.get(&c.rule).and_then(|r| r.rule.kernel.clone())
            && !kernel_at_least(snap, &k)
        {
            *need.entry((c.target.clone(), k)).or_default() += 1;
        }
    }
    let kernel = snap.host.kernel.clone().unwrap_or_default();
    need.into_iter()
        .map(|((target, k), n)| {
            let detail =
                format!("{target} (needed by {n} cgroups) appears in kernel {k}; this kernel is {kernel}");
            Finding {
                rule: rule.rule.id.clone(),
                severity: spec.severity,
                title: rule.rule.title.clone(),
                subject: Subject::Host,
                file: Some(target),
                value: None,
                detail: Some(detail.clone()),
                why: super::fill(&spec.why, &[("detail", &detail)]),
                remediation: spec.remediation.trim().to_string(),
                kernel: Some(k),
                source: rule.rule.source.clone(),
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
