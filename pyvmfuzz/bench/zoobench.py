"""`pyvmfuzz bench --zoo`: bug-finding power on the zoo, measured the way the fuzzing field does
(Klees et al., "Evaluating Fuzz Testing", CCS 2018): per kernel and configuration N independent trials
with the same wall-clock budget; hit rate, median time to first violation (censored at the
budget), exec/s; Mann-Whitney U and Vargha-Delaney A12 against uniformly random inputs.
Configurations, all on the same decoder and machine: atheris with the core's coverage
(the campaign default), atheris without it, random bytes in Rust, a Hypothesis state machine."""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import sys

from pyvmfuzz import _core
from pyvmfuzz.bench.baselines import hypothesis_until
from pyvmfuzz.campaign.findings import atomic_write
from pyvmfuzz.bench.trials import _median_text, a12_faster, mann_whitney, one_trial

CONFIGS = ["atheris", "atheris-nocov", "random", "hypothesis"]
# not run by default: atheris with libFuzzer's byte mutations only (no record-aware mutator,
# rust/src/mutate.rs), to measure the mutator side by side
# `pct`: the PCT random loop (rust/src/pct.rs, docs/explore.md "PCT"), measured beside `random`.
# `atheris-no-vm-seed`: the campaign without the §3.4 seed (pyvmfuzz/seeds/vm-moves.txt), to
# measure that seed side by side.
ALL_CONFIGS = CONFIGS + ["atheris-bytes", "pct", "atheris-no-vm-seed"]


def trial(kernel: str, hw: str, config: str, seed: int, budget: int) -> tuple[float | None, float]:
    """(time to first violation or None, exec/s)."""
    if config == "atheris":
        return one_trial(kernel, "semantic", seed, budget, hw)
    if config == "atheris-bytes":
        return one_trial(kernel, "semantic@bytes", seed, budget, hw)
    if config == "atheris-no-vm-seed":
        return one_trial(kernel, "semantic", seed, budget, hw, {"PYVMFUZZ_SEEDS_EXCLUDE": "vm-moves"})
    if config == "atheris-nocov":
        return one_trial(kernel, "none", seed, budget, hw)
    if config == "random":
        t, n = _core.random_until(kernel, seed, float(budget), hw)
        return t, n / (t if t else budget)
    if config == "pct":
        t, n = _core.pct_until(kernel, seed, float(budget), hw)
        return t, n / (t if t else budget)
    if config == "hypothesis":
        t, n = hypothesis_until(kernel, seed, float(budget), hw)
        return t, n / (t if t else budget)
    raise ValueError(config)


def _trial_task(task: tuple) -> tuple:
    """One trial in a worker: (kernel, hw, config, seed, budget) -> (t, exec/s, visible or None)."""
    kernel, hw, config, seed, budget = task
    tr = trial(kernel, hw, config, seed, budget)
    t, rate = tr
    return t, rate, (tr.t_visible is not None and tr.accepted) if hasattr(tr, "t_visible") else None


def run(trials: int, budget: int, kernels: list[str] | None, out: str, progress=print,
        configs_wanted: list[str] | None = None, jobs: int = 1) -> str:
    """Run the zoo benchmark and write `out`/zoo.md, zoo.json (every trial's time, exec/s and
    whether it saved a check-accepted user-visible finding) and zoo.png (with matplotlib).
    `jobs` trials run at once, each in its own process; trial i of every cell has seed 1000 + i
    whatever `jobs` is, so the table does not depend on it (only contention does). Returns the
    table as Markdown."""
    zoo = [z for z in _core.zoo() if kernels is None or z["name"] in kernels]
    # what the p and A12 columns compare with: random search, else the byte-mutation campaign
    wanted = configs_wanted or CONFIGS
    base = next((c for c in ("random", "atheris-bytes", "atheris-no-vm-seed") if c in wanted), "random")
    cells = {z["name"]: [c for c in ALL_CONFIGS if c in wanted] if z["expect_found"] else ["atheris"] for z in zoo}
    tasks = [(z["name"], z["hw"], c, 1000 + i, budget) for z in zoo for i in range(trials) for c in cells[z["name"]]]
    done: dict[tuple, tuple] = {}

    def report(task, r):
        done[task] = r
        progress(f"{task[0]:<20} {task[2]:<14} trial {task[3] - 999}/{trials}: "
                 f"{'-' if r[0] is None else f'{r[0]:.2f}s'}")

    if jobs <= 1:
        for task in tasks:
            report(task, _trial_task(task))
    else:
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(_trial_task, task): task for task in tasks}
            for f in as_completed(futures):
                report(futures[f], f.result())
    rows = []
    data = {}
    for z in zoo:
        configs = cells[z["name"]]
        res = {c: ([], []) for c in configs}
        visible = {c: [] for c in configs}  # per trial: user-visible and check-accepted (campaigns only)
        for i in range(trials):
            for c in configs:
                t, rate, vis = done[(z["name"], z["hw"], c, 1000 + i, budget)]
                res[c][0].append(t)
                res[c][1].append(rate)
                if vis is not None:
                    visible[c].append(vis)
        data[z["name"]] = (z, res, visible)
        cens = {c: [budget if t is None else t for t in ts] for c, (ts, _) in res.items()}
        for c, (ts, rates) in res.items():
            hits = sum(t is not None for t in ts)
            if base in cens and c != base:
                p = f"{mann_whitney(cens[c], cens[base]):.3f}"
                a = f"{a12_faster(cens[c], cens[base]):.2f}"
            else:
                p = a = "—"
            medtxt = f"{_median_text(ts, budget)} s"  # censored: "> budget s" when it reaches a miss
            rows.append(f"| {z['name']} | {z['hw'].split('=')[1]} | {'found' if z['expect_found'] else 'clean'} | {c} "
                        f"| {hits}/{len(ts)} | {f'{sum(visible[c])}/{len(visible[c])}' if visible[c] else '—'} "
                        f"| {medtxt} | {statistics.median(rates):,.0f} | {p} | {a} |")
    when = datetime.date.today().isoformat()
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    md = [
        f"Zoo benchmark: {trials} trials per kernel and configuration, budget {budget} s each "
        f"({when}, {machine}); `pyvmfuzz bench --zoo --trials {trials} --budget {budget}"
        f"{' --kernels ' + ','.join(kernels) if kernels else ''}"
        f"{' --configs ' + ','.join(configs_wanted) if configs_wanted and configs_wanted != CONFIGS else ''}"
        f"{f' --jobs {jobs}' if jobs > 1 else ''}`.",
        "",
        f"| kernel | hw | expected | configuration | hits | user-visible (check-accepted) | median time to first violation | exec/s | MWU p vs {base} | A12 vs {base} (P[sooner]) |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|",
        *rows,
    ]
    text = "\n".join(md) + "\n"
    os.makedirs(out, exist_ok=True)
    atomic_write(os.path.join(out, "zoo.md"), text)
    atomic_write(os.path.join(out, "zoo.json"), json.dumps({
        "trials": trials, "budget_s": budget, "jobs": jobs, "date": when, "machine": machine,
        "kernels": {name: {"hw": z["hw"], "expect_found": z["expect_found"],
                           "configs": {c: {"times_s": ts, "exec_per_s": rates, "visible_accepted": visible[c] or None}
                                       for c, (ts, rates) in res.items()}}
                    for name, (z, res, visible) in data.items()}}, indent=1) + "\n")
    plot(data, budget, os.path.join(out, "zoo.png"), f"{when}, {machine}")
    return text


def plot(data: dict, budget: int, path: str, note: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.stderr.write("pyvmfuzz bench: matplotlib not installed (pip install 'pyvmfuzz[bench]'): no plot\n")
        return False
    found = [(name, z, res) for name, (z, res, _) in data.items() if z["expect_found"]]
    if not found:
        return False
    colors = {"atheris": "#3b6fd8", "atheris-nocov": "#9aa3b5", "random": "#e08a2c", "hypothesis": "#4a9e5c", "atheris-bytes": "#8e5cc8", "pct": "#c0392b",
              "atheris-no-vm-seed": "#7fa7f0"}
    shown = [c for c in ALL_CONFIGS if any(c in res for _, _, res in found)]
    fig, ax = plt.subplots(figsize=(11, 0.3 * len(found) * len(shown) + 1.8))
    y = 0
    ticks, labels = [], []
    for name, z, res in found:
        for c in shown:
            ts = res.get(c, ([], []))[0]
            xs = [budget * 1.15 if t is None else max(t, 1e-4) for t in ts]
            ax.scatter(xs, [y] * len(xs), color=colors[c], s=22, alpha=0.8,
                       marker="x" if any(t is None for t in ts) and all(t is None for t in ts) else "o",
                       label=c if name == found[0][0] else None)
            ticks.append(y)
            labels.append(f"{name} · {c}")
            y += 1
        y += 0.8
    ax.axvline(budget, color="#b3261e", lw=1, ls="--")
    ax.text(budget, 1.01, f" budget {budget} s; misses drawn past it", color="#b3261e", fontsize=8,
            transform=ax.get_xaxis_transform())
    ax.set_xscale("log")
    ax.set_yticks(ticks)
    ax.set_yticklabels(labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("time to first violation (s, log)")
    ax.set_title(f"pyvmfuzz zoo: time to first violation per trial ({note})", fontsize=9)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
