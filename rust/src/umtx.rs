//! umtx: sleepers keyed by (frame, word). umtx_sleep faults the page with READ|WRITE only to
//! force copy-on-write now, reads the word through a kernel mapping, and sleeps holding the
//! page with a copy-on-write event registered: when the COW path copies that frame, the
//! sleepers are woken (spuriously: they return to user mode). umtx_wakeup wakes the sleepers
//! keyed by the frame its READ lookup finds.

use crate::fault::{VM_PROT_READ, VM_PROT_WRITE};
use crate::machine::Machine;
use crate::phys::FrameId;
use crate::proc::ThreadState;
use crate::program::{Addr, Outcome};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sleeper {
    pub pid: u32,
    pub tid: u32,
    pub frame: FrameId,
    pub word: u8,
}

impl Machine {
    pub fn umtx_sleep(&mut self, cpu: usize, pid: u32, tid: u32, a: Addr, value: u32) -> Outcome {
        let Ok(f) = self.vm_fault_page(cpu, pid, a.page, VM_PROT_WRITE) else {
            return Outcome::Efault;
        };
        if self.phys.get(f).words[a.word as usize] != value {
            self.phys.unhold(f);
            return Outcome::Ebusy;
        }
        // The hold from vm_fault_page is kept for the sleep.
        self.sleepers.push(Sleeper { pid, tid, frame: f, word: a.word });
        self.thread_mut(pid, tid).state = ThreadState::Blocked;
        self.cpu_idle(cpu);
        Outcome::Blocked
    }

    pub fn umtx_wakeup(&mut self, cpu: usize, pid: u32, a: Addr) -> Outcome {
        let f = self
            .vm_fault_page(cpu, pid, a.page, VM_PROT_READ)
            .unwrap_or_else(|_| panic!("READ fault failed on a readable page"));
        self.wake_where(|s| s.frame == f && s.word == a.word);
        self.phys.unhold(f);
        Outcome::Ok
    }

    /// vm_page_event(m, VMEVENT_COW): the frame's sleepers are woken.
    pub fn vm_page_event_cow(&mut self, f: FrameId) {
        self.wake_where(|s| s.frame == f);
    }

    fn wake_where(&mut self, pred: impl Fn(&Sleeper) -> bool) {
        let mut i = 0;
        while i < self.sleepers.len() {
            if pred(&self.sleepers[i]) {
                let s = self.sleepers.swap_remove(i);
                self.thread_mut(s.pid, s.tid).state = ThreadState::Runnable;
                self.woke.push((s.pid, s.tid));
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
