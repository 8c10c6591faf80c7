"""Programs on which `fixed`/`fixed-tagged` were once judged wrong, found by issue 14's
stronger decoder (docs/zoo/README.md): each must be clean under its kernel, to the core and
to the oracle alike (tests/data/fixed_regressions/, each file's header says why)."""

import glob
import os

import pytest

from conftest import ROOT
from pyvmfuzz.oracle.check import check_paths, pf_kernel
from pyvmfuzz.programs import load

FILES = sorted(glob.glob(os.path.join(ROOT, "tests", "data", "fixed_regressions", "*.txt")))


@pytest.mark.parametrize("path", FILES, ids=os.path.basename)
def test_fixed_kernels_are_clean_on_what_the_decoder_found(path):
    kernel = pf_kernel(load(path))
    assert kernel in ("fixed", "fixed-tagged")
    pairs, found = check_paths([path], [kernel])
    assert pairs == 1 and found == [], [f.detail for f in found]


def test_there_are_regressions_to_check():
    assert len(FILES) >= 4
