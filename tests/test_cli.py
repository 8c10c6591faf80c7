"""The command line: exit codes, JSON, errors in one line without traceback."""

import json
import os

from conftest import CORPUS


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
    f = tmp_path / "idle.txt"
    f.write_text("cpu0 load data0.0\ncpu1 load data0.0\n")
    err = one_line_error(run_cli("run", str(f)))
    assert "line 2" in err and "cpu1 is idle" in err


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
    with nothing in flight."""
    body = ("hw cpus=3\n"
            "cpu0 spawn\ncpu0 spawn\ncpu1 switch P1.T2\ncpu2 switch P1.T3\n"
            "cpu0 procfs_write P1 data0.0 0x5 until access\n"
            "cpu1 fork\ncpu0 resume\ncpu1 resume\ncpu0 load data0.0 -> 0x5\n")
    f = tmp_path / "sched.txt"
    f.write_text(body)
    p = run_cli("check", str(f), "--kernel", "all")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "[procfs-hold-only]: line 9: not applicable: nothing in flight on cpu1" in p.stdout
    assert "1 pair(s) not applicable" in p.stdout
    f.write_text("expect procfs-hold-only clean\n" + body)
    one_line_error(run_cli("check", str(f), "--kernel", "all"))
