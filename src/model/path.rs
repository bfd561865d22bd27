//! Cgroup path text: how names that are not UTF-8 are shown and stored.
//!
//! Cgroup names are arbitrary bytes except `/` and NUL. The model stores
//! paths as `String` so snapshots stay readable JSON/YAML; bytes that are not
//! valid UTF-8 are written as `\xNN` (the form systemd and the kernel's own
//! escaping use), so every name maps to one string and the mapping is the same
//! wherever a path is read (directory walk or `/proc/PID/cgroup`).
//!
//! Control characters (C0, DEL and C1) are written `\xNN` as well, so a
//! name can never carry a terminal escape or a line break into any output;
//! this is the one boundary where names enter cgmig, and every renderer
//! downstream can trust them. Setting values keep `\n` and `\t`
//! ([`value_from_bytes`]): multi-line files such as `devices.list` are data.
//!
//! The escape is reversible ([`to_bytes`]): a backslash that the decoder
//! could misread is itself written `\\` — one followed by another backslash,
//! by `x` and two hex digits of an escaped byte, or by an escape. Every other
//! backslash stays as it is, so systemd's own `\x2d` in unit names
//! (`machine-qemu\x2d1.scope`; printable ASCII is never escaped) reads the
//! same as on the host, and the name `a\xff` (five bytes) and the name `a` +
//! byte 0xff can never meet in one string.

/// Whether a byte is written `\xNN`: control characters and bytes >= 0x80
/// (which only appear escaped when they are not valid UTF-8 or are C1).
fn escapable(v: u8) -> bool {
    v < 0x20 || v == 0x7f || v >= 0x80
}

/// The byte of an `xNN` escape at the start of `rest` (after a backslash).
fn escaped_byte(rest: &[u8]) -> Option<u8> {
    if rest.first() != Some(&b'x') || rest.len() < 3 {
        return None;
    }
    let h = std::str::from_utf8(&rest[1..3]).ok()?;
    u8::from_str_radix(h, 16).ok().filter(|v| escapable(*v))
}

/// Whether a character is written escaped (`keep` lists control characters kept raw).
fn char_escaped(c: char, keep: &[char]) -> bool {
    (c.is_control()) && !keep.contains(&c)
}

fn encode(bytes: &[u8], keep: &[char]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        let valid = chunk.valid();
        let invalid_follows = !chunk.invalid().is_empty();
        let mut it = valid.char_indices().peekable();
        while let Some((i, c)) = it.next() {
            if c == '\\' {
                let rest = &valid.as_bytes()[i + 1..];
                let next = it.peek().map(|(_, n)| *n);
                let ambiguous = match next {
                    None => invalid_follows,
                    Some(n) => n == '\\' || char_escaped(n, keep) || escaped_byte(rest).is_some(),
                };
                out.push_str(if ambiguous { "\\\\" } else { "\\" });
            } else if char_escaped(c, keep) {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("\\x{b:02x}"));
                }
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// Decode a name (cgroup name or path, comm, argument, hostname) to a
/// string: invalid UTF-8 and control characters as `\xNN`, an ambiguous
/// backslash as `\\`.
pub fn from_bytes(bytes: &[u8]) -> String {
    encode(bytes, &[])
}

/// Decode a file's text (a setting value, a kernel table before it is split
/// into lines): as [`from_bytes`], but `\n` and `\t` stay as they are.
pub fn value_from_bytes(bytes: &[u8]) -> String {
    encode(bytes, &['\n', '\t'])
}

/// The raw bytes of a string written by [`from_bytes`] or
/// [`value_from_bytes`] (their inverse): `\\` is a backslash, `\xNN` for an
/// escaped byte is that byte, anything else is itself.
pub fn to_bytes(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            if b.get(i + 1) == Some(&b'\\') {
                out.push(b'\\');
                i += 2;
                continue;
            }
            if let Some(v) = escaped_byte(&b[i + 1..]) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// Whether a string holds a control character that [`from_bytes`] would
/// have escaped (`keep`: allowed ones, `\n` for values). Snapshots loaded
/// from a file are checked with this, as they never passed the boundary.
pub fn has_raw_control(s: &str, keep: &[char]) -> bool {
    s.chars().any(|c| char_escaped(c, keep))
}

/// A path string as an OS path (raw bytes), for opening it.
pub fn to_os(s: &str) -> std::ffi::OsString {
    use std::os::unix::ffi::OsStringExt;
    std::ffi::OsString::from_vec(to_bytes(s))
}

/// Whether a path string carries escaped non-UTF-8 bytes.
pub fn has_escapes(s: &str) -> bool {
    s.contains("\\x")
}

/// Join a cgroup path and a child name (`/` + `a` = `/a`, `/a` + `b` = `/a/b`).
pub fn join(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// Parent of a cgroup path (`None` for `/`).
pub fn parent(path: &str) -> Option<&str> {
    if path == "/" {
        return None;
    }
    match path.rfind('/') {
        Some(0) => Some("/"),
        Some(i) => Some(&path[..i]),
        None => None,
    }
}

/// Decode the octal escapes (`\040`, `\011`, `\012`, `\134`) the kernel uses
/// for mountinfo fields. procfs-core leaves them in place.
pub fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let v = (b[i + 1] - b'0') as u32 * 64 + (b[i + 2] - b'0') as u32 * 8 + (b[i + 3] - b'0') as u32;
            if v <= 255 {
                out.push(v as u8);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    from_bytes(&out)
}

/// Why a string is not an absolute, normalized cgroup path (see [`cgroup_names`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadPath {
    /// It does not start with `/`: joined to a target it would land beside it.
    #[error("not absolute (a cgroup path starts with /)")]
    NotAbsolute,
    /// `//`, or a trailing `/`.
    #[error("has an empty name (// or a trailing /)")]
    EmptyName,
    /// `.` or `..`: a path that climbs is never a cgroup.
    #[error("has a . or .. component")]
    DotName,
    /// An escaped NUL (`\x00`): no kernel name holds one.
    #[error("has a NUL byte in a name")]
    Nul,
}

/// The raw names (bytes, escapes decoded) of an absolute, normalized cgroup
/// path: `/` has none, `/a/b` has `a` and `b`.
///
/// Why one function: every path `apply` touches, and every path a plan or
/// journal names, goes through it before anything is resolved, so a name
/// can never climb (`..`), land beside its target (no leading `/`) or hide a
/// separator. The escape form cannot make a `/` (only control and non-UTF-8
/// bytes are escaped), and a NUL is refused here.
pub fn cgroup_names(path: &str) -> Result<Vec<Vec<u8>>, BadPath> {
    let rest = path.strip_prefix('/').ok_or(BadPath::NotAbsolute)?;
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    rest.split('/')
        .map(|name| {
            if name.is_empty() {
                return Err(BadPath::EmptyName);
            }
            let raw = to_bytes(name);
            if raw == b"." || raw == b".." {
                return Err(BadPath::DotName);
            }
            if raw.contains(&0) || raw.contains(&b'/') {
                return Err(BadPath::Nul);
            }
            Ok(raw)
        })
        .collect()
}

/// Whether `path` is `anc` or below it (`/a/b` is within `/a` and `/`; `/ab`
/// is not within `/a`). Both are normalized cgroup paths.
pub fn is_within(path: &str, anc: &str) -> bool {
    path == anc || anc == "/" || path.strip_prefix(anc).is_some_and(|r| r.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(from_bytes(b"ok"), "ok");
        assert_eq!(from_bytes(b"a\xffb"), "a\\xffb");
        // A literal backslash that could be misread is escaped, so the two never collide.
        assert_eq!(from_bytes(b"a\\xffb"), "a\\\\xffb");
        assert_eq!(to_bytes("a\\xffb"), b"a\xffb");
        assert_eq!(to_bytes("a\\\\xffb"), b"a\\xffb");
        // systemd's own escapes stay as the host shows them.
        assert_eq!(
            from_bytes(b"machine-qemu\\x2d1.scope"),
            "machine-qemu\\x2d1.scope"
        );
        assert_eq!(from_bytes(b"a\\\xff"), "a\\\\\\xff");
        // Control characters cannot reach a terminal or break a line.
        assert_eq!(from_bytes(b"evil\x1b[2J\nfake"), "evil\\x1b[2J\\x0afake");
        assert_eq!(
            value_from_bytes(b"c 1:3 rw\nc 1:5 rw\x07"),
            "c 1:3 rw\nc 1:5 rw\\x07"
        );
        assert_eq!(unescape_octal("/mnt/my\\040cgroup"), "/mnt/my cgroup");
        assert_eq!(unescape_octal("a\\134b"), "a\\b");
        assert_eq!(unescape_octal("trailing\\04"), "trailing\\04");
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
        assert_eq!(parent("/a/b"), Some("/a"));
        assert_eq!(parent("/a"), Some("/"));
        assert_eq!(parent("/"), None);
    }

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn escape_is_reversible(b in proptest::collection::vec(any::<u8>(), 0..24)) {
            prop_assert_eq!(to_bytes(&from_bytes(&b)), b);
        }

        #[test]
        fn value_escape_is_reversible(b in proptest::collection::vec(any::<u8>(), 0..24)) {
            prop_assert_eq!(to_bytes(&value_from_bytes(&b)), b.clone());
            prop_assert!(!has_raw_control(&from_bytes(&b), &[]));
        }

        #[test]
        fn escape_is_reversible_around_backslashes(
            b in proptest::collection::vec(proptest::sample::select(vec![b'\\', b'x', b'f', b'2', b'1', 0xff, 0xc2, 0x9b, b'\n', 0x1b, b'a']), 0..16)
        ) {
            prop_assert_eq!(to_bytes(&from_bytes(&b)), b);
        }
    }

    #[test]
    fn cgroup_names_refuse_what_could_climb_or_land_beside() {
        assert_eq!(cgroup_names("/").unwrap(), Vec::<Vec<u8>>::new());
        assert_eq!(cgroup_names("/a/b").unwrap(), vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(cgroup_names(r"/bad\xffx").unwrap(), vec![b"bad\xffx".to_vec()]);
        assert_eq!(cgroup_names("a"), Err(BadPath::NotAbsolute));
        assert_eq!(cgroup_names(""), Err(BadPath::NotAbsolute));
        assert_eq!(cgroup_names("/a//b"), Err(BadPath::EmptyName));
        assert_eq!(cgroup_names("/a/"), Err(BadPath::EmptyName));
        assert_eq!(cgroup_names("/a/../../etc"), Err(BadPath::DotName));
        assert_eq!(cgroup_names("/."), Err(BadPath::DotName));
        assert_eq!(cgroup_names(r"/a\x00"), Err(BadPath::Nul));
        // `\x2f` is not an escape cgmig writes: it stays four bytes, no separator.
        assert_eq!(cgroup_names(r"/a\x2f..").unwrap(), vec![br"a\x2f..".to_vec()]);
        assert!(is_within("/a/b", "/a") && is_within("/a", "/a") && is_within("/x", "/"));
        assert!(!is_within("/ab", "/a") && !is_within("/", "/a"));
    }
}
