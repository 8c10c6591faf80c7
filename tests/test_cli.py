"""The command line: exit codes, JSON, errors in one line without traceback."""

import json
import os

from conftest import CORPUS, cli


def one_line_error(p):
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    return p.stderr


def test_run_clean_and_violation_exit_codes(run_cli):
    repro = os.path.join(CORPUS, "repro", "pre-385c96e4-debugger-text.txt")
    clean = run_cli("run", repro, "--kernel", "fixed")
    assert clean.returncode == 0, clean.stderr
    assert "# verdict: clean" in clean.stdout
    bad = run_cli("run", repro, "--kernel", "pre-385c96e4")
    assert bad.returncode == 1
    assert "# verdict: protection at step 2: expected SEGV, observed ok" in bad.stdout


def test_run_json(run_cli):
    repro = os.path.join(CORPUS, "repro", "partial-385c96e4-procfs-stale.txt")
    p = run_cli("run", repro, repro, "--kernel", "partial-385c96e4", "--json")
    assert p.returncode == 1
    objs = [json.loads(ln) for ln in p.stdout.splitlines()]
    assert len(objs) == 2
    o = objs[0]
    assert o["file"] == repro and o["kernel"] == "partial-385c96e4" and o["verdict"] == "violation"
    assert o["violation"] == {"kind": "stale-read", "step": 3, "expected": "0x1", "observed": "0xf000"}
    assert o["trace"] == ["0xf000", "ok", "0xf000"]


def test_trace_is_a_replayable_program(run_cli, tmp_path):
    repro = os.path.join(CORPUS, "litmus", "05-procfs-stale-foreign-cpu.txt")
    p = run_cli("run", repro, "--kernel", "partial-385c96e4")
    trace = tmp_path / "trace.txt"
    trace.write_text(p.stdout)
    again = run_cli("run", str(trace))  # kernel comes from the trace's header
    assert again.returncode == 1
    assert again.stdout.splitlines()[1:] == p.stdout.splitlines()[1:]


def test_bytes_file_runs(run_cli, tmp_path):
    f = tmp_path / "crash-1"
    # 5-byte records (issue 13): procfs_write P1 text0.0 1; store text0.0 2
    f.write_bytes(bytes([1, 7, 9, 0x10, 1, 0, 0, 2, 0x10, 2, 0, 0]))
    p = run_cli("run", str(f), "--kernel", "pre-385c96e4")
    assert p.returncode == 1, p.stdout + p.stderr
    assert "protection at step 2" in p.stdout


def test_malformed_program_names_the_line(run_cli, tmp_path):
    f = tmp_path / "bad.txt"
    f.write_text("# comment\ncpu0 load data0.0\ncpu0 lod data0.0\n")
    err = one_line_error(run_cli("run", str(f)))
    assert "line 3" in err and "unknown operation 'lod'" in err


def test_inapplicable_step_names_the_line(run_cli, tmp_path):
    """The first stderr line is the one-line error; the lines after it give the trace up to the
    line and the state that refuses it (issue 25 item 13; tests/test_inputs.py)."""
    f = tmp_path / "idle.txt"
    f.write_text("cpu0 load data0.0\ncpu1 load data0.0\n")
    p = run_cli("run", str(f))
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
    err, *more = p.stderr.strip().splitlines()
    assert "line 2" in err and "cpu1 is idle" in err
    assert "    cpu1: idle; nothing in flight; no IPI pending" in more, p.stderr


def test_violation_before_inapplicable_step_is_the_verdict(run_cli, tmp_path):
    f = tmp_path / "v.txt"
    f.write_text("cpu0 procfs_write P1 text0.0 1\ncpu0 store text0.0 2\ncpu1 load data0.0\n")
    p = run_cli("run", str(f), "--kernel", "pre-385c96e4")
    assert p.returncode == 1 and "protection at step 2" in p.stdout


def test_unknown_kernel_lists_valid_names(run_cli):
    repro = os.path.join(CORPUS, "repro", "pre-385c96e4-debugger-text.txt")
    err = one_line_error(run_cli("run", repro, "--kernel", "nosuch"))
    for k in ("fixed", "pre-385c96e4", "partial-385c96e4"):
        assert k in err


def test_bad_hw_and_missing_file(run_cli):
    repro = os.path.join(CORPUS, "repro", "pre-385c96e4-debugger-text.txt")
    assert "cpus=9" in one_line_error(run_cli("run", repro, "--hw", "cpus=9"))
    assert "no such file" in one_line_error(run_cli("run", "/nonexistent/x.txt"))


def test_binary_garbage_in_txt(run_cli, tmp_path):
    f = tmp_path / "g.txt"
    f.write_bytes(b"\xff\xfe\x00garbage")
    assert "not a text program" in one_line_error(run_cli("run", str(f)))


def test_assertion_mismatch_exits_1(run_cli, tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("cpu0 load data0.0 -> 0x5\n")
    p = run_cli("run", str(f))
    assert p.returncode == 1
    assert "# assertion failed at step 1: written 0x5, observed 0x0" in p.stdout


def test_every_subcommand_has_help(run_cli):
    for cmd in ("run", "check", "fuzz", "minimize", "cmin", "explain", "bench", "zoo", "demo"):
        p = run_cli(cmd, "--help")
        assert p.returncode == 0 and "usage:" in p.stdout, cmd


def test_empty_text_program_and_bad_bench_numbers(run_cli, tmp_path):
    f = tmp_path / "empty.txt"
    f.write_text("# nothing here\n")
    assert "no operations" in one_line_error(run_cli("run", str(f)))
    assert "--programs must be at least 1" in one_line_error(run_cli("bench", "--programs", "-5"))


def test_check_all_skips_a_schedule_another_kernel_does_not_take(run_cli, tmp_path):
    """SPEC §3.2: a line that waits (`paused` at `wait`) under one kernel may complete under
    another, and the `resume` after it then has nothing to resume. Under a kernel the file
    neither names (`kernel`, `expect`) nor is fixed, `check --kernel all` reports that pair as
    not applicable and goes on; with an `expect` line for that kernel it is a bad input (exit 2).
    Hand-derived: in fixed cpu1's fork waits for the page busy under procfs_write (litmus 21),
    in procfs-hold-only the page is only held, the fork completes, and `cpu1 resume` (line 9) is left
    with nothing in flight; tree-385c96e4 holds the page the same way (the 385c96e4 tree's
    procfs_mem.c), so it is the second such pair."""
    body = ("hw cpus=3\n"
            "cpu0 spawn\ncpu0 spawn\ncpu1 switch P1.T2\ncpu2 switch P1.T3\n"
            "cpu0 procfs_write P1 data0.0 0x5 until access\n"
            "cpu1 fork\ncpu0 resume\ncpu1 resume\ncpu0 load data0.0 -> 0x5\n")
    f = tmp_path / "sched.txt"
    f.write_text(body)
    p = run_cli("check", str(f), "--kernel", "all")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "[procfs-hold-only]: line 9: not applicable: nothing in flight on cpu1" in p.stdout
    assert "[tree-385c96e4]: line 9: not applicable: nothing in flight on cpu1" in p.stdout
    assert "2 pair(s) not applicable" in p.stdout
    f.write_text("expect procfs-hold-only clean\n" + body)
    one_line_error(run_cli("check", str(f), "--kernel", "all"))


# ------------------------------------------------------------ run under a personality (SPEC §4.2)
# The core has no personality: it judges as os dragonfly. Under `--os linux` (or an `os linux`
# header) `run` has one verdict, the os linux contract's -- the oracle's on the core's
# observations -- and the exit code and --json follow it. Verdicts derived by hand from SPEC §4.2:
# every model kernel is DragonFly, so umtx_sleep on a page whose prot lacks write gives EFAULT
# (clean under dragonfly); Linux's FUTEX_WAIT compares instead (blocked when the word is equal,
# EBUSY when not), so the same observation is an `outcome` violation under os linux.

RO_SLEEP = "cpu0 store data0.1 0x7\ncpu0 mprotect data0 r\ncpu0 umtx_sleep data0.1 {v}\n"


def _run_json(run_cli, f, *flags):
    p = run_cli("run", str(f), "--json", *flags)
    assert p.returncode in (0, 1), p.stdout + p.stderr
    return p.returncode, json.loads(p.stdout)


def test_run_verdict_follows_the_personality(run_cli, tmp_path):
    for value, linux_expects in (("0x7", "blocked"), ("0x8", "EBUSY")):
        f = tmp_path / f"ro-{value}.txt"
        f.write_text(RO_SLEEP.format(v=value))
        for flags in ((), ("--os", "dragonfly")):
            rc, o = _run_json(run_cli, f, *flags)
            assert (rc, o["verdict"], o["violation"], o["os"], o["judge"]) == (0, "clean", None, "dragonfly", "core")
            assert o["trace"] == ["ok", "ok", "EFAULT"] and "core" not in o
        rc, o = _run_json(run_cli, f, "--os", "linux")
        want = {"kind": "outcome", "step": 3, "expected": linux_expects, "observed": "EFAULT"}
        assert (rc, o["verdict"], o["violation"], o["os"], o["judge"]) == (1, "violation", want, "linux", "oracle")
        assert o["trace"] == ["ok", "ok", "EFAULT"]
        assert o["core"] == {"verdict": "clean", "violation": None}  # its DragonFly judgement, shown apart


def test_run_text_names_the_judge_and_the_cores_differing_verdict(run_cli, tmp_path):
    f = tmp_path / "ro.txt"
    f.write_text(RO_SLEEP.format(v="0x7"))
    p = run_cli("run", str(f), "--os", "linux")
    assert p.returncode == 1, p.stdout + p.stderr
    lines = p.stdout.splitlines()
    assert "# verdict: violation (os linux, oracle): outcome at step 3: expected blocked, observed EFAULT" in lines
    assert not any(ln.startswith("# verdict: clean") for ln in lines), p.stdout
    assert any(ln.startswith("# the core's own verdict") and "os dragonfly): clean" in ln for ln in lines), p.stdout
    assert lines[1:4] == ["hw cpus=2 tlb=8 mode=pc64", "kernel fixed", "os linux"]  # replays under os linux
    p = run_cli("run", str(f))
    assert p.returncode == 0 and "# verdict: clean" in p.stdout.splitlines() and "os linux" not in p.stdout


def test_run_takes_the_personality_from_the_header_and_os_overrides_it(run_cli, tmp_path):
    f = tmp_path / "ro.txt"
    f.write_text("os linux\n" + RO_SLEEP.format(v="0x8"))
    rc, o = _run_json(run_cli, f)
    assert (rc, o["os"], o["verdict"]) == (1, "linux", "violation") and o["violation"]["expected"] == "EBUSY"
    rc, o = _run_json(run_cli, f, "--os", "dragonfly")
    assert (rc, o["os"], o["verdict"]) == (0, "dragonfly", "clean")
    # the printed trace says `os linux`, so it replays to the same verdict
    p = run_cli("run", str(f))
    trace = tmp_path / "trace.txt"
    trace.write_text(p.stdout)
    again = run_cli("run", str(trace))
    assert p.returncode == again.returncode == 1 and again.stdout.splitlines()[1:] == p.stdout.splitlines()[1:]


def test_run_debugger_write_to_a_read_only_shm0_under_both_personalities(run_cli, tmp_path):
    """SPEC §4.2: the model (DragonFly, VM_PROT_OVERRIDE_WRITE) writes (`ok`); os linux expects EIO."""
    f = tmp_path / "w.txt"
    f.write_text("cpu0 mprotect shm0 r\ncpu0 procfs_write P1 shm0.2 0x5\ncpu0 load shm0.2\n")
    rc, o = _run_json(run_cli, f)
    assert (rc, o["verdict"], o["trace"]) == (0, "clean", ["ok", "ok", "0x5"])
    rc, o = _run_json(run_cli, f, "--os", "linux")
    assert (rc, o["verdict"]) == (1, "violation")
    assert o["violation"] == {"kind": "outcome", "step": 2, "expected": "EIO", "observed": "ok"}


def test_run_under_linux_keeps_the_cores_internal_invariant(run_cli):
    """A core-only kind is the model's own invariant, no personality's: it stays the verdict
    where the os linux oracle finds nothing before it (litmus 13: tlb-incoherent at 3)."""
    f = os.path.join(CORPUS, "litmus", "13-rename-sleeper.txt")
    want = {"kind": "tlb-incoherent", "step": 3}
    for flags in ((), ("--os", "linux")):
        rc, o = _run_json(run_cli, f, "--kernel", "protect-wrong-va", *flags)
        assert rc == 1 and o["verdict"] == "violation" and o["judge"] == "core", o
        assert {k: o["violation"][k] for k in want} == want


def test_run_under_linux_a_violation_before_a_line_the_model_cannot_apply_is_the_verdict(run_cli, tmp_path):
    """SPEC §2.3: an inapplicable line is an input error unless the run has already ended in a
    violation. Written for Linux, T1's sleep blocks (step 3) and cpu1 may switch to T1; the model
    gives EFAULT there (T1 keeps cpu0), so line 5 is not applicable to it -- but under os linux
    the run ended at step 3."""
    f = tmp_path / "lx.txt"
    f.write_text("os linux\ncpu0 spawn\ncpu0 mprotect data0 r\ncpu0 umtx_sleep data0.0 0x0\n"
                 "cpu1 switch P1.T1\ncpu0 load data0.0\n")
    rc, o = _run_json(run_cli, f)
    assert (rc, o["verdict"], o["trace"]) == (1, "violation", ["P1.T2", "ok", "EFAULT"])
    assert o["violation"] == {"kind": "outcome", "step": 3, "expected": "blocked", "observed": "EFAULT"}
    p = run_cli("run", str(f))
    assert p.returncode == 1 and "# line 5 did not run: the model cannot apply it" in p.stdout, p.stdout
    p = run_cli("run", str(f), "--os", "dragonfly")  # the error line, then the state refusing it
    assert p.returncode == 2 and "line 5" in p.stderr.splitlines()[0], p.stderr


def test_a_dragonfly_only_core_violation_is_not_the_linux_verdict():
    """No model kernel answers like Linux where DragonFly differs, so this is pinned on a report:
    a core that flags `EBUSY` (DragonFly wants EFAULT) has not broken os linux's contract; the
    run stopped there, and the note says the steps after it did not run."""
    from pyvmfuzz.cli import _personality_verdict
    from pyvmfuzz.programs import ProgramFile

    core = {"kind": "outcome", "step": 2, "expected": "EFAULT", "observed": "EBUSY"}
    rep = {"hw": "hw cpus=2 tlb=8 mode=pc64", "steps": ["cpu0 mprotect data0 r", "cpu0 umtx_sleep data0.0 0x1"],
           "trace": ["ok", "EBUSY"], "violation": core}
    pf = ProgramFile("x.txt", "", None)
    pv = _personality_verdict(pf, rep, "linux", True)
    assert pv.violation is None and pv.judge == "oracle"
    assert "outcome at step 2" in pv.notes[0] and "steps after 2, if any, did not run" in pv.notes[1]
    pv = _personality_verdict(pf, rep, "dragonfly", False)
    assert pv.violation == core and pv.judge == "core" and pv.notes == []


def test_the_contract_is_installed_with_the_package_and_is_the_docs_page():
    """Issue 25: the contract reachable from an installed package — `pyvmfuzz contract` prints
    the packaged copy, which must be the repository's docs/contract.md byte for byte."""
    import pyvmfuzz

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    packaged = os.path.join(os.path.dirname(pyvmfuzz.__file__), "docs", "contract.md")
    docs = open(os.path.join(root, "docs", "contract.md"), encoding="utf-8").read()
    p = cli("contract")
    assert p.returncode == 0 and p.stdout == docs, "cp docs/contract.md pyvmfuzz/docs/contract.md, reinstall"
    where = cli("contract", "--path")
    assert where.returncode == 0 and where.stdout.strip().endswith(os.path.join("docs", "contract.md"))
    assert open(packaged, encoding="utf-8").read() == docs, "cp docs/contract.md pyvmfuzz/docs/contract.md"
