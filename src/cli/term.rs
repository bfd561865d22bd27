//! Where human output goes and how it looks there: `--color`, `--no-pager`,
//! the terminal's width (`COLUMNS`), the pager, and a closed standard
//! output. The renderers get a [`crate::report::Style`] from here and
//! know nothing of terminals.

/// `--color`: when human output is coloured by severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless `NO_COLOR` is set.
    #[default]
    Auto,
    /// Always (also into a file or a pipe).
    Always,
    /// Never.
    Never,
}

/// The options every command takes for its human output (`--color`,
/// `--no-pager`). Set once by [`crate::cli::main`] from the parsed command
/// line, and read where a command writes (also in files owned by other
/// concerns, such as the apply table): a value threaded through every
/// command's arguments would touch them all for two flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ui {
    /// `--color`.
    pub color: ColorChoice,
    /// `--no-pager`.
    pub no_pager: bool,
}

static UI: std::sync::OnceLock<Ui> = std::sync::OnceLock::new();

/// Record the command line's output options (first call wins).
pub fn set_ui(ui: Ui) {
    let _ = UI.set(ui);
}

/// The output options (defaults when `main` did not set them: tests).
pub fn ui() -> Ui {
    UI.get().copied().unwrap_or_default()
}

/// The terminal's (columns, rows) on standard output, if it is one.
fn terminal_size() -> Option<(usize, usize)> {
    use std::io::IsTerminal as _;
    if !std::io::stdout().is_terminal() {
        return None;
    }
    let mut ws = nix::libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ fills the winsize it is given and nothing else;
    // fd 1 is valid for the whole process (is_terminal checked it).
    let r = unsafe { nix::libc::ioctl(1, nix::libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_col > 0).then(|| (usize::from(ws.ws_col), usize::from(ws.ws_row)))
}

/// `COLUMNS`, when set to a number.
fn columns_env() -> Option<usize> {
    std::env::var("COLUMNS")
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|n| *n > 0)
}

/// The style of human output going to standard output (`to_stdout`) or a
/// file: the width is `COLUMNS`, else the terminal's, else
/// [`Style::DEFAULT_WIDTH`]; colour as `--color` says (`auto`: a terminal,
/// and `NO_COLOR` unset or empty, as no-color.org asks).
pub fn style(to_stdout: bool) -> crate::report::Style {
    use crate::report::Style;
    let term = if to_stdout { terminal_size() } else { None };
    let width = columns_env()
        .or(term.map(|(c, _)| c))
        .unwrap_or(Style::DEFAULT_WIDTH);
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let color = match ui().color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => term.is_some() && !no_color,
    };
    Style::new(width, color)
}

/// The pager to use for `lines` lines of output, if any: only on a
/// terminal, without `--no-pager`, when the text does not fit the screen;
/// `CGMIG_PAGER`, else `PAGER`, else `less` (empty or `cat`: none), as
/// systemd's tools do.
fn pager(lines: usize) -> Option<String> {
    if ui().no_pager {
        return None;
    }
    let (_, rows) = terminal_size()?;
    if lines < rows {
        return None;
    }
    let cmd = std::env::var("CGMIG_PAGER")
        .or_else(|_| std::env::var("PAGER"))
        .unwrap_or_else(|_| "less".into());
    let cmd = cmd.trim().to_string();
    (!cmd.is_empty() && cmd != "cat").then_some(cmd)
}

/// Write a human report to standard output (through the pager when it is
/// long and on a terminal) or to `-o FILE`: every line escaped and cut to
/// the style's width first ([`crate::report::term::finish`]).
pub fn emit_human(
    output: Option<&std::path::Path>,
    text: &str,
    style: &crate::report::Style,
) -> anyhow::Result<()> {
    let text = crate::report::term::finish(text, style);
    let to_stdout = output.is_none_or(|p| p == std::path::Path::new("-"));
    if to_stdout && let Some(cmd) = pager(text.lines().count()) {
        match page(&cmd, &text) {
            Ok(()) => return Ok(()),
            Err(e) => say!("cgmig: note: pager {cmd:?} failed ({e}); writing directly"),
        }
    }
    super::emit(output, &text)
}

/// Run `sh -c CMD` with the text on its standard input (`LESS=FRSXMK`
/// unless set: quit when it fits, keep colours, chop long lines). The
/// reader quitting early (a closed pipe) is not an error.
fn page(cmd: &str, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut c = std::process::Command::new("sh");
    c.args(["-c", cmd]).stdin(std::process::Stdio::piped());
    if std::env::var_os("LESS").is_none() {
        c.env("LESS", "FRSXMK");
    }
    let mut child = c.spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        match stdin.write_all(text.as_bytes()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e),
            _ => {}
        }
    }
    child.wait()?;
    Ok(())
}

/// Whether an error is standard output closed by its reader (`cgmig scan |
/// head -1`): the reader has what it wanted, so cgmig exits 0 quietly, as
/// `head`'s writers do.
pub fn is_closed_stdout(e: &anyhow::Error) -> bool {
    let stdout = e.chain().any(|c| c.to_string() == STDOUT_CONTEXT);
    stdout
        && e.chain().any(|c| {
            c.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
        })
}

/// The context every write to standard output carries.
pub const STDOUT_CONTEXT: &str = "cannot write standard output";
