//! Fault types of vm_fault and vm_fault_page. The fault itself (vm_fault_object's lookup,
//! shadow-chain walk, copy-on-write by copy or rename, pmap_enter) runs in phases in
//! `inflight.rs`, so that it can stop at its yield points.

use crate::phys::FrameId;

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

