//! pmap: per-process page tables (one PTE per page of the layout) and `pm_active`, the mask of
//! CPUs currently running the pmap. Every PTE change goes through `pmap_inval` (shootdown).

use crate::machine::Machine;
use crate::phys::{FrameId, NO_FRAME};
use crate::program::NPAGES;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pte {
    pub frame: FrameId,
    pub writable: bool,
}

impl Pte {
    pub const ABSENT: Pte = Pte { frame: NO_FRAME, writable: false };
    #[inline]
    pub fn present(&self) -> bool {
        self.frame != NO_FRAME
    }
}

#[derive(Clone, Debug)]
pub struct Pmap {
    pub pte: [Pte; NPAGES],
    /// Bit c set while CPU c runs this pmap.
    pub pm_active: u8,
}

impl Pmap {
    pub fn new() -> Pmap {
        Pmap { pte: [Pte::ABSENT; NPAGES], pm_active: 0 }
    }
}

impl Default for Pmap {
    fn default() -> Self {
        Pmap::new()
    }
}

impl Machine {
    /// pmap_remove of one page.
    pub fn pmap_remove(&mut self, cpu: usize, pid: u32, va: u8) {
        let pte = &mut self.proc_mut(pid).pmap.pte[va as usize];
        if pte.present() {
            let frame = pte.frame;
            *pte = Pte::ABSENT;
            self.scratch.dirty.pte = true;
            self.pmap_inval_of(cpu, pid, va, frame);
        }
    }

    /// pmap_protect of one page to read-only.
    pub fn pmap_protect_ro(&mut self, cpu: usize, pid: u32, va: u8) {
        let pte = &mut self.proc_mut(pid).pmap.pte[va as usize];
        if pte.present() && pte.writable {
            pte.writable = false;
            self.scratch.dirty.pte = true;
            self.pmap_invalidate_protect(cpu, pid, va);
        }
    }

    /// pmap_remove_all (vm_page_protect(m, VM_PROT_NONE)): the frame leaves every pmap.
    pub fn pmap_remove_all(&mut self, cpu: usize, frame: FrameId) {
        for i in 0..self.procs.len() {
            if !self.procs[i].alive {
                continue;
            }
            let pid = self.procs[i].pid;
            // Scan first (a tight loop), then remove: removing one page changes no other PTE.
            let mut hits = 0u8;
            for (va, pte) in self.procs[i].pmap.pte.iter().enumerate() {
                if pte.frame == frame {
                    hits |= 1 << va;
                }
            }
            while hits != 0 {
                let va = hits.trailing_zeros() as u8;
                hits &= hits - 1;
                self.pmap_remove(cpu, pid, va);
            }
        }
    }

    /// Tear down a whole address space (exit).
    pub fn pmap_remove_pages(&mut self, cpu: usize, pid: u32) {
        for va in 0..NPAGES as u8 {
            self.pmap_remove(cpu, pid, va);
        }
    }
}
