//! Checking a snapshot read from a file before anything trusts it.
//!
//! A snapshot made by `cgmig scan` is consistent by construction; one that
//! travelled between teams may have been edited, truncated or forged. Every
//! later stage indexes the graph freely (`Snapshot::cgroup` panics on a
//! wrong node kind, a parent loop would never end), so a snapshot is
//! checked here once, on load: edges join the right node kinds, indices are
//! in range, every cgroup hangs off exactly one parent in its own hierarchy
//! and is reachable from it (no cycles), hierarchy ids, cgroup paths, pids
//! and tids are unique, paths are absolute and normalized, memberships
//! point at cgroups, and no name carries a raw control character (names
//! from a scan are escaped at the read boundary; a file never passed it).

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use petgraph::Direction;
use petgraph::graph::NodeIndex;
use petgraph::visit::EdgeRef;

use super::path::has_raw_control;
use super::{Edge, Node, Snapshot};

/// How many problems are listed before the rest are counted.
const MAX_REPORTED: usize = 20;

/// Deepest nesting of brackets or braces accepted in a JSON/YAML document
/// (a snapshot is 6 levels deep; this rejects a nesting bomb before a parser
/// recurses into it).
pub const MAX_DEPTH: usize = 64;

/// Reject a document nested deeper than [`MAX_DEPTH`] (flow collections:
/// `[`/`{`), in one linear pass that skips quoted strings. Block-style YAML
/// nests by indentation, which the size limit on reads already bounds.
pub fn check_depth(text: &str) -> Result<(), String> {
    let mut depth = 0usize;
    let mut quote: Option<u8> = None;
    let mut escaped = false;
    let mut line = 1;
    for &b in text.as_bytes() {
        if b == b'\n' {
            line += 1;
        }
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if b == b'\\' && q == b'"' {
                escaped = true;
            } else if b == q {
                quote = None;
            }
            continue;
        }
        match b {
            b'"' | b'\'' => quote = Some(b),
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(format!("line {line}: nested deeper than {MAX_DEPTH} levels"));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Parse a snapshot document (JSON if it starts with `{`, else YAML):
/// depth limit, schema, types, then [`validate`]. The error says what is
/// wrong, every graph problem on its own line; the caller adds the file.
pub fn parse_snapshot(text: &str) -> Result<Snapshot, String> {
    check_depth(text)?;
    let v: serde_json::Value = if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| e.to_string())?
    } else {
        serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?
    };
    match v.get("schema").and_then(|s| s.as_str()) {
        Some(super::SNAPSHOT_SCHEMA) => {}
        Some(other) => {
            return Err(format!(
                "snapshot schema {other:?} is not supported (this cgmig reads {})",
                super::SNAPSHOT_SCHEMA
            ));
        }
        None => return Err("not a cgmig snapshot (no schema field)".into()),
    }
    let snap: Snapshot = serde_json::from_value(v).map_err(|e| format!("invalid snapshot: {e}"))?;
    let problems = validate(&snap);
    if !problems.is_empty() {
        return Err(format!("inconsistent snapshot:\n  {}", problems.join("\n  ")));
    }
    Ok(snap)
}

/// Whether a cgroup path is absolute and normalized (`/`, `/a/b`; no `//`,
/// no trailing `/`, no `.` or `..` component).
pub fn is_normalized_path(p: &str) -> bool {
    p == "/"
        || (p.starts_with('/')
            && !p.ends_with('/')
            && p[1..].split('/').all(|c| !c.is_empty() && c != "." && c != ".."))
}

/// Every problem of a snapshot, one line each; empty when it is consistent.
pub fn validate(snap: &Snapshot) -> Vec<String> {
    let mut v = Checker::default();
    v.host(snap);
    v.nodes(snap);
    v.edges(snap);
    v.tree(snap);
    let extra = v.problems.len().saturating_sub(MAX_REPORTED);
    v.problems.truncate(MAX_REPORTED);
    if extra > 0 {
        v.problems.push(format!("... and {extra} more problems"));
    }
    v.problems
}

#[derive(Default)]
struct Checker {
    problems: Vec<String>,
}

impl Checker {
    fn say(&mut self, s: String) {
        self.problems.push(s);
    }

    fn name(&mut self, what: &str, s: &str) {
        if has_raw_control(s, &[]) {
            self.say(format!("{what} {s:?} contains a raw control character"));
        }
    }

    fn host(&mut self, snap: &Snapshot) {
        for (what, s) in [
            ("hostname", &snap.host.hostname),
            ("kernel", &snap.host.kernel),
            ("cmdline", &snap.host.cmdline),
        ] {
            if let Some(s) = s {
                self.name(what, s);
            }
        }
    }

    fn nodes(&mut self, snap: &Snapshot) {
        let mut ids = HashSet::new();
        let mut pids = HashSet::new();
        let mut tids = HashSet::new();
        let mut paths = HashSet::new();
        for i in snap.graph.node_indices() {
            match &snap.graph[i] {
                Node::Hierarchy(h) => {
                    if !ids.insert(h.id) {
                        self.say(format!("hierarchy id {} appears twice", h.id));
                    }
                    if h.scanned_mount.is_some_and(|m| m >= h.mounts.len()) {
                        self.say(format!("hierarchy {}: scanned_mount is out of range", h.id));
                    }
                    for m in &h.mounts {
                        if !m.mount_point.starts_with('/') {
                            self.say(format!(
                                "hierarchy {}: mount point {:?} is not absolute",
                                h.id, m.mount_point
                            ));
                        }
                        self.name("mount point", &m.mount_point);
                        self.name("mount root", &m.root);
                    }
                    if let Some(n) = &h.name {
                        self.name("hierarchy name", n);
                    }
                }
                Node::Cgroup(c) => {
                    if !is_normalized_path(&c.path) {
                        self.say(format!(
                            "cgroup {:?} in hierarchy {}: not an absolute normalized path",
                            c.path, c.hierarchy
                        ));
                    }
                    self.name("cgroup path", &c.path);
                    if !paths.insert((c.hierarchy, c.path.clone())) {
                        self.say(format!(
                            "cgroup {} appears twice in hierarchy {}",
                            c.path, c.hierarchy
                        ));
                    }
                    for (k, val) in &c.settings {
                        if k.is_empty() || k.contains('/') || k == "." || k == ".." {
                            self.say(format!(
                                "cgroup {}: setting name {k:?} is not a file name",
                                c.path
                            ));
                        }
                        self.name("setting name", k);
                        if has_raw_control(val, &['\n', '\t']) {
                            self.say(format!(
                                "cgroup {}: value of {k} contains a raw control character",
                                c.path
                            ));
                        }
                    }
                }
                Node::Process(p) => {
                    if !pids.insert(p.pid) {
                        self.say(format!("pid {} appears twice", p.pid));
                    }
                    self.name("comm", &p.comm);
                    for a in p.cmdline.iter().chain(&p.cgroup_files) {
                        self.name(&format!("pid {} argument", p.pid), a);
                    }
                }
                Node::Thread(t) => {
                    if !tids.insert(t.tid) {
                        self.say(format!("tid {} appears twice", t.tid));
                    }
                    self.name("thread comm", &t.comm);
                    for (_, p) in &t.unresolved {
                        self.name("membership path", p);
                    }
                }
            }
        }
        for (_, c) in snap.cgroups() {
            if !ids.contains(&c.hierarchy) {
                self.say(format!(
                    "cgroup {} names hierarchy {}, which does not exist",
                    c.path, c.hierarchy
                ));
            }
        }
    }

    fn edges(&mut self, snap: &Snapshot) {
        let kind = |i: NodeIndex| match &snap.graph[i] {
            Node::Hierarchy(_) => "hierarchy",
            Node::Cgroup(_) => "cgroup",
            Node::Process(_) => "process",
            Node::Thread(_) => "thread",
        };
        let mut member_of: HashMap<(NodeIndex, super::HierarchyId), usize> = HashMap::new();
        for e in snap.graph.edge_references() {
            let (s, t) = (kind(e.source()), kind(e.target()));
            let ok = matches!(
                (e.weight(), s, t),
                (Edge::Child, "hierarchy" | "cgroup", "cgroup")
                    | (Edge::Thread, "process", "thread")
                    | (Edge::Member, "thread", "cgroup")
            );
            if !ok {
                self.say(format!(
                    "edge {} {:?} from {s} to {t}: wrong node kinds",
                    e.id().index(),
                    e.weight()
                ));
                continue;
            }
            if *e.weight() == Edge::Member
                && let Node::Cgroup(c) = &snap.graph[e.target()]
            {
                *member_of.entry((e.source(), c.hierarchy)).or_default() += 1;
            }
        }
        if member_of.values().any(|&n| n > 1) {
            self.say("a thread is a member of two cgroups of one hierarchy".into());
        }
        for i in snap.graph.node_indices() {
            let incoming = |w: Edge| {
                snap.graph
                    .edges_directed(i, Direction::Incoming)
                    .filter(|e| *e.weight() == w)
                    .count()
            };
            match &snap.graph[i] {
                Node::Cgroup(c) if incoming(Edge::Child) != 1 => self.say(format!(
                    "cgroup {} in hierarchy {} has {} parents (needs exactly 1)",
                    c.path,
                    c.hierarchy,
                    incoming(Edge::Child)
                )),
                Node::Thread(t) if incoming(Edge::Thread) != 1 => self.say(format!(
                    "thread {} belongs to {} processes (needs exactly 1)",
                    t.tid,
                    incoming(Edge::Thread)
                )),
                _ => {}
            }
        }
    }

    /// Each hierarchy's cgroups form one tree rooted at `/`, children one
    /// component below their parent, all reachable (so no cycles).
    fn tree(&mut self, snap: &Snapshot) {
        let mut reached = BTreeSet::new();
        for (hi, h) in snap.hierarchies() {
            let roots: Vec<NodeIndex> = snap
                .graph
                .edges_directed(hi, Direction::Outgoing)
                .filter(|e| *e.weight() == Edge::Child)
                .map(|e| e.target())
                .collect();
            if roots.len() > 1 {
                self.say(format!("hierarchy {} has {} root cgroups", h.id, roots.len()));
            }
            let mut queue: VecDeque<NodeIndex> = roots.into_iter().collect();
            while let Some(n) = queue.pop_front() {
                let Node::Cgroup(c) = &snap.graph[n] else { continue };
                if !reached.insert(n) {
                    continue;
                }
                if c.hierarchy != h.id {
                    self.say(format!(
                        "cgroup {} of hierarchy {} hangs in hierarchy {}",
                        c.path, c.hierarchy, h.id
                    ));
                }
                let parent = snap
                    .graph
                    .edges_directed(n, Direction::Incoming)
                    .find(|e| *e.weight() == Edge::Child)
                    .map(|e| e.source());
                let expect_root = parent == Some(hi);
                if expect_root && c.path != "/" {
                    // A bind-mounted subtree's top is its mount root, not `/`.
                    let mount_root = h
                        .scanned_mount
                        .and_then(|m| h.mounts.get(m))
                        .map(|m| m.root.as_str());
                    if mount_root != Some(c.path.as_str()) {
                        self.say(format!(
                            "hierarchy {}: top cgroup {} is neither / nor the mount root",
                            h.id, c.path
                        ));
                    }
                }
                if let Some(Node::Cgroup(p)) = parent.map(|p| &snap.graph[p])
                    && super::path::parent(&c.path) != Some(p.path.as_str())
                {
                    self.say(format!("cgroup {} is not a direct child of {}", c.path, p.path));
                }
                for e in snap.graph.edges_directed(n, Direction::Outgoing) {
                    if *e.weight() == Edge::Child {
                        queue.push_back(e.target());
                    }
                }
            }
        }
        let unreached = snap.cgroups().filter(|(i, _)| !reached.contains(i)).count();
        if unreached > 0 {
            self.say(format!(
                "{unreached} cgroups are not reachable from any hierarchy (a parent cycle or a missing hierarchy)"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_and_paths() {
        assert!(check_depth(&"[".repeat(65)).is_err());
        assert!(check_depth(&"[".repeat(64)).is_ok());
        assert!(
            check_depth(&format!("\"{}\"", "[".repeat(100))).is_ok(),
            "inside a string"
        );
        for good in ["/", "/a", "/a/b c/d:e"] {
            assert!(is_normalized_path(good), "{good}");
        }
        for bad in ["", "a", "/a/", "//a", "/a/../b", "/./a", "/a//b"] {
            assert!(!is_normalized_path(bad), "{bad}");
        }
    }
}
