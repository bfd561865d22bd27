//! How the CLI speaks when something goes wrong: one cause per line, each
//! said once, and the up-front note for a non-root scan.

use std::fmt::Write;

/// The error text for stderr: `cgmig: error: ` and the outermost message,
/// then each deeper cause on its own line, skipping a cause whose text the
/// line above already contains (anyhow contexts often repeat their source).
pub fn error_text(e: &anyhow::Error) -> String {
    let mut out = String::new();
    let mut shown: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        for line in text.lines().map(str::trim_end).filter(|l| !l.trim().is_empty()) {
            let line = crate::report::escape::line(line).into_owned();
            if shown.iter().any(|s| s.contains(line.trim())) {
                continue;
            }
            if shown.is_empty() {
                let _ = writeln!(out, "cgmig: error: {line}");
            } else {
                let _ = writeln!(out, "  {line}");
            }
            shown.push(line);
        }
    }
    out
}

/// Say up front that a live scan without root sees only part of the host
/// (the snapshot also carries an `unreadable:` diagnostic, so the audit
/// verdict is incomplete).
pub fn warn_non_root() {
    let uid = nix::unistd::geteuid();
    if !uid.is_root() {
        say!(
            "cgmig: note: running as uid {uid}, not root: other users' processes and some cgroup files \
             cannot be read, so results are incomplete"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_are_said_once_each_on_a_line() {
        let io = std::io::Error::other("disk on fire");
        let e = anyhow::Error::new(io).context("cannot write out.json: disk on fire");
        let e = e.context("cannot write out.json");
        let t = error_text(&e);
        assert_eq!(t.matches("disk on fire").count(), 1, "{t}");
        assert!(t.starts_with("cgmig: error: cannot write out.json\n"), "{t}");
        let e = anyhow::anyhow!("line one\nline\x1b two");
        assert_eq!(error_text(&e), "cgmig: error: line one\n  line\\x1b two\n");
    }
}
