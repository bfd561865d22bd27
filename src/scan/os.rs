//! Distribution and systemd version of the scanned root.
//!
//! Neither is cgroup state, but a fleet report groups hosts by them: the
//! distribution decides which boot config a rollout edits, the systemd version
//! decides how systemd behaves on v2 (and whether it still supports v1).
//! Both are read from files so a captured tree (`--root`) answers as the live
//! host would; nothing is executed.

use crate::host::Root;
use crate::model::OsInfo;

/// Read what can be read; a missing or unreadable file leaves the field empty.
/// The systemd version is the one the scan read (`host::systemd::version`).
pub(crate) fn read_os(root: &Root, systemd: Option<&crate::host::systemd::Version>) -> OsInfo {
    OsInfo {
        distribution: distribution(root),
        systemd: systemd.map(|v| v.number.to_string()),
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
}
