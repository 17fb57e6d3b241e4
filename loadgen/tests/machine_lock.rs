//! One comparison at a time, and foreign load seen: a second `compare`
//! (or a `soak`) while one runs is refused with exit 2 naming the first,
//! unless `--allow-concurrent`; a busy loop on the server's CPU, outside
//! the comparison's groups, marks the run disturbed, while a quiet run
//! and a side-by-side pair's own partner do not.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{loadgen, output_within, own_lock_path, scratch, wait_within};
use loadgen::compare::model::{CompareResults, Scenario};

/// The tests here that run comparisons take turns: each would be the
/// others' foreign load.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits (at most 20 s) for a second in which CPUs 0 and 1 were under 10%
/// busy: whether a run without foreign load of ours can be judged.
fn quiet() -> bool {
    wait_for(Duration::from_secs(20), || busy_share() < 0.10)
}

/// Polls `ok` every 20 ms, at most `limit`.
fn wait_for(limit: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    for _ in 0..(limit.as_millis() / 20 + 1) {
        if ok() {
            return true;
        }
        if Instant::now() >= until {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    ok()
}

fn stop(child: &Child) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
}

fn smoke(lock: &Path, out: &Path, extra: &[&str]) -> std::process::Command {
    let mut cmd = loadgen();
    cmd.env("C10K_LOCK", lock)
        .args(["compare", "--profile", "smoke", "--styles", "epoll"])
        .args(extra)
        .arg("--out")
        .arg(out);
    cmd
}

#[test]
fn a_second_compare_is_refused_naming_the_first_unless_allowed() {
    let _turn = serial();
    let dir = scratch("lock-second");
    let lock = own_lock_path();
    let first = smoke(&lock, &dir.join("first"), &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the first compare");
    let pid = first.id();
    let named = wait_for(Duration::from_secs(30), || {
        std::fs::read_to_string(&lock).is_ok_and(|t| t.contains(&format!("pid={pid}\n")))
    });
    assert!(
        named,
        "the first compare (pid {pid}) did not write the lock file {lock:?}"
    );

    let second = output_within(
        smoke(&lock, &dir.join("second"), &[]),
        Duration::from_secs(30),
        "the second compare",
    );
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        stderr.contains(&format!("pid {pid}")) && stderr.contains("compare --profile smoke"),
        "the refusal names the holder: {stderr}"
    );
    assert!(stderr.contains("--allow-concurrent"), "{stderr}");
    assert!(
        !dir.join("second").exists(),
        "a refused compare writes nothing"
    );

    // Allowed: it runs beside the first (one short scenario).
    let beside = output_within(
        smoke(
            &lock,
            &dir.join("beside"),
            &["--allow-concurrent", "--scenarios", "idle"],
        ),
        Duration::from_secs(60),
        "compare --allow-concurrent",
    );
    // Not refused, and it ran to its report: whether its run passed is the
    // machine's business (beside the first on the same CPUs, on a loaded
    // machine its one run can fail: exit 1, with a report).
    let stderr = String::from_utf8_lossy(&beside.stderr);
    assert!(
        matches!(beside.status.code(), Some(0 | 1)),
        "stderr: {stderr}"
    );
    assert!(
        !stderr.contains("another comparison is running"),
        "{stderr}"
    );
    assert!(dir.join("beside/report.md").exists(), "stderr: {stderr}");

    stop(&first);
    let out = wait_within(first, Duration::from_secs(60), "the first compare");
    assert!(
        matches!(out.status.code(), Some(0 | 130)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Gone, it holds nothing: the next one runs.
    let after = output_within(
        smoke(&lock, &dir.join("after"), &["--scenarios", "idle"]),
        Duration::from_secs(60),
        "a compare after the first ended",
    );
    assert_eq!(
        after.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&after.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_soak_is_refused_while_a_comparison_holds_the_lock() {
    let dir = scratch("lock-soak");
    let lock = own_lock_path();
    let _held = loadgen::compare::lock::take_at(&lock, None).expect("taking the lock");
    let mut cmd = loadgen();
    cmd.env("C10K_LOCK", &lock)
        .args(["soak", "--styles", "epoll", "--duration", "30s", "--out"])
        .arg(&dir);
    let out = output_within(cmd, Duration::from_secs(30), "soak");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("pid {}", std::process::id())),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Whether foreign load can be measured here: server cgroups of our own
/// and two CPUs (server and loadgen apart). Skips, saying so, where not.
fn measurable(what: &str) -> bool {
    let writable = loadgen::probe::cgroup::Layout::detect()
        .and_then(|l| loadgen::probe::cgroup::ServerCgroup::create(&l, "check", None))
        .is_ok();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if !writable || cpus < 2 {
        eprintln!(
            "{what}: skipped: needs writable cgroups and 2 CPUs (cgroups: {writable}, CPUs: {cpus})"
        );
        return false;
    }
    true
}

/// Busy share of CPUs 0 and 1 over the next second, from /proc/stat: the
/// test's own view of whether the machine is quiet.
fn busy_share() -> f64 {
    let read = || {
        let stat = std::fs::read_to_string("/proc/stat").unwrap();
        [0, 1].map(|c| loadgen::probe::foreign::busy_ticks(&stat, c).unwrap())
    };
    let (a, t) = (read(), Instant::now());
    std::thread::sleep(Duration::from_secs(1));
    let b = read();
    let ticks: u64 = (0..2).map(|i| b[i] - a[i]).sum();
    ticks as f64 / loadgen::probe::foreign::user_hz() / (2.0 * t.elapsed().as_secs_f64())
}

/// The idle scenario of epoll, server on CPU 0 and loadgen on CPU 1, 1 s
/// measured; its one run.
fn idle_run(dir: &Path) -> loadgen::RunResult {
    let lock = own_lock_path();
    let out = output_within(
        smoke(
            &lock,
            dir,
            &[
                "--scenarios",
                "idle",
                "--duration",
                "1s",
                "--server-cpus",
                "0",
                "--client-cpus",
                "1",
            ],
        ),
        Duration::from_secs(60),
        "compare --scenarios idle",
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(dir.join("results.json")).unwrap();
    let results: CompareResults = serde_json::from_str(&text).unwrap();
    assert_eq!(results.runs.len(), 1);
    results.runs.into_iter().next().unwrap()
}

/// A busy loop in a process of its own pinned to CPU 0, killed when
/// dropped (a failing assertion included) or when the test's thread ends.
struct Burner(Child);

impl Burner {
    fn start() -> Burner {
        use std::os::unix::process::CommandExt;
        let mut cmd = std::process::Command::new("sh");
        cmd.args(["-c", "while :; do :; done"]);
        // SAFETY: prctl is async-signal-safe; nothing else runs between
        // fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                    .map_err(std::io::Error::from)
            });
        }
        let child = Burner(cmd.spawn().expect("starting the busy loop"));
        let mut cpu0 = nix::sched::CpuSet::new();
        cpu0.set(0).unwrap();
        nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(child.0.id() as i32), &cpu0)
            .expect("pinning the busy loop to CPU 0");
        child
    }
}

impl Drop for Burner {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_busy_loop_on_the_server_cpu_marks_the_run_disturbed_a_quiet_run_not() {
    if !measurable("disturbed") {
        return;
    }
    let _turn = serial();
    let dir = scratch("lock-disturbed");
    // Outside the comparison's groups, pinned to the server's CPU.
    let burner = Burner::start();
    let burnt = idle_run(&dir.join("burnt"));
    drop(burner);
    let f = burnt.foreign.as_ref().expect("foreign load measured");
    assert!(
        burnt.disturbed && f.share > loadgen::probe::foreign::DISTURBED_SHARE,
        "a busy loop on the server's CPU: {f:?}"
    );
    let report = std::fs::read_to_string(dir.join("burnt/report.md")).unwrap();
    assert!(
        report.contains("1 of 1 runs disturbed"),
        "the machine table says so"
    );
    assert!(report.contains(" ⚠"), "the run's cells are marked");

    // Without it: not disturbed, on a machine that is otherwise quiet
    // (other tests run beside this one): a few bounded tries, each after
    // a quiet second by /proc/stat's own count.
    let mut seen = Vec::new();
    for attempt in 0..3 {
        let quiet = quiet();
        let run = idle_run(&dir.join(format!("quiet{attempt}")));
        let f = run.foreign.clone().expect("foreign load measured");
        if !run.disturbed {
            assert!(f.share <= loadgen::probe::foreign::DISTURBED_SHARE);
            let _ = std::fs::remove_dir_all(&dir);
            return;
        }
        if quiet {
            seen.push(f.share);
        }
    }
    if seen.is_empty() {
        eprintln!(
            "disturbed: the machine was never quiet for the run without the busy loop: not judged"
        );
        return;
    }
    panic!(
        "runs without the busy loop, on a quiet machine, were marked disturbed: shares {seen:?}"
    );
}

/// A `servers` binary for an in-process compare: loadgen's own `serve`.
fn serve_wrapper(dir: &Path) -> PathBuf {
    common::serve_script(dir, "servers", "")
}

#[test]
fn a_side_by_side_pair_is_not_disturbed_by_its_own_partner() {
    if !measurable("pair") {
        return;
    }
    let _turn = serial();
    let dir = scratch("lock-pair");
    let wrapper = serve_wrapper(&dir);
    let mut seen = Vec::new();
    for _ in 0..3 {
        let quiet = quiet();
        let mut profile = loadgen::compare::profile::Profile::named("smoke").unwrap();
        profile.scenarios = vec![Scenario::Scale];
        profile.scale_conns = vec![20];
        profile.duration = Duration::from_secs(1);
        profile.by_point = true;
        profile.side_by_side = true;
        profile.repeat = 1;
        profile.server_cpu_quota = Some(0.25);
        let opts = loadgen::compare::CompareOptions {
            profile,
            server_cpu_quota: Some(0.25),
            quota_required: true,
            ..loadgen::compare::CompareOptions::servers_only(
                vec!["epoll".into(), "reactor".into()],
                Some(wrapper.clone()),
                vec![0],
                vec![1],
                None,
            )
        };
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let results = loadgen::compare::run(&opts, stop).expect("the comparison runs");
        let partner = results
            .runs
            .iter()
            .find(|r| r.tags.as_ref().is_some_and(|t| t.partner_of == "reactor"))
            .expect("a partner run");
        let own = results
            .runs
            .iter()
            .find(|r| r.tags.as_ref().is_some_and(|t| t.style == "reactor"))
            .expect("reactor's run");
        let cpu = |r: &loadgen::RunResult| {
            r.server
                .as_ref()
                .and_then(|s| s.cgroup.as_ref())
                .and_then(|c| c.cpu_s)
                .expect("the group's CPU time")
        };
        for r in [partner, own] {
            let f = r.foreign.as_ref().expect("foreign load measured");
            // Both servers' groups are counted as the comparison's own,
            // not only the run's own server.
            assert!(
                f.servers_cpu_s
                    > cpu(r) + 0.5 * cpu(if std::ptr::eq(r, own) { partner } else { own }),
                "the partner's CPU time is ours: {f:?}, own {}, partner {}",
                cpu(own),
                cpu(partner)
            );
        }
        if !partner.disturbed && !own.disturbed {
            let _ = std::fs::remove_dir_all(&dir);
            return;
        }
        if !quiet {
            continue;
        }
        seen.push((
            partner.foreign.as_ref().map(|f| f.share),
            own.foreign.as_ref().map(|f| f.share),
        ));
    }
    if seen.is_empty() {
        eprintln!("pair: the machine was never quiet: not judged");
        return;
    }
    panic!("a pair on a quiet machine was marked disturbed: shares {seen:?}");
}

/// Where no lock file can be made (a container's read-only root has no
/// /run and no /tmp), the comparison still runs, and says it ran unlocked.
#[test]
fn without_a_writable_place_for_the_lock_the_comparison_runs_and_says_so() {
    let dir = scratch("lock-nowhere");
    let nowhere = dir.join("no-such-dir").join("c10k-echo.lock");
    let out = output_within(
        smoke(&nowhere, &dir.join("out"), &["--scenarios", "idle"]),
        Duration::from_secs(60),
        "compare with nowhere to lock",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(matches!(out.status.code(), Some(0 | 1)), "stderr: {stderr}");
    assert!(
        stderr.contains("running without the one-comparison-at-a-time lock"),
        "{stderr}"
    );
    assert!(dir.join("out/report.md").exists(), "stderr: {stderr}");
}
