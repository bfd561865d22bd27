//! The planner's passes on hosts built in memory ([`SnapshotBuilder`]): a
//! few lines of Rust per case instead of a YAML spec materialized on disk and
//! scanned back, so a planner change is tested in milliseconds and each test
//! shows the whole host it plans.
//!
//! Only the planner's public API is called (`plan`, `validate`, the plan
//! model), so the passes can be rearranged inside `src/plan/` freely. A
//! fidelity test checks that the builder and the scan of the same scenario
//! give the same plan.

use cgmig::model::builder::SnapshotBuilder;
use cgmig::model::{Pid, Snapshot, Tid};
use cgmig::plan::{Action, NodeType, Plan, plan, validate};
use cgmig::rules::Severity;

use crate::util::*;

/// Plan a snapshot with the embedded rules; the plan must be valid.
fn planned(snap: &Snapshot) -> Plan {
    let p = plan(snap, &rules());
    let v = validate(&p);
    assert!(v.is_empty(), "invalid plan: {v:#?}");
    p
}

fn paths(p: &Plan) -> Vec<&str> {
    p.nodes.iter().map(|n| n.path.as_str()).collect()
}

fn has_setting(p: &Plan, path: &str, file: &str, value: &str) -> bool {
    p.node(path)
        .unwrap_or_else(|| panic!("no node {path}: {:?}", paths(p)))
        .settings
        .iter()
        .any(|s| s.file == file && s.value == value)
}

/// The `crossing` scenario (testdata/scenarios/crossing.yaml), in memory.
fn crossing() -> SnapshotBuilder {
    SnapshotBuilder::new()
        .kernel("5.10.0")
        .v1(1, &["memory"])
        .v1(2, &["cpu", "cpuacct"])
        .setting(1, "/team-a", "memory.limit_in_bytes", "2147483648")
        .setting(1, "/team-b", "memory.limit_in_bytes", "4294967296")
        .setting(1, "/team-a/x", "memory.limit_in_bytes", "1073741824")
        .setting(2, "/interactive", "cpu.shares", "4096")
        .setting(2, "/batch", "cpu.shares", "128")
        .process(1, "init", "/")
        .process(11, "a-batch", "/team-a/x")
        .place(11, 2, "/batch")
        .process(12, "a-web", "/team-a")
        .place(12, 2, "/interactive")
        .process(13, "b-web", "/team-b")
        .place(13, 2, "/interactive")
        .process(14, "b-batch", "/team-b")
        .place(14, 2, "/batch")
}

/// What a plan says about its tree: every node's path, type, processes,
/// threads and settings.
fn shape(p: &Plan) -> Vec<String> {
    p.nodes
        .iter()
        .map(|n| {
            let settings: Vec<String> = n
                .settings
                .iter()
                .map(|s| format!("{}={}", s.file, s.value))
                .collect();
            let threads: Vec<Tid> = n.threads.iter().map(|t| t.tid).collect();
            format!(
                "{} {:?} procs {:?} threads {threads:?} {settings:?} sc {:?}",
                n.path, n.node_type, n.processes, n.subtree_control
            )
        })
        .collect()
}

/// The builder stands in for a scanned host: the same scenario planned from
/// either gives the same tree (absent setting files count as the kernel's
/// defaults, which the fixture writes out).
#[test]
fn the_builder_and_the_scanned_fixture_plan_alike() {
    let built = planned(&crossing().build());
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/scenarios/crossing.yaml");
    let scanned = build_spec(cgmig::fixture::HostSpec::load(&path).unwrap()).scan();
    let scanned = planned(&scanned);
    assert_eq!(shape(&built), shape(&scanned));
    assert_eq!(built.conflicts.len(), scanned.conflicts.len());
}

/// Naming and placement: two hierarchies with the same shape merge by path
/// into one node carrying both controllers' converted settings, and the
/// process lands in it.
#[test]
fn same_shape_hierarchies_merge_into_one_node_per_path() {
    let snap = SnapshotBuilder::new()
        .v1(1, &["memory"])
        .v1(2, &["cpu", "cpuacct"])
        .setting(1, "/web", "memory.limit_in_bytes", "1073741824")
        .setting(2, "/web", "cpu.shares", "2048")
        .process(1, "init", "/")
        .process(20, "nginx", "/web")
        .build();
    let p = planned(&snap);
    let web = p.node("/web").expect("one node for /web");
    assert_eq!(web.origins.len(), 2, "both hierarchies: {:?}", web.origins);
    assert_eq!(web.processes, vec![Pid::new(20)]);
    assert!(has_setting(&p, "/web", "memory.max", "1073741824"));
    assert!(web.settings.iter().any(|s| s.file == "cpu.weight"));
    assert!(p.conflicts.is_empty());
    assert_eq!(paths(&p).iter().filter(|x| x.starts_with("/web")).count(), 1);
}

/// A cgroup that only one hierarchy has keeps its path; its process is
/// placed there and nowhere else.
#[test]
fn a_deeper_cgroup_of_one_hierarchy_refines_the_tree() {
    let snap = SnapshotBuilder::new()
        .v1(1, &["memory"])
        .v1(2, &["cpu", "cpuacct"])
        .setting(1, "/app", "memory.limit_in_bytes", "536870912")
        .setting(2, "/app/worker", "cpu.shares", "512")
        .process(1, "init", "/")
        .process(30, "worker", "/app/worker")
        .place(30, 1, "/app")
        .process(31, "app", "/app")
        .build();
    let p = planned(&snap);
    assert_eq!(p.node("/app/worker").unwrap().processes, vec![Pid::new(30)]);
    assert!(has_setting(&p, "/app", "memory.max", "536870912"));
    let placed: Vec<Pid> = p.nodes.iter().flat_map(|n| n.processes.iter().copied()).collect();
    assert_eq!(
        placed.iter().filter(|&&pid| pid == Pid::new(30)).count(),
        1,
        "placed once"
    );
}

/// Conflicts: crossing trees keep the spine's shape (memory: it loses no
/// setting), and the crossed hierarchy's settings are split onto the pieces
/// as marked copies, with a finding.
#[test]
fn crossing_trees_split_the_crossed_settings_onto_the_pieces() {
    let p = planned(&crossing().build());
    assert_eq!(p.spine.order[0], "memory");
    assert_eq!(p.conflicts.len(), 2, "{:#?}", p.conflicts);
    assert!(p.conflicts.iter().all(|c| c.resolution.starts_with("split")));
    assert!(p.node("/team-a/x").is_some() && p.node("/team-b").is_some());
    assert!(p.node("/interactive").is_none(), "the crossed tree is not built");
    let copies = p
        .nodes
        .iter()
        .flat_map(|n| &n.settings)
        .filter(|s| s.split_copy)
        .count();
    assert_eq!(copies, 4, "interactive and batch each on two pieces");
    assert!(p.findings.iter().any(|f| f.rule == "plan.conflict"));
}

/// Threaded subtrees: a process whose threads v1 split in `cpu` (a threaded
/// controller) gets a domain-threaded home and a threaded child per
/// placement, with the thread's cpu limit there.
#[test]
fn threads_split_in_cpu_become_a_threaded_subtree() {
    let snap = SnapshotBuilder::new()
        .v1(1, &["memory"])
        .v1(2, &["cpu", "cpuacct"])
        .setting(1, "/vm", "memory.limit_in_bytes", "2147483648")
        .setting(2, "/vm/vcpu0", "cpu.cfs_quota_us", "50000")
        .process(1, "init", "/")
        .process(100, "qemu", "/vm")
        .thread(100, 101, 2, "/vm/vcpu0")
        .build();
    let p = planned(&snap);
    let home = p
        .nodes
        .iter()
        .find(|n| n.processes.contains(&Pid::new(100)))
        .expect("qemu placed");
    assert_eq!(home.node_type, NodeType::DomainThreaded, "{}", home.path);
    let vcpu = p
        .nodes
        .iter()
        .find(|n| n.threads.iter().any(|t| t.tid == Tid::new(101)))
        .expect("thread 101 placed");
    assert_eq!(vcpu.node_type, NodeType::Threaded, "{}", vcpu.path);
    assert!(
        vcpu.path.starts_with(&format!("{}/", home.path)),
        "{} under {}",
        vcpu.path,
        home.path
    );
    assert!(
        vcpu.settings
            .iter()
            .any(|s| s.file == "cpu.max" && s.value.starts_with("50000 "))
    );
    assert!(
        !p.findings.iter().any(|f| f.severity == Severity::Blocker),
        "{:#?}",
        p.findings
    );
}

/// The same split in `memory` (a domain controller) cannot be expressed on
/// v2: a blocker names the process and where its threads are.
#[test]
fn threads_split_in_memory_are_a_blocker_naming_them() {
    let snap = SnapshotBuilder::new()
        .v1(1, &["memory"])
        .setting(1, "/svc", "memory.limit_in_bytes", "1073741824")
        .setting(1, "/svc/hot", "memory.limit_in_bytes", "268435456")
        .process(1, "init", "/")
        .process(50, "server", "/svc")
        .thread(50, 51, 1, "/svc/hot")
        .build();
    let p = plan(&snap, &rules());
    let b = p
        .findings
        .iter()
        .find(|f| f.severity == Severity::Blocker)
        .expect("a blocker");
    assert!(
        b.why.contains("process 50 (server)") && b.why.contains("51 in /svc/hot"),
        "{}",
        b.why
    );
}

/// Internal processes: a cgroup with its own process and a child that needs
/// a domain controller moves the process to a leaf before the controller is
/// enabled.
#[test]
fn internal_processes_move_to_a_leaf_before_controllers_are_enabled() {
    let snap = SnapshotBuilder::new()
        .v1(1, &["memory"])
        .setting(1, "/daemons", "memory.limit_in_bytes", "4294967296")
        .setting(1, "/daemons/worker", "memory.limit_in_bytes", "1073741824")
        .process(1, "init", "/")
        .process(60, "daemon", "/daemons")
        .process(61, "worker", "/daemons/worker")
        .build();
    let p = planned(&snap);
    assert!(p.node("/daemons").unwrap().processes.is_empty());
    assert_eq!(
        p.node("/daemons/leaf").expect("a leaf").processes,
        vec![Pid::new(60)]
    );
    assert!(
        p.node("/daemons")
            .unwrap()
            .subtree_control
            .iter()
            .any(|c| c == "memory")
    );
    assert!(p.findings.iter().any(|f| f.rule == "plan.leaf"));
    let at = |want: &dyn Fn(&Action) -> bool| p.actions.iter().position(want).expect("action");
    let mv = at(&|a| matches!(a, Action::MoveProcess { pid, .. } if *pid == Pid::new(60)));
    let en = at(&|a| matches!(a, Action::EnableControllers { path, .. } if path == "/daemons"));
    assert!(mv < en, "move at {mv}, enable at {en}");
}

/// A cgroup without processes of its own needs no leaf.
#[test]
fn no_leaf_without_internal_processes() {
    let snap = SnapshotBuilder::new()
        .v1(1, &["memory"])
        .setting(1, "/daemons/worker", "memory.limit_in_bytes", "1073741824")
        .process(1, "init", "/")
        .process(61, "worker", "/daemons/worker")
        .build();
    let p = planned(&snap);
    assert!(p.node("/daemons/leaf").is_none(), "{:?}", paths(&p));
    assert!(!p.findings.iter().any(|f| f.rule == "plan.leaf"));
}

/// Delegation: a subtree a user owns on v1 (chown) is delegated on v2 to the
/// same uid, the membership and subtree_control files included; its parent
/// stays root's.
#[test]
fn a_chowned_v1_subtree_is_delegated_on_v2() {
    let snap = SnapshotBuilder::new()
        .v1(1, &["cpu", "cpuacct"])
        .setting(1, "/users", "cpu.shares", "4096")
        .owner(1, "/users/alice", 1000)
        .owner(1, "/users/alice/build", 1000)
        .setting(1, "/users/alice/build", "cpu.shares", "256")
        .process(1, "init", "/")
        .process(70, "make", "/users/alice/build")
        .uid(70, 1000)
        .build();
    let p = planned(&snap);
    for path in ["/users/alice", "/users/alice/build"] {
        assert_eq!(p.node(path).unwrap().owner.map(|o| o.uid), Some(1000), "{path}");
        assert!(
            p.actions.iter().any(|a| matches!(
                a,
                Action::Chown { path: at, uid: 1000, files, .. }
                    if at == path && files.iter().any(|f| f == "cgroup.subtree_control")
            )),
            "{path}: no chown"
        );
    }
    assert_eq!(p.node("/users").unwrap().owner, None);
}

/// The host's kernel gates what v2 offers: on 4.14 the cpu controller is not
/// on cgroup2 (4.15), so no cpu file is written or enabled.
#[test]
fn an_old_kernel_writes_no_cpu_files() {
    let snap = SnapshotBuilder::new()
        .kernel("4.14.0")
        .v1(1, &["memory"])
        .v1(2, &["cpu", "cpuacct"])
        .setting(1, "/web", "memory.limit_in_bytes", "1073741824")
        .setting(2, "/web", "cpu.shares", "2048")
        .process(1, "init", "/")
        .process(20, "nginx", "/web")
        .build();
    let p = planned(&snap);
    let writes_cpu = p.actions.iter().any(|a| match a {
        Action::Write { file, .. } => file.starts_with("cpu."),
        Action::EnableControllers { controllers, .. } => controllers.iter().any(|c| c == "cpu"),
        _ => false,
    });
    assert!(!writes_cpu, "{:#?}", p.actions);
    assert!(has_setting(&p, "/web", "memory.max", "1073741824"));
}
