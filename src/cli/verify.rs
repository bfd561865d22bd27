//! `cgmig verify`: read a plan and the host (live, `--root` or `--snapshot`),
//! compare, print, and exit like `audit` (1 when a check reaches `--fail-on`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;

use crate::plan::Plan;

/// Arguments of `cgmig verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The plan (json or yaml) the host was migrated with.
    #[arg(long, value_name = "PLAN")]
    plan: PathBuf,
    #[command(flatten)]
    input: super::InputArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: super::formats::VerifyFormat,
    /// Exit 1 when a check of this severity or worse exists (unannounced differences are errors,
    /// announced ones warnings).
    #[arg(long, value_enum, default_value = "error")]
    fail_on: super::formats::FailOn,
    /// Show differences of this severity or worse in the table (json and prometheus keep all).
    #[arg(long, value_enum, default_value = "info", value_name = "SEVERITY")]
    min_severity: super::formats::MinSeverity,
    /// Write to FILE instead of standard output (atomically).
    #[arg(short, long, value_name = "FILE", value_parser = super::output_file)]
    output: Option<PathBuf>,
    #[command(flatten)]
    waive: super::WaiveArgs,
}

/// Read a plan file and check it as `apply` does (schema, v2 rules, what a
/// plan read from a file must hold): `verify` on an invalid plan is exit 2,
/// not a comparison with a tree no plan could build.
pub fn read_plan(path: &Path) -> Result<Plan> {
    Ok(super::apply::read_plan(path)?)
}

/// The exit code of `verify` on a host that has not switched yet.
pub const NOT_SWITCHED: i32 = 3;

/// Run `cgmig verify`; returns the exit code.
pub fn run(args: VerifyArgs) -> Result<i32> {
    let mut plan = read_plan(&args.plan)?;
    let (rules, _) = crate::rules::RuleSet::embedded();
    let waivers = super::load_waivers(&args.waive, &rules, &super::plan_ids(&plan))?;
    crate::assess::judge_plan(&mut plan, &waivers);
    let live = super::load_input(&args.input)?;
    if let Some(why) = not_switched(&plan, &live) {
        say!("cgmig: verify: not switched yet: {why}");
        say!(
            "cgmig: verify: boot with the plan's stage line (`cgmig plan` lists the stages), apply, then verify"
        );
        return Ok(NOT_SWITCHED);
    }
    let r = crate::verify::verify(&plan, &live);
    let to_stdout = args.output.is_none();
    let style = super::term::style(to_stdout);
    let text = crate::verify::render_with(&r, args.format.into(), &style, args.min_severity.into())
        .context("cannot render the verify report")?;
    match args.format {
        super::formats::VerifyFormat::Table => {
            super::term::emit_human(args.output.as_deref(), &text, &style)?;
        }
        _ => super::emit(args.output.as_deref(), &text)?,
    }
    Ok(if r.fails(args.fail_on.into()) { 1 } else { 0 })
}

/// Why the host is still where the plan starts, if it is: every v1
/// controller the plan (or its stage) moves is still bound to a v1
/// hierarchy. Comparing such a host with the plan would report every
/// prediction as a difference.
fn not_switched(plan: &Plan, live: &crate::model::Snapshot) -> Option<String> {
    let moves: Vec<&String> = match plan
        .stage
        .and_then(|n| plan.stages.iter().find(|s| s.number == n))
    {
        Some(s) => s.controllers.iter().collect(),
        None => plan.stages.iter().flat_map(|s| &s.adds).collect(),
    };
    if moves.is_empty() {
        return None;
    }
    let on_v1: std::collections::BTreeSet<String> = live
        .hierarchies()
        .into_iter()
        .filter(|(_, h)| h.version == crate::model::Version::V1)
        .flat_map(|(_, h)| h.controllers.iter().map(ToString::to_string))
        .collect();
    moves.iter().all(|c| on_v1.contains(c.as_str())).then(|| {
        let mut names: Vec<&str> = moves.iter().map(|c| c.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        format!(
            "{} {} still on cgroup v1 on this host",
            names.join(", "),
            if names.len() == 1 { "is" } else { "are" }
        )
    })
}
