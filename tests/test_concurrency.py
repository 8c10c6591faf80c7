"""Concurrent kernel operations (SPEC §3.2, §4.1; issue 13).

The golden test pins that every program without `until`/`resume`/`ipi` keeps the trace and
verdict it had before the concurrent core (tests/data/golden_traces.json.gz, recorded from the
previous build by tests/data/make_golden.py).
"""
from __future__ import annotations

import gzip
import json
import pathlib

import pytest

from pyvmfuzz import _core

GOLDEN = json.loads(gzip.decompress((pathlib.Path(__file__).parent / "data/golden_traces.json.gz").read_bytes()))


def record(text, kernel):
    try:
        r = _core.run_text(text, kernel)
    except ValueError as e:
        return {"error": str(e)}
    return {"trace": r["trace"], "violation": r["violation"], "assert_failures": r["assert_failures"]}


def test_golden_programs_keep_trace_and_verdict():
    bad = []
    for p in GOLDEN["programs"]:
        for k, want in p["results"].items():
            if record(p["text"], k) != want:
                bad.append((p["name"], k))
    assert not bad, bad[:10]


def test_golden_random_programs_keep_trace_and_verdict():
    bad = []
    for p in GOLDEN["random"]:
        got = record(p["text"], p["kernel"])
        want = {k: p[k] for k in ("trace", "violation", "assert_failures", "error") if k in p}
        if got != want:
            bad.append(p["text"])
    assert len(GOLDEN["random"]) >= 9 * 1000
    assert not bad, bad[:3]
