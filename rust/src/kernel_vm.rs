//! The kernels of docs/contract.md §3.4 (memory that moves, is cleaned and is freed) and §3.5 (the 385c96e4 tree as written).
//! A child of `kernel.rs`: each a named difference from `FIXED`, with its story.

use super::*;

/// Linux eb66ae030829, CVE-2018-18281 (Jann Horn): move_ptes() flushed the old range only after
/// dropping the page-table lock (the flush moved to the caller), so the moved PTE was live at the
/// new address while other CPUs still translated the old one; a concurrent truncate (which takes
/// no mmap_sem) could free the page in that window. The fix flushes before the lock is dropped.
/// In the model: mremap enters the PTE at TO at once and releases its PTE lock and the frame
/// before its `ipi_wait`; a pageout of TO then frees the frame under the stale entry.
pub const MREMAP_FLUSH_LATE: Kernel = Kernel {
    name: "mremap-flush-late",
    story: "Linux eb66ae030829 (CVE-2018-18281, Jann Horn): mremap moved the PTE and dropped the \
            page-table lock before flushing the old address; the page daemon (like the real \
            bug's ftruncate, no map lock) frees the frame while another CPU still translates \
            the old address to it, and reads or writes the frame's next owner.",
    mremap_flush_first: false,
    zoo_commits: "Linux eb66ae030829 (CVE-2018-18281)",
    zoo_interleaved: true,
    zoo_expect_found: true,
    ..FIXED
};

/// DragonFly 3cb318dc (2011-11-20, "Fix incorrect VA on interlock"): pmap_clearbit() called
/// pmap_inval_interlock() with a VA not yet set for the pv entry it was about to change, so the
/// write-protect of page cleaning (vm_page_protect(m, VM_PROT_READ) before a page is laundered,
/// the path msync's vm_object_page_clean takes) shot down the wrong page on the other CPUs. A
/// stale writable, dirty entry survives: stores through it set no modified bit, and the cleaned
/// page is later freed or left clean without them.
pub const CLEARBIT_WRONG_VA: Kernel = Kernel {
    name: "clearbit-wrong-va",
    story: "DragonFly BSD 3cb318dc (2011): pmap_clearbit(PG_RW), the write-protect of page \
            cleaning (msync), invalidates another VA than the page's on the other CPUs; a stale \
            writable dirty entry survives and its stores are lost when the clean page is paged \
            out.",
    clearbit_right_va: false,
    zoo_commits: "DragonFly 3cb318dc",
    zoo_interleaved: false,
    zoo_expect_found: true,
    ..FIXED
};

/// FreeBSD PR 61852 (5983c3e7) and DragonFly 52bb73bc (2011-11-18, "Revamp pmap_enter() to fix
/// a race case which could allow PG_M to get lost. Any protection or wiring change fully
/// removes the pte before loading a revised pte."): a PTE rewritten by pmap_protect or by
/// pmap_enter over a valid mapping lost its modified bit instead of passing it to the page, so
/// the page looked clean and the page daemon freed it without writing it. In the real bug the
/// bit was lost to a race (the hardware setting PG_M while the PTE was read and rewritten);
/// the model drops it outright, so its witness needs no second CPU.
pub const PROTECT_DROPS_MODIFIED: Kernel = Kernel {
    name: "protect-drops-modified",
    story: "FreeBSD PR 61852 (5983c3e7), DragonFly BSD 52bb73bc (2011, 'a race case which could \
            allow PG_M to get lost'): pmap_protect and pmap_enter over a valid PTE drop its \
            modified bit instead of moving it to the page; a later pageout frees a dirty page \
            without writing it and the next fault reads old data. The real loss was a race with \
            the hardware's PG_M update; the model drops the bit outright.",
    protect_keeps_modified: false,
    zoo_commits: "FreeBSD 5983c3e7 (PR 61852); DragonFly 52bb73bc",
    zoo_interleaved: false,
    zoo_expect_found: true,
    ..FIXED
};

/// The ordering Linux's mmu_gather (asm-generic/tlb.h: pages are freed in tlb_finish_mmu after
/// the flush) and BSD's pmap_remove + pmap_inval before vm_page_free exist for; Linux's 2018
/// fixes of missing TLB shootdowns before page-table pages were freed are the same shape. Here
/// munmap and pageout free the frame as soon as its PTEs are cleared, before their `ipi_wait`.
pub const FREE_BEFORE_FLUSH: Kernel = Kernel {
    name: "free-before-flush",
    story: "The ordering mmu_gather (Linux) and pmap_remove + pmap_inval before vm_page_free \
            (BSD) exist for: munmap and pageout free the frame as soon as the PTE is cleared, \
            before the shootdown is acknowledged; a CPU with the old entry reads or writes a \
            freed, reused frame.",
    free_after_flush: false,
    zoo_commits: "Linux mmu_gather ordering (asm-generic/tlb.h); BSD pmap_remove before vm_page_free",
    zoo_interleaved: true,
    zoo_expect_found: true,
    ..FIXED
};

/// SPEC §3.5: the DragonFly tree *at* 385c96e4 as its code is written, rule by rule, modeled
/// from that tree alone (`git show 385c96e4:sys/...`; line numbers as `nl -ba` numbers them).
/// Where it differs from `fixed`, each knob below cites the code that decides it; what the
/// model cannot express, and how it is approximated, is in docs/tree-385c96e4.md. Its
/// expected verdict was not written in advance: it is what the search found (that doc).
pub const TREE_385C96E4: Kernel = Kernel {
    name: "tree-385c96e4",
    story: "The DragonFly BSD tree at 385c96e4 (2011-11-16) as written, rule by rule: \
            interlocked shootdowns, faults under the map read lock, pages returned held not \
            busy, umtx's word-only re-check, one vm_fault_page pass per procfs access, and \
            pmap_clearbit's uninitialized va. Expected: what the search finds \
            (docs/tree-385c96e4.md).",
    // pmap_inval.c:97-127 with lwkt_ipiq.c:775-847: pmap_inval_interlock() IPIs the CPUs of
    // the pm_active snapshot and spins until each has acknowledged and stopped in
    // lwkt_cpusync_remote2(); only then is the PTE changed, and deinterlock invalidates
    // `pir_va` on them (and locally if the caller is in pm_active) before they resume.
    inval_interlocked: true,
    // vm_fault.c:761-766: the pmap_enter() in vm_fault_page() is `#if 0` (the seed's hunk 1);
    // 782, 798: the page is returned vm_page_hold()ed and vm_page_wakeup()ed — held, not
    // busy — to procfs_rwmem (procfs_mem.c:136-156, uiomove through an lwbuf, then
    // vm_page_unhold) and to umtx (kern_umtx.c:119-163).
    busy_through_access: false,
    // procfs_mem.c:136: one vm_fault_page() call per page; a KERN_TRY_AGAIN restart inside it
    // keeps the fault type (vm_fault.c:726-728). No second lookup: no `retry` point.
    procfs_retry: false,
    // kern_umtx.c:140, 143 (369ba561's compare #3): the re-checks read the word through the
    // held page (`*(int *)(lwbuf_kva(lwb) + offset) == uap->value`), never whether that page
    // is still the one mapped at the address.
    umtx_recheck_mapping: false,
    // vm_map.c:3751-3752: vm_map_lookup() takes vm_map_lock_read(); vm_fault() keeps it across
    // vm_fault_object() (the COW, vm_fault.c:486) and pmap_enter() (503) until
    // unlock_things() (549); vm_fault_page() until 773. vm_map_lock() (vm_map.h:338-344) is
    // exclusive: fork (vm_map.c:3200), mprotect (1710), munmap's vm_map_remove (2809) wait.
    fault_map_read_lock: true,
    // vmspace_fork (vm_map.c:3199-3319) sleeps on no busy page: it waits for faults only
    // through the map lock above, not for a page held by procfs/umtx or busied by the daemon.
    fork_waits_busy: false,
    // pmap.c:2937-2965: pmap_protect_callback() calls pmap_inval_interlock(info, pmap, va)
    // for every PTE pmap_scan() visits ("XXX non-optimal"), before it looks at the bits, and
    // writes only `if (pbits != cbits)`: a PTE already read-only is still shot down.
    protect_invalidates_unchanged: true,
    // pmap.c:3608, 3693-3694: pmap_clearbit(m, PG_RW) passes `save_pindex << PAGE_SHIFT` to
    // pmap_inval_interlock(), and `save_pindex` is declared but never assigned: the shootdown
    // of msync's write-protect (vm_object.c:1071, vm_pageout.c:399) names an indeterminate va
    // (the model: the next page), on the other CPUs and, through the same `pir_va`
    // (pmap_inval.c:131-139), locally.
    clearbit_right_va: false,
    clearbit_local_right_va: false,
    zoo_commits: "DragonFly 385c96e4 (the tree as written)",
    zoo_interleaved: false,
    zoo_hw: "mode=pc64",
    zoo_expect_found: true,
    zoo_by_search: true,
    ..FIXED
};
