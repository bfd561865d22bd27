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
        let inputs = crate::fleet::Inputs {
            files: vec![missing.clone()],
            errors: Vec::new(),
        };
        let fleet = crate::fleet::run(&inputs, &rules, &Default::default());
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
        ];
        for args in &runs {
            chained(&args.join(" "), &cli(args));
        }
        // fleet is total: a missing input is one unreadable entry of the
        // report and exit 2, not an error that stops the run.
        let parsed = Cli::try_parse_from(["cgmig", "fleet", "--format", "json", s(&missing)]).unwrap();
        assert_eq!(run(parsed).unwrap(), 2);
    }
}
