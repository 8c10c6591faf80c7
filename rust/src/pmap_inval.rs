//! Shootdown (pmap_inval, pc64 era): a PTE change invalidates the va on every CPU in the
//! pmap's `pm_active` other than the caller, by IPI; on the calling CPU only if the caller is
//! itself in `pm_active`. A caller outside `pm_active` is a *foreign* context: it invalidates
//! nothing locally. The IPIs are records (`Inval`, DragonFly's `pmap_inval_info`): pending at
//! each target until it takes them (`cpuN ipi`) or the initiator goes past its `ipi_wait`; a
//! plain line goes past at once.

use crate::kop::KOp;
use crate::machine::Machine;
use crate::phys::FrameId;
use crate::program::{Point, NPAGES};

/// A shootdown in progress, like DragonFly's `pmap_inval_info`: the owner changed the PTE of
/// (asid, va) and waits for the CPUs in `pending` to acknowledge. The record lives until the
/// owner has passed its `ipi_wait`; while it lives the owner holds that PTE's lock. A CPU's
/// pending-invalidation queue is the records with its bit set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inval {
    pub owner: u8,
    pub asid: u32,
    pub va: u8,
    pub pending: u8,
    /// The frame the PTE mapped before the change. Until the record is gone the mapping is
    /// still on that page's pv list, as in DragonFly, where pmap_remove_all() takes the pv
    /// entry off `m->md.pv_list` only after pmap_inval_deinterlock(): another
    /// pmap_remove_all() of the page meets it and waits (see `vm_fault` COW).
    pub frame: FrameId,
    /// The owner holds the PTE's lock until its `ipi_wait` (a kernel that releases it first
    /// — `deferred-flush`, `mremap-flush-late`'s move — leaves it false).
    pub locked: bool,
}

/// The va a buggy invalidation names instead of `va`: the next page, wrapping over the seven
/// pages of SPEC §2.1 for those (as before §3.4 added `file0` and `hole0`, so programs valid
/// before keep their traces), then `file0` -> `hole0` -> `data0`.
fn other_va(va: u8) -> u8 {
    if va < 7 {
        (va + 1) % 7
    } else {
        (va + 1) % NPAGES as u8
    }
}

impl Machine {
    /// A PTE that still maps its frame changed (write-protect, a new prot).
    pub fn pmap_inval(&mut self, cpu: usize, pid: u32, va: u8) {
        let frame = self.proc(pid).pmap.pte[va as usize].frame;
        self.pmap_inval_of(cpu, pid, va, frame);
    }

    /// A PTE that mapped `frame` changed (cleared, or now maps another frame).
    #[inline]
    pub fn pmap_inval_of(&mut self, cpu: usize, pid: u32, va: u8, frame: FrameId) {
        self.pmap_inval_named(cpu, pid, va, va, frame);
    }

    /// The shootdown: the IPIs to the other CPUs in `pm_active` name `remote_va` (the page's
    /// own, but for a kernel that names another), the caller invalidates `local_va`.
    /// `inval_interlocked` (DragonFly 2011, `pmap_inval.c:97-127`, `lwkt_ipiq.c:775-847`): the
    /// targets were stopped before the change and are invalidated with it, so nothing stays
    /// pending; the record is kept (nothing pending) because the owner still holds the PTE's
    /// pv lock until it is past its `ipi_wait`.
    fn pmap_inval_named(&mut self, cpu: usize, pid: u32, local_va: u8, remote_va: u8, frame: FrameId) {
        let mask = self.proc(pid).pmap.pm_active;
        let me = 1u8 << cpu;
        let targets = mask & !me;
        if self.kernel.shootdown_remote && targets != 0 {
            let locked = self.kernel.pte_lock;
            let mut pending = targets;
            if self.kernel.inval_interlocked {
                for c in 0..self.cpus.len() {
                    if targets & (1 << c) != 0 {
                        self.cpus[c].tlb.invalidate(pid, remote_va);
                    }
                }
                pending = 0;
            }
            self.invals.push(Inval { owner: cpu as u8, asid: pid, va: remote_va, pending, frame, locked });
        }
        if mask & me != 0 {
            self.cpus[cpu].tlb.invalidate(pid, local_va);
        }
    }

    /// The write-protect path (fork, mprotect) invalidates through here.
    pub fn pmap_invalidate_protect(&mut self, cpu: usize, pid: u32, va: u8) {
        let target = if self.kernel.protect_right_va { va } else { other_va(va) };
        self.pmap_inval(cpu, pid, target);
    }

    /// pmap_clearbit's invalidation: on the other CPUs, of the va the kernel names
    /// (`clearbit-wrong-va`: another one); locally, of the page's own — or, in the tree at
    /// 385c96e4, of the same va as the IPIs (one `pir_va`, `pmap.c:3693-3694`).
    pub fn pmap_inval_clearbit(&mut self, cpu: usize, pid: u32, va: u8) {
        let frame = self.proc(pid).pmap.pte[va as usize].frame;
        let remote = if self.kernel.clearbit_right_va { va } else { other_va(va) };
        let local = if self.kernel.clearbit_local_right_va { va } else { other_va(va) };
        self.pmap_inval_named(cpu, pid, local, remote, frame);
    }

    /// The records that hold a PTE lock.
    pub(crate) fn pte_locks(&self) -> impl Iterator<Item = &Inval> {
        self.invals.iter().filter(|r| r.locked)
    }

    /// The PTE locks of `cpu`'s records are released early (`mremap-flush-late`).
    pub(crate) fn pte_unlock_own(&mut self, cpu: usize) {
        for r in self.invals.iter_mut().filter(|r| r.owner as usize == cpu) {
            r.locked = false;
        }
    }

    /// A PTE lock held by an op on another CPU than `cpu` whose record matches `pred`.
    #[inline]
    pub(crate) fn pte_lock_owner(&self, cpu: usize, pred: impl Fn(&Inval) -> bool) -> Option<&Inval> {
        self.pte_locks().find(|r| r.owner as usize != cpu && pred(r))
    }

    /// Whether cpu `c` has invalidations pending.
    pub fn ipi_pending(&self, c: usize) -> bool {
        self.invals.iter().any(|r| r.pending & (1 << c) != 0)
    }

    /// Invalidations pending for `cpu`: (address space, page, initiating cpu).
    pub fn pending_ipis(&self, cpu: usize) -> Vec<(u32, u8, u8)> {
        self.invals.iter().filter(|r| r.pending & (1 << cpu) != 0).map(|r| (r.asid, r.va, r.owner)).collect()
    }

    /// Pending invalidation of (asid, va) for cpu `c`: the invariants tolerate its entry.
    pub fn inval_pending(&self, c: usize, asid: u32, va: u8) -> bool {
        self.invals.iter().any(|r| r.pending & (1 << c) != 0 && r.asid == asid && r.va == va)
    }

    /// `cpuN ipi`: cpu `c` takes its pending invalidations.
    pub fn ipi_take(&mut self, c: usize) {
        let bit = 1u8 << c;
        for i in 0..self.invals.len() {
            let r = self.invals[i];
            if r.pending & bit != 0 {
                self.cpus[c].tlb.invalidate(r.asid, r.va);
                self.invals[i].pending &= !bit;
            }
        }
    }

    #[inline]
    pub(crate) fn own_records(&self, cpu: usize) -> bool {
        self.invals.iter().any(|r| r.owner as usize == cpu)
    }

    /// The initiator goes past `ipi_wait`: what is left is delivered (it waits for every
    /// target), and its PTE locks are released.
    pub(crate) fn ipi_wait_pass(&mut self, cpu: usize) {
        let mut i = 0;
        while i < self.invals.len() {
            let r = self.invals[i];
            if r.owner as usize == cpu {
                for c in 0..self.cpus.len() {
                    if r.pending & (1 << c) != 0 {
                        self.cpus[c].tlb.invalidate(r.asid, r.va);
                    }
                }
                self.invals.swap_remove(i);
            } else {
                i += 1;
            }
        }
    }

    /// `Phase::IpiWait` of a map operation or fork: wait for the shootdowns, then finish.
    pub(crate) fn ipi_wait_phase(&mut self, cpu: usize, k: &mut KOp, stop: Option<Point>) -> Option<Point> {
        if k.yield_at(Point::IpiWait, stop) {
            return Some(Point::IpiWait);
        }
        self.ipi_wait_pass(cpu);
        k.phase = crate::kop::after_ipi_wait(k);
        None
    }
}

#[cfg(test)]
mod tests {
    use crate::program::Outcome::*;
    use crate::testutil::*;

    /// cpu1 caches P1's data0 writable; cpu0 write-protects it: the entry cpu1 keeps, if any.
    fn after_mprotect(kernel: &str) -> Option<(u32, bool)> {
        let mut m = machine(kernel, "cpus=2");
        line(&mut m, "cpu0 spawn");
        line(&mut m, "cpu1 switch P1.T2");
        line(&mut m, "cpu0 store data0.0 0x1");
        assert_eq!(line(&mut m, "cpu1 load data0.0"), Value(1));
        assert_eq!(tlb(&m, 1, 1, "data0").map(|e| e.1), Some(true));
        assert_eq!(line(&mut m, "cpu0 mprotect data0 r"), Ok);
        assert!(m.invals.is_empty(), "a plain line passes its ipi_wait");
        tlb(&m, 1, 1, "data0")
    }

    /// An mprotect stopped at its ipi_wait: under the tree's interlocked shootdown cpu1 has
    /// already lost its entry and has nothing pending; under `fixed` it keeps the writable entry
    /// with its invalidation pending (it may still store through it).
    #[test]
    fn the_trees_shootdown_leaves_nothing_pending_at_ipi_wait() {
        for (kernel, kept) in [("fixed", true), ("tree-385c96e4", false)] {
            let mut m = machine(kernel, "cpus=2");
            line(&mut m, "cpu0 spawn");
            line(&mut m, "cpu1 switch P1.T2");
            line(&mut m, "cpu0 store data0.0 0x1");
            assert_eq!(line(&mut m, "cpu1 load data0.0"), Value(1));
            assert_eq!(line(&mut m, "cpu0 mprotect data0 r until ipi_wait"), Paused, "{kernel}");
            assert_eq!(tlb(&m, 1, 1, "data0").is_some(), kept, "{kernel}");
            assert_eq!(m.ipi_pending(1), kept, "{kernel}");
            assert_eq!(refused(&mut m, "cpu1 ipi"), !kept, "{kernel}");
            assert_eq!(line(&mut m, "cpu0 resume"), Ok);
        }
    }

    /// msync by the process itself on one CPU: `pmap_clearbit`'s local invalidation names the
    /// page's own va in `fixed` and in `clearbit-wrong-va` (remote only), another va in the
    /// tree (one `pir_va`): its own writable, dirty entry survives the write-protect.
    #[test]
    fn the_trees_clearbit_misses_its_own_cpus_entry() {
        for (kernel, kept) in [("fixed", false), ("clearbit-wrong-va", false), ("tree-385c96e4", true)] {
            let mut m = machine(kernel, "cpus=1");
            line(&mut m, "cpu0 store file0.0 0x1");
            line(&mut m, "cpu0 msync file0");
            assert!(!pte(&m, 1, "file0").writable, "{kernel}");
            assert_eq!(tlb(&m, 0, 1, "file0").map(|e| e.1), if kept { Some(true) } else { None }, "{kernel}");
        }
    }

    #[test]
    fn a_write_protect_reaches_every_cpu_in_pm_active() {
        assert_eq!(after_mprotect("fixed"), None);
        // no IPI: cpu1 keeps the writable entry; the wrong va: data1 is invalidated instead
        assert_eq!(after_mprotect("shootdown-no-ipi").map(|e| e.1), Some(true));
        assert_eq!(after_mprotect("protect-wrong-va").map(|e| e.1), Some(true));
    }
}
