//! A minimal Docker Engine API client over its Unix socket: enough for
//! `loadgen compare --docker` to start and stop the server containers one
//! style at a time, read their logs, and sample their resource use
//! (`GET /containers/{name}/stats`), when loadgen itself runs in a
//! container next to them.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

/// The Engine API on one socket.
#[derive(Clone, Debug)]
pub struct Docker {
    socket: PathBuf,
}

/// A container's resource use at one moment, as the Engine reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ContainerSample {
    /// Memory in use less the page cache (as `docker stats` shows it).
    pub memory_bytes: u64,
    /// CPU time used by the container since it started, in seconds.
    pub cpu_s: f64,
    /// Processes and threads in the container.
    pub pids: u64,
}

impl Docker {
    pub fn new(socket: &Path) -> Docker {
        Docker {
            socket: socket.to_path_buf(),
        }
    }

    /// One HTTP/1.0 request; returns status code and body.
    fn request(&self, method: &str, path: &str) -> anyhow::Result<(u16, Vec<u8>)> {
        let mut stream = UnixStream::connect(&self.socket).with_context(|| {
            format!("connecting to the Docker API at {}", self.socket.display())
        })?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(
            stream,
            "{method} {path} HTTP/1.0\r\nHost: docker\r\nContent-Length: 0\r\n\r\n"
        )?;
        let mut raw = Vec::new();
        stream
            .read_to_end(&mut raw)
            .context("reading the Docker API's answer")?;
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .context("malformed answer from the Docker API")?;
        let head = String::from_utf8_lossy(&raw[..split]);
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .context("no status in the Docker API's answer")?;
        Ok((status, raw[split + 4..].to_vec()))
    }

    fn json(&self, method: &str, path: &str) -> anyhow::Result<Value> {
        let (status, body) = self.request(method, path)?;
        if !(200..300).contains(&status) {
            bail!(
                "Docker API {method} {path}: {status} {}",
                String::from_utf8_lossy(&body).trim()
            );
        }
        serde_json::from_slice(&body)
            .with_context(|| format!("Docker API {method} {path}: not JSON"))
    }

    pub fn start(&self, container: &str) -> anyhow::Result<()> {
        let (status, body) = self.request("POST", &format!("/containers/{container}/start"))?;
        // 304: already running.
        if status == 204 || status == 304 {
            return Ok(());
        }
        bail!(
            "starting container {container}: {status} {}",
            String::from_utf8_lossy(&body).trim()
        )
    }

    /// Stops with SIGTERM (SIGKILL after `grace`); returns the exit code.
    pub fn stop(&self, container: &str, grace: Duration) -> anyhow::Result<Option<i64>> {
        let (status, body) = self.request(
            "POST",
            &format!("/containers/{container}/stop?t={}", grace.as_secs()),
        )?;
        if status != 204 && status != 304 {
            bail!(
                "stopping container {container}: {status} {}",
                String::from_utf8_lossy(&body).trim()
            );
        }
        let info = self.json("GET", &format!("/containers/{container}/json"))?;
        Ok(info["State"]["ExitCode"].as_i64())
    }

    /// The container's stderr since `since` (Unix seconds), demultiplexed.
    pub fn stderr_since(&self, container: &str, since: u64) -> anyhow::Result<String> {
        let (status, body) = self.request(
            "GET",
            &format!("/containers/{container}/logs?stderr=1&since={since}"),
        )?;
        if status != 200 {
            bail!("logs of {container}: {status}");
        }
        Ok(demux(&body))
    }

    /// The container's CPU quota in CPUs and its CFS period in µs (from
    /// `--cpus` or `--cpu-quota`/`--cpu-period`); None: no quota.
    pub fn cpu_quota(&self, container: &str) -> anyhow::Result<Option<(f64, u64)>> {
        let v = self.json("GET", &format!("/containers/{container}/json"))?;
        Ok(quota_of(&v["HostConfig"]))
    }

    pub fn sample(&self, container: &str) -> anyhow::Result<ContainerSample> {
        let v = self.json(
            "GET",
            &format!("/containers/{container}/stats?stream=false&one-shot=true"),
        )?;
        let mem = &v["memory_stats"];
        let usage = mem["usage"].as_u64().unwrap_or(0);
        // cgroup v2 reports inactive_file, v1 total_inactive_file.
        let cache = mem["stats"]["inactive_file"]
            .as_u64()
            .or_else(|| mem["stats"]["total_inactive_file"].as_u64())
            .unwrap_or(0);
        Ok(ContainerSample {
            memory_bytes: usage.saturating_sub(cache),
            cpu_s: v["cpu_stats"]["cpu_usage"]["total_usage"]
                .as_f64()
                .unwrap_or(0.0)
                / 1e9,
            pids: v["pids_stats"]["current"].as_u64().unwrap_or(0),
        })
    }
}

/// CPUs and period from a container's HostConfig: NanoCpus (`--cpus`,
/// Docker's 100 ms period) or CpuQuota over CpuPeriod.
fn quota_of(host: &Value) -> Option<(f64, u64)> {
    let nano = host["NanoCpus"].as_i64().unwrap_or(0);
    if nano > 0 {
        return Some((nano as f64 / 1e9, 100_000));
    }
    let quota = host["CpuQuota"].as_i64().unwrap_or(0);
    let period = host["CpuPeriod"]
        .as_i64()
        .filter(|&p| p > 0)
        .unwrap_or(100_000);
    (quota > 0).then(|| (quota as f64 / period as f64, period as u64))
}

/// Docker's log stream without a TTY: frames of an 8-byte header (stream,
/// 0, 0, 0, big-endian length) and the payload.
fn demux(mut raw: &[u8]) -> String {
    let mut out = Vec::new();
    while raw.len() >= 8 {
        let len = u32::from_be_bytes([raw[4], raw[5], raw[6], raw[7]]) as usize;
        let end = (8 + len).min(raw.len());
        out.extend_from_slice(&raw[8..end]);
        raw = &raw[end..];
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_read_from_host_config() {
        let q = |v: Value| quota_of(&v);
        assert_eq!(
            q(serde_json::json!({"NanoCpus": 500_000_000i64})),
            Some((0.5, 100_000))
        );
        assert_eq!(
            q(serde_json::json!({"CpuQuota": 5000, "CpuPeriod": 10000})),
            Some((0.5, 10_000))
        );
        assert_eq!(
            q(serde_json::json!({"CpuQuota": -1, "CpuPeriod": 10000})),
            None
        );
        assert_eq!(
            q(serde_json::json!({"CpuQuota": 0, "CpuPeriod": 0, "NanoCpus": 0})),
            None
        );
    }

    #[test]
    fn log_frames_are_joined() {
        let mut raw = vec![2, 0, 0, 0, 0, 0, 0, 6];
        raw.extend_from_slice(b"hello\n");
        raw.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 3]);
        raw.extend_from_slice(b"ok\n");
        assert_eq!(demux(&raw), "hello\nok\n");
    }
}
