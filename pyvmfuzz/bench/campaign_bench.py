"""`pyvmfuzz bench --campaign`: where a campaign's executions go (issue 18).

Five harnesses under the same libFuzzer (atheris), on the same inputs, in one run:
- `empty`: an atheris callback that does nothing (the ceiling);
- `run`: `FuzzTarget.run` alone as the callback (the core, no coverage, no findings path);
- `semrun`: `FuzzTarget.run` with the semantic counters, itself atheris's callback (no Python
  frame per execution, no findings path, no cross-check): `full` minus this is what the
  harness's Python costs, and this minus `run` what the counters and libFuzzer's handling of
  their features cost;
- `nosem`: the campaign harness (campaign.harness.main) without the semantic counters;
- `full`: the campaign harness as `pyvmfuzz fuzz` runs it (semantic counters, cross-check).

Two workloads: a campaign corpus replayed (`-runs=0` over a copy of the corpus, repeated so a
run lasts long enough to time), and a fixed-seed mutation run (the same seed and the same seed
corpus, `-runs=N`; each harness's coverage feedback decides what it adds, which is part of
what is measured). Rounds interleave the harnesses so machine load hits all alike; rates are
executions per CPU-second of the fuzzing process (robust on a shared machine) and per wall
second, and every ratio is to `empty` in the same round (medians over rounds)."""

from __future__ import annotations

import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

MODES = ("empty", "run", "semrun", "nosem", "full")
_UNITS = re.compile(r"^stat::number_of_executed_units:\s+(\d+)", re.M)
_START = re.compile(r"^#pyvmfuzz-bench start ([\d.]+) ([\d.]+)$", re.M)


def _child(mode: str, argv: list[str]) -> None:
    """In the fuzzing process: set up atheris with `mode`'s callback and fuzz. Prints the
    wall clock and this process's CPU time just before fuzzing starts (the parent subtracts
    start-up: imports, atheris, reading nothing yet)."""
    def start() -> None:
        sys.stderr.write(f"#pyvmfuzz-bench start {time.time():.6f} {time.process_time():.6f}\n")
        sys.stderr.flush()

    if mode in ("nosem", "full"):
        os.environ["PYVMFUZZ_SEMANTIC"] = "1" if mode == "full" else "0"
        from pyvmfuzz.campaign import harness

        harness._BEFORE_FUZZ = start  # noqa: SLF001 -- the bench's hook, None in a campaign
        sys.argv = [sys.argv[0]] + argv
        harness.main()
        return
    import atheris

    def report(counts) -> None:  # bytes per execution, as the campaign harness's progress line
        import threading

        def loop() -> None:
            while True:
                time.sleep(0.1)
                n, b = counts()
                sys.stderr.write(f"#pyvmfuzz execs {n} bytes {b}\n")
                sys.stderr.flush()

        threading.Thread(target=loop, daemon=True).start()

    if mode == "empty":
        def test_one_input(data: bytes) -> None:
            pass
    elif mode == "emptybytes":  # untimed: what the empty harness is given, counted
        tally = [0, 0]

        def test_one_input(data: bytes) -> None:
            tally[0] += 1
            tally[1] += len(data)
        report(lambda: tuple(tally))
    else:
        from pyvmfuzz import _core

        semantic = mode == "semrun"
        if semantic:  # the counters register with this libFuzzer, as the harness's do
            from pyvmfuzz.campaign.harness import load_core

            load_core("", True)
        target = _core.FuzzTarget(os.environ.get("PYVMFUZZ_KERNEL", "fixed"), os.environ.get("PYVMFUZZ_HW") or None,
                                  semantic)
        run = target.run

        def test_one_input(data: bytes) -> None:
            run(data)
        if mode in ("runraw", "semrun"):  # the Rust method itself as the callback: no Python frame
            test_one_input = run
        report(lambda: (target.execs(), target.bytes_run()))
    # internal libFuzzer, as the harness: with semrun it is already loaded globally
    atheris.Setup([sys.argv[0]] + argv, test_one_input, internal_libfuzzer=True)
    start()
    atheris.Fuzz()


def one(mode: str, args: list[str], kernel: str, out: str) -> dict:
    """One fuzzing process: {"execs", "cpu", "wall", "added", "inited_cov"} from libFuzzer's
    final stats and status line, and the process's own clocks (after start-up)."""
    env = dict(os.environ, PYVMFUZZ_KERNEL=kernel, PYVMFUZZ_HW="", PYVMFUZZ_CRASHES=os.path.join(out, "crashes"),
               PYVMFUZZ_FINDINGS=os.path.join(out, "findings.log"), PYVMFUZZ_CORE_SO="", PYVMFUZZ_FORK="0",
               PYVMFUZZ_XCHECK="auto")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run([sys.executable, "-P", "-m", "pyvmfuzz.bench.campaign_bench", "--child", mode] + args,
                       capture_output=True, text=True, env=env, cwd=out, timeout=900)
    end = time.time()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    log = p.stdout + p.stderr
    u, s = _UNITS.search(log), _START.search(log)
    if not u or not s:
        raise RuntimeError(f"bench harness {mode} failed (status {p.returncode}): {log.strip()[-500:]}")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime) - float(s[2])
    added = re.search(r"^stat::new_units_added:\s+(\d+)", log, re.M)
    inited = re.search(r"^#\d+\s+INITED cov: (\d+)", log, re.M)
    counted = re.findall(r"^#pyvmfuzz execs (\d+) bytes (\d+)", log, re.M)
    n, b = map(int, counted[-1]) if counted else (0, 0)
    return {"execs": int(u[1]), "cpu": max(cpu, 1e-6), "wall": max(end - float(s[1]), 1e-6),
            "added": int(added[1]) if added else 0, "inited_cov": int(inited[1]) if inited else 0,
            "bytes_per_exec": b / n if n else None}


def _replay_dir(corpus: str, dest: str, copies: int) -> int:
    """`copies` copies of every corpus input under distinct names: libFuzzer runs each."""
    n = 0
    os.makedirs(dest, exist_ok=True)
    names = sorted(os.listdir(corpus))
    for c in range(copies):
        for name in names:
            shutil.copyfile(os.path.join(corpus, name), os.path.join(dest, f"{c}-{name}"))
            n += 1
    return n


def measure(kernel: str, corpus: str, rounds: int, runs: int, copies: int, max_len: int,
            seed: int = 1, progress=None, modes=MODES) -> dict:
    """{"replay": {mode: [sample, ...]}, "mutate": {...}, "inputs": replayed inputs}; a sample
    is one()'s dict. Each round runs every mode on both workloads, modes in turn (reversed
    every other round). The mutation run starts from `corpus` and writes what it adds where
    a campaign would (supervisor.work_corpus_dir: tmpfs unless PYVMFUZZ_CORPUS_TMPFS=0)."""
    from pyvmfuzz.campaign.supervisor import work_corpus_dir

    res = {"replay": {m: [] for m in modes}, "mutate": {m: [] for m in modes}}
    with tempfile.TemporaryDirectory(prefix="pyvmfuzz-cbench-") as tmp:
        replay = os.path.join(tmp, "replay")
        res["inputs"] = _replay_dir(corpus, replay, copies)
        sizes = [os.path.getsize(os.path.join(corpus, f)) for f in os.listdir(corpus)]
        res["replay_bytes"] = sum(sizes) / max(1, len(sizes))  # every harness runs exactly these
        for r in range(rounds):
            order = modes if r % 2 == 0 else tuple(reversed(modes))  # no harness always first
            for mode in order:
                out = tempfile.mkdtemp(dir=tmp)
                os.makedirs(os.path.join(out, "crashes"))
                res["replay"][mode].append(one(mode, [replay, "-runs=0", f"-max_len={max_len}",
                                                      "-print_final_stats=1", "-timeout=30"], kernel, out))
                mcorp = work_corpus_dir() or tempfile.mkdtemp(dir=tmp)
                try:
                    res["mutate"][mode].append(one(mode, [mcorp, corpus, f"-runs={runs}", f"-seed={seed}",
                                                          f"-max_len={max_len}", "-print_final_stats=1",
                                                          "-timeout=30"], kernel, out))
                finally:
                    shutil.rmtree(mcorp, ignore_errors=True)
                if progress:
                    progress(r, mode, res["replay"][mode][-1], res["mutate"][mode][-1])
                shutil.rmtree(out, ignore_errors=True)
        if "empty" in modes:  # what the empty harness's mutation run executes (untimed, counted)
            out = tempfile.mkdtemp(dir=tmp)
            os.makedirs(os.path.join(out, "crashes"))
            mcorp = tempfile.mkdtemp(dir=tmp)
            res["empty_bytes"] = one("emptybytes", [mcorp, corpus, f"-runs={runs}", f"-seed={seed}",
                                                    f"-max_len={max_len}", "-print_final_stats=1"],
                                     kernel, out)["bytes_per_exec"]
    return res


def _bytes(res: dict, wl: str, mode: str) -> str:
    """Input bytes per execution: replay, the corpus's mean; mutation, the median of
    FuzzTarget's count (the empty harness's from its untimed counted twin); or '-' (semrun: with
    a Rust method as the callback no bytecode runs, so the counting thread never gets the GIL;
    it runs full's inputs — same seed, same feedback)."""
    if wl == "replay":  # the same inputs for all (a progress line mid-replay would be partial)
        v = res.get("replay_bytes")
    elif mode == "empty":
        v = res.get("empty_bytes")
    else:
        vs = [x["bytes_per_exec"] for x in res[wl][mode] if x.get("bytes_per_exec")]
        v = statistics.median(vs) if vs else None
    return "-" if v is None else f"{v:.1f}"


def table(res: dict, modes=MODES) -> str:
    """Per workload and harness: median exec per CPU-second and per wall second, and the
    median over rounds of the ratio to `empty` in the same round."""
    rows = []
    for wl, title in (("replay", f"campaign corpus replayed ({res['inputs']:,} inputs per run)"),
                      ("mutate", "fixed-seed mutation run from that corpus (same seed for every harness)")):
        rows.append(f"## {title}")
        rows.append(f"{'harness':<8} {'exec/CPU-s':>12} {'exec/s':>10} {'ratio CPU':>10} {'ratio wall':>10} {'added':>7} "
                    f"{'bytes/exec':>10}")
        base = res[wl]["empty"]
        for m in modes:
            xs = res[wl][m]
            rc = statistics.median(x["execs"] / x["cpu"] / (b["execs"] / b["cpu"]) for x, b in zip(xs, base))
            rw = statistics.median(x["execs"] / x["wall"] / (b["execs"] / b["wall"]) for x, b in zip(xs, base))
            rows.append(f"{m:<8} {statistics.median(x['execs'] / x['cpu'] for x in xs):>12,.0f} "
                        f"{statistics.median(x['execs'] / x['wall'] for x in xs):>10,.0f} {rc:>10.3f} {rw:>10.3f} "
                        f"{statistics.median(x['added'] for x in xs):>7.0f} {_bytes(res, wl, m):>10}")
    return "\n".join(rows)


# Inputs per replay run (copies of the corpus). 120,000, not 30,000: a ~0.3 s run spread 0.32-0.57
# in full's ratio between rounds on a shared 2-core machine, a ~1.5 s one 0.48-0.61; and the first
# pass over the corpus pays libFuzzer's corpus building (entropic walks the corpus for every new
# feature: 550 M of a 60,000-execution run's 3,580 M instructions), which a campaign spreads over
# millions of executions. Measured side by side 2026-11-30, docs/campaign-throughput.md.
REPLAY_INPUTS = 120_000

_DONE = re.compile(r"^# campaign \w[^:]*: kernel \S+, ([\d.]+)s, ([\d,]+) execs", re.M)


def campaign(kernel: str, budget: int, seed: int, out: str) -> dict:
    """A real `pyvmfuzz fuzz` campaign (one job, default coverage): {"execs", "wall", "cpu"
    (supervisor and harness together), "corpus" (its directory), "stdout"}."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run([sys.executable, "-P", "-m", "pyvmfuzz", "fuzz", "--kernel", kernel, "--time", str(budget),
                        "--seed", str(seed), "--out", out, "--quiet"], capture_output=True, text=True,
                       timeout=budget + 300)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    m = _DONE.search(p.stdout)
    if p.returncode == 2 or not m:
        raise RuntimeError(f"campaign failed (status {p.returncode}): {(p.stderr or p.stdout).strip()[-500:]}")
    return {"execs": int(m[2].replace(",", "")), "wall": float(m[1]),
            "cpu": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
            "corpus": os.path.join(out, "corpus"), "stdout": p.stdout}


def run(kernel: str = "fixed", budget: int = 60, rounds: int = 3, seed: int = 1, runs: int = 500_000,
        progress=None) -> str:
    """The whole `bench --campaign` report: a `budget`-second campaign, then its corpus
    replayed and mutated by the harnesses (MODES) in `rounds` interleaved rounds."""
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="pyvmfuzz-cbench-camp-") as out:
        c = campaign(kernel, budget, seed, out)
        if progress:
            progress(f"campaign: {c['execs']:,} execs in {c['wall']:.1f}s, {c['cpu']:.1f} CPU-s")
        n = max(1, len(os.listdir(c["corpus"])))
        res = measure(kernel, c["corpus"], rounds, runs, max(1, REPLAY_INPUTS // n), 2 + 5 * 32 + 16, seed,
                      (lambda r, m, a, b: progress(f"round {r + 1} {m}: replay {a['execs'] / a['cpu']:,.0f}, "
                                                   f"mutation {b['execs'] / b['cpu']:,.0f} exec/CPU-s"))
                      if progress else None)
    load1 = os.getloadavg()
    empty = statistics.median(x["execs"] / x["cpu"] for x in res["mutate"]["empty"])
    empty_wall = statistics.median(x["execs"] / x["wall"] for x in res["mutate"]["empty"])
    head = [f"# campaign throughput, kernel {kernel}: a {budget}s campaign (pyvmfuzz fuzz, 1 job, semantic "
            f"coverage, seed {seed}), then its corpus ({n:,} inputs) through {len(MODES)} harnesses, {rounds} interleaved "
            f"rounds; load average {load0[0]:.1f} at the start, {load1[0]:.1f} at the end "
            f"({os.cpu_count()} CPUs)",
            f"full campaign: {c['execs'] / c['wall']:,.0f} exec/s, {c['execs'] / c['cpu']:,.0f} exec per CPU-second "
            f"(supervisor and harness); vs the empty harness's mutation run: {c['execs'] / c['cpu'] / empty:.3f} "
            f"per CPU-second, {c['execs'] / c['wall'] / empty_wall:.3f} per wall second"]
    return "\n".join(head) + "\n" + table(res)


if __name__ == "__main__" and len(sys.argv) > 2 and sys.argv[1] == "--child":
    _child(sys.argv[2], sys.argv[3:])
