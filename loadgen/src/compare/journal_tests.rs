//! The journal's reader: records back as written, a cut-off last line
//! left out, a bad line before it refused, and headers told apart by what
//! differs.

use super::*;
use crate::compare::profile::Profile;

fn fingerprint() -> Fingerprint {
    Fingerprint {
        kernel: "6.1.0".into(),
        cpu_model: "Test CPU".into(),
        cores: 2,
        loadgen_version: "0.1.0".into(),
        git_revision: "abc".into(),
        ..Fingerprint::default()
    }
}

fn opts(styles: &[&str]) -> CompareOptions {
    let mut o = CompareOptions::servers_only(
        styles.iter().map(|s| s.to_string()).collect(),
        None,
        vec![0],
        vec![1],
        None,
    );
    o.profile = Profile::named("smoke").unwrap();
    o.repeat = o.profile.repeat;
    o.server_cpu_quota = o.profile.server_cpu_quota;
    o
}

fn header() -> Header {
    Header::new(&opts(&["epoll", "reactor"]), &fingerprint())
}

fn session() -> Session {
    Session {
        started_unix_s: 1_800_000_000,
        resumed: false,
        environment: fingerprint(),
        cgroup: None,
        server_command: "loadgen serve".into(),
    }
}

fn unit(round: u32, style: &str, elapsed: f64) -> Unit {
    Unit {
        key: UnitKey::new(round, style, Some(Step::Idle)),
        session_elapsed_s: elapsed,
        servers: vec![ServerRecord {
            style: style.into(),
            phase: "idle".into(),
            started: true,
            ..ServerRecord::default()
        }],
        runs: Vec::new(),
    }
}

fn text(records: &[Record]) -> String {
    records.iter().map(|r| r.line().unwrap()).collect()
}

fn journal() -> String {
    text(&[
        Record::Header(header()),
        Record::Session(session()),
        Record::Unit(unit(0, "epoll", 1.5)),
        Record::Unit(unit(0, "reactor", 3.0)),
    ])
}

#[test]
fn records_read_back_as_written() {
    let p = parse(&journal()).unwrap();
    assert_eq!(p.header, header());
    assert_eq!(p.sessions.len(), 1);
    let keys: Vec<&str> = p.units().map(|u| u.key.style.as_str()).collect();
    assert_eq!(keys, ["epoll", "reactor"]);
    assert_eq!(p.torn, None);
    assert_eq!(p.complete_len, journal().len());
    // The smoke profile, 2 styles: idle, 2 scale points and the rest in
    // round 0, the points and the (empty) rest again in round 1.
    assert_eq!(p.header.planned_units, 14);
    let r = p.results();
    assert_eq!(r.servers.len(), 2);
    assert_eq!(r.elapsed_s, 3.0);
    assert_eq!(
        r.interrupted,
        Some(Interrupted {
            planned_units: 14,
            recorded_units: 2
        })
    );
    assert!(r.sessions.is_empty(), "one session is not a resume");
}

#[test]
fn a_cut_off_last_record_is_left_out_and_said() {
    let whole = journal();
    // Cut mid-way through the last record, as a SIGKILL during its write.
    let cut = &whole[..whole.len() - 40];
    let p = parse(cut).unwrap();
    assert_eq!(p.units().count(), 1);
    assert!(
        p.torn.as_deref().unwrap().contains("line 4"),
        "{:?}",
        p.torn
    );
    assert_eq!(&cut[..p.complete_len], &whole[..p.complete_len]);
    assert!(cut[..p.complete_len].ends_with('\n'));
    // A whole line of garbage last (a sector lost) is the same.
    let garbage = format!("{}{{\"unit\":{{\"key\"\n", &whole[..p.complete_len]);
    let p = parse(&garbage).unwrap();
    assert_eq!(p.units().count(), 1);
    assert!(p.torn.is_some());
}

#[test]
fn a_bad_line_before_the_last_is_an_error_naming_it() {
    let whole = journal();
    let mut lines: Vec<&str> = whole.lines().collect();
    lines[2] = "{\"unit\":";
    let broken = lines.join("\n") + "\n";
    match parse(&broken) {
        Err(JournalError::BadLine { line: 3, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(parse(""), Err(JournalError::Empty));
    let no_header = text(&[Record::Session(session())]);
    assert!(matches!(parse(&no_header), Err(JournalError::NoHeader(_))));
    let no_session = text(&[
        Record::Header(header()),
        Record::Unit(unit(0, "epoll", 1.0)),
    ]);
    assert_eq!(parse(&no_session), Err(JournalError::NoSession { line: 2 }));
}

#[test]
fn resumed_sessions_are_summed_and_counted() {
    let mut second = session();
    second.resumed = true;
    second.started_unix_s += 100;
    let t = journal() + &text(&[Record::Session(second), Record::Unit(unit(1, "epoll", 2.0))]);
    let r = parse(&t).unwrap().results();
    assert_eq!(r.started_unix_s, 1_800_000_000);
    assert_eq!(r.elapsed_s, 5.0);
    let units: Vec<(bool, usize)> = r.sessions.iter().map(|s| (s.resumed, s.units)).collect();
    assert_eq!(units, [(false, 2), (true, 1)]);
}

#[test]
fn the_same_comparison_differs_in_nothing() {
    assert!(header().differences(&header()).is_empty());
}

#[test]
fn each_difference_is_named_by_its_flag() {
    let old = header();
    let mut other = opts(&["epoll"]);
    other.profile.duration = std::time::Duration::from_secs(2);
    other.server_cpu_quota = Some(0.5);
    let mut f = fingerprint();
    f.kernel = "6.2.0".into();
    f.loadgen_version = "0.2.0".into();
    f.load_average = Some([9.0, 9.0, 9.0]);
    let new = Header::new(&other, &f);
    let d = old.differences(&new).join("\n");
    for named in [
        "--styles: the journal's comparison has epoll,reactor, this one epoll",
        "--duration: the journal's comparison has 0.3 s, this one 2 s",
        "--server-cpu-quota",
        "the machine's kernel: the journal's comparison has 6.1.0, this one 6.2.0",
        "loadgen's version",
    ] {
        assert!(d.contains(named), "{named} not in:\n{d}");
    }
    for same in [
        "--profile",
        "--warmup",
        "--repeat",
        "--slo",
        "the machine's CPU",
    ] {
        assert!(!d.contains(&format!("{same}:")), "{same} in:\n{d}");
    }
}
