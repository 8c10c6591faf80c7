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
_TTV = re.compile(r"# time to first user-visible violation: ([\d.]+)s")
_EXECS = re.compile(r"execs \(([\d,]+)/s\)")
# the path, then (campaign.triage, one finding per bug) " — TITLE (N violating inputs)"
_VISIBLE = re.compile(r"^# violation \(user-visible\): (\S+\.txt)(?: — .*)?$", re.M)
_INTERNAL = re.compile(r"^# violation \(internal-only\): ", re.M)


@dataclass
class Trial:
    """One campaign: time to the first confirmed finding and to the first user-visible one
    (None: not within the budget), exec/s, whether a user-visible finding was saved that
    `check --kernel all` accepts, and how many findings stayed internal-only."""
    t: float | None
    rate: float
    t_visible: float | None = None
    accepted: bool = False
    internal_only: int = 0

    def __iter__(self):  # (t, rate), as before
        return iter((self.t, self.rate))


@dataclass
class Result:
    config: str
    times: list = field(default_factory=list)  # seconds, None when not found in the budget
    rates: list = field(default_factory=list)
    visible: list = field(default_factory=list)  # time to first user-visible finding, or None
    accepted: list = field(default_factory=list)  # bool per trial
    internal_only: list = field(default_factory=list)

    def hits(self) -> int:
        return sum(t is not None for t in self.times)

    def median(self, budget: float) -> float:
        # censored at the budget: a miss counts as the budget
        return statistics.median([budget if t is None else t for t in self.times])


def accepted_visible(stdout: str) -> bool:
    """A user-visible finding the campaign listed passes `check --kernel all` (its expect
    lines, its assertions, core and oracle agreeing under every kernel)."""
    from pyvmfuzz.oracle.check import KERNELS, check_paths

    for path in _VISIBLE.findall(stdout)[:1]:
        try:
            _, problems = check_paths([path], KERNELS)
        except Exception:  # noqa: BLE001 -- a finding that cannot be checked is not accepted
            return False
        return not problems
    return False


# "COVERAGE@before": the campaign as before issue 18's throughput changes (violating runs
# feed the corpus, corpus files written straight to disk, every finding shape handled at once)
BEFORE_18 = {"PYVMFUZZ_KEEP_VIOLATING": "1", "PYVMFUZZ_CORPUS_TMPFS": "0", "PYVMFUZZ_HANDLE_SHARE": "1"}


def one_trial(kernel: str, coverage: str, seed: int, budget: int, hw: str | None = None,
              extra_env: dict[str, str] | None = None) -> Trial:
    coverage, _, variant = coverage.partition("@")
    env = dict(os.environ, **(BEFORE_18 if variant == "before" else {}), **(extra_env or {}))
    # "COVERAGE@bytes": libFuzzer's byte mutations only, no record-aware mutator (mutate.rs)
    env["PYVMFUZZ_MUTATOR"] = "bytes" if variant == "bytes" else env.get("PYVMFUZZ_MUTATOR", "records")
    with tempfile.TemporaryDirectory(prefix="pyvmfuzz-trial-") as out:
        cmd = [sys.executable, "-P", "-m", "pyvmfuzz", "fuzz", "--kernel", kernel, "--time", str(budget),
               "--seed", str(seed), "--coverage", coverage, "--out", out, "--quiet", "--stop-on-find"]
        if hw:
            cmd += ["--hw", hw]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=budget + 300, env=env)
        if p.returncode == 2:
            raise RuntimeError(p.stderr.strip())
        m = _TTF.search(p.stdout)
        r = _EXECS.search(p.stdout)
        v = _TTV.search(p.stdout)
        return Trial(float(m[1]) if m else None, float(r[1].replace(",", "")) if r else 0.0,
                     float(v[1]) if v else None, accepted_visible(p.stdout), len(_INTERNAL.findall(p.stdout)))


def run_trials(kernel: str, configs: list[str], trials: int, budget: int, seed0: int = 1,
               progress=None) -> list[Result]:
    results = {c: Result(c) for c in configs}
    for i in range(trials):
        for c in configs:
            tr = one_trial(kernel, c, seed0 + i, budget)
            results[c].times.append(tr.t)
            results[c].rates.append(tr.rate)
            results[c].visible.append(tr.t_visible)
            results[c].accepted.append(tr.accepted)
            results[c].internal_only.append(tr.internal_only)
            if progress:
                progress(c, i, tr.t)
    return list(results.values())


def _median_text(ts: list, budget: int) -> str:
    """Median of times censored at the budget (None: a miss). Only a lower bound is known
    when the median reaches a miss: "> budget" when most trials missed; with exactly half
    missing, "> (last hit + budget) / 2"."""
    hits = sorted(t for t in ts if t is not None)
    if not ts:
        return "—"
    if len(hits) * 2 < len(ts):
        return f"> {budget}"
    if len(hits) * 2 == len(ts):
        return f"> {(hits[-1] + budget) / 2:.2f}"
    m = statistics.median([budget if t is None else t for t in ts])
    # the shallow bugs differ in milliseconds, the shallowest in tens of µs
    return f"{m:.5f}" if m < 0.01 else f"{m:.3f}" if m < 1 else f"{m:.2f}"


def table(kernel: str, results: list[Result], budget: int) -> str:
    """Per configuration: confirmed hits and median time to the first; user-visible hits (a
    finding a user sees, oracle-confirmed) and their median; accepted: the user-visible
    finding passes `check --kernel all`; internal-only findings saved (no witness found)."""
    n = len(results[0].times)
    rows = [f"time to first violation, kernel {kernel}, budget {budget}s, {n} trials per configuration "
            f"(confirmed findings only; user-visible counted apart)",
            f"{'coverage':<10} {'hits':>6} {'median s':>9} {'visible':>8} {'median s':>9} {'accepted':>9} "
            f"{'int.-only':>9} {'exec/s':>10}  times to first user-visible"]
    for r in results:
        ts = " ".join("-" if t is None else f"{t:.2f}" for t in r.visible)
        rate = statistics.median(r.rates) if r.rates else 0
        vis = sum(t is not None for t in r.visible)
        rows.append(f"{r.config:<10} {r.hits():>3}/{len(r.times):<2} {_median_text(r.times, budget):>9} "
                    f"{vis:>5}/{len(r.visible):<2} {_median_text(r.visible, budget):>9} "
                    f"{sum(r.accepted):>6}/{len(r.accepted):<2} {sum(r.internal_only):>9} {rate:>10,.0f}  {ts}")
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
