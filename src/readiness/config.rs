//! Static configuration that speaks v1: systemd units and drop-ins with
//! legacy directives (or scripts writing v1 paths), docker `daemon.json`,
//! containerd `config.toml`, LXC container configs (`lxc.cgroup.*`), and
//! libcgroup's `cgconfig.conf`/`cgrules.conf` and their services.
//!
//! Every hit is a [`Setting`] with its file and line; the files `convert`
//! rewrites (LXC, cgconfig) are kept whole.

use super::io::{Kind, Reader, join};
use super::stack::toml_keys;
use super::{ConfigFile, Readiness, Setting};

/// Unit directories, most specific first: systemd's one search path.
pub use crate::host::systemd::UNIT_DIRS;

/// v1-only resource-control directives (deprecated in systemd 252, ignored by current systemd).
pub const LEGACY_DIRECTIVES: &[&str] = &[
    "CPUShares",
    "StartupCPUShares",
    "MemoryLimit",
    "BlockIOAccounting",
    "BlockIOWeight",
    "StartupBlockIOWeight",
    "BlockIODeviceWeight",
    "BlockIOReadBandwidth",
    "BlockIOWriteBandwidth",
    "NetClass",
];

/// Their v2 counterparts, recorded so a unit that already has both is told apart.
pub const V2_DIRECTIVES: &[&str] = &[
    "CPUWeight",
    "StartupCPUWeight",
    "MemoryMax",
    "IOAccounting",
    "IOWeight",
    "StartupIOWeight",
    "IODeviceWeight",
    "IOReadBandwidthMax",
    "IOWriteBandwidthMax",
];

/// v1 controller directories a script may write to.
const V1_PATHS: &[&str] = &[
    "memory",
    "cpu",
    "cpuacct",
    "cpu,cpuacct",
    "cpuset",
    "blkio",
    "net_cls",
    "net_prio",
    "net_cls,net_prio",
    "freezer",
    "devices",
    "pids",
    "hugetlb",
    "perf_event",
];

/// Scan every configuration family.
pub fn scan(rd: &mut Reader<'_>, out: &mut Readiness) {
    units(rd, out);
    docker(rd, out);
    containerd(rd, out);
    lxc(rd, out);
    libcgroup(rd, out);
}

fn units(rd: &mut Reader<'_>, out: &mut Readiness) {
    let mut texts = Vec::new();
    for dir in UNIT_DIRS {
        if rd.is_symlink(dir) {
            continue; // merged /usr: /lib → usr/lib
        }
        for e in rd.list(dir) {
            let path = join(dir, &e.name);
            match e.kind {
                Kind::File if crate::host::systemd::is_unit_name(&e.name) => {
                    unit_file(rd, &path, out, &mut texts);
                }
                Kind::Dir if e.name.ends_with(".d") => {
                    for f in rd.files_ending(&path, ".conf") {
                        unit_file(rd, &join(&path, &f), out, &mut texts);
                    }
                }
                _ => {}
            }
        }
    }
    super::unit_env::scan(rd, &texts, out);
}

fn unit_file(rd: &mut Reader<'_>, path: &str, out: &mut Readiness, texts: &mut Vec<(String, String)>) {
    if let Some(text) = rd.text(path) {
        out.settings.extend(unit_settings(path, &text));
        texts.push((path.to_string(), text));
    }
}

/// Legacy and v2 resource directives of a unit file, and `Exec*=` lines
/// that touch v1 cgroup paths, read with systemd's own syntax rules
/// ([`super::unit`]): a continued line is one directive, as systemd sees it.
/// A file systemd would refuse to load gives one `invalid-unit` setting
/// naming the line.
pub fn unit_settings(file: &str, text: &str) -> Vec<Setting> {
    let mut out = Vec::new();
    let parsed = match super::unit::parse(text) {
        Ok(u) => u,
        Err(e) => {
            out.push(Setting::at_line(
                "unit",
                file,
                e.line,
                None,
                "invalid-unit",
                &e.message,
            ));
            return out;
        }
    };
    let mut gomaxprocs = None;
    let mut program = None;
    for d in &parsed.directives {
        let (k, v) = (d.key.as_str(), d.value.as_str());
        if k == "Environment" && v.contains("GOMAXPROCS=") {
            gomaxprocs = Some(d.line);
        }
        if k == "ExecStart" && program.is_none() {
            program = v
                .trim_start_matches(['-', '@', '+', '!', ':'])
                .split_whitespace()
                .next()
                .map(str::to_string);
        }
        let key = if LEGACY_DIRECTIVES.contains(&k) || V2_DIRECTIVES.contains(&k) {
            k
        } else if k.starts_with("Exec") && writes_v1_path(v) {
            "ExecV1Path"
        } else {
            continue;
        };
        out.push(Setting::at_line("unit", file, d.line, Some(&d.section), key, v));
    }
    // An explicit GOMAXPROCS mitigates a Go binary that ignores CPU quota:
    // record which program the unit starts with it.
    if let (Some(line), Some(prog)) = (gomaxprocs, program) {
        out.push(Setting::at_line(
            "unit",
            file,
            line,
            Some("Service"),
            "GOMAXPROCS",
            &prog,
        ));
    }
    out
}

fn writes_v1_path(cmd: &str) -> bool {
    V1_PATHS
        .iter()
        .any(|c| cmd.contains(&format!("/sys/fs/cgroup/{c}/")))
}

fn json_line(text: &str, key: &str) -> Option<usize> {
    let needle = format!("\"{key}\"");
    text.lines().position(|l| l.contains(&needle)).map(|i| i + 1)
}

fn docker(rd: &mut Reader<'_>, out: &mut Readiness) {
    let file = "/etc/docker/daemon.json";
    let Some(text) = rd.text(file) else { return };
    out.settings.extend(daemon_json(file, &text).unwrap_or_else(|e| {
        vec![Setting {
            family: "daemon.json".into(),
            file: file.into(),
            line: Some(e.line()),
            section: None,
            key: "invalid-json".into(),
            value: e.to_string(),
        }]
    }));
}

/// The v2-relevant keys of docker's `daemon.json`.
pub fn daemon_json(file: &str, text: &str) -> Result<Vec<Setting>, serde_json::Error> {
    let v: serde_json::Value = serde_json::from_str(text)?;
    let mut out = Vec::new();
    let mut push = |key: &str, value: String| {
        out.push(Setting {
            family: "daemon.json".into(),
            file: file.into(),
            line: json_line(text, key),
            section: None,
            key: key.into(),
            value,
        });
    };
    for key in [
        "cpu-rt-period",
        "cpu-rt-runtime",
        "cgroup-parent",
        "default-cgroupns-mode",
    ] {
        if let Some(x) = v.get(key) {
            push(key, x.as_str().map_or_else(|| x.to_string(), str::to_string));
        }
    }
    for opt in v["exec-opts"].as_array().into_iter().flatten() {
        if let Some(s) = opt.as_str().filter(|s| s.starts_with("native.cgroupdriver")) {
            push("exec-opts", s.to_string());
        }
    }
    Ok(out)
}

fn containerd(rd: &mut Reader<'_>, out: &mut Readiness) {
    let files = rd.with_dropins("/etc/containerd/config.toml", "/etc/containerd/conf.d", ".toml");
    for f in files {
        let Some(text) = rd.text(&f) else { continue };
        for (line, key, value) in toml_keys(&text, &["runtime_type", "systemd_cgroup", "SystemdCgroup"]) {
            out.settings.push(Setting {
                family: "containerd".into(),
                file: f.clone(),
                line: Some(line),
                section: None,
                key: key.into(),
                value: value.into(),
            });
        }
    }
    let pin = "/etc/systemd/system/containerd.service.d/10-use-cgroupfs.conf";
    if rd.exists(pin) {
        out.settings.push(Setting {
            family: "containerd".into(),
            file: pin.into(),
            line: None,
            section: None,
            key: "cgroupfs-pin".into(),
            value: "present".into(),
        });
    }
}

fn lxc(rd: &mut Reader<'_>, out: &mut Readiness) {
    let mut files: Vec<String> = Vec::new();
    for c in rd.subdirs("/var/lib/lxc") {
        files.push(format!("/var/lib/lxc/{c}/config"));
    }
    for d in ["/etc/lxc", "/etc/pve/lxc"] {
        files.extend(rd.paths_ending(d, ".conf"));
    }
    for f in files {
        let Some(text) = rd.text(&f) else { continue };
        let s = lxc_settings(&f, &text);
        if s.iter().any(|s| s.key.starts_with("lxc.cgroup.")) {
            out.files.push(ConfigFile {
                kind: "lxc".into(),
                path: f.clone(),
                text,
            });
        }
        out.settings.extend(s);
    }
}

/// One `key = value` line of an LXC config, as LXC's `parse_line()` reads
/// it: leading blanks skipped, `#` comments, the key before the first `=`,
/// the value trimmed and stripped of one pair of matching quotes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LxcLine {
    /// 1-based line.
    pub line: usize,
    /// Key.
    pub key: String,
    /// Value as LXC passes it on.
    pub value: String,
}

/// The assignments of an LXC config, in order (repeated keys stay a list).
pub fn lxc_lines(text: &str) -> Vec<LxcLine> {
    let mut out = Vec::new();
    for (i, l) in text.split('\n').enumerate() {
        let l = l.trim_start_matches([' ', '\t']);
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let Some((k, v)) = l.split_once('=') else { continue };
        let mut v = v.trim_matches([' ', '\t', '\r', '\n']);
        for q in ['"', '\''] {
            if v.len() > 1 && v.starts_with(q) && v.ends_with(q) {
                v = &v[1..v.len() - 1];
                break;
            }
        }
        out.push(LxcLine {
            line: i + 1,
            key: k.trim_matches([' ', '\t']).to_string(),
            value: v.to_string(),
        });
    }
    out
}

/// `lxc.cgroup.*` and `lxc.cgroup2.*` keys of an LXC config, read as LXC
/// reads them ([`lxc_lines`]).
pub fn lxc_settings(file: &str, text: &str) -> Vec<Setting> {
    lxc_lines(text)
        .into_iter()
        .filter(|l| l.key.starts_with("lxc.cgroup.") || l.key.starts_with("lxc.cgroup2."))
        .map(|l| Setting::at_line("lxc", file, l.line, None, &l.key, &l.value))
        .collect()
}

fn libcgroup(rd: &mut Reader<'_>, out: &mut Readiness) {
    let files = rd.with_dropins("/etc/cgconfig.conf", "/etc/cgconfig.d", ".conf");
    for f in files {
        let Some(text) = rd.text(&f) else { continue };
        match cgconfig::parse(&text) {
            Ok(nodes) => out.settings.extend(cgconfig::settings(&f, &nodes)),
            Err((line, msg)) => out.settings.push(Setting {
                family: "cgconfig".into(),
                file: f.clone(),
                line: Some(line),
                section: None,
                key: "invalid".into(),
                value: msg,
            }),
        }
        out.files.push(ConfigFile {
            kind: "cgconfig".into(),
            path: f,
            text,
        });
    }
    if let Some(text) = rd.text("/etc/cgrules.conf") {
        for (i, l) in text.lines().enumerate() {
            let l = l.trim();
            if !l.is_empty() && !l.starts_with('#') {
                out.settings.push(Setting {
                    family: "cgrules".into(),
                    file: "/etc/cgrules.conf".into(),
                    line: Some(i + 1),
                    section: None,
                    key: "rule".into(),
                    value: l.into(),
                });
            }
        }
    }
    for svc in ["cgconfig.service", "cgred.service"] {
        let p = format!("/etc/systemd/system/multi-user.target.wants/{svc}");
        if rd.exists(&p) {
            out.settings.push(Setting {
                family: "cgrules".into(),
                file: p,
                line: None,
                section: None,
                key: "enabled".into(),
                value: svc.into(),
            });
        }
    }
}

/// A small parser for libcgroup's configuration language, enough to read
/// `mount {}`, `group NAME { perm {} CONTROLLER { key = value; } }`,
/// `template` and `default` stanzas, and to parse back what `convert` writes.
pub mod cgconfig {
    use super::Setting;

    /// One `head... { entries; children }` block.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Block {
        /// The words before `{` (`group`, `web`; `memory`).
        pub head: Vec<String>,
        /// 1-based line of the head.
        pub line: usize,
        /// `key = value;` entries, in order.
        pub entries: Vec<(String, String)>,
        /// Nested blocks.
        pub children: Vec<Block>,
    }

    fn tokens(text: &str) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        for (i, l) in text.lines().enumerate() {
            let l = l.split('#').next().unwrap_or("");
            let mut cur = String::new();
            let mut quoted = false;
            for c in l.chars() {
                match c {
                    '"' => {
                        quoted = !quoted;
                        cur.push(c);
                    }
                    '{' | '}' | '=' | ';' if !quoted => {
                        if !cur.trim().is_empty() {
                            out.push((i + 1, cur.trim().to_string()));
                        }
                        cur.clear();
                        out.push((i + 1, c.to_string()));
                    }
                    c if c.is_whitespace() && !quoted => {
                        if !cur.is_empty() {
                            out.push((i + 1, cur.clone()));
                        }
                        cur.clear();
                    }
                    c => cur.push(c),
                }
            }
            if !cur.trim().is_empty() {
                out.push((i + 1, cur.trim().to_string()));
            }
        }
        out
    }

    /// Parse a cgconfig file into its top-level blocks; errors carry a line.
    pub fn parse(text: &str) -> Result<Vec<Block>, (usize, String)> {
        let toks = tokens(text);
        let mut pos = 0;
        let blocks = parse_blocks(&toks, &mut pos, 0)?;
        if pos < toks.len() {
            return Err((toks[pos].0, format!("unexpected {:?}", toks[pos].1)));
        }
        Ok(blocks)
    }

    fn parse_blocks(
        toks: &[(usize, String)],
        pos: &mut usize,
        depth: usize,
    ) -> Result<Vec<Block>, (usize, String)> {
        let mut out = Vec::new();
        while *pos < toks.len() && toks[*pos].1 != "}" {
            out.extend(parse_block(toks, pos, depth)?);
        }
        Ok(out)
    }

    fn body(
        toks: &[(usize, String)],
        pos: &mut usize,
        depth: usize,
        b: &mut Block,
    ) -> Result<(), (usize, String)> {
        if depth > 8 {
            return Err((b.line, "nested too deeply".into()));
        }
        loop {
            match toks.get(*pos) {
                None => return Err((b.line, "unclosed '{'".into())),
                Some((_, t)) if t == "}" => {
                    *pos += 1;
                    return Ok(());
                }
                Some((_, t)) if t == ";" => *pos += 1,
                _ => {}
            }
            // key = value ;   or   head... { ... }
            if toks.get(*pos + 1).is_some_and(|t| t.1 == "=") {
                let key = toks[*pos].1.clone();
                *pos += 2;
                let mut val = Vec::new();
                while let Some((_, t)) = toks.get(*pos) {
                    if t == ";" || t == "}" {
                        break;
                    }
                    val.push(t.clone());
                    *pos += 1;
                }
                if toks.get(*pos).is_some_and(|t| t.1 == ";") {
                    *pos += 1;
                }
                b.entries.push((key, val.join(" ").trim_matches('"').to_string()));
            } else if toks.get(*pos).is_some_and(|t| t.1 != "}") {
                let mut sub = parse_block(toks, pos, depth)?;
                b.children.append(&mut sub);
            }
        }
    }

    fn parse_block(
        toks: &[(usize, String)],
        pos: &mut usize,
        depth: usize,
    ) -> Result<Vec<Block>, (usize, String)> {
        let (line, _) = toks[*pos];
        let mut head = Vec::new();
        while *pos < toks.len() && !["{", "=", ";", "}"].contains(&toks[*pos].1.as_str()) {
            head.push(toks[*pos].1.clone());
            *pos += 1;
        }
        match toks.get(*pos).map(|t| t.1.as_str()) {
            Some("{") => {
                *pos += 1;
                let mut b = Block {
                    head,
                    line,
                    entries: Vec::new(),
                    children: Vec::new(),
                };
                body(toks, pos, depth + 1, &mut b)?;
                Ok(vec![b])
            }
            Some(t) => Err((toks[*pos].0, format!("expected '{{' or '=', found {t:?}"))),
            None => Err((line, "unexpected end of file".into())),
        }
    }

    /// Settings: `mount` entries, and each controller file of each group/template.
    pub fn settings(file: &str, blocks: &[Block]) -> Vec<Setting> {
        let mut out = Vec::new();
        let s = |line: usize, section: String, key: &str, value: &str| Setting {
            family: "cgconfig".into(),
            file: file.into(),
            line: Some(line),
            section: Some(section),
            key: key.into(),
            value: value.into(),
        };
        for b in blocks {
            match b.head.first().map(String::as_str) {
                Some("mount") => {
                    for (k, v) in &b.entries {
                        out.push(s(b.line, "mount".into(), k, v));
                    }
                }
                Some(kind @ ("group" | "template")) => {
                    let name = b.head.get(1).cloned().unwrap_or_default();
                    for c in b
                        .children
                        .iter()
                        .filter(|c| c.head.first().is_some_and(|h| h != "perm"))
                    {
                        for (k, v) in &c.entries {
                            out.push(s(c.line, format!("{kind} {name}"), k, v));
                        }
                    }
                }
                _ => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_directives_with_sections_and_v1_paths() {
        let u = "[Unit]\nDescription=x\n[Service]\nCPUShares=512\nMemoryLimit=1G\nMemoryMax=2G\n\
                 ExecStartPost=/bin/sh -c 'echo 1 > /sys/fs/cgroup/memory/x/memory.oom_control'\n";
        let s = unit_settings("/etc/systemd/system/a.service", u);
        let kv: Vec<(&str, &str, Option<&str>)> = s
            .iter()
            .map(|s| (s.key.as_str(), s.value.as_str(), s.section.as_deref()))
            .collect();
        assert_eq!(kv[0], ("CPUShares", "512", Some("Service")));
        assert_eq!(kv[1], ("MemoryLimit", "1G", Some("Service")));
        assert_eq!(kv[2], ("MemoryMax", "2G", Some("Service")));
        assert_eq!(kv[3].0, "ExecV1Path");
        assert_eq!(s[0].line, Some(4));
        let g = unit_settings(
            "u",
            "[Service]\nEnvironment=GOMAXPROCS=4 X=1\nExecStart=-/usr/local/bin/svc --flag\n",
        );
        assert_eq!(
            (g[0].key.as_str(), g[0].value.as_str(), g[0].line),
            ("GOMAXPROCS", "/usr/local/bin/svc", Some(2))
        );
    }

    #[test]
    fn daemon_json_keys_and_errors() {
        let j = r#"{
  "exec-opts": ["native.cgroupdriver=cgroupfs"],
  "cpu-rt-runtime": 950000,
  "log-driver": "json-file"
}"#;
        let s = daemon_json("/etc/docker/daemon.json", j).unwrap();
        let kv: Vec<(&str, &str, Option<usize>)> = s
            .iter()
            .map(|s| (s.key.as_str(), s.value.as_str(), s.line))
            .collect();
        assert_eq!(
            kv,
            vec![
                ("cpu-rt-runtime", "950000", Some(3)),
                ("exec-opts", "native.cgroupdriver=cgroupfs", Some(2))
            ]
        );
        let e = daemon_json("f", "{\n\"a\": }").unwrap_err();
        assert_eq!(e.line(), 2);
    }

    #[test]
    fn cgconfig_parses_groups_mounts_and_reports_errors() {
        let text = "mount {\n  cpu = /cgroup/cpu;\n  memory = /cgroup/memory;\n}\n\
                    group web {\n  perm { task { uid = www; } admin { uid = root; } }\n  \
                    cpu { cpu.shares = \"512\"; }\n  memory { memory.limit_in_bytes = 1G; }\n}\n";
        let b = cgconfig::parse(text).unwrap();
        assert_eq!(b.len(), 2);
        let s = cgconfig::settings("/etc/cgconfig.conf", &b);
        let kv: Vec<(&str, &str, &str)> = s
            .iter()
            .map(|s| (s.section.as_deref().unwrap(), s.key.as_str(), s.value.as_str()))
            .collect();
        assert_eq!(
            kv,
            vec![
                ("mount", "cpu", "/cgroup/cpu"),
                ("mount", "memory", "/cgroup/memory"),
                ("group web", "cpu.shares", "512"),
                ("group web", "memory.limit_in_bytes", "1G"),
            ]
        );
        assert_eq!(cgconfig::parse("group x {\n cpu {\n").unwrap_err().0, 2);
        assert!(cgconfig::parse("group x }").is_err());
    }

    #[test]
    fn lxc_keys() {
        let s = lxc_settings(
            "c",
            "lxc.cgroup.memory.limit_in_bytes = 512M\nlxc.cgroup2.cpu.max = 100000 100000\nlxc.net.0.type = veth\n",
        );
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].key, "lxc.cgroup.memory.limit_in_bytes");
        assert_eq!(s[0].value, "512M");
    }
}
