//! systemd's unit-file syntax, read the way systemd reads it
//! (`config_parse()` in `src/shared/conf-parser.c`, systemd.syntax(7)), so
//! that cgmig sees the same directives systemd does:
//!
//! * a line ends at `\n`, `\r\n` or `\r`; a UTF-8 byte-order mark at the
//!   start of the file is skipped;
//! * leading and trailing whitespace is stripped; an empty line, or one
//!   whose first character is `#` or `;`, is a comment;
//! * a line ending in an unescaped backslash continues on the next line: the
//!   backslash becomes a space and the next line is appended; comment lines
//!   inside a continuation are skipped (the continued line goes on after
//!   them); `\\` at the end is an escaped backslash, not a continuation;
//! * `[Name]` starts a section; a `[` line without a closing `]` is a fatal
//!   error (systemd refuses the whole file); an assignment before any
//!   section and a line without `=` are ignored (systemd warns);
//! * `Key=Value`: key and value are stripped of surrounding whitespace; the
//!   value is kept as written: quoting and `\` escapes are the directive's
//!   own business, and specifiers (`%i`, `%n`) are left as they are;
//! * a logical line longer than [`MAX_LINE`] (systemd's `LONG_LINE_MAX`,
//!   1 MiB) is a fatal error, as in systemd.
//!
//! One parser for every unit reader in cgmig: the readiness scan's legacy
//! directives and unit environments, and the owners' effective directives.

/// systemd's `LONG_LINE_MAX`: the longest logical line it reads.
pub const MAX_LINE: usize = 1 << 20;

/// Sections whose resource-control directives cgmig reads and writes.
pub const RESOURCE_SECTIONS: &[&str] = &["Service", "Slice", "Scope", "Socket", "Mount", "Swap"];

/// One assignment as systemd sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// 1-based line where the assignment starts (a continued assignment
    /// spans more lines).
    pub line: usize,
    /// The section it is in.
    pub section: String,
    /// The key, stripped.
    pub key: String,
    /// The value as systemd passes it to the directive's parser.
    pub value: String,
}

/// Lines systemd ignores with a warning (the unit still loads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    /// 1-based line.
    pub line: usize,
    /// Why (systemd's own wording where it has one).
    pub why: &'static str,
}

/// A unit file systemd refuses to load.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct SyntaxError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// A parsed unit file: its assignments in order and the lines ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitFile {
    /// Every assignment inside a section, in file order.
    pub directives: Vec<Directive>,
    /// Lines systemd skips with a warning.
    pub ignored: Vec<Ignored>,
}

/// Physical lines with their 1-based numbers, split at `\n`, `\r\n`, `\r`.
fn physical_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rest = Some(text);
    let mut n = 0;
    std::iter::from_fn(move || {
        let r = rest?;
        if r.is_empty() {
            rest = None;
            return None;
        }
        n += 1;
        match r.find(['\n', '\r']) {
            Some(i) => {
                let skip = if r[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = Some(&r[i + skip..]);
                Some((n, &r[..i]))
            }
            None => {
                rest = None;
                Some((n, r))
            }
        }
    })
}

/// Whether a (whitespace-stripped) line is a comment or empty.
fn is_comment(l: &str) -> bool {
    l.is_empty() || l.starts_with(['#', ';'])
}

/// Whether `s` ends in a backslash that is not itself escaped (systemd
/// scans the whole joined line for escapes, so `\\` pairs are skipped).
fn ends_continued(s: &str) -> bool {
    let mut escaped = false;
    for b in s.bytes() {
        escaped = if escaped { false } else { b == b'\\' };
    }
    escaped
}

/// Parse a unit file or drop-in with systemd's rules.
pub fn parse(text: &str) -> Result<UnitFile, SyntaxError> {
    let mut out = UnitFile::default();
    let mut section: Option<String> = None;
    let mut pending: Option<(usize, String)> = None;
    for (n, raw) in physical_lines(text) {
        // A comment line is skipped before continuations are looked at: it
        // never continues, and inside a continuation the continued line goes
        // on after it.
        if raw
            .trim_start_matches(|c: char| c.is_ascii_whitespace())
            .starts_with(['#', ';'])
        {
            continue;
        }
        let (start, joined) = match pending.take() {
            Some((start, mut acc)) => {
                acc.push_str(raw);
                (start, acc)
            }
            None => (n, raw.to_string()),
        };
        if joined.len() > MAX_LINE {
            return Err(SyntaxError {
                line: start,
                message: format!("line longer than {MAX_LINE} bytes"),
            });
        }
        if ends_continued(&joined) {
            let mut acc = joined;
            acc.pop();
            acc.push(' ');
            pending = Some((start, acc));
            continue;
        }
        line(&joined, start, &mut section, &mut out)?;
    }
    // A file ending in a continuation: systemd parses what it has.
    if let Some((start, acc)) = pending {
        line(&acc, start, &mut section, &mut out)?;
    }
    Ok(out)
}

/// One logical line.
fn line(l: &str, n: usize, section: &mut Option<String>, out: &mut UnitFile) -> Result<(), SyntaxError> {
    let l = l.trim_matches(|c: char| c.is_ascii_whitespace());
    if is_comment(l) {
        return Ok(());
    }
    if let Some(head) = l.strip_prefix('[') {
        let Some(name) = head.strip_suffix(']') else {
            return Err(SyntaxError {
                line: n,
                message: format!("invalid section header {l:?}"),
            });
        };
        *section = Some(name.to_string());
        return Ok(());
    }
    let Some(sec) = section.as_ref() else {
        out.ignored.push(Ignored {
            line: n,
            why: "assignment outside of a section",
        });
        return Ok(());
    };
    let Some((k, v)) = l.split_once('=') else {
        out.ignored.push(Ignored {
            line: n,
            why: "missing '='",
        });
        return Ok(());
    };
    out.directives.push(Directive {
        line: n,
        section: sec.clone(),
        key: k.trim_matches(|c: char| c.is_ascii_whitespace()).to_string(),
        value: v.trim_matches(|c: char| c.is_ascii_whitespace()).to_string(),
    });
    Ok(())
}

/// Parse an environment file (`EnvironmentFile=`): every non-comment line
/// is one assignment, with the same continuation rules; `(line, text)`.
pub fn env_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (n, raw) in physical_lines(text) {
        let (start, mut joined) = match pending.take() {
            Some((s, mut acc)) => {
                acc.push_str(raw);
                (s, acc)
            }
            None => (n, raw.to_string()),
        };
        if ends_continued(&joined) && joined.len() <= MAX_LINE {
            joined.pop();
            pending = Some((start, joined));
            continue;
        }
        let t = joined.trim();
        if !is_comment(t) {
            out.push((start, t.to_string()));
        }
    }
    if let Some((s, acc)) = pending {
        let t = acc.trim();
        if !is_comment(t) {
            out.push((s, t.to_string()));
        }
    }
    out
}

/// Whether a name is a valid unit name (`unit_name_is_valid()` of systemd:
/// `[A-Za-z0-9:_.\\@-]`, at most 255 bytes, one of the known type suffixes,
/// a non-empty prefix, at most one `@`).
pub fn is_valid_unit_name(name: &str) -> bool {
    const TYPES: &[&str] = &[
        "service",
        "socket",
        "target",
        "device",
        "mount",
        "automount",
        "swap",
        "timer",
        "path",
        "slice",
        "scope",
    ];
    if name.is_empty() || name.len() > 255 {
        return false;
    }
    let Some((prefix, ty)) = name.rsplit_once('.') else {
        return false;
    };
    if !TYPES.contains(&ty) || prefix.is_empty() || prefix.starts_with('@') {
        return false;
    }
    if name.matches('@').count() > 1 {
        return false;
    }
    name.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b":_.\\@-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(u: &UnitFile) -> Vec<(usize, &str, &str, &str)> {
        u.directives
            .iter()
            .map(|d| (d.line, d.section.as_str(), d.key.as_str(), d.value.as_str()))
            .collect()
    }

    #[test]
    fn continuation_joins_with_a_space_and_comments_inside_are_skipped() {
        let u = parse("[Service]\nMemoryLimit=1G \\\nCPUShares=512\nExecStart=/bin/a \\\n# note\n  -x\n")
            .unwrap();
        assert_eq!(
            kv(&u),
            vec![
                (2, "Service", "MemoryLimit", "1G  CPUShares=512"),
                (4, "Service", "ExecStart", "/bin/a    -x"),
            ]
        );
    }

    #[test]
    fn escaped_backslash_is_not_a_continuation() {
        let u = parse("[Service]\nExecStart=/bin/echo a\\\\\nCPUShares=5\n").unwrap();
        assert_eq!(kv(&u)[0].3, "/bin/echo a\\\\");
        assert_eq!(kv(&u)[1].2, "CPUShares");
    }

    #[test]
    fn line_endings_bom_comments_and_ignored_lines() {
        let u = parse("\u{feff}Loose=1\r\n[Service]\r; c\r\n# d\rbogus\nCPUShares = 7 \n").unwrap();
        assert_eq!(kv(&u), vec![(6, "Service", "CPUShares", "7")]);
        assert_eq!(u.ignored.iter().map(|i| i.line).collect::<Vec<_>>(), vec![1, 5]);
    }

    #[test]
    fn specifiers_and_quotes_stay_as_written() {
        let u = parse("[Service]\nEnvironment=\"A=%i b\" C='%n'\n").unwrap();
        assert_eq!(kv(&u)[0].3, "\"A=%i b\" C='%n'");
    }

    #[test]
    fn bad_section_header_and_overlong_line_are_fatal() {
        assert_eq!(parse("[Service\nA=1\n").unwrap_err().line, 1);
        let long = format!("[Service]\nA={}\n", "x".repeat(MAX_LINE));
        assert_eq!(parse(&long).unwrap_err().line, 2);
    }

    #[test]
    fn unit_names() {
        for ok in [
            "a.service",
            "getty@tty1.service",
            "getty@.service",
            "x-y_z:1.slice",
            "a\\x2d.mount",
        ] {
            assert!(is_valid_unit_name(ok), "{ok}");
        }
        for bad in [
            "",
            "a",
            ".service",
            "../x.service",
            "a/b.service",
            "a.conf",
            "a b.service",
            "a@b@c.service",
        ] {
            assert!(!is_valid_unit_name(bad), "{bad}");
        }
    }
}
