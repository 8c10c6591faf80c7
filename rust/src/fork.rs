//! fork (vmspace_fork): private entries become copy-on-write/needs-copy in parent and child,
//! the parent's PTEs for them are write-protected (with shootdown); shared entries are shared;
//! the child's pmap starts empty and its one thread T1 is runnable. Under the parent's map
//! lock it write-protects and marks the entries, waits for its IPIs (`ipi_wait`, the shared
//! `Phase::IpiWait`), then builds the child.

use crate::kop::{wait_for, KOp, Lock};
use crate::machine::{Machine, MAX_PROCS};
use crate::program::{Outcome, Point};

impl Machine {
    /// fork's first phase: the locks (the map; with nothing else in flight no busy page or
    /// PTE lock can be met), then the write-protect and the copy-on-write marks.
    pub(crate) fn fork_start(&mut self, cpu: usize, k: &mut KOp) -> Option<Point> {
        let pid = k.pid;
        if self.live_procs() >= MAX_PROCS {
            k.result = Outcome::Eagain;
            k.phase = crate::kop::Phase::Finish;
            return None;
        }
        if self.map_locked_by_other(cpu, pid) {
            wait_for!(k, Lock::Map(pid));
        }
        if self.inflight > 0 || !self.invals.is_empty() {
            if let Some(l) = self.fork_blocked(cpu, pid) {
                wait_for!(k, l);
            }
        }
        self.vm_map_lock(k, pid);
        for i in 0..self.proc(pid).map.entries.len() {
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
        k.phase = self.after_changes(cpu);
        None
    }

    /// What the copy-on-write marking would wait for: a busy page of a private entry (where
    /// vmspace_fork's vm_page_protect sleeps on it), or a PTE another op has locked.
    fn fork_blocked(&self, cpu: usize, pid: u32) -> Option<Lock> {
        for e in self.proc(pid).map.entries.iter().filter(|e| !e.inherit_share && !e.needs_copy) {
            for va in e.start..e.end {
                if self.kernel.fork_waits_busy && self.inflight > 0 {
                    if let Some((_, _, f)) = self.vm_page_lookup_chain(e.object, e.offset + (va - e.start)) {
                        if self.busy_by_other(cpu, f) {
                            return Some(Lock::Busy(f));
                        }
                    }
                }
                if self.pte_locked_by_other(cpu, pid, va) {
                    return Some(Lock::Pte(pid, va));
                }
            }
        }
        None
    }

    /// After the shootdowns: the child, with a reference on each of the parent's objects.
    pub(crate) fn fork_finish(&mut self, pid: u32) -> Outcome {
        if self.live_procs() >= MAX_PROCS {
            return Outcome::Eagain;
        }
        let child = self.procs.len() as u32 + 1;
        let mut cp = self.alloc_proc(child);
        for i in 0..self.proc(pid).map.entries.len() {
            let e = self.proc(pid).map.entries[i];
            self.vm_object_reference(e.object);
            cp.map.entries.push(e);
        }
        self.procs.push(cp);
        Outcome::Pid(child)
    }
}
