//! Where each container engine rebuilds a container on v2, and with what:
//! per container, from the engine's own records ([`super::containers`]),
//! the versions found on the host (the readiness inventory) and the LXC
//! configurations (kept whole by the readiness scan). Pure.
//!
//! * docker: the cgroup driver on v2 is the daemon's explicit
//!   `native.cgroupdriver`, else systemd when systemd is init (dockerd ≥ 20.10,
//!   `UsingSystemd` in daemon/daemon_unix.go: "on cgroup v2 hosts, default to
//!   systemd driver"); a cgroupfs container `/docker/<id>` comes back as
//!   `/system.slice/docker-<id>.scope` (or its `--cgroup-parent` slice).
//! * podman and containerd keep their spec's `cgroupsPath`: the systemd
//!   form `slice:prefix:name` is `<slice path>/prefix-name.scope`.
//! * LXC names the payload cgroup by version: `/lxc/<name>` before 3.1,
//!   `/lxc.payload/<name>` in 3.1–3.2 (lxc commit 292b3910d), and
//!   `/lxc.payload.<name>` from 4.0 (commit fe70edeee, "flatten hierarchy").
//!   It writes the `lxc.cgroup2.*` keys of its configuration verbatim.
//!
//! The values of an OCI container are its OCI runtime's conversion for that
//! runtime's version ([`super::oci`]); an LXC container's are the plan's own
//! conversion of its v1 limits, which `cgmig convert` writes into its
//! `lxc.cgroup2.*` keys.

use serde::{Deserialize, Serialize};

use super::detect::Manager;
use super::oci::{self, OciRuntime, RuntimeVersion};
use super::systemd::Written;
use crate::model::evidence::{Container, Engine};
use crate::model::readiness::Place;
use crate::model::{Node, Snapshot};
use crate::readiness::version;

/// One container as its engine rebuilds it on v2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerInfo {
    /// Its id (an LXC container's name).
    pub id: String,
    /// Its name, when the engine names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The engine instance (docker's data root, containerd's namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Who writes its values on v2, with the version (`runc 1.1.5+ds1-1+deb12u1`).
    pub runtime: String,
    /// The cgroup driver on v1 and on v2, and why.
    pub driver: String,
    /// What brings it back after the reboot, or why nothing does.
    pub recreated: String,
    /// v1 limits the runtime does not keep on v2 (each a sentence).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lost: Vec<String>,
    /// Where the record was read.
    pub source: String,
}

/// A container's prediction: its v1 path, its v2 path and the files its
/// runtime writes there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Predicted {
    /// The engine.
    pub engine: Manager,
    /// The container's cgroup on v1.
    pub v1_path: String,
    /// Where the engine rebuilds it on v2.
    pub v2_path: String,
    /// Files and values (empty for an LXC container: the plan's values).
    pub files: Vec<Written>,
    /// The systemd scope the container runs in a child of (crun's
    /// subgroup), with what lands in the scope's own files.
    pub scope: Option<ScopeWrite>,
    /// The container.
    pub info: ContainerInfo,
}

/// The files of a container's systemd scope when the container itself runs
/// in a child of it (crun's `run.oci.systemd.subgroup`): the runtime asks
/// systemd for the scope's properties, so the scope holds the runtime's own
/// conversion, not a conversion of the scope's v1 files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeWrite {
    /// The scope's cgroup on v1.
    pub v1_path: String,
    /// The scope's cgroup on v2.
    pub v2_path: String,
    /// Files and values systemd writes into the scope.
    pub files: Vec<Written>,
}

/// The host's versions of the stack, from the readiness inventory (host only).
#[derive(Debug, Clone, Default)]
pub struct Versions {
    entries: Vec<(String, String)>,
}

impl Versions {
    /// The versions of the host's components (not those in image layers).
    pub fn of(snap: &Snapshot) -> Versions {
        Versions {
            entries: snap
                .readiness
                .components
                .iter()
                .filter(|c| c.place == Place::Host)
                .map(|c| (c.name.clone(), c.version.clone()))
                .collect(),
        }
    }

    /// A component's version as found (the first parseable one).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .find(|v| version::parse(v).is_some())
    }

    /// Whether a component is at least `min` (`None`: unknown).
    pub fn at_least(&self, name: &str, min: &str) -> Option<bool> {
        version::less(self.get(name)?, min).map(|l| !l)
    }
}

/// The path of a systemd slice unit (`a-b.slice` → `/a.slice/a-b.slice`).
pub fn slice_path(slice: &str) -> String {
    let Some(stem) = slice.strip_suffix(".slice") else {
        return format!("/{}", slice.trim_start_matches('/'));
    };
    if stem == "-" || stem.is_empty() {
        return "/".into();
    }
    let mut out = String::new();
    let mut prefix = String::new();
    for part in stem.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        out.push_str(&format!("/{prefix}.slice"));
    }
    out
}

/// The cgroup of an OCI `cgroupsPath`: the systemd form `slice:prefix:name`
/// (runc and crun: `prefix-name.scope` in the slice), else a path.
pub fn cgroups_path(p: &str) -> String {
    let parts: Vec<&str> = p.split(':').collect();
    if let [slice, prefix, name] = parts.as_slice()
        && !p.starts_with('/')
    {
        let slice = if slice.is_empty() { "system.slice" } else { slice };
        let unit = if name.ends_with(".slice") {
            (*name).to_string()
        } else if prefix.is_empty() {
            format!("{name}.scope")
        } else {
            format!("{prefix}-{name}.scope")
        };
        let base = slice_path(slice);
        return format!("{}/{unit}", base.trim_end_matches('/'));
    }
    format!("/{}", p.trim_start_matches('/'))
}

/// docker's cgroup for a container under a driver (daemon/oci_linux.go).
fn docker_path(c: &Container, systemd: bool) -> String {
    let parent = c.cgroup_parent.as_deref().filter(|p| !p.is_empty());
    if systemd {
        let slice = parent.filter(|p| p.ends_with(".slice")).unwrap_or("system.slice");
        cgroups_path(&format!("{slice}:docker:{}", c.id))
    } else {
        let parent = parent.unwrap_or("/docker");
        format!("/{}/{}", parent.trim_matches('/'), c.id)
    }
}

/// The cgroup driver an engine uses on v1 and on v2, in words, and whether
/// each is systemd.
struct Drivers {
    v1_systemd: bool,
    v2_systemd: bool,
    said: String,
}

fn docker_drivers(c: &Container, versions: &Versions, systemd_host: bool) -> Drivers {
    let explicit = c.driver_setting.as_deref();
    let v1_systemd = explicit == Some("systemd");
    let (v2_systemd, why) = match explicit {
        Some(d) => (d == "systemd", format!("native.cgroupdriver={d} is set")),
        None if !systemd_host => (false, "systemd is not init".into()),
        None => match versions.at_least("docker", "20.10") {
            Some(false) => (
                false,
                "this dockerd predates 20.10 and does not run on v2 at all".into(),
            ),
            Some(true) => (true, "dockerd >= 20.10 defaults to it on v2 with systemd".into()),
            None => (
                true,
                "dockerd's version is unknown; >= 20.10 defaults to it on v2 with systemd".into(),
            ),
        },
    };
    let name = |s: bool| if s { "systemd" } else { "cgroupfs" };
    Drivers {
        v1_systemd,
        v2_systemd,
        said: format!(
            "{} driver on v1, {} driver on v2 ({why})",
            name(v1_systemd),
            name(v2_systemd)
        ),
    }
}

/// Whether docker moves to the systemd driver on v2 by itself: systemd is
/// init, dockerd is 20.10 or later, and no daemon whose containers run on
/// the cgroupfs driver sets that driver explicitly (a daemon configured
/// with the systemd driver is on it already).
pub fn docker_switches_itself(snap: &Snapshot, systemd_host: bool) -> bool {
    systemd_host
        && Versions::of(snap).at_least("docker", "20.10") == Some(true)
        && snap
            .owner_evidence
            .containers
            .iter()
            .filter(|c| c.engine == Engine::Docker && c.driver_setting.as_deref() != Some("systemd"))
            .all(|c| c.driver_setting.is_none())
}

/// The OCI runtime of a container and its version on this host.
fn runtime_of(c: &Container, versions: &Versions) -> Option<RuntimeVersion> {
    let rt = match c.oci_runtime.as_deref() {
        Some(n) => OciRuntime::from_name(n)?,
        // podman picks crun where it is installed, else runc.
        None if c.engine == Engine::Podman && versions.get("crun").is_some() => OciRuntime::Crun,
        None => OciRuntime::Runc,
    };
    Some(RuntimeVersion {
        runtime: rt,
        version: versions.get(rt.as_str()).map(str::to_string),
    })
}

/// The child of its systemd scope that crun (0.14 on, commit d8107763)
/// puts a container in and writes its limits to: the spec's
/// `run.oci.systemd.subgroup` annotation (empty: none), else `container`.
fn crun_subgroup(c: &Container, cgroups_path: &str, versions: &Versions) -> Option<String> {
    if cgroups_path.starts_with('/') || !cgroups_path.contains(':') {
        return None;
    }
    let crun = match c.oci_runtime.as_deref() {
        Some(n) => OciRuntime::from_name(n) == Some(OciRuntime::Crun),
        None => c.engine == Engine::Podman && versions.get("crun").is_some(),
    };
    if !crun
        || versions
            .get("crun")
            .is_some_and(|v| version::less(v, "0.14") == Some(true))
    {
        return None;
    }
    match c.systemd_subgroup.as_deref() {
        Some("") => None,
        Some(s) => Some(s.to_string()),
        None => Some("container".into()),
    }
}

/// What brings a container back after the reboot.
fn recreated(c: &Container) -> String {
    match (c.engine, c.restart.as_deref()) {
        (Engine::Docker, Some("always")) => "dockerd restarts it at start (restart policy always)".into(),
        (Engine::Docker, Some("unless-stopped")) if c.running == Some(true) => {
            "dockerd restarts it at start (restart policy unless-stopped, running)".into()
        }
        (Engine::Docker, p) => format!(
            "not restarted by dockerd (restart policy {}): it comes back when started again",
            p.unwrap_or("no")
        ),
        (Engine::Podman, _) => {
            "podman-restart.service starts it at boot if it runs with --restart=always; else when started again"
                .into()
        }
        (Engine::Containerd, _) => {
            "containerd's restart monitor (label containerd.io/restart.status=running) or the client that started it"
                .into()
        }
    }
}

/// Predict every OCI container the engines keep.
pub fn oci_containers(snap: &Snapshot, systemd_host: bool) -> Vec<Predicted> {
    let versions = Versions::of(snap);
    let sd = super::systemd::context(snap);
    let mut out = Vec::new();
    for c in &snap.owner_evidence.containers {
        // The scope the container runs in a child of (crun's subgroup).
        let mut scope: Option<String> = None;
        // Whether its v2 cgroup is a scope systemd makes (the systemd driver).
        let mut v2_scope = false;
        let (v1_path, v2_path, driver) = match c.engine {
            Engine::Docker => {
                let d = docker_drivers(c, &versions, systemd_host);
                v2_scope = d.v2_systemd && systemd_host;
                (docker_path(c, d.v1_systemd), docker_path(c, d.v2_systemd), d.said)
            }
            _ => {
                let Some(p) = c.cgroups_path.as_deref() else {
                    continue;
                };
                let mut path = cgroups_path(p);
                let mut how = if p.starts_with('/') {
                    "cgroupfs path from the spec, kept on v2".to_string()
                } else {
                    v2_scope = systemd_host;
                    "systemd driver (slice:prefix:name), kept on v2".to_string()
                };
                if let Some(sub) = crun_subgroup(c, p, &versions) {
                    scope = Some(path.clone());
                    path = format!("{path}/{sub}");
                    how.push_str(&format!(
                        "; crun runs it in the scope's child {sub} (run.oci.systemd.subgroup, crun >= 0.14)"
                    ));
                }
                (path.clone(), path, how)
            }
        };
        let (files, runtime, mut lost) = match runtime_of(c, &versions) {
            Some(rt) => {
                let w = oci::v2_files(&c.resources, &rt);
                (w.files, rt.label(), w.lost)
            }
            None => (
                Vec::new(),
                c.oci_runtime.clone().unwrap_or_default(),
                vec![format!(
                    "OCI runtime {} is not modelled: its v2 values are not predicted",
                    c.oci_runtime.as_deref().unwrap_or("?")
                )],
            ),
        };
        if c.engine == Engine::Docker && versions.at_least("docker", "20.10") == Some(false) {
            lost.push("dockerd before 20.10 does not start containers on v2".into());
        }
        let mut files = files;
        let default_tasks = v2_scope.then(|| scope_tasks_max(&sd)).flatten();
        let scope = match scope {
            Some(sp) => Some(ScopeWrite {
                v1_path: sp.clone(),
                v2_path: sp,
                files: scope_files(&files, &runtime, default_tasks.as_ref()),
            }),
            None => {
                // The container's own cgroup is the scope: a runtime that
                // sets no TasksMax= leaves systemd's default on it.
                if !files.iter().any(|w| w.file == "pids.max") {
                    files.extend(default_tasks);
                }
                None
            }
        };
        out.push(Predicted {
            engine: Manager::of_engine(c.engine),
            v1_path,
            v2_path,
            files,
            scope,
            info: ContainerInfo {
                id: c.id.clone(),
                name: c.name.clone(),
                instance: Some(c.instance.clone()),
                runtime,
                driver,
                recreated: recreated(c),
                lost,
                source: c.source.clone(),
            },
        });
    }
    out
}

/// `pids.max` of a scope whose runtime sets no `TasksMax=`: systemd's
/// `DefaultTasksMax=` applies to every scope it makes (measured on the
/// Debian 12 guest: 3514 on docker's and podman's scopes, systemd 252).
fn scope_tasks_max(sd: &super::systemd::SystemdContext) -> Option<Written> {
    let v = super::systemd::tasks_max(&sd.default_tasks_max, sd.tasks_base)?;
    let who = sd
        .version
        .map_or_else(|| "systemd".to_string(), |v| format!("systemd {v}"));
    Some(Written {
        file: "pids.max".into(),
        value: v,
        from: format!("DefaultTasksMax={}", sd.default_tasks_max),
        formula: format!("{who}: the scope's default (the runtime sets no TasksMax=)"),
    })
}

/// What lands in the scope of a container that crun runs in the scope's
/// child: crun asks systemd for `CPUWeight=` with its own shares→weight
/// conversion (the container's cgroup gets the same value), and the scope
/// keeps systemd's default `TasksMax=`. Measured with crun 1.8.1 on
/// systemd 252: `cpu.weight` 79 for `--cpu-shares 2048` on both, the
/// scope's `memory.max`, `cpu.max` and `pids.max` left at systemd's
/// defaults (the limits are the child's). Later crun releases also pass
/// `MemoryMax=`, `TasksMax=` and a CPU quota to systemd; those are not
/// predicted on the scope (the container's own cgroup holds them).
fn scope_files(container: &[Written], runtime: &str, default_tasks: Option<&Written>) -> Vec<Written> {
    let mut out: Vec<Written> = container
        .iter()
        .filter(|w| w.file == "cpu.weight")
        .map(|w| Written {
            file: w.file.clone(),
            value: w.value.clone(),
            from: w.from.clone(),
            formula: format!(
                "{runtime} asks systemd for CPUWeight= on the scope: {}",
                w.formula
            ),
        })
        .collect();
    out.extend(default_tasks.cloned());
    out
}

/// The LXC containers of the readiness inventory (`/var/lib/lxc/NAME/config`
/// and the like), at the path this LXC version gives them on v2. Their
/// values are the plan's (what `cgmig convert` writes as `lxc.cgroup2.*`).
pub fn lxc_containers(snap: &Snapshot) -> Vec<Predicted> {
    let versions = Versions::of(snap);
    let lxc = versions.get("lxc").map(str::to_string);
    let (prefix, rule) = match &lxc {
        Some(v) if version::less(v, "3.1") == Some(true) => ("/lxc/", "LXC before 3.1: lxc/%n"),
        Some(v) if version::less(v, "4.0") == Some(true) => {
            ("/lxc.payload/", "LXC 3.1 to 3.2: lxc.payload/%n")
        }
        Some(_) => ("/lxc.payload.", "LXC 4.0 on: lxc.payload.%n"),
        None => (
            "/lxc.payload.",
            "LXC version unknown: taken as 4.0 on (lxc.payload.%n)",
        ),
    };
    let monitors = lxc_monitors(snap);
    let mut out = Vec::new();
    for f in snap.readiness.files.iter().filter(|f| f.kind == "lxc") {
        let Some(name) = lxc_name(&f.path) else { continue };
        let auto = f.text.lines().any(|l| {
            l.split_once('=')
                .is_some_and(|(k, v)| k.trim() == "lxc.start.auto" && v.trim() == "1")
        });
        let running = monitors.iter().any(|m| m == name);
        let v2_path = format!("{prefix}{name}");
        out.push(Predicted {
            engine: Manager::Lxc,
            // On v1, LXC 4.0 on uses the same name in every hierarchy.
            v1_path: v2_path.clone(),
            v2_path,
            files: Vec::new(),
            scope: None,
            info: ContainerInfo {
                id: name.to_string(),
                name: None,
                instance: None,
                runtime: format!(
                    "lxc {} (writes its lxc.cgroup2.* keys verbatim; lxc.cgroup.* keys are ignored on v2)",
                    lxc.as_deref().unwrap_or("(version unknown)")
                ),
                driver: format!("{rule}{}", if running { ", running" } else { "" }),
                recreated: if auto {
                    "lxc.service autostarts it (lxc.start.auto = 1)".into()
                } else {
                    "not autostarted (no lxc.start.auto = 1): it comes back when started again".into()
                },
                lost: Vec::new(),
                source: f.path.clone(),
            },
        });
    }
    out
}

/// The container of an LXC config path (`/var/lib/lxc/c1/config` → `c1`).
fn lxc_name(path: &str) -> Option<&str> {
    let dir = path.strip_suffix("/config")?;
    let name = dir.rsplit('/').next()?;
    (!name.is_empty() && dir.contains("/lxc")).then_some(name)
}

/// Containers with a running LXC monitor (`[lxc monitor] /var/lib/lxc c1`).
fn lxc_monitors(snap: &Snapshot) -> Vec<String> {
    snap.graph
        .node_weights()
        .filter_map(|n| match n {
            Node::Process(p) => {
                let cmd = p.cmdline.join(" ");
                let rest = cmd.strip_prefix("[lxc monitor] ")?;
                rest.split_whitespace().nth(1).map(str::to_string)
            }
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::evidence::Resources;

    #[test]
    fn slices_and_cgroups_paths() {
        assert_eq!(slice_path("system.slice"), "/system.slice");
        assert_eq!(slice_path("a-b-c.slice"), "/a.slice/a-b.slice/a-b-c.slice");
        assert_eq!(slice_path("-.slice"), "/");
        assert_eq!(
            cgroups_path("machine.slice:libpod:abc"),
            "/machine.slice/libpod-abc.scope"
        );
        assert_eq!(
            cgroups_path("system.slice:docker:abc"),
            "/system.slice/docker-abc.scope"
        );
        assert_eq!(cgroups_path("/default/c768"), "/default/c768");
        assert_eq!(
            cgroups_path("kubepods-pod1.slice:cri-containerd:x"),
            "/kubepods.slice/kubepods-pod1.slice/cri-containerd-x.scope"
        );
    }

    fn docker(driver: Option<&str>, parent: Option<&str>) -> Container {
        Container {
            engine: Engine::Docker,
            id: "abc".into(),
            name: None,
            instance: "/var/lib/docker".into(),
            oci_runtime: Some("runc".into()),
            driver_setting: driver.map(str::to_string),
            cgroups_path: None,
            systemd_subgroup: None,
            cgroup_parent: parent.map(str::to_string),
            resources: Resources::default(),
            restart: Some("always".into()),
            running: Some(true),
            source: "x".into(),
        }
    }

    /// dockerd 20.10 with no driver set: cgroupfs on v1, systemd on v2.
    #[test]
    fn docker_switches_driver_on_v2_unless_told() {
        let v = Versions {
            entries: vec![("docker".into(), "20.10.24+dfsg1-1".into())],
        };
        let d = docker_drivers(&docker(None, None), &v, true);
        assert!(!d.v1_systemd && d.v2_systemd, "{}", d.said);
        assert_eq!(
            docker_path(&docker(None, None), true),
            "/system.slice/docker-abc.scope"
        );
        assert_eq!(docker_path(&docker(None, None), false), "/docker/abc");
        let d = docker_drivers(&docker(Some("cgroupfs"), None), &v, true);
        assert!(!d.v2_systemd);
        let d = docker_drivers(&docker(None, None), &v, false);
        assert!(!d.v2_systemd, "no systemd: cgroupfs");
        assert_eq!(
            docker_path(&docker(None, Some("batch.slice")), true),
            "/batch.slice/docker-abc.scope"
        );
        assert_eq!(docker_path(&docker(None, Some("/ci")), false), "/ci/abc");
    }

    /// crun 1.8.1 on systemd 252, measured in the runtimes VM scenario:
    /// `--cpu-shares 2048` gave the scope and its `container` child
    /// `cpu.weight` 79 (crun's linear formula, through systemd's
    /// `CPUWeight=`), not 174 (the OCI conversion of the scope's v1
    /// `cpu.shares` 2048); the scope's `pids.max` stayed systemd's default.
    #[test]
    fn a_crun_scope_holds_cruns_weight_and_systemds_task_default() {
        let sd = crate::owners::systemd::SystemdContext {
            version: Some(252),
            tasks_base: Some(23_428),
            default_tasks_max: "15%".into(),
        };
        let tasks = scope_tasks_max(&sd).unwrap();
        assert_eq!((tasks.file.as_str(), tasks.value.as_str()), ("pids.max", "3514"));
        let rt = RuntimeVersion {
            runtime: OciRuntime::Crun,
            version: Some("1.8.1-1+deb12u1".into()),
        };
        let res = Resources {
            cpu_shares: Some(2048),
            pids_limit: Some(48),
            memory_limit: Some(201_326_592),
            ..Resources::default()
        };
        let container = oci::v2_files(&res, &rt).files;
        let scope = scope_files(&container, &rt.label(), Some(&tasks));
        let got: Vec<(&str, &str)> = scope
            .iter()
            .map(|w| (w.file.as_str(), w.value.as_str()))
            .collect();
        assert_eq!(got, [("cpu.weight", "79"), ("pids.max", "3514")]);
        assert!(scope[0].formula.contains("CPUWeight="), "{}", scope[0].formula);
        // The container's own limits stay on the child, not the scope.
        assert!(!scope.iter().any(|w| w.file == "memory.max"));
        // No known task base: the default is not predicted.
        let unknown = crate::owners::systemd::SystemdContext {
            tasks_base: None,
            ..sd
        };
        assert_eq!(scope_tasks_max(&unknown), None);
    }

    #[test]
    fn lxc_config_names() {
        assert_eq!(lxc_name("/var/lib/lxc/c1/config"), Some("c1"));
        assert_eq!(lxc_name("/etc/pve/lxc/101.conf"), None);
        assert_eq!(lxc_name("/etc/lxc/default.conf"), None);
    }
}
