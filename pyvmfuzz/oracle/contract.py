"""The oracle: a slow, independent model of the user-visible contract.

Written from the contract (docs/contract.md §2, §4) and docs/readings.md only -- never from the
Rust core -- so that a disagreement between the two means something.  It knows
nothing about TLBs, pmaps, shadow chains or frames: each process simply *has*
its private words, there is one shared shm0, and the question for every step is
"what must a user have seen?".

A trace (the text a run prints) is itself a program with observed outcomes:

    hw cpus=2 tlb=8 mode=pc64
    kernel pre-385c96e4
    cpu0 fork -> P2
    cpu0 umtx_wakeup shm0.1 -> ok woke P1.T2

`judge(text)` returns the first `Violation` or None; `Oracle` does the same one
step at a time.  A malformed or inapplicable line raises `TraceError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

DATA_PAGES = ("data0", "data1", "data2", "data3")
TEXT_PAGES = ("text0", "text1")
PRIVATE_PAGES = DATA_PAGES + TEXT_PAGES
SHARED_PAGES = ("shm0",)   # shared mappings (docs/contract.md §3.4's file0 joins them once it exists)
PAGES = PRIVATE_PAGES + SHARED_PAGES
WORDS = 4
MAX_PROCS = 8      # live processes
MAX_THREADS = 4    # live threads per process
MAX_CPUS = 8
PERSONALITIES = ("dragonfly", "linux")   # docs/contract.md §4.2; dragonfly is the default


def original(page: str, word: int) -> int:
    """Content of a private page before anyone wrote it (also what madvise restores)."""
    if page in TEXT_PAGES:
        return 0xF000 + 16 * int(page[4:]) + word   # the file; it never changes
    return 0                                        # anonymous zero-fill


INITIAL_PROT = {p: "r" if p in TEXT_PAGES else "rw" for p in PAGES}


@dataclass(frozen=True)
class Violation:
    kind: str        # stale-read | protection | outcome | lost-wakeup
    step: int        # 1-based, over op lines only
    expected: str    # outcome strings in trace syntax
    observed: str


class TraceError(ValueError):
    """Malformed trace, or a step that cannot happen in the oracle's state."""


# ---------------------------------------------------------------- parsing

_VALUE = re.compile(r"0[xX][0-9a-fA-F]+|[0-9]+")
_ADDR = re.compile(r"(data[0-3]|text[01]|shm0)\.([0-3])")
_THREAD = re.compile(r"P([0-9]+)\.T([0-9]+)")
_PID = re.compile(r"P([0-9]+)")
_CPU = re.compile(r"cpu([0-9]+)")

# action -> the kinds of its arguments, in order
_ARGS = {
    "switch": ("target",),
    "load": ("addr",),
    "store": ("addr", "value"),
    "fork": (),
    "spawn": (),
    "exit": (),
    "umtx_sleep": ("addr", "value"),
    "umtx_wakeup": ("addr",),
    "procfs_read": ("pid", "addr"),
    "procfs_write": ("pid", "addr", "value"),
    "madvise": ("page", "dontneed"),
    "mprotect": ("page", "prot"),
}


@dataclass(frozen=True)
class Op:
    cpu: int
    action: str
    page: str | None = None
    word: int | None = None
    value: int | None = None
    pid: int | None = None                    # procfs target
    target: tuple[int, int] | None = None     # switch target; None means idle
    prot: str | None = None                   # mprotect


def parse_value(tok: str) -> int:
    if not _VALUE.fullmatch(tok):
        raise ValueError(f"bad value {tok!r}")
    v = int(tok, 16) if tok[:2].lower() == "0x" else int(tok, 10)
    if v >= 1 << 32:
        raise ValueError(f"value {tok} does not fit a 32-bit word")
    return v


def parse_thread(tok: str) -> tuple[int, int]:
    m = _THREAD.fullmatch(tok)
    if not m:
        raise ValueError(f"bad thread {tok!r} (want Pn.Tm)")
    return int(m[1]), int(m[2])


def thread_name(t: tuple[int, int]) -> str:
    return f"P{t[0]}.T{t[1]}"


def parse_op(text: str, cpus: int) -> Op:
    """Parse `cpuN ACTION ARGS` (no outcome); raises ValueError with the reason."""
    toks = text.split()
    if not toks:
        raise ValueError("empty op")
    m = _CPU.fullmatch(toks[0])
    if not m:
        raise ValueError(f"bad cpu {toks[0]!r}")
    cpu = int(m[1])
    if cpu >= cpus:
        raise ValueError(f"cpu{cpu} beyond the {cpus} CPUs of the header")
    if len(toks) < 2 or toks[1] not in _ARGS:
        raise ValueError(f"unknown op {toks[1] if len(toks) > 1 else ''!r}")
    action, args, kinds = toks[1], toks[2:], _ARGS[toks[1]]
    if len(args) != len(kinds):
        raise ValueError(f"{action} takes {len(kinds)} argument(s), got {len(args)}")
    f: dict = {}
    for kind, tok in zip(kinds, args):
        if kind == "target":
            f["target"] = None if tok == "idle" else parse_thread(tok)
        elif kind == "addr":
            a = _ADDR.fullmatch(tok)
            if not a:
                raise ValueError(f"bad address {tok!r} (want PAGE.W)")
            f["page"], f["word"] = a[1], int(a[2])
        elif kind == "page":
            if tok not in PAGES:
                raise ValueError(f"bad page {tok!r}")
            f["page"] = tok
        elif kind == "value":
            f["value"] = parse_value(tok)
        elif kind == "pid":
            p = _PID.fullmatch(tok)
            if not p:
                raise ValueError(f"bad pid {tok!r} (want Pn)")
            f["pid"] = int(p[1])
        elif kind == "dontneed" and tok != "dontneed":
            raise ValueError(f"madvise advice must be dontneed, got {tok!r}")
        elif kind == "prot":
            if tok not in ("r", "rw"):
                raise ValueError(f"mprotect takes r or rw, got {tok!r}")
            f["prot"] = tok
    return Op(cpu, action, **f)


def format_outcome(outcome: str, woke) -> str:
    """`ok` / `ok woke P1.T2,P3.T1` -- the trace syntax, wake list sorted."""
    woke = sorted(woke)
    return outcome + (" woke " + ",".join(map(thread_name, woke)) if woke else "")


def is_value(outcome: str) -> bool:
    return bool(_VALUE.fullmatch(outcome))


# ---------------------------------------------------------------- state

@dataclass
class Thread:
    pid: int
    tid: int
    state: str = "runnable"          # runnable | running | blocked
    cpu: int | None = None           # set while running
    key: tuple | None = None         # set while blocked: (pid, page, w) or ("shm0", w)

    @property
    def name(self) -> tuple[int, int]:
        return (self.pid, self.tid)


@dataclass
class Process:
    pid: int
    mem: dict[str, list[int]]        # private pages only; shm0 lives in the Oracle
    prot: dict[str, str]             # every page, "r" or "rw"
    threads: dict[int, Thread] = field(default_factory=dict)
    next_tid: int = 1                # tids count up and are never reused

    def new_thread(self) -> Thread:
        t = Thread(self.pid, self.next_tid)
        self.threads[t.tid] = t
        self.next_tid += 1
        return t


class Oracle:
    """The contract, one step at a time."""

    def __init__(self, cpus: int = 2, os: str = "dragonfly"):
        if not 1 <= cpus <= MAX_CPUS:
            raise ValueError(f"cpus must be 1..{MAX_CPUS}")
        if os not in PERSONALITIES:
            raise ValueError(f"os must be one of {', '.join(PERSONALITIES)}")
        self.os = os                                    # docs/contract.md §4.2 personality
        self.ncpus = cpus
        self.cpu: list[Thread | None] = [None] * cpus   # who runs on each CPU
        self.procs: dict[int, Process] = {}             # live processes only
        self.shm = [0] * WORDS                          # one shm0 for everybody
        self.next_pid = 1                               # pids are never reused
        self.steps = 0
        self.ended: Violation | None = None
        p1 = self._new_process(
            {p: [original(p, w) for w in range(WORDS)] for p in PRIVATE_PAGES},
            dict(INITIAL_PROT))
        self._run(p1.new_thread(), 0)

    # -- small helpers

    def _new_process(self, mem, prot) -> Process:
        p = Process(self.next_pid, mem, prot)
        self.procs[p.pid] = p
        self.next_pid += 1
        return p

    def _run(self, t: Thread, cpu: int) -> None:
        t.state, t.cpu, t.key = "running", cpu, None
        self.cpu[cpu] = t

    def thread(self, name: tuple[int, int]) -> Thread | None:
        p = self.procs.get(name[0])
        return p.threads.get(name[1]) if p else None

    def threads(self):
        for p in self.procs.values():
            yield from p.threads.values()

    def read(self, proc: Process, page: str, w: int) -> int:
        return self.shm[w] if page == "shm0" else proc.mem[page][w]

    def write(self, proc: Process, page: str, w: int, v: int) -> None:
        if page == "shm0":
            self.shm[w] = v
        else:
            proc.mem[page][w] = v

    @staticmethod
    def key(proc: Process, page: str, w: int) -> tuple:
        # shm0 is one word for all processes; a private word is per process
        return ("shm0", w) if page == "shm0" else (proc.pid, page, w)

    def _kill(self, proc: Process) -> None:
        """exit or SEGV: all threads go (sleepers too); their CPUs become idle."""
        for t in proc.threads.values():
            if t.cpu is not None:
                self.cpu[t.cpu] = None
        del self.procs[proc.pid]

    # -- the contract

    def _actor(self, op: Op, where: int) -> Thread | None:
        """The thread performing op; checks the op is applicable at all."""
        t = self.cpu[op.cpu]
        if op.action != "switch":
            if t is None:
                raise TraceError(f"line {where}: cpu{op.cpu} is idle")
            return t
        if op.target is not None:
            target = self.thread(op.target)
            if target is None:
                raise TraceError(f"line {where}: no such thread {thread_name(op.target)}")
            if target.state != "runnable":
                raise TraceError(f"line {where}: {thread_name(op.target)} is not runnable "
                                 f"({target.state})")
        return t

    def _expected(self, op: Op, t: Thread | None) -> str:
        """The one outcome the contract allows for op, performed by t."""
        a = op.action
        proc = self.procs[t.pid] if t else None
        if a in ("switch", "exit", "umtx_wakeup", "madvise", "mprotect"):
            return "ok"
        if a == "load":                       # every page is readable
            return hex(self.read(proc, op.page, op.word))
        if a == "store":
            return "ok" if proc.prot[op.page] == "rw" else "SEGV"
        if a == "fork":
            return "EAGAIN" if len(self.procs) >= MAX_PROCS else f"P{self.next_pid}"
        if a == "spawn":
            if len(proc.threads) >= MAX_THREADS:
                return "EAGAIN"
            return f"P{proc.pid}.T{proc.next_tid}"
        if a == "umtx_sleep":
            # DragonFly faults the page READ|WRITE and fails where prot lacks write. Linux's
            # FUTEX_WAIT only reads the word: a private futex keys on (mm, address) with no
            # page lookup, a shared one on shm0 (shmem, not PageAnon) retries read-only since
            # 9ea71503a8ed -- so it compares and blocks like on a writable page (docs/contract.md §4.2;
            # host evidence in tests/test_oracle_lin.py::test_linux_futex_on_readonly_pages).
            if proc.prot[op.page] != "rw" and self.os == "dragonfly":
                return "EFAULT"
            return "blocked" if self.read(proc, op.page, op.word) == op.value else "EBUSY"
        if a in ("procfs_read", "procfs_write"):
            target = self.procs.get(op.pid)
            if target is None:                # dead or never existed
                return "ESRCH"
            if a == "procfs_read":
                return hex(self.read(target, op.page, op.word))
            # docs/contract.md §4.2: a debugger write into a *shared* mapping whose prot lacks write.
            # DragonFly's VM_PROT_OVERRIDE_WRITE writes up to max prot (ok); Linux's FOLL_FORCE
            # breaks copy-on-write only in private mappings (mm/gup.c check_vma_flags), so the
            # write through /proc/PID/mem fails: EIO, and nothing is written. A private page
            # (data after mprotect r, text) takes the write under both personalities.
            if (self.os == "linux" and op.page in SHARED_PAGES
                    and target.prot[op.page] != "rw"):
                return "EIO"
            return "ok"
        raise AssertionError(a)

    def _apply(self, op: Op, t: Thread | None, expected: str) -> None:
        """The op's own effect, given that its outcome was the expected one."""
        a = op.action
        proc = self.procs[t.pid] if t else None
        if a == "switch":
            if t is not None:                 # the previous thread becomes runnable
                t.state, t.cpu = "runnable", None
            self.cpu[op.cpu] = None
            if op.target is not None:
                self._run(self.thread(op.target), op.cpu)
        elif a == "store":
            if expected == "SEGV":
                self._kill(proc)
            else:
                self.write(proc, op.page, op.word, op.value)
        elif a == "fork" and expected != "EAGAIN":
            # the child gets a copy of private memory and prot; shm0 stays shared
            child = self._new_process({p: list(ws) for p, ws in proc.mem.items()},
                                      dict(proc.prot))
            child.new_thread()
        elif a == "spawn" and expected != "EAGAIN":
            proc.new_thread()
        elif a == "exit":
            self._kill(proc)
        elif a == "umtx_sleep" and expected == "blocked":
            self.cpu[op.cpu] = None
            t.state, t.cpu, t.key = "blocked", None, self.key(proc, op.page, op.word)
        elif a == "procfs_write" and expected == "ok":
            # a debugger write ignores current prot (under os linux, on private pages only:
            # see _expected); text changes only in the target's private copy (the file
            # itself never changes)
            self.write(self.procs[op.pid], op.page, op.word, op.value)
        elif a == "madvise" and op.page != "shm0":
            proc.mem[op.page] = [original(op.page, w) for w in range(WORDS)]
        elif a == "mprotect":
            proc.prot[op.page] = op.prot

    def _must_wake(self, op: Op, t: Thread) -> set[tuple[int, int]]:
        if op.action != "umtx_wakeup":
            return set()
        k = self.key(self.procs[t.pid], op.page, op.word)
        return {s.name for s in self.threads() if s.state == "blocked" and s.key == k}

    @staticmethod
    def _mismatch(op: Op, expected: str, observed: str) -> str | None:
        """Kind of the difference between expected and observed outcome, or None."""
        if op.action in ("load", "procfs_read") and is_value(expected):
            if is_value(observed):
                same = parse_value(observed) == parse_value(expected)
                return None if same else "stale-read"
            if op.action == "load" and observed == "SEGV":
                return "protection"
            return "outcome"
        if op.action == "store" and {expected, observed} == {"ok", "SEGV"}:
            return "protection"
        return None if observed == expected else "outcome"

    def expected_outcome(self, op_line: str) -> str:
        """What op_line must give now (no state change)."""
        op = self._parse(op_line, self.steps + 1)
        return self._expected(op, self._actor(op, self.steps + 1))

    def _parse(self, op_line: str, where: int) -> Op:
        try:
            return parse_op(op_line, self.ncpus)
        except ValueError as e:
            raise TraceError(f"line {where}: {e}") from None

    def step(self, op_line: str, outcome: str, woke: list[str] = (),
             *, line: int | None = None) -> Violation | None:
        """Judge one op and its observed outcome and wake list; update the state.

        `line` only labels TraceError messages (default: the step number).
        """
        if self.ended is not None:
            raise RuntimeError(f"judgement already ended at step {self.ended.step}")
        n = self.steps + 1
        where = n if line is None else line
        op = self._parse(op_line, where)
        observed = outcome.strip()
        if not observed or " " in observed:
            raise TraceError(f"line {where}: missing or bad outcome {outcome!r}")
        try:
            woken = [parse_thread(w.strip()) for w in woke]
        except ValueError as e:
            raise TraceError(f"line {where}: {e}") from None
        t = self._actor(op, where)
        self.steps = n
        observed_full = observed + (" woke " + ",".join(map(thread_name, woken))
                                    if woken else "")

        # 1. the outcome itself: stale-read, protection, outcome
        expected = self._expected(op, t)
        kind = self._mismatch(op, expected, observed)
        if kind:
            return self._end(Violation(kind, n, expected, observed_full))

        # 2. the op's own effect, then the wake list (only blocked threads can wake;
        #    the performer was running, so it can never be in its own wake list)
        blocked_before = {s.name for s in self.threads() if s.state == "blocked"}
        must_wake = self._must_wake(op, t)
        self._apply(op, t, expected)
        bad = [w for w in woken if w not in blocked_before or self.thread(w) is None
               or woken.count(w) > 1]
        if bad:
            good = {w for w in woken if w not in bad}
            return self._end(Violation("outcome", n, format_outcome(expected, good),
                                       observed_full))
        for w in woken:                       # adopt: spurious or due, it now runs
            s = self.thread(w)
            s.state, s.key = "runnable", None

        # 3. lost-wakeup: a sleeper umtx_wakeup was bound to wake, not in the list
        if must_wake - set(woken):
            return self._end(Violation("lost-wakeup", n,
                                       format_outcome(expected, must_wake | set(woken)),
                                       observed_full))
        return None

    def _end(self, v: Violation) -> Violation:
        self.ended = v
        return v

    # -- state copies, for the linearizability search (linearizability.py)

    def clone(self) -> "Oracle":
        """An independent copy of the whole state (the search branches on it)."""
        o = Oracle.__new__(Oracle)
        o.os, o.ncpus, o.shm = self.os, self.ncpus, list(self.shm)
        o.next_pid, o.steps, o.ended = self.next_pid, self.steps, self.ended
        o.procs = {}
        for pid, p in self.procs.items():
            q = Process(pid, {pg: list(ws) for pg, ws in p.mem.items()}, dict(p.prot),
                        {tid: Thread(t.pid, t.tid, t.state, t.cpu, t.key)
                         for tid, t in p.threads.items()}, p.next_tid)
            o.procs[pid] = q
        o.cpu = [None if t is None else o.procs[t.pid].threads[t.tid] for t in self.cpu]
        return o

    def fingerprint(self) -> tuple:
        """A hashable summary of everything the contract's future outcomes depend on."""
        return (
            tuple(None if t is None else t.name for t in self.cpu),
            tuple(self.shm), self.next_pid,
            tuple((pid, p.next_tid,
                   tuple(tuple(p.mem[pg]) for pg in PRIVATE_PAGES),
                   tuple(p.prot[pg] for pg in PAGES),
                   tuple((t.tid, t.state, t.cpu, t.key) for t in p.threads.values()))
                  for pid, p in sorted(self.procs.items())),
        )


# ---------------------------------------------------------------- traces

def parse_trace(text: str) -> tuple[int, list[tuple[int, str, str, list[str]]]]:
    """Header CPU count and the steps as (line number, op text, outcome, wake list).

    Every line is checked for form before anything runs, as for programs. Sequential traces
    only; interleaved lines (docs/contract.md §3.2) are linearizability.py's.
    """
    return parse_trace_os(text)[:2]


def trace_lines(text: str) -> tuple[int, list[tuple[int, str, str, list[str]]], str]:
    """A trace's form: (cpus, [(line number, op text, outcome, woke names)], os). Header lines
    `hw`, `kernel`, `expect`, `os` (docs/contract.md §2.1, §4.2) before the first op; every op line carries
    `-> OUTCOME [woke T,...]`. Raises TraceError naming the line. Ops are not parsed here."""
    cpus, steps, osname = 2, [], "dragonfly"
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        head = line.split()[0]
        if head in ("hw", "kernel", "expect", "os"):
            if steps:
                raise TraceError(f"line {lineno}: header line after the first op")
            if head == "hw":
                cpus = _parse_hw(line, lineno, cpus)
            elif head == "os":
                toks = line.split()
                if len(toks) != 2 or toks[1] not in PERSONALITIES:
                    raise TraceError(f"line {lineno}: bad os line (want `os linux` or `os dragonfly`)")
                osname = toks[1]
            continue
        if "->" not in line:
            raise TraceError(f"line {lineno}: missing outcome (`-> OUTCOME`)")
        op_text, _, rest = line.partition("->")
        toks = rest.split()
        if not toks or (len(toks) > 1 and (toks[1] != "woke" or len(toks) < 3)):
            raise TraceError(f"line {lineno}: bad outcome {rest.strip()!r}")
        woke = "".join(toks[2:]).split(",") if len(toks) > 1 else []
        steps.append((lineno, op_text.strip(), toks[0], woke))
    return cpus, steps, osname


def parse_trace_os(text: str) -> tuple[int, list[tuple[int, str, str, list[str]]], str]:
    """parse_trace, plus the `os` header's personality (docs/contract.md §4.2; default dragonfly)."""
    cpus, steps, osname = trace_lines(text)
    for lineno, op_text, _, woke in steps:
        try:
            parse_op(op_text, cpus)
            for w in woke:
                parse_thread(w)
        except ValueError as e:
            raise TraceError(f"line {lineno}: {e}") from None
    return cpus, steps, osname


def _parse_hw(line: str, lineno: int, cpus: int) -> int:
    for kv in line.split()[1:]:
        k, _, v = kv.partition("=")
        ok = ((k == "cpus" and v.isdigit() and 1 <= int(v) <= MAX_CPUS)
              or (k == "tlb" and v.isdigit() and 1 <= int(v) <= 64)
              or (k == "mode" and v in ("pc64", "tagged")))
        if not ok:
            raise TraceError(f"line {lineno}: bad hw setting {kv!r}")
        if k == "cpus":
            cpus = int(v)
    return cpus


def judge(trace_text: str, os: str | None = None) -> Violation | None:
    """The first violation in a sequential trace, or None if every observation is allowed.

    `os` overrides the trace's `os` header (docs/contract.md §4.2). The package's `oracle.judge` is
    linearizability.judge, which is this judgement on traces without docs/contract.md §3.2 lines.
    """
    cpus, steps, osname = parse_trace_os(trace_text)
    if os is not None:
        if os not in PERSONALITIES:
            raise TraceError(f"unknown os {os!r} (want {' or '.join(PERSONALITIES)})")
        osname = os
    oracle = Oracle(cpus, os=osname)
    for lineno, op_text, outcome, woke in steps:
        v = oracle.step(op_text, outcome, woke, line=lineno)
        if v is not None:
            return v            # the run ended here; later lines are not judged
    return None
