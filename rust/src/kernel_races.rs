//! The race kernels of docs/contract.md §3.3 (umtx, pmap_inval, the context switch,
//! copy-on-write, procfs, the fault's revalidation).
//! A child of `kernel.rs`: each a named difference from `FIXED`, with its story.

use super::*;

/// DragonFly 369ba561 (2011), "Fix a small race in the umtx code": the commit message calls it
/// "a potential vm_token race" — umtx_sleep compared the word, then registered its copy-on-write
/// action on the page, and a COW in between was missed; the fix re-reads the word through the
/// held page after registering. Before 369ba561 the real sleeper was *already* on the sleep
/// queue (`tsleep_interlock`) before that second compare, so a store plus an `umtx_wakeup` in the
/// window was not lost in the real code: the model's store-and-wakeup witness (litmus 16) is the
/// model's, where registering and blocking are one step; the COW/discard/mprotect witnesses are
/// the 2011 bug's shape. (`fixed` re-checks more than the word: that the held page is still
/// mapped there and writable, SPEC §3.2.) This variant has no re-check.
pub const UMTX_NO_RECHECK: Kernel = Kernel {
    name: "umtx-no-recheck",
    story: "DragonFly BSD before 369ba561 (2011), 'Fix a small race in the umtx code' ('a \
            potential vm_token race'): umtx_sleep does not re-check after registering its COW \
            event, so a COW, discard or mprotect between the compare and the registration is \
            missed: lost wakeup. The store-plus-wakeup witness is the model's only: the real \
            sleeper was already queued by tsleep_interlock before the second compare.",
    umtx_recheck: false,
    zoo_commits: "DragonFly 369ba561",
    zoo_interleaved: true,
    zoo_expect_found: true,
    ..FIXED
};

/// DragonFly before 10192bae (2008), both halves: umtx_sleep faulted its page for READ only
/// (`git show 10192bae^:sys/kern/kern_umtx.c`), so it forced no copy-on-write and gave no
/// `EFAULT`: on a page whose prot lacks write it compares and sleeps; after a fork the sleeper is
/// keyed on the frame the process still shares with its child, and the copy-on-write of the
/// process's next store (which has no umtx event) moves the process to a new frame that
/// `umtx_wakeup` finds: lost wakeup with plain lines only.
pub const PRE_10192BAE: Kernel = Kernel {
    name: "pre-10192bae",
    story: "DragonFly BSD before 10192bae (2008): umtx_sleep faults the page for READ only (no \
            forced copy-on-write, so no EFAULT: a read-only page is compared and slept on) and \
            the COW path has no umtx event; a sleeper keyed on a frame shared after fork is lost \
            when its own process's store copies the page.",
    umtx_fault_write: false,
    cow_event: false,
    zoo_commits: "DragonFly 10192bae (both halves)",
    zoo_expect_found: true,
    ..FIXED
};

/// OpenBSD 9f1181d59de3 (amd64 pmap_activate/cpu_switchto), "Don't clear the cpu's bit in the
/// old pmap's pm_cpus until we're off the old one": the switch code cleared this CPU's bit in
/// the old pmap and set it in the new one on every switch, also between two threads of one
/// process, where %cr3 is not reloaded and the TLB keeps its entries. A shootdown initiated
/// between the two halves sees the bit clear and skips this CPU, which then runs the process on
/// with the stale entry.
pub const SWITCH_CLEAR_EARLY: Kernel = Kernel {
    name: "switch-clear-early",
    story: "OpenBSD 9f1181d59de3: leaving always clears the CPU's pm_cpus bit and entering sets \
            it again, also between threads of one process (no %cr3 reload, TLB kept); a \
            shootdown between the halves skips the CPU, whose TLB keeps the old entry.",
    switch_keeps_same_space: false,
    zoo_commits: "OpenBSD 9f1181d59de3",
    zoo_interleaved: true,
    zoo_expect_found: true,
    ..FIXED
};

/// OpenBSD 43687ba57c7d (uvm_fault), FreeBSD r336294 (D16261, vm_fault's COW), the amd64
/// pmap_enter change rS335784 (D16005) and the earlier workaround r329254 (D14347), the NetBSD
/// bug of golang/go#34988: the copy-on-write fault installed the new writable PTE before the old
/// frame's TLB entries on other CPUs were shot down. Thread B writes the new frame while thread C
/// still reads the old one through its TLB.
pub const COW_MAKE_BEFORE_BREAK: Kernel = Kernel {
    name: "cow-make-before-break",
    story: "OpenBSD 43687ba57c7d, FreeBSD r336294 (D16261) with amd64 rS335784 (D16005) and the \
            workaround r329254, NetBSD (golang/go#34988): the COW \
            fault enters the new writable PTE before the old frame's mappings are removed and \
            shot down; another thread stores to the new frame while a third still reads the \
            old one through its TLB.",
    cow_break_before_make: false,
    zoo_commits: "OpenBSD 43687ba57c7d; FreeBSD r336294, rS335784, r329254",
    zoo_interleaved: true,
    zoo_expect_found: true,
    ..FIXED
};

/// The batched-flush class of Linux, in the shape its fixes share: a PTE change drops the PTE
/// lock before the flush it owes is acknowledged (the flush is batched for later), while it
/// still waits for its own IPIs before it returns. A *second* operation on the same PTE then
/// finds it already cleared or read-only, has nothing to change, and returns without any
/// shootdown while a CPU still caches the old entry (pmap_protect and pmap_remove skip a PTE
/// that needs no change). 3ea277194daa ("mm, mprotect: flush TLB if potentially racing with a
/// parallel reclaim leaving stale TLB entries"): mprotect met PTEs that reclaim had unmapped
/// with its flush still batched; 60bae7370896 (migration vs MADV_DONTNEED) and the 2017
/// "mm: fix MADV_[FREE|DONTNEED] TLB flush miss problem" are the same shape with other pairs.
/// In the model this is `fixed` without the PTE lock held across `ipi_wait` (SPEC §3.2
/// *PTE lock*, DragonFly's pv entry across `pmap_inval_interlock`…`deinterlock`), which makes
/// the second operation wait. (mremap's CVE-2018-18281 is a later variant of its own.)
pub const DEFERRED_FLUSH: Kernel = Kernel {
    name: "deferred-flush",
    story: "Linux batched-flush class (3ea277194daa mprotect vs reclaim, 60bae7370896 \
            migration vs MADV_DONTNEED, 2017 MADV_DONTNEED flush miss): a PTE change drops the \
            PTE lock before its ipi_wait (it still waits for its own IPIs); a second operation \
            finds the PTE already changed and returns without a shootdown while another CPU \
            still caches the old entry.",
    pte_lock: false,
    zoo_commits: "Linux 3ea277194daa, 60bae7370896 (the batched-flush miss)",
    zoo_interleaved: true,
    zoo_expect_found: true,
    ..FIXED
};

/// The real tree at 385c96e4: procfs_rwmem() (procfs_mem.c) faulted the page with
/// vm_fault_page(), wrote through a kernel mapping and released it with vm_page_unhold(): the
/// page was *held*, never busy, during the copy, so fork and COW faults did not wait for it. A
/// fork and a store between the fault and the copy leave the debugger writing a frame that the
/// target no longer maps. DragonFly closed it in dc039ae0 (2017-01-28): vm_fault_page returns
/// the page busied for a write. Linux analogue: 70e806e4e645 (early COW of pinned pages at fork).
pub const PROCFS_HOLD_ONLY: Kernel = Kernel {
    name: "procfs-hold-only",
    story: "The real DragonFly tree at 385c96e4: procfs_rwmem holds the page with vm_page_hold \
            only during the write, so a fork and a COW store between the fault and the write \
            leave the write in a frame the process no longer maps (lost write). Closed by \
            DragonFly dc039ae0 (2017-01-28): vm_fault_page returns the page busied for a \
            write. Linux analogue: 70e806e4e645.",
    busy_through_access: false,
    zoo_commits: "DragonFly 385c96e4 tree (procfs_mem.c), fixed by dc039ae0; Linux 70e806e4e645",
    zoo_interleaved: true,
    zoo_expect_found: true,
    ..FIXED
};

/// A mutant of the BSD map-generation check: DragonFly's vm_fault.c at 385c96e4 re-checks
/// `fs->map->timestamp != fs->map_generation` after it may have slept and returns
/// `KERN_TRY_AGAIN` (FreeBSD's `map_generation` does the same). Without it a fault resumed after
/// a yield point installs or uses the page (and protection) it found before an mprotect or a
/// discard in between. Not FreeBSD r335171: that commit fixed swap read-behind pages put in the
/// wrong object, and its message says the map-generation check was there and worked.
pub const NO_REVALIDATE: Kernel = Kernel {
    name: "no-revalidate",
    story: "A mutant of the map-generation check (DragonFly vm_fault.c at 385c96e4: \
            map->timestamp != map_generation -> KERN_TRY_AGAIN; FreeBSD map_generation): a \
            fault resumed after a yield point does not revalidate; it installs the page (and \
            the protection) it found before an mprotect or discard in between.",
    fault_revalidate: false,
    zoo_commits: "mutant of DragonFly vm_fault.c KERN_TRY_AGAIN (385c96e4 tree)",
    zoo_interleaved: true,
    zoo_expect_found: true,
    ..FIXED
};

/// Linux CVE-2016-5195 (Dirty COW), fixed by 19be0eaffa3a (first attempt 4ceb5db9757a, 2005):
/// get_user_pages() with FOLL_FORCE|FOLL_WRITE faults the page (copying on write), then retries
/// the lookup with FOLL_WRITE dropped; a madvise(MADV_DONTNEED) in between zaps the copy, the
/// read lookup finds the page-cache page and the forced write lands in the file.
pub const DIRTY_COW: Kernel = Kernel {
    name: "dirty-cow",
    story: "Linux CVE-2016-5195 (Dirty COW), fix 19be0eaffa3a: a forced write faults (copying \
            on write), then looks the page up again without write intent; a madvise dontneed \
            at that point makes the lookup return the file's own frame and the debugger write \
            corrupts the file.",
    retry_keeps_write: false,
    zoo_commits: "Linux 19be0eaffa3a (CVE-2016-5195); 4ceb5db9757a",
    zoo_interleaved: true,
    zoo_expect_found: true,
    ..FIXED
};
