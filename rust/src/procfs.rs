//! procfs_rwmem (`/proc/P/mem`, ptrace's PT_READ/PT_WRITE): the target's page found by
//! vm_fault_page — a write with VM_PROT_OVERRIDE_WRITE, so a read-only private page is
//! copied first — held, then read or written through a kernel mapping. A forced write whose
//! fault copied looks the page up again (`retry`, get_user_pages' second lookup). The target
//! may exit meanwhile: exit does not wait for a procfs user (SPEC §3.2 *Exit*); or unmap the
//! page, which the access then looks up again (docs/readings.md R6).

use crate::kop::{KOp, Phase};
use crate::machine::Machine;
use crate::phys::NO_FRAME;
use crate::program::{Addr, Op, Outcome, Point};
use crate::vm_fault::{FaultState, VM_PROT_OVERRIDE_WRITE, VM_PROT_READ};

impl Machine {
    /// The target must be alive (ESRCH), then its page is faulted.
    pub(crate) fn procfs_start(&mut self, k: &mut KOp, t: u32, a: Addr) {
        if !(t >= 1 && (t as usize) <= self.procs.len() && self.proc(t).alive) {
            k.result = Outcome::Esrch;
            k.phase = Phase::Finish;
            return;
        }
        let ft = if matches!(k.op, Op::ProcfsRead(..)) { VM_PROT_READ } else { VM_PROT_OVERRIDE_WRITE };
        k.fs = FaultState::new(t, a.page, ft);
        k.paused = false;
        k.phase = Phase::PageFault;
    }

    /// Whether the target's map still reaches, at the access's address, the object its lookup
    /// started from (a copy-on-write shadow in front of it included).
    fn procfs_mapping_kept(&self, k: &KOp) -> bool {
        let p = self.proc(k.fs.pid);
        let Some(i) = p.map.lookup(k.fs.va) else { return false };
        let mut o = Some(p.map.entries[i].object);
        while let Some(x) = o {
            if x == k.fs.first {
                return true;
            }
            o = self.obj(x).backing;
        }
        false
    }

    /// `Phase::Retry`: the forced write looks the page up again; `fixed` keeps the write intent.
    pub(crate) fn procfs_retry(&mut self, k: &mut KOp, stop: Option<Point>) -> Option<Point> {
        if k.yield_at(Point::Retry, stop) {
            return Some(Point::Retry);
        }
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

    /// `Phase::Access` (past its yield point): the read or write through the held page.
    pub(crate) fn procfs_access(&mut self, k: &mut KOp) {
        if self.proc(k.fs.pid).alive && !self.procfs_mapping_kept(k) {
            // The target unmapped the page (munmap; mmap, mremap or madvise replaced it)
            // while the access held it: the held page may be another process's (a shared
            // object), written after the unmap -- a value no order of the operations gives.
            // Look the page up again, as an exit makes the access fail (readings.md R6).
            self.phys.unhold(k.held);
            k.held = NO_FRAME;
            k.busy = NO_FRAME;
            k.fs = FaultState::new(k.fs.pid, k.fs.va, k.fs.ft);
            k.paused = false;
            k.phase = Phase::PageFault;
            return;
        }
        let f = k.held;
        k.result = match k.op {
            // The target exited while the access held its page: the page stays valid but the
            // access fails as on a dead process. Writing it would land in a page the exit
            // already released from the target — a shared page's other mappers would see a
            // debugger write that completed after the target's exit.
            Op::ProcfsRead(t, _) | Op::ProcfsWrite(t, _, _) if !self.proc(t).alive => Outcome::Esrch,
            Op::ProcfsRead(_, a) => Outcome::Value(self.phys.word(f, a.word)),
            Op::ProcfsWrite(_, a, v) => {
                self.write_word(f, a.word, v);
                Outcome::Ok
            }
            _ => unreachable!(),
        };
        k.busy = NO_FRAME;
        self.phys.unhold(f);
        k.held = NO_FRAME;
        k.phase = Phase::Finish;
    }
}

#[cfg(test)]
mod tests {
    use crate::program::{text_word, Outcome::*};
    use crate::testutil::*;

    #[test]
    fn a_debugger_write_to_text_copies_the_page_and_leaves_the_file_alone() {
        let mut m = machine("fixed", "cpus=1");
        line(&mut m, "cpu0 fork");
        assert_eq!(line(&mut m, "cpu0 procfs_write P2 text0.0 0x9"), Ok);
        let file = m.obj(m.file_object).pages[0];
        assert_eq!(m.phys.word(file, 0), text_word(0, 0));
        assert_eq!(line(&mut m, "cpu0 procfs_read P2 text0.1"), Value(text_word(0, 1)));
        line(&mut m, "cpu0 switch P2.T1");
        assert_eq!(line(&mut m, "cpu0 load text0.0"), Value(9));
    }

    /// A debugger write that copies on write: `fixed` looks the page up again (`retry`), the
    /// tree's procfs_rwmem makes one vm_fault_page pass and goes on to the access.
    #[test]
    fn the_tree_has_no_second_lookup() {
        for (kernel, retry) in [("fixed", true), ("tree-385c96e4", false)] {
            let mut m = machine(kernel, "cpus=1");
            line(&mut m, "cpu0 fork");
            let o = line(&mut m, "cpu0 procfs_write P2 text0.0 0x9 until retry");
            assert_eq!(o, if retry { Paused } else { Ok }, "{kernel}");
        }
    }

    #[test]
    fn a_target_that_is_not_there_is_esrch() {
        let mut m = machine("fixed", "cpus=1");
        assert_eq!(line(&mut m, "cpu0 procfs_read P5 data0.0"), Esrch);
    }

    #[test]
    fn an_access_paused_past_its_lookup_fails_esrch_once_the_target_exited() {
        let mut m = machine("fixed", "cpus=2");
        line(&mut m, "cpu0 fork");
        line(&mut m, "cpu1 switch P2.T1");
        assert_eq!(line(&mut m, "cpu0 procfs_write P2 data0.0 0x3 until access"), Paused);
        assert_eq!(line(&mut m, "cpu1 exit"), Ok, "exit does not wait for a procfs user");
        assert_eq!(line(&mut m, "cpu0 resume"), Esrch);
        assert!(m.phys.frames.iter().all(|f| f.hold == 0));
    }

    /// docs/readings.md R6: a read paused at `access` holding P2's shm0 page; P2 unmaps shm0
    /// (or maps a new one over it) and P1 stores to the page both shared. Reading through the
    /// held page would give 0x1, written after the target stopped mapping it; the access
    /// looks the page up again instead. Verdicts derived by hand (before the model ran them):
    /// munmap -> EFAULT; mmap over it -> the new shm0's word, 0x0.
    #[test]
    fn a_debugger_access_looks_up_again_a_page_its_target_unmapped() {
        for (change, want) in [("cpu1 munmap shm0", Efault), ("cpu1 mmap shm0", Value(0))] {
            for kernel in ["fixed", "procfs-hold-only", "tree-385c96e4"] {
                let mut m = machine(kernel, "cpus=3");
                for l in ["cpu0 fork", "cpu0 load shm0.0", "cpu0 spawn"] {
                    line(&mut m, l);
                }
                assert_eq!(line(&mut m, "cpu0 procfs_read P2 shm0.0 until access"), Paused);
                for l in ["cpu1 switch P2.T1", change, "cpu2 switch P1.T2"] {
                    assert_ne!(line(&mut m, l), Paused, "{kernel}: {l}");
                }
                assert_eq!(line(&mut m, "cpu2 store shm0.0 0x1"), Ok);
                assert_eq!(line(&mut m, "cpu0 resume"), want, "{kernel}: {change}");
                assert!(m.phys.frames.iter().all(|f| f.hold == 0));
            }
        }
    }
}
