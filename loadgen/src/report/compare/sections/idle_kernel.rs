//! Beside the idle table: what an idle connection costs the kernel, per
//! style, as the server's cgroup was charged and as /proc/slabinfo and
//! /proc/meminfo break it down (`ServerStats::kernel_breakdown`, made by
//! `probe::slab`). The charge says how much; the breakdown says what, and
//! whether the charge includes the socket itself.

use crate::report::cost::cgroup;
use crate::report::md::{put, putln};
use crate::report::view::View;
use crate::results::server::KernelBreakdown;

/// The breakdown table, where any idle run has one.
pub fn table(s: &mut String, v: &View) {
    let rows: Vec<(String, &crate::results::RunResult)> = v.per_style(|st| v.idle_run(st));
    let with = |r: &crate::results::RunResult| {
        r.server
            .as_ref()
            .and_then(|sv| sv.kernel_breakdown.as_ref())
            .is_some()
    };
    if !rows.iter().any(|(_, r)| with(r)) {
        return;
    }
    putln!(
        s,
        "**What an idle connection costs the kernel**, per connection: the kernel's part of the server's cgroup \
         charge, then what the machine's slab caches, thread stacks and page tables grew by for the server \
         (loadgen's own end of each connection taken out).\n"
    );
    putln!(
        s,
        "| style | charged (kernel) | TCP socket | sock_inode | filp | dentry | epoll | task_struct | stacks | page tables | sum | note |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    );
    for (st, r) in &rows {
        let Some(b) = r
            .server
            .as_ref()
            .and_then(|sv| sv.kernel_breakdown.as_ref())
        else {
            continue;
        };
        let charged = match cgroup(r) {
            Some(cg) => match (cg.kernel_per_conn_bytes, cg.socket_accounting) {
                (Some(k), Some(false)) => format!("{} (sockets not charged)", k_ib(k)),
                (Some(k), _) => k_ib(k),
                (None, _) => "not measured".into(),
            },
            None => "– (no cgroup)".into(),
        };
        put!(s, "| {st} | {charged} |");
        match &b.unmeasured {
            Some(why) => putln!(s, " | | | | | | | | | not measured: {why} |"),
            None => {
                for part in parts(b) {
                    put!(s, " {} |", part.map(k_ib).unwrap_or_else(|| "–".into()));
                }
                putln!(
                    s,
                    " {} | {} |",
                    b.total_per_conn_bytes
                        .map(k_ib)
                        .unwrap_or_else(|| "–".into()),
                    note(b)
                );
            }
        }
    }
    let accounting = rows
        .iter()
        .filter_map(|(_, r)| cgroup(r).and_then(|c| c.socket_accounting))
        .collect::<Vec<bool>>();
    let words = if accounting.is_empty() {
        ""
    } else if accounting.iter().all(|&on| on) {
        " Socket accounting was on in every group, so the charge includes the accepted socket."
    } else {
        " Where socket accounting was off (cgroup v1 until a TCP limit is written), the charge leaves out \
         the socket object, the largest part."
    };
    putln!(
        s,
        "\nThe parts are machine-wide growth from before the first connection to once all were open (each the \
         median of {} readings): loadgen's end is as many sockets again, so the server's share of the socket \
         caches is the growth times its share of the new sockets; loadgen's own epoll items, threads and page \
         tables are counted and taken out. The note says when other processes' sockets moved the counters; other \
         processes starting threads or processes move task_struct, stacks and page tables unseen, so where the \
         sum and the charge disagree, the charge is the server's. A process per connection also holds \
         descriptors not listed (its memory map, files, signals).{words}\n",
        rows.iter()
            .find_map(|(_, r)| r.server.as_ref()?.kernel_breakdown.as_ref())
            .map(|b| b.readings)
            .unwrap_or(0)
    );
}

/// The parts in the table's order.
fn parts(b: &KernelBreakdown) -> [Option<f64>; 8] {
    [
        b.tcp_per_conn_bytes,
        b.sock_inode_per_conn_bytes,
        b.filp_per_conn_bytes,
        b.dentry_per_conn_bytes,
        b.epoll_per_conn_bytes,
        b.task_per_conn_bytes,
        b.kernel_stack_per_conn_bytes,
        b.page_tables_per_conn_bytes,
    ]
}

/// "2.31", KiB (the header says per connection; the unit is in the text).
fn k_ib(bytes: f64) -> String {
    format!("{:.2} KiB", bytes / 1024.0)
}

fn note(b: &KernelBreakdown) -> String {
    match &b.disturbed {
        Some(why) => format!("**disturbed**: {why}"),
        None => match b.server_sockets_per_conn {
            Some(n) => format!("server sockets per connection {n:.2}"),
            None => String::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disturbed_breakdown_says_so() {
        let b = KernelBreakdown {
            server_sockets_per_conn: Some(0.5),
            disturbed: Some("other processes".into()),
            ..KernelBreakdown::default()
        };
        assert_eq!(note(&b), "**disturbed**: other processes");
        let b = KernelBreakdown {
            server_sockets_per_conn: Some(1.0),
            ..KernelBreakdown::default()
        };
        assert_eq!(note(&b), "server sockets per connection 1.00");
        assert_eq!(k_ib(3875.0), "3.78 KiB");
    }
}
