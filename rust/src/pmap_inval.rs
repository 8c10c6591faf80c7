//! Shootdown (pmap_inval, pc64 era): a PTE change invalidates the va on every CPU in the
//! pmap's `pm_active` other than the caller, by IPI, completed before the operation returns;
//! on the calling CPU only if the caller is itself in `pm_active`. A caller outside
//! `pm_active` is a *foreign* context: it invalidates nothing locally.

use crate::machine::Machine;
use crate::program::NPAGES;

impl Machine {
    pub fn pmap_inval(&mut self, cpu: usize, pid: u32, va: u8) {
        let mask = self.proc(pid).pmap.pm_active;
        let me = 1u8 << cpu;
        if self.kernel.shootdown_remote {
            self.ipi_invalidate(mask & !me, pid, va);
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

    /// Deliver the invalidation IPI to each CPU in `targets` and wait for it.
    fn ipi_invalidate(&mut self, targets: u8, pid: u32, va: u8) {
        for c in 0..self.cpus.len() {
            if targets & (1 << c) != 0 {
                self.cpus[c].tlb.invalidate(pid, va);
            }
        }
    }
}
