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
        name: "limit_to_max",
        summary: "byte limit; v1 unlimited (page-aligned LONG_MAX or -1) -> max",
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
        params: &[("formula", &["oci", "systemd"])],
        reads: &[],
    },
    FunctionInfo {
        name: "blkio_weight_to_bfq",
        summary: "blkio.weight -> io.bfq.weight, unchanged (both 1..1000)",
        params: &[],
        reads: &[],
    },
    FunctionInfo {
        name: "weight_device_to_io_weight",
        summary: "MAJ:MIN W lines -> MAJ:MIN W' lines (0 -> default)",
        params: &[("formula", &["oci", "systemd"])],
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
        summary: "FROZEN/FREEZING -> 1, THAWED -> 0",
        params: &[],
        reads: &[],
    },
    FunctionInfo {
        name: "pids_max",
        summary: "same syntax; 0 -> 1 (as runc)",
        params: &[],
        reads: &[],
    },
];

/// Check that a function exists and its parameters are accepted.
pub(super) fn check_function(name: &str, params: &BTreeMap<String, String>) -> Result<(), String> {
    let info = FUNCTIONS.iter().find(|f| f.name == name).ok_or_else(|| {
        let names: Vec<_> = FUNCTIONS.iter().map(|f| f.name).collect();
        format!("unknown function {name:?} (known: {})", names.join(", "))
    })?;
    for (k, v) in params {
        let (_, allowed) = info
            .params
            .iter()
            .find(|(p, _)| p == k)
            .ok_or_else(|| format!("function {name} takes no parameter {k:?}"))?;
        if !allowed.contains(&v.as_str()) {
            return Err(format!(
                "function {name}: {k} must be one of {}, not {v:?}",
                allowed.join(", ")
            ));
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
    let raw = settings.get(file).map(String::as_str).unwrap_or("");
    let mut inputs = vec![(file.to_string(), raw.to_string())];
    let mut formula = None;
    let get = |f: &str| settings.get(f).map(String::as_str);
    let value: Option<String> = match spec.function.as_str() {
        "shares_to_weight" => {
            let f = match param(rule, "formula").unwrap_or("oci") {
                "oci-legacy" => SharesFormula::OciLegacy,
                "systemd" => SharesFormula::Systemd,
                _ => SharesFormula::Oci,
            };
            formula = Some(f.to_string());
            convert::shares_to_weight(value::parse_u64(raw).map_err(conv_err)?, f).map(|w| w.to_string())
        }
        "quota_period_to_max" => {
            let q = value::parse_i64(get("cpu.cfs_quota_us").unwrap_or("-1")).map_err(conv_err)?;
            let p = value::parse_u64(get("cpu.cfs_period_us").unwrap_or("100000")).map_err(conv_err)?;
            inputs = vec![
                ("cpu.cfs_quota_us".into(), q.to_string()),
                ("cpu.cfs_period_us".into(), p.to_string()),
            ];
            Some(convert::quota_period_to_max(q, p))
        }
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
        "limit_to_max" => Some(convert::limit_to_v2(raw.parse::<Limit>().map_err(conv_err)?)),
        "memsw_to_swap_max" => {
            let mem = get("memory.limit_in_bytes")
                .map(str::parse::<Limit>)
                .transpose()
                .map_err(conv_err)?;
            let sw = get("memory.memsw.limit_in_bytes")
                .map(str::parse::<Limit>)
                .transpose()
                .map_err(conv_err)?;
            inputs = vec![
                (
                    "memory.limit_in_bytes".into(),
                    get("memory.limit_in_bytes").unwrap_or("").into(),
                ),
                (
                    "memory.memsw.limit_in_bytes".into(),
                    get("memory.memsw.limit_in_bytes").unwrap_or("").into(),
                ),
            ];
            convert::memsw_to_swap_max(mem, sw)?
        }
        "blkio_weight_to_io_weight" | "weight_device_to_io_weight" => {
            let f = match param(rule, "formula").unwrap_or("oci") {
                "systemd" => BlkioFormula::Systemd,
                _ => BlkioFormula::Oci,
            };
            formula = Some(f.to_string());
            if spec.function == "blkio_weight_to_io_weight" {
                convert::blkio_weight_to_io_weight(value::parse_u64(raw).map_err(conv_err)?, f)
                    .map(|w| format!("default {w}"))
            } else {
                let lines = value::parse_device_values(raw).map_err(conv_err)?;
                let out = convert::weight_device_to_io_weight(&lines, f);
                (!out.is_empty()).then(|| out.join("\n"))
            }
        }
        "blkio_weight_to_bfq" => {
            convert::blkio_weight_to_bfq(value::parse_u64(raw).map_err(conv_err)?).map(|w| w.to_string())
        }
        "throttle_to_io_max" => {
            let dv = |f: &str| value::parse_device_values(get(f).unwrap_or("")).map_err(conv_err);
            let t = Throttle {
                rbps: dv("blkio.throttle.read_bps_device")?,
                wbps: dv("blkio.throttle.write_bps_device")?,
                riops: dv("blkio.throttle.read_iops_device")?,
                wiops: dv("blkio.throttle.write_iops_device")?,
            };
            inputs = FUNCTIONS
                .iter()
                .find(|f| f.name == "throttle_to_io_max")
                .map(|f| f.reads)
                .unwrap_or_default()
                .iter()
                .filter_map(|f| {
                    get(f)
                        .filter(|v| !v.is_empty())
                        .map(|v| (f.to_string(), v.to_string()))
                })
                .collect();
            let lines = convert::throttle_to_io_max(&t);
            (!lines.is_empty()).then(|| lines.join("\n"))
        }
        "freezer_state_to_freeze" => Some(convert::freezer_state_to_freeze(raw)?.to_string()),
        "pids_max" => Some(convert::pids_max(raw.parse::<Limit>().map_err(conv_err)?)),
        other => return Err(ConvError::Invalid(format!("unknown function {other}"))),
    };
    let Some(value) = value else { return Ok(None) };
    let mut target = spec.target.clone();
    for (i, c) in caps.iter().enumerate() {
        target = target.replace(&format!("{{{}}}", i + 1), c);
    }
    super::schema::check_target(&target, rule.rule.matcher.controller.as_deref())
        .map_err(ConvError::Invalid)?;
    Ok(Some(Conversion {
        rule: rule.rule.id.clone(),
        target,
        value,
        function: spec.function.clone(),
        formula,
        inputs,
    }))
}
