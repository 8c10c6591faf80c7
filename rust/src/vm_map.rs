//! vm_map entries per process, clipping, and the map operations mprotect and madvise.

use crate::machine::Machine;
use crate::program::{is_text, FIRST_TEXT, SHM};
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

    /// madvise(page, MADV_DONTNEED). A private page's copy is discarded: the clipped entry
    /// gets a fresh zero-fill object (data) or a fresh copy-on-write view of the file page
    /// (text); sleepers on the frame the process saw are woken. A shared page keeps its data.
    /// Either way the page is unmapped with shootdown.
    pub fn vm_map_madvise_dontneed(&mut self, cpu: usize, pid: u32, va: u8) {
        if va == SHM {
            self.pmap_remove(cpu, pid, va);
            return;
        }
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
        {
            let em = &mut self.proc_mut(pid).map.entries[i];
            em.object = object;
            em.offset = offset;
            em.cow = cow;
            em.needs_copy = cow;
        }
        self.pmap_remove(cpu, pid, va);
        if let Some(f) = seen {
            self.vm_page_event_cow(f);
        }
        self.vm_object_deallocate(cpu, e.object);
    }
}
