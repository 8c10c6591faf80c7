"""The corpus's expect lines are derived, not copied from the core (issue 15): each `clean` or
user-visible verdict is what the oracle — independent of the core — says of that kernel's
observations; each core-only verdict (the oracle cannot see it) carries a by-hand derivation
(`# hand: KERNEL KIND STEP: why`) in the file, and the oracle finds nothing before it."""

import re

import pytest

from pyvmfuzz import _core, oracle
from pyvmfuzz.oracle.check import CORE_ONLY, KERNELS, observations

from conftest import corpus_files

PROGRAMS = [f for f in corpus_files("litmus") + corpus_files("repro")]
_HAND = re.compile(r"^# hand: (\S+) (\S+) (\d+): \S", re.M)
_HAND_WHY = re.compile(r"^# hand: (\S+) (\S+) (\d+): (.*)$", re.M)
_AS_LINE_ABOVE = re.compile(r"^as (\S+)'s line above")


def derive(text: str, kernel: str, hand: set) -> str:
    rep = _core.run_text(text, kernel)
    ov = oracle.judge(observations(rep))
    if ov is not None:
        return f"{ov.kind} {ov.step}"
    v = rep["violation"]
    if v is None:
        return "clean"
    assert v["kind"] in CORE_ONLY, (kernel, v)  # else core and oracle disagree: a model bug
    key = (kernel, v["kind"], v["step"])
    assert key in hand, f"{kernel}: core-only {v['kind']} at step {v['step']} has no '# hand:' derivation"
    return f"{v['kind']} {v['step']}"


@pytest.mark.parametrize("path", PROGRAMS, ids=[p.split("/")[-1] for p in PROGRAMS])
def test_expect_lines_are_the_oracles_or_derived_by_hand(path):
    text = open(path).read()
    hand = {(k, kind, int(step)) for k, kind, step in _HAND.findall(text)}
    written = dict(re.findall(r"^expect (\S+) (.+?)\s*$", text, re.M))
    # Every kernel gets an expect line, but for one under which the program cannot run (a line
    # not applicable in the state its schedule reached, contract §3.2: the tree's interlocked
    # shootdown leaves no IPI to take, its procfs no `retry` to stop at), which the file names.
    for k in set(KERNELS) - set(written):
        with pytest.raises(ValueError, match="not applicable"):
            _core.run_text(text, k)
        assert f"# not applicable under {k}: " in text, k
    used = set()
    for k in written:
        assert written[k] == derive(text, k, hand), k
        kind_step = written[k].split()
        if len(kind_step) == 2 and kind_step[0] in CORE_ONLY:
            used.add((k, kind_step[0], int(kind_step[1])))
    assert hand == used, "a '# hand:' line for a verdict the file does not expect"


def named(kernel: str, text: str) -> bool:
    """`kernel` as a whole name ("fixed" is not named by "fixed-tagged")."""
    return re.search(rf"(?<![\w-]){re.escape(kernel)}(?![\w-])", text) is not None


@pytest.mark.parametrize("path", PROGRAMS, ids=[p.split("/")[-1] for p in PROGRAMS])
def test_hand_lines_point_at_a_derivation_that_exists(path):
    """A `# hand:` line may point elsewhere instead of deriving its verdict itself, but what it
    points at must be there: "in this file's header" needs a header (the comments before the
    first program line) that names the kernel, and "as K's line above" needs K's hand line with
    the same kind and step. Else the line is a core verdict copied under a borrowed derivation
    (issue 15), which the oracle cannot catch for a core-only kind."""
    text = open(path).read()
    header = []
    for ln in text.splitlines():
        if ln.strip() and not ln.startswith("#"):
            break
        if not ln.startswith("# hand:"):
            header.append(ln)
    header = "\n".join(header)
    hand = {(k, kind, step): why for k, kind, step, why in _HAND_WHY.findall(text)}
    problems = []
    for (k, kind, step), why in hand.items():
        if "this file's header" in why and not named(k, header):
            problems.append(f"{k} {kind} {step}: cites the header, which never names {k}")
        m = _AS_LINE_ABOVE.match(why)
        if m and (m.group(1), kind, step) not in hand:
            problems.append(f"{k} {kind} {step}: cites {m.group(1)}'s line, which is not there")
    assert not problems, "\n".join(problems)
