//! The policy module's allocator: a fallback allocator (talc on wasm), with a bump region for
//! admissions of a pre-initialised module.
//!
//! Every admission runs in a fresh instance whose memory starts as the snapshot Wizer took
//! (`make policy.wasm`), and the instance is thrown away when the admission ends. Two things
//! follow:
//! * each page of the snapshot an admission writes costs a copy-on-write fault in the host.
//!   With talc alone, the admission's blocks would land in the holes pre-initialisation left,
//!   spread over the snapshot's pages, and talc's bookkeeping there would be rewritten;
//! * freeing memory buys little: an admission allocates about 50 KB for the sleep pod and
//!   1 MB for a pod with 2000 env vars, all dropped with the instance.
//!
//! So [`SnapshotHeap::freeze`], called when pre-initialisation ends, makes later allocations
//! come from a bump region above everything the snapshot holds: a pointer moves forward, the
//! last block grows in place, and freed small blocks go on a list per size class for the next
//! block of that class. Reuse matters because every fresh page costs the host a fault: the
//! template reads the pod's metadata about a dozen times, each time as a fresh copy that is
//! dropped at once, and a pod's metadata (its `managedFields` above all) runs to kilobytes.
//!
//! The region is [`BUMP_REGION`] long (in the module) and reserved with one `memory.grow` when
//! the heap is frozen, so the snapshot already holds it. No crate offers a bounded bump region
//! that falls back to another allocator; lol_alloc's bump allocator grows without bound.
//!
//! # An instance kept for many requests
//! `kwctl bench` (and a plain webhook host) calls one instance again and again. There the
//! first request's values are left unfreed ([`SnapshotHeap::leak_once`]: policy-server's
//! instances only ever see that one), and later requests free theirs. The heap counts the
//! region's blocks in use above what was left unfreed; when the count drops to zero, as it
//! does once a request's answer has been copied out, the region starts over at the same
//! place, so the instance's memory stops growing after its first requests and the pages it
//! touches stay the same ones. Something that keeps a block across requests (a memo taking in
//! a new rendering) holds the region until it lets go; meanwhile the region fills, and talc
//! answers once it is full, as for a module that is not pre-initialised.
//!
//! The snapshot itself is built with talc, which reuses freed memory, so its image stays
//! small, and a module that is not pre-initialised never freezes and uses talc throughout.
//!
//! # What it saves, where (BENCHMARKS.md)
//! In our wasmtime host with a fresh instance per admission (policy-server's way), the region
//! took the sleep pod from 170 to 156 µs and a pod with 2000 env vars from 1835 to 1503 µs
//! against a second talc heap, and leaving the request unfreed 138 → 131 µs. In the real hosts
//! it is measured together with pre-initialisation (the module before it uses talc alone):
//! see the real-hosts section of BENCHMARKS.md.

//! # Why a crate of its own
//! It is unsafe code, and the core's tests only reach it through whole admissions in a wasm
//! host. Here it is generic over where the region's memory comes from ([`Reserve`]) and what it
//! falls back to (any [`GlobalAlloc`]), so its unit and property tests run natively against
//! `std`'s allocator and a region of a few pages.

#![no_std]

use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Length of the policy module's bump region: far more than an admission needs (1 MB for 2000
/// env vars), small enough to leave unused in a host that keeps instances. Untouched pages cost
/// the host nothing.
pub const BUMP_REGION: usize = 16 << 20;

/// Where the bump region's memory comes from.
pub trait Reserve {
    /// `len` fresh bytes, aligned to at least 8, never handed out by anything else; their
    /// start address, or `None` when there is no such memory.
    fn reserve(&self, len: usize) -> Option<usize>;
}

/// The wasm module's memory: the region is taken with one `memory.grow`.
#[cfg(target_arch = "wasm32")]
#[derive(Debug, Clone, Copy, Default)]
pub struct WasmMemory;

#[cfg(target_arch = "wasm32")]
impl Reserve for WasmMemory {
    fn reserve(&self, len: usize) -> Option<usize> {
        /// Bytes in a wasm page.
        const PAGE_SIZE: usize = 64 * 1024;
        let previous_pages = core::arch::wasm32::memory_grow::<0>(len.div_ceil(PAGE_SIZE));
        (previous_pages != usize::MAX)
            .then(|| previous_pages.checked_mul(PAGE_SIZE))
            .flatten()
    }
}

/// The policy module's heap: talc, and a [`BUMP_REGION`] of the module's memory once frozen.
#[cfg(target_arch = "wasm32")]
pub type WasmSnapshotHeap = SnapshotHeap<talc::wasm::WasmDynamicTalc, WasmMemory>;

/// The policy module's heap, for a `#[global_allocator]` static.
#[cfg(target_arch = "wasm32")]
pub const fn wasm_heap() -> WasmSnapshotHeap {
    SnapshotHeap::new(
        talc::wasm::new_wasm_dynamic_allocator(),
        WasmMemory,
        BUMP_REGION,
    )
}
/// Small blocks are reused by size class: multiples of `GRAIN` bytes up to `CLASSES * GRAIN`.
/// A block goes on a class's list only when it is `GRAIN`-aligned and at least as long as the
/// class, so any block on the list fits any request of that class.
const GRAIN: usize = 8;
const CLASSES: usize = 128;

/// A fallback allocator, plus a bump region once frozen.
pub struct SnapshotHeap<F, R> {
    fallback: F,
    memory: R,
    /// Length of the region.
    region: usize,
    frozen: AtomicBool,
    /// Start of the bump region, 0 until reserved.
    start: AtomicUsize,
    /// Next free byte in the bump region.
    next: AtomicUsize,
    /// End of the bump region.
    end: AtomicUsize,
    /// Start of the last block handed out (it may grow in place), 0 when none.
    last: AtomicUsize,
    /// Whether talc has handed out or resized a block since the freeze (the region was full,
    /// or a block of the snapshot was resized).
    spilled: AtomicBool,
    /// Start of the region's current generation: blocks below it were left unfreed once
    /// ([`SnapshotHeap::leak_once`]) and are never handed out by the bump pointer again.
    floor: AtomicUsize,
    /// Region blocks at or above `floor` handed out and not given back. When it drops to 0,
    /// nothing there is in use, and the generation starts over ([`SnapshotHeap::release`]).
    live: AtomicUsize,
    /// Whether [`SnapshotHeap::leak_once`] has said yes.
    leaked: AtomicBool,
    /// Per size class, the first freed block of the region, 0 when none. Each freed block
    /// holds the address of the next in its first word.
    free: [AtomicUsize; CLASSES],
}

/// The size class of blocks for `layout`, when it is small enough to reuse.
fn class_of(layout: Layout) -> Option<usize> {
    if layout.align() > GRAIN || layout.size() == 0 {
        return None;
    }
    let class = (layout.size() - 1) / GRAIN;
    (class < CLASSES).then_some(class)
}

/// Bytes in a block of `class`.
const fn class_size(class: usize) -> usize {
    (class + 1) * GRAIN
}

impl<F: GlobalAlloc, R: Reserve> SnapshotHeap<F, R> {
    /// A heap that has not been frozen: `fallback` only; once frozen, a region of `region`
    /// bytes from `memory`.
    pub const fn new(fallback: F, memory: R, region: usize) -> Self {
        SnapshotHeap {
            fallback,
            memory,
            region,
            frozen: AtomicBool::new(false),
            start: AtomicUsize::new(0),
            next: AtomicUsize::new(0),
            end: AtomicUsize::new(0),
            last: AtomicUsize::new(0),
            spilled: AtomicBool::new(false),
            floor: AtomicUsize::new(0),
            live: AtomicUsize::new(0),
            leaked: AtomicBool::new(false),
            free: [const { AtomicUsize::new(0) }; CLASSES],
        }
    }

    /// From now on, allocate from the bump region, reserved now: in a pre-initialised module
    /// the snapshot then holds the grown memory, and no admission pays for a `memory.grow`.
    /// Its pages hold zeros, so the module's data does not grow.
    pub fn freeze(&self) {
        self.frozen.store(true, Ordering::Relaxed);
        let _ = self.reserve();
    }

    /// Whether the values of the request ending now may be left unfreed: yes once per
    /// instance, if every block handed out since the freeze came from the region.
    ///
    /// policy-server throws the instance away after its one admission, so walking the parsed
    /// request and the answer to free them is wasted work there. A host that keeps the
    /// instance (`kwctl bench`, a plain webhook host) calls again: the blocks left unfreed
    /// now stay below a new generation of the region, and from then on values are freed, so
    /// each request gives the region back whole and the next one starts over at the same
    /// place ([`SnapshotHeap::release`]). At most one request's blocks are lost.
    pub fn leak_once(&self) -> bool {
        let yes = self.frozen.load(Ordering::Relaxed)
            && !self.spilled.load(Ordering::Relaxed)
            && !self.leaked.load(Ordering::Relaxed);
        if yes {
            self.leaked.store(true, Ordering::Relaxed);
            // Nothing below the bump pointer is handed out by it again, nor grown in place.
            self.floor
                .store(self.next.load(Ordering::Relaxed), Ordering::Relaxed);
            self.live.store(0, Ordering::Relaxed);
            self.last.store(0, Ordering::Relaxed);
        }
        yes
    }

    /// Notes that the region handed out `block`.
    fn note_handed_out(&self, block: usize) {
        if block >= self.floor.load(Ordering::Relaxed) {
            let live = self.live.load(Ordering::Relaxed);
            self.live.store(live.saturating_add(1), Ordering::Relaxed);
        }
    }

    /// Notes that the fallback handed out a block after the freeze.
    fn note_spill(&self) {
        if self.frozen.load(Ordering::Relaxed) {
            self.spilled.store(true, Ordering::Relaxed);
        }
    }

    /// Whether `ptr` was handed out by the bump region.
    fn in_region(&self, ptr: *mut u8) -> bool {
        let address = ptr as usize;
        address >= self.start.load(Ordering::Relaxed) && address < self.end.load(Ordering::Relaxed)
    }

    /// A block from the bump region, or `None` when it is not frozen or full.
    fn bump(&self, layout: Layout) -> Option<*mut u8> {
        if !self.frozen.load(Ordering::Relaxed) {
            return None;
        }
        if self.start.load(Ordering::Relaxed) == 0 {
            self.reserve()?;
        }
        let (size, align) = match class_of(layout) {
            Some(class) => {
                if let Some(block) = self.pop(class) {
                    self.note_handed_out(block as usize);
                    return Some(block);
                }
                (class_size(class), GRAIN)
            }
            // A zero-size block (which `GlobalAlloc` callers must not ask for) still takes a
            // byte, so that freeing it cannot rewind over a live block at the same address.
            None => (layout.size().max(1), layout.align()),
        };
        let start = self
            .next
            .load(Ordering::Relaxed)
            .checked_next_multiple_of(align)?;
        let end = start.checked_add(size)?;
        if end > self.end.load(Ordering::Relaxed) {
            return None;
        }
        self.next.store(end, Ordering::Relaxed);
        self.last.store(start, Ordering::Relaxed);
        self.note_handed_out(start);
        Some(start as *mut u8)
    }

    /// The first freed block of `class`, taken off its list.
    #[allow(unsafe_code)]
    fn pop(&self, class: usize) -> Option<*mut u8> {
        let head = self.free.get(class)?;
        let block = head.load(Ordering::Relaxed);
        if block == 0 {
            return None;
        }
        // SAFETY: only `release` puts blocks on the list, and it wrote the next block's
        // address in the first word of each; blocks are at least `GRAIN` long and aligned.
        let next = unsafe { (block as *const usize).read() };
        head.store(next, Ordering::Relaxed);
        Some(block as *mut u8)
    }

    /// Takes back a region block. When it was the last one in use in the current generation,
    /// the generation starts over: the bump pointer goes back to its floor and the free lists
    /// are emptied, since nothing at or above the floor is in use. Otherwise the last block
    /// gives its bytes back to the bump pointer, a small one goes on its class's list, and any
    /// other stays unused until the generation ends.
    #[allow(unsafe_code)]
    fn release(&self, ptr: *mut u8, layout: Layout) {
        let address = ptr as usize;
        let floor = self.floor.load(Ordering::Relaxed);
        if address >= floor {
            let live = self.live.load(Ordering::Relaxed).saturating_sub(1);
            self.live.store(live, Ordering::Relaxed);
            if live == 0 {
                self.next.store(floor, Ordering::Relaxed);
                self.last.store(0, Ordering::Relaxed);
                for head in &self.free {
                    head.store(0, Ordering::Relaxed);
                }
                return;
            }
        }
        if address == self.last.load(Ordering::Relaxed) {
            self.next.store(address, Ordering::Relaxed);
            self.last.store(0, Ordering::Relaxed);
            return;
        }
        // A block that was not handed out for a class (a large one shrunk in place) may lack
        // the class's alignment; it is left unused rather than mixed in.
        if !address.is_multiple_of(GRAIN) {
            return;
        }
        if let Some(head) = class_of(layout).and_then(|class| self.free.get(class)) {
            // SAFETY: the block is the caller's to give up, and holds at least its class's
            // `GRAIN` bytes, aligned for a `usize`.
            unsafe { (ptr as *mut usize).write(head.load(Ordering::Relaxed)) };
            head.store(address, Ordering::Relaxed);
        }
    }

    /// Takes the region's memory. When there is none, allocation stays with the fallback for
    /// good.
    #[cold]
    #[inline(never)]
    fn reserve(&self) -> Option<()> {
        let region = self
            .memory
            .reserve(self.region)
            .filter(|start| *start != 0 && start.is_multiple_of(GRAIN))
            .and_then(|start| Some((start, start.checked_add(self.region)?)));
        let Some((start, end)) = region else {
            self.frozen.store(false, Ordering::Relaxed);
            return None;
        };
        self.start.store(start, Ordering::Relaxed);
        self.floor.store(start, Ordering::Relaxed);
        self.next.store(start, Ordering::Relaxed);
        self.end.store(end, Ordering::Relaxed);
        Some(())
    }

    /// Whether the region block `ptr`, laid out as `layout`, can hold `new_size` bytes where
    /// it is: it is long enough already, or it is the last block and the region has room.
    fn resize_in_place(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> bool {
        let address = ptr as usize;
        // A block counts on its whole class only when it is aligned like the class's blocks: a
        // large block shrunk in place and grown again may start anywhere, and then owns only
        // its size.
        let capacity = match class_of(layout) {
            Some(class) if address.is_multiple_of(GRAIN) => class_size(class),
            _ => layout.size(),
        };
        if new_size <= capacity {
            return true;
        }
        if address != self.last.load(Ordering::Relaxed) {
            return false;
        }
        // Rounded up, so the block still holds its class if it is freed at its new size.
        match address
            .checked_add(new_size)
            .and_then(|end| end.checked_next_multiple_of(GRAIN))
        {
            Some(end) if end <= self.end.load(Ordering::Relaxed) => {
                self.next.store(end, Ordering::Relaxed);
                true
            }
            _ => false,
        }
    }
}

// SAFETY: bump blocks are disjoint ranges of memory reserved for the region alone and never
// handed to the fallback; the fallback's blocks are never touched by the region. `dealloc` and `realloc` tell the two
// apart by address. A region block is on a free list only after its owner gave it up, and is
// taken off before it is handed out again. The heap is meant for single-threaded wasm modules
// (wasm32-wasip1): the relaxed loads and stores cannot interleave there. Used from several
// threads at once, two allocations could take the same block.
#[allow(unsafe_code)]
unsafe impl<F: GlobalAlloc, R: Reserve> GlobalAlloc for SnapshotHeap<F, R> {
    // Not inlined: the allocator shims are called from thousands of places, and inlining the
    // region's checks into each made the module 12% larger for no measurable gain.
    #[inline(never)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.bump(layout) {
            Some(block) => block,
            None => {
                self.note_spill();
                unsafe { self.fallback.alloc(layout) }
            }
        }
    }

    #[inline(never)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if self.in_region(ptr) {
            self.release(ptr, layout);
        } else {
            unsafe { self.fallback.dealloc(ptr, layout) }
        }
    }

    #[inline(never)]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !self.in_region(ptr) {
            self.note_spill();
            return unsafe { self.fallback.realloc(ptr, layout, new_size) };
        }
        if self.resize_in_place(ptr, layout, new_size) {
            return ptr;
        }
        // SAFETY: `GlobalAlloc::realloc`'s contract makes `new_size` valid with this alignment.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let moved = unsafe { self.alloc(new_layout) };
        if !moved.is_null() {
            // SAFETY: both blocks hold at least the smaller size, and a new block never
            // overlaps a live one.
            unsafe { core::ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size)) };
            self.release(ptr, layout);
        }
        moved
    }
}

#[cfg(test)]
mod tests;
