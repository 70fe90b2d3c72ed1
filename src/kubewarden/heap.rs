//! The module's allocator: talc, with a bump region for admissions of a pre-initialised module.
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
//! come from a bump region above everything the snapshot holds: a pointer moves forward, and
//! frees are no-ops (the last block can still grow in place). The region is [`BUMP_REGION`]
//! long and reserved with one `memory.grow` when the heap is frozen, so the snapshot already
//! holds it. An instance that outlives it (a host that keeps one instance for many requests)
//! falls back to talc, so at most that much is never reused. No crate offers a bounded bump region that falls back to another allocator;
//! lol_alloc's bump allocator grows without bound.
//!
//! The snapshot itself is built with talc, which reuses freed memory, so its image stays
//! small, and a module that is not pre-initialised never freezes and uses talc throughout.

use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use talc::wasm::{WasmDynamicTalc, new_wasm_dynamic_allocator};

/// Bytes in a wasm page.
const PAGE_SIZE: usize = 64 * 1024;
/// Length of the bump region: far more than an admission needs (1 MB for 2000 env vars), small
/// enough to leave unused in a host that keeps instances. Untouched pages cost the host nothing.
const BUMP_REGION: usize = 16 << 20;

/// talc, plus a bump region once frozen.
pub struct SnapshotHeap {
    talc: WasmDynamicTalc,
    frozen: AtomicBool,
    /// Start of the bump region, 0 until reserved.
    start: AtomicUsize,
    /// Next free byte in the bump region.
    next: AtomicUsize,
    /// End of the bump region.
    end: AtomicUsize,
    /// Start of the last block handed out (it may grow in place).
    last: AtomicUsize,
    /// Whether talc has handed out a block since the freeze (the region was full, or a block
    /// of the snapshot grew).
    spilled: AtomicBool,
}

impl SnapshotHeap {
    /// A heap that has not been frozen: talc only.
    pub const fn new() -> Self {
        SnapshotHeap {
            talc: new_wasm_dynamic_allocator(),
            frozen: AtomicBool::new(false),
            start: AtomicUsize::new(0),
            next: AtomicUsize::new(0),
            end: AtomicUsize::new(0),
            last: AtomicUsize::new(0),
            spilled: AtomicBool::new(false),
        }
    }

    /// From now on, allocate from the bump region, reserved now: in a pre-initialised module
    /// the snapshot then holds the grown memory, and no admission pays for a `memory.grow`.
    /// Its pages hold zeros, so the module's data does not grow.
    pub fn freeze(&self) {
        self.frozen.store(true, Ordering::Relaxed);
        let _ = self.reserve();
    }

    /// Whether freeing anything allocated so far would be a no-op: every block handed out since
    /// the freeze came from the region. Dropping a large value then only walks it for nothing.
    pub fn frees_are_noops(&self) -> bool {
        self.frozen.load(Ordering::Relaxed) && !self.spilled.load(Ordering::Relaxed)
    }

    /// Notes that talc handed out a block after the freeze.
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
        let start = self
            .next
            .load(Ordering::Relaxed)
            .checked_next_multiple_of(layout.align())?;
        let end = start.checked_add(layout.size())?;
        if end > self.end.load(Ordering::Relaxed) {
            return None;
        }
        self.next.store(end, Ordering::Relaxed);
        self.last.store(start, Ordering::Relaxed);
        Some(start as *mut u8)
    }

    /// Grows the memory by the region's length and takes the new pages. When the memory cannot
    /// grow, allocation stays with talc for good.
    #[cold]
    #[inline(never)]
    fn reserve(&self) -> Option<()> {
        let previous_pages = core::arch::wasm32::memory_grow::<0>(BUMP_REGION / PAGE_SIZE);
        let region = (previous_pages != usize::MAX)
            .then(|| previous_pages.checked_mul(PAGE_SIZE))
            .flatten()
            .and_then(|start| Some((start, start.checked_add(BUMP_REGION)?)));
        let Some((start, end)) = region else {
            self.frozen.store(false, Ordering::Relaxed);
            return None;
        };
        self.start.store(start, Ordering::Relaxed);
        self.next.store(start, Ordering::Relaxed);
        self.end.store(end, Ordering::Relaxed);
        Some(())
    }

    /// Grows the region's last block in place when it is `ptr` and the region has room.
    fn grow_last(&self, ptr: *mut u8, new_size: usize) -> bool {
        let address = ptr as usize;
        if address != self.last.load(Ordering::Relaxed) {
            return false;
        }
        match address.checked_add(new_size) {
            Some(end) if end <= self.end.load(Ordering::Relaxed) => {
                self.next.store(
                    end.max(self.next.load(Ordering::Relaxed)),
                    Ordering::Relaxed,
                );
                true
            }
            _ => false,
        }
    }
}

// SAFETY: bump blocks are disjoint ranges of memory grown for the region alone and never handed
// to talc; talc's blocks are never touched by the region. `dealloc` and `realloc` tell the two
// apart by address. wasm32-wasip1 modules are single-threaded, so the relaxed loads and stores
// cannot interleave.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for SnapshotHeap {
    // Not inlined: the allocator shims are called from thousands of places, and inlining the
    // region's checks into each made the module 12% larger for no measurable gain.
    #[inline(never)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.bump(layout) {
            Some(block) => block,
            None => {
                self.note_spill();
                unsafe { self.talc.alloc(layout) }
            }
        }
    }

    #[inline(never)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !self.in_region(ptr) {
            unsafe { self.talc.dealloc(ptr, layout) }
        }
    }

    #[inline(never)]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !self.in_region(ptr) {
            self.note_spill();
            return unsafe { self.talc.realloc(ptr, layout, new_size) };
        }
        if self.grow_last(ptr, new_size) {
            return ptr;
        }
        // SAFETY: `GlobalAlloc::realloc`'s contract makes `new_size` valid with this alignment.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let moved = unsafe { self.alloc(new_layout) };
        if !moved.is_null() {
            // SAFETY: both blocks hold at least the smaller size, and a new block never
            // overlaps a live one.
            unsafe { core::ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size)) };
        }
        moved
    }
}
