//! PCT, probabilistic concurrency testing (Burckhardt, Kothari, Musuvathi, Nagarakatte,
//! ASPLOS 2010), as a random loop over the model: `fuzz --schedule pct`, `bench --zoo --configs
//! pct`.
//!
//! Each CPU is a thread with a program of its own: a sequence of random choices, each read at
//! the CPU's turn as one of the lines it may run then (explore's line domain, state-aware as the
//! byte form is). The scheduler is PCT's: the CPUs get distinct random priorities `d..d+n-1`,
//! and `d-1` change points are drawn among the line numbers `1..=k`; at every turn the enabled
//! CPU with the highest priority runs its next line (a CPU with an op in flight runs `resume`;
//! one waiting for a lock held elsewhere is not enabled). The line at the j-th change point is
//! preempted — it runs `until` one of the yield points it arrives at (drawn among them), if it
//! arrives at one (a preemption inside the kernel operation, docs/contract.md §3.2) — and its
//! CPU's priority drops to `d-j`, below every initial one.
//!
//! The bound (PCT's theorem 1, with the stop's point part of the preemption): for the CPUs'
//! choice sequences drawn, with n CPUs and at most k lines, a violation that needs d ordering
//! constraints — d-1 of them preemptions, each at a given line and point — is met by one run
//! with probability at least 1/(n·k^(d-1)·r^(d-1)), r the most points a line arrives at (at
//! most 4 here). Random line-by-line scheduling has no such floor.

use crate::explore::{candidates, exec_line, Domain, Exec, Node};
use crate::hw::Hw;
use crate::judge::{Lin, Violation};
use crate::kernel::Kernel;
use crate::machine::Machine;
use crate::program::{Op, Point, Step, FILE0, POINTS, SHM};

/// SplitMix64, the mutator's (deterministic: the same seed, the same programs).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        crate::mutate::splitmix64(&mut self.0)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// PCT's parameters: the bug depth aimed at and each CPU's most lines.
#[derive(Clone, Copy, Debug)]
pub struct Params {
    pub depth: u32,
    pub max_lines_per_cpu: u32,
}

impl Default for Params {
    fn default() -> Self {
        Params { depth: 3, max_lines_per_cpu: 6 }
    }
}

/// The lines a CPU chooses among: explore's domain over the pages each kind of mapping has
/// (private anonymous, file-backed COW, shared, the shared data file), values 1 and 2, SPEC
/// §3.4's lines included.
fn domain() -> Domain {
    Domain { pages: vec![0, 4, SHM, FILE0], words: vec![0], values: vec![1, 2], vm: true }
}

/// One PCT run: the lines it ran and the first violation, if any.
pub fn run_one(kernel: &'static Kernel, hw: Hw, p: Params, rng: &mut Rng) -> (Vec<Step>, Option<Violation>) {
    let n = hw.cpus as usize;
    let d = p.depth.max(1) as usize;
    let lens: Vec<usize> = (0..n).map(|_| 1 + rng.below(p.max_lines_per_cpu.max(1) as usize)).collect();
    let k: usize = lens.iter().sum();
    let choices: Vec<Vec<u64>> = lens.iter().map(|&l| (0..l).map(|_| rng.next()).collect()).collect();
    // Priorities d..d+n-1 in a random order (Fisher-Yates).
    let mut prio: Vec<usize> = (0..n).map(|c| d + c).collect();
    for i in (1..n).rev() {
        prio.swap(i, rng.below(i + 1));
    }
    // d-1 change points among the line numbers 1..=k (distinct when k allows).
    let mut change: Vec<usize> = Vec::with_capacity(d - 1);
    while change.len() + 1 < d {
        let c = 1 + rng.below(k);
        if !change.contains(&c) || change.len() >= k {
            change.push(c);
        }
    }
    let dom = domain();
    let mut node = Node { m: Machine::new(hw, kernel), j: Lin::new() };
    let mut pos = vec![0usize; n];
    let mut steps = Vec::with_capacity(k + 2 * n);
    let mut cands = Vec::new();
    let mut mine = Vec::new();
    // k lines of choices plus the resumes they need: bounded, since a run may deadlock-free
    // spin only through resumes of ops that make progress.
    while steps.len() < 4 * k + 4 * n {
        let enabled = |c: usize, m: &Machine| match &m.cpus[c].kop {
            Some(_) => m.applicable(&Step { cpu: c as u8, op: Op::Resume, until: None }),
            None => pos[c] < lens[c],
        };
        let Some(c) = (0..n).filter(|&c| enabled(c, &node.m)).max_by_key(|&c| prio[c]) else { break };
        let mut line = if node.m.cpus[c].kop.is_some() {
            Step { cpu: c as u8, op: Op::Resume, until: None }
        } else {
            let choice = choices[c][pos[c]];
            pos[c] += 1;
            match decode_for(&node.m, c as u8, choice) {
                Some(s) => s,
                None => {
                    candidates(&node.m, &dom, false, &mut cands);
                    mine.clear();
                    mine.extend(cands.iter().copied().filter(|s| s.cpu as usize == c && node.m.applicable(s)));
                    if mine.is_empty() {
                        continue;
                    }
                    mine[(choice >> 1) as usize % mine.len()]
                }
            }
        };
        let at = steps.len() + 1;
        if let Some(j) = change.iter().position(|&x| x == at) {
            line.until = stop_point(&node.m, line, rng.next());
            prio[c] = d - 1 - j;
        }
        steps.push(line);
        match exec_line(&mut node, line, at as u32) {
            Exec::Inapplicable => {
                steps.pop();
            }
            Exec::Done(Some(v)) => return (steps, Some(v)),
            Exec::Done(None) => {}
        }
    }
    (steps, None)
}

/// The line a CPU's choice names now: the choice's bytes read as one record of the byte form
/// (codec.rs, state-aware: a switch to a thread of a process running elsewhere, the address of
/// an op in flight elsewhere, umtx_sleep's current word — what makes its random lines races),
/// with the CPU field set so that the decoder picks `cpu`; no `until` (PCT decides the stops).
/// None when no CPU field gives a line of `cpu`'s own (then a line of the domain is drawn).
fn decode_for(m: &Machine, cpu: u8, choice: u64) -> Option<Step> {
    let b = choice.to_le_bytes();
    // Half the lines a load or a store (a race is seen by an access), as the mutator's new lines.
    let op = if b[0] & 0x80 == 0 { 1 + (b[0] & 1) } else { b[0] & 15 };
    let pw = if b[1] % 5 < 3 { 0x80 | b[1] } else { b[1] & 0x7f };
    let rec = |sel: u8| [sel << 4 | op, pw, b[2] % 0xff, b[3] % 0xff, 0];
    (0..8).find_map(|sel| {
        let r = rec(sel);
        let s = crate::codec::Decoder::new(&r).next_step(m)?;
        (s.cpu == cpu && !matches!(s.op, Op::Resume | Op::Ipi) && m.applicable(&s)).then_some(s)
    })
}

/// Where the line at a change point stops: one of the yield points it arrives at if run now
/// (a dry run on a copy; `wait` aside), picked by `choice` — none if it arrives at none.
fn stop_point(m: &Machine, line: Step, choice: u64) -> Option<Point> {
    let points = match line.op {
        Op::Resume => m.points_of(&m.cpus[line.cpu as usize].kop.as_ref()?.op),
        Op::Switch(_) => return Some(Point::Enter),
        op => m.points_of(&op),
    } & !Point::Wait.bit();
    if points == 0 {
        return None;
    }
    let mut c = m.clone();
    c.scratch.passed = 0;
    c.step(line).ok()?;
    let passed = c.scratch.passed & points;
    let n = passed.count_ones() as u64;
    (n > 0).then(|| POINTS.iter().copied().filter(|p| passed & p.bit() != 0).nth((choice % n) as usize).unwrap())
}

/// PCT runs for `budget_s` seconds (checking the clock every 64 runs), on each of `hws` in turn: the time to the first
/// violation (None: none) and the runs made. Deterministic in `seed` but for where the clock
/// stops it.
pub fn until_violation(kernel: &'static Kernel, hws: &[Hw], p: Params, seed: u64, budget_s: f64) -> (Option<(f64, Vec<Step>, Violation, Hw)>, u64) {
    let mut rng = Rng(seed ^ 0x5043_545f_7363_6864);
    let start = std::time::Instant::now();
    let mut runs = 0u64;
    loop {
        if runs % 64 == 0 && start.elapsed().as_secs_f64() > budget_s {
            return (None, runs);
        }
        let hw = hws[runs as usize % hws.len()];
        runs += 1;
        let (steps, v) = run_one(kernel, hw, p, &mut rng);
        if let Some(v) = v {
            return (Some((start.elapsed().as_secs_f64(), steps, v, hw)), runs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hw::HwSpec;

    fn hw(s: &str) -> Hw {
        HwSpec::parse(s).unwrap().resolve()
    }

    /// The same seed gives the same runs; every program it prints replays to its verdict.
    #[test]
    fn runs_are_deterministic_and_replay() {
        let k = crate::kernel::by_name("fixed").unwrap();
        let (mut a, mut b) = (Rng(7), Rng(7));
        for _ in 0..300 {
            let (sa, va) = run_one(k, hw("cpus=3"), Params::default(), &mut a);
            let (sb, vb) = run_one(k, hw("cpus=3"), Params::default(), &mut b);
            assert_eq!(sa, sb);
            assert_eq!(va.is_some(), vb.is_some());
            assert!(va.is_none(), "fixed is clean: {:?}", sa.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            let (obs, v) = crate::explore::trace(k, hw("cpus=3"), &sa);
            assert_eq!(obs.len(), sa.len());
            assert!(v.is_none());
        }
    }

    /// A change point preempts: over many runs, lines with `until` that leave an op in flight
    /// appear, and only as many per run as there are change points (d-1) plus resumes' own.
    #[test]
    fn change_points_stop_ops_in_flight() {
        let k = crate::kernel::by_name("fixed").unwrap();
        let mut r = Rng(11);
        let mut stopped = 0;
        for _ in 0..400 {
            let (steps, _) = run_one(k, hw("cpus=2"), Params { depth: 3, max_lines_per_cpu: 6 }, &mut r);
            let n = steps.iter().filter(|s| s.until.is_some()).count();
            assert!(n <= 2, "{n} stops with 2 change points");
            assert!(steps.iter().filter(|s| s.until.is_some()).all(|s| s.until != Some(Point::Wait)));
            stopped += n;
        }
        assert!(stopped > 50, "{stopped}");
    }

    /// A depth-1 PCT has no change point: no `until` at all.
    #[test]
    fn depth_one_never_stops() {
        let k = crate::kernel::by_name("fixed").unwrap();
        let mut r = Rng(3);
        for _ in 0..200 {
            let (steps, _) = run_one(k, hw("cpus=2"), Params { depth: 1, max_lines_per_cpu: 6 }, &mut r);
            assert!(steps.iter().all(|s| s.until.is_none()));
        }
    }
}
