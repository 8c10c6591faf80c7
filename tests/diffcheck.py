"""Core/oracle differential over random byte programs, in worker processes (importable by the
test's process pool; see test_check.py)."""

import random

from pyvmfuzz import _core
from pyvmfuzz.oracle import judge as judge_lin
from pyvmfuzz.oracle.check import CORE_ONLY
from pyvmfuzz.oracle.contract import Oracle, TraceError

_INTERLEAVED = (" until ", " resume", " ipi")


def _oracle_verdict(rep: dict):
    """The oracle's first violation on the core's observations. Programs without SPEC 3.2
    lines take the sequential contract stepped directly (SPEC 4.1: exactly the same
    judgement, pinned by test_oracle_lin), the rest the linearizability judge."""
    from pyvmfuzz.oracle.check import observations

    if any(t in s for s in rep["steps"] for t in _INTERLEAVED):
        return judge_lin(observations(rep))
    o = Oracle(int(rep["hw"].split("cpus=")[1].split()[0]))
    for op, out in zip(rep["steps"], rep["trace"]):
        if out == "panic":
            return None
        outcome, _, woke = out.partition(" woke ")
        v = o.step(op, outcome, woke.split(",") if woke else [])
        if v is not None:
            return v
    return None


def chunk(kernel: str, seed: int, n: int, max_steps: int, hw: str | None = None):
    """(verdict counts, disagreements) over n random programs of 1..max_steps steps."""
    rng = random.Random(seed)
    seen, bad = {}, []
    for _ in range(n):
        data = rng.randbytes(2 + 5 * rng.randrange(1, max_steps + 1))  # 5-byte records (codec.rs)
        rep = _core.run_bytes(data, kernel, hw)
        v = rep["violation"]
        core = None if v is None else (v["kind"], v["step"])
        try:
            ov = _oracle_verdict(rep)
            orc = None if ov is None else (ov.kind, ov.step)
        except TraceError as e:
            orc = ("trace-error", str(e))
        agree = orc is None if core is not None and core[0] in CORE_ONLY else core == orc
        key = core[0] if core else "clean"
        seen[key] = seen.get(key, 0) + 1
        if not agree:
            bad.append((data.hex(), core, orc))
    return seen, bad
