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
