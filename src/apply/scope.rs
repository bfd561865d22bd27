//! What a step may touch: the trust boundary between a journal (or a plan's
//! steps) and the kernel.
//!
//! A journal is untrusted data like a plan: `--resume` runs its steps and
//! `rollback` undoes them, as root. So every step a journal holds is checked
//! here when the journal is read, against the run's own scope:
//!
//! * the tree steps (create, type, moves, enables, writes, chowns) stay at
//!   or below the target's prefix on the cgroup2 mount;
//! * `mkdir-target` and `enable-above` touch only the chain from the mount's
//!   root down to the prefix (what `--target DIR` may change outside DIR);
//! * files are catalogue names ([`crate::model::files`]); `cgroup.kill` is
//!   never one, and `cgroup.procs`/`cgroup.threads` are written only by a
//!   move, with a positive task id;
//! * handover steps appear only in a `--live` run and name known
//!   controllers, normalized absolute mount points and bounded waits;
//! * what a step replaced (`before`) names only catalogue files, cgroup
//!   paths, positive task ids, real owners, and v1 mount options that cannot
//!   start a program (`release_agent=` is refused).
//!
//! Each refusal says which step, which field and which value.

use super::beneath::mount_point;
use super::step::{Before, Step, V1State};
use crate::model::Controller;
use crate::model::files::{V2_DELEGATION_FILES, is_v2_setting_target};
use crate::model::path::{cgroup_names, is_within};
use crate::plan::Action;

/// Longest wait a journal may ask for (the handover's own bound is 10 s).
pub const MAX_WAIT_MS: u64 = 60_000;

/// Where a run may act: its prefix on the cgroup2 mount, and whether it
/// hands controllers over live.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// The target's cgroup path on the mount (`/` for the whole mount).
    pub prefix: &'a str,
    /// `--live`: handover steps belong to the run.
    pub live: bool,
}

impl Scope<'_> {
    /// Whether `step` stays inside this scope; why not, naming the field.
    pub fn check(&self, step: &Step) -> Result<(), String> {
        match step {
            Step::MkdirTarget { path } => {
                cgroup_path("path", path)?;
                if path == "/" || !is_within(self.prefix, path) {
                    return Err(format!(
                        "mkdir-target {path:?} is not on the way down to the target {:?}",
                        self.prefix
                    ));
                }
                Ok(())
            }
            Step::EnableAbove { path, controllers } => {
                cgroup_path("path", path)?;
                if path == self.prefix || !is_within(self.prefix, path) {
                    return Err(format!(
                        "enable-above {path:?} is not an ancestor of the target {:?}",
                        self.prefix
                    ));
                }
                v2_controllers(controllers)
            }
            Step::Action(a) => self.action(a),
            Step::Evacuate { hierarchy, mount } | Step::RemoveV1 { hierarchy, mount } => {
                self.handover()?;
                v1_hierarchy(hierarchy)?;
                mount_point("mount", mount)
            }
            Step::Unmount { hierarchy, mounts } => {
                self.handover()?;
                v1_hierarchy(hierarchy)?;
                mounts.iter().try_for_each(|m| mount_point("mounts", m))
            }
            Step::WaitRelease {
                controller,
                timeout_ms,
            } => {
                self.handover()?;
                v1_hierarchy(controller)?;
                wait_bound(*timeout_ms)
            }
            Step::WaitV2 {
                controller,
                timeout_ms,
            } => {
                self.handover()?;
                v2_controllers(std::slice::from_ref(controller))?;
                wait_bound(*timeout_ms)
            }
        }
    }

    fn handover(&self) -> Result<(), String> {
        if self.live {
            Ok(())
        } else {
            Err("a live handover step in a run without --live".into())
        }
    }

    /// A plan action mapped onto the mount: inside the prefix, catalogue files.
    fn action(&self, a: &Action) -> Result<(), String> {
        let path = a.path();
        cgroup_path("path", path)?;
        if !is_within(path, self.prefix) {
            return Err(format!("{path:?} is outside the target {:?}", self.prefix));
        }
        let below = path != self.prefix;
        match a {
            Action::Create { .. }
            | Action::SetType { .. }
            | Action::MoveProcess { .. }
            | Action::MoveThread { .. }
                if !below =>
            {
                Err(format!(
                    "{path:?} is the target itself, which this step never touches"
                ))
            }
            Action::SetType { value, .. } if value != "threaded" => {
                Err(format!("cgroup.type {value:?}: only \"threaded\" is written"))
            }
            Action::MoveProcess { pid, .. } if pid.get() == 0 => Err("pid 0 moves the writer itself".into()),
            Action::MoveThread { tid, pid, .. } if tid.get() == 0 || pid.get() == 0 => {
                Err(format!("task ids are positive (tid {tid}, pid {pid})"))
            }
            Action::EnableControllers { controllers, .. } => v2_controllers(controllers),
            Action::Write { file, value, .. } => setting_write(file, value),
            Action::Chown { uid, gid, files, .. } => {
                owner(*uid, *gid)?;
                files.iter().try_for_each(|f| delegation_file(f))
            }
            _ => Ok(()),
        }
    }

    /// What a step replaced, as the journal recorded it: only what the
    /// step's own undo may write back.
    pub fn check_before(&self, step: &Step, b: &Before) -> Result<(), String> {
        if let Some(c) = &b.cgroup {
            cgroup_path("before.cgroup", c)?;
        }
        if let Some(v) = &b.value
            && v.contains('\0')
        {
            return Err("before.value has a NUL byte".into());
        }
        for o in &b.owners {
            if !(o.file.is_empty() || o.file == "." || V2_DELEGATION_FILES.contains(&o.file.as_str())) {
                return Err(format!("before.owners names {:?}, not a delegation file", o.file));
            }
            owner(o.owner.uid, o.owner.gid)?;
        }
        match (&b.v1, step) {
            (None, _) => Ok(()),
            (
                Some(v1),
                Step::Evacuate { hierarchy, .. }
                | Step::RemoveV1 { hierarchy, .. }
                | Step::Unmount { hierarchy, .. },
            ) => v1_state(hierarchy, v1),
            (Some(_), _) => Err("before.v1 on a step that is not a handover".into()),
        }
    }
}

fn cgroup_path(field: &str, path: &str) -> Result<(), String> {
    cgroup_names(path)
        .map(drop)
        .map_err(|e| format!("{field} {path:?}: {e}"))
}

fn v2_controllers(cs: &[String]) -> Result<(), String> {
    if cs.is_empty() {
        return Err("no controllers named".into());
    }
    match cs.iter().find(|c| Controller::v2_named(c).is_none()) {
        Some(c) => Err(format!("{c:?} is not a v2 controller")),
        None => Ok(()),
    }
}

/// `hugetlb`, `cpu,cpuacct`: known v1 controllers, comma-joined.
fn v1_hierarchy(h: &str) -> Result<(), String> {
    let known = |c: &str| {
        c.parse::<Controller>()
            .is_ok_and(|c| !matches!(c, Controller::Other(_)))
    };
    if h.is_empty() || !h.split(',').all(known) {
        return Err(format!("{h:?} is not a list of v1 controllers"));
    }
    Ok(())
}

fn wait_bound(ms: u64) -> Result<(), String> {
    if ms <= MAX_WAIT_MS {
        Ok(())
    } else {
        Err(format!("timeout_ms {ms} is longer than {MAX_WAIT_MS}"))
    }
}

fn setting_write(file: &str, value: &str) -> Result<(), String> {
    if file == "cgroup.kill" {
        return Err("cgroup.kill is never written: cgmig does not kill".into());
    }
    if matches!(file, "cgroup.procs" | "cgroup.threads") {
        return Err(format!("{file} is written only by a move, never as a setting"));
    }
    if !is_v2_setting_target(file) {
        return Err(format!("{file:?} is not a v2 setting file cgmig writes"));
    }
    if value.contains('\0') || value.contains('\n') {
        return Err(format!("the value for {file} is not one line"));
    }
    Ok(())
}

fn delegation_file(f: &str) -> Result<(), String> {
    if V2_DELEGATION_FILES.contains(&f) {
        Ok(())
    } else {
        Err(format!("{f:?} is not a delegation file"))
    }
}

fn owner(uid: u32, gid: u32) -> Result<(), String> {
    if uid == u32::MAX || gid == u32::MAX {
        Err(format!("owner {uid}:{gid}: -1 means \"unchanged\" to chown"))
    } else {
        Ok(())
    }
}

/// A v1 hierarchy as the handover recorded it: mount points and options a
/// remount may use, cgroup paths, setting files of its controllers.
fn v1_state(hierarchy: &str, v1: &V1State) -> Result<(), String> {
    for m in &v1.mounts {
        mount_point("before.v1.mounts.point", &m.point)?;
        mount_options(&m.options, &m.super_options)?;
    }
    let ctrls: Vec<&str> = hierarchy.split(',').collect();
    for c in &v1.cgroups {
        cgroup_path("before.v1.cgroups.path", &c.path)?;
        for (f, v) in &c.settings {
            if !super::handover::restorable_file(f, &ctrls, c.path == "/") {
                return Err(format!(
                    "before.v1 setting {f:?} at {} is not a {hierarchy} setting cgmig restores",
                    c.path
                ));
            }
            if v.contains('\0') {
                return Err(format!("before.v1 value of {f} at {} has a NUL byte", c.path));
            }
        }
        if let Some(t) = c.tasks.iter().find(|t| t.get() == 0) {
            return Err(format!("before.v1 task {t} at {}: task ids are positive", c.path));
        }
        for o in &c.owners {
            if !matches!(o.file.as_str(), "." | "cgroup.procs" | "tasks") {
                return Err(format!("before.v1 owners name {:?}", o.file));
            }
            owner(o.owner.uid, o.owner.gid)?;
        }
    }
    Ok(())
}

/// Mount flags and data a rollback passes to `mount(2)`: known words only,
/// and never `release_agent=` (the kernel runs that program as root).
fn mount_options(options: &str, super_options: &str) -> Result<(), String> {
    const FLAGS: &[&str] = &[
        "rw",
        "ro",
        "nosuid",
        "nodev",
        "noexec",
        "noatime",
        "relatime",
        "nodiratime",
        "strictatime",
    ];
    if let Some(o) = options.split(',').find(|o| !FLAGS.contains(o) && !o.is_empty()) {
        return Err(format!("before.v1 mount option {o:?} is not one cgmig restores"));
    }
    for o in super_options.split(',').filter(|o| !o.is_empty()) {
        let ok = matches!(
            o,
            "rw" | "ro"
                | "none"
                | "noprefix"
                | "clone_children"
                | "xattr"
                | "cpuset_v2_mode"
                | "favordynmods"
        ) || o
            .parse::<Controller>()
            .is_ok_and(|c| !matches!(c, Controller::Other(_)))
            || o.strip_prefix("name=").is_some_and(|n| {
                !n.is_empty()
                    && n.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            });
        if !ok {
            return Err(format!(
                "before.v1 mount data {o:?} is not one cgmig restores (release_agent= never is)"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Pid;

    fn scope(prefix: &str) -> Scope<'_> {
        Scope { prefix, live: false }
    }

    #[test]
    fn tree_steps_stay_below_the_prefix() {
        let s = scope("/t");
        let ok = |st: Step| s.check(&st).unwrap();
        ok(Step::Action(Action::Create { path: "/t/a".into() }));
        ok(Step::MkdirTarget { path: "/t".into() });
        ok(Step::EnableAbove {
            path: "/".into(),
            controllers: vec!["memory".into()],
        });
        let bad = |st: Step, what: &str| {
            let e = s.check(&st).unwrap_err();
            assert!(e.contains(what), "{e}");
        };
        bad(
            Step::Action(Action::Create { path: "/x".into() }),
            "outside the target",
        );
        bad(
            Step::Action(Action::Create {
                path: "/t/../x".into(),
            }),
            "component",
        );
        bad(
            Step::Action(Action::Create { path: "t/a".into() }),
            "not absolute",
        );
        bad(
            Step::Action(Action::Create { path: "/t".into() }),
            "the target itself",
        );
        bad(Step::MkdirTarget { path: "/x".into() }, "not on the way down");
        bad(
            Step::EnableAbove {
                path: "/t".into(),
                controllers: vec!["memory".into()],
            },
            "not an ancestor",
        );
        bad(
            Step::Action(Action::Write {
                path: "/t/a".into(),
                file: "cgroup.kill".into(),
                value: "1".into(),
            }),
            "never written",
        );
        bad(
            Step::Action(Action::Write {
                path: "/t/a".into(),
                file: "../../x".into(),
                value: "1".into(),
            }),
            "not a v2 setting file",
        );
        bad(
            Step::Action(Action::MoveProcess {
                pid: Pid::new(0),
                path: "/t/a".into(),
            }),
            "pid 0",
        );
        bad(
            Step::Action(Action::Chown {
                path: "/t/a".into(),
                uid: 1,
                gid: 1,
                files: vec!["../x".into()],
            }),
            "not a delegation file",
        );
        bad(
            Step::Unmount {
                hierarchy: "hugetlb".into(),
                mounts: vec!["/x".into()],
            },
            "without --live",
        );
        let live = Scope {
            prefix: "/",
            live: true,
        };
        assert!(
            live.check(&Step::Unmount {
                hierarchy: "hugetlb".into(),
                mounts: vec!["/x/../etc".into()],
            })
            .unwrap_err()
            .contains("normalized")
        );
        assert!(
            live.check(&Step::WaitV2 {
                controller: "hugetlb".into(),
                timeout_ms: u64::MAX,
            })
            .is_err()
        );
    }

    #[test]
    fn a_remount_never_sets_a_release_agent() {
        assert!(mount_options("rw,nosuid", "rw,hugetlb").is_ok());
        assert!(mount_options("rw", "rw,name=systemd,xattr").is_ok());
        let e = mount_options("rw", "rw,hugetlb,release_agent=/tmp/x").unwrap_err();
        assert!(e.contains("release_agent"), "{e}");
        assert!(mount_options("rw,bind", "hugetlb").is_err());
    }
}
