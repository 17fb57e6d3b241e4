//! The open loop's schedule: every active connection's send slots, one
//! `interval` apart and interleaved across connections, in a heap by time,
//! and the timerfd that wakes the worker at the next slot. Knows nothing of
//! sockets: the worker asks it which slots are due and when to wake.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::ops::Range;
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};

use crate::results::spec::{Mode, RunSpec};

/// The open-loop send timer (connections use their slab keys, far below).
pub const TIMER: Token = Token(usize::MAX - 1);

/// A worker's open-loop schedule (empty, and its timer never set, in the
/// closed loop and churn).
pub struct Schedule {
    /// Time between one connection's slots (zero in closed and churn mode).
    pub interval: Duration,
    /// The next slot of each scheduled connection: (time, slab key).
    slots: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Wakes the loop at a send time with nanosecond precision (epoll's own
    /// timeout has millisecond granularity, which would delay scheduled
    /// sends and inflate corrected latency by up to 1 ms).
    timer: TimerFd,
}

impl Schedule {
    /// An empty schedule, its timer registered with the worker's poll.
    pub fn new(spec: &RunSpec, registry: &Registry) -> io::Result<Schedule> {
        let timer = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )
        .map_err(io::Error::from)?;
        registry.register(
            &mut SourceFd(&timer.as_fd().as_raw_fd()),
            TIMER,
            Interest::READABLE,
        )?;
        let interval = match spec.mode {
            Mode::Open { rate } => Duration::from_secs_f64(spec.conns as f64 / rate),
            Mode::Closed | Mode::Churn => Duration::ZERO,
        };
        Ok(Schedule {
            interval,
            slots: BinaryHeap::new(),
            timer,
        })
    }

    /// Slot `msg` of a connection whose first slot is `first`.
    pub fn slot(&self, first: Instant, msg: u64) -> Instant {
        // In nanoseconds: past 2^32 messages (43 s at 10^8 msg/s on one
        // connection) a u32 multiplier would wrap.
        let nanos = self.interval.as_nanos().saturating_mul(msg as u128);
        first + Duration::from_nanos(nanos.try_into().unwrap_or(u64::MAX))
    }

    /// The numbers of a connection's slots (its first at `first`) that fall
    /// in `from..to`.
    pub fn slots_within(&self, first: Instant, from: Instant, to: Instant) -> Range<u64> {
        let step = self.interval.as_nanos().max(1);
        // Slots before `t`: those k with first + k * interval < t.
        let before = |t: Instant| -> u64 {
            let span = t.saturating_duration_since(first).as_nanos();
            span.div_ceil(step).try_into().unwrap_or(u64::MAX)
        };
        before(from)..before(to).max(before(from))
    }

    /// Schedules connection `key`'s next slot at `due`.
    pub fn push(&mut self, due: Instant, key: usize) {
        self.slots.push(Reverse((due, key)));
    }

    /// The earliest slot, taken out, if it is due by `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, usize)> {
        let &Reverse((due, key)) = self.slots.peek()?;
        (due <= now).then(|| {
            self.slots.pop();
            (due, key)
        })
    }

    /// When the loop must wake, given that it would wake at `wake` anyway:
    /// `now` if a slot is due; otherwise, with the next slot before `wake`,
    /// the timer is set for it (counted in `syscalls`) and `wake` stands,
    /// the timer waking the loop on time with epoll's timeout only the
    /// fallback (the slot itself, if the timer cannot be set).
    pub fn wake(&mut self, now: Instant, wake: Instant, syscalls: &mut u64) -> Instant {
        let Some(&Reverse((due, _))) = self.slots.peek() else {
            return wake;
        };
        let until = due.saturating_duration_since(now);
        if until.is_zero() {
            return now;
        }
        if due >= wake {
            return wake;
        }
        *syscalls += 1;
        let spec = TimeSpec::from_duration(until);
        match self
            .timer
            .set(Expiration::OneShot(spec), TimerSetTimeFlags::empty())
        {
            Ok(()) => wake,
            Err(_) => due,
        }
    }

    /// Reads the timer's expiry count, so that it can fire again (the slots
    /// themselves are checked on every pass of the loop).
    pub fn clear_timer(&self) {
        let mut buf = [0u8; 8];
        let _ = nix::unistd::read(&self.timer, &mut buf);
    }
}
