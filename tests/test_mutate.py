"""The record-aware mutator (rust/src/mutate.rs, issue 17): mutations keep the byte form's
records whole, record boundaries are the decoder's, and a campaign really calls it."""

import os
import random
import subprocess
import sys

import pytest

from pyvmfuzz import _core

KERNEL = "fixed"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _records(data: bytes) -> list[bytes]:
    """Records as codec.rs's decoder consumes them (5 bytes; a value or pid byte 0xff is
    followed by a u32; missing bytes read as 0) — written here from the format's doc, not
    from mutate.rs."""
    out, pos = [], 2
    while pos < len(data):
        rec = data[pos:pos + 5].ljust(5, b"\0")
        n = 5 + (4 if rec[2] == 0xFF else 0) + (4 if rec[3] == 0xFF else 0)
        out.append(data[pos:pos + n].ljust(n, b"\0"))  # a short record reads zero-padded
        pos += n
    return out


def _random_program(rng: random.Random, n: int) -> bytes:
    data = bytearray([rng.randrange(256), rng.randrange(256)])
    for _ in range(n):
        rec = bytearray(rng.randrange(256) for _ in range(5))
        rec[2], rec[3] = rec[2] % 0xFF, rec[3] % 0xFF
        if rng.random() < 0.15:
            rec[2] = 0xFF
            rec += bytes(rng.randrange(256) for _ in range(4))
        data += rec
    if rng.random() < 0.2:  # a short last record, as libFuzzer leaves them
        data = data[:-rng.randrange(1, 4)]
    return bytes(data)


def test_mutations_change_at_most_two_records():
    """libFuzzer's byte insertion shifts every later record; a record mutation adds, drops or
    changes at most two lines and keeps the others byte for byte."""
    rng = random.Random(5)
    changed = 0
    for seed in range(3000):
        data = _random_program(rng, rng.randrange(1, 12))
        out = _core.mutate(data, 200, seed)
        if out is None:
            continue  # left to libFuzzer's own mutation
        changed += 1
        assert 2 <= len(out) <= 200 and out != data
        before, after = _records(data), _records(out)
        new = [r for r in after if r not in before]
        assert len(new) <= 2, (data.hex(), out.hex())
        assert len(before) - sum(r in after for r in before) <= 2 or len(after) < len(before)
    # about two thirds of the calls mutate records; the rest go to libFuzzer
    assert 1500 < changed < 2500


def test_mutate_respects_max_size():
    data = _random_program(random.Random(1), 30)
    for seed in range(500):
        out = _core.mutate(data, 40, seed)
        assert out is None or len(out) <= 40


def test_a_record_boundary_keeps_the_decoded_prefix():
    """Appending at a record boundary (where the mutator inserts) never changes the steps
    before it: the mutator's boundaries are the decoder's, escapes included."""
    rng = random.Random(9)
    for _ in range(300):
        data = _random_program(rng, rng.randrange(2, 10))
        prefix = _core.decode(data, KERNEL)
        for seed in range(3):
            out = _core.mutate(data, 400, seed)
            if out is None or len(out) <= len(data) or out[: len(data)] != data:
                continue  # an append keeps the input as its prefix
            assert _core.decode(out, KERNEL).startswith(prefix.rstrip("\n")), (data.hex(), out.hex())


def test_crossover_splices_whole_records():
    rng = random.Random(3)
    for seed in range(300):
        a, b = _random_program(rng, 5), _random_program(rng, 5)
        out = _core.crossover(a, b, 200, seed)
        assert out[:2] == a[:2]
        pool = _records(a) + _records(b)
        assert all(r in pool for r in _records(out)), (a.hex(), b.hex(), out.hex())


def _campaign_execs(tmp_path, mutator, called, budget=("--time", "60", "--", "-runs=2000")):
    """A campaign with `mutator` (default: 2,000 runs, libFuzzer's -runs); returns its execs."""
    out = tmp_path / "c"
    p = subprocess.run([sys.executable, "-P", "-m", "pyvmfuzz", "fuzz", "--kernel", KERNEL,
                        "--seed", "1", "--out", str(out), "--quiet", "--mutator", mutator, *budget],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    log = (out / "fuzz.log").read_text()
    assert f"mutator {mutator}" in log
    assert ("found LLVMFuzzerCustomMutator" in log) == called, log[:2000]
    execs = int(p.stdout.split(" execs (")[0].rsplit(", ", 1)[1].replace(",", ""))
    assert execs > 0, p.stdout
    return execs


@pytest.mark.parametrize("mutator,called", [("records", True), ("bytes", False)])
def test_a_campaign_calls_the_custom_mutator(tmp_path, mutator, called):
    """libFuzzer binds LLVMFuzzerCustomMutator when it is loaded: loaded in the wrong order,
    the mutator is silently never called (it was, before the harness loaded atheris's
    mutator modules first). libFuzzer says so in its log when it finds one."""
    _campaign_execs(tmp_path, mutator, called)


@pytest.mark.slow  # wall-clock speed
def test_a_campaign_with_the_custom_mutator_runs_over_1000_execs_in_2_s(tmp_path):
    assert _campaign_execs(tmp_path, "records", True, ("--time", "2")) > 1000


def test_mutants_of_a_witness_prefix_finish_the_race():
    """From cow-make-before-break's witness cut before its last line, the record mutator
    completes the stale read in a few percent of mutants (measured 4.5%; libFuzzer's byte
    mutations left it unfound for 30 s seeded with a shorter cut), and its biased new lines
    beat uniform ones over all the litmus witnesses (`bench --finish`)."""
    from pyvmfuzz.bench import finish

    ws = {(w[0], w[1]): w for w in finish.witnesses(os.path.join(ROOT, "corpus", "litmus"))}
    name, kernel, kind, step, hw, ops = ws[("19-cow-make-before-break.txt", "cow-make-before-break")]
    prefix = _core.encode("\n".join(hw + ops[: step - 1]) + "\n", kernel)
    assert finish.finish_rate(prefix, kernel, kind, 4000, False) > 40  # > 1%
    total = {u: 0 for u in (False, True)}
    for _, kernel, kind, step, hw, ops in ws.values():
        for cut in (1, 2):
            if step - cut >= 1:
                prefix = _core.encode("\n".join(hw + ops[: step - cut]) + "\n", kernel)
                for u in total:
                    total[u] += finish.finish_rate(prefix, kernel, kind, 2000, u)
    assert total[False] > 1.5 * total[True], total  # measured 2.76 with 20,000 each
