//! Which hosts count as systemd hosts (issue 9): a `name=systemd` hierarchy
//! alone is no proof (the VM-test guest mounts one with busybox as PID 1);
//! systemd's own marks are.

use cgmig::fixture::HostSpec;
use cgmig::owners::{self, Manager};

use crate::util::{build_spec, hosts_dir};

fn spec(name: &str) -> HostSpec {
    HostSpec::load(&hosts_dir().join(format!("{name}.yaml"))).unwrap()
}

/// The container view: PID 1 is the container's app, only `/docker/<id>` is
/// visible; the `xattr` option systemd mounts `name=systemd` with is the
/// host's only mark, and it counts. Without it, nothing says systemd runs.
#[test]
fn a_named_systemd_hierarchy_counts_only_with_systemd_marks() {
    let with_xattr = spec("container-view");
    assert!(owners::is_systemd_host(&build_spec(with_xattr.clone()).scan()));
    let mut bare = with_xattr;
    for h in &mut bare.hierarchies {
        for m in &mut h.mounts {
            m.options.retain(|o| o != "xattr");
        }
    }
    let snap = build_spec(bare).scan();
    assert!(
        !owners::is_systemd_host(&snap),
        "name=systemd without xattr, PID 1 /app"
    );
}

/// A busybox host with a `name=systemd` hierarchy holding `/app.slice` (the
/// VM live scenario): not a systemd host, so `/app.slice` is a custom cgroup
/// whose actions cgmig keeps. With systemd as PID 1 it is systemd's.
#[test]
fn a_unit_named_cgroup_is_systemds_only_on_a_systemd_host() {
    let mut s = spec("container-view");
    for h in &mut s.hierarchies {
        for m in &mut h.mounts {
            m.root = "/".into();
            m.options.clear();
        }
    }
    let named = s
        .hierarchies
        .iter()
        .find(|h| h.name.as_deref() == Some("systemd"))
        .unwrap()
        .id;
    s.hierarchies
        .iter_mut()
        .find(|h| h.id == named)
        .unwrap()
        .cgroups
        .insert("/app.slice".into(), Default::default());
    s.processes[0].everywhere = Some("/".into());
    s.processes[0].cgroups.insert(named, "/app.slice".into());
    s.processes[1].everywhere = Some("/".into());
    let snap = build_spec(s.clone()).scan();
    assert!(!owners::is_systemd_host(&snap));
    assert_eq!(owners::detect(&snap)["/app.slice"].manager, Manager::Custom);

    s.processes[1].pid = 1;
    s.processes[0].pid = 2;
    s.processes[1].comm = "systemd".into();
    s.processes[1].cmdline = vec!["/sbin/init".into()];
    let snap = build_spec(s).scan();
    assert!(owners::is_systemd_host(&snap));
    assert_eq!(owners::detect(&snap)["/app.slice"].manager, Manager::Systemd);
}
