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
pub fn check_depth(text: &str) -> Result<(), DepthError> {
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
                    return Err(DepthError { line });
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
/// wrong and where (line and column, or every graph problem on its own line
/// with its cgroup path); the caller adds the file.
pub fn parse_snapshot(text: &str) -> Result<Snapshot, SnapshotError> {
    check_depth(text)?;
    let v: serde_json::Value = if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(SnapshotError::Json)?
    } else {
        serde_yaml_ng::from_str(text).map_err(SnapshotError::Yaml)?
    };
    match v.get("schema").and_then(|s| s.as_str()) {
        Some(super::SNAPSHOT_SCHEMA) => {}
        Some(other) => return Err(SnapshotError::Schema { found: other.into() }),
        None => return Err(SnapshotError::NoSchema),
    }
    let snap: Snapshot = serde_json::from_value(v).map_err(SnapshotError::Invalid)?;
    let problems = validate(&snap);
    if !problems.is_empty() {
        return Err(SnapshotError::Inconsistent { problems });
    }
    Ok(snap)
}

/// A document nested deeper than [`MAX_DEPTH`], with the line where it
/// crossed the limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: nested deeper than {MAX_DEPTH} levels")]
pub struct DepthError {
    /// 1-based line of the bracket that went one level too deep.
    pub line: usize,
}

/// Why a snapshot document was refused. Each parser's message (which names
/// line and column) is part of the text and not a `source()`, so an error
/// chain says it once; the caller adds the file name.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Nested deeper than [`MAX_DEPTH`].
    #[error("{0}")]
    TooDeep(DepthError),
    /// Not JSON (serde_json's message, with line and column).
    #[error("{0}")]
    Json(serde_json::Error),
    /// Not YAML (serde_yaml_ng's message, with line and column).
    #[error("{0}")]
    Yaml(serde_yaml_ng::Error),
    /// A snapshot of another schema version.
    #[error(
        "snapshot schema {found:?} is not supported (this cgmig reads {})",
        super::SNAPSHOT_SCHEMA
    )]
    Schema {
        /// The schema the document names.
        found: String,
    },
    /// No `schema` field: not a snapshot at all.
    #[error("not a cgmig snapshot (no schema field)")]
    NoSchema,
    /// The fields do not have the snapshot's types (serde's message).
    #[error("invalid snapshot: {0}")]
    Invalid(serde_json::Error),
    /// The graph breaks a rule of [`validate`] (each problem names its node).
    #[error("inconsistent snapshot:\n  {}", problems.join("\n  "))]
    Inconsistent {
        /// Every problem, one line each.
        problems: Vec<String>,
    },
}

impl From<DepthError> for SnapshotError {
    /// By hand, not `#[from]`: that would also make the depth error the
    /// `source()` of a message that already says it.
    fn from(e: DepthError) -> SnapshotError {
        SnapshotError::TooDeep(e)
    }
}

/// Kinds of kept files a scan produces (`readiness::ConfigFile::kind`).
pub const READINESS_FILE_KINDS: &[&str] = &[
    "lxc",
    "cgconfig",
    "grub-default",
    "bls",
    "kernel-cmdline",
    "rpi-cmdline",
];
/// Longest kept file text (the readiness scan reads at most 8 MiB a file).
pub const MAX_READINESS_TEXT: usize = 8 << 20;
/// Longest setting value or component field (systemd's longest line).
pub const MAX_READINESS_VALUE: usize = 1 << 20;
/// Longest path (`PATH_MAX`).
pub const MAX_READINESS_PATH: usize = 4096;
/// Most files, settings or components of one inventory.
pub const MAX_READINESS_ITEMS: usize = 1_000_000;

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
    v.readiness(&snap.readiness);
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

    /// The readiness inventory: every path a later command may write to or
    /// name (`convert` writes each kept file at its path under `-o`) is
    /// absolute and normalized with no control character; kinds are the
    /// ones the scan produces; texts and values fit the scan's own bounds.
    fn readiness(&mut self, r: &super::readiness::Readiness) {
        let path = |c: &mut Checker, what: &str, p: &str| {
            if !is_normalized_path(p) || p.len() > MAX_READINESS_PATH {
                c.say(format!(
                    "readiness: {what} {p:?} is not an absolute normalized path (no '..', '.', '//')"
                ));
            }
            c.name(&format!("readiness: {what}"), p);
        };
        if r.files.len() > MAX_READINESS_ITEMS
            || r.settings.len() > MAX_READINESS_ITEMS
            || r.components.len() > MAX_READINESS_ITEMS
        {
            self.say(format!(
                "readiness: more than {MAX_READINESS_ITEMS} files, settings or components"
            ));
            return;
        }
        for f in &r.files {
            path(self, "file", &f.path);
            if !READINESS_FILE_KINDS.contains(&f.kind.as_str()) {
                self.say(format!(
                    "readiness: file {:?} has unknown kind {:?}",
                    f.path, f.kind
                ));
            }
            if f.text.len() > MAX_READINESS_TEXT {
                self.say(format!(
                    "readiness: file {:?} is longer than {MAX_READINESS_TEXT} bytes",
                    f.path
                ));
            }
            if has_raw_control(&f.text, &['\n', '\t', '\r']) {
                self.say(format!(
                    "readiness: file {:?} contains a raw control character",
                    f.path
                ));
            }
        }
        for st in &r.settings {
            path(self, "setting file", &st.file);
            for (what, t) in [("family", &st.family), ("key", &st.key)] {
                self.name(&format!("readiness: setting {what}"), t);
            }
            if let Some(sec) = &st.section {
                self.name("readiness: setting section", sec);
            }
            if st.value.len() > MAX_READINESS_VALUE {
                self.say(format!(
                    "readiness: {}:{} value of {} is longer than {MAX_READINESS_VALUE} bytes",
                    st.file,
                    st.line.unwrap_or(0),
                    st.key
                ));
            }
            // A unit value is one logical line (systemd joins continued
            // lines): a line break in it can only be forged, and would become
            // a second directive in a generated drop-in. No value holds NUL.
            let forbidden: &[char] = if st.family == "unit" {
                &['\n', '\r', '\0']
            } else {
                &['\0']
            };
            if st.value.contains(forbidden) {
                self.say(format!(
                    "readiness: {}:{} value of {} contains a line break or NUL",
                    st.file,
                    st.line.unwrap_or(0),
                    st.key
                ));
            }
        }
        for c in &r.components {
            for (what, t) in [
                ("name", &c.name),
                ("version", &c.version),
                ("evidence", &c.evidence),
            ] {
                if t.contains('\0') {
                    self.say(format!("readiness: component {what} {t:?} contains NUL"));
                }
                if t.len() > MAX_READINESS_VALUE {
                    self.say(format!(
                        "readiness: component {what} longer than {MAX_READINESS_VALUE} bytes"
                    ));
                }
            }
            self.name("readiness: component path", &c.path);
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

    /// The readiness inventory is checked like the graph: a kept file at a
    /// path with `..` (convert would write it there), a unit value with a
    /// line break (a second directive in a drop-in), an unknown kind.
    #[test]
    fn readiness_paths_and_values() {
        use crate::model::readiness::{ConfigFile, Readiness, Setting};
        let mut snap = crate::model::builder::SnapshotBuilder::new().build();
        snap.readiness = Readiness {
            scanned: true,
            files: vec![
                ConfigFile {
                    kind: "lxc".into(),
                    path: "/var/lib/lxc/../../../etc/cron.d/x".into(),
                    text: "lxc.cgroup.cpu.shares = 2\n".into(),
                },
                ConfigFile {
                    kind: "shell".into(),
                    path: "/etc/x".into(),
                    text: String::new(),
                },
            ],
            settings: vec![Setting::at_line(
                "unit",
                "/etc/systemd/system/a.service",
                3,
                Some("Service"),
                "MemoryLimit",
                "1G\nExecStartPre=/bin/sh -c id",
            )],
            ..Default::default()
        };
        let p = validate(&snap).join("\n");
        assert!(
            p.contains("\"/var/lib/lxc/../../../etc/cron.d/x\" is not an absolute normalized path"),
            "{p}"
        );
        assert!(p.contains("unknown kind \"shell\""), "{p}");
        assert!(
            p.contains("a.service:3 value of MemoryLimit contains a line break"),
            "{p}"
        );
    }

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
