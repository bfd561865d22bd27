//! Benchmark: `cgmig apply` of a 10,000-node plan (20,301 actions) to a
//! cgroup2 subtree and its rollback, side by side with the same mkdir, write
//! and move system calls issued directly from this process (the kernel's
//! own cost: no journal, no checks, no read-back) and with a plain shell
//! script doing them (a fork+exec per mkdir); and the live handover window
//! of `hugetlb` (tasks at the v1 root → v2 settings written).
//!
//! Issue 20's targets: cgmig within 2× the direct calls, and at least 10×
//! faster than the shell script.
//!
//! `cargo bench --bench apply` (root; uses this machine's cgroup2 mount at
//! /sys/fs/cgroup/unified and its `hugetlb` controller, and leaves both as
//! found). Not root, or no hugetlb on cgroup2: prints why and exits 0.
//! Options: `CGMIG_BENCH_NODES` (default 10000), `CGMIG_BENCH_RUNS` (3).

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Instant;

const V2: &str = "/sys/fs/cgroup/unified";

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cgmig"))
}

fn cannot_run() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("not root".into());
    }
    let c = std::fs::read_to_string(format!("{V2}/cgroup.controllers")).unwrap_or_default();
    if !c.split_whitespace().any(|x| x == "hugetlb") {
        return Some(format!("{V2} does not offer hugetlb"));
    }
    let sc = std::fs::read_to_string(format!("{V2}/cgroup.subtree_control")).unwrap_or_default();
    if sc.split_whitespace().any(|x| x == "hugetlb") {
        return Some("hugetlb is in use on cgroup2".into());
    }
    None
}

fn setting(v: &str) -> serde_json::Value {
    serde_json::json!({"file": "hugetlb.2MB.max", "value": v,
        "origin": {"hierarchy": 0, "label": "bench", "path": "/"}, "rule": "bench", "function": "bench", "inputs": []})
}

/// `nodes` leaves under `sqrt(nodes)` parents, each leaf with a limit; the
/// first `procs.len()` leaves get a process each.
fn plan(nodes: usize, procs: &[u32]) -> cgmig::plan::Plan {
    let fan = (nodes as f64).sqrt().ceil() as usize;
    let mut ns = vec![
        serde_json::json!({"path": "/", "type": "domain", "subtree_control": [], "settings": [], "processes": [], "origins": []}),
    ];
    let mut leaf = 0;
    for p in 0..fan {
        ns.push(serde_json::json!({"path": format!("/p{p}"), "type": "domain", "subtree_control": [], "settings": [], "processes": [], "origins": []}));
        for c in 0..fan {
            if leaf == nodes {
                break;
            }
            let pr: Vec<u32> = procs.get(leaf).copied().into_iter().collect();
            ns.push(serde_json::json!({"path": format!("/p{p}/c{c}"), "type": "domain", "subtree_control": [],
                "settings": [setting(&format!("{}", 2097152 * (1 + leaf % 8)))], "processes": pr, "origins": []}));
            leaf += 1;
        }
    }
    // Stable keys: apply moves only processes matched by one.
    let keys: Vec<serde_json::Value> = procs
        .iter()
        .map(|p| serde_json::json!({"pid": p, "uid": 0, "comm": "sleep", "cmdline": ["sleep", "600"], "v1": []}))
        .collect();
    let v = serde_json::json!({"schema": "cgmig.plan/v1", "host": {"hostname": null, "kernel": null, "mode": "hybrid"},
        "controllers": ["hugetlb"], "nodes": ns, "actions": [], "findings": [], "conflicts": [],
        "spine": {"order": [], "settings_affected": 0, "tried": []}, "stages": [], "process_keys": keys});
    let mut p: cgmig::plan::Plan = serde_json::from_value(v).unwrap();
    cgmig::plan::finish(&mut p, None, "leaf");
    p
}

/// The same work as a shell script: mkdir, enable, write, move.
fn shell_script(p: &cgmig::plan::Plan, target: &str) -> String {
    let mut s = format!("set -e\nmkdir {target}\necho +hugetlb > {V2}/cgroup.subtree_control\n");
    for a in &p.actions {
        let dir = if a.path() == "/" {
            target.to_string()
        } else {
            format!("{target}{}", a.path())
        };
        match a {
            cgmig::plan::Action::Create { .. } if a.path() != "/" => s.push_str(&format!("mkdir {dir}\n")),
            cgmig::plan::Action::MoveProcess { pid, .. } => {
                s.push_str(&format!("echo {pid} > {dir}/cgroup.procs\n"));
            }
            cgmig::plan::Action::EnableControllers { .. } => {
                s.push_str(&format!("echo +hugetlb > {dir}/cgroup.subtree_control\n"));
            }
            cgmig::plan::Action::Write { file, value, .. } => {
                s.push_str(&format!("echo {value} > {dir}/{file}\n"));
            }
            _ => {}
        }
    }
    s
}

fn shell_undo(p: &cgmig::plan::Plan, target: &str, home: &str) -> String {
    let mut s = String::from("set -e\n");
    for a in p.actions.iter().rev() {
        let dir = if a.path() == "/" {
            target.to_string()
        } else {
            format!("{target}{}", a.path())
        };
        match a {
            cgmig::plan::Action::MoveProcess { pid, .. } => {
                s.push_str(&format!("echo {pid} > {V2}{home}/cgroup.procs\n"));
            }
            cgmig::plan::Action::EnableControllers { .. } => {
                s.push_str(&format!("echo -hugetlb > {dir}/cgroup.subtree_control\n"));
            }
            _ => {}
        }
    }
    for a in p.actions.iter().rev() {
        if let cgmig::plan::Action::Create { path } = a
            && path != "/"
        {
            s.push_str(&format!("rmdir {target}{path}\n"));
        }
    }
    s.push_str(&format!(
        "rmdir {target}\necho -hugetlb > {V2}/cgroup.subtree_control\n"
    ));
    s
}

fn secs(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

fn sh(script: &str) {
    // Too long for one argument: through a file.
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), script).unwrap();
    let o = Command::new("sh").arg(f.path()).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn cgmig(dir: &Path, args: &[&str]) -> String {
    let o = Command::new(bin())
        .args(args)
        .env("CGMIG_LOCK", dir.join("lock"))
        .env("CGMIG_RUN_DIR", dir.join("run"))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        o.status.code() == Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// The spawned processes, killed even when the bench panics.
struct Kids(Vec<Child>);

impl Drop for Kids {
    fn drop(&mut self) {
        for k in &mut self.0 {
            let _ = k.kill();
            let _ = k.wait();
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    if let Some(why) = cannot_run() {
        println!("apply bench skipped: {why}");
        return;
    }
    let lockf = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open("/tmp/cgmig-hugetlb.lock")
        .unwrap();
    let _lock = nix::fcntl::Flock::lock(lockf, nix::fcntl::FlockArg::LockExclusive).unwrap();
    let nodes = env("CGMIG_BENCH_NODES", 10_000);
    let runs = env("CGMIG_BENCH_RUNS", 3);
    let (kids, home) = spawn_sleepers();
    let pids: Vec<u32> = kids.0.iter().map(|k| k.id()).collect();
    let p = plan(nodes, &pids);
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let plan_path = dir.path().join("plan.json");
    std::fs::write(&plan_path, serde_json::to_string(&p).unwrap()).unwrap();
    let target = format!("{V2}/cgmig-bench-apply-{}", std::process::id());
    println!(
        "plan: {} nodes, {} actions ({} processes moved)",
        p.nodes.len(),
        p.actions.len(),
        pids.len()
    );
    let bench = Bench {
        dir: dir.path(),
        plan: plan_path.display().to_string(),
        target,
    };
    let t = bench.time(&p, &home, runs);
    t.print(p.actions.len());
    drop(kids);
    handover_window(dir.path(), runs);
}

/// 100 `sleep` processes for the plan to move, and the cgroup2 cgroup they
/// start in (where the shell undo puts them back).
fn spawn_sleepers() -> (Kids, String) {
    let kids = Kids(
        (0..100)
            .map(|_| Command::new("sleep").arg("600").spawn().unwrap())
            .collect(),
    );
    let home = std::fs::read_to_string(format!("/proc/{}/cgroup", kids.0[0].id())).unwrap();
    let home = home
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap()
        .to_string();
    (kids, home)
}

/// Where the apply runs: the working directory (journal on disk), the plan
/// file and the cgroup2 subtree it builds.
struct Bench<'a> {
    dir: &'a Path,
    plan: String,
    target: String,
}

/// Seconds of each run: apply and rollback with the journal on disk and on
/// tmpfs, the same calls issued directly, and the shell script.
#[derive(Default)]
struct Timings {
    apply: Vec<f64>,
    rollback: Vec<f64>,
    shell_apply: Vec<f64>,
    shell_undo: Vec<f64>,
    apply_tmpfs: Vec<f64>,
    rollback_tmpfs: Vec<f64>,
    direct_apply: Vec<f64>,
    direct_undo: Vec<f64>,
}

impl Bench<'_> {
    /// `runs` rounds of: apply and rollback journaled on tmpfs (`/run`'s
    /// kind of filesystem), the same journaled on disk, the direct calls and
    /// their undo, then the shell script and its undo.
    fn time(&self, p: &cgmig::plan::Plan, home: &str, runs: usize) -> Timings {
        let mut t = Timings::default();
        let shm = tempfile::tempdir_in("/dev/shm").unwrap();
        for r in 0..runs {
            let (a, b) = direct(p, &self.target, home);
            t.direct_apply.push(a);
            t.direct_undo.push(b);
            let j = shm.path().join(format!("j{r}")).display().to_string();
            let (a, b) = self.apply_and_rollback(&j);
            t.apply_tmpfs.push(a);
            t.rollback_tmpfs.push(b);
            let j = self.dir.join(format!("j{r}")).display().to_string();
            let (a, b) = self.apply_and_rollback(&j);
            t.apply.push(a);
            t.rollback.push(b);
            assert!(!Path::new(&self.target).exists(), "rollback removed the subtree");
            let (up, down) = (shell_script(p, &self.target), shell_undo(p, &self.target, home));
            t.shell_apply.push(secs(|| sh(&up)));
            t.shell_undo.push(secs(|| sh(&down)));
        }
        t
    }

    /// Seconds of one `cgmig apply` and of its `cgmig rollback`.
    fn apply_and_rollback(&self, journal: &str) -> (f64, f64) {
        let apply = secs(|| {
            cgmig(
                self.dir,
                &[
                    "apply",
                    &self.plan,
                    "--target",
                    &self.target,
                    "--journal",
                    journal,
                    "--format",
                    "json",
                    "--yes",
                    "--match",
                    "pids",
                ],
            );
        });
        let rollback = secs(|| {
            cgmig(self.dir, &["rollback", journal, "--format", "json", "--yes"]);
        });
        (apply, rollback)
    }
}

impl Timings {
    /// The medians, the ratios to the direct calls and to the shell
    /// script, and the cost per action.
    fn print(self, actions: usize) {
        let (ap, rb) = (median(self.apply), median(self.rollback));
        let (sa, su) = (median(self.shell_apply), median(self.shell_undo));
        let (aps, rbs) = (median(self.apply_tmpfs), median(self.rollback_tmpfs));
        let (da, du) = (median(self.direct_apply), median(self.direct_undo));
        println!("direct calls   {da:8.2} s   undo {du:6.2} s   (mkdir, open+write+close, rmdir; no checks)");
        println!(
            "cgmig apply, journal on tmpfs {aps:.2} s = {:.2}x the direct calls, {:.1}x faster than the shell script (targets: <= 2x, >= 10x)",
            aps / da,
            sa / aps
        );
        println!(
            "cgmig rollback, journal on tmpfs {rbs:.2} s = {:.2}x the direct undo, {:.1}x faster than the shell undo",
            rbs / du,
            su / rbs
        );
        println!(
            "cgmig apply    {ap:8.2} s   shell script {sa:6.2} s   ratio {:.1}x",
            ap / sa
        );
        println!(
            "cgmig rollback {rb:8.2} s   shell script {su:6.2} s   ratio {:.1}x",
            rb / su
        );
        println!(
            "per action: apply {:.0} µs (tmpfs journal), direct {:.0} µs, shell {:.0} µs",
            aps * 1e6 / actions as f64,
            da * 1e6 / actions as f64,
            sa * 1e6 / actions as f64
        );
    }
}

/// The plan's mkdirs, enables, writes and moves as plain system calls from
/// this process (what the kernel must do at the least), then their undo;
/// seconds of each.
fn direct(p: &cgmig::plan::Plan, target: &str, home: &str) -> (f64, f64) {
    use std::io::Write as _;
    let w = |f: &str, v: &str| {
        let mut file = std::fs::OpenOptions::new().write(true).open(f).unwrap();
        file.write_all(v.as_bytes()).unwrap();
    };
    let dir = |path: &str| {
        if path == "/" {
            target.to_string()
        } else {
            format!("{target}{path}")
        }
    };
    let up = secs(|| {
        std::fs::create_dir(target).unwrap();
        w(&format!("{V2}/cgroup.subtree_control"), "+hugetlb");
        for a in &p.actions {
            match a {
                cgmig::plan::Action::Create { path } if path != "/" => {
                    std::fs::create_dir(dir(path)).unwrap();
                }
                cgmig::plan::Action::MoveProcess { pid, path } => {
                    w(&format!("{}/cgroup.procs", dir(path)), &pid.to_string());
                }
                cgmig::plan::Action::EnableControllers { path, .. } => {
                    w(&format!("{}/cgroup.subtree_control", dir(path)), "+hugetlb");
                }
                cgmig::plan::Action::Write { path, file, value } => {
                    w(&format!("{}/{file}", dir(path)), value);
                }
                _ => {}
            }
        }
    });
    let down = secs(|| {
        for a in p.actions.iter().rev() {
            match a {
                cgmig::plan::Action::MoveProcess { pid, .. } => {
                    w(&format!("{V2}{home}/cgroup.procs"), &pid.to_string());
                }
                cgmig::plan::Action::EnableControllers { path, .. } => {
                    w(&format!("{}/cgroup.subtree_control", dir(path)), "-hugetlb");
                }
                _ => {}
            }
        }
        for a in p.actions.iter().rev() {
            if let cgmig::plan::Action::Create { path } = a
                && path != "/"
            {
                std::fs::remove_dir(dir(path)).unwrap();
            }
        }
        std::fs::remove_dir(target).unwrap();
        w(&format!("{V2}/cgroup.subtree_control"), "-hugetlb");
    });
    (up, down)
}

/// The live handover of hugetlb, as the real-kernel test does it, `runs` times.
fn handover_window(dir: &Path, runs: usize) {
    let script = r#"
set -u
BIN=$1; W=$2; H=$W/h; V2=/sys/fs/cgroup/unified; T=$V2/cgmig-bench-live-$$; P=
export CGMIG_LOCK=$W/lock CGMIG_RUN_DIR=$W/run
cleanup() {
  set +e; [ -n "$P" ] && kill $P; wait
  if [ -d $T ]; then find $T -depth -type d | while read d; do echo -hugetlb > $d/cgroup.subtree_control; done; find $T -depth -type d -exec rmdir {} \; ; fi
  echo -hugetlb > $V2/cgroup.subtree_control
  if mountpoint -q $H; then find $H -mindepth 1 -depth -type d -exec rmdir {} \; ; i=0; while [ $i -lt 500 ] && [ "$(awk '$1=="hugetlb"{print $3}' /proc/cgroups)" != 1 ]; do sleep 0.01; i=$((i+1)); done; umount $H; fi
  i=0; while [ $i -lt 500 ] && [ "$(awk '$1=="hugetlb"{print $2}' /proc/cgroups)" != 0 ]; do sleep 0.01; i=$((i+1)); done
} 2>/dev/null
trap cleanup EXIT
mkdir -p $H
# v2 releases hugetlb asynchronously after the last -hugetlb: retry a moment.
i=0; until mount -t cgroup -o hugetlb cgmig-hugetlb $H 2>/dev/null; do i=$((i+1)); [ $i -gt 400 ] && exit 1; sleep 0.025; done
mkdir -p $H/b/x && echo 4194304 > $H/b/x/hugetlb.2MB.limit_in_bytes
sleep 300 & P=$!; echo $P > $H/b/x/cgroup.procs
$BIN scan -o $W/s.json 2>/dev/null && python3 $W/filter.py $W/s.json $W/f.json && $BIN plan --snapshot $W/f.json --format json -o $W/p.json
rm -f $W/p.journal
$BIN apply $W/p.json --live --yes --match keys --target $T --journal $W/p.journal --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["handover_window_ms"])'
"#;
    let filter = r#"
import json, sys
s = json.load(open(sys.argv[1])); g = s["graph"]; nodes = g["nodes"]
keep_h = {n["id"] for n in nodes if n["kind"] == "hierarchy" and n["version"] == "v1" and "hugetlb" in n["controllers"]}
keep = lambda n: n["id"] in keep_h if n["kind"] == "hierarchy" else (n["hierarchy"] in keep_h if n["kind"] == "cgroup" else True)
idx = {}; new = []
for i, n in enumerate(nodes):
    if keep(n): idx[i] = len(new); new.append(n)
g["nodes"] = new; g["node_holes"] = []
g["edges"] = [[idx[a], idx[b], w] for a, b, w in g["edges"] if a in idx and b in idx]
json.dump(s, open(sys.argv[2], "w"))
"#;
    std::fs::write(dir.join("filter.py"), filter).unwrap();
    let mut w = Vec::new();
    for _ in 0..runs {
        let o = Command::new("unshare")
            .args([
                "-m",
                "sh",
                "-c",
                script,
                "live",
                &bin().display().to_string(),
                &dir.display().to_string(),
            ])
            .output()
            .unwrap();
        match String::from_utf8_lossy(&o.stdout).trim().parse::<f64>() {
            Ok(ms) => w.push(ms),
            Err(_) => {
                println!("handover run failed: {}", String::from_utf8_lossy(&o.stderr));
                return;
            }
        }
    }
    println!(
        "hugetlb live handover window: median {:.0} ms (runs: {:?})",
        median(w.clone()),
        w.iter().map(|x| x.round()).collect::<Vec<_>>()
    );
}
