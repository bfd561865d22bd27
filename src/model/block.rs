//! Which v2 I/O weight file a host's disks read, from their schedulers
//! (`/sys/block/*/queue/scheduler`, recorded by the scan in
//! [`super::KernelShows`]): BFQ reads `io.bfq.weight`, every other scheduler
//! leaves weights to iocost, which reads `io.weight`. A pure fact about the
//! devices, read by the plan (which file to write) and the audit (which
//! file's first kernel matters).

use super::BlockDevice;

/// Which v2 weight files the host's devices honour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WeightFiles {
    /// Every disk uses BFQ (their names).
    Bfq(Vec<String>),
    /// No disk uses BFQ (their names with schedulers).
    IoWeight(Vec<String>),
    /// Some do, some don't: (BFQ disks, other disks).
    Both(Vec<String>, Vec<String>),
    /// No disk shows a scheduler.
    Unknown,
}

impl WeightFiles {
    /// Whether a v1 weight converted to `file` (`io.weight` or
    /// `io.bfq.weight`) is written on this host: the file its disks read,
    /// and `io.weight` when nothing shows (iocost is the kernel's own).
    pub fn writes(&self, file: &str) -> bool {
        match self {
            WeightFiles::Bfq(_) => file != "io.weight",
            WeightFiles::IoWeight(_) | WeightFiles::Unknown => file != "io.bfq.weight",
            WeightFiles::Both(..) => true,
        }
    }
}

/// Devices that are not disks a cgroup's weight is scheduled on: loop,
/// RAM and compressed-RAM disks, optical and floppy drives, network block
/// devices, and stacked devices (device-mapper, md), whose I/O reaches the
/// disks below them, where those disks' schedulers decide.
fn is_disk(name: &str) -> bool {
    const NOT: &[&str] = &["loop", "ram", "zram", "sr", "fd", "nbd", "dm-", "md"];
    !NOT.iter().any(|p| name.starts_with(p))
}

/// The weight files the disks among `devices` honour.
pub fn weight_files(devices: &[BlockDevice]) -> WeightFiles {
    let (mut bfq, mut other) = (Vec::new(), Vec::new());
    for d in devices.iter().filter(|d| is_disk(&d.name)) {
        match d.scheduler.as_deref() {
            Some("bfq") => bfq.push(d.name.clone()),
            Some(s) => other.push(format!("{} ({s})", d.name)),
            None => {}
        }
    }
    match (bfq.is_empty(), other.is_empty()) {
        (true, true) => WeightFiles::Unknown,
        (false, true) => WeightFiles::Bfq(bfq),
        (true, false) => WeightFiles::IoWeight(other),
        (false, false) => WeightFiles::Both(bfq, other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(name: &str, sched: Option<&str>) -> BlockDevice {
        BlockDevice {
            name: name.into(),
            dev: None,
            scheduler: sched.map(str::to_string),
        }
    }

    #[test]
    fn the_disks_schedulers_choose_the_file() {
        let bfq = [
            dev("sda", Some("bfq")),
            dev("loop0", Some("none")),
            dev("dm-0", Some("none")),
        ];
        assert_eq!(weight_files(&bfq), WeightFiles::Bfq(vec!["sda".into()]));
        let nvme = [dev("nvme0n1", Some("none")), dev("sr0", Some("bfq"))];
        assert_eq!(
            weight_files(&nvme),
            WeightFiles::IoWeight(vec!["nvme0n1 (none)".into()])
        );
        let mixed = [dev("sda", Some("bfq")), dev("sdb", Some("mq-deadline"))];
        assert_eq!(
            weight_files(&mixed),
            WeightFiles::Both(vec!["sda".into()], vec!["sdb (mq-deadline)".into()])
        );
        assert_eq!(weight_files(&[]), WeightFiles::Unknown);
        assert!(weight_files(&bfq).writes("io.bfq.weight") && !weight_files(&bfq).writes("io.weight"));
        assert!(weight_files(&nvme).writes("io.weight") && !weight_files(&nvme).writes("io.bfq.weight"));
        assert!(weight_files(&mixed).writes("io.weight") && weight_files(&mixed).writes("io.bfq.weight"));
        assert!(!WeightFiles::Unknown.writes("io.bfq.weight"));
        assert_eq!(
            weight_files(&[dev("sda", None), dev("loop1", Some("bfq"))]),
            WeightFiles::Unknown
        );
    }
}
