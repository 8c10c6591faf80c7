"""The Rust core: determinism, the byte form, the soak of random programs, the panic path."""

import random
import subprocess
import sys

import pytest

from pyvmfuzz import _core

from conftest import KERNELS


def random_inputs(n, seed, max_len=2 + 4 * 64):
    rng = random.Random(seed)
    return [rng.randbytes(rng.randrange(0, max_len)) for _ in range(n)]


def op_lines(text):
    return [ln for ln in text.splitlines() if ln.startswith("cpu")]


def test_same_bytes_same_trace_in_two_processes():
    inputs = random_inputs(200, seed=7)
    code = (
        "import sys, json; from pyvmfuzz import _core\n"
        "data = [bytes.fromhex(h) for h in json.load(sys.stdin)]\n"
        "for k in ('fixed', 'pre-385c96e4', 'partial-385c96e4'):\n"
        "    for d in data:\n"
        "        r = _core.run_bytes(d, k)\n"
        "        print(r['trace_text'], r['violation'])\n"
    )
    import json

    payload = json.dumps([d.hex() for d in inputs])
    outs = [
        subprocess.run([sys.executable, "-P", "-c", code], input=payload, capture_output=True, text=True, check=True).stdout
        for _ in range(2)
    ]
    assert outs[0] == outs[1]
    assert outs[0].count("cpu") > 1000  # the programs did run


def _random_bytes_run_and_round_trip(kernel, n):
    """Every byte string decodes to a valid program; its text parses back to itself; encoding
    it gives bytes that decode to the same program."""
    for i, data in enumerate(random_inputs(n, seed=11)):
        rep = _core.run_bytes(data, kernel)
        assert len(rep["trace"]) == len(rep["steps"])
        if i % 10:  # the full round trip on a tenth keeps this test a few seconds long
            continue
        text = _core.decode(data, kernel)
        ops = op_lines(text)
        assert op_lines(_core.canonical(text)) == ops
        again = _core.decode(_core.encode(text, kernel), kernel)
        assert again == text
        # The run stops at a violation; its steps are a prefix of the decoded program.
        assert rep["steps"] == ops[: len(rep["steps"])]


@pytest.mark.parametrize("kernel", KERNELS)
def test_random_bytes_run_and_round_trip(kernel):
    """The first 10,000 (fixed) or 2,000 (other kernels) inputs of the test below."""
    _random_bytes_run_and_round_trip(kernel, 10_000 if kernel == "fixed" else 2_000)


@pytest.mark.slow
@pytest.mark.parametrize("kernel", KERNELS)
def test_100k_random_bytes_run_and_round_trip(kernel):
    _random_bytes_run_and_round_trip(kernel, 100_000 if kernel == "fixed" else 10_000)


def test_encode_escapes_large_values_and_pids():
    text = "cpu0 store data0.0 0xdeadbeef\ncpu0 procfs_read P77 data0.0\ncpu0 procfs_write P1 text0.1 0x1ff\n"
    for k in KERNELS:
        b = _core.encode(text, k)
        assert op_lines(_core.decode(b, k)) == op_lines(_core.canonical(text))


def test_one_byte_change_usually_alters_one_step():
    rng = random.Random(5)
    local = 0
    trials = 2000
    for _ in range(trials):
        data = bytearray(rng.randbytes(2 + 4 * 24))
        before = op_lines(_core.decode(bytes(data), "fixed"))
        i = rng.randrange(2, len(data))
        data[i] = rng.randrange(256)
        after = op_lines(_core.decode(bytes(data), "fixed"))
        diff = sum(a != b for a, b in zip(before, after)) + abs(len(before) - len(after))
        local += diff <= 1
    assert local / trials > 0.6, local / trials


def _fixed_pc64_soak(programs):
    """`programs` random programs (up to 64 steps, 1-4 CPUs, TLB 1-16): no violation."""
    r = _core.soak(programs, seed=2026, kernel="fixed", max_steps=64, max_cpus=4, max_tlb=16, mode="pc64")
    print(f"\nfixed/pc64: {r['programs']} programs, {r['steps']} steps, {r['violations']} violations")
    assert r["programs"] == programs
    assert r["steps"] > 20 * programs
    assert r["violations"] == 0, r["examples"]


def test_fixed_pc64_soak_is_clean_small():
    _fixed_pc64_soak(50_000)


@pytest.mark.slow
def test_fixed_pc64_soak_is_clean():
    _fixed_pc64_soak(1_000_000)


def test_soak_finds_the_prefix_kernels_and_tagged():
    for kernel, mode, kind in (
        ("pre-385c96e4", "pc64", "protection"),
        ("partial-385c96e4", "pc64", "stale-read"),
        ("fixed", "tagged", "tlb-incoherent"),
    ):
        r = _core.soak(50_000, seed=3, kernel=kernel, mode=mode)
        assert r["violations"] > 0
        kinds = {e["kind"] for e in r["examples"]}
        # fixed on tagged: a stale entry may also outlive its frame once SPEC §3.4's ops free
        # frames (the first broken invariant is then use-after-free)
        assert kind in kinds and kinds <= ({kind, "use-after-free"} if mode == "tagged" else {kind}), kinds


def test_model_assertion_is_a_panic_violation_not_a_crash():
    rep = _core._selftest_panic("cpu0 store data0.0 1\ncpu0 load data0.0\ncpu0 fork\n", 2)
    assert rep["violation"]["kind"] == "panic"
    assert rep["violation"]["step"] == 2
    assert "self-test model assertion" in rep["violation"]["observed"]
    assert rep["trace"] == ["ok", "panic"]
    # The process survives and the next run is unaffected.
    assert _core.run_text("cpu0 load data0.0")["trace"] == ["0x0"]


def test_fuzz_target_matches_run_bytes():
    kinds = _core.kinds()
    for k in KERNELS:
        t = _core.FuzzTarget(k)
        inputs = random_inputs(3000, seed=9)
        batch = t.run_batch(inputs)
        for data, (code, step) in zip(inputs, batch):
            rep = _core.run_bytes(data, k)
            v = rep["violation"]
            assert (code, step) == ((0, 0) if v is None else (kinds.index(v["kind"]) + 1, v["step"]))
            assert t.run(data) == (code, step)


def test_hw_override_and_header():
    prog = "hw cpus=3 tlb=2 mode=tagged\ncpu2 switch idle\n"
    assert _core.run_text(prog)["hw"] == "hw cpus=3 tlb=2 mode=tagged"
    assert _core.run_text(prog, hw="mode=pc64")["hw"] == "hw cpus=3 tlb=2 mode=pc64"
    with pytest.raises(ValueError, match="line 2: cpu2 beyond"):
        _core.run_text(prog, hw="cpus=2")


def test_tlb_capacity_is_fifo():
    # With one TLB entry, touching another page evicts the first; behaviour stays correct.
    prog = "hw tlb=1\ncpu0 store data0.0 1\ncpu0 load data1.0\ncpu0 fork\ncpu0 store data0.0 2\ncpu1 switch P2.T1\ncpu1 load data0.0 -> 0x1\n"
    rep = _core.run_text(prog)
    assert rep["violation"] is None and rep["assert_failures"] == []


def test_tlb_evicts_in_fifo_order():
    """SPEC 2.1: K entries per CPU, FIFO replacement. A hit does not refresh an entry (that
    would be LRU): after data0, data1, data2, a hit on data1, then data3, a 2-entry TLB holds
    data2 and data3 — LRU would keep data1, evict-newest would keep data0."""
    prog = "hw cpus=1 tlb=2\n" + "".join(f"cpu0 load {p}.0\n" for p in ("data0", "data1", "data2", "data1", "data3"))
    states = _core.explain(prog)["states"]
    order = [[va for _, va, _, _ in s["cpus"][0]["tlb"]] for s in states]
    assert order == [["data0"], ["data0", "data1"], ["data1", "data2"], ["data1", "data2"], ["data2", "data3"]]


@pytest.mark.parametrize("mode", ["pc64", "tagged"])
@pytest.mark.parametrize("kernel", KERNELS)
def test_incremental_invariant_checks_match_full_checks(kernel, mode):
    """The hot path checks only what a step could have broken; a full check must agree."""
    mismatches, flagged = _core._selftest_invariants(5000, seed=13, kernel=kernel, mode=mode)
    assert mismatches == 0


@pytest.mark.parametrize("mode", ["pc64", "tagged"])
def test_invariants_flag_a_tlb_fill_that_caches_a_wrong_bit(mode):
    """A planted fault: every TLB fill caches the entry writable whatever the PTE says. The
    coherence invariant must catch it after the fill itself (not only after PTE changes), and
    the incremental check must agree with the full one on every step."""
    mismatches, flagged = _core._selftest_invariants(3000, seed=17, kernel="fixed", mode=mode, plant_fill_writable=True)
    assert mismatches == 0
    # many random programs load a read-only page (text) early: 898 of 3,000 with nine pages
    assert flagged > 600
    clean_mismatches, clean_flagged = _core._selftest_invariants(3000, seed=17, kernel="fixed", mode="pc64")
    assert (clean_mismatches, clean_flagged) == (0, 0)


@pytest.mark.parametrize("programs", [25_000, pytest.param(500_000, marks=pytest.mark.slow)])
@pytest.mark.parametrize("mode", ["pc64", "tagged"])
def test_fixed_tagged_is_clean_on_both_hardware_modes(mode, programs):
    r = _core.soak(programs, seed=99, kernel="fixed-tagged", max_steps=64, max_cpus=4, max_tlb=16, mode=mode)
    assert r["programs"] == programs and r["violations"] == 0, r["examples"]


@pytest.mark.parametrize("programs", [20_000, pytest.param(100_000, marks=pytest.mark.slow)])
def test_zoo_metadata_matches_random_search(programs):
    """Every zoo member that must be found shows up under random programs on its hardware
    (except the lost wakeup, which needs guidance), and the clean ones stay clean. (The first
    20,000 programs of seed 5 find every one of them: switch-clear-early's 4 and no-revalidate's
    2 are the fewest.)"""
    for z in _core.zoo():
        mode = z["hw"].split("=")[1]
        r = _core.soak(programs, seed=5, kernel=z["name"], max_steps=32, mode=mode)
        if not z["expect_found"]:
            assert r["violations"] == 0, z["name"]
        elif z["name"] not in NOT_FOUND_BY_RANDOM:
            assert r["violations"] > 0, z["name"]


# Measured (seed 5, 100,000 random programs of <= 32 steps, pc64): no violation. Their witnesses
# are corpus/litmus/07, 16, 17, 19, 21, 23 (checked by test_litmus); campaigns need guidance.
NOT_FOUND_BY_RANDOM = {"no-cow-event", "umtx-no-recheck", "pre-10192bae", "cow-make-before-break",
                       "procfs-hold-only", "dirty-cow",
                       # issue 23's deferred-flush needs a second PTE operation to run while the
                       # first is paused at ipi_wait (litmus 20): 0 in 100,000 here too
                       "deferred-flush",
                       # SPEC §3.4's (measured, seed 5, <= 32 steps): mremap-flush-late needs a
                       # pageout of the new address while the move is paused at ipi_wait (litmus
                       # 35): 0 in 100,000; clearbit-wrong-va needs an msync while another CPU
                       # holds a dirty entry for file0 (litmus 37): 0 in 20,000, 2 in 100,000
                       "mremap-flush-late", "clearbit-wrong-va"}


def test_machine_reuse_leaves_no_residue():
    """The core reuses one machine per thread: a program's trace must not depend on what ran
    before it (other kernels, tagged hardware, more CPUs, a model panic)."""
    probes = random_inputs(50, seed=31)
    before = [(_core.run_bytes(d, "fixed")["trace_text"], _core.run_bytes(d, "partial-385c96e4", "mode=tagged")["trace_text"])
              for d in probes]
    for i, d in enumerate(random_inputs(2000, seed=32)):
        _core.run_bytes(d, ["fixed-tagged", "pre-385c96e4", "no-cow-event"][i % 3], "mode=tagged" if i % 2 else None)
        if i % 500 == 0:
            _core._selftest_panic("hw cpus=8 tlb=64\ncpu0 fork\ncpu0 spawn\ncpu0 store data0.0 1\n", 3)
    after = [(_core.run_bytes(d, "fixed")["trace_text"], _core.run_bytes(d, "partial-385c96e4", "mode=tagged")["trace_text"])
             for d in probes]
    assert before == after


def test_soak_never_counts_a_panicking_program_as_clean():
    """With the self-test hook every run raises a model assertion at step 3: the soak counts
    those programs as violations (kind panic), and the invariant self-test as mismatches."""
    code = (
        "from pyvmfuzz import _core\n"
        "r = _core.soak(2000, seed=4, kernel='fixed', max_steps=8)\n"
        "print(r['violations'], sorted({e['kind'] for e in r['examples']}))\n"
        "print(_core._selftest_invariants(500, seed=4, kernel='fixed', mode='pc64')[0])\n"
    )
    import os

    env = dict(os.environ, PYVMFUZZ_SELFTEST_PANIC_AT="3")
    out = subprocess.run([sys.executable, "-P", "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    soak_line, inv_line = out.splitlines()
    n, kinds = soak_line.split(" ", 1)
    # Programs of fewer than 3 steps never reach the assertion; every other one is a violation.
    assert int(n) > 1000 and kinds == "['panic']", out
    assert int(inv_line) > 300, out
