"""The quiet paths (rust/src/quiet.rs: a plain line with nothing in flight runs its op as one
call) against the KOp path they stand for: the same reports and machine states, every kernel.

The KOp path is forced in a child process by the self-test hook PYVMFUZZ_SELFTEST_NO_QUIET=1
(read once per process). Programs are random byte-form inputs of this build, half plain (no
`until`: every line quiet while nothing is in flight) and half interleaved (quiet lines between
ops in flight)."""
import json
import os
import random
import subprocess
import sys

import pytest

from pyvmfuzz import _core
from pyvmfuzz.bench.prevcore import plain_bytes

PER_KERNEL = 150  # programs per kernel under -m slow; the default suite's test runs the first 40 of them

CHILD = """
import json, sys
from pyvmfuzz import _core
jobs = json.load(sys.stdin)
out = []
for kernel, hexdata, explain in jobs:
    d = bytes.fromhex(hexdata)
    r = _core.run_bytes(d, kernel)
    e = _core.explain(_core.decode(d, kernel), kernel) if explain else None
    out.append([r, e])
json.dump(out, sys.stdout)
"""


def _jobs(per_kernel):
    jobs = []
    for kernel, _ in _core.kernels():
        rng = random.Random(f"quiet-{kernel}")
        for i in range(per_kernel):
            d = plain_bytes(rng, 64) if i % 2 else rng.randbytes(2 + 5 * rng.randrange(1, 65))
            jobs.append((kernel, d.hex(), i % 5 == 0))
    return jobs


def _here(jobs):
    out = []
    for kernel, hexdata, explain in jobs:
        d = bytes.fromhex(hexdata)
        r = _core.run_bytes(d, kernel)
        e = _core.explain(_core.decode(d, kernel), kernel) if explain else None
        out.append([r, e])
    # Through JSON as the child's are (tuples become lists).
    return json.loads(json.dumps(out))


def _child(jobs, no_quiet):
    env = dict(os.environ, PYVMFUZZ_SELFTEST_NO_QUIET="1" if no_quiet else "0")
    p = subprocess.run([sys.executable, "-P", "-c", CHILD], input=json.dumps(jobs), capture_output=True,
                       text=True, env=env, timeout=600, check=True)
    return json.loads(p.stdout)


@pytest.mark.parametrize("per_kernel", [40, pytest.param(PER_KERNEL, marks=pytest.mark.slow)])
def test_quiet_paths_match_the_kop_path_on_every_kernel(per_kernel):
    jobs = _jobs(per_kernel)
    quiet = _here(jobs)
    kop = _child(jobs, no_quiet=True)
    bad = [(k, h) for (k, h, _), a, b in zip(jobs, quiet, kop) if a != b]
    assert not bad, bad[:3]
    # The programs reach the ops the quiet paths run, with their outcomes.
    outcomes = {o for r, _ in quiet for o in r["trace"]}
    for want in ("SEGV", "blocked", "EBUSY", "ESRCH", "EFAULT", "EAGAIN", "P2"):
        assert want in outcomes, (want, sorted(outcomes)[:20])
