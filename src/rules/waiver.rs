//! Waivers: a finding someone has looked at and accepts, by rule id and
//! optionally by cgroup path (a glob), with who accepted it and why.
//!
//! A waiver never changes a finding's severity and never hides it: the
//! finding stays in every report, marked waived with the waiver's who/why
//! text, and only the verdict and `--fail-on` leave it out
//! ([`super::Verdict::judge`], [`super::FailOn::fails`]). Waivers come from
//! `--waive RULE[@PATH-GLOB]` and from a YAML file (`--waivers FILE`), which
//! is read like a rules file: every problem comes back naming the file and
//! line, and one bad entry never hides the others.

use std::path::Path;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::{Finding, Subject};

/// One waiver, as a waivers file writes it and as a waived finding carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Waiver {
    /// The finding id it accepts (`devices.list`, `plan.conflict`, `WR-GO-002`).
    pub rule: String,
    /// Only findings about a cgroup whose path matches this glob (`*` within
    /// one path component, `**` across components, `?` one character).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Who accepted it.
    pub who: String,
    /// Why it is accepted.
    pub why: String,
}

impl Waiver {
    /// `RULE` or `RULE@PATH-GLOB` from the command line.
    pub fn from_arg(arg: &str) -> Result<Waiver, WaiverError> {
        let (rule, path) = match arg.split_once('@') {
            Some((r, p)) => (r, Some(p.to_string())),
            None => (arg, None),
        };
        let w = Waiver {
            rule: rule.trim().to_string(),
            path,
            who: "the command line".into(),
            why: format!("--waive {arg}"),
        };
        w.check().map_err(|problem| WaiverError::Arg {
            arg: arg.to_string(),
            problem,
        })?;
        Ok(w)
    }

    /// What is wrong with a waiver, if anything.
    fn check(&self) -> Result<(), String> {
        if self.rule.trim().is_empty() {
            return Err("no rule id".into());
        }
        if self.who.trim().is_empty() || self.why.trim().is_empty() {
            return Err("a waiver says who accepts the finding (`who:`) and why (`why:`)".into());
        }
        if let Some(p) = &self.path
            && !p.starts_with('/')
        {
            return Err(format!(
                "path {p:?} is not a cgroup path glob (it starts with `/`)"
            ));
        }
        Ok(())
    }

    /// `rule` or `rule@glob`, as `--waive` takes it.
    pub fn pattern(&self) -> String {
        match &self.path {
            Some(p) => format!("{}@{p}", self.rule),
            None => self.rule.clone(),
        }
    }
}

/// A waiver that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WaiverError {
    /// A `--waive` argument.
    #[error("--waive {arg}: {problem}")]
    Arg {
        /// The argument.
        arg: String,
        /// What is wrong.
        problem: String,
    },
    /// The file could not be read (not a regular file, too large, not UTF-8, an OS error).
    #[error("{message}")]
    Io {
        /// The file.
        file: String,
        /// What went wrong, naming the file.
        message: String,
    },
    /// The YAML is broken or is not a list of waivers.
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        /// The file.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// One waiver is invalid (the others still load).
    #[error("{file}:{line}: waiver {rule}: {problem}")]
    Invalid {
        /// The file.
        file: String,
        /// 1-based line of the waiver.
        line: usize,
        /// Its rule id (or `#N`).
        rule: String,
        /// What is wrong.
        problem: String,
    },
}

/// The waivers in force for one command.
#[derive(Debug, Clone, Default)]
pub struct Waivers {
    list: Vec<(Waiver, Option<Regex>)>,
}

impl Waivers {
    /// No waiver.
    pub fn none() -> Waivers {
        Waivers::default()
    }

    /// Add a checked waiver.
    pub fn push(&mut self, w: Waiver) {
        let re = w.path.as_deref().map(glob_regex);
        self.list.push((w, re));
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Every waiver, in the order given.
    pub fn iter(&self) -> impl Iterator<Item = &Waiver> {
        self.list.iter().map(|(w, _)| w)
    }

    /// Read a waivers file: a YAML list of waivers. Returns the good ones
    /// and every problem, each naming the file and line.
    pub fn load_file(&mut self, path: &Path) -> Vec<WaiverError> {
        let file = path.display().to_string();
        // Through the door every user-named document takes: a regular file
        // (a FIFO does not block), bounded, UTF-8, nested no deeper than the
        // loaders accept.
        let text = match crate::host::door::read_text(path, crate::host::MAX_DOCUMENT_BYTES) {
            Ok(t) => t,
            Err(e) => {
                return vec![WaiverError::Io {
                    file,
                    message: e.to_string(),
                }];
            }
        };
        if let Err(e) = crate::host::door::check_depth(&text) {
            return vec![WaiverError::Syntax {
                file,
                line: e.line,
                column: 1,
                message: format!("nested deeper than {} levels", crate::host::door::MAX_DEPTH),
            }];
        }
        self.load_text(&file, &text)
    }

    /// [`Waivers::load_file`] on text already read.
    pub fn load_text(&mut self, file: &str, text: &str) -> Vec<WaiverError> {
        let items = match serde_yaml_ng::from_str::<Option<Vec<serde_yaml_ng::Value>>>(text) {
            Ok(v) => v.unwrap_or_default(),
            Err(e) => {
                let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
                return vec![WaiverError::Syntax {
                    file: file.to_string(),
                    line,
                    column,
                    message: format!("not a list of waivers: {e}"),
                }];
            }
        };
        let lines = super::item_lines(text, items.len());
        let mut errors = Vec::new();
        for (i, item) in items.into_iter().enumerate() {
            let line = lines.get(i).copied().unwrap_or(1);
            let rule = item
                .get("rule")
                .and_then(|r| r.as_str())
                .map_or_else(|| format!("#{}", i + 1), str::to_string);
            let parsed = serde_yaml_ng::from_value::<Waiver>(item)
                .map_err(|e| e.to_string())
                .and_then(|w| w.check().map(|()| w));
            match parsed {
                Ok(w) => self.push(w),
                Err(problem) => errors.push(WaiverError::Invalid {
                    file: file.to_string(),
                    line,
                    rule,
                    problem,
                }),
            }
        }
        errors
    }

    /// The first waiver that accepts a finding.
    pub fn matching(&self, f: &Finding) -> Option<&Waiver> {
        let path = match &f.subject {
            Subject::Cgroup { path, .. } => Some(path.as_str()),
            _ => None,
        };
        self.list
            .iter()
            .find(|(w, re)| {
                f.rule == w.rule.as_str()
                    && match (re, path) {
                        (None, _) => true,
                        (Some(re), Some(p)) => re.is_match(p),
                        (Some(_), None) => false,
                    }
            })
            .map(|(w, _)| w)
    }

    /// Mark every finding a waiver accepts (a finding already waived in the
    /// document it came from keeps that waiver).
    pub fn apply(&self, findings: &mut [Finding]) {
        if self.list.is_empty() {
            return;
        }
        for f in findings.iter_mut().filter(|f| f.waived.is_none()) {
            if let Some(w) = self.matching(f) {
                f.waived = Some(Box::new(w.clone()));
            }
        }
    }
}

/// A path glob as an anchored regex: `**` any text, `*` any text but `/`,
/// `?` one character but `/`, everything else literal.
fn glob_regex(glob: &str) -> Regex {
    let mut re = String::from("^");
    let mut chars = glob.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                re.push_str(".*");
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    // Built only from escaped literals and the three fixed pieces above.
    Regex::new(&re).unwrap_or_else(|_| Regex::new("^$").expect("a literal regex"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Severity;

    fn finding(rule: &str, path: Option<&str>) -> Finding {
        Finding {
            rule: rule.into(),
            severity: Severity::Blocker,
            title: "t".into(),
            subject: match path {
                Some(p) => Subject::Cgroup {
                    hierarchy: crate::model::HierarchyId::UNIFIED,
                    label: "v2".into(),
                    path: p.into(),
                },
                None => Subject::Host,
            },
            file: None,
            value: None,
            detail: None,
            why: String::new(),
            remediation: "r".into(),
            kernel: None,
            source: None,
            waived: None,
        }
    }

    #[test]
    fn globs_match_within_and_across_components() {
        let mut w = Waivers::none();
        w.push(Waiver::from_arg("devices.list@/kubepods/*").unwrap());
        w.push(Waiver::from_arg("plan.conflict@/a/**").unwrap());
        assert!(
            w.matching(&finding("devices.list", Some("/kubepods/pod1")))
                .is_some()
        );
        assert!(
            w.matching(&finding("devices.list", Some("/kubepods/pod1/c")))
                .is_none()
        );
        assert!(
            w.matching(&finding("devices.list", None)).is_none(),
            "a path waiver needs a path"
        );
        assert!(w.matching(&finding("plan.conflict", Some("/a/b/c"))).is_some());
        assert!(w.matching(&finding("plan.conflict", Some("/ab"))).is_none());
        let mut fs = vec![
            finding("devices.list", Some("/kubepods/x")),
            finding("other", None),
        ];
        w.apply(&mut fs);
        assert!(fs[0].waived.is_some() && fs[1].waived.is_none());
        assert_eq!(
            fs[0].severity,
            Severity::Blocker,
            "a waiver never changes the severity"
        );
    }

    #[test]
    fn bad_waivers_name_the_file_and_line() {
        let text = "- rule: devices.list\n  who: ops\n  why: rebuilt\n- rule: plan.conflict\n  who: ''\n  why: x\n- rule: x\n  who: a\n  why: b\n  path: kubepods\n- rule: y\n  who: a\n  why: b\n  colour: red\n";
        let mut w = Waivers::none();
        let errors = w.load_text("w.yaml", text);
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(w.iter().count(), 1, "{text:?}");
        assert!(
            text[0].starts_with("w.yaml:4: waiver plan.conflict: "),
            "{text:?}"
        );
        assert!(
            text[1].starts_with("w.yaml:7: waiver x: path \"kubepods\""),
            "{text:?}"
        );
        assert!(
            text[2].starts_with("w.yaml:11: waiver y: unknown field `colour`"),
            "{text:?}"
        );
        let e = Waivers::none().load_text("w.yaml", "rule: [");
        assert!(e[0].to_string().starts_with("w.yaml:1:"), "{e:?}");
        assert!(Waiver::from_arg("@/x").is_err());
    }
}
