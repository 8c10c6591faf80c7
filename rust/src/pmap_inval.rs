//! Shootdown (pmap_inval, pc64 era): a PTE change invalidates the va on every CPU in the
//! pmap's `pm_active` other than the caller, by IPI; on the calling CPU only if the caller is
//! itself in `pm_active`. A caller outside `pm_active` is a *foreign* context: it invalidates
//! nothing locally. The IPIs are records (`inflight::Inval`, DragonFly's `pmap_inval_info`):
//! pending at each target until it takes them (`cpuN ipi`) or the initiator goes past its
//! `ipi_wait`; a plain line goes past at once.

use crate::inflight::Inval;
use crate::machine::Machine;
use crate::program::NPAGES;

impl Machine {
    /// A PTE that still maps its frame changed (write-protect, a new prot).
    pub fn pmap_inval(&mut self, cpu: usize, pid: u32, va: u8) {
        let frame = self.proc(pid).pmap.pte[va as usize].frame;
        self.pmap_inval_of(cpu, pid, va, frame);
    }

    /// A PTE that mapped `frame` changed (cleared, or now maps another frame).
    pub fn pmap_inval_of(&mut self, cpu: usize, pid: u32, va: u8, frame: crate::phys::FrameId) {
        let mask = self.proc(pid).pmap.pm_active;
        let me = 1u8 << cpu;
        let targets = mask & !me;
        if self.kernel.shootdown_remote && targets != 0 {
            self.invals.push(Inval { owner: cpu as u8, asid: pid, va, pending: targets, frame });
        }
        if mask & me != 0 {
            self.cpus[cpu].tlb.invalidate(pid, va);
        }
    }

    /// The write-protect path (fork, mprotect) invalidates through here.
    pub fn pmap_invalidate_protect(&mut self, cpu: usize, pid: u32, va: u8) {
        let target = if self.kernel.protect_right_va { va } else { (va + 1) % NPAGES as u8 };
        self.pmap_inval(cpu, pid, target);
    }
}
