//! Docs that work when followed (issue 24): every fenced shell command in
//! README.md, docs/*.md and contrib/**/README.md runs here, read from the
//! documents at test time, against a fixture host; the command synopses in
//! the docs match `cgmig SUB --help` (options and their choices); the man
//! pages' exit codes and environment match docs/cli.md.
//!
//! How a documented command runs (docs/testing.md, "Documented commands"):
//! - every document gets a fresh working directory holding the files its
//!   commands name (`host.json`, `web42.plan.json`, `reviewed.yaml`,
//!   `site-rules/`, `reports/`, `contrib/`, `testdata/`), made from the
//!   document's fixture host ([`hosts_of`]); each block starts there, and
//!   `cd` moves within it;
//! - `cgmig` is the binary under test, and [`REWRITES`] lets a command name a
//!   build of it (`cargo run --release --`, `target/release/cgmig`); the
//!   fixture builder example (`cargo run --example materialize`) runs in
//!   process;
//! - a `cgmig` command that reads "this host" (no `--root`/`--snapshot`)
//!   reads the fixture, and `verify` the host after the switch when the
//!   document has one; `apply` always runs on the simulator (`--dry-run`);
//! - absolute paths are mapped by [`ABSOLUTE`] (outputs go into the working
//!   directory, `/captures/NAME` is the fixture's tree); any other fails;
//! - a program that is neither in [`PROGRAMS`] nor [`TOOLS`] and is not on
//!   the [`SKIP`] list fails, so a new documented command is either run or
//!   listed here with the reason it is not;
//! - a fenced block without a language that holds a command (a program this
//!   test runs or skips) fails: mark it `sh` or `text`;
//! - a command passes when it exits 0, or with a code its comment names
//!   (`# … exit 3 …`); one that exits 0 prints nothing with "error" on
//!   stderr and leaves every file it writes (`-o`, `>`) non-empty.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use regex::Regex;

use crate::util::*;

// ---------------------------------------------------------------- tables

/// Commands that are documented but not run, each with the reason (matched
/// against each simple command of a line, program first, after the
/// [`REWRITES`]). `every_documented_command_runs` prints the entries no
/// documented command matches (some stand for commands that branches merging
/// next add: release artifacts, the playbook's family reports).
const SKIP: &[(&str, &str)] = &[
    (
        r"^scripts/test\b",
        "the whole suite, this test included: CI runs it (.ci/run)",
    ),
    (
        r"^scripts/vm-test\b",
        "boots QEMU guests: tests/integration/vm.rs runs every scenario",
    ),
    (
        r"^(less|cat|tar -tvf) /tmp/vm-",
        "reads what scripts/vm-test wrote",
    ),
    (
        r"^cargo (build|deb)\b",
        "builds the release binary or the .deb: a nested cargo waits on the lock of the \
         cargo test running this; scripts/ci-extra builds, installs and removes the package",
    ),
    (
        r"^(cargo bench|perf|target/release/deps/|/work/baseline/)",
        "benchmarks and profiles: minutes of CPU, figures in docs/performance.md",
    ),
    (
        r"^ansible-playbook\b",
        "needs Ansible and the inventory's hosts: scripts/ci-extra runs the playbook on \
         localhost in check mode",
    ),
    (
        r"^systemctl\b",
        "changes the live host's systemd: scripts/ci-extra checks the units with \
         systemd-analyze verify",
    ),
    (
        r"^(install|dpkg|rpm|sha256sum)\b",
        "installs a release artifact on the live host, and needs the artifacts \
         scripts/release builds (not cargo test)",
    ),
    (
        r"^scripts/release\b",
        "builds every release artifact (static binaries, .deb, .rpm): minutes, and a \
         nested cargo waits on the lock of the cargo test running this",
    ),
    (
        r"^(less|cp) reports/families/",
        "reads the family plans the playbook's plan phase wrote (ansible-playbook, skipped)",
    ),
    (
        r"^cgmig apply\b.* --target\b",
        "builds under a live cgroup2 subtree, which needs the plan's controllers on cgroup2 \
         (after the stage's boot); the simulator seeded from a hybrid fixture offers none: \
         tests/integration/apply_kernel.rs applies with --target on the real kernel",
    ),
    (
        r"^cgmig rollback\b",
        "needs the journal of a real apply and changes the live host: \
         tests/integration/apply_kernel.rs rolls back on the real kernel",
    ),
];

/// Programs a documented command may run here (besides `cd`, handled by
/// the test, and the [`REWRITES`]).
const PROGRAMS: &[&str] = &["cgmig", "cp", "mkdir", "ls", "cat", "head", "grep"];

/// Programs CI installs for the docs (`scripts/test`): the commands that
/// use them run in `documented_commands_that_need_tools_run`.
const TOOLS: &[(&str, &str)] = &[("dot", "graphviz")];

/// Text rewrites of a command's words, so that it names the binary under
/// test: (words as documented, words run, why).
const REWRITES: &[(&[&str], &[&str], &str)] = &[
    (
        &["cargo", "run", "--release", "--"],
        &["cgmig"],
        "the binary under test is that build",
    ),
    (
        &["cargo", "run", "--"],
        &["cgmig"],
        "the binary under test is that build",
    ),
    (
        &["target/release/cgmig"],
        &["cgmig"],
        "the binary under test stands for the release build",
    ),
    (
        &["./target/release/cgmig"],
        &["cgmig"],
        "the binary under test stands for the release build",
    ),
];

/// Where an absolute path in a documented command goes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Abs {
    /// Left as it is.
    Keep,
    /// `/captures/NAME`: the document's fixture host, as a tree.
    Capture,
    /// Into the working directory (`/var/lib/x` is `WORK/var/lib/x`), its
    /// parent directory made first.
    Sandbox,
}

/// Absolute path prefixes a documented command may name; any other fails.
const ABSOLUTE: &[(&str, Abs)] = &[
    ("/dev/null", Abs::Keep),
    // Only `apply --target` names it, and apply runs on the simulator here.
    ("/sys/fs/cgroup/", Abs::Keep),
    ("/captures/", Abs::Capture),
    ("/var/", Abs::Sandbox),
    ("/etc/", Abs::Sandbox),
    ("/usr/", Abs::Sandbox),
    ("/tmp/", Abs::Sandbox),
    ("/path/", Abs::Sandbox),
    ("/run/", Abs::Sandbox),
];

/// Options whose value is a cgroup path (`--only /kubepods.slice`), not a
/// file: kept as written.
const CGROUP_PATH_FLAGS: &[&str] = &["--only"];

/// `cgmig` subcommands that read a host (and take `--root`/`--snapshot`).
const READS_HOST: &[&str] = &["scan", "tree", "audit", "plan", "convert", "verify", "apply"];

/// A fixture host: `NAME` is testdata/hosts/NAME.yaml built by the fixture
/// builder (a tree for `--root`), `NAME.snapshot.json` a captured snapshot.
type FixtureName = &'static str;

/// "This host" for a document's commands, and the host after the switch
/// (what `verify` reads) when the document verifies one.
fn hosts_of(doc: &str) -> (FixtureName, Option<FixtureName>) {
    match doc {
        // A captured hybrid guest and its own unified boot (scripts/vm-systemd):
        // owners.md's `verify` examples compare a plan with a real switch.
        "docs/owners.md" => (
            "systemd-hybrid.snapshot.json",
            Some("systemd-unified.snapshot.json"),
        ),
        // A Kubernetes node (systemd driver): /kubepods.slice, hugetlb, pids,
        // memory and cpu,cpuacct on v1; no blocker, one error.
        _ => ("k8s-systemd", None),
    }
}

/// The fleet the docs' `reports/` directory holds (one snapshot per host).
const FLEET: &[FixtureName] = &["k8s-systemd", "k8s-cgroupfs", "centos7-legacy"];

/// `reviewed.yaml`: a waivers file for the default fixture host.
const WAIVERS: &str = "\
- rule: net_prio.ifpriomap
  path: /kubepods.slice/**
  who: ops@example.com
  why: pods set no SO_PRIORITY; reviewed in CHG-1234
";

/// `site-rules/site.yaml`: a site rule (a stricter severity for swap limits).
const SITE_RULES: &str = "\
- id: site.memsw
  title: Memory+swap limit (site policy)
  match:
    controller: memory
    file: memory.memsw.limit_in_bytes
  default: \"9223372036854771712\"
  finding:
    severity: warning
    why: \"{path} limits memory+swap to {value}: site policy reviews each\"
    remediation: \"Review with the workload's owner before the switch\"
  source: \"site policy\"
";

// ---------------------------------------------------------------- documents

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The documents whose commands run, as paths relative to the repository.
fn documents() -> Vec<String> {
    let mut v = vec!["README.md".to_string()];
    let mut docs: Vec<String> = std::fs::read_dir(repo().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".md"))
        .map(|n| format!("docs/{n}"))
        .collect();
    docs.sort();
    v.extend(docs);
    let mut stack = vec![repo().join("contrib")];
    let mut contrib = Vec::new();
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "README.md") {
                contrib.push(p.strip_prefix(repo()).unwrap().display().to_string());
            }
        }
    }
    contrib.sort();
    v.extend(contrib);
    v
}

/// A fenced block: its language and its lines (numbered).
#[derive(Debug)]
struct Block {
    lang: String,
    lines: Vec<(usize, String)>,
}

impl Block {
    fn is_shell(&self) -> bool {
        matches!(self.lang.as_str(), "sh" | "bash" | "shell" | "console")
    }
}

/// Lines of fenced blocks that name no language but read as a command (the
/// program is one this test runs or skips), as `FILE:LINE`: a command must
/// not hide from this test in an untagged block. Such a block is marked `sh`
/// (its commands run) or `text` (a synopsis, output, a diagram).
fn commands_in_untagged_blocks() -> Vec<String> {
    let mut out = Vec::new();
    for doc in documents() {
        let text = std::fs::read_to_string(repo().join(&doc)).unwrap();
        for b in blocks(&text).iter().filter(|b| b.lang.is_empty()) {
            let command = b.lines.iter().find(|(_, l)| {
                let l = l.trim_start();
                let l = l.strip_prefix("$ ").unwrap_or(l);
                let words = program_words(&lex(l));
                let Some(first) = words.first() else { return false };
                PROGRAMS.contains(&first.as_str())
                    || TOOLS.iter().any(|(t, _)| t == first)
                    || REWRITES.iter().any(|(from, _, _)| from[0] == first)
                    || SKIP
                        .iter()
                        .any(|(pat, _)| Regex::new(pat).unwrap().is_match(&words.join(" ")))
            });
            if let Some((n, l)) = command {
                out.push(format!("{doc}:{n}: `{}`", l.trim()));
            }
        }
    }
    out
}

/// The fenced blocks of a markdown text (``` or ~~~, indented or not).
fn blocks(text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<(char, usize, Block)> = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let t = line.trim_start();
        let fence = |c: char| t.chars().take_while(|&x| x == c).count();
        match &mut open {
            None => {
                for c in ['`', '~'] {
                    let k = fence(c);
                    if k >= 3 {
                        let lang = t[k..].split_whitespace().next().unwrap_or("").to_lowercase();
                        open = Some((
                            c,
                            k,
                            Block {
                                lang,
                                lines: Vec::new(),
                            },
                        ));
                        break;
                    }
                }
            }
            Some((c, k, b)) => {
                if fence(*c) >= *k && t.trim_end().chars().all(|x| x == *c) {
                    out.push(std::mem::replace(
                        b,
                        Block {
                            lang: String::new(),
                            lines: Vec::new(),
                        },
                    ));
                    open = None;
                } else {
                    b.lines.push((n, line.to_string()));
                }
            }
        }
    }
    out
}

/// One documented command line (continuations joined).
#[derive(Debug, Clone)]
struct DocCommand {
    file: String,
    line: usize,
    code: String,
    comment: String,
}

impl DocCommand {
    fn at(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

/// The commands of a shell block: comment lines dropped, `\` continuations
/// and heredocs joined, the trailing comment kept apart (it may name the
/// exit code). A `console` block's commands are its `$ ` lines.
fn commands(file: &str, b: &Block) -> Vec<DocCommand> {
    let mut out = Vec::new();
    let lines: Vec<(usize, String)> = if b.lang == "console" {
        b.lines
            .iter()
            .filter_map(|(n, l)| l.trim_start().strip_prefix("$ ").map(|c| (*n, c.to_string())))
            .collect()
    } else {
        b.lines.clone()
    };
    let heredoc = Regex::new(r"<<-?\s*'?([A-Za-z_]+)'?").unwrap();
    let mut i = 0;
    while i < lines.len() {
        let (n, first) = &lines[i];
        i += 1;
        let t = first.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let mut text = t.to_string();
        while text.ends_with('\\') && i < lines.len() {
            text.pop();
            text.push(' ');
            text.push_str(lines[i].1.trim());
            i += 1;
        }
        let (code, comment) = split_comment(&text);
        let mut code = code.trim().to_string();
        if let Some(word) = heredoc.captures(&code).map(|c| c[1].to_string()) {
            while i < lines.len() {
                code.push('\n');
                code.push_str(&lines[i].1);
                i += 1;
                if lines[i - 1].1.trim() == word {
                    break;
                }
            }
        }
        out.push(DocCommand {
            file: file.to_string(),
            line: *n,
            code,
            comment: comment.trim().to_string(),
        });
    }
    out
}

/// Split a shell line at its comment: a `#` at a word start, outside quotes.
fn split_comment(s: &str) -> (String, String) {
    let (mut single, mut double, mut escaped) = (false, false, false);
    let mut prev = ' ';
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' && !single {
            escaped = true;
        } else if c == '\'' && !double {
            single = !single;
        } else if c == '"' && !single {
            double = !double;
        } else if c == '#' && !single && !double && prev.is_whitespace() {
            return (s[..i].to_string(), s[i + 1..].to_string());
        }
        prev = c;
    }
    (s.to_string(), String::new())
}

/// Every documented command, by document, read now.
fn documented() -> Vec<(String, Vec<Vec<DocCommand>>)> {
    documents()
        .into_iter()
        .map(|doc| {
            let text = std::fs::read_to_string(repo().join(&doc)).unwrap();
            let cmds = blocks(&text)
                .iter()
                .filter(|b| b.is_shell())
                .map(|b| commands(&doc, b))
                .collect();
            (doc, cmds)
        })
        .collect()
}

// ---------------------------------------------------------------- shell words

/// A shell word: as written, and its value once unquoted.
#[derive(Debug, Clone)]
struct Word {
    raw: String,
    value: String,
}

/// A piece of a command line.
#[derive(Debug, Clone)]
enum Piece {
    Word(Word),
    /// `|`, `||`, `&&`, `;`, `&`: between simple commands.
    Op(String),
    /// `>`, `>>`, `<`, `2>`, `2>&1`…, with its target when it has one.
    Redirect(String, Option<Word>),
}

/// Split a command line into words, operators and redirections (quotes and
/// backslashes as the shell reads them; expansions are left to bash).
fn lex(s: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut pending_redirect: Option<String> = None;
    let redir = Regex::new(r"^(\d?>>?(&\d)?|<|&>)").unwrap();
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        // Operators and redirections.
        let rest: String = chars[i..].iter().take(4).collect();
        let op = ["||", "&&", "|", ";", "&"]
            .into_iter()
            .find(|o| rest.starts_with(o) && !rest.starts_with("&>"));
        if let Some(o) = op {
            out.push(Piece::Op(o.to_string()));
            i += o.len();
            continue;
        }
        if let Some(m) = redir.find(&rest) {
            let r = m.as_str().to_string();
            i += r.chars().count();
            if r.contains('&') && r != "&>" {
                out.push(Piece::Redirect(r, None));
            } else {
                pending_redirect = Some(r);
            }
            continue;
        }
        // A word.
        let (mut raw, mut value) = (String::new(), String::new());
        let (mut single, mut double) = (false, false);
        while i < chars.len() {
            let c = chars[i];
            if !single && !double && (c.is_whitespace() || "|;&<>".contains(c)) {
                break;
            }
            raw.push(c);
            i += 1;
            match c {
                '\'' if !double => single = !single,
                '"' if !single => double = !double,
                '\\' if !single && i < chars.len() => {
                    raw.push(chars[i]);
                    value.push(chars[i]);
                    i += 1;
                }
                _ => value.push(c),
            }
        }
        let w = Word { raw, value };
        match pending_redirect.take() {
            Some(r) => out.push(Piece::Redirect(r, Some(w))),
            None => out.push(Piece::Word(w)),
        }
    }
    if let Some(r) = pending_redirect {
        out.push(Piece::Redirect(r, None));
    }
    out
}

/// A word for the shell: as it is when it needs no quoting.
fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-=,:@%+".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn word(value: &str) -> Word {
    Word {
        raw: quote(value),
        value: value.to_string(),
    }
}

fn render(pieces: &[Piece]) -> String {
    let parts: Vec<String> = pieces
        .iter()
        .map(|p| match p {
            Piece::Word(w) => w.raw.clone(),
            Piece::Op(o) => o.clone(),
            Piece::Redirect(r, Some(w)) => format!("{r} {}", w.raw),
            Piece::Redirect(r, None) => r.clone(),
        })
        .collect();
    parts.join(" ")
}

/// The simple commands of a line: ranges of `pieces` between operators.
fn simple_ranges(pieces: &[Piece]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, p) in pieces.iter().enumerate() {
        if matches!(p, Piece::Op(_)) {
            out.push(start..i);
            start = i + 1;
        }
    }
    out.push(start..pieces.len());
    out.retain(|r| !r.is_empty());
    out
}

/// The words of a simple command, `VAR=value` assignments and `env` dropped.
fn program_words(pieces: &[Piece]) -> Vec<String> {
    let assign = Regex::new(r"^[A-Za-z_][A-Za-z0-9_]*=").unwrap();
    let words: Vec<String> = pieces
        .iter()
        .filter_map(|p| match p {
            Piece::Word(w) => Some(w.value.clone()),
            _ => None,
        })
        .collect();
    let mut i = 0;
    while i < words.len() && (assign.is_match(&words[i]) || words[i] == "env") {
        i += 1;
    }
    words[i..].to_vec()
}

// ---------------------------------------------------------------- sandbox

/// An input for `--root`/`--snapshot`.
#[derive(Debug, Clone)]
enum Input {
    Root(PathBuf),
    Snapshot(PathBuf),
}

impl Input {
    fn flag(&self) -> (&'static str, &Path) {
        match self {
            Input::Root(p) => ("--root", p),
            Input::Snapshot(p) => ("--snapshot", p),
        }
    }
}

/// The fixture hosts a test uses, made once, removed with the test.
struct Fixtures {
    dir: tempfile::TempDir,
    bin: PathBuf,
    made: BTreeMap<&'static str, Input>,
}

impl Fixtures {
    fn new() -> Fixtures {
        let dir = scratch();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_cgmig"), bin.join("cgmig")).unwrap();
        Fixtures {
            dir,
            bin,
            made: BTreeMap::new(),
        }
    }

    fn input(&mut self, name: FixtureName) -> Input {
        if let Some(i) = self.made.get(name) {
            return i.clone();
        }
        let i = if name.ends_with(".snapshot.json") {
            Input::Snapshot(hosts_dir().join(name))
        } else {
            let root = self.dir.path().join("hosts").join(name);
            std::fs::create_dir_all(&root).unwrap();
            let spec = cgmig::fixture::HostSpec::load(&hosts_dir().join(format!("{name}.yaml"))).unwrap();
            cgmig::fixture::materialize(&spec, &root, &rules()).unwrap();
            Input::Root(root)
        };
        self.made.insert(name, i.clone());
        i
    }

    /// A snapshot file of a fixture host (scanned once when it is a tree).
    fn snapshot(&mut self, name: FixtureName, to: &Path) {
        let from = match self.input(name) {
            Input::Snapshot(p) => p,
            Input::Root(r) => {
                let scanned = self.dir.path().join("hosts").join(format!("{name}.json"));
                if !scanned.exists() {
                    let o = cgmig(&[
                        "scan",
                        "--root",
                        &r.display().to_string(),
                        "-o",
                        &scanned.display().to_string(),
                    ]);
                    assert!(o.status.success(), "scan {name}: {}", stderr(&o));
                }
                scanned
            }
        };
        std::fs::copy(from, to).unwrap();
    }
}

/// A document's working directory and hosts.
struct Sandbox {
    work: PathBuf,
    bin: PathBuf,
    before: Input,
    after: Option<Input>,
    /// Run the commands that use a tool CI installs (`TOOLS`).
    tools: bool,
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if e.file_type().unwrap().is_dir() {
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

impl Sandbox {
    /// The working directory of `doc`, with the files its commands name.
    fn new(fx: &mut Fixtures, doc: &str, tools: bool) -> Sandbox {
        let (before_name, after_name) = hosts_of(doc);
        let work = fx.dir.path().join("work").join(doc.replace('/', "_"));
        std::fs::create_dir_all(work.join("home")).unwrap();
        let before = fx.input(before_name);
        let after = after_name.map(|a| fx.input(a));
        let w = |p: &str| work.join(p);
        fx.snapshot(before_name, &w("host.json"));
        let o = cgmig(&[
            "plan",
            "--snapshot",
            &w("host.json").display().to_string(),
            "--format",
            "json",
            "--fail-on",
            "never",
            "-o",
            &w("host.plan.json").display().to_string(),
        ]);
        assert!(o.status.success(), "plan {before_name}: {}", stderr(&o));
        std::fs::copy(w("host.json"), w("web42.json")).unwrap();
        std::fs::copy(w("host.plan.json"), w("web42.plan.json")).unwrap();
        // A plan made from a snapshot (`apply … --match keys`).
        std::fs::copy(w("host.plan.json"), w("snapshot.plan.json")).unwrap();
        if let Some(a) = after_name {
            fx.snapshot(a, &w("after.json"));
        }
        std::fs::write(w("reviewed.yaml"), WAIVERS).unwrap();
        std::fs::create_dir(w("site-rules")).unwrap();
        std::fs::write(w("site-rules/site.yaml"), SITE_RULES).unwrap();
        std::fs::create_dir(w("reports")).unwrap();
        for h in FLEET {
            fx.snapshot(h, &w(&format!("reports/{h}.json")));
        }
        copy_tree(&repo().join("contrib"), &w("contrib"));
        std::os::unix::fs::symlink(repo().join("testdata"), w("testdata")).unwrap();
        Sandbox {
            work,
            bin: fx.bin.clone(),
            before,
            after,
            tools,
        }
    }
}

// ---------------------------------------------------------------- running

/// What became of a documented command.
#[derive(Debug, PartialEq)]
enum Outcome {
    Passed,
    Skipped(&'static str),
    /// Uses a tool CI installs (`TOOLS`): run by the tools test.
    NeedsTool(&'static str),
    Failed(String),
}

/// A command ready to run: the line for bash, or the fixture builder.
enum Ready {
    Bash { line: String, outputs: Vec<String> },
    Materialize { spec: String, dir: String },
}

/// Turn a documented command into what runs here, or why it does not.
fn prepare(sb: &Sandbox, c: &DocCommand) -> Result<Ready, Outcome> {
    let mut pieces = lex(&c.code);
    // Rewrites first: they name what the skip list and the programs see.
    for r in simple_ranges(&pieces).into_iter().rev() {
        let words: Vec<String> = pieces[r.clone()]
            .iter()
            .filter_map(|p| {
                if let Piece::Word(w) = p {
                    Some(w.value.clone())
                } else {
                    None
                }
            })
            .collect();
        let strs: Vec<&str> = words.iter().map(String::as_str).collect();
        if let ["cargo", "run", rest @ ..] = strs.as_slice()
            && let Some(i) = rest.iter().position(|w| *w == "--example")
            && rest.get(i + 1) == Some(&"materialize")
        {
            let tail: Vec<&&str> = rest.iter().skip_while(|w| **w != "--").skip(1).collect();
            let [spec, dir] = tail.as_slice() else {
                return Err(Outcome::Failed(format!("materialize takes SPEC DIR: {}", c.code)));
            };
            let dir = map_path(sb, dir).map_err(Outcome::Failed)?;
            return Ok(Ready::Materialize {
                spec: spec.to_string(),
                dir,
            });
        }
        for (from, to, _) in REWRITES {
            if strs.len() >= from.len() && strs[..from.len()] == **from {
                let start = r.start;
                pieces.splice(start..start + from.len(), to.iter().map(|t| Piece::Word(word(t))));
                break;
            }
        }
    }
    // Skip list, then the programs.
    for r in simple_ranges(&pieces) {
        let text = program_words(&pieces[r]).join(" ");
        for (pat, why) in SKIP {
            if Regex::new(pat).unwrap().is_match(&text) {
                return Err(Outcome::Skipped(why));
            }
        }
    }
    let mut tool = None;
    for r in simple_ranges(&pieces) {
        let words = program_words(&pieces[r]);
        let Some(prog) = words.first() else { continue };
        if let Some((t, _)) = TOOLS.iter().find(|(t, _)| t == prog) {
            tool = Some(*t);
        } else if !PROGRAMS.contains(&prog.as_str()) {
            return Err(Outcome::Failed(format!(
                "`{prog}` is not a program the docs test runs: add it to PROGRAMS (or TOOLS), \
                 or put the command on the SKIP list with the reason it cannot run here"
            )));
        }
    }
    // Absolute paths, then the host a `cgmig` command reads.
    map_paths(sb, &mut pieces).map_err(Outcome::Failed)?;
    let mut outputs = Vec::new();
    for r in simple_ranges(&pieces).into_iter().rev() {
        host_flags(sb, &mut pieces, r.clone()).map_err(Outcome::Failed)?;
    }
    for (i, p) in pieces.iter().enumerate() {
        match p {
            Piece::Redirect(r, Some(w))
                if r.ends_with('>') && !r.starts_with('2') && w.value != "/dev/null" =>
            {
                outputs.push(w.value.clone());
            }
            Piece::Word(w) if w.value == "-o" || w.value == "--output" => {
                if let Some(Piece::Word(next)) = pieces.get(i + 1) {
                    outputs.push(next.value.clone());
                }
            }
            _ => {}
        }
    }
    if let Some(t) = tool
        && !sb.tools
    {
        return Err(Outcome::NeedsTool(t));
    }
    Ok(Ready::Bash {
        line: render(&pieces),
        outputs,
    })
}

/// Map the absolute paths of a command's words ([`ABSOLUTE`]); the value
/// of a [`CGROUP_PATH_FLAGS`] option is a cgroup path, kept.
fn map_paths(sb: &Sandbox, pieces: &mut [Piece]) -> Result<(), String> {
    let mut after_cgroup_flag = false;
    for p in pieces.iter_mut() {
        let (Piece::Word(w) | Piece::Redirect(_, Some(w))) = p else {
            continue;
        };
        let keep = std::mem::replace(
            &mut after_cgroup_flag,
            CGROUP_PATH_FLAGS.contains(&w.value.as_str()),
        );
        if keep {
            continue;
        }
        // `--flag=/x` and `NAME=/x` (an environment assignment) name a path too.
        if let Some((flag, path)) = w.value.split_once('=')
            && path.starts_with('/')
            && !flag.contains('/')
        {
            if CGROUP_PATH_FLAGS.contains(&flag) {
                continue;
            }
            *w = word(&format!("{flag}={}", map_path(sb, path)?));
        } else if w.value.starts_with('/') {
            *w = word(&map_path(sb, &w.value)?);
        } else if w.value.starts_with('-') && w.value.get(2..).is_some_and(|v| v.starts_with('/')) {
            // `-o/var/x`: this test would not see the path (CI runs as root).
            return Err(format!(
                "`{}`: write the path as its own word (`{} {}`)",
                w.value,
                &w.value[..2],
                &w.value[2..]
            ));
        }
    }
    Ok(())
}

/// Where an absolute path of a documented command goes here.
fn map_path(sb: &Sandbox, path: &str) -> Result<String, String> {
    if !path.starts_with('/') {
        return Ok(path.to_string());
    }
    let Some((prefix, how)) = ABSOLUTE
        .iter()
        .find(|(p, _)| path.starts_with(p) || path == p.trim_end_matches('/'))
    else {
        return Err(format!(
            "absolute path {path} is not one the docs test maps (ABSOLUTE): add where it goes"
        ));
    };
    match how {
        Abs::Keep => Ok(path.to_string()),
        Abs::Capture => {
            let Input::Root(root) = &sb.before else {
                return Err(format!("{path}: this document's host is a snapshot, not a tree"));
            };
            // /captures/NAME[/rest]: NAME is the host, the rest a path in it.
            let rest = path[prefix.len()..].split_once('/').map_or("", |(_, r)| r);
            Ok(root
                .join(rest)
                .display()
                .to_string()
                .trim_end_matches('/')
                .to_string())
        }
        Abs::Sandbox => {
            let p = sb.work.join(&path[1..]);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).unwrap();
            }
            Ok(p.display().to_string())
        }
    }
}

/// A `cgmig` command that reads a host reads the document's fixture; `apply`
/// runs on the simulator.
fn host_flags(sb: &Sandbox, pieces: &mut Vec<Piece>, r: std::ops::Range<usize>) -> Result<(), String> {
    let words: Vec<(usize, String)> = pieces[r.clone()]
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            if let Piece::Word(w) = p {
                Some((r.start + i, w.value.clone()))
            } else {
                None
            }
        })
        .collect();
    let Some(at) = words.iter().position(|(_, w)| w == "cgmig") else {
        return Ok(());
    };
    let mut j = at + 1;
    while j < words.len() && words[j].1.starts_with('-') {
        j += if words[j].1 == "--color" { 2 } else { 1 };
    }
    let Some((sub_at, sub)) = words.get(j).cloned() else {
        return Ok(());
    };
    if !READS_HOST.contains(&sub.as_str()) {
        return Ok(());
    }
    let has = |f: &str| {
        words
            .iter()
            .any(|(_, w)| w == f || w.starts_with(&format!("{f}=")))
    };
    let mut add: Vec<String> = Vec::new();
    if sub == "apply" && !has("--dry-run") {
        add.push("--dry-run".into());
    }
    if !has("--root") && !has("--snapshot") {
        let input = match (&sub[..], &sb.after) {
            ("verify", Some(a)) => a,
            _ => &sb.before,
        };
        let (flag, path) = input.flag();
        if sub == "scan" && flag != "--root" {
            return Err("`scan` needs a host tree, and this document's host is a snapshot".into());
        }
        add.push(flag.into());
        add.push(path.display().to_string());
    }
    let ins = sub_at + 1;
    pieces.splice(ins..ins, add.iter().map(|a| Piece::Word(word(a))));
    Ok(())
}

/// Exit codes a command's comment allows besides 0 (`# … exit 3 …`).
fn allowed_codes(comment: &str) -> BTreeSet<i32> {
    let re = Regex::new(r"\bexits?(?: code)? (\d)\b").unwrap();
    let mut s: BTreeSet<i32> = re.captures_iter(comment).map(|c| c[1].parse().unwrap()).collect();
    s.insert(0);
    s
}

/// Run one documented command in `cwd`; `cd` moves `cwd` (within the sandbox).
fn run(sb: &Sandbox, cwd: &mut PathBuf, c: &DocCommand) -> Outcome {
    if let Some(dir) = c.code.strip_prefix("cd ") {
        // Resolved (`..`, the testdata symlink), so `cd` cannot leave the working directory.
        let to = cwd.join(dir.trim()).canonicalize().unwrap_or_default();
        let work = sb.work.canonicalize().unwrap();
        if !to.is_dir() || !to.starts_with(&work) {
            return Outcome::Failed(format!(
                "cd {}: no such directory in the working directory",
                dir.trim()
            ));
        }
        *cwd = to;
        return Outcome::Passed;
    }
    let ready = match prepare(sb, c) {
        Ok(r) => r,
        Err(o) => return o,
    };
    let (line, outputs) = match ready {
        Ready::Materialize { spec, dir } => {
            let spec = cwd.join(spec);
            let done = cgmig::fixture::HostSpec::load(&spec)
                .map_err(|e| e.to_string())
                .and_then(|s| {
                    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
                    cgmig::fixture::materialize(&s, Path::new(&dir), &rules()).map_err(|e| e.to_string())
                });
            return match done {
                Ok(()) => Outcome::Passed,
                Err(e) => Outcome::Failed(format!("materialize: {e}")),
            };
        }
        Ready::Bash { line, outputs } => (line, outputs),
    };
    let path = format!(
        "{}:{}",
        sb.bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let o = Command::new("timeout")
        .args(["300", "bash", "-o", "pipefail", "-c", &line])
        .current_dir(&*cwd)
        .env("PATH", path)
        .env("HOME", sb.work.join("home"))
        .env("COLUMNS", "100")
        .env("NO_COLOR", "1")
        .env("PAGER", "cat")
        .env("CGMIG_LOCK", sb.work.join("cgmig.lock"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let code = o.status.code().unwrap_or(-1);
    let err = stderr(&o);
    let tail = |s: &str| {
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(12)..].join("\n    ")
    };
    let allowed = allowed_codes(&c.comment);
    if !allowed.contains(&code) {
        return Outcome::Failed(format!(
            "exit {code} (the docs allow {allowed:?}; name another in the line's comment, `# … exit N …`)\n  ran: {line}\n  stderr:\n    {}\n  stdout:\n    {}",
            tail(&err),
            tail(&stdout(&o))
        ));
    }
    if code == 0 {
        if err.to_lowercase().contains("error") {
            return Outcome::Failed(format!(
                "exit 0 but stderr says error\n  ran: {line}\n  stderr:\n    {}",
                tail(&err)
            ));
        }
        for out in outputs {
            let p = cwd.join(&out);
            let empty = if p.is_dir() {
                std::fs::read_dir(&p).map_or(true, |mut d| d.next().is_none())
            } else {
                std::fs::metadata(&p).map_or(true, |m| m.len() == 0)
            };
            if empty {
                return Outcome::Failed(format!("wrote nothing to {out}\n  ran: {line}"));
            }
        }
    }
    Outcome::Passed
}

/// Run every command of one document; the failures, named by file and line.
fn run_document(
    fx: &mut Fixtures,
    doc: &str,
    blocks: &[Vec<DocCommand>],
    tools: bool,
    tally: &mut Tally,
) -> Vec<String> {
    if blocks.iter().all(|b| b.is_empty()) {
        return Vec::new();
    }
    let sb = Sandbox::new(fx, doc, tools);
    let mut failures = Vec::new();
    for cmds in blocks {
        let mut cwd = sb.work.clone();
        for c in cmds {
            let o = run(&sb, &mut cwd, c);
            println!("{}: {:?}: {}", c.at(), o, c.code.lines().next().unwrap_or(""));
            match &o {
                Outcome::Failed(why) => failures.push(format!("{}: `{}`: {why}", c.at(), c.code)),
                Outcome::Passed => tally.passed += 1,
                Outcome::Skipped(why) => {
                    tally.skipped.entry(why).or_default().push(c.at());
                }
                Outcome::NeedsTool(t) => tally.tools.entry(t).or_default().push(c.at()),
            }
        }
    }
    failures
}

#[derive(Default)]
struct Tally {
    passed: usize,
    skipped: BTreeMap<&'static str, Vec<String>>,
    tools: BTreeMap<&'static str, Vec<String>>,
}

impl Tally {
    fn print(&self, what: &str, started: Instant) {
        println!(
            "{what}: {} commands ran in {:.1} s",
            self.passed,
            started.elapsed().as_secs_f64()
        );
        for (why, at) in &self.skipped {
            println!("  skipped {} ({why}): {}", at.len(), at.join(" "));
        }
        for (t, at) in &self.tools {
            println!(
                "  need {t}, run by documented_commands_that_need_tools_run: {}",
                at.join(" ")
            );
        }
    }
}

// ---------------------------------------------------------------- tests

#[test]
fn every_documented_command_runs() {
    let started = Instant::now();
    let mut fx = Fixtures::new();
    let mut tally = Tally::default();
    let mut failures: Vec<String> = commands_in_untagged_blocks()
        .into_iter()
        .map(|at| format!("{at}: a command in a fenced block without a language: mark the block ```sh (its commands run here) or ```text (a synopsis, output)"))
        .collect();
    for (doc, blocks) in documented() {
        failures.extend(run_document(&mut fx, &doc, &blocks, false, &mut tally));
    }
    tally.print("documented commands", started);
    assert!(
        failures.is_empty(),
        "documented commands that fail:\n\n{}",
        failures.join("\n\n")
    );
    assert!(
        tally.passed >= 40,
        "only {} documented commands ran",
        tally.passed
    );
    // The skip list stays short: an entry no documented command matches is
    // named here (some stand for commands other branches are adding).
    let unused: Vec<&str> = SKIP
        .iter()
        .filter(|(_, why)| !tally.skipped.contains_key(why))
        .map(|(pat, _)| *pat)
        .collect();
    if !unused.is_empty() {
        println!("SKIP entries no documented command matches today: {unused:?}");
    }
}

/// The commands that use a tool CI installs (`TOOLS`): `scripts/test`
/// installs it and sets `CGMIG_REQUIRE_DOC_TOOLS=1`, so there they must run.
#[test]
#[ignore = "needs tools: graphviz (dot)"]
fn documented_commands_that_need_tools_run() {
    for (tool, package) in TOOLS {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            if std::env::var("CGMIG_REQUIRE_DOC_TOOLS").as_deref() == Ok("1") {
                panic!("{tool} is required (CGMIG_REQUIRE_DOC_TOOLS=1): apt-get install {package}");
            }
            eprintln!("SKIPPED: {tool} not installed (apt-get install {package})");
            return;
        }
    }
    let started = Instant::now();
    let mut fx = Fixtures::new();
    let mut tally = Tally::default();
    let mut failures = Vec::new();
    for (doc, blocks) in documented() {
        let uses_tool = |c: &DocCommand| {
            let pieces = lex(&c.code);
            simple_ranges(&pieces).into_iter().any(|r| {
                program_words(&pieces[r])
                    .first()
                    .is_some_and(|p| TOOLS.iter().any(|(t, _)| t == p))
            })
        };
        // Each block as documented up to its last command that uses a
        // tool (what comes before may make its input).
        let blocks: Vec<Vec<DocCommand>> = blocks
            .iter()
            .filter_map(|b| b.iter().rposition(uses_tool).map(|last| b[..=last].to_vec()))
            .collect();
        if blocks.is_empty() {
            continue;
        }
        failures.extend(run_document(&mut fx, &doc, &blocks, true, &mut tally));
    }
    tally.print("documented commands with tools", started);
    assert!(tally.passed > 0, "no documented command uses {TOOLS:?}");
    assert!(
        failures.is_empty(),
        "documented commands that fail:\n\n{}",
        failures.join("\n\n")
    );
}

// ---------------------------------------------------------------- synopses

/// Options every subcommand takes from the top level, or clap adds.
const GLOBAL_OPTIONS: &[&str] = &["--help", "--version", "--color", "--no-pager"];

/// The long options of `cgmig ARGS --help`, each with its possible values
/// (empty when it takes any value or none), and the short options (`-o` for
/// `--output`); a command with subcommands (`rules list|check`) has the
/// options of them all.
fn help_options(args: &[&str]) -> BTreeMap<String, BTreeSet<String>> {
    help_options_and_shorts(args).0
}

fn help_options_and_shorts(args: &[&str]) -> (BTreeMap<String, BTreeSet<String>>, BTreeMap<String, String>) {
    let mut all = args.to_vec();
    all.push("--help");
    let o = cgmig(&all);
    assert!(o.status.success(), "cgmig {}: {}", all.join(" "), stderr(&o));
    let text = stdout(&o);
    let option = Regex::new(r"^\s+(?:(-\w), )?(--[a-z0-9-]+)").unwrap();
    let mut shorts = BTreeMap::new();
    let value = Regex::new(r"^\s+- ([a-z0-9][a-z0-9-]*):").unwrap();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut in_commands = false;
    let mut subs = Vec::new();
    for line in text.lines() {
        if line.starts_with("Commands:") {
            in_commands = true;
            continue;
        }
        if !line.starts_with(' ') {
            in_commands = false;
        }
        if in_commands {
            if let Some(sub) = line.split_whitespace().next().filter(|s| *s != "help") {
                subs.push(sub.to_string());
            }
            continue;
        }
        if let Some(c) = option.captures(line) {
            current = Some(c[2].to_string());
            out.entry(c[2].to_string()).or_default();
            if let Some(short) = c.get(1) {
                shorts.insert(short.as_str().to_string(), c[2].to_string());
            }
        } else if let (Some(cur), Some(v)) = (&current, value.captures(line)) {
            out.get_mut(cur).unwrap().insert(v[1].to_string());
        }
    }
    for sub in subs {
        let mut a = args.to_vec();
        a.push(&sub);
        let (o, s) = help_options_and_shorts(&a);
        for (k, v) in o {
            out.entry(k).or_default().extend(v);
        }
        shorts.extend(s);
    }
    (out, shorts)
}

/// The commands `cgmig --help` lists (`help` aside).
fn visible_commands() -> Vec<String> {
    let o = cgmig(&["--help"]);
    let mut v = Vec::new();
    let mut on = false;
    for line in stdout(&o).lines() {
        if line.starts_with("Commands:") {
            on = true;
        } else if !line.starts_with(' ') {
            on = false;
        } else if on && let Some(c) = line.split_whitespace().next().filter(|c| *c != "help") {
            v.push(c.to_string());
        }
    }
    v
}

/// The synopses of the docs: each `cgmig SUB …` line of a `text` block
/// (and its indented continuation lines), by subcommand, where it is.
fn synopses() -> BTreeMap<String, Vec<(String, String)>> {
    let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for doc in documents() {
        let text = std::fs::read_to_string(repo().join(&doc)).unwrap();
        for b in blocks(&text).iter().filter(|b| b.lang == "text") {
            let mut current: Option<(String, String, String)> = None;
            for (n, line) in &b.lines {
                if let Some(rest) = line.strip_prefix("cgmig ") {
                    if let Some((sub, at, text)) = current.take() {
                        out.entry(sub).or_default().push((at, text));
                    }
                    let sub = rest.split_whitespace().next().unwrap_or("").to_string();
                    current = Some((sub, format!("{doc}:{n}"), rest.to_string()));
                } else if line.starts_with(' ')
                    && let Some((_, _, text)) = &mut current
                {
                    text.push(' ');
                    text.push_str(line);
                } else if let Some(c) = current.take() {
                    out.entry(c.0).or_default().push((c.1, c.2));
                }
            }
            if let Some((sub, at, text)) = current {
                out.entry(sub).or_default().push((at, text));
            }
        }
    }
    out
}

/// The synopses in the docs say what `cgmig SUB --help` says: the same long
/// options, and the same choices where the help lists them
/// (`--format table|json`); docs/cli.md has one for every command.
#[test]
fn synopses_match_the_help() {
    let synopses = synopses();
    let top = help_options(&[]);
    assert!(top.contains_key("--color"), "cgmig --help lists --color: {top:?}");
    let commands = visible_commands();
    assert!(
        commands.len() >= 10,
        "cgmig --help lists its commands: {commands:?}"
    );
    let mut problems = Vec::new();
    for c in &commands {
        if !synopses
            .get(c)
            .is_some_and(|v| v.iter().any(|(at, _)| at.starts_with("docs/cli.md:")))
        {
            problems.push(format!(
                "docs/cli.md: no synopsis for `cgmig {c}` (a ```text line `cgmig {c} [OPTIONS]`)"
            ));
        }
    }
    let short = Regex::new(r"(?:^|[\s\[])(-[a-zA-Z])\b").unwrap();
    let flag = Regex::new(r"(--[a-z0-9-]+)(?:[ =]([a-z0-9-]+(?:\|[A-Za-z0-9-]+)+))?").unwrap();
    for (sub, found) in &synopses {
        if sub == "help" || (!commands.contains(sub) && sub != "man") {
            problems.extend(
                found
                    .iter()
                    .map(|(at, _)| format!("{at}: `cgmig {sub}` is not a command of cgmig --help")),
            );
            continue;
        }
        let (help, shorts) = help_options_and_shorts(&[sub]);
        for (at, text) in found {
            let mut named = BTreeSet::new();
            for c in short.captures_iter(text) {
                match shorts.get(&c[1]) {
                    Some(long) => {
                        named.insert(long.clone());
                    }
                    None => problems.push(format!(
                        "{at}: `cgmig {sub}` has no option {} (cgmig {sub} --help)",
                        &c[1]
                    )),
                }
            }
            for c in flag.captures_iter(text) {
                let f = c[1].to_string();
                named.insert(f.clone());
                let Some(documented) = help.get(&f) else {
                    if !GLOBAL_OPTIONS.contains(&f.as_str()) {
                        problems.push(format!(
                            "{at}: `cgmig {sub}` has no option {f} (cgmig {sub} --help)"
                        ));
                    }
                    continue;
                };
                if let Some(values) = c.get(2) {
                    let listed: BTreeSet<String> = values
                        .as_str()
                        .split('|')
                        .filter(|v| v.chars().all(|x| !x.is_ascii_uppercase()))
                        .map(str::to_string)
                        .collect();
                    if !documented.is_empty() && listed != *documented {
                        problems.push(format!(
                            "{at}: `cgmig {sub} {f}` lists {listed:?}, the help {documented:?}"
                        ));
                    }
                }
            }
            // A full synopsis (docs/cli.md) names every option of the help.
            if at.starts_with("docs/cli.md:") {
                for f in help.keys() {
                    if !named.contains(f) && !GLOBAL_OPTIONS.contains(&f.as_str()) {
                        problems.push(format!(
                            "{at}: the synopsis of `cgmig {sub}` leaves out {f} (cgmig {sub} --help)"
                        ));
                    }
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "synopses that differ from the help:\n{}",
        problems.join("\n")
    );
}

// ---------------------------------------------------------------- man pages

/// A section of a man page (`.SH "NAME"` up to the next `.SH`).
fn man_section<'a>(page: &'a str, name: &str) -> Option<&'a str> {
    let start = page
        .find(&format!(".SH \"{name}\""))
        .or_else(|| page.find(&format!(".SH {name}\n")))?;
    let rest = &page[start + 4..];
    let end = rest.find("\n.SH ").map_or(rest.len(), |e| e + 1);
    Some(&rest[..end])
}

/// The man pages `cgmig man` writes and docs/cli.md agree: a page for every
/// command of `cgmig --help`; every exit code a page lists is a row of the
/// exit-code table of docs/cli.md (and every row is on some page); every
/// variable of ENVIRONMENT is named in docs/cli.md.
#[test]
fn man_pages_agree_with_cli_md() {
    let dir = scratch();
    let o = cgmig(&["man", "-o", &dir.path().display().to_string()]);
    assert!(o.status.success(), "cgmig man: {}", stderr(&o));
    let cli = std::fs::read_to_string(repo().join("docs/cli.md")).unwrap();
    let table = cli
        .split("## Exit codes")
        .nth(1)
        .expect("docs/cli.md has an \"## Exit codes\" section");
    let row = Regex::new(r"(?m)^\| (\d) \|").unwrap();
    let documented: BTreeSet<String> = row.captures_iter(table).map(|c| c[1].to_string()).collect();
    assert!(
        documented.contains("2"),
        "docs/cli.md's exit-code table: {documented:?}"
    );
    let bold = Regex::new(r"\\fB([A-Z_0-9]+)\\fR").unwrap();
    let mut problems = Vec::new();
    let mut listed = BTreeSet::new();
    let mut pages = 0;
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        let page = std::fs::read_to_string(&p).unwrap();
        pages += 1;
        let Some(exit) = man_section(&page, "EXIT STATUS") else {
            problems.push(format!("{name}: no EXIT STATUS"));
            continue;
        };
        for c in bold.captures_iter(exit) {
            if !documented.contains(&c[1]) {
                problems.push(format!(
                    "{name}: exit {} is not in docs/cli.md's exit-code table",
                    &c[1]
                ));
            }
            listed.insert(c[1].to_string());
        }
        match man_section(&page, "ENVIRONMENT") {
            None => problems.push(format!("{name}: no ENVIRONMENT")),
            Some(env) => {
                for c in bold.captures_iter(env) {
                    if !cli.contains(&c[1]) {
                        problems.push(format!(
                            "{name}: ENVIRONMENT names {}, docs/cli.md does not",
                            &c[1]
                        ));
                    }
                }
            }
        }
    }
    for code in documented.difference(&listed) {
        problems.push(format!(
            "docs/cli.md: exit {code} is on no man page's EXIT STATUS"
        ));
    }
    for c in visible_commands() {
        if !dir.path().join(format!("cgmig-{c}.1")).exists() {
            problems.push(format!("no man page cgmig-{c}.1 for `cgmig {c}`"));
        }
    }
    assert!(pages >= 10, "cgmig man wrote {pages} pages");
    assert!(
        problems.is_empty(),
        "man pages and docs/cli.md differ:\n{}",
        problems.join("\n")
    );
}

/// The commands quoted in the prose (`` `cgmig plan --stages one` ``) name a
/// command of cgmig and only options it has.
#[test]
fn inline_commands_name_real_options() {
    let span = Regex::new(r"`cgmig ([a-z]+)([^`]*)`").unwrap();
    let flag = Regex::new(r"(?:^|[\s\[(])(--[a-z0-9-]+)").unwrap();
    let commands = visible_commands();
    let mut help: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    let (mut seen, mut problems) = (0, Vec::new());
    for doc in documents() {
        let text = std::fs::read_to_string(repo().join(&doc)).unwrap();
        for (i, line) in text.lines().enumerate() {
            for c in span.captures_iter(line) {
                let sub = c[1].to_string();
                seen += 1;
                if !commands.contains(&sub) && sub != "man" {
                    problems.push(format!(
                        "{doc}:{}: `cgmig {sub}` is not a command of cgmig --help",
                        i + 1
                    ));
                    continue;
                }
                let options = help.entry(sub.clone()).or_insert_with(|| help_options(&[&sub]));
                for f in flag.captures_iter(&c[2]) {
                    if !options.contains_key(&f[1]) && !GLOBAL_OPTIONS.contains(&&f[1]) {
                        problems.push(format!("{doc}:{}: `cgmig {sub}` has no option {}", i + 1, &f[1]));
                    }
                }
            }
        }
    }
    assert!(seen >= 20, "only {seen} quoted cgmig commands in the docs");
    assert!(
        problems.is_empty(),
        "quoted commands that cgmig does not have:\n{}",
        problems.join("\n")
    );
}
