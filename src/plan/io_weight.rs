//! I/O weight step: a v1 blkio weight lands in the v2 file that takes effect
//! on this host.
//!
//! v2 has two weight files: `io.bfq.weight`, which only the BFQ scheduler
//! reads (and which exists only while a device uses BFQ), and `io.weight`,
//! which only the iocost controller reads (off until the root's `io.cost.qos`
//! enables it on a device). The rules convert every v1 weight
//! (`blkio.weight`, `blkio.bfq.weight`, their `_device` forms) to both; this
//! step keeps the one the host's devices honour, by the schedulers the scan
//! read from `/sys/block/*/queue/scheduler`:
//!
//! * every disk on BFQ: `io.bfq.weight` only (`plan.io-weight-bfq`, info);
//! * no disk on BFQ: `io.weight` only (`plan.io-weight-iocost`, warning: it
//!   acts only with iocost enabled);
//! * some on BFQ, some not: both, each for its devices (both findings);
//! * no scheduler shown (an old snapshot, a capture without `/sys`):
//!   `io.weight` only, and `plan.io-scheduler-unknown` names the missing
//!   evidence.
//!
//! The choice is a pure function of the devices ([`crate::model::weight_files`]).

use super::findings;
use super::model::PlanNode;
use crate::model::{BlockDevice, WeightFiles, weight_files};
use crate::rules::{Finding, Subject};

/// Whether a plan setting is a v1 weight converted to a v2 weight file (an
/// existing v2 value is carried as it is).
fn converted_weight(s: &super::Setting) -> bool {
    matches!(s.file.as_str(), "io.weight" | "io.bfq.weight") && s.rule != "v2.existing"
}

/// Keep the weight files the host honours; say which and why.
pub fn by_scheduler(devices: &[BlockDevice], nodes: &mut [PlanNode]) -> Vec<Finding> {
    let count = |file: &str, nodes: &[PlanNode]| {
        nodes
            .iter()
            .filter(|n| n.settings.iter().any(|s| converted_weight(s) && s.file == file))
            .count()
    };
    if count("io.weight", nodes) + count("io.bfq.weight", nodes) == 0 {
        return Vec::new();
    }
    let choice = weight_files(devices);
    for n in nodes.iter_mut() {
        n.settings
            .retain(|s| !converted_weight(s) || choice.writes(&s.file));
    }
    let bfq_finding = |disks: &[String], n: usize| {
        findings::IO_WEIGHT_BFQ.finding(
            Subject::Host,
            format!(
                "{n} cgroups' blkio weights are written to io.bfq.weight: {} use{} the BFQ scheduler \
                 (/sys/block/*/queue/scheduler), which reads io.bfq.weight",
                disks.join(", "),
                if disks.len() == 1 { "s" } else { "" }
            ),
        )
    };
    let iocost_finding = |disks: &[String], n: usize| {
        findings::IO_WEIGHT_IOCOST.finding(
            Subject::Host,
            format!(
                "{n} cgroups' blkio weights are written to io.weight: {} use{} no BFQ \
                 (/sys/block/*/queue/scheduler); io.weight acts only where the io.cost controller is \
                 enabled on the device (the root's io.cost.qos \"MAJ:MIN enable=1\", off by default, Linux 5.4)",
                disks.join(", "),
                if disks.len() == 1 { "s" } else { "" }
            ),
        )
    };
    match &choice {
        WeightFiles::Bfq(d) => vec![bfq_finding(d, count("io.bfq.weight", nodes))],
        WeightFiles::IoWeight(d) => vec![iocost_finding(d, count("io.weight", nodes))],
        WeightFiles::Both(b, o) => vec![
            bfq_finding(b, count("io.bfq.weight", nodes)),
            iocost_finding(o, count("io.weight", nodes)),
        ],
        WeightFiles::Unknown => vec![findings::IO_SCHEDULER_UNKNOWN.finding(
            Subject::Host,
            format!(
                "{} cgroups' blkio weights are written to io.weight: the snapshot shows no block device's \
                 scheduler (no /sys/block/*/queue/scheduler), so nothing says whether the disks use BFQ \
                 (which reads io.bfq.weight instead); io.weight acts only with the io.cost controller enabled",
                count("io.weight", nodes)
            ),
        )],
    }
}
