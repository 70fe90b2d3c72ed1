//! The policy module's allocator, driven natively: alloc/realloc/free sequences through
//! `SnapshotHeap` (frozen or not, with a small region so that it fills), checking that live
//! blocks never overlap, keep their contents through realloc, and are aligned as asked.
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use snapshot_heap::{Reserve, SnapshotHeap};

/// The region's memory: one block of the system allocator, given back when the run ends.
struct Memory {
    block: Cell<(usize, usize)>,
}

impl Reserve for Memory {
    fn reserve(&self, len: usize) -> Option<usize> {
        let layout = Layout::from_size_align(len, 4096).ok()?;
        // SAFETY: non-zero size; freed in `Drop`.
        let block = unsafe { System.alloc(layout) } as usize;
        self.block.set((block, len));
        (block != 0).then_some(block)
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        let (block, len) = self.block.get();
        if block != 0 {
            // SAFETY: allocated in `reserve` with this layout.
            unsafe { System.dealloc(block as *mut u8, Layout::from_size_align(len, 4096).unwrap()) };
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Op {
    Alloc { size: u16, align_log: u8 },
    Free { which: u8 },
    Realloc { which: u8, size: u16 },
}

#[derive(Debug, Arbitrary)]
struct Input {
    frozen: bool,
    region_pages: u8,
    ops: Vec<Op>,
}

fuzz_target!(|input: Input| {
    let region = (usize::from(input.region_pages % 8) + 1) * 4096;
    let heap = SnapshotHeap::new(System, Memory { block: Cell::new((0, 0)) }, region);
    if input.frozen {
        heap.freeze();
    }
    let mut live: Vec<(*mut u8, Layout, u8)> = Vec::new();
    let mut fill = 0u8;
    for op in input.ops {
        match op {
            Op::Alloc { size, align_log } => {
                let l = Layout::from_size_align(usize::from(size).max(1), 1 << (align_log % 8)).unwrap();
                let p = unsafe { heap.alloc(l) };
                assert!(!p.is_null());
                assert!((p as usize).is_multiple_of(l.align()));
                fill = fill.wrapping_add(1);
                unsafe { p.write_bytes(fill, l.size()) };
                live.push((p, l, fill));
            }
            Op::Free { which } if !live.is_empty() => {
                let (p, l, _) = live.swap_remove(usize::from(which) % live.len());
                unsafe { heap.dealloc(p, l) };
            }
            Op::Realloc { which, size } if !live.is_empty() => {
                let i = usize::from(which) % live.len();
                let (p, l, f) = live[i];
                let size = usize::from(size).max(1);
                let q = unsafe { heap.realloc(p, l, size) };
                assert!(!q.is_null());
                assert!((q as usize).is_multiple_of(l.align()));
                let kept = unsafe { std::slice::from_raw_parts(q, l.size().min(size)) };
                assert!(kept.iter().all(|b| *b == f), "contents lost in realloc");
                unsafe { q.write_bytes(f, size) };
                live[i] = (q, Layout::from_size_align(size, l.align()).unwrap(), f);
            }
            _ => {}
        }
        let mut spans: Vec<(usize, usize)> =
            live.iter().map(|(p, l, _)| (*p as usize, *p as usize + l.size())).collect();
        spans.sort_unstable();
        for pair in spans.windows(2) {
            assert!(pair[0].1 <= pair[1].0, "blocks overlap: {pair:?}");
        }
    }
    for (p, l, f) in &live {
        let bytes = unsafe { std::slice::from_raw_parts(*p, l.size()) };
        assert!(bytes.iter().all(|b| b == f), "a block was overwritten");
    }
    for (p, l, _) in live {
        unsafe { heap.dealloc(p, l) };
    }
});
