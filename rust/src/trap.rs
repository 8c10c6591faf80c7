//! User loads and stores: TLB, then page walk, then vm_fault. A store through a read-only TLB
//! entry faults: the entry is dropped and the access retried.

use crate::machine::Machine;
use crate::phys::FrameId;
use crate::tlb::TlbEntry;

/// The access must SIGSEGV.
pub struct Segv;

impl Machine {
    pub fn user_access(&mut self, cpu: usize, pid: u32, va: u8, write: bool) -> Result<FrameId, Segv> {
        for _ in 0..3 {
            if let Some(te) = self.cpus[cpu].tlb.lookup(pid, va) {
                if !write || te.writable {
                    return Ok(te.frame);
                }
                self.cpus[cpu].tlb.invalidate(pid, va);
            }
            let pte = self.proc(pid).pmap.pte[va as usize];
            if pte.present() && (!write || pte.writable) {
                let writable = pte.writable || self.plant_fill_writable;
                self.cpus[cpu].tlb.fill(TlbEntry { asid: pid, va, frame: pte.frame, writable });
                self.dirty.fill = true;
                return Ok(pte.frame);
            }
            if self.vm_fault(cpu, pid, va, write).is_err() {
                return Err(Segv);
            }
        }
        panic!("user access to page {va} by P{pid} did not converge after vm_fault");
    }
}
