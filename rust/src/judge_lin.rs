//! The linearizability judge (SPEC §4.1): interleaved programs judged against the sequential
//! contract of `judge.rs` by searching the orders of the operations in flight.
//!
//! The rule as pinned in docs/readings.md (R1-R4): wake reports are checked in real time, with
//! no order (R1); an order replays the operations through the contract, and the first wakeup
//! after a sleep owes the sleeper a wake named on some line between the sleep's start and that
//! wakeup's completion (R2); the violating line is the first with no valid order (R3); its kind
//! is the most specific over the orders valid before it, each classified as a sequential step
//! (R4).

use super::footprint::Footprint;
use super::{rank, value_kind, Judge, Kind, Violation};
use crate::program::{Observed, Op, Outcome, Step};

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
pub(in crate::judge) struct HOp {
    pub(in crate::judge) step: Step,
    pub(in crate::judge) actor: Option<(u32, u32)>,
    pub(in crate::judge) start: u32,
    /// Line where it completed (None: pending) and its outcome.
    pub(in crate::judge) end: Option<u32>,
    pub(in crate::judge) outcome: Outcome,
    /// What placing it reads and writes, taken from the fast path's state when it completed
    /// (`UNKNOWN` until then, or when the fast path had no single state).
    pub(in crate::judge) fp: Footprint,
}

/// Node budget of one search (a program of at most 64 lines stays far below it).
const SEARCH_BUDGET: u64 = 2_000_000;

/// How a search treats failures: `Valid` prunes every one; `Classify(l)` lets the value of the
/// op completing at `l` and every obligation not due before `l` fail, recording them (R4).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(in crate::judge) enum Mode {
    Valid,
    Classify(u32),
}

/// What went wrong along one order in `Mode::Classify`: the value at L, and an owed wake.
#[derive(Clone, Default)]
pub(in crate::judge) struct Soft {
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
    pub(in crate::judge) cands: Vec<Judge>,
    pub(in crate::judge) window: Vec<HOp>,
    /// Index in `window` of the op in flight on each CPU.
    pub(in crate::judge) open: [Option<usize>; 8],
    /// The fast path, kept as the window grows: each candidate state with the window's
    /// completed ops placed in completion order (those orders still valid). Completions come
    /// in line order, so a completing op is placed last: one `place` per line, not a replay
    /// of the window.
    pub(in crate::judge) fast: Vec<Judge>,
    /// Every wake named since the window opened: (line, thread).
    pub(in crate::judge) reports: Vec<(u32, (u32, u32))>,
    /// R1's real-time sleep queue while the window is open: threads that may be named.
    pub(in crate::judge) asleep: Vec<(u32, u32)>,
    /// A §3.2 line has been seen: from here on a step's kind is SPEC §4.1's most specific
    /// failure (readings R4); before it, the sequential judgement's order.
    pub(in crate::judge) literal: bool,
    pub(in crate::judge) budget: u64,
}

impl Lin {
    pub fn new() -> Lin {
        Lin { cands: vec![Judge::new()], window: Vec::new(), open: [None; 8], fast: Vec::new(), reports: Vec::new(), asleep: Vec::new(), literal: false, budget: 0 }
    }

    /// Whether a §3.2 line has been seen (`literal`): the one part of the judge's state an
    /// `until` line that completes sets and its plain line does not. It decides a violation's
    /// kind, never whether there is one (`Judge::check_mode`).
    pub fn literal(&self) -> bool {
        self.literal
    }

    #[cfg(test)]
    pub fn set_literal(&mut self, v: bool) {
        self.literal = v;
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
                self.window.push(HOp { step, actor, start: n, end: Some(n), outcome: obs.outcome, fp: Footprint::UNKNOWN });
                (obs.woke, Some(last), Some(last))
            }
            Event::Start { cpu, step, actor, woke } => {
                self.open[cpu as usize] = Some(last);
                self.window.push(HOp { step, actor, start: n, end: None, outcome: Outcome::Paused, fp: Footprint::UNKNOWN });
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
            if let [s] = &self.fast[..] {
                let h = &self.window[i];
                self.window[i].fp = s.footprint(&h.step, h.actor);
            }
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
        for h in &mut self.window {
            h.fp = Footprint::UNKNOWN; // taken from the fast path before the settling
        }
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
    pub(in crate::judge) fn all_ends(&mut self, n: u32) -> Vec<Judge> {
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
            let alone = self.closes_alone();
            #[cfg(test)]
            if alone && tests::CLOSE_CHECK.get() {
                self.check_close_alone(n);
            }
            let mut ends = if alone { std::mem::take(&mut self.fast) } else { self.all_ends(n) };
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
    if v.len() < 2 {
        return;
    }
    let mut seen = foldhash::HashSet::default();
    v.retain(|j| seen.insert(j.state_hash()));
}


#[cfg(test)]
#[path = "judge_lin_tests.rs"]
pub(in crate::judge) mod tests;
