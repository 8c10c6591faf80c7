"""Step-level delta debugging of a violating program, keeping the violation kind.
The result is 1-minimal: removing any single step loses the violation (or makes the program
inapplicable)."""

from __future__ import annotations

import time

from . import _core


def _verdict(hw: str, ops: list[str], kernel: str) -> dict | None:
    try:
        return _core.run_text("\n".join([hw] + ops) + "\n", kernel)
    except ValueError:  # a removed step made a later one inapplicable
        return None


def minimize_ops(hw: str, ops: list[str], kernel: str, kind: str, budget_s: float = 10.0) -> list[str]:
    """ddmin over op lines, then single-step removal to a fixpoint."""
    deadline = time.monotonic() + budget_s

    def keeps(cand: list[str]) -> bool:
        r = _verdict(hw, cand, kernel)
        return r is not None and r["violation"] is not None and r["violation"]["kind"] == kind

    # Everything after the violating step is irrelevant.
    r = _verdict(hw, ops, kernel)
    if r is None or r["violation"] is None or r["violation"]["kind"] != kind:
        return ops
    ops = ops[: r["violation"]["step"]]
    n = 2
    while len(ops) >= 2 and time.monotonic() < deadline:
        chunk = max(1, len(ops) // n)
        removed = False
        for start in range(0, len(ops), chunk):
            cand = ops[:start] + ops[start + chunk:]
            if cand and keeps(cand):
                ops = cand
                n = max(n - 1, 2)
                removed = True
                break
        if not removed:
            if chunk == 1:
                break
            n = min(len(ops), n * 2)
    # 1-minimal fixpoint (ddmin ends there too, unless the budget ran out).
    changed = True
    while changed and time.monotonic() < deadline:
        changed = False
        for i in range(len(ops)):
            cand = ops[:i] + ops[i + 1:]
            if cand and keeps(cand):
                ops = cand
                changed = True
                break
    return ops


def minimize_report(rep: dict, budget_s: float = 10.0) -> dict:
    """Minimize a violating run (from run_text or run_bytes); returns the minimized run's
    report (same kernel and hardware, same violation kind)."""
    kind = rep["violation"]["kind"]
    ops = minimize_ops(rep["hw"], list(rep["steps"]), rep["kernel"], kind, budget_s)
    out = _verdict(rep["hw"], ops, rep["kernel"])
    return out if out is not None and out["violation"] is not None else rep
