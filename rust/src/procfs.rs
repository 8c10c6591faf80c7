//! procfs_rwmem: /proc/P/mem access. Each word is reached by vm_fault_page on the *target's*
//! map — READ, or READ|WRITE|OVERRIDE_WRITE for a debugger write, allowed up to max prot —
//! from whatever CPU the caller runs on; the held frame is read or written through a kernel
//! mapping, never through the TLB.

use crate::fault::{VM_PROT_OVERRIDE_WRITE, VM_PROT_READ};
use crate::machine::Machine;
use crate::program::{Addr, Outcome};

impl Machine {
    fn procfs_target(&self, pid: u32) -> bool {
        pid >= 1 && (pid as usize) <= self.procs.len() && self.proc(pid).alive
    }

    pub fn procfs_read(&mut self, cpu: usize, target: u32, a: Addr) -> Outcome {
        if !self.procfs_target(target) {
            return Outcome::Esrch;
        }
        let f = self
            .vm_fault_page(cpu, target, a.page, VM_PROT_READ)
            .unwrap_or_else(|_| panic!("procfs READ fault failed"));
        let v = self.phys.get(f).words[a.word as usize];
        self.phys.unhold(f);
        Outcome::Value(v)
    }

    pub fn procfs_write(&mut self, cpu: usize, target: u32, a: Addr, value: u32) -> Outcome {
        if !self.procfs_target(target) {
            return Outcome::Esrch;
        }
        let f = self
            .vm_fault_page(cpu, target, a.page, VM_PROT_OVERRIDE_WRITE)
            .unwrap_or_else(|_| panic!("procfs OVERRIDE_WRITE fault failed within max prot"));
        self.write_word(f, a.word, value);
        self.phys.unhold(f);
        Outcome::Ok
    }
}
