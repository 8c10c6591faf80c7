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


def test_a_sibling_of_an_exiting_process_forks_no_more():
    """Session 3's fork-slot regression: a sibling forked four times while its process's exit
    waited for it. Under the exit reading below (Machine::exiting) that schedule is gone: its
    first such fork is not applicable. The fork-slot rule itself is litmus i13's."""
    from pyvmfuzz import _core

    path = os.path.join(ROOT, "tests", "data", "exit_inapplicable-fork-eagain.txt")
    with pytest.raises(ValueError, match="line 23: not applicable: P1 is exiting"):
        _core.run_text(open(path, encoding="utf-8").read(), "fixed-tagged")


@pytest.mark.parametrize("kernel", ["fixed", "fixed-tagged", "no-revalidate", "dirty-cow"])
def test_a_dying_process_runs_no_new_operation(kernel):
    """The program the acceptance run found (fixed-tagged-exit-stops-siblings.txt's header):
    while P1's fatal SEGV waits to tear down, switching its second thread in is not applicable
    (DragonFly's killalllwps), under every kernel; so is a line of a sibling already on a CPU."""
    from pyvmfuzz import _core

    head = ("hw cpus=2 tlb=8 mode=pc64\ncpu0 fork\ncpu0 fork\ncpu1 switch P3.T1\ncpu0 load data0.0\n"
            "cpu1 umtx_sleep data0.0 0x0 until ipi_wait\ncpu0 spawn\ncpu0 store text0.0 0x0\ncpu1 resume\n")
    with pytest.raises(ValueError, match="line 10: not applicable: P1 is exiting"):
        _core.run_text(head + "cpu1 switch P1.T2\ncpu1 mprotect text0 rw\ncpu0 resume\n", kernel)
    # a sibling already running on another CPU when the SEGV began
    three = ("hw cpus=3 tlb=8 mode=pc64\ncpu0 fork\ncpu0 fork\ncpu1 switch P3.T1\ncpu0 load data0.0\n"
             "cpu0 spawn\ncpu2 switch P1.T2\ncpu1 umtx_sleep data0.0 0x0 until ipi_wait\n"
             "cpu0 store text0.0 0x0\n")
    r = _core.run_text(three, kernel)
    if r["trace"][-1] == "paused":  # the SEGV's exit waits: P1.T2 on cpu2 takes no new line
        with pytest.raises(ValueError, match="P1 is exiting"):
            _core.run_text(three + "cpu2 mprotect text0 rw\n", kernel)
