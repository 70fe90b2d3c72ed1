//! Tests of the heap on the host: `std`'s allocator as the fallback and a region of a few
//! pages taken from it, one heap per test.

extern crate std;

use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicUsize, Ordering};
use std::vec::Vec;

use proptest::prelude::*;

use super::{GRAIN, Reserve, SnapshotHeap};

/// A region memory that hands out one block of `std`'s allocator, or nothing when `len` is 0.
struct TestMemory {
    reserved: AtomicUsize,
    fail: bool,
}

impl Reserve for TestMemory {
    fn reserve(&self, len: usize) -> Option<usize> {
        if self.fail {
            return None;
        }
        let layout = Layout::from_size_align(len, 4096).ok()?;
        // SAFETY: a non-zero size; the block is leaked for the test's lifetime.
        #[allow(unsafe_code)]
        let block = unsafe { std::alloc::alloc(layout) } as usize;
        self.reserved.store(block, Ordering::Relaxed);
        (block != 0).then_some(block)
    }
}

type Heap = SnapshotHeap<std::alloc::System, TestMemory>;

fn heap(region: usize) -> Heap {
    SnapshotHeap::new(
        std::alloc::System,
        TestMemory {
            reserved: AtomicUsize::new(0),
            fail: false,
        },
        region,
    )
}

fn layout(size: usize, align: usize) -> Layout {
    Layout::from_size_align(size, align).unwrap()
}

#[allow(unsafe_code)]
fn alloc(heap: &Heap, l: Layout) -> *mut u8 {
    let p = unsafe { heap.alloc(l) };
    assert!(!p.is_null());
    assert!(
        (p as usize).is_multiple_of(l.align()),
        "{p:?} not aligned to {}",
        l.align()
    );
    p
}

#[allow(unsafe_code)]
fn free(heap: &Heap, p: *mut u8, l: Layout) {
    unsafe { heap.dealloc(p, l) }
}

#[allow(unsafe_code)]
fn realloc(heap: &Heap, p: *mut u8, l: Layout, size: usize) -> *mut u8 {
    let q = unsafe { heap.realloc(p, l, size) };
    assert!(!q.is_null());
    q
}

#[test]
fn before_the_freeze_every_block_is_the_fallbacks() {
    let h = heap(64 * 1024);
    let p = alloc(&h, layout(24, 8));
    assert!(!h.in_region(p));
    assert!(
        !h.leak_once(),
        "nothing may be left unfreed in the fallback"
    );
    free(&h, p, layout(24, 8));
    assert_eq!(
        h.memory.reserved.load(Ordering::Relaxed),
        0,
        "nothing reserved"
    );
}

#[test]
fn after_the_freeze_blocks_come_from_the_region_in_order() {
    let h = heap(64 * 1024);
    h.freeze();
    let start = h.memory.reserved.load(Ordering::Relaxed);
    let a = alloc(&h, layout(10, 1));
    let b = alloc(&h, layout(100, 8));
    assert!(h.in_region(a) && h.in_region(b));
    assert_eq!(a as usize, start);
    // A 10-byte block takes its class: 16 bytes.
    assert_eq!(b as usize, start + 16);
    assert!(
        h.leak_once(),
        "the first request's blocks may be left unfreed"
    );
    assert!(!h.leak_once(), "but only the first's");
}

#[test]
fn freeing_the_last_block_gives_its_bytes_back() {
    let h = heap(64 * 1024);
    h.freeze();
    let a = alloc(&h, layout(2000, 8));
    free(&h, a, layout(2000, 8));
    let b = alloc(&h, layout(4000, 8));
    assert_eq!(a, b);
}

#[test]
fn a_freed_small_block_is_reused_for_its_class() {
    let h = heap(64 * 1024);
    h.freeze();
    let a = alloc(&h, layout(30, 8));
    let _keep = alloc(&h, layout(30, 8));
    free(&h, a, layout(30, 8));
    // 25..=32 bytes share a's class.
    assert_eq!(alloc(&h, layout(25, 4)), a);
    // Another class does not get it.
    let c = alloc(&h, layout(30, 8));
    assert_ne!(c, a);
}

#[test]
fn the_last_block_grows_in_place_and_others_move_with_their_bytes() {
    let h = heap(64 * 1024);
    h.freeze();
    let a = alloc(&h, layout(16, 8));
    #[allow(unsafe_code)]
    unsafe {
        a.write_bytes(0xAB, 16)
    };
    let grown = realloc(&h, a, layout(16, 8), 1000);
    assert_eq!(grown, a, "the last block grows where it is");
    let b = alloc(&h, layout(8, 8));
    let moved = realloc(&h, a, layout(1000, 8), 3000);
    assert_ne!(moved, a);
    #[allow(unsafe_code)]
    let bytes = unsafe { core::slice::from_raw_parts(moved, 16) };
    assert!(bytes.iter().all(|b| *b == 0xAB));
    assert!(h.in_region(b));
}

#[test]
fn a_full_region_falls_back_and_says_frees_matter_again() {
    let h = heap(4096);
    h.freeze();
    let a = alloc(&h, layout(3000, 8));
    assert!(h.in_region(a));
    let b = alloc(&h, layout(3000, 8));
    assert!(!h.in_region(b), "the region is full: the fallback answers");
    assert!(!h.leak_once());
    free(&h, b, layout(3000, 8));
    // Growing a region block past the region's end moves it to the fallback.
    let c = realloc(&h, a, layout(3000, 8), 8000);
    assert!(!h.in_region(c));
    free(&h, c, layout(8000, 8));
}

#[test]
fn without_memory_for_the_region_the_fallback_answers_for_good() {
    let h = SnapshotHeap::new(
        std::alloc::System,
        TestMemory {
            reserved: AtomicUsize::new(0),
            fail: true,
        },
        4096,
    );
    h.freeze();
    assert!(!h.leak_once());
    #[allow(unsafe_code)]
    let p = unsafe { h.alloc(layout(8, 8)) };
    assert!(!h.in_region(p));
    #[allow(unsafe_code)]
    unsafe {
        h.dealloc(p, layout(8, 8))
    };
}

#[test]
fn when_every_block_is_back_the_region_starts_over() {
    let h = heap(64 * 1024);
    h.freeze();
    let start = h.memory.reserved.load(Ordering::Relaxed);
    // A request: blocks of several sizes, freed in another order than they came.
    let a = alloc(&h, layout(5000, 8));
    let b = alloc(&h, layout(24, 8));
    let c = alloc(&h, layout(3000, 8));
    free(&h, a, layout(5000, 8));
    free(&h, c, layout(3000, 8));
    assert!(h.next.load(Ordering::Relaxed) > start, "b is still in use");
    free(&h, b, layout(24, 8));
    assert_eq!(h.next.load(Ordering::Relaxed), start);
    assert_eq!(alloc(&h, layout(24, 8)) as usize, start);
    // The free lists were emptied with it: b's class does not hand out b's old place twice.
    let d = alloc(&h, layout(24, 8));
    assert_ne!(d as usize, start);
}

#[test]
fn blocks_left_unfreed_once_are_never_handed_out_again() {
    let h = heap(64 * 1024);
    h.freeze();
    // The first request: its values are left unfreed, except wapc's buffers, freed after.
    let buffer = alloc(&h, layout(900, 8));
    let kept = alloc(&h, layout(4000, 8));
    #[allow(unsafe_code)]
    unsafe {
        kept.write_bytes(0x5A, 4000)
    };
    assert!(h.leak_once());
    free(&h, buffer, layout(900, 8));
    let floor = h.next.load(Ordering::Relaxed);
    // Later requests free everything and start over at the floor, above the unfreed blocks.
    for _ in 0..3 {
        let a = alloc(&h, layout(2000, 8));
        assert!(a as usize >= floor);
        let b = alloc(&h, layout(16, 8));
        free(&h, a, layout(2000, 8));
        free(&h, b, layout(16, 8));
        assert_eq!(h.next.load(Ordering::Relaxed), floor);
    }
    #[allow(unsafe_code)]
    let bytes = unsafe { core::slice::from_raw_parts(kept, 4000) };
    assert!(bytes.iter().all(|b| *b == 0x5A));
}

#[test]
fn large_alignments_and_zero_sizes_are_honoured() {
    let h = heap(64 * 1024);
    h.freeze();
    let _ = alloc(&h, layout(3, 1));
    let a = alloc(&h, layout(64, 64));
    assert!(h.in_region(a));
    let z1 = alloc(&h, layout(0, 1));
    let z2 = alloc(&h, layout(0, 1));
    assert_ne!(z1, z2, "a zero-size block still takes a byte");
}

/// One step of a random allocation sequence.
#[derive(Debug, Clone)]
enum Op {
    Alloc {
        size: usize,
        align_log: u32,
    },
    Free {
        which: usize,
    },
    Realloc {
        which: usize,
        size: usize,
    },
    /// The end of a first request: its live blocks are left unfreed if the heap says so.
    LeakOnce,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0usize..3000, 0u32..7).prop_map(|(size, align_log)| Op::Alloc { size, align_log }),
        2 => any::<usize>().prop_map(|which| Op::Free { which }),
        2 => (any::<usize>(), 1usize..5000).prop_map(|(which, size)| Op::Realloc { which, size }),
        1 => Just(Op::LeakOnce),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Whatever the sequence, frozen or not, region small or large: live blocks never overlap,
    /// keep their contents through reallocation, and are aligned as asked.
    #[test]
    fn live_blocks_are_disjoint_aligned_and_keep_their_bytes(
        ops in proptest::collection::vec(op(), 1..200),
        frozen in any::<bool>(),
        region_pages in 1usize..8,
    ) {
        let h = heap(region_pages * 4096);
        if frozen {
            h.freeze();
        }
        // (pointer, layout, fill byte)
        let mut live: Vec<(*mut u8, Layout, u8)> = Vec::new();
        // Left unfreed for good: never freed, never overwritten.
        let mut leaked: Vec<(*mut u8, Layout, u8)> = Vec::new();
        let mut fill = 0u8;
        for op in ops {
            match op {
                Op::Alloc { size, align_log } => {
                    let l = layout(size.max(1), 1 << align_log);
                    let p = alloc(&h, l);
                    fill = fill.wrapping_add(1);
                    #[allow(unsafe_code)]
                    unsafe { p.write_bytes(fill, l.size()) };
                    live.push((p, l, fill));
                }
                Op::Free { which } if !live.is_empty() => {
                    let (p, l, _) = live.swap_remove(which % live.len());
                    free(&h, p, l);
                }
                Op::Realloc { which, size } if !live.is_empty() => {
                    let i = which % live.len();
                    let (p, l, f) = live[i];
                    let q = realloc(&h, p, l, size);
                    prop_assert!((q as usize).is_multiple_of(l.align()));
                    let kept = l.size().min(size);
                    #[allow(unsafe_code)]
                    let bytes = unsafe { core::slice::from_raw_parts(q, kept) };
                    prop_assert!(bytes.iter().all(|b| *b == f), "contents lost in realloc");
                    let nl = layout(size, l.align());
                    #[allow(unsafe_code)]
                    unsafe { q.write_bytes(f, size) };
                    live[i] = (q, nl, f);
                }
                Op::LeakOnce if h.leak_once() => leaked.append(&mut live),
                _ => {}
            }
            let mut spans: Vec<(usize, usize)> = live
                .iter()
                .chain(&leaked)
                .map(|(p, l, _)| (*p as usize, *p as usize + l.size()))
                .collect();
            spans.sort_unstable();
            for pair in spans.windows(2) {
                prop_assert!(pair[0].1 <= pair[1].0, "blocks overlap: {pair:?}");
            }
        }
        for (p, l, f) in live.iter().chain(&leaked) {
            #[allow(unsafe_code)]
            let bytes = unsafe { core::slice::from_raw_parts(*p, l.size()) };
            prop_assert!(bytes.iter().all(|b| b == f), "a block was overwritten");
        }
        for (p, l, _) in live {
            free(&h, p, l);
        }
        let _ = GRAIN;
    }
}
