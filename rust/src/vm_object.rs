//! vm_object: anonymous, file and shared-anonymous objects owning frames at page offsets, and
//! shadow chains for private mappings (top object first). There is no object collapse.

use crate::machine::Machine;
use crate::phys::{FrameId, NO_FRAME};

pub type ObjId = u32;
/// Largest object: the four data pages.
pub const MAX_OBJ_PAGES: usize = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjType {
    /// OBJT_DEFAULT: private anonymous memory and shadow objects.
    Anon,
    /// The executable's vnode object; it holds a reference of its own and is never renamed from.
    File,
    /// Shared anonymous memory (inherited shared across fork).
    SharedAnon,
}

#[derive(Clone, Debug)]
pub struct VmObject {
    pub otype: ObjType,
    pub size: u8,
    pub pages: [FrameId; MAX_OBJ_PAGES],
    pub backing: Option<ObjId>,
    pub backing_offset: u8,
    pub ref_count: u32,
    pub shadow_count: u32,
}

impl Machine {
    pub fn vm_object_allocate(&mut self, otype: ObjType, size: u8) -> ObjId {
        self.objects.push(VmObject {
            otype,
            size,
            pages: [NO_FRAME; MAX_OBJ_PAGES],
            backing: None,
            backing_offset: 0,
            ref_count: 1,
            shadow_count: 0,
        });
        (self.objects.len() - 1) as ObjId
    }

    #[inline]
    pub fn obj(&self, o: ObjId) -> &VmObject {
        &self.objects[o as usize]
    }

    #[inline]
    pub fn obj_mut(&mut self, o: ObjId) -> &mut VmObject {
        &mut self.objects[o as usize]
    }

    pub fn vm_object_reference(&mut self, o: ObjId) {
        let ob = self.obj_mut(o);
        assert!(ob.ref_count > 0, "reference to dead object {o}");
        ob.ref_count += 1;
    }

    /// Drop a reference; the last one terminates the object: its frames are removed from
    /// every pmap (vm_page_protect NONE) and released, and its backing object loses a shadow
    /// and a reference.
    pub fn vm_object_deallocate(&mut self, cpu: usize, mut o: ObjId) {
        loop {
            let ob = self.obj_mut(o);
            assert!(ob.ref_count > 0, "deallocate of dead object {o}");
            ob.ref_count -= 1;
            if ob.ref_count > 0 {
                return;
            }
            let pages = ob.pages;
            let backing = ob.backing.take();
            ob.pages = [NO_FRAME; MAX_OBJ_PAGES];
            for f in pages {
                if f != NO_FRAME {
                    self.pmap_remove_all(cpu, f);
                    self.phys.disown(f);
                }
            }
            match backing {
                Some(b) => {
                    self.obj_mut(b).shadow_count -= 1;
                    o = b;
                }
                None => return,
            }
        }
    }

    /// vm_object_shadow: a new anonymous object in front of `o`; the caller's reference on `o`
    /// becomes the shadow's.
    pub fn vm_object_shadow(&mut self, o: ObjId, offset: u8, size: u8) -> ObjId {
        let s = self.vm_object_allocate(ObjType::Anon, size);
        let sh = self.obj_mut(s);
        sh.backing = Some(o);
        sh.backing_offset = offset;
        self.obj_mut(o).shadow_count += 1;
        s
    }

    /// Walk the shadow chain from `first` for the page at `pindex`:
    /// (object holding it, its index there, frame).
    pub fn vm_page_lookup_chain(&self, first: ObjId, pindex: u8) -> Option<(ObjId, u8, FrameId)> {
        let mut o = first;
        let mut idx = pindex;
        loop {
            let ob = self.obj(o);
            assert!((idx as usize) < MAX_OBJ_PAGES, "page index {idx} beyond object {o}");
            let f = ob.pages[idx as usize];
            if f != NO_FRAME {
                return Some((o, idx, f));
            }
            match ob.backing {
                Some(b) => {
                    idx += ob.backing_offset;
                    o = b;
                }
                None => return None,
            }
        }
    }

    pub fn shadow_depth(&self, first: ObjId) -> u32 {
        let mut d = 0;
        let mut o = first;
        while let Some(b) = self.obj(o).backing {
            d += 1;
            o = b;
        }
        d
    }
}
