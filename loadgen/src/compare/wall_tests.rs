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
