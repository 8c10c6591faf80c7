//! Processes and threads: creation (the initial layout), spawn and exit.

use crate::machine::{Machine, MAX_THREADS};
use crate::pmap::Pmap;
use crate::program::{Outcome, FILE0, FIRST_TEXT, SHM};
use crate::vm_map::{VmMap, VmMapEntry};
use crate::vm_object::ObjId;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadState {
    Runnable,
    Running(u8),
    Blocked,
    Dead,
}

#[derive(Clone, Debug)]
pub struct Thread {
    pub tid: u32,
    pub state: ThreadState,
}

#[derive(Clone, Debug)]
pub struct Proc {
    pub pid: u32,
    pub alive: bool,
    pub map: VmMap,
    pub pmap: Pmap,
    pub threads: Vec<Thread>,
}

impl Proc {
    /// Its death has taken effect (exit killed every thread) though `alive` may still be set:
    /// the master exit's teardown is in flight (DragonFly's P_WEXIT). It holds no fork slot
    /// (procfs still meets its map lock and then `ESRCH`: linearizable either way).
    pub fn exited(&self) -> bool {
        self.threads.iter().all(|t| t.state == ThreadState::Dead)
    }

    pub fn live_threads(&self) -> usize {
        self.threads.iter().filter(|t| t.state != ThreadState::Dead).count()
    }
}

impl Machine {
    /// The layout of a new process (exec): data0..3 one anonymous object, text0..1 the file
    /// object copy-on-write/needs-copy, shm0 the shared anonymous object.
    pub fn initial_map(&mut self, data: ObjId, entries: &mut Vec<VmMapEntry>) {
        let file = self.file_object;
        let shm = self.shm_object;
        let dfile = self.data_file_object;
        self.vm_object_reference(file);
        self.vm_object_reference(shm);
        self.vm_object_reference(dfile);
        let e = |start, end, object, prot_write, cow, share| VmMapEntry {
            start,
            end,
            object,
            offset: 0,
            prot_write,
            max_write: true,
            cow,
            needs_copy: cow,
            inherit_share: share,
        };
        entries.push(e(0, FIRST_TEXT, data, true, false, false));
        entries.push(e(FIRST_TEXT, SHM, file, false, true, false));
        entries.push(e(SHM, SHM + 1, shm, true, false, true));
        // file0: MAP_SHARED of the data file; hole0 has no entry (SPEC §3.4).
        entries.push(e(FILE0, FILE0 + 1, dfile, true, false, true));
    }

    /// Processes that count against the limit of SPEC §2.1 (8): those not yet dead to their
    /// users. A process whose exit has taken effect (`Proc::exited`) no longer counts while the
    /// exit's teardown (pmap removal, its `ipi_wait`) is still in flight: a sibling's joined
    /// exit may already have completed, and a fork after it must not see the slot taken
    /// (`corpus/litmus/i13`).
    pub fn live_procs(&self) -> usize {
        self.procs.iter().filter(|p| p.alive && !p.exited()).count()
    }

    pub fn spawn(&mut self, pid: u32) -> Outcome {
        let p = self.proc_mut(pid);
        if p.live_threads() >= MAX_THREADS {
            return Outcome::Eagain;
        }
        let tid = p.threads.len() as u32 + 1;
        p.threads.push(Thread { tid, state: ThreadState::Runnable });
        Outcome::Thread(pid, tid)
    }
}
