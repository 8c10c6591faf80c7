"""What the campaign's default oracle cross-check costs: the harness's own callback
(campaign.harness.make_test_one_input) over the same random inputs, with the cross-check off
and on (adaptive default), alternated in one run so machine noise hits both alike."""

from __future__ import annotations

import random
import tempfile
import time


def measure(kernel: str = "fixed", seconds: float = 2.0, rounds: int = 3, seed: int = 1) -> dict:
    """{"off": exec/s, "on": exec/s, "checked": clean runs judged by the oracle (on),
    "seconds": per round and setting}. Rates are medians over `rounds`."""
    import statistics

    from pyvmfuzz import _core
    from pyvmfuzz.campaign.harness import CrossCheck, FindingHandler, make_test_one_input

    rng = random.Random(seed)
    inputs = [rng.randbytes(2 + 4 * rng.randrange(1, 33)) for _ in range(4096)]
    target = _core.FuzzTarget(kernel, "mode=pc64")
    rates = {"off": [], "on": []}
    checked = 0
    with tempfile.TemporaryDirectory(prefix="pyvmfuzz-xcheck-") as crashes:
        found = FindingHandler(kernel, "mode=pc64", crashes, None)
        for _ in range(rounds):
            for setting in ("off", "on"):
                xc = CrossCheck(_core, kernel, "mode=pc64", found, 0 if setting == "off" else None)
                one = make_test_one_input(target.run, found, xc)
                n = 0
                t0 = time.perf_counter()
                while time.perf_counter() - t0 < seconds:
                    for d in inputs[(n & 4095):(n & 4095) + 256]:
                        one(d)
                    n += 256
                rates[setting].append(n / (time.perf_counter() - t0))
                if setting == "on":
                    checked += xc.checked
    return {"off": statistics.median(rates["off"]), "on": statistics.median(rates["on"]),
            "checked": checked, "seconds": seconds * rounds}


def report(res: dict) -> str:
    cost = 100 * (1 - res["on"] / res["off"])
    return (f"cross-check off {res['off']:,.0f} exec/s, on (default) {res['on']:,.0f} exec/s: "
            f"ratio {res['on'] / res['off']:.3f}, cost {cost:.1f}% ({res['checked']:,} clean runs judged "
            f"by the oracle in {res['seconds']:.0f} s)")
