//! The rpm package database, read without rpm: which packages (name, epoch,
//! version, release) a host or an image has installed.
//!
//! rpm has kept its database in three formats, all read here:
//!
//! * **SQLite** (`rpmdb.sqlite`, rpm ≥ 4.16: RHEL 9, Fedora ≥ 33, AL2023):
//!   the `Packages` table's `blob` column holds one header per package. Read
//!   with `rusqlite` (SQLite bundled, no system library) through the file
//!   descriptor the scan opened inside its root (`/proc/self/fd/N`, opened
//!   read-only and `immutable`, so no lock, journal or WAL file is touched
//!   or created; a WAL rpm left uncheckpointed is not replayed).
//! * **Berkeley DB hash** (`Packages`, RHEL 7/8, CentOS, SLES ≤ 15.2): a
//!   small hand parser of the on-disk hash pages (`db_page.h` of libdb 5.3):
//!   the metadata page gives the page size and the last page, every hash page
//!   holds key/value pairs, values too big for a page live on a chain of
//!   overflow pages. Pages are read one at a time, bounded and checked.
//! * **NDB** (`Packages.db`, SUSE ≥ 15.3) is not parsed: a diagnostic says so.
//!
//! A header blob (`headerImport` in rpm's `lib/header.c`) is a big-endian
//! index count and data length, then 16-byte index entries (tag, type,
//! offset, count) and the data store: NAME (1000), VERSION (1001), RELEASE
//! (1002) are strings, EPOCH (1003) a 32-bit integer.
//!
//! Every length and offset comes from the file and is checked before use;
//! a damaged or hostile database gives an error naming the file (a
//! diagnostic), never a panic, and never more than [`MAX_DB_BYTES`] read.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

use thiserror::Error;

use super::io::Reader;

/// Most bytes read from one package database (pages or SQLite file).
pub const MAX_DB_BYTES: u64 = 512 << 20;
/// Most bytes of one header blob (rpm's own limit is 256 MiB; real headers
/// are tens of kilobytes).
const MAX_HEADER: usize = 32 << 20;
/// Most packages taken from one database.
const MAX_PACKAGES: usize = 200_000;

/// An rpm database that could not be read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RpmError {
    /// SQLite refused the file or the query.
    #[error("SQLite: {0}")]
    Sqlite(String),
    /// The Berkeley DB file is not a hash database cgmig can read.
    #[error("Berkeley DB: {0}")]
    Bdb(String),
    /// A header blob is malformed.
    #[error("package header: {0}")]
    Header(String),
    /// More than [`MAX_DB_BYTES`] would have to be read.
    #[error("larger than the {MAX_DB_BYTES}-byte bound: not read")]
    TooLarge,
}

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// `NAME`.
    pub name: String,
    /// `[EPOCH:]VERSION-RELEASE`, as rpm prints it.
    pub evr: String,
    /// `VERSION` alone (what the version rules compare).
    pub version: String,
}

const TAG_NAME: u32 = 1000;
const TAG_VERSION: u32 = 1001;
const TAG_RELEASE: u32 = 1002;
const TAG_EPOCH: u32 = 1003;
const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_I18NSTRING: u32 = 9;

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// Name, epoch, version and release of one header blob.
pub fn parse_header(blob: &[u8]) -> Result<Package, RpmError> {
    let bad = |m: &str| RpmError::Header(m.to_string());
    let il = be32(blob, 0).ok_or_else(|| bad("shorter than 8 bytes"))? as usize;
    let dl = be32(blob, 4).ok_or_else(|| bad("shorter than 8 bytes"))? as usize;
    if il == 0 || il > 0xffff || dl > MAX_HEADER {
        return Err(bad(&format!("implausible index count {il} or data length {dl}")));
    }
    let data_at = 8 + 16 * il;
    let data = blob
        .get(data_at..data_at + dl)
        .ok_or_else(|| bad(&format!("{} bytes, needs {}", blob.len(), data_at + dl)))?;
    let (mut name, mut version, mut release, mut epoch) = (None, None, None, None);
    for i in 0..il {
        let e = 8 + 16 * i;
        let (tag, ty, off) = (be32(blob, e), be32(blob, e + 4), be32(blob, e + 8));
        let (Some(tag), Some(ty), Some(off)) = (tag, ty, off) else {
            return Err(bad("index runs past the end"));
        };
        let off = off as usize;
        let string = || -> Option<String> {
            let s = data.get(off..)?;
            let end = s.iter().position(|&c| c == 0)?;
            Some(String::from_utf8_lossy(&s[..end]).into_owned())
        };
        let is_string = ty == TYPE_STRING || ty == TYPE_I18NSTRING;
        match tag {
            TAG_NAME if is_string => name = string(),
            TAG_VERSION if is_string => version = string(),
            TAG_RELEASE if is_string => release = string(),
            TAG_EPOCH if ty == TYPE_INT32 => epoch = be32(data, off),
            _ => {}
        }
    }
    let (Some(name), Some(version)) = (name, version) else {
        return Err(bad("no NAME or VERSION tag"));
    };
    let mut evr = match epoch {
        Some(e) => format!("{e}:{version}"),
        None => version.clone(),
    };
    if let Some(r) = release {
        evr = format!("{evr}-{r}");
    }
    Ok(Package { name, evr, version })
}

/// SQLite virtual-machine steps allowed for reading one database: a real
/// rpmdb of 3,000 packages takes well under a million; a recursive view or
/// a generated column that computes without end is stopped here.
const MAX_SQLITE_STEPS: u64 = 200_000_000;
/// Wall-clock bound on one database read, whatever the steps cost.
const MAX_SQLITE_TIME: std::time::Duration = std::time::Duration::from_secs(10);

/// The header blobs of an rpm ≥ 4.16 SQLite database, read through an open
/// file (never by path: the descriptor is the one opened inside the root).
///
/// The file is untrusted, so: opened read-only and immutable; `Packages`
/// must be a plain table (not a view, a virtual table, or a table whose
/// `blob` is a generated column: each would run the file's own SQL); every
/// string or blob is capped at the header bound (`SQLITE_LIMIT_LENGTH`);
/// a progress handler stops the statement after a step and time budget; the
/// bytes of all rows together stay under [`MAX_DB_BYTES`].
pub fn sqlite_blobs(file: &File) -> Result<Vec<Vec<u8>>, RpmError> {
    use rusqlite::limits::Limit;
    use rusqlite::{Connection, OpenFlags};
    let len = file
        .metadata()
        .map_err(|e| RpmError::Sqlite(e.to_string()))?
        .len();
    if len > MAX_DB_BYTES {
        return Err(RpmError::TooLarge);
    }
    let uri = format!("file:/proc/self/fd/{}?immutable=1", file.as_raw_fd());
    let flags =
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let err = |e: rusqlite::Error| RpmError::Sqlite(e.to_string());
    let db = Connection::open_with_flags(uri, flags).map_err(err)?;
    db.set_limit(Limit::SQLITE_LIMIT_LENGTH, MAX_HEADER as i32)
        .map_err(err)?;
    let started = std::time::Instant::now();
    let mut calls: u64 = 0;
    const EVERY: u64 = 10_000;
    db.progress_handler(
        EVERY as i32,
        Some(move || {
            calls += 1;
            // true interrupts the statement (SQLITE_INTERRUPT).
            calls * EVERY > MAX_SQLITE_STEPS || started.elapsed() > MAX_SQLITE_TIME
        }),
    )
    .map_err(err)?;
    let kind: Option<(String, String)> = db
        .query_row(
            "SELECT type, coalesce(sql, '') FROM sqlite_master WHERE name = 'Packages'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .ok();
    match &kind {
        Some((t, sql))
            if t == "table"
                && !sql
                    .trim_start()
                    .to_ascii_uppercase()
                    .starts_with("CREATE VIRTUAL") => {}
        Some((t, _)) => {
            return Err(RpmError::Sqlite(format!(
                "Packages is a {t}, not a plain table: not read"
            )));
        }
        None => return Err(RpmError::Sqlite("no Packages table".into())),
    }
    // table_xinfo's `hidden`: 2 and 3 are generated columns.
    let mut cols = db
        .prepare("SELECT name, hidden FROM pragma_table_xinfo('Packages')")
        .map_err(err)?;
    let cols: Vec<(String, i64)> = cols
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(err)?
        .collect::<Result<_, _>>()
        .map_err(err)?;
    match cols.iter().find(|(n, _)| n.eq_ignore_ascii_case("blob")) {
        Some((_, 0)) => {}
        Some(_) => {
            return Err(RpmError::Sqlite(
                "Packages.blob is a generated column: not read".into(),
            ));
        }
        None => return Err(RpmError::Sqlite("Packages has no blob column".into())),
    }
    let mut stmt = db.prepare("SELECT blob FROM Packages").map_err(err)?;
    let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0)).map_err(err)?;
    let mut out = Vec::new();
    let mut total: u64 = 0;
    for row in rows.take(MAX_PACKAGES) {
        let b = row.map_err(|e| match e {
            rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::OperationInterrupted => {
                RpmError::Sqlite(format!(
                    "stopped after {MAX_SQLITE_STEPS} steps or {} s: not a plain package table",
                    MAX_SQLITE_TIME.as_secs()
                ))
            }
            e => err(e),
        })?;
        total += b.len() as u64;
        if total > MAX_DB_BYTES {
            return Err(RpmError::TooLarge);
        }
        out.push(b);
    }
    Ok(out)
}

/// Page reads from an open database file, bounded in total.
#[derive(Debug)]
pub struct Pages<'f> {
    file: &'f File,
    /// Bytes read so far.
    pub read: u64,
}

impl<'f> Pages<'f> {
    /// Reads from `file`.
    pub fn new(file: &'f File) -> Pages<'f> {
        Pages { file, read: 0 }
    }
    fn at(&mut self, offset: u64, len: usize) -> Result<Vec<u8>, RpmError> {
        self.read += len as u64;
        if self.read > MAX_DB_BYTES {
            return Err(RpmError::TooLarge);
        }
        let mut buf = vec![0u8; len];
        let n = self
            .file
            .read_at(&mut buf, offset)
            .map_err(|e| RpmError::Bdb(format!("read at {offset}: {e}")))?;
        buf.truncate(n);
        Ok(buf)
    }
}

/// Berkeley DB page layout (`db_page.h`).
const BDB_HASH_MAGIC: u32 = 0x061561;
const P_HASHMETA: u8 = 8;
const P_HASH_UNSORTED: u8 = 2;
const P_HASH: u8 = 13;
const P_OVERFLOW: u8 = 7;
const H_KEYDATA: u8 = 1;
const H_OFFPAGE: u8 = 3;
const PAGE_HEADER: usize = 26;

/// Numbers in the database's byte order (the creating host's).
#[derive(Clone, Copy)]
struct Order {
    le: bool,
}

impl Order {
    fn u16(self, b: &[u8], at: usize) -> Option<u16> {
        let s: [u8; 2] = b.get(at..at + 2)?.try_into().ok()?;
        Some(if self.le {
            u16::from_le_bytes(s)
        } else {
            u16::from_be_bytes(s)
        })
    }
    fn u32(self, b: &[u8], at: usize) -> Option<u32> {
        let s: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        Some(if self.le {
            u32::from_le_bytes(s)
        } else {
            u32::from_be_bytes(s)
        })
    }
}

/// The values (header blobs) of a Berkeley DB hash database.
pub fn bdb_blobs(pages: &mut Pages<'_>) -> Result<Vec<Vec<u8>>, RpmError> {
    let bad = |m: String| RpmError::Bdb(m);
    let meta = pages.at(0, 512)?;
    let order = [true, false]
        .into_iter()
        .map(|le| Order { le })
        .find(|o| o.u32(&meta, 12) == Some(BDB_HASH_MAGIC))
        .ok_or_else(|| bad("no hash database magic".into()))?;
    let page_size = order.u32(&meta, 20).unwrap_or(0) as usize;
    if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
        return Err(bad(format!("page size {page_size}")));
    }
    if meta.get(24).copied().unwrap_or(1) != 0 {
        return Err(bad("encrypted".into()));
    }
    if meta.get(25).copied() != Some(P_HASHMETA) {
        return Err(bad("first page is not hash metadata".into()));
    }
    let last = order.u32(&meta, 32).unwrap_or(0) as u64;
    if (last + 1) * page_size as u64 > MAX_DB_BYTES {
        return Err(RpmError::TooLarge);
    }
    let mut out = Vec::new();
    for pgno in 1..=last {
        let page = pages.at(pgno * page_size as u64, page_size)?;
        if page.len() < page_size {
            break; // a file shorter than its metadata says: keep what was read
        }
        if !matches!(page[25], P_HASH | P_HASH_UNSORTED) {
            continue;
        }
        let entries = order.u16(&page, 20).unwrap_or(0) as usize;
        for idx in (1..entries).step_by(2) {
            if out.len() >= MAX_PACKAGES {
                return Ok(out);
            }
            if let Some(v) = hash_value(pages, order, &page, idx, page_size)? {
                out.push(v);
            }
        }
    }
    Ok(out)
}

/// Item `idx` of a hash page: inline data or an overflow chain.
fn hash_value(
    pages: &mut Pages<'_>,
    order: Order,
    page: &[u8],
    idx: usize,
    page_size: usize,
) -> Result<Option<Vec<u8>>, RpmError> {
    let Some(off) = order.u16(page, PAGE_HEADER + 2 * idx).map(usize::from) else {
        return Ok(None);
    };
    // Items grow down from the end of the page: an item ends where the
    // previous one starts (LEN_HITEM).
    let end = match idx {
        0 => page_size,
        _ => order
            .u16(page, PAGE_HEADER + 2 * (idx - 1))
            .map_or(0, usize::from),
    };
    match page.get(off) {
        Some(&H_KEYDATA) if off < end && end <= page.len() => Ok(Some(page[off + 1..end].to_vec())),
        Some(&H_OFFPAGE) => {
            let (Some(pgno), Some(tlen)) = (order.u32(page, off + 4), order.u32(page, off + 8)) else {
                return Ok(None);
            };
            overflow(pages, order, pgno, tlen as usize, page_size).map(Some)
        }
        _ => Ok(None),
    }
}

/// Follow an overflow chain from `pgno` for `tlen` bytes.
fn overflow(
    pages: &mut Pages<'_>,
    order: Order,
    mut pgno: u32,
    tlen: usize,
    page_size: usize,
) -> Result<Vec<u8>, RpmError> {
    if tlen > MAX_HEADER {
        return Err(RpmError::Bdb(format!("overflow item of {tlen} bytes")));
    }
    let mut out = Vec::with_capacity(tlen);
    let max_pages = tlen / (page_size - PAGE_HEADER) + 2;
    for _ in 0..max_pages {
        if pgno == 0 || out.len() >= tlen {
            break;
        }
        let page = pages.at(pgno as u64 * page_size as u64, page_size)?;
        if page.len() < page_size || page[25] != P_OVERFLOW {
            return Err(RpmError::Bdb(format!("page {pgno} is not an overflow page")));
        }
        // On an overflow page hf_offset is the number of bytes it holds.
        let used = order
            .u16(&page, 22)
            .map_or(0, usize::from)
            .min(page_size - PAGE_HEADER);
        out.extend_from_slice(&page[PAGE_HEADER..PAGE_HEADER + used]);
        pgno = order.u32(&page, 16).unwrap_or(0);
    }
    if out.len() != tlen {
        return Err(RpmError::Bdb(format!(
            "overflow chain gave {} of {tlen} bytes",
            out.len()
        )));
    }
    Ok(out)
}

/// Database files, newest format first: (path, format).
pub const DATABASES: &[(&str, &str)] = &[
    ("/var/lib/rpm/rpmdb.sqlite", "sqlite"),
    ("/usr/lib/sysimage/rpm/rpmdb.sqlite", "sqlite"),
    ("/var/lib/rpm/Packages.db", "ndb"),
    ("/usr/lib/sysimage/rpm/Packages.db", "ndb"),
    ("/var/lib/rpm/Packages", "bdb"),
    ("/usr/lib/sysimage/rpm/Packages", "bdb"),
];

/// The installed packages of the first database found under `prefix`
/// (the host or an image layer), with the file it came from; unreadable
/// databases become diagnostics.
pub fn installed(rd: &mut Reader<'_>, prefix: &str) -> Option<(String, Vec<Package>)> {
    // One listing per rpm directory (absent on most trees and layers), not
    // one lookup per candidate file: this runs for every image layer.
    let mut present = Vec::new();
    for dir in ["/var/lib/rpm", "/usr/lib/sysimage/rpm"] {
        let names = rd.files_ending(&format!("{prefix}{dir}"), "");
        present.extend(names.into_iter().map(|n| format!("{dir}/{n}")));
    }
    let (db, format) = DATABASES.iter().find(|(db, _)| present.iter().any(|p| p == db))?;
    let abs = format!("{prefix}{db}");
    if *format == "ndb" {
        rd.note_abs(
            &abs,
            "rpm NDB database (SUSE) not read; versions come from the files the packages install",
        );
        return None;
    }
    let file = rd.open_file(&abs)?;
    let blobs = if *format == "sqlite" {
        let size = file.metadata().map_or(0, |m| m.len());
        let r = sqlite_blobs(&file);
        rd.count_bytes(size.min(MAX_DB_BYTES));
        r
    } else {
        let mut pages = Pages::new(&file);
        let r = bdb_blobs(&mut pages);
        rd.count_bytes(pages.read);
        r
    };
    let blobs = match blobs {
        Ok(b) => b,
        Err(e) => {
            rd.note_abs(&abs, format!("rpm database not read: {e}"));
            return None;
        }
    };
    let mut bad = 0;
    let mut out = Vec::new();
    for b in &blobs {
        match parse_header(b) {
            Ok(p) => out.push(p),
            Err(_) => bad += 1,
        }
    }
    // BDB keeps a 4-byte counter record beside the headers: not a package.
    let counters = if *format == "bdb" {
        blobs.iter().filter(|b| b.len() == 4).count()
    } else {
        0
    };
    if bad > counters {
        rd.note_abs(
            &abs,
            format!("{} rpm header(s) malformed and skipped", bad - counters),
        );
    }
    Some((db.to_string(), out))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header blob as rpm's `headerExport` lays it out.
    pub(crate) fn header(name: &str, epoch: Option<u32>, version: &str, release: &str) -> Vec<u8> {
        let mut index = Vec::new();
        let mut data = Vec::new();
        let mut add = |tag: u32, ty: u32, bytes: &[u8]| {
            for v in [tag, ty, data.len() as u32, 1] {
                index.extend_from_slice(&v.to_be_bytes());
            }
            data.extend_from_slice(bytes);
        };
        if let Some(e) = epoch {
            add(TAG_EPOCH, TYPE_INT32, &e.to_be_bytes());
        }
        for (tag, s) in [(TAG_NAME, name), (TAG_VERSION, version), (TAG_RELEASE, release)] {
            add(tag, TYPE_STRING, format!("{s}\0").as_bytes());
        }
        let il = (index.len() / 16) as u32;
        let mut blob = il.to_be_bytes().to_vec();
        blob.extend_from_slice(&(data.len() as u32).to_be_bytes());
        blob.extend(index);
        blob.extend(data);
        blob
    }

    #[test]
    fn header_blob_gives_name_and_evr() {
        let p = parse_header(&header("docker-ce", Some(3), "19.03.15", "3.el7")).unwrap();
        assert_eq!(p.name, "docker-ce");
        assert_eq!(p.evr, "3:19.03.15-3.el7");
        assert_eq!(p.version, "19.03.15");
        let p = parse_header(&header("runc", None, "1.1.12", "1.el9")).unwrap();
        assert_eq!(p.evr, "1.1.12-1.el9");
    }

    /// A database whose `Packages` is a view (a recursive CTE that never
    /// ends), a table whose blob is a generated column, a blob over the
    /// header bound: each an error, quickly; a plain table is read.
    #[test]
    fn hostile_sqlite_databases_are_refused_quickly() {
        let dir = tempfile::tempdir().unwrap();
        let make = |name: &str, sql: &str| {
            let p = dir.path().join(name);
            let c = rusqlite::Connection::open(&p).unwrap();
            c.execute_batch(sql).unwrap();
            drop(c);
            File::open(&p).unwrap()
        };
        let t = std::time::Instant::now();
        let view = make(
            "view.sqlite",
            "CREATE VIEW Packages AS WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT zeroblob(16) AS blob FROM r;",
        );
        let e = sqlite_blobs(&view).unwrap_err();
        assert_eq!(
            e,
            RpmError::Sqlite("Packages is a view, not a plain table: not read".into())
        );
        let generated = make(
            "gen.sqlite",
            "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, n INT, blob BLOB GENERATED ALWAYS AS (zeroblob(n)) VIRTUAL);\n\
             INSERT INTO Packages (n) VALUES (900000000);",
        );
        let e = sqlite_blobs(&generated).unwrap_err();
        assert!(e.to_string().contains("generated column"), "{e}");
        let big = make(
            "big.sqlite",
            &format!(
                "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob BLOB);\nINSERT INTO Packages (blob) VALUES (zeroblob({}));",
                MAX_HEADER + 1
            ),
        );
        let e = sqlite_blobs(&big).unwrap_err();
        assert!(e.to_string().contains("too big"), "{e}");
        let ok = make(
            "ok.sqlite",
            "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob BLOB NOT NULL);\nINSERT INTO Packages (blob) VALUES (x'00010203');",
        );
        assert_eq!(sqlite_blobs(&ok).unwrap(), vec![vec![0, 1, 2, 3]]);
        assert!(
            t.elapsed() < std::time::Duration::from_secs(10),
            "{:?}",
            t.elapsed()
        );
    }

    #[test]
    fn hostile_headers_are_errors_never_panics() {
        let good = header("kubelet", None, "1.24.0", "0");
        for cut in 0..good.len() {
            assert!(parse_header(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut huge = good.clone();
        huge[..4].copy_from_slice(&0xffff_ffffu32.to_be_bytes());
        assert!(parse_header(&huge).is_err());
        // A string offset past the data store, and a string with no NUL.
        let mut off = good.clone();
        off[8 + 16 + 8..8 + 16 + 12].copy_from_slice(&0x7fff_0000u32.to_be_bytes());
        assert!(parse_header(&off).is_err());
        let mut nonul = good.clone();
        let n = nonul.len();
        nonul[n - 1] = b'x';
        let _ = parse_header(&nonul);
    }
}
