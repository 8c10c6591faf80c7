"""Core steps/s of this build against a previous build of the extension, side by side in one
process (issue 13: programs without `until` must stay within 10% of the previous release).

The previous build is a copy of `_core.abi3.so` (e.g. `.prev_core/_core.abi3.so`, git-ignored);
both modules are loaded at once under different names. The programs are the same for both:
random plain programs decoded by the previous build, as text, each encoded by each build into
its own byte form, then run with `FuzzTarget.run_batch` (decode + execute + judge, in Rust).
Times are process CPU seconds, best of `rounds` alternating rounds (the machine is shared).
"""
from __future__ import annotations

import importlib.util
import random
import time


def load_prev(path: str):
    spec = importlib.util.spec_from_file_location("pyvmfuzz_prev._core", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path}: not a loadable extension")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def default_path() -> str:
    """`.prev_core/_core.abi3.so` beside the package (the checkout's root)."""
    import os

    return os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                        ".prev_core", "_core.abi3.so")


def plain_texts(programs: int, seed: int, kernel: str, prev=None) -> list[str]:
    """Random programs without `until`/`resume`/`ipi` (`plain_bytes`), decoded by the previous
    build when there is one, else by this one; only programs both builds can run are kept (a
    build that changed a kernel's behaviour may take another schedule: a line that was
    applicable may not be), so the count can fall short of `programs`."""
    from pyvmfuzz import _core as new

    rng = random.Random(seed)
    dec = prev if prev is not None else new
    out = []
    for _ in range(programs):
        t = dec.decode(plain_bytes(rng, 64), kernel)
        try:
            new.run_text(t, kernel)
            if prev is not None:
                prev.run_text(t, kernel)
        except ValueError:
            continue
        out.append(t)
    return out


def plain_bytes(rng: random.Random, max_records: int) -> bytes:
    """A random input of this build's byte form (1..max_records 5-byte records) that decodes
    to a plain program: no value/pid escapes (records stay 5 bytes apart), every until byte
    below 0xa0 (no until), so nothing is ever in flight and resume/ipi choices fold to loads."""
    b = bytearray(rng.randbytes(2 + 5 * rng.randrange(1, max_records + 1)))
    for i in range(2, len(b), 5):
        b[i + 2] %= 0xff
        b[i + 3] %= 0xff
        b[i + 4] %= 0xa0
    return bytes(b)


def compare(prev_path: str | None, programs: int = 5000, seed: int = 5, kernel: str = "fixed", rounds: int = 10,
            oracle_programs: int = 0) -> dict:
    """Returns {"prev": steps/s or None, "new": steps/s, "interleaved": steps/s,
    "interleaved_prev": steps/s or None, "steps": n}: the first two on the same plain programs,
    the others on random fuzzing programs (`soak`: up to 32 lines, 1-4 CPUs, interleaved) of
    each build, judged. `prev_path` None: this build only ("prev" None). With
    `oracle_programs` > 0 also "oracle_plain" (oracle seconds ÷ core seconds on the first
    that many plain programs) and "oracle_interleaved" (the same on interleaved programs, or
    the reason the oracle cannot judge them, a str). Raises ImportError for a bad build."""
    from pyvmfuzz import _core as new
    prev = load_prev(prev_path) if prev_path else None
    texts = plain_texts(programs, seed, kernel, prev)
    steps = sum(len(new.run_text(t, kernel)["trace"]) for t in texts)
    inputs = {"new": [new.encode(t, kernel) for t in texts]}
    targets = {"new": new.FuzzTarget(kernel)}
    names = ("new",)
    if prev is not None:
        inputs["prev"] = [prev.encode(t, kernel) for t in texts]
        targets["prev"] = prev.FuzzTarget(kernel)
        names = ("prev", "new")
    best = {"prev": 0.0, "new": 0.0, "interleaved": 0.0, "interleaved_prev": 0.0}
    mods = {"prev": prev, "new": new}
    for _ in range(rounds):
        for name in names:
            t0 = time.process_time()
            targets[name].run_batch(inputs[name])
            dt = time.process_time() - t0
            best[name] = max(best[name], steps / dt)
        # random fuzzing programs (up to 32 lines, 1-4 CPUs, interleaved), each build its own
        # byte form decoded by itself: what a campaign runs
        for name in names:
            t0 = time.process_time()
            r = mods[name].soak(programs, seed=seed, kernel=kernel, max_steps=32, max_cpus=4, max_tlb=16)
            key = "interleaved" if name == "new" else "interleaved_prev"
            best[key] = max(best[key], r["steps"] / (time.process_time() - t0))
    best["steps"] = steps
    best.update(vm_line_cost(new, programs, seed, kernel, rounds))
    best["op_costs"] = op_costs(new, kernel)
    if prev is None:
        best["prev"] = best["interleaved_prev"] = None
    if oracle_programs > 0:
        best["oracle_plain"] = _oracle_ratio(new, texts[:oracle_programs], kernel)
        best["oracle_interleaved"] = _oracle_interleaved(new, oracle_programs, seed, kernel)
    return best


_VM_OPS = (" munmap ", " mmap ", " mremap ", " msync ", " pageout ")


def vm_line_cost(new, programs: int, seed: int, kernel: str, rounds: int) -> dict:
    """docs/contract.md §3.4's lines against the others, per step: this build's random plain
    programs split into those with at least one §3.4 line and those without, each run in one
    batch (best of `rounds`, CPU time). {"vm_lines": steps/s, "no_vm_lines": steps/s,
    "vm_share": the §3.4 lines' share of the first set's steps}."""
    texts = plain_texts(programs, seed + 1, kernel)
    with_vm = [t for t in texts if any(op in t for op in _VM_OPS)]
    without = [t for t in texts if t not in with_vm]
    out = {}
    target = new.FuzzTarget(kernel)
    for name, group in (("vm_lines", with_vm), ("no_vm_lines", without)):
        steps = sum(len(new.run_text(t, kernel)["trace"]) for t in group)
        data = [new.encode(t, kernel) for t in group]
        best = 0.0
        for _ in range(rounds):
            t0 = time.process_time()
            target.run_batch(data)
            best = max(best, steps / max(time.process_time() - t0, 1e-9))
        out[name] = best
    lines = [ln for t in with_vm for ln in t.splitlines() if ln.startswith("cpu")]
    out["vm_share"] = sum(any(op in ln + " " for op in _VM_OPS) for ln in lines) / max(1, len(lines))
    return out


# Each pattern: a store that faults the page back, then map operations; repeated to 60 lines.
OP_PATTERNS = {
    "madvise dontneed": ["cpu0 store data0.0 0x1", "cpu0 madvise data0 dontneed"],
    "mprotect r, rw": ["cpu0 store data0.0 0x1", "cpu0 mprotect data0 r", "cpu0 mprotect data0 rw"],
    "pageout (§3.4)": ["cpu0 store data0.0 0x1", "cpu0 pageout P1 data0"],
    "msync (§3.4)": ["cpu0 store file0.0 0x1", "cpu0 msync file0"],
    "munmap, mmap (§3.4)": ["cpu0 store data0.0 0x1", "cpu0 munmap data0", "cpu0 mmap data0"],
    "mremap there and back (§3.4)": ["cpu0 store data0.0 0x1", "cpu0 mremap data0 hole0", "cpu0 mremap hole0 data0"],
}


def op_costs(new, kernel: str = "fixed", rounds: int = 5, reps: int = 2000) -> dict[str, float]:
    """ns per line of each `OP_PATTERNS` program (60 lines, 2 CPUs, run `reps` times in one
    batch, best of `rounds`, CPU time): the map operations of docs/contract.md §3.4 beside the
    old ones, each with the store that faults its page back."""
    target = new.FuzzTarget(kernel)
    out = {}
    for name, pat in OP_PATTERNS.items():
        text = "hw cpus=2\n" + "\n".join((pat * 60)[:60]) + "\n"
        data = [new.encode(text, kernel)] * reps
        best = float("inf")
        for _ in range(rounds):
            t0 = time.process_time()
            target.run_batch(data)
            best = min(best, (time.process_time() - t0) / (60 * reps))
        out[name] = best * 1e9
    return out


def _oracle_ratio(new, texts: list[str], kernel: str) -> float:
    """Oracle seconds ÷ core seconds (decode + execute + judge) on `texts`, CPU time."""
    from pyvmfuzz import oracle
    from pyvmfuzz.oracle.check import observations

    traces = [observations(new.run_text(t, kernel)) for t in texts]
    data = [new.encode(t, kernel) for t in texts]
    target = new.FuzzTarget(kernel)
    reps, t0 = 0, time.process_time()
    while reps == 0 or time.process_time() - t0 < 0.3:  # one batch is too short to time alone
        target.run_batch(data)
        reps += 1
    core = (time.process_time() - t0) / reps
    t0 = time.process_time()
    for tr in traces:
        oracle.judge(tr)
    return (time.process_time() - t0) / core


def _oracle_interleaved(new, programs: int, seed: int, kernel: str):
    """As `_oracle_ratio` on random interleaved programs (this build's byte form), or why
    not (a str) when the oracle cannot judge a trace with paused lines."""
    from pyvmfuzz import oracle
    from pyvmfuzz.oracle.check import observations

    rng = random.Random(seed + 1)
    texts = [new.decode(rng.randbytes(2 + 5 * rng.randrange(1, 65)), kernel) for _ in range(programs)]
    texts = [t for t in texts if " until " in t] or texts
    try:
        oracle.judge(observations(new.run_text(texts[0], kernel)))
    except Exception as e:  # the oracle of this checkout predates §4.1
        return f"the oracle cannot judge interleaved traces here ({type(e).__name__}: {str(e)[:60]})"
    return _oracle_ratio(new, texts, kernel)


def explore_times(prev_path: str, depth: int = 5, hw: str = "cpus=2 mode=pc64") -> dict:
    """`explore --kernel fixed` to `depth` lines by both builds, side by side: {"prev": (lines
    generated, distinct, CPU s), "new": (...)}; the counts must be equal (the same search)."""
    from pyvmfuzz import _core as new

    out = {}
    for name, mod in (("prev", load_prev(prev_path)), ("new", new)):
        t0 = time.process_time()
        r = mod.explore("fixed", depth, hw)
        out[name] = (r["generated"], r["distinct"], time.process_time() - t0)
    return out


if __name__ == "__main__":
    import sys
    r = compare(sys.argv[1] if len(sys.argv) > 1 else default_path())
    print(f"previous build, plain programs : {r['prev']:12,.0f} steps/s")
    print(f"this build, same plain programs: {r['new']:12,.0f} steps/s  ({r['new'] / r['prev']:.2f}x)")
    print(f"this build, interleaved        : {r['interleaved']:12,.0f} steps/s")
