"""`pyvmfuzz cmin`: keep a small subset of a corpus with the same coverage, where coverage is
the Rust core's semantic features (rust/src/features.rs) plus the verdict kind of each input.
Greedy set cover, smallest inputs first (as libFuzzer's merge does). The output is a corpus a
campaign reads: every kept input in the byte form (a text program encoded under the kernel
and hardware given), named by the SHA-1 of its bytes as libFuzzer names corpus inputs, so two
inputs of one name in different subdirectories are both kept."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile

from pyvmfuzz import _core
from pyvmfuzz import api as _api
from pyvmfuzz.programs import InputError, load, walk


def byte_form(path: str, kernel: str, hw: str | None) -> bytes:
    """The input as libFuzzer runs it: a byte-form file as it is, a text program encoded."""
    pf = load(path)
    if not pf.is_text:
        return pf.data
    try:
        return _core.encode(pf.text, kernel, hw)
    except ValueError as e:
        raise InputError.from_core(e, path) from None


def features_of(path: str, kernel: str, hw: str | None) -> tuple[set, int]:
    feats, data = _features(byte_form(path, kernel, hw), kernel, hw)
    return feats, len(data)


def _features(data: bytes, kernel: str, hw: str | None) -> tuple[set, bytes]:
    feats = set(_core.semantic_features(data, kernel, hw))
    v = _api.report(data, kernel, hw)["violation"]
    if v is not None:
        feats.add(f"verdict:{v['kind']}")
    return feats, data


def cmin(src: str, dst: str, kernel: str, hw: str | None) -> tuple[int, int, int]:
    """Returns (inputs before, inputs kept, features). `dst` must be new or empty; files under
    `src` that are not programs (`programs.is_program_name`) are left out. Every input is read
    before anything is written: inputs that do not load (empty, oversized, not parsing, a text
    program not applicable under `kernel`) raise one InputError naming the first and counting
    the rest, and nothing is written. The kept inputs are written to a temporary directory
    beside `dst`, renamed to `dst` once complete: an interrupted cmin leaves no `dst` that
    looks finished."""
    if os.path.abspath(src) == os.path.abspath(dst):
        raise InputError(f"{dst}: the output directory must differ from the input")
    # Merging into a folder that holds other inputs would hand back more than the minimal set.
    if os.path.isdir(dst) and os.listdir(dst):
        raise InputError(f"{dst}: exists and is not empty (cmin writes a new corpus: name a new or empty directory)")
    if os.path.lexists(dst) and not os.path.isdir(dst):
        raise InputError(f"{dst}: exists and is not a directory")
    files = walk([src])
    if not files:
        raise InputError(f"{src}: no inputs found")
    scored = []
    bad: list[str] = []
    for f in files:
        try:
            feats, data = _features(byte_form(f, kernel, hw), kernel, hw)
        except InputError as e:  # read on: the user gets the whole count, not one file per run
            bad.append(str(e))
            continue
        scored.append((len(data), f, feats, data))
    if bad:
        # A corpus minimized without some of its inputs could silently lose their coverage.
        more = f" (and {len(bad) - 1} more bad input(s))" if len(bad) > 1 else ""
        raise InputError(f"{bad[0]}{more}; nothing written")
    # Greedy set cover with lazy gains: take the input adding the most uncovered features
    # (ties: the smaller, then by path), until everything the corpus covers is covered.
    import heapq

    heap = [(-len(feats), size, f, i) for i, (size, f, feats, _) in enumerate(scored)]
    heapq.heapify(heap)
    covered: set = set()
    keep: dict[str, bytes] = {}  # SHA-1 name -> bytes: inputs of equal bytes are one input
    while heap:
        neg, size, f, i = heapq.heappop(heap)
        gain = len(scored[i][2] - covered)
        if gain == 0:
            continue
        if gain < -neg:  # stale gain: re-queue with the current one
            heapq.heappush(heap, (-gain, size, f, i))
            continue
        data = scored[i][3]
        keep[hashlib.sha1(data).hexdigest()] = data
        covered |= scored[i][2]
    _write_corpus(dst, keep)
    return len(files), len(keep), len(covered)


def _write_corpus(dst: str, keep: dict[str, bytes]) -> None:
    """Every input into a new directory beside `dst`, then one rename: until it, `dst` is
    absent (or the empty directory it was); on any failure or Ctrl-C the temporary one goes."""
    parent = os.path.dirname(os.path.abspath(dst))
    try:
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(dst))}.cmin-", dir=parent)
    except OSError as e:
        raise InputError(f"{dst}: cannot write: {e.strerror}") from None
    try:
        for name, data in keep.items():
            with open(os.path.join(tmp, name), "wb") as fh:
                fh.write(data)
        os.chmod(tmp, 0o777 & ~_umask())
        os.rename(tmp, dst)  # an empty `dst` (checked above) is replaced
    except OSError as e:
        raise InputError(f"{dst}: cannot write: {e.strerror}") from None
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def corpus_features(d: str, kernel: str, hw: str | None) -> set:
    out: set = set()
    for f in walk([d]):
        out |= features_of(f, kernel, hw)[0]
    return out
