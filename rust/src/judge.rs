//! Judgement at full speed: a compact copy of the user-visible contract (SPEC §4), fed each
//! step's observation. The Python oracle (`pyvmfuzz/oracle/contract.py`) is the slow, independent one.

use crate::machine::{MAX_PROCS, MAX_THREADS};
use crate::program::{data_file_word, is_text, text_word, Addr, Observed, Op, Outcome, Step, FILE0, FIRST_TEXT, HOLE0, NPAGES, SHM};

/// Canonical judge state for `explore` (its own file; a child module to see private state).
#[path = "judge_canon.rs"]
pub mod canon;

/// The linearizability judge over the contract (SPEC §4.1): a child module, to replay the
/// contract's private state.
#[path = "judge_lin.rs"]
mod lin;
pub use lin::{Event, Lin};

/// What a window's operation reads and writes in the contract state (a window of
/// non-conflicting concurrent operations closes without its order search).
#[path = "judge_footprint.rs"]
mod footprint;

#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Kind {
    StaleRead,
    Protection,
    Outcome,
    LostWakeup,
    TlbIncoherent,
    UseAfterFree,
    FileCorruption,
    /// SPEC §3.4: a frame freed or marked clean while it holds a store its backing store
    /// does not.
    LostData,
    Panic,
}

pub const KINDS: [Kind; 9] = [
    Kind::StaleRead,
    Kind::Protection,
    Kind::Outcome,
    Kind::LostWakeup,
    Kind::TlbIncoherent,
    Kind::UseAfterFree,
    Kind::FileCorruption,
    Kind::LostData,
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
            Kind::LostData => "lost-data",
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

/// What a sleeper waits on, as the contract sees it: a private word of a process, or a word of
/// a shared object (`shm0`, one made by `mmap shm0`, the data file), wherever it is mapped.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash, PartialOrd, Ord)]
enum Key {
    Private(u32, Addr),
    Shared(u8, u8),
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

/// What a process has at a page, as a user sees it (SPEC §4, §3.4): nothing, its own words
/// (and what `madvise` resets them to: zero, or a text page of the executable), or a shared
/// object.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
enum Pg {
    Unmapped,
    Private { mem: [u32; 4], orig: u8 },
    Shared(u8),
}

/// `Pg::Private::orig` of anonymous memory (else the text page's index in the layout).
const ZERO: u8 = u8::MAX;
/// The shared objects every process starts with.
const SHM_OBJ: u8 = 0;
const FILE_OBJ: u8 = 1;

#[derive(Clone, Copy, Debug, Hash)]
struct CProc {
    alive: bool,
    pages: [Pg; NPAGES],
    writable: [bool; NPAGES],
    live_threads: usize,
    next_tid: u32,
}

#[derive(Debug)]
pub struct Judge {
    procs: Vec<CProc>,
    /// The shared objects' words: `shm0`'s, the data file's, then those `mmap shm0` made.
    shared: Vec<[u32; 4]>,
    sleepers: Vec<Sleeper>,
}

/// `clone_from` field by field, into the allocations already there: the linearizability
/// judge copies candidate states at every window (the derived one allocated three vectors).
impl Clone for Judge {
    fn clone(&self) -> Judge {
        Judge { procs: self.procs.clone(), shared: self.shared.clone(), sleepers: self.sleepers.clone() }
    }

    fn clone_from(&mut self, s: &Judge) {
        self.procs.clone_from(&s.procs);
        self.shared.clone_from(&s.shared);
        self.sleepers.clone_from(&s.sleepers);
    }
}

fn original(orig: u8) -> [u32; 4] {
    if orig == ZERO {
        [0; 4]
    } else {
        let p = orig - FIRST_TEXT;
        [text_word(p, 0), text_word(p, 1), text_word(p, 2), text_word(p, 3)]
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
        self.shared.clear();
        self.shared.extend_from_slice(&Self::initial_shared());
        self.sleepers.clear();
    }

    fn initial_shared() -> [[u32; 4]; 2] {
        [[0; 4], std::array::from_fn(|w| data_file_word(w as u8))]
    }

    /// The mapping `mmap` (and the initial layout) gives page `pg`: its content and
    /// protection. A new `shm0` is a new object (`Judge::mmap`).
    fn fresh(pg: u8) -> (Pg, bool) {
        if is_text(pg) {
            (Pg::Private { mem: original(pg), orig: pg }, false)
        } else if pg == SHM {
            (Pg::Shared(SHM_OBJ), true)
        } else if pg == FILE0 {
            (Pg::Shared(FILE_OBJ), true)
        } else {
            (Pg::Private { mem: [0; 4], orig: ZERO }, true)
        }
    }

    fn new_p1() -> CProc {
        let mut pages = [Pg::Unmapped; NPAGES];
        let mut writable = [false; NPAGES];
        for pg in 0..NPAGES as u8 {
            if pg != HOLE0 {
                (pages[pg as usize], writable[pg as usize]) = Self::fresh(pg);
            }
        }
        CProc { alive: true, pages, writable, live_threads: 1, next_tid: 2 }
    }

    pub fn new() -> Judge {
        Judge { procs: vec![Self::new_p1()], shared: Self::initial_shared().to_vec(), sleepers: Vec::new() }
    }

    fn p(&mut self, pid: u32) -> &mut CProc {
        &mut self.procs[pid as usize - 1]
    }

    fn page(&self, pid: u32, pg: u8) -> Pg {
        self.procs[pid as usize - 1].pages[pg as usize]
    }

    fn mapped(&self, pid: u32, pg: u8) -> bool {
        self.page(pid, pg) != Pg::Unmapped
    }

    fn read(&self, pid: u32, a: Addr) -> u32 {
        match self.page(pid, a.page) {
            Pg::Private { mem, .. } => mem[a.word as usize],
            Pg::Shared(o) => self.shared[o as usize][a.word as usize],
            Pg::Unmapped => 0,
        }
    }

    fn write(&mut self, pid: u32, a: Addr, v: u32) {
        match &mut self.p(pid).pages[a.page as usize] {
            Pg::Private { mem, .. } => mem[a.word as usize] = v,
            Pg::Shared(o) => {
                let o = *o as usize;
                self.shared[o][a.word as usize] = v;
            }
            Pg::Unmapped => {}
        }
    }

    fn alive(&self, pid: u32) -> bool {
        pid >= 1 && (pid as usize) <= self.procs.len() && self.procs[pid as usize - 1].alive
    }

    fn kill(&mut self, pid: u32) {
        self.p(pid).alive = false;
        self.sleepers.retain(|x| x.t.0 != pid);
    }

    fn key(&self, pid: u32, a: Addr) -> Key {
        match self.page(pid, a.page) {
            Pg::Shared(o) => Key::Shared(o, a.word),
            _ => Key::Private(pid, a),
        }
    }

    /// The outcome the contract gives `step` by `actor` in this state.
    fn expected(&self, step: &Step, actor: Option<(u32, u32)>) -> Outcome {
        if let Op::Pageout(t, _) = step.op {
            // the page daemon: on any CPU, idle or not
            return if self.alive(t) { Outcome::Ok } else { Outcome::Esrch };
        }
        let Some((pid, _)) = actor else { return Outcome::Ok };
        let p = &self.procs[pid as usize - 1];
        match step.op {
            Op::Load(a) if !self.mapped(pid, a.page) => Outcome::Segv,
            Op::Load(a) => Outcome::Value(self.read(pid, a)),
            Op::Store(a, _) => {
                if p.writable[a.page as usize] && self.mapped(pid, a.page) {
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
                if !p.writable[a.page as usize] || !self.mapped(pid, a.page) {
                    Outcome::Efault
                } else if self.read(pid, a) != val {
                    Outcome::Ebusy
                } else {
                    Outcome::Blocked
                }
            }
            Op::UmtxWakeup(a) if !self.mapped(pid, a.page) => Outcome::Efault,
            Op::ProcfsRead(t, a) => {
                if !self.alive(t) {
                    Outcome::Esrch
                } else if !self.mapped(t, a.page) {
                    Outcome::Efault
                } else {
                    Outcome::Value(self.read(t, a))
                }
            }
            Op::ProcfsWrite(t, a, _) => {
                if !self.alive(t) {
                    Outcome::Esrch
                } else if !self.mapped(t, a.page) {
                    Outcome::Efault
                } else {
                    Outcome::Ok
                }
            }
            Op::Mremap(pg, to) if pg == to => Outcome::Einval,
            Op::Mremap(pg, _) if !self.mapped(pid, pg) => Outcome::Efault,
            _ => Outcome::Ok,
        }
    }

    /// The private mapping at `pg` in `pid` goes away (munmap, or a mapping put over it): its
    /// sleepers are owed nothing any more — DragonFly keys them by the frame, which no later
    /// mapping of that address has (pid 0 names no process, so no wakeup matches).
    fn orphan(&mut self, pid: u32, pg: u8) {
        for x in &mut self.sleepers {
            if let Key::Private(q, a) = &mut x.key {
                if *q == pid && a.page == pg {
                    *q = 0;
                }
            }
        }
    }

    /// `mmap` at `pg` in `pid`: the page's initial kind (a new shared object for `shm0`).
    fn mmap(&mut self, pid: u32, pg: u8) {
        self.orphan(pid, pg);
        let (mut page, w) = Self::fresh(pg);
        if pg == SHM {
            self.shared.push([0; 4]);
            page = Pg::Shared((self.shared.len() - 1) as u8);
        }
        let p = self.p(pid);
        p.pages[pg as usize] = page;
        p.writable[pg as usize] = w;
    }

    /// `mremap` of `pg` to `to` in `pid`: content, protection and the private sleepers'
    /// address move (DragonFly keys a sleeper by its physical page, which does not move).
    fn mremap(&mut self, pid: u32, pg: u8, to: u8) {
        self.orphan(pid, to);
        let p = self.p(pid);
        p.pages[to as usize] = p.pages[pg as usize];
        p.writable[to as usize] = p.writable[pg as usize];
        p.pages[pg as usize] = Pg::Unmapped;
        p.writable[pg as usize] = false;
        for x in &mut self.sleepers {
            if let Key::Private(q, a) = &mut x.key {
                if *q == pid && a.page == pg {
                    a.page = to;
                }
            }
        }
    }

    /// A hash of the contract state (the sleepers as a set), for memoisation: the state packed
    /// into 64-bit words on the stack and hashed in one call (foldhash, fixed seed: the same
    /// value in every process). Hashing field by field was a fifth of `explore`'s time.
    pub fn state_hash(&self) -> u64 {
        use std::hash::BuildHasher;
        thread_local! {
            static WORDS: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        WORDS.with(|cell| {
            let mut w = cell.borrow_mut();
            w.clear();
            self.state_words(&mut w);
            foldhash::quality::FixedState::default().hash_one(&w[..])
        })
    }

    fn state_words(&self, w: &mut Vec<u64>) {
        use std::hash::BuildHasher;
        let st = foldhash::quality::FixedState::default();
        let mut put = |x: u64| w.push(x);
        put(self.procs.len() as u64);
        for p in &self.procs {
            let wr = p.writable.iter().enumerate().fold(0u64, |a, (i, &b)| a | (b as u64) << i);
            put(p.alive as u64 | wr << 8 | (p.live_threads as u64) << 24 | (p.next_tid as u64) << 32);
            for pg in &p.pages {
                let (tag, m) = pg_words(pg);
                put(tag);
                put(m[0] as u64 | (m[1] as u64) << 32);
                put(m[2] as u64 | (m[3] as u64) << 32);
            }
        }
        put(self.shared.len() as u64);
        for m in &self.shared {
            put(m[0] as u64 | (m[1] as u64) << 32);
            put(m[2] as u64 | (m[3] as u64) << 32);
        }
        // The sleepers as a set, without sorting a copy: a wrapping sum of their own hashes.
        let set = self.sleepers.iter().fold(0u64, |acc, x| acc.wrapping_add(st.hash_one(x)));
        put(set ^ (self.sleepers.len() as u64) << 56);
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
            // A load of an unmapped page (SPEC §3.4) is a fatal SEGV too.
            Op::Load(_) if want == Outcome::Segv => self.kill(pid),
            Op::Fork => {
                if let Outcome::Pid(_) = want {
                    let parent = &self.procs[pid as usize - 1];
                    let child = CProc { alive: true, pages: parent.pages, writable: parent.writable, live_threads: 1, next_tid: 2 };
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
                    let key = self.key(pid, a);
                    self.sleepers.push(Sleeper { t: (pid, tid), key, since, end });
                }
            }
            Op::UmtxWakeup(a) if want == Outcome::Ok => {
                let key = self.key(pid, a);
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
                if let Pg::Private { mem, orig } = &mut self.p(pid).pages[pg as usize] {
                    *mem = original(*orig);
                }
            }
            Op::Mprotect(pg, w) => {
                if self.mapped(pid, pg) {
                    self.p(pid).writable[pg as usize] = w;
                }
            }
            Op::Munmap(pg) => {
                self.orphan(pid, pg);
                let p = self.p(pid);
                p.pages[pg as usize] = Pg::Unmapped;
                p.writable[pg as usize] = false;
            }
            Op::Mmap(pg) => self.mmap(pid, pg),
            Op::Mremap(pg, to) if want == Outcome::Ok => self.mremap(pid, pg, to),
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
            if !literal || rank(kind) <= rank(Kind::Protection) {
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

/// A page as a tag and four words (for hashing).
fn pg_words(pg: &Pg) -> (u64, [u32; 4]) {
    match *pg {
        Pg::Unmapped => (0, [0; 4]),
        Pg::Private { mem, orig } => (1 | (orig as u64) << 8, mem),
        Pg::Shared(o) => (2 | (o as u64) << 8, [0; 4]),
    }
}

/// The kind of a return value that differs from the contract's (SPEC §4, §4.1: a wrong value
/// read is `stale-read`; a load's or store's permission, `SEGV` or not, is `protection` — a
/// load that must `SEGV` and reads a value included).
fn value_kind(op: Op, got: Outcome, want: Outcome) -> Kind {
    match op {
        Op::Load(_) => match (got, want) {
            (Outcome::Value(_), Outcome::Value(_)) => Kind::StaleRead,
            (Outcome::Value(_), Outcome::Segv) | (Outcome::Segv, Outcome::Value(_)) => Kind::Protection,
            _ => Kind::Outcome,
        },
        Op::Store(..) if matches!(got, Outcome::Ok | Outcome::Segv) => Kind::Protection,
        Op::ProcfsRead(..) if matches!((got, want), (Outcome::Value(_), Outcome::Value(_))) => Kind::StaleRead,
        _ => Kind::Outcome,
    }
}

/// Specificity of a kind for §4.1 (lower is more specific). `stale-read` and `protection`
/// share SPEC's first rank; where one order reads a wrong value and another needs a `SEGV`
/// (a load beside a pending munmap or mremap of its page) `stale-read` is reported, as SPEC
/// lists it first (docs/readings.md R5).
fn rank(k: Kind) -> u8 {
    match k {
        Kind::StaleRead => 0,
        Kind::Protection => 1,
        Kind::LostWakeup => 2,
        _ => 3,
    }
}
