//! Bounded exhaustive exploration (SPEC §5 `explore`): every program of up to N lines from the
//! initial state (SPEC §2.1), interleaved lines of §3.2 (`until`, `resume`, `ipi`) included,
//! each executed and judged exactly as `run` does (machine step, linearizability judge,
//! internal invariants).
//!
//! Search: iterative deepening by program length — bound 1, 2, …, N, each bound a depth-first
//! search — so the first violation found is a shortest one (every shorter program was proved
//! clean by the previous bound), and an interrupted search has proved the last completed bound.
//!
//! Domain (what "every program" ranges over; `Domain::default`, widened with `--pages`,
//! `--values`):
//! - pages `data0`, `text0`, `shm0` (one of each kind of mapping: private anonymous, private
//!   file/COW, shared), word 0 only. Every kernel action in the model is per page; words of a
//!   page differ only in their value; `data1..3` behave as `data0` until a clip tells them apart
//!   and `text1` as `text0`.
//! - values written (`store`, `procfs_write`): {1}; values compared by `umtx_sleep`: {0} and the
//!   written values, plus the file word of a text address.
//! - `procfs_read`/`procfs_write` name live processes only (a dead or unknown pid is `ESRCH`
//!   without touching anything).
//! - `until POINT` for each point the op has except `wait` (a line that must wait stops there
//!   without being told) that the plain line arrives at (`until_points`: the others *are* the
//!   plain line, so they are not executed; docs/explore.md, "Fewer lines at the same states").
//!
//! State hashing: a 128-bit hash of the canonical machine and judge state. Frames and VM
//! objects are renamed by first reference in a fixed traversal (CPUs, processes, sleepers,
//! shootdown records, then objects and frames reached), so two runs that allocated in another
//! order meet; unreferenced (freed) frames and dead objects are left out; a paused fault's map
//! generation enters only as "still equal to the map's" (all the kernel compares). On 2 or 3
//! CPUs, CPUs are renamed too (`Config::symmetry`): the hash is the least over the renamings,
//! as the model treats CPUs alike (`explore_tests.rs` checks that swapping two CPUs swaps every
//! run). Pids are not renamed. The judge's part is `Lin::canon` (candidate
//! contract states as a set, the history window with line numbers by rank), so hashing stays on
//! while ops are in flight. A state is expanded once per bound unless reached again with more
//! lines left. A hash collision would skip a state: at 128 bits and ≤ 10^9 states, < 10^-20.
//!
//! Partial-order reduction (`por`): two user loads/stores that hit in their CPUs' TLBs, on
//! different CPUs, with no op in flight, touching different frames and different contract words
//! (or both loads) commute — each reads/writes only its own frame word and its own logical
//! word, wakes nobody and changes no TLB, PTE or lock — so of the two orders only the one with
//! the lower CPU first is generated. `tests/test_explore.py` checks hashing and reduction
//! against plain search (same verdicts, same shortest lengths).

use crate::hw::Hw;
use crate::kop::{KOp, Lock};
use crate::swtch::MID_SWITCH;
use crate::judge::canon::{outcome_code, step_code};
use crate::judge::{Event, Kind, Lin, Violation};
use crate::kernel::Kernel;
use crate::machine::Machine;
use crate::phys::NO_FRAME;
use crate::program::{text_word, Addr, Observed, Op, Outcome, Point, Step, Target, POINTS, SHM};
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

/// What programs range over (see the module comment).
#[derive(Clone, Debug)]
pub struct Domain {
    pub pages: Vec<u8>,
    pub words: Vec<u8>,
    pub values: Vec<u32>,
    /// SPEC §3.4's lines too (`--vm`): munmap, mmap, msync of each page, mremap between them,
    /// pageout of each live process's page from every CPU with nothing in flight.
    pub vm: bool,
}

impl Default for Domain {
    fn default() -> Self {
        Domain { pages: vec![0, 4, SHM], words: vec![0], values: vec![1], vm: false }
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub depth: u32,
    /// Seconds; 0 = no limit.
    pub time_s: f64,
    pub hashing: bool,
    pub por: bool,
    /// Generate `until P` only where the plain line arrived at P (`until_points`): exact, the
    /// other `until P` lines are the plain line (`explore_tests.rs` checks it on every kernel).
    /// About half the lines a search executes, at the same states. Off: every point.
    pub until_hint: bool,
    /// A violation counts only where this kernel gets the same program right (necessity: the
    /// shortest program that tells a variant from its base); others end their branch.
    pub base: Option<&'static Kernel>,
    /// Most states kept in the hash table (beyond it states are expanded again: sound).
    pub max_table: usize,
    /// At most this many stops on a path (lines with `until` that leave their op in flight,
    /// `resume until` included): CHESS's preemption bound — races need few stops, not few
    /// lines. None: no bound. The hash table then keys states by the stops left too (a state
    /// reached with fewer stops left does not cover one with more).
    pub stops: Option<u32>,
    /// CPUs renamed in the state hash (2 or 3 CPUs): a state and the same state with its CPUs'
    /// numbers permuted are one (the model treats CPUs alike; docs/explore.md "Symmetry").
    /// The lower-CPU-first commutation rule (`por`) is then off: the two reductions each keep
    /// one of two orders chosen by CPU number and, together, could keep neither.
    pub symmetry: bool,
    /// Search the bounds from this one (1: iterative deepening, the first witness a shortest).
    /// One depth-first pass at `depth` runs every program up to `depth` lines all the same (a
    /// line is judged wherever it is), so it proves as much; its witness is no longer than
    /// `depth` but not always a shortest, and it skips the shallower passes' work.
    pub first_bound: u32,
    pub domain: Domain,
}

#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// The bound being searched.
    pub bound: u32,
    /// Deepest bound searched completely without violation.
    pub completed: u32,
    /// Successor states computed (lines executed), all bounds.
    pub generated: u64,
    /// Of those, in the last bound searched.
    pub generated_last: u64,
    /// Distinct states expanded in the last bound searched (hash table size).
    pub distinct: u64,
    /// Lines skipped by partial-order reduction.
    pub por_skipped: u64,
    /// States not expanded again thanks to the hash table.
    pub hash_hits: u64,
    /// Violations the base kernel shares (`Config::base`), not counted.
    pub shared: u64,
    pub elapsed_s: f64,
}

#[derive(Clone, Debug)]
pub struct Explored {
    pub stats: Stats,
    /// The shortest violation: its lines and the violation.
    pub witness: Option<(Vec<Step>, Violation)>,
    /// Stopped by the time limit or the caller before the bound `depth` was complete.
    pub stopped: bool,
}

/// The last line's facts, for the reduction: a TLB-hit user access.
#[derive(Clone, Copy, Debug)]
struct Hit {
    cpu: u8,
    frame: u32,
    /// Contract location: (pid, page), pid 0 for shm.
    loc: (u32, u8),
    store: bool,
}

pub(crate) struct Node {
    pub(crate) m: Machine,
    pub(crate) j: Lin,
}

/// `dst` becomes a copy of `src`, reusing `dst`'s allocations (a state is copied per line).
fn copy_into(dst: &mut Node, src: &Node) {
    dst.m.copy_from(&src.m);
    dst.j.copy_from(&src.j);
}

/// The result of one line: inapplicable, or its violation (None: clean).
pub(crate) enum Exec {
    Inapplicable,
    Done(Option<Violation>),
}

/// Execute and judge line number `n` exactly as `exec::run_observed` does.
pub(crate) fn exec_line(node: &mut Node, step: Step, n: u32) -> Exec {
    let res = catch_unwind(AssertUnwindSafe(|| {
        let m = &mut node.m;
        m.scratch.passed = 0; // `until_points` reads what this line passes
        let actor = m.cpus[step.cpu as usize].running;
        let obs = match m.step(step) {
            Ok(o) => o,
            Err(_) => return Exec::Inapplicable,
        };
        let actor = if matches!(step.op, Op::Switch(_) | Op::Ipi) { None } else { actor };
        let paused = obs.outcome == Outcome::Paused;
        let verdict = if node.j.sequential() && !paused && !matches!(step.op, Op::Resume) {
            node.j.check_plain(n, &step, actor, &obs)
        } else {
            let ev = match step.op {
                Op::Resume if paused => Event::Cont { cpu: step.cpu, woke: obs.woke.clone() },
                Op::Resume => Event::End { cpu: step.cpu, obs },
                _ if paused => Event::Start { cpu: step.cpu, step, actor, woke: obs.woke.clone() },
                _ => Event::Plain { step, actor, obs },
            };
            node.j.line(n, ev)
        };
        if let Some(v) = verdict {
            return Exec::Done(Some(v));
        }
        if let Some((kind, msg)) = m.check_invariants() {
            return Exec::Done(Some(Violation { kind, step: n, expected: "coherent machine".into(), observed: msg }));
        }
        Exec::Done(None)
    }));
    match res {
        Ok(e) => e,
        Err(_) => Exec::Done(Some(Violation {
            kind: Kind::Panic,
            step: n,
            expected: "no model assertion".into(),
            observed: "model assertion failed".into(),
        })),
    }
}

/// Whether `s` is a plain user load/store that hits in its CPU's TLB now (no fault, no
/// wait, no change but the word it stores).
fn tlb_hit(m: &Machine, s: &Step) -> Option<Hit> {
    if s.until.is_some() || m.inflight != 0 {
        return None;
    }
    let (a, store) = match s.op {
        Op::Load(a) => (a, false),
        Op::Store(a, _) => (a, true),
        _ => return None,
    };
    let c = &m.cpus[s.cpu as usize];
    let (pid, _) = c.running?;
    if c.kop.is_some() || c.space == MID_SWITCH {
        return None;
    }
    let te = c.tlb.lookup(pid, a.page)?;
    if store && !te.writable {
        return None;
    }
    let loc = if a.page == SHM { (0, a.page) } else { (pid, a.page) };
    Some(Hit { cpu: s.cpu, frame: te.frame, loc, store })
}

/// `a` after `b` is skipped when the two commute and `a` runs on the lower CPU (the other
/// order is generated).
fn commutes_below(a: &Hit, b: &Hit) -> bool {
    a.cpu < b.cpu && ((!a.store && !b.store) || (a.frame != b.frame && a.loc != b.loc))
}

/// The points `P` for which `base until P` differs from the plain line `base`, given the points
/// the plain line passed (`Scratch::passed`): an `until P` line runs the very code of the plain
/// line (the stop point is read only where a point is reached, `KOp::yield_at`) until its first
/// arrival at P, so it differs exactly when the plain line arrives at P. A `resume` has the
/// points of the op in flight; a plain switch passes `enter` on its fast path without an op.
fn until_points(m: &Machine, base: &Step, passed: u16) -> u16 {
    let points = match base.op {
        Op::Resume => m.cpus[base.cpu as usize].kop.as_ref().map_or(0, |k| m.points_of(&k.op)),
        Op::Switch(_) => return Point::Enter.bit(),
        op => m.points_of(&op),
    };
    passed & points & !Point::Wait.bit()
}

/// Lines that may run now (applicability is checked when each is executed).
/// With `all_points`, every `until` variant too; else only plain lines (their `until` variants
/// are made from the points each plain line arrived at, see `Search::dfs`).
pub fn candidates(m: &Machine, d: &Domain, all_points: bool, out: &mut Vec<Step>) {
    out.clear();
    let with_points = |out: &mut Vec<Step>, cpu: u8, op: Op, bits: u16| {
        out.push(Step { cpu, op, until: None });
        if !all_points {
            return;
        }
        for p in POINTS {
            if p != Point::Wait && bits & p.bit() != 0 {
                out.push(Step { cpu, op, until: Some(p) });
            }
        }
    };
    for c in 0..m.cpus.len() {
        let cpu = c as u8;
        let ipi = m.ipi_pending(c);
        if let Some(k) = &m.cpus[c].kop {
            if k.waiting.is_none_or(|l| m.lock_free(c, l)) {
                with_points(out, cpu, Op::Resume, m.points_of(&k.op));
            }
            if ipi {
                out.push(Step { cpu, op: Op::Ipi, until: None });
            }
            continue;
        }
        if ipi {
            out.push(Step { cpu, op: Op::Ipi, until: None });
        }
        let sw = m.points_of(&Op::Switch(Target::Idle));
        with_points(out, cpu, Op::Switch(Target::Idle), sw);
        for (p, t) in m.runnable() {
            with_points(out, cpu, Op::Switch(Target::Thread(p, t)), sw);
        }
        let live: Vec<u32> = m.procs.iter().filter(|p| p.alive).map(|p| p.pid).collect();
        if d.vm && m.cpus[c].running.is_none_or(|(p, _)| !m.exiting(p)) {
            for op in pageout_lines(d, &live) {
                with_points(out, cpu, op, m.points_of(&op));
            }
        }
        if m.cpus[c].running.is_none() {
            continue;
        }
        // Process and thread creation first: most witnesses start with one, and the first
        // violation of a bound ends the search sooner (the order is no part of soundness).
        let mut ops: Vec<Op> = vec![Op::Spawn, Op::Fork];
        for &page in &d.pages {
            for &word in &d.words {
                let a = Addr { page, word };
                ops.push(Op::Load(a));
                for &v in &d.values {
                    ops.push(Op::Store(a, v));
                }
                if !d.values.contains(&0) {
                    ops.push(Op::UmtxSleep(a, 0));
                }
                for &v in &d.values {
                    ops.push(Op::UmtxSleep(a, v));
                }
                if crate::program::is_text(page) {
                    ops.push(Op::UmtxSleep(a, text_word(page - 4, word)));
                }
                ops.push(Op::UmtxWakeup(a));
                for &pid in &live {
                    ops.push(Op::ProcfsRead(pid, a));
                    for &v in &d.values {
                        ops.push(Op::ProcfsWrite(pid, a, v));
                    }
                }
            }
            ops.push(Op::Madvise(page));
            ops.push(Op::Mprotect(page, false));
            ops.push(Op::Mprotect(page, true));
            if d.vm {
                vm_map_lines(d, page, &mut ops);
            }
        }
        ops.push(Op::Exit);
        for op in ops {
            with_points(out, cpu, op, m.points_of(&op));
        }
    }
}

/// SPEC §3.4's map lines on `page`: munmap, mmap, msync, mremap to each other page.
fn vm_map_lines(d: &Domain, page: u8, ops: &mut Vec<Op>) {
    ops.extend([Op::Munmap(page), Op::Mmap(page), Op::Msync(page)]);
    ops.extend(d.pages.iter().filter(|&&to| to != page).map(|&to| Op::Mremap(page, to)));
}

/// The page daemon's lines (any CPU, idle or not): each live process's page.
fn pageout_lines<'a>(d: &'a Domain, live: &'a [u32]) -> impl Iterator<Item = Op> + 'a {
    d.pages.iter().flat_map(move |&page| live.iter().map(move |&pid| Op::Pageout(pid, page)))
}

/// The canonical state hash (explore_canon.rs).
#[path = "explore_canon.rs"]
mod canon_state;
use canon_state::{Canon, Table};

// ---- the search ---------------------------------------------------------------------------

struct Search<'a> {
    cfg: &'a Config,
    canon: Canon,
    table: Table,
    stats: Stats,
    path: Vec<Step>,
    witness: Option<(Vec<Step>, Violation)>,
    start: Instant,
    stop: bool,
    tick: u64,
    progress: &'a mut dyn FnMut(&Stats) -> bool,
    cands: Vec<Vec<Step>>,
    /// A reusable child state per depth.
    scratch: Vec<Option<Node>>,
    /// Stops still allowed on the current path (`Config::stops`; u32::MAX: no bound).
    stops_left: u32,
}

impl Search<'_> {
    fn poll(&mut self) {
        self.stats.elapsed_s = self.start.elapsed().as_secs_f64();
        self.stats.distinct = self.table.len() as u64;
        if self.cfg.time_s > 0.0 && self.stats.elapsed_s > self.cfg.time_s {
            self.stop = true;
        }
        if !(self.progress)(&self.stats) {
            self.stop = true;
        }
    }

    /// Depth-first below `node` (at depth `k`) to the bound. Returns true on a violation.
    fn dfs(&mut self, node: &Node, k: u32, last: Option<Hit>, bound: u32) -> bool {
        let mut cands = std::mem::take(&mut self.cands[k as usize]);
        candidates(&node.m, &self.cfg.domain, !self.cfg.until_hint, &mut cands);
        let mut found = false;
        'outer: for &base in &cands {
            if self.stop {
                break;
            }
            if base.until.is_some() && self.stops_left == 0 {
                continue;
            }
            if !node.m.applicable(&base) {
                continue;
            }
            let (f, arrived) = self.visit(node, k, last, bound, base);
            if f {
                found = true;
                break;
            }
            if self.cfg.until_hint && base.until.is_none() && self.stops_left > 0 {
                let bits = until_points(&node.m, &base, arrived);
                for p in POINTS {
                    if bits & p.bit() != 0 {
                        let (f, _) = self.visit(node, k, last, bound, Step { until: Some(p), ..base });
                        if f {
                            found = true;
                            break 'outer;
                        }
                    }
                }
            }
        }
        self.cands[k as usize] = cands;
        found
    }

    /// Line `step` from `node` and the search below it: (violation found, points it arrived at).
    fn visit(&mut self, node: &Node, k: u32, last: Option<Hit>, bound: u32, step: Step) -> (bool, u16) {
        let hit = if self.cfg.por && !(self.cfg.symmetry && self.cfg.hashing) { tlb_hit(&node.m, &step) } else { None };
        if let (Some(a), Some(b)) = (&hit, &last) {
            if commutes_below(a, b) {
                self.stats.por_skipped += 1;
                return (false, 0);
            }
        }
        let mut child = self.scratch[k as usize].take().unwrap_or_else(|| Node { m: node.m.clone(), j: node.j.clone() });
        copy_into(&mut child, node);
        let r = self.visit_child(&mut child, k, hit, bound, step);
        self.scratch[k as usize] = Some(child);
        r
    }

    fn visit_child(&mut self, child: &mut Node, k: u32, hit: Option<Hit>, bound: u32, step: Step) -> (bool, u16) {
        self.stats.generated += 1;
        self.stats.generated_last += 1;
        self.tick += 1;
        if self.tick & 0x3fff == 0 {
            self.poll();
        }
        match exec_line(child, step, k + 1) {
            Exec::Inapplicable => {
                self.stats.generated -= 1;
                self.stats.generated_last -= 1;
                return (false, 0);
            }
            Exec::Done(Some(v)) => {
                let mut p = self.path.clone();
                p.push(step);
                if let Some(b) = self.cfg.base {
                    if trace(b, child.m.hw, &p).1.is_some() {
                        self.stats.shared += 1;
                        return (false, 0);
                    }
                }
                self.witness = Some((p, v));
                return (true, 0);
            }
            Exec::Done(None) => {}
        }
        let arrived = child.m.scratch.passed;
        // An `until` line that completed is the plain line again.
        if step.until.is_some() && child.m.cpus[step.cpu as usize].kop.is_none() {
            return (false, arrived);
        }
        if k + 1 >= bound {
            return (false, arrived);
        }
        let left = (bound - k - 1) as u8;
        // A paused `until` line spends a stop (its completion ended the branch above).
        let stopped = step.until.is_some();
        if self.cfg.hashing {
            let mut h = self.canon.hash(&child.m, &child.j);
            if self.cfg.stops.is_some() {
                let after = self.stops_left - stopped as u32;
                h = h.wrapping_add((after as u128 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835));
            }
            match self.table.get(&h) {
                Some(&r) if r >= left => {
                    self.stats.hash_hits += 1;
                    return (false, arrived);
                }
                Some(_) => {
                    self.table.insert(h, left);
                }
                None => {
                    if self.table.len() < self.cfg.max_table {
                        self.table.insert(h, left);
                    }
                }
            }
        }
        self.path.push(step);
        self.stops_left -= stopped as u32;
        let f = self.dfs(child, k + 1, hit, bound);
        self.stops_left += stopped as u32;
        self.path.pop();
        (f, arrived)
    }
}

/// Explore every program of up to `cfg.depth` lines under `kernel` on `hw`. `progress` is
/// called every 16k lines and after each bound; returning false stops the search (what the
/// completed bounds proved stays in `stats.completed`).
/// `prefix`: lines run first (from the initial state); the bound counts the lines after it.
/// Err: a prefix line is inapplicable or ends in a violation (its line number, 1-based).
pub fn explore(
    kernel: &'static Kernel,
    hw: Hw,
    cfg: &Config,
    prefix: &[Step],
    progress: &mut dyn FnMut(&Stats) -> bool,
) -> Result<Explored, String> {
    let mut root = Node { m: Machine::new(hw, kernel), j: Lin::new() };
    for (i, &st) in prefix.iter().enumerate() {
        match exec_line(&mut root, st, i as u32 + 1) {
            Exec::Inapplicable => return Err(format!("prefix line {}: not applicable: {st}", i + 1)),
            Exec::Done(Some(v)) => return Err(format!("prefix line {}: already a violation ({})", i + 1, v.kind.name())),
            Exec::Done(None) => {}
        }
    }
    let base = prefix.len() as u32;
    let mut s = Search {
        cfg,
        canon: Canon::with_symmetry(cfg.domain.vm, cfg.symmetry),
        table: Table::default(),
        stats: Stats::default(),
        path: prefix.to_vec(),
        witness: None,
        start: Instant::now(),
        stop: false,
        tick: 0,
        progress,
        cands: vec![Vec::new(); (base + cfg.depth) as usize + 1],
        scratch: (0..=base + cfg.depth).map(|_| None).collect(),
        stops_left: cfg.stops.unwrap_or(u32::MAX),
    };
    for bound in cfg.first_bound.clamp(1, cfg.depth)..=cfg.depth {
        s.stats.bound = bound;
        s.stats.generated_last = 0;
        s.table.clear();
        let found = s.dfs(&root, base, None, base + bound);
        s.poll();
        if found {
            break;
        }
        if s.stop {
            break;
        }
        s.stats.completed = bound;
        s.poll();
        if s.stop {
            break;
        }
    }
    s.stats.elapsed_s = s.start.elapsed().as_secs_f64();
    s.stats.distinct = s.table.len() as u64;
    let stopped = s.witness.is_none() && s.stats.completed < cfg.depth;
    Ok(Explored { stats: s.stats, witness: s.witness, stopped })
}

/// The trace of `steps` as `run` prints it (each line with its outcome).
pub fn trace(kernel: &'static Kernel, hw: Hw, steps: &[Step]) -> (Vec<Observed>, Option<Violation>) {
    let prog = crate::program::Program {
        steps: steps.to_vec(),
        asserts: vec![None; steps.len()],
        lines: vec![0; steps.len()],
        ..Default::default()
    };
    match crate::exec::run(crate::exec::Source::Text(&prog), hw, kernel) {
        Ok(r) => (r.observed, r.violation),
        Err(_) => (Vec::new(), None),
    }
}

#[cfg(test)]
#[path = "explore_tests.rs"]
mod tests;
