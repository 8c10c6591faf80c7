"""Hostile input for every command (exit 2, one line, no traceback, no partial output), and
campaigns interrupted at random moments."""

import glob
import os
import random
import re
import signal
import subprocess
import sys
import time

import pytest

from conftest import CORPUS, ROOT, cli

GOOD = os.path.join(CORPUS, "repro", "pre-385c96e4-debugger-text.txt")


@pytest.fixture
def bad(tmp_path):
    garbage = tmp_path / "garbage.txt"
    garbage.write_bytes(b"\x00\xff\xfe binary \x80\x81")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    huge = tmp_path / "huge.txt"
    huge.write_bytes(b"cpu0 load data0.0\n" * (10 * 1024 * 1024 // 18))
    malformed = tmp_path / "malformed.txt"
    malformed.write_text("cpu0 load data0.0\ncpu0 frobnicate\n")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "ok.txt").write_text("cpu0 load data0.0\n")
    (mixed / "bad.txt").write_text("cpu9 load data0.0\n")
    afile = tmp_path / "afile"
    afile.write_text("x")
    return {
        "missing": str(tmp_path / "nope.txt"),
        "garbage": str(garbage),
        "empty": str(empty),
        "huge": str(huge),
        "malformed": str(malformed),
        "mixed": str(mixed),
        "unwritable": str(afile / "sub" / "out"),
    }


CASES = [
    (["run", "{missing}"], "no such file"),
    (["run", "{garbage}"], "not a text program"),
    (["run", "{empty}"], "no operations"),
    (["run", "{huge}"], "too large"),
    (["run", "{malformed}"], "line 2: unknown operation 'frobnicate'"),
    (["run", GOOD, "--hw", "tlb=0"], "tlb=0 out of range"),
    (["run", GOOD, "--kernel", "nope"], "unknown kernel"),
    (["check", "{mixed}", "--kernel", "fixed"], "line 1: cpu9 beyond"),
    (["check", "{missing}"], "no such file"),
    (["minimize", "{garbage}"], "not a text program"),
    (["minimize", GOOD, "-o", "{unwritable}", "--kernel", "pre-385c96e4", "--quiet"], "cannot write"),
    (["explain", "{malformed}"], "line 2: unknown operation 'frobnicate'"),
    (["explain", GOOD, "--html", "{unwritable}"], "cannot write"),
    (["cmin", "{mixed}", "-o", "{unwritable}"], "line 1: cpu9 beyond"),
    (["cmin", os.path.join(CORPUS, "seeds"), "-o", "{unwritable}"], "cannot write"),
    (["fuzz", "--out", "{unwritable}", "--time", "1"], "not writable"),
    (["fuzz", "--time", "-3"], "--time must be >= 0"),
    (["bench", "--trials", "0", "--ttf", "fixed"], "at least 1"),
    (["zoo", "--bogus"], "unrecognized"),
    (["bench", "--prev-core", os.path.join(ROOT, "README.md"), "--programs", "1", "--oracle-programs", "1",
      "--prev-programs", "1"], "not a loadable extension"),
    (["necessity", "--depth", "1", "--time", "0", "--random", "0.01", "--seed", str(2**64)], "--seed must be 0..2**64-1"),
    (["explore", "--depth", "1", "--time", "nan"], "--time must be a number of seconds >= 0"),
    (["necessity", "--depth", "1", "--random", "nan"], "--random must be a number of seconds >= 0"),
    (["explain", GOOD, "--html", ""], "empty path"),
    (["minimize", GOOD, "--kernel", "pre-385c96e4", "--quiet", "-o", ""], "empty path"),
    (["check", GOOD, "--junit", ""], "empty path"),
    (["run", "no\nsuch.txt"], "no\\u000asuch.txt: no such file"),  # one line, the newline escaped
    (["run", GOOD, "--kernel", "a\nb"], "unknown kernel 'a\\u000ab'"),
    # libFuzzer reads -seed=0 as "pick one": "again: --seed 0" did not repeat the campaign
    (["fuzz", "--seed", "0", "--out", "{unwritable}"], "--seed must be 1..4294967295"),
    (["bench", "--ttf", "fixed", "--seed", "0"], "with --ttf (trial i runs fuzz --seed SEED+i)"),
    # a model campaign's options ran a Linux campaign without a word
    (["fuzz", "--target", "linux", "--time", "1", "--kernel", "pre-385c96e4", "--jobs", "2", "--out", "{unwritable}"],
     "--jobs: not used by --target linux"),
]


def test_every_hardening_case_names_its_message():
    """Each row checks its own message: an empty needle would pass on any line, and one that is
    only a location ("line 2") or the input echoed back ("tlb=0") passes on a wrong message."""
    for args, needle in CASES:
        assert needle.strip(), args
        assert not re.fullmatch(r"line \d+:?", needle.strip()), (args, needle)
        assert needle.strip() not in " ".join(args), (args, needle)


def _case_id(args):
    """A test id that does not change with the checkout's directory."""
    return " ".join(os.path.basename(a) if os.path.isabs(a) else a for a in args)[:60]


@pytest.mark.parametrize("args,needle", CASES, ids=[_case_id(a) for a, _ in CASES])
def test_bad_input_exits_2_with_one_line(bad, args, needle):
    argv = [a.format(**bad) for a in args]
    p = cli(*argv)
    assert p.returncode == 2, (argv, p.returncode, p.stdout[-500:], p.stderr[-500:])
    assert "Traceback" not in p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, p.stderr
    assert needle in lines[0], lines[0]
    assert not os.path.exists(bad["unwritable"])


def _seed_reproducer(out):
    """GOOD (protection at 2 under pre-385c96e4) in byte form in the campaign's corpus: a
    campaign resumed from it meets the violation at once, whatever the machine's speed."""
    from pyvmfuzz import _core

    (out / "corpus").mkdir(parents=True, exist_ok=True)
    (out / "corpus" / "reproducer").write_bytes(_core.encode(open(GOOD).read(), "pre-385c96e4", "mode=pc64"))


@pytest.mark.parametrize("campaigns", [3, pytest.param(20, marks=pytest.mark.slow)])
def test_campaigns_interrupted_at_random_moments_keep_only_complete_files(tmp_path, campaigns):
    """Campaigns killed with SIGINT or SIGKILL at random moments (3; 20 with -m slow);
    afterwards every finding is complete and replayable, and the next campaign resumes from the
    same directories. The first starts from a reproducer, so that there are findings in flight
    to cut short; the last is given it again (a campaign's corpus drops violating inputs) and
    must find it."""
    rng = random.Random(2026)
    out = tmp_path / "out"
    _seed_reproducer(out)
    for i in range(campaigns):
        proc = subprocess.Popen(
            [sys.executable, "-P", "-m", "pyvmfuzz", "fuzz", "--kernel", "pre-385c96e4", "--time", "60",
             "--out", str(out), "--quiet"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.3, 3.0))
        proc.send_signal(signal.SIGINT if i % 2 == 0 else signal.SIGKILL)
        proc.wait(timeout=60)
        time.sleep(0.3)
        crashes = out / "crashes"
        for t in glob.glob(str(crashes / "*.txt")):
            assert os.path.exists(t[:-4] + ".bytes"), t
            assert cli("run", t, "--kernel", "pre-385c96e4").returncode == 1
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(out) not in ps  # no harness survived its supervisor
    _seed_reproducer(out)
    p = cli("fuzz", "--kernel", "pre-385c96e4", "--time", "3", "--out", str(out), "--quiet")
    # It meets the violation: a new finding (exit 1), or only ones the killed campaigns saved
    # ("already known", exit 0, where the supervisor tells those apart).
    assert p.returncode == 1 or (p.returncode == 0 and re.search(r"\(\d+ already known\)", p.stdout)), \
        p.stdout + p.stderr
    assert "seed corpus: files:" in (out / "fuzz.log").read_text()
