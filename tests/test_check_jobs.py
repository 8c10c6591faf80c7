"""`check --jobs N` (issue 25 item 12): the same report as one process, in file order."""

import shutil

from conftest import CORPUS, cli


def test_check_in_two_processes_reports_as_one(tmp_path):
    d = tmp_path / "progs"
    shutil.copytree(CORPUS + "/litmus", d / "litmus")
    # a program whose expect line is wrong (fixed is clean on it): a problem in the report
    (d / "wrong.txt").write_text("expect fixed stale-read 1\ncpu0 load data0.0\n")
    one = cli("check", str(d), "--kernel", "all")
    two = cli("check", str(d), "--kernel", "all", "--jobs", "2")
    assert one.returncode == two.returncode == 1, one.stdout
    assert one.stdout == two.stdout and "EXPECT" in one.stdout and "wrong.txt" in one.stdout
    bad = cli("check", str(d), "--jobs", "0")
    assert bad.returncode == 2 and bad.stderr.strip() == "pyvmfuzz check: --jobs 0: must be at least 1"


def test_cells_outside_a_checkout_reads_the_packaged_seeds(tmp_path):
    """Issue 25 item 14: `cells` defaulted to ./corpus, which an installed package has not."""
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-P", "-m", "pyvmfuzz", "cells"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "possible cells reached" in p.stdout.splitlines()[-1]
