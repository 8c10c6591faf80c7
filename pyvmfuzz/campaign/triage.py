"""One finding per bug (issue 25): a violation's *bucket* is its root cause, as syzkaller buckets
crashes by title. The root cause is the kernel's deviation from `fixed` that enables it (what
`necessity` would name: each safety action the kernel lacks is switched off alone in `fixed`,
and those that alone reproduce a violation on the same program are the cause): every symptom of
one missing action — a stale read here, a writable entry there — is one bug, titled by the
first symptom seen (kind and operation). Where there is no deviation (a finding on `fixed` is a
model bug) the kind and operation are the bucket, a model panic's assertion its operation. Two
programs in one bucket are one bug; a campaign saves one representative per bucket and counts
the rest, and `pyvmfuzz triage DIR` groups any crashes directory so."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache

from pyvmfuzz import _core

_INFLIGHT_LINE = re.compile(r"^cpu(\d+) (resume|ipi)\b")


@lru_cache(maxsize=None)
def _actions() -> dict[str, str]:
    return {name: what for name, _, what in _core.safety_actions()}


@lru_cache(maxsize=None)
def deviations(kernel: str) -> tuple[tuple[str, bool], ...]:
    """The safety actions in which `kernel` differs from `fixed`: (action, whether fixed has it)."""
    out = []
    for name in _actions():
        fixed_has = _core.action_present("fixed", name)
        if fixed_has != _core.action_present(kernel, name):
            out.append((name, fixed_has))
    return tuple(out)


def causes(kernel: str, hw: str, steps: list[str]) -> tuple[str, ...]:
    """The deviations of `kernel` that alone make `fixed` fail this program (any violation).
    All of them where none does alone; () for `fixed` itself (a model bug, no deviation)."""
    devs = deviations(kernel)
    if not devs:
        return ()
    text = "\n".join([hw] + steps) + "\n"
    hit = []
    for name, fixed_has in devs:
        off, on = ([name], []) if fixed_has else ([], [name])
        try:
            if _core.run_variant("fixed", text, None, off, on) is not None:
                hit.append(name)
        except ValueError:  # another schedule there (a line not applicable): not this one
            continue
    return tuple(hit) or tuple(n for n, _ in devs)


def violating_action(steps: list[str], step: int) -> str:
    """The operation the violation shows in: the op of line `step`, or for a `resume`, the op
    in flight on that CPU (started by the last line there that was not resume or ipi)."""
    line = steps[step - 1].split("#")[0].split("->")[0].split()
    m = _INFLIGHT_LINE.match(" ".join(line))
    if m and m.group(2) == "resume":
        cpu = f"cpu{m.group(1)}"
        for prev in reversed(steps[: step - 1]):
            toks = prev.split()
            if toks and toks[0] == cpu and toks[1] not in ("resume", "ipi"):
                return toks[1]
    return line[1] if len(line) > 1 else "?"


@dataclass(frozen=True, eq=False)
class Bucket:
    """A bug: its cause, with the symptom it was seen as (`kind` in `action`). Equal buckets
    have equal keys: the cause alone where there is one."""
    kind: str
    action: str
    cause: tuple[str, ...]

    @property
    def key(self) -> str:
        return "without:" + ",".join(self.cause) if self.cause else f"{self.kind}|{self.action}"

    def __eq__(self, other) -> bool:
        return isinstance(other, Bucket) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    @property
    def name(self) -> str:
        """A file-name stem from the key alone: the (first) missing action, or the kind."""
        head = self.cause[0].replace("_", "-") if self.cause else self.kind
        return f"{head}-{hashlib.sha1(self.key.encode()).hexdigest()[:10]}"

    @property
    def title(self) -> str:
        seen = f"{self.kind} in {self.action}"
        if not self.cause:
            return f"{seen}: no deviation from fixed (a model bug)"
        if len(self.cause) == 1:
            return f"without '{self.cause[0]}' ({_actions().get(self.cause[0], '?')}); seen as {seen}"
        return "without " + " + ".join(f"'{c}'" for c in self.cause) + f"; seen as {seen}"


def bucket(kernel: str, hw: str, steps: list[str], kind: str, step: int, observed: str = "") -> Bucket:
    """`observed`: the violation's observed text; for a model `panic` it is the assertion and
    its source location, the crash title of a model bug (hex values dropped)."""
    where = violating_action(steps, step)
    if kind == "panic":
        # a model assertion is a bug of the model, whatever the kernel: never merged into a
        # kernel's bug (it would be counted there and not saved)
        return Bucket(kind, re.sub(r"0x[0-9a-f]+", "0x_", observed.strip()) if observed else where, ())
    return Bucket(kind, where, causes(kernel, hw, steps))


@dataclass
class Group:
    bucket: Bucket
    files: list[str] = field(default_factory=list)
    shortest: str = ""
    shortest_len: int = 0


def _read_finding(path: str) -> tuple[str, str, list[str], str, int] | None:
    """(kernel, hw, op lines, kind, step) of a saved finding: its kernel line and the expect
    line for that kernel with a user-visible kind (else the first one for it); kind "clean"
    when the program no longer violates under that kernel. None for a file that is no finding
    (no kernel line, no expect line for it)."""
    try:
        text = open(path, encoding="utf-8").read()
    except (OSError, UnicodeDecodeError):
        return None
    kernel, hw, steps, expects = None, "hw", [], []
    for ln in text.splitlines():
        s = ln.split("#")[0].strip()
        if s.startswith("kernel "):
            kernel = s.split()[1]
        elif s.startswith("hw "):
            hw = s
        elif s.startswith("expect "):
            expects.append(s.split())
        elif s.startswith("cpu"):
            steps.append(s.split("->")[0].strip())
    if kernel is None or not steps:
        return None
    mine = [e for e in expects if len(e) == 4 and e[1] == kernel]
    if not mine:
        return None
    from pyvmfuzz import programs
    from pyvmfuzz.oracle.check import CORE_ONLY

    # A finding must load (its lines, kernel and expect lines: else InputError naming the file)
    # and still violate under its kernel — except a core/oracle disagreement, saved because the
    # core runs it clean where the oracle does not.
    clean = programs.run(programs.load(path), None, None)["violation"] is None
    if clean and not os.path.basename(path).startswith("disagreement-"):
        return kernel, hw, steps, "clean", 0

    visible = [e for e in mine if e[2] not in CORE_ONLY]
    e = (visible or mine)[-1]
    return kernel, hw, steps, e[2], int(e[3])


def triage(paths: list[str], left_out: list[str] | None = None) -> list[Group]:
    """Group saved findings (`.txt` files; a directory's, and its `crashes/` subdirectory's: a
    campaign's output folder) by bucket, the largest group first; each group's representative is
    its shortest program. Each finding is run under its own kernel first: a program that does not load
    (a bad line, an unknown kernel, a malformed expect line) raises programs.InputError naming
    the file; one that runs clean is not grouped — it goes to `left_out`, when given."""
    files = []
    for p in paths:
        if os.path.isdir(p):
            for d in (p, os.path.join(p, "crashes")):
                if os.path.isdir(d):
                    files += sorted(os.path.join(d, n) for n in os.listdir(d) if n.endswith(".txt"))
        else:
            files.append(p)
    groups: dict[str, Group] = {}
    for f in files:
        got = _read_finding(f)
        if got is None:
            continue
        kernel, hw, steps, kind, step = got
        if kind == "clean":
            if left_out is not None:
                left_out.append(f)
            continue
        b = bucket(kernel, hw, steps, kind, step)
        g = groups.setdefault(b.key, Group(b))
        g.files.append(f)
        if not g.shortest or len(steps) < g.shortest_len:
            g.shortest, g.shortest_len = f, len(steps)
    return sorted(groups.values(), key=lambda g: (-len(g.files), g.bucket.key))
