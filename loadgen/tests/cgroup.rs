//! The servers' cgroups on this machine, for real: made and removed, a CPU
//! quota that holds, leftovers of a killed comparison cleaned up, and a
//! machine without writable cgroups reported, not hidden. Where cgroups
//! cannot be written here (not root, read-only), the tests that need them
//! say so and return.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use loadgen::compare::{CompareOptions, cgroup_setup};
use loadgen::probe::cgroup::{CgroupError, Layout, PREFIX, ServerCgroup, remove_leftovers};

mod common;
use common::{alive, children, wait_until};

#[test]
fn a_group_is_made_holds_its_process_and_is_removed_with_it() {
    let Some(layout) = common::writable_cgroups("a_group_is_made") else {
        return;
    };
    let group = ServerCgroup::create(&layout, "made-and-removed", Some(0.5)).unwrap();
    let dirs = group.dirs().to_vec();
    assert!(!dirs.is_empty());
    for d in &dirs {
        assert!(d.is_dir(), "{} exists", d.display());
        let name = d.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with(PREFIX), "{name}");
    }
    let mut child = Command::new("sleep")
        .arg("30")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    group.add(child.id()).unwrap();
    assert_eq!(group.pids(), vec![child.id()]);
    let reading = group.read().expect("the group reads");
    assert!(reading.memory_bytes.is_some(), "{reading:?}");
    drop(group);
    // Dropping the group killed what ran in it, then removed it.
    let status = child.wait().unwrap();
    assert!(!status.success(), "sleep was killed: {status}");
    for d in &dirs {
        assert!(!d.exists(), "{} removed", d.display());
    }
}

/// A busy process in a quarter of a CPU gets about that: loosely bounded
/// (0.35), since this checks that the quota is applied, not its precision.
#[test]
fn a_quota_holds_a_busy_server_to_its_share() {
    let Some(layout) = common::writable_cgroups("a_quota_holds") else {
        return;
    };
    let group = ServerCgroup::create(&layout, "quota", Some(0.25)).unwrap();
    let placement = group.placement().unwrap();
    let fds = placement.raw();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "while :; do :; done"]);
    // SAFETY: only write(2) between fork and exec (Placement::enter).
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(move || loadgen::probe::cgroup::Placement::enter(&fds));
    }
    let mut child = cmd.spawn().unwrap();
    drop(placement);
    assert_eq!(group.pids(), vec![child.id()], "placed before exec");
    let a = group.read().unwrap();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    let b = group.read().unwrap();
    let share = (b.cpu_ns - a.cpu_ns) as f64 / 1e9 / t0.elapsed().as_secs_f64();
    // Lifted (as compare does before stopping a server), it is throttled
    // no more.
    group.lift_quota().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let c = group.read().unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let d = group.read().unwrap();
    drop(group);
    let _ = child.wait();
    assert_eq!(
        d.throttled_periods, c.throttled_periods,
        "throttled after the quota was lifted"
    );
    assert!(
        share > 0.05,
        "the busy loop ran at all: {share:.3} of a CPU"
    );
    assert!(share <= 0.35, "a 0.25 quota gave {share:.3} of a CPU");
    assert!(
        b.throttled_periods.unwrap_or(0) > a.throttled_periods.unwrap_or(0),
        "the quota throttled it: {a:?} {b:?}"
    );
}

/// The groups of the loadgen with `pid`, in every hierarchy.
fn groups_of(layout: &Layout, pid: u32) -> Vec<std::path::PathBuf> {
    let owner = format!("{PREFIX}{pid}-");
    layout
        .bases()
        .iter()
        .flat_map(|b| std::fs::read_dir(b).into_iter().flatten().flatten())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&owner))
        })
        .collect()
}

/// Starts a smoke comparison of epoll and waits (bounded) until its server
/// runs in its group; returns compare and the server's pid (None: it never
/// did, and compare has been killed).
fn compare_with_a_server(layout: &Layout, dir: &Path) -> (std::process::Child, Option<u32>) {
    let mut cmd = common::loadgen();
    cmd.args([
        "compare",
        "--profile",
        "smoke",
        "--styles",
        "epoll",
        "--out",
        dir.to_str().unwrap(),
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    let mut compare = cmd.spawn().unwrap();
    let mut server = None;
    wait_until(Duration::from_secs(20), || {
        server = groups_of(layout, compare.id()).iter().find_map(|g| {
            std::fs::read_to_string(g.join("cgroup.procs"))
                .ok()?
                .lines()
                .next()?
                .parse::<u32>()
                .ok()
        });
        server.is_some()
    });
    if server.is_none() {
        let _ = compare.kill();
        let _ = compare.wait();
    }
    (compare, server)
}

/// The tests that start a comparison run one at a time: a comparison's
/// start removes the groups of dead loadgens, which would race with a test
/// that looks at such leftovers.
static COMPARISONS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Ctrl-C: compare stops its server and removes its group before exiting.
#[test]
fn ctrl_c_removes_the_servers_group() {
    let _one = COMPARISONS.lock().unwrap_or_else(|p| p.into_inner());
    let Some(layout) = common::writable_cgroups("ctrl_c") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("loadgen-ctrl-c-{}", std::process::id()));
    let (mut compare, server) = compare_with_a_server(&layout, &dir);
    let server = server.expect("compare made a group with its server in it");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(compare.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let pid = compare.id();
    let ended = wait_until(Duration::from_secs(30), || {
        compare.try_wait().ok().flatten().is_some()
    });
    if !ended {
        let _ = compare.kill();
    }
    let status = compare.wait().unwrap();
    assert!(ended, "compare ended within 30 s of SIGINT");
    assert_eq!(status.code(), Some(130), "interrupted: {status}");
    assert!(
        groups_of(&layout, pid).is_empty(),
        "{:?}",
        groups_of(&layout, pid)
    );
    assert!(!alive(server), "the server {server} stopped");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A comparison killed with SIGKILL together with its guard (the process
/// that stops its servers when it dies: see tests/lifecycle.rs) leaves its
/// server and its group; the next start removes both. Another loadgen's
/// live group is left alone.
#[test]
fn leftovers_of_a_killed_comparison_are_removed() {
    let _one = COMPARISONS.lock().unwrap_or_else(|p| p.into_inner());
    let Some(layout) = common::writable_cgroups("leftovers") else {
        return;
    };
    let live = ServerCgroup::create(&layout, "live-neighbour", None).unwrap();
    let dir = std::env::temp_dir().join(format!("loadgen-leftovers-{}", std::process::id()));
    let (mut compare, server) = compare_with_a_server(&layout, &dir);
    let server = server.expect("compare made a group with its server in it");
    let owner = format!("{PREFIX}{}-", compare.id());
    let pid = compare.id();
    for guard in children(pid).into_iter().filter(|&c| is_guard(c)) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(guard as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    compare.kill().unwrap();
    compare.wait().unwrap();
    let groups = || groups_of(&layout, pid);
    let left = groups();
    assert!(!left.is_empty(), "SIGKILL left the group behind");
    let removed = remove_leftovers(&layout);
    assert!(removed.iter().any(|n| n.starts_with(&owner)), "{removed:?}");
    assert!(groups().is_empty(), "{:?}", groups());
    assert!(
        wait_until(Duration::from_secs(5), || !alive(server)),
        "the server {server} was killed with its group"
    );
    for d in live.dirs() {
        assert!(d.is_dir(), "a live loadgen's group stays: {}", d.display());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Whether `pid` is a `loadgen guard`.
fn is_guard(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| c.split(|&b| b == 0).any(|arg| arg == b"guard"))
}

fn options(quota: Option<f64>, required: bool) -> CompareOptions {
    CompareOptions {
        styles: vec!["epoll".into()],
        profile: loadgen::compare::profile::Profile::named("smoke").unwrap(),
        server_bin: None,
        server_cpus: vec![0],
        client_cpus: vec![0],
        targets: Vec::new(),
        docker: None,
        network: None,
        server_cpu_quota: quota,
        quota_required: required,
        repeat: 1,
        guard: None,
        externals: Vec::new(),
    }
}

/// Where no group can be made, the comparison goes on and says why (and
/// that the profile's quota was not applied); a quota asked for on the
/// command line stops it instead.
#[test]
fn without_writable_cgroups_the_fallback_is_reported() {
    let unwritable = || {
        Ok(Layout::V2 {
            root: Path::new("/proc/self").to_path_buf(),
        })
    };
    let (layout, setup) = cgroup_setup(&options(Some(0.5), false), unwritable()).unwrap();
    assert!(layout.is_none());
    let setup = setup.expect("the setup is recorded");
    assert!(!setup.used);
    assert_eq!(setup.cpu_quota, None, "no quota claimed");
    let note = setup.note.unwrap();
    assert!(note.contains("without cgroups"), "{note}");
    assert!(note.contains("0.5 CPU was not applied"), "{note}");

    let missing: Result<Layout, CgroupError> =
        Err(CgroupError::Unavailable("no cgroup2 mounted".into()));
    let (_, setup) = cgroup_setup(&options(None, false), missing).unwrap();
    assert!(setup.unwrap().note.unwrap().contains("no cgroup2 mounted"));

    let err = cgroup_setup(&options(Some(0.5), true), unwritable()).unwrap_err();
    assert!(
        format!("{err:#}").contains("--server-cpu-quota needs a cgroup"),
        "{err:#}"
    );
}
