//! Containers as their engines keep them, read at scan time: the limits
//! each engine hands its OCI runtime again when it recreates the container
//! on v2, the runtime that will run it, and the engine's cgroup driver.
//!
//! A container's v2 values are not a conversion of its v1 cgroup files: the
//! engine regenerates the OCI spec from its own record of the container and
//! the OCI runtime (runc, crun) converts that with its own version's
//! formulas. So the plan predicts per container, from these records:
//!
//! * docker: every data root of a running `dockerd` (`--data-root`, else
//!   `data-root` of its `--config-file`, else `/var/lib/docker`), and in it
//!   `containers/<id>/hostconfig.json` (the resources, restart policy, cgroup
//!   parent and runtime docker regenerates the spec from) and
//!   `config.v2.json` (name, running); the daemon's `native.cgroupdriver`
//!   from its command line or `daemon.json`;
//! * podman: `overlay-containers/<id>/userdata/config.json` in its graph
//!   root (the OCI spec podman generated), names from `containers.json`,
//!   the OCI runtime from the container's `conmon -r`, `cgroup_manager` from
//!   `containers.conf`;
//! * containerd: the OCI bundle of every task under
//!   `/run/containerd/io.containerd.runtime.v2.task/<namespace>/<id>/`
//!   (namespaces of a dockerd are docker's containers, read above).
//!
//! LXC containers and libcgroup groups are read by the readiness scan (their
//! configuration files, kept whole for `convert`); the plan reads them there.
//! Every file is untrusted: a malformed one is a diagnostic naming it.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::host::HostError;
use crate::model::evidence::{Container, Engine, Resources};
use crate::model::{Node, Snapshot};
use crate::readiness::io::Reader;

/// Where docker keeps its containers by default.
const DOCKER_ROOT: &str = "/var/lib/docker";
/// docker's default daemon configuration file.
const DOCKER_CONFIG: &str = "/etc/docker/daemon.json";
/// podman's (root) graph root by default, and its configuration files.
const PODMAN_ROOT: &str = "/var/lib/containers/storage";
const STORAGE_CONF: &[&str] = &[
    "/etc/containers/storage.conf",
    "/usr/share/containers/storage.conf",
];
const CONTAINERS_CONF: &[&str] = &[
    "/etc/containers/containers.conf",
    "/usr/share/containers/containers.conf",
];
/// containerd's shim v2 task state (OCI bundles of running tasks).
const CONTAINERD_TASKS: &str = "/run/containerd/io.containerd.runtime.v2.task";

/// A running engine daemon, from its command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Daemon {
    /// `--config-file`.
    config: Option<String>,
    /// `--data-root` (or `-g`, `--graph`).
    data_root: Option<String>,
    /// `native.cgroupdriver` of `--exec-opt`.
    driver: Option<String>,
    /// `--containerd-namespace`.
    namespace: Option<String>,
    /// `--default-runtime`.
    runtime: Option<String>,
}

/// The value of a command-line flag: `--flag=v` or `--flag v`.
fn flag_values<'a>(args: &'a [String], names: &[&str]) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        for n in names {
            if a == n {
                if let Some(v) = it.next() {
                    out.push(v.as_str());
                }
                break;
            }
            if let Some(v) = a.strip_prefix(n).and_then(|r| r.strip_prefix('=')) {
                out.push(v);
                break;
            }
        }
    }
    out
}

/// A `dockerd` command line.
fn parse_dockerd(args: &[String]) -> Daemon {
    let one = |names: &[&str]| flag_values(args, names).last().map(|s| s.to_string());
    let driver = flag_values(args, &["--exec-opt"])
        .into_iter()
        .filter_map(|o| o.strip_prefix("native.cgroupdriver="))
        .next_back()
        .map(str::to_string);
    Daemon {
        config: one(&["--config-file"]),
        data_root: one(&["--data-root", "--graph", "-g"]),
        driver,
        namespace: one(&["--containerd-namespace"]),
        runtime: one(&["--default-runtime"]),
    }
}

/// Fill what the command line left unset from `daemon.json`.
fn apply_daemon_json(d: &mut Daemon, json: &Value) {
    if d.data_root.is_none() {
        d.data_root = json["data-root"]
            .as_str()
            .or_else(|| json["graph"].as_str())
            .map(str::to_string);
    }
    if d.driver.is_none() {
        d.driver = json["exec-opts"].as_array().and_then(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .filter_map(|o| o.strip_prefix("native.cgroupdriver="))
                .next_back()
                .map(str::to_string)
        });
    }
    if d.runtime.is_none() {
        d.runtime = json["default-runtime"].as_str().map(str::to_string);
    }
}

/// The commands of the snapshot's processes whose `comm` is `name`.
fn commands<'s>(snap: &'s Snapshot, name: &str) -> Vec<&'s [String]> {
    snap.graph
        .node_weights()
        .filter_map(|n| match n {
            Node::Process(p) if p.comm == name && !p.cmdline.is_empty() => Some(p.cmdline.as_slice()),
            _ => None,
        })
        .collect()
}

/// Read every container the engines keep. Malformed files are diagnostics.
pub fn read(rd: &mut Reader<'_>, snap: &Snapshot, note: &mut impl FnMut(HostError)) -> Vec<Container> {
    let mut out = Vec::new();
    let docker_namespaces = docker(rd, snap, note, &mut out);
    podman(rd, snap, note, &mut out);
    containerd(rd, &docker_namespaces, note, &mut out);
    out.sort_by(|a, b| (a.engine, &a.instance, &a.id).cmp(&(b.engine, &b.instance, &b.id)));
    out.dedup_by(|a, b| a.engine == b.engine && a.id == b.id);
    out
}

/// A JSON file, or a diagnostic naming it.
fn json_file(rd: &mut Reader<'_>, path: &str, note: &mut impl FnMut(HostError)) -> Option<Value> {
    let text = rd.text(path)?;
    match serde_json::from_str(&text) {
        Ok(v) => Some(v),
        Err(e) => {
            note(HostError::Parse {
                path: path.into(),
                line: e.line(),
                message: format!("not a JSON document: {e}"),
            });
            None
        }
    }
}

/// docker's daemons and their containers; returns the containerd
/// namespaces docker uses (its containers are not containerd's own).
fn docker(
    rd: &mut Reader<'_>,
    snap: &Snapshot,
    note: &mut impl FnMut(HostError),
    out: &mut Vec<Container>,
) -> Vec<String> {
    let mut daemons: Vec<Daemon> = commands(snap, "dockerd").into_iter().map(parse_dockerd).collect();
    if daemons.is_empty() {
        // Not running at scan time: its default instance, if it has containers.
        daemons.push(Daemon::default());
    }
    let mut namespaces = Vec::new();
    let mut roots_seen = Vec::new();
    for mut d in daemons {
        let config = d.config.clone().unwrap_or_else(|| DOCKER_CONFIG.to_string());
        if let Some(json) = json_file(rd, &config, note) {
            apply_daemon_json(&mut d, &json);
        }
        let root = d.data_root.clone().unwrap_or_else(|| DOCKER_ROOT.to_string());
        if roots_seen.contains(&root) {
            continue;
        }
        roots_seen.push(root.clone());
        namespaces.push(d.namespace.clone().unwrap_or_else(|| "moby".into()));
        let dir = format!("{}/containers", root.trim_end_matches('/'));
        for id in rd.subdirs(&dir) {
            let host = format!("{dir}/{id}/hostconfig.json");
            let Some(hc) = json_file(rd, &host, note) else {
                continue;
            };
            let cfg = json_file(rd, &format!("{dir}/{id}/config.v2.json"), note).unwrap_or(Value::Null);
            out.push(docker_container(&id, &root, &d, &hc, &cfg, host));
        }
    }
    namespaces
}

/// One docker container from its `hostconfig.json` and `config.v2.json`,
/// with the resources mapped as dockerd maps them into the OCI spec
/// (daemon/oci_linux.go: `NanoCpus` → period 100000 µs and its quota).
fn docker_container(id: &str, root: &str, d: &Daemon, hc: &Value, cfg: &Value, source: String) -> Container {
    let int = |k: &str| hc[k].as_i64().filter(|v| *v != 0);
    let text = |k: &str| hc[k].as_str().filter(|s| !s.is_empty()).map(str::to_string);
    let mut r = Resources {
        cpu_shares: int("CpuShares").and_then(|v| u64::try_from(v).ok()),
        cpu_quota: int("CpuQuota"),
        cpu_period: int("CpuPeriod").and_then(|v| u64::try_from(v).ok()),
        cpuset_cpus: text("CpusetCpus"),
        cpuset_mems: text("CpusetMems"),
        memory_limit: int("Memory"),
        memory_swap: int("MemorySwap"),
        memory_reservation: int("MemoryReservation"),
        pids_limit: int("PidsLimit").filter(|v| *v > 0),
        blkio_weight: int("BlkioWeight").and_then(|v| u64::try_from(v).ok()),
        hugepage_limits: Vec::new(),
    };
    if let Some(nano) = int("NanoCpus").filter(|v| *v > 0) {
        r.cpu_period = Some(100_000);
        r.cpu_quota = Some(nano.saturating_mul(100_000) / 1_000_000_000);
    }
    Container {
        engine: Engine::Docker,
        id: id.to_string(),
        name: cfg["Name"]
            .as_str()
            .map(|n| n.trim_start_matches('/').to_string()),
        instance: root.to_string(),
        oci_runtime: text("Runtime").or_else(|| d.runtime.clone()),
        driver_setting: d.driver.clone(),
        cgroups_path: None,
        systemd_subgroup: None,
        cgroup_parent: text("CgroupParent"),
        resources: r,
        restart: hc["RestartPolicy"]["Name"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        running: cfg["State"]["Running"].as_bool(),
        source,
    }
}

/// `linux.resources` and `linux.cgroupsPath` of an OCI spec.
fn oci_resources(spec: &Value) -> (Resources, Option<String>) {
    let res = &spec["linux"]["resources"];
    let cpu = &res["cpu"];
    let mem = &res["memory"];
    let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_string);
    let r = Resources {
        cpu_shares: cpu["shares"].as_u64().filter(|v| *v != 0),
        cpu_quota: cpu["quota"].as_i64().filter(|v| *v != 0),
        cpu_period: cpu["period"].as_u64().filter(|v| *v != 0),
        cpuset_cpus: text(&cpu["cpus"]),
        cpuset_mems: text(&cpu["mems"]),
        memory_limit: mem["limit"].as_i64().filter(|v| *v != 0),
        memory_swap: mem["swap"].as_i64().filter(|v| *v != 0),
        memory_reservation: mem["reservation"].as_i64().filter(|v| *v != 0),
        pids_limit: res["pids"]["limit"].as_i64().filter(|v| *v != 0),
        blkio_weight: res["blockIO"]["weight"].as_u64().filter(|v| *v != 0),
        hugepage_limits: res["hugepageLimits"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|h| Some((h["pageSize"].as_str()?.to_string(), h["limit"].as_u64()?)))
                    .collect()
            })
            .unwrap_or_default(),
    };
    (r, text(&spec["linux"]["cgroupsPath"]))
}

/// The `run.oci.systemd.subgroup` annotation of a spec.
fn subgroup(spec: &Value) -> Option<String> {
    spec["annotations"]["run.oci.systemd.subgroup"]
        .as_str()
        .map(str::to_string)
}

/// A `key = "value"` setting of a TOML file (containers.conf, storage.conf),
/// the last one wins; enough for the flat keys read here.
fn toml_key(text: &str, key: &str) -> Option<String> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.trim().split_once('=')?;
            (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
        })
        .rfind(|v| !v.is_empty())
}

/// The first file of a list (highest priority first) that sets `key`.
fn conf_key(rd: &mut Reader<'_>, files: &[&str], key: &str) -> Option<String> {
    files
        .iter()
        .find_map(|f| rd.text(f).and_then(|t| toml_key(&t, key)))
}

/// podman's containers, from the specs in its graph root.
fn podman(rd: &mut Reader<'_>, snap: &Snapshot, note: &mut impl FnMut(HostError), out: &mut Vec<Container>) {
    let root = conf_key(rd, STORAGE_CONF, "graphroot").unwrap_or_else(|| PODMAN_ROOT.to_string());
    let dir = format!("{}/overlay-containers", root.trim_end_matches('/'));
    let ids = rd.subdirs(&dir);
    if ids.is_empty() {
        return;
    }
    let names = podman_names(json_file(rd, &format!("{dir}/containers.json"), note));
    let driver = conf_key(rd, CONTAINERS_CONF, "cgroup_manager");
    // conmon -c ID -r RUNTIME for every running container: its own options
    // come first (the podman command it runs at exit repeats `-r`, `-c` ...).
    let conmons: BTreeMap<String, String> = commands(snap, "conmon")
        .into_iter()
        .filter_map(|args| {
            let id = flag_values(args, &["-c", "--cid"]).first()?.to_string();
            let rt = flag_values(args, &["-r", "--runtime"]).first()?.to_string();
            Some((id, rt))
        })
        .collect();
    for id in ids {
        let path = format!("{dir}/{id}/userdata/config.json");
        let Some(spec) = json_file(rd, &path, note) else {
            continue;
        };
        let (resources, cgroups_path) = oci_resources(&spec);
        let runtime = conmons.get(&id).map(|rt| base_name(rt));
        out.push(Container {
            engine: Engine::Podman,
            name: names.get(&id).cloned(),
            instance: root.clone(),
            oci_runtime: runtime,
            driver_setting: driver.clone(),
            cgroups_path,
            systemd_subgroup: subgroup(&spec),
            cgroup_parent: None,
            resources,
            restart: None,
            running: Some(conmons.contains_key(&id)),
            source: path,
            id,
        });
    }
}

/// Container names by id from podman's `containers.json` (containers/storage).
fn podman_names(json: Option<Value>) -> BTreeMap<String, String> {
    let Some(Value::Array(list)) = json else {
        return BTreeMap::new();
    };
    list.iter()
        .filter_map(|c| {
            let id = c["id"].as_str()?;
            let name = c["names"].as_array()?.first()?.as_str()?;
            Some((id.to_string(), name.to_string()))
        })
        .collect()
}

/// The last component of a path (`/usr/bin/crun` → `crun`).
fn base_name(p: &str) -> String {
    p.rsplit('/').next().unwrap_or(p).to_string()
}

/// containerd's own tasks (not docker's namespaces), from their bundles.
fn containerd(
    rd: &mut Reader<'_>,
    docker_namespaces: &[String],
    note: &mut impl FnMut(HostError),
    out: &mut Vec<Container>,
) {
    for ns in rd.subdirs(CONTAINERD_TASKS) {
        if docker_namespaces.contains(&ns) {
            continue;
        }
        for id in rd.subdirs(&format!("{CONTAINERD_TASKS}/{ns}")) {
            let bundle = format!("{CONTAINERD_TASKS}/{ns}/{id}");
            let path = format!("{bundle}/config.json");
            let Some(spec) = json_file(rd, &path, note) else {
                continue;
            };
            let (resources, cgroups_path) = oci_resources(&spec);
            // The shim's options name another binary when one is configured.
            let runtime = json_file(rd, &format!("{bundle}/options.json"), note)
                .and_then(|o| {
                    o["binary_name"]
                        .as_str()
                        .or(o["BinaryName"].as_str())
                        .map(base_name)
                })
                .unwrap_or_else(|| "runc".into());
            out.push(Container {
                engine: Engine::Containerd,
                id,
                name: None,
                instance: ns.clone(),
                oci_runtime: Some(runtime),
                driver_setting: None,
                cgroups_path,
                systemd_subgroup: subgroup(&spec),
                cgroup_parent: None,
                resources,
                restart: None,
                running: Some(true),
                source: path,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn dockerd_flags_in_both_spellings() {
        let d = parse_dockerd(&args(
            "/usr/sbin/dockerd --exec-opt native.cgroupdriver=systemd --data-root=/var/lib/docker-sd --containerd-namespace moby-sd",
        ));
        assert_eq!(d.driver.as_deref(), Some("systemd"));
        assert_eq!(d.data_root.as_deref(), Some("/var/lib/docker-sd"));
        assert_eq!(d.namespace.as_deref(), Some("moby-sd"));
        let mut d = parse_dockerd(&args("/usr/sbin/dockerd -H fd://"));
        assert_eq!(d, Daemon::default());
        apply_daemon_json(
            &mut d,
            &serde_json::json!({"exec-opts": ["native.cgroupdriver=cgroupfs"], "data-root": "/srv/docker"}),
        );
        assert_eq!(d.driver.as_deref(), Some("cgroupfs"));
        assert_eq!(d.data_root.as_deref(), Some("/srv/docker"));
    }

    /// dockerd turns `--cpus 0.5` into a 50 ms quota per 100 ms period, and
    /// keeps the memory+swap total as given (`--memory-swap`).
    #[test]
    fn docker_hostconfig_maps_like_dockerd() {
        let hc = serde_json::json!({
            "CpuShares": 512, "Memory": 268435456, "MemorySwap": 402653184, "NanoCpus": 500000000,
            "PidsLimit": 64, "CpusetCpus": "0", "CpusetMems": "", "CgroupParent": "",
            "RestartPolicy": {"Name": "always", "MaximumRetryCount": 0}, "Runtime": "runc"
        });
        let cfg = serde_json::json!({"Name": "/d512", "State": {"Running": true}});
        let c = docker_container("abc", DOCKER_ROOT, &Daemon::default(), &hc, &cfg, "x".into());
        assert_eq!(c.name.as_deref(), Some("d512"));
        assert_eq!(c.resources.cpu_quota, Some(50_000));
        assert_eq!(c.resources.cpu_period, Some(100_000));
        assert_eq!(c.resources.memory_swap, Some(402_653_184));
        assert_eq!(c.resources.cpuset_mems, None);
        assert_eq!(c.restart.as_deref(), Some("always"));
        assert_eq!(c.oci_runtime.as_deref(), Some("runc"));
        assert_eq!(c.cgroup_parent, None);
    }

    #[test]
    fn oci_spec_resources() {
        let spec = serde_json::json!({"linux": {"cgroupsPath": "machine.slice:libpod:abc", "resources": {
            "cpu": {"shares": 2048, "quota": 75000, "period": 100000, "cpus": "1"},
            "memory": {"limit": 201326592, "swap": 268435456},
            "pids": {"limit": 48}, "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}}});
        let (r, p) = oci_resources(&spec);
        assert_eq!(p.as_deref(), Some("machine.slice:libpod:abc"));
        assert_eq!(r.cpu_shares, Some(2048));
        assert_eq!(r.memory_swap, Some(268_435_456));
        assert_eq!(r.pids_limit, Some(48));
        assert_eq!(r.hugepage_limits, [("2MB".to_string(), 4_194_304)]);
        assert_eq!(
            oci_resources(&serde_json::json!("not a spec")).0,
            Resources::default()
        );
    }

    /// The podman command conmon runs at exit repeats flags like `-r`:
    /// conmon's own come first.
    #[test]
    fn conmon_flags_are_its_own_not_the_exit_commands() {
        let a = args(
            "/usr/bin/conmon --api-version 1 -c abc -u abc -r /usr/bin/crun -b /x -n p2048 --exit-command /usr/bin/podman --exit-command-arg -r --exit-command-arg --runtime",
        );
        assert_eq!(
            flag_values(&a, &["-r", "--runtime"]).first().copied(),
            Some("/usr/bin/crun")
        );
        assert_eq!(flag_values(&a, &["-c", "--cid"]).first().copied(), Some("abc"));
    }

    #[test]
    fn toml_keys_last_wins_and_comments_are_skipped() {
        let t = "[engine]\n#cgroup_manager = \"cgroupfs\"\ncgroup_manager = \"systemd\"\n";
        assert_eq!(toml_key(t, "cgroup_manager").as_deref(), Some("systemd"));
        assert_eq!(toml_key(t, "runtime"), None);
    }
}
