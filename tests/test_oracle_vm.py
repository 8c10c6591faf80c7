"""The oracle (pyvmfuzz/oracle/) on SPEC §3.4 -- memory that moves, is cleaned and is freed --
with its §4 contract, the §4.1 judgement of interleaved lines and the §4.2 personalities.

Every trace here is short and written by hand; every expected verdict was worked out by hand
from SPEC §2, §3.2, §3.4, §4, §4.1, §4.2 and docs/contract.md (§3.4, §4, §4.1, §4.2), never
from the Rust core, and the comment next to it says why. Clean traces must pass; wrong ones must
be flagged with the exact kind and step (steps count op lines only: op, `resume` and `ipi`)."""

import pytest

from pyvmfuzz.oracle import TraceError, Violation, judge
from pyvmfuzz.oracle.check import CORE_ONLY, judge_report

HDR = "hw cpus=2 tlb=8 mode=pc64\nkernel fixed\n"
LINUX = "os linux\n"
OSES = ("dragonfly", "linux")

# P1.T1 on cpu0, its child P2.T1 on cpu1 (steps 1, 2)
FORK2 = "cpu0 fork -> P2\ncpu1 switch P2.T1 -> ok\n"
# P1.T1 on cpu0, P1.T2 on cpu1 (steps 1, 2)
TWO = "cpu0 spawn -> P1.T2\ncpu1 switch P1.T2 -> ok\n"


def v(kind, step, expected, observed):
    return Violation(kind, step, expected, observed)


def ks(trace, os=None):
    """(kind, step) of the oracle's verdict, None when clean."""
    r = judge(trace, os=os)
    return None if r is None else (r.kind, r.step)


def swap(trace, old, new):
    """trace with exactly one occurrence of `old` replaced (a guard against typos in tests)."""
    assert trace.count(old) == 1, (old, trace)
    return trace.replace(old, new)


# ============================================================ the nine pages (§3.4 "Pages")

def test_file0_starts_with_the_data_file_words():
    # file0 word w is initially 0xd000 + w; it is rw (max rw), so a store succeeds and is read back
    t = HDR + """\
cpu0 load file0.0 -> 0xd000
cpu0 load file0.3 -> 0xd003
cpu0 store file0.1 0x7 -> ok
cpu0 load file0.1 -> 0x7
cpu0 procfs_read P1 file0.2 -> 0xd002
"""
    assert judge(t) is None
    # a load of word 2 that gives 0 (as if anonymous) is a wrong value: stale-read at step 1
    assert judge("cpu0 load file0.2 -> 0x0\n") == v("stale-read", 1, "0xd002", "0x0")


def test_file0_is_shared_across_fork_both_ways():
    # fork inherits file0 *shared*: the parent's store after the fork is read by the child,
    # and the child's store by the parent
    t = FORK2 + """\
cpu0 store file0.0 0x5 -> ok
cpu1 load file0.0 -> 0x5
cpu1 store file0.1 0x6 -> ok
cpu0 load file0.1 -> 0x6
"""
    assert judge(t) is None
    # the child reading the pre-store value: stale-read at step 4
    assert judge(swap(t, "cpu1 load file0.0 -> 0x5", "cpu1 load file0.0 -> 0xd000")) == \
        v("stale-read", 4, "0x5", "0xd000")
    # the parent not seeing the child's store: stale-read at step 6
    assert ks(swap(t, "cpu0 load file0.1 -> 0x6", "cpu0 load file0.1 -> 0xd001")) == ("stale-read", 6)


def test_file0_unlike_a_private_page_after_fork():
    # control: data0 is private -- the child keeps its copy, so the same lines read the old value
    t = FORK2 + "cpu0 store data0.0 0x5 -> ok\ncpu1 load data0.0 -> 0x0\n"
    assert judge(t) is None
    assert judge(swap(t, "-> 0x0", "-> 0x5")) == v("stale-read", 4, "0x0", "0x5")


def test_file0_procfs_write_by_one_is_read_by_all():
    # a debugger write into P1's file0 writes the data file's page, which P2 maps too
    t = FORK2 + """\
cpu1 procfs_write P1 file0.2 0x9 -> ok
cpu0 load file0.2 -> 0x9
cpu1 load file0.2 -> 0x9
cpu0 procfs_read P2 file0.2 -> 0x9
"""
    assert judge(t) is None
    # P2 (the writer, through P1) still reading the file's initial word: stale-read at step 5
    assert ks(swap(t, "cpu1 load file0.2 -> 0x9", "cpu1 load file0.2 -> 0xd002")) == ("stale-read", 5)
    # procfs_read of P2's file0 is the same shared word: a wrong value there is stale-read at 6
    assert ks(swap(t, "procfs_read P2 file0.2 -> 0x9", "procfs_read P2 file0.2 -> 0xd002")) == \
        ("stale-read", 6)


def test_file0_umtx_sleep_compares_the_shared_word():
    # P2's store changed the one shared word: P1's sleep on the old value returns EBUSY
    t = FORK2 + "cpu1 store file0.0 0x1 -> ok\ncpu0 umtx_sleep file0.0 0xd000 -> EBUSY\n"
    assert judge(t) is None
    assert judge(swap(t, "-> EBUSY", "-> blocked")) == v("outcome", 4, "EBUSY", "blocked")


def test_hole0_load_segv_kills_the_process():
    # hole0 has no mapping at first: a load SEGVs, and a SEGV kills the whole process
    t = FORK2 + "cpu0 load hole0.0 -> SEGV\ncpu1 procfs_read P1 data0.0 -> ESRCH\n"
    assert judge(t) is None
    # a value from an unmapped page is a load that succeeded where it must SEGV: protection
    assert judge(swap(t, "hole0.0 -> SEGV", "hole0.0 -> 0x0")) == v("protection", 3, "SEGV", "0x0")
    # the dead process can be neither read by procfs (ESRCH, not a value: outcome) ...
    assert ks(swap(t, "-> ESRCH", "-> 0x0")) == ("outcome", 4)
    # ... nor run anything: cpu0 is idle after the SEGV
    with pytest.raises(TraceError, match="idle"):
        judge(t + "cpu0 load data0.0 -> 0x0\n")


def test_hole0_store_segv():
    # a store to an unmapped page SEGVs; `ok` is a store that succeeded where it must SEGV
    assert judge("cpu0 store hole0.1 0x1 -> SEGV\n") is None
    assert judge("cpu0 store hole0.1 0x1 -> ok\n") == v("protection", 1, "SEGV", "ok")


@pytest.mark.parametrize("os, err, other", [("dragonfly", "EFAULT", "EIO"), ("linux", "EIO", "EFAULT")])
def test_hole0_procfs_fails(os, err, other):
    # procfs on a page the target has not mapped: DragonFly's vm_fault_page fails (EFAULT), Linux's
    # /proc/PID/mem read/write of an unmapped address fails (EIO) -- SPEC §4.2
    t = f"os {os}\n" + FORK2 + f"""\
cpu1 procfs_read P1 hole0.0 -> {err}
cpu1 procfs_write P1 hole0.0 0x1 -> {err}
cpu0 procfs_read P1 hole0.3 -> {err}
"""
    assert judge(t) is None
    # the other personality's error is another outcome: `outcome` at that step
    assert judge(swap(t, f"hole0.3 -> {err}", f"hole0.3 -> {other}")) == v("outcome", 5, err, other)
    # a value instead of the error is `outcome` too (procfs_read's value kind is for mapped pages)
    assert judge(swap(t, f"hole0.3 -> {err}", "hole0.3 -> 0x0")) == v("outcome", 5, err, "0x0")
    # and the write that claims success is `outcome`
    assert ks(swap(t, f"0x1 -> {err}", "0x1 -> ok")) == ("outcome", 4)


@pytest.mark.parametrize("os", OSES)
def test_hole0_umtx_sleep_is_efault_under_both(os):
    # umtx_sleep on an unmapped page: EFAULT (docs/contract.md §4, "both personalities")
    assert judge("cpu0 umtx_sleep hole0.0 0x0 -> EFAULT\n", os=os) is None
    assert judge("cpu0 umtx_sleep hole0.0 0x0 -> blocked\n", os=os) == v("outcome", 1, "EFAULT", "blocked")


def test_hole0_umtx_wakeup_per_personality():
    # dragonfly: vm_fault_page fails, EFAULT; linux: a private FUTEX_WAKE never looks the page
    # up, 0 woken, ok (hole0 is not a shared page's address) -- SPEC §3.4, docs/contract.md §4.2
    assert judge("cpu0 umtx_wakeup hole0.2 -> EFAULT\n") is None
    assert judge(LINUX + "cpu0 umtx_wakeup hole0.2 -> ok\n") is None
    assert judge("cpu0 umtx_wakeup hole0.2 -> ok\n") == v("outcome", 1, "EFAULT", "ok")
    assert judge(LINUX + "cpu0 umtx_wakeup hole0.2 -> EFAULT\n") == v("outcome", 1, "ok", "EFAULT")


# ============================================================ munmap

def test_munmap_then_access_segv():
    # after munmap the page behaves as hole0: a load SEGVs, whatever was stored there
    t = "cpu0 store data0.0 0x5 -> ok\ncpu0 munmap data0 -> ok\ncpu0 load data0.0 -> SEGV\n"
    assert judge(t) is None
    assert judge(swap(t, "load data0.0 -> SEGV", "load data0.0 -> 0x5")) == v("protection", 3, "SEGV", "0x5")
    # a store after munmap must SEGV as well
    t2 = "cpu0 munmap data0 -> ok\ncpu0 store data0.1 0x1 -> SEGV\n"
    assert judge(t2) is None
    assert judge(swap(t2, "-> SEGV", "-> ok")) == v("protection", 2, "SEGV", "ok")


@pytest.mark.parametrize("os, perr, wake", [("dragonfly", "EFAULT", "EFAULT"), ("linux", "EIO", "ok")])
def test_munmap_then_procfs_and_umtx(os, perr, wake):
    # after munmap: procfs EFAULT (linux EIO), umtx_sleep EFAULT (both), umtx_wakeup of a
    # private page EFAULT (linux: ok, a private futex wake never looks the page up)
    t = f"os {os}\n" + FORK2 + f"""\
cpu0 munmap data1 -> ok
cpu1 procfs_read P1 data1.0 -> {perr}
cpu1 procfs_write P1 data1.0 0x1 -> {perr}
cpu0 umtx_sleep data1.0 0x0 -> EFAULT
cpu0 umtx_wakeup data1.0 -> {wake}
cpu1 procfs_read P2 data1.0 -> 0x0
"""
    assert judge(t) is None        # (step 8: P2's own data1 is still mapped)
    assert judge(swap(t, f"P1 data1.0 -> {perr}", "P1 data1.0 -> 0x0")) == v("outcome", 4, perr, "0x0")
    assert ks(swap(t, "0x0 -> EFAULT", "0x0 -> blocked")) == ("outcome", 6)
    # umtx_sleep's EFAULT is not `EBUSY` either
    assert ks(swap(t, "0x0 -> EFAULT", "0x0 -> EBUSY")) == ("outcome", 6)


def test_munmap_is_per_process():
    # munmap removes P1's mapping only; the child forked before keeps its own copy of data0
    t = """\
cpu0 store data0.0 0x5 -> ok
cpu0 fork -> P2
cpu1 switch P2.T1 -> ok
cpu0 munmap data0 -> ok
cpu1 load data0.0 -> 0x5
cpu1 store data0.0 0x6 -> ok
cpu1 load data0.0 -> 0x6
"""
    assert judge(t) is None
    assert ks(swap(t, "cpu1 store data0.0 0x6 -> ok", "cpu1 store data0.0 0x6 -> SEGV")) == ("protection", 6)


def test_fork_copies_an_unmapped_page_unmapped():
    # fork copies every page's mapping: a page P1 unmapped is unmapped in the child too
    t = "cpu0 munmap data2 -> ok\n" + FORK2 + "cpu1 load data2.0 -> SEGV\n"
    assert judge(t) is None
    assert judge(swap(t, "-> SEGV", "-> 0x0")) == v("protection", 4, "SEGV", "0x0")


def test_munmap_of_a_shared_page_leaves_it_to_the_others():
    # P1 unmaps shm0 and file0; P2 still maps the same objects, with their data
    t = FORK2 + """\
cpu0 store shm0.0 0x5 -> ok
cpu0 munmap shm0 -> ok
cpu1 load shm0.0 -> 0x5
cpu0 munmap file0 -> ok
cpu1 store file0.0 0x6 -> ok
cpu1 load file0.0 -> 0x6
cpu0 load shm0.0 -> SEGV
"""
    assert judge(t) is None
    assert ks(swap(t, "cpu1 load shm0.0 -> 0x5", "cpu1 load shm0.0 -> SEGV")) == ("protection", 5)
    assert ks(swap(t, "cpu0 load shm0.0 -> SEGV", "cpu0 load shm0.0 -> 0x5")) == ("protection", 9)


@pytest.mark.parametrize("os", OSES)
def test_munmap_of_an_unmapped_page_is_ok_under_both(os):
    # §3.4: munmap of an unmapped page does nothing, ok; §4.2: munmap(2) of it is ok on Linux too
    t = f"os {os}\ncpu0 munmap hole0 -> ok\ncpu0 munmap data0 -> ok\ncpu0 munmap data0 -> ok\n"
    assert judge(t) is None
    assert judge(swap(t, "data0 -> ok\ncpu0 munmap data0 -> ok", "data0 -> ok\ncpu0 munmap data0 -> ENOMEM")) \
        == v("outcome", 3, "ok", "ENOMEM")
    assert judge(swap(t, "hole0 -> ok", "hole0 -> EINVAL")) == v("outcome", 1, "ok", "EINVAL")


# ============================================================ mmap

def test_mmap_data_gives_zeros_rw():
    # mmap replaces the mapping (as munmap first): zero-fill private anonymous rw, whatever
    # was stored and whatever prot the page had
    t = """\
cpu0 store data0.0 0x5 -> ok
cpu0 mprotect data0 r -> ok
cpu0 mmap data0 -> ok
cpu0 load data0.0 -> 0x0
cpu0 store data0.0 0x6 -> ok
cpu0 load data0.0 -> 0x6
"""
    assert judge(t) is None
    assert judge(swap(t, "load data0.0 -> 0x0", "load data0.0 -> 0x5")) == v("stale-read", 4, "0x0", "0x5")
    assert judge(swap(t, "0x6 -> ok", "0x6 -> SEGV")) == v("protection", 5, "ok", "SEGV")


def test_mmap_hole0_is_zero_fill_rw():
    # hole0's kind in a fresh mmap: zero-fill private anonymous rw; then it is an ordinary page
    t = """\
cpu0 mmap hole0 -> ok
cpu0 load hole0.2 -> 0x0
cpu0 store hole0.2 0x7 -> ok
cpu0 procfs_read P1 hole0.2 -> 0x7
cpu0 umtx_sleep hole0.2 0x0 -> EBUSY
cpu0 umtx_wakeup hole0.2 -> ok
"""
    assert judge(t) is None
    assert ks(swap(t, "cpu0 store hole0.2 0x7 -> ok", "cpu0 store hole0.2 0x7 -> SEGV")) == ("protection", 3)
    assert ks(swap(t, "-> EBUSY", "-> EFAULT")) == ("outcome", 5)
    assert ks(swap(t, "umtx_wakeup hole0.2 -> ok", "umtx_wakeup hole0.2 -> EFAULT")) == ("outcome", 6)


def test_mmap_text_gives_the_executable_read_only():
    # a debugger write changes only P1's private copy of text0 (the file never changes), and an
    # mprotect rw is the old mapping's; mmap text0 is a new private view: file words, prot r
    t = """\
cpu0 procfs_write P1 text0.0 0x1 -> ok
cpu0 load text0.0 -> 0x1
cpu0 mprotect text0 rw -> ok
cpu0 store text0.1 0x2 -> ok
cpu0 mmap text0 -> ok
cpu0 load text0.0 -> 0xf000
cpu0 load text0.1 -> 0xf001
cpu0 munmap text1 -> ok
cpu0 mmap text1 -> ok
cpu0 load text1.3 -> 0xf013
cpu0 store text0.0 0x3 -> SEGV
"""
    assert judge(t) is None
    assert judge(swap(t, "-> 0xf000", "-> 0x1")) == v("stale-read", 6, "0xf000", "0x1")
    assert ks(swap(t, "-> 0xf001", "-> 0x2")) == ("stale-read", 7)
    assert ks(swap(t, "-> 0xf013", "-> 0x0")) == ("stale-read", 10)
    assert judge(swap(t, "0x3 -> SEGV", "0x3 -> ok")) == v("protection", 11, "SEGV", "ok")


def test_mmap_shm0_is_a_new_object_not_shared_with_a_child_forked_before():
    # P1's mmap shm0 makes a new shared object of zeros; P2 (forked before) keeps the original
    t = FORK2 + """\
cpu0 store shm0.0 0x5 -> ok
cpu0 mmap shm0 -> ok
cpu0 load shm0.0 -> 0x0
cpu0 store shm0.1 0x6 -> ok
cpu1 load shm0.1 -> 0x0
cpu1 load shm0.0 -> 0x5
cpu1 store shm0.2 0x7 -> ok
cpu0 load shm0.2 -> 0x0
"""
    assert judge(t) is None
    assert ks(swap(t, "cpu0 load shm0.0 -> 0x0", "cpu0 load shm0.0 -> 0x5")) == ("stale-read", 5)
    # P1's store to its new object reaching P2: stale-read
    assert judge(swap(t, "cpu1 load shm0.1 -> 0x0", "cpu1 load shm0.1 -> 0x6")) == v("stale-read", 7, "0x0", "0x6")
    # P2's store to the original reaching P1's new object: stale-read
    assert ks(swap(t, "cpu0 load shm0.2 -> 0x0", "cpu0 load shm0.2 -> 0x7")) == ("stale-read", 10)


def test_mmap_shm0_is_shared_with_a_child_forked_after():
    # "a new shm0 is shared with no one until a fork": the fork shares it with the child
    t = """\
cpu0 mmap shm0 -> ok
cpu0 store shm0.0 0x5 -> ok
cpu0 fork -> P2
cpu1 switch P2.T1 -> ok
cpu1 load shm0.0 -> 0x5
cpu1 store shm0.1 0x6 -> ok
cpu0 load shm0.1 -> 0x6
"""
    assert judge(t) is None
    assert ks(swap(t, "cpu0 load shm0.1 -> 0x6", "cpu0 load shm0.1 -> 0x0")) == ("stale-read", 7)


def test_mmap_file0_gives_the_data_file_as_it_is_now():
    # the data file is not discarded with a mapping: a new mapping of it sees the last store
    t = """\
cpu0 store file0.0 0x5 -> ok
cpu0 munmap file0 -> ok
cpu0 mmap file0 -> ok
cpu0 load file0.0 -> 0x5
cpu0 load file0.1 -> 0xd001
"""
    assert judge(t) is None
    assert judge(swap(t, "-> 0x5", "-> 0xd000")) == v("stale-read", 4, "0x5", "0xd000")


def test_mmap_file0_over_file0_stays_shared():
    # mmap file0 replaces P1's mapping by a new one of the same data file: still shared with P2
    t = FORK2 + """\
cpu1 store file0.0 0x5 -> ok
cpu0 mmap file0 -> ok
cpu0 load file0.0 -> 0x5
cpu0 store file0.1 0x6 -> ok
cpu1 load file0.1 -> 0x6
"""
    assert judge(t) is None
    assert ks(swap(t, "cpu1 load file0.1 -> 0x6", "cpu1 load file0.1 -> 0xd001")) == ("stale-read", 7)


# ============================================================ mremap

def test_mremap_moves_the_content_and_leaves_page_unmapped():
    # the content moves to TO, replacing what TO held; PAGE is unmapped afterwards
    t = """\
cpu0 store data0.0 0x5 -> ok
cpu0 store data1.0 0x7 -> ok
cpu0 mremap data0 data1 -> ok
cpu0 load data1.0 -> 0x5
cpu0 load data0.0 -> SEGV
"""
    assert judge(t) is None
    assert judge(swap(t, "-> 0x5", "-> 0x7")) == v("stale-read", 4, "0x5", "0x7")
    assert judge(swap(t, "data0.0 -> SEGV", "data0.0 -> 0x5")) == v("protection", 5, "SEGV", "0x5")


def test_mremap_to_hole0_then_procfs():
    # a mapping moved to hole0 makes hole0 an ordinary page, and the old page a hole
    t = """\
cpu0 store data2.3 0x9 -> ok
cpu0 mremap data2 hole0 -> ok
cpu0 load hole0.3 -> 0x9
cpu0 store hole0.3 0xa -> ok
cpu0 procfs_read P1 hole0.3 -> 0xa
cpu0 procfs_read P1 data2.3 -> EFAULT
"""
    assert judge(t) is None
    assert ks(swap(t, "data2.3 -> EFAULT", "data2.3 -> 0x9")) == ("outcome", 6)
    assert ks(swap(t, "-> 0xa", "-> 0x9")) == ("stale-read", 5)


def test_mremap_moves_the_prot():
    # the prot moves with the mapping: a read-only data page stays read-only at TO ...
    t = """\
cpu0 mprotect data0 r -> ok
cpu0 mremap data0 data1 -> ok
cpu0 load data1.0 -> 0x0
cpu0 store data1.0 0x1 -> SEGV
"""
    assert judge(t) is None
    assert judge(swap(t, "-> SEGV", "-> ok")) == v("protection", 4, "SEGV", "ok")
    # ... text moved to data3 keeps its words and prot r ...
    t2 = "cpu0 mremap text1 data3 -> ok\ncpu0 load data3.2 -> 0xf012\ncpu0 store data3.2 0x1 -> SEGV\n"
    assert judge(t2) is None
    assert ks(swap(t2, "-> SEGV", "-> ok")) == ("protection", 3)
    # ... and an rw data page moved over text0 makes text0 writable
    t3 = "cpu0 store data0.0 0x5 -> ok\ncpu0 mremap data0 text0 -> ok\ncpu0 store text0.1 0x6 -> ok\ncpu0 load text0.0 -> 0x5\n"
    assert judge(t3) is None
    assert ks(swap(t3, "0x6 -> ok", "0x6 -> SEGV")) == ("protection", 3)


@pytest.mark.parametrize("os", OSES)
def test_mremap_to_itself_is_einval_checked_first(os):
    # TO == PAGE is EINVAL, checked before PAGE unmapped (EFAULT); a failed mremap changes nothing
    t = f"os {os}\n" + """\
cpu0 store data0.0 0x5 -> ok
cpu0 mremap data0 data0 -> EINVAL
cpu0 load data0.0 -> 0x5
cpu0 mremap hole0 hole0 -> EINVAL
cpu0 munmap data1 -> ok
cpu0 mremap data1 data1 -> EINVAL
"""
    assert judge(t) is None
    assert judge(swap(t, "data0 data0 -> EINVAL", "data0 data0 -> ok")) == v("outcome", 2, "EINVAL", "ok")
    # the failed mremap left data0 mapped with its content
    assert ks(swap(t, "load data0.0 -> 0x5", "load data0.0 -> SEGV")) == ("protection", 3)
    # an unmapped PAGE with TO == PAGE: EINVAL, not EFAULT
    assert judge(swap(t, "hole0 hole0 -> EINVAL", "hole0 hole0 -> EFAULT")) == v("outcome", 4, "EINVAL", "EFAULT")
    assert ks(swap(t, "data1 data1 -> EINVAL", "data1 data1 -> EFAULT")) == ("outcome", 6)


@pytest.mark.parametrize("os", OSES)
def test_mremap_from_an_unmapped_page_is_efault_and_changes_nothing(os):
    # PAGE unmapped (hole0 initially, data0 after munmap): EFAULT, and TO is not replaced
    t = f"os {os}\n" + """\
cpu0 store data1.0 0x7 -> ok
cpu0 mremap hole0 data1 -> EFAULT
cpu0 load data1.0 -> 0x7
cpu0 munmap data0 -> ok
cpu0 mremap data0 data1 -> EFAULT
cpu0 load data1.0 -> 0x7
cpu0 store data1.0 0x8 -> ok
"""
    assert judge(t) is None
    assert judge(swap(t, "hole0 data1 -> EFAULT", "hole0 data1 -> ok")) == v("outcome", 2, "EFAULT", "ok")
    # the failed mremap did not unmap TO ...
    assert judge(swap(t, "load data1.0 -> 0x7\ncpu0 store", "load data1.0 -> SEGV\ncpu0 store")) \
        == v("protection", 6, "0x7", "SEGV")
    # ... nor zero it
    assert ks(swap(t, "load data1.0 -> 0x7\ncpu0 munmap", "load data1.0 -> 0x0\ncpu0 munmap")) == ("stale-read", 3)


def test_mremap_of_shm0_keeps_it_shared():
    # a moved shm0 is still the same object, shared with the same processes
    t = FORK2 + """\
cpu0 mremap shm0 data0 -> ok
cpu0 store data0.0 0x5 -> ok
cpu1 load shm0.0 -> 0x5
cpu1 store shm0.1 0x6 -> ok
cpu0 load data0.1 -> 0x6
cpu0 madvise data0 dontneed -> ok
cpu0 load data0.0 -> 0x5
cpu0 load shm0.0 -> SEGV
"""
    assert judge(t) is None
    assert judge(swap(t, "cpu1 load shm0.0 -> 0x5", "cpu1 load shm0.0 -> 0x0")) == v("stale-read", 5, "0x5", "0x0")
    assert ks(swap(t, "-> 0x6", "-> 0x0")) == ("stale-read", 7)
    # madvise dontneed of a (moved) shared page keeps its data
    assert ks(swap(t, "cpu0 load data0.0 -> 0x5", "cpu0 load data0.0 -> 0x0")) == ("stale-read", 9)
    assert ks(swap(t, "cpu0 load shm0.0 -> SEGV", "cpu0 load shm0.0 -> 0x5")) == ("protection", 10)


def test_mremap_of_file0_keeps_the_data_file():
    # a moved file0 is still the data file: words 0xd000+w at TO, rw, shared with P2, and a
    # later mmap file0 sees what was stored through the moved mapping
    t = FORK2 + """\
cpu0 mremap file0 text1 -> ok
cpu0 load text1.0 -> 0xd000
cpu0 store text1.0 0x5 -> ok
cpu1 load file0.0 -> 0x5
cpu0 munmap text1 -> ok
cpu0 mmap file0 -> ok
cpu0 load file0.0 -> 0x5
"""
    assert judge(t) is None
    assert judge(swap(t, "-> 0xd000", "-> 0xf010")) == v("stale-read", 4, "0xd000", "0xf010")
    assert ks(swap(t, "cpu0 store text1.0 0x5 -> ok", "cpu0 store text1.0 0x5 -> SEGV")) == ("protection", 5)
    assert ks(swap(t, "cpu1 load file0.0 -> 0x5", "cpu1 load file0.0 -> 0xd000")) == ("stale-read", 6)
    assert ks(swap(t, "cpu0 load file0.0 -> 0x5", "cpu0 load file0.0 -> 0xd000")) == ("stale-read", 9)


def test_madvise_after_mremap_restores_the_mappings_own_original_content():
    # madvise dontneed resets a private page to *its mapping's* original content: text0 moved to
    # data0 goes back to the executable's words (prot stays r), data1 moved to text1 goes to zeros
    t = """\
cpu0 mremap text0 data0 -> ok
cpu0 procfs_write P1 data0.0 0x1 -> ok
cpu0 load data0.0 -> 0x1
cpu0 madvise data0 dontneed -> ok
cpu0 load data0.0 -> 0xf000
cpu0 store data0.0 0x2 -> SEGV
"""
    assert judge(t) is None
    assert judge(swap(t, "-> 0xf000", "-> 0x0")) == v("stale-read", 5, "0xf000", "0x0")
    t2 = """\
cpu0 store data1.0 0x5 -> ok
cpu0 mremap data1 text1 -> ok
cpu0 madvise text1 dontneed -> ok
cpu0 load text1.0 -> 0x0
cpu0 store text1.0 0x3 -> ok
"""
    assert judge(t2) is None
    assert judge(swap(t2, "text1.0 -> 0x0", "text1.0 -> 0xf010")) == v("stale-read", 4, "0x0", "0xf010")
    assert ks(swap(t2, "text1.0 -> 0x0", "text1.0 -> 0x5")) == ("stale-read", 4)


def test_fork_after_mremap_copies_the_moved_mapping():
    # fork copies each page's mapping: the child has the moved page at TO and nothing at PAGE
    t = """\
cpu0 store data0.0 0x5 -> ok
cpu0 mremap data0 hole0 -> ok
cpu0 fork -> P2
cpu1 switch P2.T1 -> ok
cpu1 load hole0.0 -> 0x5
cpu1 load data0.0 -> SEGV
"""
    assert judge(t) is None
    assert ks(swap(t, "hole0.0 -> 0x5", "hole0.0 -> SEGV")) == ("protection", 5)


# ============================================================ msync and pageout

def test_msync_is_invisible():
    # msync writes back and write-protects in the pmaps, but nothing a user sees changes: the
    # value stays, the page stays writable (prot rw); msync of a non-file page does nothing
    t = FORK2 + """\
cpu0 store file0.0 0x5 -> ok
cpu0 msync file0 -> ok
cpu1 load file0.0 -> 0x5
cpu1 store file0.0 0x6 -> ok
cpu0 msync file0 -> ok
cpu0 load file0.0 -> 0x6
cpu0 msync data0 -> ok
cpu0 store file0.1 0x7 -> ok
"""
    assert judge(t) is None
    assert ks(swap(t, "cpu1 load file0.0 -> 0x5", "cpu1 load file0.0 -> 0xd000")) == ("stale-read", 5)
    assert judge(swap(t, "0x6 -> ok", "0x6 -> SEGV")) == v("protection", 6, "ok", "SEGV")
    assert ks(swap(t, "msync data0 -> ok", "msync data0 -> EINVAL")) == ("outcome", 9)


def test_data_stored_after_msync_is_not_lost_when_remapped():
    # the page cache may be newer than the backing store, and data is never lost: the last
    # store, not the last written-back value, is what a new mapping of the data file reads
    t = """\
cpu0 store file0.0 0x5 -> ok
cpu0 msync file0 -> ok
cpu0 store file0.0 0x6 -> ok
cpu0 munmap file0 -> ok
cpu0 mmap file0 -> ok
cpu0 load file0.0 -> 0x6
"""
    assert judge(t) is None
    assert judge(swap(t, "-> 0x6", "-> 0x5")) == v("stale-read", 6, "0x6", "0x5")


def test_pageout_is_invisible():
    # the page daemon reclaims the frame, the next fault reads it back: the last store is seen,
    # on an anonymous, a shared anonymous, a data-file and a text page
    t = """\
cpu0 store data0.0 0x5 -> ok
cpu0 pageout P1 data0 -> ok
cpu0 load data0.0 -> 0x5
cpu0 store shm0.0 0x6 -> ok
cpu0 pageout P1 shm0 -> ok
cpu0 load shm0.0 -> 0x6
cpu0 store file0.0 0x7 -> ok
cpu0 pageout P1 file0 -> ok
cpu0 procfs_read P1 file0.0 -> 0x7
cpu0 pageout P1 text0 -> ok
cpu0 load text0.0 -> 0xf000
cpu0 store data0.0 0x8 -> ok
"""
    assert judge(t) is None
    assert judge(swap(t, "data0.0 -> 0x5", "data0.0 -> 0x0")) == v("stale-read", 3, "0x5", "0x0")
    assert ks(swap(t, "-> 0x6", "-> 0x0")) == ("stale-read", 6)
    assert ks(swap(t, "-> 0x7", "-> 0xd000")) == ("stale-read", 9)
    # the page is still mapped rw after pageout
    assert ks(swap(t, "0x8 -> ok", "0x8 -> SEGV")) == ("protection", 12)


def test_pageout_of_another_process_is_invisible():
    # pageout P2's page from P1 (a foreign context): P2 still reads its value, P1 its own
    t = FORK2 + """\
cpu1 store data0.0 0x5 -> ok
cpu0 pageout P2 data0 -> ok
cpu1 load data0.0 -> 0x5
cpu0 load data0.0 -> 0x0
"""
    assert judge(t) is None
    assert ks(swap(t, "cpu1 load data0.0 -> 0x5", "cpu1 load data0.0 -> 0x0")) == ("stale-read", 5)


@pytest.mark.parametrize("os", OSES)
def test_pageout_of_a_dead_or_unknown_pid_is_esrch(os):
    # an unknown pid (P2 before the fork) and a dead one (P2 after its exit): ESRCH, under both
    # personalities, even for an unmapped page (the target check comes first)
    t = f"os {os}\n" + """\
cpu0 pageout P2 data0 -> ESRCH
cpu0 fork -> P2
cpu1 switch P2.T1 -> ok
cpu1 exit -> ok
cpu0 pageout P2 data0 -> ESRCH
cpu0 pageout P2 hole0 -> ESRCH
cpu0 pageout P1 data0 -> ok
"""
    assert judge(t) is None
    assert judge(swap(t, "P2 data0 -> ESRCH\ncpu0 fork", "P2 data0 -> ok\ncpu0 fork")) == v("outcome", 1, "ESRCH", "ok")
    assert ks(swap(t, "P2 data0 -> ESRCH\ncpu0 pageout P2 hole0", "P2 data0 -> ok\ncpu0 pageout P2 hole0")) == \
        ("outcome", 5)
    assert ks(swap(t, "P2 hole0 -> ESRCH", "P2 hole0 -> ENOMEM")) == ("outcome", 6)
    assert ks(swap(t, "P1 data0 -> ok", "P1 data0 -> ESRCH")) == ("outcome", 7)


def test_pageout_on_an_idle_cpu_is_allowed():
    # cpu1 is idle: pageout runs there in kernel context, belonging to no thread; any other op
    # on an idle CPU (not switch, not ipi) is not applicable
    t = """\
cpu0 store data0.0 0x5 -> ok
cpu1 pageout P1 data0 -> ok
cpu1 pageout P7 data0 -> ESRCH
cpu0 load data0.0 -> 0x5
"""
    assert judge(t) is None
    assert ks(swap(t, "P7 data0 -> ESRCH", "P7 data0 -> ok")) == ("outcome", 3)
    assert ks(swap(t, "load data0.0 -> 0x5", "load data0.0 -> 0x0")) == ("stale-read", 4)
    for line in ("cpu1 msync file0 -> ok\n", "cpu1 munmap data0 -> ok\n", "cpu1 mremap data0 data1 -> ok\n"):
        with pytest.raises(TraceError, match="idle"):
            judge(line)


def test_unmapped_page_ops_do_nothing_under_dragonfly():
    # §3.4: munmap, mprotect, madvise, msync and pageout of an unmapped page do nothing, ok --
    # in particular mprotect does not map it: the page still SEGVs
    t = """\
cpu0 munmap data0 -> ok
cpu0 msync data0 -> ok
cpu0 pageout P1 data0 -> ok
cpu0 mprotect data0 r -> ok
cpu0 madvise data0 dontneed -> ok
cpu0 msync hole0 -> ok
cpu0 mprotect hole0 rw -> ok
cpu0 load data0.0 -> SEGV
"""
    assert judge(t) is None
    for step, line in enumerate(t.splitlines(), 1):
        if 2 <= step <= 7:
            # the Linux answer (ENOMEM) is another outcome under dragonfly
            wrong = swap(t, line, line.replace("-> ok", "-> ENOMEM"))
            assert judge(wrong) == v("outcome", step, "ok", "ENOMEM"), line
    assert ks(swap(t, "-> SEGV", "-> 0x0")) == ("protection", 8)


# ============================================================ the wake rule

def test_file0_sleeper_must_be_woken_by_another_processs_wakeup():
    # file0 is shared: a thread blocked on file0.0 must be woken by an umtx_wakeup of file0.0
    # by any process that maps the data file
    t = FORK2 + "cpu0 umtx_sleep file0.0 0xd000 -> blocked\ncpu1 umtx_wakeup file0.0 -> ok woke P1.T1\n"
    assert judge(t) is None
    assert judge(swap(t, "-> ok woke P1.T1", "-> ok")) == v("lost-wakeup", 4, "ok woke P1.T1", "ok")


def test_file0_sleeper_owed_by_a_new_mapping_of_the_data_file():
    # P2 unmaps and maps file0 again: still the data file, so its wakeup of file0.2 owes P1.T1
    t = FORK2 + """\
cpu0 umtx_sleep file0.2 0xd002 -> blocked
cpu1 munmap file0 -> ok
cpu1 umtx_wakeup file0.2 -> EFAULT
cpu1 mmap file0 -> ok
cpu1 umtx_wakeup file0.2 -> ok woke P1.T1
"""
    assert judge(t) is None
    # (while P2 has no file0, its wakeup there is EFAULT and owes nothing)
    assert ks(swap(t, "-> EFAULT", "-> ok")) == ("outcome", 5)
    assert judge(swap(t, "-> ok woke P1.T1", "-> ok")) == v("lost-wakeup", 7, "ok woke P1.T1", "ok")


@pytest.mark.parametrize("os", OSES)
def test_file0_sleeper_follows_the_data_file_where_mremap_moved_it(os):
    # P2 moves its file0 to data3: an umtx_wakeup of data3.1 in P2 is a wakeup of the data
    # file's word 1, owed to P1.T1 under both personalities (a shared futex is keyed by object)
    t = FORK2 + """\
cpu0 umtx_sleep file0.1 0xd001 -> blocked
cpu1 mremap file0 data3 -> ok
cpu1 umtx_wakeup file0.1 -> EFAULT
cpu1 umtx_wakeup data3.1 -> ok woke P1.T1
"""
    assert judge(t, os=os) is None
    # (at P2's old file0 address nothing is mapped; a shared page's address: EFAULT under both)
    assert ks(swap(t, "-> EFAULT", "-> ok"), os=os) == ("outcome", 5)
    assert judge(swap(t, "-> ok woke P1.T1", "-> ok"), os=os) == v("lost-wakeup", 6, "ok woke P1.T1", "ok")


def test_file0_wakeup_of_another_word_owes_nothing():
    # only the same word is owed; a wake of P1.T1 by a wakeup of another word is a permitted
    # spurious wakeup, which the oracle adopts (T1 is runnable and can be switched to)
    t = FORK2 + "cpu0 umtx_sleep file0.0 0xd000 -> blocked\ncpu1 umtx_wakeup file0.1 -> ok\n"
    assert judge(t) is None
    spurious = swap(t, "file0.1 -> ok", "file0.1 -> ok woke P1.T1") + "cpu0 switch P1.T1 -> ok\n"
    assert judge(spurious) is None
    # without a wake report T1 stays blocked and cannot be scheduled
    with pytest.raises(TraceError, match="not runnable"):
        judge(t + "cpu0 switch P1.T1 -> ok\n")


def test_shared_sleeper_keeps_its_claim_when_its_own_process_unmaps():
    # P1.T2 unmaps P1's shm0 under the sleeping P1.T1: the object lives on in P2, whose wakeup of
    # shm0.0 still owes P1.T1 its wake (docs/contract.md §4, the wake rule)
    t = "hw cpus=3\n" + """\
cpu0 fork -> P2
cpu0 spawn -> P1.T2
cpu1 switch P1.T2 -> ok
cpu2 switch P2.T1 -> ok
cpu0 umtx_sleep shm0.0 0x0 -> blocked
cpu1 munmap shm0 -> ok
cpu2 umtx_wakeup shm0.0 -> ok woke P1.T1
"""
    assert judge(t) is None
    assert judge(swap(t, "-> ok woke P1.T1", "-> ok")) == v("lost-wakeup", 7, "ok woke P1.T1", "ok")


def test_a_new_shm0_is_another_object_for_the_wake_rule():
    # P1.T2's mmap shm0 gives P1 a new object: P1's wakeup of shm0.0 is of that new object and
    # owes nothing to P1.T1 (blocked on the original); P2's wakeup of the original owes it
    t = "hw cpus=3\n" + """\
cpu0 fork -> P2
cpu0 spawn -> P1.T2
cpu1 switch P1.T2 -> ok
cpu2 switch P2.T1 -> ok
cpu0 umtx_sleep shm0.0 0x0 -> blocked
cpu1 mmap shm0 -> ok
cpu1 umtx_wakeup shm0.0 -> ok
cpu2 umtx_wakeup shm0.0 -> ok woke P1.T1
"""
    assert judge(t) is None
    assert judge(swap(t, "-> ok woke P1.T1", "-> ok")) == v("lost-wakeup", 8, "ok woke P1.T1", "ok")


def test_a_sleeper_on_a_new_shm0_is_not_owed_by_a_child_forked_before():
    # P1 sleeps on its new shm0; P2 (forked before the mmap) still maps the original: its
    # wakeup of shm0.0 owes nothing
    t = FORK2 + "cpu0 mmap shm0 -> ok\ncpu0 umtx_sleep shm0.0 0x0 -> blocked\ncpu1 umtx_wakeup shm0.0 -> ok\n"
    assert judge(t) is None
    # control: the original shm0 (no mmap) is owed
    ctl = swap(t, "cpu0 mmap shm0 -> ok\n", "")
    assert judge(ctl) == v("lost-wakeup", 4, "ok woke P1.T1", "ok")


PRIVATE_MOVED = """\
cpu0 spawn -> P1.T2
cpu0 umtx_sleep data0.0 0x0 -> blocked
cpu1 switch P1.T2 -> ok
cpu1 mremap data0 data1 -> ok
cpu1 umtx_wakeup data1.0 -> ok woke P1.T1
"""


def test_private_sleeper_moves_with_mremap_under_dragonfly():
    # DragonFly's umtx keys a sleeper by the physical page, which mremap does not move: the
    # sleeper's word is now data1.0, and a wakeup there owes it
    assert judge(PRIVATE_MOVED) is None
    assert judge(swap(PRIVATE_MOVED, "-> ok woke P1.T1", "-> ok")) == v("lost-wakeup", 5, "ok woke P1.T1", "ok")
    # and at its old address nothing is mapped: umtx_wakeup data0.0 is EFAULT (dragonfly)
    at_old = swap(PRIVATE_MOVED, "umtx_wakeup data1.0 -> ok woke P1.T1", "umtx_wakeup data0.0 -> EFAULT")
    assert judge(at_old) is None
    assert ks(swap(at_old, "-> EFAULT", "-> ok")) == ("outcome", 5)


def test_private_sleeper_not_owed_after_mremap_under_linux():
    # Linux keys a private futex by (mm, address): after mremap the wakeup at the new address owes
    # the sleeper nothing; a wake reported there is a permitted spurious one
    assert judge(LINUX + swap(PRIVATE_MOVED, "-> ok woke P1.T1", "-> ok")) is None
    assert judge(LINUX + PRIVATE_MOVED) is None
    # at the old address: a private FUTEX_WAKE on an unmapped address, 0 woken, ok; owes nothing
    at_old = LINUX + swap(PRIVATE_MOVED, "umtx_wakeup data1.0 -> ok woke P1.T1", "umtx_wakeup data0.0 -> ok")
    assert judge(at_old) is None
    # the never-woken sleeper stays blocked: it cannot be scheduled
    with pytest.raises(TraceError, match="not runnable"):
        judge(at_old + "cpu0 switch P1.T1 -> ok\n")


@pytest.mark.parametrize("os", OSES)
@pytest.mark.parametrize("gone", ["cpu1 munmap data0 -> ok\ncpu1 mmap data0 -> ok\n",
                                  "cpu1 mmap data0 -> ok\n",
                                  "cpu1 mremap data1 data0 -> ok\n"])
def test_private_sleeper_whose_page_is_unmapped_is_owed_nothing(os, gone):
    # a sleeper whose private page is unmapped under it (munmap, mmap or mremap over it) is owed
    # nothing from then on: the page mapped there later is another one, and a wake reported
    # later is a permitted spurious one
    t = "cpu0 spawn -> P1.T2\ncpu0 umtx_sleep data0.0 0x0 -> blocked\ncpu1 switch P1.T2 -> ok\n" + gone
    assert judge(t + "cpu1 umtx_wakeup data0.0 -> ok\n", os=os) is None
    assert judge(t + "cpu1 umtx_wakeup data0.0 -> ok woke P1.T1\ncpu1 switch P1.T1 -> ok\n", os=os) is None
    # control: with the page left alone, the same wakeup owes the wake
    ctl = "cpu0 spawn -> P1.T2\ncpu0 umtx_sleep data0.0 0x0 -> blocked\ncpu1 switch P1.T2 -> ok\n"
    assert judge(ctl + "cpu1 umtx_wakeup data0.0 -> ok\n", os=os) == v("lost-wakeup", 4, "ok woke P1.T1", "ok")


# ============================================================ os linux (§4.2)

LINUX_UNMAPPED = """\
cpu0 munmap data0 -> ok
cpu0 mprotect data0 r -> ENOMEM
cpu0 madvise data0 dontneed -> ENOMEM
cpu0 msync data0 -> ENOMEM
cpu0 pageout P1 data0 -> ENOMEM
cpu0 munmap data0 -> ok
cpu0 mprotect hole0 rw -> ENOMEM
cpu1 pageout P1 hole0 -> ENOMEM
"""


def test_linux_unmapped_page_ops_give_enomem_but_munmap_is_ok():
    # os linux: mprotect(2), madvise(2), msync(2), process_madvise(2) fail on an unmapped range
    # with ENOMEM; munmap(2) of it is ok; pageout from an idle CPU looks at the target's map
    assert judge(LINUX + LINUX_UNMAPPED) is None
    for step, line in enumerate(LINUX_UNMAPPED.splitlines(), 1):
        if "ENOMEM" in line:
            # the DragonFly answer (ok) is another outcome under linux
            assert judge(LINUX + swap(LINUX_UNMAPPED, line, line.replace("ENOMEM", "ok"))) == \
                v("outcome", step, "ENOMEM", "ok"), line
    # under dragonfly the Linux trace is wrong at its first ENOMEM
    assert judge(LINUX_UNMAPPED) == v("outcome", 2, "ok", "ENOMEM")
    # the second munmap of the unmapped page is ok under linux too
    assert ks(LINUX + swap(LINUX_UNMAPPED, "data0 -> ok\ncpu0 mprotect hole0", "data0 -> ENOMEM\ncpu0 mprotect hole0")) \
        == ("outcome", 6)


def test_linux_mapped_page_ops_are_ok():
    # on a mapped page the four calls succeed as under dragonfly and change nothing visible
    t = LINUX + """\
cpu0 store data0.0 0x5 -> ok
cpu0 msync data0 -> ok
cpu0 pageout P1 data0 -> ok
cpu0 madvise data1 dontneed -> ok
cpu0 mprotect data1 r -> ok
cpu0 load data0.0 -> 0x5
"""
    assert judge(t) is None
    assert ks(swap(t, "pageout P1 data0 -> ok", "pageout P1 data0 -> ENOMEM")) == ("outcome", 3)


def test_linux_procfs_of_an_unmapped_page_is_eio():
    # /proc/PID/mem on an unmapped address: EIO under linux (here PAGE after mremap), EFAULT
    # under dragonfly; TO is an ordinary mapped page
    t = FORK2 + """\
cpu0 mremap data0 data1 -> ok
cpu1 procfs_read P1 data0.0 -> EIO
cpu1 procfs_write P1 data0.0 0x1 -> EIO
cpu1 procfs_read P1 data1.0 -> 0x0
"""
    assert judge(LINUX + t) is None
    assert judge(LINUX + swap(t, "P1 data0.0 -> EIO", "P1 data0.0 -> EFAULT")) == v("outcome", 4, "EIO", "EFAULT")
    assert judge(t) == v("outcome", 4, "EFAULT", "EIO")
    assert judge(t.replace("EIO", "EFAULT")) is None


def test_linux_umtx_wakeup_unmapped_private_ok_shared_efault():
    # os linux: a wakeup of a word of an unmapped private page is ok (the private futex is keyed
    # by address, the page never looked up); at shm0's or file0's address the shared futex
    # looks it up: EFAULT; umtx_sleep of an unmapped page is EFAULT under both
    t = """\
cpu0 munmap data0 -> ok
cpu0 umtx_wakeup data0.0 -> ok
cpu0 umtx_wakeup hole0.1 -> ok
cpu0 munmap text0 -> ok
cpu0 umtx_wakeup text0.0 -> ok
cpu0 munmap shm0 -> ok
cpu0 umtx_wakeup shm0.0 -> EFAULT
cpu0 munmap file0 -> ok
cpu0 umtx_wakeup file0.3 -> EFAULT
cpu0 umtx_sleep data0.0 0x0 -> EFAULT
"""
    assert judge(LINUX + t) is None
    # under dragonfly the private ones are EFAULT: `outcome` at the first
    assert judge(t) == v("outcome", 2, "EFAULT", "ok")
    df = t.replace("-> ok\ncpu0 umtx_wakeup hole0.1 -> ok", "-> EFAULT\ncpu0 umtx_wakeup hole0.1 -> EFAULT")
    df = df.replace("text0.0 -> ok", "text0.0 -> EFAULT")
    assert judge(df) is None
    # and the dragonfly answers under linux
    assert judge(LINUX + df) == v("outcome", 2, "ok", "EFAULT")
    assert ks(LINUX + swap(t, "shm0.0 -> EFAULT", "shm0.0 -> ok")) == ("outcome", 7)
    assert ks(LINUX + swap(t, "file0.3 -> EFAULT", "file0.3 -> ok")) == ("outcome", 9)
    assert ks(LINUX + swap(t, "0x0 -> EFAULT", "0x0 -> EBUSY")) == ("outcome", 10)


def test_linux_debugger_write_to_a_readonly_file0():
    # a procfs_write to a shared mapping whose prot lacks write: dragonfly writes up to max prot
    # (ok, read by all); linux's FOLL_FORCE refuses shared mappings (EIO, nothing written).
    # umtx_sleep there: dragonfly EFAULT, linux compares (blocked)
    df = FORK2 + """\
cpu0 mprotect file0 r -> ok
cpu1 procfs_write P1 file0.0 0x5 -> ok
cpu1 load file0.0 -> 0x5
cpu0 umtx_sleep file0.0 0x5 -> EFAULT
"""
    lx = LINUX + FORK2 + """\
cpu0 mprotect file0 r -> ok
cpu1 procfs_write P1 file0.0 0x5 -> EIO
cpu1 load file0.0 -> 0xd000
cpu0 umtx_sleep file0.0 0xd000 -> blocked
"""
    assert judge(df) is None
    assert judge(lx) is None
    assert judge(df, os="linux") == v("outcome", 4, "EIO", "ok")
    assert judge(lx, os="dragonfly") == v("outcome", 4, "ok", "EIO")
    # wherever mremap moved it: the moved file0 is still a shared mapping
    moved = LINUX + FORK2 + "cpu0 mremap file0 data2 -> ok\ncpu0 mprotect data2 r -> ok\ncpu1 procfs_write P1 data2.0 0x5 -> EIO\n"
    assert judge(moved) is None
    assert ks(moved, os="dragonfly") == ("outcome", 5)


def test_os_parameter_overrides_the_header():
    # judge's os argument wins over the trace's `os` header (SPEC §4.2: `--os` overrides)
    t = LINUX + "cpu0 msync hole0 -> ENOMEM\n"
    assert judge(t) is None
    assert judge(t, os="dragonfly") == v("outcome", 1, "ok", "ENOMEM")
    assert judge("os dragonfly\ncpu0 msync hole0 -> ENOMEM\n", os="linux") is None
    with pytest.raises(TraceError):
        judge(t, os="freebsd")


# ============================================================ interleaved lines (§3.2, §4.1)

MUNMAP_WINDOW = TWO + """\
cpu1 store data0.0 0x5 -> ok
cpu0 munmap data0 until ipi_wait -> paused
cpu1 load data0.0 -> 0x5
cpu1 ipi -> ok
cpu0 resume -> ok
cpu1 load data0.0 -> SEGV
"""


def test_load_during_a_munmap_in_flight_may_see_the_page():
    # cpu1 still has its TLB entry while the munmap (steps 4..7) waits for its IPI: the load at
    # step 5 may be ordered before the munmap; the one at step 8 starts after it completed: SEGV
    assert judge(MUNMAP_WINDOW) is None
    assert judge(swap(MUNMAP_WINDOW, "-> SEGV", "-> 0x5")) == v("protection", 8, "SEGV", "0x5")
    # a value that no order gives: ordered before the munmap the load owes 0x5 (stale-read),
    # after it SEGV (protection). SPEC §4.1 ranks the two alike ("`stale-read` or `protection`")
    # and names no tie-break, so only the step and the rank are pinned here
    r = judge(swap(MUNMAP_WINDOW, "cpu1 load data0.0 -> 0x5", "cpu1 load data0.0 -> 0x0"))
    assert r is not None and r.step == 5 and r.kind in ("stale-read", "protection"), r


MREMAP_WINDOW = TWO + """\
cpu1 load data0.0 -> 0x0
cpu0 store data0.0 0x5 -> ok
cpu0 mremap data0 data1 until ipi_wait -> paused
cpu1 load data0.0 -> 0x5
cpu1 load data1.0 -> 0x0
cpu1 ipi -> ok
cpu0 resume -> ok
cpu1 load data1.0 -> 0x5
cpu1 load data0.0 -> SEGV
"""


def test_load_during_an_mremap_in_flight_may_return_the_old_value():
    # the mremap's interval is steps 5..9: loads inside it may precede it (old page 0x5, old
    # data1 0x0); after its completion data1 holds the moved word and data0 must SEGV
    assert judge(MREMAP_WINDOW) is None
    assert judge(swap(MREMAP_WINDOW, "data1.0 -> 0x5", "data1.0 -> 0x0")) == v("stale-read", 10, "0x5", "0x0")
    assert judge(swap(MREMAP_WINDOW, "-> SEGV", "-> 0x5")) == v("protection", 11, "SEGV", "0x5")


def test_a_load_cannot_see_an_mremap_undone():
    # once a load saw the moved word at data1 (the mremap is ordered before it), a later load of
    # data0 cannot see the old page again: it must SEGV -> protection
    t = swap(MREMAP_WINDOW, "cpu1 load data0.0 -> 0x5\ncpu1 load data1.0 -> 0x0",
             "cpu1 load data1.0 -> 0x5\ncpu1 load data0.0 -> 0x5")
    assert ks(t) == ("protection", 7)
    # the same two loads in the other order are explained (mremap between them)
    t2 = swap(MREMAP_WINDOW, "cpu1 load data1.0 -> 0x0", "cpu1 load data1.0 -> 0x5")
    assert judge(t2) is None


MREMAP_ENTER = TWO + """\
cpu0 store data0.0 0x5 -> ok
cpu0 mremap data0 data1 until pmap_enter -> paused
cpu1 load data1.0 -> paused
cpu0 resume -> ok
cpu1 resume -> 0x0
cpu1 load data1.0 -> 0x5
cpu1 load data0.0 -> SEGV
"""


def test_mremap_until_pmap_enter_then_resume():
    # the load of data1 waits (`wait`, a plain line paused) for the mremap's map lock; its
    # interval (5..7) overlaps the mremap's (4..6), so it may be ordered before it (0x0) or
    # after it (0x5); the load at step 8 starts after the mremap completed: 0x5 only
    assert judge(MREMAP_ENTER) is None
    assert judge(swap(MREMAP_ENTER, "resume -> 0x0", "resume -> 0x5")) is None
    # a value neither before (0x0) nor after (0x5) the mremap: stale-read at the completing line
    assert ks(swap(MREMAP_ENTER, "resume -> 0x0", "resume -> 0x7")) == ("stale-read", 7)
    assert judge(swap(MREMAP_ENTER, "data1.0 -> 0x5", "data1.0 -> 0x0")) == v("stale-read", 8, "0x5", "0x0")
    assert ks(swap(MREMAP_ENTER, "-> SEGV", "-> 0x5")) == ("protection", 9)


MSYNC_CLEAN = TWO + """\
cpu0 store file0.0 0x5 -> ok
cpu0 msync file0 until clean -> paused
cpu1 load file0.0 -> 0x5
cpu1 store file0.0 0x6 -> paused
cpu0 resume -> ok
cpu1 resume -> ok
cpu1 load file0.0 -> 0x6
"""


def test_msync_until_clean_is_invisible():
    # msync stopped before writing the dirty page out; a load meanwhile reads the page cache
    # (0x5, never the backing store's 0xd000), a store waits for the busy page and completes
    # after; msync changes nothing a user sees in any order
    assert judge(MSYNC_CLEAN) is None
    assert judge(swap(MSYNC_CLEAN, "cpu1 load file0.0 -> 0x5", "cpu1 load file0.0 -> 0xd000")) == \
        v("stale-read", 5, "0x5", "0xd000")
    assert judge(swap(MSYNC_CLEAN, "-> 0x6", "-> 0x5")) == v("stale-read", 9, "0x6", "0x5")
    assert ks(swap(MSYNC_CLEAN, "cpu1 resume -> ok", "cpu1 resume -> SEGV")) == ("protection", 8)


PAGEOUT_FREE = """\
hw cpus=2
cpu0 store data0.0 0x5 -> ok
cpu1 pageout P1 data0 until clean -> paused
cpu1 resume until free -> paused
cpu1 resume -> ok
cpu0 load data0.0 -> 0x5
"""


def test_pageout_until_clean_and_free_on_an_idle_cpu():
    # pageout on idle cpu1 stops before writing (clean), then before freeing (free), then
    # completes; the data was written out first and is read back: the load sees 0x5
    assert judge(PAGEOUT_FREE) is None
    assert judge(swap(PAGEOUT_FREE, "-> 0x5", "-> 0x0")) == v("stale-read", 5, "0x5", "0x0")
    assert ks(swap(PAGEOUT_FREE, "cpu1 resume -> ok", "cpu1 resume -> ESRCH")) == ("outcome", 4)


def test_pageout_by_a_thread_until_clean():
    # a pageout on a CPU that runs a thread is that thread's op; resumed, it returns ok, and a
    # load by another thread meanwhile reads the page's value (pageout is invisible)
    t = TWO + """\
cpu0 store data0.0 0x5 -> ok
cpu0 pageout P1 data0 until clean -> paused
cpu1 load data0.0 -> 0x5
cpu0 resume -> ok
cpu0 load data0.0 -> 0x5
"""
    assert judge(t) is None
    assert ks(swap(t, "cpu1 load data0.0 -> 0x5", "cpu1 load data0.0 -> 0x0")) == ("stale-read", 5)


WAKE_MREMAP = "hw cpus=3\n" + """\
cpu0 spawn -> P1.T2
cpu0 spawn -> P1.T3
cpu1 switch P1.T2 -> ok
cpu2 switch P1.T3 -> ok
cpu0 umtx_sleep data0.0 0x0 -> blocked
cpu1 mremap data0 data1 until pmap_enter -> paused
cpu2 umtx_wakeup data1.0 -> paused
cpu1 resume -> ok
cpu2 resume -> ok
cpu2 umtx_wakeup data1.0 -> ok woke P1.T1
"""


def test_wakeup_overlapping_an_mremap_may_precede_it():
    # the first wakeup's interval (7..9) overlaps the mremap's (6..8): ordered before it, data1.0
    # is data1's own word and owes nothing -- clean. The second starts after the mremap
    # completed: under dragonfly the sleeper's word moved to data1.0 and is owed (lost-wakeup if
    # unreported); under linux the private futex stayed at data0's address: owed nothing
    assert judge(WAKE_MREMAP) is None
    lost = swap(WAKE_MREMAP, "-> ok woke P1.T1", "-> ok")
    assert judge(lost) == v("lost-wakeup", 10, "ok woke P1.T1", "ok")
    assert judge(lost, os="linux") is None
    assert judge(WAKE_MREMAP, os="linux") is None      # a permitted spurious wake


def test_pending_munmap_strands_a_private_sleeper():
    # a wakeup of data0.0 while a munmap of data0 is still in flight (pending at the end): the
    # munmap may be placed before it or not, and the wakeup's own return value decides
    t = "hw cpus=3\n" + """\
cpu0 spawn -> P1.T2
cpu0 spawn -> P1.T3
cpu1 switch P1.T2 -> ok
cpu2 switch P1.T3 -> ok
cpu0 umtx_sleep data0.0 0x0 -> blocked
cpu1 munmap data0 until ipi_wait -> paused
cpu2 umtx_wakeup data0.0 -> ok
"""
    # dragonfly: after the munmap a wakeup of data0.0 is EFAULT, so `ok` puts it before the munmap,
    # where it owes T1 a wake it did not report
    assert judge(t) == v("lost-wakeup", 7, "ok woke P1.T1", "ok")
    # reporting the wake is clean; and EFAULT (ordered after the pending munmap) owes nothing
    assert judge(swap(t, "data0.0 -> ok", "data0.0 -> ok woke P1.T1")) is None
    assert judge(swap(t, "data0.0 -> ok", "data0.0 -> EFAULT")) is None
    # linux: `ok` is the wakeup's answer after the munmap too (a private futex on an unmapped
    # address): that order owes nothing -- clean
    assert judge(t, os="linux") is None


def test_interleaved_until_lines_are_traces_too():
    # a `resume` with nothing in flight, or an op on a CPU whose op is in flight, cannot apply
    with pytest.raises(TraceError, match="nothing in flight"):
        judge("cpu0 munmap data0 -> ok\ncpu0 resume -> ok\n")
    with pytest.raises(TraceError, match="in flight"):
        judge("cpu0 mremap data0 data1 until pmap_enter -> paused\ncpu0 load data1.0 -> 0x0\n")
    with pytest.raises(TraceError, match="unknown yield point"):
        judge("cpu0 msync file0 until writeback -> paused\n")


# ============================================================ lost-data: core-only (§3.4, §4)

def _rep(steps, trace, violation):
    return {"hw": "hw cpus=2 tlb=8 mode=pc64", "steps": steps, "trace": trace,
            "violation": violation}


def test_lost_data_is_a_core_only_kind():
    # lost-data is the core's own invariant, like file-corruption: the oracle never reports it
    assert "lost-data" in CORE_ONLY
    assert {"tlb-incoherent", "use-after-free", "file-corruption", "lost-data", "panic"} == set(CORE_ONLY)
    assert not {"stale-read", "protection", "outcome", "lost-wakeup"} & CORE_ONLY


def test_lost_data_run_agrees_when_the_oracle_finds_nothing_before_it():
    # a core run ending in lost-data at step 2 (a pageout on idle cpu1 that lost the store):
    # the oracle, which cannot see frames, must find nothing wrong up to it -- agreement
    rep = _rep(["cpu0 store data0.0 0x5", "cpu1 pageout P1 data0"], ["ok", "ok"],
               {"kind": "lost-data", "step": 2})
    j = judge_report(rep)
    assert j.core == ("lost-data", 2) and j.oracle is None and j.agree
    # a run whose observations before it are already wrong is a disagreement
    bad = _rep(["cpu0 store data0.0 0x5", "cpu0 load data0.0", "cpu0 msync file0"], ["ok", "0x0", "ok"],
               {"kind": "lost-data", "step": 3})
    j = judge_report(bad)
    assert j.oracle == ("stale-read", 2) and not j.agree
    # under os linux as well (the core has no personality)
    lx = _rep(["cpu0 munmap data0", "cpu0 msync data0"], ["ok", "ENOMEM"], {"kind": "lost-data", "step": 2})
    assert judge_report(lx, os="linux").agree
    assert not judge_report(lx).agree
