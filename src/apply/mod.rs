//! Apply: carry out a [`crate::plan::Plan`] on a cgroup2 tree.
//!
//! Everything that changes a system goes through a [`Target`]: the kernel (a
//! cgroup2 mount or a subtree of one) or the in-memory simulator of the v2
//! kernel rules. The dry run and the real apply consume the same plan through
//! the same trait, so what the simulator refuses is what the kernel would refuse.
//!
//! Layers: [`resolve`] matches the plan's processes to live ones by their
//! stable key; [`exec`] turns the plan into [`step::Step`]s and runs them
//! around the [`journal`]; [`handover`] moves a controller off v1 (live);
//! [`normalize`] compares written and read-back values by meaning.

pub mod beneath;
pub mod error;
pub mod exec;
pub mod handover;
pub mod journal;
pub mod kernel;
pub mod normalize;
pub mod resolve;
pub mod rollout;
pub mod scope;
pub mod sim;
pub mod step;
pub mod target;
pub mod tasks;

pub use error::ApplyError;
pub use sim::Simulator;
pub use target::{Target, TargetError};
pub use tasks::Host;
