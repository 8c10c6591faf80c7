"""The cost of the semantic counters on the fuzzing path: the same 32-step inputs through the
same FuzzTarget entry point, with and without the counters, alternately. libFuzzer's symbols
are loaded (as in a campaign) so the counters really register and are written."""

from __future__ import annotations

import ctypes
import glob
import os
import random
import statistics
import time


def measure(inputs: int = 20000, rounds: int = 5, kernel: str = "fixed", seed: int = 1) -> tuple[float, float]:
    """(median exec/s without, with the semantic counters)."""
    import atheris

    libfuzzer = glob.glob(os.path.join(os.path.dirname(atheris.__file__), "core_with_libfuzzer*.so"))
    ctypes.CDLL(libfuzzer[0], mode=os.RTLD_GLOBAL)
    from pyvmfuzz import _core

    rng = random.Random(seed)
    data = [rng.randbytes(2 + 5 * 32) for _ in range(inputs)]
    plain = _core.FuzzTarget(kernel, "mode=pc64", False)
    sem = _core.FuzzTarget(kernel, "mode=pc64", True)
    off, on = [], []
    for _ in range(rounds):
        for target, out in ((plain, off), (sem, on)):
            run = target.run
            t0 = time.perf_counter()
            for d in data:
                run(d)
            out.append(inputs / (time.perf_counter() - t0))
    return statistics.median(off), statistics.median(on)
