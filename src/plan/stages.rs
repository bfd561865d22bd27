//! The staged rollout: which v1 controllers move to cgroup2 in which boot.
//!
//! A controller is bound to v1 or to v2, never both, and `cgroup_no_v1=`
//! moves it at boot; so a staged move is a sequence of boots, each turning
//! off v1 for more controllers. How a rollout engineer orders them:
//!
//! * a v1 hierarchy is the unit: co-mounted controllers (`cpu,cpuacct`)
//!   share one hierarchy and move in the same boot;
//! * hierarchies with nothing to move (no setting to convert, no cgroup
//!   besides the root) carry no risk and go together, in the first boot;
//! * the others follow one per boot, the one that moves the least first
//!   (cgroups, then settings, then processes), so a problem shows on the
//!   smallest change;
//! * `memory` and `cpu` move last (memory before cpu): every workload feels
//!   them, and their v2 semantics differ the most (reclaim and OOM, weights);
//! * the last boot is the final switch (`cgroup_no_v1=all`, systemd on the
//!   unified hierarchy), which also releases named hierarchies.
//!
//! `--stages one` makes a single boot, and `--stages SPEC` sets the boots by
//! hand (`hugetlb/pids,memory/cpu,cpuacct`: `/` separates boots, `,` joins
//! controllers; controllers the spec leaves out move in a last boot of their
//! own). A subtree plan stages only the hierarchies its subtree uses.
//!
//! The stages are computed from the plan's nodes (settings, origins,
//! processes) and the spine's hierarchy labels only, so a saved plan can be
//! re-staged without its snapshot. Each stage says why it is where it is.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::model::{PlanNode, Stage};
use super::origin_controllers;

/// How the boots are chosen (`--stages`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StagePolicy {
    /// By risk (the module documentation).
    #[default]
    Auto,
    /// Everything in one boot.
    One,
    /// Set by hand: boots of controller names, in order.
    Spec(Vec<Vec<String>>),
}

/// A `--stages` value that cannot be read, or that does not fit the host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StageError {
    /// Nothing given.
    #[error("empty: give auto, one, or boots like `hugetlb/pids,memory/cpu,cpuacct`")]
    Empty,
    /// `a//b`, `a/`, `,a`.
    #[error("boot {boot} of {spec:?} is empty ('/' separates boots, ',' joins controllers)")]
    EmptyBoot {
        /// The whole spec.
        spec: String,
        /// 1-based.
        boot: usize,
    },
    /// `a,,b`.
    #[error("boot {boot} of {spec:?} has an empty controller name (',' joins controllers)")]
    EmptyName {
        /// The whole spec.
        spec: String,
        /// 1-based.
        boot: usize,
    },
    /// Not a controller name at all.
    #[error("{name:?} is not a controller name (lower-case letters, digits and '_')")]
    BadName {
        /// What was given.
        name: String,
    },
    /// Named twice.
    #[error("{name} is named twice (boots {first} and {second})")]
    Twice {
        /// The controller.
        name: String,
        /// 1-based boots.
        first: usize,
        /// 1-based boots.
        second: usize,
    },
    /// Not on a v1 hierarchy of this host.
    #[error(
        "--stages: {name} is not among the v1 controllers this plan moves ({known}): it is on cgroup2 already, unused, or outside the subtree"
    )]
    NotOnV1 {
        /// The controller.
        name: String,
        /// The host's v1 controllers, comma-separated.
        known: String,
    },
    /// Co-mounted controllers split across boots, or left out in part.
    #[error("--stages: {label} share one v1 hierarchy and move in the same boot, but {detail}")]
    Split {
        /// The hierarchy.
        label: String,
        /// Where each was put.
        detail: String,
    },
}

impl std::str::FromStr for StagePolicy {
    type Err = StageError;

    /// Syntax only; whether the names fit the host is [`stages`]'s check.
    fn from_str(s: &str) -> Result<Self, StageError> {
        let spec = s.trim();
        match spec {
            "" => return Err(StageError::Empty),
            "auto" => return Ok(StagePolicy::Auto),
            "one" => return Ok(StagePolicy::One),
            _ => {}
        }
        let mut boots = Vec::new();
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for (i, boot) in spec.split('/').enumerate() {
            let n = i + 1;
            if boot.trim().is_empty() {
                return Err(StageError::EmptyBoot {
                    spec: spec.into(),
                    boot: n,
                });
            }
            let mut names = Vec::new();
            for name in boot.split(',').map(str::trim) {
                if name.is_empty() {
                    return Err(StageError::EmptyName {
                        spec: spec.into(),
                        boot: n,
                    });
                }
                let valid = name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                if !valid || name.len() > 64 {
                    return Err(StageError::BadName {
                        name: crate::report::escape::line(name).into_owned(),
                    });
                }
                if let Some(&first) = seen.get(name) {
                    return Err(StageError::Twice {
                        name: name.into(),
                        first,
                        second: n,
                    });
                }
                seen.insert(name.into(), n);
                names.push(name.to_string());
            }
            boots.push(names);
        }
        Ok(StagePolicy::Spec(boots))
    }
}

/// What moving one v1 hierarchy to cgroup2 moves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Load {
    /// Its label (`cpu,cpuacct`).
    pub label: String,
    /// Its controllers.
    pub controllers: Vec<String>,
    /// Its cgroups the plan carries, the root not counted.
    pub cgroups: usize,
    /// Settings the plan converts from it.
    pub settings: usize,
    /// Processes placed in nodes that one of its cgroups (not the root) made.
    pub processes: usize,
}

impl Load {
    /// Nothing to convert and no cgroup besides the root: moving it changes
    /// nothing a workload sees.
    fn idle(&self) -> bool {
        self.cgroups == 0 && self.settings == 0
    }

    /// 0 for most, 1 for memory, 2 for cpu: these move last.
    fn last_rank(&self) -> u8 {
        if self.controllers.iter().any(|c| c == "cpu") {
            2
        } else if self.controllers.iter().any(|c| c == "memory") {
            1
        } else {
            0
        }
    }

    fn what(&self) -> String {
        format!(
            "{}, {}, {}",
            plural(self.cgroups, "cgroup"),
            plural(self.settings, "setting"),
            match self.processes {
                1 => "1 process".to_string(),
                n => format!("{n} processes"),
            }
        )
    }
}

/// The load of each v1 controller hierarchy among `labels` (hierarchy
/// labels; named and unified ones are left out), from the plan's nodes.
pub fn loads(labels: &[String], nodes: &[PlanNode]) -> Vec<Load> {
    let mut out: Vec<Load> = labels
        .iter()
        .filter(|l| l.as_str() != "unified")
        .filter_map(|l| {
            let controllers = label_controllers(l);
            (!controllers.is_empty()).then(|| Load {
                label: l.clone(),
                controllers,
                cgroups: 0,
                settings: 0,
                processes: 0,
            })
        })
        .collect();
    let index: BTreeMap<String, usize> = out
        .iter()
        .enumerate()
        .map(|(i, l)| (l.label.clone(), i))
        .collect();
    let mut cgroups: Vec<BTreeSet<&str>> = vec![BTreeSet::new(); out.len()];
    for n in nodes {
        let mut made_by: BTreeSet<usize> = BTreeSet::new();
        for o in n.origins.iter().filter(|o| o.path != "/") {
            if let Some(&i) = index.get(&o.label) {
                cgroups[i].insert(o.path.as_str());
                made_by.insert(i);
            }
        }
        for i in made_by {
            out[i].processes += n.processes.len();
        }
        for s in &n.settings {
            if let Some(&i) = index.get(&s.origin.label) {
                out[i].settings += 1;
            }
        }
    }
    for (l, c) in out.iter_mut().zip(cgroups) {
        l.cgroups = c.len();
    }
    out
}

/// The controllers of a hierarchy label (`cpu,cpuacct,name=x` → cpu, cpuacct).
fn label_controllers(label: &str) -> Vec<String> {
    origin_controllers(&super::Origin {
        hierarchy: crate::model::HierarchyId::UNIFIED,
        label: label.to_string(),
        path: "/".into(),
    })
}

/// One boot before it is numbered: the hierarchies it moves and why.
#[derive(Debug, Clone)]
struct Boot {
    loads: Vec<Load>,
    why: String,
}

impl Boot {
    /// Its controllers, sorted (a boot line reads best that way).
    fn controllers(&self) -> Vec<String> {
        let mut c: Vec<String> = self
            .loads
            .iter()
            .flat_map(|l| l.controllers.iter().cloned())
            .collect();
        c.sort();
        c
    }
}

/// The stages for `loads` under a policy; an error when a hand-written
/// spec does not fit the host.
pub fn stages(loads: &[Load], policy: &StagePolicy) -> Result<Vec<Stage>, StageError> {
    let boots = match policy {
        StagePolicy::Auto => auto(loads),
        StagePolicy::One => one(loads),
        StagePolicy::Spec(spec) => by_hand(loads, spec)?,
    };
    Ok(number(boots))
}

/// The stages by risk ([`StagePolicy::Auto`], which cannot fail).
pub fn by_risk(loads: &[Load]) -> Vec<Stage> {
    number(auto(loads))
}

/// By risk: idle hierarchies together, then those with cgroups but nothing
/// to convert together, then one per boot, least first; memory and cpu
/// (when in use) last.
fn auto(loads: &[Load]) -> Vec<Boot> {
    // Idle first, even memory and cpu: a hierarchy nothing uses moves
    // nothing.
    let (idle, rest): (Vec<&Load>, Vec<&Load>) = loads.iter().partition(|l| l.idle());
    let (last, rest): (Vec<&Load>, Vec<&Load>) = rest.into_iter().partition(|l| l.last_rank() > 0);
    let (bare, mut used): (Vec<&Load>, Vec<&Load>) = rest.into_iter().partition(|l| l.settings == 0);
    let mut boots = Vec::new();
    let together = |ls: &[&Load]| ls.iter().map(|l| (*l).clone()).collect::<Vec<_>>();
    if !idle.is_empty() {
        boots.push(Boot {
            loads: together(&idle),
            why: "nothing to convert and no cgroup besides the root: moving these changes nothing a workload sees, so they go first and together".into(),
        });
    }
    if !bare.is_empty() {
        let cgroups: usize = bare.iter().map(|l| l.cgroups).sum();
        boots.push(Boot {
            loads: together(&bare),
            why: format!(
                "in use ({}) but no setting to convert: only membership moves, the same small risk for each, so they go together",
                plural(cgroups, "cgroup")
            ),
        });
    }
    used.sort_by_key(|l| (l.cgroups, l.settings, l.processes, l.label.clone()));
    let n = used.len();
    for (i, l) in used.into_iter().enumerate() {
        let why = match i {
            _ if n == 1 => format!("moves {}", l.what()),
            0 => format!("moves {}: the least of those with settings", l.what()),
            _ if i + 1 == n => format!("moves {}: the most of those with settings", l.what()),
            _ => format!("moves {}: less than those after it", l.what()),
        };
        boots.push(Boot {
            loads: vec![l.clone()],
            why,
        });
    }
    let mut last = last;
    last.sort_by_key(|l| (l.last_rank(), l.label.clone()));
    for l in last {
        let why = if l.last_rank() == 2 {
            format!(
                "moves {}; cpu goes last: every process's CPU weight and quota change meaning on v2",
                l.what()
            )
        } else {
            format!(
                "moves {}; memory goes last but cpu: reclaim, OOM and swap accounting change on v2",
                l.what()
            )
        };
        boots.push(Boot {
            loads: vec![l.clone()],
            why,
        });
    }
    boots
}

/// `1 cgroup`, `2 cgroups`.
fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("{n} {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// Everything in one boot.
fn one(loads: &[Load]) -> Vec<Boot> {
    if loads.is_empty() {
        return Vec::new();
    }
    vec![Boot {
        loads: loads.to_vec(),
        why: "--stages one: every controller in a single boot".into(),
    }]
}

/// The boots a spec names, then one more for what it leaves out.
fn by_hand(loads: &[Load], spec: &[Vec<String>]) -> Result<Vec<Boot>, StageError> {
    let known = || {
        let mut all: Vec<&str> = loads
            .iter()
            .flat_map(|l| l.controllers.iter().map(String::as_str))
            .collect();
        all.sort_unstable();
        all.join(",")
    };
    // Each named controller's boot, and the hierarchy it belongs to.
    let mut boot_of: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, boot) in spec.iter().enumerate() {
        for name in boot {
            if !loads.iter().any(|l| l.controllers.contains(name)) {
                return Err(StageError::NotOnV1 {
                    name: name.clone(),
                    known: known(),
                });
            }
            boot_of.insert(name, i + 1);
        }
    }
    // Co-mounted controllers move together: all named in one boot, or none.
    for l in loads {
        let named: Vec<(&String, usize)> = l
            .controllers
            .iter()
            .map(|c| (c, boot_of.get(c.as_str()).copied().unwrap_or(0)))
            .collect();
        let first = named.iter().find(|(_, b)| *b != 0);
        if let Some(&(first, first_boot)) = first
            && let Some(&(second, second_boot)) = named.iter().find(|(_, b)| *b != first_boot)
        {
            let detail = if second_boot == 0 {
                format!(
                    "{first} is in boot {first_boot} and {second} is not named (write {})",
                    l.controllers.join(",")
                )
            } else {
                format!("{first} is in boot {first_boot} and {second} in boot {second_boot}")
            };
            return Err(StageError::Split {
                label: l.label.clone(),
                detail,
            });
        }
    }
    let mut boots: Vec<Boot> = spec
        .iter()
        .enumerate()
        .map(|(i, boot)| Boot {
            loads: loads
                .iter()
                .filter(|l| l.controllers.iter().any(|c| boot.contains(c)))
                .cloned()
                .collect(),
            why: format!("--stages: boot {} as given", i + 1),
        })
        .collect();
    let rest: Vec<Load> = loads
        .iter()
        .filter(|l| !l.controllers.iter().any(|c| boot_of.contains_key(c.as_str())))
        .cloned()
        .collect();
    if !rest.is_empty() {
        boots.push(Boot {
            loads: rest,
            why: "not named in --stages".into(),
        });
    }
    Ok(boots)
}

/// Number the boots, make each one's controllers cumulative and its kernel
/// command line, and say in the last one that it is the final switch.
fn number(boots: Vec<Boot>) -> Vec<Stage> {
    let total = boots.len();
    let mut moved: Vec<String> = Vec::new();
    let mut out = Vec::with_capacity(total);
    for (i, b) in boots.into_iter().enumerate() {
        let adds = b.controllers();
        moved.extend(adds.iter().cloned());
        let last = i + 1 == total;
        let mut why = b.why;
        if last {
            let _ = write!(
                why,
                "; the final switch: cgroup_no_v1=all also releases named hierarchies, and systemd moves to the unified hierarchy"
            );
        }
        out.push(Stage {
            number: i + 1,
            cmdline: cmdline(&moved, last),
            adds,
            controllers: moved.clone(),
            kernel: None,
            why,
        });
    }
    out
}

/// The kernel command line of a stage: v1 off for the controllers moved so
/// far (hybrid), or v1 off entirely with systemd on v2 for the last one.
fn cmdline(moved: &[String], last: bool) -> String {
    if last {
        return "cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1".to_string();
    }
    format!(
        "cgroup_no_v1={} systemd.unified_cgroup_hierarchy=0 systemd.legacy_systemd_cgroup_controller=0",
        moved.join(",")
    )
}

/// The loads a subtree uses: the hierarchies its settings came from.
pub fn used_by(loads: Vec<Load>, nodes: &[PlanNode]) -> Vec<Load> {
    let used: BTreeSet<&str> = nodes
        .iter()
        .flat_map(|n| &n.settings)
        .map(|s| s.origin.label.as_str())
        .collect();
    loads
        .into_iter()
        .filter(|l| used.contains(l.label.as_str()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(label: &str, cgroups: usize, settings: usize, processes: usize) -> Load {
        Load {
            label: label.into(),
            controllers: label_controllers(label),
            cgroups,
            settings,
            processes,
        }
    }

    fn adds(s: &[Stage]) -> Vec<String> {
        s.iter().map(|s| s.adds.join(",")).collect()
    }

    #[test]
    fn idle_first_together_then_least_first_memory_and_cpu_last() {
        let l = vec![
            load("cpu,cpuacct", 3, 3, 4),
            load("memory", 2, 0, 4),
            load("pids", 5, 1, 4),
            load("blkio", 1, 1, 1),
            load("hugetlb", 0, 0, 0),
            load("freezer", 0, 0, 0),
            load("devices", 4, 0, 2),
            load("net_cls,net_prio", 1, 0, 1),
        ];
        let s = stages(&l, &StagePolicy::Auto).unwrap();
        assert_eq!(
            adds(&s),
            [
                "freezer,hugetlb",
                "devices,net_cls,net_prio",
                "blkio",
                "pids",
                "memory",
                "cpu,cpuacct"
            ]
        );
        assert_eq!(
            s[0].cmdline.split(' ').next(),
            Some("cgroup_no_v1=freezer,hugetlb")
        );
        assert_eq!(
            s[5].cmdline,
            "cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1"
        );
        assert!(s[0].why.contains("nothing to convert"), "{}", s[0].why);
        assert!(
            s[1].why.contains("in use (5 cgroups) but no setting"),
            "{}",
            s[1].why
        );
        assert!(
            s[2].why.contains("1 cgroup, 1 setting, 1 process: the least"),
            "{}",
            s[2].why
        );
        assert!(s[4].why.contains("memory goes last but cpu"), "{}", s[4].why);
        assert!(
            s[5].why.contains("final switch") && s[5].why.contains("cpu goes last"),
            "{}",
            s[5].why
        );
        assert_eq!(
            s[3].controllers,
            [
                "freezer", "hugetlb", "devices", "net_cls", "net_prio", "blkio", "pids"
            ]
        );
        // Nothing in use: one boot, memory and cpu included.
        let idle = vec![load("cpu", 0, 0, 0), load("memory", 0, 0, 0)];
        assert_eq!(adds(&stages(&idle, &StagePolicy::Auto).unwrap()), ["cpu,memory"]);
        assert!(stages(&[], &StagePolicy::Auto).unwrap().is_empty());
    }

    #[test]
    fn one_and_by_hand() {
        let l = vec![
            load("cpu,cpuacct", 3, 3, 4),
            load("memory", 2, 2, 4),
            load("pids", 5, 1, 4),
            load("hugetlb", 0, 0, 0),
        ];
        assert_eq!(
            adds(&stages(&l, &StagePolicy::One).unwrap()),
            ["cpu,cpuacct,hugetlb,memory,pids"]
        );
        let spec: StagePolicy = "hugetlb/pids,memory/cpu,cpuacct".parse().unwrap();
        assert_eq!(
            adds(&stages(&l, &spec).unwrap()),
            ["hugetlb", "memory,pids", "cpu,cpuacct"]
        );
        let spec: StagePolicy = "hugetlb".parse().unwrap();
        let s = stages(&l, &spec).unwrap();
        assert_eq!(adds(&s), ["hugetlb", "cpu,cpuacct,memory,pids"]);
        assert!(s[1].why.contains("not named"), "{}", s[1].why);
    }

    #[test]
    fn spec_errors_are_clear() {
        let err = |s: &str| s.parse::<StagePolicy>().unwrap_err().to_string();
        assert!(err("").contains("empty"));
        assert!(
            err("a//b").contains("boot 2 of \"a//b\" is empty"),
            "{}",
            err("a//b")
        );
        assert!(err("a/").contains("boot 2 of \"a/\" is empty"));
        assert!(err("a,,b").contains("empty controller name"));
        assert!(err("Memory").contains("not a controller name"));
        assert!(
            err("cpu\x1b[2J").contains("\\x1b"),
            "escaped: {}",
            err("cpu\x1b[2J")
        );
        assert!(err("memory/cpu,memory").contains("memory is named twice (boots 1 and 2)"));
        let l = vec![load("cpu,cpuacct", 1, 1, 1), load("memory", 1, 1, 1)];
        let host = |s: &str| stages(&l, &s.parse().unwrap()).unwrap_err().to_string();
        assert!(
            host("memroy")
                .contains("memroy is not among the v1 controllers this plan moves (cpu,cpuacct,memory)"),
            "{}",
            host("memroy")
        );
        let split = host("cpu/cpuacct");
        assert!(
            split.contains("cpu,cpuacct share one v1 hierarchy and move in the same boot, but cpu is in boot 1 and cpuacct in boot 2"),
            "{split}"
        );
        let part = host("cpu/memory");
        assert!(
            part.contains("cpuacct is not named (write cpu,cpuacct)"),
            "{part}"
        );
    }
}
