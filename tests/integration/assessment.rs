//! One assessment (issue 19): for every fixture host and planner scenario,
//! `audit`, `plan`, `fleet` (over the snapshot, the audit, the plan, and all
//! three together) and `apply --dry-run` give the same verdict, and audit and
//! plan the same severity for every finding; a kernel 3.10 copy of each v1
//! host is blocked in every command; the three documents of one host count
//! as one host. The commands run as a user runs them (the binary).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cgmig::fixture::HostSpec;
use serde_json::Value;

use crate::util::{build_spec, cgmig, hosts_dir, scratch, stderr, stdout};

/// The spec of a fixture host (`testdata/hosts`) or scenario (`testdata/scenarios`).
fn spec(name: &str) -> HostSpec {
    let host = hosts_dir().join(format!("{name}.yaml"));
    let path = if host.exists() {
        host
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("testdata/scenarios/{name}.yaml"))
    };
    HostSpec::load(&path).unwrap()
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every finding (rule, subject, file, value, detail) with its severity, counted.
fn severities(findings: &Value) -> BTreeMap<(String, String), (String, usize)> {
    let mut out: BTreeMap<(String, String), (String, usize)> = BTreeMap::new();
    for f in findings.as_array().unwrap() {
        let what = format!("{} {} {} {}", f["subject"], f["file"], f["value"], f["detail"]);
        let key = (f["rule"].as_str().unwrap().to_string(), what);
        let sev = f["severity"].as_str().unwrap().to_string();
        let e = out.entry(key).or_insert((sev.clone(), 0));
        assert_eq!(e.0, sev, "one finding, two severities: {f}");
        e.1 += 1;
    }
    out
}

/// A fleet run over `inputs`: (hosts, the one host's verdict, rule → severity).
fn fleet(inputs: &[&Path]) -> (u64, String, BTreeMap<String, String>, Value) {
    let mut args = vec!["fleet", "--format", "json"];
    args.extend(inputs.iter().map(|p| p.to_str().unwrap()));
    let o = cgmig(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let v = &r["verdicts"];
    let verdict = ["ready", "ready-with-changes", "blocked", "incomplete"]
        .into_iter()
        .find(|k| v[*k].as_u64() == Some(1))
        .unwrap_or("none")
        .to_string();
    let rules = r["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["rule"].as_str().unwrap().to_string(),
                x["severity"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (r["hosts"].as_u64().unwrap(), verdict, rules, r)
}

/// The host's three documents, written by the commands a user runs.
struct Docs {
    _dir: tempfile::TempDir,
    snapshot: PathBuf,
    audit: PathBuf,
    plan: PathBuf,
}

fn documents(spec: HostSpec) -> Docs {
    let host = build_spec(spec);
    let dir = scratch();
    let snapshot = dir.path().join("host.snapshot.json");
    let audit = dir.path().join("host.audit.json");
    let plan = dir.path().join("host.plan.json");
    let root = host.root().to_str().unwrap();
    let o = cgmig(&["scan", "--root", root, "-o", snapshot.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s = snapshot.to_str().unwrap();
    let o = cgmig(
        &[
            "audit",
            "--snapshot",
            s,
            "--format",
            "json",
            "--fail-on",
            "never",
            "-o",
        ]
        .into_iter()
        .chain([audit.to_str().unwrap()])
        .collect::<Vec<_>>(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = cgmig(&[
        "plan",
        "--snapshot",
        s,
        "--format",
        "json",
        "--fail-on",
        "never",
        "-o",
        plan.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    Docs {
        _dir: dir,
        snapshot,
        audit,
        plan,
    }
}

/// Every command's verdict for one host; returns it.
fn one_verdict(docs: &Docs, what: &str) -> String {
    let audit = json(&docs.audit);
    let plan = json(&docs.plan);
    let verdict = audit["verdict"].as_str().unwrap().to_string();
    assert_eq!(
        plan["verdict"].as_str(),
        Some(verdict.as_str()),
        "{what}: plan and audit"
    );
    // The same findings at the same severities (the plan keeps the planner's order).
    assert_eq!(
        severities(&audit["findings"]),
        severities(&plan["findings"]),
        "{what}: audit and plan findings"
    );
    // Every id a report shows explains itself (`explain`, `rules list`).
    for f in audit["findings"].as_array().unwrap() {
        let id = f["rule"].as_str().unwrap();
        assert!(
            cgmig::assess::catalog::knows(id, &crate::util::rules()),
            "{what}: {id} is in no table"
        );
    }
    let audit_rules: BTreeMap<String, String> = {
        let mut m: BTreeMap<String, String> = BTreeMap::new();
        for f in audit["findings"].as_array().unwrap() {
            let (r, s) = (f["rule"].as_str().unwrap(), f["severity"].as_str().unwrap());
            let rank = |s: &str| {
                ["info", "warning", "error", "blocker"]
                    .iter()
                    .position(|x| *x == s)
            };
            let e = m.entry(r.to_string()).or_insert_with(|| s.to_string());
            if rank(s) > rank(e) {
                *e = s.to_string();
            }
        }
        m
    };
    for (kind, inputs) in [
        ("snapshot", vec![docs.snapshot.as_path()]),
        ("audit", vec![docs.audit.as_path()]),
        ("plan", vec![docs.plan.as_path()]),
        (
            "all three",
            vec![docs.snapshot.as_path(), docs.audit.as_path(), docs.plan.as_path()],
        ),
    ] {
        let (hosts, v, rules, r) = fleet(&inputs);
        assert_eq!(hosts, 1, "{what}: fleet over {kind} counts hosts, not files: {r}");
        assert_eq!(v, verdict, "{what}: fleet over {kind}");
        assert_eq!(
            rules, audit_rules,
            "{what}: fleet over {kind}: rules and severities"
        );
        assert!(r.get("conflicts").is_none(), "{what}: {kind}: {}", r["conflicts"]);
    }
    // apply --dry-run reads the same verdict; it refuses a blocked plan, naming its blockers.
    let o = cgmig(&[
        "apply",
        docs.plan.to_str().unwrap(),
        "--dry-run",
        "--snapshot",
        docs.snapshot.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    let label = match verdict.as_str() {
        "ready" => "READY",
        "ready-with-changes" => "READY WITH CHANGES",
        "incomplete" => "INCOMPLETE",
        _ => "BLOCKED",
    };
    assert!(
        err.contains(&format!("the plan's verdict: {label}\n")),
        "{what}: apply --dry-run: {err}"
    );
    if verdict == "blocked" {
        assert_eq!(
            o.status.code(),
            Some(2),
            "{what}: a blocked plan is refused: {err}"
        );
        assert!(err.contains("the plan is blocked by"), "{what}: {err}");
        let first = plan["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["severity"] == "blocker")
            .unwrap();
        assert!(
            err.contains(first["rule"].as_str().unwrap()),
            "{what}: names the blockers: {err}"
        );
    } else {
        assert!(!err.contains("the plan is blocked by"), "{what}: {err}");
    }
    verdict
}

/// A fixture host or scenario: every command agrees; and its kernel 3.10
/// copy (a v1 host only: 3.10 has no cgroup2) is blocked in each.
fn every_command_agrees(name: &str) {
    let docs = documents(spec(name));
    one_verdict(&docs, name);
    let mut old = spec(name);
    if !old.hierarchies.iter().any(|h| h.id != 0) {
        return; // a v2-only host: 3.10 has no cgroup2 to run it
    }
    old.kernel = "3.10.0-1160.el7.x86_64".into();
    let docs = documents(old);
    let v = one_verdict(&docs, &format!("{name} on 3.10"));
    assert_eq!(v, "blocked", "{name} on kernel 3.10");
    let plan = json(&docs.plan);
    assert!(
        plan["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule"] == "plan.kernel-too-old" && f["severity"] == "blocker"),
        "{name} on 3.10: the kernel is the blocker"
    );
}
per_host!(every_command_agrees_on_host, every_command_agrees);
per_scenario!(every_command_agrees_on_scenario, every_command_agrees);

/// A waiver lets a blocked host pass, shown as waived with who and why in
/// the audit, the plan and the fleet, and lets apply past (the only way).
#[test]
fn a_waiver_is_the_only_way_past_a_blocker_and_is_never_silent() {
    let docs = documents(spec("threads-split-memory"));
    let s = docs.snapshot.to_str().unwrap();
    assert_eq!(json(&docs.audit)["verdict"], "blocked");
    let dir = scratch();
    let waivers = dir.path().join("waivers.yaml");
    std::fs::write(
        &waivers,
        "# reviewed in CHG-1234\n- rule: host.split-threads-domain\n  who: ops@example.com\n  why: the threads rejoin on restart\n",
    )
    .unwrap();
    let w = waivers.to_str().unwrap();
    let o = cgmig(&["audit", "--snapshot", s, "--waivers", w]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
    assert!(out.contains("blocker (1 waived)"), "{out}");
    assert!(
        out.contains(
            "host.split-threads-domain: 1 finding, waived by ops@example.com: the threads rejoin on restart"
        ),
        "{out}"
    );
    let plan = dir.path().join("plan.json");
    let o = cgmig(&[
        "plan",
        "--snapshot",
        s,
        "--waivers",
        w,
        "--format",
        "json",
        "-o",
        plan.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let p = json(&plan);
    assert_ne!(p["verdict"], "blocked");
    let waived: Vec<&Value> = p["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f.get("waived").is_some())
        .collect();
    assert_eq!(waived.len(), 1);
    assert_eq!(waived[0]["waived"]["who"], "ops@example.com");
    // apply: a waiver recorded in the plan (a document anyone could have
    // edited) is named but does not let apply past; only one given to apply
    // does, and then it is said with who and why.
    let o = cgmig(&["apply", plan.to_str().unwrap(), "--dry-run", "--snapshot", s]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("the plan records a waiver of host.split-threads-domain"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("the plan is blocked by 1 finding"),
        "{}",
        stderr(&o)
    );
    let o = cgmig(&[
        "apply",
        plan.to_str().unwrap(),
        "--dry-run",
        "--snapshot",
        s,
        "--waivers",
        w,
    ]);
    assert!(stderr(&o).contains("waived by ops@example.com"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("the plan is blocked by"), "{}", stderr(&o));
    let o = cgmig(&["apply", docs.plan.to_str().unwrap(), "--dry-run", "--snapshot", s]);
    assert_eq!(o.status.code(), Some(2));
    let o = cgmig(&[
        "apply",
        docs.plan.to_str().unwrap(),
        "--dry-run",
        "--snapshot",
        s,
        "--waive",
        "host.split-threads-domain",
    ]);
    assert!(!stderr(&o).contains("the plan is blocked by"), "{}", stderr(&o));
    // fleet: the waived host is not blocked, and the waiver is not silent.
    let o = cgmig(&["fleet", "--format", "json", "--waivers", w, s]);
    let r: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(r["verdicts"]["blocked"], 0, "{r}");
    // An unknown id or a bad file is refused, naming it.
    let o = cgmig(&["audit", "--snapshot", s, "--waive", "no.such-rule"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("no finding has the id \"no.such-rule\""),
        "{}",
        stderr(&o)
    );
    std::fs::write(&waivers, "- rule: devices.list\n  who: ops\n").unwrap();
    let o = cgmig(&["audit", "--snapshot", s, "--waivers", w]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(&format!("{w}:1: waiver devices.list: missing field `why`")),
        "{}",
        stderr(&o)
    );
}

/// One host fed three ways counts once; two hosts with one hostname but
/// different machine ids are two; inputs of one host that disagree are
/// reported, not summed; a document with no identity is its own host, with
/// a warning.
#[test]
fn fleet_counts_hosts_by_identity() {
    let docs = documents(spec("ubuntu1804-hybrid"));
    let (hosts, ..) = fleet(&[&docs.snapshot, &docs.audit, &docs.plan]);
    assert_eq!(hosts, 1);
    let dir = scratch();
    let with_id = |id: &str, name: &str| {
        let mut a = json(&docs.audit);
        a["host"]["machine_id"] = Value::String(id.into());
        let p = dir.path().join(name);
        std::fs::write(&p, a.to_string()).unwrap();
        p
    };
    let a1 = with_id("0123456789abcdef0123456789abcdef", "a1.json");
    let a2 = with_id("fedcba9876543210fedcba9876543210", "a2.json");
    let (hosts, ..) = fleet(&[&a1, &a2, &docs.plan]);
    assert_eq!(hosts, 2, "same hostname, two machine ids: two hosts");
    // The plan says blocked, the audit not: one host, reported.
    let mut p = json(&docs.plan);
    p["findings"].as_array_mut().unwrap()[0]["severity"] = Value::String("blocker".into());
    let bad = dir.path().join("edited.plan.json");
    std::fs::write(&bad, p.to_string()).unwrap();
    let (hosts, v, _, r) = fleet(&[&docs.audit, &bad]);
    assert_eq!(hosts, 1);
    assert_eq!(v, "blocked", "counted once, at its worst verdict");
    assert_eq!(r["conflicts"][0]["differs"][0], "verdict", "{r}");
    // No identity: its own host, and a warning.
    let mut a = json(&docs.audit);
    a["host"]["hostname"] = Value::Null;
    let anon = dir.path().join("anonymous.json");
    std::fs::write(&anon, a.to_string()).unwrap();
    let o = cgmig(&["fleet", anon.to_str().unwrap(), docs.audit.to_str().unwrap()]);
    assert!(stdout(&o).starts_with("2 hosts"), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("names no host (no hostname, no machine id)"),
        "{}",
        stderr(&o)
    );
}

/// Thread mode (4.14): the libvirt host's vCPU threads sit in their own
/// cpu/cpuset cgroups, which v2 holds only in a threaded subtree. On a
/// kernel without thread mode that is a blocker in the audit, the plan and
/// the fleet alike, judged by what the cgroup2 mount shows (the fixture
/// writes `cgroup.threads` from 4.14 on), else by the version.
#[test]
fn a_split_thread_layout_needs_thread_mode_in_every_command() {
    let with_cgroup2 = |kernel: &str| {
        let mut s = spec("libvirt-vcpu-threads");
        s.kernel = kernel.into();
        s.hierarchies.push(cgmig::fixture::HierarchySpec {
            id: 0,
            controllers: vec![],
            name: None,
            mounts: serde_yaml_ng::from_str("[{point: /sys/fs/cgroup/unified, source: cgroup}]").unwrap(),
            cgroups: Default::default(),
        });
        s
    };
    let thread_findings = |docs: &Docs| -> Vec<(String, String)> {
        let plan = json(&docs.plan);
        plan["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule"] == "host.kernel-no-thread-mode")
            .map(|f| {
                (
                    f["severity"].as_str().unwrap().to_string(),
                    f["why"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    // Debian 9's 4.9, hybrid: the cgroup2 mount has no cgroup.threads.
    let docs = documents(with_cgroup2("4.9.0-19-amd64"));
    assert_eq!(one_verdict(&docs, "4.9 hybrid"), "blocked");
    let f = thread_findings(&docs);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].0, "blocker");
    assert!(
        f[0].1.contains("1 processes have threads in different cgroups")
            && f[0].1.contains("neither cgroup.threads nor cgroup.type"),
        "{f:?}"
    );
    let audit = json(&docs.audit);
    assert!(
        audit["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule"] == "host.kernel-no-thread-mode" && f["severity"] == "blocker"),
        "the audit carries it too"
    );
    let (_, v, rules, r) = fleet(&[&docs.snapshot]);
    assert_eq!(v, "blocked", "{r}");
    assert_eq!(
        rules.get("host.kernel-no-thread-mode").map(String::as_str),
        Some("blocker"),
        "{r}"
    );
    // The plan does not say it a second time.
    let plan = json(&docs.plan);
    assert!(
        !plan["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["why"].as_str().unwrap_or("").contains("thread mode needs")),
        "one finding per fact"
    );
    // What the host shows beats the version: a 4.9 vendor kernel whose
    // cgroup2 mount has cgroup.threads (a backport) is not blocked for it.
    let mut backport = with_cgroup2("4.9.0-19-amd64");
    backport
        .files
        .insert("/sys/fs/cgroup/unified/cgroup.threads".into(), String::new());
    assert!(thread_findings(&documents(backport)).is_empty());
    // No cgroup2 mount (legacy 4.9): the version decides, with the commit.
    let mut legacy = spec("libvirt-vcpu-threads");
    legacy.kernel = "4.9.0-19-amd64".into();
    let f = thread_findings(&documents(legacy));
    assert!(
        f.len() == 1
            && f[0]
                .1
                .contains("4.9 predates thread mode (4.14, commit 8cfd8147df67)"),
        "{f:?}"
    );
    // 4.14, hybrid: thread mode is there.
    assert!(thread_findings(&documents(with_cgroup2("4.14.336-253.554.amzn2.x86_64"))).is_empty());
}
