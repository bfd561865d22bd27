//! Application configurations the reference names (§5.8) that still speak
//! v1: Slurm's `cgroup.conf`, Hadoop YARN's `yarn-site.xml`, HTCondor's
//! config, and docker compose files with per-container keys that v2 drops.
//! Detection ([`scan`]) records [`Setting`]s; [`evaluate`] applies the rows
//! (pure). Compose files are looked for where deployments keep them (one
//! level below `/opt`, `/srv`, `/etc`, `/root` and each home), never by
//! walking the file system.

use super::io::{Reader, join};
use super::rule::*;
use super::{Readiness, Setting};

/// Run every application detector.
pub fn scan(rd: &mut Reader<'_>, out: &mut Readiness) {
    slurm(rd, out);
    yarn(rd, out);
    htcondor(rd, out);
    compose(rd, out);
}

/// Slurm `cgroup.conf` keys that matter on v2.
const SLURM_KEYS: &[&str] = &[
    "CgroupPlugin",
    "CgroupAutomount",
    "ConstrainKmemSpace",
    "AllowedKmemSpace",
    "MinKmemSpace",
    "MemorySwappiness",
];

fn slurm(rd: &mut Reader<'_>, out: &mut Readiness) {
    for file in ["/etc/slurm/cgroup.conf", "/etc/slurm-llnl/cgroup.conf"] {
        let Some(text) = rd.text(file) else { continue };
        out.settings.extend(slurm_settings(file, &text));
    }
}

/// `Key=Value` lines of a Slurm `cgroup.conf` (keys case-insensitive, as Slurm reads them).
pub fn slurm_settings(file: &str, text: &str) -> Vec<Setting> {
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let l = l.split('#').next().unwrap_or("").trim();
        let Some((k, v)) = l.split_once('=') else { continue };
        if let Some(key) = SLURM_KEYS.iter().find(|s| s.eq_ignore_ascii_case(k.trim())) {
            out.push(Setting::at_line("slurm", file, i + 1, None, key, v.trim()));
        }
    }
    out
}

/// `yarn-site.xml` locations (packages, tarball installs).
const YARN_SITES: &[&str] = &[
    "/etc/hadoop/conf/yarn-site.xml",
    "/etc/hadoop/yarn-site.xml",
    "/opt/hadoop/etc/hadoop/yarn-site.xml",
    "/usr/local/hadoop/etc/hadoop/yarn-site.xml",
];

fn yarn(rd: &mut Reader<'_>, out: &mut Readiness) {
    for file in YARN_SITES {
        let Some(text) = rd.text(file) else { continue };
        out.settings.extend(
            xml_properties(&text)
                .into_iter()
                .filter(|(_, k, _)| k.starts_with("yarn.nodemanager."))
                .map(|(line, k, v)| Setting::at_line("yarn", file, line, None, &k, &v)),
        );
    }
}

/// `<property><name>N</name><value>V</value></property>` pairs of a Hadoop
/// configuration file, with the line of the name.
pub fn xml_properties(text: &str) -> Vec<(usize, String, String)> {
    let tag = |s: &str, t: &str| -> Option<String> {
        let start = s.find(&format!("<{t}>"))? + t.len() + 2;
        let end = s[start..].find(&format!("</{t}>"))? + start;
        Some(s[start..end].trim().to_string())
    };
    let mut out = Vec::new();
    let mut rest = text;
    let mut consumed = 0;
    while let Some(p) = rest.find("<property>") {
        let Some(end) = rest[p..].find("</property>").map(|e| e + p) else {
            break;
        };
        let body = &rest[p..end];
        if let (Some(n), Some(v)) = (tag(body, "name"), tag(body, "value")) {
            let name_at = consumed + p + body.find("<name>").unwrap_or(0);
            let line = text[..name_at].matches('\n').count() + 1;
            out.push((line, n, v));
        }
        consumed += end;
        rest = &rest[end..];
    }
    out
}

fn htcondor(rd: &mut Reader<'_>, out: &mut Readiness) {
    let files = rd.with_dropins("/etc/condor/condor_config", "/etc/condor/config.d", "");
    for file in files {
        let Some(text) = rd.text(&file) else { continue };
        for (i, l) in text.lines().enumerate() {
            let Some((k, v)) = l.split_once('=') else { continue };
            let k = k.trim();
            if k.eq_ignore_ascii_case("BASE_CGROUP") || k.eq_ignore_ascii_case("CGROUP_MEMORY_LIMIT_POLICY") {
                out.settings.push(Setting::at_line(
                    "htcondor",
                    &file,
                    i + 1,
                    None,
                    &k.to_uppercase(),
                    v.trim(),
                ));
            }
        }
    }
}

/// Compose file names (`docker compose` and `docker-compose`).
const COMPOSE_NAMES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// Per-service keys that v2 drops or converts (reference §5.2, §5.8).
pub const COMPOSE_KEYS: &[&str] = &[
    "cpu_rt_runtime",
    "cpu_rt_period",
    "kernel_memory",
    "oom_kill_disable",
    "mem_swappiness",
    "blkio_config",
    "cpu_shares",
];

fn compose(rd: &mut Reader<'_>, out: &mut Readiness) {
    let mut dirs: Vec<String> = vec!["/root".into()];
    for parent in ["/opt", "/srv", "/etc", "/home"] {
        dirs.push(parent.into());
        dirs.extend(rd.subdirs(parent).into_iter().map(|d| join(parent, &d)));
    }
    for dir in dirs {
        for e in rd.list(&dir) {
            if e.kind != super::io::Kind::File || !COMPOSE_NAMES.contains(&e.name.as_str()) {
                continue;
            }
            let file = join(&dir, &e.name);
            let Some(text) = rd.text(&file) else { continue };
            match compose_settings(&file, &text) {
                Ok(s) => out.settings.extend(s),
                Err(err) => rd.note_abs(&file, format!("compose file not parsed: {err}")),
            }
        }
    }
}

/// The v1-only keys of each service of a compose file (section: the service).
pub fn compose_settings(file: &str, text: &str) -> Result<Vec<Setting>, serde_yaml_ng::Error> {
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(text)?;
    let mut out = Vec::new();
    let Some(services) = doc.get("services").and_then(|s| s.as_mapping()) else {
        return Ok(out);
    };
    for (name, svc) in services {
        let Some(name) = name.as_str() else { continue };
        for key in COMPOSE_KEYS {
            let Some(v) = svc.get(*key) else { continue };
            let value = serde_yaml_ng::to_string(v)
                .unwrap_or_default()
                .trim()
                .replace('\n', " ");
            // The key's line: the first `key:` after the service's own line.
            let svc_line = text
                .lines()
                .position(|l| l.trim_start().starts_with(&format!("{name}:")));
            let line = text
                .lines()
                .enumerate()
                .skip(svc_line.unwrap_or(0))
                .find(|(_, l)| l.trim_start().starts_with(&format!("{key}:")))
                .map_or(1, |(i, _)| i + 1);
            out.push(Setting::at_line("compose", file, line, Some(name), key, &value));
        }
    }
    Ok(out)
}

const SLURM_V1: Rule = Rule {
    id: "WR-HPC-001",
    severity: Blocker,
    class: BREAKS,
    confidence: V,
    title: "Slurm is pinned to the cgroup/v1 plugin",
    needed: "CgroupPlugin=cgroup/v2 or autodetect (Slurm 22.05 or later)",
    why: "The cgroup/v1 plugin cannot run on a unified host: slurmd fails to start its cgroup plugin.",
    source: "slurm.schedmd.com/cgroup_v2.html",
};
const SLURM_OLD: Rule = Rule {
    id: "WR-HPC-001",
    severity: Blocker,
    class: BREAKS,
    confidence: V,
    title: "Slurm without the cgroup/v2 plugin",
    needed: "Slurm 22.05 or later",
    why: "Slurm ≤ 21.08 has no cgroup v2 support.",
    source: "slurm.schedmd.com/cgroup_v2.html",
};
const SLURM_V1_KEY: Rule = Rule {
    id: "WR-HPC-003",
    severity: Warning,
    class: BREAKS,
    confidence: P,
    title: "Slurm cgroup.conf key is v1-only",
    needed: "remove it (no v2 equivalent: kmem and swappiness are v1 memory-controller files)",
    why: "The cgroup/v2 plugin ignores or rejects the v1-only keys.",
    source: "Slurm cgroup.conf(5) (per the reference, not re-read)",
};
const YARN_V1: Rule = Rule {
    id: "WR-HPC-002",
    severity: Warning,
    class: BREAKS,
    confidence: P,
    title: "YARN NodeManager uses cgroups without the v2 handler",
    needed: "yarn.nodemanager.linux-container-executor.cgroups.v2.enabled=true (Hadoop with YARN-11672; release unverified)",
    why: "The v1 cgroups handler fails to initialise on a unified host; the v2 handler is off by default.",
    source: "apache/hadoop YARN-11672 (PR #6734), YARN-11685; NodeManagerCgroups.md",
};
const HTCONDOR: Rule = Rule {
    id: "WR-HPC-004",
    severity: Info,
    class: BREAKS,
    confidence: U,
    title: "HTCondor cgroup setting: check its v2 behaviour",
    needed: "an HTCondor release with cgroup v2 support (first version unverified)",
    why: "BASE_CGROUP and CGROUP_MEMORY_LIMIT_POLICY were written for v1 hierarchies.",
    source: "reference §5.8 (unverified)",
};
const COMPOSE_DROPPED: Rule = Rule {
    id: "WR-RT-006",
    severity: Warning,
    class: BREAKS,
    confidence: V,
    title: "Compose service uses a key cgroup v2 drops",
    needed: "remove it (no v2 equivalent); for blkio_config, io weights need BFQ or an io policy",
    why: "Docker discards oom_kill_disable, mem_swappiness and kernel_memory on v2 with a warning, refuses cpu_rt_*; blkio weights map to io.bfq.weight only with BFQ.",
    source: "moby pkg/sysinfo/cgroup2_linux.go; docker/cli docs/deprecated.md; runc fs2/io.go",
};
const COMPOSE_SHARES: Rule = Rule {
    id: "WR-RT-009",
    severity: Info,
    class: NEUTRAL,
    confidence: V,
    title: "Compose cpu_shares is converted to cpu.weight on v2",
    needed: "nothing; the weight depends on the runtime's formula (runc ≥ 1.3.2: 1024 → 100)",
    why: "Shares are converted, not dropped; old runtimes map 1024 to weight 39.",
    source: "reference §2.2; opencontainers/runc#4772",
};

/// Findings for the application settings.
pub(super) fn evaluate(r: &Readiness, out: &mut Vec<Finding>) {
    let yarn_v2 = r
        .settings
        .iter()
        .any(|s| s.family == "yarn" && s.key.ends_with("cgroups.v2.enabled") && s.value == "true");
    for c in r.components.iter().filter(|c| c.name == "slurm") {
        if super::version::less(&c.version, "22.05") == Some(true) {
            out.push(SLURM_OLD.on(c));
        }
    }
    for s in &r.settings {
        match (s.family.as_str(), s.key.as_str()) {
            ("slurm", "CgroupPlugin") if s.value.eq_ignore_ascii_case("cgroup/v1") => {
                out.push(SLURM_V1.on_setting(s));
            }
            ("slurm", "ConstrainKmemSpace" | "AllowedKmemSpace" | "MinKmemSpace" | "MemorySwappiness") => {
                out.push(SLURM_V1_KEY.on_setting(s));
            }
            ("yarn", k) if !yarn_v2 && yarn_cgroups(k, &s.value) => out.push(YARN_V1.on_setting(s)),
            ("htcondor", _) => out.push(HTCONDOR.on_setting(s)),
            ("compose", "cpu_shares") => out.push(compose_finding(&COMPOSE_SHARES, s)),
            ("compose", _) => out.push(compose_finding(&COMPOSE_DROPPED, s)),
            _ => {}
        }
    }
}

/// Whether a NodeManager property turns the LCE cgroups handler on.
fn yarn_cgroups(key: &str, value: &str) -> bool {
    (key == "yarn.nodemanager.linux-container-executor.resources-handler.class" && value.contains("Cgroups"))
        || (key.starts_with("yarn.nodemanager.resource.") && key.ends_with(".enabled") && value == "true")
}

fn compose_finding(rule: &Rule, s: &Setting) -> Finding {
    let mut f = rule.on_setting(s);
    f.found = format!("service {}: {}", s.section.as_deref().unwrap_or("?"), f.found);
    f
}

/// Every rule of this file, for the catalog (`readiness::rule_table`).
pub(super) const RULES: &[&Rule] = &[
    &SLURM_V1,
    &SLURM_OLD,
    &SLURM_V1_KEY,
    &YARN_V1,
    &HTCONDOR,
    &COMPOSE_DROPPED,
    &COMPOSE_SHARES,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slurm_yarn_and_compose_parsers() {
        let s = slurm_settings(
            "/etc/slurm/cgroup.conf",
            "CgroupAutomount=yes\ncgroupplugin=cgroup/v1 # old\nX=1\n",
        );
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[1].key.as_str(), s[1].value.as_str(), s[1].line),
            ("CgroupPlugin", "cgroup/v1", Some(2))
        );
        let xml = "<configuration>\n <property>\n  <name>a.b</name>\n  <value> 1 </value>\n </property>\n<property><name>c</name><value>x</value></property>\n</configuration>\n";
        assert_eq!(
            xml_properties(xml),
            vec![(3, "a.b".into(), "1".into()), (6, "c".into(), "x".into())]
        );
        let y = "services:\n  web:\n    image: nginx\n    mem_swappiness: 0\n  db:\n    cpu_shares: 512\n    blkio_config:\n      weight: 300\n";
        let c = compose_settings("/opt/app/compose.yaml", y).unwrap();
        let got: Vec<_> = c
            .iter()
            .map(|s| (s.section.clone().unwrap(), s.key.clone(), s.line))
            .collect();
        assert_eq!(
            got,
            vec![
                ("web".into(), "mem_swappiness".into(), Some(4)),
                ("db".into(), "blkio_config".into(), Some(7)),
                ("db".into(), "cpu_shares".into(), Some(6)),
            ]
        );
        assert!(compose_settings("f", "services: [").is_err());
    }
}
