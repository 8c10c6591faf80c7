//! pyvmfuzz core: a multi-CPU memory-management machine (per-CPU TLBs, pmaps with
//! `pm_active`, shootdown, BSD copy-on-write VM) running fork/thread/umtx/procfs programs
//! against a chosen kernel variant, judged at full speed. Python bindings at the bottom.

pub mod codec;
pub mod exec;
pub mod explain;
pub mod explore;
pub mod exit;
pub mod features;
pub mod fork;
pub mod hw;
pub mod invariants;
pub mod judge;
pub mod kernel;
pub mod kop;
pub mod machine;
pub mod mutate;
pub mod necessity;
pub mod pct;
pub mod phys;
pub mod pmap;
pub mod pmap_inval;
pub mod proc;
pub mod procfs;
pub mod program;
pub mod soak;
pub mod swtch;
#[cfg(test)]
mod testutil;
pub mod tlb;
pub mod umtx;
pub mod vm_fault;
pub mod vm_map;
pub mod vm_object;
pub mod vm_pageout;

mod python;
