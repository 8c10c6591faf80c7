"""Minimization of a violating program, keeping its violation kind.

1. Steps: ddmin over op lines, to a 1-minimal fixpoint (removing any single step loses the
   violation, or makes a later step inapplicable).
2. Arguments: smaller values (renamed consistently across the program, so a store and the
   umtx_sleep that waits for it stay paired), fewer distinct pages and words, fewer CPUs
   (renumbered, and the header's count cut to what is used).
3. Steps again, since simpler arguments can make more steps unnecessary.
Bounded by a time budget; the result always still violates."""

from __future__ import annotations

import re
import time

from pyvmfuzz import _core

_VAL = re.compile(r"^(0x[0-9a-f]+|\d+)$")
_ADDR = re.compile(r"^(data[0-3]|text[01]|shm0)\.([0-3])$")


class Minimizer:
    def __init__(self, hw: str, kernel: str, kind: str, budget_s: float, progress=None):
        self.hw, self.kernel, self.kind = hw, kernel, kind
        self.deadline = time.monotonic() + budget_s
        self.runs = 0
        self.progress = progress

    def out_of_time(self) -> bool:
        return time.monotonic() > self.deadline

    def run(self, ops: list[str], hw: str | None = None) -> dict | None:
        self.runs += 1
        try:
            return _core.run_text("\n".join([hw or self.hw] + ops) + "\n", self.kernel)
        except ValueError:  # a change made a later step inapplicable
            return None

    def keeps(self, ops: list[str], hw: str | None = None) -> bool:
        if not ops:
            return False
        r = self.run(ops, hw)
        return r is not None and r["violation"] is not None and r["violation"]["kind"] == self.kind

    def _note(self, ops):
        if self.progress:
            self.progress(len(ops))

    # -- steps
    def steps(self, ops: list[str]) -> list[str]:
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

    def one_minimal(self, ops: list[str]) -> list[str]:
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

    # -- arguments
    def _rename(self, ops: list[str], f) -> list[str]:
        return [" ".join(f(t) for t in op.split()) for op in ops]

    def values(self, ops: list[str]) -> list[str]:
        def values_in(ops):
            vs = []
            for op in ops:
                toks = op.split()
                if len(toks) > 2 and toks[-2] == "until":  # SPEC §3.2 line: the value precedes it
                    toks = toks[:-2]
                if toks[1] in ("store", "umtx_sleep", "procfs_write"):
                    v = int(toks[-1], 0)
                    if v not in vs:
                        vs.append(v)
            return vs

        for v in sorted(values_in(ops), reverse=True):
            for w in range(0, min(v, 8)):
                def sub(t, v=v, w=w):
                    return hex(w) if _VAL.match(t) and int(t, 0) == v else t
                cand = [op if op.split()[1] not in ("store", "umtx_sleep", "procfs_write")
                        else " ".join(op.split()[:-1] + [sub(op.split()[-1])]) for op in ops]
                if cand != ops and self.keeps(cand):
                    ops = cand
                    break
        return ops

    def places(self, ops: list[str]) -> list[str]:
        """Fewer distinct pages and words: rename one to another everywhere."""
        def used():
            pages, words = [], []
            for op in ops:
                for t in op.split():
                    m = _ADDR.match(t)
                    if m and m[1] not in pages:
                        pages.append(m[1])
                    if m and (m[1], m[2]) not in words:
                        words.append((m[1], m[2]))
                    if t in ("data0", "data1", "data2", "data3", "text0", "text1", "shm0") and t not in pages:
                        pages.append(t)
            return pages, words

        pages, _ = used()
        for kind in ("data", "text"):
            same = sorted(p for p in pages if p.startswith(kind))
            target = f"{kind}0"
            for p in same:
                if p == target:
                    continue
                cand = self._rename(ops, lambda t, p=p: t.replace(p, target) if t.split(".")[0] == p else t)
                if self.keeps(cand):
                    ops = cand
        _, words = used()
        for page, w in words:
            if w == "0":
                continue
            cand = self._rename(ops, lambda t, a=f"{page}.{w}", b=f"{page}.0": b if t == a else t)
            if self.keeps(cand):
                ops = cand
        return ops

    def cpus(self, ops: list[str]) -> tuple[list[str], str]:
        """Renumber CPUs densely (cpu0 keeps its role: it starts P1.T1) and cut the count."""
        order = []
        for op in ops:
            c = int(op.split()[0][3:])
            if c not in order:
                order.append(c)
        if 0 in order:
            order.remove(0)
        mapping = {0: 0}
        for i, c in enumerate(sorted(order), 1):
            mapping[c] = i
        cand = [f"cpu{mapping[int(op.split()[0][3:])]} " + op.split(None, 1)[1] for op in ops]
        if cand != ops and self.keeps(cand):
            ops = cand
        need = max(int(op.split()[0][3:]) for op in ops) + 1
        hw = re.sub(r"cpus=\d+", f"cpus={need}", self.hw)
        if hw != self.hw and self.keeps(ops, hw):
            self.hw = hw
        return ops, self.hw


def minimize(hw: str, ops: list[str], kernel: str, kind: str, budget_s: float = 10.0, progress=None) -> tuple[str, list[str]]:
    """(header hw line, minimized op lines)."""
    m = Minimizer(hw, kernel, kind, budget_s, progress)
    if not m.keeps(ops):
        return hw, ops
    ops = m.steps(ops)
    before = None
    while before != ops and not m.out_of_time():
        before = ops
        ops = m.values(ops)
        ops = m.places(ops)
        ops, _ = m.cpus(ops)
        ops = m.steps(ops)
    return m.hw, ops


def minimize_report(rep: dict, budget_s: float = 10.0, progress=None) -> dict:
    """Minimize a violating run (from run_text or run_bytes); returns the minimized run's
    report (same kernel, same violation kind)."""
    kind = rep["violation"]["kind"]
    ops = [s.split("->")[0].strip() for s in rep["steps"]]
    hw, ops = minimize(rep["hw"], ops, rep["kernel"], kind, budget_s, progress)
    try:
        out = _core.run_text("\n".join([hw] + ops) + "\n", rep["kernel"])
    except ValueError:
        return rep
    return out if out["violation"] is not None and out["violation"]["kind"] == kind else rep
