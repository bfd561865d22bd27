//! Workload readiness: the fixture hosts' readiness sections (reviewed
//! snapshots), real Go binaries built here with and without automaxprocs,
//! bounds and containment, and `cgmig convert` output parsed back and checked
//! with `systemd-analyze verify`.
//!
//! The Go and systemd-analyze tests print why they skip when the tool is
//! missing; CI (`scripts/test` as root) sets `CGMIG_REQUIRE_READINESS_TOOLS=1`
//! and installs golang-go, golang-uber-automaxprocs-dev and systemd, so there
//! they must run.

use std::path::Path;
use std::process::Command;

use cgmig::audit::readiness::{Section, render, section};
use cgmig::readiness::config::{cgconfig, lxc_settings};
use cgmig::readiness::convert::{DROPIN, convert};
use cgmig::readiness::{Class, Place};
use cgmig::rules::Severity;

use crate::util::*;

fn readiness_of(name: &str) -> (Section, cgmig::model::Snapshot) {
    let snap = host(name).scan();
    (section(&snap), snap)
}

/// A missing tool: skip with a reason, or fail where CI requires the tools.
fn tool_missing(tool: &str, why: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return false;
    }
    if std::env::var("CGMIG_REQUIRE_READINESS_TOOLS").as_deref() == Ok("1") {
        panic!("{tool} is required (CGMIG_REQUIRE_READINESS_TOOLS=1): {why}");
    }
    eprintln!("SKIPPED: {tool} not installed: {why}");
    true
}

/// A readiness fixture renders to its reviewed section.
fn renders_to_its_reviewed_section(name: &str) {
    let (s, _) = readiness_of(name);
    // Byte counts depend on nothing random, but keep the snapshot about findings.
    let text = render(&s, &cgmig::report::Style::PLAIN);
    let text = text.split_once('\n').map_or("", |(_, rest)| rest);
    insta::assert_snapshot!(format!("readiness-{name}"), text);
}
tests_named!(reviewed_section, renders_to_its_reviewed_section;
    readiness_hybrid => "readiness-hybrid",
    readiness_v2_ready => "readiness-v2-ready",
);

#[test]
fn hybrid_fixture_finds_every_family_with_file_version_and_source() {
    let (s, _) = readiness_of("readiness-hybrid");
    let rules: std::collections::BTreeSet<&str> = s.findings.iter().map(|f| f.rule.as_str()).collect();
    for want in [
        "WR-JVM-001",
        "WR-NODE-001",
        "WR-DOTNET-001",
        "WR-RT-001",
        "WR-RT-002",
        "WR-RT-004",
        "WR-RT-005",
        "WR-K8S-002",
        "WR-K8S-003",
        "WR-K8S-005",
        "WR-SD-001",
        "WR-SD-002",
        "WR-SD-003",
        "WR-LXC-001",
        "WR-LXC-002",
        "WR-LIBCG-001",
        "WR-LIBCG-002",
        "WR-KERN-002",
        "WR-AGT-001",
        "WR-GPU-001",
    ] {
        assert!(rules.contains(want), "{want} missing; found {rules:?}");
    }
    for f in &s.findings {
        assert!(
            !f.file.is_empty() && !f.found.is_empty() && !f.needed.is_empty() && !f.source.is_empty(),
            "{f:?}"
        );
    }
    // Images are scanned: the JDK 8u292 comes from a docker layer.
    assert!(s.findings.iter().any(|f| f.rule == "WR-JVM-001"
        && matches!(&f.place, Place::Image { store, .. } if store == "docker")
        && f.found.contains("1.8.0_292")));
    assert!(
        s.components
            .iter()
            .any(|c| c.name == "node"
                && matches!(&c.place, Place::Image { store, .. } if store == "containerd"))
    );
    assert!(
        s.components.iter().any(
            |c| c.name == "dotnet" && matches!(&c.place, Place::Image { store, .. } if store == "podman")
        )
    );
    // The kubelet refusing v1 is already wrong on this v1 host, not a regression.
    let k8s = s.findings.iter().find(|f| f.rule == "WR-K8S-003").unwrap();
    assert_eq!(
        (k8s.class, k8s.severity),
        (Class::AlreadyWrong, Severity::Blocker)
    );
    // Unverified rows never block: cgrules is info.
    let cgrules = s.findings.iter().find(|f| f.rule == "WR-LIBCG-002").unwrap();
    assert_eq!(cgrules.severity, Severity::Info);
    // A covered legacy directive is info; an uncovered one is what this
    // host's systemd (245) does with it: translated on v2, so info too.
    assert!(s.findings.iter().any(|f| f.rule == "WR-SD-001"
        && f.file.contains("nginx.service.d")
        && f.severity == Severity::Info));
    assert!(
        s.findings.iter().any(|f| f.rule == "WR-SD-001"
            && f.file.contains("legacy-app")
            && f.severity == Severity::Info
            && f.found.contains("systemd 245")),
        "{:#?}",
        s.findings
    );
    assert!(s.stats.layers >= 4 && s.stats.files_read > 10, "{:?}", s.stats);
}

#[test]
fn ready_host_has_nothing_worse_than_info_and_old_hosts_stay_silent() {
    let (s, _) = readiness_of("readiness-v2-ready");
    assert!(s.components.len() >= 6, "{:?}", s.components);
    let bad: Vec<_> = s
        .findings
        .iter()
        .filter(|f| f.severity > Severity::Info)
        .collect();
    assert!(bad.is_empty(), "{bad:#?}");
    // Hosts without these files get no readiness finding at all.
    let (s, _) = readiness_of("pure-v2");
    assert!(s.scanned && s.findings.is_empty(), "{:?}", s.findings);
}

#[test]
fn audit_includes_readiness_findings_and_snapshot_round_trips() {
    let h = host("readiness-hybrid");
    let snap = h.scan();
    let r = cgmig::assess::audit(&snap, &rules());
    assert!(
        r.findings
            .iter()
            .any(|f| f.rule == "WR-RT-004" && f.file.as_deref() == Some("/etc/docker/daemon.json:4"))
    );
    let table = cgmig::audit::render(&r, cgmig::audit::AuditFormat::Table).unwrap();
    assert!(
        table.contains("breaks after the switch") && table.contains("already wrong before it"),
        "{table}"
    );
    let json = serde_json::to_string(&snap).unwrap();
    let back: cgmig::model::Snapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(back, snap);
    // An old snapshot without the field still loads.
    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v.as_object_mut().unwrap().remove("readiness");
    let old: cgmig::model::Snapshot = serde_json::from_value(v).unwrap();
    assert!(!old.readiness.scanned);
}

#[test]
fn unreadable_and_escaping_files_are_skipped_with_a_diagnostic() {
    let h = host("readiness-v2-ready");
    let root = h.root();
    // A release file that points at a host file outside the root (it
    // resolves inside the root, as on the captured host, so the outside
    // file is never read), and a FIFO where a config is expected.
    let outside = tempfile::tempdir().unwrap();
    let host_release = outside.path().join("release");
    std::fs::write(&host_release, "JAVA_VERSION=\"1.8.0_999\"\n").unwrap();
    std::fs::create_dir_all(root.join("usr/lib/jvm/evil")).unwrap();
    std::os::unix::fs::symlink(&host_release, root.join("usr/lib/jvm/evil/release")).unwrap();
    std::fs::create_dir_all(root.join("etc/kernel")).unwrap();
    nix::unistd::mkfifo(&root.join("etc/kernel/cmdline"), nix::sys::stat::Mode::S_IRUSR).unwrap();
    // An image layer whose JDK is a symlink leading out of the layer into the
    // host's JDK: the host file must not be reported as the image's.
    let layer = root.join("var/lib/docker/overlay2/lnk/diff/opt/java");
    std::fs::create_dir_all(&layer).unwrap();
    std::os::unix::fs::symlink(
        "../../../../../../../../usr/lib/jvm/java-17-openjdk-amd64",
        layer.join("openjdk"),
    )
    .unwrap();
    assert!(
        layer.join("openjdk/release").is_file(),
        "the link does reach the host JDK"
    );
    let snap = h.scan();
    assert!(
        !snap
            .readiness
            .components
            .iter()
            .any(|c| matches!(&c.place, Place::Image { layer, .. } if layer == "lnk")),
        "{:#?}",
        snap.readiness.components
    );
    let diag = |needle: &str| snap.diagnostics.iter().any(|d| d.path.contains(needle));
    let found = serde_json::to_string(&snap.readiness).unwrap();
    assert!(
        !found.contains("1.8.0_999"),
        "a file outside the root was read: {found}"
    );
    assert!(diag("etc/kernel/cmdline"), "{:?}", snap.diagnostics);
    assert!(snap.readiness.stats.skipped >= 2);
}

fn go_build(dir: &Path, name: &str, with_automaxprocs: bool) -> std::path::PathBuf {
    let src = dir.join(name);
    std::fs::create_dir_all(&src).unwrap();
    let (import, require) = if with_automaxprocs {
        (
            "import _ \"go.uber.org/automaxprocs\"\n",
            "require go.uber.org/automaxprocs v1.4.0\nreplace go.uber.org/automaxprocs => /usr/share/gocode/src/go.uber.org/automaxprocs\n",
        )
    } else {
        ("", "")
    };
    std::fs::write(
        src.join("go.mod"),
        format!("module example.com/{name}\n\ngo 1.19\n{require}"),
    )
    .unwrap();
    std::fs::write(
        src.join("main.go"),
        format!("package main\n\n{import}\nfunc main() {{}}\n"),
    )
    .unwrap();
    let out = dir.join(format!("{name}.bin"));
    let o = Command::new("go")
        .args(["build", "-o"])
        .arg(&out)
        .arg(".")
        .current_dir(&src)
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod")
        .env("CGO_ENABLED", "0")
        .env("GOCACHE", dir.join("cache"))
        .env("GOPATH", dir.join("gopath"))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "go build {name}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

#[test]
#[ignore = "needs tools: go and golang-uber-automaxprocs-dev, which scripts/test installs as root"]
fn go_binaries_built_here_are_read_from_their_build_info() {
    if tool_missing(
        "go",
        "Go binaries with and without automaxprocs are built by this test (apt-get install golang-go)",
    ) {
        return;
    }
    if !Path::new("/usr/share/gocode/src/go.uber.org/automaxprocs").is_dir() {
        if std::env::var("CGMIG_REQUIRE_READINESS_TOOLS").as_deref() == Ok("1") {
            panic!("golang-uber-automaxprocs-dev is required (CGMIG_REQUIRE_READINESS_TOOLS=1)");
        }
        eprintln!("SKIPPED: golang-uber-automaxprocs-dev not installed");
        return;
    }
    let work = scratch();
    let with = go_build(work.path(), "svc", true);
    let without = go_build(work.path(), "plain", false);
    let h = host("readiness-v2-ready");
    let place = |rel: &str, bin: &Path| {
        let p = h.root().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::copy(bin, &p).unwrap();
    };
    place("usr/local/bin/svc", &with);
    place("var/lib/docker/overlay2/abc/diff/app/plain", &without);
    // The same binary on the host, started by a unit that pins GOMAXPROCS.
    place("usr/local/bin/plain", &without);
    std::fs::write(
        h.root().join("etc/systemd/system/plain.service"),
        "[Service]\nEnvironment=GOMAXPROCS=2\nExecStart=/usr/local/bin/plain\n",
    )
    .unwrap();
    // The same again, with GOMAXPROCS and GOMEMLIMIT in a drop-in only.
    place("usr/local/bin/plain2", &without);
    std::fs::write(
        h.root().join("etc/systemd/system/plain2.service"),
        "[Service]\nExecStart=/usr/local/bin/plain2 --serve\n",
    )
    .unwrap();
    let dropins = h.root().join("etc/systemd/system/plain2.service.d");
    std::fs::create_dir_all(&dropins).unwrap();
    std::fs::write(
        dropins.join("go.conf"),
        "[Service]\nEnvironment=\"GOMAXPROCS=2\" GOMEMLIMIT=900MiB\n",
    )
    .unwrap();
    let snap = h.scan();
    let go: Vec<_> = snap
        .readiness
        .components
        .iter()
        .filter(|c| c.name == "go")
        .collect();
    assert_eq!(go.len(), 4, "{go:#?}");
    let svc = go.iter().find(|c| c.path == "/usr/local/bin/svc").unwrap();
    assert!(svc.version.starts_with("go1."), "{svc:?}");
    assert_eq!(
        svc.details.get("automaxprocs").map(String::as_str),
        Some("v1.4.0")
    );
    let plain = go.iter().find(|c| c.path == "/app/plain").unwrap();
    assert!(matches!(&plain.place, Place::Image { store, .. } if store == "docker"));
    assert!(!plain.details.contains_key("automaxprocs"));
    let s = section(&snap);
    let rule_for = |path: &str| {
        s.findings
            .iter()
            .find(|f| f.file == path)
            .map(|f| (f.rule.as_str(), f.class))
    };
    assert_eq!(
        rule_for("/usr/local/bin/svc"),
        Some(("WR-GO-001", Class::BreaksAfterSwitch))
    );
    assert_eq!(rule_for("/app/plain"), Some(("WR-GO-002", Class::AlreadyWrong)));
    assert_eq!(
        rule_for("/usr/local/bin/plain"),
        Some(("WR-GO-003", Class::Neutral))
    );
    assert_eq!(
        rule_for("/usr/local/bin/plain2"),
        Some(("WR-GO-003", Class::Neutral))
    );
    let f = s
        .findings
        .iter()
        .find(|f| f.file == "/usr/local/bin/plain2")
        .unwrap();
    assert!(
        f.found
            .contains("GOMAXPROCS set at /etc/systemd/system/plain2.service.d/go.conf:2")
            && f.found.contains("GOMEMLIMIT at"),
        "{}",
        f.found
    );
}

#[test]
fn converted_files_parse_back() {
    let (_, snap) = readiness_of("readiness-hybrid");
    let stages = [(
        1,
        "cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1".to_string(),
    )];
    let out = convert(&snap.readiness, &rules(), &stages);
    let file = |p: &str| {
        out.files
            .iter()
            .find(|f| f.path == p)
            .unwrap_or_else(|| panic!("{p}: {out:#?}"))
    };
    // LXC: no v1 key is left active; the v2 keys carry converted values.
    let lxc = lxc_settings("c", &file("/var/lib/lxc/web/config").text);
    assert!(lxc.iter().all(|s| s.key.starts_with("lxc.cgroup2.")), "{lxc:?}");
    let kv: Vec<(&str, &str)> = lxc.iter().map(|s| (s.key.as_str(), s.value.as_str())).collect();
    assert!(kv.contains(&("lxc.cgroup2.memory.max", "536870912")), "{kv:?}");
    assert!(kv.contains(&("lxc.cgroup2.cpuset.cpus", "0-1")), "{kv:?}");
    // One `devices.allow` line on a cgroup that allows everything changes
    // nothing in v1; LXC's cgroup2 default is deny, so the policy in force
    // (allow all) is written out, not the line.
    assert!(kv.contains(&("lxc.cgroup2.devices.allow", "a")), "{kv:?}");
    assert!(kv.iter().any(|(k, _)| *k == "lxc.cgroup2.cpu.weight"), "{kv:?}");
    assert!(
        out.notes.iter().any(|n| n.contains("net_cls.classid")),
        "{:?}",
        out.notes
    );
    // cgconfig: parses, no mount section, only v2 files.
    let cg = cgconfig::parse(&file("/etc/cgconfig.conf").text).unwrap();
    assert!(cg.iter().all(|b| b.head[0] != "mount"));
    let settings = cgconfig::settings("/etc/cgconfig.conf", &cg);
    assert!(!settings.is_empty());
    for s in &settings {
        assert!(cgmig::model::files::is_v2_setting(&s.key), "{s:?}");
    }
    // Boot lines of the stage, in every file the distribution uses.
    for p in [
        "/etc/default/grub",
        "/boot/loader/entries/4c1d-5.4.0-150-generic.conf",
        "/etc/kernel/cmdline",
    ] {
        let f = out
            .files
            .iter()
            .find(|f| f.path == p && f.stage == Some(1))
            .unwrap();
        assert!(
            f.text.contains("systemd.unified_cgroup_hierarchy=1") && !f.text.contains("hierarchy=0"),
            "{p}: {}",
            f.text
        );
        assert!(!f.text.contains("legacy_systemd_cgroup_controller"), "{p}");
    }
    assert!(
        file("/etc/default/grub")
            .text
            .contains("GRUB_CMDLINE_LINUX_DEFAULT=\"quiet splash\"")
    );
}

#[test]
#[ignore = "needs tools: systemd-analyze, which scripts/test installs as root"]
fn generated_drop_ins_pass_systemd_analyze_verify() {
    if tool_missing(
        "systemd-analyze",
        "verifies generated drop-ins (apt-get install systemd)",
    ) {
        return;
    }
    let (_, snap) = readiness_of("readiness-hybrid");
    let out = convert(&snap.readiness, &rules(), &[]);
    let dropins: Vec<_> = out.files.iter().filter(|f| f.path.ends_with(DROPIN)).collect();
    assert_eq!(
        dropins.len(),
        1,
        "only legacy-app lacks its v2 counterparts: {dropins:#?}"
    );
    let d = dropins[0];
    assert!(
        d.text.contains("CPUWeight=50") && d.text.contains("MemoryMax=2G") && d.text.contains("IOWeight=160"),
        "{}",
        d.text
    );
    assert!(
        d.text.contains("IODeviceWeight=/dev/sda 200") && d.text.contains("IOReadBandwidthMax=/dev/sda 10M"),
        "{}",
        d.text
    );
    let dir = scratch();
    let unit = "legacy-app.service";
    std::fs::write(
        dir.path().join(unit),
        "[Unit]\nDescription=minimal\n[Service]\nExecStart=/bin/true\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join(format!("{unit}.d"))).unwrap();
    std::fs::write(dir.path().join(format!("{unit}.d/{DROPIN}")), &d.text).unwrap();
    let verify = || {
        let o = Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(dir.path().join(unit))
            .output()
            .unwrap();
        (o.status.success(), String::from_utf8_lossy(&o.stderr).to_string())
    };
    // systemd names the drop-in in every warning about it; a clean drop-in gets none.
    let (ok, err) = verify();
    assert!(ok, "{err}");
    let about: Vec<&str> = err.lines().filter(|l| l.contains(DROPIN)).collect();
    assert!(about.is_empty(), "{about:#?}");
    // The check can fail: a legacy directive and a typo in the same place are reported.
    std::fs::write(
        dir.path().join(format!("{unit}.d/{DROPIN}")),
        "[Service]\nMemoryLimit=1G\nCPUWeightt=5\n",
    )
    .unwrap();
    let (_, err) = verify();
    assert!(
        err.contains(&format!("{DROPIN}:2: Unit uses MemoryLimit=")),
        "{err}"
    );
    assert!(err.contains(&format!("{DROPIN}:3: Unknown key")), "{err}");
}

#[test]
fn cli_convert_writes_a_reviewable_tree_and_never_overwrites() {
    let h = host("readiness-hybrid");
    let work = scratch();
    let dir = work.path().join("out");
    let root = h.root().to_str().unwrap();
    let o = cgmig(&["convert", "--root", root, "-o", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        dir.join(format!("final/etc/systemd/system/legacy-app.service.d/{DROPIN}"))
            .is_file()
    );
    assert!(dir.join("final/var/lib/lxc/web/config").is_file());
    assert!(dir.join("stage-1/etc/default/grub").is_file());
    let diff = std::fs::read_to_string(dir.join("changes.diff")).unwrap();
    assert!(
        diff.contains("-GRUB_CMDLINE_LINUX=\"systemd.unified_cgroup_hierarchy=0 swapaccount=1\""),
        "{diff}"
    );
    assert!(diff.contains("+lxc.cgroup2.memory.max = 536870912"), "{diff}");
    // A second run into the same directory is refused, nothing touched.
    let o = cgmig(&["convert", "--root", root, "-o", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not empty"), "{}", stderr(&o));
    // Without -o the diff goes to stdout.
    let o = cgmig(&["convert", "--root", root]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("+CPUWeight=50"));
}

/// Build a header-only rpm with rpmbuild (no files: only its header matters).
/// A long description makes the header span several 4 KiB pages (a
/// Berkeley DB overflow chain).
fn rpm_build(dir: &Path, name: &str, epoch: Option<u32>, version: &str, release: &str) -> std::path::PathBuf {
    let epoch = epoch.map_or(String::new(), |e| format!("Epoch: {e}\n"));
    let long = if name == "docker-ce" {
        "long description line\n".repeat(600)
    } else {
        String::new()
    };
    let spec = dir.join(format!("{name}.spec"));
    std::fs::write(
        &spec,
        format!(
            "Name: {name}\n{epoch}Version: {version}\nRelease: {release}\nSummary: cgmig test\n\
             License: MIT\nBuildArch: noarch\n%description\ncgmig readiness test package\n{long}%files\n"
        ),
    )
    .unwrap();
    let top = dir.join("top");
    let o = Command::new("rpmbuild")
        .arg("--define")
        .arg(format!("_topdir {}", top.display()))
        .arg("-bb")
        .arg(&spec)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "rpmbuild {name}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    top.join(format!("RPMS/noarch/{name}-{version}-{release}.noarch.rpm"))
}

/// A real rpm ≥ 4.16 SQLite database under `root/var/lib/rpm`, written by rpm.
fn rpm_database(root: &Path, work: &Path) {
    let db = root.join("var/lib/rpm");
    std::fs::create_dir_all(&db).unwrap();
    let pkgs = [
        rpm_build(work, "docker-ce", Some(3), "19.03.15", "3.el7"),
        rpm_build(
            work,
            "java-1.8.0-openjdk-headless",
            Some(1),
            "1.8.0.292.b10",
            "1.el7_9",
        ),
        rpm_build(work, "bash", None, "4.2.46", "35.el7_9"),
    ];
    let rpm = |args: &[&std::ffi::OsStr]| {
        let o = Command::new("rpm")
            .arg("--dbpath")
            .arg(&db)
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "rpm {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    rpm(&["--initdb".as_ref()]);
    let mut args: Vec<&std::ffi::OsStr> = vec!["-i".as_ref(), "--justdb".as_ref(), "--nodeps".as_ref()];
    args.extend(pkgs.iter().map(|p| p.as_os_str()));
    rpm(&args);
}

fn rpm_components(snap: &cgmig::model::Snapshot) -> Vec<(String, String, String)> {
    let mut v: Vec<_> = snap
        .readiness
        .components
        .iter()
        .filter(|c| c.evidence.starts_with("rpm package"))
        .map(|c| (c.name.clone(), c.version.clone(), c.path.clone()))
        .collect();
    v.sort();
    v
}

#[test]
fn rpm_sqlite_database_written_by_rpm_is_read() {
    if tool_missing(
        "rpmbuild",
        "rpm databases are written by rpm itself (apt-get install rpm)",
    ) {
        return;
    }
    let work = scratch();
    let h = host("readiness-v2-ready");
    rpm_database(h.root(), work.path());
    let snap = h.scan();
    assert_eq!(
        rpm_components(&snap),
        vec![
            (
                "docker".into(),
                "3:19.03.15-3.el7".into(),
                "/var/lib/rpm/rpmdb.sqlite".into()
            ),
            (
                "openjdk".into(),
                "1.8.0.292.b10-1.el7_9".into(),
                "/var/lib/rpm/rpmdb.sqlite".into()
            ),
        ]
    );
    let s = section(&snap);
    let rules: Vec<&str> = s
        .findings
        .iter()
        .filter(|f| f.file == "/var/lib/rpm/rpmdb.sqlite")
        .map(|f| f.rule.as_str())
        .collect();
    assert!(
        rules.contains(&"WR-RT-001") && rules.contains(&"WR-JVM-001"),
        "{rules:?}"
    );
    assert!(
        !snap.diagnostics.iter().any(|d| d.path.contains("rpm")),
        "{:?}",
        snap.diagnostics
    );
    // Reading left the database as it was: no journal or WAL created.
    let names: Vec<_> = std::fs::read_dir(h.root().join("var/lib/rpm"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(!names.iter().any(|n| n.ends_with("-journal")), "{names:?}");
}

/// The same headers in a Berkeley DB hash database (RHEL 7/8's `Packages`),
/// written by libdb 5.3's own `db_load` from the headers rpm stored.
#[test]
fn rpm_berkeley_db_packages_file_is_read() {
    if tool_missing("rpmbuild", "rpm headers are written by rpm (apt-get install rpm)")
        || tool_missing(
            "db5.3_load",
            "the Berkeley DB file is written by libdb (apt-get install db5.3-util)",
        )
    {
        return;
    }
    let work = scratch();
    let sqlite_host = host("readiness-v2-ready");
    rpm_database(sqlite_host.root(), work.path());
    let conn = rusqlite::Connection::open(sqlite_host.root().join("var/lib/rpm/rpmdb.sqlite")).unwrap();
    let mut stmt = conn.prepare("SELECT hnum, blob FROM Packages").unwrap();
    let rows: Vec<(u32, Vec<u8>)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), 3);
    // db_load's dump format: keys are rpm's 4-byte instance numbers (host
    // order), plus the counter record under key 0 as rpm keeps it.
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let mut dump = String::from("VERSION=3\nformat=bytevalue\ntype=hash\ndb_pagesize=4096\nHEADER=END\n");
    dump += &format!(" {}\n {}\n", hex(&0u32.to_le_bytes()), hex(&4u32.to_le_bytes()));
    for (n, blob) in &rows {
        dump += &format!(" {}\n {}\n", hex(&n.to_le_bytes()), hex(blob));
    }
    dump += "DATA=END\n";
    let h = host("readiness-v2-ready");
    let db = h.root().join("var/lib/rpm");
    std::fs::create_dir_all(&db).unwrap();
    let mut child = Command::new("db5.3_load")
        .arg(db.join("Packages"))
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(dump.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());
    let snap = h.scan();
    let want = |v: &str| {
        (
            "docker".to_string(),
            v.to_string(),
            "/var/lib/rpm/Packages".to_string(),
        )
    };
    let got = rpm_components(&snap);
    assert!(got.contains(&want("3:19.03.15-3.el7")), "{got:?}");
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        !snap.diagnostics.iter().any(|d| d.path.contains("rpm")),
        "{:?}",
        snap.diagnostics
    );
    // Damaged: every page after the metadata overwritten; a diagnostic, no panic.
    let file = db.join("Packages");
    let mut bytes = std::fs::read(&file).unwrap();
    for b in bytes.iter_mut().skip(4096) {
        *b = 0xa5;
    }
    std::fs::write(&file, &bytes).unwrap();
    let snap = h.scan();
    assert!(rpm_components(&snap).is_empty());
}

#[test]
fn jvm_heap_options_in_units_drop_ins_and_jvm_options_mitigate_the_jvm_finding() {
    let h = host("readiness-v2-ready");
    let root = h.root();
    let write = |rel: &str, text: &str| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    // Three JDK 11.0.14 homes (container-aware on v1 only).
    for jdk in ["a", "b", "c"] {
        write(
            &format!("usr/lib/jvm/{jdk}/release"),
            "JAVA_VERSION=\"11.0.14\"\n",
        );
    }
    // a: -Xmx in a drop-in's environment file, the program in the unit file.
    write(
        "etc/systemd/system/shop.service",
        "[Service]\nExecStart=/usr/lib/jvm/a/bin/java -jar shop.jar\n",
    );
    write(
        "etc/systemd/system/shop.service.d/heap.conf",
        "[Service]\nEnvironmentFile=-/etc/default/shop\n",
    );
    write("etc/default/shop", "# heap\nJAVA_OPTS=\"-Xms1g -Xmx2g\"\n");
    // b: only MaxRAMPercentage, which an unaware JVM applies to host RAM.
    write(
        "etc/systemd/system/batch.service",
        "[Service]\nExecStart=/usr/lib/jvm/b/bin/java -XX:MaxRAMPercentage=50 -jar b.jar\n",
    );
    // c: nothing. Elasticsearch's bundled JDK with -Xmx in jvm.options.d.
    write(
        "usr/share/elasticsearch/jdk/release",
        "JAVA_VERSION=\"11.0.12\"\n",
    );
    write(
        "etc/elasticsearch/jvm.options.d/heap.options",
        "# size\n-Xms4g\n-Xmx4g\n",
    );
    let s = section(&h.scan());
    let finding = |path: &str| {
        s.findings
            .iter()
            .find(|f| f.file == path)
            .unwrap_or_else(|| panic!("no finding for {path}: {:#?}", s.findings))
    };
    let a = finding("/usr/lib/jvm/a/release");
    assert_eq!((a.rule.as_str(), a.severity), ("WR-JVM-004", Severity::Warning));
    assert!(a.found.contains("-Xmx2g at /etc/default/shop:2"), "{}", a.found);
    let b = finding("/usr/lib/jvm/b/release");
    assert_eq!((b.rule.as_str(), b.severity), ("WR-JVM-001", Severity::Error));
    assert!(
        b.found.contains("MaxRAMPercentage=50") && b.found.contains("does not bound"),
        "{}",
        b.found
    );
    assert_eq!(finding("/usr/lib/jvm/c/release").rule, "WR-JVM-001");
    let es = finding("/usr/share/elasticsearch/jdk/release");
    assert_eq!(es.rule, "WR-JVM-004");
    assert!(
        es.found
            .contains("/etc/elasticsearch/jvm.options.d/heap.options:3"),
        "{}",
        es.found
    );
    // Host-wide: /etc/environment reaches every JVM, c included.
    write("etc/environment", "JAVA_TOOL_OPTIONS=\"-XX:MaxRAM=8g\"\n");
    let s = section(&h.scan());
    let c = s
        .findings
        .iter()
        .find(|f| f.file == "/usr/lib/jvm/c/release")
        .unwrap();
    assert_eq!(c.rule, "WR-JVM-004");
    assert!(
        c.found.contains("-XX:MaxRAM=8g at /etc/environment:1"),
        "{}",
        c.found
    );
}

/// A docker overlay2 store with its image metadata: `layers` are (cache id,
/// diff id, files), bottom first, shared between images by diff chain.
/// (cache id, diff id, files as (path, contents)).
type Layer<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);

fn docker_image(root: &Path, id: &str, tag: &str, layers: &[Layer<'_>]) {
    let meta = root.join("var/lib/docker/image/overlay2");
    let mut parent = String::new();
    let mut diff_ids = Vec::new();
    for (cache, diff, files) in layers {
        // A made-up chain id per (parent, diff): unique is all docker needs here.
        let chain = format!(
            "{:0>64}",
            format!("{}{}", parent.len(), diff.trim_start_matches("sha256:"))
        );
        let dir = meta.join("layerdb/sha256").join(&chain);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("diff"), diff).unwrap();
        std::fs::write(dir.join("cache-id"), cache).unwrap();
        if !parent.is_empty() {
            std::fs::write(dir.join("parent"), &parent).unwrap();
        }
        parent = format!("sha256:{chain}");
        diff_ids.push(format!("\"{diff}\""));
        for (rel, text) in *files {
            let p = root
                .join("var/lib/docker/overlay2")
                .join(cache)
                .join("diff")
                .join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
    }
    let content = meta.join("imagedb/content/sha256");
    std::fs::create_dir_all(&content).unwrap();
    std::fs::write(
        content.join(id),
        format!(
            "{{\"rootfs\":{{\"type\":\"layers\",\"diff_ids\":[{}]}}}}",
            diff_ids.join(",")
        ),
    )
    .unwrap();
    let repos = meta.join("repositories.json");
    let mut v: serde_json::Value = std::fs::read_to_string(&repos)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(|| serde_json::json!({"Repositories": {}}));
    let repo = tag.rsplit_once(':').unwrap().0;
    v["Repositories"][repo][tag] = serde_json::json!(format!("sha256:{id}"));
    std::fs::write(repos, v.to_string()).unwrap();
}

fn jdks_by_image(snap: &cgmig::model::Snapshot) -> Vec<(String, String)> {
    let mut v: Vec<_> = snap
        .readiness
        .components
        .iter()
        .filter(|c| c.name == "openjdk")
        .filter_map(|c| match &c.place {
            Place::Image { image, layer, .. } => Some((
                image.clone().unwrap_or(format!("layer {layer}")),
                c.version.clone(),
            )),
            Place::Host => None,
        })
        .collect();
    v.sort();
    v
}

#[test]
fn image_layers_are_stacked_with_whiteouts_and_reported_per_image() {
    let h = host("readiness-v2-ready");
    let root = h.root();
    let jdk8 = "JAVA_VERSION=\"1.8.0_292\"\n";
    let jdk17 = "JAVA_VERSION=\"17.0.9\"\n";
    let base: Layer<'_> = ("base", "sha256:d0", &[("opt/java/openjdk/release", jdk8)]);
    // Only the base: the JDK 8 is there.
    docker_image(root, "aaa111", "app/old:1", &[base]);
    // A layer deleting /opt/java (`.wh.java`): no JDK left.
    docker_image(
        root,
        "bbb222",
        "app/slim:2",
        &[base, ("del", "sha256:d1", &[("opt/.wh.java", "")])],
    );
    // An opaque /opt holding a new JDK 17: only 17 is visible.
    docker_image(
        root,
        "ccc333",
        "app/new:3",
        &[
            base,
            (
                "opq",
                "sha256:d2",
                &[("opt/.wh..wh..opq", ""), ("opt/java/openjdk/release", jdk17)],
            ),
        ],
    );
    // cAdvisor known by its tag, and a layer no image names.
    docker_image(
        root,
        "ddd444",
        "gcr.io/cadvisor/cadvisor:v0.39.0",
        &[("cad", "sha256:d3", &[("etc/x", "")])],
    );
    let orphan = root.join("var/lib/docker/overlay2/orphan/diff/usr/lib/jvm/j11");
    std::fs::create_dir_all(&orphan).unwrap();
    std::fs::write(orphan.join("release"), "JAVA_VERSION=\"11.0.2\"\n").unwrap();
    // podman: an image of two layers whose top deletes the JDK of the bottom.
    let storage = root.join("var/lib/containers/storage");
    for (layer, rel) in [("p0", "opt/java/openjdk/release"), ("p1", "opt/java/.wh.openjdk")] {
        let p = storage.join("overlay").join(layer).join("diff").join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, jdk8).unwrap();
    }
    std::fs::create_dir_all(storage.join("overlay-layers")).unwrap();
    std::fs::create_dir_all(storage.join("overlay-images")).unwrap();
    std::fs::write(
        storage.join("overlay-layers/layers.json"),
        r#"[{"id":"p0"},{"id":"p1","parent":"p0"}]"#,
    )
    .unwrap();
    std::fs::write(
        storage.join("overlay-images/images.json"),
        r#"[{"id":"eee555","names":["quay.io/x/podapp:1"],"layer":"p1"}]"#,
    )
    .unwrap();
    let snap = h.scan();
    assert_eq!(
        jdks_by_image(&snap),
        vec![
            ("app/new:3".to_string(), "17.0.9".to_string()),
            ("app/old:1".to_string(), "1.8.0_292".to_string()),
            ("layer orphan".to_string(), "11.0.2".to_string()),
        ]
    );
    let s = section(&snap);
    let cad = s
        .findings
        .iter()
        .find(|f| f.rule == "WR-AGT-002")
        .expect("cAdvisor by tag");
    assert!(cad.found.contains("0.39.0"), "{}", cad.found);
    let jvm: Vec<String> = s
        .findings
        .iter()
        .filter(|f| f.rule.starts_with("WR-JVM"))
        .map(|f| f.place.to_string())
        .collect();
    assert!(
        jvm.contains(&"docker image app/old:1 (layer base)".to_string()),
        "{jvm:?}"
    );
}

#[test]
#[ignore = "needs root: overlayfs whiteouts are character devices 0/0 and trusted.* xattrs"]
fn overlayfs_char_device_whiteouts_and_opaque_xattrs_hide_lower_files() {
    if !nix::unistd::geteuid().is_root() {
        if std::env::var("CGMIG_REQUIRE_KERNEL_TESTS").as_deref() == Ok("1") {
            panic!("root is required (CGMIG_REQUIRE_KERNEL_TESTS=1)");
        }
        eprintln!("SKIPPED: not root: mknod and trusted.* xattrs need CAP_MKNOD/CAP_SYS_ADMIN");
        return;
    }
    let h = host("readiness-v2-ready");
    let root = h.root();
    let jdk8 = "JAVA_VERSION=\"1.8.0_292\"\n";
    let base: Layer<'_> = ("base", "sha256:d0", &[("opt/java/openjdk/release", jdk8)]);
    docker_image(
        root,
        "aaa111",
        "app/chr:1",
        &[base, ("chr", "sha256:d1", &[("etc/x", "")])],
    );
    docker_image(
        root,
        "bbb222",
        "app/opq:2",
        &[base, ("opq", "sha256:d2", &[("opt/keep", "")])],
    );
    let chr = root.join("var/lib/docker/overlay2/chr/diff/opt");
    std::fs::create_dir_all(&chr).unwrap();
    nix::sys::stat::mknod(
        &chr.join("java"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
        0,
    )
    .unwrap();
    let opq = root.join("var/lib/docker/overlay2/opq/diff/opt");
    xattr::set(&opq, "trusted.overlay.opaque", b"y").unwrap();
    let snap = h.scan();
    assert_eq!(jdks_by_image(&snap), Vec::<(String, String)>::new());
}

#[test]
fn rust_binary_built_here_is_found_by_its_rustc_comment() {
    if tool_missing("rustc", "a Rust binary is built by this test") {
        return;
    }
    let work = scratch();
    let src = work.path().join("m.rs");
    std::fs::write(&src, "fn main() {}\n").unwrap();
    let bin = work.path().join("m");
    let o = Command::new("rustc")
        .arg("-o")
        .arg(&bin)
        .arg(&src)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v = Command::new("rustc").arg("--version").output().unwrap();
    let want = String::from_utf8_lossy(&v.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    let h = host("readiness-v2-ready");
    let dst = h.root().join("usr/local/bin/rusty");
    std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
    std::fs::copy(&bin, &dst).unwrap();
    let snap = h.scan();
    let rust: Vec<_> = snap
        .readiness
        .components
        .iter()
        .filter(|c| c.name == "rust")
        .collect();
    assert_eq!(rust.len(), 1, "{rust:#?}");
    assert_eq!(
        (rust[0].version.as_str(), rust[0].path.as_str()),
        (want.as_str(), "/usr/local/bin/rusty")
    );
}

#[test]
fn slurm_yarn_htcondor_and_compose_configs_are_evaluated() {
    let h = host("readiness-v2-ready");
    let write = |rel: &str, text: &str| {
        let p = h.root().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write(
        "etc/slurm/cgroup.conf",
        "CgroupAutomount=yes\nCgroupPlugin=cgroup/v1\nConstrainKmemSpace=yes\n",
    );
    write(
        "etc/hadoop/conf/yarn-site.xml",
        "<configuration>\n  <property>\n    <name>yarn.nodemanager.linux-container-executor.resources-handler.class</name>\n    \
         <value>org.apache.hadoop.yarn.server.nodemanager.util.CgroupsLCEResourcesHandler</value>\n  </property>\n</configuration>\n",
    );
    write("etc/condor/config.d/10-cgroup", "BASE_CGROUP = htcondor\n");
    write(
        "opt/shop/docker-compose.yml",
        "services:\n  api:\n    image: shop/api:1\n    mem_swappiness: 10\n    oom_kill_disable: true\n    cpu_shares: 512\n",
    );
    write("srv/broken/compose.yaml", "services: [\n");
    let snap = h.scan();
    let s = section(&snap);
    let at = |rule: &str| -> Vec<String> {
        s.findings
            .iter()
            .filter(|f| f.rule == rule)
            .map(|f| f.file.clone())
            .collect()
    };
    assert_eq!(at("WR-HPC-001"), vec!["/etc/slurm/cgroup.conf:2"]);
    assert_eq!(at("WR-HPC-003"), vec!["/etc/slurm/cgroup.conf:3"]);
    assert_eq!(at("WR-HPC-002"), vec!["/etc/hadoop/conf/yarn-site.xml:3"]);
    assert_eq!(at("WR-HPC-004"), vec!["/etc/condor/config.d/10-cgroup:1"]);
    assert_eq!(
        at("WR-RT-006"),
        vec!["/opt/shop/docker-compose.yml:4", "/opt/shop/docker-compose.yml:5"]
    );
    assert_eq!(at("WR-RT-009"), vec!["/opt/shop/docker-compose.yml:6"]);
    let hpc = s.findings.iter().find(|f| f.rule == "WR-HPC-001").unwrap();
    assert_eq!(hpc.severity, Severity::Blocker);
    assert!(
        snap.diagnostics
            .iter()
            .any(|d| d.path.ends_with("srv/broken/compose.yaml")),
        "{:?}",
        snap.diagnostics
    );
    // With the v2 handler switched on, YARN is fine.
    write(
        "etc/hadoop/conf/yarn-site.xml",
        "<configuration><property><name>yarn.nodemanager.resource.memory.enabled</name><value>true</value></property>\n\
         <property><name>yarn.nodemanager.linux-container-executor.cgroups.v2.enabled</name><value>true</value></property></configuration>\n",
    );
    let s = section(&h.scan());
    assert!(!s.findings.iter().any(|f| f.rule == "WR-HPC-002"));
}

/// WR-SD-001 holds for the systemd versions it names (issue 23): the same
/// uncovered `CPUShares=` is info under a systemd that translates it (up to
/// 257), an error under one that ignores it (258 and later), a warning when
/// the version is unknown.
#[test]
fn legacy_unit_directives_are_judged_by_the_hosts_systemd() {
    let (_, snap) = readiness_of("readiness-hybrid");
    let cx = cgmig::readiness::evaluate::Context {
        mode: snap.host.mode,
        kernel: snap.host.kernel.as_deref(),
    };
    let severity_with = |version: Option<&str>| {
        let mut r = snap.readiness.clone();
        r.components
            .retain(|c| !(c.name == "systemd" && c.place == Place::Host));
        if let Some(v) = version {
            let mut c = snap
                .readiness
                .components
                .iter()
                .find(|c| c.name == "systemd")
                .unwrap()
                .clone();
            c.place = Place::Host;
            c.version = v.into();
            r.components.push(c);
        }
        cgmig::readiness::evaluate(&r, cx)
            .into_iter()
            .find(|f| f.rule == "WR-SD-001" && f.file.contains("legacy-app"))
            .map(|f| f.severity)
    };
    assert_eq!(severity_with(Some("247.3-7+deb11u5")), Some(Severity::Info));
    assert_eq!(severity_with(Some("257.9-1")), Some(Severity::Info));
    assert_eq!(severity_with(Some("258.1-1")), Some(Severity::Error));
    assert_eq!(severity_with(None), Some(Severity::Warning));
}
