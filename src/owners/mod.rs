//! Owners: who writes each cgroup, and the plan each owner's part gets.
//!
//! On most v1 machines the cgroups are not the admin's: systemd writes its
//! units and slices, kubelet and the container runtimes write theirs, libvirt
//! and LXC theirs, and a custom manager whatever else. After the switch each
//! of them rebuilds its own tree on v2, with its own formulas; a migration
//! tool that writes into those trees fights them. This module
//!
//! 1. records evidence at scan time ([`evidence`]: unit files and drop-ins,
//!    systemd's version and defaults, its cgroup xattrs);
//! 2. decides the owner of every cgroup from the paths and that evidence
//!    ([`mod@detect`], pure);
//! 3. says what systemd writes for each unit on v1 and v2 ([`systemd`]'s
//!    formulas, [`directives`]' per-version handling) and which owners'
//!    findings exist ([`findings`]).
//!
//! What the owners mean for a plan (per-node owners, predictions, drop-ins,
//! delegations, suggested units, runtime settings, no actions in other
//! owners' cgroups) is the planner's owners pass, `plan::owners`; what they
//! mean for an audit is `audit::owners`. This module is below both.

pub mod detect;
pub mod directives;
pub mod evidence;
pub mod findings;
pub(crate) mod paths;
mod render;
pub mod systemd;
pub mod units;

pub use detect::{Manager, Owner, OwnerMap, detect, is_systemd_host};
pub use evidence::Evidence;
pub use render::{audit_section, owners_table};
