"""Minimization of a violating program, keeping its violation kind.

1. Steps: ddmin over op lines, to a 1-minimal fixpoint (removing any single step loses the
   violation, or makes a later step inapplicable).
2. Arguments: smaller values (renamed consistently across the program, so a store and the
   umtx_sleep that waits for it stay paired), fewer forks and spawns (the later pids or tids
   renumbered), fewer distinct pages and words, fewer CPUs (renumbered, and the header's count
   cut to what is used).
3. Interleavings (docs/contract.md §3.2): an `until` the violation does not need is dropped, its op's
   `resume` lines folded back into the line that started it (a `resume until P` likewise
   becomes a plain `resume`).
4. Steps again, since simpler arguments can make more steps unnecessary.
Bounded by a time budget; the result always still violates."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pyvmfuzz import _core, layout
from pyvmfuzz import api as _api
from pyvmfuzz.api import Addr, HwSpec, Program, Report, Step, Thread


def _text(hw: HwSpec | str, steps: Sequence[Step | str]) -> str:
    return "\n".join([str(hw)] + [s.text(False) if isinstance(s, Step) else s for s in steps]) + "\n"


def applicable_everywhere(hw: HwSpec | str, ops: Sequence[Step | str], kernels) -> bool:
    """Whether the program runs (is not an input error) under every kernel in `kernels`: a
    saved finding is a regression program that `check --kernel all` runs under each."""
    text = _text(hw, ops)
    for k in kernels:
        try:
            _api.report(text, k)
        except ValueError:
            return False
    return True


class Minimizer:
    """Candidates are typed steps (pyvmfuzz.api.Step) changed with `Step.replace`; each is run
    as the canonical text the core parses."""

    def __init__(self, hw: HwSpec | str, kernel: str, kind: str, budget_s: float, progress=None, portable=()):
        self.hw = hw if isinstance(hw, HwSpec) else HwSpec.parse(hw)
        self.kernel, self.kind = kernel, kind
        self.portable = tuple(portable)  # kernels every kept candidate must be applicable under
        self.deadline = time.monotonic() + budget_s
        self.runs = 0
        self.progress = progress

    def out_of_time(self) -> bool:
        return time.monotonic() > self.deadline

    def run(self, ops: list[Step], hw: HwSpec | None = None) -> Mapping[str, Any] | None:
        self.runs += 1
        try:
            return _api.report(_text(hw or self.hw, ops), self.kernel)
        except ValueError:  # a change made a later step inapplicable
            return None

    def keeps(self, ops: list[Step], hw: HwSpec | None = None) -> bool:
        if not ops:
            return False
        r = self.run(ops, hw)
        if r is None or r["violation"] is None or r["violation"]["kind"] != self.kind:
            return False
        return not self.portable or applicable_everywhere(hw or self.hw, ops[: r["violation"]["step"]], self.portable)

    def _note(self, ops):
        if self.progress:
            self.progress(len(ops))

    # -- steps
    def steps(self, ops: list[Step]) -> list[Step]:
        r = self.run(ops)
        if r is not None and r["violation"] is not None:
            ops = ops[: r["violation"]["step"]]  # nothing after the violation matters
        n = 2
        while len(ops) >= 2 and not self.out_of_time():
            chunk = max(1, len(ops) // n)
            for start in range(0, len(ops), chunk):
                cand = ops[:start] + ops[start + chunk:]
                if self.keeps(cand):
                    ops = cand
                    n = max(n - 1, 2)
                    self._note(ops)
                    break
            else:
                if chunk == 1:
                    break
                n = min(len(ops), n * 2)
        return self.one_minimal(ops)

    def one_minimal(self, ops: list[Step]) -> list[Step]:
        i = 0
        while i < len(ops) and not self.out_of_time():
            cand = ops[:i] + ops[i + 1:]
            if self.keeps(cand):
                ops = cand
                self._note(ops)
                i = 0
            else:
                i += 1
        return ops

    # -- interleavings (docs/contract.md §3.2)
    @staticmethod
    def _fold(ops: list[Step], i: int) -> list[Step]:
        """ops with line i's `until` dropped and the `resume` lines that carried its op on
        (on its CPU, through the first plain `resume`) folded into it."""
        s, kept, done = ops[i], [], False
        for t in ops[i + 1:]:
            if not done and t.cpu == s.cpu and t.op == "resume":
                done = t.until is None
                continue
            kept.append(t)
        return ops[:i] + [s.replace(until=None)] + kept

    def interleavings(self, ops: list[Step]) -> list[Step]:
        i = 0
        while i < len(ops) and not self.out_of_time():
            if ops[i].until is not None:
                kept = self._first_kept([self._fold(ops, i), ops[:i] + [ops[i].replace(until=None)] + ops[i + 1:]])
                if kept is None:
                    i += 1
                else:
                    ops = kept
                continue
            i += 1
        return ops

    def _first_kept(self, cands: list[list[Step]]) -> list[Step] | None:
        """The first candidate that keeps the violation, or None."""
        for cand in cands:
            if self.keeps(cand):
                self._note(cand)
                return cand
        return None

    # -- arguments
    def values(self, ops: list[Step]) -> list[Step]:
        """Smaller values, renamed consistently (a store and the umtx_sleep waiting for it
        keep the same value)."""
        for v in sorted({s.value for s in ops if s.value is not None}, reverse=True):
            for w in range(0, min(v, 8)):
                cand = [s.replace(value=w) if s.value == v else s for s in ops]
                if self.keeps(cand):
                    ops = cand
                    break
        return ops

    @staticmethod
    def _rename_page(ops: list[Step], old: str, new: str) -> list[Step]:
        def one(s: Step) -> Step:
            if s.addr is not None and s.addr.page == old:
                return s.replace(addr=Addr(new, s.addr.word))
            return s.replace(page=new) if s.page == old else s
        return [one(s) for s in ops]

    def places(self, ops: list[Step]) -> list[Step]:
        """Fewer distinct pages and words: each data page renamed to the first data page, each
        text page to the first text page (same mapping kind), each word to word 0."""
        for group in (layout.DATA_PAGES, layout.TEXT_PAGES):
            for p in group[1:]:
                if any(s.touched_page == p for s in ops):
                    cand = self._rename_page(ops, p, group[0])
                    if self.keeps(cand):
                        ops = cand
        for a in list(dict.fromkeys(s.addr for s in ops if s.addr is not None and s.addr.word != 0)):
            cand = [s.replace(addr=Addr(a.page, 0)) if s.addr == a else s for s in ops]
            if self.keeps(cand):
                ops = cand
        return ops

    # -- processes and threads
    @staticmethod
    def _running_thread(ops: list[Step], i: int) -> Thread | None:
        """The thread running on line i's CPU before it (P1.T1 starts on cpu0), by its switches."""
        th = Thread(1, 1) if ops[i].cpu == 0 else None
        for s in ops[:i]:
            if s.cpu == ops[i].cpu and s.op == "switch":
                th = s.target if isinstance(s.target, Thread) else None
        return th

    @staticmethod
    def _renamed(ops: list[Step], pid: Callable[[int], int], thread: Callable[[Thread], Thread]) -> list[Step]:
        def one(s: Step) -> Step:
            ch: dict[str, Any] = {}
            if s.pid is not None:
                ch["pid"] = pid(s.pid)
            if isinstance(s.target, Thread):
                ch["target"] = thread(s.target)
            return s.replace(**ch) if ch else s
        return [one(s) for s in ops]

    @staticmethod
    def _merged(ops: list[Step]) -> list[Step] | None:
        """ops with each switch to a thread already running on another CPU dropped, the
        switching CPU's lines after it (to its next switch) run on that CPU instead; None when
        there is no such switch. (After a creation is renamed into its creator, the created
        thread's lines become the creator's own.)"""
        # What runs where, by the switches; a thread that may block or die (umtx_sleep, exit)
        # is taken as running nowhere from then on (a switch to it is left as it is).
        running: dict[int, Thread | None] = {0: Thread(1, 1)}
        out, moved, onto = [], False, {}
        for s in ops:
            if s.cpu in onto and s.op != "switch":
                s = s.replace(cpu=onto[s.cpu])
            else:
                onto.pop(s.cpu, None)
                if s.op == "switch" and isinstance(s.target, Thread):
                    there = next((c for c, t in running.items() if t == s.target), None)
                    if there is not None:  # dropped; its CPU's lines run there (or already do)
                        if there != s.cpu:
                            onto[s.cpu] = there
                        moved = True
                        continue
                if s.op == "switch":
                    running[s.cpu] = s.target if isinstance(s.target, Thread) else None
            if s.op in ("umtx_sleep", "exit"):
                running[s.cpu] = None
            out.append(s)
        return out if moved else None

    def creations(self, ops: list[Step]) -> list[Step]:
        """Fewer forks and spawns: pids and tids are handed out in order, so a creation line that
        only numbers what comes after it is dropped with the later numbers one lower (a step
        pass alone cannot: without the line, P3 is named P2). What named the created process
        (thread) itself is tried first on the creator — the thread running there —, its lines
        moved onto the creator's CPU (`_merged`)."""
        i = 0
        while i < len(ops) and not self.out_of_time():
            s = ops[i]
            r = self.run(ops) if s.op in ("fork", "spawn") else None
            made = r["trace"][i] if r is not None and i < len(r["trace"]) else ""
            kept = self._first_kept(self._folds(ops, i, made))
            if kept is None:
                i += 1
            else:
                ops = kept
        return ops

    def _folds(self, ops: list[Step], i: int, made: str) -> list[list[Step]]:
        """The candidates without creation line i, whose product is `made` (`P3`, `P1.T2`):
        the product folded into the creator thread (merged onto its CPU, then not), then the
        later numbers one lower."""
        s, creator, renames = ops[i], self._running_thread(ops, i), []
        if s.op == "fork" and made.startswith("P") and made[1:].isdigit():
            k = int(made[1:])
            for into in ([creator] if creator else []) + [None]:
                def pid(p, k=k, into=into):
                    return into.pid if p == k and into else p - 1 if p > k else p
                # the child's first thread becomes the creator thread itself
                renames.append((pid, lambda t, pid=pid, k=k, into=into:
                                into if into and t == Thread(k, 1) else Thread(pid(t.pid), t.tid)))
        elif s.op == "spawn" and "." in made:
            p, _, t = made.partition(".")
            if p[1:].isdigit() and t[1:].isdigit():
                pp, k = int(p[1:]), int(t[1:])
                for into in ([creator] if creator else []) + [None]:
                    renames.append((lambda q: q, lambda th, pp=pp, k=k, into=into:
                                    into if th == Thread(pp, k) and into else
                                    Thread(th.pid, th.tid - 1) if th.pid == pp and th.tid > k else th))
        cands = []
        for pid, thread in renames:
            cand = self._renamed(ops[:i] + ops[i + 1:], pid, thread)
            cands += [m for m in [self._merged(cand)] if m is not None] + [cand]
        return cands

    def cpus(self, ops: list[Step]) -> tuple[list[Step], HwSpec]:
        """Renumber CPUs densely (cpu0 keeps its role: it starts P1.T1) and cut the count."""
        mapping = {c: i for i, c in enumerate(sorted({s.cpu for s in ops} | {0}))}
        cand = [s.replace(cpu=mapping[s.cpu]) for s in ops]
        if cand != ops and self.keeps(cand):
            ops = cand
        need = max(s.cpu for s in ops) + 1
        hw = dataclasses.replace(self.hw, cpus=need)
        if self.hw.cpus is not None and hw != self.hw and self.keeps(ops, hw):
            self.hw = hw
        return ops, self.hw


def minimize_steps(hw: HwSpec | str, ops: Sequence[Step], kernel: str, kind: str, budget_s: float = 10.0,
                   progress=None, portable=()) -> tuple[HwSpec, list[Step]]:
    """(hardware, minimized steps) keeping a violation of `kind` under `kernel`; `portable`:
    kernels under which every kept candidate must also be applicable (its prefix up to the
    violation). Bounded by `budget_s` seconds; returns the input when it does not violate."""
    m = Minimizer(hw, kernel, kind, budget_s, progress, portable)
    ops = [s.replace(assertion=None) for s in ops]
    if not m.keeps(ops):
        return m.hw, ops
    ops = m.steps(ops)
    before = None
    while before != ops and not m.out_of_time():
        before = ops
        ops = m.interleavings(ops)
        ops = m.creations(ops)
        ops = m.values(ops)
        ops = m.places(ops)
        ops, _ = m.cpus(ops)
        ops = m.steps(ops)
    return m.hw, ops


def minimize_program(program: Program, kernel: str | None = None, hw: str | None = None,
                     budget_s: float = 10.0, progress=None, portable=()) -> Report:
    """Minimize a violating program (typed API): the minimized run's Report, with the same
    kernel and violation kind; the program's own run when it does not violate. Raises
    InputError for a program that does not run."""
    from pyvmfuzz.api import run

    rep = run(program, kernel, hw)
    if rep.violation is None:
        return rep
    h, steps = minimize_steps(HwSpec.parse(rep.hw), rep.steps, rep.kernel, rep.violation.kind, budget_s,
                              progress, portable)
    small = run(Program(tuple(steps), h), rep.kernel)
    return small if small.violation is not None and small.violation.kind == rep.violation.kind else rep


def minimize(hw: str, ops: list[str], kernel: str, kind: str, budget_s: float = 10.0, progress=None,
             portable=()) -> tuple[str, list[str]]:
    """(header hw line, minimized op lines): `minimize_steps` on canonical op lines."""
    h, steps = minimize_steps(hw, [Step.parse(o) for o in ops], kernel, kind, budget_s, progress, portable)
    return str(h), [s.text() for s in steps]


def minimize_report(rep: Mapping[str, Any], budget_s: float = 10.0, progress=None, portable=()) -> Mapping[str, Any]:
    """Minimize a violating run (the dict of run_text or run_bytes); returns the minimized
    run's report dict (same kernel, same violation kind). With `portable` (kernel names), a
    program applicable under all of them is preferred: minimized keeping that, when the run
    is; else minimized without it."""
    typed = Report.from_core(rep)
    if typed.violation is None:  # nothing to keep
        return rep
    kind = typed.violation.kind
    ops = list(typed.steps)
    hw = HwSpec.parse(typed.hw)
    if portable and not applicable_everywhere(hw, ops[: typed.violation.step], portable):
        portable = ()
    hw, ops = minimize_steps(hw, ops, typed.kernel, kind, budget_s, progress, portable)
    try:
        out = _api.report(_text(hw, ops), typed.kernel)
    except ValueError:
        return rep
    return out if out["violation"] is not None and out["violation"]["kind"] == kind else rep
