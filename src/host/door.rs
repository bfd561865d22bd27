//! The one door for documents cgmig reads from a user-named file:
//! snapshots, audits, plans, journals, rules and waivers. Every such file
//! may come from another machine or another team, so none is trusted, and
//! every command reads it the same way:
//!
//! 1. [`read_text`]: the file itself is opened non-blocking and checked to
//!    be a regular file on the open descriptor (a FIFO, socket or device is
//!    refused, never read), read up to a bound, and must be UTF-8;
//! 2. [`parse`]: nesting is bounded before any parser recurses
//!    ([`check_depth`]), then JSON (a document starting with `{`) or YAML
//!    into the caller's type, errors with line and column;
//! 3. the caller's own validator, with the helpers here for the fields
//!    every document shares: [`check_path`] for a path that something will
//!    be written to or opened at (absolute, normalized, no `..`, no control
//!    character, bounded), [`check_text`] for a name or value that must stay
//!    one line.
//!
//! Snapshots go through `model::validate::parse_snapshot` (graph and
//! readiness records), rules through `RuleSet::load`, fleet inputs through
//! `fleet::read_host`; plans, journals and waivers plug their validators in
//! after [`parse`]. Each error names the file.

use std::path::{Path, PathBuf};

use super::contain::{ReadError, read_user_file};
pub use crate::model::validate::{MAX_DEPTH, check_depth, is_normalized_path};

/// Longest path a document may name (`PATH_MAX`).
pub const MAX_PATH: usize = 4096;

/// Why a document was refused at the door; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum DocError {
    /// The OS refused to open or read it.
    #[error("cannot read {path}: {err}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        err: std::io::Error,
    },
    /// Not a regular file.
    #[error("cannot read {path}: it is a {kind}, not a regular file")]
    NotRegular {
        /// The file.
        path: PathBuf,
        /// What it is.
        kind: &'static str,
    },
    /// Over the size bound.
    #[error("cannot read {path}: larger than {limit} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The bound.
        limit: usize,
    },
    /// Not UTF-8.
    #[error("{path}: not UTF-8 text (byte {at})")]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// First invalid byte.
        at: usize,
    },
    /// Nested too deeply, or not the document's syntax or type.
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message (line and column).
        message: String,
    },
}

/// Read a user-named document: a regular file (checked on the open
/// descriptor, opened non-blocking), at most `limit` bytes, UTF-8.
pub fn read_text(path: &Path, limit: usize) -> Result<String, DocError> {
    let bytes = read_user_file(path, limit).map_err(|e| match e {
        ReadError::Io(err) => DocError::Io {
            path: path.to_path_buf(),
            err,
        },
        ReadError::NotRegular(kind) => DocError::NotRegular {
            path: path.to_path_buf(),
            kind,
        },
        ReadError::TooLarge(limit) => DocError::TooLarge {
            path: path.to_path_buf(),
            limit,
        },
    })?;
    String::from_utf8(bytes).map_err(|e| DocError::NotUtf8 {
        path: path.to_path_buf(),
        at: e.utf8_error().valid_up_to(),
    })
}

/// Parse a document's text into `T`: depth first (no parser recursion
/// bomb), then JSON when it starts with `{`, else YAML.
pub fn parse<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T, DocError> {
    let syntax = |message: String| DocError::Syntax {
        path: path.to_path_buf(),
        message,
    };
    check_depth(text).map_err(|e| syntax(e.to_string()))?;
    if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| syntax(e.to_string()))
    } else {
        serde_yaml_ng::from_str(text).map_err(|e| syntax(e.to_string()))
    }
}

/// A path a document names for something to be written to or opened at:
/// absolute and normalized (no `..`, `.` or empty component, so joining it
/// under a directory stays under that directory), no control character
/// (the kernel would take a newline; a message must not), at most
/// [`MAX_PATH`] bytes. The error says which rule it breaks.
pub fn check_path(p: &str) -> Result<(), String> {
    if p.len() > MAX_PATH {
        return Err(format!("longer than {MAX_PATH} bytes"));
    }
    if p.chars().any(char::is_control) {
        return Err("contains a control character".into());
    }
    if !is_normalized_path(p) {
        return Err("not an absolute normalized path (no '..', '.', '//')".into());
    }
    Ok(())
}

/// A name or value that must stay one line of at most `max` bytes: no
/// control character but tab.
pub fn check_text(s: &str, max: usize) -> Result<(), String> {
    if s.len() > max {
        return Err(format!("longer than {max} bytes"));
    }
    if s.chars().any(|c| c.is_control() && c != '\t') {
        return Err("contains a line break or control character".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_texts() {
        assert!(check_path("/etc/systemd/system/a.service").is_ok());
        for bad in ["etc/x", "/etc/../x", "/etc//x", "/etc/x/", "/etc/\nx", "/./x"] {
            assert!(check_path(bad).is_err(), "{bad:?}");
        }
        assert!(check_path(&format!("/{}", "a".repeat(MAX_PATH))).is_err());
        assert!(check_text("a\tb", 10).is_ok());
        assert!(check_text("a\nb", 10).is_err());
        assert!(check_text("abcdef", 3).is_err());
    }

    #[test]
    fn documents_are_read_bounded_and_parsed_with_depth_first() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.json");
        std::fs::write(&p, "{\"a\": [1, 2]}").unwrap();
        let t = read_text(&p, 100).unwrap();
        let v: serde_json::Value = parse(&p, &t).unwrap();
        assert_eq!(v["a"][1], 2);
        assert!(matches!(read_text(&p, 3), Err(DocError::TooLarge { .. })));
        let deep = "[".repeat(MAX_DEPTH + 1);
        let e = parse::<serde_json::Value>(&p, &deep).unwrap_err();
        assert!(e.to_string().contains("nested deeper"), "{e}");
        assert!(e.to_string().contains("x.json"), "{e}");
        std::fs::write(&p, b"\xff").unwrap();
        assert!(matches!(read_text(&p, 100), Err(DocError::NotUtf8 { .. })));
        nix::unistd::mkfifo(
            &d.path().join("f"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        assert!(matches!(
            read_text(&d.path().join("f"), 100),
            Err(DocError::NotRegular { .. })
        ));
    }
}
