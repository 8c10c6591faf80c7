"""Campaigns: atheris + libFuzzer with the Rust core's coverage. Each runs a few seconds."""

import glob
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

import atheris  # noqa: F401,E402 -- a core dependency: missing means a broken install, a failure, not a skip

from conftest import ROOT, cli  # noqa: E402
from pyvmfuzz import _core  # noqa: E402



def finding_kind(path: str) -> str:
    """A saved finding's kind, from its first header line (`# pyvmfuzz finding: KIND under K`):
    files are named by their bug (campaign.triage), not by kind."""
    with open(path) as f:
        return f.readline().split()[3]

def fuzz(tmp_path, *args, timeout=180):
    return cli("fuzz", "--out", str(tmp_path / "out"), "--quiet", *args, timeout=timeout)


def findings(tmp_path):
    return sorted(glob.glob(str(tmp_path / "out" / "crashes" / "*.txt")))


# A reproducer per kernel, given to a campaign as its corpus (`seeded`): libFuzzer runs the
# corpus before it mutates anything, so the campaign meets the violation in its first second on
# any machine. The default suite's campaigns that must find something start from one; the
# unseeded ones (the fuzzer finds the bug itself, within a time budget) are -m slow.
REPROS = {
    "pre-385c96e4": "corpus/repro/pre-385c96e4-debugger-text.txt",  # protection 2
    "partial-385c96e4": "corpus/repro/partial-385c96e4-procfs-stale.txt",  # stale-read 3
    "shootdown-no-ipi": "corpus/litmus/06-fork-remote-writable-tlb.txt",  # tlb-incoherent 4, then user-visible
}


def seeded(tmp_path, kernel):
    """`--corpus DIR` flags: DIR holds `kernel`'s reproducer in byte form (campaign hardware)."""
    d = tmp_path / "seeded-corpus"
    d.mkdir(exist_ok=True)
    text = open(os.path.join(ROOT, REPROS[kernel]), encoding="utf-8").read()
    data = _core.encode(text, kernel, "mode=pc64")
    assert _core.run_bytes(data, kernel, "mode=pc64")["violation"] is not None
    (d / "reproducer").write_bytes(data)
    return ["--corpus", str(d)]


SEEDED = pytest.mark.parametrize("seed_corpus", [True, pytest.param(False, marks=pytest.mark.slow)],
                                 ids=["seeded", "unseeded"])


def _protection_saved_and_replayed(tmp_path, p):
    assert p.returncode == 1, p.stdout + p.stderr
    txt = [f for f in findings(tmp_path) if finding_kind(f) == "protection"]
    assert txt, p.stdout
    for f in (txt[0], txt[0][:-4] + ".bytes"):
        r = cli("run", f, "--kernel", "pre-385c96e4")
        assert r.returncode == 1 and "# verdict: protection" in r.stdout, r.stdout + r.stderr
    # The saved text is a regression program: check agrees with its expect line.
    assert cli("check", txt[0], "--kernel", "pre-385c96e4").returncode == 0


@pytest.mark.slow  # builds the coverage-instrumented core with cargo; finds the bug by fuzzing within 30 s
def test_pre_fix_kernel_protection_found_saved_and_replayed(tmp_path):
    p = fuzz(tmp_path, "--kernel", "pre-385c96e4", "--time", "30", "--stop-on-find", "--coverage", "both")
    assert p.returncode == 1, p.stdout + p.stderr
    assert re.search(r"^# coverage: .*\d+ inline 8-bit counters in 2 module", p.stdout, re.M)  # branch + semantic reached libFuzzer
    _protection_saved_and_replayed(tmp_path, p)


def test_pre_fix_kernel_protection_from_a_seed_saved_and_replayed(tmp_path):
    p = fuzz(tmp_path, "--kernel", "pre-385c96e4", "--time", "60", "--stop-on-find", *seeded(tmp_path, "pre-385c96e4"))
    _protection_saved_and_replayed(tmp_path, p)


@SEEDED
def test_default_coverage_is_semantic_counters(tmp_path, seed_corpus):
    corpus = seeded(tmp_path, "partial-385c96e4") if seed_corpus else []
    p = fuzz(tmp_path, "--kernel", "partial-385c96e4", "--time", "60" if seed_corpus else "30", "--stop-on-find", *corpus)
    assert p.returncode == 1, p.stdout + p.stderr

    assert re.search(rf"^# coverage: .* {_core.SEMANTIC_COUNTERS} inline 8-bit counters in 1 module", p.stdout, re.M)
    assert any(finding_kind(f) == "stale-read" for f in findings(tmp_path))


def _fixed_kernel_short_campaign(tmp_path, budget):
    """A clean campaign of `budget` seconds on fixed; returns its exec/s."""
    p = fuzz(tmp_path, "--kernel", "fixed", "--time", budget)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "# no violation found" in p.stdout
    # The oracle cross-checks clean runs by default (issue 15), adaptively.
    m = re.search(r"# oracle cross-checked ([\d,]+) clean runs \(adaptive", p.stdout)
    assert m and int(m[1].replace(",", "")) > 0, p.stdout
    m = re.search(r"([\d,]+) execs \(([\d,]+)/s\)", p.stdout)
    assert m and int(m[1].replace(",", "")) > 0, p.stdout
    return int(m[2].replace(",", ""))


def test_fixed_kernel_short_campaign_is_clean(tmp_path):
    assert _fixed_kernel_short_campaign(tmp_path, "2") > 0


@pytest.mark.slow  # wall-clock speed: depends on the machine and its load
def test_fixed_kernel_campaign_runs_over_5000_execs_per_second(tmp_path):
    assert _fixed_kernel_short_campaign(tmp_path, "5") > 5000


def test_corpus_resume(tmp_path):
    # 2,000 runs each (libFuzzer's -runs; the 60-s budget is not reached): the same corpus on any machine
    corpus = tmp_path / "corp"
    p1 = fuzz(tmp_path, "--kernel", "fixed", "--time", "60", "--seed", "3", "--corpus", str(corpus), "--", "-runs=2000")
    assert p1.returncode == 0, p1.stderr
    n1 = len(os.listdir(corpus))
    assert n1 > 10
    p2 = fuzz(tmp_path, "--kernel", "fixed", "--time", "60", "--seed", "4", "--corpus", str(corpus), "--", "-runs=2000")
    assert p2.returncode == 0, p2.stderr
    log = (tmp_path / "out" / "fuzz.log").read_text()
    m = re.findall(r"INFO: seed corpus: files: (\d+)", log)  # fuzz.log is appended: the last is p2's
    assert len(m) == 2 and int(m[-1]) >= n1, log[:2000]  # the second campaign started from the first's corpus
    assert len(os.listdir(corpus)) >= n1


@SEEDED
def test_two_jobs_find_partial_stale_read(tmp_path, seed_corpus):
    corpus = seeded(tmp_path, "partial-385c96e4") if seed_corpus else []
    p = fuzz(tmp_path, "--kernel", "partial-385c96e4", "--jobs", "2", "--time", "40", "--stop-on-find", *corpus)
    assert p.returncode == 1, p.stdout + p.stderr
    log = (tmp_path / "out" / "fuzz.log").read_text()
    assert "-fork=2" in log or "fork=2" in log
    assert any(finding_kind(f) == "stale-read" for f in findings(tmp_path))


def test_sigint_ends_cleanly_and_keeps_findings(tmp_path):
    out = tmp_path / "out"
    # seeded: a finding is made at once, whatever the machine's speed (it used to wait for luck)
    proc = subprocess.Popen(
        [sys.executable, "-P", "-m", "pyvmfuzz", "fuzz", "--kernel", "pre-385c96e4", "--time", "120",
         "--out", str(out), "--quiet", *seeded(tmp_path, "pre-385c96e4")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.time() + 60
    while time.time() < deadline and not glob.glob(str(out / "crashes" / "*.txt")):
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1, stdout + stderr  # interrupted, and a violation had been found
    assert "# campaign interrupted" in stdout
    assert "Traceback" not in stderr
    # Every finding is complete: text and bytes, both replayable.
    crashes = out / "crashes"
    for t in glob.glob(str(crashes / "*.txt")):
        assert os.path.exists(t[:-4] + ".bytes")
        assert cli("run", t, "--kernel", "pre-385c96e4").returncode == 1
    assert not [f for f in os.listdir(crashes) if f.startswith(".tmp-")]
    # No harness process outlives the campaign.
    time.sleep(0.5)
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(out) not in ps


def test_unwritable_output_dir(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    p = cli("fuzz", "--out", str(f / "sub"), "--time", "1", "--quiet")
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and "not writable" in p.stderr


def _cross_checked(tmp_path, budget):
    """A campaign of `budget` seconds judging every 50th clean run with the oracle too: (runs
    cross-checked, execs). (Not `-runs=N`: the last counts are logged by time, and a campaign
    that libFuzzer ends after N runs loses them.)"""
    p = fuzz(tmp_path, "--kernel", "fixed", "--time", budget, "--cross-check", "50")
    assert p.returncode == 0, p.stdout + p.stderr
    m = re.search(r"# oracle cross-checked ([\d,]+) clean runs \(every 50 clean runs\)", p.stdout)
    e = re.search(r"([\d,]+) execs \(", p.stdout)
    assert m and e, p.stdout
    return int(m[1].replace(",", "")), int(e[1].replace(",", ""))


def test_cross_check_samples_clean_runs(tmp_path):
    checked, execs = _cross_checked(tmp_path, "2")
    assert 0 < checked <= execs // 50 + 1, (checked, execs)


@pytest.mark.slow  # wall-clock speed: > 5,000 clean runs in 4 s
def test_cross_check_samples_over_100_clean_runs_in_4_s(tmp_path):
    checked, _ = _cross_checked(tmp_path, "4")
    assert checked > 100


@pytest.mark.parametrize("runs", [2000, pytest.param(20000, marks=pytest.mark.slow)])
def test_parser_and_decoder_fuzz_themselves(tmp_path, runs):
    import shutil

    corpus = tmp_path / "corpus"
    shutil.copytree(os.path.join(ROOT, "corpus", "litmus"), corpus)
    p = subprocess.run([sys.executable, "-P", os.path.join(ROOT, "fuzz", "parser_fuzzer.py"), str(corpus),
                        f"-runs={runs}", "-seed=7", f"-artifact_prefix={tmp_path}/"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert f"Done {runs} runs" in p.stderr


@SEEDED
def test_jobs_2_findings_replay_identically_in_fresh_processes(tmp_path, seed_corpus):
    corpus = seeded(tmp_path, "partial-385c96e4") if seed_corpus else []
    p = fuzz(tmp_path, "--kernel", "partial-385c96e4", "--jobs", "2", "--time", "40", "--stop-on-find", *corpus)
    assert p.returncode == 1, p.stdout + p.stderr
    saved = glob.glob(str(tmp_path / "out" / "crashes" / "*.bytes"))
    assert saved, p.stdout
    for f in saved:
        a = cli("run", f, "--kernel", "partial-385c96e4", "--json")
        b = cli("run", f, "--kernel", "partial-385c96e4", "--json")
        assert a.returncode == b.returncode == 1 and a.stdout == b.stdout


def test_campaign_into_a_model_panic_saves_a_replayable_finding(tmp_path):
    """A program that makes the core hit a model assertion is a finding like any other: the
    self-test hook (PYVMFUZZ_SELFTEST_PANIC_AT) panics the core at step 3 in every run —
    campaign, minimizer, encoder and replay alike — and the campaign saves it from the bytes in
    hand (the encoder panics too), confirmed, and replayable from both files."""
    env = dict(os.environ, PYVMFUZZ_SELFTEST_PANIC_AT="3")
    out = tmp_path / "out"
    p = subprocess.run([sys.executable, "-P", "-m", "pyvmfuzz", "fuzz", "--kernel", "fixed", "--time", "20",
                        "--out", str(out), "--quiet", "--stop-on-find"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "# violation (model panic):" in p.stdout and "no violation found" not in p.stdout
    txt = sorted(glob.glob(str(out / "crashes" / "panic-*.txt")))
    assert txt, p.stdout
    assert not glob.glob(str(out / "crashes" / "unsaved-*"))
    for f in (txt[0], txt[0][:-4] + ".bytes"):
        r = subprocess.run([sys.executable, "-P", "-m", "pyvmfuzz", "run", f, "--kernel", "fixed"],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 1 and "# verdict: panic at step 3" in r.stdout, r.stdout + r.stderr


def test_a_panic_in_an_interleaved_program_is_saved_as_a_program_that_parses():
    """The panic step of a program with SPEC 3.2 lines got `-> panic` as its asserted outcome,
    which no parser accepts: the campaign test above failed for the seeds whose panic fell on
    such a line (a load after a resume) rather than on a schedule line."""
    from pyvmfuzz import _core
    from pyvmfuzz.campaign.findings import finding_text, oracle_outcomes

    steps = ["cpu0 store data0.0 0x1 until pmap_enter", "cpu0 resume", "cpu0 load data0.0"]
    assert oracle_outcomes("hw cpus=2", steps, ["paused", "ok", "panic"]) == [None, None, None]
    rep = _core._selftest_panic("hw cpus=2\n" + "\n".join(steps) + "\n", 3)
    assert rep["violation"]["kind"] == "panic" and rep["trace"][-1] == "panic"
    text = finding_text(rep, "test")
    assert "-> panic" not in text
    _core.parse_text(text)


@pytest.mark.parametrize("kernel", ["pre-385c96e4", "shootdown-no-ipi"])
@SEEDED
def test_campaign_crashes_directory_is_a_regression_suite(tmp_path, kernel, seed_corpus):
    """Saved findings are regression programs: every op line asserts the oracle's (correct)
    outcome, `expect` lines give the violation under the campaign's kernel and `clean` under
    fixed, and `check --kernel all` on the whole crashes directory passes. The .bytes replay
    with no flags (its .txt names kernel and hardware) to the same verdict as the .txt.
    Seeded: the first user-visible finding from the kernel's reproducer; unseeded (slow): all
    a 6-s campaign finds by itself."""
    if seed_corpus:
        p = fuzz(tmp_path, "--kernel", kernel, "--time", "60", "--seed", "5", "--stop-on-find", *seeded(tmp_path, kernel))
    else:
        p = fuzz(tmp_path, "--kernel", kernel, "--time", "6", "--seed", "5")
    assert p.returncode == 1, p.stdout + p.stderr
    crashes = tmp_path / "out" / "crashes"
    txts = findings(tmp_path)
    assert txts
    for t in txts:
        text = open(t).read()
        ops = [ln for ln in text.splitlines() if ln.startswith("cpu")]
        # every line asserts its correct outcome, but SPEC §3.2 schedule lines (paused ones,
        # resume, ipi), whose outcome another kernel's schedule may change
        def resumed(i):  # the next line on its CPU resumes it: it paused (at `wait` too)
            nxt = [o for o in ops[i + 1:] if o.split()[0] == ops[i].split()[0]][:1]
            return bool(nxt) and nxt[0].split()[1] == "resume"

        sched = [ln for i, ln in enumerate(ops)
                 if " until " in ln or ln.split()[1] in ("resume", "ipi") or resumed(i)]
        # ... and lines another kernel with an expect line runs otherwise (its own schedule:
        # it waits where this kernel went on; findings._held_everywhere)
        from pyvmfuzz import _core

        prog = "\n".join([ln for ln in text.splitlines() if ln.startswith("hw ")] + [o.split(" -> ")[0] for o in ops]) + "\n"
        traces = [_core.run_text(prog, ln.split()[1])["trace"] for ln in text.splitlines()
                  if ln.startswith("expect ") and ln.endswith(" clean")]
        differs = {i for i in range(len(ops)) for tr in traces
                   if i >= len(tr) or tr[i] == "paused" or tr[i].partition(" woke ")[0] != traces[0][i].partition(" woke ")[0]}
        assert ops and all(" -> " in ln for i, ln in enumerate(ops) if ln not in sched and i not in differs), text
        assert "expect fixed clean" in text, text
        assert f"kernel {kernel}" in text and "os dragonfly" in text
        fixed = cli("run", t, "--kernel", "fixed", "--json")
        assert fixed.returncode == 0, fixed.stdout + fixed.stderr  # every assertion holds under fixed
        a = cli("run", t, "--json")
        b = cli("run", t[:-4] + ".bytes", "--json")
        va, vb = (json.loads(x.stdout)["violation"] for x in (a, b))
        assert va is not None and (va["kind"], va["step"]) == (vb["kind"], vb["step"]), a.stdout + b.stdout
    c = cli("check", str(crashes), "--kernel", "all", timeout=300)
    assert c.returncode == 0, c.stdout[-3000:] + c.stderr


def test_seeds_are_given_from_their_cpu_count_up_to_four():
    """Each seed runs on every CPU count from the one it names (default 2) up to 4 (SPEC
    §3.3's races need three); --hw overrides them all."""
    import shutil

    from pyvmfuzz import _core
    from pyvmfuzz.campaign.supervisor import _seed_dir

    def cpus(d):
        out = {}
        for f in sorted(os.listdir(d)):
            hw = _core.decode(open(os.path.join(d, f), "rb").read(), "fixed").splitlines()[0]
            out[f] = int(re.search(r"cpus=(\d+)", hw)[1])
        shutil.rmtree(d)
        return out

    got = cpus(_seed_dir("fixed", None))
    assert {got[f"umtx-cpus{n}"] for n in (2, 3, 4)} == {2, 3, 4}  # names none
    assert got["fork-threads-cpus3"] == 3 and got["fork-threads-cpus4"] == 4  # names cpus=3
    assert "fork-threads-cpus2" not in got
    assert set(cpus(_seed_dir("fixed", "cpus=5")).values()) == {5}
    assert len([f for f in cpus(_seed_dir("fixed", "cpus=5,mode=tagged")) if f.startswith("umtx")]) == 1


def test_the_vm_seed_is_given_and_bench_can_leave_it_out(monkeypatch):
    """docs/contract.md §3.4's seed is among the campaign's seeds; `bench --zoo`'s
    atheris-no-vm-seed configuration leaves it out (PYVMFUZZ_SEEDS_EXCLUDE) to measure it."""
    import shutil

    from pyvmfuzz.campaign.supervisor import _seed_dir

    d = _seed_dir("fixed", None)
    assert {f for f in os.listdir(d) if f.startswith("vm-moves")} == {"vm-moves-cpus3", "vm-moves-cpus4"}
    shutil.rmtree(d)
    monkeypatch.setenv("PYVMFUZZ_SEEDS_EXCLUDE", "vm-moves")
    d = _seed_dir("fixed", None)
    names = os.listdir(d)
    assert not [f for f in names if f.startswith("vm-moves")] and any(f.startswith("umtx") for f in names)
    shutil.rmtree(d)


def test_every_seed_is_clean_under_every_kernel():
    """A seed that violated under a kernel would hand its campaigns the bug at time 0: seeds
    set up mechanisms, the fuzzer has to find the bugs."""
    import shutil

    from pyvmfuzz import _core
    from pyvmfuzz.campaign.supervisor import _seed_dir

    for kernel, _ in _core.kernels():
        for hw in ("mode=pc64", "mode=tagged"):
            d = _seed_dir(kernel, hw)
            names = sorted(os.listdir(d))
            assert any(n.startswith("smp-threads") for n in names), names
            for name in names:
                rep = _core.run_bytes(open(os.path.join(d, name), "rb").read(), kernel, hw)
                assert rep["violation"] is None, (kernel, hw, name, rep["violation"])
            shutil.rmtree(d)
