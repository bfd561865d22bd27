//! systemd unit configuration: which files make up a unit, and the
//! directives they set, read through the [`Root`](crate::host::Root).
//!
//! The owners module needs only a typed map from unit name to its effective
//! directives (fragment, then drop-ins in systemd's order, an empty
//! assignment resetting). Every file and directory is read through the
//! readiness scan's [`Reader`] (bounded, counted, contained in the root, its
//! drop-in directory listed with [`Reader::paths_ending`]), so the project
//! has one way of reading unit files; what is specific here is systemd's
//! search path, drop-in precedence and reset semantics, which the
//! predictions need and readiness does not.

use std::collections::BTreeMap;

use crate::host::HostError;
use crate::readiness::io::Reader;

pub use crate::model::evidence::UnitConfig;

pub use crate::host::systemd::{UNIT_DIRS, is_unit_name};

/// A unit file systemd refuses to load (see [`crate::readiness::unit`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct MalformedLine {
    /// 1-based line number (the first line of a continued line).
    pub line: usize,
    /// What was wrong.
    pub message: String,
}

/// Apply one unit file's text to a directive map (sections are not
/// distinguished: resource-control keys are unique across them).
/// A file systemd refuses to load (a broken section header, an over-long
/// line) is an error and sets nothing, as in systemd.
pub fn apply_text(text: &str, directives: &mut BTreeMap<String, String>) -> Result<(), MalformedLine> {
    // systemd's own syntax (one parser for every unit reader): continuations,
    // comments inside them, sections; a file systemd refuses sets nothing.
    let parsed = crate::readiness::unit::parse(text).map_err(|e| MalformedLine {
        line: e.line,
        message: e.message,
    })?;
    for d in parsed.directives {
        if d.value.is_empty() {
            directives.remove(&d.key);
        } else {
            directives.insert(d.key, d.value);
        }
    }
    Ok(())
}

/// The template of an instance (`getty@tty1.service` → `getty@.service`).
fn template_of(name: &str) -> Option<String> {
    let (prefix, rest) = name.split_once('@')?;
    let suffix = rest.rsplit_once('.').map(|(_, s)| s)?;
    Some(format!("{prefix}@.{suffix}"))
}

/// Drop-in directory names for a unit, least specific first: the type
/// (`service.d`), dash prefixes (`foo-.service.d`), the template, the unit.
fn dropin_dirs(name: &str) -> Vec<String> {
    let Some((stem, suffix)) = name.rsplit_once('.') else {
        return Vec::new();
    };
    let mut out = vec![format!("{suffix}.d")];
    let base = stem.split('@').next().unwrap_or(stem);
    let parts: Vec<&str> = base.split('-').collect();
    for i in 1..parts.len() {
        out.push(format!("{}-.{suffix}.d", parts[..i].join("-")));
    }
    if let Some(t) = template_of(name) {
        out.push(format!("{t}.d"));
    }
    out.push(format!("{name}.d"));
    out
}

/// Read a unit's fragment and drop-ins. `None` when nothing was readable.
/// Unreadable files are the reader's diagnostics; malformed lines go to `note`.
pub fn read_unit(rd: &mut Reader<'_>, name: &str, note: &mut impl FnMut(HostError)) -> Option<UnitConfig> {
    let mut cfg = UnitConfig::default();
    let mut candidates = vec![name.to_string()];
    candidates.extend(template_of(name));
    'frag: for cand in &candidates {
        for dir in UNIT_DIRS {
            let path = format!("{dir}/{cand}");
            if let Some(text) = rd.text(&path) {
                apply_file(&path, &text, &mut cfg, note);
                break 'frag;
            }
        }
    }
    // Drop-ins: per name, the highest-priority directory wins; applied in
    // name order across all directories.
    let mut by_name: BTreeMap<String, String> = BTreeMap::new();
    for d in dropin_dirs(name) {
        for dir in UNIT_DIRS.iter().rev() {
            for path in rd.paths_ending(&format!("{dir}/{d}"), ".conf") {
                let file = path.rsplit('/').next().unwrap_or(&path).to_string();
                by_name.insert(file, path);
            }
        }
    }
    for path in by_name.values() {
        if let Some(text) = rd.text(path) {
            apply_file(path, &text, &mut cfg, note);
        }
    }
    (!cfg.files.is_empty()).then_some(cfg)
}

fn apply_file(path: &str, text: &str, cfg: &mut UnitConfig, note: &mut impl FnMut(HostError)) {
    cfg.files.push(path.to_string());
    if let Err(MalformedLine { line, message }) = apply_text(text, &mut cfg.directives) {
        note(HostError::Parse {
            path: path.into(),
            line,
            message,
        });
    }
}

/// `[Manager]` settings from `system.conf` and its drop-ins, in systemd's
/// order (the main file, then each drop-in directory's `*.conf`).
pub fn manager_defaults(rd: &mut Reader<'_>, note: &mut impl FnMut(HostError)) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut files = vec!["/etc/systemd/system.conf".to_string()];
    for dir in [
        "/usr/lib/systemd/system.conf.d",
        "/run/systemd/system.conf.d",
        "/etc/systemd/system.conf.d",
    ] {
        files.extend(rd.paths_ending(dir, ".conf"));
    }
    for f in files {
        if let Some(text) = rd.text(&f)
            && let Err(MalformedLine { line, message }) = apply_text(&text, &mut out)
        {
            note(HostError::Parse {
                path: f.into(),
                line,
                message,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_directives_with_resets_and_continuations() {
        let mut d = BTreeMap::new();
        apply_text(
            "[Service]\n# comment\nCPUShares=2048\nExecStart=/bin/sh -c\\\n  'sleep 1'\nMemoryLimit=1G\nMemoryLimit=\n",
            &mut d,
        )
        .unwrap();
        assert_eq!(d.get("CPUShares").map(String::as_str), Some("2048"));
        assert_eq!(
            d.get("ExecStart").map(String::as_str),
            Some("/bin/sh -c   'sleep 1'"),
            "systemd replaces the backslash with a space and keeps the next line's indentation"
        );
        assert!(!d.contains_key("MemoryLimit"), "an empty assignment resets");
        // A line without '=' is ignored (systemd warns); a broken section
        // header makes systemd refuse the file.
        apply_text("[Service]\nbogus line\n", &mut d).unwrap();
        assert_eq!(
            apply_text("[Service]\nA=1\n[Service\n", &mut d).unwrap_err().line,
            3
        );
    }

    /// Fragment, drop-ins from several directories (a name in /etc masks the
    /// same name in /usr/lib), a template's drop-in and a reset, read through
    /// the readiness reader over a root (counted by it); a malformed line is a
    /// parse error naming its file.
    #[test]
    fn reads_a_unit_through_the_readiness_reader() {
        let dir = tempfile::tempdir().unwrap();
        let w = |p: &str, t: &str| {
            let f = dir.path().join(p.trim_start_matches('/'));
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, t).unwrap();
        };
        w(
            "/usr/lib/systemd/system/app@.service",
            "[Service]\nCPUShares=2048\nMemoryLimit=1G\n",
        );
        w(
            "/usr/lib/systemd/system/app@.service.d/10-a.conf",
            "[Service]\nTasksMax=10\n",
        );
        w(
            "/etc/systemd/system/app@.service.d/10-a.conf",
            "[Service]\nTasksMax=20\n",
        );
        w(
            "/etc/systemd/system/app@x.service.d/20-b.conf",
            "[Service]\nMemoryLimit=\nbad line\n",
        );
        // systemd refuses a file with a broken section header: it sets nothing.
        w(
            "/etc/systemd/system/app@x.service.d/30-c.conf",
            "[Service\nCPUShares=1\n",
        );
        w("/etc/systemd/system.conf", "[Manager]\nDefaultTasksMax=30%\n");
        let root = crate::host::Root::new(dir.path()).unwrap();
        let mut rd = Reader::new(&root, crate::readiness::io::Limits::default());
        let mut errors = Vec::new();
        let cfg = read_unit(&mut rd, "app@x.service", &mut |e| errors.push(e)).unwrap();
        assert_eq!(
            cfg.files,
            [
                "/usr/lib/systemd/system/app@.service",
                "/etc/systemd/system/app@.service.d/10-a.conf",
                "/etc/systemd/system/app@x.service.d/20-b.conf",
                "/etc/systemd/system/app@x.service.d/30-c.conf"
            ]
        );
        assert_eq!(cfg.get("TasksMax"), Some("20"));
        assert_eq!(cfg.get("CPUShares"), Some("2048"));
        assert_eq!(cfg.get("MemoryLimit"), None, "reset by the drop-in");
        assert_eq!(errors.len(), 1);
        assert!(errors[0].to_string().contains("30-c.conf"), "{}", errors[0]);
        assert!(read_unit(&mut rd, "none.service", &mut |_| {}).is_none());
        let m = manager_defaults(&mut rd, &mut |_| {});
        assert_eq!(m.get("DefaultTasksMax").map(String::as_str), Some("30%"));
        let (stats, _) = rd.finish();
        assert_eq!(
            stats.files_read, 5,
            "the masked /usr/lib drop-in is not read: {stats:?}"
        );
    }

    #[test]
    fn dropin_dirs_in_systemd_order() {
        assert_eq!(
            dropin_dirs("foo-bar@x.service"),
            [
                "service.d",
                "foo-.service.d",
                "foo-bar@.service.d",
                "foo-bar@x.service.d"
            ]
        );
        assert!(is_unit_name("a.slice") && !is_unit_name(".slice") && !is_unit_name("borg"));
    }
}
