//! A kernel operation as a value kept per CPU (SPEC §3.2) — its phase and what it has found,
//! like FreeBSD's `struct faultstate` — and the small dispatcher that runs it to its next
//! yield point. Each operation's phases live in the file of its concept (`vm_fault.rs`,
//! `fork.rs`, `exit.rs`, `swtch.rs`, `umtx.rs`, `procfs.rs`, `vm_map.rs`, `pmap_inval.rs`);
//! here are only the op value, the locks, and `advance`. A plain line is `advance` with no
//! stop point: it runs to completion and every `ipi_wait` it meets delivers its IPIs at once,
//! so it behaves as the atomic operation. Interleaved and plain lines run the same code.
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

use crate::machine::Machine;
use crate::phys::{FrameId, NO_FRAME};
use crate::program::{Op, Outcome, Point};
use crate::vm_fault::{FaultState, VM_PROT_READ};

/// What an op paused at `wait` is waiting for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lock {
    Busy(FrameId),
    Map(u32),
    /// A writer waits for the faults that hold the map lock shared (`fault_map_read_lock`).
    MapReaders(u32),
    Pte(u32, u8),
    Siblings(u32),
}

impl std::fmt::Display for Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Lock::Busy(fr) => write!(f, "busy page (frame {fr})"),
            Lock::Map(p) => write!(f, "P{p}'s map lock"),
            Lock::MapReaders(p) => write!(f, "P{p}'s map lock, held shared by a fault"),
            Lock::Pte(p, va) => write!(f, "P{p}'s PTE of {}", crate::program::PAGE_NAMES[va as usize]),
            Lock::Siblings(p) => write!(f, "P{p}'s other threads and procfs users to leave the kernel"),
        }
    }
}

/// The phases of every op, named by the file that runs them. (The order is part of the
/// semantic features and explore's state key: append, do not reorder.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Start,
    /// vm_fault.rs: user load/store: TLB, page walk, else fault.
    UserAccess,
    UserFault,
    /// vm_fault.rs: vm_fault_page for procfs/umtx.
    PageFault,
    /// procfs.rs: the forced write looks the page up again.
    Retry,
    /// procfs.rs / umtx.rs: the access through the held page.
    Access,
    /// umtx.rs
    Sleep,
    /// pmap_inval.rs: after the op's PTE changes, its `ipi_wait`, then `Finish`.
    IpiWait,
    Finish,
    /// exit.rs: exit / SEGV: killalllwps, then tear down.
    Exit,
    ExitIpiWait,
    ExitFinish,
    /// A sibling's exit tore the process down while this op waited to exit: it only reports.
    Joined,
    /// swtch.rs: the second half of a context switch.
    SwitchEnter,
    /// vm_map.rs: mremap enters the moved PTE after the old one's shootdown.
    MremapEnter,
    /// vm_object.rs / vm_pageout.rs: a dirty page written out; the frame freed.
    Clean,
    Free,
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
    /// The page this op has busy, held for it while paused because another op's object
    /// termination let it go (`vm_object_deallocate`): the fault's object reference and
    /// paging-in-progress count keep a real page alive until the fault is done with it.
    pub orphan: FrameId,
    /// Pid whose map lock this op holds (0: none).
    pub map_lock: u32,
    /// Pid whose map lock this fault holds shared (`fault_map_read_lock`; 0: none).
    pub map_read: u32,
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
    pub arrived: u16,
}

pub enum Adv {
    Paused(Point),
    Done(Outcome),
}

/// Pause `k` waiting for `lock` and return `Point::Wait` from the enclosing phase.
macro_rules! wait_for {
    ($k:expr, $lock:expr) => {{
        return Some($k.wait($lock));
    }};
}
pub(crate) use wait_for;

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
            orphan: NO_FRAME,
            map_lock: 0,
            map_read: 0,
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
    pub(crate) fn yield_at(&mut self, p: Point, stop: Option<Point>) -> bool {
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

    /// Stops at `wait` for `lock` (a lock check comes before any change of its phase, so the
    /// phase runs again whole on `resume`).
    #[inline]
    pub(crate) fn wait(&mut self, lock: Lock) -> Point {
        self.waiting = Some(lock);
        self.paused = true;
        self.at = None;
        Point::Wait
    }
}

impl Machine {
    // ---- locks -------------------------------------------------------------------------

    fn others(&self, cpu: usize) -> impl Iterator<Item = &KOp> {
        self.cpus.iter().enumerate().filter(move |(c, _)| *c != cpu).filter_map(|(_, c)| c.kop.as_ref())
    }

    #[inline]
    pub(crate) fn busy_by_other(&self, cpu: usize, f: FrameId) -> bool {
        self.kernel.busy_lock && self.inflight > 0 && self.others(cpu).any(|k| k.busy == f)
    }

    #[inline]
    pub(crate) fn map_locked_by_other(&self, cpu: usize, pid: u32) -> bool {
        self.kernel.map_lock && self.inflight > 0 && self.others(cpu).any(|k| k.map_lock == pid)
    }

    /// A fault on another CPU holds `pid`'s map lock shared (only `fault_map_read_lock`
    /// kernels take it).
    #[inline]
    pub(crate) fn map_read_by_other(&self, cpu: usize, pid: u32) -> bool {
        self.kernel.fault_map_read_lock && self.inflight > 0 && self.others(cpu).any(|k| k.map_read == pid)
    }

    /// What taking `pid`'s map lock exclusively waits for: a holder, then the shared holders.
    #[inline]
    pub(crate) fn map_write_blocked(&self, cpu: usize, pid: u32) -> Option<Lock> {
        if self.map_locked_by_other(cpu, pid) {
            Some(Lock::Map(pid))
        } else if self.map_read_by_other(cpu, pid) {
            Some(Lock::MapReaders(pid))
        } else {
            None
        }
    }

    #[inline]
    pub(crate) fn pte_locked_by_other(&self, cpu: usize, pid: u32, va: u8) -> bool {
        self.pte_lock_owner(cpu, |r| r.asid == pid && r.va == va).is_some()
    }

    /// killalllwps(): another thread of `pid` is in the kernel — exit1() waits for it. Not for
    /// another process's procfs op on `pid` (SPEC §3.2 *Exit*): exit1 tears the address space
    /// down first and only proc_move_allproc_zombie waits for PHOLD holders; the page such an
    /// op holds stays valid (`vm_page_hold`).
    #[inline]
    pub(crate) fn sibling_in_kernel(&self, cpu: usize, pid: u32) -> bool {
        self.kernel.exit_waits_siblings
            && self.inflight > 0
            && self.others(cpu).any(|k| k.pid == pid && !matches!(k.phase, Phase::Exit | Phase::Joined))
    }

    /// Whether `lock` is free for an op on `cpu` now.
    pub fn lock_free(&self, cpu: usize, lock: Lock) -> bool {
        match lock {
            Lock::Busy(f) => !self.busy_by_other(cpu, f),
            Lock::Map(p) => !self.map_locked_by_other(cpu, p),
            Lock::MapReaders(p) => self.map_write_blocked(cpu, p).is_none(),
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
                if k.map_read != 0 {
                    v.push((c, Lock::MapReaders(k.map_read)));
                }
            }
        }
        for r in self.pte_locks() {
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

    // ---- the dispatcher ------------------------------------------------------------------

    /// Start `op` on `cpu` for thread (pid, tid) and run it until `stop` or completion.
    #[inline]
    pub fn kop_start(&mut self, cpu: usize, op: Op, pid: u32, tid: u32, stop: Option<Point>) -> Outcome {
        // Fast path (vm_fault.rs): an access the TLB or the page walk serves is no kernel
        // operation at all (checked before any op value is made); else the op starts at its
        // fault.
        if let Op::Load(a) | Op::Store(a, _) = op {
            if let Some(o) = self.user_access_fast(cpu, pid, op, a) {
                return o;
            }
        }
        // A switch not stopped at `enter` has no point to stop at: both halves at once.
        if let Op::Switch(t) = op {
            if stop != Some(Point::Enter) {
                self.switch_now(cpu, t);
                return Outcome::Ok;
            }
        }
        let mut k = KOp::new(op, pid, tid);
        match op {
            Op::Load(a) | Op::Store(a, _) => k.to_user_fault(a),
            // A plain map operation on a quiet machine reports no yield point (it stops at none
            // and no other op can see it between its phases): the semantic features of the
            // build before issue 24, kept so its reports are unchanged.
            Op::Mprotect(..) | Op::Madvise(_) if stop.is_none() && self.inflight == 0 && self.invals.is_empty() => {
                let o = self.kop_run(cpu, k, stop);
                self.scratch.arrived = 0;
                return o;
            }
            _ => {}
        }
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
        self.scratch.arrived = k.arrived;
        self.scratch.passed = k.arrived;
        // An orphaned busy page (vm_object.rs) is let go once the op no longer has it busy.
        if k.orphan != NO_FRAME && !(matches!(adv, Adv::Paused(_)) && k.busy == k.orphan) {
            self.phys.unhold(k.orphan);
            k.orphan = NO_FRAME;
        }
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
            Phase::UserAccess => self.user_access(cpu, k),
            Phase::UserFault => self.user_fault(cpu, k, stop),
            Phase::PageFault => self.page_fault(cpu, k, stop),
            Phase::Retry => self.procfs_retry(k, stop),
            Phase::Access => {
                if k.yield_at(Point::Access, stop) {
                    return Some(Point::Access);
                }
                match k.op {
                    Op::ProcfsRead(..) | Op::ProcfsWrite(..) => self.procfs_access(k),
                    Op::UmtxSleep(..) | Op::UmtxWakeup(_) => self.umtx_access(k),
                    _ => unreachable!(),
                }
                None
            }
            Phase::Sleep => self.umtx_sleep_phase(cpu, k, stop),
            Phase::IpiWait => self.ipi_wait_phase(cpu, k, stop),
            Phase::Finish => None,
            Phase::Exit => self.exit_phase(cpu, k),
            Phase::ExitIpiWait => self.exit_ipi_wait(cpu, k, stop),
            Phase::ExitFinish => self.exit_finish(cpu, k),
            Phase::Joined => {
                k.phase = Phase::Finish;
                None
            }
            Phase::SwitchEnter => self.switch_enter_phase(cpu, k, stop),
            Phase::MremapEnter => self.mremap_enter_phase(cpu, k, stop),
            Phase::Clean => self.clean_phase(k, stop),
            Phase::Free => self.pageout_free_phase(cpu, k, stop),
        }
    }

    /// The first phase of each op (its locks are taken before any change, so a `wait` there
    /// leaves nothing half done).
    fn start(&mut self, cpu: usize, k: &mut KOp) -> Option<Point> {
        match k.op {
            Op::Switch(t) => self.switch_start(cpu, k, t),
            Op::Load(_) | Op::Store(..) => k.phase = Phase::UserAccess,
            Op::Spawn => {
                k.result = self.spawn(k.pid);
                k.phase = Phase::Finish;
            }
            Op::Exit => {
                k.result = Outcome::Ok;
                k.phase = Phase::Exit;
            }
            Op::ProcfsRead(t, a) | Op::ProcfsWrite(t, a, _) => self.procfs_start(k, t, a),
            Op::UmtxSleep(a, _) | Op::UmtxWakeup(a) => self.umtx_start(k, a),
            Op::Fork => return self.fork_start(cpu, k),
            Op::Mprotect(va, w) => return self.mprotect_start(cpu, k, va, w),
            Op::Madvise(va) => return self.madvise_start(cpu, k, va),
            Op::Munmap(va) => return self.munmap_mmap_start(cpu, k, va, false),
            Op::Mmap(va) => return self.munmap_mmap_start(cpu, k, va, true),
            Op::Mremap(va, to) => return self.mremap_start(cpu, k, va, to),
            Op::Msync(va) => return self.msync_start(cpu, k, va),
            Op::Pageout(t, va) => return self.pageout_start(cpu, k, t, va),
            Op::Resume | Op::Ipi => unreachable!(),
        }
        None
    }

    /// The phase after an op's PTE changes: its `ipi_wait` if it started shootdowns, else
    /// what comes after that (`after_ipi_wait`).
    #[inline]
    pub(crate) fn after_changes(&self, cpu: usize, k: &KOp) -> Phase {
        if self.own_records(cpu) {
            Phase::IpiWait
        } else {
            after_ipi_wait(k)
        }
    }

    /// Completion work that needs the shootdowns done (fork builds the child, madvise drops
    /// the discarded object), then the map lock is released.
    fn finish(&mut self, cpu: usize, k: &mut KOp) {
        if k.map_lock == 0 {
            return;
        }
        k.result = match k.op {
            Op::Fork => self.fork_finish(k.pid),
            Op::Madvise(_) => self.madvise_finish(cpu, k),
            Op::Munmap(_) | Op::Mmap(_) | Op::Mremap(..) => {
                self.vm_map_release(cpu, k);
                k.result
            }
            _ => k.result,
        };
        k.map_lock = 0;
    }

    /// SPEC §3.4 `lost-data`: a frame freed or marked clean while it holds a store its
    /// backing store does not (checked with the invariants after the line).
    pub(crate) fn lost_data(&mut self, why: String) {
        if self.scratch.dirty.lost.is_none() {
            self.scratch.dirty.lost = Some(why);
        }
    }
}

/// What follows an op's `ipi_wait`: mremap's enter of the moved PTE, msync's and pageout's
/// `clean` (a page still busy: pageout under `free-before-flush` has freed it already),
/// else the finish.
#[inline]
pub(crate) fn after_ipi_wait(k: &KOp) -> Phase {
    match k.op {
        Op::Mremap(..) if k.fs.frame != NO_FRAME => Phase::MremapEnter,
        Op::Msync(_) | Op::Pageout(..) if k.busy != NO_FRAME => Phase::Clean,
        _ => Phase::Finish,
    }
}

#[cfg(test)]
mod tests {
    use super::Lock;
    use crate::program::Outcome::{self, *};
    use crate::testutil::*;

    /// cpu0's debugger write stops at `access` holding P1's data0 page; P1's own load on cpu1.
    fn load_during_a_procfs_access(kernel: &str) -> (Outcome, Option<Lock>) {
        let mut m = machine(kernel, "cpus=2");
        line(&mut m, "cpu0 spawn");
        line(&mut m, "cpu1 switch P1.T2");
        assert_eq!(line(&mut m, "cpu0 procfs_write P1 data0.0 0x1 until access"), Paused);
        let o = line(&mut m, "cpu1 load data0.0");
        (o, m.cpus[1].kop.and_then(|k| k.waiting))
    }

    #[test]
    fn a_fault_waits_for_a_page_busy_through_a_procfs_access() {
        let (o, lock) = load_during_a_procfs_access("fixed");
        assert!(o == Paused && matches!(lock, Some(Lock::Busy(_))), "{o:?} {lock:?}");
        // procfs-hold-only: the page is only held, the load goes on
        assert_eq!(load_during_a_procfs_access("procfs-hold-only"), (Value(0), None));
    }

    #[test]
    fn only_resume_and_ipi_run_where_an_op_is_in_flight() {
        let mut m = machine("fixed", "cpus=2");
        assert!(refused(&mut m, "cpu0 resume"), "nothing in flight");
        assert!(refused(&mut m, "cpu0 ipi"), "nothing pending");
        line(&mut m, "cpu0 store data0.0 0x2"); // a page for the fork to share
        line(&mut m, "cpu0 fork");
        line(&mut m, "cpu1 switch P2.T1");
        assert_eq!(line(&mut m, "cpu0 store data0.0 0x1 until cow"), Paused);
        assert!(refused(&mut m, "cpu0 load data0.0"));
        assert_eq!(line(&mut m, "cpu0 resume"), Ok);
        assert_eq!(m.inflight, 0);
    }
}
