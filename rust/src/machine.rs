//! The machine: CPUs, processes, objects and frames, and one operation at a time.

use crate::hw::Hw;
use crate::kop::KOp;
use crate::pmap_inval::Inval;
use crate::kernel::Kernel;
use crate::phys::Phys;
use crate::proc::{Proc, Thread, ThreadState};
use crate::program::{text_word, Addr, Observed, Op, Outcome, Step, Target, SHM};
use crate::tlb::Tlb;
use crate::umtx::Sleeper;
use crate::vm_object::{ObjType, VmObject};
use crate::pmap::Pmap;
use crate::vm_map::VmMap;

pub const MAX_PROCS: usize = 8;
pub const MAX_THREADS: usize = 4;
/// The kernel's own address space, run by idle CPUs.
pub const IDLE_SPACE: u32 = 0;

#[derive(Clone, Debug)]
pub struct Cpu {
    pub running: Option<(u32, u32)>,
    /// Address space loaded (pid, or IDLE_SPACE).
    pub space: u32,
    pub tlb: Tlb,
    /// The kernel operation in flight on this CPU (SPEC §3.2).
    pub kop: Option<KOp>,
}

#[derive(Clone, Debug)]
pub struct Machine {
    pub hw: Hw,
    pub kernel: &'static Kernel,
    pub phys: Phys,
    pub objects: Vec<VmObject>,
    /// Indexed by pid - 1; dead processes stay (pids are never reused).
    pub procs: Vec<Proc>,
    /// Processes of earlier runs, kept for their allocations (see `reset`).
    spare: Vec<Proc>,
    pub cpus: Vec<Cpu>,
    pub sleepers: Vec<Sleeper>,
    /// Shootdowns whose initiator has not passed its ipi_wait.
    pub invals: Vec<Inval>,
    /// CPUs with an op in flight.
    pub inflight: u8,
    pub file_object: u32,
    pub shm_object: u32,
    /// SPEC §3.4: the data file's vnode object, and what its backing store (the file on
    /// disk) holds; the swap slots of anonymous pages the page daemon wrote out.
    pub data_file_object: u32,
    pub data_file: [u32; 4],
    pub swap: Vec<crate::vm_object::SwapSlot>,
    /// What the current line did, for its report and the checks after it.
    pub scratch: Scratch,
    /// Self-test hooks (never set in a real run).
    pub selftest: SelfTest,
}

/// Self-test hook: `PYVMFUZZ_SELFTEST_PANIC_AT=N` makes every run (campaign, replay, encode)
/// raise a model assertion at step N, so tests can drive a real campaign into a `panic`.
pub fn selftest_panic_at() -> u32 {
    static AT: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *AT.get_or_init(|| std::env::var("PYVMFUZZ_SELFTEST_PANIC_AT").ok().and_then(|v| v.parse().ok()).unwrap_or(0))
}

/// Per-line bookkeeping, not model state: reset or taken by each line.
#[derive(Clone, Debug, Default)]
pub struct Scratch {
    /// Threads woken during the current line.
    pub woke: Vec<(u32, u32)>,
    /// Yield points the last line's op arrived at (`KOp::arrived`).
    pub arrived: u16,
    /// Every yield point the last line's op arrived at, the quiet map operations' included
    /// (explore's exact `until` hint; `arrived` keeps the semantic features' reading). Set by
    /// an op's run only: its readers zero it before the line (a line on a fast path runs no op),
    /// so the per-line path of a campaign pays nothing for it.
    pub passed: u16,
    /// What changed since the invariants were last checked (they can only break there).
    pub dirty: Dirty,
}

/// Self-test hooks: a model assertion at a chosen step, a planted hardware fault.
#[derive(Clone, Debug, Default)]
pub struct SelfTest {
    /// Raise a model assertion when this step number (1-based) runs.
    pub panic_at: u32,
    /// A planted fault: TLB fills cache the entry writable whatever the PTE says (the
    /// invariant checks must flag it).
    pub plant_fill_writable: bool,
    /// Steps run so far (for `panic_at`).
    pub steps_run: u32,
}

/// Since the last invariant check: a PTE changed, a CPU changed address space, a file frame
/// was written; and how many frames had been freed then.
#[derive(Clone, Debug, Default)]
pub struct Dirty {
    pub pte: bool,
    /// A TLB entry was created (a fill must copy the PTE; a wrong bit breaks coherence).
    pub fill: bool,
    pub space: bool,
    pub file: bool,
    pub freed_seen: u32,
    /// SPEC §3.4 `lost-data`, found by the line (`Machine::lost_data`).
    pub lost: Option<String>,
}

/// A well-formed step that cannot be performed in this state (an input error).
#[derive(Debug, Clone)]
pub struct Inapplicable(pub String);

/// Why a line cannot run now (`Machine::why_not`); formatted only for an input error.
#[derive(Clone, Copy, Debug)]
enum WhyNot {
    NothingInFlight,
    Waits(crate::kop::Lock),
    NoIpi,
    InFlight,
    Exiting(u32),
    /// A switch to a thread that is not runnable (`None`: no such thread).
    Thread(u32, u32, Option<ThreadState>),
    Idle,
}

impl WhyNot {
    fn message(self, cpu: usize) -> String {
        match self {
            WhyNot::NothingInFlight => format!("not applicable: nothing in flight on cpu{cpu} to resume"),
            WhyNot::Waits(l) => format!("not applicable: cpu{cpu} waits for {l}, still held"),
            WhyNot::NoIpi => format!("not applicable: no IPI pending for cpu{cpu}"),
            WhyNot::InFlight => format!("not applicable: cpu{cpu} has an op in flight (only resume and ipi run there)"),
            WhyNot::Exiting(p) => format!("not applicable: P{p} is exiting (its exit waits; its threads run no more)"),
            WhyNot::Thread(p, t, Some(ThreadState::Running(c))) if c as usize == cpu => format!("P{p}.T{t} is already running on cpu{cpu}"),
            WhyNot::Thread(p, t, Some(ThreadState::Running(c))) => format!("P{p}.T{t} is running on cpu{c}"),
            WhyNot::Thread(p, t, Some(ThreadState::Blocked)) => format!("P{p}.T{t} is blocked"),
            WhyNot::Thread(p, t, Some(ThreadState::Dead)) => format!("P{p}.T{t} has exited"),
            WhyNot::Thread(p, t, _) => format!("no thread P{p}.T{t}"),
            WhyNot::Idle => format!("cpu{cpu} is idle"),
        }
    }
}

impl Machine {
    pub fn new(hw: Hw, kernel: &'static Kernel) -> Machine {
        let mut m = Machine {
            hw,
            kernel,
            phys: Phys { frames: Vec::with_capacity(32), mem: Vec::with_capacity(32), ..Phys::default() },
            objects: Vec::with_capacity(16),
            procs: Vec::with_capacity(8),
            spare: Vec::new(),
            cpus: Vec::new(),
            sleepers: Vec::new(),
            invals: Vec::with_capacity(16),
            inflight: 0,
            file_object: 0,
            shm_object: 0,
            data_file_object: 0,
            data_file: [0; 4],
            swap: Vec::new(),
            scratch: Scratch::default(),
            selftest: SelfTest::default(),
        };
        m.reset(hw, kernel);
        m
    }

    /// Back to the initial state (SPEC §2.1) for `hw` and `kernel`, whatever state the machine
    /// was left in (even by a model assertion), keeping its allocations: the fuzzing path runs
    /// millions of programs and allocation was a tenth of its time.
    pub fn reset(&mut self, hw: Hw, kernel: &'static Kernel) {
        self.hw = hw;
        self.kernel = kernel;
        self.phys.clear();
        self.objects.clear();
        self.spare.append(&mut self.procs);
        self.cpus.truncate(hw.cpus as usize);
        for c in &mut self.cpus {
            c.running = None;
            c.space = IDLE_SPACE;
            c.tlb.entries.clear();
            c.tlb.cap = hw.tlb as usize;
            c.kop = None;
        }
        while self.cpus.len() < hw.cpus as usize {
            self.cpus.push(Cpu { running: None, space: IDLE_SPACE, tlb: Tlb::new(hw.tlb as usize), kop: None });
        }
        self.sleepers.clear();
        self.invals.clear();
        self.inflight = 0;
        self.scratch.woke.clear();
        self.scratch.arrived = 0;
        self.scratch.passed = 0;
        self.scratch.dirty = Dirty::default();
        self.selftest = SelfTest { panic_at: selftest_panic_at(), ..SelfTest::default() };
        // The executable's vnode object: its pages hold the file content; it keeps a
        // reference of its own.
        self.file_object = self.vm_object_allocate(ObjType::File, 2);
        for p in 0..2u8 {
            let words = [text_word(p, 0), text_word(p, 1), text_word(p, 2), text_word(p, 3)];
            let f = self.phys.alloc(words);
            self.obj_mut(self.file_object).pages[p as usize] = f;
        }
        self.shm_object = self.vm_object_allocate(ObjType::SharedAnon, 1);
        let data = self.vm_object_allocate(ObjType::Anon, 4);
        // The data file (SPEC §3.4): nothing resident until a fault reads it in.
        self.data_file_object = self.vm_object_allocate(ObjType::DataFile, 1);
        self.data_file = std::array::from_fn(|w| crate::program::data_file_word(w as u8));
        self.swap.clear();
        // The allocation references of the file and shm objects stay with the machine (the
        // vnode's own reference; the shared segment); the map takes its own.
        let mut p1 = self.alloc_proc(1);
        self.initial_map(data, &mut p1.map.entries);
        self.procs.push(p1);
        self.switch_now(0, Target::Thread(1, 1));
    }

    /// `self` becomes a copy of `src`, reusing `self`'s allocations (explore copies a state
    /// per line; the byte decoder dry-runs a line to see which yield points it reaches).
    /// `arrived` starts at 0 and `woke` empty; the spare processes stay `self`'s.
    pub fn copy_from(&mut self, s: &Machine) {
        let d = self;
        d.hw = s.hw;
        d.kernel = s.kernel;
        d.phys.frames.clone_from(&s.phys.frames);
        d.phys.mem.clone_from(&s.phys.mem);
        d.phys.free_slots.clone_from(&s.phys.free_slots);
        d.phys.freed_count = s.phys.freed_count;
        d.objects.clone_from(&s.objects);
        d.procs.truncate(s.procs.len());
        for (dp, sp) in d.procs.iter_mut().zip(&s.procs) {
            dp.pid = sp.pid;
            dp.alive = sp.alive;
            dp.map.entries.clone_from(&sp.map.entries);
            dp.map.generation = sp.map.generation;
            dp.pmap = sp.pmap.clone();
            dp.threads.clone_from(&sp.threads);
        }
        for sp in &s.procs[d.procs.len()..] {
            d.procs.push(sp.clone());
        }
        d.cpus.truncate(s.cpus.len());
        for (dc, sc) in d.cpus.iter_mut().zip(&s.cpus) {
            dc.running = sc.running;
            dc.space = sc.space;
            dc.tlb.entries.clone_from(&sc.tlb.entries);
            dc.tlb.cap = sc.tlb.cap;
            dc.kop = sc.kop;
        }
        for sc in &s.cpus[d.cpus.len()..] {
            d.cpus.push(sc.clone());
        }
        d.sleepers.clone_from(&s.sleepers);
        d.invals.clone_from(&s.invals);
        d.inflight = s.inflight;
        d.file_object = s.file_object;
        d.shm_object = s.shm_object;
        d.data_file_object = s.data_file_object;
        d.data_file = s.data_file;
        d.swap.clone_from(&s.swap);
        d.scratch.woke.clear();
        d.scratch.dirty = s.scratch.dirty.clone();
        d.scratch.arrived = 0;
        d.scratch.passed = 0;
        d.selftest = s.selftest.clone();
    }

    /// A fresh process `pid` with one runnable thread T1 and an empty map and pmap, reusing a
    /// spare process's allocations when there is one.
    pub fn alloc_proc(&mut self, pid: u32) -> Proc {
        let mut p = self.spare.pop().unwrap_or_else(|| Proc {
            pid,
            alive: true,
            map: VmMap { entries: Vec::with_capacity(8), generation: 0 },
            pmap: Pmap::new(),
            threads: Vec::with_capacity(4),
        });
        p.pid = pid;
        p.alive = true;
        p.map.entries.clear();
        p.map.generation = 0;
        p.pmap = Pmap::new();
        p.threads.clear();
        p.threads.push(Thread { tid: 1, state: ThreadState::Runnable });
        p
    }

    #[inline]
    pub fn proc(&self, pid: u32) -> &Proc {
        &self.procs[pid as usize - 1]
    }

    #[inline]
    pub fn proc_mut(&mut self, pid: u32) -> &mut Proc {
        &mut self.procs[pid as usize - 1]
    }

    pub fn thread_mut(&mut self, pid: u32, tid: u32) -> &mut Thread {
        &mut self.proc_mut(pid).threads[tid as usize - 1]
    }

    pub fn thread_state(&self, pid: u32, tid: u32) -> Option<ThreadState> {
        if pid == 0 || pid as usize > self.procs.len() {
            return None;
        }
        self.proc(pid).threads.get((tid as usize).wrapping_sub(1)).map(|t| t.state)
    }

    /// Whether `pid`'s exit (or fatal SEGV) has begun and is waiting (SPEC §3.2 *Exit*): its
    /// other threads then take no new operation but `exit`. DragonFly's exit1 → `killalllwps` marks every
    /// other lwp to exit, and each does at its next kernel boundary (`lwpuserret`); letting them
    /// run made `fixed` act on a process already dead (a second thread's mprotect after the
    /// SEGV had been decided: tests/data/fixed_regressions/exit-stops-siblings.txt).
    #[inline]
    pub fn exiting(&self, pid: u32) -> bool {
        self.inflight > 0
            && self.cpus.iter().any(|c| c.kop.as_ref().is_some_and(|k| k.pid == pid && k.phase == crate::kop::Phase::Exit))
    }

    /// Runnable threads (not blocked, not on a CPU, their process not exiting), in (pid, tid)
    /// order.
    pub fn runnable(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.procs.iter().filter(|p| p.alive && !self.exiting(p.pid)).flat_map(|p| {
            p.threads
                .iter()
                .filter(|t| t.state == ThreadState::Runnable)
                .map(move |t| (p.pid, t.tid))
        })
    }

    /// Number of pids assigned so far.
    pub fn pids_assigned(&self) -> u32 {
        self.procs.len() as u32
    }

    /// Perform one line: start an op (run until `until` or completion), `resume` the op in
    /// flight, or take pending IPIs. The wake list is sorted by (pid, tid).
    // Inlined into its few callers (the run loop above all): the call and the returned
    // `Result` through memory were a twentieth of the plain path (issue 13).
    #[inline(always)]
    pub fn step(&mut self, s: Step) -> Result<Observed, Inapplicable> {
        let cpu = s.cpu as usize;
        if cpu >= self.cpus.len() {
            return Err(Inapplicable(format!("cpu{} does not exist", s.cpu)));
        }
        // The common case, checked without a second match: an op on a busy CPU, nothing in
        // flight anywhere.
        let (plain, fast_switch) = if self.inflight != 0 {
            (false, false)
        } else {
            match s.op {
                Op::Switch(Target::Idle) => (false, s.until.is_none()),
                Op::Switch(Target::Thread(p, t)) => {
                    (false, s.until.is_none() && self.thread_state(p, t) == Some(ThreadState::Runnable))
                }
                Op::Resume | Op::Ipi => (false, false),
                _ => (self.cpus[cpu].running.is_some(), false),
            }
        };
        if !plain && !fast_switch {
            self.check_applicable(&s)?;
        }
        self.scratch.woke.clear();
        // `arrived` is the points of this line only (the fast paths that run no op leave it).
        self.scratch.arrived = 0;
        self.selftest.steps_run += 1;
        assert!(self.selftest.steps_run != self.selftest.panic_at, "self-test model assertion at step {}", self.selftest.panic_at);
        let outcome = match s.op {
            // A switch not stopped at `enter`, nothing in flight: both halves at once.
            Op::Switch(t) if fast_switch => {
                self.switch_now(cpu, t);
                Outcome::Ok
            }
            Op::Resume => self.kop_resume(cpu, s.until),
            Op::Ipi => {
                self.ipi_take(cpu);
                Outcome::Ok
            }
            // The incoming thread is in the kernel until the switch completes (an exit of
            // its process waits for it).
            Op::Switch(Target::Thread(p, t)) => self.kop_start(cpu, s.op, p, t, s.until),
            Op::Switch(Target::Idle) => self.kop_start(cpu, s.op, 0, 0, s.until),
            // The page daemon runs on an idle CPU as no thread's operation.
            op @ Op::Pageout(..) if self.cpus[cpu].running.is_none() => self.kop_start(cpu, op, 0, 0, s.until),
            op => {
                let (pid, tid) = self.cpus[cpu].running.expect("checked");
                self.kop_start(cpu, op, pid, tid, s.until)
            }
        };
        let mut woke = std::mem::take(&mut self.scratch.woke);
        woke.sort_unstable();
        Ok(Observed { outcome, woke })
    }

    /// Whether line `s` can run now (SPEC §2.3, §3.2); why not, as an input error.
    pub fn check_applicable(&self, s: &Step) -> Result<(), Inapplicable> {
        match self.why_not(s) {
            None => Ok(()),
            Some(w) => Err(Inapplicable(w.message(s.cpu as usize))),
        }
    }

    /// Whether line `s` can run now (`check_applicable` without its message).
    #[inline]
    pub fn applicable(&self, s: &Step) -> bool {
        self.why_not(s).is_none()
    }

    /// Why line `s` cannot run now, if it cannot: decided without formatting (the decoder asks
    /// it for every CPU of every line while an op is in flight).
    fn why_not(&self, s: &Step) -> Option<WhyNot> {
        let cpu = s.cpu as usize;
        let c = &self.cpus[cpu];
        match s.op {
            Op::Resume => {
                let Some(k) = &c.kop else { return Some(WhyNot::NothingInFlight) };
                return k.waiting.filter(|&l| !self.lock_free(cpu, l)).map(WhyNot::Waits);
            }
            Op::Ipi => return (!self.ipi_pending(cpu)).then_some(WhyNot::NoIpi),
            _ => {}
        }
        if c.kop.is_some() {
            return Some(WhyNot::InFlight);
        }
        match s.op {
            Op::Switch(Target::Idle) => None,
            Op::Switch(Target::Thread(p, t)) => match self.thread_state(p, t) {
                Some(ThreadState::Runnable) if self.exiting(p) => Some(WhyNot::Exiting(p)),
                Some(ThreadState::Runnable) => None,
                st => Some(WhyNot::Thread(p, t, st)),
            },
            _ => match c.running {
                None if matches!(s.op, Op::Pageout(..)) => None,
                None => Some(WhyNot::Idle),
                // `exit` still runs: it joins the exit under way (exit1 on a process already
                // exiting just ends the lwp)
                Some((p, _)) if self.exiting(p) && !matches!(s.op, Op::Exit) => Some(WhyNot::Exiting(p)),
                Some(_) => None,
            },
        }
    }

    /// Every write to a frame (user store or kernel mapping) goes through here.
    pub fn write_word(&mut self, f: u32, word: u8, v: u32) {
        let file = self.obj(self.file_object);
        if file.pages[0] == f || file.pages[1] == f {
            self.scratch.dirty.file = true;
        }
        self.phys.set_word(f, word, v);
    }

    /// The frame the process would see at `a` now (PTE first, else its map's chain): for
    /// explanations and features; does not fault.
    pub fn frame_seen(&self, pid: u32, page: u8) -> Option<u32> {
        let p = self.proc(pid);
        let pte = p.pmap.pte[page as usize];
        if pte.present() {
            return Some(pte.frame);
        }
        self.resident_page(pid, page).map(|(_, _, f)| f)
    }

    pub fn is_shm(a: Addr) -> bool {
        a.page == SHM
    }
}
