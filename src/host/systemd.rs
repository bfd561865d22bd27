//! systemd's facts as cgmig reads them, in one place: where systemd keeps
//! its units (the unit search path), which cgroup names are units, and which
//! version it is. The scan reads the version once ([`version`]) and every
//! consumer takes it from the snapshot (`host.os.systemd`, the owners'
//! evidence, the readiness inventory); the owners' unit reader and the
//! readiness configuration scan walk the same [`UNIT_DIRS`].

use std::path::Path;

use super::{HostError, Root};

/// The first systemd that can run a unified cgroup hierarchy: v226 ("systemd
/// now has support for the unified cgroup hierarchy", systemd NEWS for v226).
/// CentOS/RHEL 7 and Amazon Linux 2 ship 219. The audit's
/// `host.systemd-too-old` (`audit::kernel`) is the one finding that says a
/// host's systemd is older; readiness keeps its later thresholds (WR-SD-004,
/// cpuset delegation from 244).
pub const UNIFIED_SINCE: u32 = 226;

/// Unit search path, highest priority first (systemd.unit(5), system manager).
pub const UNIT_DIRS: &[&str] = &[
    "/etc/systemd/system.control",
    "/run/systemd/system.control",
    "/run/systemd/transient",
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];

/// Where distributions install `libsystemd-shared-NNN.so`.
pub const LIB_DIRS: &[&str] = &[
    "/usr/lib/systemd",
    "/lib/systemd",
    "/usr/lib64/systemd",
    "/usr/lib/x86_64-linux-gnu/systemd",
    "/usr/lib/aarch64-linux-gnu/systemd",
];

/// The systemd binary, searched for its version string when no shared
/// library exists (systemd < 231, e.g. CentOS 7's 219).
pub const BINARIES: &[&str] = &["/usr/lib/systemd/systemd", "/lib/systemd/systemd"];

/// Unit type suffixes that own a cgroup.
const CGROUP_UNIT_SUFFIXES: &[&str] = &[".service", ".slice", ".scope", ".socket", ".mount", ".swap"];

/// Whether a name (a cgroup path component, a unit file) is a unit that owns a cgroup.
pub fn is_unit_name(name: &str) -> bool {
    CGROUP_UNIT_SUFFIXES
        .iter()
        .any(|s| name.len() > s.len() && name.ends_with(s))
}

/// systemd's version, and where it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// The major version (`252`).
    pub number: u32,
    /// As found (`253.7-1.fc38` from a library name, `252` otherwise).
    pub text: String,
    /// The file it was read from.
    pub path: String,
    /// How (`libsystemd-shared-VERSION.so name`, ...).
    pub evidence: &'static str,
}

/// Read systemd's version: the shared library's name, else the version
/// string in the binary, else the package database (dpkg). A directory or
/// file that is missing is no error; any other failure is noted.
pub fn version(root: &Root, note: &mut impl FnMut(HostError)) -> Option<Version> {
    for dir in LIB_DIRS {
        match root.list_names(dir) {
            Ok(Some(names)) => {
                if let Some(v) = names.iter().find_map(|n| from_lib_name(dir, n)) {
                    return Some(v);
                }
            }
            Ok(None) => {}
            Err(e) => note(e),
        }
    }
    for b in BINARIES {
        if let Ok(bin) = root.read_bounded(Path::new(b), 64 << 20)
            && let Some(number) = version_in_binary(&String::from_utf8_lossy(&bin))
        {
            return Some(Version {
                number,
                text: number.to_string(),
                path: (*b).to_string(),
                evidence: "the version string in the systemd binary",
            });
        }
    }
    let status = match root.read_text_lines("/var/lib/dpkg/status") {
        Ok(s) => s?,
        Err(e) => {
            note(e);
            return None;
        }
    };
    let number = dpkg_version(&status, "systemd")?;
    Some(Version {
        number,
        text: number.to_string(),
        path: "/var/lib/dpkg/status".into(),
        evidence: "dpkg status",
    })
}

/// `libsystemd-shared-252.so` → 252 (also `-253.7-1.fc38.so`).
fn from_lib_name(dir: &str, name: &str) -> Option<Version> {
    let text = name.strip_prefix("libsystemd-shared-")?.strip_suffix(".so")?;
    let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
    Some(Version {
        number: digits.parse().ok()?,
        text: text.to_string(),
        path: format!("{}/{name}", dir.trim_end_matches('/')),
        evidence: "libsystemd-shared-VERSION.so name",
    })
}

/// The first `systemd NNN` followed by a non-digit in the binary's strings.
fn version_in_binary(text: &str) -> Option<u32> {
    text.match_indices("systemd ").find_map(|(i, m)| {
        let rest = &text[i + m.len()..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let next = rest[digits.len()..].chars().next();
        (digits.len() == 3 && next.is_some_and(|c| !c.is_ascii_alphanumeric()))
            .then(|| digits.parse().ok())
            .flatten()
    })
}

/// The upstream major version of a package in a dpkg status file.
pub fn dpkg_version(status: &str, package: &str) -> Option<u32> {
    let mut in_pkg = false;
    for line in status.lines() {
        if let Some(p) = line.strip_prefix("Package: ") {
            in_pkg = p.trim() == package;
        } else if in_pkg && let Some(v) = line.strip_prefix("Version: ") {
            let v = v.split_once(':').map_or(v, |(_, r)| r);
            let digits: String = v.chars().take_while(char::is_ascii_digit).collect();
            return digits.parse().ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_from_names_binaries_and_packages() {
        let v = from_lib_name("/usr/lib/systemd", "libsystemd-shared-253.7-1.fc38.so").unwrap();
        assert_eq!((v.number, v.text.as_str()), (253, "253.7-1.fc38"));
        assert_eq!(v.path, "/usr/lib/systemd/libsystemd-shared-253.7-1.fc38.so");
        assert_eq!(
            from_lib_name("/x", "libsystemd-shared-252.so").unwrap().number,
            252
        );
        assert!(from_lib_name("/x", "libsystemd-core-252.so").is_none());
        assert_eq!(version_in_binary("\0systemd 219\0running"), Some(219));
        assert_eq!(
            version_in_binary("systemd 2x systemd 1234 systemd 245."),
            Some(245)
        );
        let status = "Package: systemd-sysv\nVersion: 1\n\nPackage: systemd\nVersion: 252.39-1~deb12u1\n";
        assert_eq!(dpkg_version(status, "systemd"), Some(252));
        assert!(is_unit_name("a.slice") && !is_unit_name(".slice") && !is_unit_name("borg"));
    }
}
