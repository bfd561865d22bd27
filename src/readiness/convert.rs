//! `cgmig convert`: the v2 configuration a host needs, as files to review.
//!
//! Pure: from the readiness inventory, the rules and the plan's boot stages
//! it computes every file to install, with the original text when the file
//! replaces one, so the result can be shown as a diff. Every generated file
//! is *built* from typed values and rendered with its reader's syntax rules,
//! never concatenated from input text: a value that cannot be written safely
//! (a newline, a control character, a trailing backslash, a quote the format
//! cannot hold) is refused with its file and line, and the file is not
//! written.
//!
//! * a systemd drop-in `50-cgmig-v2.conf` per unit with legacy directives
//!   (read by systemd after `systemctl daemon-reload`), using systemd's own
//!   formulas (`CPUWeight = clamp(shares*100/1024, 1, 10000)`, `IOWeight =
//!   clamp(w*100/500, 1, 10000)`), each value parsed with the rules systemd
//!   applies to it (a value systemd already ignores is said, not copied),
//!   with a comment stating its source line and formula;
//! * each LXC config with its `lxc.cgroup.*` keys turned into
//!   `lxc.cgroup2.*` (read by `lxc-start`, LXC ≥ 4.0 on the unified
//!   hierarchy) through the same conversion rules the audit uses for cgroup
//!   files. Every line is kept: repeated keys are a list, in order; sizes are
//!   read with the kernel's `memparse` (`192M`); the device policy is
//!   rebuilt from what the v1 writes leave in force and checked to allow
//!   exactly what v1 allowed ([`super::devices`]);
//! * a v2 `cgconfig.conf` (read by `cgconfigparser`, libcgroup ≥ 3.0), same
//!   conversions, `mount {}` dropped, names and values quoted as libcgroup's
//!   lexer reads them;
//! * for each boot stage of the plan, the boot-line files the distribution
//!   uses (`/etc/default/grub` `GRUB_CMDLINE_LINUX`, BLS `options`,
//!   `/etc/kernel/cmdline`, `cmdline.txt`) with the stage's parameters.

use std::collections::BTreeMap;

use serde::Serialize;

use super::config::{LxcLine, cgconfig, lxc_lines};
use super::devices::{self, LxcPolicy, V1Policy};
use super::evaluate_config::{params, unit_of, v2_counterpart};
use super::unit::{RESOURCE_SECTIONS, is_valid_unit_name};
use super::{ConfigFile, Readiness};
use crate::model::Controller;
use crate::model::value::memparse;
use crate::rules::convert::{BlkioFormula, SharesFormula, blkio_weight_to_io_weight, shares_to_weight};
use crate::rules::{RuleSet, convert_setting};

/// One file to install.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutFile {
    /// Where it goes on the host (absolute, normalized: checked before
    /// anything is written).
    pub path: String,
    /// The boot stage it belongs to (`None`: install with the switch).
    pub stage: Option<usize>,
    /// The file it replaces, if any.
    pub original: Option<String>,
    /// The new contents.
    pub text: String,
    /// The program that reads it (`systemd`, `lxc-start (LXC >= 4.0)`, ...).
    pub reader: String,
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

/// Who reads each kind of generated file.
const READ_BY_SYSTEMD: &str = "systemd (systemctl daemon-reload)";
const READ_BY_LXC: &str = "lxc-start (LXC >= 4.0, lxc.cgroup2.* keys)";
const READ_BY_LIBCGROUP: &str = "cgconfigparser (libcgroup >= 3.0, the cgconfig service)";
const READ_BY_BOOT: &str = "the boot loader (update-grub / grubby / kernel-install)";

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
            match boot_file(f, line) {
                Ok(Some(text)) => out.files.push(OutFile {
                    path: f.path.clone(),
                    stage: Some(*n),
                    original: Some(f.text.clone()),
                    text,
                    reader: READ_BY_BOOT.into(),
                }),
                Ok(None) => {}
                Err(e) => out.notes.push(format!("{}: {e}: not converted", f.path)),
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
    /// The number is outside what systemd accepts for the directive (so
    /// systemd ignores the line already).
    #[error("{key}={value}: out of range {min}..={max} (systemd ignores this line)")]
    OutOfRange {
        /// The directive.
        key: String,
        /// The value as written.
        value: String,
        /// Smallest value systemd accepts.
        min: u64,
        /// Largest value systemd accepts.
        max: u64,
    },
    /// `BlockIODeviceWeight=` without a weight after the device.
    #[error("{key}={value}: expected 'DEVICE WEIGHT'")]
    NoWeight {
        /// The directive.
        key: String,
        /// The value as written.
        value: String,
    },
    /// A value systemd's parser for this directive refuses (it ignores the
    /// line with a warning, so the unit runs without it already).
    #[error("{key}={value}: not a valid {what} (systemd ignores this line)")]
    Invalid {
        /// The directive.
        key: String,
        /// The value as written (control characters escaped).
        value: String,
        /// What systemd expects.
        what: &'static str,
    },
}

/// systemd's `parse_size()`: a decimal number with an optional fraction,
/// optional blanks, and an optional suffix (`B K M G T P E`, either the
/// bare letter or with `iB`/`B` after it); `None` if it is not one.
fn is_systemd_size(v: &str) -> bool {
    let num_end = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (num, rest) = v.split_at(num_end);
    let digits_ok =
        !num.is_empty() && num.matches('.').count() <= 1 && !num.starts_with('.') && !num.ends_with('.');
    let rest = rest.trim_start_matches([' ', '\t']);
    let suffix_ok = rest.is_empty()
        || ["B", "K", "M", "G", "T", "P", "E"].iter().any(|s| {
            rest == *s || (s.len() == 1 && *s != "B" && (rest == format!("{s}iB") || rest == format!("{s}B")))
        });
    digits_ok && suffix_ok
}

/// systemd's `parse_permyriad()`/percent: `N%`, `N.N%`, `N‱`.
fn is_systemd_percent(v: &str) -> bool {
    let Some(n) = v.strip_suffix('%').or_else(|| v.strip_suffix('‱')) else {
        return false;
    };
    !n.is_empty() && n.matches('.').count() <= 1 && n.chars().all(|c| c.is_ascii_digit() || c == '.')
}

/// A device path as systemd's `BlockIO*`/`IO*` directives take it: absolute,
/// one word, no quote, backslash or control character (so it renders as
/// itself). Specifiers (`%`) stay: systemd expands them in the drop-in as it
/// did in the unit.
fn is_plain_device_path(p: &str) -> bool {
    p.starts_with('/')
        && p.len() <= 4096
        && !p
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "\"'\\".contains(c))
}

/// systemd's `parse_boolean()`, as `yes`/`no`.
fn systemd_boolean(v: &str) -> Option<&'static str> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "yes" | "y" | "true" | "t" | "on" => Some("yes"),
        "0" | "no" | "n" | "false" | "f" | "off" => Some("no"),
        _ => None,
    }
}

/// A value with control characters escaped, for messages and comments.
fn shown(v: &str) -> String {
    crate::model::path::from_bytes(v.as_bytes())
}

/// The v2 line for one legacy unit directive, with its comment. The value
/// is parsed the way systemd parses that directive; the line is built from
/// the parsed parts.
pub fn unit_directive(key: &str, value: &str) -> Result<(String, String), DirectiveError> {
    let target = v2_counterpart(key).ok_or_else(|| DirectiveError::NoCounterpart { key: key.into() })?;
    let v = value.trim();
    let num = |v: &str| {
        v.parse::<u64>().map_err(|_| DirectiveError::NotANumber {
            key: key.into(),
            value: shown(v),
        })
    };
    let range = |n: u64, min: u64, max: u64| {
        if (min..=max).contains(&n) {
            Ok(n)
        } else {
            Err(DirectiveError::OutOfRange {
                key: key.into(),
                value: shown(v),
                min,
                max,
            })
        }
    };
    let invalid = |what: &'static str| DirectiveError::Invalid {
        key: key.into(),
        value: shown(v),
        what,
    };
    let device_and = |what: &'static str| -> Result<(&str, &str), DirectiveError> {
        let (dev, rest) = v
            .split_once([' ', '\t'])
            .ok_or_else(|| DirectiveError::NoWeight {
                key: key.into(),
                value: shown(v),
            })?;
        if !is_plain_device_path(dev) {
            return Err(invalid(what));
        }
        Ok((dev, rest.trim()))
    };
    let (new, how) = match key {
        "CPUShares" | "StartupCPUShares" if !v.is_empty() => {
            // cg_cpu_shares_parse(): 2..=262144.
            let n = range(num(v)?, 2, 262_144)?;
            let w = shares_to_weight(n, SharesFormula::Systemd).ok_or_else(|| invalid("CPU shares value"))?;
            (
                w.to_string(),
                format!("systemd cgroup_cpu_shares_to_weight: clamp({n} * 100 / 1024, 1, 10000)"),
            )
        }
        "BlockIOWeight" | "StartupBlockIOWeight" if !v.is_empty() => {
            // cg_blkio_weight_parse(): 10..=1000.
            let n = range(num(v)?, 10, 1000)?;
            let w = blkio_weight_to_io_weight(n, BlkioFormula::Systemd)
                .ok_or_else(|| invalid("block I/O weight"))?;
            (
                w.to_string(),
                format!("systemd cgroup_weight_blkio_to_io: clamp({n} * 100 / 500, 1, 10000)"),
            )
        }
        "BlockIODeviceWeight" if !v.is_empty() => {
            let (dev, w) = device_and("'DEVICE WEIGHT' (absolute device path)")?;
            let n = range(num(w)?, 10, 1000)?;
            let w = blkio_weight_to_io_weight(n, BlkioFormula::Systemd)
                .ok_or_else(|| invalid("block I/O weight"))?;
            (
                format!("{dev} {w}"),
                "systemd cgroup_weight_blkio_to_io: clamp(w * 100 / 500, 1, 10000)".into(),
            )
        }
        "BlockIOReadBandwidth" | "BlockIOWriteBandwidth" if !v.is_empty() => {
            let (dev, bytes) = device_and("'DEVICE BYTES' (absolute device path)")?;
            if !(is_systemd_size(bytes) || bytes == "infinity") {
                return Err(invalid("'DEVICE BYTES' bandwidth"));
            }
            (
                format!("{dev} {bytes}"),
                "value copied (systemd translates it unchanged)".into(),
            )
        }
        "MemoryLimit" if !v.is_empty() => {
            if !(v == "infinity" || is_systemd_size(v) || is_systemd_percent(v)) {
                return Err(invalid(
                    "memory size (bytes with K/M/G/T/P/E, a percentage, or infinity)",
                ));
            }
            (
                v.to_string(),
                "value copied (systemd translates it unchanged)".into(),
            )
        }
        "BlockIOAccounting" if !v.is_empty() => (
            systemd_boolean(v).ok_or_else(|| invalid("boolean"))?.to_string(),
            "value copied (systemd translates it unchanged)".into(),
        ),
        // An empty assignment resets the directive: the v2 one is reset too.
        _ if v.is_empty() => (String::new(), "empty: resets the directive".into()),
        _ => return Err(DirectiveError::NoCounterpart { key: key.into() }),
    };
    Ok((format!("{target}={new}"), how))
}

/// A drop-in, built from typed parts and rendered with systemd's syntax.
#[derive(Debug, Default)]
struct DropIn {
    /// Section → (comment, `Key=value`) lines.
    sections: BTreeMap<String, Vec<(String, String)>>,
}

/// Why a generated line cannot be written into a file of its format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unsafe(String);

/// Check one `Key=value` line of a unit file: systemd would read it as
/// exactly this one assignment (no newline or carriage return starting
/// another line, no control character, no trailing backslash continuing
/// it onto the next line).
fn unit_line_ok(line: &str) -> Result<(), Unsafe> {
    if line.chars().any(|c| c.is_control()) {
        return Err(Unsafe(format!(
            "{}: a control character or line break",
            shown(line)
        )));
    }
    if line.ends_with('\\') {
        return Err(Unsafe(format!(
            "{line}: a trailing backslash would continue the line"
        )));
    }
    Ok(())
}

/// A comment line: control characters escaped, so it stays one line.
fn comment(text: &str) -> String {
    format!("# {}", shown(text))
}

impl DropIn {
    fn render(&self, unit: &str) -> Result<String, Unsafe> {
        let mut text = format!(
            "# Written by cgmig convert: cgroup v2 replacements for {}'s v1 directives,\n\
             # which systemd ignores on the unified hierarchy. Read by {READ_BY_SYSTEMD}.\n",
            shown(unit)
        );
        for (section, lines) in &self.sections {
            if !RESOURCE_SECTIONS.contains(&section.as_str()) {
                return Err(Unsafe(format!(
                    "[{}]: not a section with resource control",
                    shown(section)
                )));
            }
            text.push_str(&format!("\n[{section}]\n"));
            for (c, line) in lines {
                unit_line_ok(line)?;
                text.push_str(&comment(c));
                text.push('\n');
                text.push_str(line);
                text.push('\n');
            }
        }
        Ok(text)
    }
}

fn units(r: &Readiness, out: &mut Output) {
    // unit → keys present, so a unit that already has the v2 directive is left alone.
    let mut present: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for s in r.settings.iter().filter(|s| s.family == "unit") {
        present.entry(unit_of(&s.file)).or_default().push(s.key.as_str());
    }
    let mut by_unit: BTreeMap<String, DropIn> = BTreeMap::new();
    for s in r.settings.iter().filter(|s| s.family == "unit") {
        let Some(v2) = v2_counterpart(&s.key) else {
            continue;
        };
        let unit = unit_of(&s.file);
        if present.get(&unit).is_some_and(|k| k.contains(&v2)) {
            continue;
        }
        let at = format!("{}:{}", shown(&s.file), s.line.unwrap_or(0));
        if !is_valid_unit_name(&unit) {
            out.notes.push(format!(
                "{at}: {:?} is not a valid unit name: not converted",
                shown(&unit)
            ));
            continue;
        }
        let section = s.section.clone().unwrap_or_else(|| "Service".into());
        if !RESOURCE_SECTIONS.contains(&section.as_str()) {
            out.notes.push(format!(
                "{at}: {}= in [{}], a section without resource control: not converted",
                s.key,
                shown(&section)
            ));
            continue;
        }
        match unit_directive(&s.key, &s.value) {
            Ok((line, how)) => by_unit
                .entry(unit)
                .or_default()
                .sections
                .entry(section)
                .or_default()
                .push((format!("{}={} ({at}): {how}", s.key, s.value.trim()), line)),
            Err(e) => out.notes.push(format!("{at}: {e}")),
        }
    }
    for (unit, d) in by_unit {
        match d.render(&unit) {
            Ok(text) => out.files.push(OutFile {
                path: format!("/etc/systemd/system/{unit}.d/{DROPIN}"),
                stage: None,
                original: None,
                text,
                reader: READ_BY_SYSTEMD.into(),
            }),
            Err(e) => out.notes.push(format!("{unit}: {e}: drop-in not written")),
        }
    }
}

/// A converted v2 file: `(file, value, formula note)`.
pub type V2File = (String, String, String);

/// Whether the kernel reads writes to this v1 file with `memparse()`
/// (`page_counter_memparse`: the memory and hugetlb byte limits).
fn is_memparse_file(file: &str) -> bool {
    (file.starts_with("memory.") || file.starts_with("hugetlb.")) && file.ends_with("limit_in_bytes")
}

/// A configured v1 value as the kernel stores it: sizes read with
/// `memparse` (`192M` → `201326592`; `-1` stays unlimited), other values
/// trimmed. The error says what the kernel expects.
pub fn kernel_value(file: &str, value: &str) -> Result<String, String> {
    let v = value.trim();
    if is_memparse_file(file) && v != "-1" {
        return memparse(v).map(|n| n.to_string()).map_err(|e| e.to_string());
    }
    Ok(v.to_string())
}

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

/// Render one LXC `key = value` line that LXC reads back as exactly this
/// key and value: one line, no control character, no surrounding blanks or
/// quotes LXC would strip.
pub fn lxc_kv(key: &str, value: &str) -> Result<String, Unsafe> {
    let key_ok = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !key_ok {
        return Err(Unsafe(format!("{}: not an LXC key", shown(key))));
    }
    if value.chars().any(char::is_control) {
        return Err(Unsafe(format!(
            "{key} = {}: a control character or line break",
            shown(value)
        )));
    }
    if value != value.trim()
        || (value.len() > 1
            && ['"', '\'']
                .iter()
                .any(|q| value.starts_with(*q) && value.ends_with(*q)))
    {
        return Err(Unsafe(format!(
            "{key} = {value}: LXC would strip its blanks or quotes"
        )));
    }
    Ok(format!("{key} = {value}"))
}

/// The converted lines of one LXC config's cgroup keys, or why the file
/// cannot be converted safely.
fn lxc_block(f: &ConfigFile, lines: &[LxcLine], rules: &RuleSet, out: &mut Output) -> Result<String, Unsafe> {
    let at = |l: &LxcLine| format!("{}:{}", shown(&f.path), l.line);
    // Settings: each line is a write, so the last value of a file is what
    // the kernel holds; sizes read as the kernel reads them.
    let mut v1: BTreeMap<String, String> = BTreeMap::new();
    let mut writes: Vec<devices::Write> = Vec::new();
    for l in lines {
        let Some(file) = l.key.strip_prefix("lxc.cgroup.") else {
            continue;
        };
        match file {
            "devices.allow" | "devices.deny" => writes.push((file == "devices.allow", l.value.clone())),
            _ => match kernel_value(file, &l.value) {
                Ok(v) => {
                    v1.insert(file.to_string(), v);
                }
                Err(e) => out
                    .notes
                    .push(format!("{}: {}: {e}: not converted", at(l), shown(&l.key))),
            },
        }
    }
    let (conv, lost) = convert_files(&v1, rules);
    for (file, why) in &lost {
        out.notes
            .push(format!("{}: lxc.cgroup.{file}: {why}", shown(&f.path)));
    }
    let mut text = String::new();
    for (target, value, how) in &conv {
        for v in value.lines() {
            text.push_str(&comment(&format!("{target}: {how}")));
            text.push('\n');
            text.push_str(&lxc_kv(&format!("lxc.cgroup2.{target}"), v)?);
            text.push('\n');
        }
    }
    if !writes.is_empty() {
        let policy =
            V1Policy::from_writes(&writes).map_err(|e| Unsafe(format!("{}: {e}", shown(&f.path))))?;
        let new = policy.to_writes();
        let lxc = LxcPolicy::from_writes(&new).map_err(Unsafe)?;
        let diff = devices::differences(&policy, &lxc);
        if let Some(first) = diff.first() {
            return Err(Unsafe(format!(
                "{}: LXC's cgroup2 device rules cannot express this v1 device policy exactly ({first}; {} requests differ)",
                shown(&f.path),
                diff.len()
            )));
        }
        text.push_str(&comment(&format!(
            "devices: the v1 policy in force after its {} write(s), checked to allow exactly the same devices (LXC emulates it with eBPF on v2)",
            writes.len()
        )));
        text.push('\n');
        for (allow, rule) in new {
            let key = if allow {
                "lxc.cgroup2.devices.allow"
            } else {
                "lxc.cgroup2.devices.deny"
            };
            text.push_str(&lxc_kv(key, &rule)?);
            text.push('\n');
        }
    }
    Ok(text)
}

fn lxc(f: &ConfigFile, rules: &RuleSet, out: &mut Output) {
    let lines = lxc_lines(&f.text);
    let block = match lxc_block(f, &lines, rules, out) {
        Ok(b) => b,
        Err(e) => {
            out.notes.push(format!("{e}: not converted"));
            return;
        }
    };
    let cgroup_lines: Vec<usize> = lines
        .iter()
        .filter(|l| l.key.starts_with("lxc.cgroup."))
        .map(|l| l.line)
        .collect();
    let mut text = format!("# Converted by cgmig convert for cgroup v2: read by {READ_BY_LXC}.\n");
    let mut written = false;
    for (i, l) in f.text.split('\n').enumerate() {
        if i + 1 == f.text.split('\n').count() && l.is_empty() {
            break; // the final newline
        }
        if cgroup_lines.contains(&(i + 1)) {
            text.push_str(&comment(&format!("cgmig convert: v1 only, ignored on v2: {l}")));
            text.push('\n');
            if !written {
                written = true;
                text.push_str(&block);
            }
        } else {
            text.push_str(l);
            text.push('\n');
        }
    }
    out.files.push(OutFile {
        path: f.path.clone(),
        stage: None,
        original: Some(f.text.clone()),
        text,
        reader: READ_BY_LXC.into(),
    });
}

/// A name or value as libcgroup's lexer reads it back as one token: bare
/// when it is made of the characters of its `ID` token, else in double
/// quotes (a quoted token cannot hold `"`; a line break or control
/// character is refused too).
pub fn cgconfig_token(s: &str) -> Result<String, Unsafe> {
    let bare = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-/.,%@\\".contains(&b));
    if bare {
        return Ok(s.to_string());
    }
    if s.contains('"') || s.chars().any(char::is_control) {
        return Err(Unsafe(format!(
            "{}: libcgroup cannot read a quote, line break or control character in a value",
            shown(s)
        )));
    }
    Ok(format!("\"{s}\""))
}

fn cgconfig_v2(f: &ConfigFile, rules: &RuleSet, out: &mut Output) {
    match cgconfig_text(f, rules, out) {
        Ok(text) => out.files.push(OutFile {
            path: f.path.clone(),
            stage: None,
            original: Some(f.text.clone()),
            text,
            reader: READ_BY_LIBCGROUP.into(),
        }),
        Err(e) => out.notes.push(format!("{e}: not converted")),
    }
}

fn cgconfig_text(f: &ConfigFile, rules: &RuleSet, out: &mut Output) -> Result<String, Unsafe> {
    let blocks =
        cgconfig::parse(&f.text).map_err(|(line, e)| Unsafe(format!("{}:{line}: {e}", shown(&f.path))))?;
    let mut text = format!(
        "# Written by cgmig convert from {}: cgroup v2 names, read by {READ_BY_LIBCGROUP}.\n",
        shown(&f.path)
    );
    for b in &blocks {
        let at = format!("{}:{}", shown(&f.path), b.line);
        let loc = |line: usize| move |e: Unsafe| Unsafe(format!("{}:{line}: {}", shown(&f.path), e.0));
        match b.head.first().map(String::as_str) {
            Some("mount") => text.push_str("# mount {} dropped: v2 has one hierarchy, mounted by systemd.\n"),
            Some("group" | "template") => {
                let head: Vec<String> = b
                    .head
                    .iter()
                    .map(|h| cgconfig_token(h))
                    .collect::<Result<_, _>>()?;
                text.push_str(&format!("\n{} {{\n", head.join(" ")));
                let mut v1 = BTreeMap::new();
                for c in &b.children {
                    if c.head.first().is_some_and(|h| h == "perm") {
                        text.push_str(&render_block(c, 1).map_err(loc(c.line))?);
                        continue;
                    }
                    let mut seen: Vec<&str> = Vec::new();
                    for (k, v) in &c.entries {
                        if seen.contains(&k.as_str()) {
                            out.notes.push(format!(
                                "{}:{}: {k} is set more than once in this group; the last value is converted",
                                shown(&f.path),
                                c.line
                            ));
                        }
                        seen.push(k);
                        match kernel_value(k, v) {
                            Ok(v) => {
                                v1.insert(k.clone(), v);
                            }
                            Err(e) => out.notes.push(format!(
                                "{}:{}: {k}: {e}: not converted",
                                shown(&f.path),
                                c.line
                            )),
                        }
                    }
                }
                let (conv, lost) = convert_files(&v1, rules);
                let mut by_ctrl: BTreeMap<String, Vec<V2File>> = BTreeMap::new();
                for (t, v, how) in conv {
                    let ctrl = t.split('.').next().unwrap_or("").to_string();
                    by_ctrl.entry(ctrl).or_default().push((t, v, how));
                }
                for (ctrl, list) in by_ctrl {
                    text.push_str(&format!("\t{} {{\n", cgconfig_token(&ctrl).map_err(loc(b.line))?));
                    for (t, v, how) in list {
                        // A multi-line v2 value (io.max per device) is one
                        // write per line: libcgroup writes each value once,
                        // so only single-line values can be expressed.
                        if v.contains('\n') {
                            out.notes.push(format!(
                                "{at}: {t}: a value of several lines cannot be one libcgroup value: not converted"
                            ));
                            continue;
                        }
                        text.push_str(&format!("\t\t{}\n", comment(&how)));
                        text.push_str(&format!(
                            "\t\t{} = {};\n",
                            cgconfig_token(&t)?,
                            cgconfig_token(&v)?
                        ));
                    }
                    text.push_str("\t}\n");
                }
                text.push_str("}\n");
                for (file, why) in lost {
                    out.notes.push(format!(
                        "{at}: {} {file}: {why}",
                        b.head.iter().map(|h| shown(h)).collect::<Vec<_>>().join(" ")
                    ));
                }
            }
            _ => text.push_str(&format!("\n{}", render_block(b, 0).map_err(loc(b.line))?)),
        }
    }
    Ok(text)
}

fn render_block(b: &cgconfig::Block, depth: usize) -> Result<String, Unsafe> {
    let ind = "\t".repeat(depth);
    let head: Vec<String> = b
        .head
        .iter()
        .map(|h| cgconfig_token(h))
        .collect::<Result<_, _>>()?;
    let mut s = format!("{ind}{} {{\n", head.join(" "));
    for (k, v) in &b.entries {
        s.push_str(&format!(
            "{ind}\t{} = {};\n",
            cgconfig_token(k)?,
            cgconfig_token(v)?
        ));
    }
    for c in &b.children {
        s.push_str(&render_block(c, depth + 1)?);
    }
    s.push_str(&format!("{ind}}}\n"));
    Ok(s)
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

/// A boot line that its file holds as one line: no control character or
/// line break; in `/etc/default/grub` (a shell file that `grub-mkconfig`
/// sources) also nothing the shell expands inside double quotes.
fn boot_line_ok(line: &str, shell: bool) -> Result<(), Unsafe> {
    if line.chars().any(char::is_control) {
        return Err(Unsafe(format!(
            "{}: a control character or line break in a boot line",
            shown(line)
        )));
    }
    if shell && line.contains(['"', '$', '`', '\\']) {
        return Err(Unsafe(format!(
            "{line}: a quote, '$', '`' or backslash the shell would expand in GRUB_CMDLINE_LINUX"
        )));
    }
    Ok(())
}

fn boot_file(f: &ConfigFile, stage: &str) -> Result<Option<String>, Unsafe> {
    let mut out = String::new();
    match f.kind.as_str() {
        "grub-default" => {
            let mut seen = false;
            for l in f.text.lines() {
                let t = l.trim();
                let var = if t.starts_with("GRUB_CMDLINE_LINUX=") {
                    seen = true;
                    Some(("GRUB_CMDLINE_LINUX", stage))
                } else if t.starts_with("GRUB_CMDLINE_LINUX_DEFAULT=") {
                    Some(("GRUB_CMDLINE_LINUX_DEFAULT", ""))
                } else {
                    None
                };
                match var {
                    Some((name, add)) => {
                        let v = t[name.len() + 1..].trim_matches(['"', '\'']);
                        let line = stage_line(v, add);
                        boot_line_ok(&line, true)?;
                        out.push_str(&format!("{name}=\"{line}\"\n"));
                    }
                    None => {
                        out.push_str(l);
                        out.push('\n');
                    }
                }
            }
            if !seen && f.path == "/etc/default/grub" {
                boot_line_ok(stage, true)?;
                out.push_str(&format!("GRUB_CMDLINE_LINUX=\"{stage}\"\n"));
            }
        }
        "bls" => {
            for l in f.text.lines() {
                match l.strip_prefix("options") {
                    Some(v) => {
                        let line = stage_line(v.trim(), stage);
                        boot_line_ok(&line, false)?;
                        out.push_str(&format!("options {line}\n"));
                    }
                    None => {
                        out.push_str(l);
                        out.push('\n');
                    }
                }
            }
        }
        "kernel-cmdline" | "rpi-cmdline" => {
            let line = stage_line(f.text.trim(), stage);
            boot_line_ok(&line, false)?;
            out = format!("{line}\n");
        }
        _ => return Ok(None),
    }
    Ok((out != f.text).then_some(out))
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
