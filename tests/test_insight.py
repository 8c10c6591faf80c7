"""From crash to insight: minimize, explain, cmin, demo; and the semantic features."""

import os
import random
import re

import pytest

from pyvmfuzz import _core
from pyvmfuzz.insight.minimize import minimize_report

from conftest import CORPUS, cli


def noise_program(seed, n):
    """Steps that are clean under every kernel and leave P1.T1 on cpu0."""
    rng = random.Random(seed)
    ops = []
    for _ in range(n):
        r = rng.randrange(5)
        page = f"data{rng.randrange(4)}.{rng.randrange(4)}"
        if r == 0:
            ops.append(f"cpu0 store {page} {hex(rng.randrange(1, 200))}")
        elif r == 1:
            ops.append(f"cpu0 load {page}")
        elif r == 2:
            ops.append(f"cpu0 procfs_read P1 {page}")
        elif r == 3:
            ops.append("cpu1 switch idle")
        else:
            ops.append(f"cpu0 load text{rng.randrange(2)}.{rng.randrange(4)}")
    return ops


def test_planted_pair_in_60_steps_minimizes_to_the_core(tmp_path):
    ops = noise_program(3, 58)
    ops.insert(17, "cpu0 procfs_write P1 text1.2 0x77")
    ops.insert(45, "cpu0 store text1.3 0x99")
    assert len(ops) == 60
    prog = tmp_path / "planted.txt"
    prog.write_text("\n".join(ops) + "\n")
    rep = _core.run_text(prog.read_text(), "pre-385c96e4")
    assert rep["violation"]["kind"] == "protection"
    small = minimize_report(rep, budget_s=20)
    steps = small["steps"]
    assert len(steps) == 2, small["trace_text"]
    assert steps[0].startswith("cpu0 procfs_write P1 text") and steps[1].startswith("cpu0 store text")
    # 1-minimal: dropping either step loses the violation.
    for i in range(2):
        v = _core.run_text("\n".join(small["hw"].splitlines() + steps[:i] + steps[i + 1:]), "pre-385c96e4")["violation"]
        assert v is None
    # The CLI does the same, writes a replayable program, and says before/after.
    out = tmp_path / "min.txt"
    p = cli("minimize", str(prog), "--kernel", "pre-385c96e4", "-o", str(out), "--quiet")
    assert p.returncode == 0, p.stderr  # minimized: success (exit 0)
    assert "60 -> 2 steps" in p.stdout
    r = cli("run", str(out))
    assert r.returncode == 1 and "# verdict: protection at step 2" in r.stdout
    assert cli("check", str(out), "--kernel", "pre-385c96e4").returncode == 0
    # a regression program: `->` are the correct outcomes, so every kernel passes check
    c = cli("check", str(out), "--kernel", "all")
    assert c.returncode == 0, c.stdout + c.stderr
    assert "expect fixed clean" in out.read_text()


def test_minimize_simplifies_arguments():
    text = ("hw cpus=4\ncpu0 fork\ncpu3 switch P2.T1\ncpu3 load data2.3\n"
            "cpu3 procfs_write P2 data2.3 0x5a5a\ncpu3 load data2.3\n")
    rep = _core.run_text(text, "partial-385c96e4")
    small = minimize_report(rep, budget_s=20)
    assert small["violation"]["kind"] == "stale-read"
    body = "\n".join(small["steps"])
    assert "data0.0" in body and "0x5a5a" not in body, body
    assert "cpus=2" in small["hw"] or "cpus=1" in small["hw"], small["hw"]


@pytest.mark.parametrize("made,later", [
    ("cpu0 fork\ncpu0 fork\n", "P3.T1"),
    ("cpu0 spawn\ncpu0 spawn\n", "P1.T3"),
])
def test_minimize_folds_a_created_process_or_thread_into_its_creator(made, later):
    """A campaign's random byte-form find (pre-385c96e4, 5 lines: the demo's) wrote a text page
    through procfs from a process (thread) it had made and switched to on another CPU. The
    shortest reproducer is the creator doing it itself (corpus/repro/pre-385c96e4-debugger-
    text.txt): the creations drop each fork (spawn), its product renamed into the creator and
    that product's lines moved onto the creator's CPU (4 lines before `_merged`)."""
    pid = later.split(".")[0]
    text = (f"hw cpus=2\n{made}cpu1 switch {later}\ncpu1 procfs_write {pid} text0.0 0x0\n"
            "cpu1 store text0.0 0x0\n")
    rep = _core.run_text(text, "pre-385c96e4")
    assert rep["violation"]["kind"] == "protection"
    small = minimize_report(rep, budget_s=20)
    assert small["violation"]["kind"] == "protection"
    assert small["steps"] == ["cpu0 procfs_write P1 text0.0 0x0", "cpu0 store text0.0 0x0"], small["steps"]
    assert "cpus=1" in small["hw"], small["hw"]


def test_minimize_renumbers_a_creation_whose_product_must_stay_apart():
    """Under fork-no-protect the child must be another process (it reads the parent's later
    store): the fork that only numbered it goes, P3 renamed P2, and the child stays the child."""
    text = ("hw cpus=2\ncpu0 load data0.0\ncpu0 fork\ncpu0 fork\ncpu0 store data0.0 0x1\n"
            "cpu1 switch P3.T1\ncpu1 load data0.0\n")
    rep = _core.run_text(text, "fork-no-protect")
    assert rep["violation"]["kind"] == "stale-read"
    small = minimize_report(rep, budget_s=20)
    assert small["violation"]["kind"] == "stale-read"
    assert small["steps"].count("cpu0 fork") == 1 and "cpu1 switch P2.T1" in small["steps"], small["steps"]


def test_merged_moves_a_switched_to_running_thread_onto_its_cpu():
    from pyvmfuzz.api import Step
    from pyvmfuzz.insight.minimize import Minimizer

    ops = [Step.parse(x) for x in ("cpu1 switch P1.T1", "cpu1 load data0.0", "cpu0 load data1.0",
                                   "cpu1 switch idle", "cpu1 load data2.0")]
    assert [s.text() for s in Minimizer._merged(ops)] == [
        "cpu0 load data0.0", "cpu0 load data1.0", "cpu1 switch idle", "cpu1 load data2.0"]
    assert Minimizer._merged([Step.parse("cpu1 switch P1.T2"), Step.parse("cpu1 load data0.0")]) is None
    # a review's cases: a switch to the thread already on that CPU is dropped (a creation
    # switched to on its creator's CPU); a thread that may have blocked runs nowhere after
    ops = [Step.parse(x) for x in ("cpu0 switch P1.T1", "cpu0 load data0.0")]
    assert [s.text() for s in Minimizer._merged(ops)] == ["cpu0 load data0.0"]
    ops = [Step.parse(x) for x in ("cpu0 spawn", "cpu1 switch P1.T2", "cpu1 umtx_sleep data0.0 0x0",
                                   "cpu0 umtx_wakeup data0.0", "cpu0 switch P1.T2", "cpu0 load data0.0")]
    assert Minimizer._merged(ops) is None


def test_creations_fold_a_fork_into_the_thread_that_made_it():
    # P1.T2 on cpu1 forks P2, whose T1 then runs on cpu2: folded in, its lines run on cpu1
    # (review: they went to cpu0, where P1.T1 runs)
    text = ("hw cpus=3\ncpu0 spawn\ncpu1 switch P1.T2\ncpu1 fork\ncpu2 switch P2.T1\n"
            "cpu2 procfs_write P2 text0.0 0x0\ncpu2 store text0.0 0x0\ncpu0 load data0.0\n")
    from pyvmfuzz.api import HwSpec, Step
    from pyvmfuzz.insight.minimize import Minimizer

    ops = [Step.parse(x) for x in text.splitlines()[1:]]
    m = Minimizer(HwSpec.parse("hw cpus=3"), "pre-385c96e4", "protection", 20)
    first = [s.text() for s in m._folds(ops, 2, "P2")[0]]
    assert first == ["cpu0 spawn", "cpu1 switch P1.T2", "cpu1 procfs_write P1 text0.0 0x0",
                     "cpu1 store text0.0 0x0", "cpu0 load data0.0"], first
    # on the creator's own CPU: the switch to the child goes too
    one = "hw cpus=1\ncpu0 fork\ncpu0 switch P2.T1\ncpu0 procfs_write P2 text0.0 0x0\ncpu0 store text0.0 0x0\n"
    small = minimize_report(_core.run_text(one, "pre-385c96e4"), budget_s=20)
    assert small["steps"] == ["cpu0 procfs_write P1 text0.0 0x0", "cpu0 store text0.0 0x0"], small["steps"]


def test_minimize_says_when_its_budget_ran_out(tmp_path):
    # A fresh user's report: `--time 0.01` on a long program said "2408 -> 2108 steps", exit 0,
    # as if that were minimal.
    prog = tmp_path / "long.txt"
    prog.write_text("hw cpus=1\n" + "cpu0 load data1.0\n" * 50 + "cpu0 procfs_write P1 text0.0 0x1\n"
                    "cpu0 store text0.0 0x1\n")
    p = cli("minimize", str(prog), "--kernel", "pre-385c96e4", "--time", "1e-9")
    assert p.returncode == 0 and "budget ran out: --time gives more" in p.stderr, p.stderr
    p = cli("minimize", str(prog), "--kernel", "pre-385c96e4", "--time", "30")
    assert p.returncode == 0 and "52 -> 2 steps\n" in p.stderr and "budget" not in p.stderr, p.stderr


def test_minimize_input_errors():
    p = cli("minimize", os.path.join(CORPUS, "repro", "pre-385c96e4-debugger-text.txt"), "--kernel", "fixed")
    assert p.returncode == 2 and "no violation" in p.stderr and "Traceback" not in p.stderr


def test_explain_text_and_html(tmp_path):
    prog = os.path.join(CORPUS, "litmus", "05-procfs-stale-foreign-cpu.txt")
    out = tmp_path / "x.html"
    p = cli("explain", prog, "--kernel", "partial-385c96e4", "--html", str(out))
    assert p.returncode == 1, p.stderr
    # The step where they part, with both sides, and the stale PTE beside the new frame.
    assert "# step 6: stale-read — expected 0x2, observed 0x1" in p.stdout
    assert re.search(r"P1 pte f(\d+) r sees f(?!\1)\d+", p.stdout), p.stdout
    page = out.read_text()
    assert page.startswith("<!doctype html>") and "<svg" in page and "stale-read" in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "") and "https://" not in page
    assert cli("explain", prog, "--kernel", "fixed").returncode == 0


def test_semantic_features_see_situations():
    own = _core.encode("cpu0 fork\ncpu0 procfs_write P1 data0.0 1\n", "fixed")
    foreign = _core.encode("cpu0 fork\ncpu1 switch P2.T1\ncpu1 procfs_write P1 data0.0 1\n", "fixed")
    fo, ff = set(_core.semantic_features(own)), set(_core.semantic_features(foreign))
    assert ff - fo  # a foreign procfs write is a situation of its own
    assert _core.semantic_features(own) == _core.semantic_features(own)  # deterministic
    # A sleeper on a frame being copied is visible as a feature.
    a = _core.encode("cpu0 spawn\ncpu1 switch P1.T2\ncpu1 umtx_sleep data0.0 0\ncpu0 fork\ncpu0 store data0.0 1\n", "fixed")
    b = _core.encode("cpu0 spawn\ncpu1 switch P1.T2\ncpu0 fork\ncpu0 store data0.0 1\n", "fixed")
    assert set(_core.semantic_features(a)) - set(_core.semantic_features(b))


def test_cmin_keeps_coverage_and_shrinks(tmp_path):
    from pyvmfuzz.insight.cmin import corpus_features

    # 3,000 runs (libFuzzer's -runs; the 60-s budget is not reached): the same corpus on any machine
    p = cli("fuzz", "--kernel", "fixed", "--time", "60", "--seed", "3", "--out", str(tmp_path / "out"), "--quiet",
            "--coverage", "semantic", "--", "-runs=3000")
    assert p.returncode == 0, p.stderr
    src = tmp_path / "out" / "corpus"
    dst = tmp_path / "min"
    c = cli("cmin", str(src), "-o", str(dst))
    assert c.returncode == 0, c.stderr
    before, after = len(os.listdir(src)), len(os.listdir(dst))
    assert f"{before} -> {after} inputs" in c.stdout
    assert 0 < after < before
    assert corpus_features(str(src), "fixed", "mode=pc64") == corpus_features(str(dst), "fixed", "mode=pc64")
    assert cli("cmin", str(src), "-o", str(src)).returncode == 2


def test_demo_tells_the_story(tmp_path):
    p = cli("demo", "--out", str(tmp_path / "demo"), "--fixed-time", "1", timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    out = p.stdout
    assert "- pre-385c96e4: protection at step" in out
    assert "- partial-385c96e4: stale-read at step" in out
    assert "- fixed: no violation" in out
    assert len([f for f in os.listdir(tmp_path / "demo" / "pre-385c96e4" / "crashes") if f.endswith(".html")]) >= 1


_CI = os.environ.get("CI") == "true"


@pytest.mark.skipif(not __import__("shutil").which("chromium") and not _CI,
                    reason="needs Debian's chromium (.ci/run installs it; under CI=true this fails instead)")
def test_explain_html_renders_in_headless_chromium(tmp_path):
    """The page as a real browser lays it out at 1400 px: every step is a table row, nothing
    overflows horizontally (a script measures the laid-out page and writes it into the DOM,
    which --dump-dom returns), and a screenshot is a rendered page, not a blank one."""
    import shutil
    import subprocess

    assert shutil.which("chromium"), "CI=true and no chromium on PATH (.ci/run installs Debian's chromium)"
    src = os.path.join(CORPUS, "litmus", "05-procfs-stale-foreign-cpu.txt")
    page, probe, shot = tmp_path / "x.html", tmp_path / "probe.html", tmp_path / "x.png"
    assert cli("explain", src, "--kernel", "partial-385c96e4", "--html", str(page)).returncode == 1
    html = page.read_text()
    probe.write_text(html.replace("</body>", "<script>document.body.setAttribute('data-scroll-width', "
                                              "document.documentElement.scrollWidth); document.body.setAttribute("
                                              "'data-rows', document.querySelectorAll('tr').length)</script></body>"))
    browser = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1400,900"]
    dom = subprocess.run(browser + ["--dump-dom", f"file://{probe}"], capture_output=True, text=True, timeout=120).stdout
    m = re.search(r'data-scroll-width="(\d+)" data-rows="(\d+)"', dom)
    assert m, dom[:500]
    steps = sum(1 for ln in open(src) if ln.startswith("cpu"))
    assert int(m[1]) <= 1400, f"the page is {m[1]} px wide at a 1400 px window"
    assert int(m[2]) >= steps + 1  # a header row and one row per step
    assert "stale-read" in dom
    subprocess.run(browser + [f"--screenshot={shot}", f"file://{page}"], capture_output=True, timeout=120)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000  # a rendered page, not a blank one


def test_minimize_drops_an_until_and_folds_its_resume():
    """SPEC §3.2 / issue 13: the debugger-text bug needs no interleaving; the minimizer drops
    the `until` and folds the `resume` into the line that started the op (ddmin alone cannot:
    the resume without its op, or the op without its resume, is not applicable)."""
    from pyvmfuzz.insight.minimize import minimize

    ops = ["cpu0 procfs_write P1 text0.0 0x7 until access", "cpu1 switch idle", "cpu0 resume",
           "cpu0 store text0.0 0x9"]
    hw, small = minimize("hw cpus=2", ops, "pre-385c96e4", "protection", budget_s=20)
    assert small == ["cpu0 procfs_write P1 text0.0 0x0", "cpu0 store text0.0 0x0"], small


def test_explain_draws_ops_in_flight_and_pending_ipis():
    """SPEC §3.2 (issue 13): cpu0's mprotect is in flight over steps 5-6 (a span in its lane,
    at ipi_wait), and the IPI is pending at cpu1 from step 4 until cpu1 takes it at step 6."""
    from pyvmfuzz.insight.explain import model, render_html, render_text

    text = open(os.path.join(CORPUS, "litmus", "i01-store-during-pending-mprotect.txt")).read()
    m = model(_core.explain(text))
    rows = render_text(m, "i01").splitlines()
    step = {int(r.split()[0]): r for r in rows if r[:3].strip().isdigit()}
    assert "| mprotect data0 r @ipi_wait" in step[5] and "| mprotect data0 r @ipi_wait" in step[6]
    assert "| mprotect" not in step[4] and "| mprotect" not in step[7]
    assert [n for n in range(1, 9) if "!ipi P1 data0" in step[n]] == [4, 5]
    page = render_html(m, "i01")
    assert page.count("ipi pending: P1 data0") == 2 and page.count('fill="#f2b84b"') == 2
