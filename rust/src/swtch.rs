//! Context switch: which address space a CPU runs, `pm_active` maintenance and the TLB flush.
//! Leaving an address space clears this CPU's bit in its `pm_active`; entering sets it. On
//! `pc64` changing address space reloads %cr3 without PCID: the TLB is flushed. On `tagged`
//! hardware nothing is flushed, which the 385c96e4-era kernels do not account for.
//! Switching between threads of one process keeps the address space and the TLB.

use crate::hw::TlbMode;
use crate::machine::{Machine, IDLE_SPACE};
use crate::proc::ThreadState;

impl Machine {
    /// Load address space `space` (a pid, or IDLE_SPACE) on `cpu`.
    pub fn set_space(&mut self, cpu: usize, space: u32) {
        let old = self.cpus[cpu].space;
        if old == space {
            return;
        }
        self.dirty.space = true;
        let bit = 1u8 << cpu;
        let flushes = self.hw.mode == TlbMode::Pc64;
        if old != IDLE_SPACE && (flushes || !self.kernel.pm_active_until_flush) {
            self.proc_mut(old).pmap.pm_active &= !bit;
        }
        if space != IDLE_SPACE {
            self.proc_mut(space).pmap.pm_active |= bit;
        }
        if flushes {
            self.cpus[cpu].tlb.flush();
        }
        self.cpus[cpu].space = space;
    }

    /// The scheduler puts `to` (or nothing) on `cpu`; the previous thread becomes runnable.
    pub fn sched_switch(&mut self, cpu: usize, to: Option<(u32, u32)>) {
        if let Some((p, t)) = self.cpus[cpu].running {
            self.thread_mut(p, t).state = ThreadState::Runnable;
        }
        self.cpus[cpu].running = to;
        if let Some((p, t)) = to {
            self.thread_mut(p, t).state = ThreadState::Running(cpu as u8);
        }
        self.set_space(cpu, to.map_or(IDLE_SPACE, |(p, _)| p));
    }

    /// The running thread leaves `cpu` without becoming runnable (it blocked or died).
    pub fn cpu_idle(&mut self, cpu: usize) {
        self.cpus[cpu].running = None;
        self.set_space(cpu, IDLE_SPACE);
    }
}
