"""Every knob of a kernel variant is a safety action `necessity` can switch (issue 24: the list
had 15 of 20 knobs and a second copy of them that ignored unknown names)."""

import pytest

from pyvmfuzz import _core

from conftest import KERNELS, corpus_files

ACTIONS = [a[0] for a in _core.safety_actions()]


def test_actions_are_distinct_and_named():
    assert len(ACTIONS) == len(set(ACTIONS)) >= 19
    for new in ("umtx_fault_write", "switch_keeps_same_space", "cow_break_before_make", "retry_keeps_write"):
        assert new in ACTIONS


def test_an_unknown_action_is_an_error():
    with pytest.raises(ValueError, match="unknown safety action 'no_such_knob'"):
        _core.run_variant("fixed", "cpu0 spawn\n", None, ["no_such_knob"], [])
    with pytest.raises(ValueError, match="unknown safety action 'no_such_knob'"):
        _core.run_variant("fixed", "cpu0 spawn\n", None, [], ["no_such_knob"])


@pytest.mark.parametrize("kernel", [k for k in KERNELS if k != "fixed"])
def test_each_zoo_kernel_is_fixed_with_its_actions_switched(kernel):
    """`fixed` with exactly the actions this kernel lacks switched off (and those it has that
    fixed lacks switched on) judges every corpus program as the kernel does: each variant is a
    named difference from fixed, and no knob hides outside the action list."""
    off = [a for a in ACTIONS if _core.action_present("fixed", a) and not _core.action_present(kernel, a)]
    on = [a for a in ACTIONS if not _core.action_present("fixed", a) and _core.action_present(kernel, a)]
    assert off or on, kernel
    checked = 0
    for path in corpus_files("litmus"):
        text = open(path).read()
        try:
            want = _core.run_text(text, kernel)["violation"]
        except ValueError:
            continue  # another kernel's schedule: not applicable here
        got = _core.run_variant("fixed", text, None, off, on)
        assert got == (None if want is None else (want["kind"], want["step"])), (path, off, on)
        checked += 1
    assert checked >= 20
