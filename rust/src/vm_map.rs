//! vm_map entries per process, clipping, and the map operations mprotect and madvise.

use crate::machine::Machine;
use crate::vm_object::ObjId;



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
    /// Bumped by every change to the entries (FreeBSD's `map->timestamp`, DragonFly's
    /// `map->timestamp`): a fault resumed after a yield point compares it.
    pub generation: u32,
}

impl VmMap {
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
        self.proc_mut(pid).map.generation += 1;
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
}
