//! Shared helpers for tests that touch this machine's real kernel (root).
//!
//! - [`require`]: run, skip with a printed reason, or fail under
//!   `CGMIG_REQUIRE_KERNEL_TESTS=1` (CI sets it as root), so a real-kernel
//!   test never skips silently.
//! - [`in_private_mount_ns`]: run a closure on a thread of its own that has
//!   unshared its mount namespace (propagation private), so whatever the
//!   test mounts never shows on the host. `unshare(CLONE_NEWNS)` is allowed
//!   in a multi-threaded process (it implies only `CLONE_FS`), and processes
//!   spawned from that thread inherit the namespace.
//! - [`V2Scratch`]: a uniquely named cgroup2 subtree plus the processes the
//!   test spawned into it; dropping it (also on panic) kills those processes
//!   and removes every cgroup below the subtree, bottom-up.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// `None` if real-kernel tests can run here (root and these tools); else why not.
pub fn cannot_run(tools: &[&str]) -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("not running as root".into());
    }
    for tool in tools {
        let ok = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            return Some(format!("`{tool}` is not installed"));
        }
    }
    None
}

/// Skip with a printed reason, or fail when CI requires these tests.
pub fn require(tools: &[&str]) -> bool {
    match cannot_run(tools) {
        None => true,
        Some(why) => skip_or_fail(&why),
    }
}

/// Print why a real-kernel test did not run and return false, or panic
/// under `CGMIG_REQUIRE_KERNEL_TESTS=1`.
pub fn skip_or_fail(why: &str) -> bool {
    if std::env::var("CGMIG_REQUIRE_KERNEL_TESTS").as_deref() == Ok("1") {
        panic!("real-kernel tests are required (CGMIG_REQUIRE_KERNEL_TESTS=1) but cannot run: {why}");
    }
    eprintln!("SKIPPED real-kernel test: {why}");
    false
}

/// Run `f` on a new thread inside a private mount namespace; a panic in `f`
/// is re-raised here.
pub fn in_private_mount_ns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let h = std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).expect("unshare(CLONE_NEWNS)");
        nix::mount::mount(
            None::<&str>,
            "/",
            None::<&str>,
            nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .expect("make / rprivate");
        f()
    });
    match h.join() {
        Ok(v) => v,
        Err(p) => std::panic::resume_unwind(p),
    }
}

/// The first cgroup2 mount point in this mount namespace.
pub fn cgroup2_mount() -> Option<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    text.lines()
        .find(|l| l.split(" - ").nth(1).is_some_and(|r| r.starts_with("cgroup2 ")))
        .and_then(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(cgmig::model::path::unescape_octal(p)))
}

/// A uniquely named subtree of the cgroup2 mount with the processes spawned
/// for it. See the module doc.
pub struct V2Scratch {
    /// The cgroup2 mount point.
    pub mount: PathBuf,
    /// The subtree's name, a child of the mount's root.
    pub name: String,
    children: Vec<Child>,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

impl V2Scratch {
    /// Create `cgmig-test-<who>-<pid>-<n>` under the cgroup2 mount.
    pub fn new(who: &str) -> std::io::Result<V2Scratch> {
        let mount = cgroup2_mount().ok_or_else(|| std::io::Error::other("no cgroup2 mount"))?;
        let name = format!(
            "cgmig-test-{who}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        std::fs::create_dir(mount.join(&name))?;
        Ok(V2Scratch {
            mount,
            name,
            children: Vec::new(),
        })
    }

    /// The subtree's directory.
    pub fn dir(&self) -> PathBuf {
        self.mount.join(&self.name)
    }

    /// The subtree's cgroup path relative to the mount (`/cgmig-test-…`).
    pub fn rel(&self) -> String {
        format!("/{}", self.name)
    }

    /// Spawn `sleep 600`; its pid. It starts wherever this test runs.
    pub fn spawn_sleep(&mut self) -> u32 {
        let c = Command::new("sleep").arg("600").spawn().expect("spawn sleep");
        let pid = c.id();
        self.children.push(c);
        pid
    }

    /// Spawn a python3 process with `n` extra threads; its pid and the extra tids.
    pub fn spawn_threads(&mut self, n: usize) -> (u32, Vec<u32>) {
        let script = format!(
            "import threading, os, time\n\
             ev = threading.Event()\n\
             ts = [threading.Thread(target=ev.wait, daemon=True) for _ in range({n})]\n\
             [t.start() for t in ts]\n\
             print(os.getpid(), *[t.native_id for t in ts], flush=True)\n\
             time.sleep(600)\n"
        );
        let mut c = Command::new("python3")
            .args(["-c", &script])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn python3");
        let mut line = String::new();
        BufReader::new(c.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read tids");
        self.children.push(c);
        let ids: Vec<u32> = line.split_whitespace().map(|s| s.parse().expect("tid")).collect();
        (ids[0], ids[1..].to_vec())
    }

    /// Kill and reap one spawned process (to test what happens after it exits).
    pub fn kill(&mut self, pid: u32) {
        if let Some(i) = self.children.iter().position(|c| c.id() == pid) {
            let mut c = self.children.remove(i);
            c.kill().ok();
            c.wait().ok();
        }
    }
}

impl Drop for V2Scratch {
    fn drop(&mut self) {
        for c in &mut self.children {
            c.kill().ok();
            c.wait().ok();
        }
        remove_tree(&self.dir());
    }
}

/// Remove a cgroup directory tree bottom-up. A reaped task may take a
/// moment to leave its cgroup (EBUSY), so retry for up to 5 s.
pub fn remove_tree(top: &Path) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut dirs = Vec::new();
        collect_dirs(top, &mut dirs);
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        let mut failed = None;
        for d in &dirs {
            if let Err(e) = std::fs::remove_dir(d) {
                failed = Some((d.clone(), e));
            }
        }
        match failed {
            None => return,
            Some((d, e)) if Instant::now() > deadline => {
                eprintln!("warning: could not remove test cgroup {}: {e}", d.display());
                return;
            }
            Some(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn collect_dirs(d: &Path, out: &mut Vec<PathBuf>) {
    if !d.is_dir() {
        return;
    }
    out.push(d.to_path_buf());
    if let Ok(rd) = std::fs::read_dir(d) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect_dirs(&e.path(), out);
            }
        }
    }
}
