//! fork (vmspace_fork): private entries become copy-on-write/needs-copy in parent and child,
//! the parent's PTEs for them are write-protected (with shootdown); shared entries are shared;
//! the child's pmap starts empty and its one thread T1 is runnable.

use crate::machine::{Machine, MAX_PROCS};
use crate::program::Outcome;

impl Machine {
    pub fn fork(&mut self, cpu: usize, pid: u32) -> Outcome {
        if self.live_procs() >= MAX_PROCS {
            return Outcome::Eagain;
        }
        let child = self.procs.len() as u32 + 1;
        let mut cp = self.alloc_proc(child);
        for i in 0..self.proc(pid).map.entries.len() {
            let e = self.proc(pid).map.entries[i];
            self.vm_object_reference(e.object);
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
            cp.map.entries.push(self.proc(pid).map.entries[i]);
        }
        self.procs.push(cp);
        Outcome::Pid(child)
    }
}
