// SPDX-License-Identifier: GPL-2.0

//! The benchmark's baseline: the same queued spin lock without resilience
//! (no held-locks table, no deadlines, no deadlock checks), i.e. the
//! kernel's qspinlock (`kernel/locking/qspinlock.c`) in the 32-bit shape
//! the resilient lock uses, with the same word operations (an atomic
//! read-modify-write for unlock, 32-bit exchanges for the tail). It cannot
//! fail and may spin forever, so it lives here, next to the benchmark, and
//! never in the kernel module.

use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use std::sync::LazyLock;

use crate::platform::{current_cpu, MAX_HOST_CPUS};

const LOCKED_VAL: u32 = 1;
const LOCKED_MASK: u32 = 0xff;
const PENDING_VAL: u32 = 1 << 8;
const PENDING_MASK: u32 = 0xff << 8;
const LOCKED_PENDING_MASK: u32 = LOCKED_MASK | PENDING_MASK;
const TAIL_MASK: u32 = !LOCKED_PENDING_MASK;
const NODES: usize = 4;

/// A queue node (`struct mcs_spinlock`).
struct Node {
    next: AtomicPtr<Node>,
    locked: AtomicU32,
}

/// Per-CPU nodes and the nesting count of each CPU.
struct Cpu {
    nodes: [Node; NODES],
    count: AtomicU32,
}

static CPUS: LazyLock<Box<[Cpu]>> = LazyLock::new(|| {
    (0..MAX_HOST_CPUS)
        .map(|_| Cpu {
            nodes: std::array::from_fn(|_| Node {
                next: AtomicPtr::new(ptr::null_mut()),
                locked: AtomicU32::new(0),
            }),
            count: AtomicU32::new(0),
        })
        .collect()
});

/// The plain queued spin lock.
#[derive(Default)]
pub struct QueuedSpinLock {
    val: AtomicU32,
}

impl QueuedSpinLock {
    /// An unlocked lock.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the lock, spinning as long as it takes.
    #[inline]
    pub fn lock(&self) {
        if let Err(val) =
            self.val
                .compare_exchange(0, LOCKED_VAL, Ordering::Acquire, Ordering::Relaxed)
        {
            self.slowpath(val);
        }
    }

    /// Releases the lock. Only the owner may call it.
    #[inline]
    pub fn unlock(&self) {
        self.val.fetch_and(!LOCKED_MASK, Ordering::Release);
    }

    fn trylock(&self) -> bool {
        self.val.load(Ordering::Relaxed) == 0
            && self
                .val
                .compare_exchange(0, LOCKED_VAL, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
    }

    #[cold]
    #[inline(never)]
    fn slowpath(&self, mut val: u32) {
        if val == PENDING_VAL {
            val = self.val.load(Ordering::Relaxed);
        }
        if val & !LOCKED_MASK == 0 {
            let old = self.val.fetch_or(PENDING_VAL, Ordering::Acquire);
            if old & !LOCKED_MASK == 0 {
                while self.val.load(Ordering::Acquire) & LOCKED_MASK != 0 {
                    std::hint::spin_loop();
                }
                self.val
                    .fetch_add(LOCKED_VAL.wrapping_sub(PENDING_VAL), Ordering::Relaxed);
                return;
            }
            if old & PENDING_MASK == 0 {
                self.val.fetch_and(!PENDING_VAL, Ordering::Relaxed);
            }
        }
        self.queue();
    }

    fn queue(&self) {
        let id = current_cpu();
        let cpu = &CPUS[id as usize];
        let idx = cpu.count.load(Ordering::Relaxed);
        cpu.count.store(idx + 1, Ordering::Relaxed);
        let Some(node) = cpu.nodes.get(idx as usize) else {
            while !self.trylock() {
                std::hint::spin_loop();
            }
            cpu.count.store(idx, Ordering::Relaxed);
            return;
        };
        node.locked.store(0, Ordering::Relaxed);
        node.next.store(ptr::null_mut(), Ordering::Relaxed);
        if self.trylock() {
            cpu.count.store(idx, Ordering::Relaxed);
            return;
        }
        let tail = ((id + 1) << 18) | (idx << 16);
        let mut old = self.val.load(Ordering::Relaxed);
        while let Err(cur) = self.val.compare_exchange_weak(
            old,
            (old & LOCKED_PENDING_MASK) | tail,
            Ordering::AcqRel,
            Ordering::Relaxed,
        ) {
            old = cur;
        }
        if old & TAIL_MASK != 0 {
            let prev = &CPUS[((old >> 18) - 1) as usize].nodes[((old >> 16) & 3) as usize];
            prev.next
                .store(node as *const Node as *mut Node, Ordering::Release);
            while node.locked.load(Ordering::Acquire) == 0 {
                std::hint::spin_loop();
            }
        }
        let val = loop {
            let val = self.val.load(Ordering::Acquire);
            if val & LOCKED_PENDING_MASK == 0 {
                break val;
            }
            std::hint::spin_loop();
        };
        if val & TAIL_MASK == tail
            && self
                .val
                .compare_exchange(val, LOCKED_VAL, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            cpu.count.store(idx, Ordering::Relaxed);
            return;
        }
        self.val.fetch_or(LOCKED_VAL, Ordering::Relaxed);
        let next = loop {
            let next = node.next.load(Ordering::Acquire);
            if !next.is_null() {
                break next;
            }
            std::hint::spin_loop();
        };
        // SAFETY: `next` points to a node of `CPUS`, which lives forever.
        unsafe { (*next).locked.store(1, Ordering::Release) };
        cpu.count.store(idx, Ordering::Relaxed);
    }
}
