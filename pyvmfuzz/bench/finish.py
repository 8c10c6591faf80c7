"""How often the record-aware mutator finishes a race (`pyvmfuzz bench --finish`).

For every hand-derived litmus witness in corpus/litmus/ (a user-visible `expect` line), its
prefix with the last one or two lines cut is mutated once or twice in a row (libFuzzer chains
mutations the same way), and the share of mutants that show the witness's violation under
its kernel is counted — biased new lines (the default, rust/src/mutate.rs) side by side with
uniform ones. A campaign that reached such a prefix finishes the bug at about this rate per
mutation of it; time-to-find trials (`bench --zoo --configs atheris,atheris-bytes`) measure
the whole campaign."""

from __future__ import annotations

import glob
import os
import random
import re

from pyvmfuzz import _core
from pyvmfuzz import api as _api

VISIBLE = {"stale-read", "protection", "outcome", "lost-wakeup", "file-corruption"}
MAX_SIZE = 2 + 5 * 32 + 16  # the campaign's -max_len (supervisor.py)


def witnesses(litmus_dir: str) -> list[tuple[str, str, str, int, list[str], list[str]]]:
    """(file, kernel, kind, step, hw lines, op lines) per distinct user-visible expect line."""
    out = []
    for path in sorted(glob.glob(os.path.join(litmus_dir, "*.txt"))):
        lines = open(path, encoding="utf-8").read().splitlines()
        hw = [ln for ln in lines if ln.startswith("hw ")]
        ops = [ln.split(" ->")[0] for ln in lines if ln.startswith("cpu")]
        seen = set()
        for m in (re.match(r"expect (\S+) (\S+) (\d+)$", ln.strip()) for ln in lines):
            if m and m[2] in VISIBLE and (m[2], m[3]) not in seen:
                seen.add((m[2], m[3]))
                out.append((os.path.basename(path), m[1], m[2], int(m[3]), hw, ops))
    return out


def finish_rate(prefix: bytes, kernel: str, kind: str, n: int, uniform: bool, seed: int = 1) -> int:
    """Of `n` mutants (1 or 2 chained mutations each; a call left to libFuzzer counts as no
    mutant), how many end in `kind` under `kernel`."""
    rng = random.Random(seed)
    hits = 0
    for _ in range(n):
        d = prefix
        for _ in range(1 + rng.randrange(2)):
            out = _core.mutate(d, MAX_SIZE, rng.getrandbits(32), uniform)
            if out is None:
                break
            d = out
        if d is prefix:
            continue
        v = _api.report(d, kernel)["violation"]
        hits += v is not None and v["kind"] == kind
    return hits


def run(litmus_dir: str, n: int = 20000) -> str:
    """The table (markdown): per witness and cut, hits in `n` for biased and uniform lines."""
    rows = ["| witness | kernel | kind | cut | biased | uniform |", "|---|---|---|---:|---:|---:|"]
    tot = {"biased": 0, "uniform": 0}
    for name, kernel, kind, step, hw, ops in witnesses(litmus_dir):
        for cut in (1, 2):
            if step - cut < 1:
                continue
            try:
                prefix = _core.encode("\n".join(hw + ops[: step - cut]) + "\n", kernel)
            except ValueError:
                continue
            b = finish_rate(prefix, kernel, kind, n, False)
            u = finish_rate(prefix, kernel, kind, n, True)
            tot["biased"] += b
            tot["uniform"] += u
            rows.append(f"| {name[:-4]} | {kernel} | {kind} | {cut} | {b} | {u} |")
    ratio = tot["biased"] / tot["uniform"] if tot["uniform"] else float("inf")
    rows.append(f"| **all** | | | | **{tot['biased']}** | **{tot['uniform']}** |")
    return (f"Witness finishing: of {n:,} mutants of each witness prefix (last 1 or 2 lines cut), "
            f"how many show its violation; biased ÷ uniform new lines = {ratio:.2f}.\n\n" + "\n".join(rows) + "\n")
