"""`--target linux`: run a program on the host kernel — real processes and threads pinned to
real CPUs, real page tables, copy-on-write, futexes and /proc/PID/mem — step-locked so the
interleaving is exactly the program's, and judged by the same Python oracle.

Each model thread is a real thread serving one AF_UNIX SEQPACKET socket; the driver sends one
command at a time. The layout (SPEC §2.1) is made before any fork: four private anonymous
pages, a private mapping of a memfd holding the text, one MAP_SHARED page. futex: private ops
for private pages, shared ops for shm0. A store to a read-only page kills the process (SEGV),
as the contract says. Hygiene: one process group per run, PR_SET_PDEATHSIG in every worker,
no core files, per-step timeouts, everything killed and reaped at the end."""

from __future__ import annotations

import ctypes
import errno
import os
import resource
import select
import signal
import socket
import struct
import threading
import time

from pyvmfuzz import oracle
from pyvmfuzz.programs import InputError

PAGE = 4096
PAGES = ["data0", "data1", "data2", "data3", "text0", "text1", "shm0"]
SYS_FUTEX = 202
FUTEX_WAIT, FUTEX_WAKE, FUTEX_PRIVATE = 0, 1, 128
PROT_READ, PROT_WRITE = 1, 2
MAP_SHARED, MAP_PRIVATE, MAP_ANONYMOUS = 1, 2, 0x20
MADV_DONTNEED = 4
PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER = 1, 36
STEP_TIMEOUT = 5.0

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
_libc.syscall.restype = ctypes.c_long


def _futex(addr: int, op: int, val: int) -> int:
    r = _libc.syscall(SYS_FUTEX, ctypes.c_void_p(addr), op, val, None, None, 0)
    return -ctypes.get_errno() if r == -1 else r


# ---------------------------------------------------------------- worker side

class _Worker:
    """State of one worker process (copied by fork, as the memory is)."""

    def __init__(self, base: dict, lifeline: int):
        self.base = base  # page -> address
        self.lifeline = lifeline
        self.prot = {p: ("r" if p.startswith("text") else "rw") for p in PAGES}
        self.socks: list[socket.socket] = []

    def addr(self, page: str, w: int) -> int:
        return self.base[page] + 4 * w

    def serve(self, sock: socket.socket) -> None:
        self.socks.append(sock)
        sock.send(f"hello {os.getpid()} {threading.get_native_id()}".encode())
        while True:
            try:
                msg, fds, _, _ = socket.recv_fds(sock, 256, 1)
            except OSError:
                os._exit(0)
            if not msg:
                os._exit(0)  # the driver is gone
            a = msg.decode().split()
            op = a[0]
            if op == "load":
                v = ctypes.c_uint32.from_address(self.addr(a[1], int(a[2]))).value
                sock.send(f"{v:#x}".encode())
            elif op == "store":
                ctypes.c_uint32.from_address(self.addr(a[1], int(a[2]))).value = int(a[3])
                sock.send(b"ok")
            elif op == "pin":
                os.sched_setaffinity(0, {int(a[1])})
                sock.send(b"ok")
            elif op == "spawn":
                t = threading.Thread(target=self.serve, args=(socket.socket(fileno=fds[0]),), daemon=True)
                t.start()
                sock.send(b"ok")
            elif op == "fork":
                child_sock = socket.socket(fileno=fds[0])
                pid = os.fork()
                if pid == 0:
                    _watch_lifeline(self.lifeline)  # the forking thread is all that was copied
                    for s in self.socks:
                        s.close()
                    self.socks = []
                    sock = child_sock
                    self.socks.append(sock)
                    sock.send(f"hello {os.getpid()} {threading.get_native_id()}".encode())
                    continue
                child_sock.close()
                sock.send(f"forked {pid}".encode())
            elif op == "exit":
                os._exit(0)
            elif op == "sleep":
                page, w, v = a[1], int(a[2]), int(a[3])
                if self.prot[page] != "rw":  # umtx_sleep faults READ|WRITE (SPEC §3)
                    sock.send(b"EFAULT")
                    continue
                priv = 0 if page == "shm0" else FUTEX_PRIVATE
                while True:
                    r = _futex(self.addr(page, w), FUTEX_WAIT | priv, v)
                    if r != -errno.EINTR:
                        break
                sock.send(b"EBUSY" if r == -errno.EAGAIN else b"woke")
            elif op == "wake":
                page, w = a[1], int(a[2])
                priv = 0 if page == "shm0" else FUTEX_PRIVATE
                n = _futex(self.addr(page, w), FUTEX_WAKE | priv, 0x7FFFFFFF)
                sock.send(f"ok {n}".encode())
            elif op == "madvise":
                _libc.madvise(ctypes.c_void_p(self.base[a[1]]), PAGE, MADV_DONTNEED)
                sock.send(b"ok")
            elif op == "mprotect":
                prot = PROT_READ | (PROT_WRITE if a[2] == "rw" else 0)
                _libc.mprotect(ctypes.c_void_p(self.base[a[1]]), PAGE, prot)
                self.prot[a[1]] = a[2]
                sock.send(b"ok")


def _watch_lifeline(fd: int) -> None:
    """A process must not outlive the driver, even with every thread asleep in a futex; but
    it must outlive its parent (a SEGV in P1 does not kill P2), so no PR_SET_PDEATHSIG past P1:
    each process watches a pipe whose write end only the driver holds."""

    def watch():
        try:
            os.read(fd, 1)
        finally:
            os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def _first_worker(sock: socket.socket, lifeline: int) -> None:
    """P1: make the layout, then serve as P1.T1. Never returns."""
    try:
        _watch_lifeline(lifeline)
        os.setpgid(0, 0)
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # forked processes reap themselves
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        data = _libc.mmap(None, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        fd = os.memfd_create("pyvmfuzz-text")
        words = b"".join(struct.pack("<I", 0xF000 + 16 * p + w) for p in range(2) for w in range(4))
        os.write(fd, words[:16] + bytes(PAGE - 16) + words[16:] + bytes(PAGE - 16))
        text = _libc.mmap(None, 2 * PAGE, PROT_READ, MAP_PRIVATE, fd, 0)
        shm = _libc.mmap(None, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0)
        base = {f"data{i}": data + i * PAGE for i in range(4)}
        base.update(text0=text, text1=text + PAGE, shm0=shm)
        sock.send(("layout " + " ".join(f"{p}={base[p]}" for p in PAGES)).encode())
        _Worker(base, lifeline).serve(sock)
    finally:
        os._exit(0)


# ---------------------------------------------------------------- driver side

class LinuxError(InputError):
    pass


class LinuxMachine:
    """One program's worth of real processes."""

    def __init__(self, cpus: int):
        self.ncpus_host = len(os.sched_getaffinity(0))
        self.threads: dict[tuple[int, int], tuple[socket.socket, int, int]] = {}
        self.procs: dict[int, int] = {}  # model pid -> OS pid
        self.blocked: set[tuple[int, int]] = set()
        try:
            _libc.prctl(PR_SET_CHILD_SUBREAPER, 1)
        except OSError:
            pass
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        life_r, self.lifeline_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            ours.close()
            os.close(self.lifeline_w)
            _first_worker(theirs, life_r)
        theirs.close()
        os.close(life_r)
        self.pgid = pid
        ours.settimeout(STEP_TIMEOUT)
        layout = self._recv(ours, "layout").split()[1:]
        self.base = {k: int(v) for k, v in (kv.split("=") for kv in layout)}
        _, ospid, tid = self._recv(ours, "hello").split()
        self.threads[(1, 1)] = (ours, int(ospid), int(tid))
        self.procs[1] = int(ospid)

    def _recv(self, sock: socket.socket, what: str) -> str:
        try:
            msg = sock.recv(256)
        except socket.timeout:
            raise LinuxError(f"linux worker did not answer ({what}) within {STEP_TIMEOUT:.0f}s") from None
        return msg.decode()

    def close(self) -> None:
        os.close(self.lifeline_w)  # every worker's watchdog exits
        for s, _, _ in self.threads.values():
            s.close()
        try:
            os.killpg(self.pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        # Reap the first worker and any orphan reparented to us (we are a subreaper).
        deadline = time.time() + 5
        while time.time() < deadline:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                try:
                    os.killpg(self.pgid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.01)

    def _cmd(self, t: tuple[int, int], cmd: str, fds: list[int] | None = None) -> str:
        sock = self.threads[t][0]
        if fds:
            socket.send_fds(sock, [cmd.encode()], fds)
        else:
            sock.send(cmd.encode())
        return self._recv(sock, cmd.split()[0])

    def _new_peer(self) -> tuple[socket.socket, socket.socket]:
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        a.settimeout(STEP_TIMEOUT)
        return a, b

    def _kill_proc(self, pid: int) -> None:
        for t in [t for t in self.threads if t[0] == pid]:
            self.threads.pop(t)[0].close()
            self.blocked.discard(t)
        self.procs.pop(pid, None)

    def _collect_wakes(self, expect: int, wait: float) -> list[tuple[int, int]]:
        """Threads that answered `woke` (their futex wait returned)."""
        woke = []
        deadline = time.time() + wait
        while self.blocked:
            left = deadline - time.time()
            if len(woke) >= expect and left <= 0:
                break
            socks = {self.threads[t][0]: t for t in self.blocked}
            r, _, _ = select.select(list(socks), [], [], max(0.0, left) if len(woke) < expect else 0.0)
            if not r:
                break
            for s in r:
                t = socks[s]
                if s.recv(256) == b"woke":
                    self.blocked.discard(t)
                    woke.append(t)
        return woke

    def _is_blocked_in_futex(self, t: tuple[int, int]) -> bool:
        _, ospid, tid = self.threads[t]
        try:
            with open(f"/proc/{ospid}/task/{tid}/syscall") as f:
                return f.read().split()[0] == str(SYS_FUTEX)
        except (OSError, IndexError):
            return False

    def do(self, op: oracle.Op, actor, next_pid: int, next_tid_of) -> tuple[str, list[tuple[int, int]]]:
        """Perform one op; returns (outcome, woke). `actor` is (pid, tid) or None; `next_pid` and
        `next_tid_of(pid)` are the ids the contract assigns next (Linux's own are not the model's)."""
        a = op.action
        woke: list[tuple[int, int]] = []
        if a == "switch":
            if op.target is not None:
                self._cmd(op.target, f"pin {op.cpu % self.ncpus_host}")
            return "ok", woke
        pid = actor[0]
        if a == "load":
            return self._cmd(actor, f"load {op.page} {op.word}"), woke
        if a == "store":
            try:
                out = self._cmd(actor, f"store {op.page} {op.word} {op.value}")
            except (ConnectionError, OSError):
                out = ""
            if out == "":  # the process died of SIGSEGV
                self._kill_proc(pid)
                return "SEGV", woke
            return out, woke
        if a == "fork":
            if len(self.procs) >= oracle.MAX_PROCS:
                return "EAGAIN", woke
            ours, theirs = self._new_peer()
            out = self._cmd(actor, "fork", [theirs.fileno()])
            theirs.close()
            _, ospid, tid = self._recv(ours, "hello").split()
            self.threads[(next_pid, 1)] = (ours, int(ospid), int(tid))
            self.procs[next_pid] = int(ospid)
            return f"P{next_pid}", woke
        if a == "spawn":
            tids = [t[1] for t in self.threads if t[0] == pid]
            if len(tids) >= oracle.MAX_THREADS:
                return "EAGAIN", woke
            ours, theirs = self._new_peer()
            self._cmd(actor, "spawn", [theirs.fileno()])
            theirs.close()
            _, _, tid = self._recv(ours, "hello").split()
            new_tid = next_tid_of(pid)
            self.threads[(pid, new_tid)] = (ours, self.procs[pid], int(tid))
            return f"P{pid}.T{new_tid}", woke
        if a == "exit":
            sock = self.threads[actor][0]
            sock.send(b"exit")
            try:
                sock.recv(16)
            except OSError:
                pass
            self._kill_proc(pid)
            return "ok", woke
        if a == "umtx_sleep":
            sock = self.threads[actor][0]
            sock.send(f"sleep {op.page} {op.word} {op.value}".encode())
            deadline = time.time() + STEP_TIMEOUT
            while time.time() < deadline:
                r, _, _ = select.select([sock], [], [], 0.002)
                if r:
                    return sock.recv(256).decode(), woke
                if self._is_blocked_in_futex(actor):
                    self.blocked.add(actor)
                    return "blocked", woke
            raise LinuxError("umtx_sleep neither returned nor blocked in futex within 5s")
        if a == "umtx_wakeup":
            out = self._cmd(actor, f"wake {op.page} {op.word}")
            n = int(out.split()[1])
            return "ok", self._collect_wakes(n, STEP_TIMEOUT if n else 0.0)
        if a in ("procfs_read", "procfs_write"):
            if op.pid not in self.procs:
                return "ESRCH", woke
            addr = self.base[op.page] + 4 * op.word
            try:
                fd = os.open(f"/proc/{self.procs[op.pid]}/mem", os.O_RDWR)
                try:
                    if a == "procfs_read":
                        return f"{struct.unpack('<I', os.pread(fd, 4, addr))[0]:#x}", woke
                    os.pwrite(fd, struct.pack("<I", op.value), addr)
                    return "ok", woke
                finally:
                    os.close(fd)
            except OSError as e:
                raise LinuxError(f"the host refuses /proc/PID/mem {'writes' if a == 'procfs_write' else 'reads'} "
                                 f"({e.strerror}; e.g. proc_mem.force_override=never or ptrace limits)") from None
        if a == "madvise":
            return self._cmd(actor, f"madvise {op.page}"), woke
        if a == "mprotect":
            return self._cmd(actor, f"mprotect {op.page} {op.prot}"), woke
        raise AssertionError(a)


def run_text(text: str, hw: str | None = None) -> dict:
    """A text program (header: `hw cpus=N`; tlb and mode are the host's) on Linux."""
    import re

    from pyvmfuzz import _core

    try:
        info = _core.check_text(text, hw)
    except ValueError as e:
        raise InputError(str(e)) from None
    cpus = int(re.search(r"cpus=(\d+)", info["hw"])[1])
    ops = [ln.split("#")[0].split("->")[0].strip() for ln in text.splitlines()
           if ln.split("#")[0].strip().startswith("cpu")]
    return run_ops(ops, cpus)


def run_ops(ops: list[str], cpus: int, on_step=None) -> dict:
    """Run op lines (no outcomes) on Linux, judging each step with the oracle."""
    orc = oracle.Oracle(cpus)
    m = LinuxMachine(cpus)
    trace, steps, violation = [], [], None
    try:
        for i, line in enumerate(ops, 1):
            try:
                op = oracle.parse_op(line, cpus)
            except ValueError as e:
                raise LinuxError(f"step {i}: {e}") from None
            cur = orc.cpu[op.cpu]
            if op.action != "switch" and cur is None:
                raise LinuxError(f"step {i}: cpu{op.cpu} is idle")
            if op.action == "switch" and op.target is not None:
                t = orc.thread(op.target)
                if t is None or t.state != "runnable":
                    raise LinuxError(f"step {i}: {oracle.thread_name(op.target)} is not runnable")
            actor = None if cur is None else cur.name
            next_tid = lambda pid: orc.procs[pid].next_tid  # noqa: E731
            outcome, woke = m.do(op, actor, orc.next_pid, next_tid)
            names = [oracle.thread_name(t) for t in sorted(woke)]
            steps.append(line)
            trace.append(outcome + (" woke " + ",".join(names) if names else ""))
            v = orc.step(line, outcome, names)
            if on_step:
                on_step(i)
            if v is not None:
                violation = {"kind": v.kind, "step": v.step, "expected": v.expected, "observed": v.observed}
                break
    finally:
        m.close()
    hw = f"hw cpus={cpus} tlb=8 mode=pc64"
    text = "\n".join([hw, "kernel linux"] + [f"{s} -> {o}" for s, o in zip(steps, trace)]) + "\n"
    return {"kernel": "linux", "hw": hw, "steps": steps, "trace": trace, "trace_text": text,
            "violation": violation, "assert_failures": [], "expects": []}


def random_ops(rng, cpus: int, n: int) -> list[str]:
    """A random program generated against the contract's own state (so every step is
    applicable however the host schedules): the oracle follows the expected outcomes."""
    orc = oracle.Oracle(cpus)
    ops = []
    for _ in range(n):
        busy = [c for c in range(cpus) if orc.cpu[c] is not None]
        runnable = [t.name for t in orc.threads() if t.state == "runnable"]
        if not busy or rng.random() < 0.15:
            target = rng.choice(runnable + [None])
            line = f"cpu{rng.randrange(cpus)} switch {'idle' if target is None else oracle.thread_name(target)}"
        else:
            c = rng.choice(busy)
            page = rng.choice(PAGES)
            w = rng.randrange(4)
            v = rng.randrange(3)
            pids = list(range(1, orc.next_pid + 1))
            kind = rng.choices(["load", "store", "fork", "spawn", "exit", "sleep", "wake", "pread", "pwrite",
                                "madvise", "mprotect"], [6, 6, 2, 2, 0.5, 2, 2, 2, 2, 1, 1])[0]
            line = {
                "load": f"cpu{c} load {page}.{w}", "store": f"cpu{c} store {page}.{w} {v:#x}",
                "fork": f"cpu{c} fork", "spawn": f"cpu{c} spawn", "exit": f"cpu{c} exit",
                "sleep": f"cpu{c} umtx_sleep {page}.{w} {v:#x}", "wake": f"cpu{c} umtx_wakeup {page}.{w}",
                "pread": f"cpu{c} procfs_read P{rng.choice(pids)} {page}.{w}",
                "pwrite": f"cpu{c} procfs_write P{rng.choice(pids)} {page}.{w} {v:#x}",
                "madvise": f"cpu{c} madvise {page} dontneed",
                "mprotect": f"cpu{c} mprotect {page} {rng.choice(['r', 'rw'])}",
            }[kind]
        expected = orc.expected_outcome(line)
        woke = []
        if line.split()[1] == "umtx_wakeup":
            woke = [oracle.thread_name(t) for t in sorted(orc._must_wake(oracle.parse_op(line, cpus),
                                                                           orc.cpu[int(line.split()[0][3:])]))]
        if orc.step(line, expected, woke) is not None:
            break
        ops.append(line)
    return ops


def campaign(seconds: int, crashes: str, seed: int, max_steps: int, cpus: int | None, progress=None) -> dict:
    """`pyvmfuzz fuzz --target linux`: random programs (generated against the contract's state)
    on the host kernel until the budget; each violating trace saved once, atomically."""
    import hashlib
    import random

    from pyvmfuzz.campaign.findings import atomic_write

    rng = random.Random(seed)
    start = time.time()
    stats = {"programs": 0, "steps": 0, "found": []}
    while time.time() - start < seconds:
        n = cpus or rng.randrange(1, min(4, len(os.sched_getaffinity(0)) * 2) + 1)
        ops = random_ops(rng, n, rng.randrange(1, max_steps + 1))
        rep = run_ops(ops, n)
        stats["programs"] += 1
        stats["steps"] += len(rep["steps"])
        if rep["violation"] is not None:
            v = rep["violation"]
            name = f"linux-{v['kind']}-{hashlib.sha1(rep['trace_text'].encode()).hexdigest()[:12]}.txt"
            path = os.path.join(crashes, name)
            if not os.path.exists(path):
                atomic_write(path, f"# pyvmfuzz finding on Linux: {v['kind']} at step {v['step']}: expected "
                                   f"{v['expected']}, observed {v['observed']}\n" + rep["trace_text"])
                stats["found"].append(path)
        if progress:
            progress(stats, time.time() - start)
    return stats
