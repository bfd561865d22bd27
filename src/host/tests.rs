//! Parser tests against real captured samples (`testdata/public/`, each file
//! names its source in its first line) and against hand-made bad input.

use super::*;

fn sample_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/public")
}

/// Lines of a sample without its `#` header/comment lines.
fn body(text: &str) -> String {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Files that are not in a format cgmig reads: tree listings, `mount(8)`
/// output, `/proc/mounts`, systemd-cgls and cgroupfs dumps. Listed so that
/// a new sample can't be skipped silently.
const NOT_KERNEL_FILES: &[&str] = &[
    "docs-ubuntu1604-lxcfs-cgmanager-double-mount-excerpt.txt",
    "elastic-amzn2-eks-arm64-container-cgroupfs-dump.txt",
    "elastic-ubuntu1804-hybrid-service-cgroupfs-dump.txt",
    "forum-ubuntu1604-nsroot-proc-mounts.txt",
    "issue-centos7-kubepods-systemd-cgls-excerpt.txt",
    "issue-debian-rpi-per-controller-shape-tree-excerpt.txt",
    "issue-kata-vcpu-subcgroup-find-listing.txt",
];

#[test]
fn every_public_sample_parses() {
    let mut counts = (0, 0, 0, 0);
    let mut names: Vec<_> = fs::read_dir(sample_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert!(names.len() >= 55, "samples missing: {}", names.len());
    for name in names {
        let text = fs::read_to_string(sample_dir().join(&name)).unwrap();
        assert!(text.starts_with("# source:"), "{name} lacks its source line");
        if NOT_KERNEL_FILES.contains(&name.as_str()) {
            counts.3 += 1;
            continue;
        }
        if name.contains("cgexec-and-cgroupns") {
            // Mixed: /proc/self/cgroup lines and mountinfo lines per case.
            for line in body(&text).lines() {
                let r = if line.split(' ').count() > 5 {
                    parse_cgroup_mounts(line).map(|m| m.len())
                } else {
                    parse_pid_cgroup(line).map(|m| m.len())
                };
                assert_eq!(r, Ok(1), "{name}: {line}");
            }
            counts.0 += 1;
        } else if name.contains("mountinfo") || name.ends_with("extra-v1-mounts-outside-sys-fs-cgroup.txt") {
            let mounts = parse_cgroup_mounts(&body(&text)).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert!(!mounts.is_empty(), "{name}: no cgroup mounts found");
            counts.0 += 1;
        } else if name.ends_with("proc-cgroups.txt") {
            let entries = parse_proc_cgroups(&body(&text)).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert!(entries.len() >= 8, "{name}: {} controllers", entries.len());
            counts.1 += 1;
        } else if name.contains("cgroup.txt") {
            let m = parse_pid_cgroup(&body(&text)).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert!(!m.is_empty(), "{name}");
            counts.2 += 1;
        } else {
            panic!("{name}: unclassified sample; add a parser test or list it in NOT_KERNEL_FILES");
        }
    }
    assert_eq!(counts.3, NOT_KERNEL_FILES.len());
    assert!(counts.0 >= 18 && counts.1 >= 9 && counts.2 >= 15, "{counts:?}");
}

fn sample(name: &str) -> String {
    body(&fs::read_to_string(sample_dir().join(name)).unwrap())
}

#[test]
fn centos7_reversed_option_order_and_comounts() {
    let m = parse_cgroup_mounts(&sample("gofsutil-centos7-legacy-mountinfo.txt")).unwrap();
    let cpu = m
        .iter()
        .find(|m| m.mount_point == "/sys/fs/cgroup/cpu,cpuacct")
        .unwrap();
    let keys: Vec<&str> = cpu.super_options.iter().map(|(k, _)| k.as_str()).collect();
    assert!(keys.contains(&"cpuacct") && keys.contains(&"cpu"), "{keys:?}");
    let systemd = m
        .iter()
        .find(|m| m.mount_point == "/sys/fs/cgroup/systemd")
        .unwrap();
    assert!(
        systemd
            .super_options
            .contains(&("name".into(), Some("systemd".into())))
    );
    assert!(
        systemd
            .super_options
            .iter()
            .any(|(k, v)| k == "release_agent"
                && v.as_deref() == Some("/usr/lib/systemd/systemd-cgroups-agent"))
    );
}

#[test]
fn lxc_container_mount_roots_are_not_slash() {
    let m = parse_cgroup_mounts(&sample(
        "issue-lxc-centos7-container-cgroup-mixed-mountinfo-excerpt.txt",
    ))
    .unwrap();
    assert!(m.iter().any(|m| m.root == "/lxc.payload/el7build01"), "{m:?}");
}

#[test]
fn cgroup2_at_systemd_and_hybrid_detection() {
    let m = parse_cgroup_mounts(&sample("runc-fedora-cgroup2-at-systemd-mountinfo.txt")).unwrap();
    assert!(
        m.iter()
            .any(|m| m.v2 && m.mount_point == "/sys/fs/cgroup/systemd")
    );
    assert_eq!(crate::scan::detect_mode(&m), crate::model::Mode::Hybrid);
    let v2host = parse_cgroup_mounts(&sample("jdk-v2-host-v1-freezer-only-mountinfo.txt")).unwrap();
    assert_eq!(crate::scan::detect_mode(&v2host), crate::model::Mode::Unified);
    let legacy = parse_cgroup_mounts(&sample("runc-fedora20-legacy-mountinfo.txt")).unwrap();
    assert_eq!(crate::scan::detect_mode(&legacy), crate::model::Mode::Legacy);
}

#[test]
fn bedrock_same_hierarchy_mounted_many_times_is_one_hierarchy() {
    let m = parse_cgroup_mounts(&sample("runc-bedrock-multimount-mountinfo.txt")).unwrap();
    let mut diags = Vec::new();
    let hs = crate::scan::build_hierarchies(&m, &[], &Default::default(), &mut diags);
    let memory: Vec<_> = hs
        .iter()
        .filter(|h| h.has(&crate::model::Controller::Memory))
        .collect();
    assert_eq!(memory.len(), 1, "one hierarchy, not one per mount");
    assert!(memory[0].mounts.len() >= 2, "{:?}", memory[0].mounts);
}

#[test]
fn escaped_mount_fields_are_decoded() {
    let line = r"40 31 0:37 /my\040group /mnt/cg\040v1 rw,relatime - cgroup cgroup rw,cpu,nsroot=/";
    let m = parse_cgroup_mounts(line).unwrap();
    assert_eq!(m[0].mount_point, "/mnt/cg v1");
    assert_eq!(m[0].root, "/my group");
    // nsroot=/ has a value: never a controller.
    assert!(!super::super::scan::tests_support::is_controller(
        "nsroot",
        &Some("/".into())
    ));
    assert!(super::super::scan::tests_support::is_controller("cpu", &None));
}

#[test]
fn pid_cgroup_paths_keep_colons_and_odd_bytes() {
    let m = parse_pid_cgroup(&sample(
        "kwdb-k8s-systemd-containerd-mixed-roots-proc-self-cgroup.txt",
    ))
    .unwrap();
    assert!(
        m.iter().any(|m| m.path.contains(".slice:cri-containerd:")),
        "{m:?}"
    );
    let coreos = parse_pid_cgroup(&sample("runc-coreos-systemd225-proc-self-cgroup.txt")).unwrap();
    assert!(coreos.iter().any(|m| m.path.contains(":22-")), "{coreos:?}");
    let named = parse_pid_cgroup("1:name=systemd:/user.slice/a b\n0::/\n").unwrap();
    assert_eq!(named[0].controllers, vec!["name=systemd".to_string()]);
    assert_eq!(named[0].path, "/user.slice/a b");
    assert_eq!(named[1].hierarchy, HierarchyId::UNIFIED);
    // Non-UTF-8 bytes arrive escaped by the host layer.
    let raw = crate::model::path::value_from_bytes(b"3:cpu:/bad\xffname\n");
    assert_eq!(parse_pid_cgroup(&raw).unwrap()[0].path, "/bad\\xffname");
}

#[test]
fn garbage_and_truncated_input_are_errors_with_lines() {
    let good = "30 23 0:26 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n";
    let (line, msg) = parse_cgroup_mounts(&format!("{good}this is not mountinfo\n")).unwrap_err();
    assert_eq!(line, 2, "{msg}");
    let (line, _) = parse_cgroup_mounts(&format!("{good}31 23 0:27 / /x rw -")).unwrap_err();
    assert_eq!(line, 2);
    let (line, _) =
        parse_proc_cgroups("#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\tx\t1\t1\n").unwrap_err();
    assert_eq!(line, 2);
    let (line, _) = parse_proc_cgroups("cpu\t1\n").unwrap_err();
    assert_eq!(line, 1);
    assert_eq!(parse_pid_cgroup("12:memory\n").unwrap_err().0, 1);
    assert_eq!(parse_pid_cgroup("0::/\nx:cpu:/\n").unwrap_err().0, 2);
    assert_eq!(parse_pid_cgroup("3:cpu:relative\n").unwrap_err().0, 1);
    assert!(parse_status_ids("Name:\tx\nUid:\tzz\n").is_err());
    assert_eq!(
        parse_status_ids("Uid:\t1000\t1000\t1000\t1000\nGid:\t7\t7\t7\t7\n"),
        Ok((1000, 7))
    );
}

#[test]
fn unreadable_root_is_an_error_naming_the_path() {
    let e = Root::new("/definitely/not/here").unwrap_err();
    assert!(e.to_string().contains("/definitely/not/here"), "{e}");
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
    let snap = crate::scan::scan(root).expect("scan");
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
                match crate::scan::scan(&root) {
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
            if let Ok(snap) = crate::scan::scan(&root) {
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
                match crate::scan::scan(&root) {
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

#[test]
fn oversized_files_are_diagnostics() {
    let dir = tempfile::tempdir().unwrap();
    mini_host(dir.path());
    let big = vec![b'1'; MAX_SETTING_BYTES + 1];
    fs::write(dir.path().join("sys/fs/cgroup/cpu/a/cpu.shares"), &big).unwrap();
    let f = fs::File::create(dir.path().join("proc/7/comm")).unwrap();
    f.set_len(MAX_TABLE_BYTES as u64 + 1).unwrap();
    for root in both_resolvers(dir.path()) {
        let snap = crate::scan::scan(&root).unwrap();
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
