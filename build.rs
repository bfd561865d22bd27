//! Build facts for `cgmig --version`: the commit the binary was built from
//! and the target triple it was built for, so a binary copied to a host (or
//! found in a package) says exactly what it is.
//!
//! The commit comes from `CGMIG_BUILD_COMMIT` when set (a build from a
//! tarball, or a packager pinning it), else from `git rev-parse` in the source
//! tree, else `unknown`. Written by hand: twenty lines of `git` instead of a
//! build-time dependency tree (vergen and its kin pull in a dozen crates).

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
}

fn main() {
    println!("cargo:rerun-if-env-changed=CGMIG_BUILD_COMMIT");
    let commit = std::env::var("CGMIG_BUILD_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]));
    // Rebuild when HEAD moves: HEAD itself (a checkout) and the branch it
    // names (a commit). Both paths may live outside the work tree (worktrees).
    for name in ["HEAD", "packed-refs"] {
        if let Some(p) = git(&["rev-parse", "--git-path", name]) {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"])
        && let Some(p) = git(&["rev-parse", "--git-path", &branch])
        && Path::new(&p).exists()
    {
        println!("cargo:rerun-if-changed={p}");
    }
    println!(
        "cargo:rustc-env=CGMIG_COMMIT={}",
        commit.as_deref().unwrap_or("unknown")
    );
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=CGMIG_TARGET={target}");
}
