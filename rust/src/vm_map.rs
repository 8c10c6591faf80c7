//! vm_map entries per process, clipping, the map lock, and the map operations mprotect and
//! madvise(MADV_DONTNEED) as phases: under the map lock (and the PTE's lock) the entry is
//! changed and the PTE shot down; after `ipi_wait` (the shared `Phase::IpiWait`) madvise
//! drops the discarded object.

use crate::kop::{wait_for, KOp, Lock, Phase};
use crate::machine::Machine;
use crate::phys::NO_FRAME;
use crate::pmap::Pte;
use crate::program::{is_text, Outcome, Point, FILE0, FIRST_TEXT, SHM};
use crate::vm_object::{ObjId, ObjType};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmMapEntry {
    /// Pages [start, end) of the layout.
    pub start: u8,
    pub end: u8,
    pub object: ObjId,
    /// Page index in `object` of `start`.
    pub offset: u8,
    pub prot_write: bool,
    pub max_write: bool,
    pub cow: bool,
    pub needs_copy: bool,
    /// VM_INHERIT_SHARE (shm0) rather than copy.
    pub inherit_share: bool,
}

#[derive(Clone, Debug, Default)]
pub struct VmMap {
    /// Sorted by address; a page no entry covers is unmapped.
    pub entries: Vec<VmMapEntry>,
    /// Bumped when the map is locked for a change (FreeBSD's vm_map_lock() increments
    /// `map->timestamp`, DragonFly's likewise): a fault resumed after a yield point compares it.
    pub generation: u32,
}

impl VmMap {
    /// The map is locked for writing (or a read lock upgraded): the only place the
    /// generation moves.
    #[inline]
    pub fn lock_for_write(&mut self) {
        self.generation += 1;
    }


    /// vm_map_lookup_entry: the entry mapping page `va`, if any (SPEC §3.4: a page may be
    /// unmapped).
    #[inline]
    pub fn lookup(&self, va: u8) -> Option<usize> {
        self.entries.iter().position(|e| e.start <= va && va < e.end)
    }
}

impl Machine {
    /// vm_map_clip_start/end: isolate [va, va+1) in its own entry; each new piece takes a
    /// reference on the object.
    pub fn vm_map_clip(&mut self, pid: u32, va: u8) -> usize {
        let mut i = self.proc(pid).map.lookup(va).expect("clip of an unmapped page");
        let e = self.proc(pid).map.entries[i];
        if e.start < va {
            let mut right = e;
            right.start = va;
            right.offset = e.offset + (va - e.start);
            self.proc_mut(pid).map.entries[i].end = va;
            self.proc_mut(pid).map.entries.insert(i + 1, right);
            self.vm_object_reference(e.object);
            i += 1;
        }
        let e = self.proc(pid).map.entries[i];
        if va + 1 < e.end {
            let mut right = e;
            right.start = va + 1;
            right.offset = e.offset + 1;
            self.proc_mut(pid).map.entries[i].end = va + 1;
            self.proc_mut(pid).map.entries.insert(i + 1, right);
            self.vm_object_reference(e.object);
        }
        i
    }

    /// mprotect(page, r|rw): clip, set prot; removing write write-protects the PTE.
    pub fn vm_map_protect(&mut self, cpu: usize, pid: u32, va: u8, writable: bool) {
        let i = self.vm_map_clip(pid, va);
        let e = &mut self.proc_mut(pid).map.entries[i];
        assert!(!writable || e.max_write, "mprotect beyond max prot");
        e.prot_write = writable;
        if !writable {
            self.pmap_protect_ro(cpu, pid, va);
        }
    }

    /// vm_map_lock(): op `k` holds `pid`'s map lock from here to its finish.
    pub(crate) fn vm_map_lock(&mut self, k: &mut KOp, pid: u32) {
        k.map_lock = pid;
        self.proc_mut(pid).map.lock_for_write();
    }

    /// The locks a map operation on `pid`'s page `va` takes first: the map, then the PTE.
    fn map_op_blocked(&self, cpu: usize, pid: u32, va: u8) -> Option<Lock> {
        if let Some(l) = self.map_write_blocked(cpu, pid) {
            return Some(l);
        }
        if self.pte_locked_by_other(cpu, pid, va) {
            return Some(Lock::Pte(pid, va));
        }
        None
    }

    /// mprotect's first phase: locks, then the change and its shootdown (an unmapped page:
    /// nothing to change).
    pub(crate) fn mprotect_start(&mut self, cpu: usize, k: &mut KOp, va: u8, w: bool) -> Option<Point> {
        if let Some(l) = self.map_op_blocked(cpu, k.pid, va) {
            wait_for!(k, l);
        }
        if self.proc(k.pid).map.lookup(va).is_none() {
            k.phase = Phase::Finish;
            return None;
        }
        self.vm_map_lock(k, k.pid);
        self.vm_map_protect(cpu, k.pid, va, w);
        k.phase = self.after_changes(cpu, k);
        None
    }

    /// madvise's first phase: locks, then the entry's new object and the PTE's removal.
    pub(crate) fn madvise_start(&mut self, cpu: usize, k: &mut KOp, va: u8) -> Option<Point> {
        if let Some(l) = self.map_op_blocked(cpu, k.pid, va) {
            wait_for!(k, l);
        }
        let Some(i) = self.proc(k.pid).map.lookup(va) else {
            k.phase = Phase::Finish;
            return None;
        };
        if self.proc(k.pid).map.entries[i].inherit_share {
            // A shared page's entry is not changed, only its PTE removed: the lock is taken
            // but the map's generation stays (a fault paused on it goes on).
            k.map_lock = k.pid;
            self.pmap_remove(cpu, k.pid, va);
            k.aux = u32::MAX;
        } else {
            self.vm_map_lock(k, k.pid);
            k.aux = self.vm_map_madvise_dontneed(cpu, k.pid, va);
        }
        k.phase = self.after_changes(cpu, k);
        None
    }

    /// After madvise's shootdown: the discarded object is released.
    pub(crate) fn madvise_finish(&mut self, cpu: usize, k: &KOp) -> Outcome {
        if k.aux != u32::MAX {
            self.vm_object_deallocate(cpu, k.aux);
        }
        Outcome::Ok
    }

    /// madvise(page, MADV_DONTNEED) of a private page up to its shootdown: the page's entry
    /// gets a fresh object (zero-fill, or the file again for text). Returns the object to
    /// deallocate once the shootdown is done.
    fn vm_map_madvise_dontneed(&mut self, cpu: usize, pid: u32, va: u8) -> ObjId {
        let i = self.vm_map_clip(pid, va);
        let e = self.proc(pid).map.entries[i];
        let seen = self.vm_page_lookup_chain(e.object, e.offset).map(|(_, _, f)| f).filter(|&f| f != NO_FRAME);
        // A private view of the executable (wherever mremap moved it) gets the file again.
        let (bottom, bidx) = self.vm_object_bottom(e.object, e.offset);
        let (object, offset, cow) = if self.obj(bottom).otype == ObjType::File {
            let file = self.file_object;
            self.vm_object_reference(file);
            (file, bidx, true)
        } else {
            (self.vm_object_allocate(ObjType::Anon, 1), 0, false)
        };
        let em = &mut self.proc_mut(pid).map.entries[i];
        em.object = object;
        em.offset = offset;
        em.cow = cow;
        em.needs_copy = cow;
        self.pmap_remove(cpu, pid, va);
        if let Some(f) = seen {
            self.vm_page_event_cow(f);
        }
        e.object
    }
}

/// SPEC §3.4's map operations: munmap, mmap, mremap. Each holds the map lock (and the PTE
/// locks of the pages it changes) to its finish; a mapping it removes drops its object only
/// after the shootdown (`free_after_flush`: Linux's mmu_gather, BSD's pmap_remove before
/// vm_page_free), kept in `KOp::aux` until then.
impl Machine {
    /// The new entry `mmap` puts at `va`: the kind the page has in the initial layout.
    fn vm_map_fresh_entry(&mut self, va: u8) -> VmMapEntry {
        let (object, offset, prot_write, cow, share) = if is_text(va) {
            let file = self.file_object;
            self.vm_object_reference(file);
            (file, va - FIRST_TEXT, false, true, false)
        } else if va == SHM {
            (self.vm_object_allocate(ObjType::SharedAnon, 1), 0, true, false, true)
        } else if va == FILE0 {
            let f = self.data_file_object;
            self.vm_object_reference(f);
            (f, 0, true, false, true)
        } else {
            (self.vm_object_allocate(ObjType::Anon, 1), 0, true, false, false)
        };
        VmMapEntry {
            start: va,
            end: va + 1,
            object,
            offset,
            prot_write,
            max_write: true,
            cow,
            needs_copy: cow,
            inherit_share: share,
        }
    }

    /// vm_map_delete of page `va` (mapped): the entry goes, its PTE is removed with shootdown;
    /// returns the object whose reference the caller drops after the shootdown (or has
    /// dropped, `u32::MAX`, where the kernel frees at once: `free-before-flush`).
    fn vm_map_delete(&mut self, cpu: usize, pid: u32, va: u8) -> ObjId {
        let i = self.vm_map_clip(pid, va);
        let e = self.proc_mut(pid).map.entries.remove(i);
        self.pmap_remove(cpu, pid, va);
        if self.kernel.free_after_flush {
            e.object
        } else {
            self.vm_object_deallocate(cpu, e.object);
            u32::MAX
        }
    }

    /// Insert `e` in address order.
    fn vm_map_insert(&mut self, pid: u32, e: VmMapEntry) {
        let map = &mut self.proc_mut(pid).map;
        let at = map.entries.iter().position(|x| x.start > e.start).unwrap_or(map.entries.len());
        map.entries.insert(at, e);
    }

    /// munmap / mmap's first phase: the locks, then the old mapping (if any) removed and, for
    /// mmap, the new one inserted.
    pub(crate) fn munmap_mmap_start(&mut self, cpu: usize, k: &mut KOp, va: u8, map_new: bool) -> Option<Point> {
        if let Some(l) = self.map_op_blocked(cpu, k.pid, va) {
            wait_for!(k, l);
        }
        let mapped = self.proc(k.pid).map.lookup(va).is_some();
        k.aux = u32::MAX;
        if !mapped && !map_new {
            k.phase = Phase::Finish;
            return None;
        }
        self.vm_map_lock(k, k.pid);
        if mapped {
            k.aux = self.vm_map_delete(cpu, k.pid, va);
        }
        if map_new {
            let e = self.vm_map_fresh_entry(va);
            self.vm_map_insert(k.pid, e);
        }
        k.phase = self.after_changes(cpu, k);
        None
    }

    /// mremap's first phase (Linux mremap(MREMAP_MAYMOVE|MREMAP_FIXED)): EINVAL, the locks,
    /// EFAULT; any mapping at `to` removed; the entry moved; the PTE at `va` cleared and shot
    /// down, its frame busy until it is entered at `to` (`Phase::MremapEnter`, after the
    /// shootdown). `mremap-flush-late` enters it at once and lets go of the PTE lock and the
    /// frame before its `ipi_wait` (CVE-2018-18281).
    pub(crate) fn mremap_start(&mut self, cpu: usize, k: &mut KOp, va: u8, to: u8) -> Option<Point> {
        let pid = k.pid;
        k.aux = u32::MAX;
        if va == to {
            k.result = Outcome::Einval;
            k.phase = Phase::Finish;
            return None;
        }
        if let Some(l) = self.map_op_blocked(cpu, pid, va).or_else(|| self.map_op_blocked(cpu, pid, to)) {
            wait_for!(k, l);
        }
        if self.proc(pid).map.lookup(va).is_none() {
            k.result = Outcome::Efault;
            k.phase = Phase::Finish;
            return None;
        }
        // The frame it moves is busy from here to its entry at TO: one another op has busy (a
        // debugger access through vm_fault_page's page) is waited for first, as fork waits
        // (vm_page_sleep_busy). Else the access, ordered before the move, writes the frame
        // after a load at TO has read it (a 10-minute fixed campaign found it: 7 lines,
        // tests/data/fixed_regressions/fixed-mremap-waits-for-a-busy-page.txt).
        if let Some((_, _, f)) = self.resident_page(pid, va) {
            if self.busy_by_other(cpu, f) {
                wait_for!(k, Lock::Busy(f));
            }
        }
        self.vm_map_lock(k, pid);
        if self.proc(pid).map.lookup(to).is_some() {
            k.aux = self.vm_map_delete(cpu, pid, to);
        }
        let i = self.vm_map_clip(pid, va);
        let mut e = self.proc_mut(pid).map.entries.remove(i);
        (e.start, e.end) = (to, to + 1);
        self.vm_map_insert(pid, e);
        let pte = self.proc(pid).pmap.pte[va as usize];
        if pte.present() {
            // move_ptes: the PTE leaves `va` with its modified bit.
            self.proc_mut(pid).pmap.pte[va as usize] = Pte::ABSENT;
            self.scratch.dirty.pte = true;
            self.pmap_inval_of(cpu, pid, va, pte.frame);
            if self.kernel.mremap_flush_first {
                k.fs = crate::vm_fault::FaultState::new(pid, to, crate::vm_fault::VM_PROT_READ);
                (k.fs.frame, k.fs.writable, k.fs.cowed) = (pte.frame, pte.writable, pte.modified);
                k.busy = pte.frame;
            } else {
                self.proc_mut(pid).pmap.pte[to as usize] = pte;
                self.pte_unlock_own(cpu);
            }
        }
        k.phase = self.after_changes(cpu, k);
        None
    }

    /// `Phase::MremapEnter`: the moved PTE entered at its new address (the shootdown of the
    /// old one is done), the frame no longer busy.
    pub(crate) fn mremap_enter_phase(&mut self, cpu: usize, k: &mut KOp, stop: Option<Point>) -> Option<Point> {
        if k.yield_at(Point::PmapEnter, stop) {
            return Some(Point::PmapEnter);
        }
        let (pid, to) = (k.fs.pid, k.fs.va);
        if self.pte_locked_by_other(cpu, pid, to) {
            return Some(k.wait(Lock::Pte(pid, to)));
        }
        self.proc_mut(pid).pmap.pte[to as usize] = Pte { frame: k.fs.frame, writable: k.fs.writable, modified: k.fs.cowed };
        self.scratch.dirty.pte = true;
        k.fs.frame = NO_FRAME;
        k.busy = NO_FRAME;
        k.phase = Phase::Finish;
        None
    }

    /// After the shootdown: the object a removed mapping held is released.
    pub(crate) fn vm_map_release(&mut self, cpu: usize, k: &mut KOp) {
        if k.aux != u32::MAX {
            self.vm_object_deallocate(cpu, k.aux);
            k.aux = u32::MAX;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::program::Outcome::*;
    use crate::testutil::*;

    #[test]
    fn mprotect_clips_the_entry_and_moves_the_generation() {
        let mut m = machine("fixed", "cpus=1");
        let (n, g) = (m.proc(1).map.entries.len(), m.proc(1).map.generation);
        assert_eq!(line(&mut m, "cpu0 mprotect data1 r"), Ok);
        let map = &m.proc(1).map;
        assert_eq!(map.entries.len(), n + 2, "data0 | data1 | data2-3");
        assert!(map.generation > g);
        assert!(!map.entries[map.lookup(page("data1")).unwrap()].prot_write && map.entries[map.lookup(page("data2")).unwrap()].prot_write);
        assert_eq!(line(&mut m, "cpu0 store data1.0 0x1"), Segv);
    }

    #[test]
    fn madvise_drops_a_private_page_and_keeps_a_shared_one() {
        let mut m = machine("fixed", "cpus=1");
        line(&mut m, "cpu0 store data0.0 0x5");
        line(&mut m, "cpu0 store shm0.0 0x6");
        assert_eq!(line(&mut m, "cpu0 madvise data0 dontneed"), Ok);
        assert!(!pte(&m, 1, "data0").present());
        assert_eq!(line(&mut m, "cpu0 load data0.0"), Value(0));
        let g = m.proc(1).map.generation;
        assert_eq!(line(&mut m, "cpu0 madvise shm0 dontneed"), Ok);
        assert_eq!(m.proc(1).map.generation, g, "shm0's entry is not changed");
        assert!(!pte(&m, 1, "shm0").present());
        assert_eq!(line(&mut m, "cpu0 load shm0.0"), Value(6));
    }
}

#[cfg(test)]
mod vm_tests {
    use crate::program::Outcome::*;
    use crate::testutil::*;

    /// Derived by hand from SPEC §3.4's mremap: the entry and the PTE move, the frame does not;
    /// in fixed the PTE is entered at TO only after the old one's shootdown, the frame busy.
    #[test]
    fn mremap_moves_the_pte_after_the_shootdown_and_keeps_the_frame_busy() {
        let mut m = machine("fixed", "cpus=2");
        line(&mut m, "cpu0 spawn");
        line(&mut m, "cpu1 switch P1.T2");
        line(&mut m, "cpu0 store data0.0 0x5");
        let f = pte(&m, 1, "data0").frame;
        line(&mut m, "cpu1 load data0.0");
        assert_eq!(line(&mut m, "cpu0 mremap data0 hole0 until pmap_enter"), Paused);
        assert!(!pte(&m, 1, "data0").present() && !pte(&m, 1, "hole0").present());
        assert_eq!(tlb(&m, 1, 1, "data0"), None, "passed ipi_wait: cpu1's entry is gone");
        assert_eq!(m.cpus[0].kop.map(|k| k.busy), Some(f));
        assert_eq!(line(&mut m, "cpu0 resume"), Ok);
        let p = pte(&m, 1, "hole0");
        assert!(p.frame == f && p.writable && p.modified, "{p:?}");
        assert_eq!(line(&mut m, "cpu1 load hole0.0"), Value(5));
        assert_eq!(line(&mut m, "cpu0 mremap hole0 hole0"), Einval);
        assert_eq!(line(&mut m, "cpu0 mremap data0 data1"), Efault);
    }

    #[test]
    fn mmap_gives_each_kind_its_initial_content_and_munmap_unmaps() {
        // hole0 has no mapping at first: a load is a SEGV (which kills P1: a fresh machine after)
        let mut m = machine("fixed", "cpus=1");
        assert_eq!(line(&mut m, "cpu0 load hole0.0"), Segv);
        let mut m = machine("fixed", "cpus=1");
        assert_eq!(line(&mut m, "cpu0 mmap hole0"), Ok);
        assert_eq!(line(&mut m, "cpu0 load hole0.1"), Value(0));
        assert_eq!(line(&mut m, "cpu0 load file0.2"), Value(crate::program::data_file_word(2)));
        assert_eq!(line(&mut m, "cpu0 munmap file0"), Ok);
        assert!(m.proc(1).map.lookup(page("file0")).is_none());
        assert_eq!(line(&mut m, "cpu0 mmap text1"), Ok);
        assert_eq!(line(&mut m, "cpu0 load text1.3"), Value(crate::program::text_word(1, 3)));
        assert_eq!(line(&mut m, "cpu0 procfs_read P1 file0.0"), Efault);
    }
}
