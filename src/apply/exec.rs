//! The executor: turns a plan into steps, runs them one by one with the
//! journal around each, verifies every change by reading it back, and undoes
//! a journal in reverse.
//!
//! Each step is: capture what is there (`Before`), journal the intent, act,
//! verify, journal the outcome (each record one `write(2)`, see
//! [`super::journal`]). A step whose intent is journaled but has no outcome
//! is simply run again on resume: every step is idempotent (mkdir of an
//! existing cgroup, a write of the same value, a move to where the task
//! already is all count as done). An apply stops at the first step that
//! fails; a dry run goes on, to show every step that would fail.
//!
//! Rollback undoes only what it can see on the mount it opened again: a
//! value still the one the apply wrote, a task still where the apply put
//! it, an owner still the one it set. What someone changed since is left
//! as it is, and said so.

use crate::model::{Pid, Tid};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use nix::errno::Errno;
use serde::Serialize;

use super::error::ApplyError;
use super::handover::{self, Spec};
use super::journal::{Journal, Record, Writer};
use super::normalize::same;
use super::resolve::Resolved;
use super::step::{Before, OwnedFile, Step, StepFailure, StepResult, UidGid, fail};
use super::tasks::Host;
use crate::plan::{Action, Plan};

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Done and verified.
    Done,
    /// Could not be done (the reason is in the note).
    Failed,
    /// Not attempted (unmatched process, a step after the one that failed, …).
    Skipped,
    /// Dry run: the simulator did it and read it back.
    WouldDo,
    /// Dry run: the simulator refused it, as the kernel would.
    WouldFail,
}

impl Status {
    /// The word a table shows.
    pub fn word(self) -> &'static str {
        match self {
            Status::Done => "done",
            Status::Failed => "FAILED",
            Status::Skipped => "skipped",
            Status::WouldDo => "would do",
            Status::WouldFail => "WOULD FAIL",
        }
    }

    /// Whether the step did (or would do) what it says.
    pub fn is_done(self) -> bool {
        matches!(self, Status::Done | Status::WouldDo)
    }

    /// Whether the step failed (or would fail).
    pub fn is_failed(self) -> bool {
        matches!(self, Status::Failed | Status::WouldFail)
    }
}

/// One line of the result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// Step number (`None` for what never became a step).
    pub seq: Option<usize>,
    /// What.
    pub label: String,
    /// How it ended.
    pub status: Status,
    /// Why, or what happened besides.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Map a plan path onto the mount under the target prefix.
pub fn on_mount(prefix: &str, path: &str) -> String {
    match (prefix, path) {
        ("/", p) => p.to_string(),
        (pre, "/") => pre.to_string(),
        (pre, p) => format!("{pre}{p}"),
    }
}

/// A plan action as the step that carries it out under `prefix` (tasks as
/// the plan names them; [`build_steps`] maps them to live ones).
pub fn mapped(a: &Action, prefix: &str) -> Step {
    let path = on_mount(prefix, a.path());
    Step::Action(match a.clone() {
        Action::Create { .. } => Action::Create { path },
        Action::SetType { value, .. } => Action::SetType { path, value },
        Action::MoveProcess { pid, .. } => Action::MoveProcess { pid, path },
        Action::MoveThread { tid, pid, .. } => Action::MoveThread { tid, pid, path },
        Action::EnableControllers { controllers, .. } => Action::EnableControllers { path, controllers },
        Action::Write { file, value, .. } => Action::Write { path, file, value },
        Action::Chown { uid, gid, files, .. } => Action::Chown {
            path,
            uid,
            gid,
            files,
        },
    })
}

/// The steps for a plan under `prefix`, and what the plan names but will not
/// be done (unmatched processes, processes of the root, …) with the reason.
pub fn build_steps(
    plan: &Plan,
    prefix: &str,
    resolved: &Resolved,
    host: &dyn Host,
    handover: &[Spec],
) -> (Vec<Step>, Vec<Outcome>) {
    let mut skipped: Vec<Outcome> = resolved
        .unmatched
        .iter()
        .map(|(id, why)| skip(format!("place task {id}"), why.clone()))
        .collect();
    let mut phases = Phases::default();
    if prefix != "/" {
        target_steps(plan, prefix, host, &mut phases);
    }
    for a in &plan.actions {
        sort_action(a, prefix, resolved, &mut phases);
    }
    if phases.at_root > 0 {
        skipped.push(skip(
            format!("move {} processes to /", phases.at_root),
            "processes the plan leaves at the root stay where they are".into(),
        ));
    }
    if phases.own {
        skipped.push(skip(
            format!("move process {}", own_pid()),
            "it is this cgmig process, which never moves itself".into(),
        ));
    }
    (phases.in_order(handover), skipped)
}

/// The steps of a plan sorted by when they may run: the order between the
/// groups is what keeps a live handover's window short (see
/// [`Phases::in_order`]); within a group the plan's order is kept.
#[derive(Default)]
struct Phases {
    /// Make the `--target` directory's missing ancestors.
    head: Vec<Step>,
    /// Enable the plan's root controllers on every ancestor of the target.
    above: Vec<Step>,
    /// Make the tree and place the tasks.
    place: Vec<Step>,
    /// Enable controllers, write settings, give delegated cgroups away.
    configure: Vec<Step>,
    /// Processes the plan leaves at the root (not moved, counted).
    at_root: usize,
    /// A key matched this cgmig process (never moved).
    own: bool,
}

impl Phases {
    /// Without a handover: the target, the controllers above it, the tree
    /// and tasks, the settings. Live: the v2 tree and its tasks first, then
    /// the handover, then the controller's enablement and settings, so the
    /// time without limits stays short.
    fn in_order(self, handover: &[Spec]) -> Vec<Step> {
        let mut steps = self.head;
        if handover.is_empty() {
            steps.extend(self.above);
            steps.extend(self.place);
        } else {
            steps.extend(self.place);
            for s in handover {
                steps.extend(handover::steps(s));
            }
            steps.extend(self.above);
        }
        steps.extend(self.configure);
        steps
    }
}

/// A `--target` below the mount: make its missing ancestors, and enable the
/// plan's root controllers on each of them down to it (v2 only lets a
/// cgroup enable what its parent enabled).
fn target_steps(plan: &Plan, prefix: &str, host: &dyn Host, phases: &mut Phases) {
    let mut chain: Vec<&str> = Vec::new();
    let mut p = Some(prefix);
    while let Some(q) = p {
        chain.push(q);
        p = crate::model::path::parent(q);
    }
    chain.reverse(); // "/", …, prefix
    for q in chain.iter().skip(1) {
        if !host.exists(q) {
            phases.head.push(Step::MkdirTarget { path: q.to_string() });
        }
    }
    let ctrls = plan
        .node("/")
        .map(|n| n.subtree_control.clone())
        .unwrap_or_default();
    if !ctrls.is_empty() {
        for q in &chain[..chain.len() - 1] {
            phases.above.push(Step::EnableAbove {
                path: q.to_string(),
                controllers: ctrls.clone(),
            });
        }
    }
}

/// One plan action as steps on the mount, in its group: tasks are mapped to
/// the live processes and threads they resolved to (a task that did not
/// resolve is left out; it is listed as skipped already).
fn sort_action(a: &Action, prefix: &str, resolved: &Resolved, phases: &mut Phases) {
    let path = on_mount(prefix, a.path());
    match a {
        Action::Create { path: p } if p == "/" => {}
        Action::Create { .. } | Action::SetType { .. } => phases.place.push(mapped(a, prefix)),
        Action::MoveProcess { pid, path: p } => {
            if p == "/" {
                phases.at_root += 1;
                return;
            }
            // Only what the key matched (an unmatched one is listed as
            // skipped already); never this process itself.
            for live in resolved.pids.get(pid).into_iter().flatten() {
                if *live == own_pid() {
                    phases.own = true;
                    continue;
                }
                phases.place.push(Step::Action(Action::MoveProcess {
                    pid: *live,
                    path: path.clone(),
                }));
            }
        }
        Action::MoveThread { tid, pid, .. } => {
            let live_pid = resolved.pids.get(pid).and_then(|v| v.first().copied());
            if let (Some(p), Some(t)) = (live_pid, resolved.tids.get(tid))
                && p != own_pid()
            {
                phases.place.push(Step::Action(Action::MoveThread {
                    tid: *t,
                    pid: p,
                    path,
                }));
            }
        }
        Action::EnableControllers { .. } | Action::Write { .. } | Action::Chown { .. } => {
            phases.configure.push(mapped(a, prefix));
        }
    }
}

/// This process (never moved by itself, whatever a plan or journal says).
pub fn own_pid() -> Pid {
    Pid::new(std::process::id())
}

fn skip(label: String, why: String) -> Outcome {
    Outcome {
        seq: None,
        label,
        status: Status::Skipped,
        note: Some(why),
    }
}

/// A check made right before a step acts (resume: the journal's PIDs must
/// still name processes the plan places there). `Err` skips the step with
/// the reason.
pub type Guard<'a> = Box<dyn Fn(&Step) -> Result<(), String> + 'a>;

/// Runs steps against a host, journaling each.
pub struct Runner<'a> {
    /// The cgroup2 mount (kernel or simulator).
    pub host: &'a mut dyn Host,
    /// Where records go (`None`: dry run).
    pub journal: Option<Writer>,
    /// Test hook: SIGKILL this process at the N-th journal boundary.
    pub kill_after: Option<usize>,
    boundaries: usize,
    /// Progress bar (terminal, many steps).
    pub progress: Option<indicatif::ProgressBar>,
    /// Handover window: tasks to the v1 root …
    pub window_start: Option<Instant>,
    /// … to the last v2 setting written.
    pub window_end: Option<Instant>,
    /// Run handover steps (false in a dry run: they touch the real v1 hierarchies).
    pub live: bool,
    /// Checked before each step acts.
    pub guard: Option<Guard<'a>>,
    /// Cgroups this run (or the run it resumes) created: a value written
    /// there replaces nothing worth keeping, so none is read first.
    created: BTreeSet<String>,
}

impl std::fmt::Debug for Runner<'_> {
    /// The host is a trait object (kernel or simulator): named, not printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("journal", &self.journal.is_some())
            .field("kill_after", &self.kill_after)
            .field("boundaries", &self.boundaries)
            .finish_non_exhaustive()
    }
}

/// How a run ended: every step's outcome, and where it stopped.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// One per step run or found done (in step order).
    pub outcomes: Vec<Outcome>,
    /// The step that failed and stopped the apply (not in a dry run).
    pub stopped_at: Option<usize>,
}

impl<'a> Runner<'a> {
    /// A runner; `CGMIG_TEST_KILL_AFTER=N` arms the crash-test hook.
    pub fn new(host: &'a mut dyn Host, journal: Option<Writer>, live: bool) -> Runner<'a> {
        Runner {
            host,
            journal,
            kill_after: std::env::var("CGMIG_TEST_KILL_AFTER")
                .ok()
                .and_then(|v| v.parse().ok()),
            boundaries: 0,
            progress: None,
            window_start: None,
            window_end: None,
            live,
            guard: None,
            created: BTreeSet::new(),
        }
    }

    /// Whether this is a dry run (no journal: nothing real is changed).
    fn dry(&self) -> bool {
        self.journal.is_none()
    }

    /// Append a record: an intent is written before its step acts; an
    /// outcome goes out with the next intent (or at the end).
    fn record(&mut self, rec: &Record) -> Result<(), ApplyError> {
        if let Some(j) = &mut self.journal {
            match rec {
                Record::Intent { .. } => j.append(rec)?,
                _ => j.append_later(rec)?,
            }
        }
        self.boundary();
        Ok(())
    }

    /// Crash-test hook: die the hard way at the chosen boundary (what the
    /// journal has in the page cache by then is what a kill leaves).
    fn boundary(&mut self) {
        self.boundaries += 1;
        if self.kill_after == Some(self.boundaries) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGKILL);
        }
    }

    /// Run `steps`, skipping those the journal already finished (a step it
    /// records as failed runs again: whatever failed may be fixed now).
    /// A real run stops at the first step that fails; a dry run goes on.
    pub fn run(&mut self, steps: &[Step], prior: Option<&Journal>) -> Result<RunResult, ApplyError> {
        if let Some(j) = prior {
            self.created
                .extend(created_paths(j).into_iter().map(str::to_string));
        }
        let mut out = Vec::with_capacity(steps.len());
        let mut stopped_at = None;
        for (seq, step) in steps.iter().enumerate() {
            if let Some(p) = &self.progress {
                p.set_position(seq as u64);
            }
            if let Some(Ok(note)) = prior.and_then(|j| j.outcomes.get(&seq)) {
                out.push(finished(seq, step, Ok(note.clone()), true, false));
                continue;
            }
            let failed = self.run_one(seq, step, prior, &mut out)?;
            if failed && !self.dry() {
                stopped_at = Some(seq);
                break;
            }
        }
        if let Some(j) = &mut self.journal {
            j.sync()?;
        }
        if let Some(p) = &self.progress {
            p.finish_and_clear();
        }
        Ok(RunResult {
            outcomes: out,
            stopped_at,
        })
    }

    /// One step: its intent (or the one a killed run left), the guard, the
    /// action, its outcome. Returns whether it failed.
    fn run_one(
        &mut self,
        seq: usize,
        step: &Step,
        prior: Option<&Journal>,
        out: &mut Vec<Outcome>,
    ) -> Result<bool, ApplyError> {
        let before = match prior.and_then(|j| j.intents.get(&seq)) {
            Some((_, b)) => b.clone(),
            None => {
                let b = self.capture(step);
                self.record(&Record::Intent {
                    seq,
                    step: step.clone(),
                    before: b.clone(),
                })?;
                b
            }
        };
        if let (Step::MkdirTarget { path } | Step::Action(Action::Create { path }), Some(false)) =
            (step, before.existed)
        {
            self.created.insert(path.clone());
        }
        if let Some(why) = self.guard.as_ref().and_then(|g| g(step).err()) {
            let note = format!("not run: {why}");
            self.record(&Record::Done {
                seq,
                note: Some(note.clone()),
            })?;
            out.push(Outcome {
                seq: Some(seq),
                label: step.label(),
                status: Status::Skipped,
                note: Some(note),
            });
            return Ok(false);
        }
        if matches!(step, Step::Evacuate { .. }) && self.window_start.is_none() {
            self.window_start = Some(Instant::now());
        }
        let result = self.perform(step, &before);
        if matches!(
            step,
            Step::Action(Action::Write { .. } | Action::EnableControllers { .. })
        ) && self.window_start.is_some()
        {
            self.window_end = Some(Instant::now());
        }
        self.boundary();
        match &result {
            Ok(note) => self.record(&Record::Done {
                seq,
                note: note.clone(),
            })?,
            Err(e) => self.record(&Record::Failed {
                seq,
                error: e.0.clone(),
            })?,
        }
        let failed = result.is_err();
        let dry = self.dry();
        out.push(finished(seq, step, result, false, dry));
        Ok(failed)
    }

    /// The handover window in ms, when one was measured in this run.
    pub fn window_ms(&self) -> Option<f64> {
        Some(self.window_end?.duration_since(self.window_start?).as_secs_f64() * 1000.0)
    }

    fn capture(&self, step: &Step) -> Before {
        let h = &*self.host;
        let mut b = Before::default();
        let fresh = |path: &str| self.created.contains(path);
        match step {
            Step::MkdirTarget { path } | Step::Action(Action::Create { path }) => {
                b.existed = Some(h.exists(path));
            }
            // In a cgroup this run created there is nothing to keep: no read.
            Step::EnableAbove { path, .. }
            | Step::Action(
                Action::EnableControllers { path, .. }
                | Action::SetType { path, .. }
                | Action::Write { path, .. }
                | Action::Chown { path, .. },
            ) if fresh(path) => {}
            Step::EnableAbove { path, .. } | Step::Action(Action::EnableControllers { path, .. }) => {
                b.value = h.read(path, "cgroup.subtree_control").ok();
            }
            Step::Action(Action::SetType { path, .. }) => b.value = h.read(path, "cgroup.type").ok(),
            Step::Action(Action::MoveProcess { pid, .. }) => {
                b.cgroup = h.cgroup_of_task(*pid, pid.main_thread()).ok();
            }
            Step::Action(Action::MoveThread { tid, pid, .. }) => b.cgroup = h.cgroup_of_task(*pid, *tid).ok(),
            Step::Action(Action::Write { path, file, .. }) => b.value = h.read(path, file).ok(),
            Step::Action(Action::Chown { path, files, .. }) => b.owners = owners_of(h, path, files),
            _ if self.live => b = handover::capture(step),
            _ => {}
        }
        b
    }

    fn perform(&mut self, step: &Step, before: &Before) -> StepResult {
        let h = &mut *self.host;
        match step {
            Step::MkdirTarget { path } | Step::Action(Action::Create { path }) => create(h, path),
            Step::EnableAbove { path, controllers }
            | Step::Action(Action::EnableControllers { path, controllers }) => enable(h, path, controllers),
            Step::Action(Action::SetType { path, value }) => write_verified(h, path, "cgroup.type", value),
            Step::Action(Action::Write { path, file, value }) => write_verified(h, path, file, value),
            Step::Action(Action::MoveProcess { pid, path }) => move_process(h, *pid, path, before),
            Step::Action(Action::MoveThread { tid, pid, path }) => move_thread(h, *pid, *tid, path),
            Step::Action(Action::Chown {
                path,
                uid,
                gid,
                files,
                ..
            }) => chown(h, path, *uid, *gid, files),
            _ if self.live => handover::perform(step, before, h).map_err(|e| StepFailure(e.to_string())),
            _ => Ok(Some(
                "not simulated: the handover runs only with --live on the kernel (the dry run offers the controllers instead)".into(),
            )),
        }
    }
}

/// Who owns a cgroup directory and its delegation files.
fn owners_of(h: &dyn Host, path: &str, files: &[String]) -> Vec<OwnedFile> {
    let mut o: Vec<OwnedFile> = Vec::new();
    if let Some(owner) = h.owner(path, None) {
        o.push(OwnedFile::new("", owner));
    }
    for f in files {
        if let Some(owner) = h.owner(path, Some(f)) {
            o.push(OwnedFile::new(f, owner));
        }
    }
    o
}

/// The cgroups a journaled run created (their `create` found nothing there).
fn created_paths(j: &Journal) -> BTreeSet<&str> {
    j.intents
        .values()
        .filter_map(|(s, b)| match s {
            Step::MkdirTarget { path } | Step::Action(Action::Create { path })
                if b.existed == Some(false) =>
            {
                Some(path.as_str())
            }
            _ => None,
        })
        .collect()
}

fn finished(seq: usize, step: &Step, r: StepResult, earlier: bool, dry: bool) -> Outcome {
    let (status, note) = match (r, dry) {
        (Ok(n), false) => (Status::Done, n),
        (Ok(n), true) => (Status::WouldDo, n),
        (Err(e), false) => (Status::Failed, Some(e.0)),
        (Err(e), true) => (Status::WouldFail, Some(e.0)),
    };
    // A guard's or the dry run's "not run" is no step done.
    let status = match (&note, status) {
        (Some(n), Status::Done | Status::WouldDo)
            if n.starts_with("not run:") || n.starts_with("not simulated:") =>
        {
            Status::Skipped
        }
        _ => status,
    };
    let note = if earlier {
        Some(match note {
            Some(n) => format!("{n} (earlier run)"),
            None => "earlier run".into(),
        })
    } else {
        note
    };
    Outcome {
        seq: Some(seq),
        label: step.label(),
        status,
        note,
    }
}

/// `mkdir`: its success is the kernel saying the cgroup is there; an
/// existing one counts as done (what was there before is in the intent).
fn create(h: &mut dyn Host, path: &str) -> StepResult {
    match h.mkdir(path) {
        Ok(()) => Ok(None),
        Err(super::TargetError {
            errno: Errno::EEXIST, ..
        }) => Ok(Some("already there".into())),
        Err(e) => fail(format!("mkdir {e}")),
    }
}

fn enable(h: &mut dyn Host, path: &str, ctrls: &[String]) -> StepResult {
    // Implicit controllers (perf_event) are on everywhere; `+perf_event` is EINVAL.
    let value: Vec<String> = ctrls
        .iter()
        .filter(|c| !handover::is_implicit(c))
        .map(|c| format!("+{c}"))
        .collect();
    if value.is_empty() {
        return Ok(Some("implicit on cgroup2: nothing to enable".into()));
    }
    write_verified(h, path, "cgroup.subtree_control", &value.join(" "))
}

fn write_verified(h: &mut dyn Host, path: &str, file: &str, value: &str) -> StepResult {
    let got = h
        .write_read(path, file, value)
        .map_err(|e| format!("write {value:?}: {e}"))?;
    if same(file, value, &got) {
        Ok(None)
    } else {
        fail(format!(
            "{path}/{file}: wrote {value:?}, reads back {:?}",
            got.trim()
        ))
    }
}

fn move_process(h: &mut dyn Host, pid: Pid, path: &str, before: &Before) -> StepResult {
    match h.write(path, "cgroup.procs", &pid.to_string()) {
        Ok(()) => {}
        Err(e) if e.errno == Errno::ESRCH => return Ok(Some(format!("process {pid} has exited"))),
        Err(e) => return fail(format!("move process {pid}: {e}")),
    }
    match h.cgroup_of_task(pid, pid.main_thread()) {
        Ok(now) if now == path => {}
        Ok(now) => return fail(format!("process {pid} is in {now} after the move, not {path}")),
        Err(Errno::ESRCH) => return Ok(Some(format!("process {pid} exited after the move"))),
        Err(e) => return fail(format!("cannot verify process {pid}: {e}")),
    }
    // A child forked while the move ran may have landed in the old cgroup.
    let mut forked = Vec::new();
    if let Some(src) = before.cgroup.as_deref().filter(|s| *s != path) {
        for q in left_behind(h, pid, src) {
            if h.write(path, "cgroup.procs", &q.to_string()).is_ok() {
                forked.push(q.to_string());
            }
        }
    }
    Ok((!forked.is_empty())
        .then(|| format!("also moved children forked during the move: {}", forked.join(" "))))
}

/// Children of `pid` still in `src`: from the kernel's list of its children
/// (a few reads), or else by reading every process of `src` and its parent
/// (a cgroup with thousands of processes made each move cost thousands of
/// reads: docs/performance.md).
fn left_behind(h: &dyn Host, pid: Pid, src: &str) -> Vec<Pid> {
    match h.child_pids(pid) {
        Some(kids) => kids
            .into_iter()
            .filter(|k| h.cgroup_of_task(*k, k.main_thread()).is_ok_and(|c| c == src))
            .collect(),
        None => h
            .read(src, "cgroup.procs")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse::<Pid>().ok())
            .filter(|q| h.parent_pid(*q) == Some(pid))
            .collect(),
    }
}

fn move_thread(h: &mut dyn Host, pid: Pid, tid: Tid, path: &str) -> StepResult {
    match h.write(path, "cgroup.threads", &tid.to_string()) {
        Ok(()) => {}
        Err(e) if e.errno == Errno::ESRCH => return Ok(Some(format!("thread {tid} has exited"))),
        Err(e) => return fail(format!("move thread {tid}: {e}")),
    }
    match h.cgroup_of_task(pid, tid) {
        Ok(now) if now == path => Ok(None),
        Ok(now) => fail(format!("thread {tid} is in {now} after the move, not {path}")),
        Err(Errno::ESRCH) => Ok(Some(format!("thread {tid} exited after the move"))),
        Err(e) => fail(format!("cannot verify thread {tid}: {e}")),
    }
}

fn chown(h: &mut dyn Host, path: &str, uid: u32, gid: u32, files: &[String]) -> StepResult {
    let mut targets: Vec<Option<&str>> = vec![None];
    targets.extend(files.iter().map(|f| Some(f.as_str())));
    for f in targets {
        h.chown(path, f, uid, gid).map_err(|e| format!("chown {e}"))?;
        if let Some(o) = h.owner(path, f)
            && o != UidGid::new(uid, gid)
        {
            return fail(format!("{path}: owner is {}:{} after chown", o.uid, o.gid));
        }
    }
    Ok(None)
}

/// Undo a journal in reverse order, appending `undone`/`undo-failed` records.
///
/// The journal was checked when read (every step inside its scope); here
/// each undo first looks at the mount: it acts only where the step's effect
/// is still there (see [`undo`]).
pub fn rollback(
    host: &mut dyn Host,
    j: &Journal,
    mut w: Option<&mut Writer>,
) -> Result<Vec<Outcome>, ApplyError> {
    let created = created_paths(j);
    let moved: BTreeSet<Pid> = j
        .intents
        .values()
        .filter_map(|(s, _)| match s {
            Step::Action(Action::MoveProcess { pid, .. }) => Some(*pid),
            _ => None,
        })
        .collect();
    let mut out = Vec::new();
    let seqs: Vec<usize> = j.intents.keys().rev().copied().collect();
    for seq in seqs {
        let (step, before) = &j.intents[&seq];
        if matches!(j.undone.get(&seq), Some(Ok(_))) {
            continue;
        }
        let r = undo(host, step, before, &created, &moved);
        // Every undo is idempotent (gone is gone, back is back), so a lost
        // record only means that undo runs again: one sync at the end.
        if let Some(w) = w.as_deref_mut() {
            match &r {
                Ok(note) => w.append(&Record::Undone {
                    seq,
                    note: note.clone(),
                })?,
                Err(e) => w.append(&Record::UndoFailed {
                    seq,
                    error: e.0.clone(),
                })?,
            }
        }
        out.push(finished(seq, step, r, false, false));
    }
    if let Some(w) = w {
        w.sync()?;
    }
    Ok(out)
}

/// Undo one step, if its effect is there to undo: a cgroup this apply
/// created, a controller it enabled that is still on, a value that still
/// reads as it wrote, a task still where it put it, an owner still the one
/// it set. Anything else is left as it is, with the reason.
fn undo(
    h: &mut dyn Host,
    step: &Step,
    before: &Before,
    created: &BTreeSet<&str>,
    moved: &BTreeSet<Pid>,
) -> StepResult {
    match step {
        Step::MkdirTarget { path } | Step::Action(Action::Create { path }) => undo_create(h, path, before),
        Step::EnableAbove { path, controllers }
        | Step::Action(Action::EnableControllers { path, controllers }) => {
            undo_enable(h, path, controllers, before)
        }
        Step::Action(Action::SetType { .. }) => Ok(Some(
            "cgroup.type is one-way; the cgroup goes with its rmdir".into(),
        )),
        Step::Action(Action::Write { path, file, value }) => {
            if created.contains(path.as_str()) {
                return Ok(Some("cgroup created by this apply".into()));
            }
            undo_write(h, path, file, value, before)
        }
        Step::Action(Action::MoveProcess { pid, path }) => {
            undo_move(h, *pid, pid.main_thread(), path, "cgroup.procs", before)
        }
        Step::Action(Action::MoveThread { tid, pid, path }) => {
            if moved.contains(pid) {
                return Ok(Some(format!("goes back with process {pid}")));
            }
            undo_move(h, *pid, *tid, path, "cgroup.threads", before)
        }
        Step::Action(Action::Chown {
            path,
            uid,
            gid,
            files,
        }) => {
            if created.contains(path.as_str()) {
                return Ok(Some("cgroup created by this apply".into()));
            }
            undo_chown(h, path, UidGid::new(*uid, *gid), files, before)
        }
        _ => handover::undo(step, before, h).map_err(|e| StepFailure(e.to_string())),
    }
}

fn undo_create(h: &mut dyn Host, path: &str, before: &Before) -> StepResult {
    if before.existed != Some(false) {
        return Ok(Some("was there before: kept".into()));
    }
    match h.rmdir(path) {
        Ok(()) => Ok(None),
        Err(e) if e.errno == Errno::ENOENT => Ok(Some("already gone".into())),
        Err(e) => fail(format!(
            "rmdir {e} (not empty: tasks or cgroups that this apply did not put there)"
        )),
    }
}

/// Disabled even in cgroups this apply created: reverse order makes it
/// bottom-up, which the parents' `-controller` needs. Only controllers
/// that were off before and are on now.
fn undo_enable(h: &mut dyn Host, path: &str, controllers: &[String], before: &Before) -> StepResult {
    if !h.exists(path) {
        return Ok(None);
    }
    let had: BTreeSet<&str> = before.value.as_deref().unwrap_or("").split_whitespace().collect();
    let now = h.read(path, "cgroup.subtree_control").unwrap_or_default();
    let on: BTreeSet<&str> = now.split_whitespace().collect();
    let off: Vec<String> = controllers
        .iter()
        .filter(|c| !had.contains(c.as_str()) && on.contains(c.as_str()) && !handover::is_implicit(c))
        .map(|c| format!("-{c}"))
        .collect();
    if off.is_empty() {
        return Ok(None);
    }
    h.write(path, "cgroup.subtree_control", &off.join(" "))
        .map_err(|e| format!("write {off:?}: {e}"))?;
    Ok(None)
}

fn undo_write(h: &mut dyn Host, path: &str, file: &str, value: &str, before: &Before) -> StepResult {
    let Some(old) = &before.value else {
        return Ok(Some("no old value recorded".into()));
    };
    match h.read(path, file) {
        Ok(now) if same(file, value, &now) => {}
        Ok(_) => {
            return Ok(Some(format!(
                "{path}/{file} changed since the apply wrote {value:?}: left as it is"
            )));
        }
        Err(e) if e.errno == Errno::ENOENT => return Ok(Some("already gone".into())),
        Err(e) => return fail(format!("read {e}")),
    }
    for line in old.lines().filter(|l| !l.trim().is_empty()) {
        h.write(path, file, line)
            .map_err(|e| format!("restore {line:?}: {e}"))?;
    }
    Ok(None)
}

/// A task back to its old cgroup, if it is still where the apply put it
/// (never this process).
fn undo_move(h: &mut dyn Host, pid: Pid, tid: Tid, path: &str, file: &str, before: &Before) -> StepResult {
    if pid == own_pid() {
        return Ok(Some("this cgmig process: not moved".into()));
    }
    let what = if file == "cgroup.procs" {
        format!("process {pid}")
    } else {
        format!("thread {tid}")
    };
    let Some(old) = &before.cgroup else {
        return Ok(Some(format!("old cgroup of {what} unknown (it had exited)")));
    };
    match h.cgroup_of_task(pid, tid) {
        Ok(now) if now == path => {}
        Ok(now) => {
            return Ok(Some(format!(
                "{what} is in {now}, not where this apply put it ({path}): left alone"
            )));
        }
        Err(Errno::ESRCH) => return Ok(Some(format!("{what} has exited"))),
        Err(e) => return fail(format!("cannot see where {what} is: {e}")),
    }
    let id = if file == "cgroup.procs" {
        pid.to_string()
    } else {
        tid.to_string()
    };
    match h.write(old, file, &id) {
        Ok(()) => Ok(None),
        Err(e) if e.errno == Errno::ESRCH => Ok(Some(format!("{what} has exited"))),
        Err(e) => fail(format!("move {what} back: {e}")),
    }
}

fn undo_chown(h: &mut dyn Host, path: &str, set: UidGid, files: &[String], before: &Before) -> StepResult {
    if let Some(now) = h.owner(path, None)
        && now != set
    {
        return Ok(Some(format!(
            "{path} is owned by {}:{} now, not {}:{} as this apply set: left as it is",
            now.uid, now.gid, set.uid, set.gid
        )));
    }
    for OwnedFile {
        file: f,
        owner: UidGid { uid: u, gid: g },
    } in &before.owners
    {
        let f = (!f.is_empty() && f != ".").then_some(f.as_str());
        if f.is_some_and(|f| !files.iter().any(|x| x == f)) {
            continue;
        }
        h.chown(path, f, *u, *g).map_err(|e| format!("chown back {e}"))?;
    }
    Ok(None)
}

/// Controllers the result enabled, per path (for reports).
pub fn summary_counts(outcomes: &[Outcome]) -> BTreeMap<&'static str, usize> {
    let mut m = BTreeMap::new();
    for o in outcomes {
        let k = match o.status {
            Status::Done => "done",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
            Status::WouldDo => "would do",
            Status::WouldFail => "would fail",
        };
        *m.entry(k).or_insert(0) += 1;
    }
    m
}
