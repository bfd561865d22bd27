//! Pure v1 → v2 value conversions.
//!
//! Each function states both ranges, both defaults, its special values and
//! its source. None of them does I/O; the rule engine picks the inputs from a
//! cgroup's settings and records which function (and which formula variant)
//! produced every value, because tools in the wild disagree and whoever reads
//! a converted value later must invert the right one.
//!
//! Sources (see `docs/conversions.md` for the full matrix):
//! * OCG: opencontainers/cgroups `utils.go` (runc ≥ 1.3.2, crun ≥ 1.23)
//! * SD-C: systemd `src/core/cgroup.c`
//! * K1/K2: the kernel's cgroup-v1 and cgroup-v2 documentation

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::model::value::{DevNum, Limit};

/// A conversion that cannot be performed, with the reason.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ConvError {
    /// The inputs are inconsistent (e.g. memsw below the memory limit).
    #[error("{0}")]
    Invalid(String),
    /// A target filled from the file name's captures is not a file of the
    /// rule's controller.
    #[error(transparent)]
    Target(#[from] super::schema::TargetError),
}

/// Which cpu.shares → cpu.weight formula to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SharesFormula {
    /// OCI runtimes' current quadratic-in-log2 fit (runc ≥ 1.3.2, crun ≥ 1.23).
    Oci,
    /// OCI runtimes' older linear map (runc < 1.3.2, crun ≤ 1.22, KEP-2254).
    OciLegacy,
    /// systemd's linear, clamped, default-preserving map.
    Systemd,
}

impl SharesFormula {
    /// All variants, for `explain`.
    pub const ALL: [SharesFormula; 3] = [
        SharesFormula::Oci,
        SharesFormula::OciLegacy,
        SharesFormula::Systemd,
    ];

    /// The formula as text, for reports.
    pub fn formula(self) -> &'static str {
        match self {
            SharesFormula::Oci => "ceil(10^((L^2 + 125L)/612 - 7/34)), L = log2(shares); 2→1, ≥262144→10000",
            SharesFormula::OciLegacy => "1 + (shares - 2) * 9999 / 262142",
            SharesFormula::Systemd => "clamp(shares * 100 / 1024, 1, 10000)",
        }
    }
}

impl fmt::Display for SharesFormula {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SharesFormula::Oci => "oci",
            SharesFormula::OciLegacy => "oci-legacy",
            SharesFormula::Systemd => "systemd",
        })
    }
}

/// v1 `cpu.shares` → v2 `cpu.weight`.
///
/// v1 range [2, 262144], default 1024; v2 range [1, 10000], default 100.
/// `0` means "unset" in OCI specs and yields `None` (write nothing). Values
/// outside v1's range are clamped to it first (the kernel clamps them too), so
/// every formula stays in v2's range; the old OCI formula did not, which is
/// runc issue #4755.
///
/// * `Oci` (OCG `ConvertCPUSharesToCgroupV2Value`, opencontainers/cgroups
///   PR #20): fits (2,1), (1024,100), (262144,10000) in log space.
/// * `OciLegacy` (runc PR #2213): linear over the full range; 1024 → 39.
/// * `Systemd` (SD-C `cgroup_cpu_shares_to_weight`): proportional, 1024 → 100,
///   saturating at 102400.
pub fn shares_to_weight(shares: u64, formula: SharesFormula) -> Option<u64> {
    if shares == 0 {
        return None;
    }
    let s = shares.clamp(2, 262_144);
    Some(match formula {
        SharesFormula::Oci => {
            if s <= 2 {
                1
            } else if s >= 262_144 {
                10_000
            } else {
                let l = (s as f64).log2();
                let exp = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
                (10f64.powf(exp).ceil() as u64).clamp(1, 10_000)
            }
        }
        SharesFormula::OciLegacy => 1 + ((s - 2) * 9999) / 262_142,
        SharesFormula::Systemd => (s * 100 / 1024).clamp(1, 10_000),
    })
}

/// v1 `cpu.cfs_quota_us` + `cpu.cfs_period_us` → v2 `cpu.max` (`"$MAX $PERIOD"`).
///
/// v1 quota −1 (any negative) means no limit; v2 writes `max`. Period range
/// [1000, 1000000] µs, default 100000 in both (K1 sched-bwc, K2). A period of
/// 0 is taken as the default, as runc does (OCG fs2/cpu.go). A period outside
/// the kernel's range, or a quota below its 1 ms minimum, is an error: v2's
/// `cpu.max` would refuse it (EINVAL) and the plan must not carry it.
pub fn quota_period_to_max(quota_us: i64, period_us: u64) -> Result<String, ConvError> {
    let period = if period_us == 0 { 100_000 } else { period_us };
    if !(1_000..=1_000_000).contains(&period) {
        return Err(ConvError::Invalid(format!(
            "cfs period {period} µs is outside the kernel's range 1000..1000000"
        )));
    }
    if quota_us <= 0 {
        return Ok(format!("max {period}"));
    }
    if quota_us < 1_000 {
        return Err(ConvError::Invalid(format!(
            "cfs quota {quota_us} µs is below the kernel's minimum of 1000"
        )));
    }
    Ok(format!("{quota_us} {period}"))
}

/// v1 `cpuset.cpu_exclusive` → v2 `cpuset.cpus.partition`.
///
/// libcgroup's abstraction layer maps `1` → `root`, else `member`. A v2
/// partition root additionally needs exclusive, non-empty CPUs; the kernel
/// reports `root invalid (...)` otherwise, which the apply step reads back.
pub fn cpu_exclusive_to_partition(exclusive: u64) -> &'static str {
    if exclusive == 1 { "root" } else { "member" }
}

/// v1 byte limit → v2 byte-limit value (`memory.max`, `hugetlb.<size>.max`,
/// and the soft limit's `memory.low`): unlimited becomes `max`, bytes pass
/// through. Rules call it `byte_limit_or_max` (formerly `limit_to_max`, a
/// name that said `*.max` although `memory.low` uses it too).
///
/// "Unlimited" is whatever the kernel prints for `PAGE_COUNTER_MAX` in this
/// file (see [`is_v1_unlimited`]), so a hugetlb cgroup left at its default is
/// never written as a number. A byte count above the 64-bit page counter's
/// maximum that is not such a sentinel can't be set on v2: an error.
pub fn byte_limit_or_max(limit: Limit) -> Result<String, ConvError> {
    match limit {
        Limit::Bytes(b) if is_v1_unlimited(b) => Ok("max".into()),
        Limit::Bytes(b) if b > i64::MAX as u64 => Err(ConvError::Invalid(format!(
            "{b} is above the 64-bit page counter maximum {} and is not the unlimited value",
            i64::MAX
        ))),
        other => Ok(other.to_string()),
    }
}

/// Whether a v1 limit's text is a number above `LONG_MAX`: no page counter
/// holds it, so it is neither a limit v2 accepts nor the unlimited value.
pub fn above_page_counter(text: &str) -> bool {
    text.trim().parse::<u64>().is_ok_and(|v| v > i64::MAX as u64)
}

/// Whether `bytes` is a value a v1 kernel prints for "unlimited".
///
/// A page counter's maximum is `PAGE_COUNTER_MAX = LONG_MAX / PAGE_SIZE`
/// pages. hugetlb rounds it down to whole huge pages
/// (`hugetlb_cgroup_init`: `round_down(PAGE_COUNTER_MAX, pages_per_huge_page)`),
/// so the printed value depends on both the base page size (4, 16 or 64 KiB)
/// and the huge page size: 9223372036854771712 for memory on 4 KiB pages,
/// 9223372036852678656 for 2 MiB huge pages, 9223372035781033984 for 1 GiB.
/// Every (base page, power-of-two huge page up to 16 GiB) pair is recognised.
pub fn is_v1_unlimited(bytes: u64) -> bool {
    if bytes >= crate::model::value::V1_UNLIMITED_FLOOR && bytes <= i64::MAX as u64 {
        return true;
    }
    [4096u64, 16384, 65536].into_iter().any(|page| {
        let max_pages = i64::MAX as u64 / page;
        (0..=22).any(|shift| {
            let per_huge = 1u64 << shift;
            (max_pages - max_pages % per_huge) * page == bytes
        })
    })
}

/// v1 `memory.memsw.limit_in_bytes` (memory+swap) → v2 `memory.swap.max` (swap only).
///
/// The case order is runc's `ConvertMemorySwapToCgroupV2Value` (OCG utils.go):
///
/// 1. memory unlimited and memsw unset → `max`;
/// 2. memsw unlimited → `max`; memsw unset (`None`) → nothing to write;
/// 3. memory unlimited → memsw as is (there is no memory limit to subtract);
/// 4. memory unset with memsw set → error;
/// 5. memsw below memory → error (v1 refuses it too);
/// 6. else memsw − memory; `0` when equal (swap disabled).
///
/// `memory` is `None` when `memory.limit_in_bytes` is not present at all.
pub fn memsw_to_swap_max(memory: Option<Limit>, memsw: Option<Limit>) -> Result<Option<String>, ConvError> {
    match (memory, memsw) {
        (Some(Limit::Max), None) => Ok(Some("max".into())),
        (_, None) => Ok(None),
        (_, Some(Limit::Max)) => Ok(Some("max".into())),
        (Some(Limit::Max), Some(Limit::Bytes(sw))) => Ok(Some(sw.to_string())),
        (None, Some(_)) => Err(ConvError::Invalid(
            "unable to set swap limit without memory limit".into(),
        )),
        (Some(Limit::Bytes(m)), Some(Limit::Bytes(sw))) => {
            if sw < m {
                Err(ConvError::Invalid(format!(
                    "memory+swap limit {sw} should be >= memory limit {m}"
                )))
            } else {
                Ok(Some((sw - m).to_string()))
            }
        }
    }
}

/// Which blkio.weight → io.weight formula to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BlkioFormula {
    /// runc/crun `ConvertBlkIOToIOWeightValue`: linear \[10,1000\] → \[1,10000\].
    Oci,
    /// systemd `cgroup_weight_blkio_to_io`: proportional, 500 → 100.
    Systemd,
}

impl fmt::Display for BlkioFormula {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BlkioFormula::Oci => "oci",
            BlkioFormula::Systemd => "systemd",
        })
    }
}

impl BlkioFormula {
    /// The formula as text, for reports.
    pub fn formula(self) -> &'static str {
        match self {
            BlkioFormula::Oci => "1 + (w - 10) * 9999 / 990",
            BlkioFormula::Systemd => "clamp(w * 100 / 500, 1, 10000)",
        }
    }
}

/// v1 `blkio.weight` → v2 `io.weight`.
///
/// v1 range [10, 1000], CFQ default 500; v2 range [1, 10000], default 100.
/// `0` is "unset" (OCI) → `None`. Inputs outside [10, 1000] are clamped.
/// runc maps 500 → 4950 (`Oci`); systemd maps 500 → 100 (`Systemd`), which
/// keeps the default a default. BFQ's `io.bfq.weight` takes the v1 value
/// unchanged (range 1..1000 both sides), see [`blkio_weight_to_bfq`].
pub fn blkio_weight_to_io_weight(weight: u64, formula: BlkioFormula) -> Option<u64> {
    if weight == 0 {
        return None;
    }
    let w = weight.clamp(10, 1000);
    Some(match formula {
        BlkioFormula::Oci => 1 + (w - 10) * 9999 / 990,
        BlkioFormula::Systemd => (w * 100 / 500).clamp(1, 10_000),
    })
}

/// v1 `blkio.weight` → v2 `io.bfq.weight` (BFQ range 1..1000, default 100).
///
/// * `Oci`: the v1 number unchanged (runc/crun/youki write it verbatim when
///   `io.bfq.weight` exists, OCG fs2/io.go).
/// * `Systemd`: the io.weight value mapped onto BFQ's range
///   (SD-C `cgroup_weight_io_to_bfq`, `BFQ_WEIGHT`): identity up to 100, then
///   `100 + (io − 100)·900/9900`, so 500 → 100 keeps the default a default.
pub fn blkio_weight_to_bfq(weight: u64, formula: BlkioFormula) -> Option<u64> {
    if weight == 0 {
        return None;
    }
    Some(match formula {
        BlkioFormula::Oci => weight.clamp(1, 1000),
        BlkioFormula::Systemd => io_weight_to_bfq(blkio_weight_to_io_weight(weight, formula)?),
    })
}

/// systemd's `BFQ_WEIGHT(io)`: io.weight [1..10000] → BFQ [1..1000].
pub fn io_weight_to_bfq(io: u64) -> u64 {
    if io <= 100 {
        100 - (100 - io) * 99 / 99
    } else {
        100 + (io - 100) * 900 / 9900
    }
}

/// The inverse of [`io_weight_to_bfq`]: a BFQ weight [1..1000] → the
/// io.weight [1..10000] that systemd's `BFQ_WEIGHT` maps onto it (identity
/// up to 100, then `100 + (b − 100)·9900/900`), so BFQ's default 100 stays
/// io.weight's default 100 and the order of siblings is kept. Used where a
/// v1 `blkio.bfq.weight` must land in `io.weight` (the host's v2 devices do
/// not use BFQ). `0` is no weight (`None`).
pub fn bfq_weight_to_io_weight(bfq: u64) -> Option<u64> {
    if bfq == 0 {
        return None;
    }
    let b = bfq.clamp(1, 1000);
    Some(if b <= 100 { b } else { 100 + (b - 100) * 9900 / 900 })
}

/// v1 `blkio.weight_device` lines → v2 `io.weight` lines (`MAJ:MIN W'`).
///
/// Only systemd writes per-device io.weight (`w/5`); the runtimes apply
/// weight_device solely through `io.bfq.weight` ([`weight_device_to_bfq`]),
/// so with `Oci` this yields nothing. A v1 weight of 0 removes the device
/// override; v2 says `MAJ:MIN default`.
pub fn weight_device_to_io_weight(lines: &[(DevNum, u64)], formula: BlkioFormula) -> Vec<String> {
    if formula == BlkioFormula::Oci {
        return Vec::new();
    }
    lines
        .iter()
        .map(|(dev, w)| match blkio_weight_to_io_weight(*w, formula) {
            Some(v) => format!("{dev} {v}"),
            None => format!("{dev} default"),
        })
        .collect()
}

/// v1 `blkio.weight_device` lines → v2 `io.bfq.weight` lines (`MAJ:MIN W'`):
/// runtimes copy `W` (`Oci`), systemd writes `BFQ_WEIGHT(W/5)` (`Systemd`).
/// Needs kernel 5.4 (per-device BFQ weights, commit 795fe54c2a8).
pub fn weight_device_to_bfq(lines: &[(DevNum, u64)], formula: BlkioFormula) -> Vec<String> {
    lines
        .iter()
        .map(|(dev, w)| match blkio_weight_to_bfq(*w, formula) {
            Some(v) => format!("{dev} {v}"),
            None => format!("{dev} default"),
        })
        .collect()
}

/// The four v1 `blkio.throttle.*_device` files, by device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Throttle {
    /// `read_bps_device`.
    pub rbps: Vec<(DevNum, u64)>,
    /// `write_bps_device`.
    pub wbps: Vec<(DevNum, u64)>,
    /// `read_iops_device`.
    pub riops: Vec<(DevNum, u64)>,
    /// `write_iops_device`.
    pub wiops: Vec<(DevNum, u64)>,
}

/// v1 `blkio.throttle.{read,write}_{bps,iops}_device` → one v2 `io.max` line
/// per device (`MAJ:MIN rbps=N wbps=max riops=max wiops=max`).
///
/// v1 keeps one file per direction and unit; v2 one keyed line per device.
/// A v1 value of 0 means "no limit" and becomes `max` (OCG fs2/io.go).
/// Devices are sorted by number; keys that v1 did not set are written `max`
/// so the line states the full limit.
pub fn throttle_to_io_max(t: &Throttle) -> Vec<String> {
    use std::collections::BTreeMap;
    let mut by_dev: BTreeMap<DevNum, [Option<u64>; 4]> = BTreeMap::new();
    for (slot, list) in [&t.rbps, &t.wbps, &t.riops, &t.wiops].into_iter().enumerate() {
        for (dev, v) in list {
            by_dev.entry(*dev).or_default()[slot] = Some(*v);
        }
    }
    by_dev
        .into_iter()
        .map(|(dev, vals)| {
            let f = |v: Option<u64>| match v {
                Some(n) if n > 0 => n.to_string(),
                _ => "max".to_string(),
            };
            format!(
                "{dev} rbps={} wbps={} riops={} wiops={}",
                f(vals[0]),
                f(vals[1]),
                f(vals[2]),
                f(vals[3])
            )
        })
        .collect()
}

/// v1 `freezer.state` (+ `freezer.self_freezing`) → v2 `cgroup.freeze`.
///
/// v1 shows `FROZEN` in every descendant of a frozen cgroup; only
/// `freezer.self_freezing` (1 = frozen by a write to this cgroup's own
/// state) says whose state it is (OCG `GetState` reads it). v2's
/// `cgroup.freeze` is inherited the same way, so only a cgroup's *own* state
/// is converted: inherited `FROZEN` writes nothing (otherwise the child would
/// stay frozen after the parent thaws). Without `self_freezing` (old
/// captures), `FROZEN`/`FREEZING` → `1`. `THAWED` → `0`. v2 frozen tasks are
/// killable and may migrate, unlike v1 (K1 freezer-subsystem, K2 core).
pub fn freezer_state_to_freeze(
    state: &str,
    self_freezing: Option<u64>,
) -> Result<Option<&'static str>, ConvError> {
    let frozen = match state.trim() {
        "FROZEN" | "FREEZING" => true,
        "THAWED" => false,
        other => return Err(ConvError::Invalid(format!("unknown freezer state {other:?}"))),
    };
    Ok(match (frozen, self_freezing) {
        (true, Some(0)) => None,
        (true, _) => Some("1"),
        (false, _) => Some("0"),
    })
}

/// v1 `pids.max` → v2 `pids.max`: same syntax (`max` or a count). A limit of 0
/// is written as 1, as runc does (systemd's TasksMax cannot be 0, and no new
/// task can be created either way).
pub fn pids_max(v: Limit) -> String {
    match v {
        Limit::Bytes(0) => "1".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn shares_formulas_at_reference_points() {
        // (shares, oci, oci-legacy, systemd), from docs/research/v1-to-v2-conversion.md §0.
        let table = [
            (2, 1, 1, 1),
            (100, 17, 4, 9),
            (512, 59, 20, 50),
            (1024, 100, 39, 100),
            (2048, 174, 79, 200),
            (10240, 639, 391, 1000),
            (102400, 4429, 3906, 10000),
            (262144, 10000, 10000, 10000),
        ];
        for (s, oci, legacy, sd) in table {
            assert_eq!(shares_to_weight(s, SharesFormula::Oci), Some(oci), "oci {s}");
            assert_eq!(
                shares_to_weight(s, SharesFormula::OciLegacy),
                Some(legacy),
                "legacy {s}"
            );
            assert_eq!(
                shares_to_weight(s, SharesFormula::Systemd),
                Some(sd),
                "systemd {s}"
            );
        }
        for f in SharesFormula::ALL {
            assert_eq!(shares_to_weight(0, f), None, "0 is unset");
            assert_eq!(shares_to_weight(1, f), Some(1), "below range clamps");
            assert_eq!(shares_to_weight(1 << 20, f), Some(10000), "above range clamps");
        }
    }

    #[test]
    fn cpu_max() {
        let ok = |q, p| quota_period_to_max(q, p).unwrap();
        assert_eq!(ok(-1, 100000), "max 100000");
        assert_eq!(ok(50000, 100000), "50000 100000");
        assert_eq!(ok(200000, 0), "200000 100000");
        assert_eq!(ok(0, 250000), "max 250000");
        assert_eq!(ok(1000, 1000), "1000 1000");
        assert_eq!(ok(-1, 1_000_000), "max 1000000");
        // Outside the kernel's ranges: never a plan value.
        assert!(quota_period_to_max(50000, 999).is_err(), "period below 1 ms");
        assert!(quota_period_to_max(50000, 1_000_001).is_err(), "period above 1 s");
        assert!(quota_period_to_max(999, 100000).is_err(), "quota below 1 ms");
    }

    #[test]
    fn memsw_edge_cases() {
        let b = |n| Some(Limit::Bytes(n));
        let max = Some(Limit::Max);
        assert_eq!(memsw_to_swap_max(max, None), Ok(Some("max".into())));
        assert_eq!(memsw_to_swap_max(b(100), None), Ok(None));
        assert_eq!(memsw_to_swap_max(b(100), max), Ok(Some("max".into())));
        assert_eq!(memsw_to_swap_max(max, b(300)), Ok(Some("300".into())));
        assert!(memsw_to_swap_max(None, b(300)).is_err());
        assert!(memsw_to_swap_max(b(300), b(100)).is_err(), "memsw below memory");
        assert_eq!(memsw_to_swap_max(b(100), b(100)), Ok(Some("0".into())), "equal");
        assert_eq!(memsw_to_swap_max(b(100), b(250)), Ok(Some("150".into())), "above");
    }

    #[test]
    fn blkio_weights() {
        assert_eq!(blkio_weight_to_io_weight(500, BlkioFormula::Oci), Some(4950));
        assert_eq!(blkio_weight_to_io_weight(500, BlkioFormula::Systemd), Some(100));
        assert_eq!(blkio_weight_to_io_weight(10, BlkioFormula::Oci), Some(1));
        assert_eq!(blkio_weight_to_io_weight(1000, BlkioFormula::Oci), Some(10000));
        assert_eq!(blkio_weight_to_io_weight(10, BlkioFormula::Systemd), Some(2));
        assert_eq!(blkio_weight_to_io_weight(1000, BlkioFormula::Systemd), Some(200));
        assert_eq!(blkio_weight_to_io_weight(0, BlkioFormula::Oci), None);
        let d = DevNum { major: 8, minor: 0 };
        let lines = [(d, 100), (DevNum { major: 8, minor: 16 }, 0)];
        // Runtimes: weight_device only through io.bfq.weight, verbatim.
        assert!(weight_device_to_io_weight(&lines, BlkioFormula::Oci).is_empty());
        assert_eq!(
            weight_device_to_bfq(&lines, BlkioFormula::Oci),
            vec!["8:0 100".to_string(), "8:16 default".to_string()]
        );
        // systemd: io.weight w/5 and io.bfq.weight BFQ_WEIGHT(w/5).
        assert_eq!(
            weight_device_to_io_weight(&lines, BlkioFormula::Systemd),
            vec!["8:0 20".to_string(), "8:16 default".to_string()]
        );
        assert_eq!(
            weight_device_to_bfq(&lines, BlkioFormula::Systemd),
            vec!["8:0 20".to_string(), "8:16 default".to_string()]
        );
    }

    #[test]
    fn throttle_merges_one_line_per_device() {
        let a = DevNum { major: 8, minor: 0 };
        let b = DevNum { major: 253, minor: 1 };
        let t = Throttle {
            rbps: vec![(a, 1048576)],
            wbps: vec![(a, 2097152), (b, 0)],
            riops: vec![],
            wiops: vec![(b, 100)],
        };
        assert_eq!(
            throttle_to_io_max(&t),
            vec![
                "8:0 rbps=1048576 wbps=2097152 riops=max wiops=max".to_string(),
                "253:1 rbps=max wbps=max riops=max wiops=100".to_string(),
            ]
        );
        assert!(throttle_to_io_max(&Throttle::default()).is_empty());
    }

    #[test]
    fn small_ones() {
        assert_eq!(freezer_state_to_freeze("FROZEN", Some(1)), Ok(Some("1")));
        assert_eq!(freezer_state_to_freeze("FROZEN", None), Ok(Some("1")));
        assert_eq!(
            freezer_state_to_freeze("FROZEN", Some(0)),
            Ok(None),
            "inherited from a frozen parent: nothing of its own"
        );
        assert_eq!(freezer_state_to_freeze("THAWED\n", Some(0)), Ok(Some("0")));
        assert!(freezer_state_to_freeze("SLEEPY", None).is_err());
        assert_eq!(pids_max(Limit::Bytes(0)), "1");
        assert_eq!(pids_max(Limit::Max), "max");
        assert_eq!(cpu_exclusive_to_partition(1), "root");
        assert_eq!(cpu_exclusive_to_partition(0), "member");
        assert_eq!(byte_limit_or_max(Limit::Bytes(4096)), Ok("4096".into()));
        assert_eq!(byte_limit_or_max(Limit::Max), Ok("max".into()));
        assert!(
            byte_limit_or_max(Limit::Bytes(u64::MAX)).is_err(),
            "above the page counter"
        );
    }

    #[test]
    fn hugetlb_unlimited_for_every_page_size() {
        // The values kernels print (audit reference §3), never a number in v2.
        for v in [
            9223372036854771712u64, // 4 KiB pages (memory, 4 KiB hugetlb)
            9223372036852678656,    // 2 MiB huge pages
            9223372035781033984,    // 1 GiB huge pages
            9223372036854710272,    // 64 KiB base pages
        ] {
            assert!(is_v1_unlimited(v), "{v}");
            assert_eq!(byte_limit_or_max(Limit::Bytes(v)), Ok("max".into()), "{v}");
        }
        // A real limit, a whole number of 1 GiB pages, stays a number.
        assert!(!is_v1_unlimited(64 << 30));
        assert!(!is_v1_unlimited((1u64 << 63) - (3u64 << 29)));
    }

    /// The reference's upstream table (docs/research/v1-to-v2-conversion.md §0): each
    /// formula reproduces the upstream samples exactly.
    #[test]
    fn blkio_upstream_table() {
        // (w, runc/crun io.weight, runc/crun io.bfq.weight, systemd io.weight, systemd bfq)
        let table = [
            (10, 1, 10, 2, 2),
            (100, 910, 100, 20, 20),
            (250, 2425, 250, 50, 50),
            (500, 4950, 500, 100, 100),
            (1000, 10000, 1000, 200, 109),
        ];
        for (w, oci, oci_bfq, sd, sd_bfq) in table {
            assert_eq!(
                blkio_weight_to_io_weight(w, BlkioFormula::Oci),
                Some(oci),
                "oci {w}"
            );
            assert_eq!(
                blkio_weight_to_bfq(w, BlkioFormula::Oci),
                Some(oci_bfq),
                "oci bfq {w}"
            );
            assert_eq!(
                blkio_weight_to_io_weight(w, BlkioFormula::Systemd),
                Some(sd),
                "sd {w}"
            );
            assert_eq!(
                blkio_weight_to_bfq(w, BlkioFormula::Systemd),
                Some(sd_bfq),
                "sd bfq {w}"
            );
        }
        // systemd's BFQ_WEIGHT at its ends.
        assert_eq!(io_weight_to_bfq(1), 1);
        assert_eq!(io_weight_to_bfq(10000), 1000);
    }

    /// Sibling order: a cgroup weighted below its default (500) siblings in
    /// v1 stays below the v2 default (100) with the systemd formula, for every
    /// weight; the OCI formula inverts it (why systemd is the default).
    #[test]
    fn blkio_systemd_keeps_order_against_default_siblings() {
        for w in 10..=1000u64 {
            let v2 = blkio_weight_to_io_weight(w, BlkioFormula::Systemd).unwrap();
            let bfq = blkio_weight_to_bfq(w, BlkioFormula::Systemd).unwrap();
            // Never inverted (integer rounding may tie just above 500).
            assert_eq!(w < 500, v2 < 100, "io.weight {w} -> {v2}");
            assert_eq!(w < 500, bfq < 100, "bfq {w} -> {bfq}");
            if w == 500 {
                assert_eq!((v2, bfq), (100, 100), "the default stays the default");
            }
        }
        assert!(blkio_weight_to_io_weight(250, BlkioFormula::Oci).unwrap() > 100);
    }

    proptest! {
        #[test]
        fn shares_monotonic_and_in_range(a in 0u64..400_000, b in 0u64..400_000) {
            for f in SharesFormula::ALL {
                let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
                let (wl, wh) = (shares_to_weight(lo, f), shares_to_weight(hi, f));
                if lo == 0 { prop_assert_eq!(wl, None); continue; }
                let (wl, wh) = (wl.unwrap(), wh.unwrap());
                prop_assert!(wl <= wh, "{f}: {lo}->{wl} > {hi}->{wh}");
                prop_assert!((1..=10_000).contains(&wl) && (1..=10_000).contains(&wh));
            }
        }

        #[test]
        fn blkio_monotonic_and_in_range(a in 0u64..2000, b in 0u64..2000) {
            for f in [BlkioFormula::Oci, BlkioFormula::Systemd] {
                let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
                match (blkio_weight_to_io_weight(lo, f), blkio_weight_to_io_weight(hi, f)) {
                    (None, _) => prop_assert_eq!(lo, 0),
                    (Some(x), Some(y)) => {
                        prop_assert!(x <= y);
                        prop_assert!((1..=10_000).contains(&x) && (1..=10_000).contains(&y));
                    }
                    (Some(_), None) => prop_assert!(false, "unset above set"),
                }
            }
        }

        #[test]
        fn memsw_never_exceeds_input(m in 0u64..1u64<<40, extra in 0u64..1u64<<40) {
            let sw = memsw_to_swap_max(Some(Limit::Bytes(m)), Some(Limit::Bytes(m + extra))).unwrap();
            prop_assert_eq!(sw, Some(extra.to_string()));
        }
    }
}
