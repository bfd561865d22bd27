//! One test per kernel rule, each naming the errno and where the kernel enforces it.

use nix::errno::Errno;

use super::Simulator;
use crate::apply::target::Target;

fn sim() -> Simulator {
    Simulator::new(&["cpuset", "cpu", "io", "memory", "hugetlb", "pids"])
}

fn errno<T: std::fmt::Debug>(r: Result<T, crate::apply::TargetError>) -> Errno {
    r.expect_err("expected an error").errno
}

#[test]
fn mkdir_rmdir_basics() {
    let mut s = sim();
    s.mkdir("/a").unwrap();
    assert_eq!(errno(s.mkdir("/a")), Errno::EEXIST);
    assert_eq!(errno(s.mkdir("/x/y")), Errno::ENOENT);
    s.mkdir("/a/b").unwrap();
    assert_eq!(errno(s.rmdir("/a")), Errno::EBUSY);
    s.rmdir("/a/b").unwrap();
    s.rmdir("/a").unwrap();
    assert!(!s.exists("/a"));
}
