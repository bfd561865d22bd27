//! Build facts for `cgmig --version`: the commit the binary was built from
//! and the target triple it was built for, so a binary copied to a host (or
//! found in a package) says exactly what it is.
//!
//! The commit comes from `CGMIG_BUILD_COMMIT` when set (a build from a
//! tarball, or a packager pinning it), else, in a release build, from `git
//! rev-parse` in the source tree, else `unknown` (dev builds: see `main`). Written by hand: twenty lines of `git` instead of a
//! build-time dependency tree (vergen and its kin pull in a dozen crates).

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CGMIG_BUILD_COMMIT");
    // Only release builds (`--release`, benches: what ships and what CI's
    // static build makes) read and track the commit. A dev build (`cargo
    // build`, `cargo test`) says `unknown`: tracking HEAD there would rerun
    // this script on every commit, and a changed `rustc-env` recompiles
    // every target of the crate (the library, the binary and each test
    // binary), minutes per commit in the edit-test loop.
    let release = std::env::var("PROFILE").as_deref() == Ok("release");
    let commit = std::env::var("CGMIG_BUILD_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| {
            release
                .then(|| git(&["rev-parse", "--short=12", "HEAD"]))
                .flatten()
        });
    if release {
        // Rebuild when HEAD moves: HEAD itself (a checkout) and the branch
        // it names (a commit). Both paths may live outside the work tree
        // (worktrees).
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
    }
    println!(
        "cargo:rustc-env=CGMIG_COMMIT={}",
        commit.as_deref().unwrap_or("unknown")
    );
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=CGMIG_TARGET={target}");
}
