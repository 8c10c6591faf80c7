//! Kernel operations in flight (SPEC §3.2): an operation is a value kept per CPU — its phase
//! and what it has found, like FreeBSD's `struct faultstate` — and `advance` runs it to its
//! next yield point. A plain line is `advance` with no stop point: it runs to completion and
//! every `ipi_wait` it meets delivers its IPIs at once, so it behaves as the atomic operation.
//!
//! Locks (each an ownership fact on an op in flight, see `Lock`):
//! - busy page: `KOp::busy`. DragonFly's vm_fault_object() keeps `fs.m` busied (PG_BUSY) from
//!   vm_page_lookup() until vm_fault()'s pmap_enter(); vm_fault_page() returns it to a caller
//!   (procfs_rwmem, umtx) that accesses it; faults and fork meeting it sleep in
//!   vm_page_sleep_busy() (vm_page.c).
//! - map lock: `KOp::map_lock`. vm_map_protect()/vm_map_madvise() hold vm_map_lock() across
//!   pmap_protect()/pmap_remove() (vm_map.c), vmspace_fork() holds the old map's lock across
//!   the whole copy, exit1() → vmspace_exit() tears the map down under it; vm_map_lookup()
//!   (the fault's lookup) takes it shared and so waits.
//! - PTE lock: an `Inval` record owned by an op. DragonFly's pmap holds the pv entry / pte
//!   across pmap_inval_interlock()…pmap_inval_deinterlock() (pmap.c, pmap_inval.c); other pmap
//!   operations on that PTE wait for it.
//! - siblings in the kernel: exit1() → killalllwps() waits until every other lwp of the
//!   process has left the kernel, and PSTALL() until no one holds the process (procfs_rwmem
//!   holds its target with PHOLD) (kern_exit.c).
//! - mid-switch: between the halves of cpu_switch() the CPU runs no address space (its
//!   `space` is `MID_SWITCH`).

use crate::fault::{FaultType, VM_PROT_OVERRIDE_WRITE, VM_PROT_READ, VM_PROT_WRITE};
use crate::hw::TlbMode;
use crate::machine::{Machine, IDLE_SPACE, MAX_PROCS};
use crate::phys::{FrameId, NO_FRAME};
use crate::pmap::Pte;
use crate::proc::ThreadState;
use crate::program::{is_text, Op, Outcome, Point, Target, FIRST_TEXT, NPAGES, SHM};
use crate::umtx::Sleeper;
use crate::vm_object::{ObjId, ObjType};

/// A CPU between the two halves of a context switch runs no address space.
pub const MID_SWITCH: u32 = u32::MAX;

/// A shootdown in progress, like DragonFly's `pmap_inval_info`: the owner changed the PTE of
/// (asid, va) and waits for the CPUs in `pending` to acknowledge. The record lives until the
/// owner has passed its `ipi_wait`; while it lives the owner holds that PTE's lock. A CPU's
/// pending-invalidation queue is the records with its bit set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inval {
    pub owner: u8,
    pub asid: u32,
    pub va: u8,
    pub pending: u8,
    /// The frame the PTE mapped before the change. Until the record is gone the mapping is
    /// still on that page's pv list, as in DragonFly, where pmap_remove_all() takes the pv
    /// entry off `m->md.pv_list` only after pmap_inval_deinterlock(): another
    /// pmap_remove_all() of the page meets it and waits (see `vm_fault` COW).
    pub frame: FrameId,
}

/// What an op paused at `wait` is waiting for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lock {
    Busy(FrameId),
    Map(u32),
    Pte(u32, u8),
    Siblings(u32),
}

impl std::fmt::Display for Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Lock::Busy(fr) => write!(f, "busy page (frame {fr})"),
            Lock::Map(p) => write!(f, "P{p}'s map lock"),
            Lock::Pte(p, va) => write!(f, "P{p}'s PTE of {}", crate::program::PAGE_NAMES[va as usize]),
            Lock::Siblings(p) => write!(f, "P{p}'s other threads and procfs users to leave the kernel"),
        }
    }
}

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
    fn new(pid: u32, va: u8, ft: FaultType) -> FaultState {
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Start,
    /// User load/store: TLB, page walk, else fault.
    UserAccess,
    UserFault,
    /// vm_fault_page for procfs/umtx.
    PageFault,
    Retry,
    Access,
    Sleep,
    /// After the op's PTE changes: its `ipi_wait`, then `Finish`.
    IpiWait,
    Finish,
    /// exit / SEGV: killalllwps, then tear down.
    Exit,
    ExitIpiWait,
    ExitFinish,
    /// A sibling's exit tore the process down while this op waited to exit: it only reports.
    Joined,
    SwitchEnter,
}

/// A kernel operation in flight on a CPU.
#[derive(Clone, Copy, Debug)]
pub struct KOp {
    pub op: Op,
    /// The thread performing it (the one running when its first line ran).
    pub pid: u32,
    pub tid: u32,
    pub phase: Phase,
    pub fs: FaultState,
    /// The yield point it is paused at (passed without stopping when resumed).
    pub at: Option<Point>,
    pub waiting: Option<Lock>,
    /// Page this op keeps busy.
    pub busy: FrameId,
    /// Page this op holds (vm_fault_page's result).
    pub held: FrameId,
    /// Pid whose map lock this op holds (0: none).
    pub map_lock: u32,
    pub tries: u8,
    pub result: Outcome,
    /// Paused since its fault's lookup (revalidate on the way on).
    pub paused: bool,
    pub retried: bool,
    /// madvise: the object the page's entry pointed to (deallocated after ipi_wait);
    /// switch: the address space left.
    pub aux: u32,
    /// switch: the address space entered.
    pub aux2: u32,
    /// Yield points arrived at since this line started or resumed it (explore: an `until P`
    /// variant differs from the plain line only if the plain line arrived at P).
    pub arrived: u8,
}

pub enum Adv {
    Paused(Point),
    Done(Outcome),
}

enum Fs {
    Pause(Point),
    Ok,
    Protection,
    Dead,
}

macro_rules! wait_for {
    ($k:expr, $lock:expr) => {{
        $k.waiting = Some($lock);
        $k.paused = true;
        $k.at = None;
        return Some(Point::Wait);
    }};
}

impl KOp {
    pub fn new(op: Op, pid: u32, tid: u32) -> KOp {
        KOp {
            op,
            pid,
            tid,
            phase: Phase::Start,
            fs: FaultState::new(0, 0, VM_PROT_READ),
            at: None,
            waiting: None,
            busy: NO_FRAME,
            held: NO_FRAME,
            map_lock: 0,
            tries: 0,
            result: Outcome::Ok,
            paused: false,
            retried: false,
            aux: 0,
            aux2: 0,
            arrived: 0,
        }
    }

    /// Arrives at yield point `p`: stop if it is the stop point (and not the point this op
    /// was just resumed from).
    #[inline]
    fn yield_at(&mut self, p: Point, stop: Option<Point>) -> bool {
        if self.at == Some(p) {
            self.at = None;
            return false;
        }
        self.arrived |= p.bit();
        if stop == Some(p) {
            self.at = Some(p);
            self.paused = true;
            return true;
        }
        false
    }
}

impl Machine {
    // ---- locks -------------------------------------------------------------------------

    fn others(&self, cpu: usize) -> impl Iterator<Item = &KOp> {
        self.cpus.iter().enumerate().filter(move |(c, _)| *c != cpu).filter_map(|(_, c)| c.kop.as_ref())
    }

    #[inline]
    fn busy_by_other(&self, cpu: usize, f: FrameId) -> bool {
        self.kernel.busy_lock && self.inflight > 0 && self.others(cpu).any(|k| k.busy == f)
    }

    #[inline]
    fn map_locked_by_other(&self, cpu: usize, pid: u32) -> bool {
        self.kernel.map_lock && self.inflight > 0 && self.others(cpu).any(|k| k.map_lock == pid)
    }

    #[inline]
    fn pte_locked_by_other(&self, cpu: usize, pid: u32, va: u8) -> bool {
        self.kernel.pte_lock
            && self.invals.iter().any(|r| r.owner as usize != cpu && r.asid == pid && r.va == va)
    }

    /// killalllwps(): another thread of `pid` is in the kernel — exit1() waits for it. Not for
    /// another process's procfs op on `pid` (SPEC §3.2 *Exit*): exit1 tears the address space
    /// down first and only proc_move_allproc_zombie waits for PHOLD holders; the page such an
    /// op holds stays valid (`vm_page_hold`).
    #[inline]
    fn sibling_in_kernel(&self, cpu: usize, pid: u32) -> bool {
        self.kernel.exit_waits_siblings
            && self.inflight > 0
            && self.others(cpu).any(|k| k.pid == pid && !matches!(k.phase, Phase::Exit | Phase::Joined))
    }

    /// Whether `lock` is free for an op on `cpu` now.
    pub fn lock_free(&self, cpu: usize, lock: Lock) -> bool {
        match lock {
            Lock::Busy(f) => !self.busy_by_other(cpu, f),
            Lock::Map(p) => !self.map_locked_by_other(cpu, p),
            Lock::Pte(p, va) => !self.pte_locked_by_other(cpu, p, va),
            Lock::Siblings(p) => !self.sibling_in_kernel(cpu, p),
        }
    }

    /// Who holds what, for explanations: (cpu, lock) for every lock held by an op in flight.
    pub fn locks_held(&self) -> Vec<(usize, Lock)> {
        let mut v = Vec::new();
        for (c, cp) in self.cpus.iter().enumerate() {
            if let Some(k) = &cp.kop {
                if k.busy != NO_FRAME {
                    v.push((c, Lock::Busy(k.busy)));
                }
                if k.map_lock != 0 {
                    v.push((c, Lock::Map(k.map_lock)));
                }
            }
        }
        for r in self.invals.iter().filter(|_| self.kernel.pte_lock) {
            v.push((r.owner as usize, Lock::Pte(r.asid, r.va)));
        }
        v
    }

    /// The op in flight on `cpu`, for reports: (op text, phase, point it is paused at —
    /// `wait` when waiting —, the lock it waits for).
    pub fn inflight_info(&self, cpu: usize) -> Option<(String, String, &'static str, Option<String>)> {
        let k = self.cpus[cpu].kop.as_ref()?;
        let op = crate::program::Step { cpu: cpu as u8, op: k.op, until: None }.to_string();
        let op = op.split_once(' ').map_or(op.clone(), |(_, r)| r.to_string());
        let phase = match k.phase {
            Phase::UserFault | Phase::PageFault => format!("{:?}/{:?}", k.phase, k.fs.phase),
            p => format!("{p:?}"),
        };
        let point = match (k.waiting, k.at) {
            (Some(_), _) => "wait",
            (None, Some(p)) => p.name(),
            (None, None) => "wait",
        };
        Some((op, phase, point, k.waiting.map(|l| l.to_string())))
    }

    /// Invalidations pending for `cpu`: (address space, page, initiating cpu).
    pub fn pending_ipis(&self, cpu: usize) -> Vec<(u32, u8, u8)> {
        self.invals.iter().filter(|r| r.pending & (1 << cpu) != 0).map(|r| (r.asid, r.va, r.owner)).collect()
    }

    // ---- IPIs ----------------------------------------------------------------------------

    /// Whether cpu `c` has invalidations pending.
    pub fn ipi_pending(&self, c: usize) -> bool {
        self.invals.iter().any(|r| r.pending & (1 << c) != 0)
    }

    /// `cpuN ipi`: cpu `c` takes its pending invalidations.
    pub fn ipi_take(&mut self, c: usize) {
        let bit = 1u8 << c;
        for i in 0..self.invals.len() {
            let r = self.invals[i];
            if r.pending & bit != 0 {
                self.cpus[c].tlb.invalidate(r.asid, r.va);
                self.invals[i].pending &= !bit;
            }
        }
    }

    #[inline]
    pub(crate) fn own_records(&self, cpu: usize) -> bool {
        self.invals.iter().any(|r| r.owner as usize == cpu)
    }

    /// The initiator goes past `ipi_wait`: what is left is delivered (it waits for every
    /// target), and its PTE locks are released.
    pub(crate) fn ipi_wait_pass(&mut self, cpu: usize) {
        let mut i = 0;
        while i < self.invals.len() {
            let r = self.invals[i];
            if r.owner as usize == cpu {
                for c in 0..self.cpus.len() {
                    if r.pending & (1 << c) != 0 {
                        self.cpus[c].tlb.invalidate(r.asid, r.va);
                    }
                }
                self.invals.swap_remove(i);
            } else {
                i += 1;
            }
        }
    }

    /// Pending invalidation of (asid, va) for cpu `c`: the invariants tolerate its entry.
    pub fn inval_pending(&self, c: usize, asid: u32, va: u8) -> bool {
        self.invals.iter().any(|r| r.pending & (1 << c) != 0 && r.asid == asid && r.va == va)
    }

    // ---- the op --------------------------------------------------------------------------

    /// Start `op` on `cpu` for thread (pid, tid) and run it until `stop` or completion.
    pub fn kop_start(&mut self, cpu: usize, op: Op, pid: u32, tid: u32, stop: Option<Point>) -> Outcome {
        // Fast path: a user access that hits in the TLB is no kernel operation at all (it
        // never waits, has no yield point).
        match op {
            Op::Load(a) | Op::Store(a, _) => {
                let write = matches!(op, Op::Store(..));
                let mut f = None;
                match self.cpus[cpu].tlb.lookup(pid, a.page) {
                    Some(te) if !write || te.writable => f = Some(te.frame),
                    hit => {
                        // The page walk, when the TLB does not serve (as UserAccess does).
                        let pte = self.proc(pid).pmap.pte[a.page as usize];
                        if pte.present() && (!write || pte.writable) {
                            if hit.is_some() {
                                self.cpus[cpu].tlb.invalidate(pid, a.page);
                            }
                            self.tlb_fill(cpu, pid, a.page, pte);
                            f = Some(pte.frame);
                        }
                    }
                }
                if let Some(f) = f {
                    return match op {
                        Op::Store(_, v) => {
                            self.write_word(f, a.word, v);
                            Outcome::Ok
                        }
                        _ => Outcome::Value(self.phys.get(f).words[a.word as usize]),
                    };
                }
                // TLB and page walk done (as UserAccess would): straight to the fault.
                self.cpus[cpu].tlb.invalidate(pid, a.page);
                if stop.is_none() && self.quiet() {
                    return self.kop_quiet(cpu, op, pid, tid);
                }
                let mut k = KOp::new(op, pid, tid);
                k.fs = FaultState::new(pid, a.page, if write { VM_PROT_WRITE } else { VM_PROT_READ });
                k.phase = Phase::UserFault;
                return self.kop_run(cpu, k, stop);
            }
            // A plain mprotect/madvise with nothing in flight and no records: no lock can be
            // held by another op, no yield point is stopped at — `start`, `IpiWait` and
            // `finish` in one go, as `advance` would run them.
            Op::Mprotect(va, w) if stop.is_none() && self.inflight == 0 && self.invals.is_empty() => {
                self.vm_map_protect(cpu, pid, va, w);
                if self.own_records(cpu) {
                    self.ipi_wait_pass(cpu);
                }
                return Outcome::Ok;
            }
            Op::Madvise(va) if stop.is_none() && self.inflight == 0 && self.invals.is_empty() => {
                let dropped = self.vm_map_madvise_dontneed(cpu, pid, va);
                if self.own_records(cpu) {
                    self.ipi_wait_pass(cpu);
                }
                if let Some(o) = dropped {
                    self.vm_object_deallocate(cpu, o);
                }
                return Outcome::Ok;
            }
            // Spawn and a switch not stopped at `enter` have no yield point to stop at.
            Op::Spawn => return self.spawn(pid),
            Op::Switch(t) if stop != Some(Point::Enter) => {
                let to = match t {
                    Target::Idle => None,
                    Target::Thread(p, t) => Some((p, t)),
                };
                let (old, new) = self.switch_leave(cpu, to);
                self.switch_enter(cpu, old, new);
                return Outcome::Ok;
            }
            // Nothing in flight, no records, no until: the op in one call (quiet.rs).
            Op::Exit | Op::Fork | Op::ProcfsRead(..) | Op::ProcfsWrite(..) | Op::UmtxSleep(..) | Op::UmtxWakeup(_)
                if stop.is_none() && self.quiet() =>
            {
                return self.kop_quiet(cpu, op, pid, tid)
            }
            _ => {}
        }
        let k = KOp::new(op, pid, tid);
        self.kop_run(cpu, k, stop)
    }

    /// Run the op in flight on `cpu` on.
    pub fn kop_resume(&mut self, cpu: usize, stop: Option<Point>) -> Outcome {
        let mut k = self.cpus[cpu].kop.take().expect("resume without an op in flight");
        self.inflight -= 1;
        k.waiting = None;
        k.arrived = 0;
        self.kop_run(cpu, k, stop)
    }

    fn kop_run(&mut self, cpu: usize, mut k: KOp, stop: Option<Point>) -> Outcome {
        let adv = self.advance(cpu, &mut k, stop);
        self.arrived = k.arrived;
        match adv {
            Adv::Paused(_) => {
                self.cpus[cpu].kop = Some(k);
                self.inflight += 1;
                Outcome::Paused
            }
            Adv::Done(o) => o,
        }
    }

    /// Run `k` to its next stop: `Paused(point)` or `Done(outcome)`.
    pub fn advance(&mut self, cpu: usize, k: &mut KOp, stop: Option<Point>) -> Adv {
        loop {
            if let Some(p) = self.phase_step(cpu, k, stop) {
                return Adv::Paused(p);
            }
            if k.phase == Phase::Finish {
                self.finish(cpu, k);
                debug_assert!(k.held == NO_FRAME);
                return Adv::Done(k.result);
            }
        }
    }

    /// One phase of `k`. Returns the point it paused at, or None when the phase is done
    /// (`k.phase` then names the next one; `Finish` with no locks left means complete).
    fn phase_step(&mut self, cpu: usize, k: &mut KOp, stop: Option<Point>) -> Option<Point> {
        match k.phase {
            Phase::Start => self.start(cpu, k),
            Phase::UserAccess => {
                let (Op::Load(a) | Op::Store(a, _)) = k.op else { unreachable!() };
                let write = matches!(k.op, Op::Store(..));
                let pid = k.pid;
                let va = a.page;
                if k.tries >= 3 {
                    panic!("user access to page {va} by P{pid} did not converge after vm_fault");
                }
                let f = 'found: {
                    if let Some(te) = self.cpus[cpu].tlb.lookup(pid, va) {
                        if !write || te.writable {
                            break 'found te.frame;
                        }
                        self.cpus[cpu].tlb.invalidate(pid, va);
                    }
                    let pte = self.proc(pid).pmap.pte[va as usize];
                    if pte.present() && (!write || pte.writable) {
                        self.tlb_fill(cpu, pid, va, pte);
                        break 'found pte.frame;
                    }
                    k.fs = FaultState::new(pid, va, if write { VM_PROT_WRITE } else { VM_PROT_READ });
                    k.paused = false;
                    k.phase = Phase::UserFault;
                    return None;
                };
                k.result = match k.op {
                    Op::Store(a, v) => {
                        self.write_word(f, a.word, v);
                        Outcome::Ok
                    }
                    _ => Outcome::Value(self.phys.get(f).words[a.word as usize]),
                };
                k.phase = Phase::Finish;
                None
            }
            Phase::UserFault => match self.fault_step(cpu, k, stop, true) {
                Some(Fs::Pause(p)) => Some(p),
                None => None,
                Some(Fs::Ok) => {
                    k.busy = NO_FRAME;
                    k.tries += 1;
                    k.phase = Phase::UserAccess;
                    None
                }
                Some(Fs::Protection) | Some(Fs::Dead) => {
                    k.busy = NO_FRAME;
                    // A SEGV is decided only once no sibling is in the kernel
                    // (killalllwps): else the access waits and is retried whole, so the
                    // fatal fault is linearized where the process dies.
                    if self.sibling_in_kernel(cpu, k.pid) {
                        k.phase = Phase::UserAccess;
                        k.tries = 0;
                        wait_for!(k, Lock::Siblings(k.pid));
                    }
                    k.result = Outcome::Segv;
                    k.phase = Phase::Exit;
                    None
                }
            },
            Phase::PageFault => match self.fault_step(cpu, k, stop, self.kernel.vm_fault_page_pmap_enter) {
                Some(Fs::Pause(p)) => Some(p),
                None => None,
                Some(Fs::Protection) => {
                    k.busy = NO_FRAME;
                    match k.op {
                        Op::UmtxSleep(..) => {
                            k.result = Outcome::Efault;
                            k.phase = Phase::Finish;
                        }
                        _ => panic!("vm_fault_page failed where the lookup allows it"),
                    }
                    None
                }
                Some(Fs::Dead) => {
                    k.busy = NO_FRAME;
                    k.result = Outcome::Esrch;
                    k.phase = Phase::Finish;
                    None
                }
                Some(Fs::Ok) => {
                    // Paused on the way (a COW's ipi_wait): the target may have changed or
                    // died since; revalidate before the page is returned held.
                    if !self.revalidate(k) {
                        return None;
                    }
                    let f = k.fs.frame;
                    self.phys.hold(f);
                    k.held = f;
                    if !self.kernel.busy_through_access {
                        k.busy = NO_FRAME;
                    }
                    k.phase = if matches!(k.op, Op::ProcfsWrite(..)) && k.fs.cowed && !k.retried {
                        Phase::Retry
                    } else {
                        Phase::Access
                    };
                    None
                }
            },
            Phase::Retry => {
                if k.yield_at(Point::Retry, stop) {
                    return Some(Point::Retry);
                }
                // The forced write looks the page up again (get_user_pages' retry); `fixed`
                // keeps the write intent.
                self.phys.unhold(k.held);
                k.held = NO_FRAME;
                k.busy = NO_FRAME;
                k.retried = true;
                let ft = if self.kernel.retry_keeps_write { k.fs.ft } else { VM_PROT_READ };
                k.fs = FaultState::new(k.fs.pid, k.fs.va, ft);
                k.paused = false;
                k.phase = Phase::PageFault;
                None
            }
            Phase::Access => {
                if k.yield_at(Point::Access, stop) {
                    return Some(Point::Access);
                }
                let f = k.held;
                match k.op {
                    // The target exited while the access held its page (exit does not wait for
                    // it, SPEC §3.2 *Exit*): the page stays valid but the access fails as on a
                    // dead process. Writing it would land in a page the exit already released
                    // from the target — a shared page's other mappers would see a debugger
                    // write that completed after the target's exit.
                    Op::ProcfsRead(t, _) | Op::ProcfsWrite(t, _, _) if !self.proc(t).alive => k.result = Outcome::Esrch,
                    Op::ProcfsRead(_, a) => k.result = Outcome::Value(self.phys.get(f).words[a.word as usize]),
                    Op::ProcfsWrite(_, a, v) => {
                        self.write_word(f, a.word, v);
                        k.result = Outcome::Ok;
                    }
                    Op::UmtxWakeup(a) => {
                        self.wake_where(|s| s.frame == f && s.word == a.word);
                        k.result = Outcome::Ok;
                    }
                    Op::UmtxSleep(a, v) => {
                        k.busy = NO_FRAME;
                        if self.phys.get(f).words[a.word as usize] != v {
                            self.phys.unhold(f);
                            k.held = NO_FRAME;
                            k.result = Outcome::Ebusy;
                            k.phase = Phase::Finish;
                        } else {
                            k.phase = Phase::Sleep;
                        }
                        return None;
                    }
                    _ => unreachable!(),
                }
                k.busy = NO_FRAME;
                self.phys.unhold(f);
                k.held = NO_FRAME;
                k.phase = Phase::Finish;
                None
            }
            Phase::Sleep => {
                if k.yield_at(Point::Sleep, stop) {
                    return Some(Point::Sleep);
                }
                let Op::UmtxSleep(a, v) = k.op else { unreachable!() };
                let f = k.held;
                // The hold from vm_fault_page is kept for the sleep.
                self.sleepers.push(Sleeper { pid: k.pid, tid: k.tid, frame: f, word: a.word });
                if self.kernel.umtx_recheck {
                    // Still the page mapped at that address, still writable (else start
                    // over); then the word re-read.
                    let p = self.proc(k.pid);
                    let e = p.map.entries[p.map.lookup(a.page)];
                    let mapped = self.vm_page_lookup_chain(e.object, e.offset + (a.page - e.start)).map(|x| x.2);
                    // (the write checks only where the fault forced the write: pre-10192bae's
                    // READ fault keys a sleeper on a still-shared frame on purpose)
                    if mapped != Some(f) || (k.fs.ft.write && (!e.prot_write || e.needs_copy)) {
                        self.sleepers.pop();
                        self.phys.unhold(f);
                        k.held = NO_FRAME;
                        k.phase = Phase::Start;
                        return None;
                    }
                    if self.phys.get(f).words[a.word as usize] != v {
                        self.sleepers.pop();
                        self.phys.unhold(f);
                        k.held = NO_FRAME;
                        k.result = Outcome::Ebusy;
                        k.phase = Phase::Finish;
                        return None;
                    }
                }
                k.held = NO_FRAME;
                self.thread_mut(k.pid, k.tid).state = ThreadState::Blocked;
                self.cpu_idle(cpu);
                k.result = Outcome::Blocked;
                k.phase = Phase::Finish;
                None
            }
            Phase::IpiWait => {
                if k.yield_at(Point::IpiWait, stop) {
                    return Some(Point::IpiWait);
                }
                self.ipi_wait_pass(cpu);
                k.phase = Phase::Finish;
                None
            }
            Phase::Finish => None,
            Phase::Exit => {
                let pid = k.pid;
                if self.sibling_in_kernel(cpu, pid) {
                    wait_for!(k, Lock::Siblings(pid));
                }
                // (No records, no op in flight elsewhere — a plain line — : nothing to scan.)
                if !self.invals.is_empty() {
                    for va in 0..NPAGES as u8 {
                        if self.pte_locked_by_other(cpu, pid, va) {
                            wait_for!(k, Lock::Pte(pid, va));
                        }
                    }
                }
                // Siblings waiting to exit too join this exit.
                if self.inflight > 0 {
                    for c in 0..self.cpus.len() {
                        if let Some(o) = self.cpus[c].kop.as_mut() {
                            if c != cpu && o.pid == pid {
                                o.phase = Phase::Joined;
                                o.waiting = None;
                            }
                        }
                    }
                }
                for i in 0..self.proc(pid).threads.len() {
                    if let ThreadState::Running(c) = self.proc(pid).threads[i].state {
                        self.cpu_idle(c as usize);
                    }
                    self.proc_mut(pid).threads[i].state = ThreadState::Dead;
                }
                self.umtx_drop_sleepers(pid);
                self.pmap_remove_pages(cpu, pid);
                self.proc_mut(pid).map.generation += 1;
                k.map_lock = pid;
                k.phase = Phase::ExitIpiWait;
                None
            }
            Phase::ExitIpiWait => {
                if self.own_records(cpu) {
                    if k.yield_at(Point::IpiWait, stop) {
                        return Some(Point::IpiWait);
                    }
                    self.ipi_wait_pass(cpu);
                }
                k.phase = Phase::ExitFinish;
                None
            }
            Phase::ExitFinish => {
                let pid = k.pid;
                while let Some(e) = self.proc_mut(pid).map.entries.pop() {
                    self.vm_object_deallocate(cpu, e.object);
                }
                self.proc_mut(pid).alive = false;
                debug_assert!(self.live_procs() <= MAX_PROCS);
                k.map_lock = 0;
                k.phase = Phase::Finish;
                None
            }
            Phase::Joined => {
                k.phase = Phase::Finish;
                None
            }
            Phase::SwitchEnter => {
                if k.yield_at(Point::Enter, stop) {
                    return Some(Point::Enter);
                }
                if k.paused {
                    // Skipped by the invariants while mid-switch: look again (its TLB may
                    // also hold frames freed meanwhile: use-after-free too).
                    self.dirty.space = true;
                    self.dirty.pte = true;
                }
                self.switch_enter(cpu, k.aux, k.aux2);
                k.phase = Phase::Finish;
                None
            }
        }
    }

    /// The first phase of each op (its locks are taken before any change, so a `wait` there
    /// leaves nothing half done).
    fn start(&mut self, cpu: usize, k: &mut KOp) -> Option<Point> {
        let pid = k.pid;
        match k.op {
            Op::Switch(t) => {
                let to = match t {
                    Target::Idle => None,
                    Target::Thread(p, t) => Some((p, t)),
                };
                let (old, new) = self.switch_leave(cpu, to);
                k.aux = old;
                k.aux2 = new;
                k.phase = Phase::SwitchEnter;
            }
            Op::Load(_) | Op::Store(..) => k.phase = Phase::UserAccess,
            Op::Spawn => {
                k.result = self.spawn(pid);
                k.phase = Phase::Finish;
            }
            Op::Exit => {
                k.result = Outcome::Ok;
                k.phase = Phase::Exit;
            }
            Op::ProcfsRead(t, a) | Op::ProcfsWrite(t, a, _) => {
                if !(t >= 1 && (t as usize) <= self.procs.len() && self.proc(t).alive) {
                    k.result = Outcome::Esrch;
                    k.phase = Phase::Finish;
                    return None;
                }
                let ft = if matches!(k.op, Op::ProcfsRead(..)) { VM_PROT_READ } else { VM_PROT_OVERRIDE_WRITE };
                k.fs = FaultState::new(t, a.page, ft);
                k.paused = false;
                k.phase = Phase::PageFault;
            }
            Op::UmtxSleep(a, _) | Op::UmtxWakeup(a) => {
                let mut ft = if matches!(k.op, Op::UmtxSleep(..)) { VM_PROT_WRITE } else { VM_PROT_READ };
                if ft.write && !self.kernel.umtx_fault_write {
                    // Before 10192bae: the page is faulted for READ (no forced COW, and so no
                    // EFAULT: a page without write is compared and slept on).
                    ft = VM_PROT_READ;
                }
                k.fs = FaultState::new(pid, a.page, ft);
                k.paused = false;
                k.phase = Phase::PageFault;
            }
            Op::Fork => {
                if self.live_procs() >= MAX_PROCS {
                    k.result = Outcome::Eagain;
                    k.phase = Phase::Finish;
                    return None;
                }
                if self.map_locked_by_other(cpu, pid) {
                    wait_for!(k, Lock::Map(pid));
                }
                let n = self.proc(pid).map.entries.len();
                // Nothing in flight elsewhere and no records: no busy page, no PTE lock to meet.
                let quiet = self.inflight == 0 && self.invals.is_empty();
                for i in 0..if quiet { 0 } else { n } {
                    let e = self.proc(pid).map.entries[i];
                    if e.inherit_share || e.needs_copy {
                        continue;
                    }
                    for va in e.start..e.end {
                        if self.kernel.fork_waits_busy && self.inflight > 0 {
                            if let Some((_, _, f)) = self.vm_page_lookup_chain(e.object, e.offset + (va - e.start)) {
                                if self.busy_by_other(cpu, f) {
                                    wait_for!(k, Lock::Busy(f));
                                }
                            }
                        }
                        if self.pte_locked_by_other(cpu, pid, va) {
                            wait_for!(k, Lock::Pte(pid, va));
                        }
                    }
                }
                k.map_lock = pid;
                for i in 0..n {
                    let e = self.proc(pid).map.entries[i];
                    if !e.inherit_share && !e.needs_copy {
                        if self.kernel.fork_write_protect {
                            for va in e.start..e.end {
                                self.pmap_protect_ro(cpu, pid, va);
                            }
                        }
                        let pe = &mut self.proc_mut(pid).map.entries[i];
                        pe.cow = true;
                        pe.needs_copy = true;
                    }
                }
                self.proc_mut(pid).map.generation += 1;
                k.phase = self.after_changes(cpu);
            }
            Op::Mprotect(va, w) => {
                if self.map_locked_by_other(cpu, pid) {
                    wait_for!(k, Lock::Map(pid));
                }
                if self.pte_locked_by_other(cpu, pid, va) {
                    wait_for!(k, Lock::Pte(pid, va));
                }
                k.map_lock = pid;
                self.vm_map_protect(cpu, pid, va, w);
                k.phase = self.after_changes(cpu);
            }
            Op::Madvise(va) => {
                if self.map_locked_by_other(cpu, pid) {
                    wait_for!(k, Lock::Map(pid));
                }
                if self.pte_locked_by_other(cpu, pid, va) {
                    wait_for!(k, Lock::Pte(pid, va));
                }
                k.map_lock = pid;
                k.aux = self.vm_map_madvise_dontneed(cpu, pid, va).unwrap_or(u32::MAX);
                k.phase = self.after_changes(cpu);
            }
            Op::Resume | Op::Ipi => unreachable!(),
        }
        None
    }

    #[inline]
    fn after_changes(&self, cpu: usize) -> Phase {
        if self.own_records(cpu) {
            Phase::IpiWait
        } else {
            Phase::Finish
        }
    }

    /// Completion work that needs the shootdowns done: fork builds the child, madvise drops
    /// the discarded object; map locks are released.
    fn finish(&mut self, cpu: usize, k: &mut KOp) {
        if k.map_lock == 0 {
            return;
        }
        let pid = k.pid;
        match k.op {
            Op::Fork => {
                k.result = if self.live_procs() >= MAX_PROCS {
                    Outcome::Eagain
                } else {
                    let child = self.procs.len() as u32 + 1;
                    let mut cp = self.alloc_proc(child);
                    for i in 0..self.proc(pid).map.entries.len() {
                        let e = self.proc(pid).map.entries[i];
                        self.vm_object_reference(e.object);
                        cp.map.entries.push(e);
                    }
                    self.procs.push(cp);
                    Outcome::Pid(child)
                };
            }
            Op::Madvise(_) => {
                if k.aux != u32::MAX {
                    self.vm_object_deallocate(cpu, k.aux);
                }
                k.result = Outcome::Ok;
            }
            _ => k.result = Outcome::Ok,
        }
        k.map_lock = 0;
    }

    // ---- vm_fault_object as phases ------------------------------------------------------

    /// Whether the map and the shadow chain still give the page the fault found (DragonFly's
    /// KERN_TRY_AGAIN, FreeBSD's `map_generation` check).
    fn fault_still_valid(&self, fs: &FaultState) -> bool {
        let p = self.proc(fs.pid);
        if !p.alive || p.map.generation != fs.map_gen {
            return false;
        }
        let e = p.map.entries[p.map.lookup(fs.va)];
        self.vm_page_lookup_chain(e.object, e.offset + (fs.va - e.start)).map(|(o, _, f)| (o, f))
            == Some((fs.found_obj, fs.frame))
    }

    /// A fault resumed after a yield point revalidates (kernel knob), else starts over.
    #[inline]
    fn revalidate(&self, k: &mut KOp) -> bool {
        if k.paused && self.kernel.fault_revalidate && !self.fault_still_valid(&k.fs) {
            k.busy = NO_FRAME;
            k.fs = FaultState::new(k.fs.pid, k.fs.va, k.fs.ft);
            k.paused = false;
            return false;
        }
        true
    }

    /// One phase of the fault in `k.fs`. None: go on; Some(Ok) the page is found (and, with
    /// `enter`, its PTE entered).
    fn fault_step(&mut self, cpu: usize, k: &mut KOp, stop: Option<Point>, enter: bool) -> Option<Fs> {
        let (pid, va) = (k.fs.pid, k.fs.va);
        match k.fs.phase {
            FPhase::Lookup => {
                let mut fs = k.fs;
                if pid as usize > self.procs.len() || !self.proc(pid).alive {
                    return Some(Fs::Dead);
                }
                if self.map_locked_by_other(cpu, pid) {
                    k.waiting = Some(Lock::Map(pid));
                    k.paused = true;
                    k.at = None;
                    return Some(Fs::Pause(Point::Wait));
                }
                let i = self.proc(pid).map.lookup(va);
                let e = self.proc(pid).map.entries[i];
                let prot_write = if fs.ft.override_write { e.max_write } else { e.prot_write };
                if fs.ft.write && !prot_write {
                    return Some(Fs::Protection);
                }
                let pindex0 = e.offset + (va - e.start);
                let found = self.vm_page_lookup_chain(e.object, pindex0);
                if let Some((_, _, f)) = found {
                    if self.busy_by_other(cpu, f) {
                        k.waiting = Some(Lock::Busy(f));
                        k.paused = true;
                        k.at = None;
                        return Some(Fs::Pause(Point::Wait));
                    }
                }
                let mut writable = prot_write;
                if e.needs_copy {
                    if fs.ft.write {
                        let s = self.vm_object_shadow(e.object, e.offset, e.end - e.start);
                        let p = self.proc_mut(pid);
                        let em = &mut p.map.entries[i];
                        em.object = s;
                        em.offset = 0;
                        em.needs_copy = false;
                        p.map.generation += 1;
                    } else {
                        writable = false;
                    }
                }
                let e = self.proc(pid).map.entries[i];
                let first = e.object;
                let pindex = e.offset + (va - e.start);
                fs.first = first;
                fs.pindex = pindex;
                fs.map_gen = self.proc(pid).map.generation;
                k.paused = false;
                match found {
                    None => {
                        // Nothing in the chain: zero-fill into the top object (the bottom of
                        // an anonymous chain; a file object has every page).
                        let f = self.phys.alloc([0; 4]);
                        self.obj_mut(first).pages[pindex as usize] = f;
                        fs.frame = f;
                        fs.found_obj = first;
                        fs.found_idx = pindex;
                    }
                    Some((o, oidx, f)) => {
                        fs.frame = f;
                        fs.found_obj = o;
                        fs.found_idx = oidx;
                        if o != first {
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
                let r = if fs.phase == FPhase::Lookup { self.fault_found(&mut fs, enter) } else { None };
                k.fs = fs;
                r
            }
            FPhase::Cow => {
                if k.yield_at(Point::Cow, stop) {
                    return Some(Fs::Pause(Point::Cow));
                }
                if !self.revalidate(k) {
                    return None;
                }
                let old = k.fs.frame;
                let (first, pindex, o, oidx) = (k.fs.first, k.fs.pindex, k.fs.found_obj, k.fs.found_idx);
                let ob = self.obj(o);
                let rename = self.obj(first).backing == Some(o)
                    && ob.otype == ObjType::Anon
                    && ob.ref_count == 1
                    && ob.shadow_count == 1;
                if !rename && self.kernel.cow_copy_remove_all && !self.invals.is_empty() {
                    for p in &self.procs {
                        if !p.alive {
                            continue;
                        }
                        for v in 0..NPAGES as u8 {
                            if p.pmap.pte[v as usize].frame == old && self.pte_locked_by_other(cpu, p.pid, v) {
                                let l = Lock::Pte(p.pid, v);
                                k.waiting = Some(l);
                                k.paused = true;
                                k.at = None;
                                return Some(Fs::Pause(Point::Wait));
                            }
                        }
                    }
                    // A mapping of `old` already cleared by another op whose shootdown is still
                    // pending: its pv entry is still on the page, and this removal must not
                    // return before that CPU's TLBs lose `old` (explore found the 6-line stale
                    // read without it: test_cow_remove_all_waits_for_a_pending_shootdown_of_the_same_page).
                    if let Some(r) = self.invals.iter().find(|r| self.kernel.pte_lock && r.owner as usize != cpu && r.frame == old) {
                        k.waiting = Some(Lock::Pte(r.asid, r.va));
                        k.paused = true;
                        k.at = None;
                        return Some(Fs::Pause(Point::Wait));
                    }
                }
                let new = if rename {
                    self.obj_mut(o).pages[oidx as usize] = NO_FRAME;
                    self.obj_mut(first).pages[pindex as usize] = old;
                    old
                } else {
                    let words = self.phys.get(old).words;
                    let new = self.phys.alloc(words);
                    self.obj_mut(first).pages[pindex as usize] = new;
                    if self.kernel.cow_event {
                        self.vm_page_event_cow(old);
                    }
                    if self.kernel.cow_copy_remove_all {
                        if enter && !self.kernel.cow_break_before_make {
                            // Make before break: the old frame's mappings go after pmap_enter.
                            k.fs.unmap_after = old;
                        } else {
                            self.pmap_remove_all(cpu, old);
                        }
                    }
                    new
                };
                k.fs.frame = new;
                k.fs.found_obj = first;
                k.fs.found_idx = pindex;
                k.fs.cowed = true;
                k.busy = new;
                if self.own_records(cpu) {
                    k.fs.phase = FPhase::CowIpiWait;
                    return None;
                }
                self.fault_found(&mut k.fs, enter)
            }
            FPhase::CowIpiWait => {
                if k.yield_at(Point::IpiWait, stop) {
                    return Some(Fs::Pause(Point::IpiWait));
                }
                self.ipi_wait_pass(cpu);
                self.fault_found(&mut k.fs, enter)
            }
            FPhase::PmapEnter => {
                if k.yield_at(Point::PmapEnter, stop) {
                    return Some(Fs::Pause(Point::PmapEnter));
                }
                let gone = k.fs.unmap_after;
                if !self.revalidate(k) {
                    if gone != NO_FRAME {
                        // `cow-make-before-break` starting over: the old frame's deferred
                        // unmap is not lost (done, and waited for, now).
                        self.pmap_remove_all(cpu, gone);
                        self.ipi_wait_pass(cpu);
                    }
                    return None;
                }
                if self.pte_locked_by_other(cpu, pid, va) {
                    k.waiting = Some(Lock::Pte(pid, va));
                    k.paused = true;
                    k.at = None;
                    return Some(Fs::Pause(Point::Wait));
                }
                let new = Pte { frame: k.fs.frame, writable: k.fs.writable };
                self.dirty.pte = true;
                let old = self.proc(pid).pmap.pte[va as usize];
                if k.fs.unmap_after != NO_FRAME {
                    // `cow-make-before-break`: the new PTE first, then the shootdowns of the
                    // replaced entry and of the old frame's other mappings.
                    let gone = k.fs.unmap_after;
                    k.fs.unmap_after = NO_FRAME;
                    self.proc_mut(pid).pmap.pte[va as usize] = new;
                    if old.present() && old != new {
                        self.pmap_inval(cpu, pid, va);
                    }
                    self.pmap_remove_all(cpu, gone);
                    if self.own_records(cpu) {
                        k.fs.phase = FPhase::EnterIpiWait;
                        return None;
                    }
                    return Some(Fs::Ok);
                }
                if old.present() && old != new {
                    if old.frame != new.frame {
                        // Break before make: clear, shoot down, then write.
                        self.proc_mut(pid).pmap.pte[va as usize] = Pte::ABSENT;
                        self.pmap_inval_of(cpu, pid, va, old.frame);
                        if self.own_records(cpu) {
                            k.fs.phase = FPhase::BbmIpiWait;
                            return None;
                        }
                    } else {
                        self.proc_mut(pid).pmap.pte[va as usize] = new;
                        self.pmap_inval(cpu, pid, va);
                        if self.own_records(cpu) {
                            k.fs.phase = FPhase::EnterIpiWait;
                            return None;
                        }
                    }
                }
                self.proc_mut(pid).pmap.pte[va as usize] = new;
                Some(Fs::Ok)
            }
            FPhase::BbmIpiWait | FPhase::EnterIpiWait => {
                if k.yield_at(Point::IpiWait, stop) {
                    return Some(Fs::Pause(Point::IpiWait));
                }
                self.ipi_wait_pass(cpu);
                if k.fs.phase == FPhase::BbmIpiWait {
                    self.dirty.pte = true;
                    self.proc_mut(pid).pmap.pte[va as usize] = Pte { frame: k.fs.frame, writable: k.fs.writable };
                }
                Some(Fs::Ok)
            }
        }
    }

    /// The page is found (after any COW): on to pmap_enter, or done.
    #[inline]
    fn fault_found(&self, fs: &mut FaultState, enter: bool) -> Option<Fs> {
        if enter {
            fs.phase = FPhase::PmapEnter;
            None
        } else {
            Some(Fs::Ok)
        }
    }

    // ---- the switch in two halves -------------------------------------------------------

    /// First half: the previous thread becomes runnable, `to` is taken for this CPU, the old
    /// address space is left. Returns (old space, new space).
    #[inline]
    pub fn switch_leave(&mut self, cpu: usize, to: Option<(u32, u32)>) -> (u32, u32) {
        if let Some((p, t)) = self.cpus[cpu].running {
            self.thread_mut(p, t).state = ThreadState::Runnable;
        }
        self.cpus[cpu].running = to;
        if let Some((p, t)) = to {
            self.thread_mut(p, t).state = ThreadState::Running(cpu as u8);
        }
        let old = self.cpus[cpu].space;
        let new = to.map_or(IDLE_SPACE, |(p, _)| p);
        // OpenBSD 9f1181d59de3: leave (clear the bit) only when the address space changes;
        // `switch-clear-early` leaves on every switch (enter sets the bit again).
        if old != new || !self.kernel.switch_keeps_same_space {
            let flushes = self.hw.mode == TlbMode::Pc64;
            if old != IDLE_SPACE && (flushes || !self.kernel.pm_active_until_flush) {
                self.proc_mut(old).pmap.pm_active &= !(1u8 << cpu);
            }
        }
        self.cpus[cpu].space = MID_SWITCH;
        if old != new {
            self.dirty.space = true;
        }
        (old, new)
    }

    /// Second half: enter the new address space (flushing on pc64 when it changes).
    #[inline]
    pub fn switch_enter(&mut self, cpu: usize, old: u32, new: u32) {
        // Setting the bit is idempotent when leaving kept it (same space in `fixed`).
        if new != IDLE_SPACE {
            self.proc_mut(new).pmap.pm_active |= 1u8 << cpu;
        }
        if old != new {
            if self.hw.mode == TlbMode::Pc64 {
                self.cpus[cpu].tlb.flush();
            }
        }
        self.cpus[cpu].space = new;
        if old != new {
            self.dirty.space = true;
        }
    }

    /// madvise(page, MADV_DONTNEED) up to its shootdown. Returns the object to deallocate
    /// once the shootdown is done (None for shm).
    pub fn vm_map_madvise_dontneed(&mut self, cpu: usize, pid: u32, va: u8) -> Option<ObjId> {
        if va == SHM {
            self.pmap_remove(cpu, pid, va);
            return None;
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
            let p = self.proc_mut(pid);
            let em = &mut p.map.entries[i];
            em.object = object;
            em.offset = offset;
            em.cow = cow;
            em.needs_copy = cow;
            p.map.generation += 1;
        }
        self.pmap_remove(cpu, pid, va);
        if let Some(f) = seen {
            self.vm_page_event_cow(f);
        }
        Some(e.object)
    }
}
