//! [`classify`] from each kind of evidence, as fixtures: what a step
//! leaves when each wall is hit (the server's log lines are the servers'
//! own wording, `servers/src/runtime/accept.rs`, `blocking.rs`,
//! `styles/process.rs`).

use super::*;

fn failed() -> Evidence {
    Evidence {
        failed: Some("errors: timeout=10".into()),
        server_alive: Some(true),
        server_fds: Some(1200),
        server_fd_limit: Some(20_000),
        p99_us: 2_000,
        objective_us: 100_000,
        ..Evidence::default()
    }
}

fn wall(e: Evidence) -> Wall {
    classify(&e).wall
}

#[test]
fn a_step_that_held_names_no_wall() {
    let e = Evidence {
        failed: None,
        ..failed()
    };
    assert_eq!(wall(e), Wall::Held);
}

#[test]
fn emfile_in_the_servers_accept_is_its_open_files_limit() {
    let e = Evidence {
        server_log: vec![
            "servers[epoll]: accept failed: Too many open files (os error 24) (counted; ...)"
                .into(),
        ],
        ..failed()
    };
    let v = classify(&e);
    assert_eq!(v.wall, Wall::ServerOpenFiles);
    assert!(v.evidence.contains("os error 24"), "{}", v.evidence);
}

#[test]
fn fds_at_the_servers_limit_are_its_open_files_limit_without_a_log() {
    let e = Evidence {
        server_fds: Some(19_995),
        ..failed()
    };
    assert_eq!(wall(e), Wall::ServerOpenFiles);
}

#[test]
fn enomem_or_an_oom_kill_is_memory() {
    let e = Evidence {
        server_log: vec![
            "servers[threads]: cannot start a connection thread: Cannot allocate memory (os error 12)"
                .into(),
        ],
        ..failed()
    };
    assert_eq!(wall(e), Wall::ServerMemory);
    let e = Evidence {
        server_alive: Some(false),
        exit_signal: Some("SIGKILL".into()),
        ..failed()
    };
    assert_eq!(wall(e), Wall::ServerMemory);
}

#[test]
fn eagain_from_fork_or_thread_start_is_threads_or_processes() {
    for line in [
        "servers[process]: cannot fork for a connection: Resource temporarily unavailable (os error 11) (counted as conn_errors)",
        "servers[threads]: cannot start a connection thread: Resource temporarily unavailable (os error 11)",
    ] {
        let e = Evidence {
            server_log: vec![line.into()],
            ..failed()
        };
        assert_eq!(wall(e), Wall::ServerTasks, "{line}");
    }
}

#[test]
fn a_server_gone_otherwise_died() {
    let e = Evidence {
        server_alive: Some(false),
        ..failed()
    };
    assert_eq!(wall(e), Wall::ServerDied);
}

#[test]
fn loadgens_own_limits_are_the_clients_wall() {
    let mut e = failed();
    e.errors.fd_limit = 7;
    let v = classify(&e);
    assert_eq!(v.wall, Wall::ClientOpenFiles);
    assert!(v.wall.is_client());
    let mut e = failed();
    e.errors.addr_unavailable = 3;
    assert_eq!(wall(e), Wall::ClientPorts);
}

#[test]
fn connects_timing_out_with_the_server_alive_are_the_backlog() {
    let mut e = failed();
    e.errors.connect_timeout = 40;
    assert_eq!(wall(e), Wall::ListenBacklog);
}

#[test]
fn a_p99_past_the_objective_is_the_latency_wall() {
    let e = Evidence {
        p99_us: 250_000,
        ..failed()
    };
    assert_eq!(wall(e), Wall::Latency);
}

#[test]
fn evidence_that_names_nothing_is_said_to() {
    let v = classify(&failed());
    assert_eq!(v.wall, Wall::Unexplained);
    assert_eq!(v.evidence, "errors: timeout=10");
}

#[test]
fn the_servers_own_words_come_before_loadgens_errors() {
    let mut e = Evidence {
        server_log: vec!["servers[epoll]: accept failed: Too many open files (os error 24)".into()],
        ..failed()
    };
    e.errors.fd_limit = 5;
    e.errors.connect_timeout = 9;
    assert_eq!(wall(e), Wall::ServerOpenFiles);
}

fn limits() -> LimitsAtEnd {
    LimitsAtEnd {
        fds: Some(1200),
        most_fds: Some(1200),
        most_fds_limit: Some(20_000),
        maps: Some(400),
        max_map_count: Some(65_530),
        machine_tasks: Some(300),
        pid_max: Some(32_768),
        threads_max: Some(190_000),
        oom_kills: Some(0),
    }
}

const EAGAIN_THREAD: &str = "servers[threads]: cannot start a connection thread: Resource temporarily unavailable (os error 11)";

#[test]
fn eagain_with_the_maps_at_max_map_count_is_the_memory_maps_wall() {
    let e = Evidence {
        server_log: vec![EAGAIN_THREAD.into()],
        limits: Some(LimitsAtEnd {
            maps: Some(65_500),
            ..limits()
        }),
        ..failed()
    };
    let v = classify(&e);
    assert_eq!(v.wall, Wall::MemoryMaps, "{v:?}");
    assert!(
        v.evidence.contains("65500") && v.evidence.contains("65530"),
        "{v:?}"
    );
}

#[test]
fn eagain_with_the_machine_at_pid_max_names_it() {
    let e = Evidence {
        server_log: vec![
            "servers[process]: cannot fork for a connection: Resource temporarily unavailable (os error 11) (counted as conn_errors)".into(),
        ],
        limits: Some(LimitsAtEnd {
            machine_tasks: Some(32_760),
            ..limits()
        }),
        ..failed()
    };
    let v = classify(&e);
    assert_eq!(v.wall, Wall::ServerTasks, "{v:?}");
    assert!(v.evidence.contains("32768"), "{v:?}");
    // Far from every limit, EAGAIN is still threads or processes, named
    // from the server's words alone.
    let e = Evidence {
        server_log: vec![EAGAIN_THREAD.into()],
        limits: Some(limits()),
        ..failed()
    };
    let v = classify(&e);
    assert_eq!(v.wall, Wall::ServerTasks);
    assert!(v.evidence.starts_with("the server said"), "{v:?}");
}

#[test]
fn an_oom_kill_in_the_servers_cgroup_is_memory_though_the_server_lives() {
    // `process`: the OOM killer takes a child; the server itself lives.
    let e = Evidence {
        limits: Some(LimitsAtEnd {
            oom_kills: Some(3),
            ..limits()
        }),
        ..failed()
    };
    let v = classify(&e);
    assert_eq!(v.wall, Wall::ServerMemory, "{v:?}");
    assert!(v.evidence.contains("killed 3"), "{v:?}");
}

#[test]
fn fds_are_judged_per_process_where_counted_at_the_end() {
    // prefork: 39,990 fds in all, one worker at its own limit of 20,000.
    let e = Evidence {
        server_fds: None,
        limits: Some(LimitsAtEnd {
            fds: Some(39_990),
            most_fds: Some(19_995),
            ..limits()
        }),
        ..failed()
    };
    assert_eq!(wall(e), Wall::ServerOpenFiles);
    // The same total spread under the limit in each: not the wall.
    let e = Evidence {
        server_fds: Some(39_990),
        server_fd_limit: Some(20_000),
        limits: Some(LimitsAtEnd {
            fds: Some(39_990),
            most_fds: Some(13_330),
            ..limits()
        }),
        ..failed()
    };
    assert_ne!(wall(e), Wall::ServerOpenFiles);
}

#[test]
fn connections_left_unaccepted_are_not_read_as_the_p99() {
    let e = Evidence {
        unaccepted: 40,
        p99_us: 990_000,
        ..failed()
    };
    let v = classify(&e);
    assert_eq!(v.wall, Wall::Unexplained, "{v:?}");
    assert!(v.evidence.contains("40 connections"), "{v:?}");
}

#[test]
fn a_server_that_died_of_it_names_its_limit_in_its_own_words() {
    // threads at vm.max_map_count aborts soon after (its allocator cannot
    // map either): its limits are never read at the end.
    let e = Evidence {
        server_log: vec![
            "servers[threads]: cannot start a connection thread: Resource temporarily unavailable (os error 11); this process holds 65490 memory maps of vm.max_map_count 65530 (counted as conn_errors)".into(),
        ],
        server_alive: Some(false),
        exit_signal: Some("SIGABRT".into()),
        ..failed()
    };
    assert_eq!(wall(e), Wall::MemoryMaps);
    let e = Evidence {
        server_log: vec![
            "servers[process]: cannot fork for a connection: Resource temporarily unavailable (os error 11); the machine runs 32760 threads and processes of the 32768 kernel.pid_max and kernel.threads-max allow (counted as conn_errors)".into(),
        ],
        ..failed()
    };
    assert_eq!(wall(e), Wall::ServerTasks);
}

#[test]
fn connections_only_loadgen_held_are_the_listen_backlog() {
    let e = Evidence {
        never_held: 4_000,
        p99_us: 4_000_000,
        ..failed()
    };
    let v = classify(&e);
    assert_eq!(v.wall, Wall::ListenBacklog, "{v:?}");
    assert!(v.evidence.contains("4000"), "{v:?}");
}
