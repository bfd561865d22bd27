//! Typed values of cgroup interface files, parsed at one boundary.
//!
//! The snapshot keeps every setting as the raw text the kernel printed (so a
//! snapshot is a faithful record), and every consumer that needs meaning calls
//! the parsers here. Sentinels never leak: v1's "unlimited" (a page-aligned
//! `LONG_MAX`, or `-1` on write) and v2's `max` both become [`Limit::Max`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A value that could not be parsed; names the text and what was expected.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("invalid {expected}: {text:?}")]
pub struct ValueError {
    /// What the parser expected ("byte limit", "device number", ...).
    pub expected: &'static str,
    /// The offending text.
    pub text: String,
}

fn err(expected: &'static str, text: &str) -> ValueError {
    ValueError {
        expected,
        text: text.to_string(),
    }
}

/// The smallest value v1 prints for "unlimited".
///
/// v1 stores `PAGE_COUNTER_MAX` pages and prints it in bytes: `LONG_MAX`
/// rounded down to the page size, 9223372036854771712 on 4 KiB pages. Other
/// page sizes (16/64 KiB on arm64/ppc64) give slightly smaller numbers, so any
/// value within 1 MiB of `LONG_MAX` is treated as unlimited (libcgroup uses the
/// 4 KiB value only, which misreads 64 KiB-page hosts).
pub const V1_UNLIMITED_FLOOR: u64 = (i64::MAX as u64) - (1 << 20) + 1;

/// The exact value a 4 KiB-page v1 kernel prints for an unlimited limit.
pub const V1_UNLIMITED_4K: u64 = 9_223_372_036_854_771_712;

/// A byte (or count) limit: unlimited, or a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Limit {
    /// No limit (`max` in v2, page-aligned `LONG_MAX` or `-1` in v1).
    Max,
    /// A finite value.
    Bytes(u64),
}

impl Limit {
    /// The finite value, if any.
    pub fn bytes(self) -> Option<u64> {
        match self {
            Limit::Max => None,
            Limit::Bytes(b) => Some(b),
        }
    }
}

impl FromStr for Limit {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        let t = s.trim();
        match t {
            "max" | "-1" => Ok(Limit::Max),
            _ => {
                let v: u64 = t.parse().map_err(|_| err("limit", s))?;
                Ok(if v >= V1_UNLIMITED_FLOOR {
                    Limit::Max
                } else {
                    Limit::Bytes(v)
                })
            }
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Max => f.write_str("max"),
            Limit::Bytes(b) => write!(f, "{b}"),
        }
    }
}

/// A size as the kernel's `memparse()` reads it (`lib/cmdline.c`), the
/// parser behind every v1 `*.limit_in_bytes` write (`page_counter_memparse`)
/// and v2's `memory.max`: a number in C notation (`0x` hex, leading-`0`
/// octal, else decimal) and an optional one-letter binary suffix `K M G T P
/// E` (either case), nothing after it. Configuration files (LXC,
/// cgconfig.conf) hold what the user wrote, so `192M` is as valid there as
/// `201326592`. Unlike the kernel, a value that overflows 64 bits is an
/// error instead of wrapping.
pub fn memparse(s: &str) -> Result<u64, ValueError> {
    let t = s.trim();
    let bad = || err("size (memparse: number with an optional K/M/G/T/P/E suffix)", s);
    let (radix, digits) = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        (16, h)
    } else if t.len() > 1 && t.starts_with('0') {
        (8, &t[1..])
    } else {
        (10, t)
    };
    let end = digits.find(|c: char| !c.is_digit(radix)).unwrap_or(digits.len());
    let (num, suffix) = digits.split_at(end);
    if num.is_empty() {
        return Err(bad());
    }
    let n = u64::from_str_radix(num, radix).map_err(|_| bad())?;
    let shift = match suffix {
        "" => 0,
        "k" | "K" => 10,
        "m" | "M" => 20,
        "g" | "G" => 30,
        "t" | "T" => 40,
        "p" | "P" => 50,
        "e" | "E" => 60,
        _ => return Err(bad()),
    };
    n.checked_mul(1u64 << shift).ok_or_else(bad)
}

/// A signed integer setting (`cpu.cfs_quota_us` is -1 when unset).
pub fn parse_i64(s: &str) -> Result<i64, ValueError> {
    s.trim().parse().map_err(|_| err("integer", s))
}

/// An unsigned integer setting (`cpu.shares`, `blkio.weight`, ...).
pub fn parse_u64(s: &str) -> Result<u64, ValueError> {
    s.trim().parse().map_err(|_| err("unsigned integer", s))
}

/// A block device number, `MAJ:MIN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DevNum {
    /// Major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
}

impl FromStr for DevNum {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        let (a, b) = s.split_once(':').ok_or_else(|| err("device number", s))?;
        Ok(DevNum {
            major: a.parse().map_err(|_| err("device number", s))?,
            minor: b.parse().map_err(|_| err("device number", s))?,
        })
    }
}

impl fmt::Display for DevNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.major, self.minor)
    }
}

/// Lines of `MAJ:MIN VALUE` (blkio `weight_device`, `throttle.*_device`).
///
/// Blank lines are skipped; v1 prints an empty file when nothing is set.
pub fn parse_device_values(s: &str) -> Result<Vec<(DevNum, u64)>, ValueError> {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut it = l.split_whitespace();
            let dev: DevNum = it.next().ok_or_else(|| err("device line", l))?.parse()?;
            let v = it.next().ok_or_else(|| err("device line", l))?;
            if it.next().is_some() {
                return Err(err("device line", l));
            }
            Ok((dev, parse_u64(v)?))
        })
        .collect()
}

/// A CPU or memory-node list (`0-3,7`), validated and kept in kernel syntax.
///
/// v1 and v2 use the same list syntax, so the text passes through unchanged;
/// parsing only proves it is well formed and counts its members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdList(pub Vec<(u32, u32)>);

impl FromStr for IdList {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        let t = s.trim();
        if t.is_empty() {
            return Ok(IdList(Vec::new()));
        }
        t.split(',')
            .map(|part| {
                let (a, b) = part.split_once('-').unwrap_or((part, part));
                let a: u32 = a.parse().map_err(|_| err("id list", s))?;
                let b: u32 = b.parse().map_err(|_| err("id list", s))?;
                if b < a {
                    return Err(err("id list", s));
                }
                Ok((a, b))
            })
            .collect::<Result<_, _>>()
            .map(IdList)
    }
}

impl fmt::Display for IdList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (a, b)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if a == b {
                write!(f, "{a}")?;
            } else {
                write!(f, "{a}-{b}")?;
            }
        }
        Ok(())
    }
}

/// One entry of a v1 `devices.list`: `TYPE MAJ:MIN ACCESS`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRule {
    /// `a` (all), `b` (block) or `c` (char).
    pub kind: char,
    /// Major number, `None` for `*`.
    pub major: Option<u32>,
    /// Minor number, `None` for `*`.
    pub minor: Option<u32>,
    /// Some of `r`, `w`, `m`.
    pub access: String,
}

impl FromStr for DeviceRule {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        let mut it = s.split_whitespace();
        let kind = it.next().ok_or_else(|| err("device rule", s))?;
        let kind = match kind {
            "a" | "b" | "c" => kind.chars().next().unwrap_or('a'),
            _ => return Err(err("device rule", s)),
        };
        let (major, minor) = match it.next() {
            None => (None, None),
            Some(n) => {
                let (a, b) = n.split_once(':').ok_or_else(|| err("device rule", s))?;
                let num = |x: &str| -> Result<Option<u32>, ValueError> {
                    if x == "*" {
                        Ok(None)
                    } else {
                        x.parse().map(Some).map_err(|_| err("device rule", s))
                    }
                };
                (num(a)?, num(b)?)
            }
        };
        let access = it.next().unwrap_or("rwm").to_string();
        if access.is_empty() || !access.chars().all(|c| "rwm".contains(c)) {
            return Err(err("device rule", s));
        }
        Ok(DeviceRule {
            kind,
            major,
            minor,
            access,
        })
    }
}

impl DeviceRule {
    /// Whether this is the v1 default "everything allowed" entry `a *:* rwm`.
    pub fn is_allow_all(&self) -> bool {
        self.kind == 'a' && self.major.is_none() && self.minor.is_none() && self.access.len() == 3
    }

    /// The systemd `DeviceAllow=` line that grants the same access.
    ///
    /// systemd names device classes `char-*`/`block-*` for wildcard majors and
    /// needs a `/dev` node path for a specific device; the node name isn't in
    /// the v1 data, so a specific device is given in the `/dev/char/MAJ:MIN`
    /// (or `/dev/block/MAJ:MIN`) form udev creates for every device.
    pub fn systemd_device_allow(&self) -> String {
        let class = if self.kind == 'b' { "block" } else { "char" };
        let spec = match (self.kind, self.major, self.minor) {
            ('a', _, _) => "char-* rwm\nDeviceAllow=block-*".to_string(),
            (_, None, _) => format!("{class}-*"),
            (_, Some(ma), None) => format!("{class}-{ma}"),
            (_, Some(ma), Some(mi)) => format!("/dev/{class}/{ma}:{mi}"),
        };
        format!("DeviceAllow={spec} {}", self.access)
    }
}

/// Parse a whole `devices.list` file.
pub fn parse_device_list(s: &str) -> Result<Vec<DeviceRule>, ValueError> {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::parse)
        .collect()
}

/// Flat keyed file `key value` per line (`memory.oom_control`).
pub fn parse_flat_keyed(s: &str) -> Result<Vec<(String, String)>, ValueError> {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (k, v) = l
                .split_once(char::is_whitespace)
                .ok_or_else(|| err("key value line", l))?;
            Ok((k.to_string(), v.trim().to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memparse_reads_what_the_kernel_reads() {
        for (t, v) in [
            ("192M", 192 << 20),
            ("192m", 192 << 20),
            ("1G", 1 << 30),
            ("4k", 4096),
            ("1E", 1 << 60),
            ("0x10K", 16 << 10),
            ("010", 8),
            ("0", 0),
            (" 512 ", 512),
            ("201326592", 201_326_592),
        ] {
            assert_eq!(memparse(t), Ok(v), "{t}");
        }
        for bad in [
            "",
            "M",
            "1.5G",
            "1GB",
            "1 G",
            "-1",
            "16E",
            "99999999999999999999",
            "0x",
            "09",
        ] {
            assert!(memparse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn limit_special_values() {
        assert_eq!("9223372036854771712".parse::<Limit>().unwrap(), Limit::Max);
        // 64 KiB pages: LONG_MAX rounded down to 65536.
        assert_eq!("9223372036854710272".parse::<Limit>().unwrap(), Limit::Max);
        assert_eq!("-1".parse::<Limit>().unwrap(), Limit::Max);
        assert_eq!("max\n".parse::<Limit>().unwrap(), Limit::Max);
        assert_eq!("2147483648".parse::<Limit>().unwrap(), Limit::Bytes(1 << 31));
        assert!("12k".parse::<Limit>().is_err());
        assert_eq!(Limit::Max.to_string(), "max");
    }

    #[test]
    fn device_values_and_lists() {
        let v = parse_device_values("8:0 1048576\n8:16 10\n").unwrap();
        assert_eq!(v[1], (DevNum { major: 8, minor: 16 }, 10));
        assert!(parse_device_values("8-0 1").is_err());
        assert!(parse_device_values("").unwrap().is_empty());
        let l: IdList = "0-3,7".parse().unwrap();
        assert_eq!(l.to_string(), "0-3,7");
        assert!("3-1".parse::<IdList>().is_err());
    }

    #[test]
    fn device_rules() {
        let r = parse_device_list("c 1:3 rwm\nb *:* m\na *:* rwm\n").unwrap();
        assert_eq!(r[0].systemd_device_allow(), "DeviceAllow=/dev/char/1:3 rwm");
        assert_eq!(r[1].systemd_device_allow(), "DeviceAllow=block-* m");
        assert!(r[2].is_allow_all());
        assert!("x 1:3 rwm".parse::<DeviceRule>().is_err());
        assert!("c 1:3 rwz".parse::<DeviceRule>().is_err());
    }
}
