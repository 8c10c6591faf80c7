"""The cost of the semantic counters inside libFuzzer: the harness runs the same fixed set of
inputs once each (`-runs=0` over a corpus: libFuzzer's INITED pass), with and without them,
alternately; libFuzzer reports exec/s for each pass."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import tempfile

_INITED = re.compile(r"#(\d+)\s+INITED .*exec/s: (\d+)")


def _pass(corpus: str, semantic: bool, kernel: str) -> float:
    env = dict(os.environ, PYVMFUZZ_KERNEL=kernel, PYVMFUZZ_HW="mode=pc64", PYVMFUZZ_CORE_SO="",
               PYVMFUZZ_SEMANTIC="1" if semantic else "0", PYVMFUZZ_CRASHES=os.path.join(corpus, "..", "crashes"))
    with tempfile.TemporaryDirectory() as work:
        p = subprocess.run([sys.executable, "-c", "from pyvmfuzz.harness import main; main()", corpus,
                            "-runs=0", "-max_len=200", f"-artifact_prefix={work}/"],
                           env=env, capture_output=True, text=True, timeout=600)
    m = _INITED.search(p.stderr)
    if not m:
        raise RuntimeError("no INITED line from libFuzzer: " + p.stderr[-500:])
    return float(m[2])


def measure(inputs: int = 20000, rounds: int = 3, kernel: str = "fixed", seed: int = 1) -> tuple[float, float]:
    """(median exec/s without, with semantic counters) over 32-step random inputs."""
    import statistics

    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="pyvmfuzz-semcost-") as d:
        corpus = os.path.join(d, "corpus")
        os.makedirs(corpus)
        os.makedirs(os.path.join(d, "crashes"))
        for i in range(inputs):
            with open(os.path.join(corpus, f"{i:06d}"), "wb") as f:
                f.write(rng.randbytes(2 + 4 * 32))
        off, on = [], []
        for _ in range(rounds):
            off.append(_pass(corpus, False, kernel))
            on.append(_pass(corpus, True, kernel))
    return statistics.median(off), statistics.median(on)
