//! The links of a markdown file and the anchors of its headings, as a code
//! host renders them: `[text](path#anchor)` outside code, and GitHub's
//! heading slugs (lower case, punctuation dropped, spaces to hyphens, a
//! repeated heading numbered `-1`, `-2`, ...).

use std::collections::HashSet;

/// One `[text](target)` link.
#[derive(Debug)]
pub struct Link {
    /// 1-based line of the `](` that starts the target.
    pub line: usize,
    pub target: String,
}

/// `text` with fenced blocks and inline code blanked (newlines kept, so
/// offsets still give line numbers): neither holds links or headings.
pub fn prose(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut fence: Option<String> = None;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        match (&fence, super::shell::fence_of(trimmed)) {
            (None, Some(f)) => {
                fence = Some(f.to_string());
                blank(line, &mut out);
            }
            (Some(open), Some(f)) if f.starts_with(open.as_str()) => {
                fence = None;
                blank(line, &mut out);
            }
            (Some(_), _) => blank(line, &mut out),
            (None, None) => out.push_str(&without_code_spans(line)),
        }
    }
    out
}

fn blank(line: &str, out: &mut String) {
    if line.ends_with('\n') {
        out.push('\n');
    }
}

/// A line with each `code span` replaced by `code` (its backticks and
/// contents would otherwise look like links or hide them).
fn without_code_spans(line: &str) -> String {
    let mut out = String::new();
    for (i, part) in line.split('`').enumerate() {
        out.push_str(if i % 2 == 0 { part } else { "code" });
    }
    out
}

/// Every inline link in `prose` (see [`prose`]); a link's text may span lines.
pub fn links(prose: &str) -> Vec<Link> {
    let bytes = prose.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(at) = prose[i..].find("](") {
        let start = i + at + 2;
        i = start;
        // The link text must open with `[` on this line or the lines before
        // (a `]` alone, e.g. in "[1]: x", is no link).
        if !prose[..start - 2].contains('[') {
            continue;
        }
        let Some(len) = prose[start..].find(')') else {
            break;
        };
        let inner = &prose[start..start + len];
        if inner.contains('\n') || inner.is_empty() {
            continue;
        }
        // `[x](path "title")`: the path is the first word.
        let target = inner.split_whitespace().next().unwrap_or("");
        let target = target.trim_start_matches('<').trim_end_matches('>');
        let line = bytes[..start].iter().filter(|&&b| b == b'\n').count() + 1;
        out.push(Link {
            line,
            target: target.to_string(),
        });
    }
    out
}

/// The anchors a file's headings (and explicit `id`/`name` anchors) give.
pub fn anchors(text: &str) -> HashSet<String> {
    let prose_text = prose(text);
    let mut seen: HashSet<String> = HashSet::new();
    let mut out = HashSet::new();
    for line in text.lines().zip(prose_text.lines()) {
        let (raw, plain) = line;
        if plain.trim().is_empty() {
            continue; // a fenced line: `# a comment` is no heading
        }
        let hashes = raw.chars().take_while(|&c| c == '#').count();
        if (1..=6).contains(&hashes) && raw[hashes..].starts_with(' ') {
            let base = slug(&raw[hashes..]);
            let mut slug = base.clone();
            let mut n = 0;
            while seen.contains(&slug) {
                n += 1;
                slug = format!("{base}-{n}");
            }
            seen.insert(slug.clone());
            out.insert(slug);
        }
        for key in ["id=\"", "name=\""] {
            for part in raw.split(key).skip(1) {
                if let Some(end) = part.find('"') {
                    out.insert(part[..end].to_string());
                }
            }
        }
    }
    out
}

/// GitHub's slug of a heading's text.
pub fn slug(heading: &str) -> String {
    // Link markup renders as its text: `[text](url)` counts as `text`.
    let mut text = String::new();
    let mut rest = heading.trim();
    while let Some(open) = rest.find('[') {
        let Some(mid) = rest[open..].find("](") else {
            break;
        };
        let Some(close) = rest[open + mid..].find(')') else {
            break;
        };
        text.push_str(&rest[..open]);
        text.push_str(&rest[open + 1..open + mid]);
        rest = &rest[open + mid + close + 1..];
    }
    text.push_str(rest);
    text.trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_as_github_makes_them() {
        assert_eq!(
            slug(" Did my change make it faster? `compare --baseline` and `loadgen diff`"),
            "did-my-change-make-it-faster-compare---baseline-and-loadgen-diff"
        );
        assert_eq!(
            slug("Beyond one machine: Docker Swarm or Kubernetes"),
            "beyond-one-machine-docker-swarm-or-kubernetes"
        );
        assert_eq!(slug("See [the method](method.md)"), "see-the-method");
        let a = anchors("# A\n```sh\n# not a heading\n```\n## A\n");
        assert!(a.contains("a") && a.contains("a-1") && !a.contains("not-a-heading"));
    }

    #[test]
    fn links_outside_code_with_their_lines() {
        let text = "x [a](b.md#c) `[no](link)`\n```\n[no](link)\n```\n[two\nlines](d.md \"t\")\n";
        let found: Vec<(usize, String)> = links(&prose(text))
            .into_iter()
            .map(|l| (l.line, l.target))
            .collect();
        assert_eq!(
            found,
            vec![(1, "b.md#c".to_string()), (6, "d.md".to_string())]
        );
    }
}
