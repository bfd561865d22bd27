//! Values of controller interface files: how each write is parsed and
//! checked, with the errno the kernel's handler returns, and how the kernel
//! prints the value back (normalized: bytes rounded down to pages, CPU lists
//! as ranges, keys merged per device).
//!
//! Each function names the kernel handler it mirrors. Pure functions: the
//! simulator passes in what a handler reads from the cgroup (current values,
//! possible CPUs, known devices) and stores what comes back.

use std::collections::BTreeSet;

use nix::errno::Errno;

use super::files::Spec;

/// What a write handler may look at besides the written text.
pub(crate) struct Ctx<'a> {
    /// Read another file of the same cgroup (its current value as printed).
    pub read: &'a dyn Fn(&str) -> Option<String>,
    /// Possible CPUs (`nr_cpu_ids`) and memory nodes.
    pub cpus: &'a BTreeSet<u32>,
    pub mems: &'a BTreeSet<u32>,
    /// Known block devices as `MAJ:MIN`; `None` accepts any.
    pub devices: Option<&'a BTreeSet<String>>,
}

/// `PAGE_SIZE` of the modelled machine (x86-64, arm64 with 4K pages).
pub(crate) const PAGE_SIZE: u64 = 4096;
/// `PAGE_COUNTER_MAX` on 64-bit: `LONG_MAX / PAGE_SIZE`.
const PAGE_COUNTER_MAX: u64 = (i64::MAX as u64) / PAGE_SIZE;
/// `CGROUP_WEIGHT_MIN/DFL/MAX`.
const WEIGHT_MIN: u64 = 1;
const WEIGHT_DFL: u64 = 100;
const WEIGHT_MAX: u64 = 10000;
/// kernel/sched/core.c `sched_prio_to_weight`, nice -20..19.
const PRIO_TO_WEIGHT: [u64; 40] = [
    88761, 71755, 56483, 46273, 36291, 29154, 23254, 18705, 14949, 11916, 9548, 7620, 6100, 4904, 3906, 3121,
    2501, 1991, 1586, 1277, 1024, 820, 655, 526, 423, 335, 272, 215, 172, 137, 110, 87, 70, 56, 45, 36, 29,
    23, 18, 15,
];
/// `PIDS_MAX`: `PID_MAX_LIMIT + 1` on 64-bit.
const PIDS_MAX: i64 = 4 * 1024 * 1024 + 1;
/// CFS bandwidth bounds in µs (kernel/sched/core.c `tg_set_bandwidth`):
/// period 1 ms..1 s, quota at least 1 ms and at most `max_bw_runtime_us` =
/// `MAX_BW` = `(1 << (64 - BW_SHIFT)) - 1` with `BW_SHIFT` 20 (kernel/sched/sched.h),
/// "more than 203 days".
const MIN_PERIOD_US: u64 = 1000;
const MAX_PERIOD_US: u64 = 1_000_000;
const MAX_CFS_RUNTIME_US: u64 = (1u64 << 44) - 1;

/// The value a file shows before anything was written to it.
pub(crate) fn default_of(file: &str, _spec: &Spec) -> String {
    match file {
        "cpu.weight" => "100",
        "cpu.max" => "max 100000",
        "cpu.uclamp.min" => "0.00",
        "cpu.uclamp.max" => "max",
        "memory.high" | "memory.max" | "memory.swap.high" | "memory.swap.max" | "memory.zswap.max" => "max",
        "memory.zswap.writeback" => "1",
        "io.weight" | "io.bfq.weight" => "default 100",
        "io.prio.class" => "no-change",
        "cpuset.cpus.partition" => "member",
        "pids.max" => "max",
        "cgroup.pressure" => "1",
        f if f.starts_with("hugetlb.") && f.ends_with("max") => "max",
        "cpuset.cpus"
        | "cpuset.mems"
        | "cpuset.cpus.exclusive"
        | "io.max"
        | "io.latency"
        | "rdma.max"
        | "misc.max"
        | "dmem.max"
        | "dmem.min"
        | "dmem.low"
        | "io.stat"
        | "memory.stat"
        | "memory.numa_stat"
        | "cpu.stat.local"
        | "cpuset.cpus.exclusive.effective"
        | "cpuset.cpus.isolated" => "",
        "cpu.stat" => "usage_usec 0\nuser_usec 0\nsystem_usec 0",
        f if f.ends_with(".pressure") => "some avg10=0.00 avg60=0.00 avg300=0.00 total=0",
        f if f.ends_with(".events") || f.ends_with(".events.local") => "",
        _ => "0",
    }
    .to_string()
}

/// Check and normalize a write to a controller file. Returns the files
/// whose printed value changes (a write to `cpu.weight` also changes
/// `cpu.weight.nice`).
pub(crate) fn write(file: &str, value: &str, ctx: &Ctx) -> Result<Vec<(String, String)>, Errno> {
    let one = |v: String| Ok(vec![(file.to_string(), v)]);
    match file {
        "cpu.weight" => {
            let w = kstrtoull(value)?;
            if !(WEIGHT_MIN..=WEIGHT_MAX).contains(&w) {
                return Err(Errno::ERANGE); // cpu_weight_write_u64
            }
            Ok(weight_files(div_round_closest(w * 1024, WEIGHT_DFL)))
        }
        "cpu.weight.nice" => {
            let n = kstrtoll(value)?;
            if !(-20..=19).contains(&n) {
                return Err(Errno::ERANGE); // cpu_weight_nice_write_s64
            }
            Ok(weight_files(PRIO_TO_WEIGHT[(n + 20) as usize]))
        }
        "cpu.idle" => {
            let n = kstrtoll(value)?;
            if !(0..=1).contains(&n) {
                return Err(Errno::EINVAL); // sched_group_set_idle
            }
            one(n.to_string())
        }
        "cpu.max" => cpu_max(file, value, ctx),
        "cpu.max.burst" => cpu_max_burst(file, value, ctx),
        "cpu.uclamp.min" | "cpu.uclamp.max" => one(uclamp(value)?),
        "memory.min" | "memory.low" | "memory.high" | "memory.max" | "memory.swap.high"
        | "memory.swap.max" | "memory.zswap.max" => {
            let pages = page_counter_memparse(value.trim())?;
            one(print_pages(pages, PAGE_COUNTER_MAX))
        }
        "memory.oom.group" | "memory.zswap.writeback" => {
            let n = kstrtoint(value.trim())?;
            if n != 0 && n != 1 {
                return Err(Errno::EINVAL); // memory_oom_group_write
            }
            one(n.to_string())
        }
        // Resets the watermark; "all content written is completely ignored".
        "memory.peak" | "memory.swap.peak" => Ok(vec![]),
        "memory.reclaim" => {
            // memory_reclaim: a size (memparse) and optional "swappiness=N".
            let size = value.split_whitespace().next().unwrap_or("");
            memparse(size)?;
            Ok(vec![])
        }
        "pids.max" => one(pids_max(value)?),
        "io.weight" => io_weight(file, value, ctx, 1, WEIGHT_MAX, Errno::EINVAL),
        "io.bfq.weight" => io_weight(file, value, ctx, 1, 1000, Errno::ERANGE),
        "io.max" => io_max(file, value, ctx),
        "io.prio.class" => {
            let v = value.trim();
            const POLICIES: &[&str] = &[
                "no-change",
                "promote-to-rt",
                "restrict-to-be",
                "idle",
                "none-to-rt",
            ];
            if !POLICIES.contains(&v) {
                return Err(Errno::EINVAL);
            }
            one(v.to_string())
        }
        "cpuset.cpus" | "cpuset.cpus.exclusive" => {
            one(print_list(&parse_list(value.trim(), ctx.cpus, Errno::ERANGE)?))
        }
        "cpuset.mems" => one(print_list(&parse_list(value.trim(), ctx.mems, Errno::EINVAL)?)),
        "cpuset.cpus.partition" => {
            let v = value.trim();
            if !["member", "root", "isolated"].contains(&v) {
                return Err(Errno::EINVAL);
            }
            one(v.to_string())
        }
        f if f.ends_with(".pressure") => {
            psi_trigger(value)?;
            Ok(vec![])
        }
        f if f.starts_with("hugetlb.") && f.ends_with("max") => {
            let huge = hugepage_pages(f).ok_or(Errno::ENOENT)?;
            let pages = page_counter_memparse(value.trim())? / huge * huge;
            one(print_pages(pages, PAGE_COUNTER_MAX / huge * huge))
        }
        // rdma.max, misc.max, io.latency, dmem.*, io.cost.*: kept as written (not modelled).
        _ => one(value.trim().to_string()),
    }
}

/// `cpu.weight` and `cpu.weight.nice` as printed for a task-group weight.
fn weight_files(shares: u64) -> Vec<(String, String)> {
    let shares = shares.clamp(2, 1 << 18); // sched_group_set_shares: MIN_SHARES..MAX_SHARES
    let w = div_round_closest(shares * WEIGHT_DFL, 1024).clamp(WEIGHT_MIN, WEIGHT_MAX);
    // cpu_weight_nice_read_s64: the nice value whose weight is closest.
    let mut last = u64::MAX;
    let mut prio = 0;
    while prio < PRIO_TO_WEIGHT.len() {
        let d = PRIO_TO_WEIGHT[prio].abs_diff(shares);
        if d >= last {
            break;
        }
        last = d;
        prio += 1;
    }
    let nice = prio as i64 - 1 - 20;
    vec![
        ("cpu.weight".into(), w.to_string()),
        ("cpu.weight.nice".into(), nice.to_string()),
    ]
}

fn div_round_closest(a: u64, b: u64) -> u64 {
    (a + b / 2) / b
}

/// The current (quota µs or None for max, period µs) of `cpu.max`.
fn current_cpu_max(ctx: &Ctx) -> (Option<u64>, u64) {
    let cur = (ctx.read)("cpu.max").unwrap_or_else(|| "max 100000".into());
    let mut it = cur.split_whitespace();
    let q = it.next().and_then(|q| q.parse().ok());
    let p = it.next().and_then(|p| p.parse().ok()).unwrap_or(100_000);
    (q, p)
}

/// `cpu_max_write` -> `cpu_period_quota_parse` -> `tg_set_cfs_bandwidth`.
fn cpu_max(file: &str, value: &str, ctx: &Ctx) -> Result<Vec<(String, String)>, Errno> {
    let (_, mut period) = current_cpu_max(ctx);
    let mut it = value.split_whitespace();
    let tok = it.next().ok_or(Errno::EINVAL)?;
    if tok.len() > 20 {
        // "%20s" reads at most 20 characters; the rest is the period field.
        return Err(Errno::EINVAL);
    }
    if let Some(p) = it.next().and_then(scan_u64) {
        period = p;
    }
    let quota = match scan_u64(tok) {
        Some(q) => Some(q),
        None if tok == "max" => None,
        None => return Err(Errno::EINVAL),
    };
    let burst: u64 = (ctx.read)("cpu.max.burst")
        .and_then(|b| b.parse().ok())
        .unwrap_or(0);
    check_bandwidth(period, quota, burst)?;
    let printed = match quota {
        Some(q) => format!("{q} {period}"),
        None => format!("max {period}"),
    };
    Ok(vec![(file.to_string(), printed)])
}

/// `tg_set_cfs_bandwidth`'s checks (all EINVAL), in µs.
fn check_bandwidth(period: u64, quota: Option<u64>, burst: u64) -> Result<(), Errno> {
    if !(MIN_PERIOD_US..=MAX_PERIOD_US).contains(&period) {
        return Err(Errno::EINVAL);
    }
    if let Some(q) = quota
        && (!(MIN_PERIOD_US..=MAX_CFS_RUNTIME_US).contains(&q) || burst > q || burst + q > MAX_CFS_RUNTIME_US)
    {
        return Err(Errno::EINVAL);
    }
    if burst > MAX_CFS_RUNTIME_US {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// `cpu_cfs_burst_write_u64` (µs) -> `tg_set_cfs_bandwidth`.
fn cpu_max_burst(file: &str, value: &str, ctx: &Ctx) -> Result<Vec<(String, String)>, Errno> {
    let burst = kstrtoull(value)?;
    let (quota, period) = current_cpu_max(ctx);
    check_bandwidth(period, quota, burst)?;
    Ok(vec![(file.to_string(), burst.to_string())])
}

/// `cpu_uclamp_write` -> `capacity_from_percent` (`cgroup_parse_float` with
/// two decimals); printed as `max` at 100 %, else `N.NN`.
fn uclamp(value: &str) -> Result<String, Errno> {
    let v = value.trim();
    if v == "max" {
        return Ok("max".into());
    }
    let (whole, frac) = v.split_once('.').unwrap_or((v, ""));
    let whole: i64 = whole.parse().map_err(|_| Errno::EINVAL)?;
    let frac_digits: String = frac.chars().take_while(|c| c.is_ascii_digit()).collect();
    let frac_val: u64 = if frac_digits.is_empty() {
        0
    } else {
        let f: u64 = frac_digits.parse().map_err(|_| Errno::EINVAL)?;
        let len = frac_digits.len() as u32;
        if len <= 2 {
            f * 10u64.pow(2 - len)
        } else {
            div_round_closest(f, 10u64.pow(len - 2))
        }
    };
    let percent = whole * 100 + frac_val as i64;
    if !(0..=10_000).contains(&percent) {
        return Err(Errno::ERANGE);
    }
    Ok(if percent == 10_000 {
        "max".into()
    } else {
        format!("{}.{:02}", percent / 100, percent % 100)
    })
}

/// `pids_max_write`.
fn pids_max(value: &str) -> Result<String, Errno> {
    let v = value.trim();
    if v == "max" {
        return Ok("max".into());
    }
    let n = kstrtoll(v)?;
    if !(0..PIDS_MAX).contains(&n) {
        return Err(Errno::EINVAL);
    }
    Ok(n.to_string())
}

/// A `MAJ:MIN` key checked the way `blkg_conf_open_bdev` does: malformed ->
/// EINVAL, no such device -> ENODEV.
fn device_key<'v>(key: &'v str, ctx: &Ctx) -> Result<&'v str, Errno> {
    let (maj, min) = key.split_once(':').ok_or(Errno::EINVAL)?;
    maj.parse::<u32>().map_err(|_| Errno::EINVAL)?;
    min.parse::<u32>().map_err(|_| Errno::EINVAL)?;
    if ctx.devices.is_some_and(|d| !d.contains(key)) {
        return Err(Errno::ENODEV);
    }
    Ok(key)
}

/// `ioc_weight_write` (io.weight, range error EINVAL) and
/// `bfq_io_set_weight` (io.bfq.weight, 1..1000, range error ERANGE):
/// `default N` or `N` sets the default, `MAJ:MIN N` a device, `MAJ:MIN default` removes it.
fn io_weight(
    file: &str,
    value: &str,
    ctx: &Ctx,
    lo: u64,
    hi: u64,
    range: Errno,
) -> Result<Vec<(String, String)>, Errno> {
    let cur = (ctx.read)(file).unwrap_or_else(|| "default 100".into());
    let mut lines: Vec<(String, String)> = cur
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let v = value.trim();
    let check = |n: &str| -> Result<u64, Errno> {
        let n = scan_u64(n).ok_or(Errno::EINVAL)?;
        if n < lo || n > hi { Err(range) } else { Ok(n) }
    };
    if !v.contains(':') {
        let n = v.strip_prefix("default ").map_or(v, str::trim);
        let w = check(n)?;
        lines[0] = ("default".into(), w.to_string());
    } else {
        let (key, body) = v.split_once(char::is_whitespace).unwrap_or((v, ""));
        let key = device_key(key, ctx)?.to_string();
        let body = body.trim();
        lines.retain(|(k, _)| *k != key);
        if !body.starts_with("default") {
            lines.push((key, check(body)?.to_string()));
        }
        lines[1..].sort();
    }
    let text = lines
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join("\n");
    Ok(vec![(file.to_string(), text)])
}

/// `tg_set_limit` (blk-throttle): `MAJ:MIN key=value ...`, keys merged into
/// the device's line; 0 -> ERANGE, unknown key or bad number -> EINVAL; a
/// device whose four limits are all `max` is not printed.
fn io_max(file: &str, value: &str, ctx: &Ctx) -> Result<Vec<(String, String)>, Errno> {
    const KEYS: [&str; 4] = ["rbps", "wbps", "riops", "wiops"];
    let mut it = value.split_whitespace();
    let key = device_key(it.next().ok_or(Errno::EINVAL)?, ctx)?.to_string();
    let cur = (ctx.read)(file).unwrap_or_default();
    let mut devs: Vec<(String, [String; 4])> = cur
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let dev = f.next()?.to_string();
            let mut vals: [String; 4] = std::array::from_fn(|_| "max".to_string());
            for kv in f {
                if let Some((k, v)) = kv.split_once('=')
                    && let Some(i) = KEYS.iter().position(|x| *x == k)
                {
                    vals[i] = v.to_string();
                }
            }
            Some((dev, vals))
        })
        .collect();
    let mut vals = devs
        .iter()
        .find(|(d, _)| *d == key)
        .map_or_else(|| std::array::from_fn(|_| "max".to_string()), |(_, v)| v.clone());
    for tok in it {
        let (k, v) = tok.split_once('=').ok_or(Errno::EINVAL)?;
        let n = match v {
            "max" => None,
            _ => Some(scan_u64(v).ok_or(Errno::EINVAL)?),
        };
        if n == Some(0) {
            return Err(Errno::ERANGE);
        }
        let i = KEYS.iter().position(|x| *x == k).ok_or(Errno::EINVAL)?;
        let n = if i >= 2 {
            n.map(|n| n.min(u32::MAX as u64))
        } else {
            n
        };
        vals[i] = n.map_or("max".to_string(), |n| n.to_string());
    }
    devs.retain(|(d, _)| *d != key);
    if vals.iter().any(|v| v != "max") {
        devs.push((key, vals));
    }
    devs.sort();
    let text = devs
        .iter()
        .map(|(d, v)| format!("{d} rbps={} wbps={} riops={} wiops={}", v[0], v[1], v[2], v[3]))
        .collect::<Vec<_>>()
        .join("\n");
    Ok(vec![(file.to_string(), text)])
}

/// `psi_trigger_create`: `some|full THRESHOLD_US WINDOW_US`, window 0.5..10 s,
/// 0 < threshold <= window; anything else EINVAL.
fn psi_trigger(value: &str) -> Result<(), Errno> {
    let f: Vec<&str> = value.split_whitespace().collect();
    let [kind, t, w] = f.as_slice() else {
        return Err(Errno::EINVAL);
    };
    let (t, w) = (
        scan_u64(t).ok_or(Errno::EINVAL)?,
        scan_u64(w).ok_or(Errno::EINVAL)?,
    );
    if !["some", "full"].contains(kind) || !(500_000..=10_000_000).contains(&w) || t == 0 || t > w {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// Base pages per huge page for a `hugetlb.<size>.*` file name.
fn hugepage_pages(file: &str) -> Option<u64> {
    let size = file.strip_prefix("hugetlb.")?.split('.').next()?;
    let (num, unit) = size.split_at(size.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = num.parse().ok()?;
    let bytes = match unit {
        "KB" => n << 10,
        "MB" => n << 20,
        "GB" => n << 30,
        _ => return None,
    };
    Some((bytes / PAGE_SIZE).max(1))
}

/// `seq_puts_memcg_tunable`: `max` at the counter's maximum, else bytes.
fn print_pages(pages: u64, max: u64) -> String {
    if pages >= max {
        "max".into()
    } else {
        (pages * PAGE_SIZE).to_string()
    }
}

/// `page_counter_memparse`: "max" or a `memparse` size; trailing junk EINVAL.
pub(crate) fn page_counter_memparse(s: &str) -> Result<u64, Errno> {
    if s == "max" {
        return Ok(PAGE_COUNTER_MAX);
    }
    Ok((memparse(s)? / PAGE_SIZE).min(PAGE_COUNTER_MAX))
}

/// `memparse` (simple_strtoull base 0, then one K/M/G/T/P/E suffix) that must
/// consume the whole string.
fn memparse(s: &str) -> Result<u64, Errno> {
    let (mut n, rest) = simple_strtoull(s);
    let mut rest = rest;
    let shift = match rest.chars().next() {
        Some('k' | 'K') => 10,
        Some('m' | 'M') => 20,
        Some('g' | 'G') => 30,
        Some('t' | 'T') => 40,
        Some('p' | 'P') => 50,
        Some('e' | 'E') => 60,
        _ => 0,
    };
    if shift > 0 {
        n <<= shift;
        rest = &rest[1..];
    }
    if !rest.is_empty() {
        return Err(Errno::EINVAL);
    }
    Ok(n)
}

/// `simple_strtoull(s, &end, 0)`: the value of the leading digits (hex with
/// `0x`, octal with `0`) and the unparsed rest. Overflow wraps, as in C.
fn simple_strtoull(s: &str) -> (u64, &str) {
    let (radix, body) = if let Some(r) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        if r.starts_with(|c: char| c.is_ascii_hexdigit()) {
            (16, r)
        } else {
            (8, s)
        }
    } else if s.starts_with('0') {
        (8, s)
    } else {
        (10, s)
    };
    let end = body.find(|c: char| !c.is_digit(radix)).unwrap_or(body.len());
    let mut n: u64 = 0;
    for c in body[..end].chars() {
        n = n
            .wrapping_mul(radix as u64)
            .wrapping_add(c.to_digit(radix).unwrap_or(0) as u64);
    }
    (n, &body[end..])
}

/// `_kstrtoull(s, 0)`: an optional `+`, base prefix, digits, at most one
/// trailing newline; no digits -> EINVAL, overflow -> ERANGE.
pub(crate) fn kstrtoull(s: &str) -> Result<u64, Errno> {
    let s = s.strip_suffix('\n').unwrap_or(s);
    let s = s.strip_prefix('+').unwrap_or(s);
    let (radix, body) = if let Some(r) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (16, r)
    } else if s.len() > 1 && s.starts_with('0') {
        (8, &s[1..])
    } else {
        (10, s)
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return Err(Errno::EINVAL);
    }
    u64::from_str_radix(body, radix).map_err(|_| Errno::ERANGE)
}

/// `kstrtoll(s, 0)`: kstrtoull with an optional leading `-`; out of range -> ERANGE.
pub(crate) fn kstrtoll(s: &str) -> Result<i64, Errno> {
    if let Some(r) = s.strip_prefix('-') {
        let n = kstrtoull(r)?;
        if n > i64::MAX as u64 + 1 {
            return Err(Errno::ERANGE);
        }
        return Ok((-(n as i128)) as i64);
    }
    let n = kstrtoull(s)?;
    i64::try_from(n).map_err(|_| Errno::ERANGE)
}

/// `kstrtoint(s, 0)`.
pub(crate) fn kstrtoint(s: &str) -> Result<i32, Errno> {
    let n = kstrtoll(s)?;
    i32::try_from(n).map_err(|_| Errno::ERANGE)
}

/// `kstrtoint` then a range check with ERANGE (cgroup.freeze, cgroup.pressure).
pub(crate) fn int_in(s: &str, lo: i32, hi: i32) -> Result<i32, Errno> {
    let n = kstrtoint(s.trim())?;
    if n < lo || n > hi {
        Err(Errno::ERANGE)
    } else {
        Ok(n)
    }
}

/// The leading decimal number of `s`, as `sscanf("%llu")` reads it (no sign).
fn scan_u64(s: &str) -> Option<u64> {
    let s = s.trim_start();
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    if end == 0 {
        return None;
    }
    s[..end].parse().ok()
}

/// `bitmap_parselist` (`cpulist_parse`/`nodelist_parse`): `N`, `N-M`,
/// `N-M:used/group`, comma separated; syntax -> EINVAL; a bit outside the
/// possible set -> `beyond` (ERANGE for CPUs past nr_cpu_ids; EINVAL for
/// nodes, from cpuset's subset check).
pub(crate) fn parse_list(s: &str, possible: &BTreeSet<u32>, beyond: Errno) -> Result<BTreeSet<u32>, Errno> {
    let mut out = BTreeSet::new();
    let limit = possible.iter().next_back().map_or(0, |m| m + 1);
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let (range, stride) = match part.split_once(':') {
            Some((r, g)) => {
                let (used, group) = g.split_once('/').ok_or(Errno::EINVAL)?;
                let used: u32 = used.parse().map_err(|_| Errno::EINVAL)?;
                let group: u32 = group.parse().map_err(|_| Errno::EINVAL)?;
                if used == 0 || group == 0 || used > group {
                    return Err(Errno::EINVAL);
                }
                (r, Some((used, group)))
            }
            None => (part, None),
        };
        let (a, b) = match range.split_once('-') {
            Some((a, b)) => (a, b),
            None => (range, range),
        };
        let a: u32 = a.parse().map_err(|_| Errno::EINVAL)?;
        let b: u32 = b.parse().map_err(|_| Errno::EINVAL)?;
        if a > b {
            return Err(Errno::EINVAL);
        }
        if b >= limit {
            return Err(beyond);
        }
        for i in a..=b {
            if stride.is_none_or(|(used, group)| (i - a) % group < used) {
                out.insert(i);
            }
        }
    }
    if !out.is_subset(possible) {
        return Err(Errno::EINVAL);
    }
    Ok(out)
}

/// A CPU or node set as the kernel prints it: `0-3,5,7-8`.
pub(crate) fn print_list(set: &BTreeSet<u32>) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut it = set.iter().copied().peekable();
    while let Some(a) = it.next() {
        let mut b = a;
        while it.peek() == Some(&(b + 1)) {
            b = it.next().unwrap_or(b);
        }
        out.push(if a == b { a.to_string() } else { format!("{a}-{b}") });
    }
    out.join(",")
}
