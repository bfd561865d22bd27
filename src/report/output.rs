//! Writing a command's output: standard output, or `-o FILE`, safely.
//!
//! cgmig runs as root in directories other users can write to (`/tmp`, a
//! shared report directory), so `-o` must never be redirected by a planted
//! file and never leave a half-written one:
//!
//! * a new path or a regular file is written to a temporary file created
//!   with `O_CREAT|O_EXCL|O_NOFOLLOW` under an unpredictable name in the
//!   target's directory (opened once, all later steps relative to that
//!   descriptor), synced, and renamed over the target: a crash or a full
//!   disk leaves the old contents, a symlink planted at the temporary name
//!   makes the create fail (and cgmig retries with another name);
//! * a symlink owned by the user running cgmig, to an existing regular
//!   file, writes that file the same way (the link stays a link); a symlink
//!   owned by anyone else is refused (root must not be steered by a link
//!   planted in a shared directory), and so is a dangling symlink: following
//!   it would create a file wherever its owner chose;
//! * a FIFO or a character device (a terminal, `/dev/null`) is written in
//!   place, never renamed over (that would replace the device); a FIFO with
//!   no reader is an error, not a hang;
//! * a directory, socket or block device is refused.
//!
//! Every failure, a closed pipe and a full disk included, is an error naming
//! the file; the CLI turns it into exit 2.

use std::collections::hash_map::RandomState;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag};
use nix::sys::stat::{Mode, SFlag};

/// Attempts at an unused temporary name before giving up.
const TEMP_ATTEMPTS: usize = 16;

/// Write text to stdout (`None` or `-`) or to a file, never leaving a
/// half-written file behind and never following a planted link (see the
/// module documentation for each kind of target).
pub fn write_output(path: Option<&Path>, text: &str) -> io::Result<()> {
    write_output_with(path, &mut |w| w.write_all(text.as_bytes()))
}

/// What writes a command's output into the (buffered) writer it is given.
pub type Body<'a> = dyn FnMut(&mut dyn Write) -> io::Result<()> + 'a;

/// [`write_output`] for output written as it is made (a plan's JSON,
/// over 100 MB on a big host, is not built whole in memory first), with the
/// same safety for each kind of target: an error from `body` leaves a
/// file's old contents.
pub fn write_output_with(path: Option<&Path>, body: &mut Body) -> io::Result<()> {
    match path {
        None => write_stdout(body),
        Some(p) if p == Path::new("-") => write_stdout(body),
        Some(p) => write_file(p, body),
    }
}

fn write_stdout(body: &mut Body) -> io::Result<()> {
    let mut out = io::BufWriter::with_capacity(1 << 16, io::stdout().lock());
    body(&mut out)?;
    out.flush()
}

fn err(kind: io::ErrorKind, msg: impl Into<String>) -> io::Error {
    io::Error::new(kind, msg.into())
}

/// Write `-o FILE` by what FILE is now.
pub fn write_file(p: &Path, body: &mut Body) -> io::Result<()> {
    match std::fs::symlink_metadata(p) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => replace_with(p, body, None, &mut temp_name),
        Err(e) => Err(e),
        Ok(m) if m.file_type().is_symlink() && !own_link(&m) => Err(err(
            io::ErrorKind::PermissionDenied,
            format!(
                "is a symlink owned by uid {}; cgmig follows only links of its own user (uid {}), \
                 as the kernel's protected_symlinks does in shared directories",
                std::os::unix::fs::MetadataExt::uid(&m),
                nix::unistd::geteuid()
            ),
        )),
        Ok(m) if m.file_type().is_symlink() => match std::fs::metadata(p) {
            Ok(t) if t.is_file() => {
                let real = std::fs::canonicalize(p)?;
                replace_with(&real, body, Some(t.permissions()), &mut temp_name)
            }
            Ok(_) => write_in_place(p, body),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(err(
                io::ErrorKind::InvalidInput,
                "is a dangling symlink; cgmig does not create files through a link (remove it or name the target)",
            )),
            Err(e) => Err(e),
        },
        Ok(m) if m.is_file() => replace_with(p, body, Some(m.permissions()), &mut temp_name),
        Ok(_) => write_in_place(p, body),
    }
}

/// Whether a symlink belongs to the user running cgmig (root must not be
/// steered by a link another user planted in `/tmp`).
fn own_link(m: &std::fs::Metadata) -> bool {
    std::os::unix::fs::MetadataExt::uid(m) == nix::unistd::geteuid().as_raw()
}

/// A FIFO or character device: open without creating, never rename.
fn write_in_place(p: &Path, body: &mut Body) -> io::Result<()> {
    let flags = OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let raw = nix::fcntl::open(p, flags, Mode::empty()).map_err(|e| match e {
        Errno::ENXIO => err(io::ErrorKind::BrokenPipe, "is a FIFO with no reader"),
        e => e.into(),
    })?;
    // SAFETY: open returned a fresh descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let st = nix::sys::stat::fstat(fd.as_raw_fd())?;
    let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
    if kind != SFlag::S_IFIFO && kind != SFlag::S_IFCHR {
        return Err(err(
            io::ErrorKind::InvalidInput,
            format!(
                "is a {}: cgmig writes a regular file, a FIFO or a character device",
                crate::host::contain::kind_name(st.st_mode)
            ),
        ));
    }
    // Non-blocking was for the open only (no reader = error, not a hang).
    nix::fcntl::fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(OFlag::empty()))?;
    let mut f = io::BufWriter::with_capacity(1 << 16, File::from(fd));
    body(&mut f)?;
    f.flush()
}

/// An unpredictable temporary name for `name`: 128 bits from the standard
/// library's OS-seeded hasher keys.
fn temp_name(name: &OsStr) -> OsString {
    let mut h1 = RandomState::new().build_hasher();
    h1.write_u32(std::process::id());
    let mut h2 = RandomState::new().build_hasher();
    h2.write_u64(h1.finish());
    let mut n = OsString::from(".");
    // Keep the name short enough for NAME_MAX with any target name.
    let stem = &name.as_bytes()[..name.len().min(200)];
    n.push(OsStr::from_bytes(stem));
    n.push(format!(".cgmig-{:016x}{:016x}", h1.finish(), h2.finish()));
    n
}

/// Write a temporary file next to `target` and rename it over `target`;
/// `next_name` gives the temporary names to try (tests plant one).
#[cfg(test)]
fn replace(
    target: &Path,
    bytes: &[u8],
    perms: Option<std::fs::Permissions>,
    next_name: &mut dyn FnMut(&OsStr) -> OsString,
) -> io::Result<()> {
    replace_with(target, &mut |w| w.write_all(bytes), perms, next_name)
}

/// [`replace`] with the contents written by `body`.
fn replace_with(
    target: &Path,
    body: &mut Body,
    perms: Option<std::fs::Permissions>,
    next_name: &mut dyn FnMut(&OsStr) -> OsString,
) -> io::Result<()> {
    let dir: PathBuf = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target
        .file_name()
        .ok_or_else(|| err(io::ErrorKind::InvalidInput, "names no file"))?;
    let raw_dir = nix::fcntl::open(
        &dir,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // SAFETY: open returned a fresh descriptor we own.
    let dirfd = unsafe { OwnedFd::from_raw_fd(raw_dir) };
    let mode = perms.map_or(0o644, |p| std::os::unix::fs::PermissionsExt::mode(&p) & 0o7777);
    let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut attempt = 0;
    let (tmp, fd) = loop {
        let tmp = next_name(name);
        match nix::fcntl::openat(
            Some(dirfd.as_raw_fd()),
            tmp.as_os_str(),
            flags,
            Mode::from_bits_truncate(mode),
        ) {
            // SAFETY: openat returned a fresh descriptor we own.
            Ok(raw) => break (tmp, unsafe { OwnedFd::from_raw_fd(raw) }),
            Err(Errno::EEXIST) if attempt + 1 < TEMP_ATTEMPTS => attempt += 1,
            Err(e) => return Err(e.into()),
        }
    };
    let result = (|| -> io::Result<()> {
        let mut w = io::BufWriter::with_capacity(1 << 16, File::from(fd));
        body(&mut w)?;
        let f = w.into_inner().map_err(io::IntoInnerError::into_error)?;
        f.sync_all()?;
        nix::fcntl::renameat(
            Some(dirfd.as_raw_fd()),
            tmp.as_os_str(),
            Some(dirfd.as_raw_fd()),
            name,
        )?;
        Ok(())
    })();
    if result.is_err() {
        let _ = nix::unistd::unlinkat(
            Some(dirfd.as_raw_fd()),
            tmp.as_os_str(),
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        );
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;

    fn entries(d: &Path) -> Vec<OsString> {
        let mut v: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn regular_files_and_symlinks() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("out.json");
        write_output(Some(&f), "one").unwrap();
        write_output(Some(&f), "two").unwrap();
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "two");
        let link = d.path().join("link.json");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        write_output(Some(&link), "three").unwrap();
        assert!(
            std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(),
            "link kept"
        );
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "three");
        assert_eq!(entries(d.path()).len(), 2, "no temp files left");
        assert!(write_output(Some(&d.path().join("missing/x")), "y").is_err());
    }

    #[test]
    fn dangling_symlink_is_refused_and_creates_nothing() {
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        std::os::unix::fs::symlink(&victim, d.path().join("out")).unwrap();
        let e = write_output(Some(&d.path().join("out")), "x").unwrap_err();
        assert!(e.to_string().contains("dangling symlink"), "{e}");
        assert!(!victim.exists());
        assert_eq!(entries(d.path()).len(), 1);
    }

    #[test]
    fn own_fifo_is_written_in_place() {
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("fifo");
        nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600)).unwrap();
        // No reader: an error at once, never a hang.
        let e = write_output(Some(&fifo), "x").unwrap_err();
        assert!(e.to_string().contains("no reader"), "{e}");
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
        };
        // Wait until the reader has the FIFO open.
        let mut tries = 0;
        loop {
            match write_output(Some(&fifo), "through the fifo") {
                Ok(()) => break,
                Err(_) if tries < 500 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(reader.join().unwrap(), "through the fifo");
        assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    }

    /// Skip (printing why) without root, or fail where CI requires root tests.
    fn root_or_skip(why: &str) -> bool {
        if nix::unistd::geteuid().is_root() {
            return true;
        }
        assert!(
            std::env::var_os("CGMIG_REQUIRE_KERNEL_TESTS").is_none(),
            "required (CGMIG_REQUIRE_KERNEL_TESTS) but not root: {why}"
        );
        eprintln!("SKIPPED: {why}");
        false
    }

    #[test]
    #[ignore = "needs root: mknod of our own null and full devices"]
    fn own_char_devices_are_written_in_place() {
        if !root_or_skip("mknod needs root") {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        // Our own null and full devices, made in the test's directory.
        for (name, minor, ok) in [("null", 3, true), ("full", 7, false)] {
            let p = d.path().join(name);
            nix::sys::stat::mknod(
                &p,
                SFlag::S_IFCHR,
                Mode::from_bits_truncate(0o600),
                nix::sys::stat::makedev(1, minor),
            )
            .unwrap();
            let r = write_output(Some(&p), "data");
            assert_eq!(r.is_ok(), ok, "{name}: {r:?}");
            if let Err(e) = r {
                assert_eq!(e.raw_os_error(), Some(nix::libc::ENOSPC), "{e}");
            }
            assert!(
                std::fs::symlink_metadata(&p)
                    .unwrap()
                    .file_type()
                    .is_char_device(),
                "{name} replaced"
            );
        }
    }

    #[test]
    #[ignore = "needs root: lchown of a symlink to another user"]
    fn other_users_symlinks_are_refused() {
        if !root_or_skip("lchown to another user needs root") {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let link = d.path().join("out.json");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        std::os::unix::fs::lchown(&link, Some(65534), Some(65534)).unwrap();
        let e = write_output(Some(&link), "x").unwrap_err();
        assert!(e.to_string().contains("owned by uid 65534"), "{e}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
    }

    #[test]
    fn directories_and_sockets_are_refused() {
        let d = tempfile::tempdir().unwrap();
        assert!(write_output(Some(d.path()), "x").is_err());
        let sock = d.path().join("sock");
        let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        assert!(write_output(Some(&sock), "x").is_err());
        assert!(std::fs::symlink_metadata(&sock).unwrap().file_type().is_socket());
    }

    #[test]
    fn temp_names_are_unpredictable_and_exclusive() {
        let a = temp_name(OsStr::new("out.json"));
        let b = temp_name(OsStr::new("out.json"));
        assert_ne!(a, b);
        assert!(a.len() > ".out.json.cgmig-".len() + 30);
        // A symlink planted at the temporary name is never followed: the
        // exclusive create fails and the next name is used.
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let planted = OsString::from(".out.cgmig-planted");
        std::os::unix::fs::symlink(&victim, d.path().join(&planted)).unwrap();
        let mut names = vec![OsString::from(".out.cgmig-second"), planted.clone()];
        replace(&d.path().join("out"), b"new", None, &mut |_| names.pop().unwrap()).unwrap();
        assert_eq!(std::fs::read_to_string(d.path().join("out")).unwrap(), "new");
        assert!(
            std::fs::symlink_metadata(d.path().join(&planted))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        // A planted FIFO at the name is not opened either (no hang).
        let fifo = OsString::from(".out.cgmig-fifo");
        nix::unistd::mkfifo(&d.path().join(&fifo), Mode::from_bits_truncate(0o600)).unwrap();
        let mut names = vec![OsString::from(".out.cgmig-third"), fifo];
        replace(&d.path().join("out"), b"newer", None, &mut |_| {
            names.pop().unwrap()
        })
        .unwrap();
        assert_eq!(std::fs::read_to_string(d.path().join("out")).unwrap(), "newer");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
    }
}
