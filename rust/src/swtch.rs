//! Context switch (cpu_switch) in two halves, with `enter` between them: which address space
//! a CPU runs, `pm_active` maintenance and the TLB flush. Leaving an address space clears
//! this CPU's bit in its `pm_active`; entering sets it. On `pc64` changing address space
//! reloads %cr3 without PCID: the TLB is flushed. On `tagged` hardware nothing is flushed,
//! which the 385c96e4-era kernels do not account for. Switching between threads of one
//! process keeps the address space and the TLB. Between the halves the CPU runs no address
//! space (`MID_SWITCH`).

use crate::hw::TlbMode;
use crate::kop::{KOp, Phase};
use crate::machine::{Machine, IDLE_SPACE};
use crate::program::{Point, Target};
use crate::proc::ThreadState;

/// A CPU between the two halves of a context switch runs no address space.
pub const MID_SWITCH: u32 = u32::MAX;

fn target(t: Target) -> Option<(u32, u32)> {
    match t {
        Target::Idle => None,
        Target::Thread(p, t) => Some((p, t)),
    }
}

impl Machine {
    /// `cpu` leaves address space `old` (not the idle space): its `pm_active` bit goes —
    /// unless on tagged hardware the kernel keeps it until the next flush.
    #[inline]
    fn pmap_deactivate(&mut self, cpu: usize, old: u32) {
        if old != IDLE_SPACE && (self.hw.mode == TlbMode::Pc64 || !self.kernel.pm_active_until_flush) {
            self.proc_mut(old).pmap.pm_active &= !(1u8 << cpu);
        }
    }

    /// A switch not stopped at `enter`: both halves at once.
    #[inline]
    pub fn switch_now(&mut self, cpu: usize, t: Target) {
        let (old, new) = self.switch_leave(cpu, target(t));
        self.switch_enter(cpu, old, new);
    }

    /// The switch's first phase: its first half; then `enter`.
    pub(crate) fn switch_start(&mut self, cpu: usize, k: &mut KOp, t: Target) {
        (k.aux, k.aux2) = self.switch_leave(cpu, target(t));
        k.phase = Phase::SwitchEnter;
    }

    /// `Phase::SwitchEnter`: the second half.
    pub(crate) fn switch_enter_phase(&mut self, cpu: usize, k: &mut KOp, stop: Option<Point>) -> Option<Point> {
        if k.yield_at(Point::Enter, stop) {
            return Some(Point::Enter);
        }
        if k.paused {
            // Skipped by the invariants while mid-switch: look again (its TLB may also hold
            // frames freed meanwhile: use-after-free too).
            self.scratch.dirty.space = true;
            self.scratch.dirty.pte = true;
        }
        self.switch_enter(cpu, k.aux, k.aux2);
        k.phase = Phase::Finish;
        None
    }

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
            self.pmap_deactivate(cpu, old);
        }
        self.cpus[cpu].space = MID_SWITCH;
        if old != new {
            self.scratch.dirty.space = true;
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
            self.scratch.dirty.space = true;
        }
        self.cpus[cpu].space = new;
    }

    /// The running thread leaves `cpu` without becoming runnable (it blocked or died): the CPU
    /// runs the idle space.
    pub fn cpu_idle(&mut self, cpu: usize) {
        self.cpus[cpu].running = None;
        let old = self.cpus[cpu].space;
        if old == IDLE_SPACE {
            return;
        }
        self.scratch.dirty.space = true;
        self.pmap_deactivate(cpu, old);
        if self.hw.mode == TlbMode::Pc64 {
            self.cpus[cpu].tlb.flush();
        }
        self.cpus[cpu].space = IDLE_SPACE;
    }
}

#[cfg(test)]
mod tests {
    use super::MID_SWITCH;
    use crate::program::Outcome::*;
    use crate::testutil::*;

    #[test]
    fn a_switch_of_address_space_flushes_on_pc64_and_moves_pm_active() {
        for (hw, kept) in [("cpus=1 mode=pc64", false), ("cpus=1 mode=tagged", true)] {
            let mut m = machine("fixed", hw);
            line(&mut m, "cpu0 fork");
            line(&mut m, "cpu0 load data0.0"); // (after the fork, whose write-protect drops it)
            line(&mut m, "cpu0 switch P2.T1");
            assert_eq!(tlb(&m, 0, 1, "data0").is_some(), kept, "{hw}");
            assert_eq!((m.proc(1).pmap.pm_active, m.proc(2).pmap.pm_active), (0, 1), "{hw}");
        }
    }

    #[test]
    fn between_the_halves_the_cpu_runs_no_address_space() {
        let mut m = machine("fixed", "cpus=1");
        line(&mut m, "cpu0 fork");
        assert_eq!(line(&mut m, "cpu0 switch P2.T1 until enter"), Paused);
        assert_eq!(m.cpus[0].space, MID_SWITCH);
        assert_eq!((m.proc(1).pmap.pm_active, m.proc(2).pmap.pm_active), (0, 0));
        assert_eq!(line(&mut m, "cpu0 resume"), Ok);
        assert_eq!((m.cpus[0].space, m.proc(2).pmap.pm_active), (2, 1));
    }

    #[test]
    fn a_switch_within_one_process_keeps_pm_active_except_under_switch_clear_early() {
        for (kernel, bit) in [("fixed", 1), ("switch-clear-early", 0)] {
            let mut m = machine(kernel, "cpus=1");
            line(&mut m, "cpu0 spawn");
            assert_eq!(line(&mut m, "cpu0 switch P1.T2 until enter"), Paused);
            assert_eq!(m.proc(1).pmap.pm_active, bit, "{kernel}");
        }
    }
}
