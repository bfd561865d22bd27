//! Go build information from an ELF file, read without running it.
//!
//! The layout is the one `debug/buildinfo` reads (golang/go
//! `src/debug/buildinfo/buildinfo.go`): the `.go.buildinfo` section starts
//! with the 14-byte magic `"\xff Go buildinf:"`, a pointer size and a flags
//! byte in a 32-byte header. With `flags & 2` (Go ≥ 1.18) the Go version and
//! the module info follow as uvarint-length-prefixed strings. Older binaries
//! hold pointers instead; cgmig reports them as "before go1.18" without
//! following the pointers (documented in `docs/readiness.md`).
//!
//! Only the ELF header, the section header table, the section-name table and
//! the section itself are read, each bounded, so a 100 MB kubelet costs a
//! few kilobytes.

use super::io::Reader;

const MAGIC: &[u8] = b"\xff Go buildinf:";
/// Most bytes read from the section header table or the `.go.buildinfo` section.
const MAX_TABLE: u64 = 256 << 10;

/// What a Go binary says about how it was built.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GoBuild {
    /// `go1.22.5`, or `before go1.18` when the version is not inline.
    pub go_version: String,
    /// Main package path (`path` line).
    pub path: Option<String>,
    /// Main module and version (`mod` line).
    pub main: Option<(String, String)>,
    /// Dependencies with their versions (after `=>` replacement, the
    /// replaced version if it has one, else the required one).
    pub deps: Vec<(String, String)>,
    /// Build settings (`-ldflags`, `DefaultGODEBUG`, `GOOS`, ...).
    pub settings: Vec<(String, String)>,
}

impl GoBuild {
    /// The version of a dependency, if the binary links it.
    pub fn dep(&self, module: &str) -> Option<&str> {
        self.deps
            .iter()
            .find(|(m, _)| m == module)
            .map(|(_, v)| v.as_str())
    }

    /// A build setting's value.
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.settings
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of one `DefaultGODEBUG` key (`containermaxprocs`).
    pub fn godebug(&self, key: &str) -> Option<&str> {
        self.setting("DefaultGODEBUG")?
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }
}

/// Numbers read from an ELF header, with its class and byte order.
struct Elf {
    is64: bool,
    le: bool,
}

impl Elf {
    fn uint(&self, b: &[u8], off: usize, size: usize) -> Option<u64> {
        let s = b.get(off..off + size)?;
        let mut v: u64 = 0;
        for i in 0..size {
            let byte = if self.le { s[size - 1 - i] } else { s[i] };
            v = (v << 8) | byte as u64;
        }
        Some(v)
    }
    fn word(&self, b: &[u8], off32: usize, off64: usize) -> Option<u64> {
        if self.is64 {
            self.uint(b, off64, 8)
        } else {
            self.uint(b, off32, 4)
        }
    }
}

/// Whether the first bytes are an ELF header.
pub fn is_elf(head: &[u8]) -> bool {
    head.len() >= 52 && head.starts_with(b"\x7fELF")
}

/// Read the Go build info of an ELF file; `None` if it is not a Go binary
/// (or its section headers are stripped).
pub fn read_go_build(rd: &mut Reader<'_>, abs: &str, head: &[u8]) -> Option<GoBuild> {
    if !is_elf(head) {
        return None;
    }
    let elf = Elf {
        is64: head[4] == 2,
        le: head[5] == 1,
    };
    let shoff = elf.word(head, 0x20, 0x28)?;
    let (entsize, num, strndx) = if elf.is64 {
        (
            elf.uint(head, 0x3a, 2)?,
            elf.uint(head, 0x3c, 2)?,
            elf.uint(head, 0x3e, 2)?,
        )
    } else {
        (
            elf.uint(head, 0x2e, 2)?,
            elf.uint(head, 0x30, 2)?,
            elf.uint(head, 0x32, 2)?,
        )
    };
    if shoff == 0 || num == 0 || entsize < 40 || strndx >= num || entsize * num > MAX_TABLE {
        return None;
    }
    let table = rd.read_at(abs, shoff, entsize * num)?;
    // Section header fields: name (u32 at 0), offset and size.
    let section = |i: u64| -> Option<(u64, u64, u64)> {
        let base = (i * entsize) as usize;
        let name = elf.uint(&table, base, 4)?;
        let off = elf.word(&table, base + 0x10, base + 0x18)?;
        let size = elf.word(&table, base + 0x14, base + 0x20)?;
        Some((name, off, size))
    };
    let (_, str_off, str_size) = section(strndx)?;
    let names = rd.read_at(abs, str_off, str_size.min(MAX_TABLE))?;
    let wanted = b".go.buildinfo\0";
    let (_, off, size) = (0..num)
        .filter_map(section)
        .find(|(name, _, _)| names.get(*name as usize..).is_some_and(|n| n.starts_with(wanted)))?;
    let data = rd.read_at(abs, off, size.min(MAX_TABLE))?;
    parse_buildinfo(&data)
}

/// Decode the `.go.buildinfo` section contents.
pub fn parse_buildinfo(data: &[u8]) -> Option<GoBuild> {
    if data.len() < 32 || !data.starts_with(MAGIC) {
        return None;
    }
    let flags = data[15];
    if flags & 0x2 == 0 {
        return Some(GoBuild {
            go_version: "before go1.18".into(),
            ..Default::default()
        });
    }
    let mut rest = &data[32..];
    let version = read_string(&mut rest)?;
    let mut modinfo = read_string(&mut rest).unwrap_or_default();
    // Sentinels: 16 bytes each side when the text ends with a newline there.
    if modinfo.len() >= 33 && modinfo.as_bytes()[modinfo.len() - 17] == b'\n' {
        modinfo = modinfo
            .get(16..modinfo.len() - 16)
            .map(str::to_string)
            .unwrap_or_default();
    }
    let mut b = parse_modinfo(&modinfo);
    b.go_version = version;
    Some(b)
}

fn read_string(rest: &mut &[u8]) -> Option<String> {
    let mut len: u64 = 0;
    let mut shift = 0;
    let mut i = 0;
    loop {
        let byte = *rest.get(i)?;
        len |= ((byte & 0x7f) as u64) << shift;
        i += 1;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
    let end = i.checked_add(usize::try_from(len).ok()?)?;
    let s = rest.get(i..end)?;
    *rest = &rest[end..];
    Some(String::from_utf8_lossy(s).into_owned())
}

/// Parse the `path`/`mod`/`dep`/`=>`/`build` lines of Go's modinfo text.
pub fn parse_modinfo(text: &str) -> GoBuild {
    let mut b = GoBuild::default();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f.as_slice() {
            ["path", p, ..] => b.path = Some(p.to_string()),
            ["mod", m, v, ..] => b.main = Some((m.to_string(), v.to_string())),
            ["dep", m, v, ..] => b.deps.push((m.to_string(), v.to_string())),
            ["=>", _path, v, ..] if !v.is_empty() && *v != "(devel)" => {
                if let Some(last) = b.deps.last_mut() {
                    last.1 = v.to_string();
                }
            }
            ["build", kv] => {
                if let Some((k, v)) = kv.split_once('=') {
                    b.settings.push((k.to_string(), v.trim_matches('"').to_string()));
                }
            }
            _ => {}
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(version: &str, modinfo: &str) -> Vec<u8> {
        let mut d = MAGIC.to_vec();
        d.push(8);
        d.push(2);
        d.resize(32, 0);
        for s in [version, modinfo] {
            let mut n = s.len();
            while n >= 0x80 {
                d.push((n as u8 & 0x7f) | 0x80);
                n >>= 7;
            }
            d.push(n as u8);
            d.extend_from_slice(s.as_bytes());
        }
        d
    }

    #[test]
    fn inline_buildinfo_is_decoded_with_sentinels_stripped() {
        let sentinel = "0123456789abcdef";
        let body = "path\texample.com/svc\nmod\texample.com/svc\t(devel)\t\n\
                    dep\tgo.uber.org/automaxprocs\tv1.4.0\th1:x=\n\
                    build\tDefaultGODEBUG=containermaxprocs=0,updatemaxprocs=0\n";
        let modinfo = format!("{sentinel}{body}{sentinel}");
        assert!(modinfo.len() >= 128, "exercises a two-byte uvarint length");
        let b = parse_buildinfo(&section("go1.24.3", &modinfo)).unwrap();
        assert_eq!(b.go_version, "go1.24.3");
        assert_eq!(b.path.as_deref(), Some("example.com/svc"));
        assert_eq!(b.dep("go.uber.org/automaxprocs"), Some("v1.4.0"));
        assert_eq!(b.godebug("containermaxprocs"), Some("0"));
    }

    #[test]
    fn replace_lines_carry_the_replacement_version() {
        let b = parse_modinfo("dep\tgo.uber.org/automaxprocs\tv1.4.0\t\n=>\t/usr/share/gocode/src/x\t\t\n");
        assert_eq!(b.dep("go.uber.org/automaxprocs"), Some("v1.4.0"));
        let b = parse_modinfo("dep\tm\tv1.0.0\t\n=>\tm2\tv1.6.0\th1:y\n");
        assert_eq!(b.dep("m"), Some("v1.6.0"));
    }

    #[test]
    fn old_and_foreign_sections() {
        let mut old = section("", "");
        old[15] = 0;
        assert_eq!(parse_buildinfo(&old).unwrap().go_version, "before go1.18");
        assert_eq!(parse_buildinfo(b"not a go binary at all, no magic here."), None);
        // A length running past the end is rejected, not a panic.
        let mut bad = section("go1.22", "");
        bad[32] = 0xff;
        bad.truncate(34);
        assert_eq!(parse_buildinfo(&bad), None);
    }
}
