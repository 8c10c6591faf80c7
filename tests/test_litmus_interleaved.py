"""Interleaved litmus programs (SPEC §3.2) that cannot live in corpus/: under some kernel of
SPEC §3.3 a line of theirs is not applicable (that kernel runs another schedule), so
`check corpus/ --kernel all` could not run them. Each is checked under every kernel it has an
`expect` line for -- verdicts derived by hand for the nine original kernels, from the oracle
for the others (see each file's header)."""

import glob
import os

import pytest

from conftest import ROOT
from pyvmfuzz.oracle.check import check_paths

FILES = sorted(glob.glob(os.path.join(ROOT, "tests", "litmus", "*.txt")))


def _kernels(path):
    return [ln.split()[1] for ln in open(path) if ln.startswith("expect ")]


@pytest.mark.parametrize("path", FILES, ids=os.path.basename)
def test_interleaved_litmus(path):
    kernels = _kernels(path)
    assert len(kernels) >= 14, "every kernel but the few it cannot run under"
    pairs, found = check_paths([path], kernels)
    assert pairs == len(kernels) and found == [], [f.detail for f in found]
