//! Targets for the kernel's tables and the typed setting values: what the
//! scanner reads from a live host or a captured tree.

use cgmig::model::value::{self, DevNum, DeviceRule, IdList, Limit};

/// Bytes as the scanner turns them into text: invalid UTF-8 and control
/// characters escaped, newlines and tabs kept (`Root::read_text_lines`).
pub fn text(b: &[u8]) -> String {
    cgmig::model::path::value_from_bytes(b)
}

/// `/proc/self/mountinfo`, as the scanner and `apply`'s handover read it.
pub fn mountinfo(b: &[u8]) {
    let t = text(b);
    let _ = cgmig::host::parse_cgroup_mounts(&t);
    let _ = cgmig::apply::handover::v1_mounts(&t);
}

/// `/proc/cgroups`.
pub fn proc_cgroups(b: &[u8]) {
    let _ = cgmig::host::parse_proc_cgroups(&text(b));
}

/// `/proc/PID/cgroup` and `/proc/PID/task/TID/cgroup`.
pub fn pid_cgroup(b: &[u8]) {
    let _ = cgmig::host::parse_pid_cgroup(&text(b));
}

/// `/proc/PID/status` (the uid and gid lines).
pub fn status(b: &[u8]) {
    let _ = cgmig::host::parse_status_ids(&text(b));
}

/// Every typed value parser on the same text. Each type that renders
/// (`Display`) must parse back to itself: plans and converted files carry
/// the rendered form, and `apply` compares by value.
pub fn values(b: &[u8]) {
    let s = text(b);
    round_trip::<Limit>(&s);
    round_trip::<DevNum>(&s);
    round_trip::<IdList>(&s);
    let _ = s.parse::<DeviceRule>();
    let _ = value::parse_i64(&s);
    let _ = value::parse_u64(&s);
    let _ = value::parse_device_values(&s);
    let _ = value::parse_device_list(&s);
    let _ = value::parse_flat_keyed(&s);
    // Readiness and owner-prediction values (unit files, versions).
    let _ = cgmig::owners::systemd::parse_bytes(&s);
    let _ = cgmig::owners::systemd::tasks_max(&s, Some(4_194_304));
    let (quota, period) = s.split_once('\n').unwrap_or((&s, ""));
    let _ = cgmig::owners::systemd::cpu_max(quota, Some(period).filter(|p| !p.is_empty()));
    let _ = cgmig::rules::parse_kernel(&s);
    let _ = cgmig::readiness::version::parse(&s);
    let _ = cgmig::readiness::version::java(&s);
    let (a, c) = s.split_once(' ').unwrap_or((&s, "1.0"));
    let _ = cgmig::readiness::version::less(a, c);
}

/// `x.parse()`; if it parses, its rendering parses back to the same value.
fn round_trip<T>(s: &str)
where
    T: std::str::FromStr + std::fmt::Display + PartialEq + std::fmt::Debug,
{
    if let Ok(v) = s.parse::<T>() {
        let shown = v.to_string();
        match shown.parse::<T>() {
            Ok(back) => assert_eq!(back, v, "{s:?} rendered as {shown:?} parses differently"),
            Err(_) => panic!("{s:?} parsed, but its rendering {shown:?} does not"),
        }
    }
}
