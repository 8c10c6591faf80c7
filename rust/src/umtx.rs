//! umtx: sleepers keyed by (frame, word). umtx_sleep faults the page with READ|WRITE only to
//! force copy-on-write now, reads the word through a kernel mapping, and sleeps holding the
//! page with a copy-on-write event registered: when the COW path copies that frame, the
//! sleepers are woken (spuriously: they return to user mode). umtx_wakeup wakes the sleepers
//! keyed by the frame its READ lookup finds.

use crate::kop::{KOp, Phase};
use crate::machine::Machine;
use crate::phys::{FrameId, NO_FRAME};
use crate::program::{Addr, Op, Outcome, Point};
use crate::proc::ThreadState;
use crate::vm_fault::{FaultState, VM_PROT_READ, VM_PROT_WRITE};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sleeper {
    pub pid: u32,
    pub tid: u32,
    pub frame: FrameId,
    pub word: u8,
}

impl Machine {
    /// The page is faulted: WRITE for a sleep (10192bae: forces the copy-on-write now, and a
    /// page without write is EFAULT), READ for a wakeup.
    pub(crate) fn umtx_start(&mut self, k: &mut KOp, a: Addr) {
        let mut ft = if matches!(k.op, Op::UmtxSleep(..)) { VM_PROT_WRITE } else { VM_PROT_READ };
        if ft.write && !self.kernel.umtx_fault_write {
            // Before 10192bae: the page is faulted for READ (no forced COW, and so no EFAULT:
            // a page without write is compared and slept on).
            ft = VM_PROT_READ;
        }
        k.fs = FaultState::new(k.pid, a.page, ft);
        k.paused = false;
        k.phase = Phase::PageFault;
    }

    /// `Phase::Access` (past its yield point): a wakeup wakes the word's sleepers on the held
    /// frame; a sleep compares the word (EBUSY when it differs) and goes on to sleep.
    pub(crate) fn umtx_access(&mut self, k: &mut KOp) {
        let f = k.held;
        k.busy = NO_FRAME;
        match k.op {
            Op::UmtxWakeup(a) => {
                self.wake_where(|s| s.frame == f && s.word == a.word);
                k.result = Outcome::Ok;
            }
            Op::UmtxSleep(a, v) if self.phys.word(f, a.word) == v => {
                k.phase = Phase::Sleep;
                return;
            }
            _ => k.result = Outcome::Ebusy,
        }
        self.phys.unhold(f);
        k.held = NO_FRAME;
        k.phase = Phase::Finish;
    }

    /// `Phase::Sleep`: on the sleep queue holding the page; with `umtx_recheck` (369ba561) the
    /// page still mapped there (else start over) and the word re-read (EBUSY) first.
    pub(crate) fn umtx_sleep_phase(&mut self, cpu: usize, k: &mut KOp, stop: Option<Point>) -> Option<Point> {
        if k.yield_at(Point::Sleep, stop) {
            return Some(Point::Sleep);
        }
        let Op::UmtxSleep(a, v) = k.op else { unreachable!() };
        let f = k.held;
        // The hold from vm_fault_page is kept for the sleep.
        self.sleepers.push(Sleeper { pid: k.pid, tid: k.tid, frame: f, word: a.word });
        if self.kernel.umtx_recheck {
            // Still the page mapped at that address, still writable (else start over); then
            // the word re-read. (The write is checked only where the fault forced it:
            // pre-10192bae's READ fault keys a sleeper on a still-shared frame on purpose.)
            let p = self.proc(k.pid);
            let moved = match p.map.lookup(a.page) {
                // The tree's re-check (369ba561, kern_umtx.c:143) reads only the word.
                _ if !self.kernel.umtx_recheck_mapping => false,
                None => true,
                Some(i) => {
                    let e = p.map.entries[i];
                    let mapped = self.vm_page_lookup_chain(e.object, e.offset + (a.page - e.start)).map(|x| x.2);
                    mapped != Some(f) || (k.fs.ft.write && (!e.prot_write || e.needs_copy))
                }
            };
            if moved || self.phys.word(f, a.word) != v {
                self.sleepers.pop();
                self.phys.unhold(f);
                k.held = NO_FRAME;
                (k.phase, k.result) = if moved { (Phase::Start, k.result) } else { (Phase::Finish, Outcome::Ebusy) };
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

    /// vm_page_event(m, VMEVENT_COW): the frame's sleepers are woken.
    pub fn vm_page_event_cow(&mut self, f: FrameId) {
        self.wake_where(|s| s.frame == f);
    }

    pub fn wake_where(&mut self, pred: impl Fn(&Sleeper) -> bool) {
        let mut i = 0;
        while i < self.sleepers.len() {
            if pred(&self.sleepers[i]) {
                let s = self.sleepers.swap_remove(i);
                self.thread_mut(s.pid, s.tid).state = ThreadState::Runnable;
                self.scratch.woke.push((s.pid, s.tid));
                self.phys.unhold(s.frame);
            } else {
                i += 1;
            }
        }
    }

    /// The sleepers of a dying process vanish with it (their holds are released).
    pub fn umtx_drop_sleepers(&mut self, pid: u32) {
        let mut i = 0;
        while i < self.sleepers.len() {
            if self.sleepers[i].pid == pid {
                let s = self.sleepers.swap_remove(i);
                self.phys.unhold(s.frame);
            } else {
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::program::Outcome::*;
    use crate::testutil::*;

    #[test]
    fn a_sleep_holds_its_page_and_a_wakeup_of_the_word_wakes_it() {
        let mut m = machine("fixed", "cpus=2");
        line(&mut m, "cpu0 spawn");
        line(&mut m, "cpu1 switch P1.T2");
        assert_eq!(line(&mut m, "cpu1 umtx_sleep data0.0 0x0"), Blocked);
        assert_eq!(m.sleepers.len(), 1);
        let f = m.sleepers[0].frame;
        assert_eq!(m.phys.get(f).hold, 1);
        assert_eq!(m.cpus[1].running, None);
        assert_eq!(line_woke(&mut m, "cpu0 umtx_wakeup data0.1"), (Ok, vec![]), "another word");
        assert_eq!(line_woke(&mut m, "cpu0 umtx_wakeup data0.0"), (Ok, vec![(1, 2)]));
        assert!(m.sleepers.is_empty());
        assert_eq!(m.phys.get(f).hold, 0);
    }

    #[test]
    fn a_sleep_on_a_changed_word_is_ebusy_and_holds_nothing() {
        let mut m = machine("fixed", "cpus=1");
        assert_eq!(line(&mut m, "cpu0 umtx_sleep data0.0 0x7"), Ebusy);
        assert!(m.sleepers.is_empty());
        assert!(m.phys.frames.iter().all(|f| f.hold == 0));
    }

    /// A sleeper keyed on a frame that a copy-on-write then copies is woken by the copy
    /// (VMEVENT_COW) — not under `no-cow-event`.
    fn cow_of_a_sleepers_frame(kernel: &str) -> Vec<(u32, u32)> {
        let mut m = machine(kernel, "cpus=2");
        line(&mut m, "cpu0 spawn");
        line(&mut m, "cpu1 switch P1.T2");
        assert_eq!(line(&mut m, "cpu1 umtx_sleep data0.0 0x0"), Blocked);
        line(&mut m, "cpu0 fork");
        let (o, woke) = line_woke(&mut m, "cpu0 store data0.0 0x1");
        assert_eq!(o, Ok);
        woke
    }

    /// A fork and a sibling's store copy the sleeper's page between its compare and its
    /// registration: `fixed`'s re-check sees the held page is no longer mapped there and
    /// starts over (EBUSY on the new value); the tree's re-check reads only the word through
    /// the held (old) page and sleeps on a frame the process no longer maps.
    #[test]
    fn the_trees_recheck_reads_only_the_word() {
        for (kernel, want) in [("fixed", Ebusy), ("tree-385c96e4", Blocked)] {
            let mut m = machine(kernel, "cpus=2");
            line(&mut m, "cpu0 spawn");
            line(&mut m, "cpu1 switch P1.T2");
            assert_eq!(line(&mut m, "cpu0 umtx_sleep data0.0 0x0 until sleep"), Paused);
            line(&mut m, "cpu1 fork");
            assert_eq!(line(&mut m, "cpu1 store data0.0 0x1"), Ok);
            assert_eq!(line(&mut m, "cpu0 resume"), want, "{kernel}");
        }
    }

    #[test]
    fn the_copy_of_a_sleepers_frame_wakes_it() {
        assert_eq!(cow_of_a_sleepers_frame("fixed"), vec![(1, 2)]);
        assert_eq!(cow_of_a_sleepers_frame("no-cow-event"), vec![]);
    }
}
