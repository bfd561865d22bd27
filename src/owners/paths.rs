//! The distinct cgroup paths of a snapshot, the hierarchies each appears
//! in, and the processes in each path's subtree: what owner detection reads,
//! gathered in one pass over the graph.
//!
//! Detection runs inside `plan` on hosts of 100k cgroups and 200k threads,
//! so nothing here is made per cgroup or per thread that only a few paths
//! need: paths are borrowed from the snapshot, hierarchies are label ranks,
//! and a process is a rank in the sorted list of `comm (pid)` names, each
//! name formatted once per process (not once per thread and hierarchy).

use std::fmt::Write;
use std::ops::Range;

use petgraph::Direction;
use petgraph::graph::NodeIndex;
use petgraph::visit::EdgeRef;

use crate::model::{Edge, Node, Snapshot};

/// One cgroup: its distinct path (an index into [`PathIndex::distinct`]),
/// its hierarchy's label (a rank in [`PathIndex::labels`]) and its node.
#[derive(Debug, Clone, Copy)]
struct Row {
    path: u32,
    label: u32,
    cgroup: NodeIndex,
}

/// Every cgroup of every hierarchy, grouped by path.
#[derive(Debug)]
pub struct PathIndex<'s> {
    /// The hierarchies' labels, sorted and distinct.
    labels: Vec<String>,
    /// The distinct paths, sorted (a `BTreeMap`'s order).
    distinct: Vec<&'s str>,
    /// Position in `distinct` by path (hashed: looked up per plan node).
    position: foldhash::HashMap<&'s str, u32>,
    /// The cgroups sorted by path position, then label.
    rows: Vec<Row>,
    /// The rows of each distinct path.
    runs: Vec<Range<usize>>,
}

impl<'s> PathIndex<'s> {
    /// Walk every hierarchy from its root and group the cgroups by path.
    /// Paths are hashed once per cgroup and only the distinct ones are
    /// sorted by text; the rows are then sorted by integers.
    pub fn collect(snap: &'s Snapshot) -> Self {
        let hierarchies = snap.hierarchies();
        let own: Vec<String> = hierarchies.iter().map(|(_, h)| h.label()).collect();
        let mut labels = own.clone();
        labels.sort();
        labels.dedup();
        let mut walk = Walk::default();
        for ((hi, _), label) in hierarchies.iter().zip(&own) {
            let (Ok(label) | Err(label)) = labels.binary_search(label);
            if let Some(root) = snap.root_cgroup(*hi) {
                walk.hierarchy(snap, root, label as u32);
            }
        }
        walk.into_index(labels)
    }

    /// How many distinct paths.
    pub fn len(&self) -> usize {
        self.distinct.len()
    }

    /// The `i`th distinct path (in path order).
    pub fn path(&self, i: usize) -> &'s str {
        self.distinct[i]
    }

    /// The position of a path, if some hierarchy has it.
    pub fn find(&self, path: &str) -> Option<usize> {
        self.position.get(path).map(|i| *i as usize)
    }

    /// The labels of the hierarchies path `i` appears in, joined by `, `.
    pub fn labels_joined(&self, i: usize) -> String {
        let mut out = String::new();
        let mut last = None;
        for r in &self.rows[self.runs[i].clone()] {
            if last == Some(r.label) {
                continue;
            }
            if last.is_some() {
                out.push_str(", ");
            }
            out.push_str(&self.labels[r.label as usize]);
            last = Some(r.label);
        }
        out
    }

    /// The cgroups (one per hierarchy) at path `i`.
    pub fn cgroups(&self, i: usize) -> impl Iterator<Item = NodeIndex> + '_ {
        self.rows[self.runs[i].clone()].iter().map(|r| r.cgroup)
    }

    /// The paths strictly below path `i`: a contiguous range of indices,
    /// since descendants sort right after `path/` (a sibling such as
    /// `path-x` sorts before `path/` and is not in it).
    fn below(&self, i: usize) -> Range<usize> {
        let path = self.path(i);
        let prefix_len = path.trim_end_matches('/').len();
        let prefix = &path[..prefix_len];
        let is_below =
            |p: &str| p.len() > prefix_len && p.as_bytes()[prefix_len] == b'/' && p.starts_with(prefix);
        // The first path after `prefix/` (for `/`, after `/` itself).
        let start = self
            .distinct
            .partition_point(|p| cmp_to_prefix(p, prefix).is_le());
        let mut end = start;
        while end < self.distinct.len() && is_below(self.distinct[end]) {
            end += 1;
        }
        start..end
    }
}

/// The cgroups met while walking the hierarchies, before sorting.
#[derive(Default)]
struct Walk<'s> {
    /// Distinct paths in the order first met.
    paths: Vec<&'s str>,
    /// Their index in `paths`.
    seen: foldhash::HashMap<&'s str, u32>,
    /// One row per cgroup (`path` indexes `paths`).
    rows: Vec<Row>,
}

impl<'s> Walk<'s> {
    /// Record every cgroup of one hierarchy (depth first, any order: the
    /// rows are sorted afterwards).
    fn hierarchy(&mut self, snap: &'s Snapshot, root: NodeIndex, label: u32) {
        let mut stack = vec![root];
        while let Some(ci) = stack.pop() {
            let path = snap.cgroup(ci).path.as_str();
            let next = self.paths.len() as u32;
            let id = *self.seen.entry(path).or_insert(next);
            if id == next {
                self.paths.push(path);
            }
            self.rows.push(Row {
                path: id,
                label,
                cgroup: ci,
            });
            stack.extend(
                snap.graph
                    .edges_directed(ci, Direction::Outgoing)
                    .filter(|e| *e.weight() == Edge::Child)
                    .map(|e| e.target()),
            );
        }
    }

    /// Sort the distinct paths by text, renumber the rows by that order,
    /// and group them.
    fn into_index(self, labels: Vec<String>) -> PathIndex<'s> {
        let Walk {
            paths,
            mut seen,
            mut rows,
        } = self;
        let mut order: Vec<u32> = (0..paths.len() as u32).collect();
        order.sort_unstable_by_key(|i| paths[*i as usize]);
        let mut position = vec![0u32; paths.len()];
        for (pos, id) in order.iter().enumerate() {
            position[*id as usize] = pos as u32;
        }
        for r in &mut rows {
            r.path = position[r.path as usize];
        }
        rows.sort_unstable_by_key(|r| (r.path, r.label));
        for v in seen.values_mut() {
            *v = position[*v as usize];
        }
        let distinct: Vec<&str> = order.iter().map(|i| paths[*i as usize]).collect();
        let runs = runs_by_path(&rows);
        PathIndex {
            labels,
            distinct,
            position: seen,
            rows,
            runs,
        }
    }
}

/// The ranges of rows of each path position (every position has one).
fn runs_by_path(rows: &[Row]) -> Vec<Range<usize>> {
    let mut runs = Vec::new();
    let mut start = 0;
    for i in 1..=rows.len() {
        if i == rows.len() || rows[i].path != rows[start].path {
            runs.push(start..i);
            start = i;
        }
    }
    runs
}

/// `p` compared with `prefix + "/"` (the first string a descendant can
/// be), without building that string.
fn cmp_to_prefix(p: &str, prefix: &str) -> std::cmp::Ordering {
    let key = prefix.as_bytes().iter().chain(b"/");
    p.as_bytes().iter().cmp(key)
}

/// Processes as ranks in the sorted list of their `comm (pid)` names, and
/// the processes of each path (both only made when a custom tree needs them).
#[derive(Debug)]
pub struct ProcessNames {
    /// Every `comm (pid)` name, one after the other (one allocation, not one per process).
    text: String,
    /// Distinct names in sorted order, as ranges of `text`.
    names: Vec<Range<usize>>,
    /// For each graph node that is a thread, its process's rank ([`NONE`] if none).
    of_thread: Vec<u32>,
    /// For each distinct path, the ranks of the processes with a thread in it (sorted, distinct).
    at_path: Vec<Vec<u32>>,
}

/// No process (a thread without one, or a node that is no thread).
const NONE: u32 = u32::MAX;

/// How many process names the evidence lists before a count.
const SHOWN: usize = 5;

impl ProcessNames {
    /// Name every process once and record the processes of every path.
    pub fn collect(snap: &Snapshot, paths: &PathIndex<'_>) -> Self {
        let mut text = String::new();
        let mut named: Vec<(Range<usize>, NodeIndex)> = Vec::new();
        for i in snap.graph.node_indices() {
            if let Node::Process(p) = &snap.graph[i] {
                let start = text.len();
                let _ = write!(text, "{} ({})", p.comm, p.pid);
                named.push((start..text.len(), i));
            }
        }
        named.sort_unstable_by(|a, b| text[a.0.clone()].cmp(&text[b.0.clone()]));
        let mut of_thread = vec![NONE; snap.graph.node_count()];
        let mut names: Vec<Range<usize>> = Vec::with_capacity(named.len());
        for (range, process) in named {
            if names
                .last()
                .is_none_or(|last| text[last.clone()] != text[range.clone()])
            {
                names.push(range);
            }
            let rank = (names.len() - 1) as u32;
            // A valid snapshot gives each thread one process (model::validate).
            for t in snap.graph.edges_directed(process, Direction::Outgoing) {
                if *t.weight() == Edge::Thread {
                    of_thread[t.target().index()] = rank;
                }
            }
        }
        let mut out = ProcessNames {
            text,
            names,
            of_thread,
            at_path: Vec::new(),
        };
        out.at_path = (0..paths.len()).map(|i| out.ranks_at(snap, paths, i)).collect();
        out
    }

    /// The processes with a thread in any cgroup at path `i`.
    fn ranks_at(&self, snap: &Snapshot, paths: &PathIndex<'_>, i: usize) -> Vec<u32> {
        let mut v: Vec<u32> = Vec::new();
        for t in paths.cgroups(i).flat_map(|ci| snap.members(ci)) {
            let r = self.of_thread[t.index()];
            // A process's threads are mostly adjacent in a cgroup's tasks.
            if r != NONE && v.last() != Some(&r) {
                v.push(r);
            }
        }
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The processes in path `i` or below it: up to five names, then
    /// `and N more`.
    pub fn in_subtree(&self, paths: &PathIndex<'_>, i: usize) -> Vec<String> {
        let mut all: Vec<u32> = self.at_path[i].clone();
        for j in paths.below(i) {
            all.extend_from_slice(&self.at_path[j]);
        }
        all.sort_unstable();
        all.dedup();
        let mut v: Vec<String> = all
            .iter()
            .take(SHOWN)
            .map(|r| self.text[self.names[*r as usize].clone()].to_string())
            .collect();
        if all.len() > SHOWN {
            v.push(format!("and {} more", all.len() - SHOWN));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::builder::SnapshotBuilder;

    /// A sibling that sorts between `/a` and `/a/` (`/a-b`) is not below
    /// `/a`; a process in two hierarchies counts once; `/` sees everything.
    #[test]
    fn subtree_processes_skip_siblings_that_sort_between() {
        let snap = SnapshotBuilder::new()
            .v1(1, &["memory"])
            .v1(2, &["pids"])
            .process(1, "x", "/a")
            .process(2, "sib", "/a-b")
            .process(3, "kid", "/a/c")
            .build();
        let paths = PathIndex::collect(&snap);
        let procs = ProcessNames::collect(&snap, &paths);
        let at = |p: &str| (0..paths.len()).find(|i| paths.path(*i) == p).unwrap();
        assert_eq!(procs.in_subtree(&paths, at("/a")), ["kid (3)", "x (1)"]);
        assert_eq!(procs.in_subtree(&paths, at("/a-b")), ["sib (2)"]);
        assert_eq!(procs.in_subtree(&paths, at("/")), ["kid (3)", "sib (2)", "x (1)"]);
        assert_eq!(paths.labels_joined(at("/a")), "memory, pids");
    }

    /// Past five names the evidence gives a count.
    #[test]
    fn more_than_five_processes_are_counted() {
        let mut b = SnapshotBuilder::new().v1(1, &["memory"]);
        for pid in 1..=7 {
            b = b.process(pid, "w", &format!("/t/{pid}"));
        }
        let snap = b.build();
        let paths = PathIndex::collect(&snap);
        let procs = ProcessNames::collect(&snap, &paths);
        let t = (0..paths.len()).find(|i| paths.path(*i) == "/t").unwrap();
        assert_eq!(
            procs.in_subtree(&paths, t),
            ["w (1)", "w (2)", "w (3)", "w (4)", "w (5)", "and 2 more"]
        );
    }
}
