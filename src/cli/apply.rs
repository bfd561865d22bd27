//! `cgmig apply` and `cgmig rollback`: arguments, the checks before anything
//! is touched, and the result report. The work itself is `crate::apply`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use serde::Serialize;

use super::InputArgs;
use crate::apply::exec::{self, Outcome, Runner, Status};
use crate::apply::journal::{self, Journal, Lock, Record, RunOptions, Writer};
use crate::apply::kernel::{self, KernelTarget};
use crate::apply::{ApplyError, Host, Simulator, handover, resolve};
use crate::plan::{PLAN_SCHEMA, Plan};

/// Result format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ResultFormat {
    /// Summary table.
    Table,
    /// Every step as JSON.
    Json,
}

/// `cgmig apply` arguments.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The plan (`cgmig plan --format json -o FILE`).
    plan: PathBuf,
    /// A cgroup2 directory to build the plan's tree under (created when missing;
    /// the plan's controllers are enabled down to it). Default: the host's cgroup2 mount.
    #[arg(long, value_name = "DIR")]
    target: Option<PathBuf>,
    /// Only this stage of the plan's staged rollout.
    #[arg(long, value_name = "N")]
    stage: Option<usize>,
    /// Only the subtree at this v2 path.
    #[arg(long, value_name = "PATH")]
    only: Option<String>,
    /// Hand the plan's controllers over from their v1 hierarchies now, without a reboot.
    #[arg(long)]
    live: bool,
    /// Do not ask for confirmation (required for --live when not on a terminal).
    #[arg(long)]
    yes: bool,
    /// Run against the simulator seeded from the host (or --root/--snapshot); change nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    input: InputArgs,
    /// Journal file (default: PLAN.journal).
    #[arg(long, value_name = "FILE")]
    journal: Option<PathBuf>,
    /// Continue the apply recorded in the journal from its first unfinished step.
    #[arg(long)]
    resume: bool,
    /// Apply even though the plan was made for another host or kernel.
    #[arg(long)]
    force_host: bool,
    /// Apply even though processes moved or appeared since the plan was made.
    #[arg(long)]
    allow_changed: bool,
    /// Result format.
    #[arg(long, value_enum, default_value = "table")]
    format: ResultFormat,
    #[command(flatten)]
    waive: super::WaiveArgs,
}

/// `cgmig rollback` arguments.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The journal an apply wrote.
    journal: PathBuf,
    /// Do not ask for confirmation (required to undo a live handover when not on a terminal).
    #[arg(long)]
    yes: bool,
    /// Result format.
    #[arg(long, value_enum, default_value = "table")]
    format: ResultFormat,
}

/// What `--format json` prints.
#[derive(Debug, Serialize)]
struct Report<'a> {
    command: &'a str,
    journal: Option<String>,
    dry_run: bool,
    steps: &'a [Outcome],
    not_done: Vec<&'a Outcome>,
    counts: std::collections::BTreeMap<&'static str, usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    handover_window_ms: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    preflight: Vec<String>,
}

/// Read and check a plan file: schema, parse, v2 rules.
pub fn read_plan(path: &Path) -> Result<Plan, ApplyError> {
    // A regular file, bounded (a FIFO must not block: issue 10, class 2).
    let text = super::read_document(path).map_err(|e| ApplyError::Refused(format!("{e:#}")))?;
    let v: serde_json::Value = crate::report::from_data(&text)
        .map_err(|e| ApplyError::Refused(format!("{}: not a readable plan: {e}", path.display())))?;
    match v.get("schema").and_then(|s| s.as_str()) {
        Some(PLAN_SCHEMA) => {}
        Some(other) => {
            return Err(ApplyError::Refused(format!(
                "{}: plan schema {other:?} is not supported (this cgmig reads {PLAN_SCHEMA})",
                path.display()
            )));
        }
        None => {
            return Err(ApplyError::Refused(format!(
                "{}: not a cgmig plan (no schema field)",
                path.display()
            )));
        }
    }
    let plan: Plan = serde_json::from_value(v)
        .map_err(|e| ApplyError::Refused(format!("{}: invalid plan: {e}", path.display())))?;
    let bad = crate::plan::validate(&plan);
    if !bad.is_empty() {
        return Err(ApplyError::Invalid {
            path: path.into(),
            reasons: bad.iter().map(|v| format!("{}: {}", v.at, v.message)).collect(),
        });
    }
    owned_elsewhere(path, &plan)?;
    Ok(plan)
}

/// Issue 14: apply never writes into a cgroup another owner (systemd, a
/// runtime) rebuilds. The planner strips such actions; this refuses a plan
/// edited by hand to carry them back, before anything is touched.
fn owned_elsewhere(path: &Path, plan: &Plan) -> Result<(), ApplyError> {
    let refusals: std::collections::BTreeSet<String> = plan
        .actions
        .iter()
        .filter_map(|a| crate::plan::writable_by_cgmig(plan, a.path()).err())
        .map(|r| r.to_string())
        .collect();
    if refusals.is_empty() {
        return Ok(());
    }
    Err(ApplyError::Refused(format!(
        "{}: the plan writes into cgroups cgmig does not own:\n  {}",
        path.display(),
        refusals.into_iter().collect::<Vec<_>>().join("\n  ")
    )))
}

fn scoped(plan: &Plan, stage: Option<usize>, only: Option<&str>) -> Result<Plan, ApplyError> {
    let (rules, _) = crate::rules::RuleSet::load(&[]);
    let leaf = rules.policy().leaf_name.clone();
    let mut p = plan.clone();
    if let Some(n) = stage {
        p = p.for_stage(n, &leaf).ok_or_else(|| {
            ApplyError::Refused(format!(
                "there is no stage {n} (this plan has {})",
                plan.stages.len()
            ))
        })?;
    }
    if let Some(path) = only {
        p = p
            .only(path, &leaf)
            .ok_or_else(|| ApplyError::Refused(format!("{path} is not a node of the plan")))?;
    }
    Ok(p)
}

fn live_text(p: &str) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Refuse a plan made for another host or kernel.
fn check_host(plan: &Plan) -> Vec<String> {
    let mut why = Vec::new();
    let pairs = [
        (
            "machine-id",
            plan.host.machine_id.as_deref(),
            live_text("/etc/machine-id"),
        ),
        (
            "hostname",
            plan.host.hostname.as_deref(),
            live_text("/proc/sys/kernel/hostname"),
        ),
        (
            "kernel",
            plan.host.kernel.as_deref(),
            live_text("/proc/sys/kernel/osrelease"),
        ),
    ];
    for (what, planned, here) in pairs {
        if let (Some(p), Some(h)) = (planned, here)
            && p != h
        {
            why.push(format!("{what}: the plan was made for {p:?}, this host is {h:?}"));
        }
    }
    why
}

/// Whether the plan was made in this boot (its PIDs are still the processes').
fn same_boot(plan: &Plan) -> bool {
    plan.host.boot_id.is_some() && plan.host.boot_id == live_text("/proc/sys/kernel/random/boot_id")
}

/// What changed since the plan (same boot only: after a reboot every PID changed).
fn check_changes(plan: &Plan, live: &[resolve::Live]) -> Vec<String> {
    if !same_boot(plan) {
        return Vec::new();
    }
    let mut why = Vec::new();
    for k in &plan.process_keys {
        if let Some(l) = live
            .iter()
            .find(|l| l.pid == k.pid && l.comm == k.comm && l.cmdline == k.cmdline)
            && l.v1 != k.v1
        {
            why.push(format!(
                "process {} ({}) moved since the plan: {:?} → {:?}",
                k.pid, k.comm, k.v1, l.v1
            ));
        }
    }
    let planned: std::collections::BTreeSet<crate::model::Pid> =
        plan.process_keys.iter().map(|k| k.pid).collect();
    let origins: std::collections::BTreeSet<(String, String)> = plan
        .nodes
        .iter()
        .flat_map(|n| n.origins.iter())
        .filter(|o| o.path != "/")
        .map(|o| (o.label.clone(), o.path.clone()))
        .collect();
    for l in live {
        if !planned.contains(&l.pid)
            && let Some(at) = l.v1.iter().find(|m| origins.contains(*m))
        {
            why.push(format!(
                "process {} ({}) is new in {}:{} (the plan would leave it behind)",
                l.pid, l.comm, at.0, at.1
            ));
        }
    }
    why
}

fn confirm(live: bool, yes: bool, what: &str) -> Result<(), ApplyError> {
    if !live || yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(ApplyError::Refused(format!(
            "{what} changes v1 hierarchies on this running host: pass --yes to confirm"
        )));
    }
    {
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), "cgmig: {what} now? [y/N] ");
    }
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    if matches!(line.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(ApplyError::Refused("not confirmed".into()))
    }
}

/// What confirming an apply or a live one agrees to.
const HANDOVER: &str = "hand the plan's controllers over from v1 to cgroup2";

/// Issue 19: a plan whose assessment has a blocker no waiver accepts is
/// never carried out (nor dry-run): the refusal names each blocker. The
/// plan is judged again with the waivers it carries and those given here;
/// every waived blocker is said, with who and why.
fn refuse_blockers(a: &ApplyArgs, plan: &mut Plan) -> Result<()> {
    let (rules, _) = crate::rules::RuleSet::embedded();
    let waivers = super::load_waivers(&a.waive, &rules, &super::verify::plan_ids(plan))?;
    crate::assess::judge_plan(plan, &waivers);
    for f in plan
        .findings
        .iter()
        .filter(|f| f.severity == crate::rules::Severity::Blocker)
    {
        if let Some(w) = &f.waived {
            say!(
                "cgmig: apply: blocker {} at {} waived by {}: {}",
                f.rule,
                f.subject,
                w.who,
                w.why
            );
        }
    }
    let blockers: Vec<String> = plan
        .blockers()
        .map(|f| format!("{} at {}: {}", f.rule, f.subject, f.why))
        .collect();
    if let Some(v) = plan.verdict {
        say!("cgmig: apply: the plan's verdict: {}", v.label());
    }
    if blockers.is_empty() {
        return Ok(());
    }
    Err(ApplyError::Refused(format!(
        "{}: the plan is blocked by {} finding(s) no waiver accepts:\n  {}\n(accept one with --waive RULE[@PATH-GLOB] or --waivers FILE, after review)",
        a.plan.display(),
        blockers.len(),
        blockers.join("\n  ")
    ))
    .into())
}

/// `cgmig apply`: read and scope the plan, check it fits this host, then
/// either resume the journaled run or prepare a fresh one, and run it with
/// the journal around every step.
pub fn apply(a: ApplyArgs) -> Result<i32> {
    let mut full = read_plan(&a.plan)?;
    refuse_blockers(&a, &mut full)?;
    if a.dry_run {
        return dry_run(&a, &full);
    }
    // Asked first, before anything is scanned, locked or written.
    confirm(a.live, a.yes, HANDOVER)?;
    let _lock = Lock::take()?;
    let journal_path = a
        .journal
        .clone()
        .unwrap_or_else(|| journal::default_path(&a.plan));
    let hash = journal::plan_hash(&full);
    let plan = scoped(&full, a.stage, a.only.as_deref())?;
    if !a.force_host {
        let why = check_host(&plan);
        if !why.is_empty() {
            return Err(ApplyError::WrongHost { reasons: why }.into());
        }
    }
    let prepared = if a.resume {
        resume(&journal_path, &hash)?
    } else {
        prepare(&a, &plan)?
    };
    confirm(prepared.options.live, a.yes, HANDOVER)?;
    let writer = open_journal(&a, &journal_path, hash, &prepared)?;
    run_prepared(&a, &journal_path, writer, prepared)
}

/// An apply ready to run: its steps and options, what the plan names but
/// will not be done, the journal of the run it resumes, and the handover
/// preflight's lines for the report.
struct Prepared {
    steps: Vec<crate::apply::step::Step>,
    options: RunOptions,
    skipped: Vec<Outcome>,
    prior: Option<Journal>,
    preflight: Vec<String>,
}

/// `--resume`: the steps and options come from the journal, which must
/// belong to this very plan (the hash), so a resume never mixes two plans.
fn resume(journal_path: &Path, hash: &str) -> Result<Prepared> {
    let j = Journal::read(journal_path)?;
    let (jh, _, opts) = j.header.clone().expect("read checks the header");
    if jh != hash {
        return Err(ApplyError::OtherPlan {
            path: journal_path.to_path_buf(),
            journal: jh,
            plan: hash.to_string(),
        }
        .into());
    }
    Ok(Prepared {
        steps: j.steps.clone(),
        options: opts,
        skipped: Vec::new(),
        prior: Some(j),
        preflight: Vec::new(),
    })
}

/// A fresh run: find the cgroup2 mount, scan the host again (the plan may
/// be old), refuse when processes moved since the plan, run the handover
/// preflight, and turn the plan into steps for the processes as they are now.
fn prepare(a: &ApplyArgs, plan: &Plan) -> Result<Prepared> {
    let (mount, prefix) = target_mount(a.target.as_deref())?;
    let snap = crate::scan::scan(&crate::host::Root::live()).context("fresh scan of this host")?;
    let live = resolve::live_from_snapshot(&snap);
    let changed = check_changes(plan, &live);
    if !changed.is_empty() && !a.allow_changed {
        return Err(ApplyError::WrongHost { reasons: changed }.into());
    }
    let (specs, preflight) = if a.live {
        live_preflight(plan, &snap, &mount)?
    } else {
        (Vec::new(), Vec::new())
    };
    let host = KernelTarget::new(mount.clone());
    let resolved = resolve::resolve(plan, &live, same_boot(plan));
    let (steps, skipped) = exec::build_steps(plan, &prefix, &resolved, &host, &specs);
    let options = RunOptions {
        stage: a.stage,
        only: a.only.clone(),
        live: a.live,
        mount: mount.display().to_string(),
        prefix,
    };
    Ok(Prepared {
        steps,
        options,
        skipped,
        prior: None,
        preflight,
    })
}

/// The cgroup2 mount and the prefix in it the plan's tree goes under:
/// `--target` (checked to be a writable cgroup2 directory), or the host's
/// cgroup2 mount itself.
fn target_mount(target: Option<&Path>) -> Result<(PathBuf, String), ApplyError> {
    match target {
        Some(dir) => {
            let l = kernel::locate(dir)?;
            Ok((l.mount, l.prefix))
        }
        None => {
            let m = kernel::default_mount()?;
            kernel::locate(&m)?;
            Ok((m, "/".to_string()))
        }
    }
}

/// `--live`: the hierarchies to hand over and the preflight's "ready"
/// lines, or the refusal with every reason before anything is touched.
fn live_preflight(
    plan: &Plan,
    snap: &crate::model::Snapshot,
    mount: &Path,
) -> Result<(Vec<handover::Spec>, Vec<String>), ApplyError> {
    let specs = handover::specs_for(plan);
    let systemd = snap
        .hierarchies()
        .iter()
        .any(|(_, h)| h.name.as_deref() == Some("systemd"));
    let why = handover::preflight(&specs, Some(mount), systemd);
    if !why.is_empty() {
        return Err(ApplyError::Preflight {
            reasons: why,
            hint: handover::staged_boot_hint(plan),
        });
    }
    let ready = specs
        .iter()
        .map(|s| format!("{}: ready to hand over", s.hierarchy))
        .collect();
    Ok((specs, ready))
}

/// The journal writer: the existing journal on resume, else a new one whose
/// header records the plan, the options and every step before the first runs.
fn open_journal(
    a: &ApplyArgs,
    journal_path: &Path,
    hash: String,
    p: &Prepared,
) -> Result<Writer, ApplyError> {
    if a.resume {
        Writer::open(journal_path)
    } else {
        Writer::create(
            journal_path,
            Record::Header {
                schema: journal::JOURNAL_SCHEMA.into(),
                plan_hash: hash,
                plan: a.plan.display().to_string(),
                options: p.options.clone(),
                steps: p.steps.clone(),
            },
        )
    }
}

/// Run the steps on the kernel (skipping what an earlier run finished) and
/// report every outcome, the skipped ones and the handover window.
fn run_prepared(a: &ApplyArgs, journal_path: &Path, writer: Writer, p: Prepared) -> Result<i32> {
    let mut host = KernelTarget::new(PathBuf::from(&p.options.mount));
    let mut runner = Runner::new(&mut host, Some(writer), p.options.live);
    runner.progress = progress(p.steps.len());
    let mut outcomes = runner.run(&p.steps, p.prior.as_ref())?;
    let window = runner.window_ms();
    outcomes.extend(p.skipped);
    report(
        "apply",
        Some(journal_path),
        false,
        &outcomes,
        window,
        p.preflight,
        a.format,
    )
}

fn progress(n: usize) -> Option<indicatif::ProgressBar> {
    (n > 50 && std::io::stderr().is_terminal()).then(|| {
        let p = indicatif::ProgressBar::new(n as u64);
        p.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} steps {elapsed}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        p
    })
}

fn dry_run(a: &ApplyArgs, full: &Plan) -> Result<i32> {
    let plan = scoped(full, a.stage, a.only.as_deref())?;
    let snap = super::load_input(&a.input)?;
    let mut sim = Simulator::from_snapshot(&snap);
    let prefix = match &a.target {
        Some(dir) => kernel::locate(dir).map_or_else(|_| dir.display().to_string(), |l| l.prefix),
        None => "/".into(),
    };
    if prefix == "/" {
        // systemd's and runtimes' cgroups exist before cgmig acts (they are
        // the owners' to build); model them so the replay matches the host.
        if let Err(e) = sim.prebuild(plan.owners.prebuilt(&plan)) {
            say!("cgmig: dry run: other owners' cgroups could not be modelled: {e}");
        }
    }
    let on_live_host = a.input.root.is_none() && a.input.snapshot.is_none();
    let specs = if a.live && on_live_host {
        handover::specs_for(&plan)
    } else {
        Vec::new()
    };
    let mut preflight = Vec::new();
    if a.live {
        if !on_live_host {
            preflight.push("handover preflight needs the live host (not --root/--snapshot)".into());
        }
        let systemd = snap
            .hierarchies()
            .iter()
            .any(|(_, h)| h.name.as_deref() == Some("systemd"));
        let mount = kernel::default_mount().ok();
        let why = handover::preflight(&specs, mount.as_deref(), systemd);
        if why.is_empty() {
            preflight.extend(
                specs
                    .iter()
                    .map(|s| format!("{}: ready to hand over", s.hierarchy)),
            );
        } else {
            preflight.extend(why.into_iter().map(|w| format!("REFUSED: {w}")));
            preflight.push(handover::staged_boot_hint(&plan));
        }
        // The simulated handover's outcome: the controllers come to v2.
        for s in &specs {
            for c in &s.v2 {
                sim.offer_controller(c);
            }
        }
    }
    let offered = crate::apply::Target::read(&sim, "/", "cgroup.controllers").unwrap_or_default();
    let missing: Vec<&str> = plan
        .controllers
        .iter()
        .map(String::as_str)
        .filter(|c| !offered.split_whitespace().any(|o| o == *c))
        .collect();
    if !missing.is_empty() {
        preflight.push(format!(
            "not on cgroup2 on this host: {} (boot the plan's stage, or hand them over with --live)",
            missing.join(" ")
        ));
    }
    let live = resolve::live_from_snapshot(&snap);
    let resolved = resolve::resolve(&plan, &live, on_live_host && same_boot(&plan));
    let (steps, skipped) = exec::build_steps(&plan, &prefix, &resolved, &sim, &specs);
    let mut runner = Runner::new(&mut sim, None, false);
    runner.kill_after = None;
    let mut outcomes = runner.run(&steps, None)?;
    outcomes.extend(skipped);
    report(
        "apply --dry-run",
        None,
        true,
        &outcomes,
        None,
        preflight,
        a.format,
    )
}

/// `cgmig rollback`.
pub fn rollback(a: RollbackArgs) -> Result<i32> {
    let _lock = Lock::take()?;
    let j = Journal::read(&a.journal)?;
    let (_, _, opts) = j.header.clone().expect("read checks the header");
    confirm(opts.live, a.yes, "hand the controllers back to v1 hierarchies")?;
    let mut host = KernelTarget::new(PathBuf::from(&opts.mount));
    let mut w = Writer::open(&a.journal)?;
    let outcomes = exec::rollback(&mut host as &mut dyn Host, &j, Some(&mut w))?;
    report(
        "rollback",
        Some(&a.journal),
        false,
        &outcomes,
        None,
        Vec::new(),
        a.format,
    )
}

fn report(
    command: &str,
    journal: Option<&Path>,
    dry_run: bool,
    outcomes: &[Outcome],
    window: Option<f64>,
    preflight: Vec<String>,
    format: ResultFormat,
) -> Result<i32> {
    let failed = outcomes.iter().any(|o| o.status == Status::Failed);
    let r = Report {
        command,
        journal: journal.map(|p| p.display().to_string()),
        dry_run,
        steps: outcomes,
        not_done: outcomes.iter().filter(|o| o.status != Status::Done).collect(),
        counts: exec::summary_counts(outcomes),
        handover_window_ms: window,
        preflight,
    };
    match format {
        ResultFormat::Json => super::emit(None, &(serde_json::to_string_pretty(&r)? + "\n"))?,
        ResultFormat::Table => {
            let style = super::term::style(true);
            super::term::emit_human(None, &table(&r, &style), &style)?;
        }
    }
    Ok(if failed { 1 } else { 0 })
}

fn table(r: &Report, style: &crate::report::Style) -> String {
    use crate::report::table::{Cell, Col, Table};
    let mut t = Table::new(&[
        ("#", Col::Num),
        ("step", Col::Text),
        ("status", Col::Key),
        ("note", Col::Text),
    ]);
    // Every step when few; otherwise what was not done.
    let rows: Vec<&Outcome> = if r.steps.len() <= 40 {
        r.steps.iter().collect()
    } else {
        r.not_done.clone()
    };
    for o in rows {
        let status = match o.status {
            Status::Done => "done",
            Status::Failed => "FAILED",
            Status::Skipped => "skipped",
        };
        let status = match o.status {
            Status::Failed => Cell::severity(crate::rules::Severity::Error, status),
            _ => Cell::from(status),
        };
        t.row([
            o.seq.map_or_else(|| "-".into(), |s| s.to_string()).into(),
            o.label.clone().into(),
            status,
            o.note.clone().unwrap_or_default().into(),
        ]);
    }
    let mut s = String::new();
    for p in &r.preflight {
        s.push_str(&format!("note: {p}\n"));
    }
    s.push_str(&t.render(style));
    let counts: Vec<String> = r.counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
    let counts = if counts.is_empty() {
        "nothing to do".to_string()
    } else {
        counts.join(", ")
    };
    s.push_str(&format!("{}: {counts}", r.command));
    if let Some(w) = r.handover_window_ms {
        s.push_str(&format!("; handover window {w:.1} ms"));
    }
    if let Some(j) = &r.journal {
        s.push_str(&format!("; journal {j}"));
    }
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_with(boot: Option<String>) -> Plan {
        let mut p: Plan = serde_json::from_str(
            r#"{"schema":"cgmig.plan/v1","host":{"hostname":null,"kernel":null,"mode":"legacy"},
               "controllers":[],"nodes":[{"path":"/","type":"domain","subtree_control":[],"settings":[],"processes":[],"origins":[]},
               {"path":"/a","type":"domain","subtree_control":[],"settings":[],"processes":[10],
                "origins":[{"hierarchy":1,"label":"cpu","path":"/a"}]}],
               "actions":[],"findings":[],"conflicts":[],
               "spine":{"order":[],"settings_affected":0,"tried":[]},"stages":[],
               "process_keys":[{"pid":10,"uid":0,"comm":"w","cmdline":["w"],"v1":[["cpu","/a"]]}]}"#,
        )
        .unwrap();
        p.host.boot_id = boot;
        p
    }

    fn live(pid: u32, path: &str) -> resolve::Live {
        resolve::Live {
            pid: crate::model::Pid::new(pid),
            uid: 0,
            comm: "w".into(),
            cmdline: vec!["w".into()],
            v1: vec![("cpu".into(), path.into())],
            threads: vec![],
        }
    }

    #[test]
    fn changes_since_the_plan_are_named_in_the_same_boot_only() {
        let Some(boot) = live_text("/proc/sys/kernel/random/boot_id") else {
            assert!(
                std::env::var_os("CGMIG_REQUIRE_KERNEL_TESTS").is_none(),
                "no /proc/sys/kernel/random/boot_id on a required kernel-test run"
            );
            say!("SKIPPED: no boot_id on this system");
            return;
        };
        let p = plan_with(Some(boot));
        assert!(check_changes(&p, &[live(10, "/a")]).is_empty());
        let moved = check_changes(&p, &[live(10, "/b")]);
        assert!(moved[0].contains("moved since the plan"), "{moved:?}");
        let new = check_changes(&p, &[live(10, "/a"), live(11, "/a")]);
        assert!(
            new[0].contains("process 11") && new[0].contains("is new in cpu:/a"),
            "{new:?}"
        );
        // Another boot: every PID changed, nothing to compare.
        assert!(check_changes(&plan_with(Some("other".into())), &[live(10, "/b")]).is_empty());
    }
}
