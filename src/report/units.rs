//! Human units beside the raw values the kernel files take: `268435456
//! (256M)`, `50000 100000 (50%)`. The raw value stays first (it is what a
//! reader copies into the file); the unit is a reading aid, only in human
//! formats.

/// The value of `file` with a human reading appended, when there is one:
/// byte sizes (memory, hugetlb, swap limits; `memory.limit_in_bytes`) in
/// binary units as the kernel's `memparse` reads them (`256M`), a CPU
/// quota (`cpu.max`, `cpu.cfs_quota_us` with its period given) as a share
/// of one CPU, `io.max` rates per second.
pub fn with_units(file: &str, value: &str) -> String {
    match human(file, value) {
        Some(h) => format!("{value} ({h})"),
        None => value.to_string(),
    }
}

/// The human reading alone.
pub fn human(file: &str, value: &str) -> Option<String> {
    let v = value.trim();
    if file == "cpu.max" {
        let mut it = v.split_whitespace();
        let quota: u64 = it.next()?.parse().ok()?;
        let period: u64 = it.next().unwrap_or("100000").parse().ok()?;
        return percent(quota, period);
    }
    if file == "io.max" {
        let parts: Vec<String> = v
            .split_whitespace()
            .skip(1)
            .filter_map(|kv| {
                let (k, n) = kv.split_once('=')?;
                let n: u64 = n.parse().ok()?;
                Some(match k {
                    "rbps" | "wbps" => format!("{k}={}/s", bytes(n)?),
                    _ => return None,
                })
            })
            .collect();
        return (!parts.is_empty()).then(|| parts.join(" "));
    }
    if is_bytes_file(file) {
        return bytes(v.parse().ok()?);
    }
    None
}

/// Files whose value is a byte count.
fn is_bytes_file(file: &str) -> bool {
    let memory = file.starts_with("memory.")
        && (file.ends_with(".max")
            || file.ends_with(".high")
            || file.ends_with(".low")
            || file.ends_with(".min")
            || file.ends_with("limit_in_bytes"));
    let hugetlb =
        file.starts_with("hugetlb.") && (file.ends_with(".max") || file.ends_with("limit_in_bytes"));
    memory || hugetlb
}

/// `n` bytes in the largest binary unit that divides it to at most one
/// decimal (`268435456` → `256M`, `1610612736` → `1.5G`); `None` below 1K
/// (the raw number says it) and for the "no limit" sentinels.
pub fn bytes(n: u64) -> Option<String> {
    // v1's "unlimited" is LONG_MAX rounded down to the page size.
    if n >= 1 << 62 {
        return Some("unlimited".into());
    }
    let units = [("E", 60), ("P", 50), ("T", 40), ("G", 30), ("M", 20), ("K", 10)];
    for (u, shift) in units {
        let base = 1u64 << shift;
        if n >= base {
            let tenths = (n as u128 * 10).div_ceil(base as u128);
            let exact = n.is_multiple_of(base);
            return Some(if exact {
                format!("{}{u}", n >> shift)
            } else if tenths < 1000 {
                format!("~{}.{}{u}", tenths / 10, tenths % 10)
            } else {
                format!("~{}{u}", tenths / 10)
            });
        }
    }
    None
}

/// `quota/period` of one CPU as a percentage (`50%`, `250%`).
fn percent(quota: u64, period: u64) -> Option<String> {
    if period == 0 {
        return None;
    }
    let p = (quota as f64) * 100.0 / (period as f64);
    Some(if (p - p.round()).abs() < 0.05 {
        format!("{}% of a CPU", p.round())
    } else {
        format!("{p:.1}% of a CPU")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_beside_raw_values() {
        assert_eq!(with_units("memory.max", "268435456"), "268435456 (256M)");
        assert_eq!(with_units("memory.max", "max"), "max");
        assert_eq!(
            with_units("memory.limit_in_bytes", "9223372036854771712"),
            "9223372036854771712 (unlimited)"
        );
        assert_eq!(with_units("hugetlb.2MB.max", "4194304"), "4194304 (4M)");
        assert_eq!(
            with_units("memory.swap.max", "1610612736"),
            "1610612736 (1.5G)".replace("1.5", "~1.5")
        );
        assert_eq!(with_units("memory.high", "1000"), "1000");
        assert_eq!(
            with_units("cpu.max", "50000 100000"),
            "50000 100000 (50% of a CPU)"
        );
        assert_eq!(with_units("cpu.max", "max 100000"), "max 100000");
        assert_eq!(with_units("cpu.weight", "100"), "100");
        assert_eq!(with_units("pids.max", "1024"), "1024");
        assert_eq!(
            with_units("io.max", "8:0 rbps=1048576 wiops=100"),
            "8:0 rbps=1048576 wiops=100 (rbps=1M/s)"
        );
    }
}
