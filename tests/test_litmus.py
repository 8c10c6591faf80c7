"""The hand-derived litmus suite: each program's verdict under each kernel is written in its
`expect` lines (derived by hand from SPEC §3 and the DragonFly notes), and its `-> X` lines
are the contract's outcomes for every step before a violation."""

import os

import pytest

from pyvmfuzz import _core

from conftest import KERNELS, corpus_files

LITMUS = corpus_files("litmus") + corpus_files("repro")


def expected_verdict(expects, kernel):
    rows = [e for e in expects if e[0] == kernel]
    assert len(rows) == 1, f"exactly one expect line per kernel, got {rows}"
    _, kind, step = rows[0]
    return None if kind is None else (kind, step)


def test_suite_is_large_enough():
    assert len(corpus_files("litmus")) >= 12


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("path", LITMUS, ids=[os.path.basename(p) for p in LITMUS])
def test_litmus(path, kernel):
    text = open(path).read()
    if f"# not applicable under {kernel}: " in text:  # another kernel's schedule (test_corpus_expects)
        with pytest.raises(ValueError, match="not applicable"):
            _core.run_text(text, kernel)
        return
    rep = _core.run_text(text, kernel)
    v = rep["violation"]
    got = None if v is None else (v["kind"], v["step"])
    assert got == expected_verdict(rep["expects"], kernel), rep["trace_text"]
    # `->` lines are the reference kernel's outcomes (fixed, or the file's own `kernel` line):
    # another kernel may take another schedule or another linearizable outcome (SPEC §4.1)
    own = [ln.split()[1] for ln in text.splitlines() if ln.startswith("kernel ")]
    if kernel in ["fixed"] + own:
        assert rep["assert_failures"] == []


def test_each_prefix_kernel_has_a_finding_and_fixed_none():
    """The suite exercises every kernel: the two pre-fix kernels fail somewhere on pc64, fixed
    fails only on tagged hardware."""
    fails = {k: set() for k in KERNELS}
    for path in LITMUS:
        text = open(path).read()
        for k in KERNELS:
            if f"# not applicable under {k}: " in text:
                continue
            v = _core.run_text(text, k)["violation"]
            if v:
                fails[k].add((v["kind"], "mode=tagged" in text))
    assert ("protection", False) in fails["pre-385c96e4"]
    assert ("stale-read", False) in fails["partial-385c96e4"]
    assert fails["fixed"] == {("tlb-incoherent", True)}


def test_repro_programs_are_the_shortest():
    """The two reproducers are as short as the bug allows: dropping any step loses it."""
    for name, kernel, kind in (
        ("pre-385c96e4-debugger-text.txt", "pre-385c96e4", "protection"),
        ("partial-385c96e4-procfs-stale.txt", "partial-385c96e4", "stale-read"),
    ):
        lines = [ln for ln in open(os.path.join(os.path.dirname(LITMUS[0]), "..", "repro", name)).read().splitlines()
                 if ln.startswith("cpu")]
        assert _core.run_text("\n".join(lines), kernel)["violation"]["kind"] == kind
        for i in range(len(lines)):
            shorter = "\n".join(ln.split("->")[0] for j, ln in enumerate(lines) if j != i)
            try:
                v = _core.run_text(shorter, kernel)["violation"]
            except ValueError:
                v = None
            assert v is None or v["kind"] != kind, f"{name} still fails without step {i + 1}"
