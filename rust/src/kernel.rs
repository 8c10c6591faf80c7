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
    ..FIXED
};

pub const KERNELS: &[&Kernel] = &[&FIXED, &PRE_385C96E4, &PARTIAL_385C96E4, &NO_COW_EVENT];

pub fn by_name(name: &str) -> Option<&'static Kernel> {
    KERNELS.iter().copied().find(|k| k.name == name)
}

pub fn names() -> Vec<&'static str> {
    KERNELS.iter().map(|k| k.name).collect()
}
