//! Snapshots of the machine after each step, for `pyvmfuzz explain`: what each CPU runs and
//! caches, each live pmap's PTEs and `pm_active`, the frame each process sees per page, and
//! the umtx sleepers.

use crate::machine::{Machine, IDLE_SPACE};
use crate::program::NPAGES;

#[derive(Clone, Debug)]
pub struct CpuSnap {
    pub running: Option<(u32, u32)>,
    pub space: u32,
    /// (asid, page, frame, writable), oldest first.
    pub tlb: Vec<(u32, u8, u32, bool)>,
    /// The op in flight: (op, phase, point, lock waited for) — see `Machine::inflight_info`.
    pub inflight: Option<(String, String, &'static str, Option<String>)>,
    /// Invalidations pending for this CPU: (address space, page, initiating cpu).
    pub pending: Vec<(u32, u8, u8)>,
}

#[derive(Clone, Debug)]
pub struct ProcSnap {
    pub pid: u32,
    pub pm_active: u8,
    /// Per page: the PTE (frame, writable), if present, and its modified bit.
    pub pte: [Option<(u32, bool)>; NPAGES],
    pub modified: [bool; NPAGES],
    /// Per page: the frame the process's map would find (PTE aside), if any.
    pub seen: [Option<u32>; NPAGES],
    /// Per page: the map entry's (prot write, needs copy, shadow depth); None: unmapped.
    pub entry: [Option<(bool, bool, u32)>; NPAGES],
    /// Threads: (tid, state name).
    pub threads: Vec<(u32, &'static str)>,
}

#[derive(Clone, Debug)]
pub struct Snapshot {
    pub cpus: Vec<CpuSnap>,
    pub procs: Vec<ProcSnap>,
    pub sleepers: Vec<(u32, u32, u32, u8)>,
    /// Every frame referenced above: (frame, words, freed, dirty flag, slot).
    pub frames: Vec<(u32, [u32; 4], bool, bool, u32)>,
}

pub fn snapshot(m: &Machine) -> Snapshot {
    let mut frames: Vec<u32> = Vec::new();
    let mut note = |f: u32| {
        if !frames.contains(&f) {
            frames.push(f)
        }
    };
    let cpus = m
        .cpus
        .iter()
        .enumerate()
        .map(|(i, c)| CpuSnap {
            inflight: m.inflight_info(i),
            pending: m.pending_ipis(i),
            running: c.running,
            space: c.space,
            tlb: c
                .tlb
                .entries
                .iter()
                .map(|e| {
                    note(e.frame);
                    (e.asid, e.va, e.frame, e.writable)
                })
                .collect(),
        })
        .collect();
    let mut procs = Vec::new();
    for p in m.procs.iter().filter(|p| p.alive) {
        let mut pte = [None; NPAGES];
        let mut seen = [None; NPAGES];
        let mut entry = [None; NPAGES];
        let mut modified = [false; NPAGES];
        for va in 0..NPAGES as u8 {
            let t = p.pmap.pte[va as usize];
            if t.present() {
                note(t.frame);
                pte[va as usize] = Some((t.frame, t.writable));
                modified[va as usize] = t.modified;
            }
            let Some(i) = p.map.lookup(va) else { continue };
            let e = p.map.entries[i];
            if let Some((_, _, f)) = m.vm_page_lookup_chain(e.object, e.offset + (va - e.start)) {
                if f != crate::phys::NO_FRAME {
                    note(f);
                    seen[va as usize] = Some(f);
                }
            }
            entry[va as usize] = Some((e.prot_write, e.needs_copy, m.shadow_depth(e.object)));
        }
        let threads = p
            .threads
            .iter()
            .filter(|t| t.state != crate::proc::ThreadState::Dead)
            .map(|t| {
                let s = match t.state {
                    crate::proc::ThreadState::Runnable => "runnable",
                    crate::proc::ThreadState::Running(_) => "running",
                    crate::proc::ThreadState::Blocked => "blocked",
                    crate::proc::ThreadState::Dead => "dead",
                };
                (t.tid, s)
            })
            .collect();
        procs.push(ProcSnap { pid: p.pid, pm_active: p.pmap.pm_active, pte, modified, seen, entry, threads });
    }
    let sleepers = m
        .sleepers
        .iter()
        .map(|s| {
            note(s.frame);
            (s.pid, s.tid, s.frame, s.word)
        })
        .collect();
    let frames = frames
        .iter()
        .map(|&f| {
            let fr = m.phys.get(f);
            (f, m.phys.words(f), fr.freed, fr.dirty, fr.slot)
        })
        .collect();
    let _ = IDLE_SPACE;
    Snapshot { cpus, procs, sleepers, frames }
}
