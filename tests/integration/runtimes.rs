//! Container runtimes predicted per container and per version (issue 23),
//! on the docker-cgroupfs fixture with the engines' records added: docker's
//! `hostconfig.json`, a podman spec, a containerd bundle, the package
//! database that says which runc and crun the host runs.

use cgmig::fixture::HostSpec;
use cgmig::model::Snapshot;
use cgmig::owners::Manager;
use cgmig::plan::{Plan, RuntimeValues};
use cgmig::verify::CheckKind;

use crate::util::*;

const DOCKER_ID: &str = "b29faf21b7ef";

/// `docker run --cpu-shares 512 --cpus 1.5 -m 1g --blkio-weight 300
/// --pids-limit 200 --restart always` as dockerd records it (memsw 2g: its
/// default of twice the memory).
const HOSTCONFIG: &str = r#"{"CpuShares":512,"NanoCpus":1500000000,"Memory":1073741824,
  "MemorySwap":2147483648,"BlkioWeight":300,"PidsLimit":200,"CpusetCpus":"","CgroupParent":"",
  "RestartPolicy":{"Name":"always","MaximumRetryCount":0},"Runtime":"runc"}"#;

fn dpkg(runc: &str, docker: &str) -> String {
    format!(
        "Package: docker.io\nStatus: install ok installed\nVersion: {docker}\n\n\
         Package: runc\nStatus: install ok installed\nVersion: {runc}\n\n\
         Package: crun\nStatus: install ok installed\nVersion: 1.8.1-1+deb12u1\n"
    )
}

/// The docker-cgroupfs fixture with dockerd's record of one container, on
/// a kernel whose v2 has every controller the container uses.
fn docker_host(runc: &str, docker: &str, daemon_json: Option<&str>) -> Snapshot {
    let mut spec = HostSpec::load(&hosts_dir().join("docker-cgroupfs.yaml")).unwrap();
    spec.kernel = "6.1.0-13-amd64".into();
    let dir = format!("/var/lib/docker/containers/{DOCKER_ID}");
    spec.files
        .insert(format!("{dir}/hostconfig.json"), HOSTCONFIG.into());
    spec.files.insert(
        format!("{dir}/config.v2.json"),
        r#"{"Name":"/web","State":{"Running":true}}"#.into(),
    );
    spec.files
        .insert("/var/lib/dpkg/status".into(), dpkg(runc, docker));
    if let Some(j) = daemon_json {
        spec.files.insert("/etc/docker/daemon.json".into(), j.into());
    }
    build_spec(spec).scan()
}

fn container<'p>(plan: &'p Plan, id: &str) -> &'p RuntimeValues {
    plan.owners
        .runtimes
        .iter()
        .flat_map(|r| &r.values)
        .find(|v| v.container.as_ref().is_some_and(|c| c.id == id))
        .unwrap_or_else(|| panic!("no prediction for container {id}: {:#?}", plan.owners.runtimes))
}

fn value(v: &RuntimeValues, file: &str) -> Option<String> {
    v.files.iter().find(|w| w.file == file).map(|w| w.value.clone())
}

/// dockerd 20.10 with no driver set moves the container to the systemd
/// driver on v2, and runc 1.1.5 writes its linear weight (512 → 20), not
/// the plan's conversion of the v1 file (59).
#[test]
fn docker_container_predicted_with_its_runcs_formula_and_driver_switch() {
    let snap = docker_host("1.1.5+ds1-1+deb12u1", "20.10.24+dfsg1-1+deb12u1", None);
    let c = &snap.owner_evidence.containers;
    assert_eq!(c.len(), 1, "{c:#?}");
    assert_eq!(c[0].name.as_deref(), Some("web"));
    let plan = cgmig::plan::plan(&snap, &rules());
    let v = container(&plan, DOCKER_ID);
    assert_eq!(v.from, "/docker/b29faf21b7ef");
    assert_eq!(v.path, "/system.slice/docker-b29faf21b7ef.scope");
    let info = v.container.as_ref().unwrap();
    assert!(info.runtime.starts_with("runc 1.1.5"), "{}", info.runtime);
    assert!(info.driver.contains("systemd driver on v2"), "{}", info.driver);
    assert_eq!(value(v, "cpu.weight").as_deref(), Some("20"));
    assert_eq!(value(v, "cpu.max").as_deref(), Some("150000 100000"));
    assert_eq!(value(v, "memory.max").as_deref(), Some("1073741824"));
    assert_eq!(value(v, "memory.swap.max").as_deref(), Some("1073741824"));
    assert_eq!(value(v, "pids.max").as_deref(), Some("200"));
    assert_eq!(value(v, "io.weight").as_deref(), Some("default 2930"));
    // The plan says where it differs from its own conversion, and why.
    let f = plan
        .findings
        .iter()
        .find(|f| f.rule == "owners.runtime-values")
        .expect("a runtime-values finding");
    assert!(
        f.why
            .contains("cpu.weight 20 where the plan's conversion gives 59"),
        "{}",
        f.why
    );
    // docker has no hugetlb limit in its record: set by hand on v1, lost on v2.
    let lost: Vec<&str> = plan
        .findings
        .iter()
        .filter(|f| f.rule == "owners.runtime-loses")
        .map(|f| f.why.as_str())
        .collect();
    assert_eq!(lost.len(), 1, "{lost:#?}");
    assert!(
        lost[0].contains("hugetlb.2MB.max 268435456") && lost[0].contains("not in its engine's record"),
        "{}",
        lost[0]
    );
    // The container's processes are expected where docker rebuilds it.
    assert!(
        plan.owners
            .places
            .iter()
            .any(|p| p.comm == "nginx" && p.path == "/system.slice/docker-b29faf21b7ef.scope"),
        "{:#?}",
        plan.owners.places
    );
    // /docker itself has no v2 counterpart once the driver switched.
    let docker = plan
        .owners
        .runtimes
        .iter()
        .find(|r| r.manager == Manager::Docker)
        .unwrap();
    assert!(
        !docker.predicted.iter().any(|p| p == "/docker"),
        "{:?}",
        docker.predicted
    );
    assert!(
        docker.changes.iter().any(|c| c.contains("by itself")),
        "{:?}",
        docker.changes
    );
}

/// The same container with runc 1.3.2 gets the quadratic weight, and a
/// daemon that keeps `native.cgroupdriver=cgroupfs` keeps `/docker/<id>`.
#[test]
fn newer_runc_and_an_explicit_cgroupfs_driver() {
    let snap = docker_host(
        "1.3.2-1",
        "20.10.24+dfsg1-1",
        Some(r#"{"exec-opts": ["native.cgroupdriver=cgroupfs"]}"#),
    );
    let plan = cgmig::plan::plan(&snap, &rules());
    let v = container(&plan, DOCKER_ID);
    assert_eq!(value(v, "cpu.weight").as_deref(), Some("59"));
    assert_eq!(v.path, "/docker/b29faf21b7ef");
    let differ: Vec<&str> = plan
        .findings
        .iter()
        .filter(|f| f.rule == "owners.runtime-values")
        .map(|f| f.why.as_str())
        .collect();
    // runc 1.3.2's weight is the plan's; its blkio weight is not (runc maps
    // 300 onto io.weight's range, the plan's rule keeps the default a default).
    assert_eq!(differ.len(), 1, "{differ:#?}");
    assert!(
        differ[0].contains("io.weight default 2930 where the plan's conversion gives default 60"),
        "{}",
        differ[0]
    );
    assert!(!differ[0].contains("cpu.weight"), "{}", differ[0]);
    let docker = plan
        .owners
        .runtimes
        .iter()
        .find(|r| r.manager == Manager::Docker)
        .unwrap();
    assert!(
        docker
            .changes
            .iter()
            .any(|c| c.contains("native.cgroupdriver=systemd")),
        "{:?}",
        docker.changes
    );
}

/// Broken records are diagnostics naming the file; the rest is still read.
#[test]
fn a_malformed_record_is_a_diagnostic_with_its_path() {
    let mut spec = HostSpec::load(&hosts_dir().join("docker-cgroupfs.yaml")).unwrap();
    spec.files.insert(
        format!("/var/lib/docker/containers/{DOCKER_ID}/hostconfig.json"),
        "{\"CpuShares\": 512,\n oops".into(),
    );
    spec.files.insert(
        "/var/lib/docker/containers/0bd31f558c42/hostconfig.json".into(),
        r#"{"CpuShares": 2048}"#.into(),
    );
    let snap = build_spec(spec).scan();
    assert!(
        snap.diagnostics
            .iter()
            .any(|d| d.path.ends_with(&format!("{DOCKER_ID}/hostconfig.json:2"))),
        "{:#?}",
        snap.diagnostics
    );
    let ids: Vec<&str> = snap
        .owner_evidence
        .containers
        .iter()
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(ids, ["0bd31f558c42"]);
}

/// The v2 host after the switch, as docker rebuilt the container: the
/// pure-v2 fixture with `/system.slice/docker-<id>.scope` holding `values`
/// and nginx in it.
fn rebuilt(values: &[(&str, &str)]) -> Snapshot {
    use cgmig::fixture::CgroupSpec;
    let mut spec = HostSpec::load(&hosts_dir().join("pure-v2.yaml")).unwrap();
    let path = format!("/system.slice/docker-{DOCKER_ID}.scope");
    let mut cg = CgroupSpec::default();
    for (f, v) in values {
        cg.settings.insert((*f).to_string(), (*v).to_string());
    }
    spec.hierarchies[0].cgroups.insert(path.clone(), cg);
    spec.processes
        .iter_mut()
        .filter(|p| p.comm == "nginx")
        .for_each(|p| {
            p.cgroups.insert(0, path.clone());
        });
    build_spec(spec).scan()
}

const AS_RUNC_WROTE: &[(&str, &str)] = &[
    ("cpu.weight", "20"),
    ("cpu.max", "150000 100000"),
    ("memory.max", "1073741824"),
    ("memory.swap.max", "1073741824"),
    ("pids.max", "200"),
    ("io.weight", "default 2930"),
];

/// verify reads the container at its v2 path: runc's values match, the
/// hugetlb limit the plan announced lost is a warning, and a limit runc
/// should have written but did not is an error.
#[test]
fn verify_reads_the_container_where_docker_rebuilt_it() {
    let snap = docker_host("1.1.5+ds1-1+deb12u1", "20.10.24+dfsg1-1+deb12u1", None);
    let plan = cgmig::plan::plan(&snap, &rules());
    let report = cgmig::verify::verify(&plan, &rebuilt(AS_RUNC_WROTE));
    let at: Vec<_> = report
        .checks
        .iter()
        .filter(|c| c.path == format!("/system.slice/docker-{DOCKER_ID}.scope") && c.file.is_some())
        .collect();
    let matched: Vec<&str> = at
        .iter()
        .filter(|c| c.kind == CheckKind::Match)
        .filter_map(|c| c.file.as_deref())
        .collect();
    assert_eq!(
        matched.len(),
        AS_RUNC_WROTE.len(),
        "{matched:?} of {:#?}",
        report.checks
    );
    let lost: Vec<_> = at.iter().filter(|c| c.kind == CheckKind::Value).collect();
    assert_eq!(lost.len(), 1, "{lost:#?}");
    assert_eq!(lost[0].file.as_deref(), Some("hugetlb.2MB.max"));
    assert!(lost[0].announced, "{:#?}", lost[0]);
    assert!(
        !report
            .checks
            .iter()
            .any(|c| c.kind == CheckKind::Process && c.message.contains("nginx")),
        "nginx is where the plan put it: {:#?}",
        report.checks
    );
    // The memory limit lost on the way: noticed, and not announced.
    let mut without = AS_RUNC_WROTE.to_vec();
    without.retain(|(f, _)| *f != "memory.max");
    let report = cgmig::verify::verify(&plan, &rebuilt(&without));
    let bad: Vec<_> = report
        .checks
        .iter()
        .filter(|c| c.kind == CheckKind::Value && !c.announced)
        .collect();
    assert_eq!(bad.len(), 1, "{bad:#?}");
    assert_eq!(bad[0].file.as_deref(), Some("memory.max"));
    assert_eq!(bad[0].expected.as_deref(), Some("1073741824"));
    assert!(report.unexpected >= 1);
}

/// The runtimes VM scenario's own snapshots (scripts/vm-runtimes, Debian 12:
/// docker 20.10 + runc 1.1.5, podman 4.3 + crun 1.8.1, containerd 1.6 with
/// `ctr`, LXC 5.0), boot 1 hybrid and boot 2 unified, replayed offline:
/// the plan from boot 1 against what the runtimes really rebuilt.
fn guest(boot: u32) -> Snapshot {
    let p = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("testdata/runtimes-guest/boot-{boot}.json"));
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// What each runtime really wrote on the guest's unified boot: crun's scope
/// holds crun's own weight (79, through systemd's `CPUWeight=`), docker's
/// scope without a pids limit holds systemd's default `TasksMax=` (3514),
/// containerd's `ctr` container is containerd's (not a custom tree with a
/// suggested manager unit) with runc 1.1.5's weight 30; libcgroup's `/cgtest`
/// is where cgconfigparser rebuilt it; every value verify reads is as
/// predicted and every runtime node is a predicted one.
#[test]
fn the_runtimes_guest_replayed_offline() {
    let (before, after) = (guest(1), guest(2));
    let plan = cgmig::plan::plan(&before, &rules());
    let all: Vec<&RuntimeValues> = plan.owners.runtimes.iter().flat_map(|r| &r.values).collect();
    let scope = all
        .iter()
        .find(|v| v.path.starts_with("/machine.slice/libpod-") && v.path.ends_with(".scope"))
        .expect("podman's scope is predicted");
    let w = scope.files.iter().find(|w| w.file == "cpu.weight").unwrap();
    assert_eq!(w.value, "79", "{w:#?}");
    assert!(w.formula.starts_with("crun 1.8.1"), "{w:#?}");
    let c768 = container(&plan, "c768");
    assert_eq!(c768.path, "/default/c768");
    assert_eq!(value(c768, "cpu.weight").as_deref(), Some("30"));
    for p in ["/default", "/default/c768"] {
        assert_eq!(
            plan.owners.nodes.get(p).map(|o| o.manager),
            Some(Manager::Containerd),
            "{p}"
        );
    }
    assert!(
        plan.owners.suggestions.iter().all(|s| s.path != "/default"),
        "containerd's tree gets no manager unit: {:#?}",
        plan.owners.suggestions
    );
    let d4096 = all
        .iter()
        .find(|v| {
            v.container
                .as_ref()
                .is_some_and(|c| c.name.as_deref() == Some("d4096"))
        })
        .unwrap();
    assert_eq!(value(d4096, "pids.max").as_deref(), Some("3514"));

    // libcgroup's group stays at the top level, where cgconfigparser rebuilds
    // it from the converted cgconfig.conf, and its process goes there
    // (cgexec), not into the unit it was started from.
    let cgtest = plan
        .nodes
        .iter()
        .find(|n| n.path == "/cgtest")
        .expect("a plan node /cgtest");
    assert_eq!(cgtest.processes.len(), 1, "{cgtest:#?}");
    assert!(!plan.nodes.iter().any(|n| n.path == "/system.slice/cgtest"));
    assert!(
        plan.owners
            .places
            .iter()
            .any(|p| p.comm == "sleep" && p.path == "/cgtest"),
        "{:#?}",
        plan.owners.places
    );

    let report = cgmig::verify::verify(&plan, &after);
    assert_eq!(report.unexpected, 0, "{:#?}", report.checks);
    assert_eq!(report.announced, 0, "{:#?}", report.checks);
    let runtime = |o: &str| {
        ["docker", "podman", "containerd", "lxc"]
            .iter()
            .any(|r| o.starts_with(r))
    };
    let wrong: Vec<_> = report
        .checks
        .iter()
        .filter(|c| runtime(&c.owner) && c.kind != CheckKind::Match)
        .filter(|c| !(c.kind == CheckKind::Unpredicted && c.path.ends_with("/.lxc")))
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
    let at_scope = report
        .checks
        .iter()
        .find(|c| c.path == scope.path && c.file.as_deref() == Some("cpu.weight"))
        .unwrap();
    assert_eq!(at_scope.kind, CheckKind::Match, "{at_scope:#?}");
}
