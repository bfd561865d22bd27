//! The executor: turns a plan into steps, runs them one by one with the
//! journal around each, verifies every change by reading it back, and undoes
//! a journal in reverse.
//!
//! Each step is: capture what is there (`Before`), journal the intent
//! (synced), act, verify, journal the outcome (synced). A step whose intent
//! is journaled but has no outcome is simply run again on resume: every
//! step is idempotent (mkdir of an existing cgroup, a write of the same
//! value, a move to where the task already is all count as done).

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
    /// Not attempted (dry run of a handover step, unmatched process, …).
    Skipped,
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
        Action::Create { .. } => phases.place.push(Step::Action(Action::Create { path })),
        Action::SetType { value, .. } => phases.place.push(Step::Action(Action::SetType {
            path,
            value: value.clone(),
        })),
        Action::MoveProcess { pid, path: p } => {
            if p == "/" {
                phases.at_root += 1;
                return;
            }
            for live in resolved.pids.get(pid).cloned().unwrap_or_else(|| vec![*pid]) {
                phases.place.push(Step::Action(Action::MoveProcess {
                    pid: live,
                    path: path.clone(),
                }));
            }
        }
        Action::MoveThread { tid, pid, .. } => {
            let live_pid = resolved.pids.get(pid).and_then(|v| v.first().copied());
            match (live_pid, resolved.tids.get(tid)) {
                (Some(p), Some(t)) => phases.place.push(Step::Action(Action::MoveThread {
                    tid: *t,
                    pid: p,
                    path,
                })),
                _ if resolved.tids.is_empty() && resolved.pids.is_empty() => {
                    phases.place.push(Step::Action(Action::MoveThread {
                        tid: *tid,
                        pid: *pid,
                        path,
                    }));
                }
                _ => {}
            }
        }
        Action::EnableControllers { controllers, .. } => {
            phases.configure.push(Step::Action(Action::EnableControllers {
                path,
                controllers: controllers.clone(),
            }));
        }
        Action::Write { file, value, .. } => phases.configure.push(Step::Action(Action::Write {
            path,
            file: file.clone(),
            value: value.clone(),
        })),
        Action::Chown { uid, gid, files, .. } => phases.configure.push(Step::Action(Action::Chown {
            path,
            uid: *uid,
            gid: *gid,
            files: files.clone(),
        })),
    }
}

fn skip(label: String, why: String) -> Outcome {
    Outcome {
        seq: None,
        label,
        status: Status::Skipped,
        note: Some(why),
    }
}

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
        }
    }

    /// Append a record. An intent is synced at once (write-ahead); an
    /// outcome is synced with the next intent, or at the end: nothing changes
    /// in between, so each step is still durable before and after it, at
    /// half the `fsync`s (they dominate an apply's time: docs/performance.md).
    fn record(&mut self, rec: &Record) -> Result<(), ApplyError> {
        if let Some(j) = &mut self.journal {
            match rec {
                Record::Intent { .. } => j.append(rec)?,
                _ => j.append_unsynced(rec)?,
            }
        }
        self.boundary();
        Ok(())
    }

    /// Crash-test hook: die the hard way at the chosen boundary.
    fn boundary(&mut self) {
        self.boundaries += 1;
        if self.kill_after == Some(self.boundaries) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGKILL);
        }
    }

    /// Run `steps`, skipping those the journal already finished.
    pub fn run(&mut self, steps: &[Step], prior: Option<&Journal>) -> Result<Vec<Outcome>, ApplyError> {
        let mut out = Vec::with_capacity(steps.len());
        for (seq, step) in steps.iter().enumerate() {
            if let Some(p) = &self.progress {
                p.set_position(seq as u64);
            }
            if let Some(o) = prior.and_then(|j| j.outcomes.get(&seq)) {
                out.push(finished(seq, step, o.clone(), true));
                continue;
            }
            let before = match prior.and_then(|j| j.intents.get(&seq)) {
                Some((_, b)) => {
                    self.sync()?;
                    b.clone()
                }
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
            out.push(finished(seq, step, result, false));
        }
        self.sync()?;
        if let Some(p) = &self.progress {
            p.finish_and_clear();
        }
        Ok(out)
    }

    fn sync(&mut self) -> Result<(), ApplyError> {
        match &mut self.journal {
            Some(j) => j.sync(),
            None => Ok(()),
        }
    }

    /// The handover window in ms, when one was measured in this run.
    pub fn window_ms(&self) -> Option<f64> {
        Some(self.window_end?.duration_since(self.window_start?).as_secs_f64() * 1000.0)
    }

    fn capture(&self, step: &Step) -> Before {
        let h = &*self.host;
        let mut b = Before::default();
        match step {
            Step::MkdirTarget { path } | Step::Action(Action::Create { path }) => {
                b.existed = Some(h.exists(path));
            }
            Step::EnableAbove { path, .. } | Step::Action(Action::EnableControllers { path, .. }) => {
                b.value = h.read(path, "cgroup.subtree_control").ok();
            }
            Step::Action(Action::SetType { path, .. }) => b.value = h.read(path, "cgroup.type").ok(),
            Step::Action(Action::MoveProcess { pid, .. }) => {
                b.cgroup = h.cgroup_of_task(*pid, pid.main_thread()).ok();
            }
            Step::Action(Action::MoveThread { tid, pid, .. }) => b.cgroup = h.cgroup_of_task(*pid, *tid).ok(),
            Step::Action(Action::Write { path, file, .. }) => b.value = h.read(path, file).ok(),
            Step::Action(Action::Chown { path, files, .. }) => {
                let mut o: Vec<OwnedFile> = Vec::new();
                if let Some(owner) = h.owner(path, None) {
                    o.push(OwnedFile::new("", owner));
                }
                for f in files {
                    if let Some(owner) = h.owner(path, Some(f)) {
                        o.push(OwnedFile::new(f, owner));
                    }
                }
                b.owners = o;
            }
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
                "not run: the live handover runs only with --live on the kernel".into(),
            )),
        }
    }
}

fn finished(seq: usize, step: &Step, r: StepResult, earlier: bool) -> Outcome {
    let (status, note) = match r {
        Ok(n) => (Status::Done, n),
        Err(e) => (Status::Failed, Some(e.0)),
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

fn create(h: &mut dyn Host, path: &str) -> StepResult {
    if h.exists(path) {
        return Ok(Some("already there".into()));
    }
    match h.mkdir(path) {
        Ok(())
        | Err(super::TargetError {
            errno: Errno::EEXIST, ..
        }) => {}
        Err(e) => return fail(format!("mkdir {e}")),
    }
    if h.exists(path) {
        Ok(None)
    } else {
        fail(format!("{path}: mkdir succeeded but the cgroup is not there"))
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
    h.write(path, file, value)
        .map_err(|e| format!("write {value:?}: {e}"))?;
    let got = h.read(path, file).map_err(|e| format!("read back: {e}"))?;
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
    if let Some(src) = before.cgroup.as_deref().filter(|s| *s != path)
        && let Ok(procs) = h.read(src, "cgroup.procs")
    {
        for q in procs.lines().filter_map(|l| l.trim().parse::<Pid>().ok()) {
            if h.parent_pid(q) == Some(pid) && h.write(path, "cgroup.procs", &q.to_string()).is_ok() {
                forked.push(q.to_string());
            }
        }
    }
    Ok((!forked.is_empty())
        .then(|| format!("also moved children forked during the move: {}", forked.join(" "))))
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
pub fn rollback(
    host: &mut dyn Host,
    j: &Journal,
    mut w: Option<&mut Writer>,
) -> Result<Vec<Outcome>, ApplyError> {
    let created: BTreeSet<&str> = j
        .intents
        .values()
        .filter_map(|(s, b)| match s {
            Step::MkdirTarget { path } | Step::Action(Action::Create { path })
                if b.existed == Some(false) =>
            {
                Some(path.as_str())
            }
            _ => None,
        })
        .collect();
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
                Ok(note) => w.append_unsynced(&Record::Undone {
                    seq,
                    note: note.clone(),
                })?,
                Err(e) => w.append_unsynced(&Record::UndoFailed {
                    seq,
                    error: e.0.clone(),
                })?,
            }
        }
        out.push(finished(seq, step, r, false));
    }
    if let Some(w) = w {
        w.sync()?;
    }
    Ok(out)
}

fn undo(
    h: &mut dyn Host,
    step: &Step,
    before: &Before,
    created: &BTreeSet<&str>,
    moved: &BTreeSet<Pid>,
) -> StepResult {
    match step {
        Step::MkdirTarget { path } | Step::Action(Action::Create { path }) => {
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
        Step::EnableAbove { path, controllers }
        | Step::Action(Action::EnableControllers { path, controllers }) => {
            // Disabled even in cgroups this apply created: reverse order makes
            // it bottom-up, which the parents' `-controller` needs.
            let had: BTreeSet<&str> = before.value.as_deref().unwrap_or("").split_whitespace().collect();
            let off: Vec<String> = controllers
                .iter()
                .filter(|c| !had.contains(c.as_str()) && !handover::is_implicit(c))
                .map(|c| format!("-{c}"))
                .collect();
            if off.is_empty() || !h.exists(path) {
                return Ok(None);
            }
            h.write(path, "cgroup.subtree_control", &off.join(" "))
                .map_err(|e| format!("write {off:?}: {e}"))?;
            Ok(None)
        }
        Step::Action(Action::SetType { .. }) => Ok(Some(
            "cgroup.type is one-way; the cgroup goes with its rmdir".into(),
        )),
        Step::Action(Action::Write { path, file, .. }) => {
            if created.contains(path.as_str()) {
                return Ok(Some("cgroup created by this apply".into()));
            }
            let Some(old) = &before.value else {
                return Ok(Some("no old value recorded".into()));
            };
            for line in old.lines().filter(|l| !l.trim().is_empty()) {
                h.write(path, file, line)
                    .map_err(|e| format!("restore {line:?}: {e}"))?;
            }
            Ok(None)
        }
        Step::Action(Action::MoveProcess { pid, .. }) => match &before.cgroup {
            Some(old) => match h.write(old, "cgroup.procs", &pid.to_string()) {
                Ok(()) => Ok(None),
                Err(e) if e.errno == Errno::ESRCH => Ok(Some(format!("process {pid} has exited"))),
                Err(e) => fail(format!("move process {pid} back: {e}")),
            },
            None => Ok(Some("old cgroup unknown (process had exited)".into())),
        },
        Step::Action(Action::MoveThread { tid, pid, .. }) => {
            if moved.contains(pid) {
                return Ok(Some(format!("goes back with process {pid}")));
            }
            match &before.cgroup {
                Some(old) => match h.write(old, "cgroup.threads", &tid.to_string()) {
                    Ok(()) => Ok(None),
                    Err(e) if e.errno == Errno::ESRCH => Ok(Some(format!("thread {tid} has exited"))),
                    Err(e) => fail(format!("move thread {tid} back: {e}")),
                },
                None => Ok(None),
            }
        }
        Step::Action(Action::Chown { path, .. }) => {
            if created.contains(path.as_str()) {
                return Ok(Some("cgroup created by this apply".into()));
            }
            for OwnedFile {
                file: f,
                owner: UidGid { uid: u, gid: g },
            } in &before.owners
            {
                let f = (!f.is_empty()).then_some(f.as_str());
                h.chown(path, f, *u, *g).map_err(|e| format!("chown back {e}"))?;
            }
            Ok(None)
        }
        _ => handover::undo(step, before, h).map_err(|e| StepFailure(e.to_string())),
    }
}

/// Controllers the result enabled, per path (for reports).
pub fn summary_counts(outcomes: &[Outcome]) -> BTreeMap<&'static str, usize> {
    let mut m = BTreeMap::new();
    for o in outcomes {
        let k = match o.status {
            Status::Done => "done",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
        };
        *m.entry(k).or_insert(0) += 1;
    }
    m
}
