"""Type stub of the Rust extension `pyvmfuzz._core` (rust/src/python.rs).

The core parses, runs and judges programs (docs/contract.md §2, §3, §4). Conventions for every function:

- Programs in text form follow docs/contract.md §2.3; in byte form, rust/src/codec.rs (2 header bytes, then
  5-byte records, `until`/`resume`/`ipi` included (docs/contract.md §3.2); every byte string is a valid
  program).
- `kernel`: a name from `kernels()` (docs/contract.md §3.1, §3.3); None takes the program's `kernel` line,
  else `"fixed"` (byte form: `"fixed"`).
- `hw`: hardware keys overlaid on the program's header key by key, as `"cpus=3,tlb=4,mode=tagged"`
  (docs/contract.md §2.1: cpus 1..8, tlb 1..64, mode pc64|tagged).
- Errors: every input error (malformed line, a step not applicable when reached, unknown kernel,
  bad hw) raises `ValueError` with one line, `"line N: reason"` when it has a line number
  (`--hw: ...` for a bad `hw`). Model assertions are not errors: they are the `panic` kind.
- Steps are numbered 1, 2, ... over op lines; outcomes are trace text (`0x5`, `ok woke P1.T2`).
"""

from typing import Literal, NotRequired, TypedDict, final

_Kind = Literal["stale-read", "protection", "outcome", "lost-wakeup", "tlb-incoherent", "use-after-free",
                "file-corruption", "panic"]

class InputError(ValueError):
    """Bad input (a program that does not parse, a line not applicable when reached, an unknown
    kernel or hardware): `str(e)` is `line N: reason`, or the reason alone."""

    line: int | None
    """The 1-based source line at fault, or None."""
    reason: str
    """The message without its line."""

class ViolationDict(TypedDict):
    """The first violation (docs/contract.md §4): kind, 1-based step, expected and observed outcome text."""

    kind: str
    step: int
    expected: str
    observed: str

class AssertFailureDict(TypedDict):
    step: int
    expected: str
    observed: str

class ReportDict(TypedDict):
    """A run. `steps[i]` is the canonical op line of step i+1 (no assertion) and `trace[i]` its
    outcome (`"panic"` for the step where a model assertion failed). The run ends at the first
    violation (docs/contract.md §4): `steps` has the steps that ran."""

    kernel: str
    hw: str
    """The effective hardware as a header line: `"hw cpus=2 tlb=8 mode=pc64"`."""
    steps: list[str]
    trace: list[str]
    trace_text: str
    """Header lines, then `STEP -> OUTCOME` per step: a replayable program."""
    violation: ViolationDict | None
    internal: ViolationDict | None
    """With `run_text(..., past_internal=True)`: the internal-invariant violation (a core-only
    kind) the run went past to reach `violation`; else None."""
    assert_failures: list[AssertFailureDict]
    expects: list[tuple[str, str | None, int | None]]
    """The `expect` lines: (kernel, kind, step); kind and step None for `clean`."""
    in_flight: list[InFlightDict]
    """Ops still in flight when the run ended (docs/contract.md §3.2), one per CPU that has one."""
    pending_ipis: list[PendingIpiDict]
    """Invalidations still pending when the run ended (docs/contract.md §3.2 IPIs)."""

class InFlightDict(TypedDict):
    cpu: int
    op: str
    """The op's line text, e.g. `store data0.0 0x1`."""
    phase: str
    point: str
    """The yield point it is paused at (docs/contract.md §3.2 table), `wait` when waiting for a lock."""
    waiting_for: str | None
    """The lock it waits for, in words, or None."""

class PendingIpiDict(TypedDict):
    cpu: int
    """The target CPU that has not taken the IPI yet."""
    pid: int
    """The address space (pid) the invalidation names."""
    page: str
    initiator: int

class CheckDict(TypedDict):
    steps: int
    kernel: str | None
    hw: str
    expects: list[tuple[str, str | None, int | None]]

class ParseDict(TypedDict):
    """`hw`: (cpus, tlb, mode) as written in the header, each None when absent. `steps`: per op
    line (1-based source line, canonical op text, canonical assertion text or None)."""

    hw: tuple[int | None, int | None, str | None]
    kernel: str | None
    expects: list[tuple[str, str | None, int | None]]
    steps: list[tuple[int, str, str | None]]
    os: NotRequired[str | None]
    """The `os` header (docs/contract.md §4.2), once the core parses it."""

class LayoutDict(TypedDict):
    """The layout the core is built with (docs/contract.md §2.1; rust/src/program.rs, codec.rs, hw.rs)."""

    pages: list[str]
    words: int
    text_content: list[tuple[str, list[int]]]
    """Each text page's words (u32), the read-only file's content."""
    shared_pages: list[str]
    unmapped_pages: list[str]
    """Pages with no mapping at first (docs/contract.md §3.4: hole0)."""
    file_content: list[tuple[str, list[int]]]
    """The data file's words, which file0 maps (docs/contract.md §3.4)."""
    opcodes: list[tuple[int, str]]
    """Byte form: (low nibble of a record's first byte, operation); mprotect has `_r`/`_rw`;
    §3.4's operations share one nibble (`ext_select`)."""
    ext_select: list[tuple[str, int]]
    """Byte form: the value byte (mod 8) that picks each §3.4 operation in the shared nibble."""
    headers: list[str]
    """The header keywords the core parses."""
    record: tuple[int, int]
    """Byte form: (bytes per record, the first `until` byte that stops)."""
    hw_default: tuple[int, int, str]
    hw_max: tuple[int, int]
    modes: list[str]
    points: dict[str, list[str]]
    """Yield points -> the operations whose lines may name them (docs/contract.md §3.2)."""

class CpuState(TypedDict):
    running: str | None
    """`P1.T1`, or None when idle."""
    space: int
    tlb: list[tuple[int, str, int, bool]]
    """(address space, page, frame, writable) per entry, oldest first (FIFO)."""
    in_flight: CpuInFlight | None
    """The op in flight on this CPU after the step, or None."""
    pending_ipis: list[tuple[int, str, int]]
    """Invalidations pending for this CPU: (address space, page, initiating cpu)."""

class CpuInFlight(TypedDict):
    op: str
    phase: str
    point: str
    waiting_for: str | None

class PageState(TypedDict):
    pte: tuple[int, bool] | None
    """(frame, writable), or None when no PTE."""
    modified: bool
    """The PTE's modified bit (docs/contract.md §3.4)."""
    seen: int | None
    """The frame the process's map (shadow chain) holds for the page."""
    prot: Literal["r", "rw", "unmapped"]
    needs_copy: bool
    shadow_depth: int

class ProcState(TypedDict):
    pid: int
    pm_active: list[int]
    pages: dict[str, PageState]
    threads: list[tuple[str, str]]

class State(TypedDict):
    cpus: list[CpuState]
    procs: list[ProcState]
    sleepers: list[tuple[str, int, int]]
    """(thread, frame, word)."""
    frames: dict[int, tuple[list[int], bool]]
    """frame -> (its 4 words, freed)."""
    frame_info: dict[int, tuple[bool, int]]
    """frame -> (the page's dirty flag, the memory slot it occupies: a freed frame's slot may
    be reused, docs/contract.md §3.4)."""

class ExplainDict(ReportDict):
    states: list[State]
    """The machine after each executed step (as many as `trace` has outcomes before a panic)."""

class ZooEntry(TypedDict):
    name: str
    story: str
    hw: str
    expect_found: bool
    by_search: bool
    commits: str
    """The real commits the kernel's story is told from."""
    interleaved: bool
    """Whether its bug needs §3.2 lines (an op stopped part-way)."""

class SoakExample(TypedDict):
    hw: str
    bytes: bytes
    kind: str
    step: int
    observed: str

class SoakDict(TypedDict):
    programs: int
    steps: int
    violations: int
    examples: list[SoakExample]

def check_text(text: str, hw: str | None = None) -> CheckDict:
    """Parse and validate a text program (every CPU must exist on the effective hardware).
    Raises ValueError."""

def parse_text(text: str) -> ParseDict:
    """Parse a text program, syntax only (no CPU check): the header as written and the
    canonical text of every op line and assertion. Raises ValueError."""

def run_text(text: str, kernel: str | None = None, hw: str | None = None, past_internal: bool = False) -> ReportDict:
    """Run a text program and judge it. A line not applicable when reached raises ValueError,
    unless the run already ended in a violation (docs/contract.md §2.3). `past_internal=True`: an
    internal-invariant violation goes to `internal` and the run goes on to the first
    user-visible one (the witness search, rust/src/exec.rs run_past_internal)."""

def run_bytes(data: bytes, kernel: str | None = None, hw: str | None = None) -> ReportDict:
    """Run a byte-form program, decoded against the live state (up to the first violation).
    Never raises for the data (every byte string is a program); ValueError for kernel/hw."""

def decode(data: bytes, kernel: str | None = None, hw: str | None = None) -> str:
    """Byte form -> text program with `hw` and `kernel` header lines (the effective ones)."""

def encode(text: str, kernel: str | None = None, hw: str | None = None) -> bytes:
    """Text program -> byte form that decodes back to it under the same kernel and hardware.
    Raises ValueError for a malformed program or a step not applicable when reached."""

def canonical(text: str) -> str:
    """The op lines as the core prints them (no header, no assertions): parse, then print."""

def explain(text: str, kernel: str | None = None, hw: str | None = None,
            past_internal: bool = False) -> ExplainDict:
    """`run_text` plus the machine state after every step (for `pyvmfuzz explain`);
    `past_internal` as run_text's: a witness runs on to its user-visible step."""

def mutate(data: bytes, max_size: int, seed: int, uniform: bool = False) -> bytes | None:
    """One record-aware mutation of a byte-form program within `max_size` bytes (append,
    insert, erase, copy, swap or cut whole lines, change one field; rust/src/mutate.rs), or
    None: leave it to libFuzzer's own mutations. The same as the native custom mutator
    libFuzzer calls in a campaign; deterministic in `seed` (a u32). `uniform`: new lines
    drawn uniformly instead of biased towards races (`pyvmfuzz bench --finish` compares)."""

def crossover(a: bytes, b: bytes, max_size: int, seed: int) -> bytes:
    """Record-aligned crossover: `a`'s header and first records, then `b`'s records from
    some record on, within `max_size` bytes (rust/src/mutate.rs)."""

SEMANTIC_COUNTERS: int
"""How many semantic counters the core registers with libFuzzer (rust/src/features.rs)."""

def semantic_features(data: bytes, kernel: str | None = None, hw: str | None = None) -> list[int]:
    """The semantic features (sorted, distinct counter indices; rust/src/features.rs) a
    byte-form program reaches."""

def soak(programs: int, seed: int = 1, kernel: str = "fixed", max_steps: int = 64, max_cpus: int = 4,
         max_tlb: int = 16, mode: Literal["pc64", "tagged"] = "pc64",
         interleaved: bool = True) -> SoakDict:
    """Random byte-form programs run entirely in Rust (rust/src/soak.rs); releases the GIL.
    `interleaved`: programs may hold `until`/`resume`/`ipi` lines (docs/contract.md §3.2); False: plain
    lines only.
    Raises ValueError unless max_steps >= 1, max_cpus in 1..8, max_tlb in 1..64."""

def pct_search(kernel: str, budget_s: float, hw: str | None = None, seed: int = 1, depth: int = 3,
               max_lines: int = 6) -> tuple[tuple[list[str], list[str], str, int] | None, int]:
    """PCT runs (rust/src/pct.rs) for `budget_s` seconds: the first violation, shrunk
    (steps, trace, kind, step), or None; and the runs made. On 2, 3 and 4 CPUs in turn unless
    `hw` names the count."""

def pct_until(kernel: str, seed: int, budget_s: float, hw: str | None = None, depth: int = 3,
              max_lines: int = 6) -> tuple[float | None, int]:
    """PCT runs until the first violation: (seconds to it or None, runs made)."""

def random_until(kernel: str, seed: int, budget_s: float, hw: str | None = None,
                 max_steps: int = 32) -> tuple[float | None, int]:
    """The random baseline of `pyvmfuzz bench`: (seconds to the first violation, or None when
    the budget in seconds ran out; programs run). Releases the GIL."""

def random_find(kernel: str, seed: int, budget_s: float, hw: str | None = None,
                max_steps: int = 32) -> tuple[bytes | None, float | None, int, int]:
    """`random_until`'s loop returning what it met: (the byte-form input or None, seconds to it
    or None, programs run, the generator's state). The same seed meets the same input; a call
    seeded with the returned state goes on with the same sequence. Releases the GIL."""

def kernels() -> list[tuple[str, str]]:
    """Every kernel variant: (name, one-paragraph story citing the real bug). docs/contract.md §3.1, §3.3."""

def kernel_name(name: str) -> str:
    """The canonical name of a kernel: a named one or a `KERNEL+ACTION` / `KERNEL-no-ACTION` variant (`necessity`'s action names). ValueError if there is none."""

def kinds() -> list[_Kind]:
    """Violation kinds in code order: `FuzzTarget.run`'s code c > 0 is `kinds()[c - 1]` (docs/contract.md §4)."""

def zoo() -> list[ZooEntry]:
    """Every kernel with the hardware it is judged on and whether a campaign must find it."""

def layout() -> LayoutDict:
    """Page names, words per page, text content, byte-form opcodes, hardware limits."""

def source_dir() -> str:
    """The crate's source directory this module was built from (for the coverage build)."""

def _selftest_panic(text: str, at: int) -> ReportDict:
    """Self-test: run with a model assertion raised at step `at`."""

def _selftest_invariants(programs: int, seed: int = 1, kernel: str = "fixed", mode: str = "pc64",
                         plant_fill_writable: bool = False) -> tuple[int, int]:
    """Self-test: incremental vs full invariant checks on random programs. Returns (mismatches,
    programs the full check flagged); `plant_fill_writable=True` plants a fault (TLB fills cache
    a writable bit the PTE lacks)."""

@final
class FuzzTarget:
    """A fuzzing target with kernel and hardware fixed once; `run(data)` is the hot path."""

    def __init__(self, kernel: str = "fixed", hw: str | None = None, semantic: bool = False) -> None:
        """`semantic=True` registers the core's semantic counters with the libFuzzer loaded in
        this process and feeds them on every run; raises ValueError when there is none, or for a
        bad kernel/hw."""

    def run(self, data: bytes) -> tuple[int, int]:
        """(kind code, step): (0, 0) clean; else the kind is `kinds()[code - 1]`."""

    def run_batch(self, inputs: list[bytes]) -> list[tuple[int, int]]:
        """`run` over many inputs with the GIL released (no semantic feedback)."""

    def execs(self) -> int:
        """Executions of `run` so far (read by the harness's progress thread)."""

    def bytes_run(self) -> int:
        """Input bytes passed to run() so far (bench --campaign: bytes per execution)."""

# ---- explore / necessity (docs/contract.md §5; rust/src/explore.rs, rust/src/necessity.rs) ----

class ExploreWitness(TypedDict):
    steps: list[str]
    trace: list[str]
    kind: _Kind
    step: int
    expected: str
    observed: str

class ExploreDict(TypedDict):
    """`completed`: the deepest bound (lines) proved free of violations; `generated`/`distinct`:
    states expanded / distinct canonical states; `elapsed_s` seconds; `witness`: a shortest
    violation or None."""

    kernel: str
    hw: str
    completed: int
    bound: int
    generated: int
    generated_last: int
    """Lines executed at the last bound."""
    distinct: int
    por_skipped: int
    """Lines the commutation reduction did not execute."""
    hash_hits: int
    """Lines whose resulting state was already seen."""
    shared: int
    """Violations the base kernel shares (necessity), not counted."""
    elapsed_s: float
    stopped: bool
    interrupted: bool
    """Stopped by `progress` returning False (or Ctrl-C)."""
    witness: ExploreWitness | None

def explore(kernel: str, depth: int, hw: str | None = None, time_s: float = 0.0, hashing: bool = True,
            por: bool = True, off: list[str] = ..., on: list[str] = ..., progress: object | None = None,
            max_table: int = 30000000, until_hint: bool = True, pages: list[str] | None = None,
            values: list[int] | None = None, prefix: str | None = None,
            distinguish: bool = False, stops: int | None = None, vm: bool = False,
            symmetry: bool = True, first_bound: int = 1) -> ExploreDict:
    """Every program of up to `depth` lines from the initial state, breadth by length with state
    hashing and a commutation reduction (docs/contract.md §5 `explore`). `off`/`on`: safety actions switched
    off/on (`safety_actions()`); `progress(stats) -> bool` every 16k lines (False stops);
    `time_s` 0: no limit. `stops`: at most that many lines with `until` that leave their op in
    flight on a path (None: no bound). `vm`: docs/contract.md §3.4's lines too. `until_hint`: generate `OP until P` only
    where the plain line arrived at P (exact; off only to check that it is). `symmetry`: a state
    and the same state with its CPUs renumbered are one (2 or 3 CPUs; the commutation reduction
    is then off). `first_bound`: search the bounds from this one (`depth`: one pass, which proves
    as much; its witness is no longer than `depth` but not always a shortest). Raises ValueError
    for an unknown kernel, action, page or bad hw."""

def random_search(kernel: str, budget_s: float, hw: str | None = None, off: list[str] = ...,
                  on: list[str] = ..., seed: int = 1,
                  max_steps: int = 16) -> tuple[tuple[list[str], list[str], str, int] | None, int]:
    """Random programs for `budget_s` seconds against `kernel` without the actions `off`: the
    first violation shrunk, (steps, trace, kind, step), or None; and the programs run."""

def run_variant(kernel: str, text: str, hw: str | None = None, off: list[str] = ...,
                on: list[str] = ...) -> tuple[str, int] | None:
    """Run a text program under `kernel` with actions switched off/on: the violation's (kind,
    step), or None (checks a witness against the base kernel)."""

def action_present(kernel: str, action: str, on: list[str] = ...) -> bool:
    """Whether `kernel` (with `on` switched on) performs the safety action `action`."""

def safety_actions() -> list[tuple[str, str, str]]:
    """The safety actions `necessity` switches off: (name, DragonFly function, what it does)."""
