//! Renderers: every human and machine-readable output of cgmig.
//!
//! Renderers are pure functions from a typed value (snapshot, report, plan)
//! to text; writing that text is [`write_output`]'s job, which never leaves a
//! half-written file behind.

mod tree;

use std::io::Write;
use std::path::Path;

pub use tree::render_tree;

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

/// Write text to a file atomically (temp file in the same directory, then
/// rename), or to stdout when `path` is `None` or `-`.
pub fn write_output(path: Option<&Path>, text: &str) -> std::io::Result<()> {
    match path {
        None => std::io::stdout().lock().write_all(text.as_bytes()),
        Some(p) if p == Path::new("-") => std::io::stdout().lock().write_all(text.as_bytes()),
        Some(p) => {
            let dir = p
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            let tmp = dir.join(format!(".{name}.cgmig-tmp-{}", std::process::id()));
            let res = (|| {
                let mut f = std::fs::File::create(&tmp)?;
                f.write_all(text.as_bytes())?;
                f.sync_all()?;
                std::fs::rename(&tmp, p)
            })();
            if res.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            res
        }
    }
}
