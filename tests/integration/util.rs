//! Shared helpers: materialize fixture hosts, run the binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cgmig::fixture::{HostSpec, materialize};
use cgmig::host::Root;
use cgmig::model::Snapshot;
use cgmig::rules::RuleSet;

pub fn hosts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/hosts")
}

/// Every fixture host name (file stem), sorted.
pub fn host_names() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(hosts_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().to_string())
        .collect();
    v.sort();
    v
}

pub fn rules() -> RuleSet {
    let (r, errors) = RuleSet::embedded();
    assert!(errors.is_empty(), "{errors:?}");
    r
}

/// A materialized host: the temp dir lives as long as this value.
pub struct Host {
    pub dir: tempfile::TempDir,
}

impl Host {
    pub fn root(&self) -> &Path {
        self.dir.path()
    }
    pub fn scan(&self) -> Snapshot {
        cgmig::scan::scan(&Root::new(self.root()).unwrap()).unwrap()
    }
}

/// A scratch directory, on tmpfs when there is one: fixture hosts are many
/// small files, and creating them on this VM's disk costs ~1 ms each.
pub fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(d) = tempfile::Builder::new().prefix("cgmig-test-").tempdir_in(shm)
    {
        return d;
    }
    tempfile::tempdir().unwrap()
}

pub fn build_spec(spec: HostSpec) -> Host {
    let dir = scratch();
    materialize(&spec, dir.path(), &rules()).unwrap();
    Host { dir }
}

pub fn host(name: &str) -> Host {
    let spec = HostSpec::load(&hosts_dir().join(format!("{name}.yaml"))).unwrap();
    build_spec(spec)
}

/// Replace the temp root in text so snapshots are stable.
pub fn redact(text: &str, root: &Path) -> String {
    text.replace(&root.display().to_string(), "[ROOT]")
}

pub fn cgmig(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cgmig"))
        .args(args)
        .output()
        .unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Panics unless this machine's verify of a guest's snapshot equals the
/// report the guest wrote for the same snapshot, printing only the checks
/// that differ (the whole reports are too long for CI's log).
pub fn assert_same_verify(here: &cgmig::verify::VerifyReport, guest: &cgmig::verify::VerifyReport) {
    if here == guest {
        return;
    }
    let show = |r: &cgmig::verify::VerifyReport| {
        r.checks
            .iter()
            .map(|c| format!("{c:?}"))
            .collect::<std::collections::BTreeSet<_>>()
    };
    let (a, b) = (show(here), show(guest));
    panic!(
        "this machine's verify of the guest's snapshot differs from the guest's:\n\
         only here: {:#?}\nonly in the guest: {:#?}\n\
         matched/announced/unexpected/unpredicted here {}/{}/{}/{}, in the guest {}/{}/{}/{}",
        a.difference(&b).collect::<Vec<_>>(),
        b.difference(&a).collect::<Vec<_>>(),
        here.matched,
        here.announced,
        here.unexpected,
        here.unpredicted,
        guest.matched,
        guest.announced,
        guest.unexpected,
        guest.unpredicted,
    );
}
