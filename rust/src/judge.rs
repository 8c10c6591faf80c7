//! Judgement at full speed: a compact copy of the user-visible contract (SPEC §4), fed each
//! step's observation. The Python oracle (`pyvmfuzz/oracle/contract.py`) is the slow, independent one.

use crate::machine::{MAX_PROCS, MAX_THREADS};
use crate::program::{is_text, text_word, Addr, Observed, Op, Outcome, Step, NPAGES, SHM};

/// Canonical judge state for `explore` (its own file; a child module to see private state).
#[path = "judge_canon.rs"]
pub mod canon;

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
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash, PartialOrd, Ord)]
enum Key {
    Private(u32, Addr),
    Shm(u8),
}

/// A thread blocked in the contract: who, on what, and the interval of the sleep that blocked
/// it (SPEC §4.1: the wake a wakeup owes it may be named on any line from `since` to that
/// wakeup's completion). A sleeper settled outside the current window has `since = end = 0`:
/// every report still to come is later than its sleep.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash, PartialOrd, Ord)]
struct Sleeper {
    t: (u32, u32),
    key: Key,
    since: u32,
    end: u32,
}

#[derive(Clone, Debug, Hash)]
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
    sleepers: Vec<Sleeper>,
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
        self.sleepers.retain(|x| x.t.0 != pid);
    }

    fn key(pid: u32, a: Addr) -> Key {
        if a.page == SHM {
            Key::Shm(a.word)
        } else {
            Key::Private(pid, a)
        }
    }

    /// The outcome the contract gives `step` by `actor` in this state.
    fn expected(&self, step: &Step, actor: Option<(u32, u32)>) -> Outcome {
        let Some((pid, _)) = actor else { return Outcome::Ok };
        let p = &self.procs[pid as usize - 1];
        match step.op {
            Op::Load(a) => Outcome::Value(self.read(pid, a)),
            Op::Store(a, _) => {
                if p.writable[a.page as usize] {
                    Outcome::Ok
                } else {
                    Outcome::Segv
                }
            }
            Op::Fork => {
                if self.procs.iter().filter(|p| p.alive).count() >= MAX_PROCS {
                    Outcome::Eagain
                } else {
                    Outcome::Pid(self.procs.len() as u32 + 1)
                }
            }
            Op::Spawn => {
                if p.live_threads >= MAX_THREADS {
                    Outcome::Eagain
                } else {
                    Outcome::Thread(pid, p.next_tid)
                }
            }
            Op::UmtxSleep(a, val) => {
                if !p.writable[a.page as usize] {
                    Outcome::Efault
                } else if self.read(pid, a) != val {
                    Outcome::Ebusy
                } else {
                    Outcome::Blocked
                }
            }
            Op::ProcfsRead(t, a) => {
                if self.alive(t) {
                    Outcome::Value(self.read(t, a))
                } else {
                    Outcome::Esrch
                }
            }
            Op::ProcfsWrite(t, _, _) => {
                if self.alive(t) {
                    Outcome::Ok
                } else {
                    Outcome::Esrch
                }
            }
            _ => Outcome::Ok,
        }
    }

    /// A hash of the contract state (sleepers in canonical order), for memoisation.
    pub fn state_hash(&self) -> u64 {
        use std::hash::{BuildHasher, Hash, Hasher};
        // foldhash's quality hasher with its fixed seed: the same value in every process, and a
        // tenth of SipHash's cost on these many small writes (it was an eighth of the
        // interleaved fuzzing path).
        let mut h = foldhash::quality::FixedState::default().build_hasher();
        self.procs.hash(&mut h);
        self.shm.hash(&mut h);
        // The sleepers as a set, without sorting a copy: a wrapping sum of their own hashes.
        let st = foldhash::quality::FixedState::default();
        let set = self.sleepers.iter().fold(0u64, |acc, x| acc.wrapping_add(st.hash_one(x)));
        (self.sleepers.len(), set).hash(&mut h);
        h.finish()
    }

    /// The contract's effect of `step` by `actor` with the contract's own outcome `want` (from
    /// `expected`). A sleep that blocks records the sleep's interval; a wakeup takes every thread
    /// then blocked on its word out of the sleepers and returns them (SPEC §4.1: each is owed a
    /// wake by this wakeup).
    fn effect(&mut self, step: &Step, actor: Option<(u32, u32)>, want: Outcome, since: u32, end: u32) -> Vec<Sleeper> {
        let Some((pid, tid)) = actor else { return Vec::new() };
        match step.op {
            Op::Store(a, val) => {
                if want == Outcome::Ok {
                    self.write(pid, a, val);
                } else {
                    self.kill(pid);
                }
            }
            Op::Fork => {
                if let Outcome::Pid(_) = want {
                    let parent = &self.procs[pid as usize - 1];
                    let child = CProc { alive: true, mem: parent.mem, writable: parent.writable, live_threads: 1, next_tid: 2 };
                    self.procs.push(child);
                }
            }
            Op::Spawn => {
                if let Outcome::Thread(..) = want {
                    let p = self.p(pid);
                    p.live_threads += 1;
                    p.next_tid += 1;
                }
            }
            Op::Exit => self.kill(pid),
            Op::UmtxSleep(a, _) => {
                if want == Outcome::Blocked {
                    self.sleepers.push(Sleeper { t: (pid, tid), key: Self::key(pid, a), since, end });
                }
            }
            Op::UmtxWakeup(a) => {
                let key = Self::key(pid, a);
                if self.sleepers.iter().any(|x| x.key == key) {
                    let mut woken = Vec::new();
                    self.sleepers.retain(|x| {
                        if x.key == key {
                            woken.push(*x);
                            false
                        } else {
                            true
                        }
                    });
                    return woken;
                }
            }
            Op::ProcfsWrite(t, a, val) => {
                if want == Outcome::Ok {
                    self.write(t, a, val);
                }
            }
            Op::Madvise(pg) => {
                if pg != SHM {
                    self.p(pid).mem[pg as usize] = original(pg);
                }
            }
            Op::Mprotect(pg, w) => self.p(pid).writable[pg as usize] = w,
            _ => {}
        }
        Vec::new()
    }

    /// The contract's outcome of `step` by `actor` (a switch or an ipi: `ok`).
    fn want(&self, step: &Step, actor: Option<(u32, u32)>) -> Outcome {
        match step.op {
            Op::Switch(_) | Op::Ipi => Outcome::Ok,
            _ => self.expected(step, actor),
        }
    }

    /// Judge step number `n`, performed by `actor` (None for a switch), which showed `obs`:
    /// the sequential judgement of SPEC §4 (outcome kinds, then the wake list, then
    /// lost-wakeup). On agreement the contract state advances.
    #[inline]
    pub fn check(&mut self, n: u32, step: &Step, actor: Option<(u32, u32)>, obs: &Observed) -> Option<Violation> {
        self.check_mode(n, step, actor, obs, false)
    }

    /// `literal`: SPEC §4.1's kind (after a program's first §3.2 line, readings R4) — the most
    /// specific of everything that goes wrong at the step, so an owed wake left unnamed outranks
    /// an `outcome` mismatch; else the sequential order (outcome kinds, the wake list, then
    /// lost-wakeup).
    pub fn check_mode(&mut self, n: u32, step: &Step, actor: Option<(u32, u32)>, obs: &Observed, literal: bool) -> Option<Violation> {
        let want = self.want(step, actor);
        let mut value = None;
        if obs.outcome != want {
            let kind = value_kind(step.op, obs.outcome, want);
            let v = Violation { kind, step: n, expected: want.to_string(), observed: obs.to_string() };
            if !literal || rank(kind) == 0 {
                return Some(v);
            }
            value = Some(v);
        }
        let lost = self.check_wakes(n, step, actor, obs, want, literal);
        match (value, lost) {
            (Some(v), Some(l)) if rank(l.kind) < rank(v.kind) => Some(l),
            (Some(v), _) => Some(v),
            (None, l) => l,
        }
    }

    /// The step's effect and its wake list: a name of a thread not blocked before it (or the
    /// actor, or named twice) is `outcome`; a wake it owes and did not name, `lost-wakeup`.
    fn check_wakes(&mut self, n: u32, step: &Step, actor: Option<(u32, u32)>, obs: &Observed, want: Outcome, literal: bool) -> Option<Violation> {
        let mut owed = self.effect(step, actor, want, 0, 0);
        // Each named thread must be one blocked before the line (not the actor), named once;
        // it runs from here on.
        let mut bad = None;
        for t in &obs.woke {
            if let Some(i) = owed.iter().position(|x| x.t == *t) {
                owed.swap_remove(i);
                continue;
            }
            match self.sleepers.iter().position(|x| x.t == *t) {
                Some(i) if Some(*t) != actor => {
                    self.sleepers.swap_remove(i);
                }
                _ => {
                    bad = Some(Violation {
                        kind: Kind::Outcome,
                        step: n,
                        expected: format!("no wake of P{}.T{} (not blocked)", t.0, t.1),
                        observed: obs.to_string(),
                    });
                    if !literal {
                        return bad;
                    }
                }
            }
        }
        if !owed.is_empty() {
            let mut all: Vec<(u32, u32)> = obs.woke.iter().copied().chain(owed.iter().map(|x| x.t)).collect();
            all.sort_unstable();
            let expected = Observed { outcome: obs.outcome, woke: all };
            return Some(Violation { kind: Kind::LostWakeup, step: n, expected: expected.to_string(), observed: obs.to_string() });
        }
        bad
    }
}

/// The kind of a return value that differs from the contract's (SPEC §4).
fn value_kind(op: Op, got: Outcome, want: Outcome) -> Kind {
    match op {
        Op::Load(_) => match got {
            Outcome::Value(_) => Kind::StaleRead,
            Outcome::Segv => Kind::Protection,
            _ => Kind::Outcome,
        },
        Op::Store(..) if matches!(got, Outcome::Ok | Outcome::Segv) => Kind::Protection,
        Op::ProcfsRead(..) if matches!((got, want), (Outcome::Value(_), Outcome::Value(_))) => Kind::StaleRead,
        _ => Kind::Outcome,
    }
}

// ---- linearizability (SPEC §4.1) --------------------------------------------------------
//
// The rule as pinned in docs/readings.md (R1-R4): wake reports are checked in real time, with
// no order (R1); an order replays the operations through the contract, and the first wakeup
// after a sleep owes the sleeper a wake named on some line between the sleep's start and that
// wakeup's completion (R2); the violating line is the first with no valid order (R3); its kind
// is the most specific over the orders valid before it, each classified as a sequential step
// (R4).

/// What one line of an interleaved program contributes to the history.
#[derive(Clone, Debug)]
pub enum Event {
    /// An op that started and completed on this line.
    Plain { step: Step, actor: Option<(u32, u32)>, obs: Observed },
    /// An op started on `cpu` and left in flight (outcome `paused`).
    Start { cpu: u8, step: Step, actor: Option<(u32, u32)>, woke: Vec<(u32, u32)> },
    /// The op in flight on `cpu` went on and paused again.
    Cont { cpu: u8, woke: Vec<(u32, u32)> },
    /// The op in flight on `cpu` completed with `obs`.
    End { cpu: u8, obs: Observed },
}

#[derive(Clone, Debug)]
struct HOp {
    step: Step,
    actor: Option<(u32, u32)>,
    start: u32,
    /// Line where it completed (None: pending) and its outcome.
    end: Option<u32>,
    outcome: Outcome,
}

/// Node budget of one search (a program of at most 64 lines stays far below it).
const SEARCH_BUDGET: u64 = 2_000_000;

/// How a search treats failures: `Valid` prunes every one; `Classify(l)` lets the value of the
/// op completing at `l` and every obligation not due before `l` fail, recording them (R4).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Valid,
    Classify(u32),
}

/// What went wrong along one order in `Mode::Classify`: the value at L, and an owed wake.
#[derive(Clone, Default)]
struct Soft {
    value: Option<Violation>,
    lost: Option<Violation>,
}

/// The linearizability judge: the sequential contract (`Judge`) while no operation is in
/// flight — exactly the old judgement —, a history window searched for a valid order while
/// some are. Fast path: the completion order; the search (memoised on (set placed, state
/// hash)) only when that fails. A window closes when nothing is pending: its distinct end
/// states over all valid orders become the candidate states the next lines are judged from.
#[derive(Clone, Debug, Default)]
pub struct Lin {
    /// Candidate contract states (one, except after an ambiguous window).
    cands: Vec<Judge>,
    window: Vec<HOp>,
    /// Index in `window` of the op in flight on each CPU.
    open: [Option<usize>; 8],
    /// The fast path, kept as the window grows: each candidate state with the window's
    /// completed ops placed in completion order (those orders still valid). Completions come
    /// in line order, so a completing op is placed last: one `place` per line, not a replay
    /// of the window.
    fast: Vec<Judge>,
    /// Every wake named since the window opened: (line, thread).
    reports: Vec<(u32, (u32, u32))>,
    /// R1's real-time sleep queue while the window is open: threads that may be named.
    asleep: Vec<(u32, u32)>,
    /// A §3.2 line has been seen: from here on a step's kind is SPEC §4.1's most specific
    /// failure (readings R4); before it, the sequential judgement's order.
    literal: bool,
    budget: u64,
}

impl Lin {
    pub fn new() -> Lin {
        Lin { cands: vec![Judge::new()], window: Vec::new(), open: [None; 8], fast: Vec::new(), reports: Vec::new(), asleep: Vec::new(), literal: false, budget: 0 }
    }

    pub fn reset(&mut self) {
        self.cands.truncate(1);
        if self.cands.is_empty() {
            self.cands.push(Judge::new());
        }
        self.cands[0].reset();
        self.window.clear();
        self.open = [None; 8];
        self.fast.clear();
        self.reports.clear();
        self.asleep.clear();
        self.literal = false;
    }

    /// Ops in the current window: (step, start line, end line or None) — for explanations.
    pub fn in_window(&self) -> Vec<(Step, u32, Option<u32>)> {
        self.window.iter().map(|h| (h.step, h.start, h.end)).collect()
    }

    /// No history: the next plain line is judged sequentially (`check_plain`).
    #[inline]
    pub fn sequential(&self) -> bool {
        self.window.is_empty() && self.cands.len() == 1
    }

    /// A plain line while `sequential()`.
    #[inline]
    pub fn check_plain(&mut self, n: u32, step: &Step, actor: Option<(u32, u32)>, obs: &Observed) -> Option<Violation> {
        // Most plain lines are switches: one that reports `ok` and wakes no one agrees with
        // the contract and changes no contract state (as `Judge::check` decides, without
        // the call).
        if matches!(step.op, Op::Switch(_)) && obs.outcome == Outcome::Ok && obs.woke.is_empty() {
            return None;
        }
        // A line with `until` that completed, or an `ipi`, is a §3.2 line too.
        self.literal |= step.until.is_some() || matches!(step.op, Op::Ipi);
        self.cands[0].check_mode(n, step, actor, obs, self.literal)
    }

    /// Judge line `n`.
    pub fn line(&mut self, n: u32, ev: Event) -> Option<Violation> {
        match &ev {
            Event::Plain { step, .. } => self.literal |= step.until.is_some() || matches!(step.op, Op::Ipi),
            _ => self.literal = true,
        }
        if self.window.is_empty() {
            if let Event::Plain { step, actor, obs } = &ev {
                if self.cands.len() == 1 {
                    return self.cands[0].check_mode(n, step, *actor, obs, self.literal);
                }
                // Several candidate states: keep those that accept the line.
                return self.plain_on_cands(n, step, *actor, obs);
            }
            // The window opens: R1's sleep queue is the contract's (every candidate's
            // sleepers are the threads asleep in real time, R1).
            self.asleep = self.cands[0].sleepers.iter().map(|x| x.t).collect();
            self.reports.clear();
            self.fast.clone_from(&self.cands);
        }
        if self.window.len() >= 32 {
            self.compact(n);
        }
        if self.window.len() >= 63 {
            // Beyond the search's reach (a u64 of placed ops): judged no further.
            return None;
        }
        let last = self.window.len();
        // (wakes named, index of the op the line starts, of the op it completes)
        let (woke, starts, completes) = match ev {
            Event::Plain { step, actor, obs } => {
                self.window.push(HOp { step, actor, start: n, end: Some(n), outcome: obs.outcome });
                (obs.woke, Some(last), Some(last))
            }
            Event::Start { cpu, step, actor, woke } => {
                self.open[cpu as usize] = Some(last);
                self.window.push(HOp { step, actor, start: n, end: None, outcome: Outcome::Paused });
                (woke, Some(last), None)
            }
            Event::Cont { woke, .. } => (woke, None, None),
            Event::End { cpu, obs } => {
                let i = self.open[cpu as usize].take().expect("completion of an op the judge did not see start");
                let h = &mut self.window[i];
                h.end = Some(n);
                h.outcome = obs.outcome;
                (obs.woke, None, Some(i))
            }
        };
        let r1 = self.report(n, &woke, starts, completes);
        if let Some(i) = completes {
            let mut fast = std::mem::take(&mut self.fast);
            fast.retain_mut(|s| self.place(s, i, Mode::Valid).is_ok());
            self.fast = fast;
        }
        self.judge_window(n, r1)
    }

    /// R1 at line `n`: record the wakes it names and check them against the real-time sleep
    /// queue, after the line's death and before its own sleep. Returns the violation a bad
    /// name gives (kind `outcome`), if any.
    fn report(&mut self, n: u32, woke: &[(u32, u32)], starts: Option<usize>, completes: Option<usize>) -> Option<Violation> {
        if let Some(h) = completes.map(|i| &self.window[i]) {
            if let Some((pid, _)) = h.actor {
                let dies = matches!(h.step.op, Op::Exit)
                    || (matches!(h.step.op, Op::Load(_) | Op::Store(..)) && h.outcome == Outcome::Segv);
                if dies {
                    self.asleep.retain(|t| t.0 != pid);
                }
            }
        }
        let mut bad = None;
        for t in woke {
            self.reports.push((n, *t));
            match self.asleep.iter().position(|a| a == t) {
                Some(i) => {
                    self.asleep.swap_remove(i);
                }
                None => {
                    bad.get_or_insert(Violation {
                        kind: Kind::Outcome,
                        step: n,
                        expected: format!("no wake of P{}.T{} (not asleep)", t.0, t.1),
                        observed: String::new(),
                    });
                }
            }
        }
        // The line's own sleep: asleep from the line after its start, until it returns other
        // than `blocked`.
        let sleeper = |i: Option<usize>| {
            i.map(|i| &self.window[i]).and_then(|h| match (h.step.op, h.actor) {
                (Op::UmtxSleep(..), Some(t)) => Some((t, h.outcome)),
                _ => None,
            })
        };
        if let Some((t, out)) = sleeper(starts) {
            if matches!(out, Outcome::Blocked | Outcome::Paused) {
                self.asleep.push(t);
            }
        }
        if let Some((t, out)) = sleeper(completes) {
            if out != Outcome::Blocked {
                self.asleep.retain(|a| *a != t);
            }
        }
        if let Some(v) = &mut bad {
            v.observed = Observed { outcome: completes.map_or(Outcome::Paused, |i| self.window[i].outcome), woke: woke.to_vec() }.to_string();
        }
        bad
    }

    /// Whether `t` is named on some line in `[from, to]`.
    fn named(&self, t: (u32, u32), from: u32, to: u32) -> bool {
        self.reports.iter().any(|&(l, u)| u == t && from <= l && l <= to)
    }

    /// Ops that started before the first pending op started and all ended before it: they
    /// precede every later op, so they are settled into the candidate states.
    fn compact(&mut self, n: u32) {
        let Some(smin) = self.window.iter().filter(|h| h.end.is_none()).map(|h| h.start).min() else { return };
        let pre: Vec<usize> = (0..self.window.len()).filter(|&i| self.window[i].start < smin).collect();
        if pre.is_empty() || pre.iter().any(|&i| self.window[i].end.is_none_or(|e| e >= smin)) {
            return;
        }
        let rest = self.window.split_off(pre.len());
        let open_shift = pre.len();
        let ends = self.all_ends(n);
        if ends.is_empty() {
            // Cannot happen: every line up to now had a valid order. Keep the window.
            self.window.extend(rest);
            return;
        }
        self.cands = ends;
        self.window = rest;
        for o in self.open.iter_mut().flatten() {
            *o -= open_shift;
        }
        // The fast path from the new candidates over what is left of the window.
        let order = self.completion_order();
        let mut fast = self.cands.clone();
        fast.retain_mut(|s| order.iter().all(|&i| self.place(s, i, Mode::Valid).is_ok()));
        self.fast = fast;
    }

    /// The window's completed ops in completion order.
    fn completion_order(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.window.len()).filter(|&i| self.window[i].end.is_some()).collect();
        order.sort_by_key(|&i| (self.window[i].end, self.window[i].start));
        order
    }

    fn plain_on_cands(&mut self, n: u32, step: &Step, actor: Option<(u32, u32)>, obs: &Observed) -> Option<Violation> {
        let mut best: Option<Violation> = None;
        let mut keep = Vec::with_capacity(self.cands.len());
        for mut c in std::mem::take(&mut self.cands) {
            match c.check_mode(n, step, actor, obs, self.literal) {
                None => keep.push(c),
                Some(v) => {
                    if best.as_ref().is_none_or(|b| rank(v.kind) < rank(b.kind)) {
                        best = Some(v);
                    }
                }
            }
        }
        if keep.is_empty() {
            return best;
        }
        dedup(&mut keep);
        self.cands = keep;
        None
    }

    /// The distinct end states of every valid order of the whole window, from every candidate.
    fn all_ends(&mut self, n: u32) -> Vec<Judge> {
        let mut ends = Vec::new();
        let mut seen = foldhash::HashSet::default();
        self.budget = 0;
        for c in self.cands.clone() {
            let mut memo = foldhash::HashSet::default();
            self.collect_ends(c, 0, n, &mut memo, &mut ends, &mut seen);
        }
        ends
    }

    fn judge_window(&mut self, n: u32, r1: Option<Violation>) -> Option<Violation> {
        let pending = self.open.iter().any(|o| o.is_some());
        // Fast path: the completion order from some candidate state (kept by `line`).
        let fast_ok = !self.fast.is_empty();
        // A bad wake list is a violation whatever the order; its kind is still the most
        // specific over the orders (R4).
        if r1.is_some() || !(fast_ok || self.search_exists()) {
            return Some(self.violation_at(n, r1));
        }
        if !pending {
            // Close the window: every distinct end state of a valid order, its sleepers
            // settled (a sleeper named since its sleep began is runnable, R1/R2).
            let mut ends = self.all_ends(n);
            if ends.is_empty() {
                // Search budget spent: settle on the completion order.
                let mut st = self.cands[0].clone();
                for &i in &self.completion_order() {
                    let _ = self.place(&mut st, i, Mode::Valid);
                }
                ends = vec![st];
            }
            for e in &mut ends {
                let reports = &self.reports;
                e.sleepers.retain(|x| !reports.iter().any(|&(l, u)| u == x.t && l >= x.since));
                for x in &mut e.sleepers {
                    x.since = 0;
                    x.end = 0;
                }
            }
            dedup(&mut ends);
            self.cands = ends;
            self.window.clear();
            self.fast.clear();
            self.reports.clear();
            self.asleep.clear();
        }
        None
    }

    /// Place window op `i` next in an order from state `s`: the contract's effect, the
    /// observed value checked for a completed op and the wakes owed by a completed wakeup.
    /// `Err` prunes the order; `Ok` carries what `mode` lets fail (R4).
    fn place(&self, s: &mut Judge, i: usize, mode: Mode) -> Result<Soft, ()> {
        let h = &self.window[i];
        let mut soft = Soft::default();
        if let Some(t) = h.actor {
            // A thread performing an op runs: it was woken (named) before it started.
            s.sleepers.retain(|x| x.t != t);
        }
        let want = s.want(&h.step, h.actor);
        if let Some(e) = h.end {
            if h.outcome != want {
                if mode != Mode::Classify(e) {
                    return Err(());
                }
                let kind = value_kind(h.step.op, h.outcome, want);
                soft.value = Some(Violation { kind, step: e, expected: want.to_string(), observed: h.outcome.to_string() });
            }
        }
        let owed = s.effect(&h.step, h.actor, want, h.start, h.end.unwrap_or(u32::MAX));
        if let Some(e) = h.end {
            for x in &owed {
                if self.named(x.t, x.since, e) {
                    continue;
                }
                match mode {
                    Mode::Classify(l) if !(e < l && x.end < l) => {
                        soft.lost.get_or_insert(Violation {
                            kind: Kind::LostWakeup,
                            step: l,
                            expected: format!("a wake of P{}.T{} by line {e}", x.t.0, x.t.1),
                            observed: String::new(),
                        });
                    }
                    _ => return Err(()),
                }
            }
        }
        Ok(soft)
    }

    /// Whether op `i` may come next after the ops in `placed` (real time: every completed op
    /// that ended before it started is placed).
    fn eligible(&self, placed: u64, i: usize) -> bool {
        let st = self.window[i].start;
        self.window.iter().enumerate().all(|(j, h)| j == i || placed & (1 << j) != 0 || h.end.is_none_or(|e| e >= st))
    }

    fn required(&self) -> u64 {
        self.window.iter().enumerate().filter(|(_, h)| h.end.is_some()).fold(0, |m, (i, _)| m | 1 << i)
    }

    fn search_exists(&mut self) -> bool {
        self.budget = 0;
        let req = self.required();
        for c in self.cands.clone() {
            let mut memo = foldhash::HashSet::default();
            if self.dfs(c, 0, req, &mut memo) {
                return true;
            }
        }
        self.budget > SEARCH_BUDGET
    }

    /// Depth-first search for a valid order placing every op of `req` (pending ops optional).
    /// `memo` holds the (placed set, state) pairs known to lead nowhere.
    fn dfs(&mut self, s: Judge, placed: u64, req: u64, memo: &mut foldhash::HashSet<(u64, u64)>) -> bool {
        if placed & req == req {
            return true;
        }
        self.budget += 1;
        if self.budget > SEARCH_BUDGET || !memo.insert((placed, s.state_hash())) {
            return false;
        }
        for i in 0..self.window.len() {
            if placed & (1 << i) != 0 || !self.eligible(placed, i) {
                continue;
            }
            let mut s2 = s.clone();
            if self.place(&mut s2, i, Mode::Valid).is_ok() && self.dfs(s2, placed | 1 << i, req, memo) {
                return true;
            }
        }
        false
    }

    fn collect_ends(
        &mut self,
        s: Judge,
        placed: u64,
        n: u32,
        memo: &mut foldhash::HashSet<(u64, u64)>,
        ends: &mut Vec<Judge>,
        seen: &mut foldhash::HashSet<u64>,
    ) {
        let all = (1u64 << self.window.len()) - 1;
        let h = s.state_hash();
        if placed == all {
            if seen.insert(h) {
                ends.push(s);
            }
            return;
        }
        self.budget += 1;
        if self.budget > SEARCH_BUDGET || !memo.insert((placed, h)) {
            return;
        }
        for i in 0..self.window.len() {
            if placed & (1 << i) != 0 || !self.eligible(placed, i) {
                continue;
            }
            let mut s2 = s.clone();
            if self.place(&mut s2, i, Mode::Valid).is_ok() {
                self.collect_ends(s2, placed | 1 << i, n, memo, ends, seen);
            }
        }
    }

    /// The violation at line `n` (no valid order), R4: the most specific class over the
    /// orders valid for everything due before `n`, each order classified as a sequential step
    /// (the value at `n`, then a bad wake list `r1`, then a lost wake).
    fn violation_at(&mut self, n: u32, r1: Option<Violation>) -> Violation {
        let req = self.required();
        self.budget = 0;
        let mut best: Option<Violation> = None;
        for c in self.cands.clone() {
            let mut memo = foldhash::HashMap::default();
            if let Some(Some(v)) = self.classify(c, 0, req, n, &Soft::default(), &r1, &mut memo) {
                if best.as_ref().is_none_or(|b| rank(v.kind) < rank(b.kind)) {
                    best = Some(v);
                }
            }
        }
        let mut v = best.or(r1).unwrap_or_else(|| Violation {
            kind: Kind::Outcome,
            step: n,
            expected: "a linearizable outcome".into(),
            observed: String::new(),
        });
        v.step = n;
        if v.observed.is_empty() {
            v.observed = self.observed_at(n);
        }
        v
    }

    /// The most specific class of the orders completing `placed` from `s`, with `path` what
    /// already went wrong on the way. `None`: no valid completion; `Some(None)`: a completion
    /// where nothing went wrong.
    #[allow(clippy::too_many_arguments)]
    fn classify(
        &mut self,
        s: Judge,
        placed: u64,
        req: u64,
        n: u32,
        path: &Soft,
        r1: &Option<Violation>,
        memo: &mut foldhash::HashMap<(u64, u64, u8, bool), Option<Option<Violation>>>,
    ) -> Option<Option<Violation>> {
        if placed & req == req {
            // every failure of the order by L; the most specific of them (R4)
            let mut all = [path.value.clone(), path.lost.clone(), r1.clone()].into_iter().flatten();
            let first = all.next();
            return Some(all.fold(first, |b, v| if b.as_ref().is_none_or(|b| rank(v.kind) < rank(b.kind)) { Some(v) } else { b }));
        }
        self.budget += 1;
        let key = (placed, s.state_hash(), path.value.as_ref().map_or(0, |v| v.kind.code() as u8), path.lost.is_some());
        if let Some(r) = memo.get(&key) {
            return r.clone();
        }
        if self.budget > SEARCH_BUDGET {
            return None;
        }
        let mut best: Option<Option<Violation>> = None;
        for i in 0..self.window.len() {
            if placed & (1 << i) != 0 || !self.eligible(placed, i) {
                continue;
            }
            let mut s2 = s.clone();
            let Ok(soft) = self.place(&mut s2, i, Mode::Classify(n)) else { continue };
            let p2 = Soft { value: path.value.clone().or(soft.value), lost: path.lost.clone().or(soft.lost) };
            let Some(r) = self.classify(s2, placed | 1 << i, req, n, &p2, r1, memo) else { continue };
            let better = match (&best, &r) {
                (None, _) => true,
                (Some(None), Some(_)) => true,
                (Some(Some(b)), Some(v)) => rank(v.kind) < rank(b.kind),
                _ => false,
            };
            if better {
                best = Some(r);
            }
        }
        memo.insert(key, best.clone());
        best
    }

    /// The observation of line `n` as printed (outcome and the wakes it named).
    fn observed_at(&self, n: u32) -> String {
        let outcome = self.window.iter().find(|h| h.end == Some(n)).map_or(Outcome::Paused, |h| h.outcome);
        let woke: Vec<(u32, u32)> = self.reports.iter().filter(|(l, _)| *l == n).map(|(_, t)| *t).collect();
        Observed { outcome, woke }.to_string()
    }
}

/// Candidate states without repeats (by state hash).
fn dedup(v: &mut Vec<Judge>) {
    let mut seen = foldhash::HashSet::default();
    v.retain(|j| seen.insert(j.state_hash()));
}

/// Specificity of a kind for §4.1 (lower is more specific).
fn rank(k: Kind) -> u8 {
    match k {
        Kind::StaleRead | Kind::Protection => 0,
        Kind::LostWakeup => 1,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    //! SPEC §4.1's rule on hand-built histories (readings R1-R4), the verdicts derived by hand
    //! from the rule before these ran: the judge alone, no kernel.
    use super::*;
    use crate::program::parse;

    const T1: (u32, u32) = (1, 1);
    const T2: (u32, u32) = (1, 2);
    const T3: (u32, u32) = (1, 3);

    fn step(line: &str) -> Step {
        parse(line).expect("a valid line").steps[0]
    }
    fn obs(outcome: Outcome, woke: &[(u32, u32)]) -> Observed {
        Observed { outcome, woke: woke.to_vec() }
    }
    fn plain(line: &str, actor: (u32, u32), outcome: Outcome, woke: &[(u32, u32)]) -> Event {
        Event::Plain { step: step(line), actor: Some(actor), obs: obs(outcome, woke) }
    }
    fn start(line: &str, actor: (u32, u32)) -> Event {
        let s = step(line);
        Event::Start { cpu: s.cpu, step: s, actor: Some(actor), woke: Vec::new() }
    }
    fn end(cpu: u8, outcome: Outcome, woke: &[(u32, u32)]) -> Event {
        Event::End { cpu, obs: obs(outcome, woke) }
    }
    /// The first violation over the lines: (kind, line).
    fn judge(events: Vec<Event>) -> Option<(Kind, u32)> {
        let mut lin = Lin::new();
        for (i, ev) in events.into_iter().enumerate() {
            if let Some(v) = lin.line(i as u32 + 1, ev) {
                return Some((v.kind, v.step));
            }
        }
        None
    }

    #[test]
    fn spec_worked_example_is_a_lost_wakeup_at_the_sleeps_completion() {
        // sleep first: blocked is right and the wakeup owes a wake never named; sleep later:
        // EBUSY was due. The most specific: lost-wakeup, at line 4.
        let h = vec![
            start("cpu1 umtx_sleep data0.0 0x0 until sleep", T2),
            plain("cpu0 store data0.0 0x1", T1, Outcome::Ok, &[]),
            plain("cpu0 umtx_wakeup data0.0", T1, Outcome::Ok, &[]),
            end(1, Outcome::Blocked, &[]),
        ];
        assert_eq!(judge(h), Some((Kind::LostWakeup, 4)));
    }

    #[test]
    fn the_same_sleep_returning_ebusy_is_linearizable() {
        let h = vec![
            start("cpu1 umtx_sleep data0.0 0x0 until sleep", T2),
            plain("cpu0 store data0.0 0x1", T1, Outcome::Ok, &[]),
            plain("cpu0 umtx_wakeup data0.0", T1, Outcome::Ok, &[]),
            end(1, Outcome::Ebusy, &[]),
        ];
        assert_eq!(judge(h), None);
    }

    #[test]
    fn an_owed_wake_may_be_named_on_another_line_inside_the_window() {
        // T2 asleep (1); T1's wakeup [2, 4] owes it; a third thread's line (3) names it.
        let h = vec![
            plain("cpu1 umtx_sleep data0.0 0x0", T2, Outcome::Blocked, &[]),
            start("cpu0 umtx_wakeup data0.0 until access", T1),
            plain("cpu2 load data1.0", T3, Outcome::Value(0), &[T2]),
            end(0, Outcome::Ok, &[]),
        ];
        assert_eq!(judge(h), None);
    }

    #[test]
    fn an_owed_wake_not_named_by_the_wakeups_completion_is_lost_there() {
        let h = vec![
            plain("cpu1 umtx_sleep data0.0 0x0", T2, Outcome::Blocked, &[]),
            start("cpu0 umtx_wakeup data0.0 until access", T1),
            end(0, Outcome::Ok, &[]),
            plain("cpu2 load data1.0", T3, Outcome::Value(0), &[T2]),
        ];
        assert_eq!(judge(h), Some((Kind::LostWakeup, 3)));
    }

    #[test]
    fn a_pending_wakeup_may_be_the_one_that_owes_until_it_completes() {
        // (../shared judge case 2's shape) W1 [2, 5] and W2 [3, 4] overlap after T2's sleep:
        // at 4 the pending W1 may have woken T2 (owing, not yet due); at 5 whichever came
        // first owes a wake never named.
        let h = vec![
            plain("cpu2 umtx_sleep data0.0 0x0", T2, Outcome::Blocked, &[]),
            start("cpu0 umtx_wakeup data0.0 until access", T1),
            start("cpu1 umtx_wakeup data0.0 until access", T3),
            end(1, Outcome::Ok, &[]),
            end(0, Outcome::Ok, &[]),
        ];
        assert_eq!(judge(h), Some((Kind::LostWakeup, 5)));
    }

    #[test]
    fn a_wakeup_overlapping_a_sleep_may_take_effect_first() {
        // (judge case 1's shape) the sleep [1, 3] and the wakeup [2, 4]: the wakeup first
        // owes nothing.
        let h = vec![
            start("cpu1 umtx_sleep data0.0 0x0 until sleep", T2),
            start("cpu0 umtx_wakeup data0.0 until access", T1),
            end(1, Outcome::Blocked, &[]),
            end(0, Outcome::Ok, &[]),
        ];
        assert_eq!(judge(h), None);
    }

    #[test]
    fn naming_a_thread_whose_sleep_returned_ebusy_is_an_outcome_violation() {
        // R1: T2's sleep [1, 3] returned EBUSY at 3; line 4 names it, while the wakeup [2, 5]
        // is still in flight (so the window is open).
        let h = vec![
            start("cpu1 umtx_sleep data0.0 0x1 until sleep", T2),
            start("cpu0 umtx_wakeup data0.0 until access", T1),
            end(1, Outcome::Ebusy, &[]),
            plain("cpu2 load data1.0", T3, Outcome::Value(0), &[T2]),
        ];
        assert_eq!(judge(h), Some((Kind::Outcome, 4)));
    }

    #[test]
    fn after_a_32_line_the_kind_is_the_most_specific_failure_by_the_line() {
        // (readings R4, literal) the worked example with the sleep still in flight, then a spawn
        // returning the wrong thread (outcome): in the orders with the sleep first, the wakeup
        // at 3 owed it a wake never named; the most specific failure by line 4 is lost-wakeup.
        let h = vec![
            start("cpu1 umtx_sleep data0.0 0x0 until sleep", T2),
            plain("cpu0 store data0.0 0x1", T1, Outcome::Ok, &[]),
            plain("cpu0 umtx_wakeup data0.0", T1, Outcome::Ok, &[]),
            plain("cpu0 spawn", T1, Outcome::Thread(1, 9), &[]),
        ];
        assert_eq!(judge(h), Some((Kind::LostWakeup, 4)));
        // Without a §3.2 line the sequential order holds (SPEC 4: outcome kinds, then
        // lost-wakeup): a wakeup returning EBUSY that also leaves its sleeper unnamed.
        let h = vec![
            plain("cpu1 umtx_sleep data0.0 0x0", T2, Outcome::Blocked, &[]),
            plain("cpu0 umtx_wakeup data0.0", T1, Outcome::Ebusy, &[]),
        ];
        assert_eq!(judge(h.clone()), Some((Kind::Outcome, 2)));
        // ... and after one, the same two lines give the more specific lost-wakeup.
        let mut after = vec![
            start("cpu2 umtx_sleep data1.0 0x1 until sleep", T3),
            end(2, Outcome::Ebusy, &[]),
        ];
        after.extend(h);
        assert_eq!(judge(after), Some((Kind::LostWakeup, 4)));
    }

    #[test]
    fn a_sleeper_in_flight_may_be_named() {
        // R1: T2's sleep [1, 4] started before line 3 named it (tsleep_interlock's shape).
        let h = vec![
            start("cpu1 umtx_sleep data0.0 0x0 until sleep", T2),
            start("cpu0 umtx_wakeup data0.0 until access", T1),
            end(0, Outcome::Ok, &[T2]),
            end(1, Outcome::Blocked, &[]),
        ];
        assert_eq!(judge(h), None);
    }
}
