//! Targets for the documents that travel between hosts and teams:
//! snapshots, rules, plans, fleet inputs, apply journals.

use std::path::PathBuf;
use std::sync::OnceLock;

use cgmig::model::Snapshot;
use cgmig::plan::Plan;
use cgmig::report::{DataFormat, from_data, to_data};
use cgmig::rules::RuleSet;

/// The built-in rules, loaded once (loading them is most of a run's cost).
fn rules() -> &'static RuleSet {
    static RULES: OnceLock<RuleSet> = OnceLock::new();
    RULES.get_or_init(|| {
        let (r, errors) = RuleSet::embedded();
        assert!(errors.is_empty(), "{errors:?}");
        r
    })
}

/// A small valid snapshot that rules under test are audited against.
fn base_snapshot() -> &'static Snapshot {
    static SNAP: OnceLock<Snapshot> = OnceLock::new();
    SNAP.get_or_init(|| {
        cgmig::model::validate::parse_snapshot(include_str!("../../testdata/fuzz/snapshot/base.json"))
            .expect("the base snapshot loads")
    })
}

/// Loaders that take a path get the input through this file (one per
/// process, under `CGMIG_FUZZ_TMP`, which scripts/fuzz removes).
pub fn input_file(b: &[u8], ext: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let base = std::env::var_os("CGMIG_FUZZ_TMP").map_or_else(std::env::temp_dir, PathBuf::from);
        let d = base.join(format!("cgmig-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("fuzz temp dir");
        d
    });
    let p = dir.join(format!("input.{ext}"));
    std::fs::write(&p, b).expect("write fuzz input");
    p
}

/// A loaded snapshot is trusted by everything downstream: it must audit,
/// plan and render, and its JSON and YAML forms must load back to it.
fn snapshot(b: &[u8]) {
    let Ok(t) = std::str::from_utf8(b) else { return };
    let Ok(snap) = cgmig::model::validate::parse_snapshot(t) else {
        return;
    };
    let rules = rules();
    let report = cgmig::assess::audit(&snap, rules);
    let _ = cgmig::audit::render(&report, cgmig::audit::AuditFormat::Markdown);
    let _ = cgmig::report::render_tree(&snap, rules);
    let plan = cgmig::plan::plan(&snap, rules);
    let _ = cgmig::plan::render(&plan, cgmig::plan::PlanFormat::Table);
    let json = serde_json::to_value(&snap).expect("a loaded snapshot serializes");
    for f in [DataFormat::Json, DataFormat::Yaml] {
        let text = to_data(&snap, f).expect("a loaded snapshot renders");
        let back = cgmig::model::validate::parse_snapshot(&text)
            .unwrap_or_else(|e| panic!("a loaded snapshot, rendered as {f:?}, is refused: {e}"));
        let again = serde_json::to_value(&back).expect("serializes");
        assert!(again == json, "snapshot changed in a {f:?} round trip");
    }
}

/// `--snapshot FILE.json`.
pub fn snapshot_json(b: &[u8]) {
    snapshot(b);
}

/// `--snapshot FILE.yaml` (the same loader; the corpus is YAML).
pub fn snapshot_yaml(b: &[u8]) {
    snapshot(b);
}

/// A user rules file: loaded over the built-in rules, then used for a
/// whole audit and plan, as `audit --rules DIR` and `plan --rules DIR` do.
pub fn rules_yaml(b: &[u8]) {
    let Ok(t) = std::str::from_utf8(b) else { return };
    let mut set = rules().clone();
    let mut errors = Vec::new();
    set.add_source("fuzz.yaml", t, &mut errors, true);
    let snap = base_snapshot();
    let report = cgmig::assess::audit(snap, &set);
    let _ = cgmig::audit::render(&report, cgmig::audit::AuditFormat::Table);
    let plan = cgmig::plan::plan(snap, &set);
    let _ = cgmig::plan::render(&plan, cgmig::plan::PlanFormat::Table);
}

/// A plan file as `apply` and `verify` read it (`report::from_data`, the
/// schema check, `plan::validate`), rendered, and round-tripped.
pub fn plan_json(b: &[u8]) {
    let Ok(t) = std::str::from_utf8(b) else { return };
    if cgmig::model::validate::check_depth(t).is_err() {
        return;
    }
    let Ok(v) = from_data::<serde_json::Value>(t) else {
        return;
    };
    if v.get("schema").and_then(|s| s.as_str()) != Some(cgmig::plan::PLAN_SCHEMA) {
        return;
    }
    let Ok(plan) = serde_json::from_value::<Plan>(v) else {
        return;
    };
    let _ = cgmig::plan::validate(&plan);
    let _ = cgmig::plan::render(&plan, cgmig::plan::PlanFormat::Table);
    let _ = cgmig::plan::render(&plan, cgmig::plan::PlanFormat::Markdown);
    for f in [DataFormat::Json, DataFormat::Yaml] {
        let text = to_data(&plan, f).expect("a loaded plan renders");
        let back: Plan =
            from_data(&text).unwrap_or_else(|e| panic!("a loaded plan, rendered as {f:?}, is refused: {e}"));
        assert!(back == plan, "plan changed in a {f:?} round trip");
    }
}

/// One host's file given to `cgmig fleet` (a snapshot, audit or plan from
/// any machine of the fleet), through `fleet::run` and every renderer.
pub fn fleet_input(b: &[u8]) {
    let path = input_file(b, "json");
    let opts = cgmig::fleet::FleetOptions::default();
    let inputs = cgmig::fleet::Inputs {
        files: vec![path],
        errors: Vec::new(),
    };
    let Ok(report) = cgmig::fleet::run(&inputs, rules(), &opts) else {
        return;
    };
    use cgmig::fleet::FleetFormat as F;
    for f in [F::Table, F::Markdown, F::Json, F::Prometheus, F::Html] {
        let _ = cgmig::fleet::render(&report, f);
    }
}

/// `apply`'s journal, read on resume (possibly torn by a crash).
pub fn journal(b: &[u8]) {
    let path = input_file(b, "journal");
    if let Ok(j) = cgmig::apply::journal::Journal::read(&path) {
        let _ = j.first_unfinished(64);
    }
}
