"""Judging interleaved operations: linearizability (docs/contract.md §4.1), over the sequential contract.

Written from docs/contract.md §2, §3.2, §4 and §4.1 only -- never from the Rust
core. A trace may hold the lines of docs/contract.md §3.2:

    cpu1 mprotect data0 r until ipi_wait -> paused     # an op starts and stays in flight
    cpu1 mprotect data0 r -> paused                    # a plain line stopped at `wait`
    cpu1 resume until access -> paused                 # still in flight
    cpu1 resume -> ok                                  # the op completes with this outcome
    cpu0 ipi -> ok                                     # not an operation

Every operation has an interval of steps, from the line that starts it to the line where it
completes (pending if none). The run is correct up to line L when some total order of the ops
completed by L, plus any subset of the pending ones, respects real time and, replayed through
`contract.Oracle`, gives each completed op its observed outcome and meets every wake obligation
of a completed wakeup. The search walks the lines in order keeping every distinct
*configuration* reachable so far (the contract's state, which pending ops are already placed and
the outcome each got there, the wakes owed, and the sleep that blocked each blocked thread) --
Porcupine / Wing-Gong memoisation on (placed set, state). At line s a configuration may place
any op that has started and is not yet placed, in any order, and must have placed the op that
completes at s. Choosing a point inside each op's interval is the same as choosing a
real-time-respecting total order (assign each op, in order, max(its start, the previous point)),
so nothing is lost by working line by line.

Wakes follow docs/contract.md §4.1 as pinned in docs/readings.md (R1-R4):
- R1, order-free (`_RealTime`): a line may name thread T only while T is asleep in real time --
  its latest `umtx_sleep` started on an earlier line, T not named since, that sleep not completed
  other than `blocked` on an earlier line, T's process not dead on an earlier line or this one;
  no name twice on a line. Else `outcome` at that line (unless an order gives a more specific
  kind). A report is no event of the replay.
- R2, per order: a placed `umtx_sleep` returning `blocked` blocks its thread, remembering the
  line S where the sleep started; a placed `umtx_wakeup` wakes every thread then blocked on its
  word, and each is owed a name on some line in [S, E], E the line where that wakeup completes
  (checked there; a pending wakeup owes nothing yet). A thread blocked in the replay but named
  woken in real time is released by its next switch (a permitted spurious wake); one not named
  is never scheduled. Threads of a dead process leave the replay.
- R3: the violation is at the first line breaking R1, or after which no configuration meets
  every obligation of a completed wakeup.
- R4: its kind is the most specific failure (`stale-read`/`protection`, then `lost-wakeup`, then
  `outcome`; of the first two, `stale-read` where one order reads a wrong value and another
  needs a `SEGV`: docs/readings.md R5) by L over the orders that give every op completed before L its observed value and
  meet every obligation whose wakeup and sleep both completed before L. So an order whose
  completed wakeup left a wake unnamed while the sleep was still in flight is kept (`broken`)
  until that sleep completes: R3 does not count it, R4 does (docs/contract.md §4.1's worked example).

docs/contract.md §3.4's operations (munmap, mmap, mremap, msync, pageout) are operations like the
others: their effects (a page unmapped, a fresh mapping, a mapping and its private sleepers
moved) take place where the order places them, in the contract's state. `pageout` may run on an
idle CPU and then belongs to no thread; one a thread started cannot be placed after that
thread's death.

Lines before the first §3.2 line are judged by the sequential contract itself (docs/contract.md §4.1: exactly
the sequential judgement there, whose precedence within a step -- outcome kinds, a bad wake
list, then lost-wakeup -- differs from R4's "most specific" on a line with two failures).

Entry points: `judge(trace_text, os=None) -> Violation | None`, `parse(trace_text) -> History`.
Raises `TraceError` for a malformed line or one that cannot apply in any order.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field

from pyvmfuzz.oracle.contract import (
    MAX_CPUS, PERSONALITIES, Oracle, Op, TraceError, Violation, format_outcome, parse_op,
    parse_thread, thread_name, trace_lines,
)

# docs/contract.md §3.2's yield points and §3.4's `clean` (msync, pageout) and `free` (pageout)
# (the core validates which op has which; the oracle needs none)
POINTS = ("cow", "pmap_enter", "ipi_wait", "access", "sleep", "retry", "enter", "wait",
          "clean", "free")
PAUSED = "paused"

_CPU_RESUME = re.compile(r"cpu([0-9]+)")

# most specific first (docs/contract.md §4.1): the kinds a line's own observations can get
_RANK = {"stale-read": 0, "protection": 1, "lost-wakeup": 2, "outcome": 3}


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
    kind: str                      # "op" | "resume" | "ipi"
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

    Header lines: `hw`, `kernel`, `expect`, `os linux|dragonfly` (docs/contract.md §2.1, §4.2). Raises
    TraceError naming the text line for a malformed line, an op started on a CPU that has one
    in flight, or a `resume` with nothing in flight.
    """
    cpus, raw_lines, osname = trace_lines(text)
    h = History(cpus, osname)
    inflight: dict[int, int] = {}           # cpu -> op id
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
                # (every kernel waits for its own IPIs before an op returns: a `resume` with
                # nothing in flight is an input error, deferred-flush included)
                if cpu not in inflight:
                    raise TraceError(f"line {lineno}: not applicable: nothing in flight on cpu{cpu}")
                if outcome != PAUSED:
                    ln.completes = inflight.pop(cpu)
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
        h.lines.append(ln)
    for ln in h.lines:
        if ln.completes is not None:
            hop = h.ops[ln.completes]
            hop.end, hop.outcome = ln.step, ln.outcome
    return h


# ---------------------------------------------------------------- real time (R1)

_INF = float("inf")
_DIES = ("exit", "load", "store")


def hop_pid(t: tuple[int, int] | None) -> int | None:
    return None if t is None else t[0]


class _RealTime:
    """What the lines say whatever order the operations took effect in (docs/readings.md R1):
    who performs each op (the thread on its CPU when the op starts: a CPU with an op in flight
    takes no other op), which `umtx_sleep` each thread started on which line, on which lines each
    thread is named in a wake list, on which line each process died (an `exit` completed, or a
    load/store completed `SEGV`) -- and so which names break R1."""

    def __init__(self, h: History):
        self.h = h
        self.performer: dict[int, tuple[int, int] | None] = {}
        self.sleep_ops: dict[tuple[int, int], list[int]] = {}     # op ids, in start order
        self.sleep_starts: dict[tuple[int, int], list[int]] = {}  # their start steps
        self.names: dict[tuple[int, int], list[int]] = {}         # steps naming the thread
        self.dead: dict[int, int] = {}                            # pid -> step it died on
        self.bad: dict[int, list[tuple[int, int]]] = {}           # step -> names breaking R1
        occ: list[tuple[int, int] | None] = [None] * h.cpus
        occ[0] = (1, 1)
        exiting: set[int] = set()   # pids whose exit started on an earlier line, not completed
        for ln in h.lines:
            if ln.starts is not None:
                hop = h.ops[ln.starts]
                who = occ[hop.cpu]
                if hop.op.action == "pageout" and who is not None and who[0] in exiting:
                    # docs/contract.md §3.2.5 *Exit*: while its exit waits, a thread of the
                    # process runs nothing; past the wait the exit has taken every thread off
                    # its CPU. A line running there is the page daemon on an idle CPU.
                    who = None
                    occ = [None if t is not None and t[0] == hop_pid(occ[hop.cpu]) else t for t in occ]
                self.performer[hop.id] = who
                if hop.op.action == "exit" and who is not None and hop.end != ln.step:
                    exiting.add(who[0])
                if hop.op.action == "switch":
                    occ[hop.cpu] = hop.op.target
                elif hop.op.action == "umtx_sleep" and who is not None:
                    self.sleep_ops.setdefault(who, []).append(hop.id)
                    self.sleep_starts.setdefault(who, []).append(hop.start)
            if ln.completes is not None:
                hop = h.ops[ln.completes]
                who = self.performer[hop.id]
                a = hop.op.action
                if who is not None:
                    if a == "umtx_sleep" and hop.outcome == "blocked" and occ[hop.cpu] == who:
                        occ[hop.cpu] = None
                    if a == "exit" or (a in _DIES and hop.outcome == "SEGV"):
                        exiting.discard(who[0])
                        self.dead.setdefault(who[0], ln.step)
                        occ = [None if t is not None and t[0] == who[0] else t for t in occ]
            # R1 on this line: its deaths count, its own names do not yet
            bad = [w for w in ln.woke if ln.woke.count(w) > 1 or not self._reportable(w, ln.step)]
            if bad:
                self.bad[ln.step] = bad
            for w in dict.fromkeys(ln.woke):
                self.names.setdefault(w, []).append(ln.step)

    def latest_sleep(self, t: tuple[int, int], step: int) -> HistOp | None:
        """t's latest umtx_sleep started on a line <= step."""
        k = bisect_right(self.sleep_starts.get(t, ()), step)
        return self.h.ops[self.sleep_ops[t][k - 1]] if k else None

    def named_in(self, t: tuple[int, int], a: int, b: int) -> bool:
        """t is named in the wake list of some line in [a, b]."""
        xs = self.names.get(t, ())
        k = bisect_left(xs, a)
        return k < len(xs) and xs[k] <= b

    def _reportable(self, t: tuple[int, int], step: int) -> bool:
        """R1: t is asleep in real time at `step` (its latest sleep started on an earlier line,
        t not named since, that sleep not completed other than `blocked` on an earlier line, t's
        process not dead on an earlier line or this one). A sleeper in flight may be named
        (docs/contract.md §4.1, `tsleep_interlock`)."""
        s = self.latest_sleep(t, step)
        return (s is not None and s.start < step and not self.named_in(t, s.start, step - 1)
                and not (s.end is not None and s.end < step and s.outcome != "blocked")
                and self.dead.get(t[0], _INF) > step)

    def scheduling_refused(self, t: tuple[int, int], step: int) -> bool:
        """A switch taking effect at `step` may not take t: t is still in its sleep's op on its
        CPU, or asleep since a sleep that completed `blocked` and not named woken since (a
        blocked thread is never scheduled, docs/contract.md §4: only a reported wake releases it)."""
        s = self.latest_sleep(t, step)
        if s is None:
            return False
        if s.end is None or s.end >= step:
            return True
        return s.outcome == "blocked" and not self.named_in(t, s.start, step - 1)


# ---------------------------------------------------------------- configurations

@dataclass
class _Config:
    """One order so far (memoised by its key): the contract's state after the ops it placed,
    the pending ops placed and the outcome each got, the wakes owed, the threads blocked in
    the replay with the sleep that blocked them."""
    st: Oracle
    pend: tuple = ()                  # sorted (op id, expected outcome): placed, not completed
    owed: frozenset = frozenset()     # (thread, umtx_wakeup id, umtx_sleep id): owed, unreported
    sleeps: frozenset = frozenset()   # (thread, umtx_sleep id) for every thread blocked here
    lin: frozenset = frozenset()      # placed op ids still in flight at this line
    # (thread, umtx_sleep id): a wake a completed wakeup owed and never got reported while that
    # sleep is still in flight. R3 rejects the order; R4 keeps it until the sleep completes.
    broken: frozenset = frozenset()

    def key(self):
        return (self.st.fingerprint(), self.pend, self.owed, self.sleeps, self.lin, self.broken)


@dataclass
class _Diag:
    """The most specific failure one order gets by line L (only while diagnosing L)."""
    kind: str | None = None
    expected: str | None = None


class _Judge:
    def __init__(self, h: History):
        self.h = h
        self.rt = _RealTime(h)

    def _lineno(self, hop: HistOp) -> int:
        return self.h.lines[hop.start - 1].lineno

    def _linearize(self, c: _Config, hop: HistOp, ln: Line, errors: list,
                   inplace: bool = False) -> _Config | None:
        """c with hop taking effect now, at line ln; None if hop cannot apply in c's state.
        `inplace`: c is not used again, its state may be changed (the no-choice fast path)."""
        st = c.st if inplace else c.st.clone()
        where = ln.lineno if hop.end == ln.step else self._lineno(hop)
        sleeps = c.sleeps
        if hop.op.action == "switch" and hop.op.target is not None:
            target = st.thread(hop.op.target)
            if target is not None and target.state != "running":
                if self.rt.scheduling_refused(hop.op.target, ln.step):
                    errors.append((hop.id, TraceError(
                        f"line {where}: {thread_name(hop.op.target)} is not runnable (blocked)")))
                    return None
                if target.state == "blocked":
                    # reported woken in real time, woken by no wakeup in this order: a permitted
                    # spurious wake (R2); it runs from here
                    target.state, target.key = "runnable", None
                    sleeps = frozenset(x for x in sleeps if x[0] != target.name)
        try:
            actor = st._actor(hop.op, where)
            if (hop.op.action == "pageout" and actor is None
                    and self.rt.performer.get(hop.id) is not None):
                # a pageout started by a thread is that thread's operation (docs/contract.md
                # §3.4: an exit waits for it): an order where its thread died first is no order
                raise TraceError(f"line {where}: cpu{hop.op.cpu} is idle")
        except TraceError as e:
            joined = _joined_death(st, hop, ln)
            if joined is None:
                errors.append((hop.id, e))
                return None
            # part of the death that already took its thread: its outcome, no other effect
            return _Config(st, tuple(sorted(c.pend + ((hop.id, joined),))), c.owed, sleeps,
                           c.lin | {hop.id}, c.broken)
        expected = st._expected(hop.op, actor)
        must = st._must_wake(hop.op, actor)
        st._apply(hop.op, actor, expected)
        owed = set(c.owed)
        blocked = dict(sleeps)
        # R2: the wakeup wakes every thread blocked on its word here; each is owed a report on
        # some line in [its sleep's start, the wakeup's completing line]
        for t in must:
            s = st.thread(t)
            s.state, s.key = "runnable", None
            z = blocked.pop(t)
            if not self.rt.named_in(t, self.h.ops[z].start, ln.step):
                owed.add((t, hop.id, z))
        if hop.op.action == "umtx_sleep" and expected == "blocked":
            blocked[actor.name] = hop.id
        # exit and SEGV take a process's threads out of the replay: nothing owed to them
        owed = frozenset(o for o in owed if st.thread(o[0]) is not None)
        sleeps = frozenset((t, z) for t, z in blocked.items() if st.thread(t) is not None)
        return _Config(st, tuple(sorted(c.pend + ((hop.id, expected),))), owed, sleeps,
                       c.lin | {hop.id}, c.broken)

    def _finish(self, c: _Config, ln: Line, diag: _Diag | None) -> _Config | None:
        """End of line ln for c: the completing op's return value, R1 on the line's wake list,
        the wakes owed by a wakeup completing here. Returns the configuration after the line
        (R4 keeps one with `broken` wakes; R3 does not count it), or None if the order fails
        here; in diagnosis, records in `diag` the most specific failure by this line."""
        h = self.h
        fails = []
        pend = c.pend
        expected_line = PAUSED
        if ln.kind == "ipi":
            expected_line = "ok"
            if ln.outcome != "ok":
                fails.append(("outcome", "ok"))
        if ln.completes is not None:
            hop = h.ops[ln.completes]
            exp = dict(pend)[hop.id]
            pend = tuple(p for p in pend if p[0] != hop.id)
            expected_line = exp
            kind = Oracle._mismatch(hop.op, exp, ln.outcome)
            if kind:
                fails.append((kind, exp))
        elif ln.outcome != PAUSED and ln.kind != "ipi":
            raise AssertionError("a line that completes nothing is paused")
        if fails and diag is None:
            return None
        woke = set(ln.woke)
        bad = self.rt.bad.get(ln.step)
        if bad:   # R1 (order-free): `outcome` unless the order gives something more specific
            good = {w for w in ln.woke if w not in bad}
            fails.append(("outcome", format_outcome(expected_line, good)))
        owed = frozenset(o for o in c.owed if o[0] not in woke) if woke else c.owed
        broken, enforced, lost = c.broken, False, set()
        if ln.completes is not None and h.ops[ln.completes].op.action == "umtx_wakeup":
            unmet = {o for o in owed if o[1] == ln.completes}
            if unmet:
                owed = owed - unmet
                for t, _, z in unmet:
                    lost.add(t)
                    end = h.ops[z].end
                    if end is not None and end < ln.step:
                        enforced = True          # wakeup and sleep both completed: no order
                    else:                        # the sleep is in flight: R3 only, until it ends
                        broken = broken | {(t, z)}
        if broken:
            lost |= {t for t, _ in broken}
            if any(z == ln.completes for _, z in broken):
                enforced = True                  # its sleep completes here: no order after it
        if lost:
            good = {w for w in ln.woke if w not in (bad or ())}
            fails.append(("lost-wakeup", format_outcome(expected_line, lost | good)))
        if diag is not None:
            for kind, expected in fails:
                if diag.kind is None or _RANK[kind] < _RANK[diag.kind]:
                    diag.kind, diag.expected = kind, expected
        if enforced or any(k != "lost-wakeup" for k, _ in fails):
            return None
        lin = c.lin - {ln.completes} if ln.completes is not None else c.lin
        return _Config(c.st, pend, owed, c.sleeps, lin, broken)

    def line(self, frontier: list[_Config], ln: Line, inflight: set[int],
             diags: list | None = None, errors: list | None = None) -> list[_Config]:
        """Every configuration after line ln. With `diags`, each order that reaches the end of
        the line appends a _Diag with the most specific failure it gets (kind None: none)."""
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
    whose op is in flight cannot be switched (docs/contract.md §3.2), so an idle CPU here means its thread
    was killed. Reading pinned in docs/readings.md and tests/test_oracle_lin.py."""
    if hop.start >= ln.step or st.cpu[hop.op.cpu] is not None:
        return None
    return {"exit": "ok", "load": "SEGV", "store": "SEGV"}.get(hop.op.action)


def judge(trace_text: str, os: str | None = None) -> Violation | None:
    """The first violation in a trace (docs/contract.md §4.1), or None if some order explains every line.

    trace_text: a trace or replayable program with outcomes (SYNTAX.md); os: "linux" or
    "dragonfly", overriding the trace's `os` header (default dragonfly, docs/contract.md §4.2).
    Returns Violation(kind, step, expected, observed) with step counted over op lines.
    Raises TraceError for a malformed line or one that applies in no order.
    """
    h = parse(trace_text)
    if os is not None:
        if os not in PERSONALITIES:
            raise TraceError(f"unknown os {os!r} (want {' or '.join(PERSONALITIES)})")
        h.os = os
    return judge_history(h)


def judge_history(h: History, search: bool = False) -> Violation | None:
    """judge() on a parsed trace. The lines before the first §3.2 line (a plain line is an op
    that completes on its own line) are the sequential contract's judgement, stepped line by
    line: docs/contract.md §4.1, "without section 3.2 lines this is exactly the sequential judgement", read
    so that a line's verdict never depends on lines after it. From there on, R1-R4. `search`
    forces R1-R4 from the first line (tests compare the two)."""
    k = 0 if search else next((i for i, ln in enumerate(h.lines) if not _plain(ln)),
                              len(h.lines))
    v = _sequential(h, h.lines[:k])
    if v is not None or k == len(h.lines):
        return v
    j = _Judge(h)
    frontier = [_Config(Oracle(h.cpus, os=h.os))]
    inflight: set[int] = set()
    for ln in h.lines:
        if ln.starts is not None:
            inflight.add(ln.starts)
        nxt = _only_order(j, frontier, ln, inflight)
        if nxt is None:
            nxt = j.line(frontier, ln, inflight)
        # R3: R1 holds at ln and some order meets every obligation of a completed wakeup
        if ln.step in j.rt.bad or all(c.broken for c in nxt):
            return _diagnose(j, frontier, ln, inflight)
        if ln.completes is not None:
            inflight.discard(ln.completes)
        frontier = nxt
    return None


def _plain(ln: Line) -> bool:
    """An atomic line: an op that starts and completes on it (`until` a point it never
    reached included, docs/contract.md §3.2)."""
    return ln.kind == "op" and ln.completes == ln.starts


def _sequential(h: History, lines: list[Line]) -> Violation | None:
    """contract.judge on plain lines."""
    o = Oracle(h.cpus, os=h.os)
    for ln in lines:
        v = o.step(h.ops[ln.starts].text, ln.outcome, [thread_name(w) for w in ln.woke],
                   line=ln.lineno)
        if v is not None:
            return v
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
    after = j._finish(c, ln, None)
    return [] if after is None else [after]


def _diagnose(j: _Judge, frontier, ln: Line, inflight) -> Violation:
    """Line ln is the violation (R3): its kind is the most specific failure by ln over the
    orders R4 admits -- every op completed before ln given its observed value, every obligation
    whose wakeup and sleep both completed before ln met (the frontier before ln, `broken` ones
    included)."""
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
