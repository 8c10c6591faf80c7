"""Behaviour against a previous build of the core, both loaded in one process (issue 24: a
rebuilt core must report exactly what the old one did).

For each kernel, `programs` random byte-form inputs (seeded; half plain, half with `until`/
`resume`/`ipi` lines; the 2-byte header picks 1..8 CPUs, the TLB size and pc64/tagged) are
run by both builds; the reports (steps, trace, verdict, wake lists) and the semantic features
must be equal, and for one program in `explain_every` the `explain` snapshots too; on `fixed`
the mutator's and crossover's outputs for the same input and seed as well. Run with
`pyvmfuzz bench --diff-prev PATH --programs N` (kernels in parallel with `--jobs`).
"""
from __future__ import annotations

import random
import re


def _bytes(rng: random.Random, i: int) -> bytes:
    from pyvmfuzz.bench.prevcore import plain_bytes

    if i % 2:
        return plain_bytes(rng, 48)
    # Bias the header to 1..4 CPUs (the machines campaigns run) in 3 of 4 programs.
    b = bytearray(rng.randbytes(2 + 5 * rng.randrange(1, 49)))
    if i % 4:
        b[0] = (b[0] & 0xf8) | (b[0] & 3)
    return bytes(b)


def kernel_diff(prev_path: str, kernel: str, programs: int, seed: int, explain_every: int = 50,
                skip: tuple[str, ...] = ()) -> dict:
    """{"kernel", "programs", "steps", "differences": [(hex, what)] (the first 5), "count"}."""
    from pyvmfuzz import _core as new
    from pyvmfuzz.bench.prevcore import load_prev

    prev = load_prev(prev_path)
    rng = random.Random(f"{seed}-{kernel}")
    diffs: list = []
    count = steps = 0
    for i in range(programs):
        d = _bytes(rng, i)
        what = _compare(prev, new, d, kernel, explain=explain_every > 0 and i % explain_every == 0, skip=skip)
        steps += what[1]
        if what[0]:
            count += 1
            if len(diffs) < 5:
                diffs.append((d.hex(), what[0]))
    return {"kernel": kernel, "programs": programs, "steps": steps, "differences": diffs, "count": count}


def _compare(prev, new, d: bytes, kernel: str, explain: bool, skip: tuple[str, ...] = ()) -> tuple[str, int]:
    """('' or what differs, steps run). `skip`: comparisons left out ("features", "explain",
    "mutate") where a change meant them to differ."""
    # The record-aware mutator and crossover on the same input and seed (kernel-independent:
    # only on fixed's share).
    if kernel == "fixed" and "mutate" not in skip:
        seed = int.from_bytes(d[:4].ljust(4, b"\0"), "little")
        for uniform in (False, True):
            if prev.mutate(d, 4096, seed, uniform) != new.mutate(d, 4096, seed, uniform):
                return "mutate", 0
        if prev.crossover(d, d[::-1], 4096, seed) != new.crossover(d, d[::-1], 4096, seed):
            return "crossover", 0
    outs = []
    for mod in (prev, new):
        try:
            outs.append(("ok", mod.run_bytes(d, kernel)))
        except ValueError as e:
            outs.append(("error", str(e)))
    if outs[0] != outs[1]:
        return "report", 0
    if outs[0][0] == "error":
        return "", 0
    rep = outs[0][1]
    if "features" not in skip and prev.semantic_features(d, kernel) != new.semantic_features(d, kernel):
        return "semantic features", len(rep["trace"])
    if explain and "explain" not in skip:
        text = prev.decode(d, kernel)
        ex = []
        for mod in (prev, new):
            try:
                ex.append(mod.explain(text, kernel))
            except ValueError as e:
                ex.append(str(e))
        if ex[0] != ex[1]:
            return "explain", len(rep["trace"])
    return "", len(rep["trace"])


def _store_through_stale_entry(prev, text: str, kernel: str, i: int) -> bool:
    """Whether step `i` (0-based) of `text` is a store that the previous build let through a
    TLB entry whose PTE no longer maps that frame writable (docs/contract.md §3.4: such a
    store now faults, as x86 does). Read from the previous build's own snapshots."""
    if i == 0:
        return False
    ex = prev.explain(text, kernel)
    line = ex["steps"][i].split()
    if len(line) < 3 or line[1] != "store":
        return False
    cpu = int(line[0][3:])
    page = line[2].split(".")[0]
    before = ex["states"][i - 1]
    running = before["cpus"][cpu]["running"]
    if running is None:
        return False
    pid = int(running.split(".")[0][1:])
    entry = [e for e in before["cpus"][cpu]["tlb"] if e[0] == pid and e[1] == page]
    if not entry or not entry[0][3]:
        return False
    procs = [p for p in before["procs"] if p["pid"] == pid]
    pte = procs[0]["pages"][page]["pte"] if procs else None
    return pte is None or pte[0] != entry[0][2] or not pte[1]


def _compare_text(prev, new, d: bytes, kernel: str) -> tuple[str, int]:
    """The program the previous build decodes from `d`, run as text by both builds (a byte
    form change makes byte inputs incomparable): ('' or what differs, steps). A difference
    whose first differing step is a store through a stale writable entry is reported as
    'store-faults' (the one kind docs/contract.md §3.4 allows)."""
    text = prev.decode(d, kernel)
    outs = []
    for mod in (prev, new):
        try:
            r = mod.run_text(text, kernel)
            v = r["violation"]
            if v is not None and v["kind"] == "panic":  # the assertion's source line moves with the code
                v = dict(v, observed=re.sub(r" at rust/src/\S+:\d+", "", v["observed"]))
            outs.append(("ok", r["trace"], v, None))
        except ValueError as e:
            outs.append(("error", str(e), None, e))
    if outs[0][:3] == outs[1][:3]:
        return "", len(outs[0][1]) if outs[0][0] == "ok" else 0
    if outs[0][0] == "ok" and outs[1][0] == "ok":
        a, b = outs[0][1], outs[1][1]
        i = next((j for j in range(min(len(a), len(b))) if a[j] != b[j]), min(len(a), len(b)))
        if i < len(a) and i < len(b) and _store_through_stale_entry(prev, text, kernel, i):
            return "store-faults", len(a)
        va, vb = outs[0][2], outs[1][2]
        if (va is not None and vb is not None and va["kind"] == "use-after-free" and i == va["step"] - 1
                and vb["step"] == va["step"] and vb["kind"] in ("use-after-free", "stale-read")):
            # The step that reads a freed frame, a use-after-free before: its memory has been
            # reused since (docs/contract.md §3.4), so the value read differs -- and where it
            # differs from the contract's, the same step is now a stale-read (outcome kinds come
            # first within a step, §4).
            return "reused", len(a)
        if a == b:
            return "verdict", len(a)
    elif outs[1][0] == "error" and outs[0][0] == "ok" and getattr(outs[1][3], "line", 0) > 0:
        # The new build refused a line the old one ran: compare what ran before it (a store
        # that now faults leaves its thread in the kernel, so later lines on that CPU cannot run).
        keep = text.splitlines()[:outs[1][3].line - 1]
        a = prev.run_text("\n".join(keep) + "\n", kernel)["trace"]
        b = new.run_text("\n".join(keep) + "\n", kernel)["trace"]
        i = next((j for j in range(min(len(a), len(b))) if a[j] != b[j]), min(len(a), len(b)))
        if i < len(a) and i < len(b) and _store_through_stale_entry(prev, text, kernel, i):
            return "store-faults", len(outs[0][1])
        return "refused: " + outs[1][1], len(outs[0][1])
    return "trace", 0


def text_diff(prev_path: str, kernel: str, programs: int, seed: int) -> dict:
    """As `kernel_diff`, by text (`_compare_text`): {"kernel", "programs", "steps",
    "differences" (the first 5 not of the allowed kind), "count", "store_faults"}."""
    from pyvmfuzz import _core as new
    from pyvmfuzz.bench.prevcore import load_prev

    prev = load_prev(prev_path)
    rng = random.Random(f"{seed}-{kernel}")
    diffs: list = []
    count = steps = allowed = 0
    for i in range(programs):
        d = _bytes(rng, i)
        what, n = _compare_text(prev, new, d, kernel)
        steps += n
        if what in ("store-faults", "reused"):
            allowed += 1
        elif what:
            count += 1
            if len(diffs) < 5:
                diffs.append((prev.decode(d, kernel), what))
    return {"kernel": kernel, "programs": programs, "steps": steps, "differences": diffs, "count": count,
            "store_faults": allowed}


def run(prev_path: str, programs: int, seed: int, jobs: int, kernels: list[str] | None = None, progress=None,
        skip: tuple[str, ...] = (), text: bool = False) -> list[dict]:
    from concurrent.futures import ProcessPoolExecutor

    from pyvmfuzz import _core

    names = kernels or [k for k, _ in _core.kernels()]
    # Chunks of at most 25,000 programs, so progress moves and jobs share the work.
    chunk = min(programs, 25_000)
    work = [(k, s, min(chunk, programs - s)) for k in names for s in range(0, programs, chunk)]
    out: dict[str, dict] = {k: {"kernel": k, "programs": 0, "steps": 0, "differences": [], "count": 0,
                                "store_faults": 0} for k in names}
    with ProcessPoolExecutor(max_workers=max(1, jobs)) as ex:
        if text:
            futs = {ex.submit(text_diff, prev_path, k, n, seed * 1_000_003 + s): k for k, s, n in work}
        else:
            futs = {ex.submit(kernel_diff, prev_path, k, n, seed * 1_000_003 + s, 50, skip): k for k, s, n in work}
        from concurrent.futures import as_completed

        for f in as_completed(futs):
            r = f.result()
            o = out[r["kernel"]]
            o["programs"] += r["programs"]
            o["steps"] += r["steps"]
            o["count"] += r["count"]
            o["store_faults"] += r.get("store_faults", 0)
            o["differences"] = (o["differences"] + r["differences"])[:5]
            if progress:
                progress(r["programs"])
    return [out[k] for k in names]


def explore_diff(prev_path: str, kernels: list[str], depth: int = 4) -> list[str]:
    """`explore` to `depth` lines on every kernel, 2 CPUs pc64 and 3 CPUs tagged, by both
    builds: the bound completed and the witness (line for line) must be equal (the search's
    canonical state and judge copies are exercised, which run_bytes does not). The counts are
    not compared: since the exact `until` hint and the window's step code without `until`
    (docs/explore.md, "Fewer lines at the same states") a search executes fewer lines and
    merges more states than the builds before it. Returns the differences."""
    from pyvmfuzz import _core as new
    from pyvmfuzz.bench.prevcore import load_prev

    prev = load_prev(prev_path)
    keys = ("completed", "witness")
    out = []
    for k in kernels:
        for hw in ("cpus=2 mode=pc64", "cpus=3 mode=tagged"):
            a, b = prev.explore(k, depth, hw), new.explore(k, depth, hw)
            if any(a[x] != b[x] for x in keys):
                out.append(f"explore {k} {hw} depth {depth}: " + ", ".join(
                    f"{x} {a[x]!r} -> {b[x]!r}" for x in keys if a[x] != b[x]))
    return out
