"""`pyvmfuzz bench`'s plain-program comparison against a previous build (issue 13)."""
import os
import random
import subprocess
import sys

from pyvmfuzz import _core
from pyvmfuzz.bench import prevcore


def test_plain_bytes_decode_to_plain_programs():
    rng = random.Random(3)
    for _ in range(300):
        text = _core.decode(prevcore.plain_bytes(rng, 64), "fixed")
        assert " until " not in text and " resume" not in text and " ipi" not in text
        rep = _core.run_text(text, "fixed")
        assert "paused" not in rep["trace"]


def test_compare_without_previous_build():
    r = prevcore.compare(None, programs=50, seed=2, rounds=1, oracle_programs=10)
    assert r["prev"] is None
    assert r["new"] > 0 and r["interleaved"] > 0 and r["steps"] > 50
    assert r["oracle_plain"] > 1  # the Python oracle is slower than the Rust core
    assert isinstance(r["oracle_interleaved"], (float, str))


def test_compare_with_a_previous_build_loads_both():
    # This build stands in for the previous one: both load side by side in one process.
    r = prevcore.compare(_core.__file__, programs=30, seed=4, rounds=1)
    assert r["prev"] > 0 and r["new"] > 0


def test_bench_missing_prev_core_is_an_input_error():
    from conftest import cli

    p = cli("bench", "--prev-core", "/nonexistent/_core.so", timeout=60)
    assert p.returncode == 2
    assert p.stderr.strip().count("\n") == 0 and "--prev-core" in p.stderr
