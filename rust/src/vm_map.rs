//! vm_map entries per process, clipping, the map lock, and the map operations mprotect and
//! madvise(MADV_DONTNEED) as phases: under the map lock (and the PTE's lock) the entry is
//! changed and the PTE shot down; after `ipi_wait` (the shared `Phase::IpiWait`) madvise
//! drops the discarded object.

use crate::kop::{wait_for, KOp, Lock};
use crate::machine::Machine;
use crate::program::{is_text, Outcome, Point, FIRST_TEXT, SHM};
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
    /// Sorted, covering every page of the layout.
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


    pub fn lookup(&self, va: u8) -> usize {
        self.entries
            .iter()
            .position(|e| e.start <= va && va < e.end)
            .unwrap_or_else(|| panic!("no vm_map entry for page {va}"))
    }
}

impl Machine {
    /// vm_map_clip_start/end: isolate [va, va+1) in its own entry; each new piece takes a
    /// reference on the object.
    pub fn vm_map_clip(&mut self, pid: u32, va: u8) -> usize {
        let mut i = self.proc(pid).map.lookup(va);
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
        if self.map_locked_by_other(cpu, pid) {
            return Some(Lock::Map(pid));
        }
        if self.pte_locked_by_other(cpu, pid, va) {
            return Some(Lock::Pte(pid, va));
        }
        None
    }

    /// mprotect's first phase: locks, then the change and its shootdown.
    pub(crate) fn mprotect_start(&mut self, cpu: usize, k: &mut KOp, va: u8, w: bool) -> Option<Point> {
        if let Some(l) = self.map_op_blocked(cpu, k.pid, va) {
            wait_for!(k, l);
        }
        self.vm_map_lock(k, k.pid);
        self.vm_map_protect(cpu, k.pid, va, w);
        k.phase = self.after_changes(cpu);
        None
    }

    /// madvise's first phase: locks, then the entry's new object and the PTE's removal.
    pub(crate) fn madvise_start(&mut self, cpu: usize, k: &mut KOp, va: u8) -> Option<Point> {
        if let Some(l) = self.map_op_blocked(cpu, k.pid, va) {
            wait_for!(k, l);
        }
        if va == SHM {
            // shm0's entry is not changed, only its PTE removed: the lock is taken but the
            // map's generation stays (a fault paused on shm0 goes on).
            k.map_lock = k.pid;
            self.pmap_remove(cpu, k.pid, va);
            k.aux = u32::MAX;
        } else {
            self.vm_map_lock(k, k.pid);
            k.aux = self.vm_map_madvise_dontneed(cpu, k.pid, va);
        }
        k.phase = self.after_changes(cpu);
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
        let seen = self.vm_page_lookup_chain(e.object, e.offset).map(|(_, _, f)| f);
        let (object, offset, cow) = if is_text(va) {
            let file = self.file_object;
            self.vm_object_reference(file);
            (file, va - FIRST_TEXT, true)
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
        assert!(!map.entries[map.lookup(page("data1"))].prot_write && map.entries[map.lookup(page("data2"))].prot_write);
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
