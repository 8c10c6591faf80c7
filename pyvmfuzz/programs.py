"""Loading programs from files: text or byte form, with clear input errors."""

from __future__ import annotations

import errno
import os
import re
import stat
import sys
from dataclasses import dataclass

from pyvmfuzz import _core

TEXT_SUFFIXES = (".txt", ".vm")
BYTES_SUFFIXES = (".bytes",)  # the byte form a campaign saves beside each finding's .txt
MAX_FILE_BYTES = 1 << 20  # a program is small; a bigger file is a mistake, not a program
_TEXT_STARTS = ("cpu", "hw", "kernel", "expect", "os", "#")  # "os": every saved finding has the line
STDIN = "-"  # as a FILE: the program is read from standard input
STDIN_NAME = "<stdin>"  # how messages name it
MAX_DEPTH = 64  # directory levels walked below a PATH; deeper is a runaway tree or a loop
CORE_ONLY = ("tlb-incoherent", "use-after-free", "file-corruption", "lost-data", "panic")  # oracle.check.CORE_ONLY


class InputError(Exception):
    """Bad input: the CLI prints the message on one line and exits 2.

    `str(e)` is the one-line message (`PATH: line N: reason`, or shorter where a part is
    unknown). Attributes: `line` (1-based source line of the text program, or None), `reason`
    (the message without path and line) and `path` (or None). The core raises its own
    `_core.InputError` (a ValueError) with `.line` and `.reason`: `from_core` carries them
    over; `at` makes one for a line of our own checks."""

    def __init__(self, message: str, *, line: int | None = None, reason: str | None = None,
                 path: str | None = None):
        super().__init__(message)
        if reason is None:
            reason = message[len(path) + 2:] if path and message.startswith(path + ": ") else message
        self.line, self.reason, self.path = line, reason, path
        #: (text, kernel, hw) of a text program whose line `line` was not applicable when
        #: reached: `not_applicable_context` re-runs the lines before it for the CLI's
        #: further stderr lines (the trace so far and the state that refuses the line).
        self.context: tuple[str, str | None, str | None] | None = None

    @classmethod
    def at(cls, line: int, reason: str) -> InputError:
        """An error at line `line` of a text program."""
        return cls(f"line {line}: {reason}", line=line, reason=reason)

    @classmethod
    def from_core(cls, e: ValueError, path: str | None = None) -> InputError:
        """The core's `InputError` (or another ValueError: no line), optionally naming `path`."""
        line = getattr(e, "line", None)
        reason = visible(getattr(e, "reason", None) or str(e))
        msg = visible(str(e))
        return cls(f"{path}: {msg}" if path else msg, line=line, reason=reason, path=path)

    def in_file(self, path: str) -> InputError:
        """The same error, its message naming `path`."""
        return InputError(f"{path}: {visible(str(self))}", line=self.line, reason=self.reason, path=path)


@dataclass
class ProgramFile:
    path: str
    text: str | None  # text form
    data: bytes | None  # byte form

    @property
    def is_text(self) -> bool:
        return self.text is not None


def visible(msg: str) -> str:
    """A message with invisible characters (a BOM, a zero-width space, NBSP) written as
    escapes, so an error about them shows what is actually there."""
    return "".join(c if c.isprintable() or c in "\t" else f"\\u{ord(c):04x}" for c in msg)


def _decode(raw: bytes) -> str | None:
    """UTF-8 text, less a leading byte-order mark (Windows editors write one); None if not UTF-8."""
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        return None


def _has_controls(s: str) -> bool:
    """A control character other than tab, LF and CR (NUL, ESC, DEL, C1): binary, not text."""
    return any((c < " " and c not in "\t\n\r") or "\x7f" <= c <= "\x9f" for c in s)


_SHA1_NAME = re.compile(r"^(?:[a-z]+(?:-[a-z]+)*-)?([0-9a-f]{40})$")  # libFuzzer: <sha1>, crash-<sha1>, slow-unit-<sha1>


def _named_by_its_sha1(name: str | None, raw: bytes) -> bool:
    """libFuzzer names a corpus input by the SHA-1 of its bytes, an artifact `crash-<sha1>`
    (`timeout-`, `oom-`, `leak-`, `slow-unit-`); `cmin` does too. Such a file is the byte
    form whatever it holds: libFuzzer's own mutations write printable runs (`hhhhhhhhhhhh`)."""
    import hashlib

    m = _SHA1_NAME.match(os.path.basename(name or ""))
    return m is not None and hashlib.sha1(raw).hexdigest() == m[1]


def _looks_like_text(raw: bytes, name: str | None = None) -> str | None:
    """The text of a file that is neither `.txt`/`.vm` nor `.bytes`, or None for the byte
    form. A file named by the SHA-1 of its bytes (`_named_by_its_sha1`) is bytes. Else text:
    valid UTF-8 (a BOM aside) with no control characters but tab, CR and LF, and a line that
    starts like a program line in any case (`Cpu0 ...`) or holds two words (a blank between
    two non-blank characters: `cpu0 ipi`, the shortest program, has); also, as before, UTF-8
    whose every non-blank line starts like a program line. Such a file is parsed as text and
    fails as text: a typo (`Cpu0`) or a README is an input error naming the line, not an
    unrelated byte-form program run clean. A campaign input is bytes: its records hold small
    numbers (control bytes), and the printable runs libFuzzer's own mutations write have no
    blank between words."""
    s = _decode(raw)
    if s is None or _named_by_its_sha1(name, raw):
        return None
    lines = [ln.strip() for ln in s.splitlines() if ln.strip()]
    if lines and all(ln.startswith(_TEXT_STARTS) for ln in lines):
        return s
    if _has_controls(s):
        return None
    if any(ln.lower().startswith(_TEXT_STARTS) or len(ln.split()) >= 2 for ln in lines):
        return s
    return None


def _core_lines(text: str) -> list[str]:
    """The lines as the core numbers them (Rust `str::lines`: split at LF, a CR before it dropped)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


def _norm(said: str) -> str:
    """`hw cpus=02` is `hw cpus=2`."""
    k, eq, v = said.partition("=")
    return f"{k}={int(v)}" if eq and v.isdigit() else said


def header_problem(text: str) -> InputError | None:
    """Header lines that contradict each other or the program, which the core's parser takes
    silently (the last one wins, or `check` reports against a line that cannot hold): `kernel`
    (or `os`) twice with different names; an `hw` key given two values; `expect K clean`
    together with `expect K KIND STEP`; two verdicts for one kernel that are not a saved
    witness (a core-only kind, then a user-visible kind at a later step: findings.md §2), or
    more than two; an expect step beyond the program's op lines. An InputError naming the
    (later) line, or None. Call it on text the core has parsed (`_core.check_text`): every
    line is then a header, an op line, blank or a comment."""
    first: dict[str, tuple[int, str]] = {}  # "kernel"/"os"/"hw KEY" -> (line, value)
    expects: dict[str, dict[tuple[str | None, int | None], int]] = {}  # kernel -> verdict -> line
    steps = 0
    for n, raw in enumerate(_core_lines(text), 1):
        toks = raw.split("#")[0].split("->")[0].split()
        if not toks:
            continue
        head = toks[0]
        if head not in ("hw", "kernel", "os", "expect"):
            steps += 1
            continue
        if head == "expect":
            if len(toks) in (3, 4):
                verdict = (None, None) if toks[2] == "clean" else (toks[2], int(toks[3]))
                expects.setdefault(toks[1], {}).setdefault(verdict, n)
            continue
        items = [(head, toks[1])] if head != "hw" else [
            (k, v) for k, _, v in (t.partition("=") for t in " ".join(toks[1:]).replace(",", " ").split())]
        for key, value in items:
            said = f"{head} {key}={value}" if head == "hw" else f"{head} {value}"
            seen = first.setdefault(key, (n, said))
            if _norm(seen[1]) != _norm(said):
                return InputError.at(n, f"contradictory header lines: '{seen[1]}' on line {seen[0]}, "
                                        f"'{said}' here")
    for kernel, verdicts in expects.items():
        ordered = sorted(verdicts.items(), key=lambda kv: kv[1])  # by line
        for (kind, step), n in ordered:
            if step is not None and step > steps:
                return InputError.at(n, f"expect {kernel} {kind} {step}: the program has "
                                        f"{steps} op line(s), no step {step}")
        if len(ordered) < 2:
            continue
        n = ordered[-1][1]
        said = "; ".join(f"line {ln}: expect {kernel} " + ("clean" if k is None else f"{k} {st}")
                         for (k, st), ln in ordered)
        if any(k is None for (k, _), _ in ordered):
            return InputError.at(n, f"contradictory expect lines for {kernel} ({said}): "
                                    f"clean and a violation cannot both hold")
        if len(ordered) == 2:
            (k1, s1), (k2, s2) = sorted((v for v, _ in ordered), key=lambda v: v[1])  # by step
            if k1 in CORE_ONLY and k2 not in CORE_ONLY and s1 < s2:
                continue  # a saved witness
        return InputError.at(n, f"contradictory expect lines for {kernel} ({said}): one run has "
                                f"one first violation; two lines for one kernel are a witness: a core-only "
                                f"kind ({', '.join(CORE_ONLY)}), then a user-visible kind at a later step")
    return None


def _check_text(path: str, text: str) -> None:
    """Parse errors first (they name the line), then an empty program."""
    try:
        facts = _core.check_text(text, "cpus=8")  # a --hw given later may add CPUs: parse only
    except ValueError as e:
        raise InputError.from_core(e, path) from None
    if facts["steps"] == 0:
        raise InputError(f"{path}: no operations (an empty program)", path=path)
    e = header_problem(text)
    if e is not None:
        raise e.in_file(path) from None


_stdin_cache: bytes | None = None


def _read_stdin() -> bytes:
    """Standard input, read once (`run - -` runs the same program twice)."""
    global _stdin_cache
    if _stdin_cache is None:
        if sys.stdin is None:
            raise InputError(f"{STDIN_NAME}: no standard input")
        src = getattr(sys.stdin, "buffer", None)
        try:
            data = src.read(MAX_FILE_BYTES + 1) if src is not None else sys.stdin.read(MAX_FILE_BYTES + 1).encode()
        except (OSError, ValueError) as e:
            raise InputError(f"{STDIN_NAME}: cannot read: {getattr(e, 'strerror', None) or e}") from None
        _stdin_cache = data
    return _stdin_cache


def _read_file(path: str) -> bytes:
    if not os.path.exists(path):
        raise _missing(path)
    if os.path.isdir(path):
        raise InputError(f"{path}: is a directory")
    try:
        size = os.path.getsize(path)
        if size > MAX_FILE_BYTES:
            raise InputError(f"{path}: {size} bytes is too large for a program (limit {MAX_FILE_BYTES})")
        with open(path, "rb") as f:
            # Bounded: a device or pipe (/dev/zero, <(...)) has no size to check up front.
            raw = f.read(MAX_FILE_BYTES + 1)
        if len(raw) > MAX_FILE_BYTES:
            raise InputError(f"{path}: more than {MAX_FILE_BYTES} bytes is too large for a program")
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror}") from None
    return raw


def _missing(path: str) -> InputError:
    """Why `path` cannot be opened, in words: a symbolic link loop or a dangling link is not
    'no such file'."""
    try:
        os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return InputError(f"{path}: a symbolic link loop")
        if os.path.islink(path):
            return InputError(f"{path}: a symbolic link to nothing ({os.readlink(path)})")
        if e.errno == errno.ENAMETOOLONG:
            return InputError(f"{path}: path too long")
    return InputError(f"{path}: no such file")


def load(path: str) -> ProgramFile:
    """Read a program file; `.txt`/`.vm` files must be text, `.bytes` files are the byte form,
    others are sniffed (`_looks_like_text`); `-` is standard input (sniffed; messages name it
    `<stdin>`). An empty file, a file over MAX_FILE_BYTES, a text program that does not parse,
    has no operation or contradictory header lines (`header_problem`): InputError naming the
    file."""
    if path == STDIN:
        path, raw = STDIN_NAME, _read_stdin()
        if len(raw) > MAX_FILE_BYTES:
            raise InputError(f"{path}: more than {MAX_FILE_BYTES} bytes is too large for a program")
    else:
        raw = _read_file(path)
    if not raw:
        # Every byte string decodes to a program, but an empty file is a mistake (a failed
        # copy, a truncated write), not the empty program.
        raise InputError(f"{path}: empty file: no operations (an empty program)")
    if path.endswith(TEXT_SUFFIXES):
        text = _decode(raw)
        if text is None:
            raise InputError(f"{path}: not a text program (invalid UTF-8)")
        _check_text(path, text)
        return ProgramFile(path, text, None)
    text = None if path.endswith(BYTES_SUFFIXES) else _looks_like_text(raw, path)
    if text is not None:
        _check_text(path, text)
        return ProgramFile(path, text, None)
    return ProgramFile(path, None, raw)


def sidecar(path: str) -> dict:
    """How to replay a saved finding's byte form: its `.txt` beside it (same stem) names the
    kernel, hardware and personality on a `# replay-bytes: --kernel K --hw KEYS --os OS` line
    (campaign.findings.save); a pending input's `.replay` (campaign.supervisor.split_pending)
    holds that line alone. Returns {"kernel", "hw", "os"} (each may be absent)."""
    if path == STDIN_NAME:
        return {}
    stem, ext = os.path.splitext(path)
    txt = stem + ".txt"
    if ext != ".txt" and not os.path.isfile(txt) and os.path.isfile(stem + ".replay"):
        txt = stem + ".replay"
    if ext == ".txt" or not os.path.isfile(txt):
        return {}
    try:
        with open(txt, encoding="utf-8", errors="replace") as f:
            for ln in f:
                if ln.startswith("# replay-bytes:"):
                    toks = ln.split(":", 1)[1].split()
                    keys = toks[0::2]
                    # a line that cannot be read was ignored, and the bytes ran under fixed
                    if len(toks) % 2 or any(k not in ("--kernel", "--hw", "--os") for k in keys):
                        raise InputError(f"{txt}: its '# replay-bytes:' line is not "
                                         f"'--kernel K --hw KEYS --os OS': {visible(ln.strip())}")
                    found = {toks[i][2:]: toks[i + 1] for i in range(0, len(toks), 2)}
                    if "kernel" in found:
                        try:  # a named kernel or a KERNEL+ACTION variant (a campaign on one)
                            found["kernel"] = _core.kernel_name(found["kernel"])
                        except ValueError:
                            raise InputError(f"{txt}: its '# replay-bytes:' line names an unknown kernel "
                                             f"'{visible(found['kernel'])}'") from None
                    return found
                if ln.startswith("cpu"):
                    break
    except OSError:
        pass
    return {}


def overlay_hw(base: str | None, top: str | None) -> str | None:
    """Hardware keys of `top` over those of `base` (each "k=v,k=v" or space-separated), key by
    key, as "k=v,k=v"; None when neither names a key."""
    keys: dict[str, str] = {}
    for spec in (base, top):
        for item in (spec or "").replace(",", " ").split():
            k, _, v = item.partition("=")
            keys[k] = v
    return ",".join(f"{k}={v}" for k, v in keys.items()) or None


def run(pf: ProgramFile, kernel: str | None, hw: str | None) -> dict:
    """Execute a loaded program; input errors are raised as InputError naming the file.
    A byte-form finding takes its kernel and hardware from its sidecar (`sidecar`) unless
    given here."""
    from pyvmfuzz import api as _api  # (api imports this module)

    try:
        if pf.is_text:
            return _api.report(pf.text, kernel, hw)
        sc = sidecar(pf.path)
        return _api.report(pf.data, kernel or sc.get("kernel"), overlay_hw(sc.get("hw"), hw))
    except ValueError as e:
        err = InputError.from_core(e, pf.path)
        if pf.is_text:
            with_context(err, pf.text, kernel, hw)
        raise err from None


def with_context(err: InputError, text: str, kernel: str | None, hw: str | None) -> InputError:
    """Mark a run-time error at a line of `text` (a line not applicable when reached: an idle
    CPU, a thread not runnable, nothing in flight, no IPI pending) for
    `not_applicable_context`."""
    if err.line is not None and "beyond the machine" not in err.reason:
        err.context = (text, kernel, hw)
    return err


def not_applicable_context(err: InputError, max_trace: int = 30) -> list[str]:
    """For a line not applicable when reached: the trace of the lines before it and the state
    that refuses it (each CPU: what it runs, the op in flight there and where it is paused,
    the invalidations pending for it; each thread: running, runnable or blocked), as lines for
    the CLI to print after the one-line error. Empty when there is nothing to add."""
    if err.context is None or err.line is None:
        return []
    text, kernel, hw = err.context
    lines = _core_lines(text)
    prefix = "".join(ln + "\n" for ln in lines[: err.line - 1])
    try:
        rep = _core.explain(prefix, kernel, hw)
        src = [n for n, _, _ in _core.parse_text(prefix)["steps"]]
    except ValueError:
        return []
    out = [f"  the run up to line {err.line} (kernel {rep['kernel']}, {rep['hw']}):"]
    trace = list(zip(src, rep["steps"], rep["trace"]))
    if not trace:
        out.append("    (no op line before it: the initial state)")
    if len(trace) > max_trace:
        out.append(f"    ... {len(trace) - max_trace} earlier line(s)")
        trace = trace[-max_trace:]
    out += [f"    line {n}: {step} -> {o}" for n, step, o in trace]
    here = lines[err.line - 1].split("#")[0].strip() if err.line - 1 < len(lines) else ""
    out.append(f"  the state line {err.line} ({here}) meets:")
    st = rep["states"][-1] if rep["states"] else None
    ncpus = int(re.search(r"cpus=(\d+)", rep["hw"])[1])
    cpus = st["cpus"] if st else [{"running": "P1.T1" if c == 0 else None} for c in range(ncpus)]
    for c, cpu in enumerate(cpus):
        fl = cpu.get("in_flight")
        flight = ("nothing in flight" if not fl else
                  f"in flight: {fl['op']}, " + (f"waiting for {fl['waiting_for']}" if fl.get("waiting_for")
                                                else f"paused at {fl['point']}"))
        ipis = cpu.get("pending_ipis") or []
        pend = ("no IPI pending" if not ipis else "IPI pending: " + ", ".join(
            f"invalidate P{pid} {pg} (from cpu{init})" for pid, pg, init in ipis))
        out.append(f"    cpu{c}: {'runs ' + cpu['running'] if cpu['running'] else 'idle'}; {flight}; {pend}")
    if st:
        def word(t: str, f: int, w: int) -> str:  # the sleeper's own page, if it still sees the frame
            pid = int(t[1:].split(".")[0])
            pages = next((p["pages"] for p in st["procs"] if p["pid"] == pid), {})
            return next((f"{pg}.{w}" for pg, v in pages.items() if v["seen"] == f), f"frame f{f} word {w}")

        sleeping = {t: word(t, f, w) for t, f, w in st["sleepers"]}
        threads = []
        for p in st["procs"]:
            for t, state in p["threads"]:
                where = next((f" on cpu{c}" for c, cpu in enumerate(cpus) if cpu["running"] == t), "")
                why = f" (umtx_sleep on {sleeping[t]})" if t in sleeping else ""
                threads.append(f"{t} {state}{where}{why}")
        out.append("    threads: " + (", ".join(threads) or "none"))
    else:
        out.append("    threads: P1.T1 running on cpu0")
    return out


def is_program_name(name: str) -> bool:
    """Whether a file met while walking a directory is taken as a program: `.txt`/`.vm`
    (text), `.bytes` (byte form), or a name without suffix — libFuzzer names corpus inputs by
    their SHA-1 and artifacts `crash-<sha1>`, `timeout-…`. Anything else (README.md, a PNG,
    fuzz.log, JSON) is skipped. A file named on the command line is always a program."""
    base = os.path.basename(name)
    if base.startswith("."):
        return False
    return base.endswith(TEXT_SUFFIXES + BYTES_SUFFIXES) or "." not in base


def walk_programs(paths: list[str]) -> tuple[list[str], list[str]]:
    """(programs, skipped files): files named (`-`: standard input), and under directories
    named the files that `is_program_name` accepts (sorted; hidden files and directories are
    left out silently; symbolic links to directories are followed once). A FIFO, socket or
    device met in a directory is skipped (reading it could block forever; the entry says
    why); one named is read. Raises InputError for a path that does not exist, a tree deeper
    than MAX_DEPTH levels, and a symbolic link back to a directory above it (a loop)."""
    out: list[str] = []
    skipped: list[str] = []
    for p in paths:
        if p == STDIN:
            out.append(p)
        elif os.path.isdir(p):
            _walk_dir(p, out, skipped)
        elif os.path.exists(p) or os.path.islink(p):  # a dangling link or a loop: load says which
            out.append(p)
        else:
            raise _missing(p) if os.path.islink(p) else InputError(f"{p}: no such file or directory")
    return out, skipped


def _walk_dir(top: str, out: list[str], skipped: list[str]) -> None:
    """Depth first, sorted, iterative (os.walk recursed: a directory 1,000 deep was a
    RecursionError traceback)."""
    seen: set[str] = set()
    stack: list[tuple[str, int, tuple[str, ...]]] = [(top, 0, ())]  # (dir, depth, real paths above)
    while stack:
        d, depth, above = stack.pop()
        real = os.path.realpath(d)
        if real in above:
            raise InputError(f"{d}: a symbolic link loop (it leads back to {real}, a directory above it)")
        if real in seen:  # the same directory reached twice through links: walked once
            continue
        if depth > MAX_DEPTH:
            raise InputError(f"{top}: more than {MAX_DEPTH} directory levels below it: refused (a runaway tree?)")
        seen.add(real)
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except OSError as e:
            raise InputError(f"{d}: cannot read the directory: {e.strerror}") from None
        subdirs = []
        for e in entries:
            if e.name.startswith("."):
                continue
            path = os.path.join(d, e.name)
            try:
                is_dir = e.is_dir()  # follows links
            except OSError:
                is_dir = False
            if is_dir:
                subdirs.append(path)
                continue
            if not is_program_name(e.name):
                skipped.append(path)
                continue
            try:
                mode = os.stat(path).st_mode
            except OSError:
                out.append(path)  # a dangling link, a link loop: load names it as a bad input
                continue
            if stat.S_ISREG(mode):
                out.append(path)
            else:
                what = ("a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
                        else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")
                skipped.append(f"{path} ({what})")
        for sd in reversed(subdirs):  # popped in sorted order
            stack.append((sd, depth + 1, above + (real,)))
    return None


def walk(paths: list[str]) -> list[str]:
    """The programs of `walk_programs`, without the skipped files."""
    return walk_programs(paths)[0]


def encode_text_corpus(corpus: str, dst: str, kernel: str, hw: str | None) -> list[str]:
    """A campaign's corpus directory may hold text programs (a reproducer dropped in by hand):
    libFuzzer reads every file as the byte form, so each is encoded here (under the campaign's
    kernel and hardware, as its seeds are) into `dst`, a directory libFuzzer also reads, as
    `text-<sha1>`. A text program that does not parse (or has contradictory header lines)
    raises InputError naming the line, before the campaign starts; one not applicable under
    `kernel` is left out with a note. Byte-form files are libFuzzer's as they are. Returns the
    lines to show."""
    import hashlib

    notes: list[str] = []
    encoded = 0
    for f in walk([corpus]) if os.path.isdir(corpus) else []:
        if f.endswith(BYTES_SUFFIXES):
            continue
        try:
            raw = _read_file(f)
        except InputError:
            continue  # empty, too large, unreadable: libFuzzer's own handling
        text = _decode(raw) if f.endswith(TEXT_SUFFIXES) else _looks_like_text(raw, f)
        if text is None:
            if f.endswith(TEXT_SUFFIXES):
                raise InputError(f"{f}: not a text program (invalid UTF-8)")
            continue
        _check_text(f, text)
        try:
            data = _core.encode(text, kernel, hw)
        except ValueError as e:
            notes.append(f"# corpus: {f}: left out, not applicable under {kernel} ({visible(str(e))})")
            continue
        with open(os.path.join(dst, f"text-{hashlib.sha1(data).hexdigest()}"), "wb") as out:
            out.write(data)
        encoded += 1
    if encoded:
        notes.insert(0, f"# corpus: {encoded} text program(s) in {corpus} encoded to the byte form "
                        f"(kernel {kernel}, {hw or 'their own hw'}) as seeds")
    return notes
