//! Device policies, v1 and converted: what a sequence of
//! `devices.allow`/`devices.deny` writes lets a cgroup open, so a converted
//! policy can be checked to allow exactly what the v1 one did.
//!
//! Two evaluators, each written after its source:
//!
//! * [`V1Policy`]: the v1 `devices` controller (`security/device_cgroup.c`):
//!   a default behaviour (allow or deny) and an exception list. A write
//!   whose first character is `a` sets the behaviour and clears the list
//!   (whatever follows the `a`); another write adds an exception when it
//!   goes against the behaviour (merging access bits into an exception for
//!   the same type/major/minor) or removes access bits from that exception
//!   when it goes with it. Under default-deny a request is allowed when one
//!   exception covers all its access bits; under default-allow it is denied
//!   when any exception shares one of its bits (`match_exception_partial`).
//! * [`LxcPolicy`]: LXC's cgroup2 emulation (`src/lxc/cgroups/cgroup2_devices.c`):
//!   the rules become an eBPF program checked in order, first match wins; a
//!   rule matches when the request's access bits are a subset of the rule's
//!   and its type/major/minor match; a bare `a` sets the default (allow →
//!   default allow, deny → default deny; LXC starts as an allowlist, default
//!   deny); a rule equal to an earlier one (same type, numbers and access
//!   text) flips that one in place instead of being appended.
//!
//! [`differences`] compares the two on every request that can tell them
//! apart: both types, each major and minor a rule names plus one none does,
//! every non-empty set of `r`, `w`, `m`.

use std::collections::BTreeSet;

/// Access bits.
const R: u8 = 1;
const W: u8 = 2;
const M: u8 = 4;
const ALL: u8 = R | W | M;

/// One `TYPE MAJ:MIN ACCESS` rule; `None` is `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `a`, `b` or `c`.
    pub kind: char,
    /// Major, `None` for `*`.
    pub major: Option<u32>,
    /// Minor, `None` for `*`.
    pub minor: Option<u32>,
    /// Access bits.
    pub access: u8,
}

impl Rule {
    /// Parse `TYPE MAJ:MIN ACCESS` (the kernel's and LXC's common syntax;
    /// `a` alone is the global rule).
    pub fn parse(s: &str) -> Result<Rule, String> {
        let bad = || format!("not a device rule (TYPE MAJ:MIN ACCESS): {s:?}");
        let mut it = s.split_whitespace();
        let kind = match it.next() {
            Some("a") => 'a',
            Some("b") => 'b',
            Some("c") => 'c',
            _ => return Err(bad()),
        };
        let Some(nums) = it.next() else {
            return if kind == 'a' {
                Ok(Rule {
                    kind,
                    major: None,
                    minor: None,
                    access: ALL,
                })
            } else {
                Err(bad())
            };
        };
        let (a, b) = nums.split_once(':').ok_or_else(bad)?;
        let num = |x: &str| -> Result<Option<u32>, String> {
            if x == "*" {
                Ok(None)
            } else {
                x.parse::<u32>().map(Some).map_err(|_| bad())
            }
        };
        let (major, minor) = (num(a)?, num(b)?);
        let acc = it.next().ok_or_else(bad)?;
        if it.next().is_some() {
            return Err(bad());
        }
        let mut access = 0;
        for c in acc.chars() {
            access |= match c {
                'r' => R,
                'w' => W,
                'm' => M,
                _ => return Err(bad()),
            };
        }
        if access == 0 || acc.len() > 3 {
            return Err(bad());
        }
        Ok(Rule {
            kind,
            major,
            minor,
            access,
        })
    }

    /// Whether this rule's type and numbers cover a device.
    fn covers(&self, kind: char, major: u32, minor: u32) -> bool {
        (self.kind == 'a' || self.kind == kind)
            && self.major.is_none_or(|m| m == major)
            && self.minor.is_none_or(|m| m == minor)
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = |x: Option<u32>| x.map_or_else(|| "*".to_string(), |v| v.to_string());
        let acc: String = [(R, 'r'), (W, 'w'), (M, 'm')]
            .iter()
            .filter(|(b, _)| self.access & b != 0)
            .map(|(_, c)| *c)
            .collect();
        write!(f, "{} {}:{} {acc}", self.kind, n(self.major), n(self.minor))
    }
}

/// A write to `devices.allow` (`true`) or `devices.deny`, with its text.
pub type Write = (bool, String);

/// The v1 controller's state after a sequence of writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Policy {
    /// Default behaviour: `true` = allow.
    pub default_allow: bool,
    /// Exceptions, in the order they were added.
    pub exceptions: Vec<Rule>,
}

impl V1Policy {
    /// Apply writes in order, from a cgroup that allows everything (a
    /// container's cgroup under the root). An unparsable write is an error
    /// naming it (the kernel refuses it with EINVAL).
    pub fn from_writes(writes: &[Write]) -> Result<V1Policy, String> {
        let mut p = V1Policy {
            default_allow: true,
            exceptions: Vec::new(),
        };
        for (allow, text) in writes {
            // The kernel looks at the first character only: `a …` is global.
            if text.trim_start().starts_with('a') {
                p.default_allow = *allow;
                p.exceptions.clear();
                continue;
            }
            let r = Rule::parse(text)?;
            let same = p
                .exceptions
                .iter()
                .position(|e| e.kind == r.kind && e.major == r.major && e.minor == r.minor);
            if *allow != p.default_allow {
                match same {
                    Some(i) => p.exceptions[i].access |= r.access,
                    None => p.exceptions.push(r),
                }
            } else if let Some(i) = same {
                p.exceptions[i].access &= !r.access;
                if p.exceptions[i].access == 0 {
                    p.exceptions.remove(i);
                }
            }
        }
        Ok(p)
    }

    /// Whether a request for `access` on a device is allowed.
    pub fn allows(&self, kind: char, major: u32, minor: u32, access: u8) -> bool {
        if self.default_allow {
            !self
                .exceptions
                .iter()
                .any(|e| e.covers(kind, major, minor) && e.access & access != 0)
        } else {
            self.exceptions
                .iter()
                .any(|e| e.covers(kind, major, minor) && access & !e.access == 0)
        }
    }

    /// The same policy as LXC's cgroup2 writes: the default first (a bare
    /// `a`), then every exception. Exact for a default-deny policy (allow
    /// rules, subset matching on both sides); a default-allow policy with a
    /// deny rule for only some access bits is not exact (v1 denies a request
    /// sharing any bit, LXC only one within the rule): [`differences`] says so.
    pub fn to_writes(&self) -> Vec<Write> {
        let mut out = vec![(self.default_allow, "a".to_string())];
        out.extend(
            self.exceptions
                .iter()
                .map(|e| (!self.default_allow, e.to_string())),
        );
        out
    }
}

/// LXC's cgroup2 device program after its `lxc.cgroup2.devices.*` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LxcPolicy {
    /// Default when no rule matches: `true` = allow.
    pub default_allow: bool,
    /// `(allow, rule, access text)`, in program order.
    pub rules: Vec<(bool, Rule, String)>,
}

impl LxcPolicy {
    /// Build the program as LXC does from its lines, in order.
    pub fn from_writes(writes: &[Write]) -> Result<LxcPolicy, String> {
        let mut p = LxcPolicy {
            default_allow: false,
            rules: Vec::new(),
        };
        for (allow, text) in writes {
            if text == "a" {
                p.default_allow = *allow;
                continue;
            }
            let r = Rule::parse(text)?;
            let acc = text.split_whitespace().nth(2).unwrap_or("").to_string();
            match p
                .rules
                .iter_mut()
                .find(|(_, e, a)| e.kind == r.kind && e.major == r.major && e.minor == r.minor && *a == acc)
            {
                Some(existing) => existing.0 = *allow,
                None => p.rules.push((*allow, r, acc)),
            }
        }
        Ok(p)
    }

    /// Whether a request is allowed: the first matching rule decides.
    pub fn allows(&self, kind: char, major: u32, minor: u32, access: u8) -> bool {
        self.rules
            .iter()
            .find(|(_, r, _)| r.covers(kind, major, minor) && access & !r.access == 0)
            .map_or(self.default_allow, |(a, _, _)| *a)
    }
}

/// Every request on which the two policies disagree, as text
/// (`c 1:3 w: v1 allows, converted denies`); empty when they agree.
pub fn differences(v1: &V1Policy, v2: &LxcPolicy) -> Vec<String> {
    let numbers = |f: fn(&Rule) -> Option<u32>| -> BTreeSet<u32> {
        let mut s: BTreeSet<u32> = v1
            .exceptions
            .iter()
            .chain(v2.rules.iter().map(|(_, r, _)| r))
            .filter_map(f)
            .collect();
        // One number no rule names stands for all the others.
        let fresh = (0..).find(|n| !s.contains(n)).unwrap_or(u32::MAX);
        s.insert(fresh);
        s
    };
    let (majors, minors) = (numbers(|r| r.major), numbers(|r| r.minor));
    let mut out = Vec::new();
    for kind in ['b', 'c'] {
        for &ma in &majors {
            for &mi in &minors {
                for access in 1..=ALL {
                    let (a, b) = (v1.allows(kind, ma, mi, access), v2.allows(kind, ma, mi, access));
                    if a != b {
                        let r = Rule {
                            kind,
                            major: Some(ma),
                            minor: Some(mi),
                            access,
                        };
                        let say = |x: bool| if x { "allows" } else { "denies" };
                        out.push(format!("{r}: v1 {}, converted {}", say(a), say(b)));
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(allow: bool, s: &str) -> Write {
        (allow, s.to_string())
    }

    /// LXC's usual container policy: deny all, then eight allows. Converted,
    /// all eight stay, and the allowed set is the same.
    #[test]
    fn default_deny_with_eight_allows_converts_exactly() {
        let mut writes = vec![w(false, "a")];
        for r in [
            "c 1:3 rwm",
            "c 1:5 rwm",
            "c 1:7 rwm",
            "c 1:8 rwm",
            "c 1:9 rwm",
            "c 5:0 rwm",
            "c 5:2 rwm",
            "c 136:* rwm",
        ] {
            writes.push(w(true, r));
        }
        let v1 = V1Policy::from_writes(&writes).unwrap();
        assert_eq!(v1.exceptions.len(), 8);
        let conv = v1.to_writes();
        assert_eq!(conv.len(), 9);
        let v2 = LxcPolicy::from_writes(&conv).unwrap();
        assert_eq!(differences(&v1, &v2), Vec::<String>::new());
        assert!(v1.allows('c', 1, 3, R | W));
        assert!(!v1.allows('c', 8, 0, R));
        assert!(v1.allows('c', 136, 42, W));
        // The check can fail: the last rule alone (the old bug: eight
        // copies of the last line) denies /dev/null.
        let collapsed = LxcPolicy::from_writes(&[w(false, "a"), w(true, "c 136:* rwm")]).unwrap();
        let d = differences(&v1, &collapsed);
        assert!(
            d.iter()
                .any(|l| l.starts_with("c 1:3 r: v1 allows, converted denies")),
            "{d:#?}"
        );
    }

    /// LXC's rules keep their order: a later global `deny a` clears v1's
    /// exceptions but not LXC's list, so writing the v1 lines unchanged would
    /// differ; the converted writes (default first) do not.
    #[test]
    fn order_and_global_rules() {
        let writes = [w(true, "c 1:3 rwm"), w(false, "a"), w(true, "c 1:5 r")];
        let v1 = V1Policy::from_writes(&writes).unwrap();
        assert!(!v1.allows('c', 1, 3, R));
        let verbatim = LxcPolicy::from_writes(&writes).unwrap();
        assert!(!differences(&v1, &verbatim).is_empty());
        let conv = LxcPolicy::from_writes(&v1.to_writes()).unwrap();
        assert!(differences(&v1, &conv).is_empty());
        // `a 1:3 r` is global in v1 (first character), a rule in LXC.
        let v1 = V1Policy::from_writes(&[w(false, "a 1:3 r")]).unwrap();
        assert!(v1.exceptions.is_empty() && !v1.default_allow);
    }

    /// A default-allow policy with a partial deny is where LXC's subset
    /// matching differs from v1: the check finds it.
    #[test]
    fn partial_deny_under_default_allow_is_found() {
        let v1 = V1Policy::from_writes(&[w(false, "c 1:3 w")]).unwrap();
        let v2 = LxcPolicy::from_writes(&v1.to_writes()).unwrap();
        let d = differences(&v1, &v2);
        assert!(
            d.iter()
                .any(|l| l.starts_with("c 1:3 rw: v1 denies, converted allows")),
            "{d:#?}"
        );
        // A full deny is exact.
        let v1 = V1Policy::from_writes(&[w(false, "c 1:3 rwm")]).unwrap();
        let v2 = LxcPolicy::from_writes(&v1.to_writes()).unwrap();
        assert!(differences(&v1, &v2).is_empty());
    }

    #[test]
    fn v1_merges_and_removes_access_bits() {
        let v1 = V1Policy::from_writes(&[
            w(false, "a"),
            w(true, "c 1:3 r"),
            w(true, "c 1:3 w"),
            w(false, "c 1:3 r"),
        ])
        .unwrap();
        assert_eq!(v1.exceptions.len(), 1);
        assert_eq!(v1.exceptions[0].to_string(), "c 1:3 w");
        assert!(Rule::parse("c 1:3").is_err());
        assert!(Rule::parse("x 1:3 r").is_err());
        assert!(Rule::parse("c 1:3 rx").is_err());
        assert!(Rule::parse("c 1:3 r\nc 1:5 r").is_err());
    }
}
