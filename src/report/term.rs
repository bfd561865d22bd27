//! How human output fits where it goes: the width to fit and whether to
//! colour, decided once by the CLI (`COLUMNS`, the terminal, `--color`,
//! `NO_COLOR`) and passed to every human renderer as a [`Style`].
//!
//! Every line a human renderer writes fits the style's width: paragraphs
//! wrap ([`Style::wrap`]), tree lines and one-line values are cut with a
//! `…` marker ([`Style::fit`]), tables lay out their columns
//! (`report::table`). Nothing is lost for good: `--format json` and
//! `--format markdown` carry the full text.

use std::fmt::Write as _;

use anstyle::{AnsiColor, Style as Ansi};
use unicode_width::UnicodeWidthChar;

use crate::rules::Severity;

/// The marker of a cut: a cell, a value or a line that went on.
pub const CUT: char = '…';

/// The width and colour of human output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// Columns every line fits in (`usize::MAX`: no limit, for markdown).
    pub width: usize,
    /// Whether to colour by severity (ANSI SGR).
    pub color: bool,
}

impl Style {
    /// The width when output is not a terminal and `COLUMNS` is not set.
    pub const DEFAULT_WIDTH: usize = 100;
    /// The narrowest width laid out; narrower terminals get this width.
    pub const MIN_WIDTH: usize = 40;
    /// A file or a pipe: the default width, no colour.
    pub const PLAIN: Style = Style {
        width: Self::DEFAULT_WIDTH,
        color: false,
    };
    /// No width limit and no colour: text kept whole (markdown code blocks).
    pub const UNBOUNDED: Style = Style {
        width: usize::MAX,
        color: false,
    };

    /// A style of `width` columns (at least [`Style::MIN_WIDTH`]).
    pub fn new(width: usize, color: bool) -> Style {
        Style {
            width: width.max(Self::MIN_WIDTH),
            color,
        }
    }

    /// `text` in the colour of a severity (as it is without colour).
    pub fn severity(&self, sev: Severity, text: &str) -> String {
        self.paint(severity_ansi(sev), text)
    }

    /// `text` in green (a good verdict).
    pub fn good(&self, text: &str) -> String {
        self.paint(AnsiColor::Green.on_default(), text)
    }

    /// `text` in bold (a heading).
    pub fn bold(&self, text: &str) -> String {
        self.paint(Ansi::new().bold(), text)
    }

    fn paint(&self, st: Ansi, text: &str) -> String {
        if self.color && st != Ansi::new() {
            format!("{st}{text}{st:#}")
        } else {
            text.to_string()
        }
    }

    /// One line cut to the width, a `…` marking the cut.
    pub fn fit(&self, line: &str) -> String {
        cut(line, self.width)
    }

    /// Every line of `text` wrapped to the width, keeping its indentation
    /// (continuation lines two columns deeper); lines that fit, tables
    /// among them, stay as they are.
    pub fn wrap_text(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for line in text.lines() {
            if width(line) <= self.width {
                out.push_str(line);
                out.push('\n');
                continue;
            }
            let body = line.trim_start_matches(' ');
            let lead = line.len() - body.len();
            let wrapped = Style::new(self.width.saturating_sub(lead), self.color).wrap(body, 2);
            for l in wrapped.lines() {
                out.push_str(&" ".repeat(lead));
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }

    /// A paragraph wrapped to the width, its leading spaces kept, lines
    /// after the first indented by `indent` spaces; each line ends with
    /// `\n`. A word longer than a line is broken (after a `/`, `,` or `-`
    /// when it has one).
    pub fn wrap(&self, text: &str, indent: usize) -> String {
        let body = text.trim_start_matches(' ');
        let lead = text.len() - body.len();
        let indent = indent.max(lead);
        let room = self.width.saturating_sub(lead).max(1);
        let mut out = String::new();
        for (i, l) in wrap_lines(body, room, indent - lead, usize::MAX)
            .iter()
            .enumerate()
        {
            out.push_str(&" ".repeat(if i == 0 { lead } else { indent }));
            let _ = writeln!(out, "{l}");
        }
        out
    }
}

/// The last pass over a human report before it is written: every line
/// escaped (`report::escape`; with colour, cgmig's own SGR colour sequences
/// pass) and cut to the style's width, so no renderer's slip can let a
/// terminal escape from an input through or a line run past the terminal.
pub fn finish(text: &str, style: &Style) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let (body, nl) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        let escaped = escape_keeping_sgr(body, style.color);
        if visible_width(&escaped) > style.width {
            out.push_str(&cut(&strip_sgr(&escaped), style.width));
        } else {
            out.push_str(&escaped);
        }
        out.push_str(nl);
    }
    out
}

/// The length of the SGR sequence (`ESC [ digits ; m`) at the start of `s`.
fn sgr_len(s: &str) -> Option<usize> {
    let rest = s.strip_prefix("\x1b[")?;
    let end = rest.find(|c: char| !(c.is_ascii_digit() || c == ';'))?;
    rest[end..].starts_with('m').then_some(2 + end + 1)
}

/// A line escaped, SGR colour sequences kept when `keep_sgr`.
fn escape_keeping_sgr(line: &str, keep_sgr: bool) -> String {
    if !keep_sgr {
        return super::escape::line(line).into_owned();
    }
    let mut out = String::new();
    let mut rest = line;
    while let Some(i) = rest.find('\x1b') {
        out.push_str(&super::escape::line(&rest[..i]));
        match sgr_len(&rest[i..]) {
            Some(n) => {
                out.push_str(&rest[i..i + n]);
                rest = &rest[i + n..];
            }
            None => {
                out.push_str("\\x1b");
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(&super::escape::line(rest));
    out
}

/// A line without its SGR sequences.
fn strip_sgr(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(i) = rest.find('\x1b') {
        out.push_str(&rest[..i]);
        rest = &rest[i + sgr_len(&rest[i..]).unwrap_or(1)..];
    }
    out.push_str(rest);
    out
}

/// Display width of a line, SGR sequences not counted.
pub fn visible_width(line: &str) -> usize {
    if line.contains('\x1b') {
        width(&strip_sgr(line))
    } else {
        width(line)
    }
}

/// The ANSI style of a severity: blockers bold red, errors red, warnings
/// yellow, info plain.
pub fn severity_ansi(sev: Severity) -> Ansi {
    match sev {
        Severity::Blocker => AnsiColor::Red.on_default().bold(),
        Severity::Error => AnsiColor::Red.on_default(),
        Severity::Warning => AnsiColor::Yellow.on_default(),
        Severity::Info => Ansi::new(),
    }
}

/// Display width of a string (wide characters count two).
pub fn width(s: &str) -> usize {
    s.chars().map(|c| c.width().unwrap_or(0)).sum()
}

/// `s` cut to `max` columns with a `…` when it is longer.
pub fn cut(s: &str, max: usize) -> String {
    if width(s) <= max {
        return s.to_string();
    }
    let mut out = String::new();
    let mut w = 0;
    for c in s.chars() {
        let cw = c.width().unwrap_or(0);
        if w + cw + 1 > max {
            break;
        }
        out.push(c);
        w += cw;
    }
    out.push(CUT);
    out
}

/// Wrap `text` (lines split at `\n`) to `max` columns, the lines after the
/// first `indent` columns narrower; at most `max_lines` lines, the last one
/// marked `…` when text was left out. Stops reading once the lines are
/// full, so a huge text costs no more than what is shown.
pub fn wrap_lines(text: &str, max: usize, indent: usize, max_lines: usize) -> Vec<String> {
    let room = |n: usize| {
        if n == 0 {
            max
        } else {
            max.saturating_sub(indent).max(1)
        }
    };
    let mut out: Vec<String> = Vec::new();
    'lines: for src in text.split('\n') {
        let mut cur = String::new();
        let mut cur_w = 0;
        for mut word in src.split(' ') {
            loop {
                if out.len() > max_lines {
                    break 'lines;
                }
                let r = room(out.len());
                // Counted only as far as a line: a 1 MiB word costs its
                // length once, not once per line.
                let ww = width_upto(word, r.saturating_add(1));
                let sep = usize::from(!cur.is_empty());
                if (cur_w + sep).saturating_add(ww) <= r {
                    if sep == 1 {
                        cur.push(' ');
                    }
                    cur.push_str(word);
                    cur_w += sep + ww;
                    break;
                }
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    cur_w = 0;
                    continue;
                }
                // A word wider than a whole line: break it.
                let at = split_at(word, r);
                out.push(word[..at].to_string());
                word = &word[at..];
            }
        }
        out.push(cur);
    }
    if out.len() > max_lines {
        out.truncate(max_lines);
        let r = room(max_lines - 1);
        if let Some(last) = out.last_mut() {
            let mut l = cut(last, r.saturating_sub(1));
            if !l.ends_with(CUT) {
                l.push(CUT);
            }
            *last = l;
        }
    }
    out
}

/// Where to break a word to fit `room` columns: after the last `/`, `,`,
/// `-`, `=`, `.` or `_` that fits (in its second half), or at `room`; at
/// least one character.
fn split_at(word: &str, room: usize) -> usize {
    let mut w = 0;
    let mut hard = 0;
    let mut soft = None;
    for (i, c) in word.char_indices() {
        let cw = c.width().unwrap_or(0);
        if w + cw > room {
            break;
        }
        w += cw;
        hard = i + c.len_utf8();
        if matches!(c, '/' | ',' | '-' | '=' | '.' | '_') && hard < word.len() {
            soft = Some(hard);
        }
    }
    let first = word.chars().next().map_or(0, char::len_utf8);
    soft.filter(|s| *s > hard / 2).unwrap_or(hard).max(first)
}

/// Display width of `s`, counted no further than `limit`.
fn width_upto(s: &str, limit: usize) -> usize {
    let mut w = 0;
    for c in s.chars() {
        w += c.width().unwrap_or(0);
        if w >= limit {
            break;
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_and_wrap_fit() {
        assert_eq!(cut("abcdef", 10), "abcdef");
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(width("日本"), 4);
        assert_eq!(cut("日本語です", 5), "日本…");
        let w = wrap_lines("the quick brown fox jumps over the lazy dog", 10, 0, 99);
        assert!(w.iter().all(|l| width(l) <= 10), "{w:?}");
        assert_eq!(w.join(" "), "the quick brown fox jumps over the lazy dog");
        let paths = wrap_lines("/kubepods.slice/kubepods-burstable.slice/pod7a96", 20, 0, 99);
        assert!(paths.iter().all(|l| width(l) <= 20), "{paths:?}");
        assert_eq!(paths[0], "/kubepods.slice/");
        let capped = wrap_lines(&"word ".repeat(100), 20, 0, 3);
        assert_eq!(capped.len(), 3);
        assert!(capped[2].ends_with(CUT) && width(&capped[2]) <= 20, "{capped:?}");
        let lines = wrap_lines("a\nb\nc\nd", 20, 0, 2);
        assert_eq!(lines, ["a", "b…"]);
        let indented = Style::new(40, false).wrap(&"long text ".repeat(20), 4);
        assert!(indented.lines().all(|l| width(l) <= 40), "{indented}");
        assert!(indented.lines().nth(1).unwrap().starts_with("    "));
    }

    #[test]
    fn a_huge_word_costs_its_length_once() {
        let huge = "x".repeat(1 << 20);
        let lines = wrap_lines(&huge, 80, 0, usize::MAX);
        assert_eq!(lines.len(), (1 << 20) / 80 + 1);
        let capped = wrap_lines(&huge, 80, 0, 4);
        assert_eq!(capped.len(), 4);
    }

    #[test]
    fn finish_escapes_and_fits_every_line() {
        let st = Style::new(40, false);
        let out = finish(
            &format!("ok\nevil \x1b]0;title\x07 \u{202e}\n{}\n", "x".repeat(100)),
            &st,
        );
        assert!(!out.contains('\x1b') && !out.contains('\u{202e}'), "{out}");
        assert!(out.lines().all(|l| width(l) <= 40), "{out}");
        assert_eq!(out.lines().count(), 3);
        let colour = Style::new(40, true);
        let red = colour.severity(Severity::Error, "error");
        let out = finish(&format!("{red} \x1b[2J\n"), &colour);
        assert!(out.starts_with(&red), "{out:?}");
        assert!(out.contains("\\x1b[2J"), "{out:?}");
    }

    #[test]
    fn colour_only_when_asked() {
        let plain = Style::new(80, false);
        assert_eq!(plain.severity(Severity::Blocker, "x"), "x");
        let colour = Style::new(80, true);
        let c = colour.severity(Severity::Blocker, "x");
        assert!(
            c.starts_with('\x1b') && c.contains('x') && c.ends_with('m'),
            "{c:?}"
        );
        assert_eq!(colour.severity(Severity::Info, "x"), "x");
    }
}
