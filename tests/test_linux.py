"""--target linux: real processes on this host, judged by the same oracle."""

import os
import random
import signal
import struct
import subprocess
import sys
import time

import pytest

from conftest import CORPUS, ROOT, cli

if sys.platform != "linux":
    pytest.skip("Linux only", allow_module_level=True)

from pyvmfuzz import oracle  # noqa: E402
from pyvmfuzz.targets import linux  # noqa: E402


def test_corpus_programs_clean_under_fixed_are_clean_on_linux():
    p = cli("check", CORPUS, "--target", "linux")
    assert p.returncode == 0, p.stdout + p.stderr
    n = int(p.stdout.split("# checked ")[1].split()[0])
    assert n >= 15


def test_linux_behaves_as_the_contract_says():
    ops = ["cpu0 store data0.0 0x5", "cpu0 fork", "cpu1 switch P2.T1", "cpu1 load data0.0",
           "cpu0 store data0.0 0x7", "cpu1 load data0.0", "cpu0 procfs_write P2 text0.1 0x9",
           "cpu1 load text0.1", "cpu0 load text0.1", "cpu0 mprotect data1 r", "cpu0 store data1.0 0x1"]
    r = linux.run_ops(ops, 2)
    assert r["violation"] is None, r["trace_text"]
    assert r["trace"] == ["ok", "P2", "ok", "0x5", "ok", "0x5", "ok", "0x9", "0xf001", "ok", "SEGV"]


def _random_programs_no_disagreement_with_the_oracle(n):
    rng = random.Random(2026)
    t0 = time.time()
    steps = bad = 0
    for _ in range(n):
        cpus = rng.randrange(1, 5)
        r = linux.run_ops(linux.random_ops(rng, cpus, 20), cpus)
        steps += len(r["steps"])
        bad += r["violation"] is not None
    dt = time.time() - t0
    print(f"\nlinux: {n} programs, {steps} steps, {bad} disagreements, {dt:.1f}s ({n / dt:.0f} programs/s)")
    assert bad == 0
    assert steps > 10 * n


def test_100_random_programs_no_disagreement_with_the_oracle():
    """The first 100 programs of the 1,000 below."""
    _random_programs_no_disagreement_with_the_oracle(100)


@pytest.mark.slow
def test_1000_random_programs_no_disagreement_with_the_oracle():
    _random_programs_no_disagreement_with_the_oracle(1000)


def test_killing_the_driver_leaves_no_process(tmp_path):
    code = (
        "import os, sys\n"
        "from pyvmfuzz.targets import linux\n"
        "m = linux.LinuxMachine(2)\n"
        "print(m.pgid, flush=True)\n"
        "from pyvmfuzz import oracle\n"
        "ops = ['cpu0 fork', 'cpu0 spawn', 'cpu1 switch P1.T2', 'cpu1 umtx_sleep data0.0 0x0']\n"
        "orc = oracle.Oracle(2, os='linux')\n"
        "for line in ops:\n"
        "    op = oracle.parse_op(line, 2)\n"
        "    cur = orc.cpu[op.cpu]\n"
        "    out, woke = m.do(op, None if cur is None else cur.name)\n"
        "    orc.step(line, out, [])\n"
        "print('ready', flush=True)\n"
        "import time; time.sleep(60)\n"
    )
    p = subprocess.Popen([sys.executable, "-P", "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    pgid = int(p.stdout.readline())
    assert p.stdout.readline().strip() == "ready"
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    def alive():  # zombies waiting for init to reap them are not alive
        rows = subprocess.run(["ps", "-eo", "pgid=,stat="], capture_output=True, text=True).stdout.splitlines()
        return [r for r in rows if r.split()[0] == str(pgid) and not r.split()[1].startswith("Z")]

    deadline = time.time() + 10
    while alive() and time.time() < deadline:
        time.sleep(0.1)
    assert alive() == [], f"processes of group {pgid} survived the driver"
    base = linux._PidsCgroup._mount()
    stale = os.path.join(base or "/nonexistent", f"pyvmfuzz-{p.pid}")
    if os.path.isdir(stale):  # the killed driver's cgroup is left behind; the next driver removes it
        assert os.path.isdir(os.path.join(stale, "p2"))
        linux._PidsCgroup._sweep(base)
        assert not os.path.exists(stale)
    else:
        assert linux._PidsCgroup.get() is None, "the driver had a pids cgroup but made none"


def test_linux_run_and_fuzz_cli(tmp_path):
    p = cli("run", os.path.join(CORPUS, "litmus", "09-shm-wakeup-across-processes.txt"), "--target", "linux")
    assert p.returncode == 0 and "kernel linux" in p.stdout and "# verdict: clean" in p.stdout
    f = tmp_path / "b"
    f.write_bytes(b"\x01\x02\x03")
    p = cli("run", str(f), "--target", "linux")
    assert p.returncode == 2 and "takes text programs" in p.stderr
    p = cli("fuzz", "--target", "linux", "--time", "3", "--out", str(tmp_path / "o"), "--quiet")
    assert "# linux campaign done" in p.stdout, p.stdout + p.stderr
    # Linux's differences are the ones SPEC §4.2 names (a futex on a read-only page; EIO for a
    # debugger write to a read-only MAP_SHARED page): the `os linux` oracle expects them, so
    # nothing may disagree.
    found = sorted((tmp_path / "o" / "crashes").glob("*.txt"))
    assert found == [] and p.returncode == 0 and "# no violation found" in p.stdout, \
        p.stdout + "".join(f.read_text() for f in found)


# ---------------------------------------------------------------- what Linux did (issue 15)

def _host_futex_wait(shared: bool, value: int) -> str:
    """FUTEX_WAIT on word 0 (= 0) of a fresh page made PROT_READ, called here directly;
    mapped to the contract's names: EAGAIN -> EBUSY, ETIMEDOUT (it would block) -> blocked."""
    import ctypes
    import errno
    import mmap

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    flags = mmap.MAP_SHARED if shared else mmap.MAP_PRIVATE
    buf = mmap.mmap(-1, 4096, flags=flags, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    assert libc.mprotect(ctypes.c_void_p(addr), 4096, mmap.PROT_READ) == 0
    ts = (ctypes.c_long * 2)(0, 1_000_000)  # 1 ms
    op = 0 if shared else 128  # FUTEX_WAIT, FUTEX_WAIT_PRIVATE (as the target uses them)
    r = libc.syscall(202, ctypes.c_void_p(addr), op, value, ts, None, 0)
    e = ctypes.get_errno()
    del addr
    return {errno.EAGAIN: "EBUSY", errno.ETIMEDOUT: "blocked"}.get(e, f"r={r} errno={e}") if r == -1 else f"r={r}"


@pytest.mark.parametrize("page,shared", [("shm0", True), ("data0", False)])
def test_umtx_sleep_on_a_read_only_page_is_what_the_host_futex_returns(tmp_path, page, shared):
    """Acceptance (issue 15): `run --target linux` of `mprotect PAGE r` then `umtx_sleep`
    gives what this host's FUTEX_WAIT gives on such a page (SPEC §4.2), and `os linux` agrees."""
    import json

    for value in (1, 0):
        host = _host_futex_wait(shared, value)
        assert host in ("EBUSY", "blocked"), host
        f = tmp_path / f"{page}-{value}.txt"
        f.write_text(f"cpu0 mprotect {page} r\ncpu0 umtx_sleep {page}.0 {value:#x}\n")
        p = cli("run", str(f), "--target", "linux", "--json")
        assert p.returncode == 0, p.stdout + p.stderr
        rep = json.loads(p.stdout)
        assert rep["trace"] == ["ok", host] and rep["verdict"] == "clean", (host, rep)
        assert "Fatal Python error" not in p.stderr


def test_fork_and_spawn_ids_are_real_processes_and_threads_in_order_of_creation():
    m = linux.LinuxMachine(2)
    try:
        assert [m.do(oracle.parse_op("cpu0 fork", 2), (1, 1), s)[0] for s in (1, 2)] == ["P2", "P3"]
        assert m.do(oracle.parse_op("cpu0 spawn", 2), (1, 1), 3)[0] == "P1.T2"
        for n in (2, 3):  # the children of P1's real process, numbered as they were made
            with open(f"/proc/{m.procs[n]}/stat") as f:
                assert int(f.read().rsplit(")", 1)[1].split()[1]) == m.procs[1]
            assert m.notes[n - 1] == f"pid {m.procs[n]}"
        tid = int(m.notes[3].split()[1])
        assert os.path.exists(f"/proc/{m.procs[1]}/task/{tid}") and tid == m.threads[(1, 2)][2]
    finally:
        m.close()


LIMIT_OPS = ["cpu0 fork"] * 8 + ["cpu0 spawn"] * 4 + ["cpu0 exit", "cpu1 switch P2.T1", "cpu1 fork", "cpu1 fork"]
LIMIT_TRACE = ["P2", "P3", "P4", "P5", "P6", "P7", "P8", "EAGAIN", "P1.T2", "P1.T3", "P1.T4", "EAGAIN",
               "ok", "ok", "P9", "EAGAIN"]


def test_process_and_thread_limits_give_eagain():
    r = linux.run_ops(LIMIT_OPS, 2)
    assert r["trace"] == LIMIT_TRACE and r["violation"] is None, r["trace_text"]
    assert r["limits"] in ("cgroup-v1 pids", "driver") and f"limits (8 processes, 4 threads): {r['limits']}" in r["trace_text"]


def test_eagain_is_the_kernels_when_a_pids_cgroup_is_writable():
    """Plant a lower pids.max: the third fork fails in the kernel, and the oracle says so."""
    cg = linux._PidsCgroup.get()
    if cg is None:
        pytest.skip("no writable cgroup v1 pids hierarchy here: the driver applies the limits")
    procs = os.path.join(cg.root, "procs", "pids.max")
    linux._PidsCgroup._write(procs, "3")
    try:
        r = linux.run_ops(["cpu0 fork"] * 3, 2)
    finally:
        linux._PidsCgroup._write(procs, "8")
    assert r["trace"] == ["P2", "P3", "EAGAIN"]
    assert r["violation"] == {"kind": "outcome", "step": 3, "expected": "P4", "observed": "EAGAIN"}


def test_driver_applied_limits_when_asked():
    code = ("from pyvmfuzz.targets import linux\n"
            f"r = linux.run_ops({LIMIT_OPS!r}, 2)\n"
            "print(r['limits'], r['trace'], r['violation'])\n")
    p = subprocess.run([sys.executable, "-P", "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PYVMFUZZ_LINUX_LIMITS": "driver"})
    assert p.stdout.strip() == f"driver {LIMIT_TRACE} None", p.stdout + p.stderr


def test_madvise_and_mprotect_report_the_real_return_value(monkeypatch):
    """Planted faults in what the worker passes to the kernel: the kernel's EINVAL comes back
    as the outcome (the oracle calls it out), not a driver's `ok`."""
    monkeypatch.setattr(linux, "MADV_DONTNEED", 12345)
    monkeypatch.setattr(linux, "PROT_WRITE", 0x1000)
    r = linux.run_ops(["cpu0 madvise data0 dontneed"], 1)
    assert r["trace"] == ["EINVAL"] and r["violation"]["kind"] == "outcome"
    r = linux.run_ops(["cpu0 mprotect data0 rw"], 1)
    assert r["trace"] == ["EINVAL"] and r["violation"]["kind"] == "outcome"


def test_a_clean_run_with_segv_prints_no_fatal_error_even_under_faulthandler(tmp_path):
    """Issue 17 rough edge 9: the SEGV the program asks for is an outcome, not a crash dump
    (pytest and -X faulthandler install faulthandler, which forked workers inherit)."""
    f = tmp_path / "segv.txt"
    f.write_text("cpu0 mprotect data0 r\ncpu0 fork\ncpu0 store data0.0 0x1 -> SEGV\n"
                 "cpu1 switch P2.T1\ncpu1 store data0.0 0x1 -> SEGV\n")
    p = subprocess.run([sys.executable, "-P", "-X", "faulthandler", "-m", "pyvmfuzz", "run", str(f),
                        "--target", "linux"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "# verdict: clean" in p.stdout, p.stdout + p.stderr
    assert p.stderr == ""


def test_a_worker_that_crashes_unasked_is_reported_with_its_traceback(monkeypatch):
    """A SIGSEGV the program did not ask for (planted: a load from an unmapped address) is an
    error naming the op, with the worker's faulthandler dump — not hidden, not a verdict."""
    monkeypatch.setattr(linux._Worker, "addr", lambda self, page, w: 8)
    with pytest.raises(linux.LinuxError, match=r"(?s)P1 died during load.*Segmentation fault"):
        linux.run_ops(["cpu0 load data0.0"], 1)


def test_a_linux_trace_names_its_personality_and_replays_through_the_oracle():
    """The trace says `os linux` (SPEC §4.2): judged again it is clean; under DragonFly's
    contract the same observation is the EFAULT difference."""
    r = linux.run_ops(["cpu0 mprotect data1 r", "cpu0 umtx_sleep data1.0 0x1", "cpu0 fork"], 2)
    assert r["violation"] is None and "\nos linux\n" in r["trace_text"], r["trace_text"]
    assert oracle.judge(r["trace_text"]) is None
    v = oracle.judge(r["trace_text"], os="dragonfly")
    assert (v.kind, v.step, v.expected, v.observed) == ("outcome", 2, "EFAULT", "EBUSY")


def test_a_debugger_write_to_a_read_only_shared_page_is_linuxs_eio():
    """SPEC §4.2: Linux's FOLL_FORCE breaks copy-on-write only in private mappings (mm/gup.c
    check_vma_flags): the write into a read-only shm0 fails with EIO on this host, nothing is
    written, and the `os linux` oracle expects exactly that; DragonFly's contract (`ok`, written
    up to max prot) calls the same observation out. Into a read-only private page it succeeds."""
    r = linux.run_ops(["cpu0 mprotect shm0 r", "cpu0 procfs_write P1 shm0.0 0x1", "cpu0 load shm0.0"], 1)
    assert r["trace"] == ["ok", "EIO", "0x0"] and r["violation"] is None, r["trace_text"]
    assert oracle.judge(r["trace_text"]) is None  # the trace says `os linux`
    v = oracle.judge(r["trace_text"], os="dragonfly")
    assert (v.kind, v.step, v.expected, v.observed) == ("outcome", 2, "ok", "EIO")
    # the target's prot decides: P2's shm0 read-only, P1's still rw (one page for both)
    r = linux.run_ops(["cpu0 fork", "cpu1 switch P2.T1", "cpu1 mprotect shm0 r", "cpu0 procfs_write P2 shm0.0 0x1",
                       "cpu0 procfs_write P1 shm0.1 0x2", "cpu1 load shm0.0", "cpu1 load shm0.1"], 2)
    assert r["trace"] == ["P2", "ok", "ok", "EIO", "ok", "0x0", "0x2"] and r["violation"] is None, r["trace_text"]
    r = linux.run_ops(["cpu0 mprotect data0 r", "cpu0 procfs_write P1 data0.0 0x1", "cpu0 load data0.0"], 1)
    assert r["trace"] == ["ok", "ok", "0x1"] and r["violation"] is None


# ---------------------------------------------------------------- docs/contract.md §3.4 on the host

def _do(m, line, actor=(1, 1), step=0, cpus=2):
    return m.do(oracle.parse_op(line, cpus), actor, step)[0]


def _vma(m, n, page):
    """The /proc/PID/smaps entry of P<n>'s mapping at page: its header line and counters (kB)."""
    addr, out, inside = m.base[page], {}, False
    with open(f"/proc/{m.procs[n]}/smaps") as f:
        for ln in f:
            t = ln.split()
            if t[0][-1] != ":":
                lo, hi = (int(x, 16) for x in t[0].split("-"))
                inside = lo <= addr < hi
                if inside:
                    out["head"] = t
            elif inside and t[0] not in ("VmFlags:",):
                out[t[0][:-1]] = int(t[1])
    return out


def _host_call(what: str) -> str:
    """The host's own answer, called here in the test process on a page just unmapped (no
    driver): what the target must report for the same line."""
    import ctypes
    import errno
    import mmap

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    a = libc.mmap(None, 2 * 4096, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)
    hole, other = a, a + 4096
    assert libc.munmap(ctypes.c_void_p(hole), 4096) == 0
    L = ctypes.c_long
    try:
        r = {
            "mremap-same": lambda: libc.syscall(L(linux.SYS_MREMAP), L(hole), L(4096), L(4096), L(3), L(hole)),
            "mremap-unmapped": lambda: libc.syscall(L(linux.SYS_MREMAP), L(hole), L(4096), L(4096), L(3), L(other)),
            "futex-wait-private": lambda: libc.syscall(L(linux.SYS_FUTEX), L(hole), L(128), L(0), None, None, L(0)),
            "futex-wait-shared": lambda: libc.syscall(L(linux.SYS_FUTEX), L(hole), L(0), L(0), None, None, L(0)),
            "futex-wake-private": lambda: libc.syscall(L(linux.SYS_FUTEX), L(hole), L(129), L(1), None, None, L(0)),
            "futex-wake-shared": lambda: libc.syscall(L(linux.SYS_FUTEX), L(hole), L(1), L(1), None, None, L(0)),
            "msync": lambda: libc.msync(ctypes.c_void_p(hole), L(4096), 4),
            "mprotect": lambda: libc.mprotect(ctypes.c_void_p(hole), L(4096), 1),
            "madvise": lambda: libc.madvise(ctypes.c_void_p(hole), L(4096), 4),
            "pageout": lambda: libc.madvise(ctypes.c_void_p(hole), L(4096), 21),
            "munmap": lambda: libc.munmap(ctypes.c_void_p(hole), L(4096)),
        }[what]()
        e = ctypes.get_errno()
    finally:
        libc.munmap(ctypes.c_void_p(other), 4096)
    return errno.errorcode[e] if r == -1 else "ok"


def test_host_kernel_is_recorded():
    r = linux.run_ops(["cpu0 load data0.0"], 1)
    assert r["host"] == os.uname().release and f"# host: Linux {os.uname().release}\n" in r["trace_text"]


def test_layout_file0_is_the_data_file_shared_and_hole0_has_no_mapping():
    """file0 is a MAP_SHARED rw mapping of the driver's data file (same inode), holding
    0xd000+w; hole0 is no mapping at all (not a PROT_NONE one): nothing in /proc/PID/maps."""
    m = linux.LinuxMachine(2)
    try:
        f0 = _vma(m, 1, "file0")
        st = os.fstat(m.data_fd)
        assert f0["head"][1] == "rw-s" and int(f0["head"][4]) == st.st_ino, f0
        assert _vma(m, 1, "hole0") == {}
        assert [_do(m, f"cpu0 load file0.{w}") for w in range(4)] == [hex(0xD000 + w) for w in range(4)]
        assert _do(m, "cpu0 load hole0.0") == "SEGV"
        assert 1 not in m.procs and not m._alive(m.ospids[0])  # the load really killed P1
    finally:
        m.close()


def test_file0_is_shared_across_fork_through_the_real_file():
    """A store by P1 and a debugger write into P2 land in the file's page cache, seen by both
    processes and by a read(2) of the file itself; a fresh `mmap file0` maps the file as it is."""
    m = linux.LinuxMachine(2)
    try:
        assert _do(m, "cpu0 store file0.1 0x11") == "ok"
        assert _do(m, "cpu0 fork", step=2) == "P2"
        assert _do(m, "cpu1 load file0.1", (2, 1)) == "0x11"
        assert _do(m, "cpu1 store file0.2 0x22", (2, 1)) == "ok"
        assert _do(m, "cpu0 load file0.2") == "0x22"
        assert _do(m, "cpu0 procfs_write P2 file0.3 0x33") == "ok"
        assert _do(m, "cpu0 load file0.3") == "0x33"
        words = struct.unpack("<4I", os.pread(m.data_fd, 16, 0))
        assert words == (0xD000, 0x11, 0x22, 0x33)
        os.pwrite(m.data_fd, struct.pack("<I", 0x44), 0)  # written to the file, not through a mapping
        assert _do(m, "cpu1 load file0.0", (2, 1)) == "0x44"
        assert _do(m, "cpu1 mmap file0", (2, 1)) == "ok" and _do(m, "cpu1 load file0.1", (2, 1)) == "0x11"
        assert _vma(m, 2, "file0")["head"][4] == str(os.fstat(m.data_fd).st_ino)
    finally:
        m.close()
    r = linux.run_ops(["cpu0 store file0.1 0x11", "cpu0 fork", "cpu1 switch P2.T1", "cpu1 load file0.1",
                       "cpu1 umtx_sleep file0.1 0x11", "cpu0 umtx_wakeup file0.1"], 2)
    assert r["trace"] == ["ok", "P2", "ok", "0x11", "blocked", "ok woke P2.T1"] and r["violation"] is None, r["trace_text"]


def test_munmap_then_load_segv():
    r = linux.run_ops(["cpu0 spawn", "cpu1 switch P1.T2", "cpu0 store data0.0 0x5", "cpu1 load data0.0",
                       "cpu0 munmap data0", "cpu1 load data1.0", "cpu1 load data0.0", "cpu0 switch idle"], 2)
    # the SEGV killed P1, both threads: cpu0 is idle too (its `switch idle` is all it can run)
    assert r["trace"] == ["P1.T2", "ok", "ok", "0x5", "ok", "0x0", "SEGV", "ok"] and r["violation"] is None, r["trace_text"]
    # munmap of what is not mapped is ok (it removes nothing); a store there is SEGV too
    r = linux.run_ops(["cpu0 munmap hole0", "cpu0 munmap shm0", "cpu0 munmap shm0", "cpu0 store shm0.0 0x1"], 1)
    assert r["trace"] == ["ok", "ok", "ok", "SEGV"] and r["violation"] is None, r["trace_text"]


def test_mmap_gives_each_kind_a_fresh_mapping():
    r = linux.run_ops(["cpu0 store data1.0 0x5", "cpu0 mmap data1", "cpu0 load data1.0",
                       "cpu0 procfs_write P1 text1.2 0x9", "cpu0 load text1.2", "cpu0 mmap text1", "cpu0 load text1.2",
                       "cpu0 store text1.2 0x1",
                       ], 1)
    assert r["trace"] == ["ok", "ok", "0x0", "ok", "0x9", "ok", "0xf012", "SEGV"] and r["violation"] is None, r["trace_text"]
    # a new shm0 is shared with no one until a fork; hole0 becomes zero-filled memory
    r = linux.run_ops(["cpu0 store shm0.0 0x7", "cpu0 fork", "cpu0 mmap shm0", "cpu0 load shm0.0",
                       "cpu0 store shm0.1 0x8", "cpu0 fork", "cpu0 mmap hole0", "cpu0 load hole0.1",
                       "cpu1 switch P2.T1", "cpu1 load shm0.0", "cpu1 load shm0.1", "cpu1 switch P3.T1",
                       "cpu1 load shm0.1", "cpu1 load hole0.0"], 2)
    assert r["trace"] == ["ok", "P2", "ok", "0x0", "ok", "P3", "ok", "0x0", "ok", "0x7", "0x0", "ok", "0x8", "SEGV"] \
        and r["violation"] is None, r["trace_text"]


def test_mremap_moves_the_content_and_its_errors_are_the_hosts():
    """mremap(MREMAP_MAYMOVE|MREMAP_FIXED): the content (private or shared) moves and PAGE is
    left unmapped. On this host EINVAL (TO = PAGE) comes before EFAULT (PAGE unmapped), as the
    contract orders them: pinned against the raw system call made here."""
    assert _host_call("mremap-same") == "EINVAL" and _host_call("mremap-unmapped") == "EFAULT"
    r = linux.run_ops(["cpu0 store data0.0 0x5", "cpu0 mremap data0 hole0", "cpu0 load hole0.0", "cpu0 mremap data0 data0",
                       "cpu0 mremap data0 data1", "cpu0 mremap shm0 data2", "cpu0 fork", "cpu0 store data2.1 0x9",
                       "cpu1 switch P2.T1", "cpu1 load data2.1", "cpu1 load hole0.0", "cpu1 load data0.0"], 2)
    assert r["trace"] == ["ok", "ok", "0x5", "EINVAL", "EFAULT", "ok", "P2", "ok", "ok", "0x9", "0x5", "SEGV"] \
        and r["violation"] is None, r["trace_text"]
    m = linux.LinuxMachine(1)
    try:
        assert _do(m, "cpu0 mremap file0 hole0", cpus=1) == "ok"
        assert _vma(m, 1, "file0") == {} and _vma(m, 1, "hole0")["head"][1] == "rw-s"
        assert _do(m, "cpu0 store hole0.0 0x77", cpus=1) == "ok"
        assert struct.unpack("<I", os.pread(m.data_fd, 4, 0))[0] == 0x77  # still the data file
    finally:
        m.close()


def test_msync_writes_the_page_back_to_the_file():
    """After a store the file page is dirty (smaps); msync(MS_SYNC) writes it to the file and
    leaves it clean; an O_DIRECT read of the data file (past the page cache) has the word."""
    import mmap

    m = linux.LinuxMachine(2)
    try:
        assert _do(m, "cpu0 store file0.2 0x77") == "ok"
        v = _vma(m, 1, "file0")
        assert v["Private_Dirty"] + v["Shared_Dirty"] == 4, v
        assert _do(m, "cpu0 msync file0") == "ok"
        v = _vma(m, 1, "file0")
        assert v["Private_Dirty"] + v["Shared_Dirty"] == 0 and v["Rss"] == 4, v
        buf = mmap.mmap(-1, 4096)
        try:
            fd = os.open(f"/proc/self/fd/{m.data_fd}", os.O_RDONLY | os.O_DIRECT)
        except OSError:  # a file system without O_DIRECT: the page cache then
            fd = os.open(f"/proc/self/fd/{m.data_fd}", os.O_RDONLY)
        try:
            assert os.preadv(fd, [buf], 0) == 4096
        finally:
            os.close(fd)
        assert struct.unpack("<4I", buf[:16]) == (0xD000, 0xD001, 0x77, 0xD003)
        assert [_do(m, f"cpu0 msync {p}") for p in ("data0", "text0", "shm0")] == ["ok"] * 3
    finally:
        m.close()


def _in_page_cache(fd: int) -> bool:
    """mincore(2) of the data file's first page through a fresh mapping here: resident in the
    page cache or not (mapping it faults nothing in)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    a = libc.mmap(None, 4096, 1, 1, fd, 0)  # PROT_READ, MAP_SHARED
    vec = ctypes.create_string_buffer(1)
    try:
        assert libc.mincore(ctypes.c_void_p(a), ctypes.c_size_t(4096), vec) == 0
    finally:
        libc.munmap(ctypes.c_void_p(a), ctypes.c_size_t(4096))
    return bool(vec.raw[0] & 1)


def test_pageout_then_load_returns_the_data():
    """pageout from the process itself (madvise), from an idle CPU (the driver's
    process_madvise) and from another process's thread (process_madvise through the pidfd).
    What this host's MADV_PAGEOUT does: a clean file page (after msync) is unmapped and evicted
    from the page cache, so the next load reads it from the file; a dirty one is unmapped
    (smaps Rss 0) but stays dirty in the page cache (reclaim outside kswapd writes no file page,
    mm/vmscan.c); an anonymous page stays where there is no swap; a page still in another CPU's
    LRU batch (lru_add_drain drains only the caller's) or mapped by two processes is left
    alone. Every load returns the data."""
    ncpus = len(os.sched_getaffinity(0))
    cpus = ncpus + 1 if ncpus < 8 else 2  # the last model CPU then runs on cpu0's host CPU, where P1.T1 is
    m = linux.LinuxMachine(cpus)
    idle = f"cpu{cpus - 1}"
    do = lambda line, actor=(1, 1), step=0: _do(m, line, actor, step, cpus)  # noqa: E731
    try:
        assert do("cpu0 store file0.3 0x6") == "ok" and do("cpu0 store data0.0 0x5") == "ok"
        assert do("cpu0 msync file0") == "ok"
        assert do("cpu0 pageout P1 file0") == "ok"  # madvise by P1.T1 on its own CPU
        assert _vma(m, 1, "file0")["Rss"] == 0 and not _in_page_cache(m.data_fd)
        assert do("cpu0 load file0.3") == "0x6" and _in_page_cache(m.data_fd)  # read in from the file
        assert do("cpu0 store file0.3 0x7") == "ok"
        assert do("cpu0 pageout P1 file0") == "ok"  # dirty: unmapped, kept
        assert _vma(m, 1, "file0")["Rss"] == 0 and _in_page_cache(m.data_fd)
        assert do("cpu0 load file0.3") == "0x7"
        assert do(f"{idle} pageout P1 file0", None) == "ok"  # the driver, pinned to that CPU
        if ncpus < 8:
            assert _vma(m, 1, "file0")["Rss"] == 0
        assert do("cpu0 load file0.3") == "0x7"
        assert struct.unpack("<I", os.pread(m.data_fd, 4, 12))[0] == 0x7
        assert do(f"{idle} pageout P1 data0", None) == "ok" and do("cpu0 pageout P1 data0") == "ok"
        assert do("cpu0 load data0.0") == "0x5"
        assert _do(m, "cpu0 fork", step=5) == "P2" and _do(m, "cpu1 switch P2.T1", None) == "ok"  # pinned
        assert _do(m, "cpu1 store file0.1 0x8", (2, 1)) == "ok"
        # MADV_PAGEOUT leaves a page that more than one process maps alone (mm/madvise.c): `ok`,
        # and still mapped in both
        assert _do(m, "cpu0 pageout P2 file0") == "ok" and _vma(m, 2, "file0")["Rss"] == 4
        assert _do(m, "cpu0 madvise file0 dontneed") == "ok" and _vma(m, 1, "file0")["Rss"] == 0
        # P1's thread, P2's page (process_madvise); then P2's own (madvise). Whether the page goes
        # depends on the per-CPU LRU batches across two CPUs: only the data is asserted
        assert _do(m, "cpu0 pageout P2 file0") == "ok"
        assert _do(m, "cpu1 load file0.1", (2, 1)) == "0x8"
        assert _do(m, "cpu1 pageout P2 file0", (2, 1)) == "ok"
        assert _do(m, "cpu1 load file0.1", (2, 1)) == "0x8"
        assert _do(m, "cpu1 exit", (2, 1)) == "ok"
        # P2 is dead: the kernel says so through the pidfd, from a thread and from the driver
        assert _do(m, "cpu0 pageout P2 data0") == "ESRCH" and _do(m, "cpu1 pageout P2 data0", None) == "ESRCH"
        assert _do(m, "cpu0 pageout P5 data0") == "ESRCH"  # never made
    finally:
        m.close()
    r = linux.run_ops(["cpu0 store data0.0 0x5", "cpu0 store file0.3 0x6", "cpu1 pageout P1 data0",
                       "cpu1 pageout P1 file0", "cpu0 load data0.0", "cpu0 load file0.3", "cpu0 pageout P3 data0"], 2)
    assert r["trace"] == ["ok", "ok", "ok", "ok", "0x5", "0x6", "ESRCH"] and r["violation"] is None, r["trace_text"]


def test_pageout_on_a_host_without_it_is_unsupported(monkeypatch, tmp_path):
    """A host without MADV_PAGEOUT (Linux < 5.4) or process_madvise: the line is an input error
    (exit 2) naming why, never an outcome of the driver's."""
    monkeypatch.setattr(linux, "_pageout_support", {"madvise": "MADV_PAGEOUT fails here with EINVAL", "process_madvise": None})
    with pytest.raises(linux.LinuxError, match=r"step 2: `pageout` is unsupported on this host: MADV_PAGEOUT"):
        linux.run_ops(["cpu0 store data0.0 0x1", "cpu0 pageout P1 data0"], 1)
    monkeypatch.setattr(linux, "_pageout_support", {"madvise": None, "process_madvise": "no process_madvise"})
    r = linux.run_ops(["cpu0 pageout P1 data0"], 2)  # the caller's own process: madvise is enough
    assert r["trace"] == ["ok"]
    with pytest.raises(linux.LinuxError, match="unsupported on this host: no process_madvise"):
        linux.run_ops(["cpu1 pageout P1 data0"], 2)


def test_interleaved_lines_of_the_new_operations_are_refused(tmp_path):
    for line in ("cpu0 msync file0 until clean", "cpu1 pageout P1 data0 until free",
                 "cpu0 mremap data0 hole0 until pmap_enter", "cpu0 munmap data0 until ipi_wait"):
        f = tmp_path / "p.txt"
        f.write_text(line + "\n")
        p = cli("run", str(f), "--target", "linux")
        assert p.returncode == 2 and "interleaved line" in p.stderr, p.stdout + p.stderr


def test_procfs_and_umtx_on_an_unmapped_page_are_what_the_host_gives():
    """docs/contract.md §4.2: /proc/PID/mem of an unmapped address is EIO on Linux (the oracle
    agrees). FUTEX_WAIT on an unmapped page is EFAULT (private and shared futex alike), and so
    is a shared FUTEX_WAKE (get_futex_key looks the page up) — all as the contract says."""
    assert _host_call("futex-wait-private") == "EFAULT" and _host_call("futex-wait-shared") == "EFAULT"
    assert _host_call("futex-wake-shared") == "EFAULT"
    r = linux.run_ops(["cpu0 fork", "cpu0 procfs_read P1 hole0.0", "cpu0 procfs_write P2 hole0.1 0x1",
                       "cpu0 munmap data0", "cpu1 switch P2.T1", "cpu1 procfs_read P1 data0.0", "cpu1 procfs_read P2 data0.0",
                       "cpu0 umtx_sleep hole0.0 0x0", "cpu0 umtx_sleep data0.0 0x0", "cpu0 munmap shm0",
                       "cpu0 umtx_sleep shm0.0 0x0", "cpu0 umtx_wakeup shm0.0", "cpu0 munmap file0",
                       "cpu0 umtx_wakeup file0.0"], 2)
    assert r["trace"] == ["P2", "EIO", "EIO", "ok", "ok", "EIO", "0x0", "EFAULT", "EFAULT", "ok", "EFAULT", "EFAULT",
                          "ok", "EFAULT"] and r["violation"] is None, r["trace_text"]


@pytest.mark.parametrize("line,host,contract", [
    ("cpu0 umtx_wakeup hole0.0", "futex-wake-private", "EFAULT"),
    ("cpu0 msync hole0", "msync", "ok"),
    ("cpu0 mprotect hole0 r", "mprotect", "ok"),
    ("cpu0 madvise hole0 dontneed", "madvise", "ok"),
    ("cpu0 pageout P1 hole0", "pageout", "ok"),
    ("cpu1 pageout P1 hole0", "pageout", "ok"),
])
def test_unmapped_page_outcomes_are_linuxs(line, host, contract):
    """Linux's answer on an unmapped page differs from docs/contract.md §3.4's table (`contract`,
    DragonFly's), and §4.2 names the difference for `os linux`: the target reports the kernel's
    answer (the same as the raw call made here: ENOMEM for mprotect, madvise, msync and
    MADV_PAGEOUT; 0 woken — `ok` — for a private FUTEX_WAKE, keyed by address with no page
    lookup), and the `os linux` oracle expects exactly that."""
    expected_host = _host_call(host)
    assert expected_host == ("ok" if host.startswith("futex") else "ENOMEM")
    assert expected_host != contract
    r = linux.run_ops([line], 2)
    assert r["trace"] == [expected_host], r["trace_text"]
    assert r["violation"] is None
    assert _host_call("munmap") == "ok"  # munmap of an unmapped page: ok, as the contract says
