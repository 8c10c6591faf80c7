//! The page daemon (vm_pageout), as SPEC §3.4's `pageout P PAGE`: the resident page P's map
//! finds at PAGE — in whichever object of its chain — is unmapped from every pmap
//! (`pmap_remove_all`, gathering the modified bits), written to its backing store if dirty
//! (swap for anonymous memory, the file for the data file) and freed; its object's pager
//! reads it back on the next fault. The daemon takes no map lock (it works on pages, not maps)
//! and leaves a busy or held page alone. It runs in kernel context on any CPU: foreign to P's
//! pmap unless that CPU runs P.
//!
//! Order in `fixed`: unmap, `ipi_wait`, `clean`, `free` — a frame is written and freed only
//! after every CPU has dropped its translation. `free-before-flush` writes and frees first.

use crate::kop::{wait_for, KOp, Phase};
use crate::machine::Machine;
use crate::phys::{FrameId, NO_FRAME};
use crate::program::{Outcome, Point};
use crate::vm_object::ObjId;

impl Machine {
    /// pageout's first phase: the target, its page, the PTE locks of the page's mappings;
    /// then the page busied and unmapped everywhere.
    pub(crate) fn pageout_start(&mut self, cpu: usize, k: &mut KOp, t: u32, va: u8) -> Option<Point> {
        // A process whose exit has taken effect (every thread dead, the teardown perhaps
        // still in flight) is gone for the daemon, which takes no map lock to wait for it.
        if !(t >= 1 && (t as usize) <= self.procs.len() && self.proc(t).alive && !self.proc(t).exited()) {
            k.result = Outcome::Esrch;
            k.phase = Phase::Finish;
            return None;
        }
        let Some((o, idx, f)) = self.resident_page(t, va) else {
            k.phase = Phase::Finish;
            return None;
        };
        // A page someone has busy (a fault, a kernel access, msync, a move) or holds (a
        // procfs access, a umtx sleeper, an unmap not yet flushed) is skipped.
        if self.phys.get(f).hold > 0 || (self.inflight > 0 && self.cpus.iter().any(|c| c.kop.is_some_and(|x| x.busy == f))) {
            k.phase = Phase::Finish;
            return None;
        }
        if let Some(l) = self.remove_all_blocked(cpu, f) {
            wait_for!(k, l);
        }
        k.busy = f;
        (k.aux, k.aux2) = (o, idx as u32);
        self.pmap_remove_all(cpu, f);
        k.phase = if self.kernel.free_after_flush { self.after_changes(cpu, k) } else { Phase::Clean };
        None
    }

    /// The frame `pid`'s map finds at `va` (object, index, frame), if resident.
    pub(crate) fn resident_page(&self, pid: u32, va: u8) -> Option<(ObjId, u8, FrameId)> {
        let p = self.proc(pid);
        let e = p.map.entries[p.map.lookup(va)?];
        self.vm_page_lookup_chain(e.object, e.offset + (va - e.start)).filter(|x| x.2 != NO_FRAME)
    }

    /// `Phase::Free`: pageout frees the frame (its object remembers where the data is);
    /// `lost-data` if the frame holds what its backing store does not.
    pub(crate) fn pageout_free_phase(&mut self, cpu: usize, k: &mut KOp, stop: Option<Point>) -> Option<Point> {
        if k.yield_at(Point::Free, stop) {
            return Some(Point::Free);
        }
        let (o, idx, f) = (k.aux, k.aux2 as u8, k.busy);
        k.busy = NO_FRAME;
        // The object may have been destroyed meanwhile (its pages discarded, not lost).
        if self.obj(o).ref_count > 0 && self.obj(o).pages[idx as usize] == f {
            let after = self.content_without_frame(o, idx);
            let words = self.phys.words(f);
            if words != after {
                let (w, a) = (crate::phys::hex_words(words), crate::phys::hex_words(after));
                self.lost_data(format!("pageout freed frame {f} holding {w}, its backing store {a}"));
            }
            self.obj_mut(o).pages[idx as usize] = NO_FRAME;
            self.phys.disown(f);
        }
        k.phase = if self.kernel.free_after_flush { Phase::Finish } else { self.after_changes(cpu, k) };
        None
    }
}

#[cfg(test)]
mod tests {
    use crate::program::Outcome::*;
    use crate::testutil::*;

    /// Expectations derived by hand from SPEC §3.4 (the modified bit, pageout's order).
    #[test]
    fn pageout_writes_a_dirty_page_frees_it_and_the_fault_reads_it_back() {
        let mut m = machine("fixed", "cpus=2");
        assert_eq!(line(&mut m, "cpu0 store data0.0 0x5"), Ok);
        let f = pte(&m, 1, "data0").frame;
        assert!(pte(&m, 1, "data0").modified, "a store's walk sets the modified bit");
        // cpu1 is idle: the daemon is foreign to P1; its IPI reaches cpu0
        assert_eq!(line(&mut m, "cpu1 pageout P1 data0"), Ok);
        assert!(m.phys.is_freed(f) && !pte(&m, 1, "data0").present() && tlb(&m, 0, 1, "data0").is_none());
        assert_eq!(m.swap.len(), 1, "written to a swap slot");
        // the freed frame's memory goes to the next allocation
        assert_eq!(line(&mut m, "cpu0 store data1.0 0x7"), Ok);
        let g = pte(&m, 1, "data1").frame;
        assert_eq!(m.phys.get(g).slot, m.phys.get(f).slot);
        assert_eq!(line(&mut m, "cpu0 load data0.0"), Value(5));
        assert!(!m.phys.get(pte(&m, 1, "data0").frame).dirty, "read in from swap: clean");
    }

    #[test]
    fn pageout_leaves_a_held_page_and_a_dead_target_is_esrch() {
        let mut m = machine("fixed", "cpus=2");
        line(&mut m, "cpu0 spawn");
        line(&mut m, "cpu1 switch P1.T2");
        line(&mut m, "cpu0 store data0.0 0x5");
        let f = pte(&m, 1, "data0").frame;
        assert_eq!(line(&mut m, "cpu1 procfs_read P1 data0.0 until access"), Paused);
        assert_eq!(line(&mut m, "cpu0 pageout P1 data0"), Ok);
        assert!(!m.phys.is_freed(f) && pte(&m, 1, "data0").present(), "held: left alone");
        assert_eq!(line(&mut m, "cpu0 pageout P7 data0"), Esrch);
    }

    /// The modified bit moves to the page on a write-protect (fixed) or is lost
    /// (protect-drops-modified): then pageout frees a page whose store its backing store lacks.
    #[test]
    fn a_dropped_modified_bit_is_lost_data_at_pageout() {
        for (kernel, lost) in [("fixed", false), ("protect-drops-modified", true)] {
            let mut m = machine(kernel, "cpus=1");
            line(&mut m, "cpu0 store data0.0 0x5");
            line(&mut m, "cpu0 mprotect data0 r");
            assert_eq!(m.phys.get(pte(&m, 1, "data0").frame).dirty, !lost, "{kernel}");
            line(&mut m, "cpu0 pageout P1 data0");
            assert_eq!(m.check_invariants().map(|v| v.0), lost.then_some(crate::judge::Kind::LostData), "{kernel}");
            assert_eq!(line(&mut m, "cpu0 load data0.0"), Value(if lost { 0 } else { 5 }), "{kernel}");
        }
    }

    /// A store through a TLB entry filled by a load sets the modified bit only while the PTE
    /// still maps the frame writable; else it faults (SPEC §3.4, as x86).
    #[test]
    fn a_store_through_a_clean_entry_over_a_read_only_pte_faults() {
        let mut m = machine("fixed", "cpus=2");
        line(&mut m, "cpu0 spawn");
        line(&mut m, "cpu1 switch P1.T2");
        line(&mut m, "cpu0 store data0.0 0x1");
        assert_eq!(line(&mut m, "cpu1 load data0.0"), Value(1));
        assert_eq!(line(&mut m, "cpu0 mprotect data0 r until ipi_wait"), Paused);
        // cpu1's entry is writable and pending invalidation, but clean: the store faults and
        // its lookup waits for the map lock mprotect holds
        assert_eq!(tlb(&m, 1, 1, "data0").map(|e| e.1), Some(true));
        assert_eq!(line(&mut m, "cpu1 store data0.0 0x2"), Paused);
        assert_eq!(line(&mut m, "cpu0 resume"), Ok);
        assert_eq!(line(&mut m, "cpu1 resume"), Segv);
    }
}
