//! `cgmig fleet`: arguments and the run; the work is in [`crate::fleet`].

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use super::formats::FleetFormat;
use super::{RulesArgs, WaiveArgs, emit, load_rules, load_waivers};
use crate::fleet::FleetOptions;

/// Arguments of `cgmig fleet`.
#[derive(Debug, Args)]
pub struct FleetArgs {
    /// Snapshot, audit or plan files, or directories of them (`*.json`, `*.yaml`; walked recursively).
    #[arg(value_name = "DIR|FILE", required = true)]
    inputs: Vec<PathBuf>,
    #[command(flatten)]
    rules: RulesArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: FleetFormat,
    /// Write to FILE instead of standard output (atomically).
    #[arg(short, long, value_name = "FILE", value_parser = super::output_file)]
    output: Option<PathBuf>,
    /// Write each layout family's representative plan to DIR/family-ID.json.
    #[arg(long, value_name = "DIR")]
    plans: Option<PathBuf>,
    #[command(flatten)]
    waive: WaiveArgs,
}

/// Run; exit 2 when an input could not be read (the report is still written).
pub fn run(args: FleetArgs) -> Result<i32> {
    let (rules, bad) = load_rules(&args.rules);
    let waivers = load_waivers(&args.waive, &rules, &[])?;
    let inputs = crate::fleet::collect_inputs(&args.inputs)?;
    if let Some(dir) = &args.plans {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let opts = FleetOptions {
        plans_dir: args.plans.clone(),
        waivers,
    };
    let report = crate::fleet::run(&inputs, &rules, &opts)?;
    let style = match args.format {
        FleetFormat::Table => super::term::style(args.output.is_none()),
        _ => crate::report::Style::UNBOUNDED,
    };
    let text = crate::fleet::render_with(&report, args.format.into(), &style)
        .context("cannot render the fleet report")?;
    match args.format {
        FleetFormat::Table | FleetFormat::Markdown => {
            super::term::emit_human(args.output.as_deref(), &text, &style)?;
        }
        _ => emit(args.output.as_deref(), &text)?,
    }
    for u in &report.unreadable {
        say!("cgmig: fleet: skipped {}: {}", u.path.display(), u.error);
    }
    for p in &report.anonymous {
        say!(
            "cgmig: fleet: warning: {} names no host (no hostname, no machine id): counted as a host of its own",
            p.display()
        );
    }
    for c in &report.conflicts {
        say!(
            "cgmig: fleet: warning: the inputs of host {} disagree ({}): counted once, at its worst verdict",
            c.host,
            c.differs.join(", ")
        );
    }
    Ok(if bad || !report.unreadable.is_empty() {
        2
    } else {
        0
    })
}
