//! Compare a written value with what the kernel reads back, by meaning.
//!
//! The kernel normalizes what it is given: `memory.max` is rounded down to
//! the page size, `hugetlb.<size>.max` to the huge page size, `cpu.max` gets
//! its default period, `io.max` prints every key of a device's line, cpuset
//! lists come back as ranges. A byte comparison would report each of those
//! as a failed write, so verification compares meaning.

use std::collections::{BTreeMap, BTreeSet};

const PAGE: u64 = 4096;

/// Whether `got` (read back from `file`) means what `wanted` asked for.
pub fn same(file: &str, wanted: &str, got: &str) -> bool {
    let (w, g) = (wanted.trim(), got.trim());
    if w == g {
        return true;
    }
    match file {
        "cpu.max" => cpu_max(w) == cpu_max(g),
        "cpuset.cpus" | "cpuset.mems" | "cpuset.cpus.exclusive" => {
            ranges(w).is_some() && ranges(w) == ranges(g)
        }
        "cgroup.subtree_control" => words(w).is_subset(&words(g)),
        f if f.starts_with("memory.") => rounded(w, PAGE).is_some() && rounded(w, PAGE) == rounded(g, PAGE),
        f if f.starts_with("hugetlb.") => match hugepage_size(f) {
            Some(sz) => rounded(w, sz).is_some() && rounded(w, sz) == rounded(g, sz),
            None => false,
        },
        f if is_keyed(f) => keyed_subset(w, g),
        _ => false,
    }
}

fn words(s: &str) -> BTreeSet<&str> {
    s.split_whitespace().map(|w| w.trim_start_matches('+')).collect()
}

/// `cpu.max`: `QUOTA [PERIOD]`, period defaulting to 100000.
fn cpu_max(s: &str) -> Option<(String, u64)> {
    let mut it = s.split_whitespace();
    let quota = it.next()?.to_string();
    let period = match it.next() {
        Some(p) => p.parse().ok()?,
        None => 100_000,
    };
    Some((quota, period))
}

/// `max` or a byte count (with K/M/G/T suffixes) rounded down to `unit`.
fn rounded(s: &str, unit: u64) -> Option<Option<u64>> {
    if s == "max" {
        return Some(None);
    }
    let (num, mult) = match s.chars().last()? {
        'k' | 'K' => (&s[..s.len() - 1], 1u64 << 10),
        'm' | 'M' => (&s[..s.len() - 1], 1 << 20),
        'g' | 'G' => (&s[..s.len() - 1], 1 << 30),
        't' | 'T' => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    let n: u64 = num.parse().ok()?;
    Some(Some(n.saturating_mul(mult) / unit * unit))
}

/// `hugetlb.2MB.max` → 2 MiB.
fn hugepage_size(file: &str) -> Option<u64> {
    let size = file.split('.').nth(1)?;
    let (num, unit) = size.split_at(size.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = num.parse().ok()?;
    let mult = match unit {
        "KB" => 1 << 10,
        "MB" => 1 << 20,
        "GB" => 1 << 30,
        _ => return None,
    };
    Some(n * mult)
}

/// A cpuset list (`0-3,8`) as a set.
fn ranges(s: &str) -> Option<BTreeSet<u32>> {
    let mut set = BTreeSet::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => set.extend(a.parse::<u32>().ok()?..=b.parse::<u32>().ok()?),
            None => {
                set.insert(part.parse().ok()?);
            }
        }
    }
    Some(set)
}

fn is_keyed(file: &str) -> bool {
    matches!(
        file,
        "io.max" | "io.weight" | "io.bfq.weight" | "io.latency" | "rdma.max" | "misc.max"
    )
}

/// One `KEY a=b c=d` or `KEY VALUE` line per key (device, `default`, rdma device).
fn keyed(s: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut m = BTreeMap::new();
    for line in s.lines() {
        let mut it = line.split_whitespace();
        let Some(key) = it.next() else { continue };
        let entry: &mut BTreeMap<String, String> = m.entry(key.to_string()).or_default();
        for kv in it {
            match kv.split_once('=') {
                Some((k, v)) => entry.insert(k.to_string(), v.to_string()),
                None => entry.insert(String::new(), kv.to_string()),
            };
        }
    }
    m
}

/// Every key=value of every line written is in the read-back.
fn keyed_subset(wanted: &str, got: &str) -> bool {
    let (w, g) = (keyed(wanted), keyed(got));
    !w.is_empty()
        && w.iter().all(|(dev, kv)| {
            g.get(dev)
                .is_some_and(|gkv| kv.iter().all(|(k, v)| gkv.get(k) == Some(v)))
        })
}

#[cfg(test)]
mod tests {
    use super::same;

    #[test]
    fn memory_rounds_to_pages() {
        assert!(same("memory.max", "1000000", "999424\n"));
        assert!(!same("memory.max", "1000000", "1003520"));
        assert!(same("memory.high", "max", "max\n"));
        assert!(same("memory.max", "1G", "1073741824"));
        assert!(!same("memory.max", "max", "4096"));
    }

    #[test]
    fn hugetlb_rounds_to_huge_pages() {
        assert!(same("hugetlb.2MB.max", "3000000", "2097152"));
        assert!(!same("hugetlb.2MB.max", "5000000", "2097152"));
        assert!(same("hugetlb.1GB.max", "max", "max"));
    }

    #[test]
    fn cpu_max_default_period() {
        assert!(same("cpu.max", "max", "max 100000\n"));
        assert!(same("cpu.max", "50000", "50000 100000"));
        assert!(!same("cpu.max", "50000 200000", "50000 100000"));
    }

    #[test]
    fn io_max_keyed_lines() {
        assert!(same(
            "io.max",
            "8:0 rbps=1048576",
            "8:0 rbps=1048576 wbps=max riops=max wiops=max\n"
        ));
        assert!(!same(
            "io.max",
            "8:0 rbps=1048576",
            "8:16 rbps=1048576 wbps=max riops=max wiops=max"
        ));
        assert!(same("io.weight", "8:0 200", "default 100\n8:0 200\n"));
        assert!(!same("io.weight", "8:0 200", "default 100\n"));
    }

    #[test]
    fn cpuset_ranges() {
        assert!(same("cpuset.cpus", "0,1,2,3,8", "0-3,8\n"));
        assert!(!same("cpuset.cpus", "0-3", "0-2"));
        assert!(!same("cpuset.cpus", "x", "0"));
    }

    #[test]
    fn subtree_control_and_plain() {
        assert!(same("cgroup.subtree_control", "+cpu +memory", "cpu io memory"));
        assert!(!same("cgroup.subtree_control", "+cpu", "memory"));
        assert!(same("cgroup.type", "threaded", "threaded\n"));
        assert!(!same("pids.max", "10", "11"));
    }
}
