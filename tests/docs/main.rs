//! README.md and the guide in docs/ kept true: every command in them
//! parses with the real command line, every relative link and `#anchor`
//! resolves, docs/README.md lists every page, and the README stays a front
//! page. A failure names the file and line.
//!
//! A fenced block (or table) preceded by `<!-- cli-check: skip (why) -->`
//! is not checked: for commands documented before their flags land.

mod cli;
mod links;
mod shell;

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every docs/*.md, as paths relative to the root.
fn pages() -> Vec<PathBuf> {
    let mut out = vec![PathBuf::from("README.md")];
    let docs = std::fs::read_dir(root().join("docs")).expect("reading docs/");
    let mut guide: Vec<PathBuf> = docs
        .map(|e| e.expect("a docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .map(|p| Path::new("docs").join(p.file_name().expect("a file name")))
        .collect();
    guide.sort();
    out.extend(guide);
    out
}

fn read(rel: &Path) -> String {
    std::fs::read_to_string(root().join(rel))
        .unwrap_or_else(|e| panic!("reading {}: {e}", rel.display()))
}

/// Checks every command of `text` (the file `name`); returns the failures.
fn command_failures(name: &str, text: &str) -> (usize, Vec<String>) {
    let mut checked = 0;
    let mut failures = Vec::new();
    for command in shell::commands(text) {
        match cli::check(&command.words) {
            cli::Checked::NotOurs => {}
            cli::Checked::Parsed => checked += 1,
            cli::Checked::Refused(why) => failures.push(format!(
                "{name}:{}: `{}`: {why}",
                command.line,
                command.text.trim()
            )),
        }
    }
    (checked, failures)
}

#[test]
fn every_command_in_the_readme_and_the_guide_parses() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for page in pages() {
        let (n, f) = command_failures(&page.display().to_string(), &read(&page));
        checked += n;
        failures.extend(f);
    }
    assert!(
        failures.is_empty(),
        "commands the real CLI refuses:\n{}",
        failures.join("\n")
    );
    // The checker found the commands at all (a parser that sees none passes nothing).
    assert!(checked >= 30, "only {checked} commands found to check");
}

/// The failures of every link in `text` (the file at `rel`).
fn link_failures(rel: &Path, text: &str) -> Vec<String> {
    let dir = rel.parent().unwrap_or(Path::new(""));
    let mut failures = Vec::new();
    for link in links::links(&links::prose(text)) {
        let target = link.target.as_str();
        if target.contains("://") || target.starts_with("mailto:") {
            continue;
        }
        let (path, anchor) = match target.split_once('#') {
            Some((p, a)) => (p, Some(a)),
            None => (target, None),
        };
        let at = format!("{}:{}: link `{target}`", rel.display(), link.line);
        // An anchor alone points into this file, read from `text`.
        let (file, anchors) = if path.is_empty() {
            (rel.to_path_buf(), Some(links::anchors(text)))
        } else {
            let file = dir.join(path);
            if !root().join(&file).exists() {
                failures.push(format!("{at}: {} does not exist", file.display()));
                continue;
            }
            let md = file.extension().is_some_and(|e| e == "md");
            let anchors = (md && anchor.is_some()).then(|| links::anchors(&read(&file)));
            (file, anchors)
        };
        if let (Some(anchor), Some(anchors)) = (anchor, anchors)
            && !anchors.contains(anchor)
        {
            failures.push(format!(
                "{at}: {} has no heading with the anchor #{anchor}",
                file.display()
            ));
        }
    }
    failures
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for page in pages() {
        let text = read(&page);
        checked += links::links(&links::prose(&text)).len();
        failures.extend(link_failures(&page, &text));
    }
    assert!(
        failures.is_empty(),
        "broken links:\n{}",
        failures.join("\n")
    );
    assert!(checked >= 20, "only {checked} links found");
}

#[test]
fn the_table_of_contents_lists_every_page_of_the_guide() {
    let toc = read(Path::new("docs/README.md"));
    for page in pages() {
        let Some(name) = page.strip_prefix("docs").ok().and_then(|p| p.to_str()) else {
            continue;
        };
        if name == "README.md" {
            continue;
        }
        assert!(
            toc.contains(&format!("]({name})")),
            "docs/README.md does not link to {name}"
        );
    }
}

#[test]
fn the_readme_is_a_front_page_and_holds_the_test_command_ci_runs() {
    let readme = read(Path::new("README.md"));
    let lines = readme.lines().count();
    assert!(
        lines <= 220,
        "README.md has {lines} lines: the guide is docs/"
    );
    // .ci/run runs "the README's test command": the two must agree.
    let ci = read(Path::new(".ci/run"));
    let command = "cargo test --workspace";
    assert!(
        readme.lines().any(|l| l.trim() == command),
        "README.md has no line `{command}`"
    );
    assert!(
        ci.contains(&format!("{command} --locked")),
        ".ci/run does not run `{command}`"
    );
}

/// The checks themselves fail where they should: a planted wrong flag, a
/// missing file and a missing anchor are each reported with file and line.
#[test]
fn a_renamed_flag_a_broken_link_and_a_broken_anchor_are_each_named() {
    let md = "# Title\n\ntext\n\n```sh\nloadgen compare --stiles epoll\n```\n\
              [gone](no-such-page.md) and [here](#no-such-heading) and [ok](#title)\n";
    let (_, commands) = command_failures("x.md", md);
    assert_eq!(commands.len(), 1, "{commands:?}");
    assert!(
        commands[0].starts_with("x.md:6: `loadgen compare --stiles epoll`"),
        "{commands:?}"
    );
    let broken = link_failures(Path::new("docs/x.md"), md);
    assert_eq!(broken.len(), 2, "{broken:?}");
    assert!(broken[0].starts_with("docs/x.md:8: link `no-such-page.md`"));
    assert!(broken[1].contains("#no-such-heading"));
}
