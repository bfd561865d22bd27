//! The named conversion functions rules refer to, and how each one gathers
//! its inputs from a cgroup's settings.
//!
//! The arithmetic lives in [`super::convert`] as pure functions on typed
//! values; this module is the thin, table-driven glue between a rule's
//! `function:` name and those functions, so a rule file can only name a
//! function that exists with parameters it accepts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::LoadedRule;
use super::convert::{self, BlkioFormula, ConvError, SharesFormula, Throttle};
use crate::model::value::{self, IdList, Limit};

/// Description of a conversion function, for validation and `explain`.
#[derive(Debug, Clone, Copy)]
pub struct FunctionInfo {
    /// Name used in rules.
    pub name: &'static str,
    /// What it does.
    pub summary: &'static str,
    /// Accepted parameters and their allowed values (first is the default).
    pub params: &'static [(&'static str, &'static [&'static str])],
    /// Other v1 files it reads besides the matched one.
    pub reads: &'static [&'static str],
}

/// Former names of conversion functions, still accepted in rules files so
/// that rules written for an older cgmig keep loading. Deprecated: they are
/// converted to the current name (which the plan shows), and docs/rules.md
/// lists them. `(former, current)`.
pub const FORMER_NAMES: &[(&str, &str)] = &[
    // It converts the soft limit to `memory.low` too, so `*_max` misled.
    ("limit_to_max", "byte_limit_or_max"),
];

/// The current name of a conversion function (a former name is mapped to
/// its replacement; any other name is returned as it is).
pub fn canonical_function(name: &str) -> &str {
    FORMER_NAMES
        .iter()
        .find(|(former, _)| *former == name)
        .map_or(name, |(_, current)| current)
}

/// Every conversion function.
pub const FUNCTIONS: &[FunctionInfo] = &[
    FunctionInfo {
        name: "shares_to_weight",
        summary: "cpu.shares [2..262144, default 1024] -> cpu.weight [1..10000, default 100]",
        params: &[("formula", &["oci", "oci-legacy", "systemd"])],
        reads: &[],
    },
    FunctionInfo {
        name: "quota_period_to_max",
        summary: "cfs_quota_us (-1 = none) and cfs_period_us -> \"$MAX $PERIOD\"",
        params: &[],
        reads: &["cpu.cfs_quota_us", "cpu.cfs_period_us"],
    },
    FunctionInfo {
        name: "copy",
        summary: "same value, same syntax",
        params: &[],
        reads: &[],
    },
    FunctionInfo {
        name: "copy_idlist",
        summary: "CPU/node list, same syntax (validated)",
        params: &[],
        reads: &[],
    },
    FunctionInfo {
        name: "cpu_exclusive_to_partition",
        summary: "1 -> root, 0 -> member",
        params: &[],
        reads: &[],
    },
    FunctionInfo {
        name: "byte_limit_or_max",
        summary: "byte limit; v1 unlimited (PAGE_COUNTER_MAX for any page/huge-page size, or -1) -> max",
        params: &[],
        reads: &[],
    },
    FunctionInfo {
        name: "memsw_to_swap_max",
        summary: "memory+swap limit -> swap-only limit (memsw - memory), runc's case order",
        params: &[],
        reads: &["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"],
    },
    FunctionInfo {
        name: "blkio_weight_to_io_weight",
        summary: "blkio.weight [10..1000, default 500] -> io.weight [1..10000, default 100]",
        params: &[("formula", &["systemd", "oci"])],
        reads: &[],
    },
    FunctionInfo {
        name: "blkio_weight_to_bfq",
        summary: "blkio.weight -> io.bfq.weight: oci copies it, systemd writes BFQ_WEIGHT(w/5)",
        params: &[("formula", &["systemd", "oci"])],
        reads: &[],
    },
    FunctionInfo {
        name: "bfq_weight_to_io_weight",
        summary: "BFQ weight [1..1000, default 100] -> io.weight (inverse BFQ_WEIGHT: identity to 100, then 100 + (b-100)*11); MAJ:MIN lines per device",
        params: &[],
        reads: &[],
    },
    FunctionInfo {
        name: "weight_device_to_io_weight",
        summary: "MAJ:MIN W lines -> io.weight MAJ:MIN W/5 (systemd; oci writes none)",
        params: &[("formula", &["systemd", "oci"])],
        reads: &[],
    },
    FunctionInfo {
        name: "weight_device_to_bfq",
        summary: "MAJ:MIN W lines -> io.bfq.weight lines: oci copies W, systemd BFQ_WEIGHT(W/5)",
        params: &[("formula", &["systemd", "oci"])],
        reads: &[],
    },
    FunctionInfo {
        name: "throttle_to_io_max",
        summary: "the four blkio.throttle.* files -> one io.max line per device",
        params: &[],
        reads: &[
            "blkio.throttle.read_bps_device",
            "blkio.throttle.write_bps_device",
            "blkio.throttle.read_iops_device",
            "blkio.throttle.write_iops_device",
        ],
    },
    FunctionInfo {
        name: "freezer_state_to_freeze",
        summary: "own state only (freezer.self_freezing): FROZEN -> 1, THAWED -> 0, inherited -> nothing",
        params: &[],
        reads: &["freezer.self_freezing"],
    },
    FunctionInfo {
        name: "pids_max",
        summary: "same syntax; 0 -> 1 (as runc)",
        params: &[],
        reads: &[],
    },
];

/// A rule's `convert:` names a function or parameter that does not exist.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum FunctionError {
    /// No function of that name.
    #[error("unknown function {name:?} (known: {})", FUNCTIONS.iter().map(|f| f.name).collect::<Vec<_>>().join(", "))]
    Unknown {
        /// The name in the rule.
        name: String,
    },
    /// The function has no such parameter.
    #[error("function {function} takes no parameter {param:?}")]
    NoParameter {
        /// The function.
        function: &'static str,
        /// The parameter in the rule.
        param: String,
    },
    /// The parameter's value is not one the function knows.
    #[error("function {function}: {param} must be one of {}, not {value:?}", .allowed.join(", "))]
    BadValue {
        /// The function.
        function: &'static str,
        /// The parameter.
        param: String,
        /// Its allowed values.
        allowed: &'static [&'static str],
        /// The value in the rule.
        value: String,
    },
}

/// Check that a function exists and its parameters are accepted.
pub(super) fn check_function(name: &str, params: &BTreeMap<String, String>) -> Result<(), FunctionError> {
    let name = canonical_function(name);
    let info = FUNCTIONS
        .iter()
        .find(|f| f.name == name)
        .ok_or_else(|| FunctionError::Unknown {
            name: name.to_string(),
        })?;
    for (k, v) in params {
        let (_, allowed) =
            info.params
                .iter()
                .find(|(p, _)| p == k)
                .ok_or_else(|| FunctionError::NoParameter {
                    function: info.name,
                    param: k.clone(),
                })?;
        if !allowed.contains(&v.as_str()) {
            return Err(FunctionError::BadValue {
                function: info.name,
                param: k.clone(),
                allowed,
                value: v.clone(),
            });
        }
    }
    Ok(())
}

/// One converted v2 value and how it was produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversion {
    /// The rule that produced it.
    pub rule: String,
    /// The v2 file.
    pub target: String,
    /// The value to write.
    pub value: String,
    /// The conversion function.
    pub function: String,
    /// The formula variant, when the function has several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formula: Option<String>,
    /// The v1 files and values it was computed from.
    pub inputs: Vec<(String, String)>,
}

fn param<'a>(rule: &'a LoadedRule, name: &str) -> Option<&'a str> {
    rule.rule.convert.as_ref()?.params.get(name).map(String::as_str)
}

fn conv_err(e: value::ValueError) -> ConvError {
    ConvError::Invalid(e.to_string())
}

/// Apply a rule's conversion to one matched file of a cgroup.
///
/// `settings` is the cgroup's whole settings map (some functions read more
/// than one file). Returns `Ok(None)` when the conversion yields "unset".
pub fn convert_setting(
    rule: &LoadedRule,
    file: &str,
    caps: &[String],
    settings: &BTreeMap<String, String>,
) -> Result<Option<Conversion>, ConvError> {
    let Some(spec) = &rule.rule.convert else {
        return Ok(None);
    };
    let raw = settings.get(file).map_or("", String::as_str);
    let input = Input { rule, raw, settings };
    let mut out = Computed {
        value: None,
        formula: None,
        inputs: vec![(file.to_string(), raw.to_string())],
    };
    compute(canonical_function(&spec.function), &input, &mut out)?;
    let Some(value) = out.value else { return Ok(None) };
    // A target without placeholders was checked when the rule was loaded.
    let target = if spec.target.contains('{') {
        let target = fill_placeholders(&spec.target, caps);
        super::schema::check_target(&target, rule.rule.matcher.controller.as_deref())?;
        target
    } else {
        spec.target.clone()
    };
    Ok(Some(Conversion {
        rule: rule.rule.id.clone(),
        target,
        value,
        function: canonical_function(&spec.function).to_string(),
        formula: out.formula,
        inputs: out.inputs,
    }))
}

/// What a conversion function reads: the rule (for its parameters), the
/// matched file's text and the cgroup's other settings.
struct Input<'a> {
    rule: &'a LoadedRule,
    raw: &'a str,
    settings: &'a BTreeMap<String, String>,
}

impl Input<'_> {
    fn get(&self, file: &str) -> Option<&str> {
        self.settings.get(file).map(String::as_str)
    }
}

/// What a conversion function produced: the value (`None`: unset), its
/// formula variant, and the v1 files and values it was computed from.
struct Computed {
    value: Option<String>,
    formula: Option<String>,
    inputs: Vec<(String, String)>,
}

/// Run the conversion function `function` (a canonical name).
fn compute(function: &str, input: &Input<'_>, out: &mut Computed) -> Result<(), ConvError> {
    let raw = input.raw;
    out.value = match function {
        "shares_to_weight" => shares(input, out)?,
        "quota_period_to_max" => quota_period(input, out)?,
        "copy" => Some(raw.trim().to_string()),
        // An empty v1 list can't hold tasks; in v2 empty means "inherit", so
        // nothing is written.
        "copy_idlist" => {
            let l = raw.parse::<IdList>().map_err(conv_err)?;
            (!l.0.is_empty()).then(|| l.to_string())
        }
        "cpu_exclusive_to_partition" => {
            Some(convert::cpu_exclusive_to_partition(value::parse_u64(raw).map_err(conv_err)?).to_string())
        }
        "byte_limit_or_max" => Some(byte_limit(raw)?),
        "memsw_to_swap_max" => memsw(input, out)?,
        "blkio_weight_to_io_weight"
        | "weight_device_to_io_weight"
        | "blkio_weight_to_bfq"
        | "weight_device_to_bfq" => blkio_weight(function, input, out)?,
        "bfq_weight_to_io_weight" => bfq_to_io(raw)?,
        "throttle_to_io_max" => throttle(input, out)?,
        "freezer_state_to_freeze" => freezer(input, out)?,
        "pids_max" => Some(convert::pids_max(raw.parse::<Limit>().map_err(conv_err)?)),
        other => return Err(ConvError::Invalid(format!("unknown function {other}"))),
    };
    Ok(())
}

/// `{1}`, `{2}`, ... in a target replaced by the matcher's captures.
fn fill_placeholders(target: &str, caps: &[String]) -> String {
    let mut target = target.to_string();
    for (i, c) in caps.iter().enumerate() {
        target = target.replace(&format!("{{{}}}", i + 1), c);
    }
    target
}

fn shares(input: &Input<'_>, out: &mut Computed) -> Result<Option<String>, ConvError> {
    let f = match param(input.rule, "formula").unwrap_or("oci") {
        "oci-legacy" => SharesFormula::OciLegacy,
        "systemd" => SharesFormula::Systemd,
        _ => SharesFormula::Oci,
    };
    out.formula = Some(f.to_string());
    let shares = value::parse_u64(input.raw).map_err(conv_err)?;
    Ok(convert::shares_to_weight(shares, f).map(|w| w.to_string()))
}

fn quota_period(input: &Input<'_>, out: &mut Computed) -> Result<Option<String>, ConvError> {
    let q = value::parse_i64(input.get("cpu.cfs_quota_us").unwrap_or("-1")).map_err(conv_err)?;
    let p = value::parse_u64(input.get("cpu.cfs_period_us").unwrap_or("100000")).map_err(conv_err)?;
    out.inputs = vec![
        ("cpu.cfs_quota_us".into(), q.to_string()),
        ("cpu.cfs_period_us".into(), p.to_string()),
    ];
    Ok(Some(convert::quota_period_to_max(q, p)?))
}

fn byte_limit(raw: &str) -> Result<String, ConvError> {
    if convert::above_page_counter(raw) {
        return Err(ConvError::Invalid(format!(
            "{} is above the 64-bit page counter maximum {} and is not the unlimited value",
            raw.trim(),
            i64::MAX
        )));
    }
    convert::byte_limit_or_max(raw.parse::<Limit>().map_err(conv_err)?)
}

fn memsw(input: &Input<'_>, out: &mut Computed) -> Result<Option<String>, ConvError> {
    let limit = |f: &str| {
        input
            .get(f)
            .map(str::parse::<Limit>)
            .transpose()
            .map_err(conv_err)
    };
    let mem = limit("memory.limit_in_bytes")?;
    let sw = limit("memory.memsw.limit_in_bytes")?;
    out.inputs = ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]
        .iter()
        .map(|f| (f.to_string(), input.get(f).unwrap_or("").to_string()))
        .collect();
    convert::memsw_to_swap_max(mem, sw)
}

fn blkio_weight(function: &str, input: &Input<'_>, out: &mut Computed) -> Result<Option<String>, ConvError> {
    let f = match param(input.rule, "formula").unwrap_or("systemd") {
        "oci" => BlkioFormula::Oci,
        _ => BlkioFormula::Systemd,
    };
    out.formula = Some(f.to_string());
    let raw = input.raw;
    Ok(match function {
        "blkio_weight_to_io_weight" => {
            convert::blkio_weight_to_io_weight(value::parse_u64(raw).map_err(conv_err)?, f)
                .map(|w| format!("default {w}"))
        }
        "blkio_weight_to_bfq" => {
            convert::blkio_weight_to_bfq(value::parse_u64(raw).map_err(conv_err)?, f).map(|w| w.to_string())
        }
        other => {
            let lines = value::parse_device_values(raw).map_err(conv_err)?;
            let out = if other == "weight_device_to_bfq" {
                convert::weight_device_to_bfq(&lines, f)
            } else {
                convert::weight_device_to_io_weight(&lines, f)
            };
            (!out.is_empty()).then(|| out.join("\n"))
        }
    })
}

/// `blkio.bfq.weight` (`N` or `default N`, plus `MAJ:MIN N` lines in
/// `blkio.bfq.weight_device`) → `io.weight` in the same shape.
fn bfq_to_io(raw: &str) -> Result<Option<String>, ConvError> {
    let raw = raw.trim();
    let mut out = Vec::new();
    for line in raw.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (dev, w) = match line.split_once(char::is_whitespace) {
            Some((d, w)) if d != "default" => (Some(d), w.trim()),
            Some((_, w)) => (None, w.trim()),
            None => (None, line),
        };
        let w = value::parse_u64(w).map_err(conv_err)?;
        let io = convert::bfq_weight_to_io_weight(w);
        match (dev, io) {
            (Some(d), Some(v)) => {
                let d: value::DevNum = d.parse().map_err(conv_err)?;
                out.push(format!("{d} {v}"));
            }
            (Some(d), None) => out.push(format!("{d} default")),
            (None, Some(v)) => out.push(format!("default {v}")),
            (None, None) => {}
        }
    }
    Ok((!out.is_empty()).then(|| out.join("\n")))
}

fn throttle(input: &Input<'_>, out: &mut Computed) -> Result<Option<String>, ConvError> {
    let dv = |f: &str| value::parse_device_values(input.get(f).unwrap_or("")).map_err(conv_err);
    let t = Throttle {
        rbps: dv("blkio.throttle.read_bps_device")?,
        wbps: dv("blkio.throttle.write_bps_device")?,
        riops: dv("blkio.throttle.read_iops_device")?,
        wiops: dv("blkio.throttle.write_iops_device")?,
    };
    out.inputs = FUNCTIONS
        .iter()
        .find(|f| f.name == "throttle_to_io_max")
        .map(|f| f.reads)
        .unwrap_or_default()
        .iter()
        .filter_map(|f| {
            input
                .get(f)
                .filter(|v| !v.is_empty())
                .map(|v| (f.to_string(), v.to_string()))
        })
        .collect();
    let lines = convert::throttle_to_io_max(&t);
    Ok((!lines.is_empty()).then(|| lines.join("\n")))
}

fn freezer(input: &Input<'_>, out: &mut Computed) -> Result<Option<String>, ConvError> {
    let own = input
        .get("freezer.self_freezing")
        .filter(|v| !v.trim().is_empty())
        .map(value::parse_u64)
        .transpose()
        .map_err(conv_err)?;
    if let Some(o) = own {
        out.inputs.push(("freezer.self_freezing".into(), o.to_string()));
    }
    Ok(convert::freezer_state_to_freeze(input.raw, own)?.map(str::to_string))
}

/// `docs/conversions.md` is generated from the rules and the conversion
/// functions, so it cannot drift from them: this test renders it and compares
/// (`CGMIG_UPDATE_DOCS=1 cargo test --lib conversions_doc` rewrites it).
#[cfg(test)]
mod doc {
    use std::fmt::Write;

    use super::super::convert::{self, BlkioFormula, SharesFormula};
    use super::super::{DefaultSpec, RuleSet};

    fn default_text(d: &Option<DefaultSpec>) -> String {
        match d {
            None => String::new(),
            Some(DefaultSpec::Exact(e)) => format!("`{e}`"),
            Some(DefaultSpec::Spec(s)) => {
                let mut parts = Vec::new();
                if !s.any_of.is_empty() {
                    let q: Vec<String> = s.any_of.iter().map(|v| format!("'{v}'")).collect();
                    parts.push(format!("any_of=[{}]", q.join(", ")));
                }
                if s.unlimited {
                    parts.push("unlimited=True".into());
                }
                if s.parent {
                    parts.push("parent=True".into());
                }
                if let Some(r) = &s.regex {
                    parts.push(format!("regex={}", r.replace('|', "\\|")));
                }
                format!("`{}`", parts.join(", "))
            }
        }
    }

    fn render() -> String {
        let (set, errors) = RuleSet::embedded();
        assert!(errors.is_empty(), "{errors:?}");
        let mut s = String::from(
            "# v1 → v2 conversion matrix\n\nGenerated from `rules/*.yaml` and `src/rules/convert.rs` by `CGMIG_UPDATE_DOCS=1 cargo test --lib conversions_doc` (the rules are the source of truth; the test fails when this page is stale). `cgmig explain ID` shows formulas and sample values.\n\n| rule | v1 file / fact | default | v2 conversion | finding | kernel | source |\n|---|---|---|---|---|---|---|\n",
        );
        for r in set.rules() {
            let m = &r.rule.matcher;
            let what = match (&m.file, &m.file_regex, &m.fact) {
                (Some(f), _, _) => format!("`{f}`"),
                (_, Some(re), _) => format!("`/{}/`", re.replace('|', "\\|")),
                (_, _, Some(f)) => format!(
                    "`fact {}`",
                    serde_json::to_value(f).unwrap().as_str().unwrap_or("")
                ),
                _ => String::new(),
            };
            let conv = match &r.rule.convert {
                None => "—".to_string(),
                Some(c) => {
                    let params: Vec<String> = c.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    let p = if params.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", params.join(", "))
                    };
                    format!("`{}` via `{}`{p}", c.target, c.function)
                }
            };
            let finding = r
                .rule
                .finding
                .as_ref()
                .map(|f| f.severity.to_string())
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "| `{}` | {what} | {} | {conv} | {finding} | {} | {} |",
                r.rule.id,
                default_text(&r.rule.default),
                r.rule.kernel.as_deref().unwrap_or(""),
                r.rule.source.as_deref().unwrap_or("").replace('|', "\\|"),
            );
        }
        s.push_str("\n## Formulas with several variants\n\n");
        s.push_str("**cpu.shares → cpu.weight** (v1 [2, 262144], default 1024; v2 [1, 10000], default 100). The variant used is recorded in each conversion (`formula`); the rule's `formula` parameter chooses it:\n\n");
        let shares = [2u64, 100, 512, 1024, 2048, 10240, 102400, 262144];
        let head: Vec<String> = shares.iter().map(u64::to_string).collect();
        let _ = writeln!(s, "| variant | formula | {} |", head.join(" | "));
        let _ = writeln!(s, "|---|---|{}", "---|".repeat(shares.len()));
        for (f, label) in [
            (SharesFormula::Oci, "`oci` (default; runc ≥ 1.3.2, crun ≥ 1.23)"),
            (SharesFormula::OciLegacy, "`oci-legacy` (runc < 1.3.2, KEP-2254)"),
            (SharesFormula::Systemd, "`systemd`"),
        ] {
            let row: Vec<String> = shares
                .iter()
                .map(|v| convert::shares_to_weight(*v, f).unwrap().to_string())
                .collect();
            let _ = writeln!(s, "| {label} | `{}` | {} |", f.formula(), row.join(" | "));
        }
        s.push_str("\n**blkio.weight → io.weight / io.bfq.weight** (v1 [10, 1000], CFQ default 500; io.weight [1, 10000], default 100; io.bfq.weight [1, 1000], default 100). `systemd` is the default because it keeps a default a default (500 → 100): a cgroup weighted below its default siblings in v1 stays below them in v2, with the same ratio. The runtimes' `oci` formula gives w = 250 the io.weight 2425 against its default siblings' 100 (inverted). `blkio.weight_device` follows the same formula: `oci` writes only `io.bfq.weight MAJ:MIN W` (as runc/crun/youki), `systemd` writes `io.weight MAJ:MIN W/5` and `io.bfq.weight MAJ:MIN BFQ_WEIGHT(W/5)`. io.weight only acts with iocost enabled or BFQ as the device's scheduler (the rule's warning says so); `io.bfq.weight` exists only under BFQ, so apply treats it as optional.\n\n**Which weight file the plan keeps: by the disks' scheduler.** The rules convert every v1 weight (`blkio.weight`, `blkio.bfq.weight` and their `_device` forms) to both files; the plan (`src/plan/io_weight.rs`) keeps the one the host's disks read, from the scheduler the scan records per device (`/sys/block/NAME/queue/scheduler`, the bracketed entry; under `--root` read below the root; `host.shows.block_devices` in the snapshot). Loop, RAM, zram, optical, floppy, nbd and stacked (dm-, md) devices do not count. Every disk on BFQ: `io.bfq.weight` only (`plan.io-weight-bfq`, info). No disk on BFQ: `io.weight` only (`plan.io-weight-iocost`, warning: io.weight acts only where the root's `io.cost.qos` enables iocost on the device, off by default). Some disks on BFQ, some not: both files (both findings). No scheduler shown (a snapshot from before this field, a capture without `/sys/block`): `io.weight` and `plan.io-scheduler-unknown` (warning) naming the missing evidence. `blkio.bfq.weight` → `io.weight` is the inverse of systemd's `BFQ_WEIGHT`: identity up to 100, then `100 + (b − 100)·9900/900` (300 → 2300, 1000 → 10000), so BFQ's default stays io.weight's default.\n\nFirst kernels on v2: `io.weight` as iocost's weight 5.4 (commit 7caa47151ab2, \"blkcg: implement blk-iocost\"; before 5.0 CFQ read an `io.weight` on single-queue devices, gone with CFQ in 5.0); `io.bfq.weight` 4.12 (commit e21b7a0b9887, \"block, bfq: add full hierarchical scheduling and cgroups support\"), its per-device lines 5.4 (commit 795fe54c2a82). These are the rules' `kernel:` fields.\n\n");
        let weights = [10u64, 100, 250, 500, 1000];
        let head: Vec<String> = weights.iter().map(u64::to_string).collect();
        let _ = writeln!(s, "| variant | file | {} |", head.join(" | "));
        let _ = writeln!(s, "|---|---|{}", "---|".repeat(weights.len()));
        for (f, file) in [
            (BlkioFormula::Systemd, "io.weight"),
            (BlkioFormula::Systemd, "io.bfq.weight"),
            (BlkioFormula::Oci, "io.weight"),
            (BlkioFormula::Oci, "io.bfq.weight"),
        ] {
            let row: Vec<String> = weights
                .iter()
                .map(|w| {
                    let v = if file == "io.weight" {
                        convert::blkio_weight_to_io_weight(*w, f)
                    } else {
                        convert::blkio_weight_to_bfq(*w, f)
                    };
                    v.unwrap().to_string()
                })
                .collect();
            let _ = writeln!(s, "| `{f}` | `{file}` | {} |", row.join(" | "));
        }
        s.push_str("\n**memory.memsw.limit_in_bytes → memory.swap.max**: runc's case order (see `cgmig explain memory.memsw.limit_in_bytes`): memsw − memory; `0` when equal; `max` when memsw is unlimited, or when memory is unlimited and memsw unset; memsw as is when memory is unlimited and memsw set; an error when memsw < memory or memsw is set without a memory limit.\n");
        s.push_str("\n**memory.soft_limit_in_bytes** → `memory.low` (runc/crun, the kernel's stated successor). libcgroup maps it to `memory.high` instead; the warning says so. Override with a `--rules` file if `memory.high` is your policy. memory.low protects only if the ancestors grant protection too; the plan does not set it on them and recommends the `memory_recursiveprot` mount option.\n");
        s.push_str("\n**Unlimited.** v1 prints `PAGE_COUNTER_MAX` pages in bytes; hugetlb rounds it down to whole huge pages, so the value depends on the page size (4 KiB memory: 9223372036854771712, 2 MiB hugetlb: 9223372036852678656, 1 GiB hugetlb: 9223372035781033984). Every such value becomes `max`; a number above the page counter's maximum that is not one is an error.\n");
        s.push_str("\n**Ranges.** Values v2 would refuse never reach a plan; each is an error finding naming the file and value: a CFS period outside 1 ms–1 s or a quota below 1 ms, a cpuset list naming CPUs or memory nodes the host's root cpuset does not have, a limit above the 64-bit page counter maximum.\n");
        s.push_str("\n**freezer.state → cgroup.freeze**: only the cgroup's own state (`freezer.self_freezing` = 1) is converted; a child that is FROZEN because its parent is writes nothing, as v2 inherits the parent's freeze the same way.\n");
        // Measured behaviour (CPU time per formula under QEMU) is hand-written
        // from the VM scenario, so it lives beside this generated file.
        s.push_str("\n**Measured on real kernels**: the CPU time each cpu.shares formula gives two sibling loops on v1 and v2 is in [conversions-measured.md](conversions-measured.md).\n");
        s
    }

    #[test]
    fn conversions_doc_is_generated_from_the_rules() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/conversions.md");
        let want = render();
        if std::env::var_os("CGMIG_UPDATE_DOCS").is_some() {
            std::fs::write(path, &want).unwrap();
        }
        let have = std::fs::read_to_string(path).unwrap();
        assert!(
            have == want,
            "docs/conversions.md is stale: run CGMIG_UPDATE_DOCS=1 cargo test --lib conversions_doc"
        );
    }
}
