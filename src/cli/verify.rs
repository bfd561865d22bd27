//! `cgmig verify`: read a plan and the host (live, `--root` or `--snapshot`),
//! compare, print, and exit like `audit` (1 when a check reaches `--fail-on`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::plan::{PLAN_SCHEMA, Plan};
use crate::report;

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
    /// Write to FILE instead of standard output (atomically).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    waive: super::WaiveArgs,
}

/// Read a plan file and check its schema.
pub fn read_plan(path: &Path) -> Result<Plan> {
    // Through `read_document`: a FIFO or a device named by --plan is refused
    // instead of blocking the command.
    let text = super::read_document(path)?;
    let v: serde_json::Value =
        report::from_data(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    match v.get("schema").and_then(|s| s.as_str()) {
        Some(PLAN_SCHEMA) => {}
        Some(other) => bail!(
            "{}: plan schema {other:?} is not supported (this cgmig reads {PLAN_SCHEMA})",
            path.display()
        ),
        None => bail!("{}: not a cgmig plan (no schema field)", path.display()),
    }
    serde_json::from_value(v).with_context(|| format!("{}: invalid plan", path.display()))
}

/// The finding ids a plan carries (a waiver may name one made by rules the
/// plan was made with, which this command has not loaded).
pub fn plan_ids(plan: &Plan) -> Vec<String> {
    plan.findings.iter().map(|f| f.rule.to_string()).collect()
}

/// Run `cgmig verify`; returns the exit code.
pub fn run(args: VerifyArgs) -> Result<i32> {
    let mut plan = read_plan(&args.plan)?;
    let (rules, _) = crate::rules::RuleSet::embedded();
    let waivers = super::load_waivers(&args.waive, &rules, &plan_ids(&plan))?;
    crate::assess::judge_plan(&mut plan, &waivers);
    let live = super::load_input(&args.input)?;
    let r = crate::verify::verify(&plan, &live);
    let text = crate::verify::render(&r, args.format.into()).context("cannot render the verify report")?;
    super::emit(args.output.as_deref(), &text)?;
    Ok(if r.fails(args.fail_on.into()) { 1 } else { 0 })
}
