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

use super::{Judge, Pg};
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
        let per_pid = |k: u32| (MAP..=PROC).contains(&k);
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
    reads: [Loc; 4],
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
        Footprint { reads: [Loc(0); 4], nr: 0, writes: [Loc(0); 6], nw: 0, all: true, actor: None };

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
        if let Op::Pageout(t, _) = step.op {
            if t > 0xffff {
                return Footprint::UNKNOWN;
            }
            f.r(Loc::new(ALIVE, t, 0));
            return f;
        }
        let Some((pid, _)) = actor else { return f };
        if pid > 0xffff || self.procs.len() >= 0xffff {
            return Footprint::UNKNOWN;
        }
        let map = |pid: u32, pg: u8| Loc::new(MAP, pid, pg as u32);
        // The words at `pg` of `pid`: its own, or a shared object's (None: unmapped).
        let words = |pid: u32, pg: u8| match self.page(pid, pg) {
            Pg::Unmapped => None,
            Pg::Private { .. } => Some(Loc::new(MEM, pid, pg as u32)),
            Pg::Shared(o) => Some(Loc::new(SH, 0, o as u32)),
        };
        let kill = |f: &mut Footprint| {
            f.w(Loc::new(ALIVE, pid, 0));
            f.w(Loc::new(COUNT, 0, 0));
            f.w(Loc::new(SLEEPERS, 0, 0));
        };
        let want = self.want(step, actor);
        match step.op {
            Op::Switch(_) | Op::Ipi | Op::Msync(_) => {}
            Op::Load(a) => {
                f.r(map(pid, a.page));
                match words(pid, a.page) {
                    Some(l) => f.r(l),
                    None => kill(&mut f),
                }
            }
            Op::Store(a, _) => {
                f.r(map(pid, a.page));
                match words(pid, a.page) {
                    Some(l) if want == Outcome::Ok => f.w(l),
                    _ => kill(&mut f),
                }
            }
            Op::Fork => {
                f.r(Loc::new(COUNT, 0, 0));
                if let Outcome::Pid(child) = want {
                    if child > 0xffff {
                        return Footprint::UNKNOWN;
                    }
                    f.r(Loc::new(MAP, pid, ALL));
                    f.r(Loc::new(MEM, pid, ALL));
                    f.w(Loc::new(COUNT, 0, 0));
                    f.w(Loc::new(PROC, child, 0));
                }
            }
            Op::Spawn => f.w(Loc::new(THR, pid, 0)),
            Op::Exit => kill(&mut f),
            Op::UmtxSleep(a, _) | Op::UmtxWakeup(a) => {
                f.r(map(pid, a.page));
                if let Some(l) = words(pid, a.page) {
                    f.r(l);
                }
                f.w(Loc::new(SLEEPERS, 0, 0));
            }
            Op::ProcfsRead(t, a) | Op::ProcfsWrite(t, a, _) => {
                if t > 0xffff {
                    return Footprint::UNKNOWN;
                }
                f.r(Loc::new(ALIVE, t, 0));
                if self.alive(t) {
                    f.r(map(t, a.page));
                    if let Some(l) = words(t, a.page) {
                        if matches!(step.op, Op::ProcfsWrite(..)) {
                            f.w(l);
                        } else {
                            f.r(l);
                        }
                    }
                }
            }
            Op::Madvise(pg) => {
                f.r(map(pid, pg));
                f.w(Loc::new(MEM, pid, pg as u32));
            }
            Op::Mprotect(pg, _) => f.w(map(pid, pg)),
            Op::Munmap(pg) | Op::Mmap(pg) => {
                f.w(map(pid, pg));
                f.w(Loc::new(MEM, pid, pg as u32));
                f.w(Loc::new(SLEEPERS, 0, 0));
                if matches!(step.op, Op::Mmap(_)) && pg == SHM {
                    f.w(Loc::new(NSH, 0, 0));
                }
            }
            Op::Mremap(pg, to) if pg != to => {
                f.w(map(pid, pg));
                f.w(Loc::new(MEM, pid, pg as u32));
                f.w(map(pid, to));
                f.w(Loc::new(MEM, pid, to as u32));
                f.w(Loc::new(SLEEPERS, 0, 0));
            }
            Op::Mremap(..) => {}
            Op::Pageout(..) | Op::Resume => return Footprint::UNKNOWN,
        }
        f
    }
}
