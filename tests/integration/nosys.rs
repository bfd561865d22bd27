//! cgmig on an old kernel: the scan, audit, plan and apply tests run again
//! with every system call newer than Linux 3.10 refused with `ENOSYS`, as a
//! 3.10 kernel (RHEL 7) answers them, and must pass unchanged: the same
//! snapshots, reports and plans (insta compares them with the reviewed
//! ones), the same applied trees.
//!
//! The refusal is a seccomp filter ([`seccompiler`]) installed in the child
//! test process before it starts (`pre_exec`), so it covers everything that
//! process runs: the library code the tests call in-process, the Rust
//! standard library and the C library below it (glibc's own fallbacks for
//! `clone3`, `rseq`, `faccessat2`), and every `cgmig` binary a test spawns
//! (a filter is inherited across fork and exec). [`probe`] first proves the
//! filter refuses what it should.
//!
//! docs/install.md ("System calls") lists the calls and the fallback for each
//! one cgmig or its dependencies make.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::process::Command;

use nix::libc;
use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};

/// The system calls Linux added after 3.10, with the release that added each
/// (`include/uapi/asm-generic/unistd.h` and the x86_64 syscall table's
/// history). Those of them a 3.10 kernel lacks answer ENOSYS there.
#[cfg(target_arch = "x86_64")]
pub const NEWER_THAN_3_10: &[(&str, libc::c_long, &str)] = &[
    ("sched_setattr", libc::SYS_sched_setattr, "3.14"),
    ("sched_getattr", libc::SYS_sched_getattr, "3.14"),
    ("renameat2", libc::SYS_renameat2, "3.15"),
    ("seccomp", libc::SYS_seccomp, "3.17"),
    ("getrandom", libc::SYS_getrandom, "3.17"),
    ("memfd_create", libc::SYS_memfd_create, "3.17"),
    ("kexec_file_load", libc::SYS_kexec_file_load, "3.17"),
    ("bpf", libc::SYS_bpf, "3.18"),
    ("execveat", libc::SYS_execveat, "3.19"),
    ("userfaultfd", libc::SYS_userfaultfd, "4.3"),
    ("membarrier", libc::SYS_membarrier, "4.3"),
    ("mlock2", libc::SYS_mlock2, "4.4"),
    ("copy_file_range", libc::SYS_copy_file_range, "4.5"),
    ("preadv2", libc::SYS_preadv2, "4.6"),
    ("pwritev2", libc::SYS_pwritev2, "4.6"),
    ("pkey_mprotect", libc::SYS_pkey_mprotect, "4.9"),
    ("pkey_alloc", libc::SYS_pkey_alloc, "4.9"),
    ("pkey_free", libc::SYS_pkey_free, "4.9"),
    ("statx", libc::SYS_statx, "4.11"),
    ("io_pgetevents", 333, "4.18"),
    ("rseq", libc::SYS_rseq, "4.18"),
    ("pidfd_send_signal", libc::SYS_pidfd_send_signal, "5.1"),
    ("io_uring_setup", libc::SYS_io_uring_setup, "5.1"),
    ("io_uring_enter", libc::SYS_io_uring_enter, "5.1"),
    ("io_uring_register", libc::SYS_io_uring_register, "5.1"),
    ("open_tree", libc::SYS_open_tree, "5.2"),
    ("move_mount", libc::SYS_move_mount, "5.2"),
    ("fsopen", libc::SYS_fsopen, "5.2"),
    ("fsconfig", libc::SYS_fsconfig, "5.2"),
    ("fsmount", libc::SYS_fsmount, "5.2"),
    ("fspick", libc::SYS_fspick, "5.2"),
    ("pidfd_open", libc::SYS_pidfd_open, "5.3"),
    ("clone3", libc::SYS_clone3, "5.3"),
    ("openat2", libc::SYS_openat2, "5.6"),
    ("pidfd_getfd", libc::SYS_pidfd_getfd, "5.6"),
    ("faccessat2", libc::SYS_faccessat2, "5.8"),
    ("close_range", libc::SYS_close_range, "5.9"),
    ("process_madvise", libc::SYS_process_madvise, "5.10"),
    ("epoll_pwait2", libc::SYS_epoll_pwait2, "5.11"),
    ("mount_setattr", libc::SYS_mount_setattr, "5.12"),
    (
        "landlock_create_ruleset",
        libc::SYS_landlock_create_ruleset,
        "5.13",
    ),
    ("landlock_add_rule", libc::SYS_landlock_add_rule, "5.13"),
    ("landlock_restrict_self", libc::SYS_landlock_restrict_self, "5.13"),
    ("memfd_secret", libc::SYS_memfd_secret, "5.14"),
    ("quotactl_fd", libc::SYS_quotactl_fd, "5.14"),
    ("process_mrelease", libc::SYS_process_mrelease, "5.15"),
    ("futex_waitv", libc::SYS_futex_waitv, "5.16"),
    (
        "set_mempolicy_home_node",
        libc::SYS_set_mempolicy_home_node,
        "5.17",
    ),
    ("cachestat", 451, "6.5"),
    ("fchmodat2", 452, "6.6"),
    ("map_shadow_stack", 453, "6.6"),
    ("futex_wake", 454, "6.7"),
    ("futex_wait", 455, "6.7"),
    ("futex_requeue", 456, "6.7"),
    ("statmount", 457, "6.8"),
    ("listmount", 458, "6.8"),
    ("lsm_get_self_attr", 459, "6.8"),
    ("lsm_set_self_attr", 460, "6.8"),
    ("lsm_list_modules", 461, "6.8"),
    ("mseal", 462, "6.10"),
    ("setxattrat", 463, "6.13"),
    ("getxattrat", 464, "6.13"),
    ("listxattrat", 465, "6.13"),
    ("removexattrat", 466, "6.13"),
    ("open_tree_attr", 467, "6.15"),
    ("file_getattr", 468, "6.17"),
    ("file_setattr", 469, "6.17"),
];

/// The test modules run again under the filter: everything that scans,
/// audits, plans and applies (to the simulator and, as root, to a private
/// cgroup2 subtree of this machine's kernel).
const MODULES: &[&str] = &[
    "scan::",
    "audit::",
    "plan::",
    "kernel::",
    "apply_sim::",
    "apply_cli::",
    "apply_kernel::",
    "verify::",
];

/// The filter: each call of [`NEWER_THAN_3_10`] fails with ENOSYS, the rest
/// are allowed.
#[cfg(target_arch = "x86_64")]
pub fn filter() -> BpfProgram {
    let rules: BTreeMap<i64, Vec<seccompiler::SeccompRule>> = NEWER_THAN_3_10
        .iter()
        .map(|(_, nr, _)| (*nr, Vec::new()))
        .collect();
    let f = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        TargetArch::x86_64,
    )
    .expect("a valid seccomp filter");
    f.try_into().expect("the filter compiles to BPF")
}

/// This test binary again, with the filter installed before it runs.
#[cfg(target_arch = "x86_64")]
fn refused(args: &[&str]) -> Command {
    let prog = filter();
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(args).env("CGMIG_NOSYS_CHILD", "1");
    // SAFETY: between fork and exec the closure only makes two system calls
    // (prctl, seccomp) on a program compiled before the fork; it allocates
    // nothing and takes no lock.
    unsafe {
        cmd.pre_exec(move || {
            seccompiler::apply_filter(&prog).map_err(|e| std::io::Error::other(e.to_string()))
        });
    }
    cmd
}

/// The filter refuses every call in the table with ENOSYS, in a child that
/// runs with it (`CGMIG_NOSYS_CHILD=1`); without it, `statx` and `openat2`
/// answer (this machine's kernel has both), so the child's ENOSYS is the
/// filter's.
#[test]
#[cfg(target_arch = "x86_64")]
fn probe() {
    let refused_here = std::env::var_os("CGMIG_NOSYS_CHILD").is_some();
    for (name, nr, since) in NEWER_THAN_3_10 {
        // Arguments that make each call fail fast where it exists (a bad
        // fd, a null pointer, a zero size): only ENOSYS says "refused".
        // SAFETY: every argument is an invalid fd (-1) or a null pointer;
        // the kernel validates them and fails the call (EBADF, EFAULT,
        // EINVAL) before touching any memory of this process.
        let r = unsafe { libc::syscall(*nr, -1, 0, 0, 0, 0, 0) };
        let errno = std::io::Error::last_os_error().raw_os_error();
        let enosys = r == -1 && errno == Some(libc::ENOSYS);
        if refused_here {
            assert!(enosys, "{name} (Linux {since}) was not refused: {r} {errno:?}");
        } else if matches!(*name, "statx" | "openat2" | "close_range") {
            assert!(
                !enosys,
                "{name} answers ENOSYS without the filter: the probe proves nothing here"
            );
        }
    }
}

/// The scan, audit, plan and apply tests pass with the newer calls refused.
#[test]
#[cfg(target_arch = "x86_64")]
fn scan_audit_plan_apply_pass_on_a_3_10_syscall_table() {
    let o = refused(&["--exact", "nosys::probe"]).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && out.contains("1 passed"),
        "the probe failed under the filter:\n{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut args: Vec<&str> = MODULES.to_vec();
    // As root in CI the real-kernel tests among them run too (apply to a
    // private cgroup2 subtree, scan of this machine's hierarchies).
    if std::env::var("CGMIG_REQUIRE_KERNEL_TESTS").as_deref() == Ok("1") {
        args.push("--include-ignored");
    }
    args.extend(["--skip", "nosys::", "--test-threads=2"]);
    let o = refused(&args).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let summary = out.lines().rfind(|l| l.starts_with("test result:")).unwrap_or("");
    eprintln!("under the 3.10 syscall filter: {summary}");
    assert!(
        o.status.success(),
        "tests failed with the newer system calls refused:\n{}\n{}",
        out.lines()
            .filter(|l| !l.ends_with("... ok"))
            .collect::<Vec<_>>()
            .join("\n"),
        String::from_utf8_lossy(&o.stderr)
    );
    // The run did run the modules: a filter typo would pass with 0 tests.
    let passed: usize = summary
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .find(|w| w[1].trim_end_matches(';') == "passed")
        .and_then(|w| w[0].parse().ok())
        .unwrap_or(0);
    assert!(
        passed >= 60,
        "only {passed} tests ran under the filter: {summary}"
    );
}
