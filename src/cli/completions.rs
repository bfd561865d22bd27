//! Shell completions and man pages, generated from the same clap definitions
//! as the parser, so a subcommand or flag added anywhere shows up in both
//! without further work (tests walk the command tree to prove it).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::Cli;

/// Arguments of `cgmig completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish (also elvish, powershell).
    #[arg(value_enum)]
    shell: Shell,
}

/// Arguments of the hidden `cgmig man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Directory to write `cgmig.1` and one `cgmig-SUBCOMMAND.1` per subcommand into.
    #[arg(short, long, value_name = "DIR")]
    output: PathBuf,
}

/// The completion script for a shell.
pub fn completions(shell: Shell) -> String {
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "cgmig", &mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// Print the completion script.
pub fn run_completions(args: CompletionsArgs) -> Result<i32> {
    crate::report::write_output(None, &completions(args.shell))?;
    Ok(0)
}

/// Every man page: (file name, roff text), for cgmig and each visible
/// subcommand at any depth (`cgmig-rules-list.1`).
pub fn man_pages() -> Result<Vec<(String, String)>> {
    // The plain version: the pages are the same for every target and commit
    // of a release (one set goes into the amd64 and arm64 packages).
    let mut cmd = Cli::command().version(env!("CARGO_PKG_VERSION"));
    cmd.build();
    let mut out = Vec::new();
    collect(&cmd, "cgmig", &mut out)?;
    Ok(out)
}

fn collect(cmd: &clap::Command, name: &str, out: &mut Vec<(String, String)>) -> Result<()> {
    // clap takes `&'static str` names without its `string` feature; these few
    // strings live until the one-shot command exits anyway.
    let static_name: &'static str = Box::leak(name.to_string().into_boxed_str());
    let page = cmd.clone().name(static_name).bin_name(name.replace('-', " "));
    let mut buf = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut buf)
        .with_context(|| format!("cannot render the man page of {name}"))?;
    out.push((format!("{name}.1"), String::from_utf8_lossy(&buf).into_owned()));
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        collect(sub, &format!("{name}-{}", sub.get_name()), out)?;
    }
    Ok(())
}

/// Write every man page into a directory.
pub fn write_man(dir: &Path) -> Result<usize> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let pages = man_pages()?;
    for (file, text) in &pages {
        let path = dir.join(file);
        crate::report::write_output(Some(&path), text)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(pages.len())
}

/// Run `cgmig man -o DIR`.
pub fn run_man(args: ManArgs) -> Result<i32> {
    let n = write_man(&args.output)?;
    say!("cgmig: wrote {n} man pages to {}", args.output.display());
    Ok(0)
}
