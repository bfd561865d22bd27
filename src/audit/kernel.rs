//! What the host's kernel and init system can do on cgroup v2.
//!
//! The question every command needs answered first: can this host hold its
//! own layout on a unified hierarchy at all? A kernel without cgroup2 (RHEL
//! 7's 3.10), a kernel whose cgroup2 lacks a controller the v1 layout uses
//! (`cpu` before 4.15), and a systemd that cannot run a unified hierarchy
//! (before 226; CentOS 7 and Amazon Linux 2 ship 219) each block the move,
//! and the remediation is an upgrade (of the kernel, or of the OS).
//!
//! **What the kernel shows beats its version.** Vendor kernels backport
//! (RHEL 8's 4.18 offers `cpuset` on cgroup2, upstream 4.18 did not), so
//! [`Support::of`] reads, in this order: the cgroup2 root's
//! `cgroup.controllers` (a controller listed there is offered, whatever the
//! version), `/proc/cgroups` (a controller missing or disabled there is not
//! offered), the kernel config (`CONFIG_…=n`); and only where the host shows
//! nothing, the release: the vendor series cgmig knows ([`SERIES`], el7 and
//! el8, with sources) and otherwise the first upstream kernel that offers the
//! controller on cgroup2 ([`Controller::v2_since`], with the commits).
//!
//! Everything here is a pure function of the snapshot; the findings' severities
//! are in `rules/host.yaml` (`host.kernel-no-cgroup2`, `host.kernel-lacks-controller`,
//! `host.kernel-controller-unknown`, `host.systemd-too-old`).

use std::fmt;

use crate::model::{Controller, Mode, Snapshot};

/// A kernel version (major, minor).
pub type Kernel = (u32, u32);

/// cgroup2 itself: `cgroup: replace __DEVEL__sane_behavior with cgroup2 fs
/// type` (commit 67e9c74b8a87), Linux 4.5.
pub const CGROUP2: Kernel = (4, 5);

/// Thread mode (`cgroup.type` threaded, `cgroup.threads`): `cgroup:
/// implement cgroup v2 thread support` (commit 8cfd8147df67), Linux 4.14.
pub const THREADS: Kernel = (4, 14);

/// The first systemd that runs a unified hierarchy (v226; the constant is
/// systemd's facts' own, `host::systemd`).
pub const SYSTEMD_UNIFIED: u32 = crate::host::systemd::UNIFIED_SINCE;

/// A distribution kernel series whose cgroup2 differs from the upstream
/// version it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Series {
    /// An upstream (or upstream-stable) kernel: the version says it.
    Upstream,
    /// RHEL/CentOS 7 (`3.10.0-N.el7`).
    El7,
    /// RHEL/CentOS/Rocky/Alma 8 (`4.18.0-N.el8…`).
    El8,
}

impl fmt::Display for Series {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Series::Upstream => "upstream",
            Series::El7 => "el7",
            Series::El8 => "el8",
        })
    }
}

/// What a vendor series offers on cgroup2, where it differs from upstream.
#[derive(Debug)]
pub struct SeriesTable {
    /// The series.
    pub series: Series,
    /// Whether the series' kernels have a cgroup2 filesystem at all.
    pub cgroup2: bool,
    /// Why (or why not), in a finding's words.
    pub cgroup2_note: &'static str,
    /// Per controller: offered from this build number of the series on
    /// (`Some(0)`: every build; `None`: no build cgmig knows of), and why.
    pub controllers: &'static [(&'static str, Option<u32>, &'static str)],
    /// Where the facts come from.
    pub source: &'static str,
}

/// The vendor series cgmig knows. docs/readiness.md has the same table.
pub const SERIES: &[SeriesTable] = &[
    SeriesTable {
        series: Series::El7,
        cgroup2: false,
        cgroup2_note: "its 3.10 base predates cgroup2 (4.5, commit 67e9c74b8a87) and RHEL brought cgroup v2 only with RHEL 8",
        controllers: &[],
        source: "RHEL 8 'Considerations in adopting RHEL 8' §10.1.1 (cgroup v2 new in RHEL 8, as a \
                 Technology Preview); the 3.10 base predates cgroup2 (4.5)",
    },
    SeriesTable {
        series: Series::El8,
        cgroup2: true,
        cgroup2_note: "RHEL 8 has cgroup v2",
        controllers: &[
            (
                "cpu",
                Some(0),
                "listed for RHEL 8.0 (Considerations in adopting RHEL 8 §10.1.1; RHEL 8.1 release notes, BZ#1401552)",
            ),
            ("memory", Some(0), "listed for RHEL 8.0 (Considerations §10.1.1)"),
            ("io", Some(0), "listed for RHEL 8.0 (Considerations §10.1.1)"),
            (
                "pids",
                Some(0),
                "listed for RHEL 8.0 (Considerations §10.1.1, process number controller)",
            ),
            ("rdma", Some(0), "listed for RHEL 8.0 (Considerations §10.1.1)"),
            (
                "perf_event",
                Some(0),
                "not in RHEL's list; its 4.18 base has it upstream (4.11), no vendor source",
            ),
            (
                "cpuset",
                Some(193),
                "at least from build 193 (RHEL 8.2, whose systemd gained cgroup2 cpuset: redhat-plumbers/systemd-rhel8 \
                 #57, #73, bz 1724617, 1808940; seen offered on 4.18.0-425, k0sproject/k0s #3069); the first \
                 build is not public",
            ),
            (
                "hugetlb",
                Some(425),
                "at least from build 425 (seen offered on 4.18.0-425.19.2.el8_7, k0sproject/k0s #3069); the \
                 first build is not public",
            ),
            (
                "freezer",
                None,
                "seen missing on 4.18.0-425.19.2.el8_7 (k0sproject/k0s #3069)",
            ),
        ],
        source: "RHEL 8 'Considerations in adopting RHEL 8' §10.1.1; redhat-plumbers/systemd-rhel8 #57, #73; \
                 k0sproject/k0s #3069",
    },
];

/// A kernel release split into what the decisions need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// The release as the host reported it.
    pub text: String,
    /// Its upstream version.
    pub version: Kernel,
    /// Its vendor series.
    pub series: Series,
    /// The vendor build number (`1160` of `3.10.0-1160.el7`), for vendor series.
    pub build: Option<u32>,
}

impl Release {
    /// Parse `uname -r` text; `None` when it does not start with a version.
    pub fn parse(text: &str) -> Option<Release> {
        let version = crate::rules::parse_kernel(text)?;
        let series = if text.contains(".el7") {
            Series::El7
        } else if text.contains(".el8") {
            Series::El8
        } else {
            Series::Upstream
        };
        let build = text
            .split_once('-')
            .map(|(_, rest)| rest.chars().take_while(char::is_ascii_digit).collect::<String>())
            .and_then(|d| d.parse().ok())
            .filter(|_| series != Series::Upstream);
        Some(Release {
            text: text.to_string(),
            version,
            series,
            build,
        })
    }

    fn table(&self) -> Option<&'static SeriesTable> {
        SERIES.iter().find(|t| t.series == self.series)
    }
}

/// Whether something is offered, and how cgmig knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offer {
    /// Offered; the reason names the evidence.
    Yes(String),
    /// Not offered; the reason names the evidence.
    No(String),
    /// The host shows nothing and its release is not one cgmig can judge.
    Unknown(String),
}

impl Offer {
    /// Whether it is known to be offered.
    pub fn is_yes(&self) -> bool {
        matches!(self, Offer::Yes(_))
    }

    /// The reason, whatever the answer.
    pub fn reason(&self) -> &str {
        match self {
            Offer::Yes(r) | Offer::No(r) | Offer::Unknown(r) => r,
        }
    }
}

/// The first upstream kernel offering a controller on cgroup2, as text with
/// the commit that added it (the table of [`Controller::v2_since`]).
pub fn upstream_first(c: &Controller) -> String {
    let (major, minor) = c.v2_since();
    match c.v2_commit() {
        Some(commit) => format!("{major}.{minor}, commit {commit}"),
        None => format!("{major}.{minor}"),
    }
}

/// What one host's kernel and init system offer on cgroup2.
#[derive(Debug)]
pub struct Support<'a> {
    snap: &'a Snapshot,
    /// The kernel release, parsed.
    pub release: Option<Release>,
}

impl<'a> Support<'a> {
    /// Read the snapshot's evidence.
    pub fn of(snap: &'a Snapshot) -> Support<'a> {
        Support {
            snap,
            release: snap.host.kernel.as_deref().and_then(Release::parse),
        }
    }

    /// Whether the kernel has a cgroup2 filesystem at all.
    pub fn cgroup2(&self) -> Offer {
        if matches!(self.snap.host.mode, Mode::Hybrid | Mode::Unified) {
            return Offer::Yes("cgroup2 is mounted".into());
        }
        let Some(r) = &self.release else {
            return Offer::Unknown("the kernel release is unknown and no cgroup2 is mounted".into());
        };
        if let Some(t) = r.table() {
            return if t.cgroup2 {
                Offer::Yes(format!("{} kernel: {}", t.series, t.cgroup2_note))
            } else {
                Offer::No(format!(
                    "an {} kernel has no cgroup2: {}",
                    t.series, t.cgroup2_note
                ))
            };
        }
        if r.version >= CGROUP2 {
            Offer::Yes(format!("{} ≥ 4.5 (commit 67e9c74b8a87)", show(r.version)))
        } else {
            Offer::No("it predates cgroup2 (4.5, commit 67e9c74b8a87)".into())
        }
    }

    /// Whether the kernel offers thread mode on cgroup2: what the cgroup2
    /// mount shows (`cgroup.threads` / `cgroup.type` there, read by the
    /// scan), else the release (4.14; RHEL 8's 4.18 carries it).
    pub fn thread_mode(&self) -> Offer {
        let first = "4.14, commit 8cfd8147df67";
        match self.snap.host.shows.thread_mode {
            Some(true) => return Offer::Yes("the cgroup2 mount has cgroup.threads".into()),
            Some(false) => {
                return Offer::No(format!(
                    "the cgroup2 mount has neither cgroup.threads nor cgroup.type (thread mode: {first})"
                ));
            }
            None => {}
        }
        if let Offer::No(why) = self.cgroup2() {
            return Offer::No(why);
        }
        let Some(r) = &self.release else {
            return Offer::Unknown(
                "the kernel release is unknown and no cgroup2 mount shows thread mode".into(),
            );
        };
        if r.version >= THREADS {
            Offer::Yes(format!("{} ≥ {first}", show(r.version)))
        } else {
            Offer::No(format!("{} predates thread mode ({first})", show(r.version)))
        }
    }

    /// Whether the kernel offers `c` on cgroup2.
    pub fn controller(&self, c: &Controller) -> Offer {
        let name = c.as_str();
        let status = self.snap.host.controllers.iter().find(|s| &s.controller == c);
        if status.is_some_and(|s| s.in_v2) {
            return Offer::Yes("the cgroup2 root lists it in cgroup.controllers".into());
        }
        if status.is_some_and(|s| !s.enabled) {
            return Offer::No("/proc/cgroups lists it disabled (cgroup_disable=)".into());
        }
        if let Some(opt) = config_option(c)
            && let Some(kc) = &self.snap.readiness.kernel_config
            && kc.options.get(opt).is_some_and(|v| v == "n")
        {
            return Offer::No(format!("{opt} is not set in {}", kc.path));
        }
        if !has_v2_form(c) {
            return Offer::No(format!("{name} has no cgroup2 form"));
        }
        if let Offer::No(why) = self.cgroup2() {
            return Offer::No(why);
        }
        let Some(r) = &self.release else {
            return Offer::Unknown("the kernel release is unknown".into());
        };
        let first = upstream_first(c);
        if let Some(t) = r.table()
            && let Some((_, from, why)) = t.controllers.iter().find(|(n, _, _)| *n == name)
        {
            let build = r.build.unwrap_or(0);
            return match from {
                Some(from) if build >= *from => {
                    Offer::Yes(format!("{} build {build} offers it: {why}", t.series))
                }
                Some(from) => Offer::Unknown(format!(
                    "{} builds before {from} are not known to offer it on cgroup2 ({why}; upstream: {first})",
                    t.series
                )),
                None => Offer::No(format!(
                    "{} kernels do not offer it on cgroup2 ({why}; upstream: {first})",
                    t.series
                )),
            };
        }
        if r.version >= c.v2_since() {
            Offer::Yes(format!("{} ≥ {first}", show(r.version)))
        } else {
            Offer::No(format!(
                "{} predates {name} on cgroup2 ({first})",
                show(r.version)
            ))
        }
    }

    /// Whether the kernel offers what needs `need` (a rule's or a
    /// controller's first kernel) for a setting of controller `c`: the
    /// version says so, or the kernel offers the controller and `need` is no
    /// more than the controller's own first kernel (a vendor backport of the
    /// controller brings its first files). Unknown kernels are assumed to.
    pub fn satisfies(&self, c: Option<&Controller>, need: Kernel) -> bool {
        let Some(r) = &self.release else {
            return true;
        };
        if r.version >= need {
            return true;
        }
        c.is_some_and(|c| need <= c.v2_since() && self.controller(c).is_yes())
    }

    /// Whether one of the per-controller findings ([`Support::facts`]:
    /// no cgroup2, controller lacking, controller unknown) already speaks for
    /// the settings of v1 controller `c`. The per-file `host.kernel-too-old`
    /// then leaves them out: one finding per fact, the controller's.
    pub fn speaks_for(&self, c: &Controller) -> bool {
        matches!(self.cgroup2(), Offer::No(_)) || (has_v2_form(c) && !self.controller(c).is_yes())
    }

    /// The systemd version, when the host runs one cgmig could read.
    pub fn systemd(&self) -> Option<u32> {
        self.snap.host.os.systemd.as_deref().and_then(|v| v.parse().ok())
    }
}

/// How much of a v1 controller the host's layout sets: cgroups with a
/// converted setting of it, and the files (for the finding's text).
#[derive(Debug, Default)]
pub struct Usage {
    /// Cgroups with at least one converted setting of the controller.
    pub cgroups: usize,
    /// The v1 files those settings come from.
    pub files: std::collections::BTreeSet<String>,
}

/// Per v1 controller (by the v1 file a conversion reads: `cpu.shares` is
/// `cpu`'s), what the layout sets.
pub fn usage<'c>(
    per_cgroup: impl IntoIterator<Item = &'c [crate::rules::Conversion]>,
) -> std::collections::BTreeMap<Controller, Usage> {
    let mut out: std::collections::BTreeMap<Controller, Usage> = std::collections::BTreeMap::new();
    for convs in per_cgroup {
        let mut seen: Vec<Controller> = Vec::new();
        for (file, _) in convs.iter().flat_map(|c| &c.inputs) {
            let Some(c) = v1_controller(file) else {
                continue;
            };
            let u = out.entry(c.clone()).or_default();
            u.files.insert(file.clone());
            if !seen.contains(&c) {
                u.cgroups += 1;
                seen.push(c);
            }
        }
    }
    out
}

/// The v1 controller a v1 interface file belongs to (`cpu.shares`: `cpu`);
/// `None` for files of no known controller.
pub fn v1_controller(file: &str) -> Option<Controller> {
    let (prefix, _) = file.split_once('.')?;
    let c: Controller = prefix.parse().unwrap_or_else(|e| match e {});
    (!matches!(c, Controller::Other(_))).then_some(c)
}

/// One kernel or init fact, for the audit's fact rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelFact {
    /// The kernel has no cgroup2 (`host.kernel-no-cgroup2`).
    NoCgroup2(String),
    /// The layout sets a controller the kernel does not offer on cgroup2
    /// (`host.kernel-lacks-controller`).
    LacksController(String),
    /// The layout sets a controller and nothing tells whether the kernel
    /// offers it on cgroup2 (`host.kernel-controller-unknown`).
    ControllerUnknown(String),
    /// systemd older than 226 (`host.systemd-too-old`).
    SystemdTooOld(String),
    /// The layout needs thread mode (threads of one process in different
    /// cgroups of a threaded controller) and the kernel lacks it
    /// (`host.kernel-no-thread-mode`).
    NoThreadMode(String),
}

impl Support<'_> {
    /// What blocks or clouds the layout on this kernel and init system.
    /// `split_threads`: processes whose threads the layout places in
    /// different cgroups of a threaded controller (v2 needs thread mode).
    pub fn facts(
        &self,
        usage: &std::collections::BTreeMap<Controller, Usage>,
        split_threads: usize,
    ) -> Vec<KernelFact> {
        let mut out = Vec::new();
        let release = self.snap.host.kernel.as_deref().unwrap_or("unknown");
        if let Offer::No(why) = self.cgroup2() {
            let need = usage
                .keys()
                .filter(|c| has_v2_form(c))
                .map(|c| (c.v2_since(), c.as_str()))
                .max();
            let need = match need {
                Some((k, c)) => format!(
                    "; the controllers this layout sets need {} or later ({c})",
                    show(k.max(CGROUP2))
                ),
                None => String::new(),
            };
            out.push(KernelFact::NoCgroup2(format!("kernel {release}: {why}{need}")));
        } else {
            for (c, u) in usage {
                let sets = || {
                    let files: Vec<&str> = u.files.iter().map(String::as_str).collect();
                    format!("{} ({} cgroups set {})", c.as_str(), u.cgroups, files.join(", "))
                };
                match self.controller(c) {
                    Offer::No(why) if has_v2_form(c) => {
                        out.push(KernelFact::LacksController(format!(
                            "{}: kernel {release}: {why}",
                            sets()
                        )));
                    }
                    Offer::Unknown(why) => {
                        out.push(KernelFact::ControllerUnknown(format!(
                            "{}: kernel {release}: {why}",
                            sets()
                        )));
                    }
                    _ => {}
                }
            }
        }
        // Thread mode: only where cgroup2 exists (no cgroup2 is its own finding).
        if split_threads > 0
            && !matches!(self.cgroup2(), Offer::No(_))
            && let Offer::No(why) = self.thread_mode()
        {
            out.push(KernelFact::NoThreadMode(format!(
                "{split_threads} processes have threads in different cgroups, which v2 holds only in threaded \
                 subtrees; kernel {release}: {why}"
            )));
        }
        if let Some(v) = self.systemd()
            && v < SYSTEMD_UNIFIED
        {
            out.push(KernelFact::SystemdTooOld(format!(
                "systemd {v} cannot run a unified cgroup hierarchy ({SYSTEMD_UNIFIED} is the first that can); \
                 CentOS/RHEL 7 and Amazon Linux 2 ship 219"
            )));
        }
        out
    }
}

/// Whether cgroup2 does this controller's job at all: a v2 controller, or
/// for `devices` and `freezer` a core feature. `net_cls`/`net_prio` have
/// none (their own rules say what replaces them), `debug` is not migrated.
fn has_v2_form(c: &Controller) -> bool {
    (c.v2_name().is_some() || matches!(c, Controller::Devices | Controller::Freezer))
        && !matches!(c, Controller::Debug | Controller::Other(_))
}

/// The kernel config option that builds a controller, for those that have one.
fn config_option(c: &Controller) -> Option<&'static str> {
    Some(match c {
        Controller::Cpu => "CONFIG_CGROUP_SCHED",
        Controller::Cpuset => "CONFIG_CPUSETS",
        Controller::Memory => "CONFIG_MEMCG",
        Controller::Pids => "CONFIG_CGROUP_PIDS",
        Controller::Hugetlb => "CONFIG_CGROUP_HUGETLB",
        Controller::Misc => "CONFIG_CGROUP_MISC",
        Controller::Blkio | Controller::Io => "CONFIG_BLK_CGROUP",
        Controller::Devices => "CONFIG_CGROUP_BPF",
        _ => return None,
    })
}

/// `4.15`.
pub fn show(k: Kernel) -> String {
    format!("{}.{}", k.0, k.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_parse_with_their_series_and_build() {
        let r = Release::parse("3.10.0-1160.el7.x86_64").unwrap();
        assert_eq!((r.version, r.series, r.build), ((3, 10), Series::El7, Some(1160)));
        let r = Release::parse("4.18.0-425.19.2.el8_7.x86_64").unwrap();
        assert_eq!((r.version, r.series, r.build), ((4, 18), Series::El8, Some(425)));
        let r = Release::parse("5.10.0-28-amd64").unwrap();
        assert_eq!((r.version, r.series, r.build), ((5, 10), Series::Upstream, None));
        assert!(Release::parse("unknown").is_none());
    }

    /// The host's own evidence beats the version: upstream 4.18 has no
    /// cpuset on cgroup2, but a kernel whose cgroup2 root lists it offers it.
    #[test]
    fn what_the_host_shows_beats_the_version() {
        use crate::model::builder::SnapshotBuilder;
        let shown = SnapshotBuilder::new()
            .kernel("4.18.20")
            .v2(&["cpuset", "memory"])
            .build();
        assert!(Support::of(&shown).controller(&Controller::Cpuset).is_yes());
        let hidden = SnapshotBuilder::new()
            .kernel("4.18.20")
            .v1(2, &["cpuset"])
            .build();
        let offer = Support::of(&hidden).controller(&Controller::Cpuset);
        assert!(
            matches!(&offer, Offer::No(why) if why.contains("4ec22e9c5a90")),
            "{offer:?}"
        );
        // The same version from RHEL 8.7 offers it (the series table).
        let el8 = SnapshotBuilder::new()
            .kernel("4.18.0-425.19.2.el8_7.x86_64")
            .v1(2, &["cpuset", "freezer"])
            .build();
        let s = Support::of(&el8);
        assert!(s.controller(&Controller::Cpuset).is_yes());
        assert!(matches!(s.controller(&Controller::Freezer), Offer::No(_)));
        assert!(s.satisfies(Some(&Controller::Cpuset), (5, 0)));
        assert!(!s.satisfies(Some(&Controller::Cpuset), (5, 14)));
        // RHEL 8.0's build: nothing says either way.
        let el80 = SnapshotBuilder::new()
            .kernel("4.18.0-80.el8.x86_64")
            .v1(2, &["cpuset"])
            .build();
        assert!(matches!(
            Support::of(&el80).controller(&Controller::Cpuset),
            Offer::Unknown(_)
        ));
        // Thread mode: the cgroup2 mount's files beat the version.
        let shown = SnapshotBuilder::new().kernel("4.9.0").thread_mode(true).build();
        assert!(Support::of(&shown).thread_mode().is_yes());
        let hidden = SnapshotBuilder::new().kernel("5.10.0").thread_mode(false).build();
        assert!(matches!(Support::of(&hidden).thread_mode(), Offer::No(_)));
        let old = SnapshotBuilder::new().kernel("4.9.0").v1(2, &["cpu"]).build();
        let s = Support::of(&old);
        assert!(matches!(s.thread_mode(), Offer::No(why) if why.contains("8cfd8147df67")));
        let facts = s.facts(&Default::default(), 2);
        assert!(
            facts
                .iter()
                .any(|f| matches!(f, KernelFact::NoThreadMode(d) if d.starts_with("2 processes"))),
            "{facts:?}"
        );
        assert!(s.facts(&Default::default(), 0).is_empty());
        assert!(
            Support::of(&SnapshotBuilder::new().kernel("4.14.0").build())
                .thread_mode()
                .is_yes()
        );
        // RHEL 7: no cgroup2 at all, whatever the controller.
        let el7 = SnapshotBuilder::new()
            .kernel("3.10.0-1160.el7.x86_64")
            .v1(2, &["memory"])
            .build();
        assert!(matches!(Support::of(&el7).cgroup2(), Offer::No(_)));
        assert!(matches!(
            Support::of(&el7).controller(&Controller::Memory),
            Offer::No(_)
        ));
    }
}
