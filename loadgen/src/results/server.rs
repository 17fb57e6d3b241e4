//! The server's figures in a run's result: what the /proc or Docker
//! sampling saw ([`ServerStats`]) and what the server's own cgroup counted
//! ([`CgroupStats`]). Filled in by [`crate::probe`].

use serde::{Deserialize, Serialize};

/// The server figures a run reports.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerStats {
    /// The process sampled, when sampled through /proc.
    pub pid: Option<u32>,
    /// The container sampled, when sampled through the Docker API.
    #[serde(default)]
    pub container: Option<String>,
    /// Where the figures came from: "procfs" (the process, every thread) or
    /// "docker-api" (the container's cgroup as the Engine reports it: memory
    /// without page cache, CPU time, pids; no fds or context switches).
    pub source: String,
    pub samples: usize,
    pub baseline_rss_bytes: u64,
    pub peak_rss_bytes: u64,
    pub mean_rss_bytes: u64,
    /// (peak - baseline) / connections opened.
    pub rss_per_conn_bytes: f64,
    pub peak_threads: u64,
    /// Most open fds counted (None: the table grew past what is counted).
    pub peak_fds: Option<u64>,
    pub peak_fd_table: u64,
    /// What the `*_rss_*` memory figures measure: "rss" (the server
    /// process's resident set), "pss_tree" (proportional set size summed
    /// over the server and its descendant processes, for servers that fork:
    /// pages shared copy-on-write count once in total) or "cgroup" (the
    /// container's memory, Docker API).
    #[serde(default = "rss")]
    pub memory_measure: String,
    /// Most processes in the server's tree at once (1: it never forked);
    /// None when not sampled through /proc.
    #[serde(default)]
    pub peak_processes: Option<u64>,
    /// The longest interval between samples, ms: 100 unless sampling the
    /// process tree had to be spaced out to stay within its CPU budget.
    #[serde(default)]
    pub sample_interval_ms: Option<f64>,
    /// True when that budget stretched the interval past 100 ms.
    #[serde(default)]
    pub sample_interval_stretched: bool,
    /// CPU the sampler itself used reading /proc during the measured
    /// window, % of one core (it runs on loadgen's CPUs).
    #[serde(default)]
    pub sampler_cpu_percent: Option<f64>,
    /// CPU used over the measured window, in % of one core.
    pub cpu_percent: f64,
    /// Over the measured window; None when not measured (too many threads).
    pub voluntary_ctxt_per_s: Option<f64>,
    pub involuntary_ctxt_per_s: Option<f64>,
    /// False if the process was gone before the run ended.
    pub alive_at_end: bool,
    /// The server process's soft open-files limit (/proc/PID/limits) at
    /// the end of the run: what its fds are read against (`reach`'s
    /// open-files wall). None: not read (a container, a process gone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fd_limit: Option<u64>,
    /// The server against the limits a connection can run into, read once
    /// at the end of the run whatever its size (`reach`'s steps: the
    /// evidence its walls are named from); None where not read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<LimitsAtEnd>,
    /// Counted by the kernel (perf_event_open) over the measured window,
    /// every thread and process of the server's tree included; None in
    /// results written before they were counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<KernelCounts>,
    /// From the server's own cgroup, when `compare` ran it in one: exact
    /// CPU time over the window and memory with the kernel's share.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<CgroupStats>,
    /// What the kernel holds for the server per connection, by slab cache,
    /// from machine-wide counters (`compare`'s idle scenario only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_breakdown: Option<KernelBreakdown>,
}

/// The server against the limits a connection can run into, read once at
/// the end of a run while its connections are open
/// ([`crate::probe::limits`]). Each figure is None where it could not be
/// read.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LimitsAtEnd {
    /// Open fds over all the server's processes, counted exactly (the
    /// 10 Hz samples stop counting past 1,024 slots a process).
    pub fds: Option<u64>,
    /// The most open fds in any one of its processes, and that process's
    /// soft open-files limit: what EMFILE is judged by (each of prefork's
    /// workers has a limit of its own).
    pub most_fds: Option<u64>,
    pub most_fds_limit: Option<u64>,
    /// Memory maps of the server's main process (a thread takes a few: its
    /// stack, the stack's guard, its signal stack and that one's guard),
    /// and the machine's vm.max_map_count: a thread whose stack cannot be
    /// mapped fails to start with EAGAIN.
    pub maps: Option<u64>,
    pub max_map_count: Option<u64>,
    /// Threads and processes on the whole machine, against kernel.pid_max
    /// and kernel.threads-max (each thread takes a pid).
    pub machine_tasks: Option<u64>,
    pub pid_max: Option<u64>,
    pub threads_max: Option<u64>,
    /// Processes of the server's cgroup killed by the kernel's OOM killer
    /// since the server started (whichever limit ran out).
    pub oom_kills: Option<u64>,
}

/// The kernel's memory for the server's connections, per connection
/// (bytes), from the growth of /proc/slabinfo's caches and /proc/meminfo's
/// `KernelStack` and `PageTables` between before the first connection and
/// once all were open, loadgen's own end taken out (see
/// `probe::slab`). Each part is None where this kernel has no such cache.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KernelBreakdown {
    /// Connections the growth is divided by, and readings per snapshot
    /// (each counter is their median).
    pub conns: u64,
    pub readings: u32,
    /// `TCP` (+ `TCPv6`): the socket itself.
    pub tcp_per_conn_bytes: Option<f64>,
    pub sock_inode_per_conn_bytes: Option<f64>,
    pub filp_per_conn_bytes: Option<f64>,
    pub dentry_per_conn_bytes: Option<f64>,
    /// `eventpoll_epi` (+ `eventpoll_pwq` where the kernel has it).
    pub epoll_per_conn_bytes: Option<f64>,
    /// `task_struct`: a thread's or process's descriptor (with
    /// `kernel_stack_per_conn_bytes`, what a thread per connection costs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_per_conn_bytes: Option<f64>,
    pub kernel_stack_per_conn_bytes: Option<f64>,
    pub page_tables_per_conn_bytes: Option<f64>,
    /// The parts summed.
    pub total_per_conn_bytes: Option<f64>,
    /// The server's new TCP sockets per connection: 1 unless other
    /// processes opened or closed sockets meanwhile.
    pub server_sockets_per_conn: Option<f64>,
    /// Why the figures may not be the server's alone (other processes'
    /// churn seen), in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disturbed: Option<String>,
    /// Why there are no figures (e.g. /proc/slabinfo not readable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmeasured: Option<String>,
}

/// What the kernel counted for the server over the measured window
/// (system calls, context switches), per message where messages completed.
/// A figure the kernel would not give is None with the reason beside it,
/// never 0.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KernelCounts {
    /// `raw_syscalls:sys_enter` events.
    pub syscalls: Option<u64>,
    pub syscalls_per_msg: Option<f64>,
    /// Why `syscalls` is None (e.g. "no tracefs", "not permitted").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscalls_unmeasured: Option<String>,
    /// The software event `context-switches` (voluntary and involuntary
    /// together; /proc's split is in `voluntary_ctxt_per_s`).
    pub context_switches: Option<u64>,
    pub context_switches_per_msg: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_switches_unmeasured: Option<String>,
    /// How the kernel counted (None: results from before it was said).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counted_on: Option<CountedOn>,
}

/// What the kernel's counters were attached to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CountedOn {
    /// The server's cgroup, one counter per CPU: nothing per task.
    Cgroup,
    /// The server's process, inherited by every thread and process it
    /// makes: each new task gets a copy, which costs a thread or process
    /// per connection something of its own.
    Tasks,
}

impl CountedOn {
    pub fn describe(self) -> &'static str {
        match self {
            CountedOn::Cgroup => "per CPU on the server's cgroup",
            CountedOn::Tasks => {
                "on the server's tasks (inherited: each thread or process it makes gets a copy)"
            }
        }
    }
}

impl KernelCounts {
    /// Fills the per-message figures for `messages` completed in the
    /// window (None where the count is, or no message completed).
    pub fn per_message(&mut self, messages: u64) {
        let per = |n: Option<u64>| {
            n.filter(|_| messages > 0)
                .map(|n| n as f64 / messages as f64)
        };
        self.syscalls_per_msg = per(self.syscalls);
        self.context_switches_per_msg = per(self.context_switches);
    }

    /// Neither counted, for `reason`.
    pub fn unmeasured(reason: &str) -> KernelCounts {
        KernelCounts {
            syscalls_unmeasured: Some(reason.into()),
            context_switches_unmeasured: Some(reason.into()),
            ..KernelCounts::default()
        }
    }
}

/// Events (or io_uring completions) per wake-up from a style's summary
/// line (`... wakeups=W events=E ...`, printed by the styles that wait in
/// one place: epoll, reactor, poll, uring): E / W. None when the line has
/// no such counts (the style does not count them) or no wake-up.
pub fn events_per_wakeup(summary_line: &str) -> Option<f64> {
    let field = |key: &str| -> Option<u64> {
        summary_line
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
    };
    let (wakeups, events) = (field("wakeups")?, field("events")?);
    (wakeups > 0).then(|| events as f64 / wakeups as f64)
}

fn rss() -> String {
    "rss".into()
}

/// What a server's cgroup counted during a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CgroupStats {
    /// "v1" or "v2".
    pub version: String,
    pub name: String,
    /// CPUs of CFS bandwidth the server had (None: no quota).
    pub cpu_quota: Option<f64>,
    /// CPU time of every process in the group over the measured window
    /// (user + system, children included), seconds: counted by the kernel,
    /// not sampled.
    pub cpu_s: Option<f64>,
    /// Why `cpu_s` is None where the window was reached (its reader came
    /// too late to stand for an edge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_unmeasured: Option<String>,
    /// `cpu_s` per message completed in the window, µs.
    pub cpu_us_per_msg: Option<f64>,
    /// Quota periods in which the server was throttled, and how long, over
    /// the window.
    pub throttled_periods: Option<u64>,
    pub throttled_s: Option<f64>,
    /// Memory charged to the group before any connection and at the end of
    /// the window (connections still open), kernel included where the
    /// kernel accounts it.
    pub baseline_memory_bytes: Option<u64>,
    pub end_memory_bytes: Option<u64>,
    /// (end - baseline) / connections.
    pub memory_per_conn_bytes: Option<f64>,
    /// The kernel's part (sockets, slab, stacks); None: not accounted here.
    pub baseline_kernel_bytes: Option<u64>,
    pub end_kernel_bytes: Option<u64>,
    pub kernel_per_conn_bytes: Option<f64>,
    /// Socket buffers charged to the group per connection, from before the
    /// first connection to the window's end (v1: `memory.kmem.tcp`, apart
    /// from the figures above; v2: `memory.stat` `sock`, inside
    /// `memory_per_conn_bytes`); about 0 for idle connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sock_per_conn_bytes: Option<f64>,
    /// Whether the group was charged its sockets (the accepted socket
    /// object and its buffers): cgroup v1 only does once a limit is written
    /// to `memory.kmem.tcp.limit_in_bytes`, which loadgen does before the
    /// server joins; v2 always does. None in results from before it was set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket_accounting: Option<bool>,
    /// Seconds waited before the run for the server to finish what the
    /// previous run left it doing, and whether it did (None: not waited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled: Option<bool>,
}

impl CgroupStats {
    /// Fills `cpu_us_per_msg` for `messages` completed in the window.
    pub fn per_message(&mut self, messages: u64) {
        self.cpu_us_per_msg = self
            .cpu_s
            .filter(|_| messages > 0)
            .map(|s| s * 1e6 / messages as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_per_wakeup_reads_the_summary_line() {
        let line = "summary style=epoll accepted=3 rejected=0 bytes_echoed=64 peak_conns=3 \
                    accept_errors=0 conn_errors=0 idle_closed=0 wakeups=400 events=1000 shutdown_ms=2";
        assert_eq!(events_per_wakeup(line), Some(2.5));
        // A style that does not count: no figure, not 0.
        let line = "summary style=tasks accepted=3 idle_closed=0 shutdown_ms=2";
        assert_eq!(events_per_wakeup(line), None);
        assert_eq!(events_per_wakeup("summary wakeups=0 events=0"), None);
        // `events=` alone, or a prefix of another key, is not a count.
        assert_eq!(events_per_wakeup("summary events=5 xwakeups=2"), None);
    }

    #[test]
    fn kernel_counts_per_message_are_none_without_messages_or_counts() {
        let mut k = KernelCounts {
            syscalls: Some(300),
            context_switches: None,
            context_switches_unmeasured: Some("not permitted".into()),
            ..KernelCounts::default()
        };
        k.per_message(100);
        assert_eq!(k.syscalls_per_msg, Some(3.0));
        assert_eq!(k.context_switches_per_msg, None);
        k.per_message(0);
        assert_eq!(k.syscalls_per_msg, None);
    }
}
