//! The layout's rules, checked on the source itself: no import cycle
//! between the modules of a crate, each top folder using only the folders
//! before it (the layout's order, docs/architecture.md), and no source file too long to
//! read in one sitting.
//!
//! A module "uses" another when its code names it through a `crate::`,
//! `super::`, `self::` or child-module path. Declaring a child (`mod x;`)
//! and re-exporting from it (`pub use x::Y;`) are not uses: a parent may
//! present its children's items while the children use each other. Method
//! calls are not seen: a type whose `impl` is split over child modules
//! (loadgen's `engine::worker`) is one unit to this check. Run
//! `cargo test --test architecture -- --nocapture` to print each crate's
//! graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module's path inside its crate: `["compare", "scenario"]`.
type ModPath = Vec<String>;

const CRATES: &[&str] = &["servers/src", "loadgen/src"];
/// "Files small enough to read in one sitting (~600 lines at most)".
const MAX_LINES: usize = 600;

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

/// The character `k` past `i`, or a space past the end.
fn at(c: &[char], i: usize, k: usize) -> char {
    c.get(i + k).copied().unwrap_or(' ')
}

/// A source file's code without comments, string and char literals, and
/// without its `#[cfg(test)]` modules (tests may reach anywhere), plus the
/// names of the test-only modules it declares in files of their own
/// (`#[cfg(test)] mod cost;`), which are left out of the graph too.
fn code_of(text: &str) -> (String, Vec<String>) {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < c.len() {
        match c[i] {
            '/' if at(&c, i, 1) == '/' => {
                while i < c.len() && c[i] != '\n' {
                    i += 1;
                }
            }
            '/' if at(&c, i, 1) == '*' => {
                i += 2;
                while i < c.len() && !(c[i] == '*' && at(&c, i, 1) == '/') {
                    i += 1;
                }
                i += 2;
            }
            'r' if at(&c, i, 1) == '"'
                || (at(&c, i, 1) == '#' && matches!(at(&c, i, 2), '"' | '#')) =>
            {
                // r"..." or r#"..."#: ends at a quote and as many hashes.
                let mut j = i + 1;
                let mut hashes = 0;
                while c.get(j) == Some(&'#') {
                    hashes += 1;
                    j += 1;
                }
                j += 1;
                while j < c.len()
                    && !(c[j] == '"' && (1..=hashes).all(|h| c.get(j + h) == Some(&'#')))
                {
                    j += 1;
                }
                i = j + 1 + hashes;
                out.push_str("\"\"");
            }
            '"' => {
                i += 1;
                while i < c.len() && c[i] != '"' {
                    i += if c[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
                out.push_str("\"\"");
            }
            // A char literal ('x', '\n', '"'); a lifetime ('a) is kept.
            '\'' if at(&c, i, 1) == '\\' || at(&c, i, 2) == '\'' => {
                i += if at(&c, i, 1) == '\\' { 2 } else { 1 };
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
                out.push_str("' '");
            }
            ch => {
                out.push(ch);
                i += 1;
            }
        }
    }
    // `#[cfg(test)]` before a module: drop its body, or note its file.
    let mut code = String::new();
    let mut test_files = Vec::new();
    let mut rest = out.as_str();
    while let Some(at) = rest.find("#[cfg(test)]") {
        code.push_str(&rest[..at]);
        let after = rest[at + "#[cfg(test)]".len()..].trim_start();
        let item = after
            .strip_prefix("pub(crate) ")
            .or_else(|| after.strip_prefix("pub(super) "))
            .or_else(|| after.strip_prefix("pub "))
            .unwrap_or(after);
        let Some(module) = item.strip_prefix("mod ") else {
            rest = &rest[at + 1..];
            code.push('#');
            continue;
        };
        let name: String = module
            .chars()
            .take_while(|ch| ch.is_alphanumeric() || *ch == '_')
            .collect();
        let body = &module[name.len()..];
        let skipped = body.trim_start();
        if let Some(after) = skipped.strip_prefix(';') {
            test_files.push(name);
            rest = after;
        } else {
            // Past the matching closing brace (literals are gone by now).
            let mut depth = 0usize;
            let mut end = skipped.len();
            for (k, ch) in skipped.char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = k + 1;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            rest = &skipped[end..];
        }
    }
    code.push_str(rest);
    (code, test_files)
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
    // `use` items, which may span lines; blanked out of what follows, so a
    // re-export is counted once, as one.
    let mut exprs = code.to_string();
    let mut offset = 0;
    while let Some((is_pub, after)) = find_use(&code[offset..]) {
        let (tree, rest) = (offset + after, &code[offset + after..]);
        let end = tree + rest.find(';').unwrap_or(rest.len());
        for p in expand(&code[tree..end]) {
            out.push((p, is_pub));
        }
        exprs.replace_range(tree..end, &" ".repeat(end - tree));
        offset = end;
    }
    // Paths in expressions and types: `crate::a::b`, `super::x`.
    let code = exprs.as_str();
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
    let mut test_only: BTreeSet<ModPath> = BTreeSet::new();
    let mut parsed = Vec::new();
    for f in &files {
        let at = mod_path(&src, f);
        let text = std::fs::read_to_string(f).expect("read source");
        lines.insert(at.clone(), (f.clone(), text.lines().count()));
        let (code, test_files) = code_of(&text);
        for name in test_files {
            let mut m = at.clone();
            m.push(name);
            test_only.insert(m);
        }
        parsed.push((f.clone(), at, code));
    }
    for (f, at, code) in parsed {
        // The binary's root uses the library from outside; a test-only
        // module may reach anywhere.
        if f.ends_with("main.rs") || test_only.iter().any(|t| at.starts_with(t)) {
            continue;
        }
        let entry = edges.entry(at.clone()).or_default();
        let children: Vec<String> = mods
            .iter()
            .filter(|m| m.len() == at.len() + 1 && m.starts_with(&at))
            .filter_map(|m| m.last().cloned())
            .collect();
        for (path, reexport) in paths_in(&code, &children) {
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

/// Each crate's top folders in the order docs/architecture.md's layout lists them:
/// a folder uses only those before it.
const LAYERS: &[(&str, &[&str])] = &[
    ("servers/src", &["runtime", "styles", "cli"]),
    (
        "loadgen/src",
        &[
            "results", "probe", "engine", "compare", "soak", "report", "cli",
        ],
    ),
];

#[test]
fn each_folder_uses_only_the_folders_before_it() {
    let mut wrong = Vec::new();
    for (krate, layers) in LAYERS {
        let rank = |m: &ModPath| {
            let top = m.first().map(String::as_str).unwrap_or("");
            layers.iter().position(|l| *l == top)
        };
        for (from, to) in graph(krate).edges {
            let Some(f) = rank(&from) else { continue };
            for t in &to {
                match rank(t) {
                    Some(r) if r <= f => {}
                    Some(_) => wrong.push(format!("{krate}: {} uses {}", name(&from), name(t))),
                    None if t.is_empty() => {}
                    None => wrong.push(format!("{krate}: {} is in no layer", name(t))),
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
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
    let mods: BTreeSet<ModPath> = [
        vec![],
        vec!["a".into()],
        vec!["b".into()],
        vec!["a".into(), "c".into()],
    ]
    .into_iter()
    .collect();
    let at: ModPath = vec!["a".into()];
    let used = |src: &str| -> BTreeSet<ModPath> {
        paths_in(&code_of(src).0, &["c".to_string()])
            .iter()
            .filter(|(_, re)| !re)
            .filter_map(|(p, _)| resolve(&at, p, &mods))
            .collect()
    };
    let (a, b, c) = (
        vec!["a".to_string()],
        vec!["b".to_string()],
        vec!["a".to_string(), "c".to_string()],
    );
    // Uses through `use` trees, expression paths and child modules.
    let found = used("use crate::{a::c::X, b};\nfn f() { super::b::g(); }\n");
    assert_eq!(found, BTreeSet::from([b.clone(), c.clone()]));
    assert_eq!(used("fn g() { c::f() }\n"), BTreeSet::from([c.clone()]));
    // Not uses: a re-export, comments, strings, char literals, test
    // modules, and a name inside a longer path (`std::c::Z`, `my_c::Z`).
    for src in [
        "pub use c::Y;\npub use crate::b::Z;\n",
        "// use crate::b;\n/* crate::b::x() */\nfn f() -> &'static str { \"crate::b::x\" }\n",
        "const Q: char = '\"'; fn f() { let s = r#\"crate::b::\"#; }\n",
        "#[cfg(test)]\nmod tests {\n    fn f() { crate::b::g(\"}\"); }\n}\n",
        "fn g() -> std::c::Z { my_c::Z }\n",
    ] {
        assert!(used(src).is_empty(), "{src:?} uses {:?}", used(src));
    }
    // After a test module, code is read again; a test-only file is noted.
    let (code, test_files) =
        code_of("#[cfg(test)]\nmod cost;\n#[cfg(test)]\nmod t { }\nuse crate::b::X;\n");
    assert_eq!(test_files, ["cost"]);
    assert_eq!(used(&code), BTreeSet::from([b.clone()]));
    // A cycle written on purpose is found, and a chain is not one.
    let mut edges = BTreeMap::new();
    edges.insert(a.clone(), BTreeSet::from([b.clone()]));
    edges.insert(b.clone(), BTreeSet::from([a.clone()]));
    assert_eq!(cycles(&edges).len(), 1);
    edges.insert(b.clone(), BTreeSet::from([c.clone()]));
    assert!(cycles(&edges).is_empty());
}
