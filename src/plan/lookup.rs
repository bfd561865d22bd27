//! The plan's nodes and owners hashed by path, shared by the owners pass
//! (`owners.rs`) and the runtimes' part of it (`runtimes.rs`), so neither
//! imports the other.

use std::collections::BTreeMap;

use super::model::{Plan, PlanNode};
use crate::owners::Owner;

/// The plan's nodes and their owners by path, hashed once: every step of
/// the owners pass (`plan::owners`) looks up thousands of paths, and a `BTreeMap<String, _>`
/// lookup is a dozen string comparisons.
pub(super) struct Lookup<'a> {
    /// Plan nodes by path.
    nodes: foldhash::HashMap<&'a str, &'a PlanNode>,
    /// Owners by plan path.
    owners: foldhash::HashMap<&'a str, &'a Owner>,
}

impl<'a> Lookup<'a> {
    pub(super) fn new(p: &'a Plan, owners: &'a BTreeMap<String, Owner>) -> Self {
        Lookup {
            nodes: p.nodes.iter().map(|n| (n.path.as_str(), n)).collect(),
            ..Self::of_owners(owners)
        }
    }

    /// Owners only (no plan nodes).
    pub(super) fn of_owners(owners: &'a BTreeMap<String, Owner>) -> Self {
        Lookup {
            nodes: foldhash::HashMap::default(),
            owners: owners.iter().map(|(k, o)| (k.as_str(), o)).collect(),
        }
    }

    /// The plan node at a path.
    pub(super) fn node(&self, path: &str) -> Option<&'a PlanNode> {
        self.nodes.get(path).copied()
    }

    /// The owner of exactly this path.
    pub(super) fn owner(&self, path: &str) -> Option<&'a Owner> {
        self.owners.get(path).copied()
    }

    /// The owner of a path or its nearest ancestor ([`PlanOwners::owner_of`]).
    pub(super) fn owner_or_ancestor(&self, path: &str) -> Option<&'a Owner> {
        let mut cur = Some(path);
        while let Some(p) = cur {
            if let Some(o) = self.owner(p) {
                return Some(o);
            }
            cur = crate::model::path::parent(p);
        }
        None
    }
}
