//! The one escaping function for human output (tables, markdown, trees,
//! progress lines, error messages).
//!
//! Names read from a host are escaped once where they enter cgmig
//! ([`crate::model::path::from_bytes`]), but much else reaches a renderer
//! another way: rule texts, Go and Java version strings from binaries,
//! values from a snapshot or plan file, error messages. Every human renderer
//! passes its text through [`escape`] (or [`line()`], [`text`], [`md_cell`],
//! which are it with fixed options), so nothing that comes from an input can
//!
//! * move the cursor, clear the screen, set a window title or a hyperlink
//!   (C0 and C1 control characters, ESC and OSC sequences: written `\xNN`),
//! * reorder what the reader sees (bidi controls such as U+202E
//!   RIGHT-TO-LEFT OVERRIDE, and every other invisible format character:
//!   zero-width spaces and joiners, the byte-order mark, soft hyphen, line
//!   and paragraph separators: written `\u{202e}`),
//! * start a forged line in a table or a report (`\n` is escaped in one-line
//!   text, and in markdown cells `|`, backticks and line breaks are too).
//!
//! A `\` is left as it is: it cannot act on a terminal, and paths keep the
//! `\xNN` and `\\` forms the model gave them.

use std::borrow::Cow;

/// Whether a character is shown escaped: control characters (`keep_newline`
/// lets `\n` through), and invisible format characters (Unicode category
/// Cf, plus U+2028/U+2029).
fn needs_escape(c: char, keep_newline: bool) -> bool {
    if c == '\n' {
        return !keep_newline;
    }
    c.is_control() || is_invisible_format(c)
}

/// Unicode's format characters (general category Cf) and the line and
/// paragraph separators (Zl, Zp): invisible, and some (bidi controls)
/// reorder the text around them.
fn is_invisible_format(c: char) -> bool {
    matches!(c as u32,
        0x00AD
        | 0x0600..=0x0605
        | 0x061C
        | 0x06DD
        | 0x070F
        | 0x0890..=0x0891
        | 0x08E2
        | 0x180E
        | 0x200B..=0x200F
        | 0x2028..=0x202E
        | 0x2060..=0x2064
        | 0x2066..=0x206F
        | 0xFEFF
        | 0xFFF9..=0xFFFB
        | 0x110BD
        | 0x110CD
        | 0x13430..=0x1343F
        | 0x1BCA0..=0x1BCA3
        | 0x1D173..=0x1D17A
        | 0xE0001
        | 0xE0020..=0xE007F)
}

/// The escaping function: control characters as `\xNN` (each byte of
/// their UTF-8), format characters as `\u{XXXX}`; `\n` kept when
/// `keep_newline`, a tab kept never (it would break a table's columns).
pub fn escape(s: &str, keep_newline: bool) -> Cow<'_, str> {
    if !s.chars().any(|c| needs_escape(c, keep_newline)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if !needs_escape(c, keep_newline) {
            out.push(c);
        } else if c.is_control() {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("\\x{b:02x}"));
            }
        } else {
            out.push_str(&format!("\\u{{{:04x}}}", c as u32));
        }
    }
    Cow::Owned(out)
}

/// One line of text: [`escape`] with `\n` escaped too.
pub fn line(s: &str) -> Cow<'_, str> {
    escape(s, false)
}

/// Multi-line text (a table cell, a paragraph): [`escape`], `\n` kept.
pub fn text(s: &str) -> Cow<'_, str> {
    escape(s, true)
}

/// A markdown table cell: [`text`], then `|` and backticks escaped (a cell
/// can neither end early nor open a code span that swallows the row's
/// other cells) and line breaks as `<br>` (a row stays one line).
pub fn md_cell(s: &str) -> String {
    text(s)
        .replace('|', "\\|")
        .replace('`', "\\`")
        .replace('<', "&lt;")
        .replace('\n', "<br>")
}

/// Text for a markdown code span: [`line()`], with backticks, which would end
/// it, as `'`.
pub fn md_code(s: &str) -> String {
    line(s).replace('`', "'").replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_never_pass() {
        assert_eq!(line("ok"), "ok");
        assert!(matches!(line("ok"), Cow::Borrowed(_)));
        assert_eq!(line("a\nb\x1b[31m"), "a\\x0ab\\x1b[31m");
        assert_eq!(text("a\nb\x07"), "a\nb\\x07");
        assert_eq!(text("a\tb"), "a\\x09b");
        // OSC 8 hyperlink and OSC 0 window title.
        assert_eq!(line("\x1b]0;owned\x07"), "\\x1b]0;owned\\x07");
        // C1 CSI (U+009B) is two bytes in UTF-8.
        assert_eq!(line("\u{9b}2J"), "\\xc2\\x9b2J");
    }

    #[test]
    fn bidi_and_invisible_format_characters_are_shown() {
        assert_eq!(line("evil\u{202e}txt.sh"), "evil\\u{202e}txt.sh");
        for c in [
            '\u{200b}',
            '\u{200d}',
            '\u{2066}',
            '\u{2069}',
            '\u{feff}',
            '\u{ad}',
            '\u{2028}',
            '\u{e0041}',
        ] {
            let shown = text(&format!("a{c}b")).into_owned();
            assert!(
                shown.starts_with("a\\u{") && shown.ends_with("}b"),
                "{c:?}: {shown}"
            );
        }
        // Visible non-ASCII stays.
        assert_eq!(line("café → ✓ 日本"), "café → ✓ 日本");
    }

    #[test]
    fn markdown_cells_cannot_forge_rows_or_code_spans() {
        assert_eq!(md_cell("a|b\nc"), "a\\|b<br>c");
        assert_eq!(md_cell("x`| y"), "x\\`\\| y");
        assert_eq!(md_cell("<script>"), "&lt;script>");
        let forged = md_cell("rule\n| blocker | forged | 1 |");
        assert!(!forged.contains('\n') && !forged.contains(" | "), "{forged}");
        assert_eq!(md_code("a`b\nc"), "a'b\\x0ac");
    }
}
