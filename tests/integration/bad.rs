//! The bad-input corpus (`testdata/bad/`): every command on every case.
//!
//! Each case is one YAML file under `testdata/bad/<class>/` (see
//! `testdata/bad/README.md`): what it tries, how to build the input from the
//! base host tree or base snapshot (symlinks out of the root, FIFOs,
//! sockets, device nodes and oversized files are made here, in the test's
//! own temporary directory, because git cannot hold them), and the exit code
//! and message each command must give. On top of a case's own expectations,
//! every run must: finish within a time limit (no hang), not panic, print
//! no dependency's "please report" line, never show the outside secret,
//! never print a raw escape character, and leave everything outside the
//! test's temporary directory as it was (the outside directory the case's
//! symlinks point at, the corpus itself).
//!
//! `CGMIG_BAD_REPORT=1` prints one line per run (case, command, exit, first
//! stderr line) for reviewing a new case.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

/// A run that takes longer than this is a hang.
const RUN_LIMIT: Duration = Duration::from_secs(20);
/// The secret every outside symlink points at; it must never be printed.
const SECRET: &str = "TOP-SECRET-7c1f";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    what: String,
    input: Input,
    #[serde(default)]
    setup: Vec<Step>,
    #[serde(default)]
    patch: Vec<Patch>,
    #[serde(default)]
    raw: Option<String>,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    rules: BTreeMap<String, String>,
    #[serde(default)]
    args: Vec<String>,
    /// The `-o` target of output cases, relative to the temp dir (`out`).
    #[serde(default)]
    out: Option<String>,
    expect: BTreeMap<String, Expect>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
enum Input {
    Root,
    Snapshot,
    Rules,
    Output,
    Cli,
}

/// One change to the input (paths relative to the case's input: the root
/// tree, the rules directory, or the output target `out`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Step {
    at: String,
    #[serde(default)]
    write: Option<String>,
    #[serde(default)]
    remove: bool,
    /// Symlink target; `@outside` is replaced by the outside directory.
    #[serde(default)]
    symlink: Option<String>,
    #[serde(default)]
    fifo: bool,
    #[serde(default)]
    socket: bool,
    /// A character device (major, minor) made in the temp dir.
    #[serde(default)]
    chardev: Option<(u64, u64)>,
    /// A sparse file of this many bytes.
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    mkdir: bool,
    /// Change the owner of what is at `at` (no dereference).
    #[serde(default)]
    owner: Option<u32>,
    /// Raw bytes to write (not UTF-8 text).
    #[serde(default)]
    bytes: Option<Vec<u8>>,
    /// Raw bytes for a name: `at` is the parent, this the child dir name.
    #[serde(default)]
    raw_name: Option<Vec<u8>>,
    /// A SQLite database made by running this SQL (an rpmdb.sqlite).
    #[serde(default)]
    sqlite: Option<String>,
}

/// A JSON-pointer edit of the base snapshot.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Patch {
    at: String,
    #[serde(default)]
    set: Option<serde_json::Value>,
    #[serde(default)]
    remove: bool,
    #[serde(default)]
    push: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    exit: i32,
    /// Substrings stderr must contain.
    #[serde(default)]
    stderr: Vec<String>,
    /// Substrings stdout must contain.
    #[serde(default)]
    stdout: Vec<String>,
    /// Substrings stdout must not contain.
    #[serde(default)]
    not_stdout: Vec<String>,
}

fn bad_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/bad")
}

fn cases() -> Vec<(String, Case)> {
    let mut out = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(bad_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(char::is_numeric))
        })
        .collect();
    dirs.sort();
    for d in dirs {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files
            .into_iter()
            .filter(|f| f.extension().is_some_and(|e| e == "yaml"))
        {
            let name = f.strip_prefix(bad_dir()).unwrap().display().to_string();
            let text = std::fs::read_to_string(&f).unwrap();
            let case: Case = serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            out.push((name, case));
        }
    }
    out
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let t = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &t);
        } else {
            std::fs::copy(e.path(), &t).unwrap();
        }
    }
}

fn apply_step(base: &Path, outside: &Path, s: &Step) {
    use nix::sys::stat::{Mode, SFlag, makedev, mknod};
    let p = base.join(&s.at);
    let clear = |p: &Path| {
        if let Ok(m) = std::fs::symlink_metadata(p) {
            if m.is_dir() {
                std::fs::remove_dir_all(p).unwrap();
            } else {
                std::fs::remove_file(p).unwrap();
            }
        }
    };
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    if let Some(name) = &s.raw_name {
        let n = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(name);
        std::fs::create_dir_all(p.join(n)).unwrap();
        return;
    }
    if s.remove {
        clear(&p);
    }
    if let Some(t) = &s.write {
        clear(&p);
        std::fs::write(&p, t.replace("@outside", &outside.display().to_string())).unwrap();
    }
    if let Some(b) = &s.bytes {
        clear(&p);
        std::fs::write(&p, b).unwrap();
    }
    if let Some(t) = &s.symlink {
        clear(&p);
        std::os::unix::fs::symlink(t.replace("@outside", &outside.display().to_string()), &p).unwrap();
    }
    if s.fifo {
        clear(&p);
        nix::unistd::mkfifo(&p, Mode::from_bits_truncate(0o644)).unwrap();
    }
    if s.socket {
        clear(&p);
        let l = std::os::unix::net::UnixListener::bind(&p).unwrap();
        std::mem::forget(l); // the socket file must stay; the fd closes at exit
    }
    if let Some((maj, min)) = s.chardev {
        clear(&p);
        mknod(
            &p,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o644),
            makedev(maj, min),
        )
        .unwrap();
    }
    if let Some(n) = s.size {
        clear(&p);
        std::fs::File::create(&p).unwrap().set_len(n).unwrap();
    }
    if s.mkdir {
        std::fs::create_dir_all(&p).unwrap();
    }
    if let Some(sql) = &s.sqlite {
        clear(&p);
        let c = rusqlite::Connection::open(&p).unwrap();
        c.execute_batch(sql).unwrap();
    }
    if let Some(uid) = s.owner {
        std::os::unix::fs::lchown(&p, Some(uid), Some(uid)).unwrap();
    }
}

fn base_snapshot(dir: &Path) -> serde_json::Value {
    let root = dir.join("base-root");
    copy_tree(&bad_dir().join("base-root"), &root);
    let snap = cgmig::scan::scan(&cgmig::host::Root::new(&root).unwrap()).unwrap();
    assert!(
        snap.diagnostics.is_empty(),
        "base root is clean: {:?}",
        snap.diagnostics
    );
    serde_json::to_value(&snap).unwrap()
}

/// A patch value with `@outside` replaced by the outside directory.
fn outside_in(v: &serde_json::Value, outside: &Path) -> serde_json::Value {
    let text = v.to_string().replace("@outside", &outside.display().to_string());
    serde_json::from_str(&text).unwrap()
}

fn apply_patch(v: &mut serde_json::Value, p: &Patch, outside: &Path) {
    let (parent, last) = p.at.rsplit_once('/').unwrap();
    if let Some(s) = &p.set {
        *v.pointer_mut(&p.at).unwrap_or_else(|| panic!("{}", p.at)) = outside_in(s, outside);
    }
    if let Some(s) = &p.push {
        v.pointer_mut(&p.at)
            .unwrap()
            .as_array_mut()
            .unwrap()
            .push(outside_in(s, outside));
    }
    if p.remove {
        match v.pointer_mut(parent).unwrap() {
            serde_json::Value::Array(a) => {
                a.remove(last.parse().unwrap());
            }
            serde_json::Value::Object(o) => {
                o.remove(last);
            }
            other => panic!("cannot remove from {other}"),
        }
    }
}

/// The commands a case of this input kind runs: (name, args).
fn commands(case: &Case, input: &Path, base_root: &Path, out: &Path) -> Vec<(String, Vec<String>)> {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let i = input.display().to_string();
    let b = base_root.display().to_string();
    let o = out.display().to_string();
    match case.input {
        Input::Root => vec![
            ("scan".into(), s(&["scan", "--root", &i])),
            ("tree".into(), s(&["tree", "--root", &i])),
            ("audit".into(), s(&["audit", "--root", &i, "--fail-on", "never"])),
            (
                "audit-error".into(),
                s(&["audit", "--root", &i, "--fail-on", "error"]),
            ),
            (
                "audit-md".into(),
                s(&[
                    "audit",
                    "--root",
                    &i,
                    "--format",
                    "markdown",
                    "--fail-on",
                    "never",
                ]),
            ),
            ("plan".into(), s(&["plan", "--root", &i])),
        ]
        .into_iter()
        .chain(
            case.expect
                .contains_key("plan-json")
                .then(|| ("plan-json".into(), s(&["plan", "--root", &i, "--format", "json"]))),
        )
        .chain(convert_runs(case, "--root", &i, &o))
        .collect(),
        Input::Snapshot => vec![
            ("tree".into(), s(&["tree", "--snapshot", &i])),
            (
                "audit-error".into(),
                s(&["audit", "--snapshot", &i, "--fail-on", "error"]),
            ),
            ("plan".into(), s(&["plan", "--snapshot", &i])),
        ]
        .into_iter()
        .chain(convert_runs(case, "--snapshot", &i, &o))
        .collect(),
        Input::Rules => vec![
            ("check".into(), s(&["rules", "check", &i])),
            ("list".into(), s(&["rules", "list", "--rules", &i])),
            (
                "audit-rules".into(),
                s(&["audit", "--root", &b, "--rules", &i, "--fail-on", "never"]),
            ),
            ("plan-rules".into(), s(&["plan", "--root", &b, "--rules", &i])),
            ("tree-rules".into(), s(&["tree", "--root", &b, "--rules", &i])),
        ],
        Input::Output => vec![
            ("scan-o".into(), s(&["scan", "--root", &b, "-o", &o])),
            (
                "audit-o".into(),
                s(&["audit", "--root", &b, "--fail-on", "never", "-o", &o]),
            ),
            (
                "plan-o".into(),
                s(&["plan", "--root", &b, "--format", "json", "-o", &o]),
            ),
        ],
        Input::Cli => {
            let args = case
                .args
                .iter()
                .map(|a| a.replace("@base", &b).replace("@tmp", &i))
                .collect();
            vec![("run".into(), args)]
        }
    }
}

/// `convert` (diff on stdout) and `convert-o` (a tree under `out`), for the
/// cases that name them.
fn convert_runs(case: &Case, flag: &str, input: &str, out: &str) -> Vec<(String, Vec<String>)> {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let mut v = Vec::new();
    if case.expect.contains_key("convert") {
        v.push(("convert".into(), s(&["convert", flag, input])));
    }
    if case.expect.contains_key("convert-o") {
        v.push(("convert-o".into(), s(&["convert", flag, input, "-o", out])));
    }
    v
}

/// Run the binary with a time limit; (exit code, stdout, stderr).
fn run(args: &[String], cwd: &Path) -> (i32, Vec<u8>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cgmig"))
        .args(args)
        // Wide enough that no table wraps a message the cases look for.
        .env("COLUMNS", "1000")
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = out.read_to_end(&mut b);
        b
    });
    let t_err = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = err.read_to_end(&mut b);
        b
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("hang: cgmig {args:?} ran longer than {RUN_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stdout = t_out.join().unwrap();
    let stderr = String::from_utf8_lossy(&t_err.join().unwrap()).to_string();
    (status.code().unwrap_or(-1), stdout, stderr)
}

/// A fingerprint of a directory tree: every path with its type and content.
fn fingerprint(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd {
            let e = e.unwrap();
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            let what = if m.is_dir() {
                stack.push(e.path());
                "dir".to_string()
            } else if m.is_file() {
                format!("file {:?}", std::fs::read(e.path()).unwrap())
            } else {
                format!("{:?}", m.file_type())
            };
            out.push((e.path(), what));
        }
    }
    out.sort();
    out
}

fn check_run(name: &str, cmd: &str, exp: &Expect, code: i32, stdout: &[u8], stderr: &str) -> Vec<String> {
    let mut fails = Vec::new();
    let out = String::from_utf8_lossy(stdout);
    if code != exp.exit {
        fails.push(format!("exit {code}, expected {}", exp.exit));
    }
    for s in &exp.stderr {
        if !stderr.contains(s.as_str()) {
            fails.push(format!("stderr lacks {s:?}"));
        }
    }
    for s in &exp.stdout {
        if !out.contains(s.as_str()) {
            fails.push(format!("stdout lacks {s:?}"));
        }
    }
    for s in &exp.not_stdout {
        if out.contains(s.as_str()) {
            fails.push(format!("stdout has {s:?}"));
        }
    }
    if stderr.contains("panicked") || stderr.contains("RUST_BACKTRACE") {
        fails.push("panicked".into());
    }
    if stderr.contains("please report this procfs") || stderr.contains("procfs bug") {
        fails.push("a dependency's 'please report' line".into());
    }
    if out.contains(SECRET) || stderr.contains(SECRET) {
        fails.push("printed the outside secret".into());
    }
    if stdout.contains(&0x1b) || stderr.contains('\x1b') {
        fails.push("printed a raw ESC".into());
    }
    if code == 2 && stderr.trim().is_empty() {
        fails.push("exit 2 without a message".into());
    }
    // Messages: no cause said three times.
    for line in stderr.lines().filter(|l| l.len() > 20) {
        if stderr.matches(line).count() >= 3 {
            fails.push(format!("stderr repeats {line:?}"));
            break;
        }
    }
    fails
        .into_iter()
        .map(|f| format!("{name} [{cmd}]: {f}\n    stderr: {}", stderr.trim()))
        .collect()
}

/// Build one case's input and run its commands; (failures, runs).
fn run_case(
    name: &str,
    case: &Case,
    base_root: &Path,
    base_snap: &serde_json::Value,
    report: bool,
) -> (Vec<String>, usize) {
    let mut failures = Vec::new();
    let mut runs = 0;
    let tmp = crate::util::scratch();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), format!("{SECRET}\n")).unwrap();
    std::fs::create_dir_all(outside.path().join("sys/fs/cgroup/cpu/a")).unwrap();
    std::fs::write(
        outside.path().join("sys/fs/cgroup/cpu/a/cpu.shares"),
        format!("{SECRET}\n"),
    )
    .unwrap();
    let outside_before = fingerprint(outside.path());
    let input = match case.input {
        Input::Root => {
            let r = tmp.path().join("root");
            copy_tree(&bad_dir().join("base-root"), &r);
            r
        }
        Input::Snapshot => {
            let p = tmp
                .path()
                .join(format!("snap.{}", case.format.as_deref().unwrap_or("json")));
            let text = match &case.raw {
                Some(r) => r.clone(),
                None => {
                    let mut v = base_snap.clone();
                    for patch in &case.patch {
                        apply_patch(&mut v, patch, outside.path());
                    }
                    serde_json::to_string_pretty(&v).unwrap()
                }
            };
            std::fs::write(&p, text).unwrap();
            p
        }
        Input::Rules => {
            let d = tmp.path().join("rules");
            std::fs::create_dir_all(&d).unwrap();
            for (f, t) in &case.rules {
                std::fs::write(d.join(f), t).unwrap();
            }
            d
        }
        Input::Output | Input::Cli => tmp.path().to_path_buf(),
    };
    let step_base = if case.input == Input::Snapshot {
        tmp.path().to_path_buf()
    } else {
        input.clone()
    };
    for s in &case.setup {
        apply_step(&step_base, outside.path(), s);
    }
    let out = tmp.path().join(case.out.as_deref().unwrap_or("out"));
    let planted: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    for (cmd, args) in commands(case, &input, base_root, &out) {
        let exp = case
            .expect
            .get(&cmd)
            .or_else(|| case.expect.get("default"))
            .unwrap_or_else(|| panic!("{name}: no expectation for {cmd}"));
        let (code, stdout, stderr) = run(&args, tmp.path());
        runs += 1;
        if report {
            eprintln!(
                "REPORT {name} {cmd} exit={code} stderr={:?}",
                stderr.lines().next().unwrap_or("")
            );
        }
        failures.extend(check_run(name, &cmd, exp, code, &stdout, &stderr));
        // Output cases: whatever was at `out` before is either the new
        // complete document or untouched; no temporary file is left.
        if case.input == Input::Output {
            let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
                .filter(|n| n.contains(".cgmig-") && !planted.contains(n))
                .collect();
            if !leftovers.is_empty() {
                failures.push(format!("{name} [{cmd}]: temporary files left: {leftovers:?}"));
            }
        }
    }
    if fingerprint(outside.path()) != outside_before {
        failures.push(format!("{name}: the outside directory changed ({})", case.what));
    }
    (failures, runs)
}

/// Whether a case's setup needs root: a character device (mknod) or a file
/// owned by another user (lchown).
fn needs_root(case: &Case) -> bool {
    case.setup
        .iter()
        .any(|s| s.chardev.is_some() || s.owner.is_some())
}

/// Run every command on the corpus cases `which` selects, four workers at a
/// time, and fail with every failure listed.
fn run_corpus(which: fn(&Case) -> bool) {
    let cases: Vec<(String, Case)> = cases().into_iter().filter(|(_, c)| which(c)).collect();
    assert!(!cases.is_empty(), "no corpus case selected");
    let report = std::env::var_os("CGMIG_BAD_REPORT").is_some();
    let corpus_before = fingerprint(&bad_dir());
    let shared = crate::util::scratch();
    let base_root = shared.path().join("base");
    copy_tree(&bad_dir().join("base-root"), &base_root);
    let base_snap = base_snapshot(shared.path());
    let mut failures = Vec::new();
    let mut runs = 0;
    // Four workers: each run is a short process, mostly waiting on the OS.
    std::thread::scope(|sc| {
        let handles: Vec<_> = cases
            .chunks(cases.len().div_ceil(4))
            .map(|chunk| {
                let (base_root, base_snap) = (&base_root, &base_snap);
                sc.spawn(move || {
                    chunk
                        .iter()
                        .map(|(name, case)| run_case(name, case, base_root, base_snap, report))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            for (f, r) in h.join().unwrap() {
                failures.extend(f);
                runs += r;
            }
        }
    });
    assert_eq!(
        fingerprint(&bad_dir()),
        corpus_before,
        "the corpus itself changed"
    );
    eprintln!("bad-input corpus: {} cases, {runs} runs", cases.len());
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The corpus is large enough, and every case that needs no root runs.
#[test]
fn every_command_on_every_bad_input() {
    let all = cases().len();
    assert!(all >= 100, "the corpus has {all} cases, needs 100");
    run_corpus(|c| !needs_root(c));
}

/// The cases whose setup needs root (device nodes, other users' files).
#[test]
#[ignore = "needs root: the cases make character devices (mknod) and files owned by another user (lchown)"]
fn every_command_on_the_bad_inputs_that_need_root() {
    if !nix::unistd::geteuid().is_root() {
        assert!(
            std::env::var_os("CGMIG_REQUIRE_KERNEL_TESTS").is_none(),
            "the root cases of the bad-input corpus are required but this is not root"
        );
        eprintln!("SKIPPED: the root cases of the bad-input corpus need root (mknod/lchown)");
        return;
    }
    run_corpus(needs_root);
}

/// Class 7: a non-root run on the live host says so first, and the audit
/// verdict is incomplete, so `--fail-on error` fails. Runs the binary as
/// uid 65534 with `setpriv` (read-only: it only scans).
#[test]
#[ignore = "needs root: runs the binary as uid 65534 with setpriv"]
fn non_root_says_so_up_front() {
    let required = std::env::var_os("CGMIG_REQUIRE_KERNEL_TESTS").is_some();
    let can = nix::unistd::geteuid().is_root()
        && Command::new("setpriv")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
    if !can {
        assert!(!required, "needs root and setpriv to run as another user");
        eprintln!("skipping: needs root and setpriv (util-linux) to run as another user");
        return;
    }
    let o = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_cgmig"))
        .args(["audit", "--fail-on", "error"])
        .current_dir("/")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        err.lines().next().is_some_and(|l| l.contains("not root")),
        "first line: {err}"
    );
    assert!(
        out.contains("INCOMPLETE") && out.contains("scan.unreadable"),
        "{out}"
    );
    assert_eq!(o.status.code(), Some(1), "{err}");
}
