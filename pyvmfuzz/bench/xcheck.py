"""What the campaign's default oracle cross-check costs: the harness's own callback
(campaign.harness.make_test_one_input) over the same random inputs, with the cross-check off
and on (adaptive default), alternated in one run so machine noise hits both alike."""

from __future__ import annotations

import random
import tempfile
import time

from pyvmfuzz import api as _api


def measure(kernel: str = "fixed", seconds: float = 1.0, rounds: int = 10, seed: int = 1) -> dict:
    """{"off": exec/s, "on": exec/s, "checked": clean runs judged by the oracle (on),
    "seconds": wall time per setting}. Rates are executions per CPU second of this process,
    medians over `rounds` alternating rounds of `seconds` each."""
    import statistics

    from pyvmfuzz import _core
    from pyvmfuzz.campaign.harness import CrossCheck, FindingHandler, make_test_one_input

    rng = random.Random(seed)
    inputs = [rng.randbytes(2 + 5 * rng.randrange(1, 33)) for _ in range(4096)]
    target = _core.FuzzTarget(kernel, "mode=pc64")
    rates = {"off": [], "on": []}
    checked = 0
    spent = 0.0
    max_cost = 0.0  # the largest single judgement (s)
    with tempfile.TemporaryDirectory(prefix="pyvmfuzz-xcheck-") as crashes:
        found = FindingHandler(kernel, "mode=pc64", crashes, None)
        from pyvmfuzz.oracle.check import judge_report

        judge_report(_api.report(inputs[0], kernel, "mode=pc64"))  # imports and warm-up, as in a campaign
        for _ in range(rounds):
            for setting in ("off", "on"):
                xc = CrossCheck(_core, kernel, "mode=pc64", found, 0 if setting == "off" else None)
                one = make_test_one_input(target.run, found, xc)
                n = 0
                t0, c0 = time.perf_counter(), time.process_time()
                while time.perf_counter() - t0 < seconds:
                    for d in inputs[(n & 4095):(n & 4095) + 256]:
                        one(d)
                    n += 256
                # per CPU second: other processes on a shared machine steal wall time, not CPU
                rates[setting].append(n / max(time.process_time() - c0, 1e-9))
                if setting == "on":
                    checked += xc.checked + xc.flushed
                    spent += xc.spent
                    max_cost = max(max_cost, xc.max_cost)
    return {"off": statistics.median(rates["off"]), "on": statistics.median(rates["on"]),
            "checked": checked, "seconds": seconds * rounds, "share": spent / (seconds * rounds),
            "max_cost": max_cost}


def report(res: dict) -> str:
    cost = 100 * (1 - res["on"] / res["off"])
    return (f"cross-check off {res['off']:,.0f} exec/CPU-s, on (default) {res['on']:,.0f} exec/CPU-s: "
            f"ratio {res['on'] / res['off']:.3f}, cost {cost:.1f}% ({res['checked']:,} clean runs judged "
            f"by the oracle in {res['seconds']:.0f} s, {100 * res['share']:.2f}% of the wall time spent judging)")
