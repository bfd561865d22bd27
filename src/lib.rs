//! cgmig: audit, plan and apply the move of Linux hosts from cgroup v1 to v2.
//!
//! The pipeline is a chain of typed values that can each be written to a file
//! and read back, so every stage may run on a different machine:
//!
//! ```text
//! host (read-only I/O) -> scan -> Snapshot -> audit(rules) -> Report
//!                                          -> plan(rules)  -> Plan
//! ```
//!
//! Only [`host`] touches the system. Everything after it is a pure function of
//! a [`model::Snapshot`] and the [`rules::RuleSet`].
#![deny(missing_docs)]

pub mod apply;
pub mod audit;
pub mod cli;
pub mod fixture;
pub mod fleet;
pub mod host;
pub mod model;
pub mod owners;
pub mod plan;
pub mod readiness;
pub mod report;
pub mod rules;
pub mod scan;
pub mod verify;
