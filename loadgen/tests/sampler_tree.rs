//! The server sampler over a process tree: a "server" forked from this test
//! forks children that each dirty private memory and burn some CPU, as a
//! process-per-connection server's children would; the sampler must see
//! them (process count, PSS, CPU), and count the memory they share with
//! their parent copy-on-write once.
//!
//! Everything after a fork here is async-signal-safe (no allocation, no
//! locks): the test binary is multi-threaded. Every wait is bounded and
//! waits on a signal (a pipe, a pidfd), and the processes end when this
//! test closes its end of a pipe, or are killed if it fails first.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use loadgen::probe::sampler::{self, Sampler, Source};

/// Children the "server" forks, memory each dirties, CPU each burns.
const CHILDREN: usize = 4;
const CHILD_MEMORY: usize = 8 << 20;
const CHILD_CPU: Duration = Duration::from_millis(100);

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array, which this then owns.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: both fds were just returned by pipe2 and are owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec; it is async-signal-safe.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The forked "server": its pid, the write end its processes wait on (they
/// exit when it closes), and a guard that kills and reaps it if the test
/// fails before that.
struct Tree {
    pid: libc::pid_t,
    hold: Option<OwnedFd>,
}

impl Drop for Tree {
    fn drop(&mut self) {
        if self.hold.take().is_some() {
            // Still running: the test failed early.
            // SAFETY: kill and waitpid on our own child.
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
                libc::waitpid(self.pid, std::ptr::null_mut(), 0);
            }
        }
    }
}

/// In a forked process: blocks until `hold` reaches end of file.
fn wait_for_eof(hold: i32) {
    let mut byte = 0u8;
    loop {
        // SAFETY: read into a one-byte buffer; async-signal-safe.
        let n = unsafe { libc::read(hold, (&raw mut byte).cast(), 1) };
        if n == 0 || (n < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR))
        {
            return;
        }
    }
}

fn start_tree() -> Tree {
    let (ready_r, ready_w) = pipe();
    let (hold_r, hold_w) = pipe();
    // Untouched until a child writes to it: calloc'd pages of this size are
    // fresh zero mappings, so each child's writes make private pages.
    let mut memory = vec![0u8; CHILD_MEMORY];
    let base = memory.as_mut_ptr();
    let (ready, hold, hold_keep) = (ready_w.as_raw_fd(), hold_r.as_raw_fd(), hold_w.as_raw_fd());
    // SAFETY: the forked process only calls async-signal-safe functions
    // (fork, close, write, read, clock_gettime, waitpid, _exit) and writes
    // to memory allocated before the fork.
    let server = unsafe { libc::fork() };
    assert!(server >= 0, "fork: {}", std::io::Error::last_os_error());
    if server == 0 {
        unsafe {
            libc::close(hold_keep);
            for _ in 0..CHILDREN {
                if libc::fork() == 0 {
                    for offset in (0..CHILD_MEMORY).step_by(4096) {
                        std::ptr::write_volatile(base.add(offset), 1);
                    }
                    let start = thread_cpu();
                    while thread_cpu().saturating_sub(start) < CHILD_CPU {
                        std::hint::spin_loop();
                    }
                    libc::write(ready, b"c".as_ptr().cast(), 1);
                    wait_for_eof(hold);
                    libc::_exit(0);
                }
            }
            libc::write(ready, b"s".as_ptr().cast(), 1);
            wait_for_eof(hold);
            while libc::waitpid(-1, std::ptr::null_mut(), 0) > 0 {}
            libc::_exit(0);
        }
    }
    drop((ready_w, hold_r));
    let tree = Tree {
        pid: server,
        hold: Some(hold_w),
    };
    // Every process says when it is ready; bounded.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut got = 0;
    while got < CHILDREN + 1 {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "{got} of {} processes ready in 20 s",
            CHILDREN + 1
        );
        let mut pfd = libc::pollfd {
            fd: ready_r.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, left.as_millis() as i32) };
        if n <= 0 {
            continue;
        }
        let mut buf = [0u8; 16];
        // SAFETY: read into a buffer of its length.
        let r = unsafe { libc::read(ready_r.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        assert!(r > 0, "the ready pipe closed early");
        got += r as usize;
    }
    drop(memory);
    tree
}

/// Ends the tree (its processes exit on end of file) and reaps the server,
/// waiting on a pidfd, bounded.
fn stop_tree(mut tree: Tree) {
    // SAFETY: pidfd_open on our own child, which is not reaped yet.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, tree.pid, 0) } as i32;
    assert!(
        pidfd >= 0,
        "pidfd_open: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: the fd was just returned by pidfd_open.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    drop(tree.hold.take());
    let mut pfd = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: poll on one valid pollfd.
    let n = unsafe { libc::poll(&mut pfd, 1, 20_000) };
    if n != 1 {
        tree.hold = Some(pidfd); // makes the guard kill it
        panic!("the forked server did not exit within 20 s of being told to");
    }
    let mut status = 0;
    // SAFETY: waitpid on our own child, which has exited.
    unsafe { libc::waitpid(tree.pid, &mut status, 0) };
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
}

fn vm_rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

#[test]
fn the_sampler_covers_a_forking_server_and_its_children() {
    let tree = start_tree();
    let pid = tree.pid as u32;

    // The server alone, as sampled before process trees were: no children,
    // hardly any CPU of its own, none of the children's memory.
    let alone = sampler::sample(pid).expect("the server is there");
    assert_eq!(alone.processes, 1);
    assert!(alone.pss_bytes.is_none());

    let whole = sampler::sample_tree(pid, false).expect("the server is there");
    assert_eq!(
        whole.processes,
        CHILDREN as u64 + 1,
        "the server and its children: {:?}",
        whole.pids
    );
    assert_eq!(whole.pids[0], pid);
    assert_eq!(whole.threads, CHILDREN as u64 + 1);
    let pss = whole.pss_bytes.expect("PSS read over the tree");
    let dirtied = (CHILDREN * CHILD_MEMORY) as u64;
    assert!(
        pss >= dirtied,
        "PSS {pss} covers the {dirtied} bytes the children dirtied"
    );
    // Summed RSS charges every child the pages it shares with the server
    // (the whole test binary); PSS counts them once.
    let rss_sum: u64 = whole.pids.iter().map(|&p| vm_rss(p)).sum();
    assert!(
        pss < rss_sum,
        "PSS {pss} is below summed RSS {rss_sum}: shared pages count once"
    );
    let cpu = |s: &sampler::Sample| s.user_s + s.system_s;
    let burnt = (CHILDREN as u32 * CHILD_CPU).as_secs_f64();
    assert!(
        cpu(&whole) >= burnt * 0.9,
        "tree CPU {} s includes the children's {burnt} s",
        cpu(&whole)
    );
    assert!(
        cpu(&alone) < burnt * 0.5,
        "the server alone did not burn it: {} s",
        cpu(&alone)
    );

    // The sampler as a run uses it: memory as PSS over the tree, processes
    // counted, its own cost measured.
    let from = Instant::now();
    let sampler = Sampler::start(Source::Process(pid)).expect("sampler starts");
    // Long enough for a few samples at 10 Hz: sampling needs time to pass,
    // there is no event to wait for.
    std::thread::sleep(Duration::from_millis(350));
    let stats = sampler.finish((from, Instant::now()), CHILDREN);
    assert_eq!(stats.memory_measure, "pss_tree");
    assert_eq!(stats.peak_processes, Some(CHILDREN as u64 + 1));
    assert!(stats.samples >= 2, "{} samples", stats.samples);
    assert!(stats.peak_rss_bytes >= dirtied, "{}", stats.peak_rss_bytes);
    assert!(
        stats.baseline_rss_bytes >= dirtied,
        "the children were there from the start"
    );
    assert_eq!(stats.peak_threads, CHILDREN as u64 + 1);
    assert!(stats.alive_at_end);
    assert!(stats.sample_interval_ms.is_some_and(|ms| ms >= 100.0));
    let text = loadgen::report::memory_label(&stats);
    assert!(text.contains("PSS"), "{text}");

    stop_tree(tree);
}
