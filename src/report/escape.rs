//! Escaping for human output (tree, tables, markdown).
//!
//! Names read from a host are escaped once, where they enter cgmig
//! ([`crate::model::path::from_bytes`]); snapshots loaded from a file are
//! checked for raw control characters on load. These helpers are for text
//! that reaches a renderer some other way (rule texts, error messages, any
//! string a renderer is not sure of): they make sure a control character
//! can never move the cursor, clear the screen or start a forged line.

use std::borrow::Cow;

use crate::model::path;

/// One line of text: every control character, `\n` included, as `\xNN`.
pub fn line(s: &str) -> Cow<'_, str> {
    if path::has_raw_control(s, &[]) {
        Cow::Owned(path::from_bytes(s.as_bytes()))
    } else {
        Cow::Borrowed(s)
    }
}

/// Multi-line text: as [`fn@line`] but `\n` stays (a table cell, a paragraph).
pub fn text(s: &str) -> Cow<'_, str> {
    if path::has_raw_control(s, &['\n']) {
        Cow::Owned(path::value_from_bytes(s.as_bytes()).replace('\t', "\\x09"))
    } else {
        Cow::Borrowed(s)
    }
}

/// A markdown table cell: [`text`], with `|` escaped and line breaks as `<br>`.
pub fn md_cell(s: &str) -> String {
    text(s).replace('|', "\\|").replace('\n', "<br>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_never_pass() {
        assert_eq!(line("ok"), "ok");
        assert_eq!(line("a\nb\x1b[31m"), "a\\x0ab\\x1b[31m");
        assert_eq!(text("a\nb\x07"), "a\nb\\x07");
        assert_eq!(md_cell("a|b\nc"), "a\\|b<br>c");
        assert!(!path::has_raw_control(&line("\u{9b}x"), &[]));
    }
}
