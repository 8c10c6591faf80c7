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


def test_plot_draws_a_campaign_directory(tmp_path):
    """Issue 25: a long campaign you can look at. A campaign appends a row every 2 s to
    OUT/plot_data.csv; `plot OUT` draws it (a resumed campaign is another line)."""
    out = tmp_path / "out"
    for seed in ("1", "2"):
        p = cli("fuzz", "--kernel", "fixed", "--time", "4", "--seed", seed, "--out", str(out), "--quiet", timeout=120)
        assert p.returncode == 0, p.stdout + p.stderr
    rows = (out / "plot_data.csv").read_text().splitlines()
    assert rows[0] == "start,seconds,execs,cov,ft,corpus,findings" and len(rows) >= 3
    q = cli("plot", str(out))
    assert q.returncode == 0 and q.stdout.startswith("# 2 campaign(s), the last:"), q.stdout + q.stderr
    page = (out / "plot.html").read_text()
    assert page.count("<svg") == 4 and "<polyline" in page
    assert cli("plot", str(tmp_path)).returncode == 2
