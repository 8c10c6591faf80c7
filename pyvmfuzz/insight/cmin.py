"""`pyvmfuzz cmin`: keep a small subset of a corpus with the same coverage, where coverage is
the Rust core's semantic features (rust/src/features.rs) plus the verdict kind of each input.
Greedy set cover, smallest inputs first (as libFuzzer's merge does)."""

from __future__ import annotations

import os


from pyvmfuzz import _core
from pyvmfuzz.campaign.findings import atomic_write
from pyvmfuzz.programs import InputError, load, walk


def features_of(path: str, kernel: str, hw: str | None) -> tuple[set, int]:
    pf = load(path)
    if pf.is_text:
        try:
            data = _core.encode(pf.text, kernel, hw)
        except ValueError as e:
            raise InputError(f"{path}: {e}") from None
    else:
        data = pf.data
    feats = set(_core.semantic_features(data, kernel, hw))
    v = _core.run_bytes(data, kernel, hw)["violation"]
    if v is not None:
        feats.add(f"verdict:{v['kind']}")
    return feats, os.path.getsize(path)


def cmin(src: str, dst: str, kernel: str, hw: str | None) -> tuple[int, int, int]:
    """Returns (inputs before, inputs kept, features). `dst` must be new or empty; files under
    `src` that are not programs (`programs.is_program_name`) are left out. Every input is read
    before anything is written: inputs that do not load (empty, oversized, not parsing) raise
    one InputError naming the first and counting the rest, and nothing is written."""
    if os.path.abspath(src) == os.path.abspath(dst):
        raise InputError(f"{dst}: the output directory must differ from the input")
    # Merging into a folder that holds other inputs would hand back more than the minimal set.
    if os.path.isdir(dst) and os.listdir(dst):
        raise InputError(f"{dst}: exists and is not empty (cmin writes a new corpus: name a new or empty directory)")
    if os.path.exists(dst) and not os.path.isdir(dst):
        raise InputError(f"{dst}: exists and is not a directory")
    files = walk([src])
    if not files:
        raise InputError(f"{src}: no inputs found")
    scored = []
    bad: list[str] = []
    for f in files:
        try:
            feats, size = features_of(f, kernel, hw)
        except InputError as e:  # read on: the user gets the whole count, not one file per run
            bad.append(str(e))
            continue
        scored.append((size, f, feats))
    if bad:
        # A corpus minimized without some of its inputs could silently lose their coverage.
        more = f" (and {len(bad) - 1} more bad input(s))" if len(bad) > 1 else ""
        raise InputError(f"{bad[0]}{more}; nothing written")
    # Greedy set cover with lazy gains: take the input adding the most uncovered features
    # (ties: the smaller, then by name), until everything the corpus covers is covered.
    import heapq

    heap = [(-len(feats), size, f, i) for i, (size, f, feats) in enumerate(scored)]
    heapq.heapify(heap)
    covered: set = set()
    keep = []
    while heap:
        neg, size, f, i = heapq.heappop(heap)
        gain = len(scored[i][2] - covered)
        if gain == 0:
            continue
        if gain < -neg:  # stale gain: re-queue with the current one
            heapq.heappush(heap, (-gain, size, f, i))
            continue
        keep.append(f)
        covered |= scored[i][2]
    try:
        os.makedirs(dst, exist_ok=True)
        for f in keep:
            with open(f, "rb") as fh:
                atomic_write(os.path.join(dst, os.path.basename(f)), fh.read())
    except OSError as e:
        raise InputError(f"{dst}: cannot write: {e.strerror}") from None
    return len(files), len(keep), len(covered)


def corpus_features(d: str, kernel: str, hw: str | None) -> set:
    out: set = set()
    for f in walk([d]):
        out |= features_of(f, kernel, hw)[0]
    return out



