//! A per-CPU TLB: K entries, FIFO replacement, entries tagged by address space (pid; 0 is the
//! kernel's idle space). Under `pc64` the switch code flushes it, so the tag only matters on
//! `tagged` hardware.

use crate::phys::FrameId;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlbEntry {
    pub asid: u32,
    pub va: u8,
    pub frame: FrameId,
    pub writable: bool,
    /// Filled or used for a store: a store through it touches no PTE (SPEC §3.4).
    pub dirty: bool,
}

#[derive(Clone, Debug)]
pub struct Tlb {
    /// Oldest first.
    pub entries: Vec<TlbEntry>,
    pub cap: usize,
}

impl Tlb {
    pub fn new(cap: usize) -> Tlb {
        Tlb { entries: Vec::with_capacity(cap), cap }
    }

    #[inline]
    pub fn lookup(&self, asid: u32, va: u8) -> Option<TlbEntry> {
        self.entries.iter().copied().find(|e| e.asid == asid && e.va == va)
    }

    #[inline]
    pub fn position(&self, asid: u32, va: u8) -> Option<usize> {
        self.entries.iter().position(|e| e.asid == asid && e.va == va)
    }

    /// Filled by a successful page walk.
    pub fn fill(&mut self, e: TlbEntry) {
        self.invalidate(e.asid, e.va);
        if self.entries.len() == self.cap {
            self.entries.remove(0);
        }
        self.entries.push(e);
    }

    /// invlpg for one address space's va.
    #[inline]
    pub fn invalidate(&mut self, asid: u32, va: u8) {
        self.entries.retain(|e| !(e.asid == asid && e.va == va));
    }

    pub fn flush(&mut self) {
        self.entries.clear();
    }
}

impl crate::machine::Machine {
    /// The hardware page walk's fill: the only place a TLB entry is created. It copies the PTE
    /// (`plant_fill_writable` is the self-test's planted fault) and marks the machine so the
    /// coherence invariant is checked after the step (a fill that caches a wrong bit is caught).
    #[inline]
    pub fn tlb_fill(&mut self, cpu: usize, pid: u32, va: u8, pte: crate::pmap::Pte, dirty: bool) {
        let writable = pte.writable || self.selftest.plant_fill_writable;
        self.cpus[cpu].tlb.fill(TlbEntry { asid: pid, va, frame: pte.frame, writable, dirty });
        self.scratch.dirty.fill = true;
    }
}
