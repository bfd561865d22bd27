//! Kernel evidence outside the cgroup trees: the block devices' active I/O
//! schedulers and whether cgroup2 offers thread mode.
//!
//! Both decide what a v2 layout can be, and both are read from files under
//! the scanned root, so a captured tree answers as the live host would:
//! `/sys/block/NAME/queue/scheduler` (the bracketed entry is the active
//! scheduler: BFQ honours `io.bfq.weight`, everything else `io.weight` with
//! iocost), and `cgroup.threads` / `cgroup.type` in the cgroup2 mount (thread
//! mode, Linux 4.14). Missing files are no evidence, never an error; a file
//! that exists but can't be read is a diagnostic.

use crate::host::{HostError, Root};
use crate::model::{BlockDevice, Diagnostic};

/// At most this many devices are recorded (a host with thousands of
/// multipath or loop devices says nothing more about schedulers).
const MAX_DEVICES: usize = 1024;

/// Every device under `/sys/block`, in name order, with its scheduler.
pub(crate) fn devices(root: &Root, diags: &mut Vec<Diagnostic>) -> Vec<BlockDevice> {
    let names = match root.list_names("/sys/block") {
        Ok(Some(n)) => n,
        Ok(None) => return Vec::new(),
        Err(e) => {
            note(diags, e);
            return Vec::new();
        }
    };
    names
        .into_iter()
        .filter(|n| !n.starts_with('.') && !n.contains('/'))
        .take(MAX_DEVICES)
        .map(|name| {
            let mut read = |file: &str| match root.read_text(&format!("/sys/block/{name}/{file}")) {
                Ok(t) => t,
                Err(e) => {
                    note(diags, e);
                    None
                }
            };
            let dev = read("dev").filter(|d| is_devnum(d));
            let scheduler = read("queue/scheduler").and_then(|t| active_scheduler(&t));
            BlockDevice { name, dev, scheduler }
        })
        .collect()
}

/// Whether the cgroup2 mount at `mount_point` shows thread mode: its
/// directory has `cgroup.threads` (every cgroup, the root included, from
/// 4.14) or `cgroup.type` (every non-root cgroup). `None` when the directory
/// can't be listed.
pub(crate) fn thread_mode(root: &Root, mount_point: &str, diags: &mut Vec<Diagnostic>) -> Option<bool> {
    match root.list_names(mount_point) {
        Ok(Some(names)) => Some(names.iter().any(|n| n == "cgroup.threads" || n == "cgroup.type")),
        Ok(None) => None,
        Err(e) => {
            note(diags, e);
            None
        }
    }
}

/// The active scheduler of a `queue/scheduler` line: the bracketed entry
/// (`mq-deadline kyber [bfq] none` → `bfq`); a line with one entry and no
/// brackets (`none` on devices that take no scheduler) is that entry.
pub fn active_scheduler(line: &str) -> Option<String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let bracketed = words
        .iter()
        .find_map(|w| w.strip_prefix('[').and_then(|w| w.strip_suffix(']')));
    let name = match (bracketed, words.as_slice()) {
        (Some(b), _) => b,
        (None, [only]) => only,
        _ => return None,
    };
    let ok = !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| name.to_string())
}

fn is_devnum(s: &str) -> bool {
    s.split_once(':').is_some_and(|(a, b)| {
        !a.is_empty()
            && !b.is_empty()
            && a.len() <= 10
            && b.len() <= 10
            && (a.to_owned() + b).bytes().all(|c| c.is_ascii_digit())
    })
}

fn note(diags: &mut Vec<Diagnostic>, e: HostError) {
    let (path, message) = e.diagnostic();
    diags.push(Diagnostic { path, message });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bracketed_scheduler_is_the_active_one() {
        assert_eq!(
            active_scheduler("mq-deadline kyber [bfq] none").as_deref(),
            Some("bfq")
        );
        assert_eq!(
            active_scheduler("[mq-deadline] kyber bfq none").as_deref(),
            Some("mq-deadline")
        );
        assert_eq!(active_scheduler("noop deadline [cfq] ").as_deref(), Some("cfq"));
        assert_eq!(active_scheduler("none").as_deref(), Some("none"));
        assert_eq!(active_scheduler("mq-deadline none"), None);
        assert_eq!(active_scheduler(""), None);
        assert_eq!(active_scheduler("[../etc]"), None);
        assert!(is_devnum("8:0") && !is_devnum("8:") && !is_devnum("a:b"));
    }
}
