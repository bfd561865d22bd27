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

/// The command tree users see: every subcommand but the hidden ones
/// (`man`, for packaging). clap_complete would offer hidden subcommands,
/// and a clap command cannot drop one, so the root is rebuilt from the
/// parser's arguments and its visible subcommands.
fn visible_command() -> clap::Command {
    let root = Cli::command();
    let visible: Vec<clap::Command> = root
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect();
    clap::Command::new("cgmig")
        .version(env!("CARGO_PKG_VERSION"))
        .about(root.get_about().cloned().unwrap_or_default())
        .args(root.get_arguments().cloned())
        .subcommands(visible)
}

/// The completion script for a shell.
pub fn completions(shell: Shell) -> String {
    let mut cmd = visible_command();
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
    render_page(&page, name, &mut buf).with_context(|| format!("cannot render the man page of {name}"))?;
    out.push((format!("{name}.1"), String::from_utf8_lossy(&buf).into_owned()));
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        collect(sub, &format!("{name}-{}", sub.get_name()), out)?;
    }
    Ok(())
}

/// One man page: clap_mangen's sections, then EXIT STATUS and ENVIRONMENT
/// (which clap knows nothing of), then the version.
fn render_page(cmd: &clap::Command, name: &str, w: &mut Vec<u8>) -> std::io::Result<()> {
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(w)?;
    man.render_name_section(w)?;
    man.render_synopsis_section(w)?;
    man.render_description_section(w)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(w)?;
    }
    if cmd
        .get_subcommands()
        .any(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        man.render_subcommands_section(w)?;
    }
    if cmd.get_after_long_help().is_some() || cmd.get_after_help().is_some() {
        man.render_extra_section(w)?;
    }
    w.extend_from_slice(exit_status(name).as_bytes());
    w.extend_from_slice(ENVIRONMENT.as_bytes());
    if cmd.get_version().is_some() {
        man.render_version_section(w)?;
    }
    Ok(())
}

/// A roff item: a tag and its paragraph.
fn item(tag: &str, text: &str) -> String {
    format!(".TP\n\\fB{tag}\\fR\n{text}\n")
}

/// The EXIT STATUS section of a page (docs/cli.md, "Exit codes").
fn exit_status(name: &str) -> String {
    let sub = name.strip_prefix("cgmig-").unwrap_or("");
    let one = match sub {
        "audit" => "a finding at or above \\-\\-fail\\-on (default blocker).",
        "verify" => "a check at or above \\-\\-fail\\-on (default error).",
        "rules-check" => "a rules file is invalid.",
        "apply" | "rollback" => "at least one step failed (each listed with its reason, and in the journal).",
        "" => {
            "audit, verify: a finding or check at or above \\-\\-fail\\-on; rules check: invalid rules; apply, rollback: a step failed."
        }
        _ => "not used.",
    };
    let mut s = String::from(".SH \"EXIT STATUS\"\n");
    s.push_str(&item(
        "0",
        "Success. A closed standard output (cgmig ... | head) also exits 0, quietly.",
    ));
    s.push_str(&item("1", one));
    s.push_str(&item(
        "2",
        "The command could not run: unreadable or invalid input, bad arguments, invalid \\-\\-rules, a write that failed.",
    ));
    if matches!(sub, "verify" | "") {
        s.push_str(&item(
            "3",
            "verify: the host has not switched yet (every controller the plan moves is still on cgroup v1).",
        ));
    }
    s
}

/// The ENVIRONMENT section, the same on every page.
const ENVIRONMENT: &str = r".SH ENVIRONMENT
.TP
\fBCOLUMNS\fR
Width of human output (tables are laid out to it); else the terminal's, else 100.
.TP
\fBNO_COLOR\fR
When set and not empty, no colour with \-\-color auto.
.TP
\fBCGMIG_PAGER\fR, \fBPAGER\fR
Pager for long reports on a terminal (default less; empty or cat: none). \-\-no\-pager disables it.
.TP
\fBLESS\fR
Options for less; cgmig sets FRSXMK when it is unset.
.TP
\fBCGMIG_LOCK\fR
apply, rollback: the lock file instead of the default.
";

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
