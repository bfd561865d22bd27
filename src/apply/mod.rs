//! Apply: carry out a [`crate::plan::Plan`] on a cgroup2 tree.
//!
//! Everything that changes a system goes through a [`Target`]: the kernel (a
//! cgroup2 mount or a subtree of one) or the in-memory simulator of the v2
//! kernel rules. The dry run and the real apply consume the same plan through
//! the same trait, so what the simulator refuses is what the kernel would refuse.

pub mod target;

pub use target::{Target, TargetError};
pub mod sim;

pub use sim::Simulator;
