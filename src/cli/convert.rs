//! `cgmig convert`: write the v2 configuration the host needs (systemd
//! drop-ins, LXC keys, cgconfig.conf, boot lines per stage) into a directory,
//! with one unified diff to review. The conversion itself is
//! `readiness::convert`; this file only loads the input and writes files.
//!
//! The output directory is built beside its final name and renamed into
//! place, so a failure leaves nothing half-written, and an existing
//! non-empty directory is never overwritten.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;

use super::{InputArgs, RulesArgs, load_input, load_rules};
use crate::readiness::convert::{OutFile, Output, convert};

/// Arguments of `cgmig convert`.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    rules: RulesArgs,
    /// Write the files under DIR (`final/…`, `stage-N/…`, `changes.diff`, `notes.txt`)
    /// instead of printing the diff.
    #[arg(short, long, value_name = "DIR")]
    output: Option<PathBuf>,
}

/// Where a file goes inside the output directory.
fn out_path(f: &OutFile) -> String {
    let top = match f.stage {
        Some(n) => format!("stage-{n}"),
        None => "final".into(),
    };
    format!("/{top}{}", f.path)
}

/// One unified diff of every file against what it replaces.
pub fn diff(out: &Output) -> String {
    let mut s = String::new();
    for f in &out.files {
        let old = f.original.as_deref().unwrap_or("");
        let from = if f.original.is_some() {
            format!("a{}", f.path)
        } else {
            "/dev/null".into()
        };
        let d = similar::TextDiff::from_lines(old, &f.text);
        let _ = write!(
            s,
            "{}",
            d.unified_diff()
                .context_radius(3)
                .header(&from, &format!("b{}", out_path(f)))
        );
    }
    s
}

/// The path of a generated file inside the output directory, or why it
/// cannot be one: a host path must be absolute and normalized (no `..`, no
/// `.`, no empty component) and free of control characters, so the joined
/// path stays inside the directory whatever the snapshot said.
fn inside(dir: &Path, f: &OutFile) -> Result<PathBuf> {
    let rel = out_path(f);
    let ok = [f.path.as_str(), rel.as_str()]
        .iter()
        .all(|p| crate::host::door::check_path(p).is_ok());
    if !ok {
        bail!(
            "refusing to write {:?}: not an absolute, normalized path (it would leave the output directory)",
            crate::model::path::from_bytes(f.path.as_bytes())
        );
    }
    Ok(dir.join(rel.trim_start_matches('/')))
}

/// Write one new file: created exclusively (`O_EXCL`), never through a
/// symlink (`O_NOFOLLOW`), mode 0644.
fn create_new(p: &Path, text: &str) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(p)
        .with_context(|| format!("cannot create {}", p.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", p.display()))
}

fn write_tree(dir: &Path, out: &Output, diff: &str) -> Result<()> {
    for f in &out.files {
        let p = inside(dir, f)?;
        if let Some(parent) = p.parent() {
            // Below a fresh private directory: no component can be a link
            // someone planted, and the path has no `..`.
            fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        create_new(&p, &f.text)?;
    }
    let mut notes: String = out.notes.iter().map(|n| format!("{n}\n")).collect();
    for f in &out.files {
        notes.push_str(&format!("{}: read by {}\n", out_path(f), f.reader));
    }
    for (name, text) in [("changes.diff", diff), ("notes.txt", notes.as_str())] {
        create_new(&dir.join(name), text)?;
    }
    Ok(())
}

/// Build the tree beside `dir` and rename it into place.
fn install(dir: &Path, out: &Output, diff: &str) -> Result<()> {
    if dir.exists() && fs::read_dir(dir).map_or(true, |mut d| d.next().is_some()) {
        bail!(
            "{} exists and is not empty: choose a new directory",
            dir.display()
        );
    }
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".cgmig-convert-")
        .tempdir_in(parent)
        .with_context(|| format!("cannot create a directory in {}", parent.display()))?;
    write_tree(tmp.path(), out, diff)?;
    if dir.exists() {
        fs::remove_dir(dir).with_context(|| format!("cannot replace {}", dir.display()))?;
    }
    let tmp = tmp.keep();
    fs::rename(&tmp, dir).with_context(|| format!("cannot rename {} to {}", tmp.display(), dir.display()))?;
    Ok(())
}

/// Run `cgmig convert`.
pub fn run(args: ConvertArgs) -> Result<i32> {
    let (rules, bad) = load_rules(&args.rules);
    let snap = load_input(&args.input)?;
    if !snap.readiness.scanned {
        bail!("this snapshot has no readiness data (taken by an older cgmig): scan the host again");
    }
    let plan = crate::plan::plan(&snap, &rules);
    let stages: Vec<(usize, String)> = plan
        .stages
        .iter()
        .map(|s| (s.number, s.cmdline.clone()))
        .collect();
    let out = convert(&snap.readiness, &rules, &stages);
    for n in &out.notes {
        say!("cgmig: note: {n}");
    }
    if out.files.is_empty() {
        // Silence would read as "it worked, look in the output": say so,
        // and write no directory.
        super::emit(
            None,
            "nothing to convert: no unit, LXC, cgconfig or boot configuration of this host speaks cgroup v1\n",
        )?;
        return Ok(if bad { 2 } else { 0 });
    }
    let d = diff(&out);
    match &args.output {
        Some(dir) => {
            install(dir, &out, &d)?;
            super::emit(
                None,
                &format!(
                    "{} files written under {} (review: {}/changes.diff)\n",
                    out.files.len(),
                    dir.display(),
                    dir.display()
                ),
            )?;
        }
        None => super::emit(None, &d)?,
    }
    Ok(if bad { 2 } else { 0 })
}
