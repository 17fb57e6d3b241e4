//! What one run does: the validated form of `loadgen run`'s flags.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How messages are paced.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum Mode {
    /// Each connection sends its next message when a reply is back
    /// (`pipeline` in flight). Latency is round-trip time and hides stalls.
    Closed,
    /// `rate` messages/s in total on a fixed schedule, spread evenly over
    /// the connections, whatever the replies do. Latency counts from the
    /// intended send time (coordinated-omission corrected).
    Open { rate: f64 },
    /// Each connection sends one message, waits for its echo, closes and
    /// reconnects at once: measures connection set-up, not steady traffic.
    /// Messages/s is then connections/s.
    Churn,
}

impl Mode {
    /// The kind of pacing, without its rate: what runs that add up share.
    pub fn kind(&self) -> &'static str {
        match self {
            Mode::Closed => "closed",
            Mode::Open { .. } => "open",
            Mode::Churn => "churn",
        }
    }
}

/// One run's parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    pub addr: SocketAddr,
    /// Connections that send messages.
    pub conns: usize,
    /// Extra connections opened first and held idle.
    pub idle: usize,
    #[serde(with = "secs")]
    pub duration: Duration,
    #[serde(with = "secs")]
    pub warmup: Duration,
    /// Payload bytes per message.
    pub size: usize,
    /// Most messages in flight per connection (both modes).
    pub pipeline: usize,
    #[serde(flatten)]
    pub mode: Mode,
    /// Connections opened per second (None: as fast as they complete): the
    /// connect phase's pace and, in churn, the churn rate (every reconnect
    /// waits its turn).
    pub connect_rate: Option<f64>,
    /// Source addresses, used round-robin (empty: the kernel picks).
    pub source_ips: Vec<IpAddr>,
    /// Worker threads of loadgen.
    pub threads: usize,
    /// Per-message (and per-connect) timeout.
    #[serde(with = "secs")]
    pub timeout: Duration,
}

impl Default for RunSpec {
    fn default() -> Self {
        RunSpec {
            addr: SocketAddr::from(([127, 0, 0, 1], 7000)),
            conns: 50,
            idle: 0,
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(2),
            size: 64,
            pipeline: 1,
            mode: Mode::Closed,
            connect_rate: None,
            source_ips: Vec::new(),
            threads: 1,
            timeout: Duration::from_secs(5),
        }
    }
}

impl RunSpec {
    /// Every connection loadgen opens.
    pub fn total_conns(&self) -> usize {
        self.conns + self.idle
    }
}

/// Durations as fractional seconds in JSON.
mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}
