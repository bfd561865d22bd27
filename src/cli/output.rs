//! How the CLI speaks when something goes wrong: one cause per line, each
//! said once, and the up-front note for a non-root scan.

use std::fmt::Write;

/// The error text for stderr: `cgmig: error: ` and the outermost message,
/// then each deeper cause on its own line, as the chain has it (escaped,
/// one line per line of a multi-line message). Nothing is hidden: every
/// error type says its cause once, in its own text or as its `source()`,
/// never both (the tests below walk real failing calls of every layer), so
/// a line printed twice is a bug to fix where the error is built.
pub fn error_text(e: &anyhow::Error) -> String {
    let mut out = String::new();
    let lines = e.chain().map(|cause| cause.to_string()).collect::<Vec<_>>();
    let lines = lines
        .iter()
        .flat_map(|text| text.lines())
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty());
    for (i, line) in lines.enumerate() {
        let line = crate::report::escape::line(line);
        let lead = if i == 0 { "cgmig: error: " } else { "  " };
        let _ = writeln!(out, "{lead}{line}");
    }
    out
}

/// Say up front that a live scan without root sees only part of the host
/// (the snapshot also carries an `unreadable:` diagnostic, so the audit
/// verdict is incomplete).
pub fn warn_non_root() {
    let uid = nix::unistd::geteuid();
    if !uid.is_root() {
        say!(
            "cgmig: note: running as uid {uid}, not root: other users' processes and some cgroup files \
             cannot be read, so results are incomplete"
        );
    }
}

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

#[cfg(test)]
mod tests {
    //! Every layer's errors, built from real failing calls where one can be
    //! made without root (a missing file, a bad YAML line, a bad snapshot, a
    //! bad journal, a bad mount table ...): no error's text contains the text
    //! of one of its causes, so [`error_text`] prints each cause once.

    use std::error::Error;
    use std::path::{Path, PathBuf};

    use clap::Parser;

    use super::*;
    use crate::apply::Host;
    use crate::cli::{Cli, run};

    /// Panic when a text of the chain contains a deeper one (that cause
    /// would be printed twice), or when [`error_text`] repeats a line.
    fn assert_said_once(what: &str, texts: &[String]) {
        for (i, outer) in texts.iter().enumerate() {
            for inner in texts[i + 1..].iter().filter(|t| !t.trim().is_empty()) {
                assert!(
                    !outer.contains(inner.as_str()),
                    "{what}: {outer:?} repeats its cause {inner:?}"
                );
            }
        }
    }

    /// A typed error and its `source()` chain.
    fn typed(what: &str, e: &(dyn Error + 'static)) {
        let mut texts = vec![e.to_string()];
        let mut cur = e.source();
        while let Some(c) = cur {
            texts.push(c.to_string());
            cur = c.source();
        }
        assert_said_once(what, &texts);
    }

    /// An anyhow chain, and the lines stderr gets for it.
    fn chained(what: &str, e: &anyhow::Error) {
        let texts: Vec<String> = e.chain().map(ToString::to_string).collect();
        assert_said_once(what, &texts);
        let shown = error_text(e);
        let lines: Vec<&str> = shown.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            assert!(
                !lines[i + 1..].contains(l),
                "{what}: line {l:?} twice in\n{shown}"
            );
        }
    }

    fn cli(args: &[&str]) -> anyhow::Error {
        let parsed = Cli::try_parse_from(std::iter::once("cgmig").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        match run(parsed) {
            Ok(code) => panic!("{args:?} worked (exit {code}), the test wants an error"),
            Err(e) => e,
        }
    }

    fn file(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn s(p: &Path) -> &str {
        p.to_str().unwrap()
    }

    /// The bad-input corpus' host tree: a root that scans.
    fn base_root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/bad/base-root")
    }

    #[test]
    fn error_text_prints_the_chain_one_cause_a_line_escaped() {
        let io = std::io::Error::other("disk on fire");
        let e = anyhow::Error::new(io).context("cannot write out.json");
        assert_eq!(
            error_text(&e),
            "cgmig: error: cannot write out.json\n  disk on fire\n"
        );
        let e = anyhow::anyhow!("line one\nline\x1b two");
        assert_eq!(error_text(&e), "cgmig: error: line one\n  line\\x1b two\n");
        // Nothing is hidden any more: a repeat shows (and the tests below
        // make sure no error of cgmig's builds one).
        let e = anyhow::Error::new(std::io::Error::other("disk on fire")).context("x: disk on fire");
        assert_eq!(error_text(&e).matches("disk on fire").count(), 2);
    }

    #[test]
    fn missing_files_say_each_cause_once() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("missing.json");
        chained(
            "read_snapshot",
            &super::super::read_snapshot(&missing).unwrap_err(),
        );
        chained("open_root", &super::super::open_root(Some(&missing)).unwrap_err());
        typed("Root::new", &crate::host::Root::new(&missing).unwrap_err());
        typed(
            "HostSpec::load",
            &crate::fixture::HostSpec::load(&missing).unwrap_err(),
        );
        typed(
            "Journal::read",
            &crate::apply::journal::Journal::read(&missing).unwrap_err(),
        );
        typed(
            "apply read_plan",
            &super::super::apply::read_plan(&missing).unwrap_err(),
        );
        chained(
            "verify read_plan",
            &super::super::verify::read_plan(&missing).unwrap_err(),
        );
        let no_dir = tmp.path().join("no/such/dir/out.json");
        chained("emit", &super::super::emit(Some(&no_dir), "x").unwrap_err());
        let rules = crate::rules::RuleSet::load(&[]).0;
        let fleet = crate::fleet::run(std::slice::from_ref(&missing), &rules, &Default::default());
        if let Err(e) = fleet {
            typed("fleet::run", &e);
        }
        let (_, errors) = crate::rules::RuleSet::load(std::slice::from_ref(&missing));
        for e in &errors {
            typed("RuleSet::load", e);
        }
        let gone = std::fs::remove_dir(&missing).unwrap_err();
        typed(
            "handover rmdir",
            &crate::apply::handover::HandoverError::Rmdir {
                dir: missing,
                err: gone,
            },
        );
        let not_cgroup2 = crate::apply::kernel::locate(tmp.path()).unwrap_err();
        typed("kernel::locate", &not_cgroup2);
    }

    #[test]
    fn bad_documents_say_each_cause_once() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let yaml = file(
            d,
            "snap.yaml",
            "schema: cgmig.snapshot/v1\nhost:\n  hostname: [unclosed\n",
        );
        let json = file(
            d,
            "snap.json",
            "{\"schema\": \"cgmig.snapshot/v1\",\n \"host\": }\n",
        );
        let fields = file(d, "fields.json", "{\"schema\": \"cgmig.snapshot/v1\"}\n");
        let deep = file(d, "deep.json", &"[".repeat(100));
        for p in [&yaml, &json, &fields, &deep] {
            chained("read_snapshot", &super::super::read_snapshot(p).unwrap_err());
            let text = std::fs::read_to_string(p).unwrap();
            typed(
                "parse_snapshot",
                &crate::model::validate::parse_snapshot(&text).unwrap_err(),
            );
            if let Err(e) = crate::report::from_data::<serde_json::Value>(&text) {
                typed("from_data", &e);
            }
            typed("HostSpec::load", &crate::fixture::HostSpec::load(p).unwrap_err());
            typed("apply read_plan", &super::super::apply::read_plan(p).unwrap_err());
            chained(
                "verify read_plan",
                &super::super::verify::read_plan(p).unwrap_err(),
            );
        }
        let rules = d.join("rules");
        std::fs::create_dir(&rules).unwrap();
        file(&rules, "bad.yaml", "- id: x\n  when: [unclosed\n");
        let (_, errors) = crate::rules::RuleSet::check_dir(&rules);
        assert!(!errors.is_empty());
        for e in &errors {
            typed("RuleSet::check_dir", e);
        }
        typed("parse_i64", &crate::model::value::parse_i64("lots").unwrap_err());
        typed(
            "unit_directive",
            &crate::readiness::convert::unit_directive("CPUShares", "lots").unwrap_err(),
        );
        typed(
            "rpm header",
            &crate::readiness::rpmdb::parse_header(b"junk").unwrap_err(),
        );
    }

    #[test]
    fn a_bad_snapshot_graph_says_each_cause_once() {
        let tmp = tempfile::tempdir().unwrap();
        let root = crate::host::Root::new(base_root()).unwrap();
        let snap = crate::scan::scan(&root).unwrap();
        let mut v = serde_json::to_value(&snap).unwrap();
        v["graph"]["edges"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!([0, 0, "child"]));
        let p = file(tmp.path(), "cycle.json", &v.to_string());
        let e = super::super::read_snapshot(&p).unwrap_err();
        assert!(e.to_string().contains("inconsistent snapshot"), "{e}");
        chained("read_snapshot", &e);
    }

    #[test]
    fn a_bad_journal_says_each_cause_once() {
        let tmp = tempfile::tempdir().unwrap();
        let p = file(tmp.path(), "plan.journal", "{\"not\": \"a record\"}\nline two\n");
        let e = crate::apply::journal::Journal::read(&p).unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
        typed("Journal::read", &e);
    }

    #[test]
    fn a_bad_mount_table_and_kernel_errors_say_each_cause_once() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("proc/self")).unwrap();
        file(
            &tmp.path().join("proc/self"),
            "mountinfo",
            "not a mountinfo line\n",
        );
        let root = crate::host::Root::new(tmp.path()).unwrap();
        typed("cgroup_mounts", &root.cgroup_mounts().unwrap_err());
        typed("scan", &crate::scan::scan(&root).unwrap_err());
        let mut sim = crate::apply::Simulator::new(&["cpu"]);
        let e = (&mut sim as &mut dyn Host).mkdir("/no/parent").unwrap_err();
        typed("sim mkdir", &e);
        let errno = nix::mount::umount(tmp.path()).unwrap_err();
        typed(
            "handover umount",
            &crate::apply::handover::HandoverError::Umount {
                mount: s(tmp.path()).into(),
                errno,
            },
        );
    }

    #[test]
    fn commands_on_bad_inputs_say_each_cause_once() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let missing = d.join("missing.json");
        let yaml = file(
            d,
            "snap.yaml",
            "schema: cgmig.snapshot/v1\nhost:\n  hostname: [unclosed\n",
        );
        let mountinfo = d.join("root/proc/self");
        std::fs::create_dir_all(&mountinfo).unwrap();
        file(&mountinfo, "mountinfo", "not a mountinfo line\n");
        let out = d.join("no/such/dir/out.json");
        let (bad_root, base) = (d.join("root"), base_root());
        let runs: Vec<Vec<&str>> = vec![
            vec!["tree", "--snapshot", s(&missing)],
            vec!["tree", "--snapshot", s(&yaml)],
            vec!["plan", "--snapshot", s(&yaml), "--format", "json"],
            vec!["audit", "--root", s(&missing)],
            vec!["scan", "--root", s(&bad_root)],
            vec!["scan", "--root", s(&base), "-o", s(&out)],
            vec!["verify", "--plan", s(&missing), "--snapshot", s(&yaml)],
            vec!["rules", "check", s(&missing)],
            vec!["explain", "no-such-thing"],
            vec!["fleet", s(&missing)],
        ];
        for args in &runs {
            chained(&args.join(" "), &cli(args));
        }
    }
}
