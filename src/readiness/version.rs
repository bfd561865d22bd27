//! Version strings as the detectors find them, made comparable.
//!
//! Versions come in many spellings (`1.8.0_372`, `go1.22.5`, `v1.4.0`,
//! `5:20.10.24~3-0~debian-bookworm`, `1.0.0-rc93`, `11.0.16+8`); each is
//! reduced to the list of its numbers, which is what the reference's
//! thresholds compare. Pre-release tags (`-rc93`) sort before the release.

use std::cmp::Ordering;

/// A comparable version: its numeric components, and a pre-release number
/// when there is one (`rc93` → `Some(93)`; releases sort after every pre-release).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// Numbers of the release part (`1.0.0`).
    pub nums: Vec<u64>,
    /// Pre-release ordinal (`rc93`), `None` for a release.
    pub pre: Option<u64>,
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let n = self.nums.len().max(other.nums.len());
        for i in 0..n {
            let a = self.nums.get(i).copied().unwrap_or(0);
            let b = other.nums.get(i).copied().unwrap_or(0);
            match a.cmp(&b) {
                Ordering::Equal => {}
                o => return o,
            }
        }
        match (self.pre, other.pre) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(a), Some(b)) => a.cmp(&b),
        }
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Parse a generic version: drop a Debian epoch (`5:`), a `v`/`go` prefix,
/// stop at the build/packaging suffix (`+`, `~`, `-` followed by a non-`rc`).
pub fn parse(s: &str) -> Option<Version> {
    let s = s.trim().trim_matches('"');
    let s = match s.split_once(':') {
        Some((epoch, rest)) if epoch.chars().all(|c| c.is_ascii_digit()) => rest,
        _ => s,
    };
    let s = s.trim_start_matches("go").trim_start_matches('v');
    // Debian spells a pre-release `1.0.0~rc93`.
    let s = s.replacen("~rc", "-rc", 1);
    let end = s.find(['+', '~', ' ']).unwrap_or(s.len());
    let s = &s[..end];

    let (rel, pre) = match s.split_once('-') {
        Some((r, p)) => (r, pre_ordinal(p)),
        None => (s, None),
    };
    // `1.0.0-rc.1` and `1.0.0rc1` both mean a pre-release.
    let (rel, pre) = match rel.find("rc") {
        Some(i) => (&rel[..i], pre.or_else(|| pre_ordinal(&rel[i..]))),
        None => (rel, pre),
    };
    let nums: Vec<u64> = rel.split(['.', '_']).map_while(|p| p.parse().ok()).collect();
    if nums.is_empty() {
        return None;
    }
    Some(Version { nums, pre })
}

fn pre_ordinal(p: &str) -> Option<u64> {
    let p = p.strip_prefix("rc")?.trim_start_matches('.');
    Some(
        p.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap_or(0),
    )
}

/// `a < b`, both parseable; `None` when either is not a version.
pub fn less(a: &str, b: &str) -> Option<bool> {
    Some(parse(a)? < parse(b)?)
}

/// A Java version as `(feature, update)`: `1.8.0_372` → `(8, 372)`,
/// `11.0.16` → `(11, 16)`, `17` → `(17, 0)`.
pub fn java(s: &str) -> Option<(u64, u64)> {
    let v = s.trim().trim_matches('"');
    let v = v.split(['+', '-']).next()?;
    // Debian's openjdk-8 package version: `8u372-ga-1`.
    if let Some((feature, update)) = v.split_once('u')
        && let (Ok(f), Ok(u)) = (feature.parse(), update.parse())
    {
        return Some((f, u));
    }
    if let Some(rest) = v.strip_prefix("1.") {
        // `1.8.0_372`, or rpm's `1.8.0.372.b07` (java-1.8.0-openjdk).
        let (major, update) = match rest.split_once('_') {
            Some((m, u)) => (m, u),
            None => (rest, rest.split('.').nth(2).unwrap_or("0")),
        };
        let feature = major.split('.').next()?.parse().ok()?;
        return Some((feature, update.parse().ok()?));
    }
    let mut it = v.split('.');
    let feature = it.next()?.parse().ok()?;
    let _interim = it.next();
    let update = it.next().and_then(|u| u.parse().ok()).unwrap_or(0);
    Some((feature, update))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_compare_by_their_numbers() {
        let cases: &[(&str, &str, bool)] = &[
            ("v1.4.0", "v1.5.1", true),
            ("v1.5.1", "v1.5.1", false),
            ("go1.24.3", "go1.25", true),
            ("go1.25.1", "1.25", false),
            ("5:19.03.15~3-0~debian-buster", "20.10", true),
            ("5:20.10.24~3-0~debian-bookworm", "20.10", false),
            ("1.0.0-rc92", "1.0.0-rc93", true),
            ("1.0.0-rc93", "1.0.0", true),
            ("1.1.12", "1.0.0-rc93", false),
            ("1.0.0~rc92+ds1-5", "1.0.0-rc93", true),
            ("1.0.0~rc93+ds1-5", "1.0.0-rc93", false),
            ("1.28.2-1.1", "1.25", false),
            ("v0.42.0", "v0.43.0", true),
        ];
        for (a, b, want) in cases {
            assert_eq!(less(a, b), Some(*want), "{a} < {b}");
        }
        assert_eq!(less("(devel)", "1.0"), None);
    }

    #[test]
    fn java_versions() {
        assert_eq!(java("\"1.8.0_372\""), Some((8, 372)));
        assert_eq!(java("1.8.0_292-b10"), Some((8, 292)));
        assert_eq!(java("11.0.14"), Some((11, 14)));
        assert_eq!(java("11.0.16+8"), Some((11, 16)));
        assert_eq!(java("17"), Some((17, 0)));
        assert_eq!(java("21.0.2"), Some((21, 2)));
        assert_eq!(java("8u372-ga-1"), Some((8, 372)));
        assert_eq!(java("junk"), None);
        assert_eq!(java("1.8.0.292.b10-1.el7_9"), Some((8, 292)));
        assert_eq!(java("1.8.0"), Some((8, 0)));
    }
}
