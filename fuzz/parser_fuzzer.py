#!/usr/bin/env python3
"""The parser, decoder and printer fuzz themselves: arbitrary bytes as a text program
(parse, print, run) and as a byte-form program (decode, print, re-encode, run). Any exception
other than the clean ValueError of bad input is a crash. Violations are not findings here.

    fuzz/parser_fuzzer.py [CORPUS] -max_total_time=60

With PYVMFUZZ_CORE_SO pointing at the coverage build (`python -c "from pyvmfuzz.campaign.covbuild import
build; print(build())"`), libFuzzer is guided by the Rust parser's and decoder's branches."""

import os
import sys

import atheris

from pyvmfuzz.campaign.harness import load_core

load_core(os.environ.get("PYVMFUZZ_CORE_SO", ""), False)
from pyvmfuzz import _core  # noqa: E402  (after load_core: it may swap in the instrumented core)

KERNELS = [name for name, _ in _core.kernels()]


def test_one_input(data: bytes) -> None:
    kernel = KERNELS[data[0] % len(KERNELS)] if data else "fixed"
    text = data.decode("utf-8", errors="replace")
    try:
        canon = _core.canonical(text)
        assert _core.canonical(canon) == canon, "printing is not a fixpoint of parsing"
        _core.run_text(text, kernel)
    except ValueError:
        pass  # bad input, reported cleanly
    program = _core.decode(data, kernel)
    rep = _core.run_bytes(data, kernel)
    assert rep["steps"] == [ln for ln in program.splitlines() if ln.startswith("cpu")][: len(rep["steps"])]
    again = _core.encode(program, kernel)
    assert _core.decode(again, kernel) == program, "decode(encode(p)) != p"


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
