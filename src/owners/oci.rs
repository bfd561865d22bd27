//! What an OCI runtime writes into a container's v2 cgroup, per runtime and
//! version: the runtime's own conversion of the spec's `linux.resources`.
//!
//! Pure knowledge, from the runtimes' sources (see
//! docs/conversions-measured.md for the values measured on real runtimes):
//!
//! * `cpu.shares` → `cpu.weight` changed formula twice. runc converted
//!   nothing before v1.0.0-rc91 (v1.0.0-rc90's fs2 wrote `cpu.weight` only
//!   from an explicit weight); from rc91 (PR #2213, commit 7c439cc6f,
//!   `ConvertCPUSharesToCgroupV2Value`) it is linear, `1 + (s-2)*9999/262142`;
//!   from v1.3.2 and v1.4.0-rc.1 (opencontainers/cgroups v0.0.3+, runc
//!   CHANGELOG 1.3.2: #4772, #4785, #4897) the quadratic-in-log2 fit. crun
//!   used the same linear formula from its first v2 support (0.4, commit
//!   263a71ed, `CONVERT_SHARES_TO_CGROUPS_V2`) up to 1.22, and the quadratic
//!   fit from 1.23 (commit 4998c928, PR #1767). On the systemd driver path
//!   both hand systemd `CPUWeight=` already converted by that same formula
//!   (runc `libcontainer/cgroups/systemd/v2.go`, crun `cgroup-systemd.c`
//!   `get_weight`), so the driver does not change the value.
//! * `memory.swap` (memory+swap on v1) → `memory.swap.max` = swap − limit;
//!   -1 → `max`; a swap limit without a memory limit, or below it, fails the
//!   container's start (runc `ConvertMemorySwapToCgroupV2Value`, crun
//!   `write_memory_swap`).
//! * quota/period → `cpu.max` `"$QUOTA $PERIOD"` (quota ≤ 0: `max`, period 0:
//!   100000), `pids.limit` → `pids.max` (-1: `max`), `memory.limit` →
//!   `memory.max`, `memory.reservation` → `memory.low`, cpuset copied
//!   (runc fs2/{cpu,pids,memory,cpuset}.go, crun cgroup-resources.c).
//! * `blockIO.weight` → `io.bfq.weight` unchanged when the disk's scheduler is
//!   BFQ, else `io.weight` `1 + (w-10)*9999/990` (runc fs2/io.go, crun);
//!   `hugepageLimits` → `hugetlb.<size>.max` (runc fs2/hugetlb.go).

use serde::{Deserialize, Serialize};

use super::systemd::Written;
use crate::model::evidence::Resources;
use crate::readiness::version::{self, Version};
use crate::rules::convert::{BlkioFormula, SharesFormula, blkio_weight_to_io_weight, shares_to_weight};

/// An OCI runtime whose v2 behaviour is modelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OciRuntime {
    /// runc (docker's and containerd's default).
    Runc,
    /// crun (podman's default where installed).
    Crun,
}

impl OciRuntime {
    /// From a binary or configured name (`/usr/bin/crun`, `runc`, `io.containerd.runc.v2`).
    pub fn from_name(name: &str) -> Option<OciRuntime> {
        let base = name.rsplit('/').next().unwrap_or(name);
        if base == "crun" || base.starts_with("crun-") {
            Some(OciRuntime::Crun)
        } else if base == "runc" || base.contains(".runc.") || base.starts_with("runc-") {
            Some(OciRuntime::Runc)
        } else {
            None
        }
    }

    /// The name (`runc`, `crun`).
    pub fn as_str(self) -> &'static str {
        match self {
            OciRuntime::Runc => "runc",
            OciRuntime::Crun => "crun",
        }
    }
}

/// How a runtime version turns `cpu.shares` into `cpu.weight` on v2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharesOnV2 {
    /// Converted with this formula.
    Formula(SharesFormula),
    /// Not converted: `cpu.weight` keeps the kernel's default 100.
    Ignored,
}

/// The shares handling of a runtime version, with the source that says so.
/// An unknown version is taken as the current release (and said).
pub fn shares_on_v2(rt: OciRuntime, v: Option<&Version>) -> (SharesOnV2, &'static str) {
    let at = |s: &str| version::parse(s).expect("a literal version");
    let Some(v) = v else {
        return (
            SharesOnV2::Formula(SharesFormula::Oci),
            "version unknown: taken as a current release (runc >= 1.3.2, crun >= 1.23)",
        );
    };
    match rt {
        OciRuntime::Runc if *v < at("1.0.0-rc91") => (
            SharesOnV2::Ignored,
            "runc before 1.0.0-rc91 does not convert cpu.shares on v2",
        ),
        OciRuntime::Runc if *v < at("1.3.2") => (
            SharesOnV2::Formula(SharesFormula::OciLegacy),
            "runc 1.0.0-rc91 to 1.3.1 (ConvertCPUSharesToCgroupV2Value, runc PR #2213)",
        ),
        OciRuntime::Runc => (
            SharesOnV2::Formula(SharesFormula::Oci),
            "runc 1.3.2 and 1.4.0-rc.1 on (opencontainers/cgroups v0.0.3, runc #4772)",
        ),
        OciRuntime::Crun if *v < at("1.23") => (
            SharesOnV2::Formula(SharesFormula::OciLegacy),
            "crun 0.4 to 1.22 (convert_shares_to_weight, linear)",
        ),
        OciRuntime::Crun => (
            SharesOnV2::Formula(SharesFormula::Oci),
            "crun 1.23 on (crun PR #1767)",
        ),
    }
}

/// A runtime and its version as found on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeVersion {
    /// The runtime.
    pub runtime: OciRuntime,
    /// Its version as found (`1.1.5+ds1-1+deb12u1`), if any.
    pub version: Option<String>,
}

impl RuntimeVersion {
    /// `runc 1.1.5+ds1-1+deb12u1`, `crun (version unknown)`.
    pub fn label(&self) -> String {
        match &self.version {
            Some(v) => format!("{} {v}", self.runtime.as_str()),
            None => format!("{} (version unknown)", self.runtime.as_str()),
        }
    }
}

/// What a runtime will write on v2 for one container: the files, and what
/// it cannot keep (each a sentence naming the limit).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct V2Write {
    /// Files and values, with the inputs and formula.
    pub files: Vec<Written>,
    /// Limits this runtime loses or refuses on v2.
    pub lost: Vec<String>,
}

/// The v2 files `rt` writes for `res` (pure; see the module doc for sources).
pub fn v2_files(res: &Resources, rt: &RuntimeVersion) -> V2Write {
    let mut out = V2Write::default();
    let who = rt.label();
    cpu_files(res, rt, &who, &mut out);
    memory_files(res, &who, &mut out);
    if let Some(p) = res.pids_limit.filter(|p| *p != 0) {
        out.put(
            "pids.max",
            max_or(p),
            format!("pids.limit={p}"),
            format!("{who}: number (-1: max)"),
        );
    }
    for (size, limit) in &res.hugepage_limits {
        out.put(
            &format!("hugetlb.{size}.max"),
            limit.to_string(),
            format!("hugepageLimits {size}={limit}"),
            format!("{who}: bytes (also hugetlb.{size}.rsvd.max where the kernel has it)"),
        );
    }
    if let Some(w) = res.blkio_weight
        && let Some(v) = blkio_weight_to_io_weight(w, BlkioFormula::Oci)
    {
        out.put(
            "io.weight",
            format!("default {v}"),
            format!("blkio.weight={w}"),
            format!(
                "{who}: 1 + (w - 10) * 9999 / 990; where the disk's scheduler is BFQ it writes io.bfq.weight {w} instead"
            ),
        );
    }
    out
}

impl V2Write {
    fn put(&mut self, file: &str, value: String, from: String, formula: String) {
        self.files.push(Written {
            file: file.into(),
            value,
            from,
            formula,
        });
    }
}

/// `cpu.weight` (this version's formula), `cpu.max`, and the cpuset.
fn cpu_files(res: &Resources, rt: &RuntimeVersion, who: &str, out: &mut V2Write) {
    let parsed = rt.version.as_deref().and_then(version::parse);
    if let Some(s) = res.cpu_shares {
        let (how, source) = shares_on_v2(rt.runtime, parsed.as_ref());
        match how {
            SharesOnV2::Formula(f) => match weight(s, f) {
                Ok(w) => out.put(
                    "cpu.weight",
                    w.to_string(),
                    format!("cpu.shares={s}"),
                    format!("{who}: {} ({f}; {source})", f.formula()),
                ),
                Err(why) => out.lost.push(format!("cpu.shares={s}: {who} {why}")),
            },
            SharesOnV2::Ignored => out.put(
                "cpu.weight",
                "100".into(),
                format!("cpu.shares={s}"),
                format!("{who}: {source} (the kernel default stays)"),
            ),
        }
    }
    let quota = res.cpu_quota.filter(|q| *q != 0);
    if quota.is_some() || res.cpu_period.is_some() {
        let q = quota
            .filter(|q| *q > 0)
            .map_or_else(|| "max".to_string(), |q| q.to_string());
        let p = res.cpu_period.unwrap_or(100_000);
        out.put(
            "cpu.max",
            format!("{q} {p}"),
            format!(
                "quota={} period={}",
                quota.map_or_else(|| "-".into(), |q| q.to_string()),
                res.cpu_period.map_or_else(|| "-".into(), |p| p.to_string())
            ),
            format!("{who}: \"$QUOTA $PERIOD\" (quota <= 0: max, period 0: 100000)"),
        );
    }
    for (file, v) in [
        ("cpuset.cpus", &res.cpuset_cpus),
        ("cpuset.mems", &res.cpuset_mems),
    ] {
        if let Some(v) = v {
            out.put(file, v.clone(), format!("{file}={v}"), format!("{who}: copied"));
        }
    }
}

/// `memory.max`, `memory.swap.max` (swap alone on v2) and `memory.low`.
fn memory_files(res: &Resources, who: &str, out: &mut V2Write) {
    if let Some(m) = res.memory_limit {
        out.put(
            "memory.max",
            max_or(m),
            format!("memory.limit={m}"),
            format!("{who}: bytes (-1: max)"),
        );
    }
    match swap_max(res.memory_limit, res.memory_swap) {
        Ok(Some((v, from))) => out.put(
            "memory.swap.max",
            v,
            from,
            format!("{who}: memory+swap - memory (v2 counts swap alone; -1: max)"),
        ),
        Ok(None) => {}
        Err(why) => out
            .lost
            .push(format!("{who}: {why}: the container does not start on v2")),
    }
    if let Some(r) = res.memory_reservation.filter(|r| *r > 0) {
        out.put(
            "memory.low",
            r.to_string(),
            format!("memory.reservation={r}"),
            format!("{who}: bytes"),
        );
    }
}

/// `-1` (or any negative) is `max`.
fn max_or(v: i64) -> String {
    if v < 0 { "max".into() } else { v.to_string() }
}

/// `cpu.weight` for `shares`: the runtimes do not clamp their input, so a
/// value outside the kernel's range fails the write (runc #4755).
fn weight(shares: u64, f: SharesFormula) -> Result<u64, String> {
    if f == SharesFormula::OciLegacy && !(2..=262_144).contains(&shares) {
        return Err(format!(
            "computes cpu.weight outside 1..10000 from cpu.shares {shares} (no clamp): the write fails and the container does not start"
        ));
    }
    shares_to_weight(shares, f).ok_or_else(|| "writes no cpu.weight for cpu.shares 0".into())
}

/// `memory.swap.max` from the OCI memory limit and memory+swap total, as
/// runc and crun compute it: `Ok(None)` when no swap limit is set.
fn swap_max(limit: Option<i64>, swap: Option<i64>) -> Result<Option<(String, String)>, String> {
    let Some(swap) = swap.filter(|s| *s != 0) else {
        // runc: an unlimited memory and no swap setting is unlimited swap too.
        return Ok((limit == Some(-1)).then(|| ("max".into(), "memory.limit=-1".into())));
    };
    let from = format!(
        "memory.swap={swap} memory.limit={}",
        limit.map_or_else(|| "-".into(), |l| l.to_string())
    );
    if swap < 0 {
        return Ok(Some(("max".into(), from)));
    }
    match limit {
        None | Some(-1) => Err(format!("memory.swap={swap} without a memory limit")),
        Some(l) if swap < l => Err(format!("memory.swap={swap} below memory.limit={l}")),
        Some(l) => Ok(Some(((swap - l).to_string(), from))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rv(rt: OciRuntime, v: &str) -> RuntimeVersion {
        RuntimeVersion {
            runtime: rt,
            version: Some(v.into()),
        }
    }

    fn value(w: &V2Write, file: &str) -> Option<String> {
        w.files.iter().find(|f| f.file == file).map(|f| f.value.clone())
    }

    /// The formulas by version: the Debian 12 packages (runc 1.1.5, crun
    /// 1.8.1) are linear; runc 1.3.2 and crun 1.23 are the first quadratic.
    #[test]
    fn shares_formula_by_runtime_version() {
        let f = |rt, v: &str| shares_on_v2(rt, version::parse(v).as_ref()).0;
        let linear = SharesOnV2::Formula(SharesFormula::OciLegacy);
        let quad = SharesOnV2::Formula(SharesFormula::Oci);
        assert_eq!(f(OciRuntime::Runc, "1.1.5+ds1-1+deb12u1"), linear);
        assert_eq!(f(OciRuntime::Runc, "1.0.0~rc93+ds1-5"), linear);
        assert_eq!(f(OciRuntime::Runc, "1.0.0-rc91"), linear);
        assert_eq!(f(OciRuntime::Runc, "1.0.0-rc90"), SharesOnV2::Ignored);
        assert_eq!(f(OciRuntime::Runc, "1.3.1"), linear);
        assert_eq!(f(OciRuntime::Runc, "1.3.2"), quad);
        assert_eq!(f(OciRuntime::Runc, "1.4.0-rc.1"), quad);
        assert_eq!(f(OciRuntime::Crun, "1.8.1-1+deb12u1"), linear);
        assert_eq!(f(OciRuntime::Crun, "1.22"), linear);
        assert_eq!(f(OciRuntime::Crun, "1.23"), quad);
        assert_eq!(shares_on_v2(OciRuntime::Crun, None).0, quad);
    }

    /// The values the issue measured on Debian 12: docker's 512 → 20 and
    /// 4096 → 157 (runc 1.1.5), podman's 2048 → 79 (crun 1.8.1).
    #[test]
    fn debian12_runtimes_write_the_linear_weights() {
        let w = |rt, v, s| {
            let res = Resources {
                cpu_shares: Some(s),
                ..Resources::default()
            };
            value(&v2_files(&res, &rv(rt, v)), "cpu.weight")
        };
        assert_eq!(w(OciRuntime::Runc, "1.1.5", 512).as_deref(), Some("20"));
        assert_eq!(w(OciRuntime::Runc, "1.1.5", 4096).as_deref(), Some("157"));
        assert_eq!(w(OciRuntime::Crun, "1.8.1", 2048).as_deref(), Some("79"));
        assert_eq!(w(OciRuntime::Runc, "1.3.2", 512).as_deref(), Some("59"));
        assert_eq!(w(OciRuntime::Runc, "1.0.0-rc90", 512).as_deref(), Some("100"));
    }

    #[test]
    fn memory_cpu_and_pids() {
        let res = Resources {
            cpu_quota: Some(25_000),
            cpu_period: Some(50_000),
            memory_limit: Some(128 << 20),
            memory_swap: Some(256 << 20),
            pids_limit: Some(-1),
            cpuset_cpus: Some("0-1".into()),
            ..Resources::default()
        };
        let out = v2_files(&res, &rv(OciRuntime::Runc, "1.1.5"));
        assert_eq!(value(&out, "cpu.max").as_deref(), Some("25000 50000"));
        assert_eq!(value(&out, "memory.max").as_deref(), Some("134217728"));
        assert_eq!(value(&out, "memory.swap.max").as_deref(), Some("134217728"));
        assert_eq!(value(&out, "pids.max").as_deref(), Some("max"));
        assert_eq!(value(&out, "cpuset.cpus").as_deref(), Some("0-1"));
        assert!(out.lost.is_empty());
        // Equal limits: no swap at all on v2.
        assert_eq!(swap_max(Some(64), Some(64)).unwrap().unwrap().0, "0");
        assert_eq!(swap_max(Some(-1), None).unwrap().unwrap().0, "max");
        assert_eq!(swap_max(Some(64), None).unwrap(), None);
        assert!(swap_max(None, Some(64)).is_err());
        assert!(swap_max(Some(128), Some(64)).is_err());
    }

    /// The old linear formula does not clamp: shares above 262144 make a
    /// weight the kernel refuses, and the container does not start.
    #[test]
    fn linear_shares_out_of_range_are_lost() {
        let res = Resources {
            cpu_shares: Some(300_000),
            ..Resources::default()
        };
        let out = v2_files(&res, &rv(OciRuntime::Runc, "1.1.5"));
        assert!(out.files.is_empty());
        assert!(out.lost[0].contains("does not start"), "{:?}", out.lost);
        let out = v2_files(&res, &rv(OciRuntime::Runc, "1.4.0"));
        assert_eq!(value(&out, "cpu.weight").as_deref(), Some("10000"));
    }

    #[test]
    fn runtime_names() {
        assert_eq!(OciRuntime::from_name("/usr/bin/crun"), Some(OciRuntime::Crun));
        assert_eq!(
            OciRuntime::from_name("io.containerd.runc.v2"),
            Some(OciRuntime::Runc)
        );
        assert_eq!(OciRuntime::from_name("runc"), Some(OciRuntime::Runc));
        assert_eq!(OciRuntime::from_name("kata"), None);
    }
}
