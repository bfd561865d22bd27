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
    format!("{top}{}", f.path)
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
                .header(&from, &format!("b/{}", out_path(f)))
        );
    }
    s
}

fn write_tree(dir: &Path, out: &Output, diff: &str) -> Result<()> {
    for f in &out.files {
        let p = dir.join(out_path(f));
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        fs::write(&p, &f.text).with_context(|| format!("cannot write {}", p.display()))?;
    }
    let notes: String = out.notes.iter().map(|n| format!("{n}\n")).collect();
    for (name, text) in [("changes.diff", diff), ("notes.txt", notes.as_str())] {
        let p = dir.join(name);
        fs::write(&p, text).with_context(|| format!("cannot write {}", p.display()))?;
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
