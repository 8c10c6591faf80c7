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


def compare(prev_path: str, programs: int = 5000, seed: int = 5, kernel: str = "fixed", rounds: int = 10) -> dict:
    """Returns {"prev": steps/s, "new": steps/s, "interleaved": steps/s, "steps": n}: the
    first two on the same plain programs, the third on random interleaved programs of this
    build (`_core.soak`)."""
    from pyvmfuzz import _core as new
    prev = load_prev(prev_path)
    rng = random.Random(seed)
    texts = [prev.decode(rng.randbytes(2 + 4 * rng.randrange(1, 65)), kernel) for _ in range(programs)]
    steps = sum(len(new.run_text(t, kernel)["trace"]) for t in texts)
    inputs = {"prev": [prev.encode(t, kernel) for t in texts], "new": [new.encode(t, kernel) for t in texts]}
    targets = {"prev": prev.FuzzTarget(kernel), "new": new.FuzzTarget(kernel)}
    best = {"prev": 0.0, "new": 0.0, "interleaved": 0.0}
    for _ in range(rounds):
        for name in ("prev", "new"):
            t0 = time.process_time()
            targets[name].run_batch(inputs[name])
            dt = time.process_time() - t0
            best[name] = max(best[name], steps / dt)
        t0 = time.process_time()
        r = new.soak(programs, seed=seed, kernel=kernel)
        best["interleaved"] = max(best["interleaved"], r["steps"] / (time.process_time() - t0))
    best["steps"] = steps
    return best


if __name__ == "__main__":
    import sys
    r = compare(sys.argv[1] if len(sys.argv) > 1 else ".prev_core/_core.abi3.so")
    print(f"previous build, plain programs : {r['prev']:12,.0f} steps/s")
    print(f"this build, same plain programs: {r['new']:12,.0f} steps/s  ({r['new'] / r['prev']:.2f}x)")
    print(f"this build, interleaved        : {r['interleaved']:12,.0f} steps/s")
