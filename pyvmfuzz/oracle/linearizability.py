"""Judging interleaved operations: linearizability (SPEC §4.1), over the sequential contract.

Written from SPEC §2, §3.2, §4 and §4.1 and /work/staging/SYNTAX.md only -- never from the Rust
core. A trace may hold the lines of SPEC §3.2:

    cpu1 mprotect data0 r until ipi_wait -> paused     # an op starts and stays in flight
    cpu1 mprotect data0 r -> paused                    # a plain line stopped at `wait`
    cpu1 resume until access -> paused                 # still in flight
    cpu1 resume -> ok                                  # the op completes with this outcome
    cpu0 ipi -> ok                                     # not an operation

Every operation has an interval of steps, from the line that starts it to the line where it
completes (pending if none). The run is correct up to line L when some total order of the ops
completed by L, plus any subset of the pending ones, respects real time and, replayed through
`contract.Oracle`, gives each completed op its observed outcome, with the wake rules applied where
each op takes effect. The search walks the lines in order keeping every distinct *configuration*
reachable so far (the contract's state, which pending ops are already linearized and the outcome
each got there, which sleepers a linearized `umtx_wakeup` still owes a reported wake, and which op
put each blocked thread to sleep) -- Porcupine / Wing-Gong memoisation on (linearized set,
state). At line s a configuration may linearize any op that has started and is not yet
linearized, in any order, and must have linearized the op that completes at s. Choosing a point
inside each op's interval is the same as choosing a real-time-respecting total order (assign each
op, in order, max(its start, the previous point)), so nothing is lost by working line by line.

Wake lists are line events: the threads a line reports woken are adopted after the ops that line
linearizes (as the sequential oracle adopts them after the op's effect); a thread may be reported
woken only while blocked by a sleep that completed on an earlier line. A sleeper that a
linearized `umtx_wakeup` had to wake must be reported woken by the line where that wakeup
completes, else `lost-wakeup` there.

When no configuration survives line L, the line is judged again letting L's own observations
(its op's outcome, its wake list, the wakes due by L) mismatch; the violation's kind is the most
specific one some surviving order gives: `stale-read`/`protection`, then `lost-wakeup`, then
`outcome` (SPEC §4.1). Within one order a line's kind is the sequential one (outcome kinds, then
a bad wake list, then lost-wakeup), so a trace without §3.2 lines -- one order only -- is judged
exactly as `contract.judge` judges it.

Entry points: `judge(trace_text, os=None) -> Violation | None`, `parse(trace_text) -> History`.
Raises `TraceError` for a malformed line or one that cannot apply in any order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pyvmfuzz.oracle.contract import (
    MAX_CPUS, PERSONALITIES, Oracle, Op, TraceError, Violation, format_outcome, parse_op,
    parse_thread, thread_name, trace_lines,
)

# SPEC §3.2's yield points (the core validates which op has which; the oracle needs none)
POINTS = ("cow", "pmap_enter", "ipi_wait", "access", "sleep", "retry", "enter", "wait")
PAUSED = "paused"

_CPU_RESUME = re.compile(r"cpu([0-9]+)")

# most specific first (SPEC §4.1): the kinds a line's own observations can get
_RANK = {"stale-read": 0, "protection": 0, "lost-wakeup": 1, "outcome": 2}


@dataclass
class HistOp:
    """One operation: its interval in steps and its observed outcome (None while pending)."""
    id: int
    cpu: int
    text: str                      # `cpuN ACTION ARGS` without `until`
    op: Op
    start: int                     # step of the line that starts it
    end: int | None = None         # step of the line where it completes
    outcome: str | None = None


@dataclass
class Line:
    """One op line of the trace (steps count every op line: op, resume and ipi lines)."""
    step: int
    lineno: int
    cpu: int
    kind: str                      # "op" | "resume" | "ipi" | "flush"
    outcome: str
    woke: list[tuple[int, int]]
    observed: str                  # outcome and wake list as written (trace syntax)
    starts: int | None = None      # id of the op this line starts
    completes: int | None = None   # id of the op this line completes


@dataclass
class History:
    cpus: int
    os: str
    lines: list[Line] = field(default_factory=list)
    ops: list[HistOp] = field(default_factory=list)
    interleaved: bool = False      # any §3.2 line (until, resume, ipi, a paused plain line)


# ---------------------------------------------------------------- parsing

def parse(text: str) -> History:
    """The trace as lines and op intervals; form is checked before anything is judged.

    Header lines: `hw`, `kernel`, `expect`, `os linux|dragonfly` (SPEC §2.1, §4.2). Raises
    TraceError naming the text line for a malformed line, an op started on a CPU that has one
    in flight, or a `resume` with nothing in flight.
    """
    cpus, raw_lines, osname = trace_lines(text)
    h = History(cpus, osname)
    inflight: dict[int, int] = {}           # cpu -> op id
    flushable: dict[int, bool] = {}         # cpu -> its last line completed a PTE-changing op
    for step, (lineno, op_text, outcome, woke_txt) in enumerate(raw_lines, 1):
        try:
            woke = [parse_thread(w.strip()) for w in woke_txt]
        except ValueError as e:
            raise TraceError(f"line {lineno}: {e}") from None
        observed = outcome + (" woke " + ",".join(map(thread_name, woke)) if woke else "")
        toks = op_text.split()
        until = None
        if len(toks) >= 2 and toks[-2] == "until":
            until = toks[-1]
            if until not in POINTS:
                raise TraceError(f"line {lineno}: unknown yield point {until!r} "
                                 f"(points: {', '.join(POINTS)})")
            toks = toks[:-2]
        m = _CPU_RESUME.fullmatch(toks[0]) if toks else None
        if m and len(toks) == 2 and toks[1] in ("resume", "ipi"):
            cpu = int(m[1])
            if cpu >= cpus:
                raise TraceError(f"line {lineno}: cpu{cpu} beyond the {cpus} CPUs of the header")
            kind = toks[1]
            if kind == "ipi" and until is not None:
                raise TraceError(f"line {lineno}: ipi takes no `until`")
            ln = Line(step, lineno, cpu, kind, outcome, woke, observed)
            h.interleaved = True
            if kind == "resume":
                if cpu not in inflight and flushable.get(cpu):
                    # SPEC §3.3 deferred-flush: a fork/mprotect/madvise completed at its ipi_wait
                    # and left only the wait on its CPU; this `resume` finishes the flush -- not
                    # an operation (like `ipi`, outcome `ok`).
                    ln.kind = "flush"
                    flushable[cpu] = False
                    h.lines.append(ln)
                    continue
                if cpu not in inflight:
                    raise TraceError(f"line {lineno}: not applicable: nothing in flight on cpu{cpu}")
                if outcome != PAUSED:
                    ln.completes = inflight.pop(cpu)
                    flushable[cpu] = h.ops[ln.completes].op.action in ("fork", "mprotect", "madvise")
            h.lines.append(ln)
            continue
        try:
            op = parse_op(" ".join(toks), cpus)
        except ValueError as e:
            raise TraceError(f"line {lineno}: {e}") from None
        if op.cpu in inflight:
            raise TraceError(f"line {lineno}: not applicable: cpu{op.cpu} has an op in flight "
                             f"(only resume and ipi may run there)")
        hop = HistOp(len(h.ops), op.cpu, " ".join(toks), op, step)
        h.ops.append(hop)
        ln = Line(step, lineno, op.cpu, "op", outcome, woke, observed, starts=hop.id)
        if until is not None or outcome == PAUSED:
            h.interleaved = True
        if outcome == PAUSED:
            inflight[op.cpu] = hop.id
        else:
            ln.completes = hop.id
        flushable[op.cpu] = outcome != PAUSED and op.action in ("fork", "mprotect", "madvise")
        h.lines.append(ln)
    for ln in h.lines:
        if ln.completes is not None:
            hop = h.ops[ln.completes]
            hop.end, hop.outcome = ln.step, ln.outcome
    return h


# ---------------------------------------------------------------- configurations

@dataclass
class _Config:
    st: Oracle
    pend: tuple = ()          # sorted (op id, expected outcome) of linearized, not yet completed ops
    owed: frozenset = frozenset()     # (thread, umtx_wakeup op id): a wake still to be reported
    sleeps: frozenset = frozenset()   # (thread, umtx_sleep op id) for every blocked thread
    lin: frozenset = frozenset()      # linearized op ids still in flight at this line

    def key(self):
        return (self.st.fingerprint(), self.pend, self.owed, self.sleeps, self.lin)


@dataclass
class _Diag:
    """What a line's own observations got in one order (only while diagnosing line L)."""
    kind: str | None = None
    expected: str | None = None
    outcome_expected: str | None = None   # the contract's outcome for the line (for wake reports)


class _Judge:
    def __init__(self, h: History):
        self.h = h

    def _linearize(self, c: _Config, hop: HistOp, ln: Line, errors: list,
                   inplace: bool = False) -> _Config | None:
        """c with hop taking effect now; None if hop cannot apply in c's state.
        `inplace`: c is not used again, its state may be changed (the no-choice fast path)."""
        st = c.st if inplace else c.st.clone()
        try:
            actor = st._actor(hop.op, ln.lineno if hop.end == ln.step else self._lineno(hop))
        except TraceError as e:
            joined = _joined_death(st, hop, ln)
            if joined is None:
                errors.append((hop.id, e))
                return None
            # part of the death that already took its thread: its outcome, no other effect
            return _Config(st, tuple(sorted(c.pend + ((hop.id, joined),))), c.owed, c.sleeps,
                           c.lin | {hop.id})
        expected = st._expected(hop.op, actor)
        must = st._must_wake(hop.op, actor)
        st._apply(hop.op, actor, expected)
        owed = set(c.owed) | {(t, hop.id) for t in must}
        sleeps = set(c.sleeps)
        if hop.op.action == "umtx_sleep" and expected == "blocked":
            sleeps.add((actor.name, hop.id))
        # exit and SEGV take a process's threads away: nothing owed to them, nothing to wake
        owed = {(t, w) for t, w in owed if st.thread(t) is not None}
        sleeps = {(t, o) for t, o in sleeps if st.thread(t) is not None}
        return _Config(st, tuple(sorted(c.pend + ((hop.id, expected),))), frozenset(owed),
                       frozenset(sleeps), c.lin | {hop.id})

    def _lineno(self, hop: HistOp) -> int:
        return self.h.lines[hop.start - 1].lineno

    def _finish(self, c: _Config, ln: Line, diag: _Diag | None,
                inplace: bool = False) -> _Config | None:
        """End of line ln for c: the completing op's outcome, the line's wake list, the wakes
        due. Returns the configuration after the line, or None if c fails there (in diagnosis:
        records the kind in `diag` and returns c)."""
        h = self.h
        pend = c.pend
        expected_line = PAUSED
        if ln.kind in ("ipi", "flush"):
            expected_line = "ok"
            if ln.outcome != "ok":
                return self._fail(diag, c, "outcome", "ok")
        if ln.completes is not None:
            hop = h.ops[ln.completes]
            exp = dict(pend)[hop.id]
            pend = tuple(p for p in pend if p[0] != hop.id)
            expected_line = exp
            kind = Oracle._mismatch(hop.op, exp, ln.outcome)
            if kind:
                return self._fail(diag, c, kind, exp)
        elif ln.outcome != PAUSED and ln.kind not in ("ipi", "flush"):
            raise AssertionError("a line that completes nothing is paused")
        st = c.st
        # the wake list: only a thread blocked by a sleep that completed on an earlier line
        sleep_op = {t: o for t, o in c.sleeps}
        bad = []
        for w in ln.woke:
            t = st.thread(w)
            o = sleep_op.get(w)
            if (t is None or t.state != "blocked" or ln.woke.count(w) > 1 or o is None
                    or h.ops[o].end is None or h.ops[o].end >= ln.step):
                bad.append(w)
        if bad:
            good = {w for w in ln.woke if w not in bad}
            return self._fail(diag, c, "outcome", format_outcome(expected_line, good))
        st = st.clone() if ln.woke and not inplace else st
        for w in ln.woke:                     # adopt: spurious or due, it now runs
            t = st.thread(w)
            t.state, t.key = "runnable", None
        woke = set(ln.woke)
        owed = frozenset((t, w) for t, w in c.owed if t not in woke)
        sleeps = frozenset((t, o) for t, o in c.sleeps if t not in woke)
        due = {t for t, w in owed if h.ops[w].end is not None and h.ops[w].end <= ln.step}
        if due:
            return self._fail(diag, c, "lost-wakeup", format_outcome(expected_line, due | woke))
        lin = c.lin - {ln.completes} if ln.completes is not None else c.lin
        return _Config(st, pend, owed, sleeps, lin)

    @staticmethod
    def _fail(diag, c, kind, expected):
        if diag is None:
            return None
        if diag.kind is None or _RANK[kind] < _RANK[diag.kind]:
            diag.kind, diag.expected = kind, expected
        return None

    def line(self, frontier: list[_Config], ln: Line, inflight: set[int],
             diags: list | None = None, errors: list | None = None) -> list[_Config]:
        """Every configuration after line ln. With `diags`, each order that reaches the end of
        the line appends a _Diag with the kind its observations got (None: none)."""
        errors = [] if errors is None else errors
        must = ln.completes
        new: dict = {}
        seen: set = set()
        stack = []
        for c in frontier:
            k = c.key()
            if k not in seen:
                seen.add(k)
                stack.append(c)
        while stack:
            c = stack.pop()
            if must is None or must in c.lin:
                d = _Diag() if diags is not None else None
                after = self._finish(c, ln, d)
                if d is not None:
                    diags.append(d)
                if after is not None:
                    new.setdefault(after.key(), after)
            for oid in sorted(inflight - c.lin, reverse=True):
                c2 = self._linearize(c, self.h.ops[oid], ln, errors)
                if c2 is None:
                    continue
                k = c2.key()
                if k not in seen:
                    seen.add(k)
                    stack.append(c2)
        return list(new.values())


def _joined_death(st: Oracle, hop: HistOp, ln: Line) -> str | None:
    """An exit (or a fatal access) in flight whose process died during its interval -- another
    thread's exit or SEGV took every thread off its CPU -- is part of that one death (DragonFly's
    exit1(): only one thread does the master exit, a later one just lwp_exit()s): it completes
    with its own outcome, `ok` for exit and `SEGV` for an access, and changes nothing. A CPU
    whose op is in flight cannot be switched (SPEC §3.2), so an idle CPU here means its thread
    was killed. Reading pinned in docs/readings.md and tests/test_oracle_lin.py."""
    if hop.start >= ln.step or st.cpu[hop.op.cpu] is not None:
        return None
    return {"exit": "ok", "load": "SEGV", "store": "SEGV"}.get(hop.op.action)


def judge(trace_text: str, os: str | None = None) -> Violation | None:
    """The first violation in a trace (SPEC §4.1), or None if some order explains every line.

    trace_text: a trace or replayable program with outcomes (SYNTAX.md); os: "linux" or
    "dragonfly", overriding the trace's `os` header (default dragonfly, SPEC §4.2).
    Returns Violation(kind, step, expected, observed) with step counted over op lines.
    Raises TraceError for a malformed line or one that applies in no order.
    """
    h = parse(trace_text)
    if os is not None:
        if os not in PERSONALITIES:
            raise TraceError(f"unknown os {os!r} (want {' or '.join(PERSONALITIES)})")
        h.os = os
    return judge_history(h)


def judge_history(h: History) -> Violation | None:
    j = _Judge(h)
    frontier = [_Config(Oracle(h.cpus, os=h.os))]
    inflight: set[int] = set()
    for ln in h.lines:
        if ln.starts is not None:
            inflight.add(ln.starts)
        nxt = _only_order(j, frontier, ln, inflight)
        if nxt is None:
            nxt = j.line(frontier, ln, inflight)
        if not nxt:
            return _diagnose(j, frontier, ln, inflight)
        if ln.completes is not None:
            inflight.discard(ln.completes)
        frontier = nxt
    return None


def _only_order(j: _Judge, frontier, ln: Line, inflight) -> list | None:
    """Fast path for a line that leaves no choice (one configuration, no op in flight but the
    line's own): the same steps as _Judge.line without state keys. None: take the search."""
    if len(frontier) != 1:
        return None
    c = frontier[0]
    if inflight - c.lin - ({ln.completes} if ln.completes is not None else set()):
        return None
    # the frontier's own state must survive a failure (the diagnosis starts from it): one copy,
    # then in place
    if ln.completes is not None and ln.completes not in c.lin:
        c = j._linearize(c, j.h.ops[ln.completes], ln, [])
        if c is None:
            return []
        after = j._finish(c, ln, None, inplace=True)
    else:
        after = j._finish(c, ln, None)
    return [] if after is None else [after]


def _diagnose(j: _Judge, frontier, ln: Line, inflight) -> Violation:
    """No order survives line ln: the most specific kind its observations get in an order
    valid for every other op (SPEC §4.1)."""
    diags: list[_Diag] = []
    errors: list = []
    j.line(frontier, ln, inflight, diags=diags, errors=errors)
    found = [d for d in diags if d.kind is not None]
    if not found:
        # the line's op applies in no order (idle CPU, thread not runnable...): input error
        mine = [e for oid, e in errors if oid == ln.completes]
        raise (mine or [e for _, e in errors] or
               [TraceError(f"line {ln.lineno}: no order of the operations explains this line")])[0]
    best = min(found, key=lambda d: _RANK[d.kind])
    return Violation(best.kind, ln.step, best.expected, ln.observed)
