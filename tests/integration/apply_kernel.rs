//! `cgmig apply` and `rollback` on this machine's real kernel (root only).
//!
//! * a plan built by the test (tree, a threaded subtree, hugetlb limits,
//!   processes and a thread it spawned) applied to a uniquely named cgroup2
//!   subtree, verified, rolled back, verified gone;
//! * crash tests: the apply is SIGKILLed at every journal boundary in turn,
//!   then resumed (same end state as an uninterrupted apply) or rolled back
//!   (the state before);
//! * a live handover of `hugetlb`: taken to a private v1 mount, laid out
//!   there with spawned processes and threads, scanned, planned, handed back
//!   to cgroup2 with `apply --live`, rolled back to v1, applied again, and
//!   finally left on cgroup2 as found, even when the test fails;
//! * a read-only cgroup2 target is refused.
//!
//! Every test that touches `hugetlb` on cgroup2 holds [`hugetlb_lock`] (a
//! file lock, so other test binaries can take it too).

use std::io::BufRead;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

const V2: &str = "/sys/fs/cgroup/unified";

/// `None` if these tests can run here; otherwise why not.
fn cannot_run() -> Option<String> {
    if let Some(why) = crate::kernel_util::cannot_run(&["unshare", "python3", "mount", "mountpoint"]) {
        return Some(why);
    }
    let controllers = std::fs::read_to_string(format!("{V2}/cgroup.controllers")).unwrap_or_default();
    if !controllers.split_whitespace().any(|c| c == "hugetlb") {
        return Some(format!(
            "{V2} does not offer hugetlb (cgroup.controllers: {controllers:?})"
        ));
    }
    None
}

/// Skip with a printed reason, or fail when CI requires these tests.
fn require() -> bool {
    match cannot_run() {
        None => true,
        Some(why) => crate::kernel_util::skip_or_fail(&why),
    }
}

/// Serializes every user of hugetlb on cgroup2 (this file's tests, and any
/// other test that takes `/tmp/cgmig-hugetlb.lock`).
pub(crate) fn hugetlb_lock() -> nix::fcntl::Flock<std::fs::File> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open("/tmp/cgmig-hugetlb.lock")
        .unwrap();
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive).unwrap()
}

/// Why hugetlb is not free for a test to take, if it is not.
fn hugetlb_busy() -> Option<String> {
    let rows = std::fs::read_to_string("/proc/cgroups").unwrap_or_default();
    let row = rows
        .lines()
        .find(|l| l.starts_with("hugetlb\t") || l.starts_with("hugetlb "));
    let hier = row.and_then(|r| r.split_whitespace().nth(1)).unwrap_or("?");
    if hier != "0" {
        return Some(format!("hugetlb is bound to v1 hierarchy {hier} (/proc/cgroups)"));
    }
    let sc = std::fs::read_to_string(format!("{V2}/cgroup.subtree_control")).unwrap_or_default();
    if sc.split_whitespace().any(|c| c == "hugetlb") {
        return Some(format!(
            "hugetlb is enabled in {V2}/cgroup.subtree_control: someone uses it"
        ));
    }
    None
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_cgmig")
}

/// Removes the test's cgroup2 subtree and kills its processes, even on panic.
struct Guard {
    target: PathBuf,
    children: Vec<Child>,
    root_had_hugetlb: bool,
}

impl Drop for Guard {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        remove_tree(&self.target);
        if !self.root_had_hugetlb {
            let _ = std::fs::write(format!("{V2}/cgroup.subtree_control"), "-hugetlb");
        }
    }
}

/// -hugetlb bottom-up, then rmdir bottom-up (with the shared helper's retries).
fn remove_tree(t: &Path) {
    let mut dirs = Vec::new();
    let mut stack = vec![t.to_path_buf()];
    while let Some(d) = stack.pop() {
        if let Ok(rd) = std::fs::read_dir(&d) {
            stack.extend(
                rd.flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path()),
            );
            dirs.push(d);
        }
    }
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for d in &dirs {
        let _ = std::fs::write(d.join("cgroup.subtree_control"), "-hugetlb");
    }
    crate::kernel_util::remove_tree(t);
}

fn spawn_sleep() -> Child {
    Command::new("sleep").arg("300").spawn().unwrap()
}

/// A python process with two extra threads; returns it and their tids.
fn spawn_threads() -> (Child, Vec<u32>) {
    let mut c = Command::new("python3")
        .args([
            "-c",
            "import threading,sys\nev=threading.Event();ids=[]\n\
             def f():\n  ids.append(threading.get_native_id()); ev.wait()\n\
             ts=[threading.Thread(target=f) for _ in range(2)]\n[t.start() for t in ts]\n\
             import time\nwhile len(ids)<2: time.sleep(0.01)\nprint(' '.join(map(str,ids)),flush=True)\nev.wait()",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(c.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let tids = line.split_whitespace().map(|t| t.parse().unwrap()).collect();
    (c, tids)
}

fn key(pid: u32, threads: &[u32]) -> serde_json::Value {
    // spawn() may return before the child's exec: wait for its own comm
    // and its arguments. Before exec it carries the test thread's name; and
    // exec names the task before it maps the new arguments, so for a moment
    // the comm is the program's while /proc/PID/cmdline is still empty (a
    // key taken then matches nothing, and apply rightly moves nothing).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let execed = || {
        std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| !c.starts_with("apply_kernel"))
            && std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| !c.is_empty())
    };
    while !execed() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid: u32 = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap()
        .trim()
        .to_string();
    let cmdline: Vec<String> = std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
        .unwrap()
        .split('\0')
        .filter(|s| !s.is_empty())
        // As the scanner stores it: control characters escaped (`\n` -> `\x0a`).
        .map(|s| cgmig::model::path::from_bytes(s.as_bytes()))
        .collect();
    let threads: Vec<(u32, String)> = threads
        .iter()
        .map(|t| {
            (
                *t,
                std::fs::read_to_string(format!("/proc/{pid}/task/{t}/comm"))
                    .unwrap()
                    .trim()
                    .to_string(),
            )
        })
        .collect();
    serde_json::json!({"pid": pid, "uid": uid, "comm": comm, "cmdline": cmdline, "v1": [], "threads": threads})
}

fn setting(file: &str, value: &str) -> serde_json::Value {
    serde_json::json!({"file": file, "value": value, "origin": {"hierarchy": 0, "label": "test", "path": "/"},
                       "rule": "test", "function": "test", "inputs": []})
}

fn node(
    path: &str,
    ty: &str,
    settings: Vec<serde_json::Value>,
    procs: &[u32],
    threads: &[(u32, u32)],
) -> serde_json::Value {
    let threads: Vec<serde_json::Value> = threads
        .iter()
        .map(|(t, p)| serde_json::json!({"tid": t, "pid": p}))
        .collect();
    serde_json::json!({"path": path, "type": ty, "subtree_control": [], "settings": settings,
                       "processes": procs, "threads": threads, "origins": []})
}

/// The test's plan: /svc (limit) with a and b (a limit, a process each), and
/// /thr, a threaded domain holding the python process, one of whose threads
/// sits in the threaded /thr/t1.
fn test_plan(p1: u32, p2: u32, py: u32, tid: u32) -> cgmig::plan::Plan {
    let v = serde_json::json!({
        "schema": "cgmig.plan/v1",
        "host": {"hostname": null, "kernel": null, "mode": "hybrid"},
        "controllers": ["hugetlb"],
        "nodes": [
            node("/", "domain", vec![], &[], &[]),
            node("/svc", "domain", vec![setting("hugetlb.2MB.max", "8388608")], &[], &[]),
            node("/svc/a", "domain", vec![setting("hugetlb.2MB.max", "4194304")], &[p1], &[]),
            node("/svc/b", "domain", vec![], &[p2], &[]),
            node("/thr", "domain-threaded", vec![], &[py], &[]),
            node("/thr/t1", "threaded", vec![], &[], &[(tid, py)]),
        ],
        "actions": [], "findings": [], "conflicts": [],
        "spine": {"order": [], "settings_affected": 0, "tried": []},
        "stages": [],
        "process_keys": [key(p1, &[]), key(p2, &[]), key(py, &[tid])],
    });
    let mut p: cgmig::plan::Plan = serde_json::from_value(v).unwrap();
    cgmig::plan::finish(&mut p, None, "leaf");
    let bad = cgmig::plan::validate(&p);
    assert!(bad.is_empty(), "{bad:?}");
    p
}

/// Run cgmig in a private mount namespace.
fn run(dir: &Path, args: &[&str], kill_after: Option<usize>) -> Output {
    let mut c = Command::new("unshare");
    c.arg("-m")
        .arg(bin())
        .args(args)
        .env("CGMIG_LOCK", dir.join("lock"))
        .env("CGMIG_RUN_DIR", dir.join("run"))
        .env("CGMIG_STATE_DIR", dir.join("state"))
        .stdin(Stdio::null());
    match kill_after {
        Some(k) => c.env("CGMIG_TEST_KILL_AFTER", k.to_string()),
        None => c.env_remove("CGMIG_TEST_KILL_AFTER"),
    };
    c.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Everything observable in the subtree, with paths relative to it.
fn dump(t: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![t.to_path_buf()];
    while let Some(d) = stack.pop() {
        let rd = |f: &str| {
            let mut v: Vec<String> = std::fs::read_to_string(d.join(f))
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_string)
                .collect();
            v.sort();
            v.join(" ")
        };
        let rel = d.strip_prefix(t).unwrap().display().to_string();
        out.push(format!(
            "{rel:?} type={} sc=[{}] max={} procs=[{}] threads=[{}]",
            rd("cgroup.type"),
            rd("cgroup.subtree_control"),
            rd("hugetlb.2MB.max"),
            rd("cgroup.procs"),
            rd("cgroup.threads")
        ));
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
        }
    }
    out.sort();
    out
}

fn v2_cgroup_of(pid: u32, tid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/cgroup"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("0::").map(str::to_string))
        .unwrap()
}

#[test]
#[ignore = "needs root: applies a plan to a cgroup2 subtree with hugetlb and kills the applier mid-way"]
fn real_kernel_apply_to_a_subtree_crash_resume_and_rollback() {
    // Locked before require(): it checks that cgroup2 offers hugetlb, which
    // is untrue while another test has it on a v1 mount.
    let _lock = hugetlb_lock();
    if !require() {
        return;
    }
    if let Some(why) = hugetlb_busy() {
        crate::kernel_util::skip_or_fail(&why);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let target = PathBuf::from(format!("{V2}/cgmig-test-apply-{}", std::process::id()));
    let (py, tids) = spawn_threads();
    let mut g = Guard {
        target: target.clone(),
        children: vec![spawn_sleep(), spawn_sleep()],
        root_had_hugetlb: false,
    };
    let (p1, p2, pyid) = (g.children[0].id(), g.children[1].id(), py.id());
    g.children.push(py);
    let tid = tids[0];
    let plan = test_plan(p1, p2, pyid, tid);
    let plan_path = dir.path().join("plan.json");
    std::fs::write(&plan_path, serde_json::to_string_pretty(&plan).unwrap()).unwrap();
    let mut scene = Scene {
        dir: dir.path(),
        target,
        plan: plan_path.display().to_string(),
        pids: [p1, p2, pyid],
        tids: [tid, tids[1]],
        homes: Vec::new(),
        root_sc: std::fs::read_to_string(format!("{V2}/cgroup.subtree_control")).unwrap(),
    };
    scene.homes = scene.where_tasks_are();
    let (reference, steps) = scene.full_apply_and_rollback();
    scene.killed_at_every_boundary(&reference, steps);
    eprintln!("crash-tested {} boundaries of {steps} steps", 3 * steps);
}

/// The subtree test's world: its directory, the target, the plan file,
/// its processes (two sleepers and a threaded python) and what was there
/// before the first apply, which every rollback must bring back.
struct Scene<'a> {
    dir: &'a Path,
    target: PathBuf,
    plan: String,
    /// The two sleepers and the python.
    pids: [u32; 3],
    /// The python thread the plan moves, and one it leaves.
    tids: [u32; 2],
    /// Where each task of [`Scene::tasks`] was before.
    homes: Vec<String>,
    /// The cgroup2 root's `cgroup.subtree_control` before.
    root_sc: String,
}

impl Scene<'_> {
    /// (pid, tid) of each task the plan places.
    fn tasks(&self) -> [(u32, u32); 4] {
        let [p1, p2, pyid] = self.pids;
        [(p1, p1), (p2, p2), (pyid, pyid), (pyid, self.tids[0])]
    }

    fn where_tasks_are(&self) -> Vec<String> {
        self.tasks().iter().map(|(p, t)| v2_cgroup_of(*p, *t)).collect()
    }

    /// A rollback left nothing: the subtree is gone, the tasks are back
    /// where they were, the root enables what it did.
    fn assert_clean(&self, why: &str) {
        assert!(
            !self.target.exists(),
            "{why}: the subtree is left: {:?}",
            dump(&self.target)
        );
        assert_eq!(
            self.where_tasks_are(),
            self.homes,
            "{why}: tasks are back where they were"
        );
        assert_eq!(
            std::fs::read_to_string(format!("{V2}/cgroup.subtree_control")).unwrap(),
            self.root_sc,
            "{why}"
        );
    }

    fn journal(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// An uninterrupted apply, checked file by file against the plan, then
    /// its rollback: the reference tree every resume must reach, and the
    /// number of steps (for the crash loop).
    fn full_apply_and_rollback(&self) -> (Vec<String>, usize) {
        let (t, p) = (self.target.display().to_string(), &self.plan);
        let j0 = self.journal("j0");
        let o = run(
            self.dir,
            &[
                "apply",
                p,
                "--target",
                &t,
                "--journal",
                &j0,
                "--format",
                "json",
                "--yes",
                "--match",
                "keys",
            ],
            None,
        );
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let reference = dump(&self.target);
        let read = |path: &str| {
            std::fs::read_to_string(self.target.join(path.trim_start_matches('/')))
                .unwrap()
                .trim()
                .to_string()
        };
        let [p1, p2, _] = self.pids;
        assert_eq!(read("/svc/a/hugetlb.2MB.max"), "4194304");
        assert_eq!(read("/svc/hugetlb.2MB.max"), "8388608");
        assert_eq!(read("/svc/a/cgroup.procs"), p1.to_string());
        assert_eq!(read("/svc/b/cgroup.procs"), p2.to_string(), "{}", text(&o));
        assert_eq!(read("/thr/t1/cgroup.type"), "threaded");
        assert_eq!(
            read("/thr/t1/cgroup.threads"),
            self.tids[0].to_string(),
            "{}",
            text(&o)
        );
        assert!(read("/thr/cgroup.threads").contains(&self.tids[1].to_string()));
        let steps = cgmig::apply::journal::Journal::read(Path::new(&j0))
            .unwrap()
            .steps
            .len();
        let o = run(self.dir, &["rollback", &j0, "--yes"], None);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        self.assert_clean("rollback after a full apply");
        (reference, steps)
    }

    /// SIGKILL at every journal boundary (3 per step): a resume reaches the
    /// reference tree and rolls back clean; a killed apply rolls back clean.
    fn killed_at_every_boundary(&self, reference: &[String], steps: usize) {
        let (t, p) = (self.target.display().to_string(), &self.plan);
        for k in 1..=3 * steps {
            let j = self.journal(&format!("r{k}"));
            let fresh = [
                "apply",
                p,
                "--target",
                &t,
                "--journal",
                &j,
                "--yes",
                "--match",
                "keys",
            ];
            let o = run(self.dir, &fresh, Some(k));
            assert_eq!(o.status.signal(), Some(9), "boundary {k}: {}", text(&o));
            let o = run(
                self.dir,
                &["apply", p, "--resume", "--journal", &j, "--yes"],
                None,
            );
            assert_eq!(
                o.status.code(),
                Some(0),
                "resume after boundary {k}: {}",
                text(&o)
            );
            assert_eq!(dump(&self.target), reference, "resume after boundary {k}");
            let o = run(self.dir, &["rollback", &j, "--yes"], None);
            assert_eq!(o.status.code(), Some(0), "{}", text(&o));
            self.assert_clean(&format!("rollback after resume at {k}"));

            let j = self.journal(&format!("p{k}"));
            let fresh = [
                "apply",
                p,
                "--target",
                &t,
                "--journal",
                &j,
                "--yes",
                "--match",
                "keys",
            ];
            let o = run(self.dir, &fresh, Some(k));
            assert_eq!(o.status.signal(), Some(9), "boundary {k}: {}", text(&o));
            let o = run(self.dir, &["rollback", &j, "--yes"], None);
            assert_eq!(o.status.code(), Some(0), "partial rollback at {k}: {}", text(&o));
            self.assert_clean(&format!("rollback of a partial apply killed at {k}"));
        }
    }
}

#[test]
#[ignore = "needs root: mounts a read-only cgroup2 in a private mount namespace"]
fn real_kernel_read_only_target_is_refused() {
    // The plan sets hugetlb limits: while the live-handover test has hugetlb
    // on a v1 mount, require() and the apply would see no hugetlb on cgroup2.
    let _lock = hugetlb_lock();
    if !require() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Real PIDs for the keys; the apply is refused before anything moves.
    let plan = test_plan(std::process::id(), 1, 2, 2);
    let plan_path = dir.path().join("plan.json");
    std::fs::write(&plan_path, serde_json::to_string(&plan).unwrap()).unwrap();
    let mnt = dir.path().join("ro");
    std::fs::create_dir(&mnt).unwrap();
    let script = format!(
        "mount --bind {V2} {m} && mount -o remount,bind,ro {m} && CGMIG_LOCK={d}/lock CGMIG_RUN_DIR={d}/run {b} apply {p} --yes --match keys --target {m}/cgmig-test-apply-ro-{pid} </dev/null; echo rc=$?",
        m = mnt.display(),
        d = dir.path().display(),
        b = bin(),
        p = plan_path.display(),
        pid = std::process::id()
    );
    let o = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .output()
        .unwrap();
    let out = text(&o);
    assert!(out.contains("rc=2"), "{out}");
    assert!(out.contains("read-only"), "{out}");
    assert!(
        std::fs::read_dir(dir.path().join("run")).map_or(0, Iterator::count) <= 1,
        "no journal beside the lock"
    );
    assert!(!Path::new(&format!("{V2}/cgmig-test-apply-ro-{}", std::process::id())).exists());
}

/// Keeps only the v1 hierarchy carrying `hugetlb` (and its cgroups) in a
/// snapshot: the test plans what it built, not the whole machine.
const FILTER: &str = r#"
import json, sys
s = json.load(open(sys.argv[1])); g = s["graph"]; nodes = g["nodes"]
keep_h = {n["id"] for n in nodes if n["kind"] == "hierarchy" and n["version"] == "v1" and "hugetlb" in n["controllers"]}
def keep(n):
    if n["kind"] == "hierarchy": return n["id"] in keep_h
    if n["kind"] == "cgroup": return n["hierarchy"] in keep_h
    return True
idx = {}; new = []
for i, n in enumerate(nodes):
    if keep(n): idx[i] = len(new); new.append(n)
g["nodes"] = new; g["node_holes"] = []
g["edges"] = [[idx[a], idx[b], w] for a, b, w in g["edges"] if a in idx and b in idx]
json.dump(s, open(sys.argv[2], "w"))
"#;

/// The live handover, all in one private mount namespace. Prints `OK name`,
/// `FAIL name …`, `WINDOW ms`; its EXIT trap leaves hugetlb on cgroup2.
const LIVE: &str = r#"
set -u
BIN=$1; W=$2; U=$3; MODE=$4
H=$W/hugetlb; V2=/sys/fs/cgroup/unified; T=$V2/cgmig-test-apply-live-$U; G=$H/cgmig-apply-$U; N=cgmig-apply-$U
export CGMIG_LOCK=$W/lock CGMIG_RUN_DIR=$W/run CGMIG_STATE_DIR=$W/state
P1=; P2=; PY=
check() { if [ "$2" = "$3" ]; then echo "OK $1"; else echo "FAIL $1: got [$2] want [$3]"; fi; }
hier() { awk '$1=="hugetlb"{print $2}' /proc/cgroups; }
count() { awk '$1=="hugetlb"{print $3}' /proc/cgroups; }
cleanup() {
  set +e
  for p in $P1 $P2 $PY; do kill $p 2>/dev/null; done; wait 2>/dev/null
  if [ -d $T ]; then
    find $T -depth -type d | while read d; do echo -hugetlb > $d/cgroup.subtree_control 2>/dev/null; done
    find $T -depth -type d -exec rmdir {} \; 2>/dev/null
  fi
  echo -hugetlb > $V2/cgroup.subtree_control 2>/dev/null
  if mountpoint -q $H; then
    find $H -mindepth 1 -depth -type d -exec rmdir {} \; 2>/dev/null
    i=0; while [ $i -lt 500 ] && [ "$(count)" != 1 ]; do sleep 0.01; i=$((i+1)); done
    umount $H
  fi
  i=0; while [ $i -lt 500 ] && [ "$(hier)" != 0 ]; do sleep 0.01; i=$((i+1)); done
  echo "CLEANED hierarchy=$(hier)"
}
trap cleanup EXIT
v1state() { (cd $H && find $N -type d | sort | while read d; do echo "$d $(cat $d/hugetlb.2MB.limit_in_bytes) [$(sort -n $d/tasks | tr '\n' ' ')]"; done); }
v2check() {
  check "$1 hierarchy" "$(hier)" 0
  check "$1 v1 unmounted" "$(grep -c ' - cgroup .*hugetlb' /proc/self/mountinfo)" 0
  check "$1 web max" "$(cat $WEB/hugetlb.2MB.max)" 8388608
  check "$1 a max" "$(cat $WEB/a/hugetlb.2MB.max)" 4194304
  check "$1 batch max" "$(cat $BATCH/hugetlb.2MB.max)" 2097152
  check "$1 p1" "$(cat $WEB/a/cgroup.procs)" "$P1"
  check "$1 p2" "$(cat $WEB/b/cgroup.procs)" "$P2"
  check "$1 py threads" "$(sort -n $BATCH/cgroup.threads | tr '\n' ' ')" "$(ls /proc/$PY/task | sort -n | tr '\n' ' ')"
}
mkdir -p $H
# v2 releases hugetlb asynchronously after a previous user's -hugetlb: retry a moment.
i=0; until mount -t cgroup -o hugetlb cgmig-hugetlb $H 2>/dev/null; do i=$((i+1)); [ $i -gt 200 ] && { echo "FAIL mount hugetlb v1"; exit 1; }; sleep 0.025; done
# Stage mode: everything under web, so one subtree holds every process
# the test spawned (the machine's plan nests them in its own memory cgroup).
if [ "$MODE" = stage ]; then B1=$G/web/batch; else B1=$G/batch; fi
mkdir -p $G/web/a $G/web/b $B1
echo 8388608 > $G/web/hugetlb.2MB.limit_in_bytes
echo 4194304 > $G/web/a/hugetlb.2MB.limit_in_bytes
echo 2097152 > $B1/hugetlb.2MB.limit_in_bytes
sleep 300 & P1=$!
sleep 300 & P2=$!
python3 -c 'import threading,time
ev=threading.Event()
for _ in range(2): threading.Thread(target=ev.wait).start()
ev.wait()' & PY=$!
i=0; while [ $i -lt 500 ] && [ "$(ls /proc/$PY/task 2>/dev/null | wc -l)" != 3 ]; do sleep 0.01; i=$((i+1)); done
echo $P1 > $G/web/a/cgroup.procs; echo $P2 > $G/web/b/cgroup.procs; echo $PY > $B1/cgroup.procs
v1state > $W/v1.before
MEM_BEFORE=$(awk '$1=="memory"{print $2}' /proc/cgroups)
check "python has 3 threads" "$(ls /proc/$PY/task | wc -l)" 3
$BIN scan -o $W/snap.json 2>/dev/null || echo "FAIL scan"
if [ "$MODE" = stage ]; then
  # The whole machine planned, hugetlb chosen as the first boot, and that
  # stage applied to the test's own subtree only.
  $BIN plan --snapshot $W/snap.json --stages hugetlb --format json -o $W/plan.json || echo "FAIL plan"
  check "stage 1 moves hugetlb alone" "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["stages"][0]["adds"])' $W/plan.json)" "['hugetlb']"
  # The v2 node the plan made of hugetlb:/$N/web (below the memory cgroup
  # that holds the test's processes).
  WP=$(python3 -c 'import json,sys; print(*[n["path"] for n in json.load(open(sys.argv[1]))["nodes"] if any(o["label"] == "hugetlb" and o["path"] == sys.argv[2] for o in n["origins"])])' $W/plan.json /$N/web)
  check "one node for web" "$(echo $WP | wc -w)" 1
  WEB=$T$WP; BATCH=$WEB/batch
  SCOPE="--stage 1 --only $WP"
else
  python3 $W/filter.py $W/snap.json $W/f.json || echo "FAIL filter"
  $BIN plan --snapshot $W/f.json --format json -o $W/plan.json || echo "FAIL plan"
  WEB=$T/$N/web; BATCH=$T/$N/batch
  SCOPE=
fi
$BIN apply $W/plan.json $SCOPE --live --yes --match keys --target $T --journal $W/first.journal --format json > $W/apply1.json; check "apply exit" $? 0
python3 -c 'import json,sys; print("WINDOW", json.load(open(sys.argv[1]))["handover_window_ms"])' $W/apply1.json
v2check first
check "memory where it was" "$(awk '$1=="memory"{print $2}' /proc/cgroups)" "$MEM_BEFORE"
$BIN rollback $W/first.journal --yes --format json > $W/rb.json; check "rollback exit" $? 0
check "v1 tree, limits, tasks back" "$(v1state)" "$(cat $W/v1.before)"
check "subtree gone" "$([ -e $T ] && echo present || echo gone)" gone
check "hugetlb on v1" "$([ "$(hier)" != 0 ] && echo v1 || echo v2)" v1
$BIN apply $W/plan.json $SCOPE --live --yes --match keys --target $T --journal $W/second.journal --format json > $W/apply2.json; check "apply again exit" $? 0
python3 -c 'import json,sys; print("WINDOW", json.load(open(sys.argv[1]))["handover_window_ms"])' $W/apply2.json
v2check again
"#;

#[test]
#[ignore = "needs root: takes hugetlb to a private v1 mount and hands it back to cgroup2"]
fn real_kernel_live_handover_of_hugetlb_and_back() {
    live_handover("whole", 24);
}

/// Issue 24: one chosen controller handed over live from a plan of the
/// whole machine (`--stages hugetlb`, then `apply --stage 1 --only` the
/// test's subtree): the other controllers stay on v1.
#[test]
#[ignore = "needs root: takes hugetlb to a private v1 mount and hands it back to cgroup2"]
fn real_kernel_live_handover_of_one_chosen_stage() {
    live_handover("stage", 26);
}

/// The live handover script in `mode` (`whole`: a plan of the hugetlb
/// hierarchy alone; `stage`: stage 1 of the machine's plan), expecting
/// `oks` passed checks.
fn live_handover(mode: &str, oks: usize) {
    // Locked before require(): it checks that cgroup2 offers hugetlb, which
    // is untrue while another test has it on a v1 mount.
    let _lock = hugetlb_lock();
    if !require() {
        return;
    }
    if let Some(why) = hugetlb_busy() {
        crate::kernel_util::skip_or_fail(&why);
        return;
    }
    let before_sc = std::fs::read_to_string(format!("{V2}/cgroup.subtree_control")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("filter.py"), FILTER).unwrap();
    let u = std::process::id().to_string();
    // The v2 side is visible outside the namespace: guard it from here too.
    let _g = Guard {
        target: PathBuf::from(format!("{V2}/cgmig-test-apply-live-{u}")),
        children: Vec::new(),
        root_had_hugetlb: false,
    };
    let o = Command::new("unshare")
        .args([
            "-m",
            "sh",
            "-c",
            LIVE,
            "live",
            bin(),
            &dir.path().display().to_string(),
            &u,
            mode,
        ])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    let fails: Vec<&str> = out.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert!(fails.is_empty(), "{fails:#?}\n{out}\n{err}");
    let passed = out.lines().filter(|l| l.starts_with("OK")).count();
    assert_eq!(passed, oks, "every check ran:\n{out}\n{err}");
    for w in out.lines().filter(|l| l.starts_with("WINDOW")) {
        eprintln!("live handover {w} ms");
    }
    assert!(
        out.contains("CLEANED hierarchy=0"),
        "hugetlb back on cgroup2:\n{out}\n{err}"
    );
    // As found: on cgroup2, offered, not enabled.
    assert!(hugetlb_busy().is_none(), "{:?}", hugetlb_busy());
    assert_eq!(
        std::fs::read_to_string(format!("{V2}/cgroup.subtree_control")).unwrap(),
        before_sc
    );
    let ctrls = std::fs::read_to_string(format!("{V2}/cgroup.controllers")).unwrap();
    assert!(ctrls.split_whitespace().any(|c| c == "hugetlb"), "{ctrls}");
}
