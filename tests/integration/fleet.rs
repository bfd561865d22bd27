//! `cgmig fleet` on a generated fleet: fixture hosts multiplied with per-host
//! names (pod UIDs, container ids, PIDs, hostnames), some changed in shape or
//! settings; families and counts are asserted exactly. Also: completions and
//! man pages name every subcommand and flag of the clap tree.

use std::path::Path;

use cgmig::fixture::{HostSpec, materialize};
use cgmig::fleet::{FleetOptions, FleetReport, collect_inputs, normalize_name, run};
use clap::CommandFactory;

use crate::util::{cgmig, hosts_dir, rules, scratch};

/// A deterministic per-host hex string of `len` digits that starts with a digit.
fn hex(seed: u64, len: usize) -> String {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xdead_beef;
    let mut s = String::from("1");
    while s.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.push_str(&format!("{:x}", x & 0xf));
    }
    s
}

fn uuid(seed: u64) -> String {
    let h = hex(seed, 32);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Apply `f` to every cgroup path of a spec (keys and placements).
fn rename_paths(spec: &mut HostSpec, f: &dyn Fn(&str) -> String) {
    for h in &mut spec.hierarchies {
        h.cgroups = std::mem::take(&mut h.cgroups)
            .into_iter()
            .map(|(k, v)| (f(&k), v))
            .collect();
    }
    for p in &mut spec.processes {
        for v in p.cgroups.values_mut() {
            *v = f(v);
        }
        if let Some(e) = &mut p.everywhere {
            *e = f(e);
        }
        for t in &mut p.threads {
            for v in t.cgroups.values_mut() {
                *v = f(v);
            }
        }
    }
}

/// Move every PID and TID (except init) by `off`, as another boot would.
fn shift_pids(spec: &mut HostSpec, off: u32) {
    for p in spec.processes.iter_mut().filter(|p| p.pid != 1) {
        p.pid += off;
        for t in &mut p.threads {
            t.tid += off;
        }
    }
}

fn load(name: &str) -> HostSpec {
    HostSpec::load(&hosts_dir().join(format!("{name}.yaml"))).unwrap()
}

/// The k8s fixture with this host's own pod UIDs, container ids and PIDs.
fn k8s(i: u64) -> HostSpec {
    let mut s = load("k8s-cgroupfs");
    s.hostname = format!("k8s-{i:02}");
    let names = [
        ("1bf924dd-3f6f", uuid(i * 10 + 1)),
        ("7a96c459-d529", uuid(i * 10 + 2)),
        ("3c1e0a2b", hex(i * 10 + 3, 8)),
        ("c17eb535a477", hex(i * 10 + 4, 12)),
        ("1d3d308a7d48", hex(i * 10 + 5, 12)),
        ("9e8f7a6b5c4d", hex(i * 10 + 6, 64)),
    ];
    rename_paths(&mut s, &|p| {
        names.iter().fold(p.to_string(), |acc, (a, b)| acc.replace(a, b))
    });
    shift_pids(&mut s, 1000 * i as u32);
    s
}

fn docker(i: u64) -> HostSpec {
    let mut s = load("docker-cgroupfs");
    s.hostname = format!("docker-{i:02}");
    let (a, b) = (hex(i * 7 + 1, 64), hex(i * 7 + 2, 12));
    rename_paths(&mut s, &|p| {
        p.replace("b29faf21b7ef", &a).replace("0bd31f558c42", &b)
    });
    shift_pids(&mut s, 100 * i as u32);
    s
}

/// A generated host: its spec and what its root says about the OS.
struct Gen {
    spec: HostSpec,
    os_release: Option<&'static str>,
    systemd_lib: Option<&'static str>,
    systemd_binary: Option<&'static str>,
}

fn gen_k8s(spec: HostSpec) -> Gen {
    Gen {
        spec,
        os_release: Some("ID=ubuntu\nVERSION_ID=\"20.04\"\n"),
        systemd_lib: Some("/usr/lib/x86_64-linux-gnu/systemd/libsystemd-shared-245.so"),
        systemd_binary: None,
    }
}

/// The fleet: 13 k8s nodes that differ only in names (one of them runs one
/// more pod of an existing shape), 2 with a nested cgroup (shape), 1 with a
/// quota where the others have none (settings), 8 docker hosts, 3 centos7.
fn fleet() -> Vec<Gen> {
    let mut v: Vec<Gen> = (0..12).map(|i| gen_k8s(k8s(i))).collect();
    let mut extra = k8s(12);
    let pod = uuid(999);
    for h in &mut extra.hierarchies {
        let add: Vec<_> = h
            .cgroups
            .iter()
            .filter(|(k, _)| k.contains("/besteffort/pod"))
            .map(|(k, c)| {
                let old = k.split('/').nth(3).unwrap().to_string();
                (k.replace(&old, &format!("pod{pod}")), c.clone())
            })
            .collect();
        h.cgroups.extend(add);
    }
    v.push(gen_k8s(extra));
    for i in 13..15 {
        let mut s = k8s(i);
        let h = s.hierarchies.iter_mut().find(|h| h.id == 2).unwrap();
        let deepest = h
            .cgroups
            .keys()
            .find(|k| k.contains("/burstable/pod") && k.matches('/').count() == 4)
            .unwrap()
            .clone();
        h.cgroups.insert(format!("{deepest}/nested"), Default::default());
        v.push(gen_k8s(s));
    }
    let mut q = k8s(15);
    let h = q.hierarchies.iter_mut().find(|h| h.id == 2).unwrap();
    let burst = h
        .cgroups
        .keys()
        .find(|k| k.contains("/burstable/pod") && k.matches('/').count() == 4)
        .unwrap()
        .clone();
    h.cgroups
        .get_mut(&burst)
        .unwrap()
        .settings
        .insert("cpu.cfs_quota_us".into(), "50000".into());
    v.push(gen_k8s(q));
    for i in 0..8 {
        v.push(Gen {
            spec: docker(i),
            os_release: Some("NAME=\"Amazon Linux\"\nID=\"amzn\"\nVERSION_ID=\"2\"\n"),
            systemd_lib: None,
            systemd_binary: Some("\x7fELF...\0systemd 219\0running in %ssystem mode"),
        });
    }
    for i in 0..3 {
        let mut s = load("centos7-legacy");
        s.hostname = format!("centos-{i}");
        v.push(Gen {
            spec: s,
            os_release: Some("ID=\"centos\"\nVERSION_ID=\"7\"\n"),
            systemd_lib: None,
            systemd_binary: None,
        });
    }
    v
}

fn write(root: &Path, abs: &str, text: &str) {
    let p = root.join(abs.trim_start_matches('/'));
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// Materialize and scan every host; write snapshots (and audits) to `out`.
fn write_fleet(out: &Path, audits: bool) {
    let rules = rules();
    for g in fleet() {
        let dir = scratch();
        materialize(&g.spec, dir.path(), &rules).unwrap();
        if let Some(t) = g.os_release {
            write(dir.path(), "/etc/os-release", t);
        }
        if let Some(lib) = g.systemd_lib {
            write(dir.path(), lib, "");
        }
        if let Some(b) = g.systemd_binary {
            write(dir.path(), "/usr/lib/systemd/systemd", b);
        }
        let snap = cgmig::scan::scan(&cgmig::host::Root::new(dir.path()).unwrap()).unwrap();
        let name = &g.spec.hostname;
        let text = if audits {
            let r = cgmig::assess::audit(&snap, &rules);
            cgmig::audit::render(&r, cgmig::audit::AuditFormat::Json).unwrap()
        } else {
            serde_json::to_string(&snap).unwrap()
        };
        std::fs::write(out.join(format!("{name}.json")), text).unwrap();
    }
}

fn families(r: &FleetReport) -> Vec<(usize, Vec<String>)> {
    r.families.iter().map(|f| (f.hosts, f.members.clone())).collect()
}

fn names(prefix: &str, range: std::ops::Range<u64>) -> Vec<String> {
    range.map(|i| format!("{prefix}{i:02}")).collect()
}

#[test]
fn generated_fleet_families_and_counts_from_snapshots() {
    let dir = scratch();
    write_fleet(dir.path(), false);
    let inputs = collect_inputs(&[dir.path().to_path_buf()]).unwrap();
    assert_eq!(inputs.files.len(), 27);
    let plans = scratch();
    let opts = FleetOptions {
        plans_dir: Some(plans.path().to_path_buf()),
        ..Default::default()
    };
    let r = run(&inputs, &rules(), &opts).unwrap();
    assert_eq!(r.hosts, 27);
    assert!(r.unreadable.is_empty(), "{:?}", r.unreadable);

    // Names vary, layout doesn't: one family of 13 (incl. the node with one
    // more pod of an existing shape); shape and settings changes split off.
    let mut k8s_base = names("k8s-", 0..13);
    k8s_base.sort();
    let centos: Vec<String> = (0..3).map(|i| format!("centos-{i}")).collect();
    assert_eq!(
        families(&r),
        vec![
            (13, k8s_base),
            (8, names("docker-", 0..8)),
            (3, centos),
            (2, names("k8s-", 13..15)),
            (1, vec!["k8s-15".to_string()]),
        ]
    );
    for f in &r.families {
        let p = f.plan.as_ref().expect("snapshot families carry a plan");
        // Actions and settings may be none: systemd, kubelet and docker rebuild
        // their trees themselves (issue 14).
        assert!(p.nodes > 1, "{f:?}");
        let file = p.file.as_ref().unwrap();
        let plan: cgmig::plan::Plan = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        assert_eq!(
            plan.host.hostname.as_deref(),
            Some(f.representative.host.as_str())
        );
        assert!(f.members.contains(&f.representative.host));
    }
    assert_eq!(std::fs::read_dir(plans.path()).unwrap().count(), 5);

    let buckets = |b: &[cgmig::fleet::Bucket]| -> Vec<(String, usize)> {
        b.iter().map(|b| (b.value.clone(), b.hosts)).collect()
    };
    assert_eq!(
        buckets(&r.by_distribution),
        vec![
            ("ubuntu 20.04".into(), 16),
            ("amzn 2".into(), 8),
            ("centos 7".into(), 3)
        ]
    );
    assert_eq!(
        buckets(&r.by_systemd),
        // The centos7-legacy fixture carries CentOS 7's systemd 219 binary.
        vec![("245".into(), 16), ("219".into(), 11)]
    );
    assert_eq!(
        buckets(&r.by_kernel),
        vec![
            ("5.4.0-1045-aws".into(), 16),
            ("4.14.336-253.554.amzn2.x86_64".into(), 8),
            ("3.10.0-1160.el7.x86_64".into(), 3)
        ]
    );
    assert_eq!(buckets(&r.by_mode), vec![("legacy".into(), 27)]);
    assert_eq!(r.verdicts.total(), 27);
    rules_and_verdicts(&r);
}

/// The generated fleet's rules, blockers and verdicts, host by host.
fn rules_and_verdicts(r: &FleetReport) {
    // Per rule: which hosts, exactly.
    let rule = |id: &str| {
        r.rules
            .iter()
            .find(|x| x.rule == id)
            .unwrap_or_else(|| panic!("no {id}"))
    };
    assert_eq!(rule("host.named-hierarchy").hosts, 27);
    // Docker rebuilds its containers' device lists: the runtime's info finding.
    assert_eq!(
        rule("owners.runtime-device-policy").members,
        names("docker-", 0..8)
    );
    let centos_docker: Vec<String> = {
        let mut v: Vec<String> = (0..3).map(|i| format!("centos-{i}")).collect();
        v.extend(names("docker-", 0..8));
        v
    };
    // 4.14 has io on cgroup2 but not io.weight (5.4); 3.10's lack of
    // cgroup2 is `host.kernel-no-cgroup2` alone (kernel_and_init_block).
    assert_eq!(
        rule("host.kernel-too-old").members,
        names("docker-", 0..8),
        "4.14 lacks v2 files"
    );
    assert_eq!(rule("blkio.weight").members, centos_docker);
    kernel_and_init_block(r, &centos_docker);
    assert_eq!(rule("host.internal-processes").hosts, 3);
    // blkio.throttle: v2's io.max caps the whole subtree (a behaviour change the
    // plan reports since issue 8); docker hosts throttle devices.
    assert!(r.rules.iter().any(|x| x.rule == "blkio.throttle"));
    // Since issue 19 a snapshot's verdict is its whole assessment's: the
    // planner's and owners' findings count, and a kernel that cannot hold the
    // settings on v2 (3.10, and 4.14 without cpu on cgroup2) blocks.
    // systemd's version is read once (issue 19): CentOS 7's and Amazon
    // Linux 2's 219 is the audit's `host.systemd-too-old` (one finding; the
    // readiness rule WR-SD-004 speaks only of a systemd that can run v2).
    // 19: the kernel and init findings (host.kernel-no-cgroup2,
    // host.kernel-lacks-controller, host.systemd-too-old) in, WR-SD-004 out.
    // 20: plan.io-scheduler-unknown (the generated hosts show no
    // /sys/block, so their blkio weights go to io.weight by default).
    assert_eq!(
        r.rules.len(),
        20,
        "{:?}",
        r.rules.iter().map(|x| &x.rule).collect::<Vec<_>>()
    );
    assert_eq!(
        (
            r.verdicts.ready,
            r.verdicts.ready_with_changes,
            r.verdicts.blocked
        ),
        (0, 16, 11)
    );
}

/// Kernel and init readiness in the generated fleet: CentOS 7's kernel has
/// no cgroup2; CentOS 7 and Amazon Linux 2 run systemd 219, and AL2's 4.14
/// lacks cpu on v2. The Ubuntu hosts (5.4, systemd 245) are the only ones
/// that can move.
fn kernel_and_init_block(r: &FleetReport, centos_docker: &[String]) {
    let members = |id: &str| {
        r.rules
            .iter()
            .find(|x| x.rule == id)
            .map_or_else(|| panic!("no {id}"), |x| x.members.clone())
    };
    let centos: Vec<String> = (0..3).map(|i| format!("centos-{i}")).collect();
    assert_eq!(members("host.kernel-no-cgroup2"), centos);
    assert_eq!(members("host.systemd-too-old"), centos_docker);
    assert_eq!(members("host.kernel-lacks-controller"), names("docker-", 0..8));
    let blockers: Vec<(&str, usize)> = r.blockers.iter().map(|b| (b.rule.as_str(), b.hosts)).collect();
    assert_eq!(
        blockers,
        [
            ("host.systemd-too-old", 11),
            // The planner leaves the settings out and blocks their stage.
            ("plan.kernel-too-old", 11),
            ("host.kernel-lacks-controller", 8),
            // io.weight (5.4) on 4.14, whose io controller is on cgroup2.
            ("host.kernel-too-old", 8),
            ("host.kernel-no-cgroup2", 3)
        ]
    );
}

#[test]
fn audits_group_like_snapshots_where_they_can_see() {
    let dir = scratch();
    write_fleet(dir.path(), true);
    let r = run(
        &collect_inputs(&[dir.path().to_path_buf()]).unwrap(),
        &rules(),
        &FleetOptions::default(),
    )
    .unwrap();
    assert_eq!(r.hosts, 27);
    assert_eq!(r.inputs.get(&cgmig::fleet::InputKind::Audit), Some(&27));
    let sizes: Vec<usize> = r.families.iter().map(|f| f.hosts).collect();
    // An audit lists only cgroups with findings or conversions; since it
    // carries the planner's and owners' findings too (issue 19), the nested
    // cgroup of k8s-13/14 shows (a runtime's tree), as in their snapshots.
    assert_eq!(sizes, vec![13, 8, 3, 2, 1]);
    assert!(r.families.iter().all(|f| f.plan.is_none()));
    assert_eq!(r.by_systemd[0].value, "245");
}

#[test]
fn blockers_are_ranked_by_hosts_affected() {
    let dir = scratch();
    let rules = rules();
    for i in 0..3 {
        let mut s = load("legacy-exotic");
        s.hostname = format!("exotic-{i}");
        shift_pids(&mut s, 50 * i);
        let root = scratch();
        materialize(&s, root.path(), &rules).unwrap();
        let snap = cgmig::scan::scan(&cgmig::host::Root::new(root.path()).unwrap()).unwrap();
        let text = serde_json::to_string(&snap).unwrap();
        std::fs::write(dir.path().join(format!("exotic-{i}.json")), text).unwrap();
    }
    let r = run(
        &collect_inputs(&[dir.path().to_path_buf()]).unwrap(),
        &rules,
        &FleetOptions::default(),
    )
    .unwrap();
    assert_eq!(r.verdicts.blocked, 3);
    assert_eq!(r.families.len(), 1, "PIDs differ, layout does not");
    // Split threads, and kernel 5.10 lacking what settings need (cpu.idle):
    // the audit's finding and the plan's stage, both blockers at their source.
    let ids: Vec<&str> = r.blockers.iter().map(|b| b.rule.as_str()).collect();
    assert_eq!(
        ids,
        [
            "host.kernel-too-old",
            "host.split-threads-domain",
            "plan.kernel-too-old"
        ]
    );
    for b in &r.blockers {
        assert_eq!(b.members, vec!["exotic-0", "exotic-1", "exotic-2"]);
    }
    let html = cgmig::fleet::render(&r, cgmig::fleet::FleetFormat::Html).unwrap();
    assert_eq!(html.matches("<rect class=\"bar\"").count(), 3);
}

#[test]
fn normalization_keeps_real_names() {
    assert_eq!(
        normalize_name("/system.slice/sshd.service"),
        "/system.slice/sshd.service"
    );
    assert_ne!(
        normalize_name("/kubepods/burstable"),
        normalize_name("/kubepods/besteffort")
    );
    assert_eq!(
        normalize_name(&format!("/kubepods/pod{}", uuid(1))),
        normalize_name(&format!("/kubepods/pod{}", uuid(2)))
    );
}

#[test]
fn cli_formats_and_bad_inputs() {
    let dir = scratch();
    write_fleet(dir.path(), true);
    let d = dir.path().to_str().unwrap();
    let out = cgmig(&["fleet", d, "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["schema"], "cgmig.fleet/v1");
    assert_eq!(v["hosts"], 27);
    let prom = String::from_utf8(cgmig(&["fleet", d, "--format", "prometheus"]).stdout).unwrap();
    assert!(
        prom.contains("cgmig_fleet_hosts{schema=\"cgmig.fleet/v1\"} 27\n"),
        "{prom}"
    );
    assert!(prom.contains("cgmig_fleet_families 5\n"), "{prom}");
    let html = String::from_utf8(cgmig(&["fleet", d, "--format", "html"]).stdout).unwrap();
    assert!(html.contains("\"hosts\":27"));
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "no external assets"
    );
    assert_eq!(html.matches("<tr class=\"family\"").count(), 5);
    let md = String::from_utf8(cgmig(&["fleet", d, "--format", "markdown"]).stdout).unwrap();
    assert!(md.contains("## Layout families"));

    std::fs::write(
        dir.path().join("broken.json"),
        "{\"schema\": \"cgmig.audit/v1\", \"host\": 1}",
    )
    .unwrap();
    let out = cgmig(&["fleet", d, "--format", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("broken.json"), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["hosts"], 27, "the other hosts are still reported");
    assert_eq!(
        v["unreadable"][0]["path"].as_str().unwrap(),
        dir.path().join("broken.json").to_str().unwrap()
    );

    let empty = scratch();
    let out = cgmig(&["fleet", empty.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no input files"));
}

/// Every visible subcommand path and its long flags, from the clap tree.
fn command_tree() -> Vec<(Vec<String>, Vec<String>)> {
    fn walk(c: &clap::Command, path: Vec<String>, out: &mut Vec<(Vec<String>, Vec<String>)>) {
        let flags = c
            .get_arguments()
            .filter(|a| !a.is_hide_set())
            .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
            .filter(|l| l != "--help" && l != "--version")
            .collect();
        out.push((path.clone(), flags));
        for s in c
            .get_subcommands()
            .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        {
            let mut p = path.clone();
            p.push(s.get_name().to_string());
            walk(s, p, out);
        }
    }
    let mut cmd = cgmig::cli::Cli::command();
    cmd.build();
    let mut out = Vec::new();
    walk(&cmd, Vec::new(), &mut out);
    out
}

#[test]
fn man_pages_and_completions_name_every_subcommand_and_flag() {
    let tree = command_tree();
    assert!(tree.iter().any(|(p, _)| p == &["fleet".to_string()]));
    let dir = scratch();
    let out = cgmig(&["man", "-o", dir.path().to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (path, flags) in &tree {
        let file = std::iter::once("cgmig".to_string())
            .chain(path.iter().cloned())
            .collect::<Vec<_>>()
            .join("-");
        let text = std::fs::read_to_string(dir.path().join(format!("{file}.1")))
            .unwrap_or_else(|e| panic!("man page {file}.1: {e}"))
            .replace('\\', "");
        for f in flags {
            assert!(text.contains(f.as_str()), "{file}.1 does not mention {f}");
        }
        if let Some(last) = path.last() {
            let parent = std::iter::once("cgmig".to_string())
                .chain(path[..path.len() - 1].iter().cloned())
                .collect::<Vec<_>>()
                .join("-");
            let ptext = std::fs::read_to_string(dir.path().join(format!("{parent}.1"))).unwrap();
            assert!(ptext.contains(last.as_str()), "{parent}.1 does not list {last}");
        }
    }
    for shell in ["bash", "zsh", "fish"] {
        let out = cgmig(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0));
        let text = String::from_utf8(out.stdout).unwrap();
        for (path, flags) in &tree {
            if let Some(last) = path.last() {
                assert!(text.contains(last.as_str()), "{shell} completion lacks {last}");
            }
            for f in flags {
                // fish writes `-l format`, the others `--format`.
                let fish = format!("-l {}", &f[2..]);
                assert!(
                    text.contains(f.as_str()) || (shell == "fish" && text.contains(&fish)),
                    "{shell} completion lacks {f} of {path:?}"
                );
            }
        }
    }
    assert_ne!(cgmig(&["completions", "tcsh"]).status.code(), Some(0));
}

#[test]
fn inputs_follow_links_once_and_never_loop() {
    use std::os::unix::fs::symlink;
    let dir = scratch();
    let d = dir.path();
    write(d, "/a.json", "{}");
    write(d, "/sub/b.yaml", "{}");
    write(d, "/notes.txt", "not an input");
    write(d, "/.hidden.json", "{}");
    symlink(d, d.join("sub/loop")).unwrap();
    symlink(d.join("a.json"), d.join("dup.json")).unwrap();
    symlink(d.join("nowhere.json"), d.join("dangling.json")).unwrap();
    let got = collect_inputs(&[d.to_path_buf(), d.join("sub")]).unwrap();
    // The link back to the top is not walked again, the second link to
    // a.json is dropped, the dangling link stays so it is reported.
    assert_eq!(
        got.files,
        vec![d.join("a.json"), d.join("dangling.json"), d.join("sub/b.yaml")]
    );
    assert!(got.errors.is_empty(), "{:?}", got.errors);
    let out = cgmig(&["fleet", d.to_str().unwrap(), "--format", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let bad: Vec<&str> = v["unreadable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["path"].as_str().unwrap())
        .collect();
    assert_eq!(bad.len(), 3, "{bad:?}");
    assert!(bad[1].ends_with("dangling.json"), "{bad:?}");
}

/// Fleet is total (issue 21): a tree deeper than the walk's limit is listed
/// as not walked, an invalid plan is not a host and is never written by
/// `--plans`, and every readable host is still reported, with exit 2.
#[test]
fn fleet_walk_is_total_and_plans_must_validate() {
    let d = scratch();
    let h = crate::util::host(&crate::util::host_names()[0]);
    let snap = serde_json::to_string(&h.scan()).unwrap();
    std::fs::write(d.path().join("good.json"), &snap).unwrap();
    // 40 levels, a snapshot at the bottom: past the limit, not walked.
    let mut deep = d.path().join("deep");
    for i in 0..40 {
        deep = deep.join(format!("d{i}"));
    }
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(deep.join("lost.json"), &snap).unwrap();
    // A plan that does not validate: its first node is not the root.
    let plan = cgmig::plan::plan(&h.scan(), &rules());
    let mut v = serde_json::to_value(&plan).unwrap();
    v["nodes"][0]["path"] = serde_json::json!("relative/path");
    std::fs::write(d.path().join("forged-plan.json"), v.to_string()).unwrap();
    let plans = d.path().join("plans-out");
    let out = cgmig(&[
        "fleet",
        d.path().to_str().unwrap(),
        "--format",
        "json",
        "--plans",
        plans.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", crate::util::stderr(&out));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let bad: Vec<(String, String)> = r["unreadable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["path"].as_str().unwrap().to_string(),
                u["error"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        bad.iter()
            .any(|(p, e)| p.contains("/d31") && e.contains("deeper than 32")),
        "{bad:?}"
    );
    assert!(
        bad.iter()
            .any(|(p, e)| p.ends_with("forged-plan.json") && e.contains("invalid plan")),
        "{bad:?}"
    );
    assert_eq!(r["hosts"].as_u64(), Some(1), "the good host is reported: {r}");
    // Only valid plans are written.
    for e in std::fs::read_dir(&plans).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        let p: cgmig::plan::Plan = serde_json::from_str(&text).unwrap();
        assert!(cgmig::plan::validate(&p).is_empty());
    }
}
