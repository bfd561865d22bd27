//! Targets for the files the readiness scan reads from a host or an image
//! (untrusted: anything in a container image or a captured tree). Each
//! target runs the file's parser, then what the product does with its
//! result: the readiness findings (`evaluate`) and the converted files
//! (`convert`), so a strange setting reaches the code that consumes it.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use cgmig::model::Mode;
use cgmig::readiness::evaluate::{Context, evaluate};
use cgmig::readiness::{Component, ConfigFile, Place, Readiness, Setting, config, convert, elf};
use cgmig::readiness::{kernel, runtimes, stack};

/// Text as the readiness reader makes it (`Reader::text`).
fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The built-in rules (conversion formulas), loaded once.
fn rules() -> &'static cgmig::rules::RuleSet {
    static RULES: OnceLock<cgmig::rules::RuleSet> = OnceLock::new();
    RULES.get_or_init(|| cgmig::rules::RuleSet::embedded().0)
}

/// Evaluate and convert what a parser produced, as `audit` and `convert` do.
fn downstream(r: Readiness) {
    for mode in [Mode::Hybrid, Mode::Unified] {
        let _ = evaluate(
            &r,
            Context {
                mode,
                kernel: Some("5.15.0"),
            },
        );
    }
    let _ = convert::convert(
        &r,
        rules(),
        &[(1, "quiet systemd.unified_cgroup_hierarchy=1".into())],
    );
}

fn with_settings(settings: Vec<Setting>) -> Readiness {
    Readiness {
        scanned: true,
        settings,
        ..Default::default()
    }
}

fn component(name: &str, version: String, path: &str) -> Component {
    Component {
        name: name.into(),
        version,
        path: path.into(),
        place: Place::Host,
        evidence: "fuzz".into(),
        details: BTreeMap::new(),
    }
}

fn with_components(components: Vec<Component>) -> Readiness {
    Readiness {
        scanned: true,
        components,
        ..Default::default()
    }
}

/// The contents of a Go binary's `.go.buildinfo` section.
pub fn go_buildinfo(b: &[u8]) {
    if let Some(g) = elf::parse_buildinfo(b) {
        let mut comps = vec![component("go", g.go_version.clone(), "/usr/bin/x")];
        if let Some((name, v)) = stack::from_go_build("/usr/bin/x", &g) {
            comps.push(component(name, v, "/usr/bin/x"));
        }
        downstream(with_components(comps));
    }
    let _ = elf::parse_modinfo(&lossy(b));
}

/// A whole ELF file, read through the contained reader by section offsets
/// the file itself claims (bounded reads at attacker-chosen offsets).
pub fn elf(b: &[u8]) {
    static ROOT: OnceLock<(tempfile::TempDir, cgmig::host::Root)> = OnceLock::new();
    let (dir, root) = ROOT.get_or_init(|| {
        let base = std::env::var_os("CGMIG_FUZZ_TMP").map_or_else(std::env::temp_dir, Into::into);
        let dir = tempfile::tempdir_in(base).expect("fuzz temp root");
        let root = cgmig::host::Root::new(dir.path()).expect("root");
        (dir, root)
    });
    std::fs::write(dir.path().join("bin"), b).expect("write fuzz input");
    let mut rd = cgmig::readiness::io::Reader::new(root, Default::default());
    let Some(head) = rd.read_at("/bin", 0, 64) else {
        return;
    };
    let _ = elf::read_go_build(&mut rd, "/bin", &head);
}

/// A JDK's `release` file (`JAVA_VERSION="17.0.2"`).
pub fn jdk_release(b: &[u8]) {
    let kv = runtimes::key_values(&lossy(b));
    if let Some(v) = kv.get("JAVA_VERSION") {
        downstream(with_components(vec![component(
            "openjdk",
            v.clone(),
            "/usr/lib/jvm/x/release",
        )]));
    }
}

/// A systemd unit file or drop-in, read with systemd's rules
/// (`readiness::unit::parse`): readiness settings, owner prediction
/// (`owners::units::apply_text`) and each legacy directive's v2 line. A
/// parsed value never holds a line break, and every line of a drop-in
/// `convert` writes reads back as a v2 directive (nothing forged).
pub fn unit_file(b: &[u8]) {
    let t = lossy(b);
    if let Ok(u) = cgmig::readiness::unit::parse(&t) {
        for d in &u.directives {
            assert!(!d.value.contains(['\n', '\r']), "{d:?}");
        }
    }
    let settings = config::unit_settings("/etc/systemd/system/x.service", &t);
    for s in &settings {
        let _ = convert::unit_directive(&s.key, &s.value);
    }
    let r = with_settings(settings);
    let out = convert::convert(&r, rules(), &[]);
    for f in &out.files {
        let u = cgmig::readiness::unit::parse(&f.text).expect("a generated drop-in parses");
        for d in &u.directives {
            assert!(config::V2_DIRECTIVES.contains(&d.key.as_str()), "{d:?}");
        }
    }
    downstream(r);
    let mut directives = BTreeMap::new();
    if cgmig::owners::units::apply_text(&t, &mut directives).is_ok() {
        for (k, v) in &directives {
            let _ = convert::unit_directive(k, v);
            let _ = cgmig::owners::systemd::parse_bytes(v);
        }
    }
}

/// An rpm ≥ 4.16 `rpmdb.sqlite`: SQLite on hostile bytes, bounded in steps,
/// time and blob size; every blob through the header parser.
pub fn rpm_sqlite(b: &[u8]) {
    let f = crate::documents::input_file(b, "sqlite");
    let Ok(file) = std::fs::File::open(&f) else { return };
    for blob in cgmig::readiness::rpmdb::sqlite_blobs(&file).unwrap_or_default() {
        let _ = cgmig::readiness::rpmdb::parse_header(&blob);
    }
}

/// A Berkeley DB `Packages` (RHEL 7/8): hash pages and overflow chains
/// read page by page, every blob through the header parser.
pub fn rpm_bdb(b: &[u8]) {
    let f = crate::documents::input_file(b, "bdb");
    let Ok(file) = std::fs::File::open(&f) else { return };
    let mut pages = cgmig::readiness::rpmdb::Pages::new(&file);
    for blob in cgmig::readiness::rpmdb::bdb_blobs(&mut pages).unwrap_or_default() {
        let _ = cgmig::readiness::rpmdb::parse_header(&blob);
    }
}

/// docker's `/etc/docker/daemon.json`.
pub fn daemon_json(b: &[u8]) {
    if let Ok(s) = config::daemon_json("/etc/docker/daemon.json", &lossy(b)) {
        downstream(with_settings(s));
    }
}

/// A KubeletConfiguration YAML and kubelet flag files.
pub fn kubelet_config(b: &[u8]) {
    let t = lossy(b);
    let mut s = stack::kubelet_config("/var/lib/kubelet/config.yaml", &t);
    s.extend(stack::kubelet_flags("/etc/default/kubelet", &t));
    downstream(with_settings(s));
}

/// containerd's `config.toml` (and CRI-O's, containers.conf: same reader).
pub fn containerd_toml(b: &[u8]) {
    let t = lossy(b);
    let keys = [
        "runtime_type",
        "systemd_cgroup",
        "SystemdCgroup",
        "cgroup_manager",
        "cgroups",
    ];
    let s = stack::toml_keys(&t, &keys)
        .into_iter()
        .map(|(line, key, value)| Setting {
            family: "containerd".into(),
            file: "/etc/containerd/config.toml".into(),
            line: Some(line),
            section: None,
            key: key.into(),
            value: value.into(),
        })
        .collect();
    downstream(with_settings(s));
}

fn with_file(kind: &str, path: &str, text: String, settings: Vec<Setting>) -> Readiness {
    Readiness {
        scanned: true,
        settings,
        files: vec![ConfigFile {
            kind: kind.into(),
            path: path.into(),
            text,
        }],
        ..Default::default()
    }
}

/// libcgroup's `/etc/cgconfig.conf`, parsed and converted to v2.
pub fn cgconfig(b: &[u8]) {
    let t = lossy(b);
    let path = "/etc/cgconfig.conf";
    let s = match config::cgconfig::parse(&t) {
        Ok(blocks) => config::cgconfig::settings(path, &blocks),
        Err(_) => Vec::new(),
    };
    downstream(with_file("cgconfig", path, t, s));
}

/// An LXC container config, converted to v2 keys.
pub fn lxc_config(b: &[u8]) {
    let t = lossy(b);
    let path = "/var/lib/lxc/c/config";
    let s = config::lxc_settings(path, &t);
    // The converted file keeps the other keys and adds only lxc.cgroup2.*.
    let before: std::collections::BTreeSet<String> = config::lxc_lines(&t).into_iter().map(|l| l.key).collect();
    let r = with_file("lxc", path, t, s);
    for f in &convert::convert(&r, rules(), &[]).files {
        for l in config::lxc_lines(&f.text) {
            assert!(
                l.key.starts_with("lxc.cgroup2.") || (before.contains(&l.key) && !l.key.starts_with("lxc.cgroup.")),
                "{l:?}"
            );
        }
    }
    downstream(r);
}

/// `/boot/config-RELEASE` (and `/proc/config.gz` once decompressed).
pub fn kernel_config(b: &[u8]) {
    let options = kernel::parse_config(&lossy(b));
    downstream(Readiness {
        scanned: true,
        kernel_config: Some(cgmig::readiness::KernelConfig {
            path: "/boot/config-5.15.0".into(),
            options,
        }),
        ..Default::default()
    });
}

/// `/etc/default/grub`: its command-line keys, and the staged boot edit.
pub fn grub_default(b: &[u8]) {
    let t = lossy(b);
    let path = "/etc/default/grub";
    let s = kernel::grub_default(path, &t);
    let _ = convert::stage_line(&t, "systemd.unified_cgroup_hierarchy=1");
    downstream(with_file("grub-default", path, t, s));
}

/// dpkg's `/var/lib/dpkg/status`: installed packages and their versions.
pub fn dpkg_status(b: &[u8]) {
    let t = lossy(b);
    let comps = runtimes::dpkg_installed(&t)
        .into_iter()
        .filter_map(|(pkg, v)| {
            runtimes::package_component(&pkg).map(|n| component(n, v, "/var/lib/dpkg/status"))
        })
        .collect();
    downstream(with_components(comps));
    let _ = cgmig::owners::evidence::dpkg_version(&t, "systemd");
}

/// node's `node_version.h` and .NET's `*.runtimeconfig.json`.
pub fn runtime_versions(b: &[u8]) {
    let t = lossy(b);
    let mut comps = Vec::new();
    if let Some(v) = runtimes::node_version_h(&t) {
        comps.push(component("node", v, "/usr/include/node/node_version.h"));
    }
    for v in runtimes::runtimeconfig_versions(&t) {
        comps.push(component("dotnet", v, "/app/x.runtimeconfig.json"));
    }
    downstream(with_components(comps));
}
