//! Which of the docs' commands are this project's (`loadgen ...`,
//! `servers ...`, `cargo run ... -p loadgen|servers -- ...`), and whether
//! each parses with the real command line: clap's `try_parse_from` on the
//! same `Cli`/`ServeArgs` the binaries use, then the checks each command
//! makes of its values before it starts anything.

use clap::Parser;

/// The outcome of checking one command.
pub enum Checked {
    /// Not one of this project's commands (cargo test, docker, cat, ...).
    NotOurs,
    Parsed,
    /// The CLI's error, in one line.
    Refused(String),
}

/// Checks one simple command's words.
pub fn check(words: &[String]) -> Checked {
    let Some(program) = words.first() else {
        return Checked::NotOurs;
    };
    let args: Vec<String> = words[1..].iter().map(|w| placeholder(w)).collect();
    match program.rsplit('/').next().unwrap_or("") {
        "loadgen" => loadgen(&args),
        "servers" => servers(&args),
        "cargo" if args.first().is_some_and(|a| a == "run") => cargo_run(&args[1..]),
        _ => Checked::NotOurs,
    }
}

/// `cargo run [cargo flags] -p PACKAGE [-- ARGS]`: ARGS go to PACKAGE's CLI.
fn cargo_run(args: &[String]) -> Checked {
    let split = args.iter().position(|a| a == "--").unwrap_or(args.len());
    let (cargo, ours) = (&args[..split], args.get(split + 1..).unwrap_or(&[]));
    let mut package = None;
    for (i, a) in cargo.iter().enumerate() {
        if a == "-p" || a == "--package" {
            package = cargo.get(i + 1).map(String::as_str);
        } else if let Some(p) = a.strip_prefix("--package=") {
            package = Some(p);
        }
    }
    match package {
        Some("loadgen") => loadgen(ours),
        Some("servers") => servers(ours),
        _ => Checked::NotOurs,
    }
}

fn loadgen(args: &[String]) -> Checked {
    use loadgen::cli::Command;
    let argv = std::iter::once("loadgen".to_string()).chain(args.iter().cloned());
    let cli = match loadgen::cli::Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => return clap_error(e),
    };
    // The checks of values each command makes before it runs anything.
    let checked = match &cli.command {
        Command::Run(run) => run.spec().map(drop),
        Command::Compare(compare) => compare.externals().map(drop),
        Command::Soak(soak) => soak.plan().map(drop),
        Command::Serve { args } => {
            let args: Vec<String> = args
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            return servers(&args);
        }
        _ => Ok(()),
    };
    match checked {
        Ok(()) => Checked::Parsed,
        Err(e) => clap_error(e),
    }
}

fn servers(args: &[String]) -> Checked {
    // `servers list` is read before clap, as `servers::cli::run` does.
    if args.len() == 1 && args[0] == "list" {
        return Checked::Parsed;
    }
    let argv = std::iter::once("servers".to_string()).chain(args.iter().cloned());
    match servers::cli::ServeArgs::try_parse_from(argv) {
        Ok(serve) => match serve.check() {
            Ok(()) => Checked::Parsed,
            Err(e) => Checked::Refused(e),
        },
        Err(e) => clap_error(e),
    }
}

/// `--help` and `--version` are the commands working, not failing.
fn clap_error(e: clap::Error) -> Checked {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => Checked::Parsed,
        _ => {
            let text = e.to_string();
            // The error and the line that names what is wrong.
            let lines: Vec<&str> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .take(2)
                .collect();
            Checked::Refused(lines.join(" "))
        }
    }
}

/// A word as it would be once the reader fills in the docs' placeholders:
/// `127.0.0.1:PORT` and `HOST:PORT` an address, `PID` a pid, `$(...)` and
/// `$VAR` a value, `...` after `--addr` an address. Anything else is taken
/// as written, so a misspelt flag still fails. The address is only parsed,
/// never bound or reached: port 0, as a test's own listeners use.
fn placeholder(word: &str) -> String {
    let mut w = word.replace("HOST:PORT", "127.0.0.1:0");
    for (name, value) in [("PORT", "0"), ("PID", "4242")] {
        w = replace_word(&w, name, value);
    }
    while let Some(start) = w.find("$(") {
        let end = w[start..].find(')').map_or(w.len(), |e| start + e + 1);
        w.replace_range(start..end, "1");
    }
    while let Some(start) = w.find('$') {
        let name_len = w[start + 1..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '{' || c == '}'))
            .unwrap_or(w.len() - start - 1);
        w.replace_range(start..start + 1 + name_len, "1");
    }
    if w == "..." {
        w = "127.0.0.1:0".to_string();
    }
    w
}

/// Replaces `name` where it stands as a word of its own (not inside
/// another word: `PID` in `--server-pid` stays).
fn replace_word(text: &str, name: &str, value: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(name) {
        let before = rest[..at].chars().last();
        let after = rest[at + name.len()..].chars().next();
        let alone = |c: Option<char>| !c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        out.push_str(&rest[..at]);
        out.push_str(if alone(before) && alone(after) {
            value
        } else {
            name
        });
        rest = &rest[at + name.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn our_commands_parse_and_a_wrong_flag_is_refused() {
        let ok = |s: &str| matches!(check(&words(s)), Checked::Parsed);
        let refused = |s: &str| matches!(check(&words(s)), Checked::Refused(_));
        assert!(ok("loadgen compare --profile smoke --styles epoll,reactor"));
        assert!(ok("cargo run --release -p loadgen -- compare --help"));
        assert!(ok("./target/release/servers reactor --addr 127.0.0.1:PORT"));
        assert!(ok("loadgen run --addr 127.0.0.1:PORT --server-pid PID"));
        assert!(ok("servers list"));
        assert!(ok("loadgen serve tasks --workers 0"));
        assert!(refused("loadgen compare --no-such-flag"));
        assert!(refused("cargo run -p servers -- threads --workers 4"));
        assert!(refused("loadgen serve nosuchstyle"));
        assert!(matches!(
            check(&words("cargo test --workspace")),
            Checked::NotOurs
        ));
        assert!(matches!(
            check(&words("docker swarm init")),
            Checked::NotOurs
        ));
    }

    #[test]
    fn placeholders_are_filled_but_flags_are_not() {
        assert_eq!(placeholder("127.0.0.1:PORT"), "127.0.0.1:0");
        assert_eq!(placeholder("--server-pid"), "--server-pid");
        assert_eq!(placeholder("results/r$i"), "results/r1");
        assert_eq!(placeholder("$(pgrep servers)"), "1");
    }
}
