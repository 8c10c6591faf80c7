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
    /// The data file's vnode object (SPEC §3.4's `file0`, a shared mapping): its pages are
    /// read from and written back to the file; it holds a reference of its own.
    DataFile,
}

/// A swap slot: where the pager wrote an anonymous page it freed (swap_pager).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwapSlot {
    pub obj: ObjId,
    pub idx: u8,
    pub words: [u32; 4],
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
            if !self.swap.is_empty() {
                self.swap.retain(|s| s.obj != o);
            }
            for f in pages {
                if f != NO_FRAME {
                    self.pmap_remove_all(cpu, f);
                    self.orphan_busy(f);
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

    /// A page of a terminated object that a paused op has busy stays allocated until that op
    /// lets it go (`KOp::orphan`): in the kernel the op's object reference and paging-in-progress
    /// count hold off the termination (FreeBSD's vm_fault takes both on `first_object`;
    /// vm_object_terminate waits for the count). Without it a fault that does not revalidate
    /// (`no-revalidate`) resumed on a freed frame — a model assertion, not a kernel bug.
    fn orphan_busy(&mut self, f: FrameId) {
        if self.inflight == 0 {
            return;
        }
        if let Some(k) = self.cpus.iter_mut().filter_map(|c| c.kop.as_mut()).find(|k| k.busy == f && k.orphan == NO_FRAME) {
            k.orphan = f;
            self.phys.hold(f);
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
    /// (object holding it, its index there, frame) — `NO_FRAME` where that object's pager
    /// holds the page but no frame does (a file's page not read in, a page swapped out).
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
            if self.vm_pager_has(o, idx) {
                return Some((o, idx, NO_FRAME));
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

    /// vm_pager_has_page: the object's backing store holds page `idx` (a file's pages, an
    /// anonymous page written to swap).
    #[inline]
    pub fn vm_pager_has(&self, o: ObjId, idx: u8) -> bool {
        match self.obj(o).otype {
            ObjType::File | ObjType::DataFile => true,
            ObjType::Anon | ObjType::SharedAnon => {
                !self.swap.is_empty() && self.swap.iter().any(|s| s.obj == o && s.idx == idx)
            }
        }
    }

    /// What the object's backing store holds for page `idx` (None: nothing, zero-fill).
    pub fn vm_pager_content(&self, o: ObjId, idx: u8) -> Option<[u32; 4]> {
        match self.obj(o).otype {
            ObjType::File => Some(std::array::from_fn(|w| crate::program::text_word(idx, w as u8))),
            ObjType::DataFile => Some(self.data_file),
            _ => self.swap.iter().find(|s| s.obj == o && s.idx == idx).map(|s| s.words),
        }
    }

    /// vm_pager_get_pages: page `idx` of `o` read back into a new, clean frame of `o`.
    pub fn vm_pager_get(&mut self, o: ObjId, idx: u8) -> FrameId {
        let words = self.vm_pager_content(o, idx).expect("page-in of a page the pager does not hold");
        let f = self.phys.alloc(words);
        self.obj_mut(o).pages[idx as usize] = f;
        f
    }

    /// vm_pager_put_pages: page `idx` of `o` (frame `f`) written to its backing store.
    pub fn vm_pager_put(&mut self, o: ObjId, idx: u8, f: FrameId) {
        let words = self.phys.words(f);
        match self.obj(o).otype {
            // The executable is never written (a change is file-corruption, reported).
            ObjType::File => {}
            ObjType::DataFile => self.data_file = words,
            _ => match self.swap.iter_mut().find(|s| s.obj == o && s.idx == idx) {
                Some(s) => s.words = words,
                None => self.swap.push(SwapSlot { obj: o, idx, words }),
            },
        }
    }

    /// What a fault would read at (`o`, `idx`) if the page's frame were gone: the pager's
    /// copy, else the chain below, else zero (SPEC §3.4 `lost-data` compares a freed page
    /// with it).
    pub fn content_without_frame(&self, o: ObjId, idx: u8) -> [u32; 4] {
        if let Some(w) = self.vm_pager_content(o, idx) {
            return w;
        }
        let ob = self.obj(o);
        match ob.backing {
            Some(b) => match self.vm_page_lookup_chain(b, idx + ob.backing_offset) {
                Some((bo, bi, NO_FRAME)) => self.vm_pager_content(bo, bi).unwrap_or([0; 4]),
                Some((_, _, f)) => self.phys.words(f),
                None => [0; 4],
            },
            None => [0; 4],
        }
    }

    /// The bottom of `first`'s shadow chain and the index page `pindex` has there.
    pub fn vm_object_bottom(&self, first: ObjId, pindex: u8) -> (ObjId, u8) {
        let (mut o, mut idx) = (first, pindex);
        while let Some(b) = self.obj(o).backing {
            idx += self.obj(o).backing_offset;
            o = b;
        }
        (o, idx)
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

/// vm_object_page_clean (msync, SPEC §3.4) and the `clean` phase it shares with the page
/// daemon: the page write-protected everywhere (`pmap_clearbit(PG_RW)`, gathering the modified
/// bits), and after the shootdown a dirty page written to its backing store and marked clean.
impl Machine {
    /// msync's first phase: waits for the map lock (it does not take it) and a busy page, then
    /// busies the data file's resident page and write-protects it.
    pub(crate) fn msync_start(&mut self, cpu: usize, k: &mut crate::kop::KOp, va: u8) -> Option<crate::program::Point> {
        use crate::kop::{Lock, Phase};
        let pid = k.pid;
        if self.map_locked_by_other(cpu, pid) {
            return Some(k.wait(Lock::Map(pid)));
        }
        let page = self.proc(pid).map.lookup(va).map(|i| self.proc(pid).map.entries[i]).and_then(|e| {
            let idx = e.offset + (va - e.start);
            (self.obj(e.object).otype == ObjType::DataFile).then(|| (e.object, idx, self.obj(e.object).pages[idx as usize]))
        });
        let Some((o, idx, f)) = page.filter(|x| x.2 != NO_FRAME) else {
            k.phase = Phase::Finish;
            return None;
        };
        if self.busy_by_other(cpu, f) {
            return Some(k.wait(Lock::Busy(f)));
        }
        if let Some(l) = self.remove_all_blocked(cpu, f) {
            return Some(k.wait(l));
        }
        k.busy = f;
        (k.aux, k.aux2) = (o, idx as u32);
        self.pmap_clearbit_rw(cpu, f);
        k.phase = self.after_changes(cpu, k);
        None
    }

    /// `Phase::Clean` (msync, pageout): a dirty page is written out (`clean` first) and marked
    /// clean; msync then lets go of the page, which a clean page with a store its file lacks
    /// would lose (`lost-data`).
    pub(crate) fn clean_phase(&mut self, k: &mut crate::kop::KOp, stop: Option<crate::program::Point>) -> Option<crate::program::Point> {
        use crate::kop::Phase;
        use crate::program::{Op, Point};
        let (o, idx, f) = (k.aux, k.aux2 as u8, k.busy);
        let owned = self.obj(o).ref_count > 0 && self.obj(o).pages[idx as usize] == f;
        if owned && self.vm_page_is_dirty(f) {
            if k.yield_at(Point::Clean, stop) {
                return Some(Point::Clean);
            }
            self.vm_pager_put(o, idx, f);
            self.phys.get_mut(f).dirty = false;
        }
        if let Op::Msync(_) = k.op {
            if owned && self.phys.words(f) != self.data_file {
                let (w, d) = (crate::phys::hex_words(self.phys.words(f)), crate::phys::hex_words(self.data_file));
                self.lost_data(format!("msync left frame {f} clean holding {w}, the file {d}"));
            }
            k.busy = NO_FRAME;
            k.phase = Phase::Finish;
        } else {
            k.phase = Phase::Free;
        }
        None
    }

    /// A page is dirty if its flag or a PTE mapping it says so (SPEC §3.4).
    pub fn vm_page_is_dirty(&self, f: FrameId) -> bool {
        self.phys.get(f).dirty
            || self.procs.iter().any(|p| p.alive && p.pmap.pte.iter().any(|t| t.frame == f && t.modified))
    }
}


#[cfg(test)]
mod tests {
    use crate::program::Outcome;
    use crate::testutil::*;

    /// A procfs_write paused at its COW's `ipi_wait` has the new page busy; its target's
    /// munmap terminates the object. The page stays allocated for the paused write (its
    /// object reference in the kernel) and is freed once the write lets it go — before,
    /// `no-revalidate` resumed onto a freed frame (a model assertion, found by a campaign).
    #[test]
    fn a_busy_page_of_a_terminated_object_outlives_the_object_until_its_op_lets_go() {
        for kernel in ["no-revalidate", "fixed"] {
            let mut m = machine(kernel, "cpus=3");
            for l in ["cpu0 fork", "cpu0 mprotect data0 rw", "cpu2 switch P2.T1", "cpu0 spawn", "cpu2 load data0.0", "cpu1 switch P1.T2"] {
                line(&mut m, l);
            }
            assert_eq!(line(&mut m, "cpu1 procfs_write P1 data0.0 0x0 until ipi_wait"), Outcome::Paused);
            let f = m.cpus[1].kop.unwrap().busy;
            assert_ne!(f, crate::phys::NO_FRAME);
            for l in ["cpu0 switch idle", "cpu2 switch P1.T1"] {
                line(&mut m, l);
            }
            assert_eq!(line(&mut m, "cpu2 munmap data0"), Outcome::Ok);
            assert!(!m.phys.is_freed(f), "{kernel}: freed under the paused op");
            assert_eq!(m.cpus[1].kop.unwrap().orphan, f);
            assert_eq!(line(&mut m, "cpu1 resume"), Outcome::Efault); // retry's lookup: unmapped
            assert!(m.phys.is_freed(f), "{kernel}: never freed");
        }
    }
}
