//! Renderers: every human and machine-readable output of cgmig.
//!
//! Renderers are pure functions from a typed value (snapshot, report, plan)
//! to text; writing that text is [`write_output`]'s job, which never leaves a
//! half-written file behind.

mod tree;

use std::io::Write;
use std::path::Path;

pub use tree::render_tree;

/// Draw a tree with box-drawing connectors, parents before children.
///
/// `label(node, is_top)` is the text after the connector (`is_top` for the
/// root line, which has none); `children(node)` lists a node's children in
/// display order. Iterative, so deep trees can't overflow the stack.
pub fn draw_tree<N: Copy>(
    root: N,
    children: impl Fn(N) -> Vec<N>,
    label: impl Fn(N, bool) -> String,
) -> String {
    let mut out = String::new();
    let mut stack: Vec<(N, String, bool, bool)> = vec![(root, String::new(), true, true)];
    while let Some((n, prefix, last, top)) = stack.pop() {
        if !top {
            out.push_str(&prefix);
            out.push_str(if last { "└── " } else { "├── " });
        }
        out.push_str(&label(n, top));
        out.push('\n');
        let kids = children(n);
        let child_prefix = if top {
            String::new()
        } else {
            format!("{prefix}{}", if last { "    " } else { "│   " })
        };
        let k = kids.len();
        for (i, c) in kids.into_iter().enumerate().rev() {
            stack.push((c, child_prefix.clone(), i + 1 == k, false));
        }
    }
    out
}

/// Machine-readable formats shared by every command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DataFormat {
    /// JSON, pretty-printed.
    Json,
    /// YAML.
    Yaml,
}

/// Serialize a value as JSON or YAML.
pub fn to_data<T: serde::Serialize>(v: &T, f: DataFormat) -> Result<String, String> {
    match f {
        DataFormat::Json => serde_json::to_string_pretty(v)
            .map(|s| s + "\n")
            .map_err(|e| e.to_string()),
        DataFormat::Yaml => serde_yaml_ng::to_string(v).map_err(|e| e.to_string()),
    }
}

/// Read a JSON or YAML document (JSON if it starts with `{`).
pub fn from_data<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| format!("line {}, column {}: {e}", e.line(), e.column()))
    } else {
        serde_yaml_ng::from_str(text).map_err(|e| e.to_string())
    }
}

/// Write text to stdout (`None` or `-`) or to a file, never leaving a
/// half-written file behind.
///
/// A regular file (or a new path) is written to a temporary file in the same
/// directory and renamed over the target, so a crash or a full disk leaves
/// the old contents intact. A symlink is resolved first, so the link stays a
/// link. Anything else that already exists (`/dev/null`, a FIFO, a terminal)
/// is written in place: renaming over it would replace the device itself.
pub fn write_output(path: Option<&Path>, text: &str) -> std::io::Result<()> {
    let p = match path {
        None => return std::io::stdout().lock().write_all(text.as_bytes()),
        Some(p) if p == Path::new("-") => return std::io::stdout().lock().write_all(text.as_bytes()),
        Some(p) => p,
    };
    let target = match std::fs::canonicalize(p) {
        Ok(real) => {
            if !std::fs::metadata(&real)?.file_type().is_file() {
                let mut f = std::fs::OpenOptions::new().write(true).open(&real)?;
                return f.write_all(text.as_bytes());
            }
            real
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => p.to_path_buf(),
        Err(e) => return Err(e),
    };
    let dir = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.cgmig-tmp-{}", std::process::id()));
    let res = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &target)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;

    #[test]
    fn devices_are_written_in_place_not_replaced() {
        write_output(Some(Path::new("/dev/null")), "x").unwrap();
        let m = std::fs::metadata("/dev/null").unwrap();
        assert!(m.file_type().is_char_device(), "/dev/null must stay a device");
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
        let names: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "no temp files left: {names:?}");
        assert!(write_output(Some(&d.path().join("missing/x")), "y").is_err());
    }
}
