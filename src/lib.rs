//! cgmig: audit, plan and apply the move of Linux hosts from cgroup v1 to v2.
//!
//! The pipeline is a chain of typed values that can each be written to a file
//! and read back, so every stage may run on a different machine:
//!
//! ```text
//! host (reads) -> scan -> Snapshot -> audit(rules) -> Report
//!                                  -> plan(rules)  -> Plan -> apply -> verify
//! ```
//!
//! Every read of a host goes through [`host::Root`]; the audit and the
//! planner are pure functions of a [`model::Snapshot`] and the
//! [`rules::RuleSet`]; only [`apply`] writes to a live system.
//!
//! The modules form layers that import one way, bottom to top:
//! [`model`]; [`host`]; [`rules`]; [`readiness`], [`report`], [`fixture`];
//! [`owners`]; [`scan`], [`audit`]; [`plan`]; [`assess`]; [`apply`], [`verify`],
//! [`fleet`]; [`cli`]. A module never imports one on its own layer or above it
//! (docs/architecture.md, "Layers"; `tests/integration/layers.rs` checks it).
#![deny(missing_docs)]

pub mod apply;
pub mod assess;
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
