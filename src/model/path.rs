//! Cgroup path text: how names that are not UTF-8 are shown and stored.
//!
//! Cgroup names are arbitrary bytes except `/` and NUL. The model stores
//! paths as `String` so snapshots stay readable JSON/YAML; bytes that are not
//! valid UTF-8 are written as `\xNN` (the form systemd and the kernel's own
//! escaping use), so every name maps to one string and the mapping is the same
//! wherever a path is read (directory walk or `/proc/PID/cgroup`).

/// Decode bytes to a path string, escaping invalid UTF-8 as `\xNN`.
pub fn from_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(from_bytes(b"ok"), "ok");
        assert_eq!(from_bytes(b"a\xffb"), "a\\xffb");
        assert_eq!(unescape_octal("/mnt/my\\040cgroup"), "/mnt/my cgroup");
        assert_eq!(unescape_octal("a\\134b"), "a\\b");
        assert_eq!(unescape_octal("trailing\\04"), "trailing\\04");
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
        assert_eq!(parent("/a/b"), Some("/a"));
        assert_eq!(parent("/a"), Some("/"));
        assert_eq!(parent("/"), None);
    }
}
