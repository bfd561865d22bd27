//! Renderers: every human and machine-readable output of cgmig.
//!
//! Renderers are pure functions from a typed value (snapshot, report, plan)
//! to text; writing that text is [`write_output`]'s job, which never leaves a
//! half-written file behind.

pub mod escape;
mod output;
pub mod table;
pub mod term;
mod tree;
pub mod units;

pub use output::{write_output, write_output_with};
pub use term::Style;
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataFormat {
    /// JSON, pretty-printed.
    Json,
    /// YAML.
    Yaml,
}

/// Serialize a value as JSON or YAML.
pub fn to_data<T: serde::Serialize>(v: &T, f: DataFormat) -> Result<String, DataError> {
    Ok(match f {
        DataFormat::Json => serde_json::to_string_pretty(v)? + "\n",
        DataFormat::Yaml => serde_yaml_ng::to_string(v)?,
    })
}

/// A document that could not be written or read as JSON or YAML. The
/// serde message is the whole text (it names line and column when reading),
/// said once: callers add the file name.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// JSON (serde_json's message).
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// YAML (serde_yaml_ng's message).
    #[error(transparent)]
    Yaml(#[from] serde_yaml_ng::Error),
}

/// Read a JSON or YAML document (JSON if it starts with `{`).
pub fn from_data<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, DataError> {
    if text.trim_start().starts_with('{') {
        // serde_json's message already ends "at line L column C".
        Ok(serde_json::from_str(text)?)
    } else {
        Ok(serde_yaml_ng::from_str(text)?)
    }
}
