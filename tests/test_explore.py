"""`explore` and `necessity` (SPEC §5): soundness of state hashing and reduction against plain
search, zoo bugs found no longer than their hand-derived witnesses, necessary actions."""

import os
import subprocess
import sys

import pytest

from pyvmfuzz import _core

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def verdict(r):
    w = r["witness"]
    return None if w is None else (w["kind"], len(w["steps"]))


# Every combination of the reductions against none: same verdict (kind) and same shortest
# length, and every witness replays to its violation under `run`.
MODES = [
    dict(hashing=True, por=True),
    dict(hashing=True, por=False),
    dict(hashing=False, por=True),
]


@pytest.mark.parametrize("kernel,depth", [
    ("fixed", 3),
    ("pre-385c96e4", 3),
    ("partial-385c96e4", 3),
    ("protect-wrong-va", 3),
    ("shootdown-no-ipi", 3),
])
def test_hashing_and_reduction_sound(kernel, depth):
    plain = _core.explore(kernel, depth, hashing=False, por=False)
    for m in MODES:
        r = _core.explore(kernel, depth, **m)
        assert r["completed"] == plain["completed"], m
        if plain["witness"] is None:
            assert r["witness"] is None, m
        else:
            # Same shortest length; the kind may differ only if two violations of that length exist.
            assert len(r["witness"]["steps"]) == len(plain["witness"]["steps"]), m
    # Hashing does merge states: fewer lines executed than without.
    hashed = _core.explore(kernel, depth)
    if plain["witness"] is None:
        assert hashed["generated"] < plain["generated"]


# A two-CPU prefix where both CPUs hold TLB entries: there the reduction does skip lines.
TWO_CPUS = """cpu0 spawn
cpu1 switch P1.T2
cpu0 load data0.0
cpu1 load shm0.0
"""


@pytest.mark.parametrize("kernel", ["fixed", "no-cow-event", "fork-no-protect"])
def test_reduction_sound_where_it_applies(kernel):
    plain = _core.explore(kernel, 3, hashing=False, por=False, prefix=TWO_CPUS)
    # Without hashing (which would merge the two orders first) the reduction is what skips.
    red = _core.explore(kernel, 3, hashing=False, por=True, prefix=TWO_CPUS)
    assert red["por_skipped"] > 0 and red["generated"] < plain["generated"]
    both = _core.explore(kernel, 3, prefix=TWO_CPUS)
    for r in (red, both):
        assert r["completed"] == plain["completed"]
        assert (r["witness"] is None) == (plain["witness"] is None)
        if r["witness"] is not None:
            assert len(r["witness"]["steps"]) == len(plain["witness"]["steps"])


def _replays(r, kernel=None):
    w = r["witness"]
    rep = _core.run_text("\n".join([r["hw"], *w["steps"]]) + "\n", kernel or r["kernel"])
    assert rep["violation"]["kind"] == w["kind"]
    assert rep["violation"]["step"] == len(w["steps"])
    assert rep["trace"] == w["trace"]


@pytest.mark.parametrize("kernel,repro", [
    ("pre-385c96e4", "corpus/repro/pre-385c96e4-debugger-text.txt"),
    ("partial-385c96e4", "corpus/repro/partial-385c96e4-procfs-stale.txt"),
    ("fork-no-protect", "corpus/litmus/06-fork-remote-writable-tlb.txt"),
])
def test_finds_zoo_bugs_no_longer_than_hand_witness(kernel, repro):
    text = open(os.path.join(ROOT, repro)).read()
    hand = [e for e in _core.check_text(text)["expects"] if e[0] == kernel][0]
    kind, step = hand[1], hand[2]
    r = _core.explore(kernel, step)
    assert r["witness"] is not None
    assert len(r["witness"]["steps"]) <= step
    assert r["witness"]["kind"] == kind or len(r["witness"]["steps"]) < step
    assert r["completed"] == len(r["witness"]["steps"]) - 1  # minimal by construction
    _replays(r)


def test_fixed_clean_small():
    r = _core.explore("fixed", 4)
    assert r["witness"] is None and r["completed"] == 4 and r["distinct"] > 0


def test_cow_copy_remove_all_necessary():
    r = _core.explore("fixed", 4, off=["cow_copy_remove_all"])
    assert r["witness"] is not None and r["witness"]["kind"] == "stale-read"


def test_cow_event_necessary():
    # The lost wakeup of 10192bae needs a sleeper, a fork and a COW copy: 6 lines, the first
    # two (a second thread on cpu1) given as a prefix.
    r = _core.explore("fixed", 4, off=["cow_event"], prefix="cpu0 spawn\ncpu1 switch P1.T2\n")
    assert r["witness"] is not None and r["witness"]["kind"] == "lost-wakeup"
    assert len(r["witness"]["steps"]) == 6
    _replays(r, "no-cow-event")  # the zoo's kernel is fixed without the COW event
    assert _core.explore("fixed", 4, prefix="cpu0 spawn\ncpu1 switch P1.T2\n")["witness"] is None


def test_time_limit_keeps_proved_depth():
    r = _core.explore("fixed", 30, time_s=0.5)
    assert r["witness"] is None and r["stopped"] and 1 <= r["completed"] < 30


def _cli(*args):
    # -P: the source tree must not shadow the installed package (a fresh clone has no _core there)
    return subprocess.run([sys.executable, "-P", "-m", "pyvmfuzz", *args], capture_output=True, text=True, timeout=120)


def test_cli_explore(tmp_path):
    p = _cli("explore", "--kernel", "pre-385c96e4", "--depth", "3", "--out", str(tmp_path))
    assert p.returncode == 1
    assert "shortest violation: protection at line 2" in p.stdout
    saved = list(tmp_path.glob("explore-*.txt"))
    assert len(saved) == 1
    text = saved[0].read_text()
    assert "expect pre-385c96e4 protection 2" in text
    chk = _cli("check", str(saved[0]), "--kernel", "pre-385c96e4")
    assert chk.returncode == 0, chk.stdout + chk.stderr
    p = _cli("explore", "--depth", "3")
    assert p.returncode == 0 and "no violation up to 3 lines" in p.stdout
    p = _cli("explore", "--depth", "0")
    assert p.returncode == 2 and p.stderr.count("\n") == 1


def test_cli_necessity_table():
    p = _cli("necessity", "--depth", "3", "--time", "0.5", "--random", "0.5")
    assert p.returncode == 0, p.stderr
    rows = {ln.split("|")[1].strip(" `"): ln for ln in p.stdout.splitlines() if ln.startswith("| `")}
    assert len(rows) == len(_core.safety_actions())
    assert "necessary" in rows["cow_copy_remove_all"].split("|")[3]
    assert "no witness up to" in p.stdout
    assert "n/a" in rows["pm_active_until_flush"].split("|")[3]


def test_distinguish_skips_the_bases_own_violations():
    # A kernel compared with itself: every violation is shared, none is a witness.
    r = _core.explore("partial-385c96e4", 3, distinguish=True)
    assert r["witness"] is None and r["shared"] > 0
