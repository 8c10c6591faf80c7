"""Time-to-first-violation trials: independent campaigns (different seeds, same budget) per
configuration, run interleaved so machine noise hits every configuration alike."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

_TTF = re.compile(r"# time to first violation: ([\d.]+)s")
_EXECS = re.compile(r"execs \(([\d,]+)/s\)")


@dataclass
class Result:
    config: str
    times: list = field(default_factory=list)  # seconds, None when not found in the budget
    rates: list = field(default_factory=list)

    def hits(self) -> int:
        return sum(t is not None for t in self.times)

    def median(self, budget: float) -> float:
        # censored at the budget: a miss counts as the budget
        return statistics.median([budget if t is None else t for t in self.times])


def one_trial(kernel: str, coverage: str, seed: int, budget: int, hw: str | None = None) -> tuple[float | None, float]:
    with tempfile.TemporaryDirectory(prefix="pyvmfuzz-trial-") as out:
        cmd = [sys.executable, "-P", "-m", "pyvmfuzz", "fuzz", "--kernel", kernel, "--time", str(budget),
               "--seed", str(seed), "--coverage", coverage, "--out", out, "--quiet", "--stop-on-find"]
        if hw:
            cmd += ["--hw", hw]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=budget + 300)
        if p.returncode == 2:
            raise RuntimeError(p.stderr.strip())
        m = _TTF.search(p.stdout)
        r = _EXECS.search(p.stdout)
        return (float(m[1]) if m else None), (float(r[1].replace(",", "")) if r else 0.0)


def run_trials(kernel: str, configs: list[str], trials: int, budget: int, seed0: int = 1,
               progress=None) -> list[Result]:
    results = {c: Result(c) for c in configs}
    for i in range(trials):
        for c in configs:
            t, rate = one_trial(kernel, c, seed0 + i, budget)
            results[c].times.append(t)
            results[c].rates.append(rate)
            if progress:
                progress(c, i, t)
    return list(results.values())


def table(kernel: str, results: list[Result], budget: int) -> str:
    rows = [f"time to first violation, kernel {kernel}, budget {budget}s, {len(results[0].times)} trials per configuration",
            f"{'coverage':<10} {'hits':>6} {'median s':>9} {'exec/s':>10}  times"]
    for r in results:
        ts = " ".join("-" if t is None else f"{t:.1f}" for t in r.times)
        rate = statistics.median(r.rates) if r.rates else 0
        rows.append(f"{r.config:<10} {r.hits():>3}/{len(r.times):<2} {r.median(budget):>9.1f} {rate:>10,.0f}  {ts}")
    return "\n".join(rows)


def mann_whitney(a: list[float], b: list[float]) -> float:
    """Two-sided p-value of the Mann-Whitney U test (normal approximation, tie-corrected,
    continuity-corrected). Enough for 10 vs 10 trials; exactness is not the point."""
    import math

    n1, n2 = len(a), len(b)
    if n1 == 0 or n2 == 0:
        return 1.0
    allv = sorted([(v, 0) for v in a] + [(v, 1) for v in b])
    ranks = [0.0] * len(allv)
    i = 0
    ties = 0.0
    while i < len(allv):
        j = i
        while j + 1 < len(allv) and allv[j + 1][0] == allv[i][0]:
            j += 1
        r = (i + j) / 2 + 1
        for k in range(i, j + 1):
            ranks[k] = r
        t = j - i + 1
        ties += t ** 3 - t
        i = j + 1
    r1 = sum(r for r, (_, g) in zip(ranks, allv) if g == 0)
    u1 = r1 - n1 * (n1 + 1) / 2
    mu = n1 * n2 / 2
    n = n1 + n2
    var = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1)))
    if var <= 0:
        return 1.0
    z = (abs(u1 - mu) - 0.5) / math.sqrt(var)
    return max(0.0, min(1.0, math.erfc(max(z, 0) / math.sqrt(2))))


def a12_faster(a: list[float], b: list[float]) -> float:
    """Vargha-Delaney effect size as P(a run of A finds it sooner than one of B) + half the ties."""
    if not a or not b:
        return 0.5
    wins = sum((x < y) + 0.5 * (x == y) for x in a for y in b)
    return wins / (len(a) * len(b))


def censored(r: Result, budget: float) -> list[float]:
    return [budget if t is None else t for t in r.times]


def comparison(results: list[Result], budget: int, baseline: str) -> str:
    base = next((r for r in results if r.config == baseline), None)
    if base is None:
        return ""
    rows = [f"vs {baseline}: Mann-Whitney U two-sided p, Vargha-Delaney A12 (P[sooner])"]
    for r in results:
        if r is base:
            continue
        p = mann_whitney(censored(r, budget), censored(base, budget))
        a = a12_faster(censored(r, budget), censored(base, budget))
        rows.append(f"  {r.config:<10} p={p:.3f}  A12={a:.2f}")
    return "\n".join(rows)
