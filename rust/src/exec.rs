//! Running a program: each step executed on the machine, judged against the contract, then
//! the internal invariants checked. The first violation ends the run. A model assertion
//! (a Rust panic) becomes a `panic` violation at the step that raised it.

use crate::codec::Decoder;
use crate::features::{situation, Features};
use crate::hw::{Hw, HwSpec};
use crate::judge::{Event, Kind, Lin, Violation};
use crate::program::{Op, Outcome};
use crate::kernel::Kernel;
use crate::machine::Machine;
use crate::program::{Assertion, InputError, Observed, Program, Step};
use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};

#[derive(Clone, Debug)]
pub struct Report {
    pub hw: Hw,
    pub kernel: &'static Kernel,
    /// Steps executed (including the one that panicked, if any).
    pub steps: Vec<Step>,
    /// One per executed step, except a step that panicked.
    pub observed: Vec<Observed>,
    pub violation: Option<Violation>,
    /// (step number, assertion, observed) for each `-> X` that did not match.
    pub assert_failures: Vec<(u32, Assertion, Observed)>,
    /// Steps completed without violation.
    pub steps_run: u32,
    /// Only with [`run_past_internal`]: the first core-only violation (an internal invariant),
    /// which did not end the run.
    pub internal: Option<Violation>,
    /// At the end of the run, per CPU with an op in flight: (cpu, op, phase, point, lock
    /// waited for) — see `Machine::inflight_info`.
    pub in_flight: Vec<(u8, String, String, &'static str, Option<String>)>,
    /// At the end: invalidations pending, (target cpu, address space, page, initiating cpu).
    pub pending_ipis: Vec<(u8, u32, u8, u8)>,
}

thread_local! {
    pub(crate) static PANIC_MSG: RefCell<Option<String>> = const { RefCell::new(None) };
    /// One machine and judge per thread, reset for each run (allocation was a tenth of the
    /// fuzzing path's time).
    static POOL: RefCell<Option<(Machine, Lin)>> = const { RefCell::new(None) };
    /// Set by [`run_past_internal`] for one run.
    static PAST_INTERNAL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Witness search (issue 15): as [`run`], but an internal-invariant violation is recorded in
/// `Report::internal` and the run goes on until the first user-visible violation (or a model
/// assertion), which is `Report::violation`. Invariants are not checked after the first break.
pub fn run_past_internal(src: Source, hw: Hw, kernel: &'static Kernel) -> Result<Report, InputError> {
    with_past_internal(true, || run_opts(src, hw, kernel, 0, true, None))
}

/// Run `f` with the witness-search mode of [`run_past_internal`] set to `on`.
pub fn with_past_internal<T>(on: bool, f: impl FnOnce() -> T) -> T {
    PAST_INTERNAL.with(|x| x.set(on));
    let r = f();
    PAST_INTERNAL.with(|x| x.set(false));
    r
}

/// Model assertions are findings, not crashes: keep their message quiet and for the report.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let msg = if let Some(s) = info.payload().downcast_ref::<&str>() {
            s.to_string()
        } else if let Some(s) = info.payload().downcast_ref::<String>() {
            s.clone()
        } else {
            "model assertion failed".to_string()
        };
        let loc = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        PANIC_MSG.with(|m| *m.borrow_mut() = Some(format!("{msg}{loc}")));
    }));
}

/// Where steps come from: a parsed text program, or bytes decoded against the live state.
pub enum Source<'a> {
    Text(&'a Program),
    Bytes(Decoder<'a>),
}

impl Source<'_> {
    /// Line `idx` (a byte form decodes it in the state `m` is in), None at the end.
    #[inline(always)]
    fn next(&mut self, idx: usize, m: &Machine) -> Option<Step> {
        match self {
            Source::Text(p) => p.steps.get(idx).copied(),
            Source::Bytes(d) => d.next_step(m),
        }
    }
}

/// The internal invariants after line `n`: the violation that ends the run, if one breaks
/// (with `past_internal`, the first is recorded in `report.internal` and the run goes on).
#[inline(always)]
fn check_internal(m: &mut Machine, report: &mut Report, n: u32, past_internal: bool) -> Option<Violation> {
    if report.internal.is_some() {
        return None;
    }
    let (kind, msg) = m.check_invariants()?;
    let v = Violation { kind, step: n, expected: "coherent machine".into(), observed: msg };
    if past_internal {
        report.internal = Some(v);
        return None;
    }
    Some(v)
}

/// Execute and judge. Inapplicable text steps are input errors (with their line).
pub fn run(src: Source, hw: Hw, kernel: &'static Kernel) -> Result<Report, InputError> {
    run_opts(src, hw, kernel, 0, true, None)
}

/// `panic_at`: self-test of the panic path (0: never).
/// `record`: keep steps and outcomes in the report (the fuzzing path needs only the verdict).
/// `features`: where semantic coverage goes (None: not computed at all).
pub fn run_opts(
    src: Source,
    hw: Hw,
    kernel: &'static Kernel,
    panic_at: u32,
    record: bool,
    mut features: Option<&mut Features>,
) -> Result<Report, InputError> {
    run_observed(src, hw, kernel, panic_at, record, features.take(), &mut |_| {})
}

impl Report {
    fn empty(hw: Hw, kernel: &'static Kernel) -> Report {
        Report {
            hw,
            kernel,
            steps: Vec::new(),
            observed: Vec::new(),
            violation: None,
            assert_failures: Vec::new(),
            steps_run: 0,
            internal: None,
            in_flight: Vec::new(),
            pending_ipis: Vec::new(),
        }
    }

    /// The ops in flight and the invalidations pending at the end of the run.
    fn end_state(&mut self, m: &Machine) {
        for c in 0..m.cpus.len() {
            if let Some((op, ph, pt, w)) = m.inflight_info(c) {
                self.in_flight.push((c as u8, op, ph, pt, w));
            }
            for (a, va, o) in m.pending_ipis(c) {
                self.pending_ipis.push((c as u8, a, va, o));
            }
        }
    }

    /// A model assertion ended the run at `current` (the step running, if not recorded).
    fn panicked(&mut self, current: Option<Step>) {
        if let Some(st) = current {
            self.steps.push(st);
        }
        let msg = PANIC_MSG.with(|m| m.borrow_mut().take()).unwrap_or_else(|| "model assertion failed".into());
        self.violation = Some(Violation {
            kind: Kind::Panic,
            step: self.steps_run + 1,
            expected: "no model assertion".into(),
            observed: msg,
        });
    }
}

/// This thread's machine and judge, reset for a run (made on first use).
fn pooled(hw: Hw, kernel: &'static Kernel) -> (Machine, Lin) {
    match POOL.with(|p| p.borrow_mut().take()) {
        Some((mut m, mut j)) => {
            m.reset(hw, kernel);
            j.reset();
            (m, j)
        }
        None => (Machine::new(hw, kernel), Lin::new()),
    }
}

/// Judge line `n` (`step` by `actor`, which showed `obs`): sequentially while no op is in flight
/// anywhere (as before §3.2), else as an event of the linearizability judge.
#[inline(always)]
fn judge_line(judge: &mut Lin, n: u32, step: Step, actor: Option<(u32, u32)>, obs: &Observed) -> Option<Violation> {
    let actor = if matches!(step.op, Op::Switch(_) | Op::Ipi) { None } else { actor };
    let paused = obs.outcome == Outcome::Paused;
    if judge.sequential() && !paused && !matches!(step.op, Op::Resume) {
        return judge.check_plain(n, &step, actor, obs);
    }
    let ev = match step.op {
        Op::Resume if paused => Event::Cont { cpu: step.cpu, woke: obs.woke.clone() },
        Op::Resume => Event::End { cpu: step.cpu, obs: obs.clone() },
        _ if paused => Event::Start { cpu: step.cpu, step, actor, woke: obs.woke.clone() },
        _ => Event::Plain { step, actor, obs: obs.clone() },
    };
    judge.line(n, ev)
}

/// The run ends at `step` with violation `v`: the step and its observation are kept.
fn stop_at(report: &mut Report, record: bool, current: &mut Option<Step>, step: Step, obs: Observed, v: Violation) {
    if !record {
        report.steps.push(step);
        *current = None;
    }
    report.observed.push(obs);
    report.violation = Some(v);
}

/// As `run_opts`, calling `after` with the machine after every executed step.
pub fn run_observed(
    mut src: Source,
    hw: Hw,
    kernel: &'static Kernel,
    panic_at: u32,
    record: bool,
    mut features: Option<&mut Features>,
    after: &mut dyn FnMut(&Machine),
) -> Result<Report, InputError> {
    let mut report = Report::empty(hw, kernel);
    let past_internal = PAST_INTERNAL.with(|f| f.get());
    let mut input_error: Option<InputError> = None;
    let (mut m, mut judge) = pooled(hw, kernel);
    if panic_at != 0 {
        m.selftest.panic_at = panic_at; // else the self-test hook's value from reset (usually 0)
    }
    // Without `record`, `steps` keeps only a step that ended the run (violation or model
    // assertion): the step being run is held here and materialised only then.
    let mut current: Option<Step> = None;
    let res = catch_unwind(AssertUnwindSafe(|| {
        let m = &mut m;
        let judge = &mut judge;
        let mut idx = 0usize;
        loop {
            let Some(step) = src.next(idx, m) else { break };
            let n = idx as u32 + 1;
            let actor = m.cpus.get(step.cpu as usize).and_then(|c| c.running);
            if record {
                report.steps.push(step);
            } else {
                current = Some(step);
            }
            let sit = features.as_ref().map(|_| situation(m, &step));
            let obs = match m.step(step) {
                Ok(o) => o,
                Err(e) => {
                    if record {
                        report.steps.pop();
                    }
                    current = None;
                    report.steps_run = idx as u32;
                    let line = if let Source::Text(p) = &src { p.line_of(idx) } else { 0 };
                    input_error = Some(InputError { line, msg: e.0 });
                    return;
                }
            };
            if let (Some(f), Some(s)) = (features.as_deref_mut(), sit) {
                f.record(s, &obs);
                f.record_reached(m, &step);
            }
            after(m);
            if let Some(v) = judge_line(judge, n, step, actor, &obs) {
                stop_at(&mut report, record, &mut current, step, obs, v);
                return;
            }
            if let Some(v) = check_internal(m, &mut report, n, past_internal) {
                stop_at(&mut report, record, &mut current, step, obs, v);
                return;
            }
            if let Source::Text(p) = &src {
                match p.asserts.get(idx) {
                    Some(Some(a)) if !a.matches(&obs) => report.assert_failures.push((n, a.clone(), obs.clone())),
                    _ => {}
                }
            }
            if record {
                report.observed.push(obs);
            } else {
                current = None;
            }
            idx += 1;
            report.steps_run = idx as u32;
        }
    }));
    if record && res.is_ok() {
        report.end_state(&m);
    }
    POOL.with(|p| *p.borrow_mut() = Some((m, judge)));
    if res.is_err() {
        report.panicked(current);
    }
    match input_error {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

/// The effective hardware: program header (or bytes header) overlaid by the command line.
pub fn effective_hw(header: HwSpec, cli: HwSpec) -> Hw {
    header.overlay(cli).resolve()
}

/// Only the verdict, for the fuzzing hot path: 0 clean, else the kind's code.
pub fn fuzz_verdict(data: &[u8], kernel: &'static Kernel, cli: HwSpec, features: Option<&mut Features>) -> (u32, u32) {
    let mut d = Decoder::new(data);
    let hw = effective_hw(d.header(), cli);
    match run_opts(Source::Bytes(d), hw, kernel, 0, false, features) {
        Ok(r) => r.violation.map_or((0, 0), |v| (v.kind.code(), v.step)),
        Err(_) => (Kind::Panic.code(), 0),
    }
}
