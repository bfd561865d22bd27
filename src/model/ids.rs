//! Newtypes for the kernel's numbers: hierarchy ids, pids and tids.
//!
//! All three are `u32` on the wire, and for years they were `u32` in the code
//! too, so nothing stopped a tid from being looked up as a pid or a pid from
//! being compared with a hierarchy id. Each is parsed once at the boundary
//! (the scanner reading `/proc`, or serde reading a snapshot) and stays typed
//! until the syscall edge, where `get()` makes the raw number explicit.
//!
//! Every type is `#[serde(transparent)]`: snapshots, plans, journals, fleet
//! files and fixtures keep the plain number, byte for byte.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::num::ParseIntError;
use std::str::FromStr;

/// Defines one `u32` newtype with the traits every id shares.
macro_rules! id_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(u32);

        impl $name {
            /// Wraps a raw number read from the kernel or a file.
            pub const fn new(raw: u32) -> Self {
                Self(raw)
            }

            /// The raw number, for the syscall or file-write edge only.
            pub const fn get(self) -> u32 {
                self.0
            }
        }

        impl From<u32> for $name {
            fn from(raw: u32) -> Self {
                Self(raw)
            }
        }

        /// The bare number, like `Display`: a `{:?}` of a list of ids in a
        /// message or a test reads `[20, 21]` as it did when they were `u32`.
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = ParseIntError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map(Self)
            }
        }
    };
}

id_newtype! {
    /// The id of a cgroup hierarchy, as the first column of `/proc/PID/cgroup`
    /// and the second of `/proc/cgroups` show it.
    ///
    /// It is the kernel's number for one mounted v1 hierarchy, scoped to one
    /// boot: the same controllers get another id after a reboot or a remount,
    /// so it identifies a hierarchy only inside one snapshot. `0` is the v2
    /// (unified) hierarchy, or "not bound to v1" in `/proc/cgroups`.
    HierarchyId
}

id_newtype! {
    /// A process id: the thread-group id, what `cgroup.procs` lists and what
    /// `kill(2)` and `pidfd_open(2)` take.
    ///
    /// It names the whole thread group; moving it through `cgroup.procs` moves
    /// every thread. Kept apart from [`Tid`] because v1 lets threads of one
    /// process sit in different cgroups.
    Pid
}

id_newtype! {
    /// A thread id, what the v1 `tasks` and v2 `cgroup.threads` files list.
    ///
    /// A tid is not a pid: in v1 each thread moves between cgroups on its own
    /// (writing a tid to `tasks` moves that thread only), so a process can be
    /// split across cgroups of one hierarchy, and the main thread's tid equals
    /// the pid only by convention.
    Tid
}

impl HierarchyId {
    /// The id the kernel gives the v2 (unified) hierarchy in `/proc/PID/cgroup`.
    pub const UNIFIED: HierarchyId = HierarchyId(0);
}

impl Pid {
    /// The tid of this process's main thread (the kernel gives it the
    /// pid's number): the one place a pid stands for a thread.
    pub const fn main_thread(self) -> Tid {
        Tid(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_the_bare_number() {
        let json = serde_json::to_string(&(HierarchyId::new(3), Pid::new(42), Tid::new(43))).unwrap();
        assert_eq!(json, "[3,42,43]");
        let back: (HierarchyId, Pid, Tid) = serde_json::from_str(&json).unwrap();
        assert_eq!(back, (HierarchyId::new(3), Pid::new(42), Tid::new(43)));
    }

    #[test]
    fn displays_and_parses_like_u32() {
        assert_eq!(Pid::new(1234).to_string(), "1234");
        assert_eq!(format!("{:>6}", Tid::new(7)), "     7");
        assert_eq!("12".parse::<HierarchyId>().unwrap(), HierarchyId::new(12));
        assert_eq!(format!("{:?}", vec![Pid::new(20), Pid::new(21)]), "[20, 21]");
        assert!("-1".parse::<Pid>().is_err());
        assert!("".parse::<Tid>().is_err());
    }
}
