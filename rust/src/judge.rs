//! Judgement at full speed: a compact copy of the user-visible contract (SPEC §4), fed each
//! step's observation. The Python oracle (`pyvmfuzz/oracle/contract.py`) is the slow, independent one.

use crate::machine::{MAX_PROCS, MAX_THREADS};
use crate::program::{is_text, text_word, Addr, Observed, Op, Outcome, Step, NPAGES, SHM};

#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Kind {
    StaleRead,
    Protection,
    Outcome,
    LostWakeup,
    TlbIncoherent,
    UseAfterFree,
    FileCorruption,
    Panic,
}

pub const KINDS: [Kind; 8] = [
    Kind::StaleRead,
    Kind::Protection,
    Kind::Outcome,
    Kind::LostWakeup,
    Kind::TlbIncoherent,
    Kind::UseAfterFree,
    Kind::FileCorruption,
    Kind::Panic,
];

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::StaleRead => "stale-read",
            Kind::Protection => "protection",
            Kind::Outcome => "outcome",
            Kind::LostWakeup => "lost-wakeup",
            Kind::TlbIncoherent => "tlb-incoherent",
            Kind::UseAfterFree => "use-after-free",
            Kind::FileCorruption => "file-corruption",
            Kind::Panic => "panic",
        }
    }
    pub fn from_name(s: &str) -> Option<Kind> {
        KINDS.iter().copied().find(|k| k.name() == s)
    }
    /// 1-based code used by the fuzzing entry point (0 is clean).
    pub fn code(self) -> u32 {
        KINDS.iter().position(|k| *k == self).unwrap() as u32 + 1
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub kind: Kind,
    pub step: u32,
    pub expected: String,
    pub observed: String,
}

/// What a sleeper waits on, as the contract sees it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Key {
    Private(u32, Addr),
    Shm(u8),
}

#[derive(Clone, Debug)]
struct CProc {
    alive: bool,
    mem: [[u32; 4]; NPAGES],
    writable: [bool; NPAGES],
    live_threads: usize,
    next_tid: u32,
}

#[derive(Clone, Debug)]
pub struct Judge {
    procs: Vec<CProc>,
    shm: [u32; 4],
    sleepers: Vec<((u32, u32), Key)>,
}

fn original(page: u8) -> [u32; 4] {
    if is_text(page) {
        let p = page - 4;
        [text_word(p, 0), text_word(p, 1), text_word(p, 2), text_word(p, 3)]
    } else {
        [0; 4]
    }
}

impl Default for Judge {
    fn default() -> Self {
        Judge::new()
    }
}

impl Judge {
    /// Back to the initial contract state, keeping allocations.
    pub fn reset(&mut self) {
        let fresh = Judge::new_p1();
        self.procs.clear();
        self.procs.push(fresh);
        self.shm = [0; 4];
        self.sleepers.clear();
    }

    fn new_p1() -> CProc {
        let mut mem = [[0u32; 4]; NPAGES];
        for pg in 0..NPAGES as u8 {
            mem[pg as usize] = original(pg);
        }
        CProc { alive: true, mem, writable: [true, true, true, true, false, false, true], live_threads: 1, next_tid: 2 }
    }

    pub fn new() -> Judge {
        let mut mem = [[0u32; 4]; NPAGES];
        for pg in 0..NPAGES as u8 {
            mem[pg as usize] = original(pg);
        }
        let p1 = CProc {
            alive: true,
            mem,
            writable: [true, true, true, true, false, false, true],
            live_threads: 1,
            next_tid: 2,
        };
        Judge { procs: vec![p1], shm: [0; 4], sleepers: Vec::new() }
    }

    fn p(&mut self, pid: u32) -> &mut CProc {
        &mut self.procs[pid as usize - 1]
    }

    fn read(&self, pid: u32, a: Addr) -> u32 {
        if a.page == SHM {
            self.shm[a.word as usize]
        } else {
            self.procs[pid as usize - 1].mem[a.page as usize][a.word as usize]
        }
    }

    fn write(&mut self, pid: u32, a: Addr, v: u32) {
        if a.page == SHM {
            self.shm[a.word as usize] = v;
        } else {
            self.p(pid).mem[a.page as usize][a.word as usize] = v;
        }
    }

    fn alive(&self, pid: u32) -> bool {
        pid >= 1 && (pid as usize) <= self.procs.len() && self.procs[pid as usize - 1].alive
    }

    fn kill(&mut self, pid: u32) {
        self.p(pid).alive = false;
        self.sleepers.retain(|((p, _), _)| *p != pid);
    }

    fn key(pid: u32, a: Addr) -> Key {
        if a.page == SHM {
            Key::Shm(a.word)
        } else {
            Key::Private(pid, a)
        }
    }

    /// Judge step number `n`, performed by `actor` (None for a switch), which showed `obs`.
    /// On agreement the contract state advances.
    pub fn check(&mut self, n: u32, step: &Step, actor: Option<(u32, u32)>, obs: &Observed) -> Option<Violation> {
        let viol = |kind, expected: Outcome| {
            Some(Violation { kind, step: n, expected: expected.to_string(), observed: obs.to_string() })
        };
        let got = obs.outcome;
        let mut wake_required: Vec<(u32, u32)> = Vec::new();
        match (step.op, actor) {
            (Op::Switch(_), _) => {
                if got != Outcome::Ok {
                    return viol(Kind::Outcome, Outcome::Ok);
                }
            }
            (_, None) => unreachable!("op without a running thread"),
            (op, Some((pid, tid))) => match op {
                Op::Switch(_) | Op::Resume | Op::Ipi => unreachable!(),
                Op::Load(a) => {
                    let v = Outcome::Value(self.read(pid, a));
                    if got != v {
                        let kind = match got {
                            Outcome::Value(_) => Kind::StaleRead,
                            Outcome::Segv => Kind::Protection,
                            _ => Kind::Outcome,
                        };
                        return viol(kind, v);
                    }
                }
                Op::Store(a, val) => {
                    let allowed = self.procs[pid as usize - 1].writable[a.page as usize];
                    let want = if allowed { Outcome::Ok } else { Outcome::Segv };
                    if got != want {
                        let kind = if matches!(got, Outcome::Ok | Outcome::Segv) { Kind::Protection } else { Kind::Outcome };
                        return viol(kind, want);
                    }
                    if allowed {
                        self.write(pid, a, val);
                    } else {
                        self.kill(pid);
                    }
                }
                Op::Fork => {
                    let live = self.procs.iter().filter(|p| p.alive).count();
                    let want = if live >= MAX_PROCS { Outcome::Eagain } else { Outcome::Pid(self.procs.len() as u32 + 1) };
                    if got != want {
                        return viol(Kind::Outcome, want);
                    }
                    if live < MAX_PROCS {
                        let parent = &self.procs[pid as usize - 1];
                        let child = CProc {
                            alive: true,
                            mem: parent.mem,
                            writable: parent.writable,
                            live_threads: 1,
                            next_tid: 2,
                        };
                        self.procs.push(child);
                    }
                }
                Op::Spawn => {
                    let p = self.p(pid);
                    let want = if p.live_threads >= MAX_THREADS { Outcome::Eagain } else { Outcome::Thread(pid, p.next_tid) };
                    if got != want {
                        return viol(Kind::Outcome, want);
                    }
                    if want != Outcome::Eagain {
                        p.live_threads += 1;
                        p.next_tid += 1;
                    }
                }
                Op::Exit => {
                    if got != Outcome::Ok {
                        return viol(Kind::Outcome, Outcome::Ok);
                    }
                    self.kill(pid);
                }
                Op::UmtxSleep(a, val) => {
                    let want = if !self.procs[pid as usize - 1].writable[a.page as usize] {
                        Outcome::Efault
                    } else if self.read(pid, a) != val {
                        Outcome::Ebusy
                    } else {
                        Outcome::Blocked
                    };
                    if got != want {
                        return viol(Kind::Outcome, want);
                    }
                    if want == Outcome::Blocked {
                        self.sleepers.push(((pid, tid), Self::key(pid, a)));
                    }
                }
                Op::UmtxWakeup(a) => {
                    if got != Outcome::Ok {
                        return viol(Kind::Outcome, Outcome::Ok);
                    }
                    let key = Self::key(pid, a);
                    wake_required = self.sleepers.iter().filter(|(_, k)| *k == key).map(|(t, _)| *t).collect();
                }
                Op::ProcfsRead(t, a) => {
                    let want = if self.alive(t) { Outcome::Value(self.read(t, a)) } else { Outcome::Esrch };
                    if got != want {
                        let kind = match (got, want) {
                            (Outcome::Value(_), Outcome::Value(_)) => Kind::StaleRead,
                            _ => Kind::Outcome,
                        };
                        return viol(kind, want);
                    }
                }
                Op::ProcfsWrite(t, a, val) => {
                    let want = if self.alive(t) { Outcome::Ok } else { Outcome::Esrch };
                    if got != want {
                        return viol(Kind::Outcome, want);
                    }
                    if want == Outcome::Ok {
                        self.write(t, a, val);
                    }
                }
                Op::Madvise(pg) => {
                    if got != Outcome::Ok {
                        return viol(Kind::Outcome, Outcome::Ok);
                    }
                    if pg != SHM {
                        self.p(pid).mem[pg as usize] = original(pg);
                    }
                }
                Op::Mprotect(pg, w) => {
                    if got != Outcome::Ok {
                        return viol(Kind::Outcome, Outcome::Ok);
                    }
                    self.p(pid).writable[pg as usize] = w;
                }
            },
        }
        // Wakes: each must name a blocked thread other than the actor; adopt them.
        for t in &obs.woke {
            let pos = self.sleepers.iter().position(|(s, _)| s == t);
            match pos {
                Some(i) if Some(*t) != actor => {
                    self.sleepers.swap_remove(i);
                }
                _ => {
                    return Some(Violation {
                        kind: Kind::Outcome,
                        step: n,
                        expected: format!("no wake of P{}.T{} (not blocked)", t.0, t.1),
                        observed: obs.to_string(),
                    })
                }
            }
        }
        let lost: Vec<(u32, u32)> = wake_required.iter().copied().filter(|t| !obs.woke.contains(t)).collect();
        if !lost.is_empty() {
            let mut all: Vec<(u32, u32)> = obs.woke.iter().chain(lost.iter()).copied().collect();
            all.sort_unstable();
            let expected = Observed { outcome: obs.outcome, woke: all };
            return Some(Violation { kind: Kind::LostWakeup, step: n, expected: expected.to_string(), observed: obs.to_string() });
        }
        None
    }
}
