//! Fixture hosts scan to the expected snapshot; snapshots round-trip.

use cgmig::model::{Controller, HierarchyId, Mode, Node, Pid, Snapshot, Version};
use cgmig::report::{DataFormat, from_data, render_tree, to_data};

use crate::util::*;

#[test]
fn at_least_eight_fixture_hosts() {
    let names = host_names();
    assert!(names.len() >= 8, "{names:?}");
}

/// A fixture host scans to its reviewed tree.
fn scans_to_its_reviewed_tree(name: &str) {
    let h = host(name);
    let snap = h.scan();
    let tree = redact(&render_tree(&snap, &rules()), h.root());
    insta::assert_snapshot!(format!("tree-{name}"), tree);
}
per_host!(reviewed_tree, scans_to_its_reviewed_tree);

/// A fixture host's snapshot round-trips through JSON and YAML.
fn round_trips_through_json_and_yaml(name: &str) {
    let snap = host(name).scan();
    for f in [DataFormat::Json, DataFormat::Yaml] {
        let text = to_data(&snap, f).unwrap();
        let back: Snapshot = from_data(&text).unwrap();
        assert!(back == snap, "{name} {f:?} round trip differs");
    }
}
per_host!(round_trip, round_trips_through_json_and_yaml);

#[test]
fn centos7_hierarchies_come_from_kernel_data() {
    let snap = host("centos7-legacy").scan();
    assert_eq!(snap.host.mode, Mode::Legacy);
    let (_, cpu) = snap.hierarchy(11).unwrap();
    assert_eq!(cpu.controllers, vec![Controller::Cpuacct, Controller::Cpu]);
    assert_eq!(cpu.mounts[0].mount_point, "/sys/fs/cgroup/cpu,cpuacct");
    let (_, systemd) = snap.hierarchy(1).unwrap();
    assert_eq!(systemd.name.as_deref(), Some("systemd"));
    assert_eq!(
        systemd.release_agent.as_deref(),
        Some("/usr/lib/systemd/systemd-cgroups-agent")
    );
    assert_eq!(systemd.mounts[0].options, vec!["rw".to_string(), "xattr".into()]);
    // Settings: only settings files, raw, with unlimited kept as printed.
    let docker = snap.find_cgroup(6, "/system.slice/docker.service").unwrap();
    let c = snap.cgroup(docker);
    assert_eq!(c.settings["memory.limit_in_bytes"], "8589934592");
    assert!(
        !c.settings.contains_key("memory.usage_in_bytes"),
        "statistics are not read"
    );
    let root = snap.find_cgroup(6, "/").unwrap();
    assert_eq!(
        snap.cgroup(root).settings["memory.limit_in_bytes"],
        "9223372036854771712"
    );
    // kubelet is at /system.slice in memory, which has a child: visible as members.
    let sys = snap.find_cgroup(6, "/system.slice").unwrap();
    assert_eq!(snap.task_counts(sys), (2, 2), "sshd and kubelet");
    assert!(snap.split_processes().is_empty());
}

#[test]
fn threads_split_and_owners_are_visible() {
    let snap = host("libvirt-vcpu-threads").scan();
    let split = snap.split_processes();
    assert_eq!(split.len(), 1);
    let (pi, hs) = &split[0];
    let Node::Process(p) = &snap.graph[*pi] else {
        panic!()
    };
    assert_eq!(p.pid, Pid::new(3300));
    assert_eq!(
        hs,
        &vec![HierarchyId::new(2), HierarchyId::new(3)],
        "split in cpu,cpuacct and cpuset only"
    );
    let threads = snap.threads(*pi);
    assert_eq!(threads.len(), 4);
    assert_eq!(threads[1].1.comm, "CPU 0/KVM");
    let vcpu0 = snap
        .find_cgroup(2, "/machine.slice/machine-qemu\\x2d1\\x2dweb.scope/libvirt/vcpu0")
        .unwrap();
    assert_eq!(snap.task_counts(vcpu0), (1, 1));

    let borg = host("borg-like").scan();
    let alloc = borg.find_cgroup(3, "/alloc1").unwrap();
    let o = &borg.cgroup(alloc).owner;
    assert_eq!(o.delegate_uid(), Some(1000));
    assert_eq!(o.dir.unwrap().uid, 1000);
    assert_eq!(o.tasks.unwrap().uid, 1000);
    assert_eq!(
        borg.find_cgroup(3, "/task1")
            .map(|i| borg.cgroup(i).owner.delegate_uid()),
        Some(None)
    );
}

#[test]
fn container_view_scans_only_its_subtree_and_says_so() {
    let h = host("container-view");
    let snap = h.scan();
    assert_eq!(snap.host.mode, Mode::Legacy);
    let (hi, mem) = snap.hierarchy(3).unwrap();
    assert_eq!(mem.mounts[0].root, "/docker/4d2e3f1a0b9c");
    let root = snap.root_cgroup(hi).unwrap();
    assert_eq!(
        snap.cgroup(root).path,
        "/docker/4d2e3f1a0b9c",
        "paths stay host-absolute"
    );
    assert_eq!(snap.cgroup(root).settings["memory.limit_in_bytes"], "536870912");
    assert_eq!(snap.task_counts(root), (2, 4));
    assert!(
        snap.diagnostics
            .iter()
            .any(|d| d.message.contains("only part of hierarchy 3"))
    );
}

#[test]
fn unmounted_and_named_hierarchies_are_found() {
    let snap = host("legacy-exotic").scan();
    let (_, noctrl) = snap.hierarchy(10).expect("alive via /proc/PID/cgroup");
    assert!(noctrl.mounts.is_empty());
    assert_eq!(noctrl.name.as_deref(), Some("noctrl"));
    let (_, sched) = snap.hierarchy(2).unwrap();
    assert_eq!(sched.name.as_deref(), Some("scheduler"));
    assert_eq!(sched.controllers, vec![Controller::Cpu, Controller::Cpuacct]);
    assert!(
        snap.diagnostics
            .iter()
            .any(|d| d.message.contains("alive but mounted nowhere"))
    );
    let hugetlb = snap
        .host
        .controllers
        .iter()
        .find(|c| c.controller == Controller::Hugetlb)
        .unwrap();
    assert!(!hugetlb.enabled);
    // The unresolved membership is kept on the thread.
    let (pi, _) = snap
        .processes()
        .into_iter()
        .find(|(_, p)| p.pid == Pid::new(500))
        .unwrap();
    let (_, t) = &snap.threads(pi)[0];
    assert_eq!(t.unresolved, vec![(HierarchyId::new(10), "/tracked".to_string())]);
}

#[test]
fn pure_v2_host() {
    let snap = host("pure-v2").scan();
    assert_eq!(snap.host.mode, Mode::Unified);
    let hs = snap.hierarchies();
    assert_eq!(hs.len(), 1);
    assert_eq!(hs[0].1.version, Version::V2);
    assert!(hs[0].1.controllers.contains(&Controller::Io));
    let nginx = snap.find_cgroup(0, "/system.slice/nginx.service").unwrap();
    assert_eq!(snap.cgroup(nginx).settings["memory.max"], "1073741824");
    let user = snap
        .find_cgroup(0, "/user.slice/user-1000.slice/user@1000.service")
        .unwrap();
    assert_eq!(
        snap.cgroup(user).owner.tasks.unwrap().uid,
        1000,
        "cgroup.threads owner"
    );
}

#[test]
fn odd_names_survive_scanning() {
    use cgmig::fixture::*;
    let mut spec = HostSpec::load(&hosts_dir().join("docker-cgroupfs.yaml")).unwrap();
    spec.hierarchies.truncate(2);
    spec.hierarchies[1]
        .cgroups
        .insert("/with space/and:colon".into(), CgroupSpec::default());
    spec.processes.retain(|p| p.pid == 1);
    spec.processes[0]
        .cgroups
        .insert(2, "/with space/and:colon".into());
    let h = build_spec(spec);
    // A directory whose name is not UTF-8.
    let bad = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"bad\xffname");
    std::fs::create_dir(h.root().join("sys/fs/cgroup/cpu,cpuacct").join(bad)).unwrap();
    let snap = h.scan();
    let sp = snap
        .find_cgroup(2, "/with space/and:colon")
        .expect("spaces and colons");
    assert_eq!(snap.task_counts(sp), (1, 1));
    assert!(
        snap.find_cgroup(2, "/bad\\xffname").is_some(),
        "non-UTF-8 escaped"
    );
}

#[test]
fn vanished_process_is_counted_not_fatal() {
    let h = host("docker-cgroupfs");
    // A pid directory whose files are gone (exited mid-scan).
    std::fs::create_dir_all(h.root().join("proc/99999")).unwrap();
    // An unreadable-format status file is a diagnostic with its path.
    std::fs::write(h.root().join("proc/700/status"), "Uid:\tnope\n").unwrap();
    let snap = h.scan();
    assert_eq!(snap.vanished.tasks, 1);
    assert!(
        snap.diagnostics
            .iter()
            .any(|d| d.path.contains("proc/700/status:") && d.message.contains("Uid")),
        "{:?}",
        snap.diagnostics
    );
    assert!(snap.processes().iter().all(|(_, p)| p.pid != Pid::new(700)));
}

#[test]
fn garbage_mountinfo_is_a_clear_error() {
    let h = host("pure-v2");
    std::fs::write(
        h.root().join("proc/self/mountinfo"),
        "30 23 0:26 / /x rw - cgroup2 cgroup2 rw\ngarbage\n",
    )
    .unwrap();
    let e = cgmig::scan::scan(&cgmig::host::Root::new(h.root()).unwrap()).unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains("proc/self/mountinfo:2"), "{msg}");
}
