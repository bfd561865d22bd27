//! Distribution and systemd version of the scanned root.
//!
//! Neither is cgroup state, but a fleet report groups hosts by them: the
//! distribution decides which boot config a rollout edits, the systemd version
//! decides how systemd behaves on v2 (and whether it still supports v1).
//! Both are read from files so a captured tree (`--root`) answers as the live
//! host would; nothing is executed.

use crate::host::Root;
use crate::model::OsInfo;

/// Directories where distributions install `libsystemd-shared-N.so`.
const SYSTEMD_LIB_DIRS: &[&str] = &[
    "/usr/lib/systemd",
    "/lib/systemd",
    "/usr/lib64/systemd",
    "/usr/lib/x86_64-linux-gnu/systemd",
    "/usr/lib/aarch64-linux-gnu/systemd",
];

/// The systemd binary, searched for its version string when no shared
/// library exists (systemd < 231, e.g. CentOS 7's 219).
const SYSTEMD_BINARIES: &[&str] = &["/usr/lib/systemd/systemd", "/lib/systemd/systemd"];

/// Read what can be read; a missing or unreadable file leaves the field empty.
pub(crate) fn read_os(root: &Root) -> OsInfo {
    OsInfo {
        distribution: distribution(root),
        systemd: systemd_version(root),
    }
}

/// `/etc/machine-id` (32 hex digits), read quietly: a host without one
/// (a container image, an old capture) simply has no machine id.
pub(crate) fn machine_id(root: &Root) -> Option<String> {
    let text = root.read_text_lines("/etc/machine-id").ok().flatten()?;
    let id = text.trim();
    (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_string())
}

fn distribution(root: &Root) -> Option<String> {
    let text = ["/etc/os-release", "/usr/lib/os-release"]
        .iter()
        .find_map(|p| root.read_text_lines(p).ok().flatten())?;
    parse_os_release(&text)
}

/// `ID VERSION_ID` (`centos 7`), or `PRETTY_NAME` when those are missing.
pub(crate) fn parse_os_release(text: &str) -> Option<String> {
    let field = |key: &str| {
        text.lines().find_map(|l| {
            let v = l.trim().strip_prefix(key)?.strip_prefix('=')?;
            let v = v.trim().trim_matches('"').trim_matches('\'').trim();
            (!v.is_empty()).then(|| v.to_string())
        })
    };
    match (field("ID"), field("VERSION_ID")) {
        (Some(id), Some(ver)) => Some(format!("{id} {ver}")),
        (Some(id), None) => field("PRETTY_NAME").or(Some(id)),
        (None, _) => field("PRETTY_NAME"),
    }
}

fn systemd_version(root: &Root) -> Option<String> {
    // Listed and read through the root's containment primitive: a symlinked
    // directory or binary in a captured root never leads outside it.
    for dir in SYSTEMD_LIB_DIRS {
        let Ok(Some(names)) = root.list_names(dir) else {
            continue;
        };
        if let Some(v) = names.iter().find_map(|n| version_from_lib_name(n)) {
            return Some(v);
        }
    }
    SYSTEMD_BINARIES
        .iter()
        .find_map(|b| root.read_bounded(std::path::Path::new(b), 64 << 20).ok())
        .and_then(|bin| version_in_binary(&String::from_utf8_lossy(&bin)))
}

/// `libsystemd-shared-252.so` → `252` (also `-252.1-1.fc38.so`).
pub(crate) fn version_from_lib_name(name: &str) -> Option<String> {
    let rest = name.strip_prefix("libsystemd-shared-")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    (!digits.is_empty()).then_some(digits)
}

/// The first `systemd NNN` followed by a non-digit in the binary's strings.
fn version_in_binary(text: &str) -> Option<String> {
    text.match_indices("systemd ").find_map(|(i, m)| {
        let rest = &text[i + m.len()..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let next = rest[digits.len()..].chars().next();
        (digits.len() == 3 && next.is_some_and(|c| !c.is_ascii_alphanumeric())).then_some(digits)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_id_and_version() {
        let t =
            "NAME=\"CentOS Linux\"\nVERSION_ID=\"7\"\nID=\"centos\"\nPRETTY_NAME=\"CentOS Linux 7 (Core)\"\n";
        assert_eq!(parse_os_release(t).as_deref(), Some("centos 7"));
        assert_eq!(
            parse_os_release("ID=arch\nPRETTY_NAME=\"Arch Linux\"\n").as_deref(),
            Some("Arch Linux")
        );
        assert_eq!(parse_os_release("IDLIKE=x\n"), None);
    }

    #[test]
    fn systemd_versions() {
        assert_eq!(
            version_from_lib_name("libsystemd-shared-252.so").as_deref(),
            Some("252")
        );
        assert_eq!(
            version_from_lib_name("libsystemd-shared-253.7-1.fc38.so").as_deref(),
            Some("253")
        );
        assert_eq!(version_from_lib_name("libsystemd-core-252.so"), None);
        assert_eq!(
            version_in_binary("\0systemd 219\0running").as_deref(),
            Some("219")
        );
        assert_eq!(
            version_in_binary("systemd 2x systemd 1234 systemd 245."),
            Some("245".into())
        );
    }
}
