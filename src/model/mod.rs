//! The data model shared by every stage: controllers, typed values, the
//! snapshot graph, and the catalogue of setting files.

mod block;
pub mod builder;
mod controller;
pub mod evidence;
pub mod files;
mod ids;
pub mod path;
pub mod readiness;
mod snapshot;
pub mod validate;
pub mod value;

pub use block::{WeightFiles, weight_files};
pub use controller::Controller;
pub use ids::{HierarchyId, Pid, Tid};
pub use snapshot::*;
