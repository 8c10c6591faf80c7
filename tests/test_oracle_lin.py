"""The linearizability oracle (SPEC §4.1, §4.2) on hand-written traces whose verdict was worked
out by hand from the SPEC; and its equivalence with the sequential judgement (no §3.2 lines)."""

import ctypes
import mmap
import os
import random

import pytest

from pyvmfuzz.oracle import TraceError, Violation, judge, judge_sequential
from pyvmfuzz.oracle import linearizability as lin


def v(kind, step, expected, observed):
    return Violation(kind, step, expected, observed)


# two threads of P1, on cpu0 and cpu1
TWO = "cpu0 spawn -> P1.T2\ncpu1 switch P1.T2 -> ok\n"


# ------------------------------------------------------------ pending IPIs, real time

IPI_WINDOW = TWO + """\
cpu1 store data0.0 0x1 -> ok
cpu0 mprotect data0 r until ipi_wait -> paused
cpu1 store data0.0 0x2 -> ok
cpu1 ipi -> ok
cpu0 resume -> ok
cpu1 load data0.0 -> 0x2
"""


def test_store_during_pending_mprotect_is_linearizable():
    # the store (step 5) overlaps the mprotect (steps 4..7): ordering it first explains `ok`
    assert judge(IPI_WINDOW) is None


def test_store_after_mprotect_completed_must_segv():
    # step 9 starts after the mprotect completed at step 7: real time puts it after -> SEGV
    assert judge(IPI_WINDOW + "cpu1 store data0.0 0x3 -> ok\n") == v("protection", 9, "SEGV", "ok")
    assert judge(IPI_WINDOW + "cpu1 store data0.0 0x3 -> SEGV\n") is None


def test_real_time_order_is_respected():
    # the load starts after the store completed: it must see the store
    after = TWO + "cpu1 store data0.0 0x5 -> ok\ncpu0 load data0.0 until pmap_enter -> paused\ncpu0 resume -> 0x0\n"
    assert judge(after) == v("stale-read", 5, "0x5", "0x0")
    # the same lines with the load started first: it may take effect before the store
    before = TWO + "cpu0 load data0.0 until pmap_enter -> paused\ncpu1 store data0.0 0x5 -> ok\ncpu0 resume -> 0x0\n"
    assert judge(before) is None
    assert judge(before.replace("resume -> 0x0", "resume -> 0x5")) is None


def test_two_reads_cannot_see_a_store_undone():
    # a pending store seen by one load cannot be unseen by a later one
    t = TWO + ("cpu0 store data0.0 0x7 until pmap_enter -> paused\n"
               "cpu1 load data0.0 -> 0x7\ncpu1 load data0.0 -> 0x0\n")
    assert judge(t) == v("stale-read", 5, "0x7", "0x0")


# ------------------------------------------------------------ pending ops' effects

DISCARD = """\
cpu0 store data0.0 0x5 -> ok
cpu0 fork -> P2
cpu1 switch P2.T1 -> ok
cpu0 madvise data0 dontneed until ipi_wait -> paused
cpu1 procfs_read P1 data0.0 -> 0x0
"""


def test_pending_op_effect_visible_before_it_completes():
    # the madvise never completes, yet its discard is seen: it is linearized while pending
    assert judge(DISCARD) is None
    # ... and once seen it stays: the old value cannot come back
    assert judge(DISCARD + "cpu1 procfs_read P1 data0.0 -> 0x5\n") == v("stale-read", 6, "0x0", "0x5")


def test_pending_op_linearized_early_is_held_to_its_outcome():
    # the load saw the store's value, so the store took effect before step 4: it cannot SEGV
    t = TWO + "cpu0 store data0.0 0x7 until pmap_enter -> paused\ncpu1 load data0.0 -> 0x7\ncpu0 resume -> SEGV\n"
    assert judge(t) == v("protection", 5, "ok", "SEGV")
    assert judge(t.replace("-> SEGV", "-> ok")) is None


def test_plain_line_paused_at_wait():
    t = TWO + """\
cpu0 mprotect data0 r until ipi_wait -> paused
cpu1 mprotect data1 r -> paused
cpu0 resume -> ok
cpu1 resume -> ok
cpu1 store data1.0 0x1 -> SEGV
"""
    assert judge(t) is None
    h = lin.parse(t)
    assert h.interleaved and [(o.start, o.end) for o in h.ops[2:]] == [(3, 5), (4, 6), (7, 7)]


def test_switch_paused_at_enter():
    # between the halves the switch may already have taken effect: T1 is runnable for cpu1
    t = TWO.replace("cpu1 switch P1.T2 -> ok\n", "") + """\
cpu0 switch P1.T2 until enter -> paused
cpu1 switch P1.T1 -> ok
cpu0 resume -> ok
cpu0 store data0.0 0x1 -> ok
cpu1 load data0.0 -> 0x1
"""
    assert judge(t) is None
    # a thread whose switch never happened cannot be the one running the op
    bad = "cpu0 spawn -> P1.T2\ncpu1 switch P1.T1 -> ok\n"
    with pytest.raises(TraceError, match="not runnable"):
        judge(bad)


# ------------------------------------------------------------ wake rules

SLEEP_THEN_WAKE = TWO.replace("cpu1 switch P1.T2 -> ok\n", "") + """\
cpu0 umtx_sleep data0.0 0x0 -> blocked
cpu1 switch P1.T2 -> ok
cpu1 umtx_wakeup data0.0 until access -> paused
cpu1 resume -> ok woke P1.T1
"""


def test_wakeup_must_wake_a_sleep_completed_before_it():
    assert judge(SLEEP_THEN_WAKE) is None
    lost = SLEEP_THEN_WAKE.replace("ok woke P1.T1", "ok")
    assert judge(lost) == v("lost-wakeup", 5, "ok woke P1.T1", "ok")
    # reported on a later line than the one where the wakeup completes: still lost there
    assert judge(lost + "cpu0 ipi -> ok woke P1.T1\n") == v("lost-wakeup", 5, "ok woke P1.T1", "ok")
    # reported while the wakeup is in flight (it took effect first): fine
    early = SLEEP_THEN_WAKE.replace("until access -> paused", "until access -> paused woke P1.T1")
    assert judge(early.replace("resume -> ok woke P1.T1", "resume -> ok")) is None


def test_wake_rule_applies_at_the_linearization_point():
    # the sleep completes inside the wakeup's interval: the wakeup may take effect first
    t = TWO + """\
cpu1 umtx_wakeup data0.0 until access -> paused
cpu0 umtx_sleep data0.0 0x0 -> blocked
cpu1 resume -> ok
"""
    assert judge(t) is None
    assert judge(t.replace("resume -> ok", "resume -> ok woke P1.T1")) is None   # or after it


def test_woken_thread_must_have_been_asleep_before_the_line():
    # R1 (docs/readings.md) replaced "only after its sleep completed": a sleeper still in flight
    # may be named (SPEC 4.1, tsleep_interlock); what is refused is a name on the line where
    # that sleep starts, or before it
    t = TWO + "cpu0 umtx_sleep data0.0 0x0 until sleep -> paused\ncpu1 store data1.0 0x1 -> ok woke P1.T1\n"
    assert judge(t) is None
    assert judge(t + "cpu0 resume -> blocked\n") is None
    on_start = TWO + "cpu0 umtx_sleep data0.0 0x0 until sleep -> paused woke P1.T1\n"
    assert judge(on_start) == v("outcome", 3, "paused", "paused woke P1.T1")


# ------------------------------------------------------------ SPEC 4.1's wake rule: R1-R4
# docs/readings.md, "Linearizability", R1-R4. Every verdict below was derived by hand from the
# rule text (the derivation is the comment) before the judge was run on it.

THREE = "hw cpus=3 tlb=8 mode=pc64\ncpu0 spawn -> P1.T2\ncpu0 spawn -> P1.T3\ncpu1 switch P1.T2 -> ok\ncpu2 switch P1.T3 -> ok\n"


def test_r1_an_in_flight_sleeper_may_be_named():
    # R1: T2's sleep started on line 3, earlier than line 4, not completed, not named since:
    # asleep in real time, so line 4 may name it (tsleep_interlock). Nothing owes it (no wakeup)
    # -> spurious, permitted; the sleep then completes `blocked`: clean. T2 is awake in real
    # time from line 4 on, so it can be switched back in at line 7 (a reported wake releases it).
    t = TWO + ("cpu1 umtx_sleep data0.0 0x0 until sleep -> paused\n"
               "cpu0 store data1.0 0x1 -> ok woke P1.T2\n"
               "cpu1 resume -> blocked\n"
               "cpu0 switch idle -> ok\n"
               "cpu0 switch P1.T2 -> ok\n"
               "cpu0 load data1.0 -> 0x1\n")
    assert judge(t) is None
    # named on its own completing line: still asleep in real time at that line -> clean
    t2 = TWO + "cpu1 umtx_sleep data0.0 0x0 until sleep -> paused\ncpu1 resume -> blocked woke P1.T2\n"
    assert judge(t2) is None


def test_r1_names_that_break_it_are_outcome():
    sleep = TWO + "cpu1 umtx_sleep data0.0 0x1 until access -> paused\n"
    # the sleep returned EBUSY on line 4, an earlier line than 5 -> outcome at 5, expected `ok`
    t = sleep + "cpu1 resume -> EBUSY\ncpu0 store data1.0 0x1 -> ok woke P1.T2\n"
    assert judge(t) == v("outcome", 5, "ok", "ok woke P1.T2")
    # ... but on the line where it completes EBUSY, not an earlier one: R1 holds; nothing owes
    # the wake (spurious); EBUSY is the contract's (0 != 1): clean
    assert judge(sleep + "cpu1 resume -> EBUSY woke P1.T2\n") is None
    # named on the line where its sleep starts (not an earlier line) -> outcome at 3
    assert judge(TWO + "cpu1 umtx_sleep data0.0 0x0 until sleep -> paused woke P1.T2\n") == \
        v("outcome", 3, "paused", "paused woke P1.T2")
    # a name twice on one line -> outcome at 4, the good names only: none
    assert judge(sleep.replace("0x1 until", "0x0 until") + "cpu0 ipi -> ok woke P1.T2,P1.T2\n") == \
        v("outcome", 4, "ok", "ok woke P1.T2,P1.T2")
    # named again after a report, with no sleep in between: named since the sleep started
    t = (TWO + "cpu1 umtx_sleep data0.0 0x0 -> blocked\ncpu0 ipi -> ok woke P1.T2\n"
         "cpu0 store data1.0 0x1 -> ok woke P1.T2\n")
    assert judge(t) == v("outcome", 5, "ok", "ok woke P1.T2")
    # a thread that never slept -> outcome
    assert judge(TWO + "cpu0 ipi -> ok woke P1.T1\n") == v("outcome", 3, "ok", "ok woke P1.T1")


def test_r1_a_dead_process_cannot_be_woken():
    # P1.T2 sleeps; P1.T1's exit is in flight from line 6 and completes on line 7: the process
    # dies on this very line -> naming T2 there is outcome (and on a later line too)
    t = TWO + ("cpu1 umtx_sleep data0.0 0x0 -> blocked\ncpu0 fork -> P2\ncpu1 switch P2.T1 -> ok\n"
               "cpu0 exit until ipi_wait -> paused\n")
    assert judge(t + "cpu0 resume -> ok woke P1.T2\n") == v("outcome", 7, "ok", "ok woke P1.T2")
    assert judge(t + "cpu0 resume -> ok\ncpu1 load data0.0 -> 0x0 woke P1.T2\n") == \
        v("outcome", 8, "0x0", "0x0 woke P1.T2")
    # while the exit is in flight it has not died in real time: naming T2 is R1-fine, and an
    # order that places the exit first owes it nothing -> clean
    assert judge(t + "cpu1 load data0.0 -> 0x0 woke P1.T2\ncpu0 resume -> ok\n") is None


# T1 sleeps on line 5 (S=5); T2's wakeup runs [6, 8]; T3 may report the wake on line 7
REPORT_ELSEWHERE = THREE + """\
cpu0 umtx_sleep data0.0 0x0 -> blocked
cpu1 umtx_wakeup data0.0 until access -> paused
cpu2 load data1.0 -> 0x0{}
cpu1 resume -> ok
"""


def test_r2_a_report_on_another_line_inside_the_window_satisfies_the_obligation():
    # every order puts the wakeup after the sleep (real time): it wakes T1 and owes it a name
    # in [5, 8]; line 7 (T3's load, not the wakeup's line) names it: clean
    assert judge(REPORT_ELSEWHERE.format(" woke P1.T1")) is None
    # not named anywhere in [5, 8]: lost-wakeup at 8, where the wakeup completes
    lost = REPORT_ELSEWHERE.format("")
    assert judge(lost) == v("lost-wakeup", 8, "ok woke P1.T1", "ok")
    # a report after E does not count: still lost at 8
    assert judge(lost + "cpu2 load data1.0 -> 0x0 woke P1.T1\n") == v("lost-wakeup", 8, "ok woke P1.T1", "ok")


def test_r2_a_report_before_the_sleep_started_belongs_to_an_earlier_sleep():
    # T1 sleeps (3), is reported woken (4, spurious), is switched in on cpu1 (5) and sleeps
    # again (6, S=6). T2, on cpu0, wakes the word over [8, 9]: it owes T1 a name in [6, 9];
    # line 4's name belongs to the earlier sleep: lost-wakeup at 9.
    t = TWO + """\
cpu0 umtx_sleep data0.0 0x0 -> blocked
cpu1 store data1.0 0x1 -> ok woke P1.T1
cpu1 switch P1.T1 -> ok
cpu1 umtx_sleep data0.0 0x0 -> blocked
cpu0 switch P1.T2 -> ok
cpu0 umtx_wakeup data0.0 until access -> paused
cpu0 resume -> ok{}
"""
    assert judge(t.format("")) == v("lost-wakeup", 9, "ok woke P1.T1", "ok")
    assert judge(t.format(" woke P1.T1")) is None


# T1 sleeps (4, S=4); T2's wakeup W1 [6, ...] starts; T3's wakeup W2 on line 7 reports nothing
PENDING_EXCUSES = """\
cpu0 spawn -> P1.T2
cpu0 spawn -> P1.T3
cpu1 switch P1.T2 -> ok
cpu0 umtx_sleep data0.0 0x0 -> blocked
cpu0 switch P1.T3 -> ok
cpu1 umtx_wakeup data0.0 until access -> paused
cpu0 umtx_wakeup data0.0 -> ok
"""


def test_r2_a_pending_wakeup_between_the_sleep_and_a_completed_one_excuses_it():
    # order sleep(4) < W1 (pending, placed) < W2: W1 wakes T1 and owes nothing yet; W2 finds
    # nobody blocked: clean up to line 7 (W1 never completes)
    assert judge(PENDING_EXCUSES) is None
    # W1 completes on 8 without the name: W1 first owes T1 a name in [4, 8]; W2 first owes it
    # one in [4, 7]; none anywhere -> lost-wakeup at 8 (R4: the orders that meet W2's
    # obligation, completed before 8, put W1 first; W1 completing at 8 owes the wake)
    assert judge(PENDING_EXCUSES + "cpu1 resume -> ok\n") == v("lost-wakeup", 8, "ok woke P1.T1", "ok")
    # named on W1's completing line: W1 first, T1 named in [4, 8]: clean
    assert judge(PENDING_EXCUSES + "cpu1 resume -> ok woke P1.T1\n") is None


def test_r2_a_spurious_report_needs_no_place_in_the_order():
    # T2 reported woken on 4 with no wakeup at all: permitted; it is switched in and runs
    t = TWO + ("cpu1 umtx_sleep data0.0 0x0 -> blocked\ncpu0 ipi -> ok woke P1.T2\n"
               "cpu1 switch P1.T2 -> ok\ncpu1 store data0.0 0x1 -> ok\n")
    assert judge(t) is None
    # a later wakeup whose window [S=3, E=7] contains the report finds T2 still blocked in the
    # replay (a report is no event of the order) and owes it a name: line 4 gives it: clean
    t = TWO + ("cpu1 umtx_sleep data0.0 0x0 -> blocked\ncpu0 ipi -> ok woke P1.T2\n"
               "cpu0 umtx_wakeup data0.0 until access -> paused\ncpu0 resume -> ok\n")
    assert judge(t) is None
    # never reported woken: never scheduled (SPEC 4), an input error as sequentially
    t = TWO + "cpu1 umtx_sleep data0.0 0x0 -> blocked\ncpu0 ipi -> ok\ncpu1 switch P1.T2 -> ok\n"
    with pytest.raises(TraceError, match="line 5: P1.T2 is not runnable"):
        judge(t)


def test_r3_the_step_is_the_first_line_without_an_order():
    # the worked example without its completing line: the sleep [3, pending] may be placed
    # after the wakeup, or not at all: clean. The violation comes with the sleep's `blocked`.
    t = WORKED.rsplit("cpu1 resume", 1)[0]
    assert judge(t) is None
    # the wakeup may take effect before the sleep when no store forces the order: clean
    assert judge(WORKED.replace("cpu0 store data0.0 0x1 -> ok\n", "")) is None
    # a sleep placed after the store returns EBUSY: clean
    assert judge(WORKED.replace("resume -> blocked", "resume -> EBUSY")) is None


# SPEC 4.1's worked example: a sleep paused before it registers, a store and a wakeup of its
# word run and complete, then the sleep completes `blocked`
WORKED = """\
hw cpus=2 tlb=8 mode=pc64
cpu0 spawn -> P1.T2
cpu1 switch P1.T2 -> ok
cpu1 umtx_sleep data0.0 0x0 until sleep -> paused
cpu0 store data0.0 0x1 -> ok
cpu0 umtx_wakeup data0.0 -> ok
cpu1 resume -> blocked
"""


def test_r4_spec_worked_example_is_lost_wakeup_at_the_sleeps_completing_line():
    # R3: at 6 the sleep must be placed; before the store (4) it is `blocked` but the wakeup
    # (5, completed) then owes T2 a name in [3, 5]: none; after the store it must be EBUSY. No
    # order: violation at 6. R4 at 6 admits the sleep-first order (the sleep had not completed
    # before 6): its failure is the owed wake (lost-wakeup); the other order's is `outcome`
    # (EBUSY expected). Most specific: lost-wakeup at 6.
    got = judge(WORKED)
    assert (got.kind, got.step, got.observed) == ("lost-wakeup", 6, "blocked")


def test_r4_most_specific_over_orders_and_failures_after_the_first_32_line():
    # after an ipi line (step 1): the wakeup (6) names T3, which never slept (R1: outcome),
    # and leaves T2, blocked on its word since 5, unnamed (lost-wakeup) -- one order, both
    # failures; R4 reports the most specific: lost-wakeup at 6
    seq = TWO + "cpu0 spawn -> P1.T3\ncpu1 umtx_sleep data0.0 0x0 -> blocked\ncpu0 umtx_wakeup data0.0 -> ok woke P1.T3\n"
    assert judge("cpu0 ipi -> ok\n" + seq) == v("lost-wakeup", 6, "ok woke P1.T2", "ok woke P1.T3")
    # before any 3.2 line the sequential judgement holds (SPEC 4.1; a bad wake list is judged
    # before lost-wakeup, test_oracle.py::test_bad_wake_is_judged_before_lost_wakeup), whatever
    # lines follow: the verdict at a line does not depend on later lines
    want = v("outcome", 5, "ok", "ok woke P1.T3")
    assert judge(seq) == want == judge(seq + "cpu0 ipi -> ok\n") == judge_sequential(seq)


def test_r4_a_broken_obligation_counts_by_any_later_line_while_its_sleep_is_in_flight():
    # Literal R4 ("each failure by L"): the worked example's sleep never completes; at 6 the
    # spawn's P1.T9 is wrong in every order (P1.T3 expected) -> violation at 6. The order that
    # placed the sleep before the store is admitted (the sleep has not completed) and its owed
    # wake (due at 5) was not named: lost-wakeup outranks the spawn's outcome.
    t = WORKED.rsplit("cpu1 resume", 1)[0] + "cpu0 spawn -> P1.T9\n"
    got = judge(t)
    assert (got.kind, got.step) == ("lost-wakeup", 6)
    assert judge(t.replace("P1.T9", "P1.T3")) is None


# SPEC 4.1 cases (../shared/cases/judge/): the core's traces (`pyvmfuzz run FILE --kernel K`),
# with the files' hand verdicts
CASES = {
    # procfs-hold-only: T3's sleep [8, 13], T1's wakeup [12, 14]: the wakeup may take effect
    # before the sleep and owes T3 nothing; T2 (S=4) is named on 13, inside [4, 14]: clean
    "overlapping-sleep-and-wakeup-clean": ("""\
hw cpus=2 tlb=3 mode=pc64
kernel procfs-hold-only
cpu0 spawn -> P1.T2
cpu1 switch P1.T2 -> ok
cpu0 spawn -> P1.T3
cpu1 umtx_sleep data0.0 0x0 -> blocked
cpu0 store data0.0 0x0 -> ok
cpu1 switch P1.T3 -> ok
cpu0 fork until ipi_wait -> paused
cpu1 umtx_sleep data0.0 0x0 -> paused
cpu0 resume -> P2
cpu0 switch P2.T1 -> ok
cpu0 switch P1.T1 -> ok
cpu0 umtx_wakeup data0.0 until access -> paused
cpu1 resume -> blocked woke P1.T2
cpu0 resume -> ok
""", None),
    # no-cow-event / pre-10192bae: T2 sleeps (3); wakeups [8, 10] and [9, 11]; at 10 the second
    # (pending) may take T2's wake; at 11 it completes: lost-wakeup at 11
    "overlapping-wakeups-lost": ("""\
hw cpus=2 tlb=8 mode=pc64
kernel no-cow-event
cpu0 spawn -> P1.T2
cpu1 switch P1.T2 -> ok
cpu1 umtx_sleep data0.0 0x0 -> blocked
cpu0 spawn -> P1.T3
cpu1 switch P1.T3 -> ok
cpu0 fork -> P2
cpu0 store data0.0 0x0 -> ok
cpu0 umtx_wakeup data0.0 until access -> paused
cpu1 umtx_wakeup data0.0 -> paused
cpu0 resume -> ok
cpu1 resume -> ok
""", ("lost-wakeup", 11)),
    # umtx-no-recheck: the wakeup [4, 11] may take effect before both sleeps: T2's wake on 11
    # is spurious, T1's sleep [8, 12] is placed before the store of 1 (9): blocked. Clean.
    "spurious-wake-from-a-pending-wakeup-clean": ("""\
hw cpus=3 tlb=8 mode=pc64
kernel umtx-no-recheck
cpu0 fork -> P2
cpu0 store shm0.0 0x0 until pmap_enter -> paused
cpu1 switch P2.T1 -> ok
cpu1 umtx_wakeup shm0.0 -> paused
cpu0 resume -> ok
cpu0 spawn -> P1.T2
cpu2 switch P1.T2 -> ok
cpu0 umtx_sleep shm0.0 0x0 until sleep -> paused
cpu2 store shm0.0 0x1 -> ok
cpu2 umtx_sleep shm0.0 0x1 -> blocked
cpu1 resume -> ok woke P1.T2
cpu0 resume -> blocked
""", None),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_shared_judge_cases(name):
    trace, want = CASES[name]
    got = judge(trace)
    assert (got and (got.kind, got.step)) == (want or None)


# ------------------------------------------------------------ kinds

def test_outcome_kind_and_ipi_line():
    assert judge("cpu1 ipi -> EBUSY\n") == v("outcome", 1, "ok", "EBUSY")
    t = TWO + "cpu1 fork until ipi_wait -> paused\ncpu0 spawn -> P1.T3\ncpu1 resume -> P3\n"
    assert judge(t) == v("outcome", 5, "P2", "P3")


def test_most_specific_kind_over_the_valid_orders():
    # P2's exit is pending: ordered before the read the read gets `outcome` (ESRCH vs 0x9),
    # ordered after it `stale-read` (0x0 vs 0x9): SPEC §4.1 reports the more specific one
    t = "cpu0 fork -> P2\ncpu1 switch P2.T1 -> ok\ncpu1 exit until ipi_wait -> paused\ncpu0 procfs_read P2 data0.0 -> 0x9\n"
    assert judge(t) == v("stale-read", 4, "0x0", "0x9")
    # with the exit complete there is one order: outcome
    assert judge(t.replace("cpu1 exit until ipi_wait -> paused", "cpu1 exit -> ok")) == v("outcome", 4, "ESRCH", "0x9")


def test_input_errors():
    with pytest.raises(TraceError, match="line 2: not applicable: nothing in flight"):
        judge("cpu0 store data0.0 1 -> ok\ncpu0 resume -> ok\n")
    with pytest.raises(TraceError, match="line 2: not applicable: cpu0 has an op in flight"):
        judge("cpu0 store data0.0 1 until pmap_enter -> paused\ncpu0 load data0.0 -> 0x1\n")
    with pytest.raises(TraceError, match="unknown yield point"):
        judge("cpu0 load data0.0 until nowhere -> paused\n")
    with pytest.raises(TraceError, match="line 1: bad os line"):
        judge("os freebsd\ncpu0 load data0.0 -> 0x0\n")


# ------------------------------------------------------------ personalities (SPEC §4.2)

RO_SLEEP = "cpu0 mprotect data0 r -> ok\ncpu0 umtx_sleep data0.0 0x0 -> {}\n"


def test_os_personality_umtx_sleep_on_readonly_page():
    assert judge(RO_SLEEP.format("EFAULT")) is None                       # dragonfly, default
    assert judge("os dragonfly\n" + RO_SLEEP.format("EFAULT")) is None
    assert judge("os linux\n" + RO_SLEEP.format("blocked")) is None
    assert judge("os linux\n" + RO_SLEEP.format("EFAULT")) == v("outcome", 2, "blocked", "EFAULT")
    assert judge(RO_SLEEP.format("blocked"), os="linux") is None           # the parameter wins
    assert judge("os linux\n" + RO_SLEEP.format("EFAULT"), os="dragonfly") is None
    # text is read-only from the start; a differing value reads EAGAIN -> EBUSY on Linux
    assert judge("cpu0 umtx_sleep text0.0 0x0 -> EBUSY\n", os="linux") is None
    assert judge_sequential("cpu0 umtx_sleep text0.0 0x0 -> EBUSY\n", os="linux") is None
    with pytest.raises(TraceError):
        judge("cpu0 load data0.0 -> 0x0\n", os="plan9")


FUTEX_WAIT, FUTEX_PRIVATE_FLAG = 0, 128


@pytest.mark.skipif(not os.path.exists("/proc/self/maps") or os.uname().machine != "x86_64",
                    reason="Linux x86-64 futex syscall number")
def test_linux_futex_on_readonly_pages():
    """The host's FUTEX_WAIT on a page without write permission, against the oracle's `os
    linux` answer: a private futex on a PROT_READ private page and a shared futex on a
    read-only MAP_SHARED page both read the word: equal -> would block (ETIMEDOUT with a
    timeout), different -> EAGAIN. Never EFAULT (kernel/futex/core.c get_futex_key: no page
    lookup for private futexes; shared ones retry read-only since 9ea71503a8ed)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long

    class Timespec(ctypes.Structure):
        _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]

    def futex_wait(addr, val, private):
        ts = Timespec(0, 1_000_000)
        op = FUTEX_WAIT | (FUTEX_PRIVATE_FLAG if private else 0)
        r = libc.syscall(202, ctypes.c_void_p(addr), op, ctypes.c_uint32(val), ctypes.byref(ts), None, 0)
        return "ok" if r == 0 else os.strerror(ctypes.get_errno())

    host = {}
    for name, flags, private in (("private", mmap.MAP_PRIVATE, True), ("shared", mmap.MAP_SHARED, False)):
        m = mmap.mmap(-1, mmap.PAGESIZE, flags=flags, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        m[0:4] = (5).to_bytes(4, "little")
        addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
        assert libc.mprotect(ctypes.c_void_p(addr), mmap.PAGESIZE, mmap.PROT_READ) == 0
        host[name] = (futex_wait(addr, 5, private), futex_wait(addr, 6, private))
    to_contract = {os.strerror(110): "blocked", os.strerror(11): "EBUSY", os.strerror(14): "EFAULT"}
    for name, page in (("private", "data0"), ("shared", "shm0")):
        equal, differ = (to_contract.get(r, r) for r in host[name])
        for value, seen in ((0x0, equal), (0x1, differ)):
            t = f"cpu0 mprotect {page} r -> ok\ncpu0 umtx_sleep {page}.0 {value:#x} -> {seen}\n"
            assert judge(t, os="linux") is None, (name, host[name])
    assert host["private"] == (os.strerror(110), os.strerror(11))   # ETIMEDOUT, EAGAIN
    assert host["shared"] == (os.strerror(110), os.strerror(11))
    # the futex flavour matters: a *shared* futex on a read-only private anonymous page is
    # EFAULT (get_futex_key: PageAnon && ro) -- why the contract uses private futexes there
    m = mmap.mmap(-1, mmap.PAGESIZE, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    m[0:4] = (5).to_bytes(4, "little")
    addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
    assert libc.mprotect(ctypes.c_void_p(addr), mmap.PAGESIZE, mmap.PROT_READ) == 0
    assert futex_wait(addr, 5, private=False) == os.strerror(14)       # EFAULT


# ------------------------------------------------------------ the sequential judgement

def _sequential_traces(n, seed):
    """Traces with no §3.2 lines, each also mutated at one step (to make violations)."""
    from pyvmfuzz.oracle.check import KERNELS, observations
    from pyvmfuzz import _core

    rng = random.Random(seed)
    for i in range(n):
        # 5-byte records (rust/src/codec.rs) with the `until` byte below 0xa0: plain lines only
        # (resume/ipi records fold into operations while nothing is in flight)
        # (no 0xff escape in the value or pid byte, so records stay aligned)
        recs = [bytes(b % 0xff for b in rng.randbytes(4)) + b"\0" for _ in range(rng.randrange(1, 24))]
        rep = _core.run_bytes(rng.randbytes(2) + b"".join(recs), KERNELS[i % len(KERNELS)])
        t = observations(rep)
        yield t
        lines = t.splitlines()
        if len(lines) > 1:
            j = rng.randrange(1, len(lines))
            op = lines[j].partition(" -> ")[0]
            alt = rng.choice(["ok", "0x1", "SEGV", "blocked", "EBUSY", "EFAULT", "ok woke P1.T1", "P3"])
            lines[j] = f"{op} -> {alt}"
            yield "\n".join(lines) + "\n"


def _verdict(f, t):
    try:
        return f(t)
    except TraceError as e:
        return ("trace-error", str(e))


def test_sequential_traces_judged_exactly_as_before():
    pytest.importorskip("pyvmfuzz._core")
    traces = list(_sequential_traces(300, seed=7))
    verdicts = [_verdict(judge_sequential, t) for t in traces]
    assert sum(isinstance(x, Violation) for x in verdicts) > 100      # the mutants do violate
    for t, want in zip(traces, verdicts):
        assert not lin.parse(t).interleaved
        assert _verdict(judge, t) == want, t


# ------------------------------------------------------------ --os on the command line

def test_cli_os_reaches_the_oracle(tmp_path, capsys):
    pytest.importorskip("pyvmfuzz._core")
    from pyvmfuzz.cli import main

    prog = tmp_path / "ro.txt"
    prog.write_text("cpu0 mprotect data0 r\ncpu0 umtx_sleep data0.0 0\n")
    # the core models DragonFly (EFAULT); under os linux the oracle's verdict is run's verdict
    assert main(["run", str(prog), "--os", "linux"]) == 1
    assert ("# verdict: violation (os linux, oracle): outcome at step 2: expected blocked, observed EFAULT"
            in capsys.readouterr().out)
    assert main(["run", str(prog), "--os", "dragonfly"]) == 0
    assert "# oracle (os dragonfly): clean" in capsys.readouterr().out
    assert main(["check", str(prog)]) == 0
    assert main(["check", str(prog), "--os", "linux"]) == 1
    assert "oracle=outcome@2" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["check", str(prog), "--os", "bsd"])
    assert e.value.code == 2


# ------------------------------------------------------------ hand-derived litmus traces
# The expected `fixed` traces of /work/staging/litmus/ (verdicts derived by hand from the SPEC),
# and the observation a broken kernel makes there, with the step and kind derived by hand.

LITMUS = {
    "i05-cow-fault-revalidates-after-madvise": """\
hw cpus=3 tlb=8 mode=pc64
cpu0 store data0.1 0x5 -> ok
cpu0 spawn -> P1.T2
cpu1 switch P1.T2 -> ok
cpu0 fork -> P2
cpu2 switch P2.T1 -> ok
cpu2 load data0.1 -> 0x5
cpu0 store data0.0 0x6 until cow -> paused
cpu2 load data0.0 -> 0x0
cpu1 madvise data0 dontneed -> ok
cpu0 resume -> ok
cpu0 load data0.1 -> 0x0
cpu0 load data0.0 -> 0x6
cpu2 load data0.1 -> 0x5
""",
    "i07-lock-busy-page-procfs-fork": """\
cpu0 store data0.0 0x1 -> ok
cpu0 fork -> P2
cpu0 load data0.1 -> 0x0
cpu1 switch P2.T1 -> ok
cpu1 procfs_write P1 data0.1 0x7 until access -> paused
cpu0 fork -> paused
cpu1 resume -> ok
cpu0 resume -> P3
cpu0 load data0.1 -> 0x7
cpu0 load data0.0 -> 0x1
cpu1 switch P3.T1 -> ok
cpu1 load data0.1 -> 0x7
cpu1 load data0.0 -> 0x1
""",
    "i08-lock-map-mprotect-umtx": """\
cpu0 spawn -> P1.T2
cpu1 switch P1.T2 -> ok
cpu1 store data0.0 0x0 -> ok
cpu0 mprotect data0 r until ipi_wait -> paused
cpu1 umtx_sleep data0.0 0x0 -> paused
cpu0 resume -> ok
cpu1 resume -> EFAULT
cpu1 store data0.0 0x1 -> SEGV
""",
    "i10-lock-umtx-recheck-after-madvise": """\
cpu0 spawn -> P1.T2
cpu1 switch P1.T2 -> ok
cpu0 store data0.0 0x5 -> ok
cpu1 umtx_sleep data0.0 0x5 until sleep -> paused
cpu0 madvise data0 dontneed -> ok
cpu1 resume -> EBUSY
cpu0 umtx_wakeup data0.0 -> ok
""",
    "i11-lock-pte-cow-unmap-madvise": """\
hw cpus=3 tlb=8 mode=pc64
cpu0 store data0.0 0x5 -> ok
cpu0 fork -> P2
cpu0 spawn -> P1.T2
cpu0 spawn -> P1.T3
cpu1 switch P1.T2 -> ok
cpu2 switch P1.T3 -> ok
cpu1 load data0.0 -> 0x5
cpu2 load data0.0 -> 0x5
cpu0 procfs_write P1 data0.1 0x7 until ipi_wait -> paused
cpu2 load data0.1 -> 0x0
cpu1 madvise data0 dontneed -> paused
cpu2 load data0.0 -> 0x5
cpu0 resume -> ok
cpu1 resume -> ok
cpu2 load data0.1 -> 0x0
cpu2 load data0.0 -> 0x0
""",
}


BROKEN = [
    # fork-no-protect: the store does not fault and lands in the frame P2 still maps
    ("i05-cow-fault-revalidates-after-madvise", 8,
     [("until cow -> paused", "until cow -> ok"), ("cpu2 load data0.0 -> 0x0", "cpu2 load data0.0 -> 0x6")],
     v("stale-read", 8, "0x0", "0x6")),
    # partial-385c96e4: P1's PTE still maps the frame copied away
    ("i07-lock-busy-page-procfs-fork", 9, [("cpu0 load data0.1 -> 0x7", "cpu0 load data0.1 -> 0x0")],
     v("stale-read", 9, "0x7", "0x0")),
    # no map lock across ipi_wait: EFAULT while cpu1 still stores through its writable entry
    ("i08-lock-map-mprotect-umtx", 5, [("0x0 -> paused", "0x0 -> EFAULT")], None),
    # partial-385c96e4: no unmap, no pmap_enter: the write completes at once; T3's TLB keeps F
    ("i11-lock-pte-cow-unmap-madvise", 10, [("until ipi_wait -> paused", "until ipi_wait -> ok")],
     v("stale-read", 10, "0x7", "0x0")),
    # umtx-no-recheck: the sleeper stays on the discarded frame; the wakeup misses it
    ("i10-lock-umtx-recheck-after-madvise", None, [("resume -> EBUSY", "resume -> blocked")],
     v("lost-wakeup", 7, "ok woke P1.T2", "ok")),
]


@pytest.mark.parametrize("name", sorted(LITMUS))
def test_litmus_expected_trace_is_clean(name):
    assert judge(LITMUS[name]) is None


@pytest.mark.parametrize("name,upto,edits,want", BROKEN, ids=[b[0] for b in BROKEN])
def test_litmus_broken_observation_is_flagged(name, upto, edits, want):
    lines = LITMUS[name].splitlines()
    lines = lines[:upto + (lines[0].startswith("hw")) if upto else None]
    t = "\n".join(lines) + "\n"
    for old, new in edits:
        assert old in t
        t = t.replace(old, new, 1)
    if want is None:   # i08: the store after the early EFAULT
        t += "cpu1 store data0.0 0x1 -> ok\n"
        want = v("protection", 6, "SEGV", "ok")
    assert judge(t) == want


# ------------------------------------------------------------ random interleaved histories

def _interleaved_history(rng, cpus=3, lines=24):
    """A random trace with §3.2 lines whose outcomes come from one sequential execution of the
    contract, each op taking effect at a random line inside its interval: always linearizable.
    Ops take effect on their own lines or on `ipi` lines; a wakeup's due wakes are reported on
    the line where it takes effect (after the sleep's completion line)."""
    from pyvmfuzz.oracle import Oracle, parse_op

    o = Oracle(cpus)
    flight = {}   # cpu -> [op text, outcome or None (not yet in effect)]
    out = [f"hw cpus={cpus} tlb=8 mode=pc64"]

    def effect(cpu, text):
        op = parse_op(text, cpus)
        t = o._actor(op, 0)
        exp = o._expected(op, t)
        must = o._must_wake(op, t)
        o._apply(op, t, exp)
        for w in must:   # reported at once: the sleeper's sleep completed on an earlier line
            s = o.thread(w)
            s.state, s.key = "runnable", None
        return exp, sorted(must)

    def fmt(outcome, woke):
        return outcome + (" woke " + ",".join(f"P{p}.T{t}" for p, t in woke) if woke else "")

    def candidates(cpu):
        t = o.cpu[cpu]
        runnable = [x.name for x in o.threads() if x.state == "runnable"]
        ops = [f"cpu{cpu} switch {'idle' if not runnable or rng.random() < .2 else 'P%d.T%d' % rng.choice(runnable)}"]
        if t is not None and cpu not in flight:
            proc = o.procs[t.pid]
            busy = any(c in flight for c, x in enumerate(o.cpu) if x is not None and x.pid == t.pid)
            page = rng.choice(["data0", "data1", "text0", "shm0"])
            w, val = rng.randrange(2), rng.randrange(2)
            pid = rng.choice(list(o.procs))
            ops += [f"cpu{cpu} load {page}.{w}", f"cpu{cpu} procfs_read P{pid} {page}.{w}",
                    f"cpu{cpu} procfs_write P{pid} {page}.{w} {val:#x}", f"cpu{cpu} umtx_wakeup {page}.{w}",
                    f"cpu{cpu} mprotect {page} {rng.choice(['r', 'rw'])}", f"cpu{cpu} spawn",
                    f"cpu{cpu} madvise {page} dontneed", f"cpu{cpu} fork"]
            if not busy:   # killing ops and sleeps: only with no sibling in the kernel
                ops += [f"cpu{cpu} store {page}.{w} {val:#x}", f"cpu{cpu} umtx_sleep {page}.{w} {val:#x}"]
                if rng.random() < .1:
                    ops.append(f"cpu{cpu} exit")
        return ops

    n = tries = 0
    while n < lines and tries < 50 * lines:   # everyone asleep or dead: stop early
        tries += 1
        cpu = rng.randrange(cpus)
        if cpu in flight:
            text, done = flight[cpu]
            if rng.random() < .3 and any(c != cpu for c in flight):
                # an ipi line; a pending op elsewhere may take effect here
                other = rng.choice([c for c in flight if c != cpu and flight[c][1] is None] or [None])
                woke = []
                if other is not None and rng.random() < .6:
                    flight[other][1], woke = effect(other, flight[other][0])
                out.append(f"cpu{cpu} ipi -> {fmt('ok', woke)}")
            else:
                woke = []
                if done is None:
                    done, woke = effect(cpu, text)
                if rng.random() < .3:
                    flight[cpu][1] = done
                    out.append(f"cpu{cpu} resume until wait -> {fmt('paused', woke)}")
                else:
                    del flight[cpu]
                    out.append(f"cpu{cpu} resume -> {fmt(done, woke)}")
            n += 1
            continue
        text = rng.choice(candidates(cpu))
        op = parse_op(text, cpus)
        if op.action == "switch" and o.cpu[cpu] is None and op.target is None:
            continue
        try:
            o._actor(op, 0)
        except Exception:
            continue
        kills = op.action in ("exit", "store", "umtx_sleep")
        if rng.random() < .4 and not kills and not (op.action == "switch" and op.target is None):
            woke, done = [], None
            if rng.random() < .5 or op.action == "switch":   # a switch claims its target at once
                done, woke = effect(cpu, text)
            flight[cpu] = [text, done]
            out.append(f"{text} until wait -> {fmt('paused', woke)}")
        else:
            done, woke = effect(cpu, text)
            out.append(f"{text} -> {fmt(done, woke)}")
        n += 1
    return "\n".join(out) + "\n"


def test_random_interleaved_histories_are_linearizable():
    rng = random.Random(11)
    interleaved = violations = 0
    for _ in range(150):
        t = _interleaved_history(rng, cpus=rng.choice([2, 3, 4]), lines=rng.choice([12, 24, 40]))
        interleaved += lin.parse(t).interleaved
        assert judge(t) is None, t
        # one outcome changed at step k: lines before k are judged as before, so any violation
        # is at k or later
        lines = t.splitlines()
        k = rng.randrange(1, len(lines))
        op = lines[k].partition(" -> ")[0]
        lines[k] = op + " -> " + rng.choice(["ok", "0x1", "0x0", "SEGV", "blocked", "EBUSY", "P3"])
        try:
            got = judge("\n".join(lines) + "\n")
        except TraceError:
            continue
        if got is not None:
            violations += 1
            assert got.step >= k, (k, got, lines)
    assert interleaved > 100 and violations > 50


# Derived by hand (reading pinned in docs/readings.md, "a joined death"): P1.T2's exit waits
# for P1.T1, which is in the kernel; T1 leaves the kernel, runs on and dies of a SEGV, which
# kills P1; T2's exit, in flight across that death, completes `ok` as part of it (DragonFly's
# exit1(): one master exit, a later exiter only lwp_exit()s).
JOINED = """hw cpus=2
cpu0 spawn -> P1.T2
cpu1 switch P1.T2 -> ok
cpu0 procfs_read P1 data0.0 until access -> paused
cpu1 exit -> paused
cpu0 resume -> 0x0
cpu0 store text0.0 0x1 -> SEGV
cpu1 resume -> {}
"""


def test_joined_death_completes_as_part_of_the_death():
    from pyvmfuzz import oracle

    assert oracle.judge(JOINED.format("ok")) is None
    v = oracle.judge(JOINED.format("0x5"))
    assert v is not None and (v.kind, v.step) == ("outcome", 7)


def test_an_op_started_after_the_death_is_not_joined():
    from pyvmfuzz import oracle
    from pyvmfuzz.oracle import TraceError

    trace = JOINED.format("ok") + "cpu1 exit -> ok\n"
    with pytest.raises(TraceError, match="cpu1 is idle"):
        oracle.judge(trace)


def test_a_resume_with_nothing_in_flight_is_an_input_error_under_every_kernel():
    # docs/contract.md §3.2 and the corrected deferred-flush (issue 23): an op waits for its own
    # IPIs before it returns, so no `resume` finishes a flush after a completed mprotect.
    trace = "hw cpus=2\ncpu0 mprotect data0 r -> ok\ncpu0 resume -> ok\n"
    with pytest.raises(TraceError, match="line 3: not applicable: nothing in flight on cpu0"):
        judge(trace)


# ------------------------------------------------------------ R5: SEGV due, a value read

# Verdicts worked out by hand (docs/readings.md R5) before the core ran these traces.
SEGV_DUE = """\
hw cpus=2
cpu0 spawn -> P1.T2
cpu1 switch P1.T2 -> ok
cpu0 load data0.0 -> 0x0
cpu1 munmap data0 -> ok
cpu0 load data0.0 -> 0x0
"""
# the munmap completed: every order needs SEGV at 5, the load read a value
MOVE_PENDING = """\
hw cpus=3
cpu0 fork -> P2
cpu0 spawn -> P1.T2
cpu1 switch P1.T2 -> ok
cpu2 switch P2.T1 -> ok
cpu1 store data0.0 0x5 -> ok
cpu0 mremap data0 data1 until ipi_wait -> paused
cpu2 pageout P1 data1 -> ok
cpu2 store data2.0 0x7 -> ok
cpu1 load data0.0 -> 0x7
"""
# the mremap is pending: the load first needs 0x5 (a wrong value read), the mremap first needs
# SEGV (a permission): both rank first in SPEC 4.1; stale-read, listed first, is reported


def test_a_load_that_must_segv_reads_a_value_is_protection():
    assert judge(SEGV_DUE) == v("protection", 5, "SEGV", "0x0")
    assert judge_sequential(SEGV_DUE) == v("protection", 5, "SEGV", "0x0")


def test_a_load_both_stale_and_unpermitted_in_some_order_is_stale_read():
    assert judge(MOVE_PENDING) == v("stale-read", 9, "0x5", "0x7")


@pytest.mark.parametrize("text,kernel,want", [
    (SEGV_DUE, "shootdown-no-ipi", ("protection", 5, "SEGV")),
    (MOVE_PENDING, "mremap-flush-late", ("stale-read", 9, "0x5")),
])
def test_the_core_classifies_them_alike(text, kernel, want):
    # run past the core's own first violation (tlb-incoherent / use-after-free) to the load
    from pyvmfuzz import _core
    r = _core.run_text("".join(ln.split(" ->")[0] + "\n" for ln in text.splitlines()), kernel,
                       past_internal=True)
    got = r["violation"]
    assert (got["kind"], got["step"], got["expected"]) == want
