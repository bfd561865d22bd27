//! Real container runtimes across the switch (issue 23): a Debian 12 guest
//! (docker 20.10 + runc 1.1.5 on the cgroupfs and on the systemd driver,
//! podman 4.3 + crun 1.8.1, containerd 1.6's ctr, LXC 5.0, a libcgroup
//! group) booted with v1 controllers, planned and converted there, then
//! booted unified with the runtimes recreating their containers and the
//! converted LXC/cgconfig files applied by the real tools (scripts/vm-runtimes).
//!
//! The plan's prediction for every container must be what its runtime
//! really wrote, and `cgmig verify` must be clean. The measured table is
//! printed (it is the one in docs/conversions-measured.md).
//!
//! Without QEMU, qemu-img or the cached image (or mmdebstrap to build it)
//! the test prints why it did not run; `CGMIG_REQUIRE_VM_TESTS=1` makes
//! that a failure.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use cgmig::model::{Mode, Snapshot};
use cgmig::plan::{Plan, RuntimeValues};
use cgmig::verify::{CheckKind, VerifyReport};

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn require() -> bool {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/vm-image");
    let cached = Command::new("bash")
        .args([script, "bookworm", "--check"])
        .status()
        .is_ok_and(|s| s.success());
    let mut missing: Vec<&str> = ["qemu-system-x86_64", "qemu-img", "flock"]
        .into_iter()
        .filter(|t| !have(t))
        .collect();
    if !cached && !have("mmdebstrap") {
        missing.push("mmdebstrap (or the cached bookworm image of scripts/vm-image)");
    }
    if missing.is_empty() {
        return true;
    }
    let why = format!("missing {}", missing.join(", "));
    if std::env::var("CGMIG_REQUIRE_VM_TESTS").as_deref() == Ok("1") {
        panic!("VM tests are required (CGMIG_REQUIRE_VM_TESTS=1) but cannot run: {why}");
    }
    eprintln!("SKIPPED runtimes VM test: {why}");
    false
}

fn read<T: serde::de::DeserializeOwned>(p: &Path) -> T {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Container → (its cgroup path, file → value).
type Measured = BTreeMap<String, (String, BTreeMap<String, String>)>;

/// `values.tsv` of a boot: container → (file → value), with the cgroup path.
fn measured(p: &Path) -> Measured {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let mut out = Measured::new();
    for l in text.lines() {
        let f: Vec<&str> = l.split('\t').collect();
        let [name, _runtime, _driver, path, file, value] = f.as_slice() else {
            panic!("{}: bad line {l:?}", p.display())
        };
        let e = out.entry((*name).to_string()).or_default();
        e.0 = (*path).to_string();
        e.1.insert((*file).to_string(), (*value).to_string());
    }
    out
}

/// The plan's prediction of the container named `name` (or with that id).
fn predicted<'p>(plan: &'p Plan, name: &str) -> &'p RuntimeValues {
    plan.owners
        .runtimes
        .iter()
        .flat_map(|r| &r.values)
        .find(|v| {
            v.container
                .as_ref()
                .is_some_and(|c| c.name.as_deref() == Some(name) || c.id == name)
        })
        .unwrap_or_else(|| panic!("no prediction for container {name}"))
}

/// The OCI containers: path and every file as the plan predicts them per
/// runtime version, against what the runtime wrote.
fn oci_containers(plan: &Plan, real: &Measured, table: &mut String) {
    // (container, v2 path shape, the runtime's own cpu.weight).
    let expect = [
        ("d512", "/system.slice/docker-", "20"),
        ("d4096", "/system.slice/docker-", "157"),
        ("s1536", "/system.slice/docker-", "59"),
        ("p2048", "/machine.slice/libpod-", "79"),
        ("c768", "/default/c768", "30"),
    ];
    for (name, shape, weight) in expect {
        let p = predicted(plan, name);
        assert!(p.path.starts_with(shape), "{name}: predicted at {}", p.path);
        let w = p.files.iter().find(|w| w.file == "cpu.weight");
        assert_eq!(w.map(|w| w.value.as_str()), Some(weight), "{name}: {p:#?}");
        let (path, files) = real
            .get(name)
            .unwrap_or_else(|| panic!("{name} was not measured on v2"));
        assert!(
            path.starts_with(&p.path),
            "{name}: rebuilt at {path}, predicted {}",
            p.path
        );
        for w in &p.files {
            let got = files.get(&w.file).map_or("(absent)", String::as_str);
            table.push_str(&format!(
                "{name}\t{}\t{}\t{}\t{got}\n",
                p.container.as_ref().map_or("", |c| c.runtime.as_str()),
                w.file,
                w.value
            ));
            assert_eq!(
                cgmig::verify::normalise(&w.file, got),
                cgmig::verify::normalise(&w.file, &w.value),
                "{name}: {} predicted from {} ({})",
                w.file,
                w.from,
                w.formula
            );
        }
    }
}

/// LXC's container and libcgroup's group: the plan's own conversion,
/// applied by the tools from the converted files.
fn configured(plan: &Plan, real: &Measured, table: &mut String) {
    // LXC rebuilds its container at lxc.payload.c1, not anywhere else, and
    // writes the converted lxc.cgroup2.* keys; cgconfigparser builds /cgtest
    // from the converted cgconfig.conf. Both are the plan's own conversion.
    let lxc = predicted(plan, "c1");
    assert_eq!(lxc.path, "/lxc.payload.c1");
    let cgtest = plan
        .nodes
        .iter()
        .find(|n| n.path == "/cgtest")
        .unwrap_or_else(|| panic!("no plan node /cgtest"));
    let configured = [
        (
            "c1",
            "lxc",
            lxc.path.as_str(),
            lxc.files
                .iter()
                .map(|w| (w.file.clone(), w.value.clone()))
                .collect::<Vec<_>>(),
        ),
        (
            "cgtest",
            "libcgroup",
            "/cgtest",
            cgtest
                .settings
                .iter()
                .map(|s| (s.file.clone(), s.value.clone()))
                .collect(),
        ),
    ];
    for (name, runtime, at, files) in configured {
        let (path, real_files) = real
            .get(name)
            .unwrap_or_else(|| panic!("{name} was not measured on v2"));
        assert_eq!(path, at, "{name}: rebuilt at {path}, predicted {at}");
        for (file, value) in files {
            // values.tsv records the files of guest/runtimes.sh's record().
            let Some(got) = real_files.get(&file) else {
                continue;
            };
            table.push_str(&format!("{name}\t{runtime}\t{file}\t{value}\t{got}\n"));
            assert_eq!(
                cgmig::verify::normalise(&file, got),
                cgmig::verify::normalise(&file, &value),
                "{name}: {file}"
            );
        }
    }
}

#[test]
#[ignore = "needs QEMU: boots the Debian 12 container-stack guest hybrid, then unified (scripts/vm-runtimes)"]
fn vm_runtimes_rebuild_what_the_plan_predicts() {
    let t0 = std::time::Instant::now();
    // CGMIG_VM_RUNTIMES_DONE=DIR checks a finished `scripts/vm-runtimes DIR`
    // run again (after a fix to the checks, without booting the guests).
    let done = std::env::var_os("CGMIG_VM_RUNTIMES_DONE").map(std::path::PathBuf::from);
    let dir = tempfile::tempdir().unwrap();
    let out = match &done {
        Some(d) => {
            eprintln!("runtimes VM: checking the finished run in {}", d.display());
            d.clone()
        }
        None => {
            if !require() {
                return;
            }
            let o = Command::new("bash")
                .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/vm-runtimes"))
                .arg(dir.path())
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "vm-runtimes failed:\n{}\n{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            eprintln!("{}", String::from_utf8_lossy(&o.stderr));
            dir.path().to_path_buf()
        }
    };
    let (one, two) = (out.join("out-1"), out.join("out-2"));
    let before: Snapshot = read(&one.join("snap.json"));
    assert_eq!(before.host.mode, Mode::Hybrid);
    let plan: Plan = read(&one.join("plan.json"));
    let after: Snapshot = read(&two.join("snap.json"));
    assert_eq!(after.host.mode, Mode::Unified);
    let real = measured(&two.join("values.tsv"));

    let mut table = String::new();
    oci_containers(&plan, &real, &mut table);
    configured(&plan, &real, &mut table);
    eprintln!("container\truntime\tfile\tpredicted\treal\n{table}");

    // verify.json is the guest's verdict on snap.json: this machine's verify of
    // the same snapshot must agree exactly. verify-live.json is the guest's
    // verdict on a second, live scan: it must be as clean, but a process that
    // starts or ends between the two scans may change a check, so it is not
    // compared check by check.
    let report: VerifyReport = read(&two.join("verify.json"));
    let live: VerifyReport = read(&two.join("verify-live.json"));
    let container_checks = |r: &VerifyReport| {
        r.checks
            .iter()
            .filter(|c| c.kind == CheckKind::Match && c.file.is_some() && c.message.contains("container"))
            .count()
    };
    for (name, r) in [("snapshot", &report), ("live", &live)] {
        assert!(
            container_checks(r) >= 20,
            "{name}: too few container values checked: {:#?}",
            r.checks
        );
        assert_eq!(
            r.unexpected,
            0,
            "{name}: differences the plan did not announce:\n{:#?}\n{}",
            r.checks
                .iter()
                .filter(|c| c.is_difference() && !c.announced)
                .collect::<Vec<_>>(),
            std::fs::read_to_string(two.join("verify.txt")).unwrap_or_default()
        );
    }
    // The same verdict from the captured snapshot on this machine.
    crate::util::assert_same_verify(&cgmig::verify::verify(&plan, &after), &report);
    let containers = container_checks(&report);
    eprintln!(
        "runtimes VM: {} checks, {} as predicted ({} container values), {} announced, {} unexpected, {:.0} s",
        report.checks.len(),
        report.matched,
        containers,
        report.announced,
        report.unexpected,
        t0.elapsed().as_secs_f64()
    );
}
