//! vm_fault and vm_fault_page as phases: the lookup (vm_map_lookup, the shadow-chain walk,
//! zero-fill), copy-on-write by copy or rename, and pmap_enter — each able to stop at its
//! yield points — and the user access that faults (trap → vm_fault, then the access again).
//! The state kept across a yield point is `FaultState`, FreeBSD's `struct faultstate` with its
//! `map_generation`.

use crate::kop::{KOp, Lock, Phase};
use crate::machine::Machine;
use crate::phys::{FrameId, NO_FRAME};
use crate::pmap::Pte;
use crate::program::{Addr, Op, Outcome, Point, NPAGES};
use crate::vm_object::{ObjId, ObjType};

#[derive(Clone, Copy, Debug)]
pub struct FaultType {
    pub write: bool,
    /// VM_PROT_OVERRIDE_WRITE (procfs/ptrace): the lookup checks and returns *max* prot.
    pub override_write: bool,
}

pub const VM_PROT_READ: FaultType = FaultType { write: false, override_write: false };
pub const VM_PROT_WRITE: FaultType = FaultType { write: true, override_write: false };
pub const VM_PROT_OVERRIDE_WRITE: FaultType = FaultType { write: true, override_write: true };

/// The phases of one fault. (The order is part of the semantic features and explore's state
/// key: append, do not reorder.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FPhase {
    Lookup,
    Cow,
    CowIpiWait,
    PmapEnter,
    /// Break-before-make: the old PTE is cleared and shot down; the new one is written after.
    BbmIpiWait,
    /// The PTE was upgraded in place (same frame); wait for the shootdown.
    EnterIpiWait,
}

/// FreeBSD's `struct faultstate`, reduced to this model.
#[derive(Clone, Copy, Debug)]
pub struct FaultState {
    pub phase: FPhase,
    /// The map faulted (the caller's, or procfs's target).
    pub pid: u32,
    pub va: u8,
    pub ft: FaultType,
    pub first: ObjId,
    pub pindex: u8,
    /// The object the page was found in (a backing object before the COW).
    pub found_obj: ObjId,
    pub found_idx: u8,
    pub frame: FrameId,
    pub writable: bool,
    pub map_gen: u32,
    /// The COW path ran (copy or rename).
    pub cowed: bool,
    /// `cow-make-before-break`: the old frame whose mappings are removed only after the new
    /// PTE is entered.
    pub unmap_after: FrameId,
}

impl FaultState {
    pub fn new(pid: u32, va: u8, ft: FaultType) -> FaultState {
        FaultState {
            phase: FPhase::Lookup,
            pid,
            va,
            ft,
            first: 0,
            pindex: 0,
            found_obj: 0,
            found_idx: 0,
            frame: NO_FRAME,
            writable: false,
            map_gen: 0,
            cowed: false,
            unmap_after: NO_FRAME,
        }
    }
}

impl KOp {
    /// The user access at `a` missed: on to its fault (VM_PROT_WRITE for a store).
    #[inline]
    pub(crate) fn to_user_fault(&mut self, a: Addr) {
        let ft = if matches!(self.op, Op::Store(..)) { VM_PROT_WRITE } else { VM_PROT_READ };
        self.fs = FaultState::new(self.pid, a.page, ft);
        self.paused = false;
        self.phase = Phase::UserFault;
    }
}

/// How a fault's phase ended.
pub(crate) enum Fs {
    Pause(Point),
    Ok,
    /// KERN_PROTECTION_FAILURE
    Protection,
    /// The map's process is gone.
    Dead,
    /// KERN_INVALID_ADDRESS: no map entry at the page (SPEC §3.4).
    Unmapped,
}

impl Machine {
    // ---- the user access (trap) ----------------------------------------------------------

    /// The hardware's translation for a user access: the TLB, else the page walk (which
    /// fills the TLB). None: it faults (a TLB entry that does not allow the access is gone).
    /// A store through an entry not yet used for a store sets the PTE's modified bit — the
    /// hardware's locked update of the PTE in memory, which faults instead if the PTE no
    /// longer maps that frame writable (SPEC §3.4).
    #[inline]
    fn user_translate(&mut self, cpu: usize, pid: u32, va: u8, write: bool) -> Option<FrameId> {
        let tlb = &mut self.cpus[cpu].tlb;
        if let Some(i) = tlb.position(pid, va) {
            let te = tlb.entries[i];
            if !write || (te.writable && te.dirty) {
                return Some(te.frame);
            }
            if te.writable {
                let pte = &mut self.procs[pid as usize - 1].pmap.pte[va as usize];
                if pte.frame == te.frame && pte.writable {
                    pte.modified = true;
                    self.cpus[cpu].tlb.entries[i].dirty = true;
                    return Some(te.frame);
                }
            }
            self.cpus[cpu].tlb.invalidate(pid, va);
        }
        let pte = &mut self.procs[pid as usize - 1].pmap.pte[va as usize];
        if pte.present() && (!write || pte.writable) {
            if write {
                pte.modified = true;
            }
            let pte = *pte;
            self.tlb_fill(cpu, pid, va, pte, write);
            return Some(pte.frame);
        }
        None
    }

    /// The load or store itself, through frame `f`.
    #[inline]
    fn user_access_done(&mut self, op: Op, f: FrameId) -> Outcome {
        match op {
            Op::Store(a, v) => {
                self.write_word(f, a.word, v);
                Outcome::Ok
            }
            Op::Load(a) => Outcome::Value(self.phys.word(f, a.word)),
            _ => unreachable!(),
        }
    }

    /// `Phase::UserAccess` before any op value exists: the access when the hardware serves
    /// it (no kernel code runs), else None (the caller starts the op at its fault).
    #[inline]
    pub(crate) fn user_access_fast(&mut self, cpu: usize, pid: u32, op: Op, a: Addr) -> Option<Outcome> {
        let f = self.user_translate(cpu, pid, a.page, matches!(op, Op::Store(..)))?;
        Some(self.user_access_done(op, f))
    }

    /// `Phase::UserAccess`: the access again after a fault (at most three faults).
    pub(crate) fn user_access(&mut self, cpu: usize, k: &mut KOp) -> Option<Point> {
        let (Op::Load(a) | Op::Store(a, _)) = k.op else { unreachable!() };
        let write = matches!(k.op, Op::Store(..));
        if k.tries >= 3 {
            panic!("user access to page {} by P{} did not converge after vm_fault", a.page, k.pid);
        }
        match self.user_translate(cpu, k.pid, a.page, write) {
            Some(f) => {
                k.result = self.user_access_done(k.op, f);
                k.phase = Phase::Finish;
            }
            None => k.to_user_fault(a),
        }
        None
    }

    /// `Phase::UserFault`: vm_fault with pmap_enter; a protection failure is a SEGV.
    pub(crate) fn user_fault(&mut self, cpu: usize, k: &mut KOp, stop: Option<Point>) -> Option<Point> {
        match self.fault_step(cpu, k, stop, true) {
            Some(Fs::Pause(p)) => Some(p),
            None => None,
            Some(Fs::Ok) => {
                k.busy = NO_FRAME;
                k.map_read = 0;
                k.tries += 1;
                k.phase = Phase::UserAccess;
                None
            }
            Some(Fs::Protection) | Some(Fs::Dead) | Some(Fs::Unmapped) => {
                k.busy = NO_FRAME;
                // A SEGV is decided only once no sibling is in the kernel (killalllwps): else
                // the access waits and is retried whole, so the fatal fault is linearized where
                // the process dies.
                if self.sibling_in_kernel(cpu, k.pid) {
                    k.phase = Phase::UserAccess;
                    k.tries = 0;
                    return Some(k.wait(Lock::Siblings(k.pid)));
                }
                k.result = Outcome::Segv;
                k.phase = Phase::Exit;
                None
            }
        }
    }

    /// `Phase::PageFault`: vm_fault_page for procfs and umtx — the page returned held (and
    /// still busy where the kernel keeps it so through the access).
    pub(crate) fn page_fault(&mut self, cpu: usize, k: &mut KOp, stop: Option<Point>) -> Option<Point> {
        match self.fault_step(cpu, k, stop, self.vm_fault_page_enters()) {
            Some(Fs::Pause(p)) => Some(p),
            None => None,
            Some(Fs::Protection) => {
                k.busy = NO_FRAME;
                let Op::UmtxSleep(..) = k.op else { panic!("vm_fault_page failed where the lookup allows it") };
                k.result = Outcome::Efault;
                k.phase = Phase::Finish;
                None
            }
            Some(Fs::Unmapped) => {
                k.busy = NO_FRAME;
                k.result = Outcome::Efault;
                k.phase = Phase::Finish;
                None
            }
            Some(Fs::Dead) => {
                k.busy = NO_FRAME;
                k.result = Outcome::Esrch;
                k.phase = Phase::Finish;
                None
            }
            Some(Fs::Ok) => {
                // Paused on the way (a COW's ipi_wait): the target may have changed or died
                // since; revalidate before the page is returned held.
                if !self.revalidate(k) {
                    return None;
                }
                k.map_read = 0;
                let f = k.fs.frame;
                self.phys.hold(f);
                if k.fs.ft.write {
                    // vm_fault_page for write dirties the page (the kernel's write sets no
                    // modified bit).
                    self.phys.get_mut(f).dirty = true;
                }
                k.held = f;
                if !self.kernel.busy_through_access {
                    k.busy = NO_FRAME;
                }
                let retry = self.kernel.procfs_retry && matches!(k.op, Op::ProcfsWrite(..)) && k.fs.cowed && !k.retried;
                k.phase = if retry { Phase::Retry } else { Phase::Access };
                None
            }
        }
    }

    /// Whether vm_fault_page ends in pmap_enter (before 385c96e4) or only returns the page.
    #[inline]
    fn vm_fault_page_enters(&self) -> bool {
        self.kernel.vm_fault_page_pmap_enter
    }

    /// The yield points line `op` can reach under this kernel (`Op::points`).
    pub fn points_of(&self, op: &Op) -> u16 {
        op.points(self.vm_fault_page_enters())
    }

    // ---- vm_fault_object as phases ------------------------------------------------------

    /// Whether the map and the shadow chain still give the page the fault found (DragonFly's
    /// KERN_TRY_AGAIN, FreeBSD's `map_generation` check).
    fn fault_still_valid(&self, fs: &FaultState) -> bool {
        let p = self.proc(fs.pid);
        if !p.alive || p.map.generation != fs.map_gen {
            return false;
        }
        let Some(i) = p.map.lookup(fs.va) else { return false };
        let e = p.map.entries[i];
        self.vm_page_lookup_chain(e.object, e.offset + (fs.va - e.start)).map(|(o, _, f)| (o, f))
            == Some((fs.found_obj, fs.frame))
    }

    /// A fault resumed after a yield point revalidates (kernel knob), else starts over.
    #[inline]
    pub(crate) fn revalidate(&self, k: &mut KOp) -> bool {
        if k.paused && self.kernel.fault_revalidate && !self.fault_still_valid(&k.fs) {
            k.busy = NO_FRAME;
            k.map_read = 0;
            k.fs = FaultState::new(k.fs.pid, k.fs.va, k.fs.ft);
            k.paused = false;
            return false;
        }
        true
    }

    /// One phase of the fault in `k.fs`. None: go on; Some(Ok) the page is found (and, with
    /// `enter`, its PTE entered).
    fn fault_step(&mut self, cpu: usize, k: &mut KOp, stop: Option<Point>, enter: bool) -> Option<Fs> {
        match k.fs.phase {
            FPhase::Lookup => self.fault_lookup(cpu, k, enter),
            FPhase::Cow => {
                if k.yield_at(Point::Cow, stop) {
                    return Some(Fs::Pause(Point::Cow));
                }
                if !self.revalidate(k) {
                    return None;
                }
                self.fault_cow(cpu, k, enter)
            }
            FPhase::CowIpiWait => {
                if k.yield_at(Point::IpiWait, stop) {
                    return Some(Fs::Pause(Point::IpiWait));
                }
                self.ipi_wait_pass(cpu);
                fault_found(&mut k.fs, enter)
            }
            FPhase::PmapEnter => {
                if k.yield_at(Point::PmapEnter, stop) {
                    return Some(Fs::Pause(Point::PmapEnter));
                }
                self.fault_pmap_enter(cpu, k)
            }
            FPhase::BbmIpiWait | FPhase::EnterIpiWait => {
                if k.yield_at(Point::IpiWait, stop) {
                    return Some(Fs::Pause(Point::IpiWait));
                }
                self.ipi_wait_pass(cpu);
                if k.fs.phase == FPhase::BbmIpiWait {
                    self.scratch.dirty.pte = true;
                    self.proc_mut(k.fs.pid).pmap.pte[k.fs.va as usize] = Pte::new(k.fs.frame, k.fs.writable);
                }
                Some(Fs::Ok)
            }
        }
    }

    /// vm_map_lookup and the walk down the shadow chain: the page found (or zero-filled into
    /// the top object), busied; a needs-copy entry written through gets its shadow object.
    fn fault_lookup(&mut self, cpu: usize, k: &mut KOp, enter: bool) -> Option<Fs> {
        let (pid, va) = (k.fs.pid, k.fs.va);
        let mut fs = k.fs;
        if pid as usize > self.procs.len() || !self.proc(pid).alive {
            return Some(Fs::Dead);
        }
        if self.map_locked_by_other(cpu, pid) {
            return Some(Fs::Pause(k.wait(Lock::Map(pid))));
        }
        let Some(i) = self.proc(pid).map.lookup(va) else { return Some(Fs::Unmapped) };
        let e = self.proc(pid).map.entries[i];
        let prot_write = if fs.ft.override_write { e.max_write } else { e.prot_write };
        if fs.ft.write && !prot_write {
            return Some(Fs::Protection);
        }
        let mut found = self.vm_page_lookup_chain(e.object, e.offset + (va - e.start));
        if let Some((o, idx, f)) = found {
            if f == NO_FRAME {
                // Paged out: the pager reads it back into a new, clean frame of its object.
                let f = self.vm_pager_get(o, idx);
                found = Some((o, idx, f));
            } else if self.busy_by_other(cpu, f) {
                return Some(Fs::Pause(k.wait(Lock::Busy(f))));
            }
        }
        let mut writable = prot_write;
        if e.needs_copy {
            if fs.ft.write {
                // vm_map_lookup upgrades to the write lock to give the entry its shadow.
                let s = self.vm_object_shadow(e.object, e.offset, e.end - e.start);
                let map = &mut self.proc_mut(pid).map;
                map.lock_for_write();
                let em = &mut map.entries[i];
                em.object = s;
                em.offset = 0;
                em.needs_copy = false;
            } else {
                writable = false;
            }
        }
        let e = self.proc(pid).map.entries[i];
        fs.first = e.object;
        fs.pindex = e.offset + (va - e.start);
        fs.map_gen = self.proc(pid).map.generation;
        k.paused = false;
        if self.kernel.fault_map_read_lock {
            k.map_read = pid;
        }
        match found {
            None => {
                // Nothing in the chain: zero-fill into the top object (the bottom of an
                // anonymous chain; a file object has every page).
                let f = self.phys.alloc([0; 4]);
                self.obj_mut(fs.first).pages[fs.pindex as usize] = f;
                (fs.frame, fs.found_obj, fs.found_idx) = (f, fs.first, fs.pindex);
            }
            Some((o, oidx, f)) => {
                (fs.frame, fs.found_obj, fs.found_idx) = (f, o, oidx);
                if o != fs.first {
                    if fs.ft.write {
                        fs.phase = FPhase::Cow;
                    } else {
                        // A page of a backing object is mapped read-only.
                        writable = false;
                    }
                }
            }
        }
        fs.writable = writable;
        k.busy = fs.frame;
        let r = if fs.phase == FPhase::Lookup { fault_found(&mut fs, enter) } else { None };
        k.fs = fs;
        r
    }

    /// The copy-on-write: the backing page renamed into the top object when nothing else can
    /// see it (DragonFly's `v_cow_optim`-era rename), else copied — the copy's sleepers woken
    /// (VMEVENT_COW) and the old page's mappings removed (before or after pmap_enter).
    fn fault_cow(&mut self, cpu: usize, k: &mut KOp, enter: bool) -> Option<Fs> {
        let old = k.fs.frame;
        let (first, pindex, o, oidx) = (k.fs.first, k.fs.pindex, k.fs.found_obj, k.fs.found_idx);
        let ob = self.obj(o);
        let rename =
            self.obj(first).backing == Some(o) && ob.otype == ObjType::Anon && ob.ref_count == 1 && ob.shadow_count == 1;
        // A copy leaves the old page mapped elsewhere: pmap_remove_all (vm_page_protect(NONE)).
        let remove_all = !rename && self.kernel.cow_copy_remove_all;
        if remove_all && !self.invals.is_empty() {
            if let Some(l) = self.remove_all_blocked(cpu, old) {
                return Some(Fs::Pause(k.wait(l)));
            }
        }
        let new = if rename {
            self.obj_mut(o).pages[oidx as usize] = NO_FRAME;
            self.obj_mut(first).pages[pindex as usize] = old;
            self.phys.get_mut(old).dirty = true;
            old
        } else {
            let words = self.phys.words(old);
            let new = self.phys.alloc(words);
            self.phys.get_mut(new).dirty = true;
            self.obj_mut(first).pages[pindex as usize] = new;
            if remove_all {
                if enter && !self.kernel.cow_break_before_make {
                    // Make before break: the old frame's mappings go after pmap_enter.
                    k.fs.unmap_after = old;
                } else {
                    self.pmap_remove_all(cpu, old);
                }
            }
            // The sleepers are woken once the old page is unmapped (DragonFly vm_fault.c
            // at 385c96e4, 1647-1649: vm_page_copy, vm_page_protect(NONE), vm_page_event).
            if self.kernel.cow_event {
                self.vm_page_event_cow(old);
            }
            new
        };
        (k.fs.frame, k.fs.found_obj, k.fs.found_idx, k.fs.cowed) = (new, first, pindex, true);
        k.busy = new;
        if self.own_records(cpu) {
            k.fs.phase = FPhase::CowIpiWait;
            return None;
        }
        fault_found(&mut k.fs, enter)
    }

    /// The lock pmap_remove_all(`old`) would wait for now: a PTE of `old` another op has
    /// locked, or a mapping of `old` already cleared by another op whose shootdown is still
    /// pending — its pv entry is still on the page, and this removal must not return before
    /// that CPU's TLBs lose `old` (explore found the 6-line stale read without it:
    /// test_cow_remove_all_waits_for_a_pending_shootdown_of_the_same_page).
    pub(crate) fn remove_all_blocked(&self, cpu: usize, old: FrameId) -> Option<Lock> {
        for p in self.procs.iter().filter(|p| p.alive) {
            for v in 0..NPAGES as u8 {
                if p.pmap.pte[v as usize].frame == old && self.pte_locked_by_other(cpu, p.pid, v) {
                    return Some(Lock::Pte(p.pid, v));
                }
            }
        }
        self.pte_lock_owner(cpu, |r| r.frame == old).map(|r| Lock::Pte(r.asid, r.va))
    }

    /// pmap_enter of the page found: break before make when the frame changes, an in-place
    /// upgrade otherwise (each shot down); `cow-make-before-break` enters first.
    fn fault_pmap_enter(&mut self, cpu: usize, k: &mut KOp) -> Option<Fs> {
        let (pid, va) = (k.fs.pid, k.fs.va);
        let gone = k.fs.unmap_after;
        if !self.revalidate(k) {
            if gone != NO_FRAME {
                // `cow-make-before-break` starting over: the old frame's deferred unmap is not
                // lost (done, and waited for, now).
                self.pmap_remove_all(cpu, gone);
                self.ipi_wait_pass(cpu);
            }
            return None;
        }
        if self.pte_locked_by_other(cpu, pid, va) {
            return Some(Fs::Pause(k.wait(Lock::Pte(pid, va))));
        }
        let new = Pte::new(k.fs.frame, k.fs.writable);
        self.scratch.dirty.pte = true;
        let old = self.proc(pid).pmap.pte[va as usize];
        if gone != NO_FRAME {
            // `cow-make-before-break`: the new PTE first, then the shootdowns of the replaced
            // entry and of the old frame's other mappings.
            k.fs.unmap_after = NO_FRAME;
            self.proc_mut(pid).pmap.pte[va as usize] = new;
            if old.present() {
                self.pmap_protect_modified(old);
            }
            if old.present() && !old.same_mapping(&new) {
                self.pmap_inval(cpu, pid, va);
            }
            self.pmap_remove_all(cpu, gone);
        } else if old.present() && !old.same_mapping(&new) {
            self.pmap_protect_modified(old);
            if old.frame != new.frame {
                // Break before make: clear, shoot down, then write.
                self.proc_mut(pid).pmap.pte[va as usize] = Pte::ABSENT;
                self.pmap_inval_of(cpu, pid, va, old.frame);
                if self.own_records(cpu) {
                    k.fs.phase = FPhase::BbmIpiWait;
                    return None;
                }
                self.proc_mut(pid).pmap.pte[va as usize] = new;
            } else {
                self.proc_mut(pid).pmap.pte[va as usize] = new;
                self.pmap_inval(cpu, pid, va);
            }
        } else {
            // Absent, or the same translation again: its modified bit stays with the PTE.
            let modified = old.present() && old.modified;
            self.proc_mut(pid).pmap.pte[va as usize] = Pte { modified, ..new };
            return Some(Fs::Ok);
        }
        if self.own_records(cpu) {
            k.fs.phase = FPhase::EnterIpiWait;
            return None;
        }
        Some(Fs::Ok)
    }
}

/// The page is found (after any COW): on to pmap_enter, or done.
#[inline]
fn fault_found(fs: &mut FaultState, enter: bool) -> Option<Fs> {
    if enter {
        fs.phase = FPhase::PmapEnter;
        None
    } else {
        Some(Fs::Ok)
    }
}

#[cfg(test)]
mod tests {
    use crate::kop::Phase;
    use crate::program::Outcome::*;
    use crate::testutil::*;

    #[test]
    fn a_read_fault_zero_fills_a_private_page_and_maps_it_writable() {
        let mut m = machine("fixed", "cpus=1");
        assert_eq!(line(&mut m, "cpu0 load data0.0"), Value(0));
        let p = pte(&m, 1, "data0");
        assert!(p.present() && p.writable, "{p:?}");
        assert_eq!(tlb(&m, 0, 1, "data0"), Some((p.frame, true)));
        // text is a read-only copy-on-write mapping of the file: mapped read-only
        assert_eq!(line(&mut m, "cpu0 load text0.1"), Value(crate::program::text_word(0, 1)));
        assert!(!pte(&m, 1, "text0").writable);
    }

    #[test]
    fn a_store_after_fork_copies_the_page_the_child_keeps_the_old_content() {
        let mut m = machine("fixed", "cpus=1");
        line(&mut m, "cpu0 store data0.0 0x1");
        assert_eq!(line(&mut m, "cpu0 fork"), Pid(2));
        let old = pte(&m, 1, "data0").frame;
        assert_eq!(line(&mut m, "cpu0 store data0.0 0x2"), Ok);
        let p = pte(&m, 1, "data0");
        assert!(p.frame != old && p.writable);
        line(&mut m, "cpu0 switch P2.T1");
        assert_eq!(line(&mut m, "cpu0 load data0.0"), Value(1));
        assert_eq!(pte(&m, 2, "data0").frame, old);
    }

    /// Paused at `cow`, the fault meets an mprotect when resumed: `fixed` revalidates (the map
    /// generation moved) and the write is refused; `no-revalidate` writes through what it found.
    fn cow_then_mprotect(kernel: &str) -> crate::program::Outcome {
        let mut m = machine(kernel, "cpus=2");
        assert_eq!(line(&mut m, "cpu0 spawn"), Thread(1, 2));
        line(&mut m, "cpu1 switch P1.T2");
        line(&mut m, "cpu0 store data0.0 0x1");
        line(&mut m, "cpu0 fork");
        assert_eq!(line(&mut m, "cpu0 store data0.0 0x2 until cow"), Paused);
        assert_eq!(m.cpus[0].kop.map(|k| k.phase), Some(Phase::UserFault));
        assert_eq!(line(&mut m, "cpu1 mprotect data0 r"), Ok);
        line(&mut m, "cpu0 resume")
    }

    #[test]
    fn a_fault_resumed_after_a_map_change_revalidates() {
        assert_eq!(cow_then_mprotect("fixed"), Segv);
        assert_eq!(cow_then_mprotect("no-revalidate"), Ok);
    }

    #[test]
    fn the_copy_shoots_down_the_old_frame_and_the_remote_entry_waits_for_its_ipi() {
        let mut m = machine("fixed", "cpus=2");
        line(&mut m, "cpu0 spawn");
        line(&mut m, "cpu1 switch P1.T2");
        line(&mut m, "cpu0 store data0.0 0x1");
        line(&mut m, "cpu0 fork");
        assert_eq!(line(&mut m, "cpu1 load data0.0"), Value(1));
        let old = pte(&m, 1, "data0").frame;
        assert_eq!(tlb(&m, 1, 1, "data0"), Some((old, false)));
        assert_eq!(line(&mut m, "cpu0 store data0.0 0x2 until ipi_wait"), Paused);
        // P1's PTE of the old frame is gone and cpu1 has the invalidation pending, its entry
        // still cached (SPEC §3.2: until the initiator passes ipi_wait)
        assert!(!pte(&m, 1, "data0").present());
        assert!(m.inval_pending(1, 1, page("data0")));
        assert_eq!(tlb(&m, 1, 1, "data0"), Some((old, false)));
        assert_eq!(line(&mut m, "cpu1 ipi"), Ok);
        assert_eq!(tlb(&m, 1, 1, "data0"), None);
        assert_eq!(m.invals.len(), 1, "the record lives until the initiator's ipi_wait");
        assert_eq!(line(&mut m, "cpu0 resume"), Ok);
        assert!(m.invals.is_empty());
        let p = pte(&m, 1, "data0");
        assert!(p.frame != old && p.writable);
    }
}
