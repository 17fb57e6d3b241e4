//! The loop's receive buffers: a provided-buffer ring that the kernel takes
//! buffers from when a receive has data (see the parent module's docs).

use std::io;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::IoUring;


/// The buffer group id of the loop's provided-buffer ring.
pub(super) const BGID: u16 = 0;
/// Address space for one loop's buffers; pages are only used once touched.
const POOL_BYTES: usize = 16 << 20;
const MIN_BUFFERS: usize = 64;
const MAX_BUFFERS: usize = 1024;
const MAX_BUFFER_SIZE: usize = 1 << 20;

/// How many buffers of what size: `buffer_size` bounds what a connection
/// holds, a fixed address budget bounds the pool.
pub(super) fn pool_shape(buffer_size: usize) -> (usize, usize) {
    let size = buffer_size.clamp(1, MAX_BUFFER_SIZE);
    let count = (POOL_BYTES / size).clamp(MIN_BUFFERS, MAX_BUFFERS);
    // The ring's size must be a power of two.
    (1 << count.ilog2(), size)
}

/// A buffer holding received data.
pub(super) enum Held {
    /// From the pool, by buffer id.
    Pool(u16),
    /// The connection's own (the pool was exhausted).
    Own(Box<[u8]>),
}

/// An anonymous memory mapping (page-aligned, as the buffer ring requires).
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
    leaked: bool,
}

// SAFETY: a Mapping is plain memory owned by one value; which thread owns
// it does not matter.
unsafe impl Send for Mapping {}

impl Mapping {
    pub(super) fn new(len: usize) -> io::Result<Mapping> {
        // SAFETY: a fresh private anonymous mapping aliases nothing.
        let ptr = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(ptr.cast()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Mapping {
            ptr,
            len,
            leaked: false,
        })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        if !self.leaked {
            // SAFETY: the mapping is ours, and whoever used it (the kernel
            // included) is done with it, or it would have been leaked.
            unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
        }
    }
}

/// One slot of the provided-buffer ring, `struct io_uring_buf`. Slot 0's
/// `resv` field is the ring's tail.
#[repr(C)]
struct RingSlot {
    addr: u64,
    len: u32,
    bid: u16,
    resv: u16,
}

/// The loop's receive buffers, and the ring through which the kernel takes
/// them: we add buffers at the tail, the kernel consumes them at its head
/// when a receive has data, and tells us which one in the completion.
pub(super) struct BufPool {
    ring: Mapping,
    mem: Mapping,
    pub(super) buf_size: usize,
    count: u16,
    /// Our tail, published to the kernel by [`publish`](Self::publish).
    tail: u16,
    dirty: bool,
    /// Buffers never handed to the kernel yet: their pages are untouched.
    cold: Vec<u16>,
}

impl BufPool {
    pub(super) fn new(count: usize, buf_size: usize) -> io::Result<BufPool> {
        debug_assert!(count.is_power_of_two() && count <= 32768);
        Ok(BufPool {
            ring: Mapping::new(count * std::mem::size_of::<RingSlot>())?,
            mem: Mapping::new(count * buf_size)?,
            buf_size,
            count: count as u16,
            tail: 0,
            dirty: false,
            cold: (0..count as u16).rev().collect(),
        })
    }

    pub(super) fn register(&self, ring: &IoUring) -> io::Result<()> {
        // SAFETY: the slots live in `self.ring`, which is unmapped only after
        // the io_uring is closed (field order of `Uring`) and never when
        // operations are still in flight (`Uring`'s Drop).
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                self.ring.ptr.as_ptr() as u64,
                self.count,
                BGID,
                0,
            )
        }
    }

    /// Start of buffer `bid`.
    pub(super) fn buf(&self, bid: u16) -> *mut u8 {
        debug_assert!(bid < self.count);
        // SAFETY: `bid < count`, so the offset is inside the mapping.
        unsafe { self.mem.ptr.as_ptr().add(bid as usize * self.buf_size) }
    }

    /// Hands buffer `bid` (now unused by us) to the kernel.
    fn give(&mut self, bid: u16) {
        let slot = (self.tail & (self.count - 1)) as usize;
        let addr = self.buf(bid) as u64;
        // SAFETY: `slot < count` slots are mapped. The kernel reads only the
        // slots between its head and the published tail, and this one is
        // past the tail (every buffer is in the ring at most once, and the
        // ring has a slot for each). Fields are written one by one, never
        // `resv`, which in slot 0 is the tail the kernel reads.
        unsafe {
            let s = self.ring.ptr.as_ptr().cast::<RingSlot>().add(slot);
            ptr::addr_of_mut!((*s).addr).write(addr);
            ptr::addr_of_mut!((*s).len).write(self.buf_size as u32);
            ptr::addr_of_mut!((*s).bid).write(bid);
        }
        self.tail = self.tail.wrapping_add(1);
        self.dirty = true;
    }

    /// Takes back a buffer the connection is done with: a pool buffer goes
    /// back to the kernel, an own buffer is freed.
    pub(super) fn release(&mut self, held: Option<Held>) {
        if let Some(Held::Pool(bid)) = held {
            self.give(bid);
        }
    }

    /// Hands up to `n` never-used buffers to the kernel; returns how many.
    pub(super) fn grow(&mut self, n: usize) -> usize {
        let mut added = 0;
        while added < n {
            let Some(bid) = self.cold.pop() else {
                break;
            };
            self.give(bid);
            added += 1;
        }
        added
    }

    /// Makes the buffers given since the last call visible to the kernel.
    pub(super) fn publish(&mut self) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        // SAFETY: slot 0's `resv` is the ring's tail, a u16 the kernel only
        // reads; AtomicU16 has u16's layout. Release orders the slot writes
        // before it.
        let tail = unsafe {
            let s = self.ring.ptr.as_ptr().cast::<RingSlot>();
            &*ptr::addr_of_mut!((*s).resv).cast::<AtomicU16>()
        };
        tail.store(self.tail, Ordering::Release);
    }

    /// Never unmaps the memory (the kernel may still use it).
    pub(super) fn leak(&mut self) {
        self.ring.leaked = true;
        self.mem.leaked = true;
    }
}
