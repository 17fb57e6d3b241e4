//! The loop's ring: creating it with the cheapest settings the kernel
//! accepts, queueing submissions (keeping linked pairs together when the
//! submission queue is full), reaping completions while counting what is in
//! flight, cancelling everything at shutdown, and the registered-file table.
//! The loop in the parent module decides what to submit.

use std::collections::VecDeque;
use std::io;
use std::time::{Duration, Instant};

use io_uring::types::{CancelBuilder, SubmitArgs, Timespec};
use io_uring::{IoUring, cqueue, opcode, squeue};

/// Submission queue size; the completion queue is larger, since every
/// connection may have a completion pending at once.
const SQ_ENTRIES: u32 = 4096;
pub(super) const CQ_ENTRIES: u32 = 4 * SQ_ENTRIES;
/// During shutdown, cancel again this often in case an operation slipped by.
const CANCEL_AGAIN: Duration = Duration::from_millis(100);
/// Most slots of the loop's registered-file table (the kernel also caps it
/// at RLIMIT_NOFILE); connections past it use their plain descriptor.
const MAX_FIXED_FILES: u64 = 1 << 16;

/// Creates a ring with the cheapest settings the kernel accepts.
/// Returns the ring and whether it still has to be enabled (on its thread).
pub(super) fn new_ring() -> io::Result<(IoUring, bool)> {
    let builder = || {
        let mut b = IoUring::builder();
        b.setup_cqsize(CQ_ENTRIES);
        b
    };
    // Only the loop's thread ever touches its ring, so the kernel may skip
    // locking (SINGLE_ISSUER) and run completion work only when the loop
    // waits, in its context, instead of interrupting it (DEFER_TASKRUN,
    // 6.1+). The ring is created disabled: the thread that enables it
    // becomes its single issuer.
    match builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_r_disabled()
        .build(SQ_ENTRIES)
    {
        Ok(ring) => return Ok((ring, true)),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
        Err(e) => return Err(e),
    }
    // Older kernels: at least do not interrupt the loop for completions.
    match builder().setup_coop_taskrun().build(SQ_ENTRIES) {
        Ok(ring) => return Ok((ring, false)),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
        Err(e) => return Err(e),
    }
    builder().build(SQ_ENTRIES).map(|ring| (ring, false))
}

/// The ring and the operations submitted to it.
pub(super) struct Ring {
    pub(super) ring: IoUring,
    /// Entries that did not fit in the submission queue, in order; a linked
    /// pair is kept together.
    overflow: VecDeque<Vec<squeue::Entry>>,
    /// Operations submitted (or queued) whose last completion is not reaped.
    pub(super) inflight: usize,
}

impl Ring {
    pub(super) fn new(ring: IoUring) -> Ring {
        Ring {
            ring,
            overflow: VecDeque::new(),
            inflight: 0,
        }
    }

    /// Queues `entries` (one, or a linked chain) for the next submission.
    ///
    /// # Safety
    ///
    /// Whatever memory the entries point at must stay valid until their
    /// final completions are reaped.
    pub(super) unsafe fn push(&mut self, entries: &[squeue::Entry]) {
        self.inflight += entries.len();
        // SAFETY: forwarded from the caller.
        if self.overflow.is_empty() && unsafe { self.try_push(entries) } {
            return;
        }
        self.overflow.push_back(entries.to_vec());
    }

    /// # Safety
    ///
    /// As for [`push`](Self::push).
    unsafe fn try_push(&mut self, entries: &[squeue::Entry]) -> bool {
        let room = |ring: &mut IoUring| {
            let sq = ring.submission();
            sq.capacity() - sq.len()
        };
        // Submission queue full: hand what is queued to the kernel now.
        if room(&mut self.ring) < entries.len() && self.ring.submit().is_err() {
            return false;
        }
        // SAFETY: forwarded from the caller.
        unsafe { self.ring.submission().push_multiple(entries) }.is_ok()
    }

    pub(super) fn flush_overflow(&mut self) {
        while let Some(entries) = self.overflow.pop_front() {
            // SAFETY: these entries were pushed under `push`'s contract.
            if !unsafe { self.try_push(&entries) } {
                self.overflow.push_front(entries);
                return;
            }
        }
    }

    /// Moves every available completion into `out` as (user_data, result,
    /// flags), keeping `inflight` up to date.
    pub(super) fn reap(&mut self, out: &mut Vec<(u64, i32, u32)>) {
        for cqe in self.ring.completion() {
            if !cqueue::more(cqe.flags()) {
                self.inflight = self.inflight.saturating_sub(1);
            }
            out.push((cqe.user_data(), cqe.result(), cqe.flags()));
        }
    }

    /// Cancels every operation in flight and waits until the kernel has
    /// reported each one done (so it no longer references any memory), or
    /// `deadline` passed. `user_data` marks the cancel's own completions.
    /// Afterwards, `inflight` says how many are still outstanding.
    pub(super) fn cancel_all(&mut self, deadline: Instant, user_data: u64) -> io::Result<()> {
        let mut cancel_at = Instant::now();
        let mut cqes = Vec::new();
        while self.inflight > 0 {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            if now >= cancel_at {
                let cancel = opcode::AsyncCancel2::new(CancelBuilder::any())
                    .build()
                    .user_data(user_data);
                // SAFETY: a cancel references no memory. It is queued after
                // every other entry, so everything it should find is in flight.
                unsafe { self.push(&[cancel]) };
                cancel_at = now + CANCEL_AGAIN;
            }
            self.flush_overflow();
            let wait = Timespec::from(deadline.min(cancel_at) - now);
            let args = SubmitArgs::new().timespec(&wait);
            match self.ring.submitter().submit_with_args(1, &args) {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::ETIME | libc::EINTR | libc::EBUSY | libc::EAGAIN)
                    ) => {}
                Err(e) => return Err(e),
            }
            cqes.clear();
            // Only the accounting matters now: the buffers are freed whole.
            self.reap(&mut cqes);
        }
        Ok(())
    }
}

/// Registers an empty file table for the connections' sockets, as large as
/// the descriptor limit allows; returns its size (0 if the kernel refused).
pub(super) fn register_file_table(ring: &IoUring) -> u32 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into `lim`, which outlives the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 0;
    }
    let size = lim.rlim_cur.min(MAX_FIXED_FILES) as u32;
    match ring.submitter().register_files_sparse(size) {
        Ok(()) => size,
        Err(_) => 0,
    }
}
