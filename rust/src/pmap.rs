//! pmap: per-process page tables (one PTE per page of the layout) and `pm_active`, the mask of
//! CPUs currently running the pmap. Every PTE change goes through `pmap_inval` (shootdown).

use crate::machine::Machine;
use crate::phys::{FrameId, NO_FRAME};
use crate::program::NPAGES;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pte {
    pub frame: FrameId,
    pub writable: bool,
    /// The hardware's modified bit (PG_M, x86's D): set by a store's walk or by the first
    /// store through a TLB entry (SPEC §3.4).
    pub modified: bool,
}

impl Pte {
    pub const ABSENT: Pte = Pte { frame: NO_FRAME, writable: false, modified: false };
    #[inline]
    pub fn new(frame: FrameId, writable: bool) -> Pte {
        Pte { frame, writable, modified: false }
    }
    #[inline]
    pub fn present(&self) -> bool {
        self.frame != NO_FRAME
    }
    /// The same translation (frame and permission), whatever the modified bit.
    #[inline]
    pub fn same_mapping(&self, o: &Pte) -> bool {
        self.frame == o.frame && self.writable == o.writable
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
    /// pmap_remove of one page; the PTE's modified bit goes to the page (`vm_page_dirty`).
    pub fn pmap_remove(&mut self, cpu: usize, pid: u32, va: u8) {
        let pte = &mut self.proc_mut(pid).pmap.pte[va as usize];
        if pte.present() {
            let old = *pte;
            *pte = Pte::ABSENT;
            self.scratch.dirty.pte = true;
            self.pmap_gather_modified(old);
            self.pmap_inval_of(cpu, pid, va, old.frame);
        }
    }

    /// A PTE leaves or loses write: its modified bit is moved to the page's dirty flag.
    #[inline]
    pub fn pmap_gather_modified(&mut self, old: Pte) {
        if old.modified {
            self.phys.get_mut(old.frame).dirty = true;
        }
    }

    /// The modified bit of a PTE `pmap_protect` or `pmap_enter` changes: moved to the page,
    /// or dropped (`protect-drops-modified`, FreeBSD PR 61852 / DragonFly 52bb73bc).
    #[inline]
    pub fn pmap_protect_modified(&mut self, old: Pte) {
        if self.kernel.protect_keeps_modified {
            self.pmap_gather_modified(old);
        }
    }

    /// pmap_protect of one page to read-only.
    pub fn pmap_protect_ro(&mut self, cpu: usize, pid: u32, va: u8) {
        let pte = &mut self.proc_mut(pid).pmap.pte[va as usize];
        if pte.present() && pte.writable {
            let old = *pte;
            pte.writable = false;
            pte.modified = false;
            self.scratch.dirty.pte = true;
            self.pmap_protect_modified(old);
            self.pmap_invalidate_protect(cpu, pid, va);
        } else if pte.present() && self.kernel.protect_invalidates_unchanged {
            // DragonFly's pmap_protect_callback interlocks before it reads the PTE.
            self.pmap_invalidate_protect(cpu, pid, va);
        }
    }

    /// pmap_clearbit(m, PG_RW) (page cleaning, msync): every writable mapping of `frame`
    /// loses write, its modified bit gathered to the page; shot down on the va the kernel
    /// names (`clearbit-wrong-va`: DragonFly 3cb318dc).
    pub fn pmap_clearbit_rw(&mut self, cpu: usize, frame: FrameId) {
        for i in 0..self.procs.len() {
            if !self.procs[i].alive {
                continue;
            }
            let pid = self.procs[i].pid;
            for va in 0..NPAGES as u8 {
                let pte = self.procs[i].pmap.pte[va as usize];
                if pte.frame == frame && pte.writable {
                    self.procs[i].pmap.pte[va as usize] = Pte { writable: false, modified: false, ..pte };
                    self.scratch.dirty.pte = true;
                    self.pmap_gather_modified(pte);
                    self.pmap_inval_clearbit(cpu, pid, va);
                }
            }
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
            let mut hits = 0u16;
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
