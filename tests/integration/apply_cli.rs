//! `cgmig apply` / `rollback` refusals: each a clear error, exit 2, and
//! nothing written (no journal, no cgroup). The real-kernel refusals
//! (read-only target, the tampered corpus) are in `apply_kernel` and
//! `apply_tamper`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::util::*;

/// A fixture plan file and a scratch dir with a private lock.
struct Case {
    dir: tempfile::TempDir,
    plan: PathBuf,
}

fn case() -> Case {
    let h = host("borg-like");
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.json");
    let o = cgmig(&[
        "plan",
        "--root",
        &h.root().display().to_string(),
        "--format",
        "json",
        "-o",
        &plan.display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    Case { dir, plan }
}

impl Case {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_cgmig"))
            .args(args)
            .env("CGMIG_LOCK", self.dir.path().join("lock"))
            .env("CGMIG_RUN_DIR", self.run_dir())
            .env("CGMIG_STATE_DIR", self.dir.path().join("state"))
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    }
    fn p(&self) -> String {
        self.plan.display().to_string()
    }
    /// The private run directory (instead of /run/cgmig).
    fn run_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }
    /// Journals written anywhere the case can see.
    fn journals(&self) -> Vec<PathBuf> {
        [self.dir.path().to_path_buf(), self.run_dir()]
            .iter()
            .filter_map(|d| std::fs::read_dir(d).ok())
            .flatten()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "journal"))
            .collect()
    }
    /// A journal path in the case's directory.
    fn journal(&self) -> PathBuf {
        self.dir.path().join("plan.journal")
    }
    /// A valid journal of this boot with no steps, at [`Case::journal`].
    fn empty_journal(&self) -> PathBuf {
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
        let p = self.journal();
        std::fs::write(
            &p,
            format!(
                r#"{{"kind":"header","schema":"cgmig.journal/v2","plan_hash":"0","plan":"p.json","boot_id":"{}","options":{{"stage":null,"only":null,"live":false,"mount":"/sys/fs/cgroup","prefix":"/"}},"steps":[]}}
"#,
                boot.trim()
            ),
        )
        .unwrap();
        p
    }
}

fn refused(o: &Output, what: &str) {
    assert_eq!(
        o.status.code(),
        Some(2),
        "stdout {} stderr {}",
        stdout(o),
        stderr(o)
    );
    assert!(stderr(o).contains(what), "expected {what:?} in: {}", stderr(o));
}

#[test]
fn a_truncated_plan_is_refused_naming_the_file_and_line() {
    let c = case();
    let text = std::fs::read_to_string(&c.plan).unwrap();
    std::fs::write(&c.plan, &text[..text.len() / 2]).unwrap();
    let o = c.run(&["apply", &c.p(), "--force-host", "--yes"]);
    refused(&o, &c.p());
    assert!(stderr(&o).contains("line"), "{}", stderr(&o));
    assert!(c.journals().is_empty(), "no journal for a refused plan");
}

#[test]
fn a_hand_edited_plan_that_breaks_v2_rules_is_refused() {
    let c = case();
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&c.plan).unwrap()).unwrap();
    // A node whose parent does not exist.
    let mut orphan = v["nodes"][1].clone();
    orphan["path"] = "/no/such/parent".into();
    v["nodes"].as_array_mut().unwrap().push(orphan);
    std::fs::write(&c.plan, serde_json::to_string(&v).unwrap()).unwrap();
    let o = c.run(&["apply", &c.p(), "--force-host", "--yes"]);
    refused(&o, "does not validate");
    assert!(stderr(&o).contains("/no/such/parent"), "{}", stderr(&o));
    assert!(c.journals().is_empty());
}

#[test]
fn a_plan_for_another_host_is_refused() {
    let c = case();
    let o = c.run(&["apply", &c.p(), "--yes"]);
    refused(&o, "the plan does not fit this host");
    assert!(stderr(&o).contains("host.hostname"), "{}", stderr(&o));
    assert!(c.journals().is_empty());
}

#[test]
fn a_journal_of_another_plan_is_refused() {
    let c = case();
    let other = c.dir.path().join("other.journal");
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    std::fs::write(
        &other,
        format!(
            r#"{{"kind":"header","schema":"cgmig.journal/v2","plan_hash":"0000000000000000","plan":"x.json","boot_id":"{}","options":{{"stage":null,"only":null,"live":false,"mount":"/sys/fs/cgroup","prefix":"/"}},"steps":[]}}
"#,
            boot.trim()
        ),
    )
    .unwrap();
    let before = std::fs::read(&other).unwrap();
    let o = c.run(&[
        "apply",
        &c.p(),
        "--force-host",
        "--resume",
        "--yes",
        "--journal",
        &other.display().to_string(),
    ]);
    refused(&o, "belongs to another plan (it was written for x.json)");
    assert!(
        !stderr(&o).contains(&cgmig::apply::journal::plan_hash(&read_plan(&c.plan))),
        "the refusal does not print the hash a forger would need: {}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(&other).unwrap(), before, "the journal is untouched");
}

fn read_plan(p: &Path) -> cgmig::plan::Plan {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn a_target_that_is_not_cgroup2_is_refused() {
    let c = case();
    let t = c.dir.path().join("not-cgroup");
    std::fs::create_dir(&t).unwrap();
    let o = c.run(&[
        "apply",
        &c.p(),
        "--force-host",
        "--yes",
        "--match",
        "keys",
        "--target",
        &t.join("sub").display().to_string(),
    ]);
    refused(&o, "not a cgroup2 filesystem");
    assert!(!t.join("sub").exists());
    assert!(c.journals().is_empty());
}

#[test]
fn a_second_apply_refuses_while_the_lock_is_held() {
    let c = case();
    let f = std::fs::File::create(c.dir.path().join("lock")).unwrap();
    let _held = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock).unwrap();
    let o = c.run(&["apply", &c.p(), "--force-host", "--yes"]);
    refused(&o, "another cgmig apply or rollback is running");
    let o = c.run(&["rollback", &c.empty_journal().display().to_string(), "--yes"]);
    refused(&o, "another cgmig apply or rollback is running");
}

#[test]
fn rollback_of_something_that_is_not_a_journal_is_refused() {
    let c = case();
    let o = c.run(&["rollback", &c.p(), "--yes"]);
    refused(&o, "line 1");
}

#[test]
fn apply_and_rollback_need_yes_when_not_on_a_terminal() {
    let c = case();
    // Not a terminal (stdin is /dev/null): --yes is demanded before
    // anything is scanned, locked or written.
    for args in [
        vec!["apply", &c.p(), "--force-host"][..].to_vec(),
        vec!["apply", &c.p(), "--force-host", "--live"],
        vec!["apply", &c.p(), "--force-host", "--resume"],
    ] {
        let o = c.run(&args);
        refused(&o, "pass --yes");
        assert!(stderr(&o).contains("--dry-run"), "{}", stderr(&o));
    }
    assert!(c.journals().is_empty());
    let j = c.empty_journal().display().to_string();
    let o = c.run(&["rollback", &j]);
    refused(&o, "pass --yes");
    assert!(!c.dir.path().join("lock").exists(), "refused before the lock");
}

/// A plan made from a snapshot has no host identity: on the live host it
/// is refused, naming the field and how to say how processes match.
#[test]
fn a_plan_without_host_identity_is_refused_unless_told_how_to_match() {
    let c = case();
    let o = c.run(&["apply", &c.p(), "--force-host", "--yes"]);
    refused(&o, "host.machine_id");
    assert!(stderr(&o).contains("--match keys"), "{}", stderr(&o));
    assert!(c.journals().is_empty());
    // Told how to match, it goes on to the next check (here: not cgroup2).
    let t = c.dir.path().join("plain");
    std::fs::create_dir(&t).unwrap();
    let o = c.run(&[
        "apply",
        &c.p(),
        "--force-host",
        "--yes",
        "--match",
        "keys",
        "--target",
        &t.display().to_string(),
    ]);
    refused(&o, "not a cgroup2 filesystem");
}

#[test]
fn dry_run_lists_what_would_fail_and_why() {
    let h = host("borg-like");
    let c = case();
    let root = h.root().display().to_string();
    let o = c.run(&["apply", &c.p(), "--dry-run", "--root", &root, "--format", "json"]);
    // borg-like is a legacy host: cpu and memory are not on cgroup2 there.
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["dry_run"], true);
    let statuses: std::collections::BTreeSet<&str> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert!(
        statuses
            .iter()
            .all(|s| ["would-do", "would-fail", "skipped"].contains(s)),
        "a dry run never says done or failed: {statuses:?}"
    );
    let failed: Vec<&serde_json::Value> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == "would-fail")
        .collect();
    assert!(
        failed
            .iter()
            .any(|s| s["note"].as_str().unwrap().contains("subtree_control")),
        "{failed:#?}"
    );
    assert!(c.journals().is_empty(), "a dry run writes no journal");
    let o = c.run(&["apply", &c.p(), "--dry-run", "--root", &root]);
    let table = stdout(&o);
    assert!(
        table.contains("would do") && table.contains("WOULD FAIL") && table.contains("(nothing was changed)"),
        "{table}"
    );
    assert!(
        !table.contains(" done") && !table.contains("FAILED"),
        "the dry run's words are \"would ...\": {table}"
    );
    assert!(table.contains("a real apply would stop at step"), "{table}");
}

#[test]
fn stage_and_only_select_part_of_the_plan() {
    let h = host("borg-like");
    let c = case();
    let root = h.root().display().to_string();
    let o = c.run(&[
        "apply",
        &c.p(),
        "--dry-run",
        "--root",
        &root,
        "--only",
        "/batch",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let labels: Vec<&str> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["label"].as_str().unwrap())
        .collect();
    assert!(labels.iter().any(|l| l.contains("/batch/task1")), "{labels:#?}");
    assert!(
        !labels
            .iter()
            .any(|l| l.contains("websearch") || l.contains("alloc1")),
        "{labels:#?}"
    );
    let o = c.run(&["apply", &c.p(), "--dry-run", "--root", &root, "--stage", "99"]);
    refused(&o, "--stage 99: there is no stage 99");
}

/// Issue 14: a plan from a systemd host, edited by hand to write into a
/// systemd unit's cgroup, is refused before anything is touched, naming the
/// owner; the same plan unedited passes that check.
#[test]
fn a_write_into_a_systemd_units_cgroup_is_refused() {
    let snap = hosts_dir().join("systemd-hybrid.snapshot.json");
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.json");
    let p = plan.display().to_string();
    let o = cgmig(&[
        "plan",
        "--snapshot",
        &snap.display().to_string(),
        "--format",
        "json",
        "-o",
        &p,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let c = Case { dir, plan };
    let dry = c.run(&[
        "apply",
        &p,
        "--dry-run",
        "--snapshot",
        &snap.display().to_string(),
    ]);
    assert!(!stderr(&dry).contains("does not own"), "{}", stderr(&dry));

    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&c.plan).unwrap()).unwrap();
    let delegated: Vec<String> = v["owners"]["delegations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap().to_string())
        .collect();
    let unit = v["owners"]["nodes"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(path, o)| {
            o["manager"] == "systemd" && path.ends_with(".service") && !delegated.contains(path)
        })
        .map(|(path, _)| path.clone())
        .expect("the fixture has a systemd service");
    v["actions"].as_array_mut().unwrap().push(serde_json::json!(
        {"action": "write", "path": unit, "file": "memory.max", "value": "1G"}
    ));
    std::fs::write(&c.plan, serde_json::to_string(&v).unwrap()).unwrap();
    let t = c.dir.path().join("target");
    let o = c.run(&[
        "apply",
        &p,
        "--force-host",
        "--yes",
        "--target",
        &t.display().to_string(),
    ]);
    refused(&o, "does not own");
    assert!(stderr(&o).contains(&unit), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("systemd"),
        "the owner is named: {}",
        stderr(&o)
    );
    assert!(!t.exists(), "nothing created");
    assert!(c.journals().is_empty(), "no journal");
}
