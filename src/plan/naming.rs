//! Naming step: the v2 path of every merged node, parents first.
//!
//! Identity first: a node whose v1 cgroups all have one path keeps exactly
//! that path (kubelet, docker and systemd look their cgroups up by path).
//! Otherwise a node keeps its origin's v1 path below its parent's origin in
//! the same hierarchy. Names never collide with interface files (`_`
//! prefix); a name v2 forces to change (`@label`, `-2`) gets a
//! `plan.renamed` finding.

use std::collections::BTreeSet;

use super::findings;
use super::unify::{self, Merged, MergedId, PerNode, Prepared};
use crate::model::Snapshot;
use crate::rules::Finding;

/// Names the kernel reserves: `cgroup.*` and `<controller>.*` files.
fn collides_with_interface_file(name: &str) -> bool {
    crate::model::Controller::name_collides_with_interface_file(name)
}

/// The v2 path of every merged node (index = merged node id).
pub fn name_nodes(prep: &Prepared, m: &Merged, findings: &mut Vec<Finding>) -> PerNode<String> {
    let mut paths = PerNode(vec![String::new(); m.nodes.len()]);
    paths[MergedId::ROOT] = "/".into();
    // Every path given so far: a child named with a path of several
    // components (`system.slice/a.service/job` under `/`) can meet a node
    // named through real intermediate nodes (`job` under
    // `/system.slice/a.service`); siblings alone do not see that.
    let mut taken: BTreeSet<String> = BTreeSet::from(["/".to_string()]);
    let mut stack = vec![MergedId::ROOT];
    while let Some(n) = stack.pop() {
        let mut kids = m[n].children.clone();
        kids.sort_by(|a, b| m[*a].name.cmp(m[*b].name));
        // Identity first: a node whose origins all have one path P, below its
        // parent's v2 path, keeps exactly P (kubelet, docker and systemd look
        // their cgroups up by path).
        let rels: Vec<Vec<String>> = kids
            .iter()
            .map(|k| {
                identity_rel(prep.snap, &m[*k], &paths[n]).unwrap_or_else(|| rel_name(prep.snap, m, *k, n))
            })
            .collect();
        // Names real (single-component) siblings claim.
        let claimed: BTreeSet<&str> = rels
            .iter()
            .filter(|r| r.len() == 1)
            .map(|r| r[0].as_str())
            .collect();
        let mut used: BTreeSet<String> = BTreeSet::new();
        for (k, rel) in kids.into_iter().zip(rels.iter()) {
            let siblings = Siblings {
                parent: &paths[n],
                claimed: &claimed,
            };
            let path = name_child(prep, m, k, rel, siblings, (&mut used, &mut taken), findings);
            paths[k] = path;
            stack.push(k);
        }
    }
    paths
}

/// A node keeps its origin's v1 path below its parent's origin in the same
/// hierarchy (so `machine.slice/vm.scope` stays two levels even when
/// machine.slice itself carried nothing); otherwise its name.
fn rel_name(snap: &Snapshot, m: &Merged, k: MergedId, parent: MergedId) -> Vec<String> {
    let Some(&(hid, cg)) = m[k].origins.first() else {
        return vec![m[k].name.to_string()];
    };
    let path = &snap.cgroup(cg).path;
    let parent_origin = m[parent]
        .origins
        .iter()
        .find(|(h, _)| *h == hid)
        .map(|(_, c)| &snap.cgroup(*c).path);
    let rel = match parent_origin {
        Some(pp) if pp == "/" => path.trim_start_matches('/').to_string(),
        Some(pp) => match path.strip_prefix(pp.as_str()).and_then(|r| r.strip_prefix('/')) {
            Some(r) => r.to_string(),
            None => m[k].name.to_string(),
        },
        // Directly under the root with no ancestor of its own hierarchy
        // (a container's cgroup seen through a bind mount): full path.
        None if parent == MergedId::ROOT => path.trim_start_matches('/').to_string(),
        None => m[k].name.to_string(),
    };
    rel.split('/')
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

/// The parent a node is named under: its v2 path, and the names its real
/// (single-component) children claim.
#[derive(Clone, Copy)]
struct Siblings<'a> {
    parent: &'a str,
    claimed: &'a BTreeSet<&'a str>,
}

/// The v2 path of one child: its wanted relative path (kept whole unless a
/// real sibling claims its first component), no interface-file names, a
/// hierarchy label when nested under a node of the same name, unique among
/// its siblings; a `plan.renamed` finding when v2 forces another path.
fn name_child(
    prep: &Prepared,
    m: &Merged,
    k: MergedId,
    rel: &[String],
    sib: Siblings,
    (used, taken): (&mut BTreeSet<String>, &mut BTreeSet<String>),
    findings: &mut Vec<Finding>,
) -> String {
    let mut parts: Vec<String> = if rel.len() > 1 && !sib.claimed.contains(rel[0].as_str()) {
        rel.to_vec()
    } else {
        vec![rel.last().cloned().unwrap_or_else(|| "unnamed".into())]
    };
    for part in &mut parts {
        if let Some(f) = avoid_interface_file(part, sib.parent) {
            findings.push(f);
        }
    }
    let plain = parts.join("/");
    // A node nested under one of the same name (a hierarchy that moved
    // some processes of /system.slice and not others) says which
    // hierarchy it comes from.
    let parent_name = sib.parent.rsplit('/').next().unwrap_or("");
    if parts.len() == 1
        && parts[0] == parent_name
        && let Some(&(hid, _)) = m[k].origins.first()
    {
        let label = prep.label(hid).replace(',', "+").replace('=', "-");
        parts[0] = format!("{}@{label}", parts[0]);
    }
    let name = parts.join("/");
    let mut candidate = name.clone();
    let mut i = 2;
    while used.contains(&candidate) || taken.contains(&crate::model::path::join(sib.parent, &candidate)) {
        candidate = format!("{name}-{i}");
        i += 1;
    }
    used.insert(candidate.clone());
    let path = crate::model::path::join(sib.parent, &candidate);
    taken.insert(path.clone());
    let wanted = identity_rel(prep.snap, &m[k], sib.parent).map_or_else(
        || crate::model::path::join(sib.parent, &plain),
        |r| crate::model::path::join(sib.parent, &r.join("/")),
    );
    if wanted != path {
        findings.push(forced_rename(prep, &m[k], &path, &wanted));
    }
    path
}

/// Prefix a name that looks like an interface file with `_` (a finding).
fn avoid_interface_file(part: &mut String, parent: &str) -> Option<Finding> {
    if !collides_with_interface_file(part) {
        return None;
    }
    let new = format!("_{part}");
    let f = findings::RENAMED_INTERFACE_FILE.at(
        &crate::model::path::join(parent, &new),
        format!("{part} looks like an interface file in v2; the node is named {new}"),
    );
    *part = new;
    Some(f)
}

/// A `plan.renamed` finding for a node that can't have its v1 name: cgroups
/// of one path whose task sets differ, merged, would put a setting, owner or
/// process where v1 did not have it, so v2 needs two names.
fn forced_rename(prep: &Prepared, t: &unify::MergedNode, path: &str, wanted: &str) -> Finding {
    let from: Vec<String> = t
        .origins
        .iter()
        .map(|(h, c)| format!("{}:{}", prep.hierarchy(*h).label(), prep.snap.cgroup(*c).path))
        .collect();
    findings::RENAMED_COLLISION.at(
        path,
        format!(
            "{} ({}) would be {wanted}, but a cgroup of that name from another hierarchy holds other tasks or settings; v2 has one tree, so the node is {path}",
            from.join(", "),
            if from.is_empty() {
                "no v1 cgroup"
            } else {
                "its v1 cgroups"
            },
        ),
    )
}

/// The components of a node's one v1 path below `parent` (`None` when its
/// origins disagree on the path, or the path is not below the parent's).
fn identity_rel(snap: &Snapshot, t: &unify::MergedNode, parent: &str) -> Option<Vec<String>> {
    let (_, first) = t.origins.first()?;
    let path = &snap.cgroup(*first).path;
    if t.origins.iter().any(|(_, c)| &snap.cgroup(*c).path != path) {
        return None;
    }
    let rest = if parent == "/" {
        path.strip_prefix('/')?
    } else {
        path.strip_prefix(parent)?.strip_prefix('/')?
    };
    let parts: Vec<String> = rest
        .split('/')
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect();
    (!parts.is_empty()).then_some(parts)
}
