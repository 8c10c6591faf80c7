"""Baselines for `pyvmfuzz bench`, on the same decoder and machine as the campaigns:
uniformly random byte strings with no feedback (run in Rust: `_core.random_until`), and a
Hypothesis RuleBasedStateMachine whose rules are the operations (each rule appends one
byte-form record, so every drawn program is valid, exactly as for libFuzzer)."""

from __future__ import annotations

import time

from pyvmfuzz import _core

# Operation codes of the byte form (rust/src/codec.rs).
SWITCH, LOAD, STORE, FORK, SPAWN, EXIT, SLEEP, WAKEUP, PREAD, PWRITE, MADVISE, MPROT_R, MPROT_RW = range(13)


class _Found(Exception):
    pass


class _OutOfTime(Exception):
    pass


def hypothesis_until(kernel: str, seed: int, budget_s: float, hw: str | None = None,
                     max_steps: int = 32) -> tuple[float | None, int]:
    """(seconds to the first violation or None, programs judged)."""
    from hypothesis import HealthCheck, Phase, Verbosity, settings
    from hypothesis import strategies as st
    from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

    target = _core.FuzzTarget(kernel, hw)
    start = time.monotonic()
    stats = {"execs": 0, "found": None}
    sel = st.integers(0, 15)
    page_word = st.integers(0, 27)
    value = st.integers(0, 8)
    pid = st.integers(0, 8)

    class VM(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.buf = bytearray()

        def add(self, kind, s, pw=0, val=0, tgt=0):
            # 5-byte records since issue 13; the fifth (no `until`) keeps the Hypothesis
            # baseline on plain programs, as before.
            self.buf += bytes([kind | (s << 4), pw, val, tgt, 0])

        @initialize(b0=st.integers(0, 255), b1=st.integers(0, 255))
        def header(self, b0, b1):
            self.buf = bytearray([b0, b1])

        @rule(s=sel, t=st.integers(0, 32))
        def switch(self, s, t):
            self.add(SWITCH, s, t)

        @rule(s=sel, a=page_word)
        def load(self, s, a):
            self.add(LOAD, s, (a // 4) << 2 | a % 4)

        @rule(s=sel, a=page_word, v=value)
        def store(self, s, a, v):
            self.add(STORE, s, (a // 4) << 2 | a % 4, v)

        @rule(s=sel)
        def fork(self, s):
            self.add(FORK, s)

        @rule(s=sel)
        def spawn(self, s):
            self.add(SPAWN, s)

        @rule(s=sel)
        def exit(self, s):
            self.add(EXIT, s)

        @rule(s=sel, a=page_word, v=value)
        def umtx_sleep(self, s, a, v):
            self.add(SLEEP, s, (a // 4) << 2 | a % 4, v)

        @rule(s=sel, a=page_word)
        def umtx_wakeup(self, s, a):
            self.add(WAKEUP, s, (a // 4) << 2 | a % 4)

        @rule(s=sel, a=page_word, t=pid)
        def procfs_read(self, s, a, t):
            self.add(PREAD, s, (a // 4) << 2 | a % 4, 0, t)

        @rule(s=sel, a=page_word, v=value, t=pid)
        def procfs_write(self, s, a, v, t):
            self.add(PWRITE, s, (a // 4) << 2 | a % 4, v, t)

        @rule(s=sel, p=st.integers(0, 6))
        def madvise(self, s, p):
            self.add(MADVISE, s, p << 2)

        @rule(s=sel, p=st.integers(0, 6), rw=st.booleans())
        def mprotect(self, s, p, rw):
            self.add(MPROT_RW if rw else MPROT_R, s, p << 2)

        @invariant()
        def judged_clean(self):
            if len(self.buf) < 2:
                return
            if time.monotonic() - start > budget_s:
                raise _OutOfTime()
            stats["execs"] += 1
            if target.run(bytes(self.buf))[0]:
                if stats["found"] is None:
                    stats["found"] = time.monotonic() - start
                raise _Found()

    conf = settings(max_examples=10**9, stateful_step_count=max_steps, deadline=None, database=None,
                    phases=[Phase.generate], verbosity=Verbosity.quiet, suppress_health_check=list(HealthCheck),
                    derandomize=False)
    import random as _random

    # Hypothesis draws from the global random module's seed when not derandomized.
    state = _random.getstate()
    _random.seed(seed)
    try:
        from hypothesis import seed as hseed

        @hseed(seed)
        def run():
            run_state_machine_as_test(VM, settings=conf)

        try:
            run()
        except BaseException as e:  # _Found, _OutOfTime, or Hypothesis's wrapping of them
            if not isinstance(e, (_Found, _OutOfTime, Exception)):
                raise
    finally:
        _random.setstate(state)
    return stats["found"], stats["execs"]
