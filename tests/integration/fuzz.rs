//! Mutation fuzzing of every parser and loader, on stable Rust.
//!
//! The coverage-guided layer is AFL++ (`fuzz/`, `scripts/fuzz`): it needs
//! an instrumented build outside `cargo test`. This is the fast layer every
//! `cargo test` runs, proptest-driven mutation: each target starts from the
//! seed corpus in the repository (`testdata/fuzz/<target>/`, the public
//! kernel samples, the built-in rules, fixture-host snapshots) and applies
//! random byte mutations (flip, insert, delete, duplicate, splice, magic
//! tokens) and, for JSON/YAML documents, structure mutations (replace,
//! remove or duplicate a random value in the tree). The RNG is proptest's
//! `TestRng`, seeded from `CGMIG_FUZZ_SEED` or the clock (the seed is
//! printed, so a finding can be replayed).
//!
//! Each target runs for `CGMIG_FUZZ_SECS` seconds (default 2; CI sets 20).
//! Target: no panic (caught and reported with the input, which is saved to
//! `target/fuzz-findings/`), no hang (an input taking over 2 s is a
//! finding), bounded memory (inputs are capped at 64 KiB, and loaders must
//! reject nesting and alias bombs without expanding them).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use proptest::prelude::RngCore;
use proptest::test_runner::{RngAlgorithm, TestRng};

use crate::util::scratch;

/// The built-in rules, loaded once (loading them per input would be most
/// of each execution).
fn rules() -> &'static cgmig::rules::RuleSet {
    static RULES: std::sync::OnceLock<cgmig::rules::RuleSet> = std::sync::OnceLock::new();
    RULES.get_or_init(crate::util::rules)
}

/// Largest input tried.
const MAX_INPUT: usize = 64 << 10;
/// One input slower than this is a hang.
const SLOW: Duration = Duration::from_secs(2);

/// Tokens that matter to the formats under test.
const MAGIC: &[&[u8]] = &[
    b":",
    b"::",
    b"\n",
    b" - ",
    b"-",
    b"/",
    b"//",
    b"..",
    b"\\",
    b"\\x",
    b"\\012",
    b"\0",
    b"\t",
    b"{",
    b"}",
    b"[",
    b"]",
    b"*a",
    b"&a ",
    b"!!",
    b"\"",
    b"'",
    b"4294967296",
    b"-1",
    b"18446744073709551616",
    b"9223372036854775807",
    b"max",
    b"\xff",
    b"\xc2\x9b",
    b"\x1b[2J",
    b"cgroup2",
    b"cgroup",
    b"name=",
    b"0::/",
    b"rw,cpu",
    b"Uid:",
    b"kind",
    b"child",
    b"member",
    b"thread",
    b"hierarchy",
    b"id:",
    b"{1}",
    b"target:",
    b"leaf_name:",
];

fn rng() -> TestRng {
    let seed: u64 = std::env::var("CGMIG_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    eprintln!("fuzz seed {seed} (CGMIG_FUZZ_SEED={seed} replays it)");
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    TestRng::from_seed(RngAlgorithm::ChaCha, &bytes)
}

fn budget() -> Duration {
    let secs: f64 = std::env::var("CGMIG_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    Duration::from_secs_f64(secs)
}

fn below(r: &mut TestRng, n: usize) -> usize {
    if n == 0 {
        0
    } else {
        (r.next_u64() % n as u64) as usize
    }
}

/// One random byte-level mutation.
fn mutate_bytes(r: &mut TestRng, data: &mut Vec<u8>, other: &[u8]) {
    let len = data.len();
    match below(r, 7) {
        0 if len > 0 => {
            let i = below(r, len);
            data[i] ^= 1 << below(r, 8);
        }
        1 => {
            let i = below(r, len + 1);
            let b = (r.next_u32() & 0xff) as u8;
            data.insert(i, b);
        }
        2 if len > 0 => {
            let i = below(r, len);
            let n = below(r, (len - i).min(64)) + 1;
            data.drain(i..i + n);
        }
        3 if len > 0 => {
            let i = below(r, len);
            let n = below(r, (len - i).min(256)) + 1;
            let chunk = data[i..i + n].to_vec();
            let at = below(r, len + 1);
            data.splice(at..at, chunk);
        }
        4 if !other.is_empty() => {
            let i = below(r, other.len());
            let n = below(r, (other.len() - i).min(512)) + 1;
            let at = below(r, len + 1);
            data.splice(at..at, other[i..i + n].iter().copied());
        }
        5 if len > 0 => {
            // Truncate: half-written files are common.
            data.truncate(below(r, len));
        }
        _ => {
            let m = MAGIC[below(r, MAGIC.len())];
            let at = below(r, len + 1);
            data.splice(at..at, m.iter().copied());
        }
    }
    data.truncate(MAX_INPUT);
}

/// A random JSON value, small.
fn random_value(r: &mut TestRng) -> serde_json::Value {
    use serde_json::json;
    match below(r, 9) {
        0 => json!(null),
        1 => json!(r.next_u64() % 10),
        2 => json!(4294967296u64),
        3 => json!(-1),
        4 => json!("/"),
        5 => json!("../x"),
        6 => json!([]),
        7 => json!({}),
        _ => json!(String::from_utf8_lossy(MAGIC[below(r, MAGIC.len())]).to_string()),
    }
}

/// One random structure mutation of a JSON tree: pick a node, then replace,
/// remove or duplicate it.
fn mutate_tree(r: &mut TestRng, v: &mut serde_json::Value) {
    let mut cur = v;
    for _ in 0..below(r, 8) + 1 {
        let next_ok = match &*cur {
            serde_json::Value::Array(a) => !a.is_empty(),
            serde_json::Value::Object(o) => !o.is_empty(),
            _ => false,
        };
        if !next_ok || below(r, 4) == 0 {
            break;
        }
        cur = match cur {
            serde_json::Value::Array(a) => {
                let i = below(r, a.len());
                &mut a[i]
            }
            serde_json::Value::Object(o) => {
                let i = below(r, o.len());
                let k = o.keys().nth(i).cloned().unwrap_or_default();
                o.get_mut(&k).unwrap()
            }
            _ => unreachable!(),
        };
    }
    match (below(r, 3), cur) {
        (0, serde_json::Value::Array(a)) if !a.is_empty() => {
            let i = below(r, a.len());
            a.remove(i);
        }
        (1, serde_json::Value::Array(a)) if !a.is_empty() => {
            let i = below(r, a.len());
            let dup = a[i].clone();
            a.push(dup);
        }
        (0, serde_json::Value::Object(o)) if !o.is_empty() => {
            let k = o.keys().nth(below(r, o.len())).cloned().unwrap_or_default();
            o.remove(&k);
        }
        (_, slot) => *slot = random_value(r),
    }
}

/// The outcome of a fuzzing run.
#[derive(Debug, Default)]
struct Stats {
    executions: u64,
    findings: Vec<String>,
}

/// Run `target` on mutations of `seeds` for the time budget. `structured`
/// seeds (JSON/YAML) also get tree mutations, re-serialized by `emit`.
fn fuzz(
    name: &str,
    seeds: Vec<Vec<u8>>,
    structured: Option<fn(&serde_json::Value) -> Vec<u8>>,
    target: impl Fn(&[u8]),
) {
    assert!(!seeds.is_empty(), "{name}: no seeds");
    let mut r = rng();
    let mut stats = Stats::default();
    let deadline = Instant::now() + budget();
    // Every seed as it is, first.
    let mut queue: Vec<Vec<u8>> = seeds.clone();
    while Instant::now() < deadline || !queue.is_empty() {
        let input = match queue.pop() {
            Some(i) => i,
            None => {
                let mut d = seeds[below(&mut r, seeds.len())].clone();
                let tree = structured.filter(|_| below(&mut r, 2) == 0).and_then(|emit| {
                    let text = std::str::from_utf8(&d).ok()?;
                    let mut v: serde_json::Value = if text.trim_start().starts_with('{') {
                        serde_json::from_str(text).ok()?
                    } else {
                        serde_yaml_ng::from_str(text).ok()?
                    };
                    for _ in 0..below(&mut r, 4) + 1 {
                        mutate_tree(&mut r, &mut v);
                    }
                    Some(emit(&v))
                });
                match tree {
                    Some(t) => d = t,
                    None => {
                        let other = seeds[below(&mut r, seeds.len())].clone();
                        for _ in 0..below(&mut r, 8) + 1 {
                            mutate_bytes(&mut r, &mut d, &other);
                        }
                    }
                }
                d
            }
        };
        let start = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| target(&input)));
        stats.executions += 1;
        let slow = start.elapsed() > SLOW;
        if result.is_err() || slow {
            let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                .join("fuzz-findings")
                .join(name);
            std::fs::create_dir_all(&dir).unwrap();
            let file = dir.join(format!("finding-{}", stats.findings.len()));
            std::fs::write(&file, &input).unwrap();
            let what = if slow { "hang" } else { "panic" };
            stats
                .findings
                .push(format!("{what}: input saved to {}", file.display()));
            if stats.findings.len() >= 5 {
                break;
            }
        }
    }
    eprintln!(
        "fuzz {name}: {} executions, {} findings",
        stats.executions,
        stats.findings.len()
    );
    assert!(stats.findings.is_empty(), "{name}: {:#?}", stats.findings);
}

/// The built-in rules, parsed once (parsing them is most of a run's cost).
fn embedded() -> &'static cgmig::rules::RuleSet {
    static RULES: std::sync::OnceLock<cgmig::rules::RuleSet> = std::sync::OnceLock::new();
    RULES.get_or_init(crate::util::rules)
}

fn repo(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(p)
}

/// Files in a directory whose names contain `pattern`, as seeds.
fn seeds_from(dir: &str, pattern: &str) -> Vec<Vec<u8>> {
    let mut v: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(repo(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.file_name().unwrap().to_string_lossy().contains(pattern))
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, b)| b).collect()
}

fn with_corpus(mut seeds: Vec<Vec<u8>>, target: &str) -> Vec<Vec<u8>> {
    seeds.extend(seeds_from(&format!("testdata/fuzz/{target}"), ""));
    seeds
}

fn text(b: &[u8]) -> String {
    cgmig::model::path::value_from_bytes(b)
}

#[test]
fn fuzz_mountinfo() {
    let seeds = with_corpus(seeds_from("testdata/public", "mountinfo"), "mountinfo");
    fuzz("mountinfo", seeds, None, |b| {
        let _ = cgmig::host::parse_cgroup_mounts(&text(b));
    });
}

#[test]
fn fuzz_proc_cgroups() {
    let seeds = with_corpus(seeds_from("testdata/public", "proc-cgroups"), "proc-cgroups");
    fuzz("proc-cgroups", seeds, None, |b| {
        let _ = cgmig::host::parse_proc_cgroups(&text(b));
    });
}

#[test]
fn fuzz_pid_cgroup() {
    let seeds = with_corpus(seeds_from("testdata/public", "cgroup.txt"), "pid-cgroup");
    fuzz("pid-cgroup", seeds, None, |b| {
        let _ = cgmig::host::parse_pid_cgroup(&text(b));
    });
}

#[test]
fn fuzz_status() {
    fuzz("status", with_corpus(Vec::new(), "status"), None, |b| {
        let _ = cgmig::host::parse_status_ids(&text(b));
    });
}

/// Every typed value parser, on every seed value.
#[test]
fn fuzz_values() {
    use cgmig::model::value::*;
    fuzz("values", with_corpus(Vec::new(), "values"), None, |b| {
        let s = text(b);
        let _ = s.parse::<Limit>();
        let _ = parse_i64(&s);
        let _ = parse_u64(&s);
        let _ = s.parse::<DevNum>();
        let _ = parse_device_values(&s);
        let _ = s.parse::<IdList>();
        let _ = s.parse::<DeviceRule>();
        let _ = parse_device_list(&s);
        let _ = parse_flat_keyed(&s);
        // Unit-file values the owner prediction reads (AFL found overflows
        // here: seeds afl-overflow-*.txt).
        let _ = cgmig::owners::systemd::parse_bytes(&s);
        let _ = cgmig::owners::systemd::tasks_max(&s, Some(4_194_304));
        let (quota, period) = s.split_once('\n').unwrap_or((&s, ""));
        let _ = cgmig::owners::systemd::cpu_max(quota, Some(period).filter(|p| !p.is_empty()));
    });
}

fn snapshot_seeds() -> Vec<Vec<u8>> {
    let mut seeds = with_corpus(Vec::new(), "snapshot");
    for h in ["libvirt-vcpu-threads", "legacy-exotic"] {
        let snap = crate::util::host(h).scan();
        seeds.push(serde_json::to_vec_pretty(&snap).unwrap());
    }
    seeds
}

/// A loaded snapshot is trusted by everything downstream: a valid one must
/// also audit, plan and render without panicking.
fn snapshot_target(b: &[u8]) {
    let Ok(t) = std::str::from_utf8(b) else { return };
    let Ok(snap) = cgmig::model::validate::parse_snapshot(t) else {
        return;
    };
    let rules = crate::util::rules();
    let report = cgmig::assess::audit(&snap, &rules);
    let _ = cgmig::audit::render(&report, cgmig::audit::AuditFormat::Markdown).unwrap();
    let _ = cgmig::report::render_tree(&snap, &rules);
    let plan = cgmig::plan::plan(&snap, &rules);
    let _ = cgmig::plan::render(&plan, cgmig::plan::PlanFormat::Table).unwrap();
}

#[test]
fn fuzz_snapshot_json() {
    fuzz(
        "snapshot-json",
        snapshot_seeds(),
        Some(|v| serde_json::to_vec(v).unwrap()),
        snapshot_target,
    );
}

#[test]
fn fuzz_snapshot_yaml() {
    let seeds = snapshot_seeds()
        .into_iter()
        .map(|s| {
            let v: serde_json::Value = serde_json::from_slice(&s).unwrap_or_default();
            serde_yaml_ng::to_string(&v).unwrap().into_bytes()
        })
        .collect();
    fuzz(
        "snapshot-yaml",
        seeds,
        Some(|v| serde_yaml_ng::to_string(v).unwrap().into_bytes()),
        snapshot_target,
    );
}

#[test]
fn fuzz_rules_yaml() {
    let mut seeds: Vec<Vec<u8>> = cgmig::rules::EMBEDDED
        .iter()
        .map(|(_, t)| t.as_bytes().to_vec())
        .collect();
    seeds = with_corpus(seeds, "rules");
    let base = crate::util::host("legacy-exotic").scan();
    fuzz(
        "rules-yaml",
        seeds,
        Some(|v| serde_yaml_ng::to_string(v).unwrap().into_bytes()),
        |b| {
            let Ok(t) = std::str::from_utf8(b) else { return };
            let mut set = embedded().clone();
            let mut errors = Vec::new();
            set.add_source("fuzz.yaml", t, &mut errors, true);
            // The rules that loaded are used: conversions and findings run.
            let report = cgmig::assess::audit(&base, &set);
            let _ = cgmig::audit::render(&report, cgmig::audit::AuditFormat::Table).unwrap();
        },
    );
}

#[test]
fn fuzz_plan_json() {
    let mut seeds = with_corpus(Vec::new(), "plan");
    let snap = crate::util::host("libvirt-vcpu-threads").scan();
    let plan = cgmig::plan::plan(&snap, embedded());
    seeds.push(serde_json::to_vec(&plan).unwrap());
    fuzz(
        "plan-json",
        seeds,
        Some(|v| serde_json::to_vec(v).unwrap()),
        |b| {
            let Ok(t) = std::str::from_utf8(b) else { return };
            if cgmig::model::validate::check_depth(t).is_err() {
                return;
            }
            let Ok(p) = cgmig::report::from_data::<cgmig::plan::Plan>(t) else {
                return;
            };
            let _ = cgmig::plan::validate(&p);
            let _ = cgmig::plan::render(&p, cgmig::plan::PlanFormat::Table).unwrap();
        },
    );
}

/// Unit files, as systemd reads them, and the drop-ins `convert` writes
/// from them: every line of a generated drop-in reads back (with the same
/// parser) as a v2 directive of the converted unit, never anything else
/// (a forged `ExecStartPre=` cannot come through).
#[test]
fn fuzz_unit_file() {
    let seeds = vec![
        b"[Service]\nCPUShares=512\nMemoryLimit=1G \\\nCPUShares=50\n# c \\\nBlockIOWeight=300\n".to_vec(),
        b"[Service]\r\nMemoryLimit=2G\r\nBlockIODeviceWeight=/dev/sda 1000\rBlockIOAccounting=yes\n".to_vec(),
        b"\xef\xbb\xbf[Slice]\nStartupCPUShares=262144\nBlockIOReadBandwidth=/dev/sda 10M\n[Broken\n"
            .to_vec(),
    ];
    fuzz("unit-file", seeds, None, |b| {
        let t = String::from_utf8_lossy(b);
        if let Ok(u) = cgmig::readiness::unit::parse(&t) {
            for d in &u.directives {
                assert!(!d.value.contains(['\n', '\r']), "{d:?}");
                assert!(!d.key.contains(['\n', '\r', '=']), "{d:?}");
            }
        }
        let settings = cgmig::readiness::config::unit_settings("/etc/systemd/system/x.service", &t);
        let r = cgmig::model::readiness::Readiness {
            scanned: true,
            settings,
            ..Default::default()
        };
        let out = cgmig::readiness::convert::convert(&r, rules(), &[]);
        for f in &out.files {
            let u = cgmig::readiness::unit::parse(&f.text).expect("a generated drop-in parses");
            for d in &u.directives {
                assert!(
                    cgmig::readiness::config::V2_DIRECTIVES.contains(&d.key.as_str()),
                    "{d:?} in\n{}",
                    f.text
                );
            }
        }
    });
}

/// LXC configs: the converted file keeps every key of the original that is
/// not a v1 cgroup key, and adds only `lxc.cgroup2.*` keys.
#[test]
fn fuzz_lxc_config() {
    let seeds = vec![
        b"lxc.uts.name = c\nlxc.cgroup.memory.limit_in_bytes = 192M\nlxc.cgroup.devices.deny = a\nlxc.cgroup.devices.allow = c 1:3 rwm\nlxc.cgroup.devices.allow = c 136:* rwm\nlxc.cgroup.cpu.shares = 2048\n".to_vec(),
        b"lxc.cgroup.devices.allow = c 1:3 w\nlxc.cgroup.cpuset.cpus = \"0-1\"\nlxc.cgroup.memory.limit_in_bytes = -1\n".to_vec(),
    ];
    fuzz("lxc-config", seeds, None, |b| {
        let t = String::from_utf8_lossy(b).into_owned();
        let path = "/var/lib/lxc/c/config";
        let r = cgmig::model::readiness::Readiness {
            scanned: true,
            files: vec![cgmig::model::readiness::ConfigFile {
                kind: "lxc".into(),
                path: path.into(),
                text: t.clone(),
            }],
            ..Default::default()
        };
        let out = cgmig::readiness::convert::convert(&r, rules(), &[]);
        let before: std::collections::BTreeSet<String> = cgmig::readiness::config::lxc_lines(&t)
            .into_iter()
            .map(|l| l.key)
            .collect();
        for f in &out.files {
            for l in cgmig::readiness::config::lxc_lines(&f.text) {
                assert!(
                    l.key.starts_with("lxc.cgroup2.")
                        || (before.contains(&l.key) && !l.key.starts_with("lxc.cgroup.")),
                    "{l:?} in\n{}",
                    f.text
                );
            }
        }
    });
}

/// Both rpm database readers on whatever bytes: an error, never a panic
/// or a hang (the SQLite reader's step and time budget, the Berkeley DB
/// reader's page bounds).
#[test]
fn fuzz_rpm_databases() {
    let dir = scratch();
    let sqlite = dir.path().join("seed.sqlite");
    let c = rusqlite::Connection::open(&sqlite).unwrap();
    c.execute_batch("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob BLOB NOT NULL); INSERT INTO Packages (blob) VALUES (x'0000000100000008000003e800000006000000000000000178000000');")
        .unwrap();
    drop(c);
    let seeds = vec![std::fs::read(&sqlite).unwrap(), {
        // A Berkeley DB hash metadata page header (magic 0x061561).
        let mut p = vec![0u8; 4096];
        p[12..16].copy_from_slice(&0x0006_1561u32.to_le_bytes());
        p[20..24].copy_from_slice(&4096u32.to_le_bytes());
        p
    }];
    let file = dir.path().join("input.db");
    fuzz("rpm-databases", seeds, None, |b| {
        std::fs::write(&file, b).unwrap();
        let f = std::fs::File::open(&file).unwrap();
        for blob in cgmig::readiness::rpmdb::sqlite_blobs(&f).unwrap_or_default() {
            let _ = cgmig::readiness::rpmdb::parse_header(&blob);
        }
        let mut pages = cgmig::readiness::rpmdb::Pages::new(&f);
        for blob in cgmig::readiness::rpmdb::bdb_blobs(&mut pages).unwrap_or_default() {
            let _ = cgmig::readiness::rpmdb::parse_header(&blob);
        }
    });
}
