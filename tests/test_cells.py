"""Corpus coverage cells (issue 15): which situations the regression programs reach."""

import re

from pyvmfuzz import _core
from pyvmfuzz.insight.cells import cells_of, possible

from conftest import cli


def test_cells_of_a_program():
    rep = _core.run_text("hw cpus=2 mode=tagged\ncpu0 store data0.0 1\ncpu0 fork\ncpu1 switch P2.T1\n"
                         "cpu1 procfs_write P1 text0.0 2\ncpu1 load shm0.1\ncpu0 mprotect data0 r\n"
                         "cpu0 store data0.0 3\ncpu1 procfs_read P1 data0.0\n", "fixed-tagged")
    assert cells_of(rep) == {
        ("store", "data", "same", "before", "tagged"),
        ("procfs_write", "text", "other", "after", "tagged"),
        ("load", "shm", "same", "after", "tagged"),
        ("mprotect", "data", "same", "after", "tagged"),
        ("store", "data", "same", "after", "tagged"),     # SEGV: P1 dies
        ("procfs_read", "data", "other", "after", "tagged"),  # ESRCH, still a cell reached
    }
    assert all(c in possible() for c in cells_of(rep))


def test_cells_command_counts_the_corpus():
    p = cli("cells", "--missing")
    assert p.returncode == 0, p.stderr
    m = re.search(r"# (\d+) of (\d+) possible cells reached", p.stdout)
    assert m and int(m[2]) == len(possible()) and int(m[1]) >= 40
    assert int(m[1]) + p.stdout.count("# missing: ") == int(m[2])


def test_cells_refuses_a_cpu_beyond_the_header_and_skips_a_line_not_applicable(tmp_path):
    """A fresh user's report: a CPU beyond the header's (an input error, docs/contract.md §2.3)
    was skipped as 'not applicable' with exit 0. It is refused; a line that cannot run when
    reached is still only skipped."""
    bad = tmp_path / "badcpu.txt"
    bad.write_text("hw cpus=2\ncpu5 load data0.0\n")
    p = cli("cells", str(bad))
    assert p.returncode == 2 and "cpu5 beyond the machine's 2 CPUs" in p.stderr and "Traceback" not in p.stderr
    idle = tmp_path / "idle.txt"
    idle.write_text("hw cpus=2\ncpu1 load data0.0\n")  # cpu1 runs nothing: not applicable when reached
    p = cli("cells", str(idle))
    assert p.returncode == 0 and f"# skipped (not applicable): {idle}" in p.stdout, p.stdout + p.stderr
