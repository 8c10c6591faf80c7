"""Hypothesis strategies over valid programs, for property tests against the model:

    from hypothesis import given
    from pyvmfuzz.strategies import programs
    import pyvmfuzz

    @given(programs(kernels=["fixed"], cpus=(1, 3), max_steps=12))
    def test_fixed_is_clean(program):
        assert pyvmfuzz.run(program).clean

Every program drawn is *applicable* under its own `kernel` line: each step is drawn as a small
structured choice (operation, CPU selector, page, word, value, thread/pid selector) and the Rust
core resolves the choices modulo what is valid in the state that step is reached in (the byte
form's state-aware decoding, rust/src/codec.rs) — so an op runs on a busy CPU, a switch names a
runnable thread, a procfs pid exists or is the next one. Hypothesis shrinks the choices (fewer
steps, earlier operations, smaller values, word 0, data0, cpu0, idle), and every shrunk choice
list still decodes to a valid program. Needs the `strategies` extra (hypothesis)."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from pyvmfuzz import layout
from pyvmfuzz.api import Program

# Simplest first: Hypothesis shrinks a sampled choice toward the front.
_ORDER = ("load", "store", "switch", "fork", "spawn", "umtx_wakeup", "umtx_sleep", "procfs_read", "procfs_write",
          "mprotect_r", "mprotect_rw", "madvise", "exit")


def _op_names(ops: Sequence[str] | None) -> list[str]:
    names = [n for n in _ORDER if n in layout.OPCODES] + [n for n in layout.OPCODES if n not in _ORDER]
    if ops is not None:
        wanted = set(ops)
        unknown = wanted - {n.removesuffix("_rw").removesuffix("_r") for n in names} - set(names)
        if unknown:
            raise InvalidArgument(f"unknown operations {sorted(unknown)} (valid: {', '.join(layout.CORE_OPS)})")
        names = [n for n in names if n in wanted or n.removesuffix("_rw").removesuffix("_r") in wanted]
        if not names:
            raise InvalidArgument("ops: at least one operation")
    return names


def _range(x: int | tuple[int, int], name: str, lo: int, hi: int) -> tuple[int, int]:
    a, b = (x, x) if isinstance(x, int) else x
    if not (lo <= a <= b <= hi):
        raise InvalidArgument(f"{name}={x!r}: want {lo} <= min <= max <= {hi}")
    return a, b


def _record(op: str, sel: int, pw: int = 0, value: int = 0, t: int = 0, until: int | None = None) -> bytes:
    """One byte-form record (rust/src/codec.rs): [op | sel<<4, page<<2 | word (a switch: the
    target index), value (0xff: a u32 LE follows), pid index, until (None: run the line whole;
    k: stop at the k-th yield point the line reaches from that state, modulo how many — docs/contract.md
    §3.2)]."""
    u = 0 if until is None else layout.UNTIL_BASE + until
    rec = bytes([layout.OPCODES[op] | (sel << 4), pw, min(value, layout.ESCAPE), t, u])
    return rec + (value.to_bytes(4, "little") if value >= layout.ESCAPE else b"")


def _step_strategies(names: list[str], max_value: int, interleave: bool = True) -> list[st.SearchStrategy[bytes]]:
    """One strategy per operation, each a few choices (Hypothesis deletes a step whole when it
    is a handful of choices; a flat 6-field tuple per step leaves junk steps behind). Every
    operation may carry `until` (docs/contract.md §3.2): None, a whole line, is what it shrinks to."""
    sel = st.integers(0, 7)  # CPU selector: modulo the busy CPUs (a switch: the CPUs)
    addr = st.integers(0, len(layout.PAGES) * layout.WORDS - 1).map(_pw)  # shrinks toward data0.0
    page = st.integers(0, len(layout.PAGES) - 1).map(lambda p: p << 2)
    value = st.integers(0, max_value)
    # the k-th point the line reaches, modulo how many (docs/contract.md §3.2); none: whole lines only
    until = (st.none() | st.integers(0, 7)) if interleave else st.none()
    npids = 9  # pid index: modulo the pids assigned plus the next one (at most 8 live)
    pid_addr = st.integers(0, npids * len(layout.PAGES) * layout.WORDS - 1).map(
        lambda x: (x % (len(layout.PAGES) * layout.WORDS), x // (len(layout.PAGES) * layout.WORDS)))
    out = []
    for n in names:
        if n == "switch":  # target 0: idle
            out.append(st.builds(lambda c, t, u, n=n: _record(n, c, t, until=u), sel, st.integers(0, 32), until))
        elif n in ("load", "umtx_wakeup"):
            out.append(st.builds(lambda c, a, u, n=n: _record(n, c, a, until=u), sel, addr, until))
        elif n in ("store", "umtx_sleep"):
            out.append(st.builds(lambda c, a, v, u, n=n: _record(n, c, a, v, until=u), sel, addr, value, until))
        elif n == "procfs_read":
            out.append(st.builds(lambda c, pa, u, n=n: _record(n, c, _pw(pa[0]), 0, pa[1], u), sel, pid_addr, until))
        elif n == "procfs_write":
            out.append(st.builds(lambda c, pa, v, u, n=n: _record(n, c, _pw(pa[0]), v, pa[1], u),
                                 sel, pid_addr, value, until))
        elif n in ("madvise", "mprotect_r", "mprotect_rw"):
            out.append(st.builds(lambda c, p, u, n=n: _record(n, c, p, until=u), sel, page, until))
        elif n in ("munmap", "mmap", "msync"):  # docs/contract.md §3.4: the value byte names the op
            out.append(st.builds(lambda c, p, u, n=n: _record(n, c, p, layout.EXT_SELECT[n], until=u), sel, page, until))
        elif n == "mremap":  # the pid byte is the page moved to
            out.append(st.builds(lambda c, p, to, u, n=n: _record(n, c, p, layout.EXT_SELECT[n], to, u),
                                 sel, page, st.integers(0, len(layout.PAGES) - 1), until))
        elif n == "pageout":
            out.append(st.builds(lambda c, pa, u, n=n: _record(n, c, _pw(pa[0]) & ~3, layout.EXT_SELECT[n], pa[1], u),
                                 sel, pid_addr, until))
        elif n == "ipi":  # takes the pending IPIs of the CPU picked; no point
            out.append(st.builds(lambda c, n=n: _record(n, c), sel))
        else:  # fork, spawn, exit, resume, and any operation the core adds without arguments
            out.append(st.builds(lambda c, u, n=n: _record(n, c, until=u), sel, until))
    return out


def _pw(a: int) -> int:
    return (a // layout.WORDS) << 2 | a % layout.WORDS


def programs(
    *,
    cpus: int | tuple[int, int] = (1, 4),
    max_steps: int = 16,
    min_steps: int = 1,
    kernels: Sequence[str] = ("fixed",),
    tlb: int | tuple[int, int] = layout.HW_DEFAULT[1],
    modes: Sequence[str] = ("pc64",),
    ops: Sequence[str] | None = None,
    max_value: int = 15,
    interleave: bool = True,
) -> st.SearchStrategy[Program]:
    """Valid programs (pyvmfuzz.Program) with `hw` and `kernel` header lines.

    `cpus`, `tlb`: a number or an inclusive (min, max) range (docs/contract.md §2.1: 1..8, 1..64).
    `kernels`, `modes`, `ops` take a name or a sequence of names.
    `min_steps`/`max_steps`: op lines drawn (a step that would panic the model ends the
    program early). `kernels`: names from `layout.KERNELS`, one drawn per program (decoding
    follows that kernel's state: the program is applicable under it). `modes`: pc64/tagged.
    `ops`: a subset of `layout.CORE_OPS` (`mprotect_r`/`mprotect_rw` pick one protection);
    a `switch` still appears where every CPU is idle (nothing else can run). `max_value`:
    values stored, slept on and written are drawn from 0..max_value (u32; small values make
    stores and sleeps meet on the same value). `interleave`: lines may stop inside kernel
    operations (`until`, then `resume`/`ipi`, docs/contract.md §3.2); False: every line runs whole.
    Raises hypothesis.errors.InvalidArgument for bad arguments."""
    kernels, modes = ([x] if isinstance(x, str) else list(x) for x in (kernels, modes))
    ops = [ops] if isinstance(ops, str) else ops
    c_lo, c_hi = _range(cpus, "cpus", 1, layout.MAX_CPUS)
    t_lo, t_hi = _range(tlb, "tlb", 1, layout.MAX_TLB)
    if not (0 <= min_steps <= max_steps):
        raise InvalidArgument(f"want 0 <= min_steps ({min_steps}) <= max_steps ({max_steps})")
    bad = [k for k in kernels if k not in layout.KERNELS]
    if bad or not kernels:
        raise InvalidArgument(f"kernels: {bad or 'none given'} (valid: {', '.join(layout.KERNELS)})")
    if not modes or any(m not in layout.MODES for m in modes):
        raise InvalidArgument(f"modes: {list(modes)} (valid: {', '.join(layout.MODES)})")
    if not (0 <= max_value < 1 << 32):
        raise InvalidArgument(f"max_value={max_value!r}: a u32")
    step = st.one_of(_step_strategies(_op_names(ops), max_value, interleave))

    @st.composite
    def build(draw) -> Program:
        kernel = draw(st.sampled_from(list(kernels)))
        n = draw(st.integers(c_lo, c_hi))
        t = draw(st.integers(t_lo, t_hi))
        mode = draw(st.sampled_from(list(modes)))
        records = draw(st.lists(step, min_size=min_steps, max_size=max_steps))
        header = bytes([(n - 1) | (8 if mode == "tagged" else 0), t - 1])
        data = header + b"".join(records)
        return Program.from_bytes(data, kernel)  # may decode to no op line: the empty program

    return build()
