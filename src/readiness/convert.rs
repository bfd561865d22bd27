//! `cgmig convert`: the v2 configuration a host needs, as files to review.
//!
//! Pure: from the readiness inventory, the rules and the plan's boot stages
//! it computes every file to install, with the original text when the file
//! replaces one, so the result can be shown as a diff:
//!
//! * a systemd drop-in `50-cgmig-v2.conf` per unit with legacy directives,
//!   using systemd's own formulas (`CPUWeight = clamp(shares*100/1024, 1,
//!   10000)`, `IOWeight = clamp(w*100/500, 1, 10000)`, values copied for
//!   `MemoryMax=` and the bandwidth limits), each value with a comment
//!   stating its source line and formula;
//! * each LXC config with its `lxc.cgroup.*` keys turned into `lxc.cgroup2.*`
//!   through the same conversion rules the audit uses for cgroup files;
//! * a v2 `cgconfig.conf` (libcgroup 3 reads v2 names), same conversions,
//!   `mount {}` dropped;
//! * for each boot stage of the plan, the boot-line files the distribution
//!   uses (`/etc/default/grub` `GRUB_CMDLINE_LINUX`, BLS `options`,
//!   `/etc/kernel/cmdline`, `cmdline.txt`) with the stage's parameters.

use std::collections::BTreeMap;

use serde::Serialize;

use super::config::cgconfig;
use super::evaluate_config::{params, unit_of, v2_counterpart};
use super::{ConfigFile, Readiness, Setting};
use crate::model::Controller;
use crate::rules::convert::{BlkioFormula, SharesFormula, blkio_weight_to_io_weight, shares_to_weight};
use crate::rules::{RuleSet, convert_setting};

/// One file to install.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutFile {
    /// Where it goes on the host.
    pub path: String,
    /// The boot stage it belongs to (`None`: install with the switch).
    pub stage: Option<usize>,
    /// The file it replaces, if any.
    pub original: Option<String>,
    /// The new contents.
    pub text: String,
}

/// Everything `convert` produces.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Output {
    /// Files, in a stable order.
    pub files: Vec<OutFile>,
    /// What could not be converted, with the file and line.
    pub notes: Vec<String>,
}

/// Parameters every stage line replaces.
const BOOT_PARAMS: &[&str] = &[
    "systemd.unified_cgroup_hierarchy",
    "systemd.legacy_systemd_cgroup_controller",
    "SYSTEMD_CGROUP_ENABLE_LEGACY_FORCE",
    "cgroup_no_v1",
];

/// Name of the drop-in file written per unit.
pub const DROPIN: &str = "50-cgmig-v2.conf";

/// Compute every converted file. `stages` are the plan's `(number, cmdline)`.
pub fn convert(r: &Readiness, rules: &RuleSet, stages: &[(usize, String)]) -> Output {
    let mut out = Output::default();
    units(r, &mut out);
    for f in &r.files {
        match f.kind.as_str() {
            "lxc" => lxc(f, rules, &mut out),
            "cgconfig" => cgconfig_v2(f, rules, &mut out),
            _ => {}
        }
    }
    for (n, line) in stages {
        for f in &r.files {
            if let Some(text) = boot_file(f, line) {
                out.files.push(OutFile {
                    path: f.path.clone(),
                    stage: Some(*n),
                    original: Some(f.text.clone()),
                    text,
                });
            }
        }
    }
    out
}

/// Why a legacy unit directive has no v2 line. The text names the directive
/// and its value (`CPUShares=lots: not a number`); the caller adds the unit
/// file and line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectiveError {
    /// systemd has no v2 directive for this key.
    #[error("{key}= has no v2 directive")]
    NoCounterpart {
        /// The directive.
        key: String,
    },
    /// The value (or its weight) is not a number.
    #[error("{key}={value}: not a number")]
    NotANumber {
        /// The directive.
        key: String,
        /// The part that should be a number.
        value: String,
    },
    /// The number is outside what the formula accepts.
    #[error("{key}={value}: out of range")]
    OutOfRange {
        /// The directive.
        key: String,
        /// The value as written.
        value: String,
    },
    /// `BlockIODeviceWeight=` without a weight after the device.
    #[error("{key}={value}: expected 'DEVICE WEIGHT'")]
    NoWeight {
        /// The directive.
        key: String,
        /// The value as written.
        value: String,
    },
}

/// The v2 line for one legacy unit directive, with its comment.
pub fn unit_directive(key: &str, value: &str) -> Result<(String, String), DirectiveError> {
    let target = v2_counterpart(key).ok_or_else(|| DirectiveError::NoCounterpart { key: key.into() })?;
    let v = value.trim();
    let num = |v: &str| {
        v.parse::<u64>().map_err(|_| DirectiveError::NotANumber {
            key: key.into(),
            value: v.into(),
        })
    };
    let out_of_range = || DirectiveError::OutOfRange {
        key: key.into(),
        value: v.into(),
    };
    let (new, how) = match key {
        "CPUShares" | "StartupCPUShares" if !v.is_empty() => {
            let w = shares_to_weight(num(v)?, SharesFormula::Systemd).ok_or_else(out_of_range)?;
            (
                w.to_string(),
                format!("systemd cgroup_cpu_shares_to_weight: clamp({v} * 100 / 1024, 1, 10000)"),
            )
        }
        "BlockIOWeight" | "StartupBlockIOWeight" if !v.is_empty() => {
            let w = blkio_weight_to_io_weight(num(v)?, BlkioFormula::Systemd).ok_or_else(out_of_range)?;
            (
                w.to_string(),
                format!("systemd cgroup_weight_blkio_to_io: clamp({v} * 100 / 500, 1, 10000)"),
            )
        }
        "BlockIODeviceWeight" if !v.is_empty() => {
            let (dev, w) = v
                .rsplit_once(char::is_whitespace)
                .ok_or_else(|| DirectiveError::NoWeight {
                    key: key.into(),
                    value: v.into(),
                })?;
            let w = blkio_weight_to_io_weight(num(w)?, BlkioFormula::Systemd).ok_or_else(out_of_range)?;
            (
                format!("{} {w}", dev.trim()),
                "systemd cgroup_weight_blkio_to_io: clamp(w * 100 / 500, 1, 10000)".into(),
            )
        }
        _ => (
            v.to_string(),
            "value copied (systemd translated it unchanged)".into(),
        ),
    };
    Ok((format!("{target}={new}"), how))
}

fn units(r: &Readiness, out: &mut Output) {
    // unit → section → settings, legacy directives without a v2 counterpart only.
    let mut present: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for s in r.settings.iter().filter(|s| s.family == "unit") {
        present.entry(unit_of(&s.file)).or_default().push(s.key.as_str());
    }
    let mut by_unit: BTreeMap<String, BTreeMap<String, Vec<&Setting>>> = BTreeMap::new();
    for s in r.settings.iter().filter(|s| s.family == "unit") {
        let Some(v2) = v2_counterpart(&s.key) else {
            continue;
        };
        let unit = unit_of(&s.file);
        if present.get(&unit).is_some_and(|k| k.contains(&v2)) {
            continue;
        }
        let section = s.section.clone().unwrap_or_else(|| "Service".into());
        by_unit
            .entry(unit)
            .or_default()
            .entry(section)
            .or_default()
            .push(s);
    }
    for (unit, sections) in by_unit {
        let mut text = format!(
            "# Written by cgmig convert: cgroup v2 replacements for {unit}'s v1 directives,\n\
             # which systemd ignores on the unified hierarchy.\n"
        );
        for (section, list) in sections {
            text.push_str(&format!("\n[{section}]\n"));
            for s in list {
                let at = format!("{}:{}", s.file, s.line.unwrap_or(0));
                match unit_directive(&s.key, &s.value) {
                    Ok((line, how)) => {
                        text.push_str(&format!("# {}={} ({at}): {how}\n{line}\n", s.key, s.value));
                    }
                    Err(e) => out.notes.push(format!("{at}: {e}")),
                }
            }
        }
        out.files.push(OutFile {
            path: format!("/etc/systemd/system/{unit}.d/{DROPIN}"),
            stage: None,
            original: None,
            text,
        });
    }
}

/// A converted v2 file: `(file, value, formula note)`.
pub type V2File = (String, String, String);

/// Convert a set of v1 files (one LXC container or cgconfig group) with the
/// rules: `(v2 file, value, formula note)`, or notes for what cannot be.
pub fn convert_files(v1: &BTreeMap<String, String>, rules: &RuleSet) -> (Vec<V2File>, Vec<(String, String)>) {
    let mut done: Vec<V2File> = Vec::new();
    let mut lost = Vec::new();
    for file in v1.keys() {
        let controller: Controller = file
            .split('.')
            .next()
            .unwrap_or("")
            .parse()
            .unwrap_or_else(|e| match e {});
        let mut any = false;
        for (rule, caps) in rules.file_rules(file, std::slice::from_ref(&controller)) {
            if rule.rule.convert.is_none() {
                continue;
            }
            any = true;
            match convert_setting(rule, file, &caps, v1) {
                Ok(Some(c)) if !done.iter().any(|(t, _, _)| *t == c.target) => {
                    let how = match &c.formula {
                        Some(f) => format!("{} ({f})", c.function),
                        None => c.function.clone(),
                    };
                    done.push((c.target, c.value, how));
                }
                Ok(_) => {}
                Err(e) => lost.push((file.clone(), e.to_string())),
            }
        }
        if !any {
            lost.push((file.clone(), "no v2 equivalent".into()));
        }
    }
    (done, lost)
}

fn lxc(f: &ConfigFile, rules: &RuleSet, out: &mut Output) {
    let v1: BTreeMap<String, String> = f
        .text
        .lines()
        .filter_map(|l| l.split_once('='))
        .filter_map(|(k, v)| {
            Some((
                k.trim().strip_prefix("lxc.cgroup.")?.to_string(),
                v.trim().to_string(),
            ))
        })
        .collect();
    // devices.allow/deny keep their syntax: LXC emulates them with eBPF on v2.
    let (conv, lost) = convert_files(&v1, rules);
    let mut text = String::new();
    let mut written = false;
    for l in f.text.lines() {
        let key = l.split_once('=').map(|(k, _)| k.trim());
        match key.and_then(|k| k.strip_prefix("lxc.cgroup.")) {
            Some(file) => {
                text.push_str(&format!("# cgmig convert: v1 only, ignored on v2: {l}\n"));
                if file.starts_with("devices.") {
                    text.push_str(&format!("lxc.cgroup2.{file} = {}\n", v1[file]));
                } else if !written {
                    written = true;
                    for (target, value, how) in &conv {
                        for v in value.lines() {
                            text.push_str(&format!("# {target}: {how}\nlxc.cgroup2.{target} = {v}\n"));
                        }
                    }
                }
            }
            None => {
                text.push_str(l);
                text.push('\n');
            }
        }
    }
    for (file, why) in lost.iter().filter(|(f, _)| !f.starts_with("devices.")) {
        out.notes.push(format!("{}: lxc.cgroup.{file}: {why}", f.path));
    }
    out.files.push(OutFile {
        path: f.path.clone(),
        stage: None,
        original: Some(f.text.clone()),
        text,
    });
}

fn cgconfig_v2(f: &ConfigFile, rules: &RuleSet, out: &mut Output) {
    let blocks = match cgconfig::parse(&f.text) {
        Ok(b) => b,
        Err((line, e)) => {
            out.notes.push(format!("{}:{line}: {e}: not converted", f.path));
            return;
        }
    };
    let mut text = format!(
        "# Written by cgmig convert from {}: cgroup v2 names (libcgroup 3).\n",
        f.path
    );
    for b in &blocks {
        match b.head.first().map(String::as_str) {
            Some("mount") => text.push_str("# mount {} dropped: v2 has one hierarchy, mounted by systemd.\n"),
            Some("group" | "template") => {
                text.push_str(&format!("\n{} {{\n", b.head.join(" ")));
                let mut v1 = BTreeMap::new();
                for c in &b.children {
                    if c.head.first().is_some_and(|h| h == "perm") {
                        text.push_str(&render_block(c, 1));
                    } else {
                        v1.extend(c.entries.iter().cloned());
                    }
                }
                let (conv, lost) = convert_files(&v1, rules);
                let mut by_ctrl: BTreeMap<String, Vec<V2File>> = BTreeMap::new();
                for (t, v, how) in conv {
                    let ctrl = t.split('.').next().unwrap_or("").to_string();
                    by_ctrl.entry(ctrl).or_default().push((t, v, how));
                }
                for (ctrl, list) in by_ctrl {
                    text.push_str(&format!("\t{ctrl} {{\n"));
                    for (t, v, how) in list {
                        text.push_str(&format!(
                            "\t\t# {how}\n\t\t{t} = \"{}\";\n",
                            v.replace('\n', "\\n")
                        ));
                    }
                    text.push_str("\t}\n");
                }
                text.push_str("}\n");
                for (file, why) in lost {
                    out.notes.push(format!(
                        "{}:{}: {} {file}: {why}",
                        f.path,
                        b.line,
                        b.head.join(" ")
                    ));
                }
            }
            _ => text.push_str(&format!("\n{}", render_block(b, 0))),
        }
    }
    out.files.push(OutFile {
        path: f.path.clone(),
        stage: None,
        original: Some(f.text.clone()),
        text,
    });
}

fn render_block(b: &cgconfig::Block, depth: usize) -> String {
    let ind = "\t".repeat(depth);
    let mut s = format!("{ind}{} {{\n", b.head.join(" "));
    for (k, v) in &b.entries {
        s.push_str(&format!("{ind}\t{k} = {v};\n"));
    }
    for c in &b.children {
        s.push_str(&render_block(c, depth + 1));
    }
    s.push_str(&format!("{ind}}}\n"));
    s
}

/// A boot line with the cgroup parameters replaced by the stage's.
pub fn stage_line(line: &str, stage: &str) -> String {
    let mut kept: Vec<String> = params(line)
        .into_iter()
        .filter(|(p, _)| !BOOT_PARAMS.contains(p))
        .map(|(p, v)| v.map_or_else(|| p.to_string(), |v| format!("{p}={v}")))
        .collect();
    kept.extend(stage.split_whitespace().map(str::to_string));
    kept.join(" ")
}

fn boot_file(f: &ConfigFile, stage: &str) -> Option<String> {
    let mut out = String::new();
    match f.kind.as_str() {
        "grub-default" => {
            let mut seen = false;
            for l in f.text.lines() {
                let t = l.trim();
                if let Some(v) = t.strip_prefix("GRUB_CMDLINE_LINUX=") {
                    seen = true;
                    let v = v.trim_matches(['"', '\'']);
                    out.push_str(&format!("GRUB_CMDLINE_LINUX=\"{}\"\n", stage_line(v, stage)));
                } else if let Some(v) = t.strip_prefix("GRUB_CMDLINE_LINUX_DEFAULT=") {
                    let v = v.trim_matches(['"', '\'']);
                    out.push_str(&format!("GRUB_CMDLINE_LINUX_DEFAULT=\"{}\"\n", stage_line(v, "")));
                } else {
                    out.push_str(l);
                    out.push('\n');
                }
            }
            if !seen && f.path == "/etc/default/grub" {
                out.push_str(&format!("GRUB_CMDLINE_LINUX=\"{stage}\"\n"));
            }
        }
        "bls" => {
            for l in f.text.lines() {
                match l.strip_prefix("options") {
                    Some(v) => out.push_str(&format!("options {}\n", stage_line(v.trim(), stage))),
                    None => {
                        out.push_str(l);
                        out.push('\n');
                    }
                }
            }
        }
        "kernel-cmdline" | "rpi-cmdline" => out = format!("{}\n", stage_line(f.text.trim(), stage)),
        _ => return None,
    }
    (out != f.text).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_directives_use_systemds_formulas() {
        let cases = [
            ("CPUShares", "1024", "CPUWeight=100"),
            ("CPUShares", "512", "CPUWeight=50"),
            ("CPUShares", "2", "CPUWeight=1"),
            ("StartupCPUShares", "262144", "StartupCPUWeight=10000"),
            ("BlockIOWeight", "500", "IOWeight=100"),
            ("BlockIOWeight", "10", "IOWeight=2"),
            (
                "BlockIODeviceWeight",
                "/dev/sda 1000",
                "IODeviceWeight=/dev/sda 200",
            ),
            ("MemoryLimit", "2G", "MemoryMax=2G"),
            (
                "BlockIOReadBandwidth",
                "/dev/sda 10M",
                "IOReadBandwidthMax=/dev/sda 10M",
            ),
            ("BlockIOAccounting", "yes", "IOAccounting=yes"),
        ];
        for (k, v, want) in cases {
            assert_eq!(unit_directive(k, v).unwrap().0, want, "{k}={v}");
        }
        let e = unit_directive("CPUShares", "lots").unwrap_err();
        assert_eq!(e.to_string(), "CPUShares=lots: not a number");
        let e = unit_directive("BlockIODeviceWeight", "/dev/sda x").unwrap_err();
        assert_eq!(e.to_string(), "BlockIODeviceWeight=x: not a number");
        let e = unit_directive("NetClass", "1").unwrap_err();
        assert_eq!(e.to_string(), "NetClass= has no v2 directive");
    }

    #[test]
    fn stage_lines_replace_only_cgroup_parameters() {
        assert_eq!(
            stage_line(
                "ro quiet systemd.unified_cgroup_hierarchy=0 cgroup_no_v1=net_cls",
                "cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1"
            ),
            "ro quiet cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1"
        );
    }
}
