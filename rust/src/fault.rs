//! vm_fault and vm_fault_page, over their shared core vm_fault_object: the map lookup, the
//! shadow-chain walk, and copy-on-write by copy or rename.

use crate::machine::Machine;
use crate::phys::FrameId;
use crate::vm_object::ObjType;

#[derive(Clone, Copy, Debug)]
pub struct FaultType {
    pub write: bool,
    /// VM_PROT_OVERRIDE_WRITE (procfs/ptrace): the lookup checks and returns *max* prot.
    pub override_write: bool,
}

pub const VM_PROT_READ: FaultType = FaultType { write: false, override_write: false };
pub const VM_PROT_WRITE: FaultType = FaultType { write: true, override_write: false };
pub const VM_PROT_OVERRIDE_WRITE: FaultType = FaultType { write: true, override_write: true };

/// The lookup's result: the page and whether its mapping may be writable (`fs.prot`).
#[derive(Clone, Copy, Debug)]
pub struct FaultResult {
    pub frame: FrameId,
    pub writable: bool,
}

/// KERN_PROTECTION_FAILURE
#[derive(Debug)]
pub struct ProtectionFailure;

impl Machine {
    pub fn vm_fault_object(
        &mut self,
        cpu: usize,
        pid: u32,
        va: u8,
        ft: FaultType,
    ) -> Result<FaultResult, ProtectionFailure> {
        let i = self.proc(pid).map.lookup(va);
        let e = self.proc(pid).map.entries[i];
        let prot_write = if ft.override_write { e.max_write } else { e.prot_write };
        if ft.write && !prot_write {
            return Err(ProtectionFailure);
        }
        let mut writable = prot_write;
        if e.needs_copy {
            if ft.write {
                let s = self.vm_object_shadow(e.object, e.offset, e.end - e.start);
                let em = &mut self.proc_mut(pid).map.entries[i];
                em.object = s;
                em.offset = 0;
                em.needs_copy = false;
            } else {
                writable = false;
            }
        }
        let e = self.proc(pid).map.entries[i];
        let first = e.object;
        let pindex = e.offset + (va - e.start);
        let frame = match self.vm_page_lookup_chain(first, pindex) {
            None => {
                // Nothing in the chain: zero-fill into the top object (the bottom of an
                // anonymous chain; a file object has every page).
                let f = self.phys.alloc([0; 4]);
                self.obj_mut(first).pages[pindex as usize] = f;
                f
            }
            Some((o, _, f)) if o == first => f,
            Some((o, oidx, f)) => {
                if ft.write {
                    self.vm_fault_cow(cpu, first, pindex, o, oidx, f)
                } else {
                    // A page of a backing object is mapped read-only: writes must copy it.
                    writable = false;
                    f
                }
            }
        };
        Ok(FaultResult { frame, writable })
    }

    /// Copy-on-write of `old`, found at `oidx` in backing object `o`, into `first` at `pindex`.
    /// Rename (move) when `o` is first's immediate backing object, anonymous, with exactly one
    /// reference and one shadow: the frame does not change. Otherwise copy into a new frame,
    /// fire the COW event for umtx sleepers on the old frame, and (kernel knob) unmap it.
    fn vm_fault_cow(&mut self, cpu: usize, first: u32, pindex: u8, o: u32, oidx: u8, old: FrameId) -> FrameId {
        let ob = self.obj(o);
        let rename = self.obj(first).backing == Some(o)
            && ob.otype == ObjType::Anon
            && ob.ref_count == 1
            && ob.shadow_count == 1;
        if rename {
            self.obj_mut(o).pages[oidx as usize] = crate::phys::NO_FRAME;
            self.obj_mut(first).pages[pindex as usize] = old;
            return old;
        }
        let words = self.phys.get(old).words;
        let new = self.phys.alloc(words);
        self.obj_mut(first).pages[pindex as usize] = new;
        if self.kernel.cow_event {
            self.vm_page_event_cow(old);
        }
        if self.kernel.cow_copy_remove_all {
            self.pmap_remove_all(cpu, old);
        }
        new
    }

    /// vm_fault: a user fault in the process's own context.
    pub fn vm_fault(&mut self, cpu: usize, pid: u32, va: u8, write: bool) -> Result<(), ProtectionFailure> {
        let ft = if write { VM_PROT_WRITE } else { VM_PROT_READ };
        let r = self.vm_fault_object(cpu, pid, va, ft)?;
        self.pmap_enter(cpu, pid, va, r.frame, r.writable);
        Ok(())
    }

    /// vm_fault_page: fault a page of `pid`'s map from any context and return it held, for the
    /// caller to access through a kernel mapping.
    pub fn vm_fault_page(&mut self, cpu: usize, pid: u32, va: u8, ft: FaultType) -> Result<FrameId, ProtectionFailure> {
        let r = self.vm_fault_object(cpu, pid, va, ft)?;
        if self.kernel.vm_fault_page_pmap_enter {
            self.pmap_enter(cpu, pid, va, r.frame, r.writable);
        }
        self.phys.hold(r.frame);
        Ok(r.frame)
    }
}
