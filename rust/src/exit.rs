//! exit1 (and the fatal SEGV, which exits the same way): killalllwps waits until no other
//! thread of the process is in the kernel; then every thread dies, its umtx sleepers vanish,
//! the pmap is torn down (with shootdown, `ipi_wait`) and the map's objects are released
//! under the map lock (vmspace_exit).

use crate::kop::{wait_for, KOp, Lock, Phase};
use crate::machine::{Machine, MAX_PROCS};
use crate::program::{Point, NPAGES};
use crate::proc::ThreadState;

impl Machine {
    /// `Phase::Exit`: killalllwps, the PTE locks of the pmap, then the teardown up to its
    /// shootdown. Siblings waiting to exit too join this exit.
    pub(crate) fn exit_phase(&mut self, cpu: usize, k: &mut KOp) -> Option<Point> {
        let pid = k.pid;
        if self.sibling_in_kernel(cpu, pid) {
            wait_for!(k, Lock::Siblings(pid));
        }
        // vmspace_exit's vm_map_remove takes the map lock: another process's fault on this
        // map (procfs) that holds it shared goes first (`fault_map_read_lock` only).
        if self.map_read_by_other(cpu, pid) {
            wait_for!(k, Lock::MapReaders(pid));
        }
        // (No records, no op in flight elsewhere — a plain line — : nothing to scan.)
        if !self.invals.is_empty() {
            for va in 0..NPAGES as u8 {
                if self.pte_locked_by_other(cpu, pid, va) {
                    wait_for!(k, Lock::Pte(pid, va));
                }
            }
        }
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
        self.vm_map_lock(k, pid);
        k.phase = Phase::ExitIpiWait;
        None
    }

    /// `Phase::ExitIpiWait`: the teardown's shootdowns (a point only when there were some).
    pub(crate) fn exit_ipi_wait(&mut self, cpu: usize, k: &mut KOp, stop: Option<Point>) -> Option<Point> {
        if self.own_records(cpu) {
            if k.yield_at(Point::IpiWait, stop) {
                return Some(Point::IpiWait);
            }
            self.ipi_wait_pass(cpu);
        }
        k.phase = Phase::ExitFinish;
        None
    }

    /// `Phase::ExitFinish`: the map's objects released; the process is gone.
    pub(crate) fn exit_finish(&mut self, cpu: usize, k: &mut KOp) -> Option<Point> {
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
}

#[cfg(test)]
mod tests {
    use crate::kop::Lock;
    use crate::machine::IDLE_SPACE;
    use crate::program::Outcome::*;
    use crate::proc::ThreadState;
    use crate::testutil::*;

    #[test]
    fn exit_tears_the_address_space_down_and_idles_the_cpu() {
        let mut m = machine("fixed", "cpus=1");
        line(&mut m, "cpu0 fork");
        line(&mut m, "cpu0 switch P2.T1");
        line(&mut m, "cpu0 store data0.0 0x5");
        assert_eq!(line(&mut m, "cpu0 exit"), Ok);
        let p = m.proc(2);
        assert!(!p.alive && p.map.entries.is_empty() && p.pmap.pm_active == 0);
        assert!(p.pmap.pte.iter().all(|x| !x.present()));
        assert!(p.threads.iter().all(|t| t.state == ThreadState::Dead));
        assert_eq!((m.cpus[0].running, m.cpus[0].space), (None, IDLE_SPACE));
    }

    #[test]
    fn exit_waits_for_a_sibling_in_the_kernel() {
        let mut m = machine("fixed", "cpus=2");
        line(&mut m, "cpu0 spawn");
        line(&mut m, "cpu1 switch P1.T2");
        assert_eq!(line(&mut m, "cpu1 store data0.0 0x1 until pmap_enter"), Paused);
        assert_eq!(line(&mut m, "cpu0 exit"), Paused);
        assert_eq!(m.cpus[0].kop.and_then(|k| k.waiting), Some(Lock::Siblings(1)));
        assert!(m.proc(1).alive);
        assert_eq!(line(&mut m, "cpu1 resume"), Ok);
        assert_eq!(line(&mut m, "cpu0 resume"), Ok);
        assert!(!m.proc(1).alive);
        assert_eq!(m.cpus[1].running, None, "the sibling's CPU is idled by the exit");
    }
}
