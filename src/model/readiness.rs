//! The readiness inventory a snapshot carries (`Snapshot::readiness`): the
//! software, settings and configuration files the readiness scan found
//! (`crate::readiness`), as data. The detectors that fill it and the rules
//! that evaluate it live in `crate::readiness`; the types live here because
//! they are part of the snapshot document (`cgmig.snapshot/v1`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Where a component or setting was found.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "in", rename_all = "lowercase")]
pub enum Place {
    /// The host's own filesystem.
    Host,
    /// A container image layer or snapshot.
    Image {
        /// The storage (`docker`, `containerd`, `podman`).
        store: String,
        /// Layer or snapshot id (directory name) the file is in.
        layer: String,
        /// The image (first tag, else its id) when the store's metadata names
        /// it; the component is then reported once per image that still has
        /// the file after its upper layers' whiteouts.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        image: Option<String>,
    },
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::Host => f.write_str("host"),
            Place::Image {
                store,
                layer,
                image: Some(image),
            } => write!(f, "{store} image {image} (layer {layer})"),
            Place::Image { store, layer, .. } => write!(f, "{store} layer {layer}"),
        }
    }
}

/// A piece of software found, with its version and the evidence for it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Component {
    /// Stable name (`openjdk`, `go`, `node`, `dotnet`, `docker`, `runc`, `kubelet`, ...).
    pub name: String,
    /// Version as found (`11.0.14`, `go1.22.5`, `5:20.10.24~3-0~debian-bookworm`).
    pub version: String,
    /// The file it was read from (absolute within the host or the layer).
    pub path: String,
    /// Host or image layer.
    pub place: Place,
    /// How it was found (`JAVA_VERSION in release`, `dpkg status`, `ELF .go.buildinfo`).
    pub evidence: String,
    /// Detector-specific facts (Go: `automaxprocs`, `automemlimit`, `containermaxprocs`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, String>,
}

/// One configuration setting worth evaluating (`daemon.json` `exec-opts`,
/// a unit's `CPUShares=`, an LXC `lxc.cgroup.*` key, a boot parameter, ...).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Setting {
    /// What kind of file (`unit`, `daemon.json`, `containerd`, `kubelet`, `lxc`,
    /// `cgconfig`, `cgrules`, `boot`, `kernel-config`).
    pub family: String,
    /// The file (absolute on the host).
    pub file: String,
    /// 1-based line, when the format has lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// Section (`Service` in a unit, a cgconfig group name), when there is one;
    /// for family `jvm`, the java program the option applies to (`*`: every JVM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
    /// Key (`CPUShares`, `exec-opts`, `lxc.cgroup.memory.limit_in_bytes`).
    pub key: String,
    /// Value as written.
    pub value: String,
}

impl Setting {
    /// A setting found at a line of a file (the detectors of apps and unit
    /// environments build them the same way).
    pub fn at_line(
        family: &str,
        file: &str,
        line: usize,
        section: Option<&str>,
        key: &str,
        value: &str,
    ) -> Setting {
        Setting {
            family: family.into(),
            file: file.into(),
            line: Some(line),
            section: section.map(str::to_string),
            key: key.into(),
            value: value.into(),
        }
    }
}

/// A configuration file `convert` rewrites, kept whole so the converted file
/// can be reviewed as a diff against it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigFile {
    /// Kind (`lxc`, `cgconfig`, `grub-default`, `bls`, `kernel-cmdline`, `grubenv`).
    pub kind: String,
    /// Path on the host.
    pub path: String,
    /// Contents (up to the per-file limit).
    pub text: String,
}

/// How much the readiness scan read: the bound it kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Files opened and read (whole or a range).
    pub files_read: u64,
    /// Bytes read in total.
    pub bytes_read: u64,
    /// Directories listed.
    pub dirs_listed: u64,
    /// Files cut at the per-file limit.
    pub truncated: u64,
    /// Files or directories skipped (unreadable, not regular, symlinks out, over limits).
    pub skipped: u64,
    /// Image layers or snapshots looked into.
    pub layers: u64,
}

/// What the readiness scan found on a host. Carried by the snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readiness {
    /// Whether the scan ran (old snapshots have none).
    pub scanned: bool,
    /// Runtimes, libraries and stack components, host and images.
    pub components: Vec<Component>,
    /// Settings found in configuration files.
    pub settings: Vec<Setting>,
    /// Files kept whole for `convert`.
    pub files: Vec<ConfigFile>,
    /// Kernel config options read (`CONFIG_CGROUP_BPF` → `y`), with the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_config: Option<KernelConfig>,
    /// Work done.
    pub stats: Stats,
}

/// The cgroup-relevant options of the running kernel's config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelConfig {
    /// `/boot/config-RELEASE` or `/proc/config.gz`.
    pub path: String,
    /// Option → value (`y`, `m`, or `n` for `# ... is not set`).
    pub options: BTreeMap<String, String>,
}
