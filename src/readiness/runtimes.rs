//! Runtimes and libraries that size themselves from cgroup files: JDKs
//! (`release` files), Go binaries (`.go.buildinfo`), Node (`node_version.h`,
//! nvm), .NET (shared framework directories, `*.runtimeconfig.json`),
//! Elasticsearch (its jar), and every package the reference names from the
//! dpkg database, on the host **and** in every container image layer
//! (docker overlay2, containerd overlayfs snapshots, podman storage).
//!
//! Each detector looks only where the software installs itself (the paths in
//! `docs/readiness.md`), never walks a whole filesystem: that is what keeps a
//! scan of a fleet host with hundreds of images cheap.

use std::collections::BTreeMap;

use super::io::{Kind, Reader, join};
use super::stores::STORES;
use super::{Component, Place, Readiness, stack};
use super::{elf, images, rpmdb};

/// Directories whose executables are checked for Go build info.
const BIN_DIRS: &[&str] = &[
    "/bin",
    "/sbin",
    "/usr/bin",
    "/usr/sbin",
    "/usr/local/bin",
    "/usr/local/sbin",
    "/usr/libexec/docker",
    "/app",
];

/// Executables smaller than this are scripts or stubs, not Go binaries.
const MIN_GO_BINARY: u64 = 64 << 10;

/// A filesystem tree to look into: the host (`prefix` empty) or a layer.
struct Tree {
    prefix: String,
    place: Place,
}

impl Tree {
    fn abs(&self, p: &str) -> String {
        format!("{}{}", self.prefix, p)
    }
}

/// Scan the host and every image layer.
pub fn scan(rd: &mut Reader<'_>, out: &mut Readiness) {
    let host = Tree {
        prefix: String::new(),
        place: Place::Host,
    };
    scan_tree(rd, &host, out);
    let first_image_component = out.components.len();
    for (store, dir, sub) in STORES {
        let layers = rd.subdirs(dir);
        for layer in layers.iter().take(rd.limits.max_layers) {
            rd.count_layer();
            let tree = Tree {
                prefix: format!("{}/{layer}/{sub}", dir.trim_end_matches('/')),
                place: Place::Image {
                    store: store.to_string(),
                    layer: layer.clone(),
                    image: None,
                },
            };
            scan_tree(rd, &tree, out);
        }
        if layers.len() > rd.limits.max_layers {
            rd.note_abs(
                dir,
                format!("more than {} layers: the rest skipped", rd.limits.max_layers),
            );
        }
    }
    // Layers into images: whiteouts applied, one report per image.
    let mut images = images::docker_images(rd);
    images.extend(images::podman_images(rd));
    let layered = out.components.split_off(first_image_component);
    out.components.extend(images::per_image(rd, &images, layered));
    out.components
        .extend(images.iter().filter_map(images::named_components));
}

fn scan_tree(rd: &mut Reader<'_>, t: &Tree, out: &mut Readiness) {
    jdks(rd, t, out);
    go_binaries(rd, t, out);
    node(rd, t, out);
    dotnet(rd, t, out);
    elasticsearch(rd, t, out);
    dpkg(rd, t, out);
    rpm(rd, t, out);
}

fn push(out: &mut Readiness, t: &Tree, name: &str, version: &str, path: &str, evidence: &str) {
    out.components.push(Component {
        name: name.into(),
        version: version.into(),
        path: path.into(),
        place: t.place.clone(),
        evidence: evidence.into(),
        details: BTreeMap::new(),
    });
}

/// `KEY="value"` lines (JDK `release`, os-release).
pub fn key_values(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
        .collect()
}

fn jdks(rd: &mut Reader<'_>, t: &Tree, out: &mut Readiness) {
    let mut candidates: Vec<String> = vec![
        "/opt/java/openjdk/release".into(),
        "/usr/share/elasticsearch/jdk/release".into(),
    ];
    for parent in ["/usr/lib/jvm", "/usr/java", "/opt", "/opt/java", "/usr/local"] {
        for d in rd.subdirs(&t.abs(parent)) {
            if parent == "/usr/local" && !d.starts_with("openjdk") && !d.starts_with("jdk") {
                continue;
            }
            candidates.push(format!("{parent}/{d}/release"));
        }
    }
    candidates.sort();
    candidates.dedup();
    for c in candidates {
        let Some(text) = rd.text(&t.abs(&c)) else { continue };
        let kv = key_values(&text);
        let Some(v) = kv.get("JAVA_VERSION") else { continue };
        let mut comp = Component {
            name: "openjdk".into(),
            version: v.clone(),
            path: c.clone(),
            place: t.place.clone(),
            evidence: "JAVA_VERSION in the JDK release file".into(),
            details: BTreeMap::new(),
        };
        for k in ["IMPLEMENTOR", "IMPLEMENTOR_VERSION", "JAVA_RUNTIME_VERSION"] {
            if let Some(v) = kv.get(k) {
                comp.details.insert(k.to_lowercase(), v.clone());
            }
        }
        out.components.push(comp);
    }
}

fn go_binaries(rd: &mut Reader<'_>, t: &Tree, out: &mut Readiness) {
    let mut dirs: Vec<String> = BIN_DIRS.iter().map(|d| d.to_string()).collect();
    for d in rd.subdirs(&t.abs("/opt")) {
        dirs.push(format!("/opt/{d}/bin"));
    }
    for dir in dirs {
        let abs_dir = t.abs(&dir);
        if rd.is_symlink(&abs_dir) {
            continue; // merged /usr: /bin → usr/bin is scanned as /usr/bin
        }
        for e in rd.list(&abs_dir) {
            if e.kind != Kind::File || !e.exec || e.size < MIN_GO_BINARY {
                continue;
            }
            let file = join(&dir, &e.name);
            let abs = t.abs(&file);
            let Some(head) = rd.read_at(&abs, 0, 64) else {
                continue;
            };
            let Some(bin) = elf::read_binary(rd, &abs, &head) else {
                continue;
            };
            if let Some(b) = &bin.go {
                go_component(out, t, &file, b);
            }
            if let Some(v) = &bin.rustc {
                push(out, t, "rust", v, &file, "rustc version in ELF .comment");
            }
        }
    }
}

fn go_component(out: &mut Readiness, t: &Tree, file: &str, b: &elf::GoBuild) {
    let mut details = BTreeMap::new();
    for (key, module) in [
        ("automaxprocs", "go.uber.org/automaxprocs"),
        ("automemlimit", "github.com/KimMachineGun/automemlimit"),
    ] {
        if let Some(v) = b.dep(module) {
            details.insert(key.to_string(), v.to_string());
        }
    }
    if let Some(v) = b.godebug("containermaxprocs") {
        details.insert("containermaxprocs".into(), v.to_string());
    }
    if let Some((m, v)) = &b.main {
        details.insert("module".into(), format!("{m} {v}"));
    }
    out.components.push(Component {
        name: "go".into(),
        version: b.go_version.clone(),
        path: file.into(),
        place: t.place.clone(),
        evidence: "ELF .go.buildinfo".into(),
        details,
    });
    if let Some((name, version)) = stack::from_go_build(file, b) {
        push(out, t, name, &version, file, "ELF .go.buildinfo main module");
    }
}

fn node(rd: &mut Reader<'_>, t: &Tree, out: &mut Readiness) {
    for h in [
        "/usr/include/node/node_version.h",
        "/usr/local/include/node/node_version.h",
    ] {
        let Some(text) = rd.text(&t.abs(h)) else { continue };
        if let Some(v) = node_version_h(&text) {
            push(out, t, "node", &v, h, "NODE_*_VERSION in node_version.h");
        }
    }
    let mut homes = vec!["/root".to_string()];
    homes.extend(
        rd.subdirs(&t.abs("/home"))
            .into_iter()
            .map(|h| format!("/home/{h}")),
    );
    for home in homes {
        let dir = format!("{home}/.nvm/versions/node");
        for v in rd.subdirs(&t.abs(&dir)) {
            push(out, t, "node", &v, &join(&dir, &v), "nvm version directory");
        }
    }
}

/// `#define NODE_MAJOR_VERSION 18` ... → `18.19.1`.
pub fn node_version_h(text: &str) -> Option<String> {
    let get = |k: &str| {
        text.lines().find_map(|l| {
            let rest = l.trim().strip_prefix("#define")?.trim_start();
            let v = rest.strip_prefix(k)?;
            v.starts_with(char::is_whitespace).then(|| v.trim().to_string())
        })
    };
    Some(format!(
        "{}.{}.{}",
        get("NODE_MAJOR_VERSION")?,
        get("NODE_MINOR_VERSION")?,
        get("NODE_PATCH_VERSION")?
    ))
}

fn dotnet(rd: &mut Reader<'_>, t: &Tree, out: &mut Readiness) {
    for root in [
        "/usr/share/dotnet",
        "/usr/lib/dotnet",
        "/opt/dotnet",
        "/usr/local/share/dotnet",
    ] {
        let dir = format!("{root}/shared/Microsoft.NETCore.App");
        for v in rd.subdirs(&t.abs(&dir)) {
            push(
                out,
                t,
                "dotnet",
                &v,
                &join(&dir, &v),
                "shared framework directory",
            );
        }
    }
    for f in rd.files_ending(&t.abs("/app"), ".runtimeconfig.json") {
        let file = join("/app", &f);
        let Some(text) = rd.text(&t.abs(&file)) else {
            continue;
        };
        for v in runtimeconfig_versions(&text) {
            push(out, t, "dotnet", &v, &file, "runtimeOptions framework version");
        }
    }
}

/// Microsoft.NETCore.App versions a `*.runtimeconfig.json` asks for.
pub fn runtimeconfig_versions(text: &str) -> Vec<String> {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
        return Vec::new();
    };
    let opts = &v["runtimeOptions"];
    let mut list: Vec<&serde_json::Value> = vec![&opts["framework"]];
    if let Some(a) = opts["frameworks"].as_array() {
        list.extend(a);
    }
    list.iter()
        .filter(|f| f["name"].as_str() == Some("Microsoft.NETCore.App"))
        .filter_map(|f| f["version"].as_str().map(str::to_string))
        .collect()
}

fn elasticsearch(rd: &mut Reader<'_>, t: &Tree, out: &mut Readiness) {
    let dir = "/usr/share/elasticsearch/lib";
    for f in rd.files_ending(&t.abs(dir), ".jar") {
        if let Some(v) = f
            .strip_prefix("elasticsearch-")
            .and_then(|r| r.strip_suffix(".jar"))
            .filter(|v| v.starts_with(|c: char| c.is_ascii_digit()))
        {
            push(
                out,
                t,
                "elasticsearch",
                v,
                &join(dir, &f),
                "elasticsearch jar name",
            );
        }
    }
}

/// Package name → component name, for the packages the reference names.
pub fn package_component(pkg: &str) -> Option<&'static str> {
    if pkg.starts_with("openjdk-") || pkg.starts_with("java-") && pkg.contains("openjdk") {
        return Some("openjdk");
    }
    if pkg.starts_with("dotnet-runtime-") && !pkg.starts_with("dotnet-runtime-deps") {
        return Some("dotnet");
    }
    Some(match pkg {
        "nodejs" => "node",
        "docker-ce" | "docker.io" | "moby-engine" | "docker-engine" => "docker",
        "containerd" | "containerd.io" => "containerd",
        "runc" => "runc",
        "crun" => "crun",
        "cri-o" => "crio",
        "podman" => "podman",
        "kubelet" => "kubelet",
        "systemd" => "systemd",
        "lxc" | "liblxc1" => "lxc",
        "cgroup-tools" | "libcgroup-tools" | "libcgroup1" | "libcgroup2" | "libcgroup3" => "libcgroup",
        "elasticsearch" => "elasticsearch",
        "datadog-agent" => "datadog-agent",
        "newrelic-infra" => "newrelic-infra",
        "metricbeat" => "metricbeat",
        "nomad" => "nomad",
        "prometheus-node-exporter" | "node_exporter" => "node_exporter",
        "cadvisor" => "cadvisor",
        "nvidia-container-toolkit" => "nvidia-container-toolkit",
        "slurmd" | "slurm-wlm" | "slurm" | "slurm-slurmd" => "slurm",
        "ecs-init" | "amazon-ecs-init" => "ecs-agent",
        _ => return None,
    })
}

fn dpkg(rd: &mut Reader<'_>, t: &Tree, out: &mut Readiness) {
    let file = "/var/lib/dpkg/status";
    let Some(text) = rd.text(&t.abs(file)) else { return };
    for (pkg, version) in dpkg_installed(&text) {
        if let Some(name) = package_component(&pkg) {
            let mut v = version.clone();
            if name == "openjdk" {
                // The Java version is the package's; keep the feature release visible.
                v = version
                    .split_once(':')
                    .map_or(version.as_str(), |(_, r)| r)
                    .to_string();
            }
            out.components.push(Component {
                name: name.into(),
                version: v,
                path: file.into(),
                place: t.place.clone(),
                evidence: format!("dpkg package {pkg}"),
                details: BTreeMap::new(),
            });
        }
    }
}

/// Installed packages and versions from a dpkg `status` file.
pub fn dpkg_installed(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let (mut pkg, mut ver, mut ok) = (None, None, false);
        for l in stanza.lines() {
            if let Some(v) = l.strip_prefix("Package: ") {
                pkg = Some(v.trim());
            } else if let Some(v) = l.strip_prefix("Version: ") {
                ver = Some(v.trim());
            } else if let Some(v) = l.strip_prefix("Status: ") {
                ok = v.trim().ends_with(" installed");
            }
        }
        if let (Some(p), Some(v), true) = (pkg, ver, ok) {
            out.push((p.to_string(), v.to_string()));
        }
    }
    out
}

/// Installed packages from the rpm database (SQLite, Berkeley DB; see
/// [`rpmdb`]), mapped like the dpkg ones.
fn rpm(rd: &mut Reader<'_>, t: &Tree, out: &mut Readiness) {
    let Some((db, packages)) = rpmdb::installed(rd, &t.prefix) else {
        return;
    };
    for p in packages {
        let Some(name) = package_component(&p.name) else {
            continue;
        };
        // The Java version is the package's; an epoch would hide it.
        let version = if name == "openjdk" {
            p.evr
                .split_once(':')
                .map_or(p.evr.as_str(), |(_, r)| r)
                .to_string()
        } else {
            p.evr.clone()
        };
        out.components.push(Component {
            name: name.into(),
            version,
            path: db.clone(),
            place: t.place.clone(),
            evidence: format!("rpm package {}", p.name),
            details: BTreeMap::new(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpkg_status_keeps_installed_packages_only() {
        let text = "Package: docker-ce\nStatus: install ok installed\nVersion: 5:19.03.15~3-0~debian-buster\n\n\
                    Package: runc\nStatus: deinstall ok config-files\nVersion: 1.0.0~rc6\n\n\
                    Package: nodejs\nStatus: install ok installed\nArchitecture: amd64\nVersion: 18.19.0+dfsg-6\n";
        assert_eq!(
            dpkg_installed(text),
            vec![
                ("docker-ce".into(), "5:19.03.15~3-0~debian-buster".into()),
                ("nodejs".into(), "18.19.0+dfsg-6".into())
            ]
        );
    }

    #[test]
    fn node_header_and_runtimeconfig() {
        let h =
            "#define NODE_MAJOR_VERSION 18\n#define NODE_MINOR_VERSION 19\n#define NODE_PATCH_VERSION 1\n";
        assert_eq!(node_version_h(h).as_deref(), Some("18.19.1"));
        let rc = r#"{"runtimeOptions":{"tfm":"netcoreapp3.1","framework":{"name":"Microsoft.NETCore.App","version":"3.1.0"}}}"#;
        assert_eq!(runtimeconfig_versions(rc), vec!["3.1.0"]);
        let rc6 = r#"{"runtimeOptions":{"frameworks":[{"name":"Microsoft.AspNetCore.App","version":"6.0.0"},{"name":"Microsoft.NETCore.App","version":"6.0.0"}]}}"#;
        assert_eq!(runtimeconfig_versions(rc6), vec!["6.0.0"]);
        assert!(runtimeconfig_versions("not json").is_empty());
    }

    #[test]
    fn packages_map_to_components() {
        assert_eq!(package_component("openjdk-11-jre-headless"), Some("openjdk"));
        assert_eq!(package_component("java-1.8.0-openjdk-headless"), Some("openjdk"));
        assert_eq!(package_component("dotnet-runtime-3.1"), Some("dotnet"));
        assert_eq!(package_component("dotnet-runtime-deps-6.0"), None);
        assert_eq!(package_component("containerd.io"), Some("containerd"));
        assert_eq!(package_component("bash"), None);
    }
}
