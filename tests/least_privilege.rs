//! Least privilege in the container definitions, checked on the files
//! themselves: every service of docker-compose.yml, docker-compose.host.yml
//! and deploy/swarm/stack.yml runs as a non-root user with a read-only root
//! filesystem and no capabilities (and, in Compose, no-new-privileges), the
//! loadgen container reaches the Docker socket through its group, not as
//! root, and every pod in deploy/k8s/ meets the "restricted" Pod Security
//! Standard with resource requests and limits.
//!
//! CI's scanner (checkov, deploy/scan.sh) reads the Dockerfile and the
//! Kubernetes manifests but neither Compose nor Swarm files, and it takes a
//! `runAsUser` for `runAsNonRoot`, which the restricted standard does not:
//! this test covers both. Compose values are read with their `${VAR:-default}`
//! defaults, which is what runs when the scripts do not set them. The
//! planted-defect tests at the end run the same checks on altered copies, so
//! that a check that cannot fail is seen.

use serde::Deserialize;
use serde_norway::Value;
use std::path::PathBuf;

/// The image's user (deploy/Dockerfile) and every container's.
const UID: u64 = 65532;

fn read(rel: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Every document of a YAML text, merge keys (`<<: *anchor`) applied.
fn documents(text: &str, what: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|doc| {
            let mut v = Value::deserialize(doc).unwrap_or_else(|e| panic!("{what}: {e}"));
            v.apply_merge()
                .unwrap_or_else(|e| panic!("{what}: merge keys: {e}"));
            v
        })
        .filter(|v| !v.is_null())
        .collect()
}

/// A Compose value as it runs with no variable set: `${NAME:-default}` and
/// `${NAME-default}` become their default; None when a variable has no
/// default (`${NAME}`, `${NAME:?error}`: the scripts must set it).
fn with_defaults(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}')? + start;
        let inner = &rest[start + 2..end];
        let default = inner
            .split_once(":-")
            .or_else(|| inner.split_once('-'))
            .filter(|(name, _)| name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))?;
        out.push_str(default.1);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// The problems with a `user:` value: it must be numeric `uid:gid`, neither 0
/// (a name would need an /etc/passwd, which the scratch image has not).
fn user_problem(user: &str) -> Option<String> {
    let Some(resolved) = with_defaults(user) else {
        return Some(format!(
            "user {user:?} has no default: it would run as whatever the caller sets"
        ));
    };
    let ids: Vec<Option<u64>> = resolved.split(':').map(|id| id.parse().ok()).collect();
    match ids.as_slice() {
        [Some(uid), Some(gid)] if *uid != 0 && *gid != 0 => None,
        _ => Some(format!(
            "user {user:?} (as run: {resolved:?}) is not a non-root numeric uid:gid"
        )),
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_sequence)
        .map(|seq| {
            seq.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Every problem with one Compose or Swarm file's services, as
/// "file: service: problem". `no_new_privileges`: whether the file's
/// engine takes `security_opt` (Compose does; `docker stack deploy` ignores
/// it, see deploy/swarm/stack.yml).
fn service_problems(file: &str, text: &str, no_new_privileges: bool) -> Vec<String> {
    let doc = documents(text, file)
        .into_iter()
        .next()
        .expect("a document");
    let services = doc
        .get("services")
        .and_then(Value::as_mapping)
        .expect("services:");
    assert!(!services.is_empty(), "{file}: no services");
    let mut problems = Vec::new();
    for (name, svc) in services {
        let name = name.as_str().expect("a service name");
        let mut bad = |p: String| problems.push(format!("{file}: {name}: {p}"));
        match svc.get("user").and_then(Value::as_str) {
            None => bad(
                "no user: it would run as the image's, and an override to root would go unseen"
                    .into(),
            ),
            Some(user) => {
                if let Some(p) = user_problem(user) {
                    bad(p)
                }
            }
        }
        if svc.get("read_only").and_then(Value::as_bool) != Some(true) {
            bad("read_only is not true".into());
        }
        if !strings(svc.get("cap_drop")).iter().any(|c| c == "ALL") {
            bad("cap_drop does not hold ALL".into());
        }
        if !strings(svc.get("cap_add")).is_empty() {
            bad("cap_add: no service needs a capability".into());
        }
        if svc.get("privileged").and_then(Value::as_bool) == Some(true) {
            bad("privileged".into());
        }
        for key in ["pid", "ipc", "userns_mode"] {
            if svc.get(key).and_then(Value::as_str) == Some("host") {
                bad(format!("{key}: host"));
            }
        }
        let opts = strings(svc.get("security_opt"));
        if no_new_privileges && !opts.iter().any(|o| o == "no-new-privileges:true") {
            bad("security_opt lacks no-new-privileges:true".into());
        }
        if let Some(o) = opts
            .iter()
            .find(|o| o.contains("unconfined") || *o == "label=disable")
        {
            bad(format!(
                "security_opt {o:?} turns a protection off (an exception needs its reason here)"
            ));
        }
        for vol in svc
            .get("volumes")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
        {
            let (spec, read_only) = match vol {
                Value::String(s) => (s.clone(), s.ends_with(":ro")),
                long => (
                    long.get("source")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    long.get("read_only").and_then(Value::as_bool) == Some(true),
                ),
            };
            if spec.contains("docker.sock") {
                if !read_only {
                    bad(format!("the Docker socket is mounted writable: {spec}"));
                }
                let groups = strings(svc.get("group_add"));
                if !groups.iter().any(|g| g.contains("C10K_DOCKER_GID")) {
                    bad(format!(
                        "mounts the Docker socket without its group in group_add ({groups:?})"
                    ));
                }
            }
        }
        for g in strings(svc.get("group_add")) {
            if with_defaults(&g).is_some_and(|g| g == "0" || g == "root") {
                bad(format!("group_add {g:?} is root's group"));
            }
        }
    }
    problems
}

fn assert_none(problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "least privilege:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_compose_service_runs_without_privileges() {
    for file in ["docker-compose.yml", "docker-compose.host.yml"] {
        assert_none(service_problems(file, &read(file), true));
    }
}

#[test]
fn every_swarm_service_runs_without_privileges() {
    assert_none(service_problems(
        "deploy/swarm/stack.yml",
        &read("deploy/swarm/stack.yml"),
        false,
    ));
}

/// The servers run as the image's own uid, fixed; loadgen alone may run as
/// the caller (the results are then theirs), and alone holds the socket.
#[test]
fn servers_run_as_the_images_uid_and_only_loadgen_holds_the_socket() {
    let image_user = read("deploy/Dockerfile")
        .lines()
        .filter_map(|l| l.strip_prefix("USER "))
        .next_back()
        .map(|u| u.trim().to_owned());
    assert_eq!(
        image_user.as_deref(),
        Some("65532:65532"),
        "deploy/Dockerfile's last USER"
    );
    for file in [
        "docker-compose.yml",
        "docker-compose.host.yml",
        "deploy/swarm/stack.yml",
    ] {
        let doc = documents(&read(file), file).remove(0);
        for (name, svc) in doc["services"].as_mapping().expect("services") {
            let name = name.as_str().expect("a name");
            let user = svc["user"].as_str().and_then(with_defaults);
            if name.starts_with("loadgen") {
                assert_eq!(
                    user.as_deref(),
                    Some("65532:65532"),
                    "{file}: {name}: user with no variable set"
                );
            } else {
                assert_eq!(
                    svc["user"].as_str(),
                    Some("65532:65532"),
                    "{file}: {name}: user"
                );
            }
            let socket = format!("{:?}", svc.get("volumes")).contains("docker.sock");
            assert_eq!(
                socket,
                file != "deploy/swarm/stack.yml" && name == "loadgen",
                "{file}: {name}: Docker socket"
            );
        }
    }
}

/// Every problem with one Kubernetes manifest's pods against the
/// "restricted" Pod Security Standard, plus requests and limits.
fn pod_problems(file: &str, text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for doc in documents(text, file) {
        let kind = doc["kind"].as_str().unwrap_or("?").to_owned();
        if kind == "Namespace" {
            let enforce = doc["metadata"]["labels"]["pod-security.kubernetes.io/enforce"].as_str();
            if enforce != Some("restricted") {
                problems.push(format!(
                    "{file}: Namespace does not enforce restricted ({enforce:?})"
                ));
            }
        }
        let Some(pod) = doc
            .get("spec")
            .and_then(|s| s.get("template"))
            .and_then(|t| t.get("spec"))
        else {
            continue;
        };
        let what = format!(
            "{file}: {kind} {}",
            doc["metadata"]["name"].as_str().unwrap_or("?")
        );
        let mut bad = |p: &str| problems.push(format!("{what}: {p}"));
        let ctx = &pod["securityContext"];
        if ctx["runAsNonRoot"].as_bool() != Some(true) {
            bad("pod securityContext.runAsNonRoot is not true");
        }
        if ctx["runAsUser"].as_u64() != Some(UID) || ctx["runAsGroup"].as_u64() != Some(UID) {
            bad("pod securityContext runAsUser/runAsGroup is not 65532");
        }
        if ctx["seccompProfile"]["type"].as_str() != Some("RuntimeDefault") {
            bad("pod seccompProfile is not RuntimeDefault");
        }
        if pod["automountServiceAccountToken"].as_bool() != Some(false) {
            bad("automountServiceAccountToken is not false");
        }
        for key in ["hostNetwork", "hostPID", "hostIPC"] {
            if pod[key].as_bool() == Some(true) {
                bad(&format!("{key}: true"));
            }
        }
        if pod["volumes"]
            .as_sequence()
            .into_iter()
            .flatten()
            .any(|v| v.get("hostPath").is_some())
        {
            bad("a hostPath volume");
        }
        let containers = pod["containers"].as_sequence().cloned().unwrap_or_default();
        let init = pod["initContainers"]
            .as_sequence()
            .cloned()
            .unwrap_or_default();
        assert!(!containers.is_empty(), "{what}: no containers");
        for c in containers.iter().chain(&init) {
            let name = c["name"].as_str().unwrap_or("?");
            let mut bad = |p: &str| problems.push(format!("{what}: container {name}: {p}"));
            let sc = &c["securityContext"];
            if sc["allowPrivilegeEscalation"].as_bool() != Some(false) {
                bad("allowPrivilegeEscalation is not false");
            }
            if sc["readOnlyRootFilesystem"].as_bool() != Some(true) {
                bad("readOnlyRootFilesystem is not true");
            }
            if !strings(sc["capabilities"].get("drop"))
                .iter()
                .any(|d| d == "ALL")
            {
                bad("capabilities.drop does not hold ALL");
            }
            if !strings(sc["capabilities"].get("add")).is_empty() {
                bad(
                    "capabilities.add (restricted allows NET_BIND_SERVICE only, and no style needs it)",
                );
            }
            if sc["privileged"].as_bool() == Some(true)
                || sc["runAsNonRoot"].as_bool() == Some(false)
            {
                bad("privileged, or runAsNonRoot false");
            }
            if sc.get("runAsUser").is_some_and(|u| u.as_u64() == Some(0)) {
                bad("runAsUser 0");
            }
            for (side, res) in [
                ("requests", "cpu"),
                ("requests", "memory"),
                ("limits", "cpu"),
                ("limits", "memory"),
            ] {
                if c["resources"][side].get(res).is_none() {
                    bad(&format!("no resources.{side}.{res}"));
                }
            }
        }
    }
    problems
}

const MANIFESTS: &[&str] = &[
    "deploy/k8s/namespace.yaml",
    "deploy/k8s/server.yaml",
    "deploy/k8s/loadgen-job.yaml",
    "deploy/k8s/merge-job.yaml",
    "deploy/k8s/results-pvc.yaml",
];

#[test]
fn every_pod_meets_the_restricted_pod_security_standard() {
    let listed: Vec<String> =
        std::fs::read_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/k8s"))
            .expect("reading deploy/k8s")
            .map(|e| {
                e.expect("an entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .filter(|n| n.ends_with(".yaml"))
            .map(|n| format!("deploy/k8s/{n}"))
            .collect();
    for file in &listed {
        assert!(
            MANIFESTS.contains(&file.as_str()),
            "{file} is not checked here: add it to MANIFESTS"
        );
    }
    let mut namespaced = 0;
    for file in MANIFESTS {
        assert_none(pod_problems(file, &read(file)));
        for doc in documents(&read(file), file) {
            if doc["kind"].as_str() != Some("Namespace") {
                assert_eq!(
                    doc["metadata"]["namespace"].as_str(),
                    Some("c10k-echo"),
                    "{file}: namespace"
                );
                namespaced += 1;
            }
        }
    }
    assert!(namespaced >= 5, "{namespaced} namespaced objects");
}

/// The checks fail on the defects they are there for: a service planted
/// with `user: root`, a loadgen given the socket writable or without its
/// group, a pod without `runAsNonRoot`.
#[test]
fn planted_defects_are_caught() {
    let compose = read("docker-compose.yml");
    let root = compose.replacen("user: \"65532:65532\"", "user: root", 1);
    let found = service_problems("planted", &root, true);
    assert!(
        found.iter().any(|p| p.contains("user \"root\"")),
        "user: root not caught: {found:?}"
    );
    let writable = compose.replacen("docker.sock:ro", "docker.sock", 1);
    let found = service_problems("planted", &writable, true);
    assert!(
        found
            .iter()
            .any(|p| p.contains("socket is mounted writable")),
        "{found:?}"
    );
    let no_group = compose.replacen("group_add:", "x-group_add:", 1);
    let found = service_problems("planted", &no_group, true);
    assert!(
        found.iter().any(|p| p.contains("without its group")),
        "{found:?}"
    );
    let stack =
        read("deploy/swarm/stack.yml").replacen("C10K_USER:-65532:65532", "C10K_USER:-0:0", 1);
    let found = service_problems("planted", &stack, false);
    assert!(
        found.iter().any(|p| p.contains("loadgen: user")),
        "{found:?}"
    );

    let server = read("deploy/k8s/server.yaml");
    let planted: String = server
        .lines()
        .filter(|l| !l.contains("runAsNonRoot"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(planted, server);
    let found = pod_problems("planted", &planted);
    assert!(
        found.iter().any(|p| p.contains("runAsNonRoot is not true")),
        "{found:?}"
    );
}

#[test]
fn defaults_are_read_as_compose_reads_them() {
    assert_eq!(
        with_defaults("${A:-65532}:${B-7}").as_deref(),
        Some("65532:7")
    );
    assert_eq!(
        with_defaults("${C10K_USER:-65532:65532}").as_deref(),
        Some("65532:65532")
    );
    assert_eq!(with_defaults("${A:?set A}"), None);
    assert_eq!(with_defaults("${A}"), None);
    assert_eq!(user_problem("65532:65532"), None);
    for bad in ["root", "0:0", "65532:0", "65532", "${A:-0}:1", "${A}"] {
        assert!(user_problem(bad).is_some(), "{bad} passed");
    }
}
