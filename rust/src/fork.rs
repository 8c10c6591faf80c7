//! fork (vmspace_fork): private entries become copy-on-write/needs-copy in parent and child,
//! the parent's PTEs for them are write-protected (with shootdown); shared entries are shared;
//! the child's pmap starts empty and its one thread T1 is runnable.

use crate::machine::{Machine, MAX_PROCS};
use crate::pmap::Pmap;
use crate::proc::{Proc, Thread, ThreadState};
use crate::program::Outcome;
use crate::vm_map::VmMap;

impl Machine {
    pub fn fork(&mut self, cpu: usize, pid: u32) -> Outcome {
        if self.live_procs() >= MAX_PROCS {
            return Outcome::Eagain;
        }
        let child = self.procs.len() as u32 + 1;
        let mut entries = Vec::with_capacity(self.proc(pid).map.entries.len());
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
            entries.push(self.proc(pid).map.entries[i]);
        }
        self.procs.push(Proc {
            pid: child,
            alive: true,
            map: VmMap { entries },
            pmap: Pmap::new(),
            threads: vec![Thread { tid: 1, state: ThreadState::Runnable }],
        });
        Outcome::Pid(child)
    }
}
