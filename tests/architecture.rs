//! The layout's rules, checked on the source itself: no import cycle
//! between the modules of a crate, and no source file too long to read in
//! one sitting.
//!
//! A module "uses" another when its code names it through a `crate::`,
//! `super::`, `self::` or child-module path. Declaring a child (`mod x;`)
//! and re-exporting from it (`pub use x::Y;`) are not uses: a parent may
//! present its children's items while the children use each other. Run
//! `cargo test --test architecture -- --nocapture` to print each crate's
//! graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module's path inside its crate: `["compare", "scenario"]`.
type ModPath = Vec<String>;

const CRATES: &[&str] = &["servers/src", "loadgen/src"];
/// "Files small enough to read in one sitting (~600 lines at most)".
const MAX_LINES: usize = 650;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
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

/// `a/b.rs` and `a/b/mod.rs` are `["a", "b"]`; `lib.rs` and `main.rs` the root.
fn mod_path(src: &Path, file: &Path) -> ModPath {
    let rel = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The code without comments, string literals and `#[cfg(test)]` modules
/// (tests may reach anywhere).
fn code_of(text: &str) -> String {
    let mut out = String::new();
    let mut skip_depth: Option<usize> = None;
    let mut depth = 0usize;
    let mut pending_cfg_test = false;
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("//") {
            continue;
        }
        if t.starts_with("#[cfg(test)]") {
            pending_cfg_test = true;
            continue;
        }
        if pending_cfg_test && t.starts_with("mod ") && skip_depth.is_none() {
            skip_depth = Some(depth);
        }
        pending_cfg_test = false;
        let mut in_str = false;
        let mut prev = ' ';
        let mut kept = String::new();
        for c in line.chars() {
            if c == '"' && prev != '\\' {
                in_str = !in_str;
            } else if !in_str {
                match c {
                    '{' => depth += 1,
                    '}' => depth = depth.saturating_sub(1),
                    _ => {}
                }
                if c == '/' && prev == '/' {
                    kept.pop();
                    break;
                }
                kept.push(c);
            }
            prev = c;
        }
        if skip_depth.is_none() {
            out.push_str(&kept);
            out.push('\n');
        }
        if let Some(d) = skip_depth
            && depth <= d
            && line.contains('}')
        {
            skip_depth = None;
        }
    }
    out
}

/// Expands a use tree (`a::{b, c::{d, e}}`) into its paths.
fn expand(tree: &str) -> Vec<Vec<String>> {
    fn parse(s: &[char], i: &mut usize, prefix: &[String], out: &mut Vec<Vec<String>>) {
        let mut path = prefix.to_vec();
        let mut seg = String::new();
        while *i < s.len() {
            let c = s[*i];
            match c {
                '{' => {
                    *i += 1;
                    loop {
                        parse(s, i, &path, out);
                        if *i >= s.len() || s[*i] == '}' {
                            break;
                        }
                        *i += 1; // ','
                    }
                    *i += 1; // '}'
                    return;
                }
                ',' | '}' => break,
                ':' => {
                    if !seg.is_empty() {
                        path.push(std::mem::take(&mut seg));
                    }
                    *i += 1;
                    continue;
                }
                c if c.is_whitespace() => {
                    // `x as y`: the rest of the segment names nothing new.
                    if !seg.is_empty()
                        && s[*i..]
                            .iter()
                            .collect::<String>()
                            .trim_start()
                            .starts_with("as ")
                    {
                        path.push(std::mem::take(&mut seg));
                        while *i < s.len() && s[*i] != ',' && s[*i] != '}' {
                            *i += 1;
                        }
                        break;
                    }
                }
                c => seg.push(c),
            }
            *i += 1;
        }
        if !seg.is_empty() {
            path.push(seg);
        }
        if path.len() > prefix.len() || !path.is_empty() {
            out.push(path);
        }
    }
    let chars: Vec<char> = tree.chars().collect();
    let mut out = Vec::new();
    parse(&chars, &mut 0, &[], &mut out);
    out
}

/// Every path a file's code names, with whether it is a re-export.
fn paths_in(code: &str, children: &[String]) -> Vec<(Vec<String>, bool)> {
    let mut out = Vec::new();
    // `use` items, which may span lines.
    let mut rest = code;
    while let Some(pos) = find_use(rest) {
        let (is_pub, after) = pos;
        let end = rest[after..].find(';').map_or(rest.len(), |e| after + e);
        for p in expand(&rest[after..end]) {
            out.push((p, is_pub));
        }
        rest = &rest[end..];
    }
    // Paths in expressions and types: `crate::a::b`, `super::x`.
    let bytes = code.as_bytes();
    let starts: Vec<String> = ["crate", "super", "self"]
        .iter()
        .map(|s| s.to_string())
        .chain(children.iter().cloned())
        .map(|s| s + "::")
        .collect();
    for start in &starts {
        let start = start.as_str();
        let mut from = 0;
        while let Some(i) = code[from..].find(start) {
            let at = from + i;
            from = at + start.len();
            // Part of a longer path or name (`std::io::`, `my_io::`).
            if at > 0
                && (bytes[at - 1].is_ascii_alphanumeric() || matches!(bytes[at - 1], b'_' | b':'))
            {
                continue;
            }
            let mut end = at;
            while end < code.len() {
                let c = bytes[end];
                if c.is_ascii_alphanumeric() || c == b'_' || c == b':' {
                    end += 1;
                } else {
                    break;
                }
            }
            let path: Vec<String> = code[at..end]
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            out.push((path, false));
        }
    }
    out
}

/// Finds the next `use`/`pub use` item: (is it a re-export, where its tree
/// starts).
fn find_use(code: &str) -> Option<(bool, usize)> {
    let mut from = 0;
    loop {
        let i = code[from..].find("use ")? + from;
        let line_start = code[..i].rfind('\n').map_or(0, |n| n + 1);
        let head = code[line_start..i].trim();
        if head.is_empty() || head == "pub" || head.starts_with("pub(") {
            return Some((!head.is_empty(), i + 4));
        }
        from = i + 4;
    }
}

/// Resolves a named path, from module `at`, to the longest known module.
fn resolve(at: &ModPath, path: &[String], mods: &BTreeSet<ModPath>) -> Option<ModPath> {
    let mut base: ModPath = match path.first().map(String::as_str) {
        Some("crate") => Vec::new(),
        Some("super") => {
            let mut b = at.clone();
            let mut n = 0;
            while path.get(n).map(String::as_str) == Some("super") {
                b.pop();
                n += 1;
            }
            return longest(&b, &path[n..], mods);
        }
        Some("self") => at.clone(),
        Some(first) => {
            // A child module named without `self::` (`use scenario::Env`).
            let mut child = at.clone();
            child.push(first.to_string());
            if !mods.contains(&child) {
                return None;
            }
            return longest(at, path, mods);
        }
        None => return None,
    };
    let rest = &path[1..];
    if base.is_empty() && rest.is_empty() {
        return None;
    }
    longest(&std::mem::take(&mut base), rest, mods)
}

fn longest(base: &ModPath, rest: &[String], mods: &BTreeSet<ModPath>) -> Option<ModPath> {
    let mut best = None;
    let mut cur = base.clone();
    if mods.contains(&cur) {
        best = Some(cur.clone());
    }
    for seg in rest {
        cur.push(seg.clone());
        if mods.contains(&cur) {
            best = Some(cur.clone());
        } else {
            break;
        }
    }
    best
}

struct Graph {
    edges: BTreeMap<ModPath, BTreeSet<ModPath>>,
    lines: BTreeMap<ModPath, (PathBuf, usize)>,
}

fn graph(crate_src: &str) -> Graph {
    let src = root().join(crate_src);
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mods: BTreeSet<ModPath> = files.iter().map(|f| mod_path(&src, f)).collect();
    let mut edges: BTreeMap<ModPath, BTreeSet<ModPath>> = BTreeMap::new();
    let mut lines = BTreeMap::new();
    for f in &files {
        let at = mod_path(&src, f);
        if f.ends_with("main.rs") {
            continue; // the binary's root: uses the library from outside.
        }
        let text = std::fs::read_to_string(f).expect("read source");
        lines.insert(at.clone(), (f.clone(), text.lines().count()));
        let entry = edges.entry(at.clone()).or_default();
        let children: Vec<String> = mods
            .iter()
            .filter(|m| m.len() == at.len() + 1 && m.starts_with(&at))
            .filter_map(|m| m.last().cloned())
            .collect();
        for (path, reexport) in paths_in(&code_of(&text), &children) {
            if reexport {
                continue;
            }
            if let Some(to) = resolve(&at, &path, &mods)
                && to != at
            {
                entry.insert(to);
            }
        }
    }
    Graph { edges, lines }
}

/// Tarjan's strongly connected components of more than one module.
fn cycles(edges: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Vec<Vec<ModPath>> {
    struct T<'a> {
        edges: &'a BTreeMap<ModPath, BTreeSet<ModPath>>,
        index: BTreeMap<ModPath, usize>,
        low: BTreeMap<ModPath, usize>,
        stack: Vec<ModPath>,
        on: BTreeSet<ModPath>,
        next: usize,
        out: Vec<Vec<ModPath>>,
    }
    fn visit(t: &mut T, v: &ModPath) {
        t.index.insert(v.clone(), t.next);
        t.low.insert(v.clone(), t.next);
        t.next += 1;
        t.stack.push(v.clone());
        t.on.insert(v.clone());
        let succ: Vec<ModPath> = t.edges.get(v).into_iter().flatten().cloned().collect();
        for w in succ {
            if !t.index.contains_key(&w) {
                visit(t, &w);
                let lw = t.low[&w];
                let lv = t.low[v];
                t.low.insert(v.clone(), lv.min(lw));
            } else if t.on.contains(&w) {
                let iw = t.index[&w];
                let lv = t.low[v];
                t.low.insert(v.clone(), lv.min(iw));
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(&w);
                let done = &w == v;
                comp.push(w);
                if done {
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
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !t.index.contains_key(v) {
            visit(&mut t, v);
        }
    }
    t.out
}

fn name(m: &ModPath) -> String {
    if m.is_empty() {
        "crate".into()
    } else {
        m.join("::")
    }
}

#[test]
fn no_module_imports_cycle_back_to_itself() {
    let mut found = Vec::new();
    for krate in CRATES {
        let g = graph(krate);
        println!("== {krate}: {} modules", g.edges.len());
        for (from, to) in &g.edges {
            let to: Vec<String> = to.iter().map(name).collect();
            println!("{} -> {}", name(from), to.join(", "));
        }
        for c in cycles(&g.edges) {
            found.push(format!(
                "{krate}: {}",
                c.iter().map(name).collect::<Vec<_>>().join(" <-> ")
            ));
        }
        // The same between the crate's top folders (engine, report, ...).
        let mut top: BTreeMap<ModPath, BTreeSet<ModPath>> = BTreeMap::new();
        for (from, to) in &g.edges {
            let f: ModPath = from.iter().take(1).cloned().collect();
            for t in to {
                let t: ModPath = t.iter().take(1).cloned().collect();
                if t != f {
                    top.entry(f.clone()).or_default().insert(t);
                }
            }
        }
        for c in cycles(&top) {
            found.push(format!(
                "{krate} (top folders): {}",
                c.iter().map(name).collect::<Vec<_>>().join(" <-> ")
            ));
        }
    }
    assert!(found.is_empty(), "import cycles:\n{}", found.join("\n"));
}

#[test]
fn no_source_file_is_too_long_to_read_in_one_sitting() {
    let mut long = Vec::new();
    for krate in CRATES {
        for (file, lines) in graph(krate).lines.values() {
            if *lines > MAX_LINES {
                long.push(format!("{} ({lines} lines)", file.display()));
            }
        }
    }
    assert!(
        long.is_empty(),
        "over {MAX_LINES} lines:\n{}",
        long.join("\n")
    );
}

#[test]
fn the_graph_reader_sees_what_it_must() {
    // A cycle written on purpose is found; a re-export is not a use.
    let mods: BTreeSet<ModPath> = [
        vec![],
        vec!["a".into()],
        vec!["b".into()],
        vec!["a".into(), "c".into()],
    ]
    .into_iter()
    .collect();
    let code = code_of(
        "use crate::{a::c::X, b};\n// use crate::q;\npub use c::Y;\nfn f() { super::b::g(); }\n",
    );
    let paths = paths_in(&code, &["c".to_string()]);
    let at: ModPath = vec!["a".into()];
    let used: BTreeSet<ModPath> = paths
        .iter()
        .filter(|(_, re)| !re)
        .filter_map(|(p, _)| resolve(&at, p, &mods))
        .collect();
    assert!(
        used.contains(&vec!["a".to_string(), "c".to_string()]),
        "{paths:?}"
    );
    assert!(used.contains(&vec!["b".to_string()]), "{paths:?}");
    assert!(
        paths
            .iter()
            .any(|(p, re)| *re && p.ends_with(&["Y".to_string()]))
    );
    // `std::c::Z` and `my_c::Z` name no child `c`; `c::f()` does.
    let other = paths_in(
        &code_of("fn g() -> std::c::Z { my_c::Z }\n"),
        &["c".to_string()],
    );
    assert!(other.is_empty(), "{other:?}");
    let child = paths_in(&code_of("fn g() { c::f() }\n"), &["c".to_string()]);
    assert_eq!(child.len(), 1, "{child:?}");
    let mut edges = BTreeMap::new();
    edges.insert(
        vec!["a".to_string()],
        BTreeSet::from([vec!["b".to_string()]]),
    );
    edges.insert(
        vec!["b".to_string()],
        BTreeSet::from([vec!["a".to_string()]]),
    );
    assert_eq!(cycles(&edges).len(), 1);
}
