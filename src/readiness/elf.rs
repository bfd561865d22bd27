//! Go build information from an ELF file, read without running it.
//!
//! The layout is the one `debug/buildinfo` reads (golang/go
//! `src/debug/buildinfo/buildinfo.go`): the `.go.buildinfo` section starts
//! with the 14-byte magic `"\xff Go buildinf:"`, a pointer size and a flags
//! byte in a 32-byte header. With `flags & 2` (Go ≥ 1.18) the Go version and
//! the module info follow as uvarint-length-prefixed strings. Go 1.13–1.17
//! hold two pointers instead (at offset 16, `ptrSize` each, byte order from
//! `flags & 1`) to the `runtime.buildVersion` and `runtime.modinfo` string
//! headers (data pointer, length); both are followed through the `PT_LOAD`
//! program headers' address → file offset mapping, as `debug/buildinfo`'s
//! `ReadData` does. A binary without section headers is found the same way
//! Go finds it: the magic at a 16-byte boundary of the first writable,
//! non-executable `PT_LOAD` segment.
//!
//! Only the ELF header, the program and section header tables, the
//! section-name table, the section itself and the two strings are read, each
//! bounded, so a 100 MB kubelet costs a few kilobytes. Every offset and length
//! comes from the file and is checked, never trusted: a hostile file yields
//! `None`, never a panic.

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

/// Numbers read from an ELF header, with its class and byte order, and the
/// loadable segments that map virtual addresses to file offsets.
struct Elf {
    is64: bool,
    le: bool,
    /// `PT_LOAD` segments: (flags, file offset, virtual address, file size).
    loads: Vec<(u64, u64, u64, u64)>,
}

/// `PT_LOAD` program header type; `PF_X`, `PF_W` segment flags.
const PT_LOAD: u64 = 1;
const PF_X: u64 = 1;
const PF_W: u64 = 2;
/// Go's own bound on a string it follows from the build info (`debug/buildinfo`).
const MAX_STRING: u64 = 1 << 20;
/// Longest Go version string taken as one (`go1.22.5 X:boringcrypto`).
const MAX_VERSION: usize = 128;

fn uint_at(b: &[u8], off: usize, size: usize, le: bool) -> Option<u64> {
    let s = b.get(off..off.checked_add(size)?)?;
    let mut v: u64 = 0;
    for i in 0..size {
        let byte = if le { s[size - 1 - i] } else { s[i] };
        v = (v << 8) | byte as u64;
    }
    Some(v)
}

impl Elf {
    fn uint(&self, b: &[u8], off: usize, size: usize) -> Option<u64> {
        uint_at(b, off, size, self.le)
    }
    fn word(&self, b: &[u8], off32: usize, off64: usize) -> Option<u64> {
        if self.is64 {
            self.uint(b, off64, 8)
        } else {
            self.uint(b, off32, 4)
        }
    }

    /// The file range holding `len` bytes at virtual address `addr`, cut at
    /// the end of its segment (`debug/elf` `ReadData` semantics).
    fn file_range(&self, addr: u64, len: u64) -> Option<(u64, u64)> {
        self.loads.iter().find_map(|&(_, off, vaddr, filesz)| {
            let end = vaddr.checked_add(filesz)?;
            (vaddr <= addr && addr < end).then(|| (off + (addr - vaddr), len.min(end - addr)))
        })
    }
}

/// Whether the first bytes are an ELF header.
pub fn is_elf(head: &[u8]) -> bool {
    head.len() >= 52 && head.starts_with(b"\x7fELF")
}

/// The ELF header's class, byte order and `PT_LOAD` segments.
fn elf_header(rd: &mut Reader<'_>, abs: &str, head: &[u8]) -> Option<Elf> {
    let mut elf = Elf {
        is64: head[4] == 2,
        le: head[5] == 1,
        loads: Vec::new(),
    };
    let phoff = elf.word(head, 0x1c, 0x20)?;
    let (phentsize, phnum) = if elf.is64 {
        (elf.uint(head, 0x36, 2)?, elf.uint(head, 0x38, 2)?)
    } else {
        (elf.uint(head, 0x2a, 2)?, elf.uint(head, 0x2c, 2)?)
    };
    let min_entry = if elf.is64 { 56 } else { 32 };
    if phoff == 0 || phnum == 0 || phentsize < min_entry || phentsize * phnum > MAX_TABLE {
        return Some(elf);
    }
    let table = rd.read_at(abs, phoff, phentsize * phnum)?;
    for i in 0..phnum as usize {
        let b = i * phentsize as usize;
        let seg = if elf.is64 {
            (
                elf.uint(&table, b, 4),
                elf.uint(&table, b + 4, 4),
                elf.uint(&table, b + 8, 8),
                elf.uint(&table, b + 0x10, 8),
                elf.uint(&table, b + 0x20, 8),
            )
        } else {
            (
                elf.uint(&table, b, 4),
                elf.uint(&table, b + 0x18, 4),
                elf.uint(&table, b + 4, 4),
                elf.uint(&table, b + 8, 4),
                elf.uint(&table, b + 0x10, 4),
            )
        };
        if let (Some(PT_LOAD), Some(flags), Some(off), Some(vaddr), Some(filesz)) = seg {
            elf.loads.push((flags, off, vaddr, filesz));
        }
    }
    Some(elf)
}

/// The named sections' (offset, size), from the section table.
fn find_sections(
    rd: &mut Reader<'_>,
    abs: &str,
    head: &[u8],
    elf: &Elf,
    wanted: &[&str],
) -> Vec<Option<(u64, u64)>> {
    let mut found = vec![None; wanted.len()];
    let header = || -> Option<(u64, u64, u64, u64)> {
        let shoff = elf.word(head, 0x20, 0x28)?;
        Some(if elf.is64 {
            (
                shoff,
                elf.uint(head, 0x3a, 2)?,
                elf.uint(head, 0x3c, 2)?,
                elf.uint(head, 0x3e, 2)?,
            )
        } else {
            (
                shoff,
                elf.uint(head, 0x2e, 2)?,
                elf.uint(head, 0x30, 2)?,
                elf.uint(head, 0x32, 2)?,
            )
        })
    };
    let Some((shoff, entsize, num, strndx)) = header() else {
        return found;
    };
    if shoff == 0 || num == 0 || entsize < 40 || strndx >= num || entsize * num > MAX_TABLE {
        return found;
    }
    let Some(table) = rd.read_at(abs, shoff, entsize * num) else {
        return found;
    };
    // Section header fields: name (u32 at 0), offset and size.
    let section = |i: u64| -> Option<(u64, u64, u64)> {
        let base = (i * entsize) as usize;
        let name = elf.uint(&table, base, 4)?;
        let off = elf.word(&table, base + 0x10, base + 0x18)?;
        let size = elf.word(&table, base + 0x14, base + 0x20)?;
        Some((name, off, size))
    };
    let Some((_, str_off, str_size)) = section(strndx) else {
        return found;
    };
    let Some(names) = rd.read_at(abs, str_off, str_size.min(MAX_TABLE)) else {
        return found;
    };
    for (name, off, size) in (0..num).filter_map(section) {
        let Some(n) = names.get(name as usize..) else {
            continue;
        };
        for (slot, w) in found.iter_mut().zip(wanted) {
            if slot.is_none() && n.starts_with(w.as_bytes()) && n.get(w.len()) == Some(&0) {
                *slot = Some((off, size));
            }
        }
    }
    found
}

/// `rustc version 1.63.0 (4b91a6ea7 2022-08-08)` in a `.comment` section → `1.63.0`.
pub fn rustc_version(comment: &[u8]) -> Option<String> {
    comment.split(|&b| b == 0).find_map(|s| {
        let s = std::str::from_utf8(s).ok()?;
        let v = s.strip_prefix("rustc version ")?.split_whitespace().next()?;
        v.starts_with(|c: char| c.is_ascii_digit()).then(|| v.to_string())
    })
}

/// What an ELF executable says about its toolchain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Binary {
    /// Go build info, for a Go binary.
    pub go: Option<GoBuild>,
    /// The rustc version in `.comment`, for a Rust binary that kept it.
    pub rustc: Option<String>,
}

/// Read a binary's Go build info and rustc version, reading the section
/// table once; `None` if it is not ELF.
pub fn read_binary(rd: &mut Reader<'_>, abs: &str, head: &[u8]) -> Option<Binary> {
    if !is_elf(head) {
        return None;
    }
    let elf = elf_header(rd, abs, head)?;
    let [go, comment] = find_sections(rd, abs, head, &elf, &[".go.buildinfo", ".comment"])[..] else {
        return None;
    };
    let data = match go {
        Some((off, size)) => rd.read_at(abs, off, size.min(MAX_TABLE)),
        // The segment search is for binaries stripped of their section
        // table only: C binaries with sections cost no data-segment read.
        None if comment.is_none() && !has_sections(head, &elf) => segment_data(rd, abs, &elf),
        None => None,
    };
    let go = data.and_then(|d| {
        parse_buildinfo_with(&d, |addr, len| {
            let (off, n) = elf.file_range(addr, len)?;
            rd.read_at(abs, off, n)
        })
    });
    let rustc = match (&go, comment) {
        (None, Some((off, size))) => rd
            .read_at(abs, off, size.min(4096))
            .and_then(|c| rustc_version(&c)),
        _ => None,
    };
    Some(Binary { go, rustc })
}

fn has_sections(head: &[u8], elf: &Elf) -> bool {
    elf.word(head, 0x20, 0x28).is_some_and(|o| o != 0)
        && elf
            .uint(head, if elf.is64 { 0x3c } else { 0x30 }, 2)
            .is_some_and(|n| n != 0)
}

/// Without section headers: the magic at a 16-byte boundary in the first
/// writable, non-executable `PT_LOAD` segment (Go's `DataStart` fallback),
/// searched in its first [`MAX_TABLE`] bytes.
fn segment_data(rd: &mut Reader<'_>, abs: &str, elf: &Elf) -> Option<Vec<u8>> {
    let &(_, off, _, filesz) = elf.loads.iter().find(|(f, ..)| f & (PF_X | PF_W) == PF_W)?;
    let data = rd.read_at(abs, off, filesz.min(MAX_TABLE))?;
    let at = (0..data.len())
        .step_by(16)
        .find(|&i| data[i..].starts_with(MAGIC))?;
    Some(data[at..].to_vec())
}

/// Read the Go build info of an ELF file; `None` if it is not a Go binary.
pub fn read_go_build(rd: &mut Reader<'_>, abs: &str, head: &[u8]) -> Option<GoBuild> {
    read_binary(rd, abs, head)?.go
}

/// Decode the `.go.buildinfo` section contents. Pre-1.18 sections (pointers,
/// not inline strings) decode to `before go1.18`: following the pointers
/// needs the file ([`parse_buildinfo_with`]).
pub fn parse_buildinfo(data: &[u8]) -> Option<GoBuild> {
    parse_buildinfo_with(data, |_, _| None)
}

/// Decode the section, reading `len` bytes at a virtual address through
/// `read_data` for the pre-1.18 pointer format.
pub fn parse_buildinfo_with(
    data: &[u8],
    mut read_data: impl FnMut(u64, u64) -> Option<Vec<u8>>,
) -> Option<GoBuild> {
    if data.len() < 32 || !data.starts_with(MAGIC) {
        return None;
    }
    let (ptr_size, flags) = (data[14] as usize, data[15]);
    let (version, modinfo) = if flags & 0x2 != 0 {
        let mut rest = &data[32..];
        let version = read_string(&mut rest)?;
        (version, read_string(&mut rest).unwrap_or_default())
    } else {
        let le = flags & 0x1 == 0;
        if ptr_size != 4 && ptr_size != 8 {
            return None;
        }
        let mut deref = |at: usize| -> Option<String> {
            let hdr_addr = uint_at(data, at, ptr_size, le)?;
            let hdr = read_data(hdr_addr, 2 * ptr_size as u64)?;
            let (ptr, len) = (
                uint_at(&hdr, 0, ptr_size, le)?,
                uint_at(&hdr, ptr_size, ptr_size, le)?,
            );
            if len > MAX_STRING {
                return None;
            }
            let s = read_data(ptr, len)?;
            (s.len() as u64 == len).then(|| String::from_utf8_lossy(&s).into_owned())
        };
        match deref(16) {
            Some(v) if !v.is_empty() => (v, deref(16 + ptr_size).unwrap_or_default()),
            _ => ("before go1.18".to_string(), String::new()),
        }
    };
    // Bounded and escaped at this boundary: a Go version is a few dozen
    // bytes (`go1.22.5 X:boringcrypto`); a longer one is forged, and its
    // text (a megabyte, escape sequences) must not reach a report.
    let version = if version.len() > MAX_VERSION {
        format!("invalid ({}-byte version string)", version.len())
    } else {
        crate::model::path::from_bytes(version.as_bytes())
    };
    let mut modinfo = modinfo;
    // Sentinels: 16 bytes each side when the text ends with a newline there.
    if modinfo.len() >= 33 && modinfo.as_bytes()[modinfo.len() - 17] == b'\n' {
        modinfo = modinfo
            .get(16..modinfo.len() - 16)
            .map(str::to_string)
            .unwrap_or_default();
    }
    let mut b = parse_modinfo(&crate::model::path::value_from_bytes(modinfo.as_bytes()));
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
        // A megabyte version string with escape sequences is refused as a
        // version (bounded), and control characters never pass raw.
        let huge = format!("go1.22{}", "\x1b]0;x\x07".repeat(200_000));
        let b = parse_buildinfo(&section(&huge, "")).unwrap();
        assert_eq!(
            b.go_version,
            format!("invalid ({}-byte version string)", huge.len())
        );
        let b = parse_buildinfo(&section("go1.22\x1b[31m", "")).unwrap();
        assert_eq!(b.go_version, "go1.22\\x1b[31m");
    }

    /// A Go 1.13–1.17 style binary built by hand after `debug/buildinfo`:
    /// the section holds two pointers to string headers (data pointer,
    /// length), the strings live elsewhere in the one `PT_LOAD` segment
    /// (file offset 0 at virtual address 0x400000). With `sections` false the
    /// section table is absent and the magic is found in the writable segment.
    fn old_elf(version: &str, modinfo: &str, sections: bool) -> Vec<u8> {
        const BASE: u64 = 0x40_0000;
        let mut f = vec![0u8; 0x400];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 2; // 64-bit
        f[5] = 1; // little endian
        f[6] = 1;
        let put = |f: &mut Vec<u8>, at: usize, v: u64, n: usize| {
            f[at..at + n].copy_from_slice(&v.to_le_bytes()[..n]);
        };
        put(&mut f, 0x10, 2, 2); // ET_EXEC
        put(&mut f, 0x20, 0x40, 8); // e_phoff
        put(&mut f, 0x36, 56, 2); // e_phentsize
        put(&mut f, 0x38, 1, 2); // e_phnum
        // PT_LOAD, PF_R|PF_W, offset 0, vaddr BASE, filesz/memsz later.
        put(&mut f, 0x40, 1, 4);
        put(&mut f, 0x44, 6, 4);
        put(&mut f, 0x50, BASE, 8);
        // .go.buildinfo at 0x100: magic, ptrSize 8, flags 0, two pointers.
        f[0x100..0x10e].copy_from_slice(MAGIC);
        f[0x10e] = 8;
        put(&mut f, 0x110, BASE + 0x200, 8);
        put(&mut f, 0x118, BASE + 0x210, 8);
        // String headers at 0x200 and 0x210, strings from 0x400 on.
        let mut strings = Vec::new();
        for (i, s) in [version, modinfo].iter().enumerate() {
            let at = 0x400 + strings.len() as u64;
            put(&mut f, 0x200 + 16 * i, BASE + at, 8);
            put(&mut f, 0x208 + 16 * i, s.len() as u64, 8);
            strings.extend_from_slice(s.as_bytes());
        }
        f.extend_from_slice(&strings);
        if sections {
            let names = b"\0.go.buildinfo\0.shstrtab\0";
            let names_at = f.len() as u64;
            f.extend_from_slice(names);
            while !f.len().is_multiple_of(8) {
                f.push(0);
            }
            let shoff = f.len() as u64;
            put(&mut f, 0x28, shoff, 8);
            put(&mut f, 0x3a, 64, 2);
            put(&mut f, 0x3c, 3, 2);
            put(&mut f, 0x3e, 2, 2);
            f.extend_from_slice(&[0u8; 64]); // null section
            for (name, off, size) in [(1u64, 0x100u64, 0x20u64), (15, names_at, names.len() as u64)] {
                let mut sh = vec![0u8; 64];
                put(&mut sh, 0, name, 4);
                put(&mut sh, 0x18, off, 8);
                put(&mut sh, 0x20, size, 8);
                f.extend_from_slice(&sh);
            }
        }
        let len = f.len() as u64;
        put(&mut f, 0x60, len, 8);
        put(&mut f, 0x68, len, 8);
        f
    }

    fn read_file(bytes: &[u8]) -> Option<GoBuild> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("svc"), bytes).unwrap();
        let root = crate::host::Root::new(dir.path()).unwrap();
        let mut rd = Reader::new(&root, super::super::io::Limits::default());
        let head = rd.read_at("/svc", 0, 64).unwrap();
        read_go_build(&mut rd, "/svc", &head)
    }

    #[test]
    fn pre_118_pointer_format_is_followed_through_the_segments() {
        let sentinel = "0123456789abcdef";
        let body = "path\texample.com/old\nmod\texample.com/old\t(devel)\t\n\
                    dep\tgo.uber.org/automaxprocs\tv1.3.0\th1:x=\n";
        let modinfo = format!("{sentinel}{body}{sentinel}");
        for sections in [true, false] {
            let b = read_file(&old_elf("go1.16.15", &modinfo, sections)).unwrap();
            assert_eq!(b.go_version, "go1.16.15", "sections={sections}");
            assert_eq!(b.path.as_deref(), Some("example.com/old"));
            assert_eq!(b.dep("go.uber.org/automaxprocs"), Some("v1.3.0"));
        }
    }

    #[test]
    fn pre_118_pointers_out_of_the_file_are_not_followed() {
        let mut f = old_elf("go1.15", "", true);
        // The version's string header points far past every segment.
        f[0x200..0x208].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(read_file(&f).unwrap().go_version, "before go1.18");
        // A length over Go's own 1 MiB bound is refused.
        let mut f = old_elf("go1.15", "", true);
        f[0x208..0x210].copy_from_slice(&(2u64 << 20).to_le_bytes());
        assert_eq!(read_file(&f).unwrap().go_version, "before go1.18");
        // Truncated anywhere: never a panic.
        let f = old_elf("go1.17.13", "", true);
        for cut in (0..f.len()).step_by(7) {
            let _ = read_file(&f[..cut.max(64)]);
        }
    }

    #[test]
    fn rustc_version_from_comment() {
        let c = b"GCC: (Debian 12.2.0-14) 12.2.0\0rustc version 1.63.0 (4b91a6ea7 2022-08-08)\0";
        assert_eq!(rustc_version(c).as_deref(), Some("1.63.0"));
        assert_eq!(rustc_version(b"GCC: (GNU) 13\0"), None);
    }

    #[test]
    fn pre_118_big_endian_32_bit_through_a_memory_map() {
        let mut d = MAGIC.to_vec();
        d.extend_from_slice(&[4, 1]); // ptrSize 4, big endian, pointers
        d.extend_from_slice(&0x1000u32.to_be_bytes());
        d.extend_from_slice(&0x1008u32.to_be_bytes());
        d.resize(32, 0);
        let mem = |addr: u64, len: u64| -> Option<Vec<u8>> {
            let hdr = |p: u32, n: u32| [p.to_be_bytes(), n.to_be_bytes()].concat();
            let v = match addr {
                0x1000 => hdr(0x2000, 8),
                0x1008 => hdr(0x3000, 0),
                0x2000 => b"go1.13.8".to_vec(),
                0x3000 => Vec::new(),
                _ => return None,
            };
            Some(v[..(len as usize).min(v.len())].to_vec())
        };
        assert_eq!(parse_buildinfo_with(&d, mem).unwrap().go_version, "go1.13.8");
    }
}
