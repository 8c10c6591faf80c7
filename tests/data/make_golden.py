"""Regenerate tests/data/golden_traces.json.gz from the core as built NOW (issue 13 step 0).

Run once, before the concurrent core changed anything: it records, for every text program in
corpus/ and tests/ (files, and string literals in tests/*.py that parse as programs) and for
random byte programs (stored as their decoded text, since the byte form may change), the trace
and verdict under every kernel. tests/test_concurrency.py checks the current core against it.
"""
from __future__ import annotations

import ast
import gzip
import json
import pathlib
import random

from pyvmfuzz import _core

ROOT = pathlib.Path(__file__).resolve().parents[2]


def programs():
    seen = {}
    for p in sorted((ROOT / "corpus").rglob("*.txt")) + sorted((ROOT / "tests").rglob("*.txt")):
        seen[str(p.relative_to(ROOT))] = p.read_text()
    for p in sorted((ROOT / "tests").glob("*.py")):
        tree = ast.parse(p.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and "cpu" in node.value:
                try:
                    info = _core.check_text(node.value)
                except Exception:
                    continue
                if info["steps"] > 0:
                    seen[f"{p.relative_to(ROOT)}:{node.lineno}"] = node.value
    return seen


def record(text, kernel):
    try:
        r = _core.run_text(text, kernel)
    except ValueError as e:
        return {"error": str(e)}
    return {"trace": r["trace"], "violation": r["violation"], "assert_failures": r["assert_failures"]}


def main(n_random=3000):
    kernels = [k for k, _ in _core.kernels()]
    out = {"kernels": kernels, "programs": [], "random": []}
    for name, text in programs().items():
        out["programs"].append({"name": name, "text": text, "results": {k: record(text, k) for k in kernels}})
    rng = random.Random(13)
    for k in kernels:
        for i in range(n_random):
            data = bytes(rng.getrandbits(8) for _ in range(2 + 4 * rng.randint(1, 40)))
            text = _core.decode(data, k)
            out["random"].append({"kernel": k, "text": text, **record(text, k)})
    (ROOT / "tests/data/golden_traces.json.gz").write_bytes(gzip.compress(json.dumps(out, separators=(",", ":")).encode(), mtime=0))
    print(len(out["programs"]), "programs,", len(out["random"]), "random")


if __name__ == "__main__":
    main()
