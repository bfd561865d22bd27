//! The scanner's tests on real captured samples (mode detection, hierarchies
//! mounted many times) and on a minimal host tree: every read the scan makes
//! stays inside the root, with either path resolver, and special or oversized
//! files become diagnostics, never hangs.

use std::fs;
use std::path::{Path, PathBuf};

use crate::host::tests::sample;
use crate::host::{MAX_SETTING_BYTES, MAX_TABLE_BYTES, Resolver, Root, parse_cgroup_mounts};

#[test]
fn cgroup2_at_systemd_and_hybrid_detection() {
    let m = parse_cgroup_mounts(&sample("runc-fedora-cgroup2-at-systemd-mountinfo.txt")).unwrap();
    assert!(
        m.iter()
            .any(|m| m.v2 && m.mount_point == "/sys/fs/cgroup/systemd")
    );
    assert_eq!(super::detect_mode(&m), crate::model::Mode::Hybrid);
    let v2host = parse_cgroup_mounts(&sample("jdk-v2-host-v1-freezer-only-mountinfo.txt")).unwrap();
    assert_eq!(super::detect_mode(&v2host), crate::model::Mode::Unified);
    let legacy = parse_cgroup_mounts(&sample("runc-fedora20-legacy-mountinfo.txt")).unwrap();
    assert_eq!(super::detect_mode(&legacy), crate::model::Mode::Legacy);
}

#[test]
fn bedrock_same_hierarchy_mounted_many_times_is_one_hierarchy() {
    let m = parse_cgroup_mounts(&sample("runc-bedrock-multimount-mountinfo.txt")).unwrap();
    let mut diags = Vec::new();
    let hs = super::build_hierarchies(&m, &[], &Default::default(), &mut diags);
    let memory: Vec<_> = hs
        .iter()
        .filter(|h| h.has(&crate::model::Controller::Memory))
        .collect();
    assert_eq!(memory.len(), 1, "one hierarchy, not one per mount");
    assert!(memory[0].mounts.len() >= 2, "{:?}", memory[0].mounts);
}

#[test]
fn options_with_a_value_are_never_controllers() {
    // nsroot=/ has a value: never a controller.
    assert!(!super::is_controller_option("nsroot", &Some("/".into()), &[]));
    assert!(super::is_controller_option("cpu", &None, &[]));
}

/// A minimal host tree: one v1 `cpu` hierarchy with a child, one v2 mount,
/// one process with one thread.
fn mini_host(dir: &Path) {
    let w = |rel: &str, text: &str| {
        let p = dir.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    };
    w(
        "proc/self/mountinfo",
        "30 23 0:26 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n\
         31 23 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
    );
    w(
        "proc/cgroups",
        "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t3\t2\t1\n",
    );
    w("proc/sys/kernel/osrelease", "6.1.0\n");
    w("proc/sys/kernel/hostname", "box\n");
    w("proc/cmdline", "quiet\n");
    w("proc/7/comm", "app\n");
    w("proc/7/cmdline", "app\0--x\0");
    w("proc/7/status", "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n");
    w("proc/7/task/7/cgroup", "3:cpu:/a\n0::/\n");
    w("proc/7/task/7/comm", "app\n");
    w("proc/7/fds", "/sys/fs/cgroup/cpu/a/cgroup.event_control\n");
    w("sys/fs/cgroup/cpu/cpu.shares", "1024\n");
    w("sys/fs/cgroup/cpu/tasks", "");
    w("sys/fs/cgroup/cpu/a/cpu.shares", "512\n");
    w("sys/fs/cgroup/cpu/a/tasks", "7\n");
    w("sys/fs/cgroup/unified/cgroup.controllers", "hugetlb\n");
}

/// Every file kind the scanner reads, as a path relative to the root.
const READ_FILES: &[&str] = &[
    "proc/self/mountinfo",
    "proc/cgroups",
    "proc/sys/kernel/osrelease",
    "proc/sys/kernel/hostname",
    "proc/cmdline",
    "proc/7/comm",
    "proc/7/cmdline",
    "proc/7/status",
    "proc/7/task/7/cgroup",
    "proc/7/fds",
    "sys/fs/cgroup/cpu/a/cpu.shares",
    "sys/fs/cgroup/unified/cgroup.controllers",
];

fn both_resolvers(dir: &Path) -> Vec<Root> {
    let mut roots = vec![Root::with_resolver(dir, Resolver::Walk).unwrap()];
    let auto = Root::new(dir).unwrap();
    assert_eq!(
        auto.resolver(),
        Resolver::Openat2,
        "this kernel has openat2; the walk is only the fallback"
    );
    roots.push(auto);
    roots
}

fn scan_json(root: &Root) -> String {
    let snap = super::scan(root).expect("scan");
    serde_json::to_string(&snap).unwrap()
}

#[test]
fn mini_host_scans_with_both_resolvers() {
    let dir = tempfile::tempdir().unwrap();
    mini_host(dir.path());
    for root in both_resolvers(dir.path()) {
        let j = scan_json(&root);
        for needle in ["\"512\"", "\"box\"", "--x", "\"hugetlb\"", "cgroup.event_control"] {
            assert!(j.contains(needle), "{:?}: {needle} missing", root.resolver());
        }
        assert!(!j.contains("unreadable"), "{:?}: {j}", root.resolver());
    }
}

/// Replace every file the scanner reads, one at a time, by a symlink to a
/// file outside the root (absolute and `../` forms): its secret must never
/// appear in the snapshot, with either resolver.
#[test]
fn every_read_is_contained() {
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret");
    fs::write(&secret, "TOP-SECRET-1024\n").unwrap();
    for rel in READ_FILES {
        for absolute in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            mini_host(dir.path());
            let p = dir.path().join(rel);
            fs::remove_file(&p).unwrap();
            let target = if absolute {
                secret.clone()
            } else {
                let depth = rel.matches('/').count() + 8;
                PathBuf::from("../".repeat(depth)).join(secret.strip_prefix("/").unwrap())
            };
            std::os::unix::fs::symlink(&target, &p).unwrap();
            for root in both_resolvers(dir.path()) {
                match super::scan(&root) {
                    Ok(snap) => {
                        let j = serde_json::to_string(&snap).unwrap();
                        assert!(
                            !j.contains("TOP-SECRET"),
                            "{rel} via {target:?} ({:?}) leaked",
                            root.resolver()
                        );
                    }
                    Err(e) => assert!(e.to_string().contains("mountinfo"), "{rel}: {e}"),
                }
            }
        }
    }
}

/// Directories too: a symlinked cgroup directory, `/proc/PID` and
/// `/proc/self` pointing outside resolve inside the root, or not at all.
#[test]
fn symlinked_directories_are_contained() {
    let outside = tempfile::tempdir().unwrap();
    mini_host(outside.path());
    fs::write(
        outside.path().join("sys/fs/cgroup/cpu/a/cpu.shares"),
        "TOP-SECRET\n",
    )
    .unwrap();
    fs::write(outside.path().join("proc/7/comm"), "TOP-SECRET\n").unwrap();
    for rel in [
        "sys/fs/cgroup/cpu/a",
        "proc/7",
        "proc/self",
        "sys/fs/cgroup/cpu",
        "sys",
    ] {
        let dir = tempfile::tempdir().unwrap();
        mini_host(dir.path());
        let p = dir.path().join(rel);
        fs::remove_dir_all(&p).unwrap();
        std::os::unix::fs::symlink(outside.path().join(rel), &p).unwrap();
        for root in both_resolvers(dir.path()) {
            if let Ok(snap) = super::scan(&root) {
                let j = serde_json::to_string(&snap).unwrap();
                assert!(!j.contains("TOP-SECRET"), "{rel} ({:?}) leaked", root.resolver());
            }
        }
    }
}

fn mkfifo(p: &Path) {
    nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
}

/// A FIFO or a socket in place of any file: a diagnostic naming it, never a
/// hang.
#[test]
fn special_files_are_diagnostics_not_hangs() {
    special_files_in_place_of_every_file(&["fifo", "socket"]);
}

/// A character device in place of any file: `/dev/zero` is a node made in
/// the test's own directory, never the machine's.
#[test]
#[ignore = "needs root: mknod of a character device"]
fn char_devices_are_diagnostics_not_hangs() {
    if !nix::unistd::geteuid().is_root() {
        assert!(
            std::env::var_os("CGMIG_REQUIRE_KERNEL_TESTS").is_none(),
            "required (CGMIG_REQUIRE_KERNEL_TESTS) but mknod needs root"
        );
        eprintln!("SKIPPED: mknod needs root");
        return;
    }
    special_files_in_place_of_every_file(&["zero"]);
}

/// Replace each file the scan reads by each of these kinds in turn.
fn special_files_in_place_of_every_file(kinds: &[&str]) {
    for rel in READ_FILES {
        for &kind in kinds {
            let dir = tempfile::tempdir().unwrap();
            mini_host(dir.path());
            let p = dir.path().join(rel);
            fs::remove_file(&p).unwrap();
            let _sock;
            match kind {
                "fifo" => mkfifo(&p),
                "socket" => _sock = std::os::unix::net::UnixListener::bind(&p).unwrap(),
                _ => nix::sys::stat::mknod(
                    &p,
                    nix::sys::stat::SFlag::S_IFCHR,
                    nix::sys::stat::Mode::from_bits_truncate(0o600),
                    nix::sys::stat::makedev(1, 5),
                )
                .unwrap(),
            }
            for root in both_resolvers(dir.path()) {
                match super::scan(&root) {
                    Ok(snap) => {
                        // Kernel-info files and fds are optional; every other is a diagnostic.
                        let named = snap
                            .diagnostics
                            .iter()
                            .any(|d| d.path.contains(rel) && d.message.contains("not a regular file"));
                        assert!(
                            named || rel.ends_with("fds"),
                            "{rel} as {kind}: {:?}",
                            snap.diagnostics
                        );
                    }
                    Err(e) => assert!(
                        rel.ends_with("mountinfo") && e.to_string().contains("not a regular file"),
                        "{rel} as {kind}: {e}"
                    ),
                }
            }
        }
    }
}

/// Watches a file for real opens with inotify `IN_OPEN`. An `O_PATH`
/// descriptor, `fstatat` and a directory listing are no opens (the kernel
/// sends no event for them); any open for reading is, whatever its flags.
struct OpenWatch(std::os::fd::OwnedFd);

impl OpenWatch {
    fn new(p: &Path) -> OpenWatch {
        use nix::libc;
        use std::os::fd::FromRawFd;
        use std::os::unix::ffi::OsStrExt;
        // SAFETY: a plain system call without pointers.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        assert!(fd >= 0, "inotify_init1: {}", std::io::Error::last_os_error());
        // SAFETY: inotify_init1 returned a fresh descriptor nothing else owns.
        let w = OpenWatch(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) });
        let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
        // SAFETY: `c` is a NUL-terminated path that outlives the call.
        let wd = unsafe { libc::inotify_add_watch(fd, c.as_ptr(), libc::IN_OPEN) };
        assert!(
            wd >= 0,
            "inotify_add_watch {}: {}",
            p.display(),
            std::io::Error::last_os_error()
        );
        w
    }

    /// Opens seen since the last call.
    fn opens(&self) -> usize {
        use std::os::fd::AsRawFd;
        let mut n = 0;
        let mut buf = [0u8; 4096];
        loop {
            match nix::unistd::read(self.0.as_raw_fd(), &mut buf) {
                Ok(len) if len > 0 => {
                    let mut off = 0;
                    while off < len {
                        // struct inotify_event: wd, mask, cookie, len, name[len]
                        let mask = u32::from_ne_bytes(buf[off + 4..off + 8].try_into().unwrap());
                        let name_len =
                            u32::from_ne_bytes(buf[off + 12..off + 16].try_into().unwrap()) as usize;
                        if mask & nix::libc::IN_OPEN != 0 {
                            n += 1;
                        }
                        off += 16 + name_len;
                    }
                }
                Ok(_) | Err(nix::errno::Errno::EAGAIN) => return n,
                Err(e) => panic!("reading inotify events: {e}"),
            }
        }
    }
}

/// A FIFO, and as root a character device, planted in place of each file the
/// scan reads is never opened, by either resolver: inotify sees no open of
/// it during the scan. The watch itself is proved by opening the node
/// non-blocking afterwards (one event), so the test fails if the scan ever
/// opens a planted node, even with `O_NONBLOCK`.
#[test]
fn planted_special_files_are_never_opened() {
    let root_user = nix::unistd::geteuid().is_root();
    let kinds: &[&str] = if root_user { &["fifo", "chr"] } else { &["fifo"] };
    if !root_user {
        assert!(
            std::env::var_os("CGMIG_REQUIRE_KERNEL_TESTS").is_none(),
            "required (CGMIG_REQUIRE_KERNEL_TESTS) but mknod needs root"
        );
        eprintln!("character devices SKIPPED: mknod needs root (FIFOs checked)");
    }
    for rel in READ_FILES {
        for &kind in kinds {
            let dir = tempfile::tempdir().unwrap();
            mini_host(dir.path());
            let p = dir.path().join(rel);
            fs::remove_file(&p).unwrap();
            if kind == "fifo" {
                mkfifo(&p);
            } else {
                nix::sys::stat::mknod(
                    &p,
                    nix::sys::stat::SFlag::S_IFCHR,
                    nix::sys::stat::Mode::from_bits_truncate(0o600),
                    nix::sys::stat::makedev(1, 3),
                )
                .unwrap();
            }
            let watch = OpenWatch::new(&p);
            for root in both_resolvers(dir.path()) {
                let _ = super::scan(&root);
                assert_eq!(
                    watch.opens(),
                    0,
                    "{rel} as {kind} was opened ({:?})",
                    root.resolver()
                );
            }
            let probe = nix::fcntl::open(
                &p,
                nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_NONBLOCK,
                nix::sys::stat::Mode::empty(),
            )
            .unwrap();
            nix::unistd::close(probe).unwrap();
            assert_eq!(watch.opens(), 1, "the watch on {rel} sees an open");
        }
    }
}

#[test]
fn oversized_files_are_diagnostics() {
    let dir = tempfile::tempdir().unwrap();
    mini_host(dir.path());
    let big = vec![b'1'; MAX_SETTING_BYTES + 1];
    fs::write(dir.path().join("sys/fs/cgroup/cpu/a/cpu.shares"), &big).unwrap();
    let f = fs::File::create(dir.path().join("proc/7/comm")).unwrap();
    f.set_len(MAX_TABLE_BYTES as u64 + 1).unwrap();
    for root in both_resolvers(dir.path()) {
        let snap = super::scan(&root).unwrap();
        for rel in ["cpu/a/cpu.shares", "proc/7/comm"] {
            assert!(
                snap.diagnostics
                    .iter()
                    .any(|d| d.path.ends_with(rel) && d.message.contains("larger than")),
                "{rel}: {:?}",
                snap.diagnostics
            );
        }
    }
}

#[test]
fn symlink_loops_and_dotdot_stay_inside() {
    let dir = tempfile::tempdir().unwrap();
    mini_host(dir.path());
    std::os::unix::fs::symlink("loop", dir.path().join("proc/loop")).unwrap();
    for root in both_resolvers(dir.path()) {
        let e = root.read_bounded(Path::new("/proc/loop"), 10).unwrap_err();
        assert!(e.to_string().contains("/proc/loop"), "{e}");
        // `..` above the root is the root, as in a chroot.
        let b = root
            .read_bounded(Path::new("/../../../../proc/cgroups"), 1000)
            .unwrap();
        assert!(b.starts_with(b"#subsys_name"));
    }
}
