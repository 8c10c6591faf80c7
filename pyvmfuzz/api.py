"""The typed Python API: programs as values, runs as reports.

    >>> import pyvmfuzz
    >>> p = pyvmfuzz.Program.parse("cpu0 store data0.0 0x1\\ncpu0 load data0.0\\n")
    >>> p.steps[0].addr, p.steps[0].value
    (Addr(page='data0', word=0), 1)
    >>> pyvmfuzz.run(p).trace
    ('ok', '0x1')

Programs are parsed by the Rust core (the one grammar, docs/contract.md §2.3) and held as frozen
dataclasses; `Program.text()` prints the canonical text form, which parses back to an equal
Program. Bad input raises `InputError` with `.line` and `.reason`."""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Union, cast

from pyvmfuzz import _core, layout
from pyvmfuzz.programs import InputError, header_problem

IDLE: Literal["idle"] = "idle"
Mode = Literal["pc64", "tagged"]
OsName = Literal["dragonfly", "linux"]


def _core_error(e: ValueError) -> InputError:
    return InputError.from_core(e)


@dataclass(frozen=True, order=True)
class Addr:
    """A word of the layout: `PAGE.W` (docs/contract.md §2.1); page in `layout.PAGES`, word 0..3."""

    page: str
    word: int

    def __post_init__(self):
        if self.page not in layout.PAGES:
            raise ValueError(f"unknown page '{self.page}'")
        if not (isinstance(self.word, int) and 0 <= self.word < layout.WORDS):
            raise ValueError(f"bad word '{self.word}' (0..{layout.WORDS - 1})")

    def __str__(self) -> str:
        return f"{self.page}.{self.word}"

    @classmethod
    def parse(cls, s: str) -> Addr:
        page, _, word = s.partition(".")
        return cls(page, int(word))


@dataclass(frozen=True, order=True)
class Thread:
    """A thread `P<pid>.T<tid>` (both from 1, docs/contract.md §2.1)."""

    pid: int
    tid: int

    def __str__(self) -> str:
        return f"P{self.pid}.T{self.tid}"

    @classmethod
    def parse(cls, s: str) -> Thread:
        p, _, t = s.partition(".")
        if not (p[:1] == "P" and t[:1] == "T" and p[1:].isdigit() and t[1:].isdigit()):
            raise ValueError(f"bad thread '{s}'")
        return cls(int(p[1:]), int(t[1:]))


def _outcome(s: str) -> str:
    """Canonical outcome text: values in lowercase hex (docs/contract.md §2.3)."""
    if s[:2] in ("0x", "0X"):
        return f"{int(s, 16):#x}"
    return f"{int(s):#x}" if s.isdigit() else s


@dataclass(frozen=True)
class Assertion:
    """`-> OUTCOME [woke T,...]` on an op line: checked on replay; the wake list only where
    written (woke=None). OUTCOME is a value (`0x5`), `P<pid>`, `P<pid>.T<tid>` or one of
    `layout.OUTCOME_WORDS` (`paused`: docs/contract.md §3.2)."""

    outcome: str
    woke: tuple[Thread, ...] | None = None

    def __str__(self) -> str:
        return self.outcome + ("" if not self.woke else " woke " + ",".join(map(str, self.woke)))

    @classmethod
    def parse(cls, s: str) -> Assertion:
        toks = s.split()
        if len(toks) == 1:
            return cls(_outcome(toks[0]))
        if len(toks) == 3 and toks[1] == "woke":
            return cls(_outcome(toks[0]), tuple(sorted(Thread.parse(t) for t in toks[2].split(","))))
        raise ValueError(f"bad outcome assertion '{s}'")


_FIELDS = {"target": "target", "addr": "addr", "value": "value", "pid": "pid", "page": "page", "to": "to", "prot": "prot"}


@dataclass(frozen=True, repr=False)
class Step:
    """One op line: `cpuN OP ARGS [until POINT] [-> ASSERTION]` (docs/contract.md §2.2, §3.2).

    Only the fields of `op`'s grammar (`layout.OPS[op]`) are set; the others are None:
    `target` (switch: a Thread or "idle"), `addr` (load, store, umtx_*, procfs_*),
    `value` (u32: store, umtx_sleep, procfs_write), `pid` (procfs_*, pageout), `page` (madvise,
    mprotect and docs/contract.md §3.4's munmap, mmap, mremap, msync, pageout), `to` (mremap's
    destination page), `prot` ("r" or "rw": mprotect). `until` is a yield point of `op`
    (`layout.points_of(op)`); `resume` may name any point. Raises ValueError when the fields do
    not fit the op."""

    cpu: int
    op: str
    target: Thread | Literal["idle"] | None = None
    addr: Addr | None = None
    pid: int | None = None
    page: str | None = None
    to: str | None = None
    value: int | None = None
    prot: Literal["r", "rw"] | None = None
    until: str | None = None
    assertion: Assertion | None = None

    def __post_init__(self):
        if self.op not in layout.OPS:
            raise ValueError(f"unknown operation '{self.op}'")
        if not (isinstance(self.cpu, int) and 0 <= self.cpu < layout.MAX_CPUS):
            raise ValueError(f"bad cpu {self.cpu!r} (0..{layout.MAX_CPUS - 1})")
        want = {a for a in layout.OPS[self.op] if a in _FIELDS}
        for f in _FIELDS:
            given = getattr(self, f) is not None
            if given != (f in want):
                raise ValueError(f"{self.op}: {'missing' if not given else 'unexpected'} argument '{f}'")
        if self.value is not None and not (isinstance(self.value, int) and 0 <= self.value < 1 << 32):
            raise ValueError(f"bad value {self.value!r} (u32)")
        if self.pid is not None and not (isinstance(self.pid, int) and self.pid >= 1):
            raise ValueError(f"bad pid {self.pid!r}")
        for pg in (self.page, self.to):
            if pg is not None and pg not in layout.PAGES:
                raise ValueError(f"unknown page '{pg}'")
        if self.prot is not None and self.prot not in ("r", "rw"):
            raise ValueError(f"bad protection '{self.prot}' (r or rw)")
        if self.target is not None and self.target != IDLE and not isinstance(self.target, Thread):
            raise ValueError(f"bad switch target {self.target!r}")
        if self.until is not None:
            pts = tuple(layout.POINTS) if self.op == "resume" else layout.points_of(self.op)
            if self.until not in pts:
                raise ValueError(f"{self.op} has no yield point '{self.until}' (its points: {', '.join(pts)})")

    @property
    def args(self) -> tuple[str, ...]:
        """The argument tokens in text order (`("data0.1", "0x5")` for a store)."""
        out = []
        for a in layout.OPS[self.op]:
            v = "dontneed" if a == "advice" else getattr(self, a)
            out.append(f"{v:#x}" if a == "value" else f"P{v}" if a == "pid" else str(v))
        return tuple(out)

    @property
    def touched_page(self) -> str | None:
        """The page the step names (through `addr` or `page`), or None."""
        return self.addr.page if self.addr is not None else self.page

    def operation(self) -> str:
        """The line without `cpuN` and assertion: `store data0.1 0x5 until pmap_enter`."""
        s = " ".join((self.op,) + self.args)
        return s + (f" until {self.until}" if self.until else "")

    def text(self, assertion: bool = True) -> str:
        """The canonical line (with its assertion unless `assertion=False`)."""
        s = f"cpu{self.cpu} {self.operation()}"
        return s + (f" -> {self.assertion}" if assertion and self.assertion is not None else "")

    __str__ = text

    def __repr__(self) -> str:  # only the fields the op uses
        kw = [f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self)
              if f.name in ("cpu", "op") or getattr(self, f.name) is not None]
        return f"Step({', '.join(kw)})"

    def _repr_pretty_(self, p, cycle) -> None:
        p.text(repr(self))

    def replace(self, **changes) -> Step:
        return dataclasses.replace(self, **changes)

    @classmethod
    def parse(cls, line: str) -> Step:
        """Parse one canonical op line (as the core prints it). For user text use
        `Program.parse`, which validates with the core and reports the line number."""
        body, arrow, asserted = line.partition("->")
        toks = body.split()
        until = None
        if len(toks) >= 2 and toks[-2] == "until":
            until, toks = toks[-1], toks[:-2]
        if len(toks) < 2 or not toks[0].startswith("cpu") or not toks[0][3:].isdigit():
            raise ValueError(f"bad op line '{line}'")
        op, args = toks[1], toks[2:]
        grammar = layout.OPS.get(op)
        if grammar is None:
            raise ValueError(f"unknown operation '{op}'")
        if len(args) != len(grammar):
            raise ValueError(f"usage: cpuN {op} {' '.join(a.upper() for a in grammar)}")
        kw: dict = {}
        for kind, tok in zip(grammar, args):
            if kind == "target":
                kw["target"] = IDLE if tok == IDLE else Thread.parse(tok)
            elif kind == "addr":
                kw["addr"] = Addr.parse(tok)
            elif kind == "value":
                kw["value"] = int(tok, 0) if tok[:2].lower() == "0x" else int(tok)
            elif kind == "pid":
                kw["pid"] = int(tok[1:])
            elif kind in ("page", "to"):
                kw[kind] = tok
            elif kind == "prot":
                kw["prot"] = tok
        a = Assertion.parse(asserted.strip()) if arrow else None
        return cls(int(toks[0][3:]), op, until=until, assertion=a, **kw)


@dataclass(frozen=True)
class HwSpec:
    """The header's `hw` keys as written (None: not given; docs/contract.md §2.1). `resolve()` fills the
    defaults (`layout.HW_DEFAULT`: 2 CPUs, 8 TLB entries, pc64)."""

    cpus: int | None = None
    tlb: int | None = None
    mode: Mode | None = None

    def __bool__(self) -> bool:
        return any(v is not None for v in (self.cpus, self.tlb, self.mode))

    def __str__(self) -> str:
        keys = [f"{k}={v}" for k, v in (("cpus", self.cpus), ("tlb", self.tlb), ("mode", self.mode)) if v is not None]
        return "hw " + " ".join(keys) if keys else ""

    def resolve(self) -> HwSpec:
        c, t, m = layout.HW_DEFAULT
        return HwSpec(self.cpus or c, self.tlb or t, self.mode or cast(Mode, m))

    @classmethod
    def parse(cls, s: str) -> HwSpec:
        """`cpus=3,tlb=4` or `hw cpus=3 tlb=4 mode=tagged` (values unchecked here; the core checks)."""
        kw: dict = {}
        for item in s.replace(",", " ").split():
            if item == "hw":
                continue
            k, _, v = item.partition("=")
            kw[k] = v if k == "mode" else int(v)
        return cls(**kw)


@dataclass(frozen=True)
class Expect:
    """`expect KERNEL clean` (kind and step None) or `expect KERNEL KIND STEP` (docs/contract.md §2.3)."""

    kernel: str
    kind: str | None = None
    step: int | None = None

    @property
    def clean(self) -> bool:
        return self.kind is None

    def __str__(self) -> str:
        return f"expect {self.kernel} " + ("clean" if self.kind is None else f"{self.kind} {self.step}")


def _split_os(text: str) -> tuple[str, str | None]:
    """Take `os` header lines out (blanked, so line numbers stay) while the core does not parse
    them (`layout.CORE_HEADERS`); docs/contract.md §4.2."""
    if "os" in layout.CORE_HEADERS:
        return text, None
    lines, os_name, seen_op = text.splitlines(), None, False
    for i, raw in enumerate(lines):
        toks = raw.split("#")[0].split()
        if not toks:
            continue
        if toks[0].startswith("cpu"):
            seen_op = True
        if toks[0] != "os":
            continue
        if seen_op:
            raise InputError(f"line {i + 1}: header line 'os' after the first op line")
        if len(toks) != 2 or toks[1] not in layout.OS_NAMES:
            raise InputError(f"line {i + 1}: usage: os {'|'.join(layout.OS_NAMES)}")
        os_name, lines[i] = toks[1], ""
    return "\n".join(lines) + "\n", os_name


@dataclass(frozen=True, repr=False)
class Program:
    """A program: header (hw keys, kernel, os personality, expect lines) and its op lines.

    `Program.parse(text)` / `Program.from_bytes(data)` build one; `.text()` and `.bytes()`
    print it; `pyvmfuzz.run(program)` runs it. Steps are numbered from 1 over op lines."""

    steps: tuple[Step, ...] = ()
    hw: HwSpec = field(default_factory=HwSpec)
    kernel: str | None = None
    os: OsName | None = None
    expects: tuple[Expect, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "steps", tuple(self.steps))
        object.__setattr__(self, "expects", tuple(self.expects))
        if self.kernel is not None and self.kernel not in layout.KERNELS:
            # a `KERNEL+ACTION` variant, by its canonical name (as the core's parser keeps it)
            object.__setattr__(self, "kernel", _core.kernel_name(self.kernel))
        if self.os is not None and self.os not in layout.OS_NAMES:
            raise ValueError(f"unknown os '{self.os}' ({', '.join(layout.OS_NAMES)})")

    @classmethod
    def parse(cls, text: str, hw: str | None = None) -> Program:
        """Parse the text form (docs/contract.md §2.3). Every CPU named must exist on the header's hardware
        overlaid with `hw` (`"cpus=3,mode=tagged"`). Raises InputError (`.line`, `.reason`)
        for a malformed line, for text without op lines (`""`: the CLI refuses such a file
        too; the empty program, a value to build on, is `Program()`, and
        `Program.from_bytes(b"")` decodes to it) and for contradictory header lines
        (`programs.header_problem`: `kernel` twice with two names, `expect K clean` beside
        `expect K KIND STEP`, an expect step beyond the op lines); TypeError for anything but a
        str (bytes are `Program.from_bytes`)."""
        return cls._parse(text, hw, empty=False)

    @classmethod
    def _parse(cls, text: str, hw: str | None, empty: bool) -> Program:
        if not isinstance(text, str):
            raise TypeError(f"Program.parse takes the text form (str), not {type(text).__name__}"
                            + ("; the byte form is Program.from_bytes" if isinstance(text, (bytes, bytearray)) else ""))
        core_text, os_name = _split_os(text.removeprefix("\ufeff"))
        try:
            facts = _core.check_text(core_text, hw)
            d = _core.parse_text(core_text)
        except ValueError as e:
            raise _core_error(e) from None
        if facts["steps"] == 0 and not empty:
            raise InputError("no operations (an empty program)", reason="no operations (an empty program)")
        problem = header_problem(core_text)
        if problem is not None:
            raise problem
        steps = [Step.parse(s if a is None else f"{s} -> {a}") for _, s, a in d["steps"]]
        cpus, tlb, mode = d["hw"]
        return cls(tuple(steps), HwSpec(cpus, tlb, cast("Mode | None", mode)), d["kernel"],
                   cast("OsName | None", d.get("os", os_name)),
                   tuple(Expect(*e) for e in d["expects"]))

    @classmethod
    def from_bytes(cls, data: builtins.bytes, kernel: str = "fixed", hw: str | None = None) -> Program:
        """Decode a byte-form program (docs/contract.md §2.3: every byte string is a valid program; the
        decoding is state-aware, so it depends on the kernel and hardware). The result's header
        holds the effective hardware and the kernel."""
        try:
            return cls._parse(_core.decode(data, kernel, hw), None, empty=True)
        except ValueError as e:
            raise _core_error(e) from None

    def header(self) -> list[str]:
        out = [str(self.hw)] if self.hw else []
        out += [f"kernel {self.kernel}"] if self.kernel else []
        out += [f"os {self.os}"] if self.os else []
        return out + [str(e) for e in self.expects]

    def text(self, assertions: bool = True) -> str:
        """The canonical text form (header lines, then one op line per step)."""
        return "".join(ln + "\n" for ln in self.header() + [s.text(assertions) for s in self.steps])

    __str__ = text

    def _core_text(self) -> str:
        if "os" in layout.CORE_HEADERS or self.os is None:
            return self.text()
        return dataclasses.replace(self, os=None).text()

    def bytes(self, kernel: str | None = None, hw: str | None = None) -> builtins.bytes:
        """The byte form that decodes back to these steps under the same kernel and hardware
        (default: the program's `kernel`, else fixed). Raises InputError when a step is not
        applicable in the state it is reached in."""
        try:
            return _core.encode(self._core_text(), kernel, hw)
        except ValueError as e:
            raise _core_error(e) from None

    def __repr__(self) -> str:
        return f"Program.parse({self.text()!r})"

    def _repr_pretty_(self, p, cycle) -> None:  # Hypothesis/IPython: a falsifying example replays as text
        p.text(repr(self))

    def replace(self, **changes) -> Program:
        return dataclasses.replace(self, **changes)

    def __len__(self) -> int:
        return len(self.steps)


@dataclass(frozen=True)
class Violation:
    """The first violation of a run (docs/contract.md §4): `kind` (one of `layout.KINDS`), `step`
    (1-based), `expected` and `observed` outcomes in trace syntax."""

    kind: str
    step: int
    expected: str
    observed: str


@dataclass(frozen=True)
class AssertFailure:
    """An assertion written on a line that the run did not meet."""

    step: int
    expected: str
    observed: str


@dataclass(frozen=True)
class Report:
    """What a run showed. `program` is the program run (for a byte-form run: the steps
    decoded); `steps` the steps that ran: the run ends at the first violation (docs/contract.md §4), so
    `steps` is `program.steps` up to `violation.step`, or all of them. `trace[i]` is the outcome
    text of `steps[i]` (with its wake list; `"panic"` for a step where a model assertion
    failed)."""

    program: Program
    kernel: str
    hw: str
    trace: tuple[str, ...]
    violation: Violation | None
    assert_failures: tuple[AssertFailure, ...] = ()
    expects: tuple[Expect, ...] = ()
    #: The core-only violation a witness search went past to reach `violation` (else None).
    internal: Violation | None = None

    @property
    def clean(self) -> bool:
        return self.violation is None

    @property
    def verdict(self) -> Literal["clean", "violation"]:
        return "clean" if self.violation is None else "violation"

    @property
    def steps(self) -> tuple[Step, ...]:
        return self.program.steps[: len(self.trace)]

    def observed(self) -> Program:
        """The trace as a replayable program: each step asserting its observed outcome."""
        steps = [s.replace(assertion=Assertion.parse(o) if o != "panic" else None)
                 for s, o in zip(self.program.steps, self.trace)]
        return self.program.replace(steps=tuple(steps), hw=HwSpec.parse(self.hw), kernel=self.kernel)

    def trace_text(self) -> str:
        """The trace as the CLI prints it: header lines, then `STEP -> OUTCOME` per step."""
        lines = [self.hw, f"kernel {self.kernel}"]
        lines += [f"{s.text(False)} -> {o}" if o != "panic" else f"{s.text(False)}  # panic"
                  for s, o in zip(self.program.steps, self.trace)]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict:
        """The `run --json` shape (docs/contract.md §5)."""
        v = self.violation
        return {"kernel": self.kernel, "hw": self.hw, "verdict": self.verdict,
                "violation": None if v is None else dataclasses.asdict(v), "trace": list(self.trace)}

    @classmethod
    def from_core(cls, d: Mapping[str, Any], program: Program | None = None) -> Report:
        """From the dict `_core.run_text` / `run_bytes` / `explain` return."""
        steps = tuple(Step.parse(s) for s in d["steps"])
        if program is None or tuple(s.replace(assertion=None) for s in program.steps[: len(steps)]) != steps:
            program = Program(steps, HwSpec.parse(d["hw"]), d["kernel"])
        def viol(v):
            return None if v is None else Violation(v["kind"], v["step"], v["expected"], v["observed"])

        return cls(program, d["kernel"], d["hw"], tuple(d["trace"]), viol(d["violation"]),
                   tuple(AssertFailure(a["step"], a["expected"], a["observed"]) for a in d["assert_failures"]),
                   tuple(Expect(*e) for e in d["expects"]), viol(d.get("internal")))


ProgramLike = Union[Program, str, builtins.bytes]


def run(program: ProgramLike, kernel: str | None = None, hw: str | None = None) -> Report:
    """Run a program on the model (the Rust core) and judge it.

    `program`: a Program, text (parsed as `Program.parse`) or bytes (the byte form: decoded
    against the live state, stopping at the first violation). `kernel`: one of
    `layout.KERNELS`; None takes the program's `kernel` line, else `fixed`. `hw`: header keys
    overriding the program's (`"cpus=3,tlb=4,mode=tagged"`). Raises InputError for a malformed
    program, a step not applicable when reached, or a bad kernel/hw argument."""
    try:
        if isinstance(program, builtins.bytes):
            return Report.from_core(report(program, kernel, hw))
        if isinstance(program, str):
            program = Program.parse(program, hw)
        return Report.from_core(report(program._core_text(), kernel, hw), program)
    except ValueError as e:
        raise _core_error(e) from None


def report(program: str | builtins.bytes, kernel: str | None = None, hw: str | None = None, *,
           past_internal: bool = False) -> _core.ReportDict:
    """The core's report as a dict (`_core.ReportDict`, the stub's declared keys) of core text
    or a byte-form input: the one place the package runs a program on the core (`run` wraps
    it in `Report`; the tools that keep dicts — campaigns, minimize, explain — call this).
    `past_internal`: run on past a core-only violation to the first user-visible one (text
    only). Raises `_core.InputError` (a ValueError, `.line` and `.reason`)."""
    if isinstance(program, (builtins.bytes, bytearray)):
        if past_internal:
            raise ValueError("past_internal applies to text programs")
        return _core.run_bytes(builtins.bytes(program), kernel, hw)
    return _core.run_text(program, kernel, hw, past_internal)
