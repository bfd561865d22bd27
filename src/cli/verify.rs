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
    /// Write to FILE instead of standard output (atomically).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// Read a plan file and check it as `apply` does (schema, v2 rules, what a
/// plan read from a file must hold): `verify` on an invalid plan is exit 2,
/// not a comparison with a tree no plan could build.
pub fn read_plan(path: &Path) -> Result<Plan> {
    Ok(super::apply::read_plan(path)?)
}

/// Run `cgmig verify`; returns the exit code.
pub fn run(args: VerifyArgs) -> Result<i32> {
    let plan = read_plan(&args.plan)?;
    let live = super::load_input(&args.input)?;
    let r = crate::verify::verify(&plan, &live);
    let text = crate::verify::render(&r, args.format.into()).context("cannot render the verify report")?;
    super::emit(args.output.as_deref(), &text)?;
    Ok(if r.fails(args.fail_on.into()) { 1 } else { 0 })
}
