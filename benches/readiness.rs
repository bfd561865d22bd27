//! Readiness scan benchmark: a generated host tree of 100,000 files, 200
//! container images' worth of overlay2 layers (4 layers each, with JDK
//! release files, dpkg databases, Node headers and ELF-looking executables
//! in bin directories), 2,000 unit files and the usual configuration.
//!
//! Since the per-image work (issue 11, second round) the tree also has
//! docker's image metadata for the 200 images (layerdb, imagedb,
//! repositories.json; half the images delete their base layer's JDK with a
//! `.wh.` whiteout) and a host rpm SQLite database of 1,500 packages.
//! `CGMIG_BENCH_READINESS_BASE=1` leaves both out: the tree of the first
//! round, to compare code versions on the same input.
//!
//! Run: `cargo bench --bench readiness`. Prints files, layers, the scan's own
//! read counters and the time per scan (best of 5, after one warm-up).

use std::fs;
use std::path::Path;
use std::time::Instant;

use cgmig::host::Root;
use cgmig::readiness::scan;

const IMAGES: usize = 200;
const LAYERS_PER_IMAGE: usize = 4;
const TOTAL_FILES: usize = 100_000;

fn write(root: &Path, rel: &str, content: &[u8]) {
    let p = root.join(rel.trim_start_matches('/'));
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, content).unwrap();
}

fn exec(root: &Path, rel: &str, size: usize) {
    let mut body = b"\x7fELF\x02\x01\x01".to_vec();
    body.resize(size, 0);
    write(root, rel, &body);
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(
        root.join(rel.trim_start_matches('/')),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
}

/// Build the tree; returns the number of files written.
fn generate(root: &Path) -> usize {
    let mut n = 0;
    for i in 0..2000 {
        write(
            root,
            &format!("/etc/systemd/system/app{i}.service"),
            b"[Service]\nExecStart=/bin/true\nCPUShares=512\nMemoryLimit=1G\n",
        );
        n += 1;
    }
    write(
        root,
        "/etc/docker/daemon.json",
        br#"{"exec-opts": ["native.cgroupdriver=cgroupfs"]}"#,
    );
    write(
        root,
        "/etc/default/grub",
        b"GRUB_CMDLINE_LINUX=\"systemd.unified_cgroup_hierarchy=0\"\n",
    );
    write(
        root,
        "/usr/lib/jvm/java-11/release",
        b"JAVA_VERSION=\"11.0.14\"\n",
    );
    let mut dpkg = String::new();
    for i in 0..1500 {
        dpkg.push_str(&format!(
            "Package: pkg{i}\nStatus: install ok installed\nVersion: 1.{i}\n\n"
        ));
    }
    dpkg.push_str("Package: docker-ce\nStatus: install ok installed\nVersion: 5:19.03.15\n\n");
    write(root, "/var/lib/dpkg/status", dpkg.as_bytes());
    n += 4;
    for l in 0..IMAGES * LAYERS_PER_IMAGE {
        let base = format!("/var/lib/docker/overlay2/layer{l:04}/diff");
        match l % LAYERS_PER_IMAGE {
            0 => {
                write(root, &format!("{base}/var/lib/dpkg/status"), dpkg.as_bytes());
                n += 1;
            }
            1 => {
                write(
                    root,
                    &format!("{base}/opt/java/openjdk/release"),
                    b"JAVA_VERSION=\"1.8.0_292\"\n",
                );
                n += 1;
            }
            2 => {
                write(root, &format!("{base}/usr/local/include/node/node_version.h"),
                    b"#define NODE_MAJOR_VERSION 18\n#define NODE_MINOR_VERSION 1\n#define NODE_PATCH_VERSION 0\n");
                n += 1;
            }
            _ => {
                for b in 0..5 {
                    exec(root, &format!("{base}/usr/local/bin/tool{b}"), 70 << 10);
                    n += 1;
                }
            }
        }
    }
    if std::env::var("CGMIG_BENCH_READINESS_BASE").as_deref() != Ok("1") {
        n += image_metadata(root);
        n += rpm_database(root);
    }
    // Fill the rest with ordinary files the detectors must not cost much on:
    // shared libraries, docs and small executables in bin directories.
    let mut i = 0;
    while n < TOTAL_FILES {
        let l = i % (IMAGES * LAYERS_PER_IMAGE);
        let rel = match i % 3 {
            0 => format!("/var/lib/docker/overlay2/layer{l:04}/diff/usr/share/doc/f{i}"),
            1 => format!("/var/lib/docker/overlay2/layer{l:04}/diff/usr/lib/lib{i}.so"),
            _ => format!("/var/lib/docker/overlay2/layer{l:04}/diff/usr/bin/cmd{i}"),
        };
        if i % 3 == 2 {
            exec(root, &rel, 256);
        } else {
            write(root, &rel, b"x");
        }
        n += 1;
        i += 1;
    }
    n
}

/// Docker's overlay2 image metadata for every image; returns files written.
fn image_metadata(root: &Path) -> usize {
    let meta = "/var/lib/docker/image/overlay2";
    let mut n = 0;
    let mut repos = serde_json::Map::new();
    for m in 0..IMAGES {
        let mut parent = String::new();
        let mut diffs = Vec::new();
        for k in 0..LAYERS_PER_IMAGE {
            let l = m * LAYERS_PER_IMAGE + k;
            let chain = format!("{l:064x}");
            let dir = format!("{meta}/layerdb/sha256/{chain}");
            write(root, &format!("{dir}/diff"), format!("sha256:{l:064}").as_bytes());
            write(
                root,
                &format!("{dir}/cache-id"),
                format!("layer{l:04}").as_bytes(),
            );
            n += 2;
            if !parent.is_empty() {
                write(root, &format!("{dir}/parent"), parent.as_bytes());
                n += 1;
            }
            parent = format!("sha256:{chain}");
            diffs.push(format!("sha256:{l:064}"));
        }
        let id = format!("{:064x}", 0xa000_0000usize + m);
        let config = serde_json::json!({"rootfs": {"type": "layers", "diff_ids": diffs}});
        write(
            root,
            &format!("{meta}/imagedb/content/sha256/{id}"),
            config.to_string().as_bytes(),
        );
        repos.insert(
            format!("app{m}"),
            serde_json::json!({format!("app{m}:1"): format!("sha256:{id}")}),
        );
        n += 1;
        if m % 2 == 0 {
            let top = m * LAYERS_PER_IMAGE + LAYERS_PER_IMAGE - 1;
            write(
                root,
                &format!("/var/lib/docker/overlay2/layer{top:04}/diff/opt/.wh.java"),
                b"",
            );
            n += 1;
        }
    }
    let repos = serde_json::json!({ "Repositories": repos });
    write(
        root,
        &format!("{meta}/repositories.json"),
        repos.to_string().as_bytes(),
    );
    n + 1
}

/// An rpm header blob (NAME, VERSION, RELEASE) as rpm stores it.
fn rpm_header(name: &str, version: &str) -> Vec<u8> {
    let mut index = Vec::new();
    let mut data = Vec::new();
    for (tag, s) in [(1000u32, name), (1001, version), (1002, "1.el9")] {
        for v in [tag, 6, data.len() as u32, 1] {
            index.extend_from_slice(&v.to_be_bytes());
        }
        data.extend_from_slice(s.as_bytes());
        data.push(0);
    }
    // Real headers carry ~100 more tags: pad the data store to a typical 4 KiB.
    data.resize(4096, 0);
    let mut blob = 3u32.to_be_bytes().to_vec();
    blob.extend_from_slice(&(data.len() as u32).to_be_bytes());
    blob.extend(index);
    blob.extend(data);
    blob
}

/// The host's rpm ≥ 4.16 database: 1,500 packages; returns files written.
fn rpm_database(root: &Path) -> usize {
    let dir = root.join("var/lib/rpm");
    fs::create_dir_all(&dir).unwrap();
    let db = rusqlite::Connection::open(dir.join("rpmdb.sqlite")).unwrap();
    db.execute_batch(
        "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL); BEGIN;",
    )
    .unwrap();
    for i in 0..1500 {
        let name = if i == 0 {
            "docker-ce".to_string()
        } else {
            format!("pkg{i}")
        };
        db.execute(
            "INSERT INTO Packages (blob) VALUES (?1)",
            [rpm_header(&name, "20.10.0")],
        )
        .unwrap();
    }
    db.execute_batch("COMMIT;").unwrap();
    1
}

fn main() {
    let dir = tempfile::Builder::new()
        .prefix("cgmig-bench-readiness-")
        .tempdir_in(if Path::new("/dev/shm").is_dir() {
            "/dev/shm"
        } else {
            "/tmp"
        })
        .unwrap();
    let t = Instant::now();
    let files = generate(dir.path());
    println!(
        "generated {files} files, {} layers in {:.1?}",
        IMAGES * LAYERS_PER_IMAGE,
        t.elapsed()
    );
    let root = Root::new(dir.path()).unwrap();
    let mut diags = Vec::new();
    let r = scan(&root, Some("5.10.0"), None, &mut diags);
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        let mut d = Vec::new();
        let r2 = scan(&root, Some("5.10.0"), None, &mut d);
        best = best.min(t.elapsed().as_secs_f64());
        assert_eq!(r2.components.len(), r.components.len());
    }
    let s = &r.stats;
    println!(
        "readiness scan: {} components, {} settings; read {} files, {} bytes, listed {} directories, {} layers; {} skipped",
        r.components.len(),
        r.settings.len(),
        s.files_read,
        s.bytes_read,
        s.dirs_listed,
        s.layers,
        s.skipped
    );
    println!(
        "best of 5: {:.1} ms per scan ({:.2} µs per generated file)",
        best * 1e3,
        best * 1e6 / files as f64
    );
}
