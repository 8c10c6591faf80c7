//! Canonical form of the judge's state for `explore`'s state hashing (SPEC §5). A child module
//! of `judge` so that it reads the judge's private state without widening its interface.
//!
//! What determines every later verdict of `Lin`: its candidate contract states (a set: sorted),
//! the history window (each op's step, actor, outcome, wakes, and whether it completed) and the
//! CPUs' open ops. Line numbers enter judgement only through real-time order (`eligible`,
//! `compact`) and the step number printed in a violation, so they are replaced by their rank:
//! two windows whose lines are ordered alike are judged alike.

use super::{CProc, Judge, Key, Lin};
use crate::program::{Observed, Op, Outcome, Step, Target};

pub fn outcome_code(o: Outcome) -> u64 {
    let (k, a, b) = match o {
        Outcome::Ok => (0u64, 0u64, 0u64),
        Outcome::Segv => (1, 0, 0),
        Outcome::Value(v) => (2, v as u64, 0),
        Outcome::Pid(p) => (3, p as u64, 0),
        Outcome::Thread(p, t) => (4, p as u64, t as u64),
        Outcome::Eagain => (5, 0, 0),
        Outcome::Blocked => (6, 0, 0),
        Outcome::Ebusy => (7, 0, 0),
        Outcome::Efault => (8, 0, 0),
        Outcome::Esrch => (9, 0, 0),
        Outcome::Paused => (10, 0, 0),
        Outcome::Einval => (11, 0, 0),
    };
    k | a << 8 | b << 40
}

/// A step as two words (cpu, op and its arguments). Not its `until`: the judge reads a line's
/// `until` only as it arrives (`Lin::literal`), never from the window, so two states whose
/// windows differ only there judge every later line alike (explore merges them).
pub fn step_code(s: &Step, out: &mut Vec<u64>) {
    let (k, a, b, c): (u64, u64, u64, u64) = match s.op {
        Op::Switch(Target::Idle) => (0, 0, 0, 0),
        Op::Switch(Target::Thread(p, t)) => (1, p as u64, t as u64, 0),
        Op::Load(x) => (2, x.page as u64, x.word as u64, 0),
        Op::Store(x, v) => (3, x.page as u64 | (x.word as u64) << 8, v as u64, 0),
        Op::Fork => (4, 0, 0, 0),
        Op::Spawn => (5, 0, 0, 0),
        Op::Exit => (6, 0, 0, 0),
        Op::UmtxSleep(x, v) => (7, x.page as u64 | (x.word as u64) << 8, v as u64, 0),
        Op::UmtxWakeup(x) => (8, x.page as u64, x.word as u64, 0),
        Op::ProcfsRead(p, x) => (9, x.page as u64 | (x.word as u64) << 8, p as u64, 0),
        Op::ProcfsWrite(p, x, v) => (10, x.page as u64 | (x.word as u64) << 8, v as u64, p as u64),
        Op::Madvise(pg) => (11, pg as u64, 0, 0),
        Op::Mprotect(pg, w) => (12, pg as u64, w as u64, 0),
        Op::Resume => (13, 0, 0, 0),
        Op::Ipi => (14, 0, 0, 0),
        Op::Munmap(pg) => (15, pg as u64, 0, 0),
        Op::Mmap(pg) => (16, pg as u64, 0, 0),
        Op::Mremap(pg, to) => (17, pg as u64, to as u64, 0),
        Op::Msync(pg) => (18, pg as u64, 0, 0),
        Op::Pageout(p, pg) => (19, pg as u64, p as u64, 0),
    };
    out.push(k | (s.cpu as u64) << 8 | c << 24);
    out.push(a | b << 32);
}

fn observed_code(outcome: Outcome, woke: &[(u32, u32)], out: &mut Vec<u64>) {
    out.push(outcome_code(outcome));
    out.push(woke.len() as u64);
    for (p, t) in woke {
        out.push((*p as u64) << 32 | *t as u64);
    }
}

fn cproc_code(p: &CProc, out: &mut Vec<u64>) {
    out.push(p.alive as u64 | (p.live_threads as u64) << 8 | (p.next_tid as u64) << 16);
    let mut w = 0u64;
    for (i, b) in p.writable.iter().enumerate() {
        w |= (*b as u64) << i;
    }
    out.push(w);
    for page in &p.pages {
        let (tag, m) = super::pg_words(page);
        out.push(tag);
        for v in m {
            out.push(v as u64);
        }
    }
}

fn judge_code(j: &Judge, rank: &dyn Fn(u32) -> u64, out: &mut Vec<u64>) {
    out.push(j.procs.len() as u64);
    for p in &j.procs {
        cproc_code(p, out);
    }
    out.push(j.shared.len() as u64);
    for m in &j.shared {
        for v in m {
            out.push(*v as u64);
        }
    }
    let mut sl = j.sleepers.clone();
    sl.sort_unstable();
    out.push(sl.len() as u64);
    for x in sl {
        let (p, t) = x.t;
        out.push((p as u64) << 32 | t as u64);
        out.push(rank(x.since) | rank(x.end) << 16);
        out.push(match x.key {
            Key::Private(pid, a) => 1 | (pid as u64) << 8 | (a.page as u64) << 40 | (a.word as u64) << 48,
            Key::Shared(o, w) => 2 | (w as u64) << 8 | (o as u64) << 16,
        });
    }
}

impl Lin {
    /// Append the canonical form of this judge's state to `out` (see the module comment).
    /// `perm`/`inv`: explore's CPU renaming (CPU `c` written as `perm[c]`) and its inverse.
    pub fn canon(&self, out: &mut Vec<u64>, perm: &[u8; 8], inv: &[u8; 8]) {
        // Line numbers by rank: the window's, the named wakes', the candidates' sleeps (0 for
        // a settled sleeper, below every line).
        let mut lines: Vec<u32> = self.window.iter().flat_map(|h| [h.start, h.end.unwrap_or(u32::MAX)]).collect();
        lines.extend(self.reports.iter().map(|r| r.0));
        for c in &self.cands {
            lines.extend(c.sleepers.iter().flat_map(|x| [x.since, x.end]));
        }
        lines.push(0);
        lines.push(u32::MAX);
        lines.sort_unstable();
        lines.dedup();
        let rank = |l: u32| lines.binary_search(&l).unwrap() as u64;
        let mut cands: Vec<Vec<u64>> = self
            .cands
            .iter()
            .map(|j| {
                let mut v = Vec::with_capacity(64);
                judge_code(j, &rank, &mut v);
                v
            })
            .collect();
        cands.sort_unstable();
        cands.dedup();
        out.push(cands.len() as u64);
        for c in cands {
            out.extend_from_slice(&c);
        }
        out.push(self.window.len() as u64);
        for h in &self.window {
            step_code(&Step { cpu: perm[h.step.cpu as usize], ..h.step }, out);
            out.push(h.actor.map_or(0, |(p, t)| 1 | (p as u64) << 8 | (t as u64) << 32));
            out.push(rank(h.start) | rank(h.end.unwrap_or(u32::MAX)) << 16);
            out.push(outcome_code(h.outcome));
        }
        for &c in inv {
            out.push(self.open[c as usize].map_or(u64::MAX, |i| i as u64));
        }
        out.push(self.reports.len() as u64);
        for &(l, (p, t)) in &self.reports {
            out.push(rank(l) | (p as u64) << 16 | (t as u64) << 40);
        }
        out.push(self.literal as u64);
        let mut asleep = self.asleep.clone();
        asleep.sort_unstable();
        out.push(asleep.len() as u64);
        for (p, t) in asleep {
            out.push((p as u64) << 32 | t as u64);
        }
    }
}

/// The outcome and wake list of an observation, for hashing traces.
pub fn observed_canon(o: &Observed, out: &mut Vec<u64>) {
    observed_code(o.outcome, &o.woke, out);
}

impl Lin {
    /// Become a copy of `o`, reusing this value's allocations (explore copies a state per line).
    pub fn copy_from(&mut self, o: &Lin) {
        self.cands.clone_from(&o.cands);
        self.fast.clone_from(&o.fast);
        self.window.clone_from(&o.window);
        self.open = o.open;
        self.reports.clone_from(&o.reports);
        self.asleep.clone_from(&o.asleep);
        self.literal = o.literal;
        self.budget = o.budget;
    }
}
