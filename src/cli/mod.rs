//! Command-line definitions and dispatch, nothing else.
//!
//! Exit codes (documented in `docs/cli.md`):
//! * `0`: success (and, for `audit` and `plan`, no finding at or above `--fail-on`);
//! * `1`: `audit`, `plan`: a finding at or above `--fail-on` that no waiver
//!   accepts; `rules check`: errors found;
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
        // Escaped (report::escape): a note quotes inputs, and stderr is a
        // terminal as often as stdout.
        let text = format!($($arg)*);
        let _ = writeln!(std::io::stderr(), "{}", $crate::report::escape::text(&text));
    }};
}

mod apply;
mod completions;
mod convert;
mod explain;
mod fleet;
mod formats;
mod output;
mod term;
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
    /// Colour human output by severity: auto (a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, global = true, value_enum, default_value = "auto", value_name = "WHEN")]
    color: term::ColorChoice,
    /// Never send long reports through the pager ($CGMIG_PAGER, $PAGER, less).
    #[arg(long, global = true)]
    no_pager: bool,
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

/// Waivers: findings someone accepts, by id and optionally by cgroup path.
#[derive(Debug, Args, Clone, Default)]
pub struct WaiveArgs {
    /// Accept the findings of RULE (on cgroups whose path matches the glob): they stay in the
    /// report, marked waived, and leave the verdict and `--fail-on`. Repeatable.
    #[arg(long = "waive", value_name = "RULE[@PATH-GLOB]")]
    waive: Vec<String>,
    /// A YAML list of waivers (`rule`, `path`, `who`, `why`), checked like rules files.
    #[arg(long = "waivers", value_name = "FILE")]
    waivers: Vec<PathBuf>,
}

/// The finding ids a plan carries (a waiver may name one made by rules the
/// plan was made with, which this command has not loaded).
pub fn plan_ids(plan: &crate::plan::Plan) -> Vec<String> {
    plan.findings.iter().map(|f| f.rule.to_string()).collect()
}

/// The waivers of a command, every id checked against the finding catalog;
/// any problem (a bad file, an unknown id) stops the command, naming it.
pub fn load_waivers(args: &WaiveArgs, rules: &RuleSet, known: &[String]) -> Result<crate::rules::Waivers> {
    let mut w = crate::rules::Waivers::none();
    let mut problems: Vec<String> = Vec::new();
    for a in &args.waive {
        match crate::rules::Waiver::from_arg(a) {
            Ok(x) => w.push(x),
            Err(e) => problems.push(e.to_string()),
        }
    }
    for f in &args.waivers {
        problems.extend(w.load_file(f).iter().map(ToString::to_string));
    }
    for x in w.iter() {
        if !crate::assess::catalog::knows(&x.rule, rules) && !known.contains(&x.rule) {
            problems.push(format!(
                "waiver {}: no finding has the id {:?} (`cgmig rules list` lists them)",
                x.pattern(),
                x.rule
            ));
        }
    }
    if !problems.is_empty() {
        for p in &problems {
            say!("cgmig: waivers error: {p}");
        }
        bail!("{} waiver problems; nothing was done", problems.len());
    }
    Ok(w)
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
        #[arg(short, long, value_name = "FILE", value_parser = output_file)]
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
        /// Exit 1 when a finding of this severity or worse exists (waived ones aside).
        #[arg(long, value_enum, default_value = "blocker")]
        fail_on: formats::FailOn,
        /// Show findings of this severity or worse in the table and markdown (json, yaml and
        /// prometheus keep every finding).
        #[arg(long, value_enum, default_value = "info", value_name = "SEVERITY")]
        min_severity: formats::MinSeverity,
        #[command(flatten)]
        waive: WaiveArgs,
        /// Write to FILE instead of standard output (atomically).
        #[arg(short, long, value_name = "FILE", value_parser = output_file)]
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
        #[arg(short, long, value_name = "FILE", value_parser = output_file)]
        output: Option<PathBuf>,
        /// Show findings of this severity or worse in the table and markdown (json and yaml keep
        /// every finding).
        #[arg(long, value_enum, default_value = "warning", value_name = "SEVERITY")]
        min_severity: formats::MinSeverity,
        /// Only this stage of the staged rollout (see the plan's stages).
        #[arg(long, value_name = "N")]
        stage: Option<usize>,
        /// Only the subtree at this v2 path (staged over the controllers its settings use).
        #[arg(long, value_name = "PATH")]
        only: Option<String>,
        /// How the boots are chosen: `auto` (by risk), `one` (a single boot), or boots by hand,
        /// `/` between boots and `,` between controllers (`hugetlb/pids,memory/cpu,cpuacct`);
        /// controllers left out move in a last boot.
        #[arg(long, value_name = "auto|one|SPEC", default_value = "auto", value_parser = parse_stages)]
        stages: crate::plan::StagePolicy,
        /// Exit 1 when a finding of this severity or worse exists (waived ones aside), as `audit`.
        #[arg(long, value_enum, default_value = "blocker")]
        fail_on: formats::FailOn,
        #[command(flatten)]
        waive: WaiveArgs,
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
    term::set_ui(term::Ui {
        color: cli.color,
        no_pager: cli.no_pager,
    });
    match run(cli) {
        Ok(code) => code,
        // The reader of our standard output left (`| head`): it has what
        // it wanted; no message, and the exit `head` expects.
        Err(e) if term::is_closed_stdout(&e) => 0,
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

/// Read a user-named document (snapshot, plan) through the one door
/// (`host::door::read_text`): a regular file, opened non-blocking, at most
/// `MAX_DOCUMENT_BYTES`, valid UTF-8.
pub fn read_document(path: &Path) -> Result<String> {
    Ok(crate::host::door::read_text(
        path,
        crate::host::MAX_DOCUMENT_BYTES,
    )?)
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
    report::write_output(output, text).with_context(|| write_context(output))
}

/// What a failed write says: the file, or standard output
/// ([`term::STDOUT_CONTEXT`], which a closed pipe is recognised by).
fn write_context(output: Option<&Path>) -> String {
    match output {
        Some(p) if p != Path::new("-") => format!("cannot write {}", p.display()),
        _ => term::STDOUT_CONTEXT.to_string(),
    }
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
            min_severity,
            waive,
            output,
        } => audit(
            &input,
            &rules,
            format,
            (fail_on, min_severity),
            &waive,
            output.as_deref(),
        ),
        Command::Plan {
            input,
            rules,
            format,
            output,
            min_severity,
            stage,
            only,
            stages,
            fail_on,
            waive,
        } => plan(
            &input,
            &rules,
            format,
            &Narrow {
                stages,
                stage,
                only,
                min: min_severity.into(),
            },
            (fail_on, &waive),
            output,
        ),
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
    let style = term::style(true);
    term::emit_human(None, &report::render_tree(&snap, &rules), &style)?;
    Ok(if bad { 2 } else { 0 })
}

/// `-o FILE`: a bare format name (`-o json`) is almost always a `--format`
/// meant, and would write a file called `json`: refused with the fix.
fn output_file(s: &str) -> Result<PathBuf, String> {
    const FORMATS: &[&str] = &[
        "json",
        "yaml",
        "yml",
        "table",
        "markdown",
        "md",
        "prometheus",
        "html",
        "dot",
        "text",
    ];
    if FORMATS.contains(&s) {
        return Err(format!(
            "{s:?} is a format name, not a file: use --format {s} (and -o FILE to write a file; -o ./{s} for a file of that name)"
        ));
    }
    Ok(PathBuf::from(s))
}

/// `cgmig audit`: the host's assessment as a report (with the owners
/// section in a table); exit 1 on a finding at or above `--fail-on` that no
/// waiver accepts, 2 on bad rules.
fn audit(
    input: &InputArgs,
    rules: &RulesArgs,
    format: formats::AuditFormat,
    (fail_on, min): (formats::FailOn, formats::MinSeverity),
    waive: &WaiveArgs,
    output: Option<&Path>,
) -> Result<i32> {
    let (rules, bad) = load_rules(rules);
    let waivers = load_waivers(waive, &rules, &[])?;
    let snap = load_input(input)?;
    let report = crate::assess::assess(&snap, &rules, &waivers).report;
    let style = term::style(output.is_none());
    let mut text = crate::audit::render_with(&report, format.into(), &style, min.into())
        .context("cannot render the audit report")?;
    match format {
        formats::AuditFormat::Table => {
            text.push_str(&crate::owners::audit_section(&snap));
            term::emit_human(output, &text, &style)?;
        }
        formats::AuditFormat::Markdown => term::emit_human(output, &text, &report::Style::UNBOUNDED)?,
        _ => emit(output, &text)?,
    }
    if bad {
        return Ok(2);
    }
    Ok(if report.fails(fail_on.into()) { 1 } else { 0 })
}

/// `--stages`: syntax here (clap prints the error with the flag); whether
/// the names fit the host is the planner's check.
fn parse_stages(s: &str) -> Result<crate::plan::StagePolicy, crate::plan::StageError> {
    s.parse()
}

/// What part of the plan `cgmig plan` prints: the boots' policy, a stage,
/// a subtree.
struct Narrow {
    stages: crate::plan::StagePolicy,
    stage: Option<usize>,
    only: Option<String>,
    /// `--min-severity`: the findings the human formats list.
    min: crate::rules::Severity,
}

/// `cgmig plan`: the host's assessment as a plan (it carries the verdict),
/// with its boots chosen by `--stages`, narrowed to a subtree or stage; a
/// plan that breaks a v2 rule is refused, else written. Exit 1 on a finding
/// at or above `--fail-on` that no waiver accepts (as `audit`), 2 on bad rules.
fn plan(
    input: &InputArgs,
    rules: &RulesArgs,
    format: formats::PlanFormat,
    narrow: &Narrow,
    (fail_on, waive): (formats::FailOn, &WaiveArgs),
    output: Option<PathBuf>,
) -> Result<i32> {
    let (rules, bad) = load_rules(rules);
    let waivers = load_waivers(waive, &rules, &[])?;
    let snap = load_input(input)?;
    // A subtree is staged over what it uses: the whole plan keeps the
    // automatic boots, and --stages applies to the subtree's.
    let whole = match narrow.only {
        Some(_) => &crate::plan::StagePolicy::Auto,
        None => &narrow.stages,
    };
    let mut plan = crate::assess::plan(&snap, &rules, &waivers, whole)?;
    if input.root.is_none() && input.snapshot.is_none() {
        crate::plan::keys::record_live_identity(&mut plan);
    }
    let plan = narrow_plan(plan, narrow, &rules.policy().leaf_name)?;
    refuse_invalid_plan(&plan)?;
    let fails = crate::rules::FailOn::from(fail_on).fails(&plan.findings);
    write_plan(plan, format, output, narrow.min)?;
    Ok(if bad { 2 } else { i32::from(fails) })
}

/// `--only PATH` (re-staged) then `--stage N` of it: the part of the plan
/// asked for, or an error naming what does not exist.
fn narrow_plan(mut plan: crate::plan::Plan, narrow: &Narrow, leaf: &str) -> Result<crate::plan::Plan> {
    if let Some(path) = &narrow.only {
        plan = plan
            .only_staged(path, leaf, &narrow.stages)
            .with_context(|| format!("{path} is not a node of the plan"))??;
    }
    if let Some(n) = narrow.stage {
        let count = plan.stages.len();
        plan = plan
            .for_stage(n, leaf)
            .with_context(|| format!("there is no stage {n} (this plan has {count})"))?;
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

/// Write the plan in the format asked for: the human formats (ending with
/// the other owners' section) fitted to the terminal and paged; json and
/// yaml streamed into the output: the JSON of a big host is over 100 MB, and
/// rendering it into a string first doubled the memory of the command.
fn write_plan(
    plan: crate::plan::Plan,
    format: formats::PlanFormat,
    output: Option<PathBuf>,
    min: crate::rules::Severity,
) -> Result<()> {
    let out = output.as_deref();
    let style = match format {
        formats::PlanFormat::Table => term::style(out.is_none()),
        _ => report::Style::UNBOUNDED,
    };
    if matches!(format, formats::PlanFormat::Table | formats::PlanFormat::Markdown) {
        let mut text = crate::plan::render_with(&plan, format.into(), &style, min)?;
        text.push_str(&crate::plan::owners_section(&plan));
        return term::emit_human(out, &text, &style);
    }
    let written = report::write_output_with(out, &mut |w| {
        crate::plan::render_to(&plan, format.into(), w).map_err(std::io::Error::other)
    });
    written.with_context(|| write_context(out))
}

/// `cgmig explain`: a v1 file or a rule id explained, or an error that
/// points at `rules list`.
fn explain(target: &str, rules: &RulesArgs) -> Result<i32> {
    let (rules, bad) = load_rules(rules);
    let style = term::style(true);
    match explain::explain(target, &rules, &style) {
        Some(text) => {
            term::emit_human(None, &text, &style)?;
            Ok(if bad { 2 } else { 0 })
        }
        None => bail!("no rule matches {target:?}; `cgmig rules list` shows every rule"),
    }
}

/// `cgmig rules list`: every rule in force.
fn rules_list(rules: &RulesArgs) -> Result<i32> {
    let (rules, bad) = load_rules(rules);
    let style = term::style(true);
    term::emit_human(None, &explain::list(&rules, &style), &style)?;
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
