//! Rules as data: what each v1 setting or host fact means for v2.
//!
//! The default rules live in `rules/*.yaml` and are embedded in the binary;
//! `--rules DIR` adds more and overrides by id. Loading never stops at the
//! first bad rule: every problem comes back as a [`RuleError`] naming the
//! file, line and rule, and every good rule still loads (ripgrep's
//! `ignore::Error::Partial` idea).

pub mod convert;
mod engine;
mod finding;
pub(crate) mod kind;
mod schema;
mod verdict;
mod waiver;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use regex::Regex;
use thiserror::Error;

pub use engine::{Conversion, FUNCTIONS, FunctionError, FunctionInfo, convert_setting};
pub use finding::{Finding, Subject, Text};
pub use kind::FindingKind;
pub use schema::*;
pub use verdict::{FailOn, Verdict};
pub use waiver::{Waiver, WaiverError, Waivers};

/// The default rules, embedded at build time.
pub const EMBEDDED: &[(&str, &str)] = &[
    ("rules/core.yaml", include_str!("../../rules/core.yaml")),
    ("rules/cpu.yaml", include_str!("../../rules/cpu.yaml")),
    ("rules/cpuset.yaml", include_str!("../../rules/cpuset.yaml")),
    ("rules/memory.yaml", include_str!("../../rules/memory.yaml")),
    ("rules/blkio.yaml", include_str!("../../rules/blkio.yaml")),
    ("rules/misc.yaml", include_str!("../../rules/misc.yaml")),
    ("rules/host.yaml", include_str!("../../rules/host.yaml")),
    ("rules/plan.yaml", include_str!("../../rules/plan.yaml")),
];

/// Where a rule was defined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// File name (`rules/cpu.yaml` for embedded rules).
    pub file: String,
    /// 1-based line of the rule's first line.
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A problem in a rules file.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RuleError {
    /// The file could not be read.
    #[error("{file}: cannot read: {message}")]
    Io {
        /// The file or directory.
        file: String,
        /// The OS error.
        message: String,
    },
    /// The YAML itself is broken; the whole file is skipped.
    #[error("{file}:{line}:{column}: YAML syntax error: {message}")]
    Syntax {
        /// The file.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// Parser message.
        message: String,
    },
    /// One rule is invalid; it is skipped and the others load.
    #[error("{file}:{line}: rule {rule}: {problem}")]
    Invalid {
        /// The file.
        file: String,
        /// 1-based line of the rule.
        line: usize,
        /// The rule id (or `#N` when it has none).
        rule: String,
        /// What is wrong (part of the message: `cli::print_rule_errors` in the
        /// CLI prints each error on one line, so it is not a `#[source]`).
        problem: RuleProblem,
    },
}

/// What is wrong with one rule (or with a `plan:` policy file).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RuleProblem {
    /// The item does not deserialize into a rule (the parser's message).
    #[error("{0}")]
    Shape(String),
    /// `id:` is empty.
    #[error("empty id")]
    EmptyId,
    /// `match:` names neither a file nor a fact.
    #[error("match needs one of file, file_regex or fact")]
    NoMatch,
    /// `match:` names a file twice.
    #[error("match has both file and file_regex")]
    FileAndRegex,
    /// `match:` names a file and a fact.
    #[error("match has both a file and a fact")]
    FileAndFact,
    /// `fact: boot-param` without `param:`.
    #[error("fact boot-param needs param")]
    BootParamWithoutParam,
    /// `param:` on another fact.
    #[error("param is only for fact boot-param")]
    ParamWithoutBootParam,
    /// A controller cgmig does not know.
    #[error("unknown controller {0:?}")]
    UnknownController(String),
    /// No convert, finding or default.
    #[error("rule says nothing: give convert, finding or default")]
    SaysNothing,
    /// A fact rule with default or convert.
    #[error("a fact rule cannot have default or convert")]
    FactWithFileFields,
    /// The conversion function or its parameters.
    #[error(transparent)]
    Function(#[from] FunctionError),
    /// The conversion target.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// The planner policy's leaf name.
    #[error(transparent)]
    LeafName(#[from] LeafNameError),
    /// A control character in the id or title.
    #[error("{0} contains a control character")]
    ControlCharacter(&'static str),
    /// A control character (other than a newline) in the finding's text.
    #[error("finding text contains a control character")]
    FindingControlCharacter,
    /// A regex that does not compile (the regex crate's message).
    #[error("bad {what} regex {regex:?}: {message}")]
    BadRegex {
        /// Which regex (`file`, `value`, `default`).
        what: &'static str,
        /// The regex as written.
        regex: String,
        /// Why it does not compile.
        message: String,
    },
    /// `kernel:` is not a version.
    #[error("kernel {0:?} is not a version like 5.14")]
    BadKernel(String),
    /// The id is already defined.
    #[error("duplicate id (first defined at {0})")]
    Duplicate(Origin),
    /// A `keep:` path of the policy is not a cgroup path.
    #[error("keep path {0:?} is not an absolute normalized cgroup path")]
    BadKeepPath(String),
}

/// A loaded rule with its origin and compiled regexes.
#[derive(Debug, Clone)]
pub struct LoadedRule {
    /// The rule as written.
    pub rule: Rule,
    /// Where it came from.
    pub origin: Origin,
    file_regex: Option<Regex>,
    value_regex: Option<Regex>,
    value_not_regex: Option<Regex>,
    default_regex: Option<Regex>,
    text: RuleText,
}

/// A rule's texts that every finding of it repeats, allocated once per rule
/// and shared by its findings (a big host has tens of thousands).
#[derive(Debug, Clone)]
pub struct RuleText {
    /// The id.
    pub id: Text,
    /// The title.
    pub title: Text,
    /// The source.
    pub source: Option<Text>,
    /// The finding's remediation, trimmed, when it has no `{placeholder}`
    /// to fill (the same text for every finding).
    pub remediation: Option<Text>,
}

impl RuleText {
    fn of(rule: &Rule) -> RuleText {
        RuleText {
            id: rule.id.as_str().into(),
            title: rule.title.as_str().into(),
            source: rule.source.as_deref().map(Into::into),
            remediation: rule
                .finding
                .as_ref()
                .map(|f| f.remediation.trim())
                .filter(|r| !r.contains('{'))
                .map(Into::into),
        }
    }
}

impl LoadedRule {
    /// The texts its findings share.
    pub fn text(&self) -> &RuleText {
        &self.text
    }

    /// Whether this rule is about an interface file (not a host fact).
    pub fn is_file_rule(&self) -> bool {
        self.rule.matcher.fact.is_none()
    }

    /// Whether the rule names this file; returns the regex captures (for `{1}`).
    pub fn file_captures(&self, file: &str) -> Option<Vec<String>> {
        if let Some(f) = &self.rule.matcher.file {
            return (f == file).then(Vec::new);
        }
        let re = self.file_regex.as_ref()?;
        let caps = re.captures(file)?;
        Some(
            caps.iter()
                .skip(1)
                .map(|m| m.map(|m| m.as_str().to_string()).unwrap_or_default())
                .collect(),
        )
    }

    /// Whether this file rule names `file` in a hierarchy with these
    /// controllers; returns the regex captures (for `{1}`).
    pub fn file_match(&self, file: &str, controllers: &[crate::model::Controller]) -> Option<Vec<String>> {
        if !self.is_file_rule() {
            return None;
        }
        if let Some(c) = &self.rule.matcher.controller
            && !controllers.iter().any(|x| x.as_str() == c)
        {
            return None;
        }
        self.file_captures(file)
    }

    /// Whether the value predicate (if any) accepts this value.
    pub fn value_matches(&self, value: &str) -> bool {
        let Some(p) = &self.rule.matcher.value else {
            return true;
        };
        let v = value.trim();
        p.equals.as_deref().is_none_or(|e| v == e)
            && p.not_equals.as_deref().is_none_or(|e| v != e)
            && self.value_regex.as_ref().is_none_or(|r| r.is_match(v))
            && self.value_not_regex.as_ref().is_none_or(|r| !r.is_match(v))
    }

    /// Whether the rule applies to a hierarchy with this `name=` (if any).
    pub fn name_matches(&self, name: Option<&str>) -> bool {
        let m = &self.rule.matcher;
        m.name.as_deref().is_none_or(|n| Some(n) == name)
            && m.not_name.as_deref().is_none_or(|n| Some(n) != name)
    }

    /// Whether `value` is this file's default (`parent` is the parent cgroup's value).
    pub fn is_default(&self, value: &str, parent: Option<&str>) -> bool {
        let v = value.trim();
        match &self.rule.default {
            None => false,
            Some(DefaultSpec::Exact(e)) => v == e.trim(),
            Some(DefaultSpec::Spec(d)) => {
                d.any_of.iter().any(|e| v == e.trim())
                    || (d.unlimited
                        && match v.parse::<crate::model::value::Limit>() {
                            // Above LONG_MAX is no kernel's "unlimited": not a default.
                            Ok(crate::model::value::Limit::Max) => !convert::above_page_counter(v),
                            // hugetlb's unlimited depends on the huge page size.
                            Ok(crate::model::value::Limit::Bytes(b)) => convert::is_v1_unlimited(b),
                            Err(_) => false,
                        })
                    || (d.parent && parent.is_some_and(|p| p.trim() == v))
                    || self.default_regex.as_ref().is_some_and(|r| r.is_match(v))
            }
        }
    }

    /// A value a fresh kernel would show, for generated hosts.
    pub fn example_default(&self) -> Option<String> {
        match &self.rule.default {
            None => None,
            Some(DefaultSpec::Exact(e)) => Some(e.clone()),
            Some(DefaultSpec::Spec(d)) => {
                d.example
                    .clone()
                    .or_else(|| d.any_of.first().cloned())
                    .or_else(|| {
                        d.unlimited
                            .then(|| crate::model::value::V1_UNLIMITED_4K.to_string())
                    })
            }
        }
    }

    /// The scope for file rules (non-root by default).
    pub fn scope(&self) -> Scope {
        self.rule.matcher.scope.unwrap_or_default()
    }
}

/// All rules in force.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<LoadedRule>,
    by_id: HashMap<String, usize>,
    policy: PlanPolicy,
}

impl RuleSet {
    /// The embedded rules only. Errors in them are a build bug (a test checks).
    pub fn embedded() -> (RuleSet, Vec<RuleError>) {
        let mut set = RuleSet::default();
        let mut errors = Vec::new();
        for (file, text) in EMBEDDED {
            set.add_source(file, text, &mut errors, false);
        }
        (set, errors)
    }

    /// The embedded rules plus every `*.yaml`/`*.yml` file in `dirs`, which
    /// override embedded rules with the same id.
    pub fn load(dirs: &[PathBuf]) -> (RuleSet, Vec<RuleError>) {
        let (mut set, mut errors) = RuleSet::embedded();
        for dir in dirs {
            for (file, text) in read_dir_sources(dir, &mut errors) {
                set.add_source(&file, &text, &mut errors, true);
            }
        }
        (set, errors)
    }

    /// Validate the rules in one directory on their own (`cgmig rules check`).
    pub fn check_dir(dir: &Path) -> (RuleSet, Vec<RuleError>) {
        let mut set = RuleSet::default();
        let mut errors = Vec::new();
        for (file, text) in read_dir_sources(dir, &mut errors) {
            set.add_source(&file, &text, &mut errors, false);
        }
        (set, errors)
    }

    /// Parse one file's text and add its valid rules.
    ///
    /// `override_ok`: a rule may replace one from an earlier source (a user
    /// directory over the embedded rules); within one source, or without the
    /// flag, a repeated id is an error.
    pub fn add_source(&mut self, file: &str, text: &str, errors: &mut Vec<RuleError>, override_ok: bool) {
        // A nesting bomb is refused before the YAML parser recurses into it.
        if let Err(message) = crate::model::validate::check_depth(text) {
            errors.push(depth_error(file, message.to_string()));
            return;
        }
        // A mapping with `plan:` is the planner policy, not a list of rules.
        if let Ok(serde_yaml_ng::Value::Mapping(m)) = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(text)
            && m.contains_key("plan")
        {
            match self.merged_policy(text) {
                Ok(p) => self.policy = p,
                Err(problem) => errors.push(RuleError::Invalid {
                    file: file.to_string(),
                    line: 1,
                    rule: "plan".into(),
                    problem,
                }),
            }
            return;
        }
        let docs: Vec<serde_yaml_ng::Value> =
            match serde_yaml_ng::from_str::<Option<Vec<serde_yaml_ng::Value>>>(text) {
                Ok(v) => v.unwrap_or_default(),
                Err(e) => {
                    let loc = e.location();
                    errors.push(RuleError::Syntax {
                        file: file.to_string(),
                        line: loc.as_ref().map_or(0, |l| l.line()),
                        column: loc.as_ref().map_or(0, |l| l.column()),
                        message: e.to_string(),
                    });
                    return;
                }
            };
        let lines = item_lines(text, docs.len());
        let mut seen_here: HashMap<String, usize> = HashMap::new();
        for (i, doc) in docs.into_iter().enumerate() {
            let line = lines.get(i).copied().unwrap_or(0);
            let label = doc
                .get("id")
                .and_then(|v| v.as_str())
                .map_or_else(|| format!("#{}", i + 1), str::to_string);
            let invalid = |problem: RuleProblem| RuleError::Invalid {
                file: file.to_string(),
                line,
                rule: label.clone(),
                problem,
            };
            let loaded = match parse_rule(doc, file, line) {
                Ok(r) => r,
                Err(problem) => {
                    errors.push(invalid(problem));
                    continue;
                }
            };
            let id = loaded.rule.id.clone();
            if let Some(first) = seen_here.get(&id) {
                errors.push(invalid(RuleProblem::Duplicate(Origin {
                    file: file.to_string(),
                    line: *first,
                })));
                continue;
            }
            seen_here.insert(id.clone(), line);
            if let Err(problem) = self.insert(loaded, override_ok) {
                errors.push(invalid(problem));
            }
        }
    }

    /// The policy after a `plan:` file: its keys over the current policy,
    /// then the leaf name and `keep` paths checked.
    fn merged_policy(&self, text: &str) -> Result<PlanPolicy, RuleProblem> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct PolicyFile {
            plan: serde_yaml_ng::Value,
        }
        let shape = |e: serde_yaml_ng::Error| RuleProblem::Shape(e.to_string());
        let pf: PolicyFile = serde_yaml_ng::from_str(text).map_err(shape)?;
        let mut base = serde_yaml_ng::to_value(&self.policy).map_err(shape)?;
        if let (serde_yaml_ng::Value::Mapping(b), serde_yaml_ng::Value::Mapping(new)) = (&mut base, pf.plan) {
            for (k, v) in new {
                b.insert(k, v);
            }
        }
        let p: PlanPolicy = serde_yaml_ng::from_value(base).map_err(shape)?;
        check_leaf_name(&p.leaf_name)?;
        if let Some(k) = p
            .keep
            .iter()
            .find(|k| !crate::model::validate::is_normalized_path(k))
        {
            return Err(RuleProblem::BadKeepPath(k.clone()));
        }
        Ok(p)
    }

    /// Add a rule; a user file may override a built-in rule, but two user
    /// files defining one id is the same error here as in `rules check`.
    fn insert(&mut self, loaded: LoadedRule, override_ok: bool) -> Result<(), RuleProblem> {
        let id = loaded.rule.id.clone();
        match self.by_id.get(&id) {
            Some(&idx) if override_ok && is_embedded(&self.rules[idx].origin) => self.rules[idx] = loaded,
            Some(&idx) => {
                return Err(RuleProblem::Duplicate(self.rules[idx].origin.clone()));
            }
            None => {
                self.by_id.insert(id, self.rules.len());
                self.rules.push(loaded);
            }
        }
        Ok(())
    }

    /// The planner policy.
    pub fn policy(&self) -> &PlanPolicy {
        &self.policy
    }

    /// Every rule, in load order.
    pub fn rules(&self) -> &[LoadedRule] {
        &self.rules
    }

    /// The rule with this id.
    pub fn get(&self, id: &str) -> Option<&LoadedRule> {
        self.by_id.get(id).map(|&i| &self.rules[i])
    }

    /// File rules that name this file in a hierarchy with these controllers.
    pub fn file_rules<'a>(
        &'a self,
        file: &'a str,
        controllers: &'a [crate::model::Controller],
    ) -> impl Iterator<Item = (&'a LoadedRule, Vec<String>)> + 'a {
        self.rules
            .iter()
            .filter_map(move |r| r.file_match(file, controllers).map(|caps| (r, caps)))
    }

    /// Whether `value` of `file` is a default, by the first rule that defines one.
    pub fn is_default(
        &self,
        file: &str,
        controllers: &[crate::model::Controller],
        value: &str,
        parent: Option<&str>,
    ) -> bool {
        self.file_rules(file, controllers)
            .find(|(r, _)| r.rule.default.is_some())
            .is_some_and(|(r, _)| r.is_default(value, parent))
    }

    /// Rules matching a host fact.
    pub fn fact_rules(&self, fact: Fact) -> impl Iterator<Item = &LoadedRule> {
        self.rules
            .iter()
            .filter(move |r| r.rule.matcher.fact == Some(fact))
    }
}

/// Whether a rule came from the rules built into the binary.
fn is_embedded(origin: &Origin) -> bool {
    EMBEDDED.iter().any(|(f, _)| *f == origin.file)
}

fn read_dir_sources(dir: &Path, errors: &mut Vec<RuleError>) -> Vec<(String, String)> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => {
            errors.push(RuleError::Io {
                file: dir.display().to_string(),
                message: e.to_string(),
            });
            return Vec::new();
        }
    };
    let mut paths: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .filter_map(|p| {
            // A regular file, opened non-blocking and bounded: a FIFO or a
            // device named `x.yaml` is an error, never a hang.
            use crate::host::contain::{ReadError, read_user_file};
            let text = read_user_file(&p, crate::host::MAX_DOCUMENT_BYTES)
                .map_err(|e| match e {
                    ReadError::Io(e) => e.to_string(),
                    ReadError::NotRegular(kind) => format!("a {kind}, not a regular file"),
                    ReadError::TooLarge(n) => format!("larger than {n} bytes"),
                })
                .and_then(|b| String::from_utf8(b).map_err(|_| "not UTF-8 text".to_string()));
            match text {
                Ok(t) => Some((p.display().to_string(), t)),
                Err(message) => {
                    errors.push(RuleError::Io {
                        file: p.display().to_string(),
                        message,
                    });
                    None
                }
            }
        })
        .collect()
}

/// The first line of each top-level sequence item.
///
/// serde values carry no positions, so rules are located in the text: a
/// top-level item starts with `-` at the sequence's indentation. When the
/// count disagrees with the parsed items (flow style, odd layouts) the lines
/// of `id:` keys are used instead.
fn item_lines(text: &str, count: usize) -> Vec<usize> {
    let starts: Vec<(usize, usize)> = text
        .lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let indent = l.len() - l.trim_start().len();
            let t = l.trim_start();
            (t == "-" || t.starts_with("- ")).then_some((i + 1, indent))
        })
        .collect();
    let min_indent = starts.iter().map(|s| s.1).min().unwrap_or(0);
    let top: Vec<usize> = starts.iter().filter(|s| s.1 == min_indent).map(|s| s.0).collect();
    if top.len() == count {
        return top;
    }
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.trim_start().trim_start_matches("- ").starts_with("id:"))
        .map(|(i, _)| i + 1)
        .collect()
}

fn compile(what: &'static str, re: &Option<String>) -> Result<Option<Regex>, RuleProblem> {
    re.as_ref()
        .map(|r| {
            Regex::new(r).map_err(|e| RuleProblem::BadRegex {
                what,
                regex: r.clone(),
                message: e.to_string(),
            })
        })
        .transpose()
}

/// The syntax error for a file nested too deeply (`line N: message`).
fn depth_error(file: &str, message: String) -> RuleError {
    let line = message
        .strip_prefix("line ")
        .and_then(|r| r.split(':').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let message = message
        .split_once(": ")
        .map_or(message.clone(), |(_, m)| m.to_string());
    RuleError::Syntax {
        file: file.to_string(),
        line,
        column: 1,
        message,
    }
}

/// One list item of a rules file, parsed and checked.
fn parse_rule(doc: serde_yaml_ng::Value, file: &str, line: usize) -> Result<LoadedRule, RuleProblem> {
    let rule: Rule = serde_yaml_ng::from_value(doc).map_err(|e| RuleProblem::Shape(e.to_string()))?;
    validate(
        rule,
        Origin {
            file: file.to_string(),
            line,
        },
    )
}

/// Check one parsed rule for everything serde cannot.
fn validate(mut rule: Rule, origin: Origin) -> Result<LoadedRule, RuleProblem> {
    if rule.id.trim().is_empty() {
        return Err(RuleProblem::EmptyId);
    }
    let m = &rule.matcher;
    let file_kinds = m.file.is_some() as u8 + m.file_regex.is_some() as u8;
    match (file_kinds, m.fact) {
        (0, None) => return Err(RuleProblem::NoMatch),
        (2, _) => return Err(RuleProblem::FileAndRegex),
        (1, Some(_)) => return Err(RuleProblem::FileAndFact),
        _ => {}
    }
    if m.fact == Some(Fact::BootParam) && m.param.is_none() {
        return Err(RuleProblem::BootParamWithoutParam);
    }
    if m.param.is_some() && m.fact != Some(Fact::BootParam) {
        return Err(RuleProblem::ParamWithoutBootParam);
    }
    if let Some(c) = &m.controller {
        let known = crate::model::Controller::KNOWN.iter().any(|k| k.as_str() == c);
        if !known {
            return Err(RuleProblem::UnknownController(c.clone()));
        }
    }
    if rule.convert.is_none() && rule.finding.is_none() && rule.default.is_none() {
        return Err(RuleProblem::SaysNothing);
    }
    if rule.fact_only_fields_misused() {
        return Err(RuleProblem::FactWithFileFields);
    }
    if let Some(c) = &mut rule.convert {
        // A former function name loads as the current one (see FORMER_NAMES).
        c.function = engine::canonical_function(&c.function).to_string();
    }
    if let Some(c) = &rule.convert {
        engine::check_function(&c.function, &c.params)?;
        // Placeholders are filled from file names (one component) at run
        // time, where the engine checks the result again.
        let filled = Regex::new(r"\{[0-9]+\}").map_or_else(
            |_| c.target.clone(),
            |re| re.replace_all(&c.target, "x").into_owned(),
        );
        check_target(&filled, m.controller.as_deref())?;
    }
    for (what, text) in [("id", &rule.id), ("title", &rule.title)] {
        if text.chars().any(char::is_control) {
            return Err(RuleProblem::ControlCharacter(what));
        }
    }
    if let Some(f) = &rule.finding
        && [&f.why, &f.remediation]
            .iter()
            .any(|t| t.chars().any(|c| c.is_control() && c != '\n'))
    {
        return Err(RuleProblem::FindingControlCharacter);
    }
    let file_regex = compile("file", &m.file_regex)?;
    let value_regex = compile("value", &m.value.as_ref().and_then(|v| v.regex.clone()))?;
    let value_not_regex = compile("value", &m.value.as_ref().and_then(|v| v.not_regex.clone()))?;
    let default_regex = match &rule.default {
        Some(DefaultSpec::Spec(d)) => compile("default", &d.regex)?,
        _ => None,
    };
    if let Some(k) = &rule.kernel
        && parse_kernel(k).is_none()
    {
        return Err(RuleProblem::BadKernel(k.clone()));
    }
    Ok(LoadedRule {
        text: RuleText::of(&rule),
        rule,
        origin,
        file_regex,
        value_regex,
        value_not_regex,
        default_regex,
    })
}

impl Rule {
    fn fact_only_fields_misused(&self) -> bool {
        self.matcher.fact.is_some() && (self.default.is_some() || self.convert.is_some())
    }
}

/// Parse a kernel version prefix (`5.14`, `6.1.0-13-amd64`) to (major, minor).
pub fn parse_kernel(s: &str) -> Option<(u32, u32)> {
    let mut it = s.split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    Some((major, minor))
}

#[cfg(test)]
mod tests;
