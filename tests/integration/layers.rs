//! The layers run one way (issue 19): no module under `src/` imports one on
//! its own layer or above it, in the order written in docs/architecture.md
//! ("Layers"), so no import cycle between top-level modules is possible; and
//! inside a folder no two of its files (other than `mod.rs`, the folder's
//! face) import each other in a cycle.
//!
//! The check reads the source, not the compiler: a small lexer drops comments,
//! string and char literals, then every path that starts with `crate::`,
//! `super::`, `self::` or a child module a file declares is resolved to the
//! file it names. `use` trees (`use a::{b, c::d}`) and inline modules
//! (`mod tests { use super::*; }`) are followed. Test code counts: a unit test
//! in a low module that needs a high one belongs to the high one.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One import: the file (module path) that imports, the line, and the file it names.
#[derive(Debug, Clone)]
struct Edge {
    from: Vec<String>,
    file: String,
    line: usize,
    to: Vec<String>,
}

/// The layers as written in docs/architecture.md, between
/// `<!-- layers:begin -->` and `<!-- layers:end -->`: one line per layer,
/// `N  module module ...`, bottom (0) first.
fn layers_from_doc(doc: &str) -> BTreeMap<String, usize> {
    let begin = doc
        .find("<!-- layers:begin -->")
        .expect("docs/architecture.md: no `<!-- layers:begin -->`");
    let end = doc
        .find("<!-- layers:end -->")
        .expect("docs/architecture.md: no `<!-- layers:end -->`");
    let mut out = BTreeMap::new();
    for line in doc[begin..end].lines().skip(1) {
        let mut words = line.split_whitespace();
        let Some(first) = words.next() else { continue };
        let Ok(n) = first.parse::<usize>() else { continue };
        for m in words {
            let m = m.trim_matches(|c: char| c == '`' || c == ',');
            assert!(
                out.insert(m.to_string(), n).is_none(),
                "{m} is listed on two layers"
            );
        }
    }
    out
}

/// The source with comments and string/char literals blanked out (newlines
/// kept, so line numbers stay right).
fn code_only(src: &str) -> String {
    let b: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
        } else if (c == 'r' || (c == 'b' && next == Some('r')))
            && !prev_is_ident(&b, i)
            && raw_string_start(&b, i + usize::from(c == 'b') + 1).is_some()
        {
            let start = i + usize::from(c == 'b') + 1;
            let hashes = raw_string_start(&b, start).unwrap_or(0);
            let mut j = start + hashes + 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == '"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            for &ch in &b[i..j.min(b.len())] {
                out.push(blank(ch));
            }
            i = j;
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < b.len() {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
            if next == Some('\\') {
                let mut j = i + 2;
                while j < b.len() && b[j] != '\'' {
                    j += 1;
                }
                for _ in i..=j.min(b.len() - 1) {
                    out.push(' ');
                }
                i = j + 1;
            } else if b.get(i + 2) == Some(&'\'') {
                out.push_str("   ");
                i += 3;
            } else {
                out.push(c);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn prev_is_ident(b: &[char], i: usize) -> bool {
    i > 0 && (b[i - 1].is_alphanumeric() || b[i - 1] == '_')
}

/// At `i`: `#*"` opens a raw string; the number of `#`.
fn raw_string_start(b: &[char], i: usize) -> Option<usize> {
    let mut n = 0;
    while b.get(i + n) == Some(&'#') {
        n += 1;
    }
    (b.get(i + n) == Some(&'"')).then_some(n)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Path, // `::`
    Open,
    Close,
    Semi,
    Comma,
    Other,
}

fn tokens(code: &str) -> Vec<(Tok, usize)> {
    let b: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c.is_alphabetic() || c == '_' {
            let s = i;
            while i < b.len() && (b[i].is_alphanumeric() || b[i] == '_') {
                i += 1;
            }
            let word: String = b[s..i].iter().collect();
            // `$crate` in a macro body is the crate, as `crate` is.
            out.push((Tok::Ident(word), line));
        } else if c == ':' && b.get(i + 1) == Some(&':') {
            out.push((Tok::Path, line));
            i += 2;
        } else {
            out.push((
                match c {
                    '{' => Tok::Open,
                    '}' => Tok::Close,
                    ';' => Tok::Semi,
                    ',' => Tok::Comma,
                    _ => Tok::Other,
                },
                line,
            ));
            i += 1;
        }
    }
    out
}

/// Every path a file names that starts in this crate, resolved to absolute
/// module segments (`["plan", "owners", "annotate"]`), with its line.
fn crate_paths(module: &[String], src: &str) -> Vec<(Vec<String>, usize)> {
    let toks = tokens(&code_only(src));
    // Inline modules: (name, brace depth inside it), and the `mod x;` children
    // declared at each level.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut children: Vec<BTreeSet<String>> = vec![declared_children(&toks, 0)];
    let mut depth = 0usize;
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let here: Vec<String> = module
            .iter()
            .cloned()
            .chain(inline.iter().map(|(n, _)| n.clone()))
            .collect();
        match &toks[i].0 {
            Tok::Open => {
                depth += 1;
                i += 1;
            }
            Tok::Close => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                    children.pop();
                }
                depth = depth.saturating_sub(1);
                i += 1;
            }
            Tok::Ident(w) if w == "mod" => {
                if let Some((Tok::Ident(name), _)) = toks.get(i + 1)
                    && toks.get(i + 2).is_some_and(|t| t.0 == Tok::Open)
                {
                    inline.push((name.clone(), depth + 1));
                    children.push(declared_children(&toks, i + 3));
                    depth += 1;
                    i += 3;
                } else {
                    i += 2;
                }
            }
            Tok::Ident(w) if w == "use" => {
                let end = (i..toks.len())
                    .find(|&j| toks[j].0 == Tok::Semi)
                    .unwrap_or(toks.len());
                let kids = children.last().cloned().unwrap_or_default();
                use_tree(&toks[i + 1..end], &[], &here, &kids, &mut out);
                i = end;
            }
            Tok::Ident(_) if i == 0 || toks[i - 1].0 != Tok::Path => {
                let mut segs = Vec::new();
                let mut j = i;
                while let Some((Tok::Ident(w), _)) = toks.get(j) {
                    segs.push(w.clone());
                    if toks.get(j + 1).is_some_and(|t| t.0 == Tok::Path) {
                        j += 2;
                    } else {
                        break;
                    }
                }
                let kids = children.last().cloned().unwrap_or_default();
                if segs.len() > 1
                    && let Some(abs) = resolve(&segs, &here, &kids)
                {
                    out.push((abs, toks[i].1));
                }
                i = j + 1;
            }
            _ => i += 1,
        }
    }
    out
}

/// The `mod name;` declarations of the block that starts at token `from`.
fn declared_children(toks: &[(Tok, usize)], from: usize) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut depth = 0usize;
    let mut i = from;
    while i < toks.len() {
        match &toks[i].0 {
            Tok::Open => depth += 1,
            Tok::Close if depth == 0 => break,
            Tok::Close => depth -= 1,
            Tok::Ident(w) if w == "mod" && depth == 0 => {
                if let (Some((Tok::Ident(n), _)), Some((Tok::Semi, _))) = (toks.get(i + 1), toks.get(i + 2)) {
                    out.insert(n.clone());
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Resolves a path's segments; `None` for a path outside the crate (std, a dependency, a local item).
fn resolve(segs: &[String], here: &[String], kids: &BTreeSet<String>) -> Option<Vec<String>> {
    let first = segs.first()?;
    let mut abs: Vec<String>;
    let mut rest = segs;
    if first == "crate" {
        abs = Vec::new();
        rest = &segs[1..];
    } else if first == "self" {
        abs = here.to_vec();
        rest = &segs[1..];
    } else if first == "super" {
        abs = here.to_vec();
        while rest.first().is_some_and(|s| s == "super") {
            abs.pop();
            rest = &rest[1..];
        }
    } else if kids.contains(first) {
        abs = here.to_vec();
    } else {
        return None;
    }
    abs.extend(rest.iter().cloned());
    Some(abs)
}

/// Expands one `use` tree (the tokens after `use`, before `;`).
fn use_tree(
    toks: &[(Tok, usize)],
    prefix: &[String],
    here: &[String],
    kids: &BTreeSet<String>,
    out: &mut Vec<(Vec<String>, usize)>,
) {
    let mut i = 0;
    let mut segs = prefix.to_vec();
    while i < toks.len() {
        match &toks[i].0 {
            Tok::Ident(w) if w == "as" => i += 2,
            Tok::Ident(w) => {
                segs.push(w.clone());
                i += 1;
            }
            Tok::Path => i += 1,
            Tok::Open => {
                let mut depth = 0;
                let mut j = i;
                while j < toks.len() {
                    match toks[j].0 {
                        Tok::Open => depth += 1,
                        Tok::Close => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                // Items separated by top-level commas inside the braces.
                let inner = &toks[i + 1..j.min(toks.len())];
                let mut start = 0;
                let mut d = 0;
                for k in 0..=inner.len() {
                    let split = k == inner.len() || (d == 0 && inner[k].0 == Tok::Comma);
                    if split {
                        if k > start {
                            use_tree(&inner[start..k], &segs, here, kids, out);
                        }
                        start = k + 1;
                    } else if inner[k].0 == Tok::Open {
                        d += 1;
                    } else if inner[k].0 == Tok::Close {
                        d -= 1;
                    }
                }
                return;
            }
            _ => i += 1,
        }
    }
    if let Some(abs) = resolve(&segs, here, kids)
        && !toks.is_empty()
    {
        out.push((abs, toks[0].1));
    }
}

/// The module path of a source file: `src/plan/mod.rs` → `["plan"]`.
fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let last = parts.pop().unwrap_or_default();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" {
        parts.push(stem.to_string());
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// Every import between two files of the crate rooted at `src`.
fn imports(src: &Path) -> Vec<Edge> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeSet<Vec<String>> = files
        .iter()
        .map(|f| module_of(f.strip_prefix(src).unwrap()))
        .filter(|m| !m.is_empty() && m != &["main"] && m != &["lib"])
        .collect();
    let mut out = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(src).unwrap();
        let from = module_of(rel);
        if !modules.contains(&from) {
            continue;
        }
        let text = std::fs::read_to_string(f).unwrap();
        for (path, line) in crate_paths(&from, &text) {
            // The file that holds the item: the longest prefix that is a file.
            let Some(to) = (1..=path.len())
                .rev()
                .map(|k| path[..k].to_vec())
                .find(|p| modules.contains(p))
            else {
                continue;
            };
            if to != from {
                out.push(Edge {
                    from: from.clone(),
                    file: format!("src/{}", rel.display()),
                    line,
                    to,
                });
            }
        }
    }
    out
}

/// What breaks the layering, one line each.
fn violations(src: &Path, layers: &BTreeMap<String, usize>) -> Vec<String> {
    let edges = imports(src);
    let mut out = Vec::new();
    let mut tops: BTreeSet<String> = BTreeSet::new();
    let mut files = Vec::new();
    rust_files(src, &mut files);
    for f in &files {
        let m = module_of(f.strip_prefix(src).unwrap());
        if let Some(t) = m.first()
            && t != "main"
            && t != "lib"
        {
            tops.insert(t.clone());
        }
    }
    for t in &tops {
        if !layers.contains_key(t) {
            out.push(format!("src/{t}: not on any layer in docs/architecture.md"));
        }
    }
    for t in layers.keys() {
        if !tops.contains(t) {
            out.push(format!(
                "docs/architecture.md lists `{t}`, which is not a module under src/"
            ));
        }
    }
    let mut seen = BTreeSet::new();
    for e in &edges {
        let (a, b) = (&e.from[0], &e.to[0]);
        if a == b {
            continue;
        }
        if let (Some(la), Some(lb)) = (layers.get(a), layers.get(b))
            && lb >= la
            && seen.insert((e.file.clone(), e.line, b.clone()))
        {
            out.push(format!(
                "{}:{}: {a} (layer {la}) imports {b} (layer {lb})",
                e.file, e.line
            ));
        }
    }
    // Cycles among the files of one folder, mod.rs aside.
    let mut graph: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for e in &edges {
        let folder = |m: &Vec<String>| m[..m.len() - 1].to_vec();
        if e.from.len() >= 2 && e.to.len() >= 2 && folder(&e.from) == folder(&e.to) {
            graph.entry(e.from.clone()).or_default().insert(e.to.clone());
        }
    }
    for cycle in cycles(&graph) {
        let names: Vec<String> = cycle.iter().map(|m| m.join("/")).collect();
        out.push(format!(
            "import cycle between files of one folder: {}",
            names.join(" -> ")
        ));
    }
    out
}

/// The strongly connected components of more than one node (Tarjan).
fn cycles(g: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Vec<Vec<Vec<String>>> {
    struct T<'a> {
        g: &'a BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        index: BTreeMap<&'a Vec<String>, usize>,
        low: BTreeMap<&'a Vec<String>, usize>,
        stack: Vec<&'a Vec<String>>,
        on: BTreeSet<&'a Vec<String>>,
        out: Vec<Vec<Vec<String>>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a Vec<String>) {
        let n = t.index.len();
        t.index.insert(v, n);
        t.low.insert(v, n);
        t.stack.push(v);
        t.on.insert(v);
        if let Some(ws) = t.g.get(v) {
            for w in ws {
                if !t.index.contains_key(w) {
                    visit(t, w);
                    let lw = t.low[w];
                    let lv = t.low.get_mut(v).unwrap();
                    *lv = (*lv).min(lw);
                } else if t.on.contains(w) {
                    let iw = t.index[w];
                    let lv = t.low.get_mut(v).unwrap();
                    *lv = (*lv).min(iw);
                }
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                comp.push(w.clone());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in g.keys() {
        if !t.index.contains_key(v) {
            visit(&mut t, v);
        }
    }
    t.out
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn modules_import_only_lower_layers() {
    let doc = std::fs::read_to_string(repo().join("docs/architecture.md")).unwrap();
    let layers = layers_from_doc(&doc);
    let v = violations(&repo().join("src"), &layers);
    let mut msg = String::new();
    for l in &v {
        writeln!(msg, "  {l}").unwrap();
    }
    assert!(
        v.is_empty(),
        "the layers (docs/architecture.md, \"Layers\") are broken:\n{msg}"
    );
    // The check saw the crate: it found imports between layers.
    let edges = imports(&repo().join("src"));
    assert!(
        edges.iter().filter(|e| e.from[0] != e.to[0]).count() > 50,
        "too few imports found: the reader is broken"
    );
}

/// The check can fail: a made-up crate with an upward import, an import from
/// the same layer, an in-folder cycle through `use` groups and `super::`, and
/// a module the doc does not list.
#[test]
fn the_layering_check_finds_what_breaks_it() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    let write = |rel: &str, text: &str| {
        let p = src.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write(
        "lib.rs",
        "pub mod low; pub mod mid; pub mod high; pub mod peer; pub mod stray;\n",
    );
    write(
        "low/mod.rs",
        "//! crate::high::X in a comment is no import\nmod a;\nmod b;\npub fn f() { let _ = \"crate::high\"; a::g(); }\n",
    );
    write("low/a.rs", "use super::{b::{self, H}};\npub fn g() {}\n");
    write(
        "low/b.rs",
        "pub struct H;\nfn h() { super::a::g(); }\n#[cfg(test)]\nmod tests {\n    use crate::high::Thing;\n}\n",
    );
    write("mid.rs", "use crate::low::f;\nuse crate::peer::P;\n");
    write("peer.rs", "pub struct P;\n");
    write("high.rs", "pub struct Thing;\nuse crate::{mid, low::a};\n");
    write("stray.rs", "");
    let layers: BTreeMap<String, usize> = [("low", 0), ("mid", 1), ("peer", 1), ("high", 2)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let v = violations(src, &layers);
    let text = v.join("\n");
    assert!(
        text.contains("src/low/b.rs:5: low (layer 0) imports high (layer 2)"),
        "{text}"
    );
    assert!(
        text.contains("src/mid.rs:2: mid (layer 1) imports peer (layer 1)"),
        "{text}"
    );
    assert!(
        text.contains("import cycle between files of one folder: low/a -> low/b"),
        "{text}"
    );
    assert!(text.contains("src/stray: not on any layer"), "{text}");
    assert!(
        !text.contains("src/low/mod.rs"),
        "comments and strings are no imports: {text}"
    );
    assert!(!text.contains("src/high.rs"), "a downward import is fine: {text}");
    assert_eq!(v.len(), 4, "{text}");
}
