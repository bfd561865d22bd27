//! Command-line definitions and dispatch, nothing else.
//!
//! Exit codes (documented in `docs/cli.md`):
//! * `0`: success (and, for `audit`, no finding at or above `--fail-on`);
//! * `1`: `audit`: a finding at or above `--fail-on`; `rules check`: errors found;
//! * `2`: the command could not run (bad input, unreadable file, bad rules).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};

use crate::host::Root;
use crate::model::Snapshot;
use crate::report;
use crate::rules::{RuleError, RuleSet};

/// A line on standard error that can never panic. `eprintln!` panics when
/// stderr is closed or full (`cgmig fleet … 2>&1 >/dev/null | head -2`
/// exited 101); a note that cannot be shown is dropped, and the exit code
/// still says whether the command worked.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod apply;
mod completions;
mod convert;
mod explain;
mod fleet;
mod formats;
mod output;
mod verify;

/// What `cgmig --version` prints after the name: the version, the commit and
/// the target triple (set by `build.rs`), so a binary found on a host says
/// which build it is (`0.1.0 (commit 0123456789ab, target x86_64-unknown-linux-musl)`).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("CGMIG_COMMIT"),
    ", target ",
    env!("CGMIG_TARGET"),
    ")"
);

/// Audit, plan and apply the move of Linux hosts from cgroup v1 to cgroup v2.
#[derive(Debug, Parser)]
#[command(name = "cgmig", version = VERSION, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the host state comes from.
#[derive(Debug, Args, Clone)]
pub struct InputArgs {
    /// Treat DIR as `/` (a captured or generated host tree) instead of the live host.
    #[arg(long, value_name = "DIR", conflicts_with = "snapshot")]
    root: Option<PathBuf>,
    /// Read a snapshot written by `cgmig scan` instead of scanning.
    #[arg(long, value_name = "FILE")]
    snapshot: Option<PathBuf>,
}

/// Extra rules.
#[derive(Debug, Args, Clone)]
pub struct RulesArgs {
    /// Directory of extra `*.yaml` rules; they add to and override the built-in rules by id.
    #[arg(long = "rules", value_name = "DIR")]
    rules: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a snapshot of the host's cgroup state (hierarchies, cgroups, processes, threads).
    Scan {
        #[command(flatten)]
        input: RootOnly,
        /// Write to FILE instead of standard output (atomically).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Snapshot format.
        #[arg(long, value_enum, default_value = "json")]
        format: formats::DataFormat,
    },
    /// Show every hierarchy as a tree, with task counts, non-default settings and markers.
    Tree {
        #[command(flatten)]
        input: InputArgs,
        #[command(flatten)]
        rules: RulesArgs,
    },
    /// Report which v1 features are in use, what converts, what is lost, and what blocks v2.
    Audit {
        #[command(flatten)]
        input: InputArgs,
        #[command(flatten)]
        rules: RulesArgs,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: formats::AuditFormat,
        /// Exit 1 when a finding of this severity or worse exists.
        #[arg(long, value_enum, default_value = "blocker")]
        fail_on: formats::FailOn,
        /// Write to FILE instead of standard output (atomically).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Compute the unified v2 tree and every action to get there (the dry run).
    Plan {
        #[command(flatten)]
        input: InputArgs,
        #[command(flatten)]
        rules: RulesArgs,
        /// Output format (json/yaml is what `apply` reads).
        #[arg(long, value_enum, default_value = "table")]
        format: formats::PlanFormat,
        /// Write to FILE instead of standard output (atomically).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Only this stage of the staged rollout (see the plan's stages).
        #[arg(long, value_name = "N")]
        stage: Option<usize>,
        /// Only the subtree at this v2 path.
        #[arg(long, value_name = "PATH")]
        only: Option<String>,
    },
    /// Compare the host after the switch (or a stage) with the plan's predictions, owner by owner.
    Verify(verify::VerifyArgs),
    /// Explain a v1 file or rule id: formula, sample values, v2 target, kernel, source.
    Explain {
        /// A v1 interface file (`cpu.shares`) or a rule id (`host.named-hierarchy`).
        target: String,
        #[command(flatten)]
        rules: RulesArgs,
    },
    /// Write the v2 configuration the host needs (systemd drop-ins, LXC, cgconfig, boot lines).
    Convert(convert::ConvertArgs),
    /// Carry out a plan on this host: journaled, resumable, reversible (see docs/apply.md).
    Apply(apply::ApplyArgs),
    /// Undo what an apply did, from its journal, in reverse.
    Rollback(apply::RollbackArgs),
    /// List the rules in force, or check a directory of rules files.
    Rules {
        #[command(subcommand)]
        action: RulesAction,
    },
    /// One report for many hosts: verdicts, rules, kernels and layout families.
    Fleet(fleet::FleetArgs),
    /// Print a shell completion script (bash, zsh, fish).
    Completions(completions::CompletionsArgs),
    /// Write the man pages of every subcommand into a directory.
    #[command(hide = true)]
    Man(completions::ManArgs),
}

#[derive(Debug, Args, Clone)]
struct RootOnly {
    /// Treat DIR as `/` (a captured or generated host tree) instead of the live host.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum RulesAction {
    /// List every rule in force (built-in plus `--rules`).
    List {
        #[command(flatten)]
        rules: RulesArgs,
    },
    /// Validate the rules files in DIR; exit 1 if any is invalid.
    Check {
        /// Directory of `*.yaml` rules files.
        dir: PathBuf,
    },
}

/// Parse arguments, run, and return the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // Every cause on its own line, each said once (a closed pipe or
            // a full disk included: the output is incomplete, so exit 2).
            {
                use std::io::Write as _;
                let _ = write!(std::io::stderr(), "{}", output::error_text(&e));
            }
            2
        }
    }
}

fn open_root(dir: Option<&Path>) -> Result<Root> {
    match dir {
        None => {
            output::warn_non_root();
            Ok(Root::live())
        }
        Some(d) => Root::new(d).with_context(|| format!("cannot use {} as the root", d.display())),
    }
}

/// Scan (live or `--root`) or load (`--snapshot`).
pub fn load_input(input: &InputArgs) -> Result<Snapshot> {
    if let Some(path) = &input.snapshot {
        return read_snapshot(path);
    }
    let root = open_root(input.root.as_deref())?;
    Ok(crate::scan::scan(&root)?)
}

/// Read a snapshot file (JSON or YAML), check its schema and validate its
/// graph (see `model::validate`): a bad snapshot is exit 2 with every
/// problem on its own line, never a panic or a wrong plan.
pub fn read_snapshot(path: &Path) -> Result<Snapshot> {
    let text = read_document(path)?;
    crate::model::validate::parse_snapshot(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Read a user-named document (snapshot, plan): a regular file, opened
/// non-blocking, at most `MAX_DOCUMENT_BYTES`, valid UTF-8.
pub fn read_document(path: &Path) -> Result<String> {
    use crate::host::contain::{ReadError, read_user_file};
    let bytes = read_user_file(path, crate::host::MAX_DOCUMENT_BYTES).map_err(|e| match e {
        ReadError::Io(e) => anyhow::anyhow!("cannot read {}: {e}", path.display()),
        ReadError::NotRegular(kind) => anyhow::anyhow!(
            "cannot read {}: it is a {kind}, not a regular file",
            path.display()
        ),
        ReadError::TooLarge(n) => anyhow::anyhow!("cannot read {}: larger than {n} bytes", path.display()),
    })?;
    String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{}: not UTF-8 text (byte {})",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })
}

/// Load rules, printing every rule error; the good rules are returned.
fn load_rules(args: &RulesArgs) -> (RuleSet, bool) {
    let (set, errors) = RuleSet::load(&args.rules);
    print_rule_errors(&errors);
    (set, !errors.is_empty())
}

fn print_rule_errors(errors: &[RuleError]) {
    for e in errors {
        say!("cgmig: rules error: {e}");
    }
}

/// Write a command's output (stdout or `-o FILE`), naming the file on error.
fn emit(output: Option<&Path>, text: &str) -> Result<()> {
    report::write_output(output, text).with_context(|| match output {
        None => "cannot write standard output".to_string(),
        Some(p) if p == Path::new("-") => "cannot write standard output".to_string(),
        Some(p) => format!("cannot write {}", p.display()),
    })
}

/// Run one command: each is its own function below, and this is only the
/// table from subcommand to function.
fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Scan {
            input,
            output,
            format,
        } => scan(&input, output.as_deref(), format),
        Command::Tree { input, rules } => tree(&input, &rules),
        Command::Audit {
            input,
            rules,
            format,
            fail_on,
            output,
        } => audit(&input, &rules, format, fail_on, output.as_deref()),
        Command::Plan {
            input,
            rules,
            format,
            output,
            stage,
            only,
        } => plan(&input, &rules, format, output, stage, only.as_deref()),
        Command::Verify(args) => verify::run(args),
        Command::Explain { target, rules } => explain(&target, &rules),
        Command::Fleet(args) => fleet::run(args),
        Command::Completions(args) => completions::run_completions(args),
        Command::Man(args) => completions::run_man(args),
        Command::Convert(args) => convert::run(args),
        Command::Apply(args) => apply::apply(args),
        Command::Rollback(args) => apply::rollback(args),
        Command::Rules { action } => match action {
            RulesAction::List { rules } => rules_list(&rules),
            RulesAction::Check { dir } => rules_check(&dir),
        },
    }
}

/// `cgmig scan`: the snapshot, with every diagnostic of the scan said on
/// stderr (the snapshot carries them too).
fn scan(input: &RootOnly, output: Option<&Path>, format: formats::DataFormat) -> Result<i32> {
    let root = open_root(input.root.as_deref())?;
    let snap = crate::scan::scan(&root)?;
    for d in &snap.diagnostics {
        say!("cgmig: note: {}: {}", d.path, report::escape::line(&d.message));
    }
    let text = report::to_data(&snap, format.into()).context("cannot write the snapshot")?;
    emit(output, &text)?;
    Ok(0)
}

/// `cgmig tree`: every hierarchy as a tree; exit 2 when a rules file was bad.
fn tree(input: &InputArgs, rules: &RulesArgs) -> Result<i32> {
    let (rules, bad) = load_rules(rules);
    let snap = load_input(input)?;
    emit(None, &report::render_tree(&snap, &rules))?;
    Ok(if bad { 2 } else { 0 })
}

/// `cgmig audit`: the report (adjusted for other owners, with their section
/// in a table); exit 1 on a finding at or above `--fail-on`, 2 on bad rules.
fn audit(
    input: &InputArgs,
    rules: &RulesArgs,
    format: formats::AuditFormat,
    fail_on: formats::FailOn,
    output: Option<&Path>,
) -> Result<i32> {
    let (rules, bad) = load_rules(rules);
    let snap = load_input(input)?;
    let mut report = crate::audit::audit(&snap, &rules);
    crate::audit::owners::adjust_report(&mut report, &snap);
    let mut text = crate::audit::render(&report, format.into()).context("cannot render the audit report")?;
    if matches!(format, formats::AuditFormat::Table) {
        text.push_str(&crate::owners::audit_section(&snap));
    }
    emit(output, &text)?;
    if bad {
        return Ok(2);
    }
    Ok(if report.fails(fail_on.into()) { 1 } else { 0 })
}

/// `cgmig plan`: plan, narrow to a stage or subtree, refuse a plan that
/// breaks a v2 rule, then write it.
fn plan(
    input: &InputArgs,
    rules: &RulesArgs,
    format: formats::PlanFormat,
    output: Option<PathBuf>,
    stage: Option<usize>,
    only: Option<&str>,
) -> Result<i32> {
    let (rules, bad) = load_rules(rules);
    let snap = load_input(input)?;
    let mut plan = crate::plan::plan(&snap, &rules);
    if input.root.is_none() && input.snapshot.is_none() {
        crate::plan::keys::record_live_identity(&mut plan);
    }
    let plan = narrow_plan(plan, stage, only, &rules.policy().leaf_name)?;
    refuse_invalid_plan(&plan)?;
    write_plan(plan, format, output)?;
    Ok(if bad { 2 } else { 0 })
}

/// `--stage N` and `--only PATH`: the part of the plan asked for, or an
/// error naming what does not exist.
fn narrow_plan(
    mut plan: crate::plan::Plan,
    stage: Option<usize>,
    only: Option<&str>,
    leaf: &str,
) -> Result<crate::plan::Plan> {
    if let Some(n) = stage {
        let count = plan.stages.len();
        plan = plan
            .for_stage(n, leaf)
            .with_context(|| format!("there is no stage {n} (this plan has {count})"))?;
    }
    if let Some(path) = only {
        plan = plan
            .only(path, leaf)
            .with_context(|| format!("{path} is not a node of the plan"))?;
    }
    Ok(plan)
}

/// A plan that breaks a v2 rule is never written: it must not reach
/// `apply`. Every violation is said, then the command fails.
fn refuse_invalid_plan(plan: &crate::plan::Plan) -> Result<()> {
    let violations = crate::plan::validate(plan);
    if !violations.is_empty() {
        for v in &violations {
            say!("cgmig: plan invalid at {}: {}", v.at, v.message);
        }
        bail!(
            "the plan breaks {} v2 rules and was not written (a cgmig bug: please report it)",
            violations.len()
        );
    }
    Ok(())
}

/// Write the plan in the format asked for (table and markdown end with the
/// other owners' section), streamed into the output: the JSON of a big host
/// is over 100 MB, and rendering it into a string first doubled the memory
/// of the command.
fn write_plan(plan: crate::plan::Plan, format: formats::PlanFormat, output: Option<PathBuf>) -> Result<()> {
    let human = matches!(format, formats::PlanFormat::Table | formats::PlanFormat::Markdown);
    let owners = if human {
        crate::plan::owners_section(&plan)
    } else {
        String::new()
    };
    let written = report::write_output_with(output.as_deref(), &mut |w| {
        crate::plan::render_to(&plan, format.into(), w).map_err(std::io::Error::other)?;
        w.write_all(owners.as_bytes())
    });
    written.with_context(|| match output.as_deref() {
        Some(p) if p != Path::new("-") => format!("cannot write {}", p.display()),
        _ => "cannot write standard output".to_string(),
    })
}

/// `cgmig explain`: a v1 file or a rule id explained, or an error that
/// points at `rules list`.
fn explain(target: &str, rules: &RulesArgs) -> Result<i32> {
    let (rules, bad) = load_rules(rules);
    match explain::explain(target, &rules) {
        Some(text) => {
            emit(None, &text)?;
            Ok(if bad { 2 } else { 0 })
        }
        None => bail!("no rule matches {target:?}; `cgmig rules list` shows every rule"),
    }
}

/// `cgmig rules list`: every rule in force.
fn rules_list(rules: &RulesArgs) -> Result<i32> {
    let (rules, bad) = load_rules(rules);
    emit(None, &explain::list(&rules))?;
    Ok(if bad { 2 } else { 0 })
}

/// `cgmig rules check DIR`: every error of the directory's rules files,
/// then the counts; exit 1 when any file is invalid.
fn rules_check(dir: &Path) -> Result<i32> {
    if !dir.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    let (set, errors) = RuleSet::check_dir(dir);
    print_rule_errors(&errors);
    emit(
        None,
        &format!("{} rules valid, {} errors\n", set.rules().len(), errors.len()),
    )?;
    Ok(if errors.is_empty() { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn root_and_snapshot_conflict() {
        let e = Cli::try_parse_from(["cgmig", "tree", "--root", "a", "--snapshot", "b"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::ArgumentConflict);
    }

    #[test]
    fn fail_on_values() {
        let c = Cli::try_parse_from(["cgmig", "audit", "--fail-on", "warning"]).unwrap();
        assert!(matches!(
            c.command,
            Command::Audit {
                fail_on: formats::FailOn::Warning,
                ..
            }
        ));
        assert!(Cli::try_parse_from(["cgmig", "audit", "--fail-on", "sometimes"]).is_err());
    }
}
