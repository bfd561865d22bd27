//! The container and orchestration stack: component versions (from Go build
//! info, see [`from_go_build`], and the package database, see
//! `runtimes::package_component`), systemd's version (from the name of its
//! shared library, `libsystemd-shared-NNN.so`), and the settings that decide
//! whether the stack starts on v2: the kubelet's `cgroupDriver`,
//! `failCgroupV1` and `singleProcessOOMKill` (config file and command-line
//! flags), CRI-O's and podman's `cgroup_manager`.

use std::collections::BTreeMap;

use super::elf::GoBuild;
use super::io::Reader;
use super::{Component, Place, Readiness, Setting};

/// Main Go module → component name, for stack software built with Go.
const GO_MODULES: &[(&str, &str)] = &[
    ("github.com/opencontainers/runc", "runc"),
    ("github.com/containerd/containerd", "containerd"),
    ("github.com/containerd/containerd/v2", "containerd"),
    ("github.com/google/cadvisor", "cadvisor"),
    ("github.com/prometheus/node_exporter", "node_exporter"),
    ("github.com/docker/docker", "docker"),
    ("github.com/cri-o/cri-o", "crio"),
    ("github.com/hashicorp/nomad", "nomad"),
    ("github.com/containers/podman/v4", "podman"),
    ("github.com/containers/podman/v5", "podman"),
    ("github.com/DataDog/datadog-agent", "datadog-agent"),
    ("github.com/elastic/beats/v7", "metricbeat"),
    ("github.com/aws/amazon-ecs-agent/agent", "ecs-agent"),
];

/// The stack component a Go binary is, with its version, if its main module
/// is one the reference names and carries a real version (not `(devel)`).
pub fn from_go_build(file: &str, b: &GoBuild) -> Option<(&'static str, String)> {
    let (module, version) = b.main.as_ref()?;
    if version == "(devel)" || version.is_empty() {
        return None;
    }
    if module == "k8s.io/kubernetes" {
        return file.ends_with("/kubelet").then(|| ("kubelet", version.clone()));
    }
    GO_MODULES
        .iter()
        .find(|(m, _)| m == module)
        .map(|(_, name)| (*name, version.clone()))
}

/// Files holding kubelet flags (`KUBELET_EXTRA_ARGS`, `ExecStart=`).
const KUBELET_FLAG_FILES: &[&str] = &["/etc/default/kubelet", "/etc/sysconfig/kubelet"];
const KUBELET_DROPIN_DIRS: &[&str] = &[
    "/etc/systemd/system/kubelet.service.d",
    "/usr/lib/systemd/system/kubelet.service.d",
    "/lib/systemd/system/kubelet.service.d",
];
const KUBELET_CONFIGS: &[&str] = &[
    "/var/lib/kubelet/config.yaml",
    "/etc/kubernetes/kubelet-config.yaml",
];

/// Scan the host's stack (images carry software, not daemons).
pub fn scan(rd: &mut Reader<'_>, systemd: Option<&crate::host::systemd::Version>, out: &mut Readiness) {
    if let Some(v) = systemd {
        out.components.push(Component {
            name: "systemd".into(),
            version: v.text.clone(),
            path: v.path.clone(),
            place: Place::Host,
            evidence: v.evidence.into(),
            details: BTreeMap::new(),
        });
    }
    for f in KUBELET_CONFIGS {
        if let Some(text) = rd.text(f) {
            out.settings.extend(kubelet_config(f, &text));
        }
    }
    let mut flag_files: Vec<String> = KUBELET_FLAG_FILES.iter().map(|s| s.to_string()).collect();
    for d in KUBELET_DROPIN_DIRS {
        flag_files.extend(rd.paths_ending(d, ".conf"));
    }
    for f in flag_files {
        if let Some(text) = rd.text(&f) {
            out.settings.extend(kubelet_flags(&f, &text));
        }
    }
    for (family, file) in [
        ("crio", "/etc/crio/crio.conf"),
        ("containers.conf", "/etc/containers/containers.conf"),
    ] {
        if let Some(text) = rd.text(file) {
            out.settings.extend(
                toml_keys(&text, &["cgroup_manager", "cgroups"])
                    .into_iter()
                    .map(|(line, key, value)| setting(family, file, Some(line), key, value)),
            );
        }
    }
}

fn setting(family: &str, file: &str, line: Option<usize>, key: &str, value: &str) -> Setting {
    Setting {
        family: family.into(),
        file: file.into(),
        line,
        section: None,
        key: key.into(),
        value: value.into(),
    }
}

/// The v2-relevant fields of a KubeletConfiguration (YAML).
pub fn kubelet_config(file: &str, text: &str) -> Vec<Setting> {
    const KEYS: &[&str] = &[
        "cgroupDriver",
        "failCgroupV1",
        "singleProcessOOMKill",
        "memoryThrottlingFactor",
    ];
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        // Top-level keys only: a KubeletConfiguration is flat for these.
        if l.starts_with([' ', '\t', '#']) {
            continue;
        }
        if let Some((k, v)) = l.split_once(':')
            && KEYS.contains(&k.trim())
        {
            let v = v.split('#').next().unwrap_or("").trim().trim_matches(['"', '\'']);
            out.push(setting("kubelet", file, Some(i + 1), k.trim(), v));
        }
    }
    out
}

/// `--cgroup-driver=X` and `--fail-cgroupv1[=B]` flags in kubelet env/unit files.
pub fn kubelet_flags(file: &str, text: &str) -> Vec<Setting> {
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        if l.trim_start().starts_with('#') {
            continue;
        }
        for word in l.split(|c: char| c.is_whitespace() || c == '"' || c == '\'') {
            for (flag, key) in [
                ("--cgroup-driver", "cgroupDriver"),
                ("--fail-cgroupv1", "failCgroupV1"),
            ] {
                if let Some(rest) = word.strip_prefix(flag) {
                    let value = match rest.strip_prefix('=') {
                        Some(v) => v,
                        None if rest.is_empty() => "true",
                        None => continue,
                    };
                    out.push(setting("kubelet", file, Some(i + 1), key, value));
                }
            }
        }
    }
    out
}

/// `key = value` lines of a TOML file for the given keys (any table), with
/// their line numbers; values unquoted.
pub fn toml_keys<'a>(text: &'a str, keys: &[&str]) -> Vec<(usize, &'a str, &'a str)> {
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let l = l.trim();
        if l.starts_with('#') {
            continue;
        }
        if let Some((k, v)) = l.split_once('=') {
            let k = k.trim();
            if keys.contains(&k) {
                let v = v.split('#').next().unwrap_or("").trim().trim_matches(['"', '\'']);
                out.push((i + 1, k, v));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelet_config_and_flags() {
        let cfg = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupDriver: cgroupfs\n\
                   failCgroupV1: false # opt out\nevictionHard:\n  cgroupDriver: nested\n";
        let s = kubelet_config("/var/lib/kubelet/config.yaml", cfg);
        let kv: Vec<(&str, &str, Option<usize>)> = s
            .iter()
            .map(|s| (s.key.as_str(), s.value.as_str(), s.line))
            .collect();
        assert_eq!(
            kv,
            vec![
                ("cgroupDriver", "cgroupfs", Some(3)),
                ("failCgroupV1", "false", Some(4))
            ]
        );
        let env =
            "KUBELET_EXTRA_ARGS=\"--cgroup-driver=systemd --fail-cgroupv1\"\n# --cgroup-driver=cgroupfs\n";
        let s = kubelet_flags("/etc/default/kubelet", env);
        let kv: Vec<(&str, &str)> = s.iter().map(|s| (s.key.as_str(), s.value.as_str())).collect();
        assert_eq!(kv, vec![("cgroupDriver", "systemd"), ("failCgroupV1", "true")]);
    }

    #[test]
    fn go_main_modules_name_stack_components() {
        let b = GoBuild {
            main: Some(("github.com/opencontainers/runc".into(), "v1.1.12".into())),
            ..Default::default()
        };
        assert_eq!(
            from_go_build("/usr/bin/runc", &b),
            Some(("runc", "v1.1.12".into()))
        );
        let devel = GoBuild {
            main: Some(("github.com/opencontainers/runc".into(), "(devel)".into())),
            ..Default::default()
        };
        assert_eq!(from_go_build("/usr/bin/runc", &devel), None);
        let k8s = GoBuild {
            main: Some(("k8s.io/kubernetes".into(), "v1.29.0".into())),
            ..Default::default()
        };
        assert_eq!(
            from_go_build("/usr/bin/kubelet", &k8s),
            Some(("kubelet", "v1.29.0".into()))
        );
        assert_eq!(from_go_build("/usr/bin/kubectl", &k8s), None);
    }
}
