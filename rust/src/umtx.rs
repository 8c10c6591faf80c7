//! umtx: sleepers keyed by (frame, word). umtx_sleep faults the page with READ|WRITE only to
//! force copy-on-write now, reads the word through a kernel mapping, and sleeps holding the
//! page with a copy-on-write event registered: when the COW path copies that frame, the
//! sleepers are woken (spuriously: they return to user mode). umtx_wakeup wakes the sleepers
//! keyed by the frame its READ lookup finds.

use crate::machine::Machine;
use crate::phys::FrameId;
use crate::proc::ThreadState;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sleeper {
    pub pid: u32,
    pub tid: u32,
    pub frame: FrameId,
    pub word: u8,
}

impl Machine {
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
