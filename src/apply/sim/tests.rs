//! One test per kernel rule, each naming the errno and the kernel function
//! that enforces it (kernel/cgroup/cgroup.c unless said otherwise). The
//! core-file and thread-mode rules are also checked against the real kernel
//! by tests/integration/sim_kernel.rs.

use nix::errno::Errno;

use super::Simulator;
use crate::apply::step::UidGid;
use crate::apply::target::{Target, TargetError};
use crate::model::{Pid, Tid};

fn sim() -> Simulator {
    Simulator::new(&["cpuset", "cpu", "io", "memory", "hugetlb", "pids"])
}

/// Thread ids from raw numbers, for short test calls.
fn tids(raw: &[u32]) -> Vec<Tid> {
    raw.iter().copied().map(Tid::new).collect()
}

fn errno<T: std::fmt::Debug>(r: Result<T, TargetError>) -> Errno {
    r.expect_err("expected an error").errno
}

/// `/a` with `+x` at the root for each controller given.
fn with(ctrls: &str) -> Simulator {
    let mut s = sim();
    s.write("/", "cgroup.subtree_control", ctrls).unwrap();
    s.mkdir("/a").unwrap();
    s
}

#[test]
fn mkdir_eexist_enoent_and_rmdir_ebusy_with_children() {
    // VFS lookup (EEXIST/ENOENT); cgroup_destroy_locked: live children -> EBUSY.
    let mut s = sim();
    s.mkdir("/a").unwrap();
    assert_eq!(errno(s.mkdir("/a")), Errno::EEXIST);
    assert_eq!(errno(s.mkdir("/x/y")), Errno::ENOENT);
    assert_eq!(
        errno(s.mkdir("/a/cgroup.procs")),
        Errno::EEXIST,
        "an interface file of that name"
    );
    assert_eq!(
        errno(s.mkdir("/a/bad\nname")),
        Errno::EINVAL,
        "cgroup_mkdir refuses '\\n'"
    );
    s.mkdir("/a/memory.max").unwrap(); // no file of that name there: a plain name
    s.mkdir("/a/b").unwrap();
    assert_eq!(errno(s.rmdir("/a")), Errno::EBUSY);
    assert_eq!(errno(s.rmdir("/nope")), Errno::ENOENT);
    assert_eq!(errno(s.rmdir("/a/cgroup.procs")), Errno::ENOTDIR);
    s.rmdir("/a/b").unwrap();
    s.rmdir("/a/memory.max").unwrap();
    s.rmdir("/a").unwrap();
    assert!(!s.exists("/a"));
    assert_eq!(s.children("/").unwrap(), Vec::<String>::new());
}

#[test]
fn rmdir_ebusy_while_populated() {
    // cgroup_destroy_locked: cgroup_is_populated -> EBUSY.
    let mut s = sim();
    s.mkdir("/a").unwrap();
    s.mkdir("/a/b").unwrap();
    s.add_process(Pid::new(10), &tids(&[10, 11]), "/a/b").unwrap();
    assert_eq!(errno(s.rmdir("/a/b")), Errno::EBUSY);
    s.exit_process(Pid::new(10));
    s.rmdir("/a/b").unwrap();
}

#[test]
fn hierarchy_limits_eagain() {
    // cgroup_check_hierarchy_limits -> EAGAIN in cgroup_mkdir.
    let mut s = sim();
    s.mkdir("/a").unwrap();
    s.write("/a", "cgroup.max.depth", "1").unwrap();
    s.mkdir("/a/b").unwrap();
    assert_eq!(errno(s.mkdir("/a/b/c")), Errno::EAGAIN);
    s.write("/a", "cgroup.max.depth", "max").unwrap();
    s.write("/a", "cgroup.max.descendants", "1").unwrap();
    assert_eq!(errno(s.mkdir("/a/c")), Errno::EAGAIN);
    assert_eq!(errno(s.mkdir("/a/b/c")), Errno::EAGAIN);
    assert_eq!(s.read("/a", "cgroup.max.descendants").unwrap(), "1");
    // cgroup_max_depth_write: kstrtoint errors pass through, negative -> ERANGE.
    assert_eq!(errno(s.write("/a", "cgroup.max.depth", "x")), Errno::EINVAL);
    assert_eq!(errno(s.write("/a", "cgroup.max.depth", "-1")), Errno::ERANGE);
    assert_eq!(
        errno(s.write("/a", "cgroup.max.depth", "99999999999")),
        Errno::ERANGE
    );
    s.write("/a", "cgroup.max.depth", "2147483647").unwrap();
    assert_eq!(s.read("/a", "cgroup.max.depth").unwrap(), "max");
}

#[test]
fn controllers_come_from_the_parent_and_root_offers_its_set() {
    // cgroup_control: root -> its subsys mask minus implicit (perf_event);
    // others -> parent's subtree_control. Printed in subsystem id order.
    let mut s = Simulator::new(&["memory", "cpu", "perf_event", "pids"]);
    assert_eq!(s.read("/", "cgroup.controllers").unwrap(), "cpu memory pids");
    s.mkdir("/a").unwrap();
    assert_eq!(s.read("/a", "cgroup.controllers").unwrap(), "");
    s.write("/", "cgroup.subtree_control", "+pids +cpu").unwrap();
    assert_eq!(s.read("/a", "cgroup.controllers").unwrap(), "cpu pids");
    assert_eq!(s.read("/", "cgroup.subtree_control").unwrap(), "cpu pids");
}

#[test]
fn subtree_control_parse_errors_are_einval() {
    // cgroup_subtree_control_write: a token without +/-, an unknown or
    // v1-only (inhibited) controller -> EINVAL before anything is checked.
    let mut s = sim();
    for bad in ["memory", "+bogus", "+cpuacct", "*memory", "+"] {
        assert_eq!(
            errno(s.write("/", "cgroup.subtree_control", bad)),
            Errno::EINVAL,
            "{bad}"
        );
    }
    s.write("/", "cgroup.subtree_control", "  +memory   +cpu\n")
        .unwrap();
    s.write("/", "cgroup.subtree_control", "+pids -pids").unwrap(); // last one wins
    assert_eq!(s.read("/", "cgroup.subtree_control").unwrap(), "cpu memory");
}

#[test]
fn enabling_what_the_cgroup_lacks_is_enoent() {
    // cgroup_subtree_control_write: !(cgroup_control(cgrp) & ssid) -> ENOENT.
    let mut s = Simulator::new(&["pids"]);
    assert_eq!(
        errno(s.write("/", "cgroup.subtree_control", "+memory")),
        Errno::ENOENT
    );
    assert_eq!(
        errno(s.write("/", "cgroup.subtree_control", "+perf_event")),
        Errno::ENOENT
    );
    s.mkdir("/a").unwrap();
    assert_eq!(
        errno(s.write("/a", "cgroup.subtree_control", "+pids")),
        Errno::ENOENT
    );
    s.write("/", "cgroup.subtree_control", "+pids").unwrap();
    s.write("/a", "cgroup.subtree_control", "+pids").unwrap();
    s.write("/a", "cgroup.subtree_control", "-memory").unwrap(); // disabling what is off: no-op
}

#[test]
fn disabling_while_a_child_enables_it_is_ebusy() {
    // cgroup_subtree_control_write: "a child has it enabled?" -> EBUSY.
    let mut s = with("+memory");
    s.write("/a", "cgroup.subtree_control", "+memory").unwrap();
    assert_eq!(
        errno(s.write("/", "cgroup.subtree_control", "-memory")),
        Errno::EBUSY
    );
    s.write("/a", "cgroup.subtree_control", "-memory").unwrap();
    s.write("/", "cgroup.subtree_control", "-memory").unwrap();
}

#[test]
fn no_internal_processes_when_enabling() {
    // cgroup_vet_subtree_control_enable: a non-root cgroup with tasks can't
    // enable controllers -> EBUSY; the root is mixable and exempt.
    let mut s = with("+memory +pids");
    s.add_process(Pid::new(10), &tids(&[10]), "/a").unwrap();
    assert_eq!(
        errno(s.write("/a", "cgroup.subtree_control", "+memory")),
        Errno::EBUSY
    );
    s.add_process(Pid::new(20), &tids(&[20]), "/").unwrap();
    s.write("/", "cgroup.subtree_control", "+io").unwrap();
    // Threaded controllers are allowed: the cgroup can become a thread root.
    s.write("/a", "cgroup.subtree_control", "+pids").unwrap();
    assert_eq!(s.read("/a", "cgroup.type").unwrap(), "domain threaded");
}

#[test]
fn no_internal_processes_when_moving() {
    // cgroup_migrate_vet_dst: dst with controllers enabled (and unable to be
    // a thread root) -> EBUSY; the root takes processes anyway.
    let mut s = with("+memory");
    s.write("/a", "cgroup.subtree_control", "+memory").unwrap();
    s.add_process(Pid::new(10), &tids(&[10]), "/").unwrap();
    assert_eq!(errno(s.write("/a", "cgroup.procs", "10")), Errno::EBUSY);
    s.mkdir("/a/leaf").unwrap();
    s.write("/a/leaf", "cgroup.procs", "10").unwrap();
    s.write("/", "cgroup.procs", "10").unwrap();
    assert_eq!(s.cgroup_of(Tid::new(10)).as_deref(), Some("/"));
}

#[test]
fn threaded_exception_processes_with_threaded_controllers() {
    // cgroup_migrate_vet_dst: a cgroup that can be a thread root takes
    // processes although only threaded controllers are enabled in it.
    let mut s = with("+cpu +memory");
    s.write("/a", "cgroup.subtree_control", "+cpu").unwrap();
    s.mkdir("/a/t").unwrap();
    s.write("/a/t", "cgroup.type", "threaded").unwrap();
    s.add_process(Pid::new(10), &tids(&[10, 11]), "/").unwrap();
    s.write("/a", "cgroup.procs", "10").unwrap();
    s.write("/a/t", "cgroup.threads", "11").unwrap();
    assert_eq!(s.read("/a", "cgroup.type").unwrap(), "domain threaded");
    assert_eq!(s.read("/a/t", "cgroup.controllers").unwrap(), "cpu");
    // cgroup_vet_subtree_control_enable: no domain controller in a thread subtree.
    assert_eq!(
        errno(s.write("/a", "cgroup.subtree_control", "+memory")),
        Errno::EOPNOTSUPP
    );
    // In the threaded child memory isn't even available (cgroup_control masks it).
    s.write("/a/t", "cgroup.subtree_control", "+cpu").unwrap();
}

#[test]
fn cgroup_type_is_one_way() {
    // cgroup_type_write: only "threaded" is accepted (EINVAL otherwise);
    // writing it again is a no-op; the root has no cgroup.type (ENOENT).
    let mut s = sim();
    s.mkdir("/a").unwrap();
    assert_eq!(s.read("/a", "cgroup.type").unwrap(), "domain");
    s.write("/a", "cgroup.type", "threaded\n").unwrap();
    s.write("/a", "cgroup.type", "threaded").unwrap();
    assert_eq!(errno(s.write("/a", "cgroup.type", "domain")), Errno::EINVAL);
    assert_eq!(s.read("/a", "cgroup.type").unwrap(), "threaded");
    assert_eq!(errno(s.read("/", "cgroup.type")), Errno::ENOENT);
}

#[test]
fn threaded_needs_a_parent_that_can_be_a_thread_root() {
    // cgroup_enable_threaded -> cgroup_can_be_thread_root(dom): a populated
    // domain child (docs/research/live-handover.md "order matters") -> EOPNOTSUPP.
    let mut s = sim();
    for p in ["/app", "/app/main", "/app/io"] {
        s.mkdir(p).unwrap();
    }
    s.add_process(Pid::new(10), &tids(&[10, 11]), "/").unwrap();
    s.write("/app/main", "cgroup.procs", "10").unwrap();
    assert_eq!(
        errno(s.write("/app/io", "cgroup.type", "threaded")),
        Errno::EOPNOTSUPP
    );
    // Types first, while empty, then the process, then the threads.
    s.write("/", "cgroup.procs", "10").unwrap();
    s.write("/app/io", "cgroup.type", "threaded").unwrap();
    s.write("/app/main", "cgroup.type", "threaded").unwrap();
    s.write("/app/main", "cgroup.procs", "10").unwrap();
    s.write("/app/io", "cgroup.threads", "11").unwrap();
    assert_eq!(s.cgroup_of(Tid::new(10)).as_deref(), Some("/app/main"));
    assert_eq!(s.cgroup_of(Tid::new(11)).as_deref(), Some("/app/io"));
    assert_eq!(
        s.read("/app", "cgroup.procs").unwrap(),
        "10",
        "a thread root lists its subtree's processes"
    );
}

#[test]
fn threaded_refused_under_domain_controllers_or_when_populated() {
    // cgroup_enable_threaded: populated or own domain controllers -> EOPNOTSUPP;
    // parent with domain controllers enabled can't be a thread root -> EOPNOTSUPP.
    let mut s = with("+memory +cpu");
    s.write("/a", "cgroup.subtree_control", "+memory").unwrap();
    s.mkdir("/a/t").unwrap();
    assert_eq!(
        errno(s.write("/a/t", "cgroup.type", "threaded")),
        Errno::EOPNOTSUPP
    );
    s.mkdir("/b").unwrap();
    s.add_process(Pid::new(10), &tids(&[10]), "/b").unwrap();
    assert_eq!(errno(s.write("/b", "cgroup.type", "threaded")), Errno::EOPNOTSUPP);
    // Under the root (mixable) a threaded child is always possible.
    s.mkdir("/t").unwrap();
    s.write("/t", "cgroup.type", "threaded").unwrap();
}

#[test]
fn domain_invalid_children() {
    // cgroup_type_show / cgroup_is_valid_domain: a domain below a threaded
    // cgroup, or a domain sibling of threaded children under a non-root
    // thread root, is "domain invalid" and can't host processes or threads
    // (cgroup_migrate_vet_dst -> EOPNOTSUPP).
    let mut s = sim();
    for p in ["/app", "/app/t", "/app/d"] {
        s.mkdir(p).unwrap();
    }
    s.write("/app/t", "cgroup.type", "threaded").unwrap();
    s.mkdir("/app/t/sub").unwrap();
    assert_eq!(s.read("/app/d", "cgroup.type").unwrap(), "domain invalid");
    assert_eq!(s.read("/app/t/sub", "cgroup.type").unwrap(), "domain invalid");
    s.add_process(Pid::new(10), &tids(&[10, 11]), "/app").unwrap();
    assert_eq!(errno(s.write("/app/d", "cgroup.procs", "10")), Errno::EOPNOTSUPP);
    assert_eq!(
        errno(s.write("/app/t/sub", "cgroup.threads", "11")),
        Errno::EOPNOTSUPP
    );
    s.write("/app/t/sub", "cgroup.type", "threaded").unwrap();
    s.write("/app/t/sub", "cgroup.threads", "11").unwrap();
    // cgroup_vet_subtree_control_enable: an invalid domain hosts nothing.
    let mut s2 = with("+pids");
    s2.mkdir("/a/t").unwrap();
    s2.write("/a/t", "cgroup.type", "threaded").unwrap();
    s2.mkdir("/a/d").unwrap();
    s2.write("/a", "cgroup.subtree_control", "+pids").unwrap();
    assert_eq!(
        errno(s2.write("/a/d", "cgroup.subtree_control", "+pids")),
        Errno::EOPNOTSUPP
    );
}

#[test]
fn threads_stay_in_their_threaded_domain() {
    // cgroup_attach_permissions: !threadgroup && src->dom_cgrp != dst->dom_cgrp -> EOPNOTSUPP.
    let mut s = sim();
    for p in ["/app", "/app/t", "/other"] {
        s.mkdir(p).unwrap();
    }
    s.write("/app/t", "cgroup.type", "threaded").unwrap();
    s.add_process(Pid::new(10), &tids(&[10, 11]), "/app").unwrap();
    s.write("/app/t", "cgroup.threads", "11").unwrap();
    assert_eq!(
        errno(s.write("/other", "cgroup.threads", "11")),
        Errno::EOPNOTSUPP
    );
    assert_eq!(errno(s.write("/", "cgroup.threads", "11")), Errno::EOPNOTSUPP);
    // The whole process may go (cgroup.procs), threads included.
    s.write("/other", "cgroup.procs", "11").unwrap();
    assert_eq!(s.cgroup_of(Tid::new(10)).as_deref(), Some("/other"));
    assert_eq!(s.cgroup_of(Tid::new(11)).as_deref(), Some("/other"));
}

#[test]
fn procs_in_threaded_cgroups() {
    // cgroup_procs_start: reading cgroup.procs of a threaded cgroup ->
    // EOPNOTSUPP. Writing a whole process there is allowed by
    // cgroup_migrate_vet_dst (verified on the real kernel by sim_kernel.rs).
    let mut s = sim();
    s.mkdir("/app").unwrap();
    s.mkdir("/app/t").unwrap();
    s.write("/app/t", "cgroup.type", "threaded").unwrap();
    s.add_process(Pid::new(10), &tids(&[10, 11]), "/").unwrap();
    assert_eq!(errno(s.read("/app/t", "cgroup.procs")), Errno::EOPNOTSUPP);
    s.write("/app/t", "cgroup.procs", "10").unwrap();
    assert_eq!(s.read("/app/t", "cgroup.threads").unwrap(), "10\n11");
    assert_eq!(s.read("/app", "cgroup.procs").unwrap(), "10");
    // cgroup_kill_write: EOPNOTSUPP in a threaded cgroup.
    assert_eq!(errno(s.write("/app/t", "cgroup.kill", "1")), Errno::EOPNOTSUPP);
}

#[test]
fn pid_parsing_and_vanished_processes() {
    // cgroup_procs_write_start: kstrtoint fails or pid < 0 -> EINVAL; no such task -> ESRCH.
    let mut s = sim();
    s.mkdir("/a").unwrap();
    s.add_process(Pid::new(10), &tids(&[10, 11]), "/").unwrap();
    for bad in ["abc", "-1", "1.5", "10 11", "0", "2147483648"] {
        assert_eq!(errno(s.write("/a", "cgroup.procs", bad)), Errno::EINVAL, "{bad}");
        assert_eq!(
            errno(s.write("/a", "cgroup.threads", bad)),
            Errno::EINVAL,
            "{bad}"
        );
    }
    assert_eq!(errno(s.write("/a", "cgroup.procs", "999")), Errno::ESRCH);
    // A tid written to cgroup.procs moves its whole thread group.
    s.write("/a", "cgroup.procs", "11\n").unwrap();
    assert_eq!(s.cgroup_of(Tid::new(10)).as_deref(), Some("/a"));
    // A thread appearing during a move starts in its process's cgroup.
    s.add_thread(Pid::new(10), Tid::new(12));
    assert_eq!(s.cgroup_of(Tid::new(12)).as_deref(), Some("/a"));
    s.exit_process(Pid::new(10));
    assert_eq!(errno(s.write("/", "cgroup.procs", "10")), Errno::ESRCH);
    assert_eq!(errno(s.write("/a", "cgroup.threads", "12")), Errno::ESRCH);
    assert_eq!(s.cgroup_of(Tid::new(11)), None);
    assert_eq!(s.read("/a", "cgroup.procs").unwrap(), "");
}

#[test]
fn controller_files_exist_only_where_enabled() {
    // css_visible / cgroup_addrm_files: a controller's files appear in a
    // cgroup when its parent enables it; CFTYPE_NOT_ON_ROOT keeps most of
    // them off the root. Missing file -> ENOENT on read, write and chown.
    let mut s = sim();
    s.mkdir("/a").unwrap();
    assert_eq!(errno(s.read("/a", "memory.max")), Errno::ENOENT);
    assert_eq!(errno(s.write("/a", "memory.max", "1G")), Errno::ENOENT);
    assert_eq!(errno(s.chown("/a", Some("memory.max"), 1, 1)), Errno::ENOENT);
    assert_eq!(errno(s.read("/", "memory.max")), Errno::ENOENT);
    assert_eq!(errno(s.read("/", "cpu.weight")), Errno::ENOENT);
    s.read("/", "memory.stat").unwrap(); // on the root too
    s.read("/a", "cpu.stat").unwrap(); // core
    s.write("/", "cgroup.subtree_control", "+memory +hugetlb")
        .unwrap();
    assert_eq!(s.read("/a", "memory.max").unwrap(), "max");
    assert_eq!(s.read("/a", "hugetlb.2MB.max").unwrap(), "max");
    assert_eq!(errno(s.read("/a", "hugetlb.16GB.max")), Errno::ENOENT);
    assert_eq!(errno(s.read("/", "hugetlb.2MB.max")), Errno::ENOENT);
    assert_eq!(errno(s.read("/a", "memory.bogus")), Errno::ENOENT);
    s.chown("/a", Some("memory.max"), 1000, 1000).unwrap();
    assert_eq!(
        s.owner_of("/a", Some("memory.max")),
        Some(UidGid::new(1000, 1000))
    );
    assert_eq!(errno(s.chown("/nope", None, 1, 1)), Errno::ENOENT);
}

#[test]
fn optional_files_by_kernel_version_and_scheduler() {
    let mut s = with("+cpu +io");
    s.set_kernel((5, 10));
    assert_eq!(errno(s.read("/a", "cpu.idle")), Errno::ENOENT);
    assert_eq!(errno(s.read("/a", "cpu.max.burst")), Errno::ENOENT);
    s.set_kernel((5, 15));
    s.read("/a", "cpu.idle").unwrap();
    s.read("/a", "cpu.max.burst").unwrap();
    assert_eq!(errno(s.read("/a", "io.bfq.weight")), Errno::ENOENT);
    s.set_io_scheduler_bfq(true);
    assert_eq!(s.read("/a", "io.bfq.weight").unwrap(), "default 100");
}

#[test]
fn read_only_and_write_only_files_are_einval() {
    // Root opens them; kernfs_fop_write_iter/read_iter find no op: EINVAL
    // (measured on the real kernel by sim_kernel.rs).
    let mut s = with("+memory");
    assert_eq!(errno(s.write("/a", "cgroup.controllers", "x")), Errno::EINVAL);
    assert_eq!(errno(s.write("/a", "memory.current", "0")), Errno::EINVAL);
    assert_eq!(errno(s.read("/a", "cgroup.kill")), Errno::EINVAL);
    s.write("/a", "memory.max", "").unwrap(); // zero bytes: cgroup_file_write does nothing
}

#[test]
fn disabling_a_controller_resets_its_values() {
    // The css is killed on disable and a new one starts from defaults.
    let mut s = with("+memory");
    s.write("/a", "memory.max", "1G").unwrap();
    s.write("/", "cgroup.subtree_control", "-memory").unwrap();
    s.write("/", "cgroup.subtree_control", "+memory").unwrap();
    assert_eq!(s.read("/a", "memory.max").unwrap(), "max");
}

#[test]
fn a_child_named_like_a_new_file_makes_enable_eexist() {
    // cgroup_apply_control_enable -> css_populate_dir -> kernfs EEXIST.
    let mut s = sim();
    s.mkdir("/a").unwrap();
    s.mkdir("/a/memory.max").unwrap();
    assert_eq!(
        errno(s.write("/", "cgroup.subtree_control", "+memory")),
        Errno::EEXIST
    );
    assert_eq!(s.read("/", "cgroup.subtree_control").unwrap(), "");
}

#[test]
fn cpu_weight_and_nice() {
    // cpu_weight_write_u64: 1..10000 else ERANGE (kstrtoull errors first);
    // cpu_weight_nice_write_s64: -20..19 else ERANGE; each reads back the other.
    let mut s = with("+cpu");
    for (v, e) in [
        ("0", Errno::ERANGE),
        ("10001", Errno::ERANGE),
        ("-5", Errno::EINVAL),
        ("abc", Errno::EINVAL),
    ] {
        assert_eq!(errno(s.write("/a", "cpu.weight", v)), e, "{v}");
    }
    s.write("/a", "cpu.weight", "200\n").unwrap();
    assert_eq!(s.read("/a", "cpu.weight").unwrap(), "200");
    assert_eq!(s.read("/a", "cpu.weight.nice").unwrap(), "-3");
    assert_eq!(errno(s.write("/a", "cpu.weight.nice", "20")), Errno::ERANGE);
    s.write("/a", "cpu.weight.nice", "-20").unwrap();
    assert_eq!(s.read("/a", "cpu.weight").unwrap(), "8668");
    s.write("/a", "cpu.weight", "1").unwrap();
    assert_eq!(s.read("/a", "cpu.weight").unwrap(), "1");
    assert_eq!(s.read("/a", "cpu.weight.nice").unwrap(), "19");
    assert_eq!(errno(s.write("/a", "cpu.idle", "2")), Errno::EINVAL);
}

#[test]
fn cpu_max_and_burst() {
    // cpu_max_write -> cpu_period_quota_parse (EINVAL) -> tg_set_cfs_bandwidth
    // (period 1 ms..1 s, quota >= 1 ms, burst <= quota: EINVAL).
    let mut s = with("+cpu");
    assert_eq!(s.read("/a", "cpu.max").unwrap(), "max 100000");
    s.write("/a", "cpu.max", "50000").unwrap();
    assert_eq!(s.read("/a", "cpu.max").unwrap(), "50000 100000");
    s.write("/a", "cpu.max", "max 200000").unwrap();
    assert_eq!(s.read("/a", "cpu.max").unwrap(), "max 200000");
    for bad in ["abc", "-1 100000", "500 100000", "50000 999", "50000 1000001", ""] {
        if bad.is_empty() {
            continue;
        }
        assert_eq!(errno(s.write("/a", "cpu.max", bad)), Errno::EINVAL, "{bad}");
    }
    s.write("/a", "cpu.max", "20000 100000").unwrap();
    assert_eq!(errno(s.write("/a", "cpu.max.burst", "30000")), Errno::EINVAL);
    s.write("/a", "cpu.max.burst", "10000").unwrap();
    assert_eq!(
        errno(s.write("/a", "cpu.max", "5000 100000")),
        Errno::EINVAL,
        "burst > new quota"
    );
    assert_eq!(s.read("/a", "cpu.max.burst").unwrap(), "10000");
}

#[test]
fn memory_values_round_down_to_pages() {
    // page_counter_memparse: "max" or memparse; junk -> EINVAL; read back in
    // whole pages (seq_puts_memcg_tunable).
    let mut s = with("+memory");
    s.write("/a", "memory.max", "1G").unwrap();
    assert_eq!(s.read("/a", "memory.max").unwrap(), "1073741824");
    s.write("/a", "memory.high", "5000").unwrap();
    assert_eq!(s.read("/a", "memory.high").unwrap(), "4096");
    s.write("/a", "memory.low", "0x2000").unwrap();
    assert_eq!(s.read("/a", "memory.low").unwrap(), "8192");
    s.write("/a", "memory.swap.max", "max\n").unwrap();
    assert_eq!(s.read("/a", "memory.swap.max").unwrap(), "max");
    s.write("/a", "memory.min", "9223372036854775807").unwrap();
    assert_eq!(s.read("/a", "memory.min").unwrap(), "max");
    for bad in ["1X", "-1", "1 G", "abc"] {
        assert_eq!(errno(s.write("/a", "memory.max", bad)), Errno::EINVAL, "{bad}");
    }
    assert_eq!(errno(s.write("/a", "memory.oom.group", "2")), Errno::EINVAL);
    s.write("/a", "memory.oom.group", "1").unwrap();
}

#[test]
fn pids_max_range() {
    // pids_max_write: "max" or 0..PIDS_MAX-1, else EINVAL; kstrtoll errors pass through.
    let mut s = with("+pids");
    s.write("/a", "pids.max", "100").unwrap();
    assert_eq!(s.read("/a", "pids.max").unwrap(), "100");
    assert_eq!(errno(s.write("/a", "pids.max", "-1")), Errno::EINVAL);
    assert_eq!(errno(s.write("/a", "pids.max", "4194305")), Errno::EINVAL);
    assert_eq!(
        errno(s.write("/a", "pids.max", "99999999999999999999")),
        Errno::ERANGE
    );
    assert_eq!(errno(s.write("/a", "pids.max", "lots")), Errno::EINVAL);
    s.add_process(Pid::new(10), &tids(&[10, 11]), "/a").unwrap();
    assert_eq!(s.read("/a", "pids.current").unwrap(), "2");
}

#[test]
fn io_weight_and_io_max() {
    // ioc_weight_write: "default N"/"N" or "MAJ:MIN N", 1..10000 else EINVAL;
    // tg_set_limit: keys merged per device, 0 -> ERANGE, bad key -> EINVAL;
    // blkg_conf_open_bdev: unknown device -> ENODEV.
    let mut s = with("+io");
    s.set_block_devices(&["8:0", "8:16"]);
    s.write("/a", "io.weight", "default 300").unwrap();
    s.write("/a", "io.weight", "8:16 50").unwrap();
    assert_eq!(s.read("/a", "io.weight").unwrap(), "default 300\n8:16 50");
    s.write("/a", "io.weight", "8:16 default").unwrap();
    assert_eq!(s.read("/a", "io.weight").unwrap(), "default 300");
    assert_eq!(errno(s.write("/a", "io.weight", "0")), Errno::EINVAL);
    assert_eq!(errno(s.write("/a", "io.weight", "9:9 10")), Errno::ENODEV);
    s.write("/a", "io.max", "8:0 rbps=1048576").unwrap();
    s.write("/a", "io.max", "8:0 wiops=100").unwrap();
    assert_eq!(
        s.read("/a", "io.max").unwrap(),
        "8:0 rbps=1048576 wbps=max riops=max wiops=100"
    );
    assert_eq!(errno(s.write("/a", "io.max", "8:0 rbps=0")), Errno::ERANGE);
    assert_eq!(errno(s.write("/a", "io.max", "8:0 foo=1")), Errno::EINVAL);
    assert_eq!(errno(s.write("/a", "io.max", "8 rbps=1")), Errno::EINVAL);
    s.write("/a", "io.max", "8:0 rbps=max wiops=max").unwrap();
    assert_eq!(s.read("/a", "io.max").unwrap(), "");
    s.set_io_scheduler_bfq(true);
    assert_eq!(errno(s.write("/a", "io.bfq.weight", "1001")), Errno::ERANGE);
}

#[test]
fn cpuset_lists_normalize() {
    // cpulist_parse/bitmap_parselist: syntax -> EINVAL, past nr_cpu_ids ->
    // ERANGE; nodes outside the top cpuset's -> EINVAL (update_nodemask).
    let mut s = with("+cpuset");
    s.set_cpus("0-7", "0-1");
    s.write("/a", "cpuset.cpus", "3,0-1,2").unwrap();
    assert_eq!(s.read("/a", "cpuset.cpus").unwrap(), "0-3");
    assert_eq!(s.read("/a", "cpuset.cpus.effective").unwrap(), "0-3");
    s.write("/a", "cpuset.cpus", "0-7:1/2").unwrap();
    assert_eq!(s.read("/a", "cpuset.cpus").unwrap(), "0,2,4,6");
    assert_eq!(errno(s.write("/a", "cpuset.cpus", "3-1")), Errno::EINVAL);
    assert_eq!(errno(s.write("/a", "cpuset.cpus", "x")), Errno::EINVAL);
    assert_eq!(errno(s.write("/a", "cpuset.cpus", "8")), Errno::ERANGE);
    assert_eq!(errno(s.write("/a", "cpuset.mems", "2")), Errno::EINVAL);
    s.write("/a", "cpuset.cpus", "\n").unwrap();
    assert_eq!(s.read("/a", "cpuset.cpus").unwrap(), "");
    assert_eq!(s.read("/a", "cpuset.cpus.effective").unwrap(), "0-7");
    assert_eq!(
        errno(s.write("/a", "cpuset.cpus.partition", "bogus")),
        Errno::EINVAL
    );
    s.write("/a", "cpuset.cpus.partition", "root").unwrap();
}

#[test]
fn hugetlb_limits_round_to_the_huge_page() {
    // hugetlb_cgroup_write: page_counter_memparse then round_down to the huge page.
    let mut s = with("+hugetlb");
    s.write("/a", "hugetlb.2MB.max", "3M").unwrap();
    assert_eq!(s.read("/a", "hugetlb.2MB.max").unwrap(), "2097152");
    s.write("/a", "hugetlb.1GB.max", "max").unwrap();
    assert_eq!(s.read("/a", "hugetlb.1GB.max").unwrap(), "max");
    assert_eq!(errno(s.write("/a", "hugetlb.2MB.max", "2Q")), Errno::EINVAL);
}

#[test]
fn freeze_values() {
    // cgroup_freeze_write: kstrtoint, then 0/1 else ERANGE; cgroup.events
    // shows the effective state, inherited by descendants.
    let mut s = sim();
    s.mkdir("/a").unwrap();
    s.mkdir("/a/b").unwrap();
    assert_eq!(errno(s.write("/a", "cgroup.freeze", "2")), Errno::ERANGE);
    assert_eq!(errno(s.write("/a", "cgroup.freeze", "x")), Errno::EINVAL);
    s.write("/a", "cgroup.freeze", "1").unwrap();
    assert_eq!(s.read("/a/b", "cgroup.freeze").unwrap(), "0");
    assert_eq!(s.read("/a/b", "cgroup.events").unwrap(), "populated 0\nfrozen 1");
    assert_eq!(errno(s.read("/", "cgroup.freeze")), Errno::ENOENT);
}

#[test]
fn handing_controllers_over_and_back() {
    // Live handover: the controller appears at the root once v1 releases it;
    // it goes back only when nothing on v2 enables it (rebind_subsystems: EBUSY).
    let mut s = Simulator::new(&["pids"]);
    assert_eq!(
        errno(s.write("/", "cgroup.subtree_control", "+hugetlb")),
        Errno::ENOENT
    );
    s.offer_controller("hugetlb");
    s.write("/", "cgroup.subtree_control", "+hugetlb").unwrap();
    assert_eq!(s.withdraw_controller("hugetlb").unwrap_err().errno, Errno::EBUSY);
    s.write("/", "cgroup.subtree_control", "-hugetlb").unwrap();
    s.withdraw_controller("hugetlb").unwrap();
    assert_eq!(s.read("/", "cgroup.controllers").unwrap(), "pids");
}

#[test]
fn kill_empties_the_subtree() {
    // cgroup_kill_write: only "1" (ERANGE otherwise); every process goes.
    let mut s = sim();
    s.mkdir("/a").unwrap();
    s.mkdir("/a/b").unwrap();
    s.add_process(Pid::new(10), &tids(&[10]), "/a/b").unwrap();
    assert_eq!(errno(s.write("/a", "cgroup.kill", "0")), Errno::ERANGE);
    s.write("/a", "cgroup.kill", "1").unwrap();
    assert_eq!(s.cgroup_of(Tid::new(10)), None);
    s.rmdir("/a/b").unwrap();
}

mod random_sequences {
    //! Arbitrary call sequences never panic and never leave the simulator in
    //! a state the kernel can't be in.

    use proptest::prelude::*;

    use super::super::Simulator;
    use super::tids;
    use crate::apply::target::Target;
    use crate::model::{Pid, Tid};

    const PATHS: &[&str] = &["/", "/a", "/a/b", "/a/b/c", "/d", "/a/e"];
    const FILES: &[&str] = &[
        "cgroup.type",
        "cgroup.procs",
        "cgroup.threads",
        "cgroup.subtree_control",
        "cgroup.max.depth",
        "cgroup.freeze",
        "memory.max",
        "cpu.weight",
        "pids.max",
    ];
    const VALUES: &[&str] = &[
        "threaded",
        "domain",
        "+cpu",
        "+memory",
        "-memory",
        "-cpu",
        "+pids",
        "+cpu +pids",
        "10",
        "11",
        "12",
        "20",
        "21",
        "max",
        "1G",
        "abc",
        "0",
        "1",
        "",
    ];

    #[derive(Debug, Clone)]
    enum Call {
        Mkdir(usize),
        Rmdir(usize),
        Write(usize, usize, usize),
        Exit(Pid),
        Thread(Pid, Tid),
    }

    fn call() -> impl Strategy<Value = Call> {
        prop_oneof![
            (0..PATHS.len()).prop_map(Call::Mkdir),
            (0..PATHS.len()).prop_map(Call::Rmdir),
            (0..PATHS.len(), 0..FILES.len(), 0..VALUES.len()).prop_map(|(p, f, v)| Call::Write(p, f, v)),
            prop_oneof![Just(10u32), Just(20u32)].prop_map(|p| Call::Exit(Pid::new(p))),
            (prop_oneof![Just(10u32), Just(20u32)], 30u32..33)
                .prop_map(|(p, t)| Call::Thread(Pid::new(p), Tid::new(t))),
        ]
    }

    /// The kernel's invariants, checked through the public interface.
    fn check(s: &Simulator) {
        for p in PATHS.iter().filter(|p| s.exists(p)) {
            let controllers = s.read(p, "cgroup.controllers").unwrap();
            let enabled = s.read(p, "cgroup.subtree_control").unwrap();
            for c in enabled.split_whitespace() {
                assert!(
                    controllers.split_whitespace().any(|x| x == c),
                    "{p}: {c} enabled but not available"
                );
            }
            if *p != "/" {
                let t = s.read(p, "cgroup.type").unwrap();
                assert!(["domain", "domain threaded", "domain invalid", "threaded"].contains(&t.as_str()));
                // No internal process in a domain with domain controllers.
                let has_domain_ctrl = enabled.split_whitespace().any(|c| c == "memory");
                if (has_domain_ctrl && t == "domain") || t == "domain invalid" {
                    assert_eq!(
                        s.read(p, "cgroup.threads").unwrap(),
                        "",
                        "{p} ({t}): tasks not allowed here"
                    );
                }
            }
        }
        for tid in [10, 11, 20, 21, 30, 31, 32].map(Tid::new) {
            if let Some(cg) = s.cgroup_of(tid) {
                assert!(s.exists(&cg), "task {tid} in missing {cg}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]
        #[test]
        fn random_calls_keep_the_kernel_invariants(calls in proptest::collection::vec(call(), 1..60)) {
            let mut s = Simulator::new(&["cpu", "memory", "pids"]);
            s.add_process(Pid::new(10), &tids(&[10, 11]), "/").unwrap();
            s.add_process(Pid::new(20), &tids(&[20, 21]), "/").unwrap();
            for c in calls {
                match c {
                    Call::Mkdir(p) => { let _ = s.mkdir(PATHS[p]); }
                    Call::Rmdir(p) => { let _ = s.rmdir(PATHS[p]); }
                    Call::Write(p, f, v) => { let _ = s.write(PATHS[p], FILES[f], VALUES[v]); }
                    Call::Exit(pid) => s.exit_process(pid),
                    Call::Thread(pid, tid) => s.add_thread(pid, tid),
                }
                check(&s);
            }
        }
    }
}
