"""The zoo (SPEC §3.1/§3.3): every kernel that must be found has a hand-derived witness in
corpus/litmus whose `expect` line the core meets, `fixed` is clean on all of them, and
`pyvmfuzz zoo` prints commits, hardware, interleaving and the expected verdict."""

import glob
import os
import re

from pyvmfuzz import _core

from conftest import CORPUS, cli


def _pc64_litmus():
    # Programs on tagged hardware show fixed's kernel/hardware mismatch (SPEC §3.1): left out.
    return [f for f in sorted(glob.glob(os.path.join(CORPUS, "litmus", "*.txt"))) if "mode=tagged" not in open(f).read()]


def _expects():
    out = {}
    for f in _pc64_litmus():
        for line in open(f):
            m = re.match(r"expect (\S+) (\S+)(?: (\d+))?$", line.strip())
            if m:
                out.setdefault(m.group(1), []).append((f, m.group(2), m.group(3)))
    return out


def test_every_found_kernel_has_a_litmus_witness_and_fixed_is_clean_on_all():
    ex = _expects()
    for z in _core.zoo():
        if z["expect_found"] and z["hw"] == "mode=pc64":
            hits = [f for f, kind, _ in ex.get(z["name"], []) if kind != "clean"]
            assert hits, f"{z['name']}: no litmus program witnesses it"
    assert all(kind == "clean" for _, kind, _ in ex["fixed"])
    assert len(ex["fixed"]) == len(_pc64_litmus())


def test_race_witnesses_need_what_the_zoo_says():
    """A kernel marked interleaved has a witness with `until`; one marked not has a plain one."""
    ex = _expects()
    for z in _core.zoo():
        if not z["expect_found"] or z["hw"] != "mode=pc64":
            continue
        files = [f for f, kind, _ in ex.get(z["name"], []) if kind != "clean"]
        plain = [f for f in files if " until " not in open(f).read()]
        if z["interleaved"]:
            assert not plain, (z["name"], plain)
        else:
            assert plain, z["name"]


def test_zoo_command_prints_commits_and_interleaving():
    r = cli("zoo")
    assert r.returncode == 0, r.stderr
    assert "interleaved" in r.stdout.splitlines()[0]
    row = next(l for l in r.stdout.splitlines() if l.startswith("umtx-no-recheck "))
    assert "DragonFly 369ba561" in row and " yes " in row and " found " in row
    row = next(l for l in r.stdout.splitlines() if l.startswith("pre-10192bae "))
    assert " no " in row
