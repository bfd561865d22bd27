//! `cgmig apply` and `cgmig rollback`: arguments, the checks before anything
//! is touched, the summary and confirmation, and the result report. The
//! work itself is `crate::apply`.
//!
//! Safe to fumble: on a terminal both commands show what they are about to
//! do and ask; off a terminal they need `--yes` (exit 2 otherwise). An apply
//! stops at the first step that fails and prints the exact `rollback` and
//! `--resume` commands. Every refusal names the field, path or value.

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use serde::Serialize;

use super::InputArgs;
use crate::apply::exec::{self, Outcome, RunResult, Runner, Status};
use crate::apply::journal::{self, Journal, Lock, Record, RunOptions, Writer};
use crate::apply::kernel::{self, KernelTarget};
use crate::apply::step::Step;
use crate::apply::{ApplyError, Host, Simulator, handover, resolve, rollout};
use crate::plan::{Action, PLAN_SCHEMA, Plan};

/// Result format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ResultFormat {
    /// Summary table.
    Table,
    /// Every step as JSON.
    Json,
}

/// How the plan's processes are found on this host when the plan does not
/// say which host and boot it was made in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MatchBy {
    /// By stable key (uid, comm, command line; the v1 cgroups tell identical
    /// ones apart), as after a reboot.
    Keys,
    /// The plan's PIDs are this boot's processes (each still checked
    /// against its key).
    Pids,
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
    /// Do not ask for confirmation (required when not on a terminal).
    #[arg(long)]
    yes: bool,
    /// Run against the simulator seeded from the host (or --root/--snapshot); change nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    input: InputArgs,
    /// Journal file (default: /run/cgmig/plan-HASH[-stageN].journal).
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
    /// How to find the plan's processes when the plan has no host identity
    /// (made from a snapshot): by stable key, or by the plan's PIDs.
    #[arg(long = "match", value_enum, value_name = "HOW")]
    match_by: Option<MatchBy>,
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
    /// Do not ask for confirmation (required when not on a terminal).
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
    counts: BTreeMap<&'static str, usize>,
    /// Steps after the one that failed (an apply stops there).
    #[serde(skip_serializing_if = "is_zero")]
    not_run: usize,
    /// The step the apply stopped at, and what to run next.
    #[serde(skip_serializing_if = "Option::is_none")]
    stopped: Option<Stopped>,
    #[serde(skip_serializing_if = "Option::is_none")]
    handover_window_ms: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    preflight: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    notes: Vec<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Where an apply stopped and the exact commands that undo or continue it.
#[derive(Debug, Clone, Serialize)]
struct Stopped {
    seq: usize,
    label: String,
    error: String,
    rollback: String,
    resume: String,
}

/// Read and check a plan file: schema, parse, v2 rules, and what a plan
/// read from a file must hold (`plan::document`: catalogue files, paths,
/// task ids, actions derived from the nodes). `apply` and `verify` read
/// plans here.
pub fn read_plan(path: &Path) -> Result<Plan, ApplyError> {
    // A regular file, bounded (a FIFO must not block: issue 10, class 2).
    let text = super::read_document(path).map_err(|e| ApplyError::Refused(format!("{e:#}")))?;
    /// The schema alone, read before the whole plan (no tree of values in
    /// between: a plan of 100,000 nodes is parsed once into its types).
    #[derive(serde::Deserialize)]
    struct Peek {
        schema: Option<String>,
    }
    // The one door's parser: nesting bounded before any parser recurses.
    let peek: Peek = crate::host::door::parse(path, &text)
        .map_err(|e| ApplyError::Refused(format!("not a readable plan: {e}")))?;
    match peek.schema.as_deref() {
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
    let plan: Plan = crate::host::door::parse(path, &text)
        .map_err(|e| ApplyError::Refused(format!("invalid plan: {e}")))?;
    // Another owner's cgroup is named as such (issue 14) before the
    // general check says the action does not follow from the nodes.
    owned_elsewhere(path, &plan)?;
    let bad = crate::plan::document::check_loaded(&plan);
    if !bad.is_empty() {
        return Err(ApplyError::Invalid {
            path: path.into(),
            reasons: bad.iter().map(|v| format!("{}: {}", v.at, v.message)).collect(),
        });
    }
    Ok(plan)
}

/// Issue 14: apply never writes into a cgroup another owner (systemd, a
/// runtime) rebuilds. The planner strips such actions; this refuses a plan
/// edited by hand to carry them back, before anything is touched.
fn owned_elsewhere(path: &Path, plan: &Plan) -> Result<(), ApplyError> {
    let refusals: BTreeSet<String> = crate::plan::foreign_actions(plan)
        .into_iter()
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

/// The part of the plan `--stage`/`--only` select (the plan itself when
/// neither is given: no copy, no rules loaded).
fn scoped(plan: Plan, stage: Option<usize>, only: Option<&str>) -> Result<Plan, ApplyError> {
    if stage.is_none() && only.is_none() {
        return Ok(plan);
    }
    let (rules, _) = crate::rules::RuleSet::load(&[]);
    let leaf = rules.policy().leaf_name.clone();
    let mut p = plan;
    let stages = p.stages.len();
    if let Some(n) = stage {
        p = p.for_stage(n, &leaf).ok_or_else(|| {
            ApplyError::Refused(format!(
                "--stage {n}: there is no stage {n} (this plan has {stages})"
            ))
        })?;
    }
    if let Some(path) = only {
        p = p
            .only(path, &leaf)
            .ok_or_else(|| ApplyError::Refused(format!("--only {path}: not a node of the plan")))?;
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
            "host.machine_id",
            plan.host.machine_id.as_deref(),
            live_text("/etc/machine-id"),
        ),
        (
            "host.hostname",
            plan.host.hostname.as_deref(),
            live_text("/proc/sys/kernel/hostname"),
        ),
        (
            "host.kernel",
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

/// Whether the plan's PIDs are this boot's: from `--match`, or from the
/// plan's host identity. A plan that places processes but says nothing of
/// the host it was made on is refused unless told how to match them.
fn pids_are_this_boots(plan: &Plan, path: &Path, by: Option<MatchBy>) -> Result<bool, ApplyError> {
    match by {
        Some(MatchBy::Keys) => return Ok(false),
        Some(MatchBy::Pids) => return Ok(true),
        None => {}
    }
    let places = plan
        .nodes
        .iter()
        .any(|n| n.path != "/" && (!n.processes.is_empty() || !n.threads.is_empty()));
    if plan.host.machine_id.is_none() && places {
        return Err(ApplyError::Refused(format!(
            "{}: host.machine_id: the plan has no host identity (it was made from a snapshot, not on this host), so nothing says its PIDs name this host's processes; pass --match keys to place processes by their stable key (uid, comm, command line), or --match pids if the plan was made on this host in this boot",
            path.display()
        )));
    }
    Ok(same_boot(plan))
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
    let planned: BTreeSet<crate::model::Pid> = plan.process_keys.iter().map(|k| k.pid).collect();
    let origins: BTreeSet<(String, String)> = plan
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

/// Off a terminal a change needs `--yes` (refused before anything is read
/// from the host or locked).
fn need_yes(yes: bool, what: &str) -> Result<(), ApplyError> {
    if yes || std::io::stdin().is_terminal() {
        return Ok(());
    }
    Err(ApplyError::Refused(format!(
        "{what} changes this host and standard input is not a terminal: pass --yes to confirm (or run `cgmig apply PLAN --dry-run` to see what would happen)"
    )))
}

/// On a terminal without `--yes`: show the summary and ask.
fn confirm(yes: bool, summary: &str, question: &str) -> Result<(), ApplyError> {
    if yes || !std::io::stdin().is_terminal() {
        return Ok(());
    }
    {
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), "{summary}cgmig: {question} [y/N] ");
    }
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    if matches!(line.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(ApplyError::Refused("not confirmed: nothing was changed".into()))
    }
}

/// Issue 19: a plan whose assessment has a blocker no waiver accepts is
/// never carried out (nor dry-run): the refusal names each blocker. The
/// plan is judged again with the waivers given to this command only: a plan
/// is a document that travels between machines and people, so a waiver
/// written into it (by `plan --waive`, or by whoever edited the file) does
/// not bind the root who applies it. Such a recorded waiver is named, and
/// the blocker stays until `--waive`/`--waivers` accepts it here. Every
/// waived blocker is said, with who and why.
fn refuse_blockers(a: &ApplyArgs, plan: &mut Plan) -> Result<()> {
    let (rules, _) = crate::rules::RuleSet::embedded();
    let waivers = super::load_waivers(&a.waive, &rules, &super::plan_ids(plan))?;
    for f in &mut plan.findings {
        if let Some(w) = f.waived.take()
            && f.severity == crate::rules::Severity::Blocker
        {
            say!(
                "cgmig: apply: the plan records a waiver of {} at {} ({}: {}); apply honours only waivers given to it",
                f.rule,
                f.subject,
                w.who,
                w.why
            );
        }
    }
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
/// either resume the journaled run or prepare a fresh one, show what it will
/// do and ask, and run it with the journal around every step.
pub fn apply(a: ApplyArgs) -> Result<i32> {
    let mut full = read_plan(&a.plan)?;
    refuse_blockers(&a, &mut full)?;
    if a.dry_run {
        return dry_run(&a, full);
    }
    // Asked first, before anything is scanned, locked or written.
    need_yes(a.yes, if a.resume { "apply --resume" } else { "apply" })?;
    let _lock = Lock::take()?;
    let hash = journal::plan_hash(&full);
    if a.resume {
        return resume(&a, full, &hash);
    }
    let plan = scoped(full, a.stage, a.only.as_deref())?;
    if !a.force_host {
        let why = check_host(&plan);
        if !why.is_empty() {
            return Err(ApplyError::WrongHost { reasons: why }.into());
        }
    }
    let this_boot = pids_are_this_boots(&plan, &a.plan, a.match_by)?;
    let journal_path = match &a.journal {
        Some(p) => p.clone(),
        None => journal::default_path(&journal::ensure_run_dir()?, &hash, a.stage, a.only.as_deref()),
    };
    let prepared = prepare(&a, &plan, this_boot)?;
    let mut host = KernelTarget::open(Path::new(&prepared.options.mount))?;
    confirm(
        a.yes,
        &summary(&a.plan, &plan, &prepared, &journal_path),
        "apply this plan now?",
    )?;
    let writer = Writer::create(
        &journal_path,
        &Record::Header {
            schema: journal::JOURNAL_SCHEMA.into(),
            plan_hash: hash.clone(),
            plan: a.plan.display().to_string(),
            boot_id: journal::this_boot()?,
            options: prepared.options.clone(),
            steps: prepared.steps.clone(),
        },
    )?;
    run_prepared(&a, &mut host, &journal_path, writer, prepared, &hash)
}

/// An apply ready to run: its steps and options, what the plan names but
/// will not be done, the journal of the run it resumes, and the handover
/// preflight's lines for the report.
struct Prepared {
    steps: Vec<Step>,
    options: RunOptions,
    skipped: Vec<Outcome>,
    prior: Option<Journal>,
    preflight: Vec<String>,
}

/// `--resume`: the steps and options come from the journal, which must be
/// this boot's, belong to this very plan (the hash), and hold only steps
/// this plan calls for (checked step by step: a journal is data, not a
/// script). Before each move the process must still be one the plan places
/// there, matched by its key.
fn resume(a: &ApplyArgs, full: Plan, hash: &str) -> Result<i32> {
    let journal_path = match &a.journal {
        Some(p) => p.clone(),
        None => journal::default_path(&journal::run_dir(), hash, a.stage, a.only.as_deref()),
    };
    let j = Journal::read(&journal_path)?;
    j.check_boot()?;
    if j.header.plan_hash != hash {
        return Err(ApplyError::OtherPlan {
            path: journal_path,
            plan: j.header.plan.clone(),
        }
        .into());
    }
    let opts = j.header.options.clone();
    same_selection(a, &opts)?;
    let plan = scoped(full, opts.stage, opts.only.as_deref())?;
    check_journal_against_plan(&j, &plan)?;
    let mut host = KernelTarget::open(Path::new(&opts.mount))?;
    let snap = crate::scan::scan(&crate::host::Root::live()).context("fresh scan of this host")?;
    let live = resolve::live_from_snapshot(&snap);
    let guard = move_guard(&plan, &opts.prefix, live, kernel::protected());
    let left = j.steps.len() - j.outcomes.values().filter(|o| o.is_ok()).count();
    confirm(
        a.yes,
        &format!(
            "cgmig apply --resume: {left} of {} steps of {} left to run on {} (prefix {})\n",
            j.steps.len(),
            journal_path.display(),
            opts.mount,
            opts.prefix
        ),
        "continue this apply now?",
    )?;
    let prepared = Prepared {
        steps: j.steps.clone(),
        options: opts,
        skipped: Vec::new(),
        prior: Some(j),
        preflight: Vec::new(),
    };
    let writer = Writer::open(&journal_path)?;
    run_with(a, &mut host, &journal_path, writer, prepared, Some(guard), hash)
}

/// `--stage`, `--only`, `--live` and `--target` given to a resume must be
/// those of the run it continues (the journal's).
fn same_selection(a: &ApplyArgs, o: &RunOptions) -> Result<(), ApplyError> {
    let mut why = Vec::new();
    if a.stage.is_some() && a.stage != o.stage {
        why.push(format!(
            "--stage {:?}, but the journal's run used {:?}",
            a.stage, o.stage
        ));
    }
    if a.only.is_some() && a.only != o.only {
        why.push(format!(
            "--only {:?}, but the journal's run used {:?}",
            a.only, o.only
        ));
    }
    if a.live && !o.live {
        why.push("--live, but the journal's run was not live".into());
    }
    if let Some(t) = &a.target {
        let l = kernel::locate(t)?;
        if l.mount.display().to_string() != o.mount || l.prefix != o.prefix {
            why.push(format!(
                "--target {}, but the journal's run built under {}{}",
                t.display(),
                o.mount,
                o.prefix
            ));
        }
    }
    if why.is_empty() {
        Ok(())
    } else {
        Err(ApplyError::Refused(format!("--resume: {}", why.join("; "))))
    }
}

/// Every step of the journal must be one the (scoped) plan calls for under
/// the journal's prefix: its actions mapped onto the mount, moves into
/// nodes that place tasks, the enables above the target with the plan's
/// root controllers, and handovers of controllers the plan moves.
fn check_journal_against_plan(j: &Journal, plan: &Plan) -> Result<(), ApplyError> {
    let o = &j.header.options;
    let actions: BTreeSet<String> = plan
        .actions
        .iter()
        .filter(|a| !matches!(a, Action::MoveProcess { .. } | Action::MoveThread { .. }))
        .map(|a| format!("{:?}", exec::mapped(a, &o.prefix)))
        .collect();
    let task_nodes: BTreeSet<String> = plan
        .nodes
        .iter()
        .filter(|n| n.path != "/" && (!n.processes.is_empty() || !n.threads.is_empty()))
        .map(|n| exec::on_mount(&o.prefix, &n.path))
        .collect();
    let root_ctrls = plan
        .node("/")
        .map(|n| n.subtree_control.clone())
        .unwrap_or_default();
    let moved = handover::moved_controllers(plan);
    let handed = |h: &str| {
        h.split(',').all(|c| {
            moved
                .iter()
                .any(|m| m == c || handover::v2_name(c) == Some(m.as_str()))
        })
    };
    for (seq, s) in j.steps.iter().enumerate() {
        let ok = match s {
            Step::Action(Action::MoveProcess { path, .. } | Action::MoveThread { path, .. }) => {
                task_nodes.contains(path)
            }
            Step::Action(a) => actions.contains(&format!("{:?}", Step::Action(a.clone()))),
            Step::MkdirTarget { .. } => true,
            Step::EnableAbove { controllers, .. } => *controllers == root_ctrls,
            Step::Evacuate { hierarchy, .. }
            | Step::RemoveV1 { hierarchy, .. }
            | Step::Unmount { hierarchy, .. } => handed(hierarchy),
            Step::WaitRelease { controller, .. } | Step::WaitV2 { controller, .. } => handed(controller),
        };
        if !ok {
            return Err(ApplyError::Journal {
                path: j.path.clone(),
                line: 1,
                message: format!("step {seq} ({}) is not a step of this plan", s.label()),
            });
        }
    }
    Ok(())
}

/// Before a resumed move: the live process must still be one the plan
/// places at that node (uid, comm and command line of one of its keys),
/// never this process, and a protected one (PID 1, the chain that runs
/// cgmig) only where the plan names that very PID.
fn move_guard<'a>(
    plan: &Plan,
    prefix: &str,
    live: Vec<resolve::Live>,
    protected: resolve::Protected,
) -> exec::Guard<'a> {
    let mut named: BTreeSet<(String, crate::model::Pid)> = BTreeSet::new();
    let mut keys: BTreeMap<String, Vec<(u32, String, Vec<String>)>> = BTreeMap::new();
    let by_pid: BTreeMap<crate::model::Pid, &crate::plan::ProcessKey> =
        plan.process_keys.iter().map(|k| (k.pid, k)).collect();
    for n in &plan.nodes {
        let at = exec::on_mount(prefix, &n.path);
        let pids = n.processes.iter().copied().chain(n.threads.iter().map(|t| t.pid));
        for p in pids {
            named.insert((at.clone(), p));
            if let Some(k) = by_pid.get(&p) {
                keys.entry(at.clone())
                    .or_default()
                    .push((k.uid, k.comm.clone(), k.cmdline.clone()));
            }
        }
    }
    Box::new(move |step: &Step| {
        let (pid, path) = match step {
            Step::Action(Action::MoveProcess { pid, path } | Action::MoveThread { pid, path, .. }) => {
                (*pid, path)
            }
            _ => return Ok(()),
        };
        if pid == exec::own_pid() {
            return Err(format!("process {pid} is this cgmig process"));
        }
        if let Some(why) = protected.why(pid)
            && !named.contains(&(path.clone(), pid))
        {
            return Err(format!(
                "process {pid} is {why}: never moved unless the plan names it there"
            ));
        }
        let Some(l) = live.iter().find(|l| l.pid == pid) else {
            return Err(format!("process {pid} is gone"));
        };
        let fits = keys.get(path).is_some_and(|ks| {
            ks.iter()
                .any(|(u, c, cmd)| *u == l.uid && *c == l.comm && *cmd == l.cmdline)
        });
        if fits {
            Ok(())
        } else {
            Err(format!(
                "process {pid} ({}) is not a process the plan places at {path} (no key matches it)",
                l.comm
            ))
        }
    })
}

/// A fresh run: find the cgroup2 mount, scan the host again (the plan may
/// be old), refuse when processes moved since the plan, run the handover
/// preflight, and turn the plan into steps for the processes as they are now.
fn prepare(a: &ApplyArgs, plan: &Plan, this_boot: bool) -> Result<Prepared> {
    let (mount, prefix) = target_mount(a.target.as_deref())?;
    let host = KernelTarget::open(&mount)?;
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
    let protected = kernel::protected();
    let resolved = resolve::resolve(plan, &live, this_boot, &protected);
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

/// What an apply is about to do, in numbers, for the confirmation.
fn summary(plan_path: &Path, plan: &Plan, p: &Prepared, journal: &Path) -> String {
    let mut n: BTreeMap<&str, usize> = BTreeMap::new();
    let mut handover: Vec<&str> = Vec::new();
    for s in &p.steps {
        let k = match s {
            Step::MkdirTarget { .. } => "above",
            Step::EnableAbove { .. } => "enable-above",
            Step::Action(Action::Create { .. }) => "create",
            Step::Action(Action::SetType { .. }) => "type",
            Step::Action(Action::MoveProcess { .. }) => "procs",
            Step::Action(Action::MoveThread { .. }) => "threads",
            Step::Action(Action::EnableControllers { .. }) => "enable",
            Step::Action(Action::Write { .. }) => "write",
            Step::Action(Action::Chown { .. }) => "chown",
            Step::Evacuate { hierarchy, .. } => {
                handover.push(hierarchy);
                continue;
            }
            _ => continue,
        };
        *n.entry(k).or_default() += 1;
    }
    let c = |k: &str| n.get(k).copied().unwrap_or(0);
    let o = &p.options;
    let mut s = format!("cgmig apply {}\n", plan_path.display());
    s.push_str(&format!(
        "  target      {}{} ({} plan nodes)\n",
        o.mount,
        if o.prefix == "/" {
            String::new()
        } else {
            o.prefix.clone()
        },
        plan.nodes.len()
    ));
    s.push_str(&format!(
        "  tree        {} cgroups to create ({} above the target), {} threaded\n",
        c("create"),
        c("above"),
        c("type")
    ));
    s.push_str(&format!(
        "  controllers enabled at {} cgroups ({} above the target)\n",
        c("enable") + c("enable-above"),
        c("enable-above")
    ));
    s.push_str(&format!("  writes      {} settings\n", c("write")));
    s.push_str(&format!(
        "  moves       {} processes, {} threads\n",
        c("procs"),
        c("threads")
    ));
    s.push_str(&format!(
        "  owners      {} delegated cgroups chowned\n",
        c("chown")
    ));
    s.push_str(&format!(
        "  handover    {}\n",
        if handover.is_empty() {
            "none (no --live)".to_string()
        } else {
            format!(
                "{} (live: their v1 hierarchies are taken apart)",
                handover.join(" ")
            )
        }
    ));
    for o in &p.skipped {
        s.push_str(&format!(
            "  left alone  {}: {}\n",
            o.label,
            o.note.as_deref().unwrap_or("")
        ));
    }
    s.push_str(&format!("  journal     {}\n", journal.display()));
    s
}

/// Run a fresh apply's steps and report.
fn run_prepared(
    a: &ApplyArgs,
    host: &mut KernelTarget,
    journal_path: &Path,
    writer: Writer,
    p: Prepared,
    hash: &str,
) -> Result<i32> {
    run_with(a, host, journal_path, writer, p, None, hash)
}

/// Run the steps on the kernel (skipping what an earlier run finished),
/// report every outcome, and say how to undo or continue when one failed.
fn run_with(
    a: &ApplyArgs,
    host: &mut KernelTarget,
    journal_path: &Path,
    writer: Writer,
    p: Prepared,
    guard: Option<exec::Guard<'_>>,
    hash: &str,
) -> Result<i32> {
    let total = p.steps.len();
    let mut runner = Runner::new(host as &mut dyn Host, Some(writer), p.options.live);
    runner.guard = guard;
    runner.progress = progress(total);
    let RunResult {
        mut outcomes,
        stopped_at,
    } = runner.run(&p.steps, p.prior.as_ref())?;
    let window = runner.window_ms();
    let not_run = total - outcomes.len();
    let mut notes = Vec::new();
    let stopped = stopped_at.map(|seq| {
        let o = outcomes.iter().find(|o| o.seq == Some(seq));
        Stopped {
            seq,
            label: p.steps[seq].label(),
            error: o.and_then(|o| o.note.clone()).unwrap_or_default(),
            rollback: format!("cgmig rollback {} --yes", quote(journal_path)),
            resume: resume_command(a, journal_path),
        }
    });
    if let Some(s) = &stopped {
        say!(
            "cgmig: apply stopped at step {} ({}): {}\ncgmig: {} steps done, {not_run} not run; the journal is {}\ncgmig: to undo what was done:      {}\ncgmig: to continue after a fix:    {}",
            s.seq,
            s.label,
            s.error,
            outcomes.iter().filter(|o| o.status == Status::Done).count(),
            journal_path.display(),
            s.rollback,
            s.resume
        );
    } else if let Some(n) = p.options.stage {
        let rec = rollout::StageDone {
            plan_hash: hash.to_string(),
            plan: a.plan.display().to_string(),
            stage: n,
            boot_id: journal::this_boot()?,
            at: rollout::now(),
        };
        // The tree is built either way: a record that cannot be written is
        // said loudly, not turned into a failed apply.
        match rollout::record(&rollout::state_dir(), rec) {
            Ok(path) => notes.push(format!("stage {n} recorded as done in {}", path.display())),
            Err(e) => {
                say!("cgmig: warning: stage {n} is applied but could not be recorded as done: {e}");
                notes.push(format!("stage {n} applied, NOT recorded as done: {e}"));
            }
        }
    }
    outcomes.extend(p.skipped);
    let r = Report {
        command: "apply",
        journal: Some(journal_path.display().to_string()),
        dry_run: false,
        not_done: Vec::new(),
        counts: exec::summary_counts(&outcomes),
        steps: &outcomes,
        not_run,
        stopped,
        handover_window_ms: window,
        preflight: p.preflight,
        notes,
    };
    report(r, a.format)
}

/// The exact command that continues this apply.
fn resume_command(a: &ApplyArgs, journal: &Path) -> String {
    format!(
        "cgmig apply {} --resume --journal {} --yes{}",
        quote(&a.plan),
        quote(journal),
        match a.match_by {
            Some(MatchBy::Keys) => " --match keys",
            Some(MatchBy::Pids) => " --match pids",
            None => "",
        }
    )
}

/// A path as a shell word (single quotes when it needs any).
fn quote(p: &Path) -> String {
    let s = p.display().to_string();
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:@%=,".contains(&b))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
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

fn dry_run(a: &ApplyArgs, full: Plan) -> Result<i32> {
    let plan = scoped(full, a.stage, a.only.as_deref())?;
    let snap = super::load_input(&a.input)?;
    let mut sim = Simulator::from_snapshot(&snap);
    let prefix = match &a.target {
        Some(dir) => kernel::locate(dir).map_or_else(|_| dir.display().to_string(), |l| l.prefix),
        None => "/".into(),
    };
    if crate::model::path::cgroup_names(&prefix).is_err() {
        return Err(ApplyError::Refused(format!(
            "--target {prefix}: not a directory on a cgroup2 mount of this host"
        ))
        .into());
    }
    if prefix == "/" {
        // systemd's and runtimes' cgroups exist before cgmig acts (they are
        // the owners' to build); model them so the replay matches the host.
        let pre = crate::plan::prebuilt(&plan);
        if let Err(e) = sim.prebuild(pre.iter().map(|(p, c)| (*p, c.as_slice()))) {
            say!("cgmig: dry run: other owners' cgroups could not be modelled: {e}");
        }
    }
    let on_live_host = a.input.root.is_none() && a.input.snapshot.is_none();
    let (specs, preflight) = dry_preflight(a, &plan, &snap, &mut sim, on_live_host);
    let mut notes = Vec::new();
    if on_live_host
        && a.match_by.is_none()
        && let Err(e) = pids_are_this_boots(&plan, &a.plan, None)
    {
        notes.push(format!("a real apply would refuse: {e}"));
    }
    let live = resolve::live_from_snapshot(&snap);
    let this_boot = match a.match_by {
        Some(MatchBy::Pids) => true,
        Some(MatchBy::Keys) => false,
        None => on_live_host && same_boot(&plan),
    };
    // On this host, what a real apply would protect; a captured host has
    // no chain of this process in it (only its PID 1).
    let protected = if on_live_host {
        kernel::protected()
    } else {
        resolve::Protected::chain(crate::model::Pid::new(1), |_| None)
    };
    let resolved = resolve::resolve(&plan, &live, this_boot, &protected);
    let (steps, skipped) = exec::build_steps(&plan, &prefix, &resolved, &sim, &specs);
    let mut runner = Runner::new(&mut sim, None, false);
    runner.kill_after = None;
    let RunResult { mut outcomes, .. } = runner.run(&steps, None)?;
    if let Some(first) = outcomes.iter().find(|o| o.status == Status::WouldFail) {
        notes.push(format!(
            "a real apply would stop at step {} ({}) and leave the rest not run",
            first.seq.unwrap_or(0),
            first.label
        ));
    }
    outcomes.extend(skipped);
    let r = Report {
        command: "apply --dry-run",
        journal: None,
        dry_run: true,
        not_done: Vec::new(),
        counts: exec::summary_counts(&outcomes),
        steps: &outcomes,
        not_run: 0,
        stopped: None,
        handover_window_ms: None,
        preflight,
        notes,
    };
    report(r, a.format)
}

/// The dry run's handover preflight lines, and the simulated outcome of a
/// handover (the controllers offered on v2).
fn dry_preflight(
    a: &ApplyArgs,
    plan: &Plan,
    snap: &crate::model::Snapshot,
    sim: &mut Simulator,
    on_live_host: bool,
) -> (Vec<handover::Spec>, Vec<String>) {
    let specs = if a.live && on_live_host {
        handover::specs_for(plan)
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
            preflight.push(handover::staged_boot_hint(plan));
        }
        // The simulated handover's outcome: the controllers come to v2.
        for s in &specs {
            for c in &s.v2 {
                sim.offer_controller(c);
            }
        }
    }
    let offered = crate::apply::Target::read(sim, "/", "cgroup.controllers").unwrap_or_default();
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
    (specs, preflight)
}

/// `cgmig rollback`: the journal is read and checked (this boot's, written
/// only by root, every step inside its scope), the mount it names is opened
/// again and checked to be cgroup2, and each step whose effect is still
/// there is undone, last first.
pub fn rollback(a: RollbackArgs) -> Result<i32> {
    // A journal that is not one (or not to be trusted) is said first, as
    // such; then --yes, the lock, and the journal again under the lock.
    Journal::read(&a.journal)?.check_boot()?;
    need_yes(a.yes, "rollback")?;
    let _lock = Lock::take()?;
    let j = Journal::read(&a.journal)?;
    j.check_boot()?;
    let opts = j.header.options.clone();
    let mut host = KernelTarget::open(Path::new(&opts.mount))?;
    let undo = j
        .intents
        .keys()
        .filter(|s| !matches!(j.undone.get(s), Some(Ok(_))))
        .count();
    confirm(
        a.yes,
        &format!(
            "cgmig rollback {}\n  undo        {undo} steps, last first, on {} (prefix {})\n  handover    {}\n",
            a.journal.display(),
            opts.mount,
            opts.prefix,
            if opts.live {
                "the controllers go back to their v1 hierarchies"
            } else {
                "none"
            }
        ),
        "roll back now?",
    )?;
    let mut w = Writer::open(&a.journal)?;
    let outcomes = exec::rollback(&mut host as &mut dyn Host, &j, Some(&mut w))?;
    let r = Report {
        command: "rollback",
        journal: Some(a.journal.display().to_string()),
        dry_run: false,
        not_done: Vec::new(),
        counts: exec::summary_counts(&outcomes),
        steps: &outcomes,
        not_run: 0,
        stopped: None,
        handover_window_ms: None,
        preflight: Vec::new(),
        notes: Vec::new(),
    };
    report(r, a.format)
}

/// Print the report; exit 1 when a step failed (or would fail).
fn report(mut r: Report<'_>, format: ResultFormat) -> Result<i32> {
    let failed = r.stopped.is_some() || r.steps.iter().any(|o| o.status.is_failed());
    r.not_done = r.steps.iter().filter(|o| !o.status.is_done()).collect();
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
            Status::Failed | Status::WouldFail => {
                Cell::severity(crate::rules::Severity::Error, o.status.word())
            }
            _ => Cell::from(o.status.word()),
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
        s.push_str(&format!("note: {}\n", crate::report::escape::line(p)));
    }
    s.push_str(&t.render(style));
    for n in &r.notes {
        s.push_str(&format!("note: {}\n", crate::report::escape::line(n)));
    }
    let mut counts: Vec<String> = r.counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
    if r.not_run > 0 {
        counts.push(format!("{} not run", r.not_run));
    }
    let counts = if counts.is_empty() {
        "nothing to do".to_string()
    } else {
        counts.join(", ")
    };
    s.push_str(&format!("{}: {counts}", r.command));
    if r.dry_run {
        s.push_str(" (nothing was changed)");
    }
    if let Some(w) = r.handover_window_ms {
        s.push_str(&format!("; handover window {w:.1} ms"));
    }
    if let Some(j) = &r.journal {
        s.push_str(&format!("; journal {j}"));
    }
    s.push('\n');
    if let Some(st) = &r.stopped {
        s.push_str(&format!(
            "stopped at step {}: undo with `{}`, or continue after a fix with `{}`\n",
            st.seq, st.rollback, st.resume
        ));
    }
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

    /// The resume guard: a process the plan's key names at that node passes;
    /// one no key names there is refused by name; a protected one (PID 1,
    /// the chain that runs cgmig) is refused unless the plan names that PID
    /// at that node.
    #[test]
    fn the_resume_guard_moves_only_keyed_and_never_protected_processes() {
        let p = plan_with(None);
        let mv = |pid: u32| {
            Step::Action(Action::MoveProcess {
                pid: crate::model::Pid::new(pid),
                path: "/a".into(),
            })
        };
        let mut other = live(12, "/a");
        other.comm = "x".into();
        let prot = resolve::Protected::chain(crate::model::Pid::new(10), |_| None);
        let g = move_guard(&p, "/", vec![live(10, "/a"), live(11, "/a"), other], prot);
        assert_eq!(g(&mv(10)), Ok(()), "the plan names PID 10 at /a");
        let e = g(&mv(12)).unwrap_err();
        assert!(e.contains("not a process the plan places at /a"), "{e}");
        assert_eq!(g(&mv(11)), Ok(()), "a namesake of the key at /a");
        let prot = resolve::Protected::chain(crate::model::Pid::new(11), |_| None);
        let g = move_guard(&p, "/", vec![live(10, "/a"), live(11, "/a")], prot);
        let e = g(&mv(11)).unwrap_err();
        assert!(e.contains("never moved unless the plan names it there"), "{e}");
    }

    /// A plan with processes but no host identity is refused unless told
    /// how to match; the refusal names the field and both ways out.
    #[test]
    fn a_plan_without_host_identity_needs_match() {
        let p = plan_with(None);
        let e = pids_are_this_boots(&p, Path::new("p.json"), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("host.machine_id") && e.contains("--match keys") && e.contains("--match pids"),
            "{e}"
        );
        assert!(!pids_are_this_boots(&p, Path::new("p.json"), Some(MatchBy::Keys)).unwrap());
        assert!(pids_are_this_boots(&p, Path::new("p.json"), Some(MatchBy::Pids)).unwrap());
        let mut known = plan_with(None);
        known.host.machine_id = Some("m".into());
        assert!(pids_are_this_boots(&known, Path::new("p.json"), None).is_ok());
    }

    #[test]
    fn printed_commands_are_shell_words() {
        assert_eq!(
            quote(Path::new("/run/cgmig/plan-1.journal")),
            "/run/cgmig/plan-1.journal"
        );
        assert_eq!(
            quote(Path::new("/tmp/my plan's.json")),
            r"'/tmp/my plan'\''s.json'"
        );
    }
}
