//! Necessity analysis (SPEC §5 `necessity`): each safety action of a kernel is a knob of
//! `Kernel`; switching one off gives a variant that `explore` and a short random search try
//! to break. An action is *necessary* on a hardware model when its variant has a violation
//! there (the shortest found is its witness).

use crate::codec;
use crate::exec::{self, Source};
use crate::hw::{Hw, HwSpec};
use crate::judge::Violation;
use crate::kernel::Kernel;
use crate::program::{Program, Step};
use std::collections::HashMap;
use std::sync::Mutex;

/// A safety action: its knob, the DragonFly code it stands for, and how to switch it off.
pub struct Action {
    pub name: &'static str,
    pub function: &'static str,
    pub what: &'static str,
    /// Whether `k` performs the action.
    pub present: fn(&Kernel) -> bool,
    /// `k` without the action.
    pub off: fn(&mut Kernel),
    /// `k` with the action (the inverse of `off`).
    pub on: fn(&mut Kernel),
}

pub const ACTIONS: &[Action] = &[
    Action {
        name: "vm_fault_page_no_pmap_enter",
        function: "vm_fault_page() (vm_fault.c), 385c96e4 hunk 1",
        what: "vm_fault_page returns the held page without pmap_enter() into the target pmap",
        present: |k| !k.vm_fault_page_pmap_enter,
        off: |k| k.vm_fault_page_pmap_enter = true,
        on: |k| k.vm_fault_page_pmap_enter = false,
    },
    Action {
        name: "cow_copy_remove_all",
        function: "vm_fault_object() COW copy: vm_page_protect(VM_PROT_NONE) -> pmap_remove_all() (vm_fault.c), 385c96e4 hunk 2",
        what: "a copy-on-write copy unmaps the old frame from every pmap, with shootdowns",
        present: |k| k.cow_copy_remove_all,
        off: |k| k.cow_copy_remove_all = false,
        on: |k| k.cow_copy_remove_all = true,
    },
    Action {
        name: "cow_event",
        function: "vm_page_event(m, VMEVENT_COW) in vm_fault_object() (vm_fault.c), 10192bae",
        what: "a copy-on-write copy wakes the umtx sleepers keyed on the old frame",
        present: |k| k.cow_event,
        off: |k| k.cow_event = false,
        on: |k| k.cow_event = true,
    },
    Action {
        name: "fork_write_protect",
        function: "vmspace_fork() -> vm_map_copy_entry() -> pmap_protect() (vm_map.c)",
        what: "fork write-protects the parent's PTEs of private entries",
        present: |k| k.fork_write_protect,
        off: |k| k.fork_write_protect = false,
        on: |k| k.fork_write_protect = true,
    },
    Action {
        name: "shootdown_remote",
        function: "pmap_inval_interlock()/smp_invltlb(): the IPI to the other CPUs in pm_active (pmap_inval.c)",
        what: "a PTE change invalidates the other CPUs in pm_active, not only the caller",
        present: |k| k.shootdown_remote,
        off: |k| k.shootdown_remote = false,
        on: |k| k.shootdown_remote = true,
    },
    Action {
        name: "protect_right_va",
        function: "pmap_clearbit()/pmap_protect() invalidation of the page it changed (pmap.c), 3cb318dc",
        what: "the write-protect path invalidates the address it protected",
        present: |k| k.protect_right_va,
        off: |k| k.protect_right_va = false,
        on: |k| k.protect_right_va = true,
    },
    Action {
        name: "pm_active_until_flush",
        function: "cpu_switch()/pmap_setlwpvm(): pm_active bookkeeping (swtch.s, pmap.c; OpenBSD pm_cpus 9f1181d59de3)",
        what: "on tagged TLBs a CPU keeps its pm_active bit until it has flushed",
        present: |k| k.pm_active_until_flush,
        off: |k| k.pm_active_until_flush = false,
        on: |k| k.pm_active_until_flush = true,
    },
    Action {
        name: "busy_through_access",
        function: "procfs_rwmem() (procfs_mem.c): the page stays busy across the access (DragonFly only vm_page_hold()s it)",
        what: "the page vm_fault_page returns stays busy until the caller's access is done",
        present: |k| k.busy_through_access,
        off: |k| k.busy_through_access = false,
        on: |k| k.busy_through_access = true,
    },
    Action {
        name: "fork_waits_busy",
        function: "vmspace_fork() -> vm_page_sleep_busy() (vm_map.c, vm_page.c)",
        what: "fork waits for busy pages of the entries it makes copy-on-write",
        present: |k| k.fork_waits_busy,
        off: |k| k.fork_waits_busy = false,
        on: |k| k.fork_waits_busy = true,
    },
    Action {
        name: "umtx_recheck",
        function: "sys_umtx_sleep() re-check after tsleep_interlock() (kern_umtx.c), 369ba561",
        what: "umtx_sleep re-checks the held page is still mapped and writable after registering",
        present: |k| k.umtx_recheck,
        off: |k| k.umtx_recheck = false,
        on: |k| k.umtx_recheck = true,
    },
    Action {
        name: "fault_revalidate",
        function: "vm_fault(): KERN_TRY_AGAIN / map generation check after a sleep (vm_fault.c)",
        what: "a fault resumed after a yield point revalidates the map and shadow chain",
        present: |k| k.fault_revalidate,
        off: |k| k.fault_revalidate = false,
        on: |k| k.fault_revalidate = true,
    },
    Action {
        name: "busy_lock",
        function: "vm_page_sleep_busy() on a PG_BUSY page in vm_fault_object()/vmspace_fork() (vm_page.c)",
        what: "a fault or fork waits for a page another operation keeps busy",
        present: |k| k.busy_lock,
        off: |k| k.busy_lock = false,
        on: |k| k.busy_lock = true,
    },
    Action {
        name: "map_lock",
        function: "vm_map_lock() across pmap_protect()/pmap_remove() in vm_map_protect()/vm_map_madvise()/vmspace_fork() (vm_map.c)",
        what: "a fault's lookup waits for the map lock of fork, mprotect, madvise and exit",
        present: |k| k.map_lock,
        off: |k| k.map_lock = false,
        on: |k| k.map_lock = true,
    },
    Action {
        name: "pte_lock",
        function: "pv entry / pte held across pmap_inval_interlock()..pmap_inval_deinterlock() (pmap.c, pmap_inval.c)",
        what: "a pmap operation waits for a PTE change not yet past its ipi_wait",
        present: |k| k.pte_lock,
        off: |k| k.pte_lock = false,
        on: |k| k.pte_lock = true,
    },
    Action {
        name: "exit_waits_siblings",
        function: "exit1() -> killalllwps() (kern_exit.c)",
        what: "exit waits for the process's other threads to leave the kernel (not for another process's procfs access)",
        present: |k| k.exit_waits_siblings,
        off: |k| k.exit_waits_siblings = false,
        on: |k| k.exit_waits_siblings = true,
    },
    Action {
        name: "umtx_fault_write",
        function: "umtx_sleep(): vm_fault_page(VM_PROT_READ|VM_PROT_WRITE) (kern_umtx.c), 10192bae",
        what: "umtx_sleep faults its page for write, forcing the copy-on-write before it keys the sleeper",
        present: |k| k.umtx_fault_write,
        off: |k| k.umtx_fault_write = false,
        on: |k| k.umtx_fault_write = true,
    },
    Action {
        name: "switch_keeps_same_space",
        function: "cpu_switchto()/pmap_activate(): pm_active bits touched only when the space changes (OpenBSD 9f1181d59de3)",
        what: "a switch between threads of one process leaves the CPU's pm_active bit set",
        present: |k| k.switch_keeps_same_space,
        off: |k| k.switch_keeps_same_space = false,
        on: |k| k.switch_keeps_same_space = true,
    },
    Action {
        name: "cow_break_before_make",
        function: "vm_fault COW: pmap_remove_all() of the old frame before pmap_enter() of the copy (OpenBSD 43687ba57c7d, FreeBSD r336294)",
        what: "the copy-on-write fault shoots down the old frame before it enters the new writable PTE",
        present: |k| k.cow_break_before_make,
        off: |k| k.cow_break_before_make = false,
        on: |k| k.cow_break_before_make = true,
    },
    Action {
        name: "retry_keeps_write",
        function: "the forced write's retried lookup keeps its write intent (Linux 19be0eaffa3a, Dirty COW)",
        what: "vm_fault_page's lookup after a COW still asks for write",
        present: |k| k.retry_keeps_write,
        off: |k| k.retry_keeps_write = false,
        on: |k| k.retry_keeps_write = true,
    },
    Action {
        name: "protect_keeps_modified",
        function: "pmap_protect()/pmap_enter(): a PTE's PG_M moved to the page (vm_page_dirty) before it is rewritten (pmap.c), DragonFly 52bb73bc, FreeBSD PR 61852",
        what: "rewriting a PTE (write-protect, pmap_enter over a valid one) keeps its modified bit on the page",
        present: |k| k.protect_keeps_modified,
        off: |k| k.protect_keeps_modified = false,
        on: |k| k.protect_keeps_modified = true,
    },
    Action {
        name: "clearbit_right_va",
        function: "pmap_clearbit(m, PG_RW) on page cleaning: the invalidation of the pv entry's own va (pmap.c), DragonFly 3cb318dc",
        what: "the cleaner's write-protect invalidates the address it write-protected on the other CPUs",
        present: |k| k.clearbit_right_va,
        off: |k| k.clearbit_right_va = false,
        on: |k| k.clearbit_right_va = true,
    },
    Action {
        name: "mremap_flush_first",
        function: "move_ptes(): flush the old range before the page-table lock is dropped (Linux mm/mremap.c, eb66ae030829, CVE-2018-18281)",
        what: "mremap holds the PTE lock and the frame busy across the old address's shootdown, then enters the moved PTE",
        present: |k| k.mremap_flush_first,
        off: |k| k.mremap_flush_first = false,
        on: |k| k.mremap_flush_first = true,
    },
    Action {
        name: "free_after_flush",
        function: "tlb_finish_mmu() frees pages after the flush (Linux mmu_gather, asm-generic/tlb.h); pmap_remove + pmap_inval before vm_page_free (BSD)",
        what: "munmap and pageout free a frame only after the shootdown of its last mapping is acknowledged",
        present: |k| k.free_after_flush,
        off: |k| k.free_after_flush = false,
        on: |k| k.free_after_flush = true,
    },
    Action {
        name: "inval_interlocked",
        function: "pmap_inval_interlock()/pmap_inval_deinterlock(): the targets stopped before the PTE changes (DragonFly 2011 pmap_inval.c, lwkt_ipiq.c cpusync)",
        what: "a shootdown's targets run no user code between the PTE change and their invalidation",
        present: |k| k.inval_interlocked,
        off: |k| k.inval_interlocked = false,
        on: |k| k.inval_interlocked = true,
    },
    Action {
        name: "clearbit_local_right_va",
        function: "pmap_clearbit(m, PG_RW): the caller's own invalidation of the pv entry's va (pmap.c; one pir_va in DragonFly's pmap_inval_info)",
        what: "the cleaner's write-protect invalidates the address it write-protected on its own CPU",
        present: |k| k.clearbit_local_right_va,
        off: |k| k.clearbit_local_right_va = false,
        on: |k| k.clearbit_local_right_va = true,
    },
    Action {
        name: "umtx_recheck_mapping",
        function: "umtx_sleep(): after registering, the held page is still the page mapped there and writable (kern_umtx.c; beyond 369ba561's word re-read)",
        what: "umtx_sleep's re-check starts over when its held page is no longer the mapped, writable page",
        present: |k| k.umtx_recheck_mapping,
        off: |k| k.umtx_recheck_mapping = false,
        on: |k| k.umtx_recheck_mapping = true,
    },
    Action {
        name: "procfs_retry",
        function: "a forced write looks the page up again after its copy-on-write (get_user_pages' second lookup; DragonFly's procfs_rwmem has one vm_fault_page pass)",
        what: "procfs_write's fault that copied is followed by a second lookup (`retry`)",
        present: |k| k.procfs_retry,
        off: |k| k.procfs_retry = false,
        on: |k| k.procfs_retry = true,
    },
    Action {
        name: "protect_invalidates_unchanged",
        function: "pmap_protect_callback(): pmap_inval_interlock() of every PTE in the range before its bits are read (DragonFly pmap.c, 'XXX non-optimal')",
        what: "a write-protect shoots down a PTE that is already read-only too",
        present: |k| k.protect_invalidates_unchanged,
        off: |k| k.protect_invalidates_unchanged = false,
        on: |k| k.protect_invalidates_unchanged = true,
    },
    Action {
        name: "fault_map_read_lock",
        function: "vm_map_lookup() -> vm_map_lock_read() held by vm_fault() to unlock_things() (DragonFly vm_map.c, vm_fault.c)",
        what: "a fault holds its map lock shared from its lookup to its pmap_enter (vm_fault_page: until it returns the page)",
        present: |k| k.fault_map_read_lock,
        off: |k| k.fault_map_read_lock = false,
        on: |k| k.fault_map_read_lock = true,
    },
];

pub fn action(name: &str) -> Option<&'static Action> {
    ACTIONS.iter().find(|a| a.name == name)
}

static VARIANTS: Mutex<Option<HashMap<String, &'static Kernel>>> = Mutex::new(None);

/// `base` with the named actions switched off (and, with `on`, switched on), as a kernel value
/// that lives for the process (cached by name: a handful per run).
pub fn variant(base: &'static Kernel, off: &[&str], on: &[&str]) -> Result<&'static Kernel, String> {
    if off.is_empty() && on.is_empty() {
        return Ok(base);
    }
    let mut name = base.name.to_string();
    for a in on {
        name.push('+');
        name.push_str(a);
    }
    for a in off {
        name.push_str("-no-");
        name.push_str(a);
    }
    let mut g = VARIANTS.lock().unwrap();
    let map = g.get_or_insert_with(HashMap::new);
    if let Some(k) = map.get(&name) {
        return Ok(k);
    }
    let mut k = *base;
    for a in on {
        let act = action(a).ok_or_else(|| format!("unknown safety action '{a}'"))?;
        (act.on)(&mut k);
        debug_assert!((act.present)(&k));
    }
    for a in off {
        let act = action(a).ok_or_else(|| format!("unknown safety action '{a}'"))?;
        (act.off)(&mut k);
    }
    k.name = Box::leak(name.clone().into_boxed_str());
    let k: &'static Kernel = Box::leak(Box::new(k));
    map.insert(name, k);
    Ok(k)
}

fn run_steps(kernel: &'static Kernel, hw: Hw, steps: &[Step]) -> Option<Violation> {
    let prog = Program { steps: steps.to_vec(), asserts: vec![None; steps.len()], lines: vec![0; steps.len()], ..Default::default() };
    exec::run(Source::Text(&prog), hw, kernel).ok().and_then(|r| r.violation)
}

/// Greedy one-line deletion while the program still ends in a violation of the same kind.
pub fn shrink(kernel: &'static Kernel, hw: Hw, mut steps: Vec<Step>) -> (Vec<Step>, Violation) {
    let mut v = run_steps(kernel, hw, &steps).expect("a violating program");
    steps.truncate(v.step as usize);
    loop {
        let mut changed = false;
        let mut i = 0;
        while i < steps.len() {
            let mut t = steps.clone();
            t.remove(i);
            if let Some(w) = run_steps(kernel, hw, &t) {
                if w.kind == v.kind {
                    t.truncate(w.step as usize);
                    steps = t;
                    v = w;
                    changed = true;
                    continue;
                }
            }
            i += 1;
        }
        // `until` on a line that completed anyway is noise: drop it where the verdict stays.
        for i in 0..steps.len() {
            if steps[i].until.is_some() {
                let mut t = steps.clone();
                t[i].until = None;
                if run_steps(kernel, hw, &t).is_some_and(|w| w.kind == v.kind && w.step == v.step) {
                    steps = t;
                    changed = true;
                }
            }
        }
        if !changed {
            return (steps, v);
        }
    }
}

/// Random byte programs (decoded state-aware, as the fuzzer's) for `budget_s` seconds; the
/// first violation, shrunk. Returns (witness, programs run).
pub fn random_search(kernel: &'static Kernel, hw: Hw, seed: u64, budget_s: f64, max_steps: usize) -> (Option<(Vec<Step>, Violation)>, u64) {
    let spec = HwSpec { cpus: Some(hw.cpus), tlb: Some(hw.tlb), mode: Some(hw.mode) };
    let mut x = seed.wrapping_mul(0x9e3779b97f4a7c15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let start = std::time::Instant::now();
    let mut n = 0u64;
    let mut buf = Vec::new();
    loop {
        if n.is_multiple_of(256) && start.elapsed().as_secs_f64() > budget_s {
            return (None, n);
        }
        let len = 2 + 5 * (1 + (next() % max_steps as u64) as usize);
        buf.clear();
        while buf.len() < len {
            buf.extend_from_slice(&next().to_le_bytes());
        }
        buf.truncate(len);
        n += 1;
        if exec::fuzz_verdict(&buf, kernel, spec, None).0 != 0 {
            let (_, steps) = codec::decode(&buf, spec, kernel);
            return (Some(shrink(kernel, hw, steps)), n);
        }
    }
}
