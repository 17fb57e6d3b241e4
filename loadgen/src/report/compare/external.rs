//! report.md's account of the `--external` servers: each one's command and
//! how it was run and judged, beside the styles it is compared with, and
//! its cell in the servers table. Their rows in the scenario tables are the
//! styles' own, under the marked name ("socat (external)").

use crate::compare::model::{CompareResults, ServerRecord};
use crate::report::md::putln;

/// The section, after the servers table (nothing without externals).
pub fn section(s: &mut String, results: &CompareResults) {
    if results.externals.is_empty() {
        return;
    }
    putln!(
        s,
        "## External servers\n\n\
         Rows marked \"(external)\" are servers given with `--external`, not styles of this project. Each was \
         run the way the styles' servers are: its command through `sh -c` with `{{port}}` a free port loadgen \
         picked, pinned to the servers' CPUs, in a process group (and, where the styles have one, a cgroup) of \
         its own, its whole process tree sampled; it counted as ready once the port accepted a TCP connection \
         (10 s at most), and was stopped with SIGTERM to its process group, SIGKILL 2 s later. It prints no \
         summary line: \"stopped cleanly\" means it ended on SIGTERM (of the signal, or exiting 0 or 143) within \
         those 2 s. It ran every scenario as it is: the fairness scenario's `--work-us` (CPU burnt per chunk \
         read) is a flag of this project's servers, so its fairness row has light connections beside a heavy \
         one with no such work, and does not compare with the styles' rows there. Its memory per idle \
         connection is what it was charged (or its process tree held) over the connections loadgen held: a \
         server that takes connections on one at a time (socat forks a process per accepted connection) may \
         still have many waiting in its listen backlog when the sample is taken, so read that figure as a \
         floor.\n"
    );
    for e in &results.externals {
        putln!(s, "- {}: {}", e.row(), code(&e.command));
    }
    s.push('\n');
}

/// An external server's cell in the servers table: the command as run and
/// how it ended, before `detail` (its problem, if any).
pub fn server_detail(r: &ServerRecord, command: &str, detail: String) -> String {
    let ended = match (&r.exit_signal, r.exit_code) {
        (Some(sig), _) => format!("ended by {sig}"),
        (None, Some(code)) => format!("exited {code}"),
        (None, None) => String::new(),
    };
    [code(command), ended, detail]
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
        // A table would split at a pipe (GitHub renders the escaped one).
        .replace('|', "\\|")
}

/// `text` as inline code: the fence longer than any run of backticks in it.
fn code(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    format!("{fence} {text} {fence}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_stay_in_one_cell() {
        assert_eq!(code("socat A PIPE"), "` socat A PIPE `");
        assert_eq!(code("a | b `x`"), "`` a | b `x` ``");
    }
}
