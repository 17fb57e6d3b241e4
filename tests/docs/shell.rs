//! The command lines of a markdown file: every fenced shell block's lines
//! (and `$ ` lines of a transcript block) and the inline commands of table
//! rows, `\`-continued lines joined, cut at `;`, `&&`, `|` and `&` into
//! simple commands, comments, redirections and here-documents dropped. What
//! a command means is `cli.rs`'s; this only reads the shell's grammar, as
//! far as the docs use it.

/// One simple command as the docs write it.
#[derive(Debug)]
pub struct Command {
    /// 1-based line where the command's logical line starts.
    pub line: usize,
    /// The logical line as written (continuations joined), for messages.
    pub text: String,
    /// Its words, quotes removed, env-var prefixes and keywords dropped.
    pub words: Vec<String>,
}

/// The marker that, on the line before a fenced block or a table, makes
/// the checker skip it (for commands whose flags have not landed yet).
pub const SKIP_MARKER: &str = "<!-- cli-check: skip";

/// Every command in `text` (a markdown file).
pub fn commands(text: &str) -> Vec<Command> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut skip_next = false;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        if let Some(fence) = fence_of(trimmed) {
            let info = trimmed[fence.len()..].trim().to_ascii_lowercase();
            let shell = matches!(info.as_str(), "sh" | "bash" | "shell" | "console" | "zsh");
            let skip = std::mem::take(&mut skip_next);
            let start = i + 1;
            let mut end = start;
            while end < lines.len() && !lines[end].trim_start().starts_with(fence) {
                end += 1;
            }
            if !skip {
                block_commands(&lines[start..end], start, shell, &mut out);
            }
            i = end + 1;
            continue;
        }
        if trimmed.starts_with(SKIP_MARKER) {
            skip_next = true;
        } else if trimmed.starts_with('|') {
            if !skip_next {
                table_commands(line, i + 1, &mut out);
            }
        } else if !trimmed.is_empty() {
            // A marker covers the block or table right after it, not text further on.
            skip_next = false;
        }
        i += 1;
    }
    out
}

/// "```" or "~~~" (or longer) when `line` opens or closes a fence.
pub fn fence_of(line: &str) -> Option<&str> {
    for c in ['`', '~'] {
        let n = line.chars().take_while(|&x| x == c).count();
        if n >= 3 {
            return Some(&line[..n]);
        }
    }
    None
}

/// A fenced block: in a shell block every line is a command line; in any
/// other block only a transcript's `$ ` lines are.
fn block_commands(lines: &[&str], first: usize, shell: bool, out: &mut Vec<Command>) {
    let mut i = 0;
    while i < lines.len() {
        let number = first + i + 1;
        let raw = lines[i].trim();
        i += 1;
        let body = if let Some(rest) = raw.strip_prefix("$ ") {
            rest
        } else if shell {
            raw
        } else {
            continue;
        };
        let mut logical = body.to_string();
        while logical.ends_with('\\') && i < lines.len() {
            logical.pop();
            logical.truncate(logical.trim_end().len());
            logical.push(' ');
            logical.push_str(lines[i].trim());
            i += 1;
        }
        let (simple, heredoc) = split(&logical);
        for words in simple {
            if !words.is_empty() {
                out.push(Command {
                    line: number,
                    text: logical.clone(),
                    words,
                });
            }
        }
        if let Some(end) = heredoc {
            // The here-document's body is input, not commands.
            while i < lines.len() && lines[i].trim() != end {
                i += 1;
            }
            i += 1;
        }
    }
}

/// A table row's inline code spans that are whole commands.
fn table_commands(line: &str, number: usize, out: &mut Vec<Command>) {
    for span in line.split('`').skip(1).step_by(2) {
        // A command has a flag or an argument past its subcommand;
        // `loadgen run` alone is a mention, `loadgen serve <style>` a template.
        let words: Vec<&str> = span.split_whitespace().collect();
        let ours = matches!(words.first(), Some(&("loadgen" | "servers" | "cargo")));
        let whole = words.len() >= 3 || words.iter().any(|w| w.starts_with('-'));
        if ours && whole && !span.contains(['<', '[']) {
            let (simple, _) = split(span);
            for words in simple {
                out.push(Command {
                    line: number,
                    text: span.to_string(),
                    words,
                });
            }
        }
    }
}

/// Splits one logical line into simple commands; also returns the end
/// word of a here-document it opens.
fn split(line: &str) -> (Vec<Vec<String>>, Option<String>) {
    let mut commands = vec![Vec::new()];
    let mut heredoc = None;
    let mut word = String::new();
    let mut in_word = false;
    let mut redirect = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '#' if !in_word => break,
            ' ' | '\t' => finish(&mut word, &mut in_word, &mut redirect, &mut commands),
            ';' | '|' | '&' => {
                finish(&mut word, &mut in_word, &mut redirect, &mut commands);
                while chars.peek().is_some_and(|&n| n == c) {
                    chars.next();
                }
                commands.push(Vec::new());
            }
            '<' | '>' => {
                // A redirection, or `N>`: its operator and target are dropped.
                if in_word && word.chars().all(|d| d.is_ascii_digit()) {
                    word.clear();
                    in_word = false;
                } else {
                    finish(&mut word, &mut in_word, &mut redirect, &mut commands);
                }
                if c == '<' && chars.peek() == Some(&'<') {
                    chars.next();
                    if chars.peek() == Some(&'-') {
                        chars.next();
                    }
                    let rest: String = chars.by_ref().collect();
                    let end = rest.split_whitespace().next().unwrap_or("");
                    heredoc = Some(end.trim_matches(|q| q == '\'' || q == '"').to_string());
                    break;
                }
                while chars.peek().is_some_and(|&n| n == '>' || n == '&') {
                    chars.next();
                }
                if chars.peek().is_some_and(|n| n.is_ascii_digit()) {
                    chars.next(); // `>&2`
                    continue;
                }
                redirect = true;
            }
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    word.push(q);
                }
            }
            '"' => {
                in_word = true;
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' => {
                            if let Some(n) = chars.next() {
                                word.push(n);
                            }
                        }
                        _ => word.push(q),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    word.push(n);
                }
            }
            '$' if chars.peek() == Some(&'(') => {
                // A command substitution stands for one value.
                in_word = true;
                let mut depth = 0;
                word.push('$');
                for q in chars.by_ref() {
                    word.push(q);
                    match q {
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {
                in_word = true;
                word.push(c);
            }
        }
    }
    finish(&mut word, &mut in_word, &mut redirect, &mut commands);
    let commands = commands.into_iter().map(strip_prefix_words).collect();
    (commands, heredoc)
}

/// Ends the current word; a redirection's target is dropped, not kept.
fn finish(
    word: &mut String,
    in_word: &mut bool,
    redirect: &mut bool,
    commands: &mut [Vec<String>],
) {
    if *in_word {
        let w = std::mem::take(word);
        if std::mem::take(redirect) {
            // the target of `>` or `<`
        } else if let Some(c) = commands.last_mut() {
            c.push(w);
        }
        *in_word = false;
    }
}

/// Drops `VAR=value` prefixes and the words that run the next one
/// (`do`, `then`, `exec`, `sudo`, ...).
fn strip_prefix_words(words: Vec<String>) -> Vec<String> {
    let is_assignment = |w: &str| {
        w.split_once('=').is_some_and(|(name, _)| {
            !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit())
        })
    };
    let keyword = |w: &str| {
        matches!(
            w,
            "do" | "then" | "else" | "exec" | "time" | "sudo" | "env" | "!" | "nohup"
        )
    };
    let skip = words
        .iter()
        .take_while(|w| is_assignment(w) || keyword(w))
        .count();
    words.into_iter().skip(skip).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<Vec<String>> {
        split(line)
            .0
            .into_iter()
            .filter(|c| !c.is_empty())
            .collect()
    }

    #[test]
    fn quotes_comments_prefixes_and_operators() {
        assert_eq!(
            words("A=1 B='x y' loadgen run --label 'a b' # a comment"),
            vec![vec!["loadgen", "run", "--label", "a b"]]
        );
        assert_eq!(
            words("for i in 2 3; do loadgen diff a b > out.md 2>&1; done"),
            vec![
                vec!["for", "i", "in", "2", "3"],
                vec!["loadgen", "diff", "a", "b"],
                vec!["done"]
            ]
        );
        assert_eq!(
            words("loadgen run --addr x --out a.json &"),
            vec![vec!["loadgen", "run", "--addr", "x", "--out", "a.json"]]
        );
        assert_eq!(
            words("servers reactor --addr \"$(cat addr)\" | head"),
            vec![
                vec!["servers", "reactor", "--addr", "$(cat addr)"],
                vec!["head"]
            ]
        );
        let (_, heredoc) = split("cat > x.sh <<'SH'");
        assert_eq!(heredoc.as_deref(), Some("SH"));
    }

    #[test]
    fn blocks_continuations_transcripts_tables_and_the_skip_marker() {
        let md = "```sh\nloadgen compare \\\n  --styles epoll # c\ncat > f <<'SH'\nloadgen nope\nSH\n```\n\
                  ```\n$ servers tasks\nlistening on x\n```\n\
                  | a | `loadgen run --addr x` | `loadgen run` | `loadgen serve <style>` |\n\
                  <!-- cli-check: skip (later) -->\n```sh\nloadgen soon --flag\n```\n";
        let found: Vec<(usize, Vec<String>)> = commands(md)
            .into_iter()
            .map(|c| (c.line, c.words))
            .collect();
        let expect = |l: usize, w: &[&str]| (l, w.iter().map(|s| s.to_string()).collect());
        assert_eq!(
            found,
            vec![
                expect(2, &["loadgen", "compare", "--styles", "epoll"]),
                expect(4, &["cat"]),
                expect(9, &["servers", "tasks"]),
                expect(12, &["loadgen", "run", "--addr", "x"]),
            ]
        );
    }
}
