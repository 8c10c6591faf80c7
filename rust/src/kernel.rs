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
/// before a page is laundered), not from fork or mprotect. Written before the model had a
/// pageout, this variant puts the wrong VA on the write-protect path it had, `pmap_protect`
/// (fork, mprotect): the page made read-only stays writable in other CPUs' TLBs. The bug on its
/// own path is `clearbit-wrong-va` (kernel_vm.rs, §3.4).
pub const PROTECT_WRONG_VA: Kernel = Kernel {
    name: "protect-wrong-va",
    story: "Analogue of DragonFly BSD 3cb318dc (2011): there pmap_clearbit(PG_RW) invalidated \
            an uninitialized VA on the page-cleaning path (vm_page_protect(m, VM_PROT_READ)); \
            this variant (older than the model's pageout) puts the wrong VA on the pmap_protect \
            path (fork, mprotect), so the page made read-only stays writable in other CPUs' TLBs; \
            clearbit-wrong-va is the bug on its own path.",
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

/// The race kernels of §3.3 (their own file).
#[path = "kernel_races.rs"]
mod races;
pub use races::*;

/// The kernels of §3.4 and §3.5 (their own file).
#[path = "kernel_vm.rs"]
mod vm;
pub use vm::*;

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
