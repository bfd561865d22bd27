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

/// A sample's kernel text (also read by the scanner's tests).
pub(crate) fn sample(name: &str) -> String {
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
fn escaped_mount_fields_are_decoded() {
    let line = r"40 31 0:37 /my\040group /mnt/cg\040v1 rw,relatime - cgroup cgroup rw,cpu,nsroot=/";
    let m = parse_cgroup_mounts(line).unwrap();
    assert_eq!(m[0].mount_point, "/mnt/cg v1");
    assert_eq!(m[0].root, "/my group");
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
