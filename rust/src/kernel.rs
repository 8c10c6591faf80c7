//! Kernel variants. Each is `FIXED` with one named difference, and its story.
//!
//! The fault and pmap paths consult these knobs at exactly one place each, so a variant reads
//! as "the kernel, except here".

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kernel {
    pub name: &'static str,
    /// One paragraph: what the variant is and where it comes from.
    pub story: &'static str,
    /// `vm_fault_page()` ends with `pmap_enter(target pmap, va, m, fs.prot)` from whatever CPU
    /// it runs on (before 385c96e4).
    pub vm_fault_page_pmap_enter: bool,
    /// The copy-on-write *copy* path (not rename) removes the old frame from every pmap
    /// (`vm_page_protect(m, VM_PROT_NONE)` → `pmap_remove_all`), with shootdowns (385c96e4
    /// hunk 2).
    pub cow_copy_remove_all: bool,
    /// The copy-on-write copy wakes umtx sleepers keyed on the old frame
    /// (`vm_page_event(m, VMEVENT_COW)`, DragonFly 10192bae).
    pub cow_event: bool,
    /// fork write-protects the parent's PTEs of private entries (vmspace_fork → pmap_protect).
    pub fork_write_protect: bool,
    /// pmap_inval IPIs the other CPUs in `pm_active` (not only the local invalidation).
    pub shootdown_remote: bool,
    /// The write-protect path invalidates the page it protected (not its neighbour).
    pub protect_right_va: bool,
    /// On `tagged` hardware a CPU keeps its bit in the old pmap's `pm_active` when it switches
    /// away without flushing, so later shootdowns still reach the entries it may cache.
    pub pm_active_until_flush: bool,
    /// The page vm_fault_page returns stays busy until the caller's access through it is
    /// done (else only held, as DragonFly's procfs_mem.c: `procfs-hold-only`).
    pub busy_through_access: bool,
    /// fork waits for busy pages of the entries it makes copy-on-write.
    pub fork_waits_busy: bool,
    /// umtx_sleep, after registering, re-checks that the held page is still the page mapped
    /// there and still writable (else starts over), then re-reads the word (369ba561+).
    pub umtx_recheck: bool,
    /// A fault resumed after a yield point checks that the map generation and the shadow
    /// chain still give the page it found, else starts over from the lookup.
    pub fault_revalidate: bool,
    /// Locks of SPEC §3.2, each a knob for `necessity` (off only in its variants there): a
    /// fault or fork waits for a busy page (`vm_page_sleep_busy`),
    pub busy_lock: bool,
    /// a fault's lookup waits for the map lock of fork/mprotect/madvise/exit (`vm_map_lock`),
    pub map_lock: bool,
    /// a pmap operation waits for the PTE lock of a change not yet past its ipi_wait (pv entry
    /// across `pmap_inval_interlock`),
    pub pte_lock: bool,
    /// exit waits for the process's other threads to leave the kernel (`killalllwps`); not
    /// for another process's procfs access (SPEC §3.2 *Exit*).
    pub exit_waits_siblings: bool,
    /// umtx_sleep faults its page with VM_PROT_READ|VM_PROT_WRITE, forcing the copy-on-write
    /// before it keys the sleeper on the frame (DragonFly 10192bae); else READ only.
    pub umtx_fault_write: bool,
    /// A context switch clears and sets this CPU's `pm_active` bit only when the address space
    /// changes (OpenBSD 9f1181d59de3); else every switch leaves and re-enters, also between
    /// threads of one process.
    pub switch_keeps_same_space: bool,
    /// The copy-on-write fault removes the old frame's mappings (with shootdowns) before it
    /// enters the new PTE; else it enters first (make before break, OpenBSD 43687ba57c7d,
    /// FreeBSD r336294).
    pub cow_break_before_make: bool,
    /// The forced write's retry (vm_fault_page after a COW) looks the page up with write
    /// intent; else it drops it, as get_user_pages' FOLL_WRITE drop (Dirty COW).
    pub retry_keeps_write: bool,
    /// SPEC §3.4: `pmap_protect` and a `pmap_enter` over a valid PTE move the PTE's modified
    /// bit to the page (`vm_page_dirty`); else they drop it (FreeBSD PR 61852, DragonFly
    /// 52bb73bc).
    pub protect_keeps_modified: bool,
    /// `pmap_clearbit(PG_RW)` (msync's write-protect) invalidates the page's own va on the
    /// other CPUs (DragonFly 3cb318dc: an uninitialized one).
    pub clearbit_right_va: bool,
    /// mremap enters the moved PTE only after the old va's shootdown is acknowledged, holding
    /// the PTE lock and the frame busy until then (Linux eb66ae030829, CVE-2018-18281).
    pub mremap_flush_first: bool,
    /// munmap and pageout free a frame only after their `ipi_wait` (mmu_gather; BSD's
    /// pmap_remove + pmap_inval before vm_page_free).
    pub free_after_flush: bool,
    /// SPEC §3.5, the rules of the tree at 385c96e4 (`TREE_385C96E4`) where it differs from
    /// `fixed`. The shootdown stops its targets before the PTE changes and invalidates them all
    /// before they run again (DragonFly 2011 `pmap_inval_interlock`), so no CPU runs user code
    /// through the old entry while the change is in flight; else the targets keep running with
    /// their invalidation pending until `ipi` or the initiator's `ipi_wait` (FreeBSD, Linux).
    pub inval_interlocked: bool,
    /// `pmap_clearbit(PG_RW)`'s local invalidation (when the caller is in `pm_active`) names
    /// the page's own va; else another (DragonFly's `pmap_inval_info` has one `pir_va` for the
    /// IPIs and the local invalidation, and in the tree it is uninitialized for both).
    pub clearbit_local_right_va: bool,
    /// With `umtx_recheck`: the re-check also asks that the held page is still the page
    /// mapped there and writable; else it re-reads only the word through the held page
    /// (DragonFly 369ba561 as in the tree).
    pub umtx_recheck_mapping: bool,
    /// A forced write whose fault copied looks the page up again (`retry`, get_user_pages'
    /// second lookup); else vm_fault_page's one lookup is all (DragonFly's procfs_rwmem).
    pub procfs_retry: bool,
    /// A fault holds its map's lock shared from its lookup until its PTE is entered (or
    /// `vm_fault_page` returns the page), so fork, mprotect, madvise, munmap, mmap, mremap and
    /// exit of that map wait for it (DragonFly `vm_map_lookup` → `vm_map_lock_read`,
    /// `vm_map.c:3751-3752`, released by `unlock_things`, `vm_fault.c:549/773`); else the fault
    /// runs unlocked after its lookup and revalidates (`fault_revalidate`).
    pub fault_map_read_lock: bool,
    /// `pmap_protect` shoots down every present PTE of its range, also one already read-only;
    /// else it skips a PTE that needs no change (FreeBSD, Linux, the model's `fixed`).
    pub protect_invalidates_unchanged: bool,
    /// The commit(s) of the real bug, for the zoo table.
    pub zoo_commits: &'static str,
    /// Whether the shortest witness needs section 3.2 lines (`until`/`resume`/`ipi`).
    pub zoo_interleaved: bool,
    /// Hardware the variant is judged on in the zoo, and whether the fuzzer must find it.
    pub zoo_hw: &'static str,
    pub zoo_expect_found: bool,
    /// The expected verdict is what the search found, not written in advance (SPEC §3.5).
    pub zoo_by_search: bool,
}

/// DragonFly after 385c96e4: `vm_fault_page()` returns a held page and never touches the
/// target pmap; a copy-on-write copy unmaps the old frame everywhere, so no pmap keeps a
/// translation of the page that the kernel just replaced behind its back.
pub const FIXED: Kernel = Kernel {
    name: "fixed",
    story: "DragonFly BSD after 385c96e4 (2011): vm_fault_page() does not call pmap_enter(); \
            a copy-on-write copy removes the old frame from every pmap with shootdowns.",
    vm_fault_page_pmap_enter: false,
    cow_copy_remove_all: true,
    cow_event: true,
    fork_write_protect: true,
    shootdown_remote: true,
    protect_right_va: true,
    pm_active_until_flush: false,
    busy_through_access: true,
    fork_waits_busy: true,
    umtx_recheck: true,
    fault_revalidate: true,
    busy_lock: true,
    map_lock: true,
    pte_lock: true,
    exit_waits_siblings: true,
    umtx_fault_write: true,
    switch_keeps_same_space: true,
    cow_break_before_make: true,
    retry_keeps_write: true,
    protect_keeps_modified: true,
    clearbit_right_va: true,
    mremap_flush_first: true,
    free_after_flush: true,
    inval_interlocked: false,
    clearbit_local_right_va: true,
    umtx_recheck_mapping: true,
    procfs_retry: true,
    fault_map_read_lock: false,
    protect_invalidates_unchanged: false,
    zoo_commits: "DragonFly 385c96e4",
    zoo_interleaved: false,
    zoo_hw: "mode=pc64",
    zoo_expect_found: false,
    zoo_by_search: false,
};

/// DragonFly before 385c96e4: `vm_fault_page()` finished with `pmap_enter()` of the page it
/// faulted, into the target's pmap, from the calling CPU (possibly foreign to that pmap), with
/// the protection the lookup produced. Under `VM_PROT_OVERRIDE_WRITE` (procfs/ptrace writes)
/// that is the entry's *max* protection, so a debugger write into read-only text leaves a
/// writable PTE behind and later user stores succeed where they must SIGSEGV.
pub const PRE_385C96E4: Kernel = Kernel {
    name: "pre-385c96e4",
    story: "DragonFly BSD before 385c96e4 (2011): vm_fault_page() calls pmap_enter() on the \
            target pmap from any CPU with the lookup's protection (max prot under \
            VM_PROT_OVERRIDE_WRITE): a debugger write leaves text writable.",
    vm_fault_page_pmap_enter: true,
    cow_copy_remove_all: false,
    zoo_commits: "DragonFly 385c96e4 (its parent d64d3805)",
    zoo_expect_found: true,
    ..FIXED
};

/// 385c96e4 hunk 1 without hunk 2: `vm_fault_page()` stops calling `pmap_enter()` but the
/// copy-on-write copy does not unmap the old frame, so a pmap keeps the old read-only COW frame
/// while procfs or umtx wrote the new copy: the process reads stale data.
pub const PARTIAL_385C96E4: Kernel = Kernel {
    name: "partial-385c96e4",
    story: "385c96e4 part 1 only: vm_fault_page() no longer calls pmap_enter(), but a \
            copy-on-write copy does not unmap the old frame: after a procfs write the target \
            still reads the old frame.",
    vm_fault_page_pmap_enter: false,
    cow_copy_remove_all: false,
    zoo_commits: "DragonFly 385c96e4 hunk 1 alone",
    zoo_expect_found: true,
    ..FIXED
};

/// One half of DragonFly 10192bae (2008): the fix made umtx_sleep fault its page for write
/// (forcing the copy-on-write before it keys the sleeper) *and* registered a copy-on-write event
/// on the page that wakes its sleepers when it is copied. This variant drops only the event
/// (the whole pre-fix kernel is `pre-10192bae`): a thread that sleeps *before* a fork stays
/// keyed on the frame that the process's next store copies away; `umtx_wakeup` finds the new
/// frame and the sleeper is lost.
pub const NO_COW_EVENT: Kernel = Kernel {
    name: "no-cow-event",
    story: "One half of DragonFly BSD 10192bae (2008), the COW event: copy-on-write does not \
            wake the umtx sleepers of the copied page, while umtx_sleep still forces the COW \
            (the other half; both missing is pre-10192bae). A sleeper that slept before a fork \
            stays keyed on the frame a later store copies away: lost wakeup.",
    cow_event: false,
    zoo_commits: "DragonFly 10192bae (half: the COW event)",
    zoo_expect_found: true,
    ..FIXED
};

/// fork must write-protect the parent's mappings of every page it makes copy-on-write;
/// otherwise the parent keeps storing through its old writable PTEs into frames the child
/// still shares, and the child sees the parent's post-fork writes. (The classic COW-setup
/// omission; DragonFly's vmspace_fork does `pmap_protect()` for exactly this.)
pub const FORK_NO_PROTECT: Kernel = Kernel {
    name: "fork-no-protect",
    story: "fork marks private entries copy-on-write but leaves the parent's PTEs writable: \
            the parent's later stores land in frames the child still shares.",
    fork_write_protect: false,
    zoo_commits: "none (the classic omission vmspace_fork's pmap_protect prevents)",
    zoo_expect_found: true,
    ..FIXED
};

/// A shootdown that forgets the IPI: the initiator invalidates its own TLB but not the
/// other CPUs in `pm_active`, so a thread on another CPU keeps a stale (e.g. writable)
/// translation after fork, mprotect or a COW unmap.
pub const SHOOTDOWN_NO_IPI: Kernel = Kernel {
    name: "shootdown-no-ipi",
    story: "pmap_inval invalidates only the calling CPU and skips the IPI to the other CPUs \
            in pm_active: a remote thread keeps a stale writable TLB entry.",
    shootdown_remote: false,
    zoo_commits: "none (a shootdown without its IPI)",
    zoo_expect_found: true,
    ..FIXED
};

/// An analogue of DragonFly 3cb318dc (2011): there `pmap_clearbit(m, PG_RW)` invalidated an
/// uninitialized VA, and it is reached from page cleaning (`vm_page_protect(m, VM_PROT_READ)`
/// before a page is laundered), not from fork or mprotect. The model has no pageout, so it puts
/// the wrong VA on the write-protect path it has, `pmap_protect` (fork, mprotect): the page
/// made read-only stays writable in other CPUs' TLBs.
pub const PROTECT_WRONG_VA: Kernel = Kernel {
    name: "protect-wrong-va",
    story: "Analogue of DragonFly BSD 3cb318dc (2011): there pmap_clearbit(PG_RW) invalidated \
            an uninitialized VA on the page-cleaning path (vm_page_protect(m, VM_PROT_READ)); \
            the model has no pageout and puts the wrong VA on the pmap_protect path (fork, \
            mprotect), so the page made read-only stays writable in other CPUs' TLBs.",
    protect_right_va: false,
    zoo_commits: "DragonFly 3cb318dc (analogue: other path)",
    zoo_expect_found: true,
    ..FIXED
};

/// A kernel correct on PCID-tagged TLBs too: a CPU that switches away without flushing keeps
/// its bit in the old pmap's `pm_active` (as "may cache"), so shootdowns still reach it.
pub const FIXED_TAGGED: Kernel = Kernel {
    name: "fixed-tagged",
    story: "fixed, made correct for tagged (PCID) TLBs: a CPU keeps its pm_active bit until it \
            has flushed, so shootdowns reach every CPU that may cache the pmap's entries.",
    pm_active_until_flush: true,
    zoo_commits: "none (385c96e4 made correct for PCID)",
    zoo_hw: "mode=tagged",
    ..FIXED
};

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

pub const KERNELS: &[&Kernel] = &[
    &FIXED,
    &PRE_385C96E4,
    &PARTIAL_385C96E4,
    &NO_COW_EVENT,
    &FORK_NO_PROTECT,
    &SHOOTDOWN_NO_IPI,
    &PROTECT_WRONG_VA,
    &FIXED_TAGGED,
    &UMTX_NO_RECHECK,
    &PRE_10192BAE,
    &SWITCH_CLEAR_EARLY,
    &COW_MAKE_BEFORE_BREAK,
    &DEFERRED_FLUSH,
    &PROCFS_HOLD_ONLY,
    &NO_REVALIDATE,
    &DIRTY_COW,
    &MREMAP_FLUSH_LATE,
    &CLEARBIT_WRONG_VA,
    &PROTECT_DROPS_MODIFIED,
    &FREE_BEFORE_FLUSH,
    &TREE_385C96E4,
];

/// A kernel by name: a named one, or a variant `BASE+ACTION…-no-ACTION…` — the names
/// `necessity` gives — with safety actions switched on or off, so a kernel with a found bug
/// fixed can be searched again (`--kernel tree-385c96e4+umtx_recheck_mapping`).
pub fn by_name(name: &str) -> Option<&'static Kernel> {
    resolve(name).ok()
}

/// `by_name`, with what is wrong with a name that names no kernel. A variant's actions are put in
/// one canonical order (its name: the actions switched on, then those switched off, each sorted),
/// so two spellings of one kernel are one name; an action named twice, switched both ways, or
/// switched to what the base kernel already does is refused (it would name no new kernel).
pub fn resolve(name: &str) -> Result<&'static Kernel, String> {
    if let Some(k) = KERNELS.iter().copied().find(|k| k.name == name) {
        return Ok(k);
    }
    let unknown = || format!("unknown kernel '{name}' (valid: {}; or KERNEL+ACTION / KERNEL-no-ACTION with `pyvmfuzz necessity`'s action names)", names().join(", "));
    let Some(base) = KERNELS
        .iter()
        .copied()
        .filter(|k| name.len() > k.name.len() && name.starts_with(k.name))
        .max_by_key(|k| k.name.len())
    else {
        return Err(unknown());
    };
    let (mut on, mut off) = (Vec::new(), Vec::new());
    let mut rest = &name[base.name.len()..];
    while !rest.is_empty() {
        let (switch_on, r) = if let Some(r) = rest.strip_prefix("-no-") {
            (false, r)
        } else if let Some(r) = rest.strip_prefix('+') {
            (true, r)
        } else {
            return Err(unknown());
        };
        let end = r.find(['+', '-']).unwrap_or(r.len());
        let a = &r[..end];
        if a.is_empty() {
            return Err(format!("kernel '{name}': an empty action name after '+' or '-no-'"));
        }
        let act = crate::necessity::action(a).ok_or_else(|| {
            let valid: Vec<&str> = crate::necessity::ACTIONS.iter().map(|x| x.name).collect();
            format!("kernel '{name}': unknown safety action '{a}' (valid: {})", valid.join(", "))
        })?;
        if on.contains(&a) || off.contains(&a) {
            return Err(format!("kernel '{name}': action '{a}' is named twice"));
        }
        if (act.present)(base) == switch_on {
            let is = if switch_on { "on" } else { "off" };
            return Err(format!("kernel '{name}': '{a}' is already {is} in {}", base.name));
        }
        if switch_on { on.push(a) } else { off.push(a) }
        rest = &r[end..];
    }
    on.sort_unstable();
    off.sort_unstable();
    crate::necessity::variant(base, &off, &on)
}

pub fn names() -> Vec<&'static str> {
    KERNELS.iter().map(|k| k.name).collect()
}
