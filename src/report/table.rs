//! Tables for human output, sized to the terminal.
//!
//! One table type for every command, so every table escapes its cells
//! (`report::escape`), fits the width of its [`Style`], cuts long cells
//! with a `…` marker instead of wrapping them without end, and colours
//! severities. The layout is done here and comfy-table draws it:
//!
//! * each column wants its widest line; when they do not all fit, key
//!   columns (severities, rule ids, counts: [`Col::Key`]) keep their width
//!   (up to [`KEY_CAP`]) and text columns share the rest in proportion to
//!   what they want, none narrower than [`TEXT_MIN`];
//! * a key is never broken: cut with `…` if its column is narrower; text
//!   wraps at spaces (and after `/`, `,`, `-` inside long words) to at most
//!   [`MAX_LINES`] lines per cell, the last one marked `…`;
//! * a cell longer than [`MAX_CELL`] characters is cut before any layout
//!   (a 1 MiB Go version string costs its length once).
//!
//! [`Table::markdown`] renders the same table for markdown with every cell
//! whole (escaped for markdown): the full text is kept there and in json.

use comfy_table::{
    Attribute, Cell as Drawn, CellAlignment, Color, ColumnConstraint, ContentArrangement, Width,
};

use super::escape;
use super::term::{CUT, Style, cut, width, wrap_lines};
use crate::rules::Severity;

/// A key column's widest width before it is cut.
pub const KEY_CAP: usize = 40;
/// A text column's narrowest width when space is short.
pub const TEXT_MIN: usize = 8;
/// Lines a text cell wraps to at most.
pub const MAX_LINES: usize = 8;
/// A text column's width below which a table stacks its text columns.
pub const TEXT_COMFORT: usize = 20;
/// Characters of a cell read at most (the rest is cut before layout).
pub const MAX_CELL: usize = 4096;

/// How a column lays out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Col {
    /// Short identifiers (severity, rule id, kind): one line, never broken.
    Key,
    /// Numbers: as a key, right-aligned.
    Num,
    /// Free text: wraps.
    Text,
}

/// One cell: its text and, for a severity, the colour it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    text: String,
    severity: Option<Severity>,
}

impl Cell {
    /// A cell coloured by a severity (when the style colours).
    pub fn severity(sev: Severity, text: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            severity: Some(sev),
        }
    }
}

impl From<String> for Cell {
    fn from(text: String) -> Cell {
        Cell { text, severity: None }
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Cell {
        Cell::from(text.to_string())
    }
}

/// A table: its columns and rows.
#[derive(Debug, Clone)]
pub struct Table {
    header: Vec<(String, Col)>,
    rows: Vec<Vec<Cell>>,
    /// Lines a text cell wraps to at most.
    max_lines: usize,
}

impl Table {
    /// A table with these columns.
    pub fn new(columns: &[(&str, Col)]) -> Table {
        Table {
            header: columns.iter().map(|(h, c)| (h.to_string(), *c)).collect(),
            rows: Vec::new(),
            max_lines: MAX_LINES,
        }
    }

    /// Add a row (missing cells are empty, extra ones dropped).
    pub fn row<C: Into<Cell>>(&mut self, cells: impl IntoIterator<Item = C>) {
        let mut r: Vec<Cell> = cells
            .into_iter()
            .map(Into::into)
            .take(self.header.len())
            .collect();
        r.resize(self.header.len(), Cell::from(""));
        self.rows.push(r);
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table for a terminal or a text file: fits `style.width`, each
    /// line ends with `\n`.
    pub fn render(&self, style: &Style) -> String {
        let cells: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| r.iter().map(|c| prepare(&c.text)).collect())
            .collect();
        let widths = self.layout(&cells, style.width);
        if let Some(stacked) = self.stacked(&cells, &widths) {
            return stacked.render(style);
        }
        let lines = self.max_lines;
        let mut t = comfy_table::Table::new();
        t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Disabled);
        if style.color {
            t.enforce_styling();
        } else {
            t.force_no_tty();
        }
        t.set_header(
            self.header
                .iter()
                .zip(&widths)
                .map(|((h, _), w)| Drawn::new(cut(h, *w))),
        );
        for (row, src) in cells.iter().zip(&self.rows) {
            let drawn =
                row.iter()
                    .zip(&self.header)
                    .zip(&widths)
                    .zip(src)
                    .map(|(((text, (_, col)), w), c)| {
                        let lines = match col {
                            Col::Key | Col::Num => text.split('\n').map(|l| cut(l, *w)).collect::<Vec<_>>(),
                            Col::Text => wrap_lines(text, *w, 0, lines),
                        };
                        let mut d = Drawn::new(lines.join("\n"));
                        if *col == Col::Num {
                            d = d.set_alignment(CellAlignment::Right);
                        }
                        match c.severity.filter(|_| style.color) {
                            Some(Severity::Blocker) => d.fg(Color::Red).add_attribute(Attribute::Bold),
                            Some(Severity::Error) => d.fg(Color::Red),
                            Some(Severity::Warning) => d.fg(Color::Yellow),
                            _ => d,
                        }
                    });
            t.add_row(drawn);
        }
        // comfy-table's fixed width counts the cell's padding (one space
        // each side).
        t.set_constraints(
            widths
                .iter()
                .map(|w| ColumnConstraint::Absolute(Width::Fixed(u16::try_from(w + 2).unwrap_or(u16::MAX)))),
        );
        let mut out = t.to_string();
        out.push('\n');
        out
    }

    /// When two or more text columns would be narrower than
    /// [`TEXT_COMFORT`] (and narrower than they want), the same table with
    /// its text columns stacked into one: each cell's parts one under the
    /// other, every part after the first led by its column's name. Eight
    /// columns of five letters help no one at 80 columns.
    fn stacked(&self, cells: &[Vec<String>], widths: &[usize]) -> Option<Table> {
        let text: Vec<usize> = (0..self.header.len())
            .filter(|&i| self.header[i].1 == Col::Text)
            .collect();
        let cramped = text.iter().any(|&i| {
            let want = cells
                .iter()
                .flat_map(|r| r[i].split('\n'))
                .map(width)
                .max()
                .unwrap_or(0);
            widths[i] < TEXT_COMFORT.min(want)
        });
        if text.len() < 2 || !cramped {
            return None;
        }
        let mut header: Vec<(&str, Col)> = Vec::new();
        let joined = text
            .iter()
            .map(|&i| self.header[i].0.as_str())
            .collect::<Vec<_>>()
            .join(" / ");
        for (i, (h, c)) in self.header.iter().enumerate() {
            if *c != Col::Text {
                header.push((h, *c));
            } else if i == text[0] {
                header.push((&joined, Col::Text));
            }
        }
        let mut t = Table::new(&header);
        t.max_lines = MAX_LINES * text.len();
        for r in &self.rows {
            let mut row: Vec<Cell> = Vec::new();
            for (i, c) in r.iter().enumerate() {
                if self.header[i].1 != Col::Text {
                    row.push(c.clone());
                } else if i == text[0] {
                    let parts: Vec<String> = text
                        .iter()
                        .enumerate()
                        .filter(|(_, j)| !r[**j].text.trim().is_empty())
                        .map(|(k, &j)| {
                            if k == 0 {
                                r[j].text.clone()
                            } else {
                                format!("{}: {}", self.header[j].0, r[j].text)
                            }
                        })
                        .collect();
                    row.push(Cell::from(parts.join("\n")));
                }
            }
            t.row(row);
        }
        Some(t)
    }

    /// Column widths for `total` columns of output (borders included).
    fn layout(&self, cells: &[Vec<String>], total: usize) -> Vec<usize> {
        let n = self.header.len();
        let want: Vec<usize> = (0..n)
            .map(|i| {
                let cells = cells.iter().flat_map(|r| r[i].split('\n'));
                cells
                    .chain(std::iter::once(self.header[i].0.as_str()))
                    .map(width)
                    .max()
                    .unwrap_or(0)
                    .max(1)
            })
            .collect();
        // "│ a ┆ b │": one space each side of a cell, one rule between and
        // around them.
        let avail = total.saturating_sub(3 * n + 1);
        if want.iter().sum::<usize>() <= avail {
            return want;
        }
        let is_key = |i: usize| self.header[i].1 != Col::Text;
        let mut w: Vec<usize> = (0..n)
            .map(|i| {
                if is_key(i) {
                    want[i].min(KEY_CAP)
                } else {
                    want[i].min(TEXT_MIN)
                }
            })
            .collect();
        let keys: usize = (0..n).filter(|&i| is_key(i)).map(|i| w[i]).sum();
        let text_min: usize = (0..n).filter(|&i| !is_key(i)).map(|i| w[i]).sum();
        if keys + text_min > avail {
            // Too narrow even so: keys give up width too, down to 4.
            let mut over = keys + text_min - avail;
            while over > 0 {
                let Some(i) = (0..n).filter(|&i| is_key(i) && w[i] > 4).max_by_key(|&i| w[i]) else {
                    break;
                };
                w[i] -= 1;
                over -= 1;
            }
            return w;
        }
        // Text columns share what is left: short columns are never wrapped
        // to make room for long ones.
        let mut left = avail - keys - text_min;
        let hungry: Vec<usize> = (0..n).filter(|&i| !is_key(i) && w[i] < want[i]).collect();
        if hungry.is_empty() {
            return w;
        }
        // First an even share each (all of what it wants when that is
        // less), then the rest in proportion to what each still wants.
        let share = left / hungry.len();
        for &i in &hungry {
            let g = (want[i] - w[i]).min(share);
            w[i] += g;
            left -= g;
        }
        let need: usize = hungry.iter().map(|&i| want[i] - w[i]).sum();
        if need == 0 {
            return w;
        }
        let mut given = 0;
        for &i in &hungry {
            let g = ((want[i] - w[i]) * left / need).min(want[i] - w[i]);
            w[i] += g;
            given += g;
        }
        // The rounding remainder to the hungriest.
        if let Some(&i) = hungry.iter().max_by_key(|&&i| want[i] - w[i]) {
            w[i] += (left - given).min(want[i] - w[i]);
        }
        w
    }

    /// The table in markdown: every cell whole, escaped for a cell.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let head: Vec<String> = self.header.iter().map(|(h, _)| escape::md_cell(h)).collect();
        out.push_str(&format!("| {} |\n|", head.join(" | ")));
        for (_, col) in &self.header {
            out.push_str(if *col == Col::Num { "---:|" } else { "---|" });
        }
        out.push('\n');
        for r in &self.rows {
            let cells: Vec<String> = r.iter().map(|c| escape::md_cell(&c.text)).collect();
            out.push_str(&format!("| {} |\n", cells.join(" | ")));
        }
        out
    }
}

/// A cell's text before layout: cut to [`MAX_CELL`] characters, escaped.
fn prepare(text: &str) -> String {
    let bounded = match text.char_indices().nth(MAX_CELL) {
        Some((i, _)) => format!("{}{CUT}", &text[..i]),
        None => text.to_string(),
    };
    escape::text(&bounded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        let mut t = Table::new(&[
            ("severity", Col::Key),
            ("rule", Col::Key),
            ("n", Col::Num),
            ("what", Col::Text),
        ]);
        t.row([
            Cell::severity(Severity::Blocker, "blocker"),
            "readiness.jvm-cgroup-v1-only".into(),
            "12".into(),
            Cell::from("a long explanation ".repeat(20)),
        ]);
        t.row(["info", "x", "1", "short"]);
        t
    }

    #[test]
    fn fits_every_width_and_keeps_keys_whole() {
        for w in [40, 60, 80, 120, 200] {
            let out = sample().render(&Style::new(w, false));
            for l in out.lines() {
                assert!(width(l) <= w, "{w}: {l:?} is {}", width(l));
            }
            if w >= 80 {
                assert!(out.contains("readiness.jvm-cgroup-v1-only"), "{w}:\n{out}");
            }
        }
        // Wide enough: no wrapping at all.
        let wide = sample().render(&Style::new(500, false));
        assert_eq!(wide.lines().count(), 6, "{wide}");
    }

    #[test]
    fn long_cells_are_cut_with_a_marker_and_escaped() {
        let mut t = Table::new(&[("k", Col::Key), ("v", Col::Text)]);
        let go = format!("go1.21\x1b]8;;http://evil\x07{}", "A".repeat(1 << 20));
        t.row(["ver\u{202e}sion".to_string(), go]);
        let out = t.render(&Style::new(80, false));
        assert!(
            !out.contains('\x1b') && !out.contains('\x07') && !out.contains('\u{202e}'),
            "{out}"
        );
        assert!(out.contains("\\x1b]8;;http://evil\\x07"), "{out}");
        assert!(out.contains("ver\\u{202e}sion"), "{out}");
        assert!(out.contains(CUT), "{out}");
        assert!(out.lines().count() <= MAX_LINES + 4, "{out}");
        let md = t.markdown();
        assert!(!md.contains('\x1b') && md.lines().count() == 3, "{}", &md[..200]);
    }

    #[test]
    fn colour_marks_severities_only_when_asked() {
        let plain = sample().render(&Style::new(120, false));
        assert!(!plain.contains('\x1b'));
        let colour = sample().render(&Style::new(120, true));
        assert!(colour.contains("\x1b["), "{colour}");
        // Colour does not change the layout.
        let strip = |s: &str| {
            let mut out = String::new();
            let mut esc = false;
            for c in s.chars() {
                match (esc, c) {
                    (false, '\x1b') => esc = true,
                    (true, 'm') => esc = false,
                    (true, _) => {}
                    (false, c) => out.push(c),
                }
            }
            out
        };
        assert_eq!(strip(&colour), plain);
    }

    #[test]
    fn markdown_rows_cannot_be_forged() {
        let mut t = Table::new(&[("rule", Col::Key), ("n", Col::Num)]);
        t.row(["evil\n| blocker | forged |", "1"]);
        let md = t.markdown();
        assert_eq!(md.lines().count(), 3, "{md}");
        assert!(md.contains("|---|---:|"));
    }
}
