//! Loading and validating rules files.

use super::*;

const GOOD: &str = "\
- id: test.good
  title: a good rule
  match: {controller: cpu, file: cpu.shares}
  default: \"1024\"
  convert: {target: cpu.weight, function: shares_to_weight, params: {formula: systemd}}
";

fn load_text(text: &str) -> (RuleSet, Vec<RuleError>) {
    let mut set = RuleSet::default();
    let mut errors = Vec::new();
    set.add_source("user/x.yaml", text, &mut errors, false);
    (set, errors)
}

fn one_invalid(text: &str) -> (usize, String, String) {
    let (set, errors) = load_text(text);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(set.get("test.good").is_some(), "the good rule still loads");
    match &errors[0] {
        RuleError::Invalid {
            file,
            line,
            rule,
            problem,
        } => {
            assert_eq!(file, "user/x.yaml");
            (*line, rule.clone(), problem.to_string())
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn embedded_rules_are_valid() {
    let (set, errors) = RuleSet::embedded();
    assert!(errors.is_empty(), "{errors:#?}");
    assert!(set.rules().len() > 60, "{}", set.rules().len());
    // Every v1 setting file the scanner records has a rule (so nothing is silently ignored).
    for f in crate::model::files::V1_SETTINGS {
        assert!(
            set.rules().iter().any(|r| r.file_captures(f).is_some()),
            "no rule covers v1 setting {f}"
        );
    }
    // Origins point into the real files.
    let r = set.get("cpu.shares").unwrap();
    assert_eq!(r.origin.file, "rules/cpu.yaml");
    let text = EMBEDDED.iter().find(|(f, _)| *f == "rules/cpu.yaml").unwrap().1;
    assert!(
        text.lines()
            .nth(r.origin.line - 1)
            .unwrap()
            .contains("id: cpu.shares")
    );
}

#[test]
fn syntax_error_names_file_line_and_column() {
    let (set, errors) = load_text("- id: a\n  title: [unclosed\n");
    assert!(set.rules().is_empty());
    match &errors[..] {
        [RuleError::Syntax { file, line, .. }] => {
            assert_eq!(file, "user/x.yaml");
            assert!(*line >= 2, "line {line}");
        }
        other => panic!("{other:?}"),
    }
    assert!(errors[0].to_string().starts_with("user/x.yaml:"), "{}", errors[0]);
}

#[test]
fn unknown_field_is_one_bad_rule() {
    let text = format!(
        "{GOOD}- id: test.bad\n  title: t\n  match: {{file: cpu.shares}}\n  colour: red\n  default: \"1\"\n"
    );
    let (line, rule, msg) = one_invalid(&text);
    assert_eq!((line, rule.as_str()), (6, "test.bad"));
    assert!(msg.contains("colour"), "{msg}");
}

#[test]
fn unknown_function_is_rejected_with_the_known_list() {
    let text = format!(
        "{GOOD}- id: test.fn\n  title: t\n  match: {{file: cpu.shares}}\n  convert: {{target: cpu.weight, function: magic}}\n"
    );
    let (line, rule, msg) = one_invalid(&text);
    assert_eq!((line, rule.as_str()), (6, "test.fn"));
    assert!(
        msg.contains("unknown function \"magic\"") && msg.contains("shares_to_weight"),
        "{msg}"
    );
}

#[test]
fn bad_parameter_value_is_rejected() {
    let text = format!(
        "{GOOD}- id: test.param\n  title: t\n  match: {{file: cpu.shares}}\n  convert: {{target: cpu.weight, function: shares_to_weight, params: {{formula: cubic}}}}\n"
    );
    let (_, _, msg) = one_invalid(&text);
    assert!(
        msg.contains("formula must be one of oci, oci-legacy, systemd"),
        "{msg}"
    );
}

#[test]
fn duplicate_id_names_both_places() {
    let text = format!("{GOOD}{}", GOOD.replace("a good rule", "again"));
    let (line, rule, msg) = one_invalid(&text);
    assert_eq!((line, rule.as_str()), (6, "test.good"));
    assert!(
        msg.contains("duplicate id (first defined at user/x.yaml:1)"),
        "{msg}"
    );
}

#[test]
fn bad_regex_is_rejected() {
    let text = format!(
        "{GOOD}- id: test.re\n  title: t\n  match: {{file_regex: 'cpu\\.(shares'}}\n  default: \"1\"\n"
    );
    let (line, rule, msg) = one_invalid(&text);
    assert_eq!((line, rule.as_str()), (6, "test.re"));
    assert!(msg.contains("bad file regex"), "{msg}");
}

#[test]
fn semantic_errors() {
    for (body, expect) in [
        (
            "  match: {fact: boot-param}\n  finding: {severity: info, why: w, remediation: r}\n",
            "needs param",
        ),
        (
            "  match: {file: a, fact: legacy-mode}\n  default: \"1\"\n",
            "both a file and a fact",
        ),
        ("  match: {file: a}\n", "says nothing"),
        (
            "  match: {controller: cpux, file: a}\n  default: \"1\"\n",
            "unknown controller",
        ),
        (
            "  match: {file: a}\n  default: \"1\"\n  kernel: five\n",
            "not a version",
        ),
        ("  match: {fact: nonsense}\n  default: \"1\"\n", "unknown variant"),
        (
            "  match: {file: a}\n  finding: {severity: fatal, why: w, remediation: r}\n",
            "unknown variant",
        ),
    ] {
        let text = format!("{GOOD}- id: test.sem\n  title: t\n{body}");
        let (_, _, msg) = one_invalid(&text);
        assert!(msg.contains(expect), "{body}: {msg}");
    }
}

#[test]
fn user_directory_overrides_by_id_and_adds() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("site.yaml"),
        "- id: cpu.shares\n  title: site policy\n  match: {controller: cpu, file: cpu.shares}\n  default: \"1024\"\n  convert: {target: cpu.weight, function: shares_to_weight, params: {formula: systemd}}\n- id: site.extra\n  title: extra\n  match: {fact: legacy-mode}\n  finding: {severity: blocker, why: w, remediation: r}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("broken.yaml"), "- id: [\n").unwrap();
    std::fs::write(dir.path().join("ignored.txt"), "not rules").unwrap();
    let (set, errors) = RuleSet::load(&[dir.path().to_path_buf()]);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].to_string().contains("broken.yaml"), "{}", errors[0]);
    let shares = set.get("cpu.shares").unwrap();
    assert_eq!(shares.rule.title, "site policy");
    assert!(shares.origin.file.ends_with("site.yaml"));
    assert!(set.get("site.extra").is_some());
    let (embedded, _) = RuleSet::embedded();
    assert_eq!(set.rules().len(), embedded.rules().len() + 1);
}

#[test]
fn defaults() {
    let (set, _) = RuleSet::embedded();
    let cpu = [crate::model::Controller::Cpu];
    assert!(set.is_default("cpu.shares", &cpu, "1024", None));
    assert!(!set.is_default("cpu.shares", &cpu, "512", None));
    let mem = [crate::model::Controller::Memory];
    assert!(set.is_default("memory.limit_in_bytes", &mem, "9223372036854771712", None));
    assert!(!set.is_default("memory.limit_in_bytes", &mem, "1073741824", None));
    assert!(set.is_default(
        "memory.oom_control",
        &mem,
        "oom_kill_disable 0\nunder_oom 0",
        None
    ));
    assert!(!set.is_default(
        "memory.oom_control",
        &mem,
        "oom_kill_disable 1\nunder_oom 0",
        None
    ));
    let cs = [crate::model::Controller::Cpuset];
    assert!(set.is_default("cpuset.cpus", &cs, "0-3", Some("0-3")));
    assert!(!set.is_default("cpuset.cpus", &cs, "0-1", Some("0-3")));
    // A file in a hierarchy without its controller matches no rule.
    assert!(!set.is_default("cpu.shares", &mem, "1024", None));
}

#[test]
fn parse_kernel_versions() {
    assert_eq!(parse_kernel("5.14"), Some((5, 14)));
    assert_eq!(parse_kernel("3.10.0-1160.el7.x86_64"), Some((3, 10)));
    assert_eq!(parse_kernel("6.18.44-fc-v595"), Some((6, 18)));
    assert_eq!(parse_kernel("x"), None);
}

#[test]
fn docs_cover_every_rule() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/conversions.md")).unwrap();
    let (set, _) = RuleSet::embedded();
    let missing: Vec<&str> = set
        .rules()
        .iter()
        .map(|r| r.rule.id.as_str())
        .filter(|id| !doc.contains(&format!("| `{id}` |")))
        .collect();
    assert!(missing.is_empty(), "docs/conversions.md lacks {missing:?}");
}

/// `rules check`, `audit --rules` and `plan --rules` judge a directory the
/// same way: an id defined in two user files is one error, the same text.
#[test]
fn duplicate_id_across_user_files_is_the_same_error_everywhere() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("a.yaml"), GOOD).unwrap();
    std::fs::write(d.path().join("b.yaml"), GOOD).unwrap();
    let (_, check) = RuleSet::check_dir(d.path());
    let (_, load) = RuleSet::load(&[d.path().to_path_buf()]);
    assert_eq!(check.len(), 1, "{check:?}");
    assert_eq!(check, load);
    assert!(
        check[0].to_string().contains("duplicate id (first defined at"),
        "{}",
        check[0]
    );
    // Overriding a built-in rule stays allowed.
    let e = tempfile::tempdir().unwrap();
    let (set, errs) = RuleSet::embedded();
    let builtin = set.rules()[0].rule.clone();
    std::fs::write(
        e.path().join("o.yaml"),
        serde_yaml_ng::to_string(&vec![builtin]).unwrap(),
    )
    .unwrap();
    assert!(errs.is_empty());
    let (_, load) = RuleSet::load(&[e.path().to_path_buf()]);
    assert!(load.is_empty(), "{load:?}");
}

#[test]
fn targets_and_leaf_names_cannot_escape() {
    for target in [
        "../../../etc/cron.d/x",
        "cgroup.procs",
        "memory.max",
        "cpu.weight/../../x",
    ] {
        let text = format!(
            "- id: test.bad\n  title: t\n  match: {{controller: cpu, file: cpu.shares}}\n  convert: {{target: \"{target}\", function: copy}}\n"
        );
        let (set, errors) = load_text(&text);
        assert!(
            set.get("test.bad").is_none() && errors.len() == 1,
            "{target}: {errors:?}"
        );
    }
    for leaf in ["../x", "a/b", "cgroup.procs", ""] {
        let (set, errors) = load_text(&format!("plan:\n  leaf_name: \"{leaf}\"\n"));
        assert_eq!(errors.len(), 1, "{leaf}: {errors:?}");
        assert_eq!(set.policy().leaf_name, "leaf");
    }
}

#[test]
fn special_files_in_a_rules_dir_are_errors_not_hangs() {
    let d = tempfile::tempdir().unwrap();
    nix::unistd::mkfifo(
        &d.path().join("fifo.yaml"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    std::fs::create_dir(d.path().join("dir.yaml")).unwrap();
    let (_, errors) = RuleSet::check_dir(d.path());
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors.iter().any(|e| e.to_string().contains("FIFO")),
        "{errors:?}"
    );
}

/// A rules file written for an older cgmig still loads with the former
/// name of a conversion function, as the current name.
#[test]
fn former_function_name_loads_as_the_current_one() {
    let (set, errors) = load_text(
        "\
- id: test.soft
  title: soft limit
  match: {controller: memory, file: memory.soft_limit_in_bytes}
  convert: {target: memory.low, function: limit_to_max}
",
    );
    assert!(errors.is_empty(), "{errors:?}");
    let r = set.get("test.soft").unwrap();
    assert_eq!(r.rule.convert.as_ref().unwrap().function, "byte_limit_or_max");
    // Every former name maps to a function that exists.
    for (_, current) in engine::FORMER_NAMES {
        assert!(FUNCTIONS.iter().any(|f| f.name == *current), "{current}");
    }
}

/// Rule ids follow the scheme in docs/rules.md ("Rule ids"): `PREFIX.NAME`
/// where PREFIX is the rule's v1 controller, `core` for core files, or
/// `host` for fact rules.
#[test]
fn rule_ids_follow_the_scheme() {
    let (set, errors) = RuleSet::embedded();
    assert!(errors.is_empty(), "{errors:#?}");
    for r in set.rules() {
        let id = r.rule.id.as_str();
        let (prefix, name) = id
            .split_once('.')
            .unwrap_or_else(|| panic!("{id}: no PREFIX.NAME"));
        assert!(
            !name.is_empty()
                && id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c)),
            "{id}: lower case letters, digits, '.', '_' and '-' only"
        );
        let m = &r.rule.matcher;
        let expected = match (&m.fact, &m.controller) {
            (Some(_), _) => "host",
            (None, Some(c)) => c.as_str(),
            (None, None) => "core",
        };
        assert_eq!(prefix, expected, "{id} (in {})", r.origin.file);
    }
}

/// Each error names the file, the line and the rule once, with the cause's
/// text exactly once, whether the cause is cgmig's (function, target) or a
/// library's (regex, YAML shape); no message repeats its `source()`.
#[test]
fn rule_errors_print_each_cause_once() {
    for (body, cause) in [
        (
            "  match: {controller: cpu, file: a}\n  convert: {target: cpu.weight, function: nope}\n",
            "unknown function \"nope\"",
        ),
        (
            "  match: {controller: cpu, file: a}\n  convert: {target: cpu.weight, function: shares_to_weight, params: {formula: x}}\n",
            "function shares_to_weight: formula must be one of oci, oci-legacy, systemd, not \"x\"",
        ),
        (
            "  match: {controller: cpu, file: a}\n  convert: {target: memory.max, function: copy}\n",
            "convert target \"memory.max\" is not a file of controller cpu (allowed: cpu.*)",
        ),
        (
            "  match: {file_regex: \"(\"}\n  default: \"1\"\n",
            "bad file regex \"(\"",
        ),
    ] {
        let text = format!("{GOOD}- id: test.cause\n  title: t\n{body}");
        let (set, errors) = load_text(&text);
        assert!(set.get("test.good").is_some());
        let [e] = errors.as_slice() else {
            panic!("{errors:?}")
        };
        let msg = e.to_string();
        assert!(msg.starts_with("user/x.yaml:6: rule test.cause: "), "{msg}");
        assert_eq!(msg.matches(cause).count(), 1, "{msg}");
        let mut level: &dyn std::error::Error = e;
        while let Some(source) = level.source() {
            assert!(
                !level.to_string().contains(&source.to_string()),
                "{level} repeats {source}"
            );
            level = source;
        }
    }
}
