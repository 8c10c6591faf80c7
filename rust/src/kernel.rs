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
    /// exit waits for the process's other threads and procfs users to leave the kernel
    /// (`killalllwps`, PSTALL).
    pub exit_waits_siblings: bool,
    /// Hardware the variant is judged on in the zoo, and whether the fuzzer must find it.
    pub zoo_hw: &'static str,
    pub zoo_expect_found: bool,
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
    zoo_hw: "mode=pc64",
    zoo_expect_found: false,
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
    zoo_expect_found: true,
    ..FIXED
};

/// DragonFly 10192bae (2008) fixed a umtx lost wakeup: a thread sleeps on a word (keyed by
/// the physical page), the process forks, and a write copies the page; the sleeper stays
/// keyed on the old frame while `umtx_wakeup` now finds the new one. The fix registers a
/// copy-on-write event on the page that wakes its sleepers when it is copied. Without it:
pub const NO_COW_EVENT: Kernel = Kernel {
    name: "no-cow-event",
    story: "DragonFly BSD before 10192bae (2008): copy-on-write does not wake the umtx sleepers \
            of the copied page; a sleeper keyed on the old frame is never found by umtx_wakeup \
            after fork + COW (lost wakeup).",
    cow_event: false,
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
    zoo_expect_found: true,
    ..FIXED
};

/// DragonFly 3cb318dc: `pmap_clearbit()` (the path that write-protects a page) invalidated
/// the wrong virtual address, leaving stale writable TLB entries for the page it protected.
pub const PROTECT_WRONG_VA: Kernel = Kernel {
    name: "protect-wrong-va",
    story: "DragonFly BSD 3cb318dc: the write-protect path (pmap_clearbit) invalidates the \
            wrong address, so the page it made read-only stays writable in TLBs.",
    protect_right_va: false,
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
    zoo_hw: "mode=tagged",
    ..FIXED
};

/// OpenBSD amd64 `pm_cpus`: a CPU's bit was cleared when it switched away while its TLB could
/// still hold the old pmap's entries, so a later initiator skipped its IPI. On tagged TLBs
/// that is exactly `fixed-tagged` with the early clear.
pub const SWITCH_CLEAR_EARLY: Kernel = Kernel {
    name: "switch-clear-early",
    story: "OpenBSD amd64 pm_cpus: the CPU's bit is cleared at switch-out while its tagged TLB \
            still holds the old pmap's entries, so a later shootdown skips it.",
    pm_active_until_flush: false,
    zoo_hw: "mode=tagged",
    zoo_expect_found: true,
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
    &SWITCH_CLEAR_EARLY,
];

pub fn by_name(name: &str) -> Option<&'static Kernel> {
    KERNELS.iter().copied().find(|k| k.name == name)
}

pub fn names() -> Vec<&'static str> {
    KERNELS.iter().map(|k| k.name).collect()
}
