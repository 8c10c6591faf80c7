//! What one operation of a history window reads and writes in the contract's state, so that a
//! window whose concurrent operations touch disjoint state closes without its order search.
//!
//! When a window closes (nothing pending), the judge needs every distinct end state over the
//! valid orders of its operations (`Lin::all_ends`), a search over the orders the real-time
//! intervals allow. Two operations whose intervals overlap and whose footprints do not conflict
//! (neither writes what the other reads or writes) give the same state and the same
//! validity in either order. If that holds for every overlapping pair, then in every valid
//! order each operation reads what it read in the completion order: the writers of a
//! location are ordered among themselves and against each reader the same way in every order
//! (an overlapping pair would conflict), and an operation's footprint follows from what it
//! reads (a page's mapping decides which words a load reads). So every order is valid and
//! ends in the completion order's state, which the fast path already holds. The window's
//! footprints are taken from the fast path's single state as each operation completes.
//!
//! Each footprint mirrors `Judge::want`, `Judge::effect` and `Lin::place` op by op; an
//! operation this file does not describe conflicts with everything.

use super::{Judge, Lin, Pg};
use crate::program::{Op, Outcome, Step, SHM};

/// A location of the contract state: kind, pid and index (a page, a shared object; `ALL`:
/// every page of the pid).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Loc(u32);

const ALL: u32 = 0xff;
/// `pages[pg]`'s mapping: unmapped, private (and what `madvise` restores) or which shared
/// object; and `writable[pg]`.
const MAP: u32 = 1;
/// A private page's words.
const MEM: u32 = 2;
const ALIVE: u32 = 3;
/// `live_threads`, `next_tid`.
const THR: u32 = 4;
/// Every location of one process (a fork's child, created whole).
const PROC: u32 = 5;
/// A shared object's words (pid 0, index the object).
const SH: u32 = 6;
/// How many processes there are and how many are alive (a fork's outcome).
const COUNT: u32 = 7;
/// How many shared objects there are (`mmap shm0` makes one).
const NSH: u32 = 8;
/// The sleepers (their set and their keys).
const SLEEPERS: u32 = 9;
/// That the process exists (`want` indexes it for every op it performs).
const EXISTS: u32 = 10;

impl Loc {
    fn new(kind: u32, pid: u32, idx: u32) -> Loc {
        Loc(kind << 24 | pid << 8 | idx)
    }
    fn kind(self) -> u32 {
        self.0 >> 24
    }
    fn pid(self) -> u32 {
        (self.0 >> 8) & 0xffff
    }
    fn idx(self) -> u32 {
        self.0 & 0xff
    }
    fn meets(self, o: Loc) -> bool {
        let per_pid = |k: u32| (MAP..=PROC).contains(&k) || k == EXISTS;
        if self.kind() == PROC || o.kind() == PROC {
            return per_pid(self.kind()) && per_pid(o.kind()) && self.pid() == o.pid();
        }
        self.kind() == o.kind() && self.pid() == o.pid() && (self.idx() == o.idx() || self.idx() == ALL || o.idx() == ALL)
    }
}

/// What an operation reads and writes (a write counts as a read too); `all`: unknown, meets
/// everything.
#[derive(Clone, Copy, Debug)]
pub(in crate::judge) struct Footprint {
    reads: [Loc; 5],
    nr: u8,
    writes: [Loc; 6],
    nw: u8,
    all: bool,
    /// The thread performing it: `place` takes it out of the sleepers (a write of them when it
    /// may be one).
    actor: Option<(u32, u32)>,
}

impl Footprint {
    pub(in crate::judge) const UNKNOWN: Footprint =
        Footprint { reads: [Loc(0); 5], nr: 0, writes: [Loc(0); 6], nw: 0, all: true, actor: None };

    fn r(&mut self, l: Loc) {
        self.reads[self.nr as usize] = l;
        self.nr += 1;
    }
    fn w(&mut self, l: Loc) {
        self.writes[self.nw as usize] = l;
        self.nw += 1;
    }

    /// Whether the two may not be swapped: one writes what the other touches. `sleepy`: the
    /// threads that may be sleepers during the window (`place`'s removal of the actor writes
    /// the sleepers only for them).
    pub(in crate::judge) fn conflicts(&self, o: &Footprint, sleepy: &[(u32, u32)]) -> bool {
        if self.all || o.all {
            return true;
        }
        let sl = Loc::new(SLEEPERS, 0, 0);
        let wakes = |f: &Footprint| f.actor.is_some_and(|t| sleepy.contains(&t));
        let writes = |f: &Footprint, l: Loc| f.writes[..f.nw as usize].iter().any(|w| w.meets(l)) || (l == sl && wakes(f));
        let touches = |f: &Footprint, l: Loc| writes(f, l) || f.reads[..f.nr as usize].iter().any(|r| r.meets(l));
        let w_hits = |a: &Footprint, b: &Footprint| {
            a.writes[..a.nw as usize].iter().any(|&l| touches(b, l)) || (wakes(a) && touches(b, sl))
        };
        w_hits(self, o) || w_hits(o, self)
    }
}

impl Judge {
    /// The footprint of placing `step` by `actor` in this state (`Lin::place`: the actor
    /// leaves the sleepers, `want`, `effect`).
    pub(in crate::judge) fn footprint(&self, step: &Step, actor: Option<(u32, u32)>) -> Footprint {
        let mut f = Footprint { all: false, actor, ..Footprint::UNKNOWN };
        let small = |pid: u32| pid <= 0xffff;
        if let Op::Pageout(t, _) = step.op {
            if !small(t) {
                return Footprint::UNKNOWN;
            }
            f.r(Loc::new(ALIVE, t, 0));
            return f;
        }
        let Some((pid, _)) = actor else { return f };
        if !small(pid) || !small(self.procs.len() as u32 + 1) {
            return Footprint::UNKNOWN;
        }
        f.r(Loc::new(EXISTS, pid, 0));
        let done = match step.op {
            Op::Switch(_) | Op::Ipi | Op::Msync(_) => true,
            Op::Fork => {
                f.r(Loc::new(COUNT, 0, 0));
                if let Outcome::Pid(child) = self.want(step, actor) {
                    f.r(Loc::new(MAP, pid, ALL));
                    f.r(Loc::new(MEM, pid, ALL));
                    f.w(Loc::new(COUNT, 0, 0));
                    f.w(Loc::new(PROC, child, 0));
                }
                true
            }
            Op::Spawn => {
                f.w(Loc::new(THR, pid, 0));
                true
            }
            Op::Exit => {
                kill(&mut f, pid);
                true
            }
            Op::Pageout(..) | Op::Resume => return Footprint::UNKNOWN,
            _ => self.access_footprint(&mut f, step, pid) || map_footprint(&mut f, step.op, pid),
        };
        debug_assert!(done);
        f
    }

    /// A user access, umtx or procfs op: the words it reads or writes, where its page's mapping
    /// puts them. False for another op.
    fn access_footprint(&self, f: &mut Footprint, step: &Step, pid: u32) -> bool {
        // The words at `pg` of `pid`: its own, or a shared object's (None: unmapped).
        let words = |pid: u32, pg: u8| match self.page(pid, pg) {
            Pg::Unmapped => None,
            Pg::Private { .. } => Some(Loc::new(MEM, pid, pg as u32)),
            Pg::Shared(o) => Some(Loc::new(SH, 0, o as u32)),
        };
        match step.op {
            Op::Load(a) | Op::Store(a, _) => {
                f.r(map(pid, a.page));
                let ok = matches!(step.op, Op::Load(_)) || self.want(step, Some((pid, 0))) == Outcome::Ok;
                match words(pid, a.page) {
                    Some(l) if ok && matches!(step.op, Op::Load(_)) => f.r(l),
                    Some(l) if ok => f.w(l),
                    _ => kill(f, pid),
                }
            }
            Op::UmtxSleep(a, _) | Op::UmtxWakeup(a) => {
                f.r(map(pid, a.page));
                if let Some(l) = words(pid, a.page) {
                    f.r(l);
                }
                f.w(Loc::new(SLEEPERS, 0, 0));
            }
            Op::ProcfsRead(t, a) | Op::ProcfsWrite(t, a, _) => {
                if t > 0xffff {
                    *f = Footprint::UNKNOWN;
                    return true;
                }
                f.r(Loc::new(ALIVE, t, 0));
                if self.alive(t) {
                    f.r(map(t, a.page));
                    match words(t, a.page) {
                        Some(l) if matches!(step.op, Op::ProcfsWrite(..)) => f.w(l),
                        Some(l) => f.r(l),
                        None => {}
                    }
                }
            }
            _ => return false,
        }
        true
    }
}

fn map(pid: u32, pg: u8) -> Loc {
    Loc::new(MAP, pid, pg as u32)
}

/// A fatal signal or an exit: the process dies and its sleepers go.
fn kill(f: &mut Footprint, pid: u32) {
    f.w(Loc::new(ALIVE, pid, 0));
    f.w(Loc::new(COUNT, 0, 0));
    f.w(Loc::new(SLEEPERS, 0, 0));
}

/// A map operation of `pid`: the page's mapping and words (two pages for mremap); a mapping
/// that goes or comes orphans the private sleepers there. False for another op.
fn map_footprint(f: &mut Footprint, op: Op, pid: u32) -> bool {
    match op {
        Op::Madvise(pg) => {
            f.r(map(pid, pg));
            f.w(Loc::new(MEM, pid, pg as u32));
        }
        Op::Mprotect(pg, _) => f.w(map(pid, pg)),
        Op::Munmap(pg) | Op::Mmap(pg) => {
            f.w(map(pid, pg));
            f.w(Loc::new(MEM, pid, pg as u32));
            f.w(Loc::new(SLEEPERS, 0, 0));
            if matches!(op, Op::Mmap(_)) && pg == SHM {
                f.w(Loc::new(NSH, 0, 0));
            }
        }
        Op::Mremap(pg, to) if pg != to => {
            for p in [pg, to] {
                f.w(map(pid, p));
                f.w(Loc::new(MEM, pid, p as u32));
            }
            f.w(Loc::new(SLEEPERS, 0, 0));
        }
        Op::Mremap(..) => {}
        _ => return false,
    }
    true
}

impl Lin {
    /// Whether the window (nothing pending) has one end state, the fast path's, without the
    /// order search: one candidate state, the completion order valid from it, and no two
    /// operations whose intervals overlap with conflicting footprints (the file's doc comment
    /// argues it). The search `all_ends` would give the same: every order is valid then, so its
    /// first path (at most one call per operation) reaches that state, and a search cut short
    /// by its budget later can find no other.
    pub(in crate::judge) fn closes_alone(&self) -> bool {
        if self.cands.len() != 1 || self.fast.len() != 1 {
            return false;
        }
        // The threads that may be sleepers during the window: those asleep when it opened and
        // those that sleep in it.
        let mut sleepy = [(0u32, 0u32); 64];
        let mut ns = 0;
        let window_sleeps = self.window.iter().filter(|h| matches!(h.step.op, Op::UmtxSleep(..))).filter_map(|h| h.actor);
        for t in self.cands[0].sleepers.iter().map(|x| x.t).chain(window_sleeps) {
            if ns == sleepy.len() {
                return false;
            }
            sleepy[ns] = t;
            ns += 1;
        }
        let w = &self.window;
        (0..w.len()).all(|i| {
            (i + 1..w.len()).all(|j| {
                let (a, b) = (&w[i], &w[j]);
                let overlap = a.end.is_none_or(|e| e >= b.start) && b.end.is_none_or(|e| e >= a.start);
                !overlap || !a.fp.conflicts(&b.fp, &sleepy[..ns])
            })
        })
    }

    /// Self-check of `closes_alone` (tests only): the order search finds exactly the fast
    /// path's state. Counts (closes checked, mismatches) in `super::lin::tests::CLOSE_STATS`.
    #[cfg(test)]
    pub(in crate::judge) fn check_close_alone(&mut self, n: u32) {
        let ends = self.all_ends(n);
        let same = ends.len() == 1 && ends[0].state_hash() == self.fast[0].state_hash() && format!("{:?}", ends[0]) == format!("{:?}", self.fast[0]);
        let (closes, bad) = super::lin::tests::CLOSE_STATS.get();
        super::lin::tests::CLOSE_STATS.set((closes + 1, bad + !same as u64));
    }
}
