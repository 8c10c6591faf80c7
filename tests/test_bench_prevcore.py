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
    assert r["interleaved_prev"] > 0 and r["interleaved"] > 0  # random programs, both builds


def test_bench_missing_prev_core_is_an_input_error():
    from conftest import cli

    p = cli("bench", "--prev-core", "/nonexistent/_core.so", timeout=60)
    assert p.returncode == 2
    assert p.stderr.strip().count("\n") == 0 and "--prev-core" in p.stderr


# ---- bench --diff-prev (issue 24): this build against a previous one, report by report

def test_diff_prev_of_this_build_against_itself_finds_nothing():
    from pyvmfuzz.bench import prevdiff

    r = prevdiff.kernel_diff(_core.__file__, "fixed", 300, seed=3, explain_every=20)
    assert r["programs"] == 300 and r["steps"] > 300 and r["count"] == 0, r


def test_diff_prev_sees_a_build_that_reports_otherwise():
    """A stand-in 'previous build' whose reports or features differ is caught, per comparison."""
    import types

    from pyvmfuzz.bench import prevdiff

    def changed(**over):
        m = types.SimpleNamespace(**{n: getattr(_core, n) for n in ("run_bytes", "semantic_features", "decode",
                                                                   "explain", "mutate", "crossover")})
        for k, v in over.items():
            setattr(m, k, v)
        return m

    d = bytes.fromhex("0100" + "11000000a3" + "2104010000" + "d100000000")
    other_trace = changed(run_bytes=lambda *a: dict(_core.run_bytes(*a), trace=["ok"]))
    assert prevdiff._compare(other_trace, _core, d, "fixed", explain=False)[0] == "report"
    other_features = changed(semantic_features=lambda *a: [])
    assert prevdiff._compare(other_features, _core, d, "dirty-cow", explain=False)[0] == "semantic features"
    assert prevdiff._compare(other_features, _core, d, "dirty-cow", explain=False, skip=("features",))[0] == ""
    other_mutator = changed(mutate=lambda *a: b"x")
    assert prevdiff._compare(other_mutator, _core, d, "fixed", explain=False)[0] == "mutate"
    assert prevdiff._compare(_core, _core, d, "fixed", explain=True)[0] == ""
