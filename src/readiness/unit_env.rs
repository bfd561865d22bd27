//! What a unit (its file and every drop-in) tells the program it starts:
//! `GOMAXPROCS=`/`GOMEMLIMIT=` in `Environment=` (or an `EnvironmentFile=`),
//! and JVM heap options (`-Xmx`, `-XX:MaxRAM=`, `-XX:MaxRAMPercentage=`,
//! `-XX:-UseContainerSupport`) on its command line or in its environment
//! (`JAVA_OPTS`, `JAVA_TOOL_OPTIONS`, ...). Host-wide JVM options come from
//! `/etc/environment` and Elasticsearch's `jvm.options` (its bundled JDK).
//!
//! These settings **mitigate** runtime findings: a Go binary whose unit pins
//! GOMAXPROCS does not depend on automaxprocs reading the quota; a JVM given
//! `-Xmx` does not size its heap from host RAM. A drop-in rarely repeats the
//! unit's `ExecStart=`, so the program is taken from whichever file of the
//! unit names it (the unit file first, then drop-ins in order).
//!
//! Settings produced: family `unit`, key `GOMAXPROCS`/`GOMEMLIMIT`, value the
//! program; family `jvm`, key the option's name, value the option as
//! written, `section` the java program it applies to (`*`: every JVM on the
//! host).

use std::collections::BTreeMap;

use super::evaluate_config::unit_of;
use super::io::Reader;
use super::{Readiness, Setting};

/// JVM options that decide heap and container detection, by name.
pub const JVM_OPTIONS: &[&str] = &[
    "-Xmx",
    "-XX:MaxRAM=",
    "-XX:MaxRAMPercentage=",
    "-XX:-UseContainerSupport",
];

/// Go environment variables that replace what automaxprocs/automemlimit would compute.
const GO_VARS: &[&str] = &["GOMAXPROCS", "GOMEMLIMIT"];

/// One unit's program and the lines of its files that matter here.
#[derive(Default)]
struct Unit {
    program: Option<String>,
    /// Go variables and JVM options found in its files.
    hits: Vec<Hit>,
    /// Its `EnvironmentFile=` lines, read after the unit's own files.
    env_files: Vec<EnvFileLine>,
}

/// A line of a unit file (or of one of its environment files) that sets a
/// Go variable or a JVM option: what becomes one readiness setting.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Hit {
    /// The file it is in.
    file: String,
    /// Its line number (1-based).
    line: usize,
    /// A Go variable (`GOMAXPROCS`) or a JVM option name (`-Xmx`).
    kind: String,
    /// The whole `Environment=` value (Go) or the option as written (JVM).
    value: String,
}

/// An `EnvironmentFile=` line of a unit: where it is and the file it names.
#[derive(Debug, Clone, PartialEq, Eq)]
struct EnvFileLine {
    /// The unit file or drop-in it is in.
    file: String,
    /// Its line number (1-based).
    line: usize,
    /// The environment file's path, without systemd's `-` (ignore if missing).
    path: String,
}

/// The JVM options in a command line or environment value.
pub fn jvm_options(text: &str) -> Vec<(&'static str, String)> {
    text.split(|c: char| c.is_whitespace() || c == '"' || c == '\'')
        .filter_map(|w| {
            let name = JVM_OPTIONS.iter().find(|o| w.starts_with(**o))?;
            // `-Xmx` needs a size after it; `-Xmx` alone is not an option.
            (*name != "-Xmx" || w.len() > 4).then(|| (*name, w.to_string()))
        })
        .collect()
}

/// Go variables assigned in an `Environment=` value or an environment file line.
fn go_vars(text: &str) -> Vec<&'static str> {
    GO_VARS
        .iter()
        .filter(|v| {
            text.split(|c: char| c.is_whitespace() || c == '"').any(|w| {
                w.strip_prefix(**v)
                    .is_some_and(|r| r.starts_with('=') && r.len() > 1)
            })
        })
        .copied()
        .collect()
}

/// Read one unit file or drop-in (`env_file`: an `EnvironmentFile=`, whose
/// every line is an assignment).
fn scan_unit_text(u: &mut Unit, file: &str, text: &str, env_file: bool) {
    // Unit files with systemd's syntax (continuations, comments); an
    // environment file line by line, each line one assignment.
    let lines: Vec<(usize, String, String)> = if env_file {
        super::unit::env_lines(text)
            .into_iter()
            .map(|(n, l)| (n, "Environment".to_string(), l))
            .collect()
    } else {
        match super::unit::parse(text) {
            Ok(p) => p
                .directives
                .into_iter()
                .map(|d| (d.line, d.key, d.value))
                .collect(),
            Err(_) => return, // systemd refuses the file: it sets nothing
        }
    };
    for (line, k, v) in &lines {
        let (i, k, v) = (line - 1, k.as_str(), v.as_str());
        match k {
            "ExecStart" if u.program.is_none() && !v.is_empty() => {
                u.program = v
                    .trim_start_matches(['-', '@', '+', '!', ':'])
                    .split_whitespace()
                    .next()
                    .map(str::to_string);
            }
            "EnvironmentFile" => u.env_files.push(EnvFileLine {
                file: file.to_string(),
                line: i + 1,
                path: v.trim_start_matches('-').to_string(),
            }),
            _ => {}
        }
        if k == "Environment" || k.starts_with("Exec") {
            for var in go_vars(v).into_iter().filter(|_| k == "Environment") {
                u.hits.push(Hit {
                    file: file.into(),
                    line: i + 1,
                    kind: var.into(),
                    value: v.into(),
                });
            }
            for (name, opt) in jvm_options(v) {
                u.hits.push(Hit {
                    file: file.into(),
                    line: i + 1,
                    kind: name.into(),
                    value: opt,
                });
            }
        }
    }
}

/// Settings from the units read by the unit scan (`texts`: file, contents),
/// their environment files, `/etc/environment` and Elasticsearch's options.
pub fn scan(rd: &mut Reader<'_>, texts: &[(String, String)], out: &mut Readiness) {
    let mut units: BTreeMap<String, Unit> = BTreeMap::new();
    for (file, text) in texts {
        scan_unit_text(units.entry(unit_of(file)).or_default(), file, text, false);
    }
    for u in units.values_mut() {
        for EnvFileLine { path, .. } in std::mem::take(&mut u.env_files) {
            if !path.starts_with('/') || path.contains('%') {
                continue; // specifiers are resolved by systemd, not here
            }
            if let Some(text) = rd.text(&path) {
                scan_unit_text(u, &path, &text, true);
            }
        }
        let program = u.program.clone().unwrap_or_default();
        for Hit {
            file,
            line,
            kind,
            value,
        } in &u.hits
        {
            out.settings.push(if GO_VARS.contains(&kind.as_str()) {
                Setting::at_line("unit", file, *line, Some("Service"), kind, &program)
            } else {
                Setting::at_line("jvm", file, *line, Some(&program), kind, value)
            });
        }
    }
    host_jvm_options(rd, out);
}

/// `/etc/environment` (every JVM: `*`) and Elasticsearch's `jvm.options`
/// and `jvm.options.d/*.options` (its bundled JDK).
fn host_jvm_options(rd: &mut Reader<'_>, out: &mut Readiness) {
    let es_java = "/usr/share/elasticsearch/jdk/bin/java";
    let mut files = vec![("/etc/environment".to_string(), "*")];
    for f in rd.with_dropins(
        "/etc/elasticsearch/jvm.options",
        "/etc/elasticsearch/jvm.options.d",
        ".options",
    ) {
        files.push((f, es_java));
    }
    for (file, applies) in files {
        let Some(text) = rd.text(&file) else { continue };
        for (i, l) in text.lines().enumerate() {
            if l.trim_start().starts_with('#') {
                continue;
            }
            for (name, opt) in jvm_options(l) {
                out.settings
                    .push(Setting::at_line("jvm", &file, i + 1, Some(applies), name, &opt));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jvm_options_are_found_in_command_lines_and_environment_values() {
        let got = jvm_options("\"JAVA_OPTS=-Xms1g -Xmx2g -XX:MaxRAMPercentage=75.0\" X=-Xmx");
        assert_eq!(
            got,
            vec![
                ("-Xmx", "-Xmx2g".to_string()),
                ("-XX:MaxRAMPercentage=", "-XX:MaxRAMPercentage=75.0".to_string())
            ]
        );
        assert!(jvm_options("-Xss512k -XX:+UseG1GC").is_empty());
        assert_eq!(
            go_vars("GOMAXPROCS=4 GOMEMLIMIT=1GiB"),
            vec!["GOMAXPROCS", "GOMEMLIMIT"]
        );
        assert!(go_vars("GOMAXPROCS= NOT_GOMAXPROCS=3").is_empty());
    }

    #[test]
    fn a_drop_in_applies_to_the_program_of_its_unit() {
        let mut u = Unit::default();
        scan_unit_text(
            &mut u,
            "/etc/systemd/system/api.service",
            "[Service]\nExecStart=/opt/api/bin/api --serve\n",
            false,
        );
        scan_unit_text(
            &mut u,
            "/etc/systemd/system/api.service.d/go.conf",
            "[Service]\nEnvironment=GOMAXPROCS=2\nEnvironmentFile=-/etc/default/api\n",
            false,
        );
        scan_unit_text(
            &mut u,
            "/etc/default/api",
            "# x\nGOMEMLIMIT=1GiB\nJAVA_OPTS=\"-Xmx1g\"\n",
            true,
        );
        assert_eq!(u.hits.len(), 3);
        assert_eq!(u.program.as_deref(), Some("/opt/api/bin/api"));
        assert_eq!(u.hits[0].line, 2);
        assert_eq!(
            (u.hits[1].kind.as_str(), u.hits[2].value.as_str()),
            ("GOMEMLIMIT", "-Xmx1g")
        );
        assert_eq!(u.env_files[0].path, "/etc/default/api");
    }
}
