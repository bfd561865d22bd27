//! The binary: outputs, exit codes, error messages.

use crate::util::*;

#[test]
fn scan_to_file_then_tree_and_audit_from_the_snapshot() {
    let h = host("docker-cgroupfs");
    let dir = tempfile::tempdir().unwrap();
    for fmt in ["json", "yaml"] {
        let out = dir.path().join(format!("snap.{fmt}"));
        let o = cgmig(&[
            "scan",
            "--root",
            h.root().to_str().unwrap(),
            "--format",
            fmt,
            "-o",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let t1 = cgmig(&["tree", "--snapshot", out.to_str().unwrap()]);
        let t2 = cgmig(&["tree", "--root", h.root().to_str().unwrap()]);
        assert!(t1.status.success());
        assert_eq!(
            stdout(&t1),
            stdout(&t2),
            "snapshot and live scan show the same tree"
        );
        assert!(stdout(&t1).contains("b29faf21b7ef"));
    }
    // No temp files left behind by the atomic write.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
}

#[test]
fn audit_exit_codes_follow_fail_on() {
    let h = host("legacy-exotic");
    let root = h.root().to_str().unwrap();
    assert_eq!(
        cgmig(&["audit", "--root", root]).status.code(),
        Some(1),
        "blocker by default"
    );
    assert_eq!(
        cgmig(&["audit", "--root", root, "--fail-on", "never"])
            .status
            .code(),
        Some(0)
    );
    let v2 = host("pure-v2");
    let r = v2.root().to_str().unwrap();
    assert_eq!(
        cgmig(&["audit", "--root", r, "--fail-on", "warning"])
            .status
            .code(),
        Some(0)
    );
    let lib = host("libvirt-vcpu-threads");
    let l = lib.root().to_str().unwrap();
    assert_eq!(cgmig(&["audit", "--root", l]).status.code(), Some(0));
    assert_eq!(
        cgmig(&["audit", "--root", l, "--fail-on", "warning"])
            .status
            .code(),
        Some(1)
    );
    let o = cgmig(&["audit", "--root", l, "--format", "prometheus"]);
    assert!(stdout(&o).contains("cgmig_audit_verdict{verdict=\"ready-with-changes\"} 1"));
}

#[test]
fn bad_inputs_are_clear_errors() {
    let o = cgmig(&["scan", "--root", "/nonexistent/cgmig"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("/nonexistent/cgmig"), "{}", stderr(&o));
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"schema\": \"cgmig.snapshot/v1\", \"host\": 3}").unwrap();
    let o = cgmig(&["tree", "--snapshot", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("bad.json"), "{}", stderr(&o));
    std::fs::write(&bad, "{\"schema\": \"cgmig.snapshot/v9\"}").unwrap();
    let o = cgmig(&["tree", "--snapshot", bad.to_str().unwrap()]);
    assert!(
        stderr(&o).contains("v9") && stderr(&o).contains("not supported"),
        "{}",
        stderr(&o)
    );
    std::fs::write(&bad, "{ not json").unwrap();
    let o = cgmig(&["audit", "--snapshot", bad.to_str().unwrap()]);
    assert!(
        stderr(&o).contains("bad.json: ") && stderr(&o).contains("at line 1 column"),
        "{}",
        stderr(&o)
    );
    // An output file in a missing directory: error, nothing half-written.
    let o = cgmig(&[
        "scan",
        "--root",
        host("pure-v2").root().to_str().unwrap(),
        "-o",
        "/nonexistent/dir/x.json",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("/nonexistent/dir/x.json"));
}

#[test]
fn rules_check_and_list() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.yaml"),
        "- id: x\n  title: t\n  match: {file: cpu.shares}\n  convert: {target: cpu.weight, function: nope}\n",
    )
    .unwrap();
    let o = cgmig(&["rules", "check", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("a.yaml:1: rule x: unknown function \"nope\""),
        "{err}"
    );
    let good = tempfile::tempdir().unwrap();
    let o = cgmig(&["rules", "check", good.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    let o = cgmig(&["rules", "list"]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("cpu.shares") && stdout(&o).contains("host.split-threads-domain"));
    // Bad --rules: the report is still produced, the exit code says the rules were bad.
    let o = cgmig(&[
        "audit",
        "--root",
        host("pure-v2").root().to_str().unwrap(),
        "--rules",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stdout(&o).contains("verdict"));
}

/// `cgmig explain ID`'s stdout, asserting it exits 0.
fn explain_ok(id: &str) -> String {
    let o = cgmig(&["explain", id]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{id}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn explain_knows_the_owners_findings() {
    for id in ["owners.directive-dropped", "owners.directive-deprecated"] {
        let out = explain_ok(id);
        assert!(out.starts_with(id) && out.contains("remediation:"), "{out}");
    }
}

#[test]
fn explain_knows_the_planner_findings() {
    // One id, several kinds: all are shown (three reasons to rename, three
    // severities of a conflict by strategy).
    for (id, kinds) in [("plan.renamed", 3), ("plan.conflict", 3), ("plan.leaf", 1)] {
        let out = explain_ok(id);
        assert!(out.starts_with(id), "{out}");
        assert_eq!(out.matches("remediation:").count(), kinds, "{out}");
        assert!(out.contains("built in (the planner"), "{out}");
    }
}

#[test]
fn explain_cpu_shares_shows_all_formulas() {
    let o = cgmig(&["explain", "cpu.shares"]);
    assert!(o.status.success());
    let s = stdout(&o);
    for needle in [
        "cpu.weight",
        "oci-legacy",
        "systemd",
        "4.15",
        "opencontainers/cgroups",
    ] {
        assert!(s.contains(needle), "{needle} missing:\n{s}");
    }
    // The sample table: 1024 -> 100 (oci), 39 (legacy), 100 (systemd).
    let row = s.lines().find(|l| l.contains(" 1024 ")).unwrap();
    let nums: Vec<&str> = row
        .split(|c: char| !c.is_ascii_digit())
        .filter(|x| !x.is_empty())
        .collect();
    assert_eq!(nums, ["1024", "100", "39", "100"]);
    let o = cgmig(&["explain", "host.split-threads-domain"]);
    assert!(stdout(&o).contains("blocker"));
    let o = cgmig(&["explain", "hugetlb.1GB.limit_in_bytes"]);
    assert!(stdout(&o).contains("hugetlb.{1}.max"), "{}", stdout(&o));
    let o = cgmig(&["explain", "no.such.file"]);
    assert_eq!(o.status.code(), Some(2));
}

/// Issue 13: the CLI prints the error chain as it is (no de-duplication any
/// more), so a cause said twice would show as a repeated line. On a missing
/// snapshot, a bad YAML line, an inconsistent snapshot, a bad journal and an
/// output directory that does not exist, exit 2 and no stderr line twice.
#[test]
fn bad_inputs_print_each_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let missing = d.join("missing.json");
    let yaml = d.join("snap.yaml");
    std::fs::write(&yaml, "schema: cgmig.snapshot/v1\nhost:\n  hostname: [unclosed\n").unwrap();
    let snap = d.join("snap.json");
    let h = host("docker-cgroupfs");
    let root = h.root().to_str().unwrap();
    let o = cgmig(&["scan", "--root", root, "-o", snap.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&snap).unwrap()).unwrap();
    v["graph"]["edges"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!([0, 0, "child"]));
    let cycle = d.join("cycle.json");
    std::fs::write(&cycle, v.to_string()).unwrap();
    let journal = d.join("plan.journal");
    std::fs::write(&journal, "{\"not\": \"a record\"}\n").unwrap();
    let out = d.join("no/such/dir/out.json");
    let p = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let runs: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["tree".into(), "--snapshot".into(), p(&missing)],
            "missing.json",
        ),
        (vec!["audit".into(), "--snapshot".into(), p(&yaml)], "line 3"),
        (
            vec!["plan".into(), "--snapshot".into(), p(&cycle)],
            "inconsistent snapshot",
        ),
        (vec!["rollback".into(), p(&journal), "--yes".into()], "line 1"),
        (
            vec!["scan".into(), "--root".into(), root.into(), "-o".into(), p(&out)],
            "out.json",
        ),
    ];
    for (args, says) in runs {
        // A lock of its own: rollback must not meet another test's apply.
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_cgmig"))
            .args(&args)
            .env("CGMIG_LOCK", d.join("lock"))
            .output()
            .unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.starts_with("cgmig: error: "), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?} does not say {says:?}: {err}");
        let lines: Vec<&str> = err.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            assert!(!lines[i + 1..].contains(l), "{args:?}: {l:?} twice:\n{err}");
        }
    }
}

/// `cgmig --version` names the version, the commit it was built from and
/// the target triple (build.rs), so a binary found on a host says what it is.
#[test]
fn version_names_commit_and_target() {
    let o = cgmig(&["--version"]);
    assert!(o.status.success());
    let v = String::from_utf8_lossy(&o.stdout);
    let head = format!("cgmig {} (commit ", env!("CARGO_PKG_VERSION"));
    assert!(v.starts_with(&head), "{v}");
    let commit = v[head.len()..].split(',').next().unwrap_or("");
    assert!(
        commit == "unknown" || (commit.len() == 12 && commit.bytes().all(|b| b.is_ascii_hexdigit())),
        "{v}"
    );
    assert!(
        v.trim_end().ends_with("-linux-gnu)") || v.trim_end().ends_with("-linux-musl)"),
        "{v}"
    );
}
