//! The byte form libFuzzer mutates.
//!
//! Layout: two header bytes, then one 5-byte record per step, each optionally followed by
//! escapes:
//! - header: b0 = (cpus-1) & 7 | 8 if tagged; b1 = (tlb-1) & 63. Missing bytes leave the
//!   default. Keys given on the command line override them.
//! - record `[k, pw, v, t, u]`: k & 15 selects the operation (table below), k >> 4 the CPU;
//!   pw selects the switch target (pw >= 0x80: a runnable thread of a process running on
//!   another CPU, when there is one, `sibling`), or page `(pw >> 2) % 7` and word `pw & 3` (pw >= 0x80 while
//!   an op is in flight on another CPU: that op's address, `inflight_addr`); v is a value
//!   (0xff: a u32 LE follows; umtx_sleep's v in 0x80..0xfe: the word's current value, see
//!   `peek_word`); t selects the procfs and pageout target pid (0xff: a u32 LE follows; a
//!   pageout of an in-flight op's address takes that op's process instead); u < 0xa0: no
//!   `until`; u - 0xa0 = k < 64: `until` the (k mod r)-th of the r yield points the line
//!   arrives at if run now (a dry run, `reachable`); k >= 64, or none reached: the
//!   (k - 64 mod n)-th (resp. (k mod n)-th) of the n points the operation declares (SPEC
//!   §3.2; for `resume`, those of the op in flight). `encode_step` picks the reached form
//!   whenever the point is reached, so it stays a right inverse of the decoder.
//! - `resume` picks among the CPUs whose op in flight can go on now, `ipi` among the CPUs with
//!   IPIs pending, an operation among CPUs running a thread with nothing in flight, a switch
//!   among CPUs with nothing in flight. A choice with no candidate folds into the next one
//!   that has some (resume → ipi → operation → switch → resume → ipi); when no line at all
//!   can run (every CPU waits on another), the program ends.
//!
//! Decoding is state-aware: choices are taken modulo what is valid now (a non-switch op picks
//! among busy CPUs, a switch among runnable threads and idle, a pid among those assigned plus
//! the next unassigned one), so every byte string is a valid program and a changed byte alters
//! one step. The state comes from running the machine, so decoding depends on the kernel (a
//! spurious wakeup changes which threads are runnable). Records are fixed-size whatever the
//! operation, so a changed operation byte does not shift the rest.

use crate::hw::{HwSpec, TlbMode};
use crate::machine::Machine;
use crate::program::{Addr, Op, Point, Step, Target, NPAGES, POINTS};

const SWITCH: u8 = 0;
const LOAD: u8 = 1;
const STORE: u8 = 2;
const FORK: u8 = 3;
const SPAWN: u8 = 4;
const EXIT: u8 = 5;
const SLEEP: u8 = 6;
const WAKEUP: u8 = 7;
const PREAD: u8 = 8;
const PWRITE: u8 = 9;
const MADVISE: u8 = 10;
const MPROT_R: u8 = 11;
const MPROT_RW: u8 = 12;
const RESUME: u8 = 13;
const IPI: u8 = 14;
/// SPEC §3.4's operations share the last slot: the value byte (mod 8) picks munmap, mmap,
/// mremap, msync or pageout, and 5..7 a load (loads are most of an interesting program: they
/// had the whole slot before, and keep 3/8 of it). mremap's TO is the pid byte (mod the pages).
const EXT: u8 = 15;
const EXT_OPS: u8 = 5;
const MUNMAP: u8 = 16;
const MMAP: u8 = 17;
const MREMAP: u8 = 18;
const MSYNC: u8 = 19;
const PAGEOUT: u8 = 20;
const KIND_TABLE: [u8; 16] = [
    SWITCH, LOAD, STORE, FORK, SPAWN, EXIT, SLEEP, WAKEUP, PREAD, PWRITE, MADVISE, MPROT_R, MPROT_RW, RESUME, IPI, EXT,
];
pub const RECORD: usize = 5;
const UNTIL_BASE: u8 = 0xa0;

/// The yield points `op` can be stopped at, in `POINTS` order.
fn point_list(_m: &Machine, op: &Op) -> ([Point; 10], usize) {
    // As the text parser: vm_fault_page's pmap_enter is a point of every kernel's ops (it is
    // reached only where the kernel calls it), so every valid text line encodes.
    bits_list(op.points(true))
}

fn bits_list(bits: u16) -> ([Point; 10], usize) {
    let mut out = [Point::Wait; 10];
    let mut n = 0;
    for p in POINTS {
        if bits & p.bit() != 0 {
            out[n] = p;
            n += 1;
        }
    }
    (out, n)
}

thread_local! {
    /// The dry run's machine, kept between lines and runs for its allocations.
    static SCRATCH: std::cell::RefCell<Option<Machine>> = const { std::cell::RefCell::new(None) };
}

/// The yield points line `s` (its `until` ignored) arrives at if run now from `m`, as
/// `Point::bit`s: a dry run on a copy of the machine (explore's `arrived` hint: `until P`
/// stops only where the plain line arrives at P). `wait` is never among them (an op waits
/// whatever its `until`). 0 if the line is not applicable or the dry run asserts.
fn reachable(m: &Machine, s: Step) -> u16 {
    if let Op::Switch(_) = s.op {
        return Point::Enter.bit(); // its only point, always reached when asked for
    }
    SCRATCH.with(|cell| {
        let mut slot = cell.borrow_mut();
        let scratch = slot.get_or_insert_with(|| m.clone());
        scratch.copy_from(m);
        scratch.selftest.panic_at = 0;
        // A stop point never yielded at: the same path as a plain line, minus the fast paths
        // that skip the points (a plain mprotect/madvise with nothing in flight).
        let dry = Step { until: Some(Point::Wait), ..s };
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| scratch.step(dry).is_ok()));
        match res {
            Ok(true) => scratch.scratch.arrived & s.op.points(true) & !Point::Wait.bit(),
            Ok(false) => 0,
            Err(_) => {
                crate::exec::PANIC_MSG.with(|p| p.borrow_mut().take());
                *slot = None; // a machine left mid-assertion is not reused
                0
            }
        }
    })
}

/// `until` byte `ub - UNTIL_BASE` below this: the k-th point the line reaches now (mod how many),
/// when it reaches some; from it on (and when it reaches none): the k-th declared point.
/// Measured (docs/zoo/README.md): a uniform draw among the declared points mostly picks
/// points the op cannot reach in that state (a load's `cow`, `fixed`'s vm_fault_page
/// `pmap_enter`), and the four zoo bugs behind a rare point went unfound.
const UNTIL_REACHED: u8 = 64;

/// The `until` point `ub` (>= UNTIL_BASE) selects for the line `s` (a `resume`: of the op in
/// flight, `op`).
fn until_point(m: &Machine, s: Step, op: &Op, ub: u8) -> Option<Point> {
    let (pts, n) = point_list(m, op);
    if n == 0 {
        return None;
    }
    let k = ub - UNTIL_BASE;
    if n > 1 && k < UNTIL_REACHED {
        let (r, nr) = bits_list(reachable(m, s));
        if nr > 0 {
            return Some(r[k as usize % nr]);
        }
    }
    Some(pts[if n > 1 && k >= UNTIL_REACHED { (k - UNTIL_REACHED) as usize } else { k as usize } % n])
}

/// The `until` byte that selects `p` for line `s` (inverse of `until_point`), or None if `op`
/// has no such point.
fn until_byte(m: &Machine, s: Step, op: &Op, p: Point) -> Option<u8> {
    let (pts, n) = point_list(m, op);
    let i = pts[..n].iter().position(|&q| q == p)?;
    if n == 1 {
        return Some(UNTIL_BASE);
    }
    let (r, nr) = bits_list(reachable(m, s));
    Some(match r[..nr].iter().position(|&q| q == p) {
        Some(j) => UNTIL_BASE + j as u8,
        None if nr == 0 => UNTIL_BASE + i as u8,
        None => UNTIL_BASE + UNTIL_REACHED + i as u8,
    })
}

/// A switch's target byte from this on: a runnable thread of a process already running on
/// another CPU (the ((pw >> 1) & 63)-th of them, mod how many), when there is one. The races of
/// SPEC §3.3 need one process's threads on two or three CPUs; a uniform target among the
/// runnable threads and idle rarely puts them there (measured: 22 of 3,540 corpus inputs of a
/// 30 s cow-make-before-break campaign ran one process on three CPUs). The encoder writes the
/// target's index + 1 (< 33), which decodes the same in any state.
const SIBLING: u8 = 0x80;

fn sibling(m: &Machine, cpu: u8, cands: &[(u32, u32)], pw: u8) -> Option<usize> {
    if pw < SIBLING {
        return None;
    }
    let running = |p: u32| m.cpus.iter().enumerate().any(|(c, x)| c != cpu as usize && x.running.is_some_and(|r| r.0 == p));
    let n = cands.iter().filter(|t| running(t.0)).count();
    if n == 0 {
        return None;
    }
    let want = ((pw >> 1) & 63) as usize % n;
    cands.iter().enumerate().filter(|(_, t)| running(t.0)).nth(want).map(|(j, _)| j)
}

/// An address byte `pw` from this on, while an op is in flight on another CPU: that op's
/// address (a CMP-style dictionary entry). The races of SPEC §3.3 are lines on the page (often
/// the word) an op paused elsewhere works on; a uniform page and word meet it 1 time in 28.
/// The encoder writes `page << 2 | word` (< 28), which decodes the same in any state.
const INFLIGHT_ADDR: u8 = 0x80;

/// The address of an op in flight on a CPU other than `cpu` (the ((pw >> 2) & 31)-th of them,
/// mod how many; madvise/mprotect: their page, word `pw & 3`), if any has one, with the process
/// whose address it is (the thread running the op; a procfs op's or pageout's target). An
/// mremap offers both its pages: the old one (a CPU may still translate it) and TO (where the
/// page daemon can meet the frame: CVE-2018-18281's window).
fn inflight_addr(m: &Machine, cpu: u8, pw: u8) -> Option<(Addr, u32)> {
    let mut found = [(Addr { page: 0, word: 0 }, 0u32); 16];
    let mut n = 0;
    for (c, x) in m.cpus.iter().enumerate() {
        let Some(k) = x.kop.as_ref().filter(|_| c != cpu as usize) else { continue };
        let own = x.running.map_or(0, |r| r.0);
        found[n] = match k.op {
            Op::Load(a) | Op::Store(a, _) | Op::UmtxSleep(a, _) | Op::UmtxWakeup(a) => (a, own),
            Op::ProcfsRead(p, a) | Op::ProcfsWrite(p, a, _) => (a, p),
            Op::Madvise(pg) | Op::Mprotect(pg, _) | Op::Munmap(pg) | Op::Mmap(pg) | Op::Msync(pg) => (Addr { page: pg, word: pw & 3 }, own),
            Op::Mremap(pg, to) => {
                found[n] = (Addr { page: to, word: pw & 3 }, own);
                n += 1;
                (Addr { page: pg, word: pw & 3 }, own)
            }
            Op::Pageout(p, pg) => (Addr { page: pg, word: pw & 3 }, p),
            _ => continue,
        };
        n += 1;
    }
    (n > 0).then(|| found[((pw >> 2) & 31) as usize % n])
}

/// umtx_sleep's value byte from this on (and below the escape): the word's current value as
/// the sleeping thread would read it (a CMP-style dictionary entry; a random value almost
/// never equals the word, and `sleep` is reached only when it does).
const SLEEP_CURRENT: u8 = 0x80;

/// The word at `a` as thread `pid` sees it now, read without side effects: its PTE's frame,
/// else the page its map entry's object chain holds, else 0 (zero-fill).
pub fn peek_word(m: &Machine, pid: u32, a: Addr) -> u32 {
    if pid == 0 || pid as usize > m.procs.len() {
        return 0;
    }
    let p = m.proc(pid);
    let pte = p.pmap.pte[a.page as usize];
    if pte.present() {
        return m.phys.word(pte.frame, a.word);
    }
    let Some(i) = p.map.lookup(a.page) else { return 0 };
    let e = p.map.entries[i];
    match m.vm_page_lookup_chain(e.object, e.offset + (a.page - e.start)) {
        Some((o, idx, crate::phys::NO_FRAME)) => m.vm_pager_content(o, idx).map_or(0, |w| w[a.word as usize]),
        Some((_, _, f)) => m.phys.word(f, a.word),
        None => 0,
    }
}

fn cpus_where(m: &Machine, pred: impl Fn(usize) -> bool) -> ([u8; 8], usize) {
    let mut out = [0u8; 8];
    let mut n = 0;
    for i in 0..m.cpus.len() {
        if pred(i) {
            out[n] = i as u8;
            n += 1;
        }
    }
    (out, n)
}

fn resumable(m: &Machine) -> ([u8; 8], usize) {
    if m.inflight == 0 {
        return ([0; 8], 0);
    }
    cpus_where(m, |i| m.applicable(&Step { cpu: i as u8, op: Op::Resume, until: None }))
}

fn ipi_cpus(m: &Machine) -> ([u8; 8], usize) {
    if m.invals.is_empty() {
        return ([0; 8], 0);
    }
    cpus_where(m, |i| m.ipi_pending(i))
}

fn free_cpus(m: &Machine) -> ([u8; 8], usize) {
    cpus_where(m, |i| m.cpus[i].kop.is_none())
}

/// Where the page daemon may run: a CPU with nothing in flight, idle or running a thread of a
/// process that is not exiting (such a thread runs nothing but its exit).
fn pageout_cpus(m: &Machine) -> ([u8; 8], usize) {
    cpus_where(m, |i| m.cpus[i].kop.is_none() && m.cpus[i].running.is_none_or(|(p, _)| !m.exiting(p)))
}

/// The operation codes of a record's low nibble, by name (exported to Python as the layout).
pub const OPCODES: [(u8, &str); 20] = [
    (SWITCH, "switch"),
    (LOAD, "load"),
    (STORE, "store"),
    (FORK, "fork"),
    (SPAWN, "spawn"),
    (EXIT, "exit"),
    (SLEEP, "umtx_sleep"),
    (WAKEUP, "umtx_wakeup"),
    (PREAD, "procfs_read"),
    (PWRITE, "procfs_write"),
    (MADVISE, "madvise"),
    (MPROT_R, "mprotect_r"),
    (MPROT_RW, "mprotect_rw"),
    (RESUME, "resume"),
    (IPI, "ipi"),
    (EXT, "munmap"),
    (EXT, "mmap"),
    (EXT, "mremap"),
    (EXT, "msync"),
    (EXT, "pageout"),
];
/// The value byte that picks each of SPEC §3.4's operations in the EXT slot (mod 8; 5..7 is
/// a load).
pub const EXT_SELECT: [(&str, u8); 5] = [("munmap", 0), ("mmap", 1), ("mremap", 2), ("msync", 3), ("pageout", 4)];
/// The `u` byte of a record: below it no `until`; `UNTIL_BASE + k` stops at the op's k-th point.
pub const UNTIL: u8 = UNTIL_BASE;

pub struct Decoder<'a> {
    data: &'a [u8],
    pos: usize,
}

fn busy_cpus(m: &Machine) -> ([u8; 8], usize) {
    let mut out = [0u8; 8];
    let mut n = 0;
    for (i, c) in m.cpus.iter().enumerate() {
        // not a thread of a process whose exit has begun (Machine::exiting)
        if c.kop.is_none() && c.running.is_some_and(|(p, _)| !m.exiting(p)) {
            out[n] = i as u8;
            n += 1;
        }
    }
    (out, n)
}

/// The CPUs that may run an `exit`: `busy_cpus` and the threads of a process whose exit has
/// begun (Machine::exiting: such a thread runs nothing more but its own exit, which
/// `check_applicable` allows — without this, a valid program with that line had no encoding).
fn exit_cpus(m: &Machine) -> ([u8; 8], usize) {
    let mut out = [0u8; 8];
    let mut n = 0;
    for (i, c) in m.cpus.iter().enumerate() {
        if c.kop.is_none() && c.running.is_some() {
            out[n] = i as u8;
            n += 1;
        }
    }
    (out, n)
}

/// Something in flight: fold a choice without candidates into the next kind that has some
/// (out of line, so the plain path stays small).
#[inline(never)]
fn fold_kind(m: &Machine, mut kind: u8, nbusy: usize) -> u8 {
    for _ in 0..5 {
        let ok = match kind {
            RESUME => resumable(m).1 > 0,
            IPI => ipi_cpus(m).1 > 0,
            SWITCH => free_cpus(m).1 > 0,
            EXIT => exit_cpus(m).1 > 0,
            _ => nbusy > 0,
        };
        if ok {
            break;
        }
        kind = match kind {
            RESUME => IPI,
            IPI => LOAD,
            SWITCH => RESUME,
            _ => SWITCH,
        };
    }
    kind
}

#[inline]
fn running_cpus(m: &Machine) -> ([u8; 8], usize) {
    let mut out = [0u8; 8];
    let mut n = 0;
    for (i, c) in m.cpus.iter().enumerate() {
        if c.running.is_some() {
            out[n] = i as u8;
            n += 1;
        }
    }
    (out, n)
}

impl<'a> Decoder<'a> {
    pub fn new(data: &'a [u8]) -> Decoder<'a> {
        Decoder { data, pos: 0 }
    }

    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    pub fn header(&mut self) -> HwSpec {
        let mut spec = HwSpec::default();
        if let Some(&b0) = self.data.first() {
            spec.cpus = Some(1 + (b0 & 7));
            spec.mode = Some(if b0 & 8 != 0 { TlbMode::Tagged } else { TlbMode::Pc64 });
        }
        if let Some(&b1) = self.data.get(1) {
            spec.tlb = Some(1 + (b1 & 63));
        }
        self.pos = 2;
        spec
    }

    pub fn next_step(&mut self, m: &Machine) -> Option<Step> {
        if self.pos >= self.data.len() {
            return None;
        }
        // A whole record in one bounds check (the common case); a short tail byte by byte.
        let (k, pw, vb, tb, ub) = match self.data.get(self.pos..self.pos + RECORD) {
            Some(&[k, pw, vb, tb, ub]) => {
                self.pos += RECORD;
                (k, pw, vb, tb, ub)
            }
            _ => (self.byte(), self.byte(), self.byte(), self.byte(), self.byte()),
        };
        // Escapes are consumed whatever the operation, so records stay aligned.
        let value = if vb == 0xff { self.u32() } else { vb as u32 };
        let pid_escape = if tb == 0xff { Some(self.u32().max(1)) } else { None };
        let sel = (k >> 4) as usize;
        let mut kind = KIND_TABLE[(k & 15) as usize];
        if kind == EXT {
            let sub = (if vb == 0xff { value } else { vb as u32 } % 8) as u8;
            kind = if sub < EXT_OPS { MUNMAP + sub } else { LOAD };
            if kind == PAGEOUT {
                match decode_pageout(m, sel, Fields { pw, vb, tb, value, pid_escape }, ub) {
                    Some(line) => return Some(line),
                    None => kind = MUNMAP,
                }
            }
        }
        // Fold a choice without candidates into the next kind that has some.
        let quiet = m.inflight == 0 && m.invals.is_empty();
        // Nothing in flight (`inflight` counts the CPUs with a `kop`): busy means running.
        let (busy, nbusy) = if quiet { running_cpus(m) } else { busy_cpus(m) };
        if quiet {
            if kind == RESUME || kind == IPI {
                kind = LOAD;
            }
            if kind != SWITCH && nbusy == 0 {
                kind = SWITCH;
            }
        } else {
            kind = fold_kind(m, kind, nbusy);
        }
        // `op`'s `until` for line `line` (a resume's op is the one in flight).
        let until_of = |line: Step, op: &Op| -> Option<Point> {
            if ub < UNTIL_BASE {
                return None;
            }
            until_point(m, line, op, ub)
        };
        match kind {
            RESUME => {
                let (c, n) = resumable(m);
                if n == 0 {
                    return None;
                }
                let cpu = c[sel % n];
                let op = m.cpus[cpu as usize].kop.as_ref().map(|k| k.op).unwrap();
                let line = Step { cpu, op: Op::Resume, until: None };
                return Some(Step { until: until_of(line, &op), ..line });
            }
            IPI => {
                let (c, n) = ipi_cpus(m);
                if n == 0 {
                    return None;
                }
                return Some(Step { cpu: c[sel % n], op: Op::Ipi, until: None });
            }
            SWITCH => {
                let line = decode_switch(m, quiet, sel, pw)?;
                return Some(Step { until: until_of(line, &line.op), ..line });
            }
            _ => {}
        }
        let (busy, nbusy) = if kind == EXIT && !quiet { exit_cpus(m) } else { (busy, nbusy) };
        if nbusy == 0 {
            return None;
        }
        let cpu = busy[if nbusy == 1 { 0 } else { sel % nbusy }];
        let op = decode_op(m, kind, cpu, Fields { pw, vb, tb, value, pid_escape });
        let line = Step { cpu, op, until: None };
        Some(Step { until: until_of(line, &op), ..line })
    }
}

/// A pageout record: the page daemon runs on any CPU with nothing in flight, idle or not
/// (`pageout_cpus`); None when there is none.
fn decode_pageout(m: &Machine, sel: usize, f: Fields, ub: u8) -> Option<Step> {
    let (c, n) = pageout_cpus(m);
    if n == 0 {
        return None;
    }
    let cpu = c[sel % n];
    let op = decode_op(m, PAGEOUT, cpu, f);
    let line = Step { cpu, op, until: None };
    let until = if ub < UNTIL_BASE { None } else { until_point(m, line, &op, ub) };
    Some(Step { until, ..line })
}

/// A switch record: its CPU (any when nothing is in flight, else a free one) and its target
/// (idle, or a runnable thread, a sibling of the CPU's thread preferred by `sibling`).
fn decode_switch(m: &Machine, quiet: bool, sel: usize, pw: u8) -> Option<Step> {
    let cpu = if quiet {
        (sel % m.cpus.len()) as u8
    } else {
        let (c, n) = free_cpus(m);
        if n == 0 {
            return None;
        }
        c[sel % n]
    };
    let mut cands = [(0u32, 0u32); 8 * 4];
    let mut nc = 0;
    for t in m.runnable() {
        cands[nc] = t;
        nc += 1;
    }
    let i = match sibling(m, cpu, &cands[..nc], pw) {
        Some(j) => j + 1,
        None => pw as usize % (nc + 1),
    };
    let target = if i == 0 { Target::Idle } else { Target::Thread(cands[i - 1].0, cands[i - 1].1) };
    Some(Step { cpu, op: Op::Switch(target), until: None })
}

/// A record's argument bytes (escapes already read).
struct Fields {
    pw: u8,
    vb: u8,
    tb: u8,
    value: u32,
    pid_escape: Option<u32>,
}

/// The operation of a record of `kind` (not resume, ipi or switch) run on `cpu`. Only the
/// choices an operation uses are computed (divisions are most of decoding).
#[inline]
fn decode_op(m: &Machine, kind: u8, cpu: u8, f: Fields) -> Op {
    let uses_addr = !matches!(kind, FORK | SPAWN | EXIT);
    let inflight = if uses_addr && f.pw >= INFLIGHT_ADDR && m.inflight > 0 { inflight_addr(m, cpu, f.pw) } else { None };
    let addr = || match inflight {
        Some((a, _)) => a,
        None => Addr { page: (f.pw >> 2) % NPAGES as u8, word: f.pw & 3 },
    };
    let pid = || f.pid_escape.unwrap_or_else(|| 1 + f.tb as u32 % (m.pids_assigned() + 1));
    // The page daemon reclaiming the page of an op in flight reclaims it from that op's
    // process (the pageout of TO while an mremap waits for its shootdown: CVE-2018-18281);
    // the t byte would pick it one time in (processes + 1). An escape still names any pid.
    let pageout_pid = || match (inflight, f.pid_escape) {
        (Some((_, p)), None) if p != 0 => p,
        _ => pid(),
    };
    match kind {
        LOAD => Op::Load(addr()),
        STORE => Op::Store(addr(), f.value),
        FORK => Op::Fork,
        SPAWN => Op::Spawn,
        EXIT => Op::Exit,
        SLEEP if f.vb != 0xff && f.vb >= SLEEP_CURRENT => {
            let pid = m.cpus[cpu as usize].running.map_or(0, |r| r.0);
            Op::UmtxSleep(addr(), peek_word(m, pid, addr()))
        }
        SLEEP => Op::UmtxSleep(addr(), f.value),
        WAKEUP => Op::UmtxWakeup(addr()),
        PREAD => Op::ProcfsRead(pid(), addr()),
        PWRITE => Op::ProcfsWrite(pid(), addr(), f.value),
        MADVISE => Op::Madvise(addr().page),
        MPROT_R => Op::Mprotect(addr().page, false),
        MPROT_RW => Op::Mprotect(addr().page, true),
        MUNMAP => Op::Munmap(addr().page),
        MMAP => Op::Mmap(addr().page),
        MREMAP => Op::Mremap(addr().page, f.tb % NPAGES as u8),
        MSYNC => Op::Msync(addr().page),
        PAGEOUT => Op::Pageout(pageout_pid(), addr().page),
        _ => unreachable!(),
    }
}

/// The encoder: the record that decodes to a line, in the state it runs in (codec_encode.rs).
#[path = "codec_encode.rs"]
mod encode_side;
pub use encode_side::{encode, encode_header, encode_step};

/// Decode a whole byte string into steps, running the machine without judgement (the
/// program goes on past any violation; it stops at a model panic).
pub fn decode(data: &[u8], cli: HwSpec, kernel: &'static crate::kernel::Kernel) -> (crate::hw::Hw, Vec<Step>) {
    let mut d = Decoder::new(data);
    let hw = d.header().overlay(cli).resolve();
    let mut steps = Vec::new();
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut m = Machine::new(hw, kernel);
        while let Some(s) = d.next_step(&m) {
            steps.push(s);
            if m.step(s).is_err() {
                steps.pop();
                return;
            }
        }
    }));
    (hw, steps)
}
