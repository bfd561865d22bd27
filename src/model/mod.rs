//! The data model shared by every stage: controllers, typed values, the
//! snapshot graph, and the catalogue of setting files.

pub mod builder;
mod controller;
pub mod files;
mod ids;
pub mod path;
mod snapshot;
pub mod validate;
pub mod value;

pub use controller::Controller;
pub use ids::{HierarchyId, Pid, Tid};
pub use snapshot::*;
