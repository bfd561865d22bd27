//! Which deprecated (cgroup v1) unit directives a given systemd still
//! translates on a unified (v2) host, and which it ignores: one table, with
//! the version boundaries taken from systemd's own sources.
//!
//! Sources (read from the systemd repository, not guessed):
//! * **v258 and later ignore them.** `src/core/load-fragment-gperf.gperf.in`
//!   of v258 maps `CPUShares`, `StartupCPUShares`, `MemoryLimit`,
//!   `BlockIOAccounting`, `BlockIOWeight`, `StartupBlockIOWeight`,
//!   `BlockIODeviceWeight`, `BlockIOReadBandwidth`, `BlockIOWriteBandwidth`
//!   and `NetClass` to `config_parse_warn_compat, DISABLED_LEGACY` ("Support
//!   for option X= has been removed and it is ignored"); systemd PR #37026
//!   "core: remove cgroup v1 properties", released in v258 whose NEWS opens
//!   with "Support for cgroup v1 ('legacy' and 'hybrid' hierarchies) has been
//!   removed". CRI-O issue #10283 observes `CPUShares` "silently ignored" on
//!   systemd >= 258.
//! * **Up to v257 they are translated** by `src/core/cgroup.c` when the unit
//!   sets no directive of the unified kind for that controller
//!   (`cgroup_cpu_shares_to_weight`, `cgroup_weight_blkio_to_io`, `MemoryLimit=`
//!   read as `MemoryMax=`, the BlockIO device weights and bandwidths as
//!   `io.weight`/`io.max` entries), PR #4269 "make settings for unified cgroup
//!   hierarchy supersede the ones for legacy hierarchy".
//! * **From v252 each use logs a deprecation warning** ("Unit uses
//!   CPUShares=; please use CPUWeight= instead. Support for CPUShares= will be
//!   removed soon.", seen on systemd 252 in flatcar/Flatcar#981, and in the
//!   Debian 12 guest's journal, docs/research/systemd-hosts.md).
//! * **`NetClass=` never acts on v2**: it wrote `net_cls.classid` (a v1-only
//!   controller), and since v229 it does nothing at all (PR #2574 "cgroup:
//!   remove support for NetClass= directive", kept for compatibility).
//!
//! Translation into v2 files before v232 (the first releases with the
//! unified memory/io controllers) is not modelled: such a systemd cannot run
//! a useful v2 host, and cgmig treats it as translating.

use serde::Serialize;

/// First systemd version that ignores every v1 resource directive.
pub const IGNORED_FROM: u32 = 258;
/// First systemd version that logs a deprecation warning for them.
pub const WARNS_FROM: u32 = 252;
/// `NetClass=` never had an effect on v2: it wrote `net_cls.classid`, a v1
/// controller, and even that was removed in v229.
pub const NETCLASS_IGNORED_FROM: u32 = 0;

/// One deprecated v1 directive and how systemd handles it on v2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Legacy {
    /// The v1 directive (`CPUShares`).
    pub directive: &'static str,
    /// The v2 directive that replaces it (`CPUWeight`), if any.
    pub v2: Option<&'static str>,
    /// The v2 file systemd writes from it while it translates, if any.
    pub file: Option<&'static str>,
    /// First version that ignores it on v2.
    pub ignored_from: u32,
    /// Where the boundary comes from.
    pub source: &'static str,
}

const V258: &str =
    "systemd v258 load-fragment-gperf.gperf.in: config_parse_warn_compat DISABLED_LEGACY (PR #37026)";

/// Every deprecated v1 resource directive (systemd.resource-control(5),
/// "Options for controlling the Legacy Control Group Hierarchy").
pub const TABLE: &[Legacy] = &[
    Legacy {
        directive: "CPUShares",
        v2: Some("CPUWeight"),
        file: Some("cpu.weight"),
        ignored_from: IGNORED_FROM,
        source: V258,
    },
    Legacy {
        directive: "StartupCPUShares",
        v2: Some("StartupCPUWeight"),
        file: None, // cpu.weight during boot and shutdown only
        ignored_from: IGNORED_FROM,
        source: V258,
    },
    Legacy {
        directive: "MemoryLimit",
        v2: Some("MemoryMax"),
        file: Some("memory.max"),
        ignored_from: IGNORED_FROM,
        source: V258,
    },
    Legacy {
        directive: "BlockIOAccounting",
        v2: Some("IOAccounting"),
        file: None,
        ignored_from: IGNORED_FROM,
        source: V258,
    },
    Legacy {
        directive: "BlockIOWeight",
        v2: Some("IOWeight"),
        file: Some("io.weight"),
        ignored_from: IGNORED_FROM,
        source: V258,
    },
    Legacy {
        directive: "StartupBlockIOWeight",
        v2: Some("StartupIOWeight"),
        file: None, // io.weight during boot and shutdown only
        ignored_from: IGNORED_FROM,
        source: V258,
    },
    Legacy {
        directive: "BlockIODeviceWeight",
        v2: Some("IODeviceWeight"),
        file: None, // io.weight per device: major:minor resolved at runtime
        ignored_from: IGNORED_FROM,
        source: V258,
    },
    Legacy {
        directive: "BlockIOReadBandwidth",
        v2: Some("IOReadBandwidthMax"),
        file: None, // io.max rbps= per device
        ignored_from: IGNORED_FROM,
        source: V258,
    },
    Legacy {
        directive: "BlockIOWriteBandwidth",
        v2: Some("IOWriteBandwidthMax"),
        file: None, // io.max wbps= per device
        ignored_from: IGNORED_FROM,
        source: V258,
    },
    Legacy {
        directive: "NetClass",
        v2: None,
        file: None,
        ignored_from: NETCLASS_IGNORED_FROM,
        source: "net_cls is v1-only; systemd PR #2574 (v229) made NetClass= a no-op kept for compatibility",
    },
];

/// What a systemd version does with a v1 directive on a v2 host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handling {
    /// Translated into its v2 form; `warns` when the journal says it is deprecated.
    Translated {
        /// A deprecation warning is logged (v252 and later).
        warns: bool,
    },
    /// Parsed and ignored: the limit silently vanishes.
    Ignored,
}

/// The table row of a v1 directive.
pub fn legacy(directive: &str) -> Option<&'static Legacy> {
    TABLE.iter().find(|l| l.directive == directive)
}

/// How `version` handles `directive` (an unknown version is taken as one
/// that still translates: the measured v252 behaviour, not a guess at loss).
pub fn handling(directive: &str, version: Option<u32>) -> Option<Handling> {
    let l = legacy(directive)?;
    Some(match version {
        Some(v) if v >= l.ignored_from => Handling::Ignored,
        v => Handling::Translated {
            warns: v.is_some_and(|v| v >= WARNS_FROM),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_boundaries() {
        assert_eq!(
            handling("CPUShares", Some(251)),
            Some(Handling::Translated { warns: false })
        );
        assert_eq!(
            handling("CPUShares", Some(252)),
            Some(Handling::Translated { warns: true })
        );
        assert_eq!(
            handling("MemoryLimit", Some(257)),
            Some(Handling::Translated { warns: true })
        );
        assert_eq!(handling("BlockIOWeight", Some(258)), Some(Handling::Ignored));
        assert_eq!(handling("NetClass", Some(228)), Some(Handling::Ignored));
        assert_eq!(handling("CPUWeight", Some(258)), None, "a v2 directive");
        assert_eq!(
            handling("CPUShares", None),
            Some(Handling::Translated { warns: false })
        );
        for l in TABLE {
            assert!(l.ignored_from <= IGNORED_FROM, "{}", l.directive);
        }
        // The readiness rule WR-SD-001 (a layer below) keeps its own copy.
        assert_eq!(crate::readiness::LEGACY_IGNORED_FROM, IGNORED_FROM.to_string());
    }
}
