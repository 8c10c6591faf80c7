//! Semantic coverage: the situations a program drove the machine into, as a kernel engineer
//! would name them, hashed into 8-bit counters that libFuzzer treats like its own. Branch
//! coverage cannot see these: the same code runs whatever the state.
//!
//! The *situation* of a step, before the operation runs, for the page it touches in the
//! process it touches (the caller's, or procfs's target):
//! - the operation;
//! - the PTE: absent / read-only / writable;
//! - where the page lives: nowhere yet / the top object / a backing object (COW-shared);
//! - the caller in the target pmap's `pm_active`, or foreign;
//! - another CPU caching a TLB entry for the page;
//! - umtx sleepers on the frame the process sees.
//! For a switch: whether the CPU still caches entries of the address space it enters; for
//! fork/spawn/exit: live processes and sleepers.
//!
//! Two features per step: (situation, outcome class — SEGV / blocked / an error / other, and
//! whether it woke a thread), and (the previous situation of the same process's page, this
//! situation), so libFuzzer sees progress through sequences. Counters record presence only.
//!
//! Coarse on purpose, and measured (`pyvmfuzz bench --ttf`): finer situations (the page
//! itself, its protection, needs-copy, shadow depth) multiplied the corpus and found the
//! zoo's bugs later, not sooner.

use crate::machine::{Machine, IDLE_SPACE};
use crate::program::{Observed, Op, Outcome, Step, Target, NPAGES};
use std::sync::atomic::{AtomicBool, Ordering};

/// Counters: the first half for situations and the points lines reach, the second for pairs
/// of situations. Measured (a 120 s corpus on cow-make-before-break): pairs alone take
/// ~3,400 of 4,096 counters and saturate any table; sharing one table, they left the
/// situations and points (~1,450 distinct) colliding with them, so an input reaching a
/// new race situation rarely looked new to libFuzzer.
pub const NFEATURES: usize = 8192;
const HALF: usize = NFEATURES / 2;

#[repr(C, align(4096))]
struct Counters([u8; NFEATURES]);

static mut COUNTERS: Counters = Counters([0; NFEATURES]);
static mut PCS: [usize; 2 * NFEATURES] = [0; 2 * NFEATURES];
static REGISTERED: AtomicBool = AtomicBool::new(false);

extern "C" {
    fn dlsym(handle: *mut std::ffi::c_void, symbol: *const std::ffi::c_char) -> *mut std::ffi::c_void;
}

/// Register the counters (and a matching PC table) with the libFuzzer in this process, if
/// there is one. Looked up at run time, so the plain build needs no libFuzzer symbols.
pub fn register_with_libfuzzer() -> bool {
    if REGISTERED.load(Ordering::SeqCst) {
        return true;
    }
    // SAFETY: dlsym with RTLD_DEFAULT (null) on NUL-terminated names; the functions have the
    // SanitizerCoverage signatures; the arrays are 'static and registered once.
    unsafe {
        let c = dlsym(std::ptr::null_mut(), c"__sanitizer_cov_8bit_counters_init".as_ptr());
        let p = dlsym(std::ptr::null_mut(), c"__sanitizer_cov_pcs_init".as_ptr());
        if c.is_null() || p.is_null() {
            return false;
        }
        if REGISTERED.swap(true, Ordering::SeqCst) {
            return true;
        }
        let counters = std::ptr::addr_of_mut!(COUNTERS.0) as *mut u8;
        let pcs = std::ptr::addr_of_mut!(PCS) as *mut usize;
        for i in 0..NFEATURES {
            // Distinct fake PCs: the counters' own addresses; flags 0.
            *pcs.add(2 * i) = counters as usize + i;
            *pcs.add(2 * i + 1) = 0;
        }
        let init8: extern "C" fn(*mut u8, *mut u8) = std::mem::transmute(c);
        let initpc: extern "C" fn(*const usize, *const usize) = std::mem::transmute(p);
        init8(counters, counters.add(NFEATURES));
        initpc(pcs, pcs.add(2 * NFEATURES));
    }
    true
}

/// Forget what the run just fed to the counters (before libFuzzer reads them): a violating
/// run is then no corpus entry. Measured (issue 18): on `fixed`, nearly every input a
/// campaign added was a variant of one violation (tagged-hardware stale reads), each then
/// mutated into more violating repeats; AFL and libFuzzer keep crashes out of the queue too.
pub fn clear_counters() {
    // SAFETY: the fuzzing loop's thread, between a run and libFuzzer reading the counters.
    unsafe {
        let c = std::ptr::addr_of_mut!(COUNTERS.0) as *mut u8;
        std::ptr::write_bytes(c, 0, NFEATURES);
    }
}

/// Where a run's features go: libFuzzer's counters, or a list (for cmin and tests).
pub struct Features {
    prev: [u32; 8 * NPAGES],
    pub collected: Option<Vec<u16>>,
}

/// A situation's or point's counter, in the first half.
#[inline]
fn mix(x: u32) -> usize {
    (x.wrapping_mul(0x9E37_79B1) >> 20) as usize % HALF
}

impl Features {
    pub fn to_counters() -> Features {
        Features { prev: [0; 8 * NPAGES], collected: None }
    }
    pub fn collecting() -> Features {
        Features { prev: [0; 8 * NPAGES], collected: Some(Vec::new()) }
    }

    #[inline]
    fn hit(&mut self, f: u32) {
        self.set(mix(f));
    }

    /// A pair's counter, in the second half.
    #[inline]
    fn hit_pair(&mut self, f: u32) {
        self.set(HALF + mix(f));
    }

    #[inline]
    fn set(&mut self, i: usize) {
        match &mut self.collected {
            Some(v) => v.push(i as u16),
            // SAFETY: single-threaded fuzzing loop; libFuzzer reads the array between runs.
            None => unsafe {
                let c = std::ptr::addr_of_mut!(COUNTERS.0) as *mut u8;
                *c.add(i) = 1;
            },
        }
    }

    /// After a step: its situation (taken before it ran) with its outcome, and the pair.
    #[inline]
    pub fn record(&mut self, sit: Situation, obs: &Observed) {
        let class = match obs.outcome {
            Outcome::Segv => 1,
            Outcome::Blocked => 2,
            Outcome::Ebusy | Outcome::Efault | Outcome::Eagain | Outcome::Esrch => 3,
            _ => 0,
        } | ((!obs.woke.is_empty() as u32) << 4);
        self.hit(sit.bits ^ (class << 24));
        if let Some(slot) = sit.slot {
            let prev = self.prev[slot];
            self.hit_pair(prev.wrapping_mul(0x85EB_CA6B) ^ sit.bits ^ 0x5bd1_e995);
            self.prev[slot] = sit.bits;
        }
    }
}

impl Features {
    /// After a line that ran kernel code with yield points: the points its op arrived at, the
    /// point (or `wait`) it is paused at, and how many CPUs have IPIs pending now — so a
    /// campaign keeps an input that first reaches `sleep`, `retry` or a COW `ipi_wait` at all
    /// (measured, docs/zoo/README.md: the four bugs behind those points went unfound while
    /// the situation before each line was the same with or without them).
    #[inline]
    pub fn record_reached(&mut self, m: &Machine, s: &Step) {
        let opcode = match s.op {
            Op::Switch(_) | Op::Spawn | Op::Ipi => return,
            Op::Resume => match m.cpus[s.cpu as usize].kop.as_ref() {
                Some(k) => op_code(&k.op) | 32,
                None => 14,
            },
            op => op_code(&op),
        };
        let k = m.cpus[s.cpu as usize].kop.as_ref();
        if m.scratch.arrived == 0 && k.is_none() {
            return; // a line that ran whole without a point: nothing new to say
        }
        let at = k.map_or(0, |k| if k.waiting.is_some() { 8 } else { k.at.map_or(0, |p| p as u32 + 1) });
        let ipis = (0..m.cpus.len()).filter(|&c| m.ipi_pending(c)).count().min(3) as u32;
        self.hit(0x3c6e_f372 ^ (opcode | (m.scratch.arrived as u32) << 6 | at << 16 | ipis << 20));
    }
}

/// (process, page) a line works on, as `actor`: its own, or procfs's target.
fn op_page(op: &Op, actor: u32) -> Option<(u32, u8)> {
    match *op {
        Op::Load(a) | Op::Store(a, _) | Op::UmtxSleep(a, _) | Op::UmtxWakeup(a) => Some((actor, a.page)),
        Op::ProcfsRead(t, a) | Op::ProcfsWrite(t, a, _) => Some((t, a.page)),
        Op::Madvise(pg) | Op::Mprotect(pg, _) => Some((actor, pg)),
        Op::Munmap(pg) | Op::Mmap(pg) | Op::Mremap(pg, _) | Op::Msync(pg) => Some((actor, pg)),
        Op::Pageout(t, pg) => Some((t, pg)),
        _ => None,
    }
}

/// Same page: same process, or the shared segment (mapped shared in every process).
fn same_page(a: (u32, u8), b: (u32, u8)) -> bool {
    a.1 == b.1 && (a.0 == b.0 || a.1 == crate::program::SHM || a.1 == crate::program::FILE0)
}

fn op_code(op: &Op) -> u32 {
    match op {
        Op::Switch(_) => 1,
        Op::Load(_) => 2,
        Op::Store(..) => 3,
        Op::Fork => 4,
        Op::Spawn => 5,
        Op::Exit => 6,
        Op::UmtxSleep(..) => 7,
        Op::UmtxWakeup(_) => 8,
        Op::ProcfsRead(..) => 9,
        Op::ProcfsWrite(..) => 10,
        Op::Madvise(_) => 11,
        Op::Mprotect(_, w) => 12 + *w as u32,
        Op::Resume => 14,
        Op::Ipi => 15,
        Op::Munmap(_) => 16,
        Op::Mmap(_) => 17,
        Op::Mremap(..) => 18,
        Op::Msync(_) => 19,
        Op::Pageout(..) => 20,
    }
}

#[derive(Clone, Copy)]
pub struct Situation {
    pub bits: u32,
    /// (process, page) this situation belongs to, for pairs.
    slot: Option<usize>,
}

/// The situation step `s` finds the machine in (before it runs).
#[inline]
pub fn situation(m: &Machine, s: &Step) -> Situation {
    let mut sit = situation_plain(m, s);
    if m.inflight > 0 || !m.invals.is_empty() || s.until.is_some() {
        // SPEC §3.2: the op in flight (its phase and the point it stopped at) and pending
        // IPIs are part of the situation. Programs without them keep their features.
        let cpu = s.cpu as usize;
        if let Some(k) = m.cpus[cpu].kop.as_ref() {
            let fph = match k.phase {
                crate::kop::Phase::UserFault | crate::kop::Phase::PageFault => k.fs.phase as u32 + 1,
                _ => 0,
            };
            sit.bits ^= (k.phase as u32 + 1) << 16 | fph << 21 | (k.waiting.is_some() as u32) << 24 | (k.at.map_or(0, |p| p as u32 + 1)) << 25;
        }
        sit.bits ^= (m.ipi_pending(cpu) as u32) << 29 | ((m.inflight > 0) as u32) << 30;
        // The line touches the page an op paused on another CPU works on: the races of
        // SPEC §3.3 are such lines (a store into the page a sleep compared, a fork or a
        // store while procfs holds it, a madvise of the page a write retries on).
        if m.inflight > 0 {
            if let Some(here) = m.cpus[cpu].running.and_then(|(p, _)| op_page(&s.op, p)) {
                let conflict = m.cpus.iter().enumerate().any(|(c, x)| {
                    c != cpu && x.kop.as_ref().is_some_and(|k| op_page(&k.op, k.pid).is_some_and(|o| same_page(o, here)))
                });
                sit.bits ^= (conflict as u32) << 12;
            }
        }
        if s.until.is_some() {
            sit.bits ^= 1 << 28;
        }
    }
    sit
}

/// The page `pid` would see at `page` by its map's shadow chain: (depth of the object that has
/// it, frame), or None when no object has it yet.
fn chain_depth(m: &Machine, pid: u32, page: u8) -> Option<(u32, u32)> {
    let p = m.proc(pid);
    let e = p.map.entries[p.map.lookup(page)?];
    let (mut o, mut idx, mut depth) = (e.object, e.offset + (page - e.start), 0u32);
    loop {
        let ob = m.obj(o);
        let f = ob.pages[idx as usize];
        if f != crate::phys::NO_FRAME {
            return Some((depth, f));
        }
        let b = ob.backing?;
        idx += ob.backing_offset;
        o = b;
        depth += 1;
    }
}

/// A switch's situation: the TLB holding entries of the space entered, idle, and how many
/// other CPUs already run that process.
fn switch_situation(m: &Machine, cpu: usize, t: Target) -> Situation {
    let space = match t {
        Target::Idle => IDLE_SPACE,
        Target::Thread(p, _) => p,
    };
    let stale = m.cpus[cpu].space != space && m.cpus[cpu].tlb.entries.iter().any(|e| e.asid == space);
    // How many other CPUs already run that process (0, 1, 2+): the races of SPEC §3.3
    // need one process on two or three CPUs, a state no other feature tells apart.
    let sharing = if space == IDLE_SPACE {
        0
    } else {
        m.cpus.iter().enumerate().filter(|&(c, x)| c != cpu && x.running.is_some_and(|r| r.0 == space)).count().min(2) as u32
    };
    Situation { bits: 1 | (stale as u32) << 8 | ((space == IDLE_SPACE) as u32) << 9 | sharing << 10, slot: None }
}

/// The process an op targets (procfs; the page daemon, which may run on an idle CPU) and the
/// page it names.
fn op_target(op: Op) -> (Option<u32>, Option<u8>) {
    match op {
        Op::Load(a) | Op::Store(a, _) | Op::UmtxSleep(a, _) | Op::UmtxWakeup(a) => (None, Some(a.page)),
        Op::ProcfsRead(p, a) | Op::ProcfsWrite(p, a, _) => (Some(p), Some(a.page)),
        Op::Madvise(pg) | Op::Mprotect(pg, _) | Op::Munmap(pg) | Op::Mmap(pg) | Op::Mremap(pg, _) | Op::Msync(pg) => (None, Some(pg)),
        Op::Pageout(p, pg) => (Some(p), Some(pg)),
        Op::Switch(_) | Op::Fork | Op::Spawn | Op::Exit | Op::Resume | Op::Ipi => (None, None),
    }
}

fn situation_plain(m: &Machine, s: &Step) -> Situation {
    let cpu = s.cpu as usize;
    if let Op::Switch(t) = s.op {
        return switch_situation(m, cpu, t);
    }
    let opcode = op_code(&s.op);
    let (target, page) = op_target(s.op);
    let actor = m.cpus[cpu].running.map(|(p, _)| p);
    let Some(pid) = target.or(actor) else {
        return Situation { bits: opcode, slot: None };
    };
    let Some(page) = page else {
        let actor = pid;
        let nsleep = m.sleepers.len().min(3) as u32;
        // spawn: the threads the process has (a race needs two or three of them)
        let nthreads = if opcode == 5 { m.proc(actor).live_threads().min(4) as u32 } else { 0 };
        return Situation { bits: opcode | (m.live_procs() as u32) << 8 | nsleep << 12 | nthreads << 14, slot: None };
    };
    if pid == 0 || pid as usize > m.procs.len() || !m.proc(pid).alive {
        return Situation { bits: opcode | 1 << 31, slot: None };
    }
    let p = m.proc(pid);
    let pte = p.pmap.pte[page as usize];
    let pte_state = if !pte.present() { 0 } else if pte.writable { 2 } else { 1 };
    // Where the page lives: nowhere yet, the top object, or a backing object (COW-shared).
    // A writable PTE maps a page of the top object: no walk needed (the common case).
    let found = if pte_state == 2 { Some((0u32, pte.frame)) } else { chain_depth(m, pid, page) };
    let mapped = pte_state != 0 || p.map.lookup(page).is_some();
    let location = match found {
        _ if !mapped => 3,
        None => 0,
        Some((0, _)) => 1,
        Some(_) => 2,
    };
    let foreign = p.pmap.pm_active & (1 << cpu) == 0;
    // Only a CPU in the space (or any CPU, on tagged hardware) can cache its entries.
    let tagged = m.hw.mode == crate::hw::TlbMode::Tagged;
    let remote_tlb = (pte_state != 0 || tagged)
        && m.cpus.iter().enumerate().any(|(c, x)| {
            c != cpu && (tagged || x.space == pid) && x.tlb.entries.iter().any(|t| t.asid == pid && t.va == page)
        });
    let frame = found.map(|(_, f)| f);
    let sleepers = !m.sleepers.is_empty() && frame.is_some_and(|f| m.sleepers.iter().any(|s| s.frame == f));
    // SPEC §3.4's situations, only for the operations that read or change what they name
    // (measured: on every line they doubled the situations and saturated both halves of the
    // table in 20 s): for msync and pageout the page dirty (a modified PTE or the page's flag);
    // for them and the PTE-changing map operations another CPU caching a *dirty* entry for the
    // page (stores through it touch no PTE). (A freed frame still cached is a use-after-free
    // already: no run goes on from it.)
    let cleaner = matches!(s.op, Op::Msync(_) | Op::Pageout(..));
    let changes_pte = cleaner || matches!(s.op, Op::Mprotect(..) | Op::Madvise(_) | Op::Munmap(_) | Op::Mmap(_) | Op::Mremap(..));
    let dirty = cleaner && (pte.modified || frame.is_some_and(|f| m.phys.get(f).dirty));
    let remote_dirty = changes_pte
        && remote_tlb
        && m.cpus.iter().enumerate().any(|(c, x)| c != cpu && x.tlb.entries.iter().any(|t| t.asid == pid && t.va == page && t.dirty));
    let bits = opcode
        | pte_state << 7
        | location << 9
        | (foreign as u32) << 15
        | (remote_tlb as u32) << 16
        | (sleepers as u32) << 17
        | (dirty as u32) << 18
        | (remote_dirty as u32) << 19;
    Situation { bits, slot: Some(((pid as usize - 1) % 8) * NPAGES + page as usize) }
}
