//! Output that fits (issue 24) and cannot be forged (issue 21): every human
//! output of every command at 80 and 200 columns, with and without colour,
//! has no line wider than the terminal and no raw control or bidi
//! character; reviewed snapshots at both widths; closed pipes are quiet;
//! `-o FORMAT` is refused; `verify` on an unswitched host says so (exit 3);
//! `convert` says when there is nothing to convert; hostile text from
//! inputs is shown escaped in tables and cannot forge markdown rows.

use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::util::*;

/// Run cgmig with `COLUMNS` set and no pager.
fn at(columns: usize, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cgmig"))
        .args(args)
        .env("COLUMNS", columns.to_string())
        .env_remove("NO_COLOR")
        .output()
        .unwrap()
}

/// Display width of a line, SGR colour sequences not counted.
fn visible(line: &str) -> usize {
    let mut w = 0;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
            continue;
        }
        w += unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
    }
    w
}

/// No line wider than `columns`; no control character but `\n` (and the
/// SGR colour sequences when `colour`); no bidi or invisible format
/// character.
fn fits(what: &str, text: &str, columns: usize, colour: bool) {
    for l in text.lines() {
        assert!(
            visible(l) <= columns,
            "{what} at {columns}: {} columns:\n{l}",
            visible(l)
        );
        let mut rest = l;
        if colour {
            while let Some(i) = rest.find("\x1b[") {
                let tail = &rest[i + 2..];
                let end = tail.find('m').expect("an SGR sequence ends with m");
                assert!(
                    tail[..end].chars().all(|c| c.is_ascii_digit() || c == ';'),
                    "{what}: {l:?}"
                );
                rest = &tail[end + 1..];
            }
        }
        for c in rest.chars() {
            assert!(
                !c.is_control()
                    && !matches!(c as u32, 0x200b..=0x200f | 0x202a..=0x202e | 0x2066..=0x2069 | 0xfeff),
                "{what} at {columns}: raw {c:?} in {l:?}"
            );
        }
    }
    if !colour {
        assert!(!text.contains("\x1b["), "{what}: colour without asking");
    }
}

/// Every human command on one fixture host, as (name, args).
fn human_commands<'a>(root: &'a str, snap: &'a str, plan: &'a str) -> Vec<(String, Vec<&'a str>)> {
    vec![
        ("tree".into(), vec!["tree", "--root", root]),
        (
            "audit".into(),
            vec!["audit", "--root", root, "--fail-on", "never"],
        ),
        ("plan".into(), vec!["plan", "--root", root]),
        (
            "plan stage 1".into(),
            vec!["plan", "--root", root, "--stage", "1"],
        ),
        ("fleet".into(), vec!["fleet", snap]),
        (
            "verify".into(),
            vec!["verify", "--plan", plan, "--snapshot", snap, "--fail-on", "never"],
        ),
        (
            "apply dry run".into(),
            vec!["apply", plan, "--dry-run", "--snapshot", snap],
        ),
        ("explain".into(), vec!["explain", "cpu.shares"]),
        ("rules list".into(), vec!["rules", "list"]),
    ]
}

/// Scan a fixture into a snapshot and a plan file in `dir`.
fn files(name: &str, dir: &Path) -> (Host, String, String) {
    let h = host(name);
    let snap = dir.join(format!("{name}.json"));
    let plan = dir.join(format!("{name}.plan.json"));
    let root = h.root().to_str().unwrap().to_string();
    assert!(
        cgmig(&["scan", "--root", &root, "-o", snap.to_str().unwrap()])
            .status
            .success()
    );
    let o = cgmig(&[
        "plan",
        "--root",
        &root,
        "--format",
        "json",
        "--fail-on",
        "never",
        "-o",
        plan.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    (h, snap.display().to_string(), plan.display().to_string())
}

fn every_output_fits(name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (h, snap, plan) = files(name, dir.path());
    let root = h.root().to_str().unwrap();
    for (what, args) in human_commands(root, &snap, &plan) {
        for columns in [80, 200] {
            for colour in ["never", "always"] {
                let mut a = args.clone();
                a.extend(["--color", colour]);
                let o = at(columns, &a);
                assert!(
                    matches!(o.status.code(), Some(0..=3)),
                    "{name} {what}: {}",
                    stderr(&o)
                );
                let text = stdout(&o);
                fits(&format!("{name} {what}"), &text, columns, colour == "always");
                if colour == "always" && has_severity(&what, &text) {
                    assert!(text.contains("\x1b["), "{name} {what}: no colour");
                }
            }
        }
    }
}
per_host!(every_output_fits_host, every_output_fits);

/// Whether a command's output has something coloured: a severity or a
/// verdict (tree, explain and rules list have none).
fn has_severity(what: &str, text: &str) -> bool {
    let coloured = ["audit", "plan", "plan stage 1", "fleet", "verify"];
    coloured.contains(&what)
        && [
            "blocker",
            "error",
            "warning",
            "READY WITH",
            "BLOCKED",
            "INCOMPLETE",
            "FAILED",
        ]
        .iter()
        .any(|w| text.contains(w))
}

/// Reviewed: the plan, the audit and the tree of one host at 80 and 200
/// columns, and the audit at 80 in colour.
#[test]
fn reviewed_outputs_at_80_and_200_columns() {
    let h = host("k8s-systemd");
    let root = h.root().to_str().unwrap();
    for columns in [80, 200] {
        for (what, args) in [
            ("plan", vec!["plan", "--root", root]),
            ("audit", vec!["audit", "--root", root]),
            ("tree", vec!["tree", "--root", root]),
        ] {
            let o = at(columns, &args);
            let text = redact(&stdout(&o), h.root());
            fits(what, &text, columns, false);
            insta::assert_snapshot!(format!("{what}-k8s-systemd-{columns}"), text);
        }
    }
    let o = at(80, &["audit", "--root", root, "--color", "always"]);
    let text = redact(&stdout(&o), h.root());
    fits("audit colour", &text, 80, true);
    insta::assert_snapshot!("audit-k8s-systemd-80-colour", text);
    // NO_COLOR wins over auto, never over always.
    let o = Command::new(env!("CARGO_BIN_EXE_cgmig"))
        .args(["audit", "--root", root, "--color", "auto"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(!stdout(&o).contains('\x1b'));
}

/// `cgmig scan | head -1`: exit 0, nothing on stderr.
#[test]
fn a_closed_pipe_is_quiet() {
    let h = host("k8s-cgroupfs");
    for args in [
        vec!["scan", "--root", h.root().to_str().unwrap()],
        vec!["plan", "--root", h.root().to_str().unwrap(), "--format", "json"],
        vec!["audit", "--root", h.root().to_str().unwrap()],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cgmig"))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = child.stdout.take().unwrap();
        let mut first = [0u8; 1];
        out.read_exact(&mut first).unwrap();
        drop(out);
        let mut err = String::new();
        child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?}: {err}");
    }
}

#[test]
fn output_given_a_format_name_is_refused_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    for (cmd, f) in [
        ("audit", "json"),
        ("plan", "yaml"),
        ("scan", "json"),
        ("verify", "prometheus"),
    ] {
        let mut args = vec![cmd];
        if cmd == "verify" {
            args.extend(["--plan", "p.json"]);
        }
        args.extend(["-o", f]);
        let o = Command::new(env!("CARGO_BIN_EXE_cgmig"))
            .args(&args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&o).contains(&format!("use --format {f}")),
            "{args:?}: {}",
            stderr(&o)
        );
        assert!(!dir.path().join(f).exists(), "{args:?} wrote a file called {f}");
    }
}

#[test]
fn verify_on_an_unswitched_host_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (_h, snap, plan) = files("centos7-legacy", dir.path());
    let o = cgmig(&["verify", "--plan", &plan, "--snapshot", &snap]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("not switched yet"), "{}", stderr(&o));
    assert!(stdout(&o).is_empty());
}

#[test]
fn convert_says_when_there_is_nothing_to_convert() {
    let h = host("pure-v2");
    let o = cgmig(&["convert", "--root", h.root().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("nothing to convert"), "{}", stdout(&o));
}

#[test]
fn completions_leave_out_hidden_commands_and_man_pages_say_exit_status() {
    for sh in ["bash", "zsh", "fish"] {
        let text = stdout(&cgmig(&["completions", sh]));
        assert!(text.contains("stages") && text.contains("no-pager"), "{sh}");
        assert!(
            !text
                .split(|c: char| !c.is_ascii_alphanumeric() && c != '_' && c != '-')
                .any(|w| w == "man"),
            "{sh}: offers the hidden man command"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    assert!(
        cgmig(&["man", "-o", dir.path().to_str().unwrap()])
            .status
            .success()
    );
    for page in ["cgmig.1", "cgmig-audit.1", "cgmig-verify.1", "cgmig-apply.1"] {
        let text = std::fs::read_to_string(dir.path().join(page)).unwrap();
        assert!(
            text.contains(".SH \"EXIT STATUS\"") && text.contains(".SH ENVIRONMENT"),
            "{page}"
        );
        assert!(text.contains("NO_COLOR") && text.contains("COLUMNS"), "{page}");
    }
    let verify = std::fs::read_to_string(dir.path().join("cgmig-verify.1")).unwrap();
    assert!(verify.contains("not switched yet"), "{verify}");
}

/// Hostile text from a snapshot and an audit: terminal escapes, OSC
/// hyperlinks and bidi controls are shown escaped in the tables, and a rule
/// id with a newline cannot forge a row of fleet's markdown.
#[test]
fn hostile_inputs_reach_no_output_raw() {
    let dir = tempfile::tempdir().unwrap();
    let h = host("k8s-systemd");
    let root = h.root().to_str().unwrap();
    let audit = stdout(&cgmig(&[
        "audit",
        "--root",
        root,
        "--format",
        "json",
        "--fail-on",
        "never",
    ]));
    let mut v: serde_json::Value = serde_json::from_str(&audit).unwrap();
    let evil = "evil\u{1b}]8;;http://x\u{7}link\u{1b}[2J\u{202e}gpj.exe";
    v["host"]["hostname"] = evil.into();
    v["groups"][0]["rule"] = "forged\n| blocker | injected.rule | 1 | x |".into();
    v["groups"][0]["title"] = evil.into();
    let audit_file = dir.path().join("audit.json");
    std::fs::write(&audit_file, v.to_string()).unwrap();
    let a = audit_file.to_str().unwrap();
    for format in ["table", "markdown"] {
        let o = at(80, &["fleet", a, "--format", format]);
        let text = stdout(&o);
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{202e}') && !text.contains('\u{7}'),
            "{format}:\n{text}"
        );
        assert!(
            text.contains("\\x1b]8;;http://"),
            "{format} shows the escape:\n{text}"
        );
        if format == "markdown" {
            assert!(
                !text.lines().any(|l| l.starts_with("| blocker | injected.rule")),
                "a forged row:\n{text}"
            );
        }
    }
}
