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
        if let Some(l) = self.map_write_blocked(cpu, pid) {
            wait_for!(k, l);
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
        k.phase = self.after_changes(cpu, k);
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

#[cfg(test)]
mod tests {
    use crate::kop::Lock;
    use crate::program::Outcome::*;
    use crate::testutil::*;

    #[test]
    fn fork_write_protects_private_ptes_and_shares_shm() {
        let mut m = machine("fixed", "cpus=1");
        line(&mut m, "cpu0 store data0.0 0x1");
        line(&mut m, "cpu0 store shm0.0 0x2");
        assert_eq!(line(&mut m, "cpu0 fork"), Pid(2));
        assert!(!pte(&m, 1, "data0").writable);
        assert!(pte(&m, 1, "shm0").writable);
        let parent = &m.proc(1).map.entries;
        let data = parent[m.proc(1).map.lookup(page("data0")).unwrap()];
        let shm = parent[m.proc(1).map.lookup(page("shm0")).unwrap()];
        assert!(data.needs_copy && data.cow && shm.inherit_share && !shm.needs_copy);
        let child = m.proc(2);
        assert_eq!(child.map.entries.len(), parent.len());
        assert!(child.pmap.pte.iter().all(|p| !p.present()));
        assert_eq!(child.threads.len(), 1);
    }

    #[test]
    fn fork_no_protect_leaves_the_parent_writable() {
        let mut m = machine("fork-no-protect", "cpus=1");
        line(&mut m, "cpu0 store data0.0 0x1");
        line(&mut m, "cpu0 fork");
        assert!(pte(&m, 1, "data0").writable);
    }

    /// A store's fault paused at `cow` (after its lookup): the tree's fault holds the map lock
    /// shared, so a fork on another CPU waits for it; `fixed`'s fork waits only for the page
    /// the fault keeps busy.
    #[test]
    fn a_fork_waits_for_a_fault_holding_the_map_read_lock_in_the_tree() {
        for (kernel, lock) in [("fixed", Lock::Busy(0)), ("tree-385c96e4", Lock::MapReaders(1))] {
            let mut m = machine(kernel, "cpus=2");
            line(&mut m, "cpu0 spawn");
            line(&mut m, "cpu1 switch P1.T2");
            line(&mut m, "cpu0 store data0.0 0x1");
            line(&mut m, "cpu0 fork");
            assert_eq!(line(&mut m, "cpu0 store data0.0 0x2 until cow"), Paused);
            assert_eq!(line(&mut m, "cpu1 fork"), Paused, "{kernel}");
            let w = m.cpus[1].kop.and_then(|k| k.waiting).unwrap();
            assert_eq!(std::mem::discriminant(&w), std::mem::discriminant(&lock), "{kernel}: {w:?}");
            assert!(refused(&mut m, "cpu1 resume"));
            assert_eq!(line(&mut m, "cpu0 resume"), Ok);
            assert_eq!(line(&mut m, "cpu1 resume"), Pid(3));
        }
    }

    #[test]
    fn fork_waits_for_the_map_lock_an_mprotect_holds_across_its_ipi_wait() {
        let mut m = machine("fixed", "cpus=2");
        line(&mut m, "cpu0 spawn");
        line(&mut m, "cpu1 switch P1.T2");
        line(&mut m, "cpu0 store data0.0 0x1");
        assert_eq!(line(&mut m, "cpu0 mprotect data0 r until ipi_wait"), Paused);
        assert_eq!(line(&mut m, "cpu1 fork"), Paused);
        assert_eq!(m.cpus[1].kop.and_then(|k| k.waiting), Some(Lock::Map(1)));
        assert!(refused(&mut m, "cpu1 resume"), "the lock is still held");
        assert_eq!(line(&mut m, "cpu0 resume"), Ok);
        assert_eq!(line(&mut m, "cpu1 resume"), Pid(2));
    }
}
