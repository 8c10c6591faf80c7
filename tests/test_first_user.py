"""A kernel-testing engineer's first session with pyvmfuzz, trying to break it: each test is
one input that went wrong, reproduced through the command line (exit 2, one line, no traceback
for bad input; SPEC §5, docs/program-format.md "Input errors")."""

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from conftest import CORPUS, ROOT, cli


def _one_clean_line(r):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


@pytest.mark.parametrize("cmd", ["run", "explain", "minimize", "check"])
def test_endless_device_is_too_large_not_a_hang(cmd):
    # /dev/zero has size 0 to stat and never ends: reading it whole ate memory until killed.
    line = _one_clean_line(cli(cmd, "/dev/zero", timeout=20))
    assert "too large" in line


def _interrupt_after(args, seconds, grace=20):
    """Start the CLI with SIGINT at its default (a background shell ignores it), send Ctrl-C
    after `seconds`, and return (status, stdout, stderr) once it stops; None if it did not
    stop within `grace` seconds."""
    proc = subprocess.Popen([sys.executable, "-P", "-m", "pyvmfuzz", *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(seconds)
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return None
    return proc.returncode, out, err


@pytest.mark.slow  # 8 s of exploration before the Ctrl-C
def test_necessity_stops_on_ctrl_c_and_keeps_finished_rows():
    # The core returns an interrupted exploration instead of raising; necessity went on with
    # the next action (and the next), so Ctrl-C did nothing for minutes and printed nothing.
    r = _interrupt_after(["necessity", "--depth", "4", "--time", "2", "--random", "0"], 8, grace=6)
    assert r is not None, "necessity kept running after Ctrl-C"
    rc, out, err = r
    assert rc == 130, (rc, err)
    assert err.strip().splitlines() == ["pyvmfuzz necessity: interrupted"], err
    rows = [ln for ln in out.splitlines() if ln.startswith("| `")]
    assert rows and "# interrupted: the rows above are complete" in out
    # Every witness a finished row cites is printed.
    for ref in re.findall(r"\[(W\d+)\]", "\n".join(rows)):
        assert f"\n{ref} (" in out, ref


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="--target linux needs Linux")
def test_check_target_linux_writes_junit(tmp_path):
    # `check --target linux --junit FILE` exited 0 and wrote no file: CI saw no report at all.
    (tmp_path / "ok.txt").write_text("cpu0 store data0.0 0x1 -> ok\ncpu0 load data0.0 -> 0x1\n")
    (tmp_path / "bad.txt").write_text("cpu0 bogus\n")
    out = tmp_path / "j.xml"
    r = cli("check", str(tmp_path), "--target", "linux", "--junit", str(out))
    assert r.returncode == 2, r.stderr
    import xml.etree.ElementTree as ET

    cases = {c.get("classname").rsplit("/", 1)[-1]: c for c in ET.parse(out).iter("testcase")}
    assert set(cases) == {"ok.txt", "bad.txt"} and all(c.get("name") == "linux" for c in cases.values())
    assert cases["bad.txt"].find("error") is not None and len(list(cases["ok.txt"])) == 0


@pytest.mark.parametrize("args", [
    ["explore", "--depth", "-1"],
    ["explore", "--depth", "2", "--values", "-1"],
    ["explore", "--depth", "2", "--values", "0x100000000"],
    ["explore", "--depth", "2", "--time", "-5"],
    ["necessity", "--depth", "0"],
    ["necessity", "--depth", "-2"],
    ["necessity", "--random", "-1"],
    ["necessity", "--seed", "-1"],
])
def test_explore_necessity_bad_numbers_are_input_errors(args):
    # These reached the core: an OverflowError (or necessity's ValueError) traceback, exit 1.
    line = _one_clean_line(cli(*args, timeout=30))
    assert line.startswith(f"pyvmfuzz {args[0]}: --"), line


def test_cmin_same_dir_message_names_the_directory(tmp_path):
    # It said "pyvmfuzz cmin: cmin: the output ..." (the command twice, no path).
    d = tmp_path / "corp"
    d.mkdir()
    (d / "a.txt").write_text("cpu0 load data0.0\n")
    line = _one_clean_line(cli("cmin", str(d), "-o", str(d)))
    assert line == f"pyvmfuzz cmin: {d}: the output directory must differ from the input", line


def test_readme_seed_reproducer_is_the_corpus_file():
    # README showed `cpu0 store text0.0 0x1 -> ok` (the buggy kernel's trace) as the contents
    # of corpus/repro/pre-385c96e4-debugger-text.txt, whose assertion is `-> SEGV`: a user who
    # copied it got a failed assertion under fixed from `check --kernel all`.
    import os

    from conftest import ROOT as root

    text = open(os.path.join(root, "README.md"), encoding="utf-8").read()
    m = re.search(r"shortest reproducer \(`([^`]+)`\):\n\n```\n(.*?)```", text, re.S)
    assert m, "README lost the seed reproducer block"

    def ops(s):
        return [ln.split("#")[0].split() for ln in s.splitlines() if ln.startswith("cpu")]

    assert ops(m.group(2)) == ops(open(os.path.join(root, m.group(1)), encoding="utf-8").read())


def test_pending_hint_names_the_campaign_hw(tmp_path):
    # The summary said `pyvmfuzz minimize FILE --kernel K` for pending-*.bytes (no sidecar):
    # without the campaign's --hw the input's own mode bit decides, and a pc64 campaign's
    # input replays on tagged hardware.
    import argparse
    import shlex

    from pyvmfuzz import _core
    from pyvmfuzz.campaign.supervisor import pending_replay_flags

    data = bytes([0x08, 0x10, 0x20, 0x30])  # bit 3 of byte 0: tagged, unless --hw fixes the mode
    hint = pending_replay_flags(argparse.Namespace(kernel="pre-385c96e4", hw="mode=pc64"))
    flags = shlex.split(hint)
    assert flags[:2] == ["--kernel", "pre-385c96e4"] and "--hw" in flags
    hw = flags[flags.index("--hw") + 1]
    assert "mode=pc64" in _core.decode(data, "pre-385c96e4", hw).splitlines()[0]
    assert "mode=tagged" in _core.decode(data, "pre-385c96e4", None).splitlines()[0]


def test_explore_cpus_conflicting_with_hw_is_an_input_error():
    # `explore --cpus 3 --hw cpus=2` explored 3 CPUs without a word: which one did the user mean?
    line = _one_clean_line(cli("explore", "--depth", "1", "--cpus", "3", "--hw", "cpus=2"))
    assert line == "pyvmfuzz explore: --cpus 3 conflicts with --hw cpus=2", line
    r = cli("explore", "--depth", "1", "--cpus", "2", "--hw", "cpus=2,mode=tagged")
    assert r.returncode == 0 and "cpus=2" in r.stdout and "mode=tagged" in r.stdout, r.stderr


def test_explore_out_naming_a_file_is_refused_before_the_search(tmp_path):
    # A fresh user's report: `--out lw.txt` (a file) printed the violation found, then
    # "lw.txt: File exists" and exit 2 — after the whole search.
    f = tmp_path / "lw.txt"
    f.write_text("")
    r = cli("explore", "--depth", "3", "--kernel", "pre-385c96e4", "--out", str(f))
    assert r.returncode == 2 and r.stdout == "", r.stdout
    assert _one_clean_line(r) == f"pyvmfuzz explore: --out {f}: not a directory (the violation is saved in a directory)"


@pytest.mark.parametrize("args", [
    ["run", "--target", "linux", "--kernel", "pre-385c96e4"],
    ["check", "--target", "linux", "--kernel", "all"],
])
def test_target_linux_rejects_a_model_kernel(tmp_path, args):
    # Both ran on the host and ignored --kernel: `run --target linux --kernel pre-385c96e4`
    # printed "clean" for the seed bug's reproducer, as if the variant had been tried.
    p = tmp_path / "p.txt"
    p.write_text("cpu0 procfs_write P1 text0.0 0x1\ncpu0 store text0.0 0x1\n")
    line = _one_clean_line(cli(args[0], str(p), *args[1:]))
    assert "--target linux" in line and args[-1] in line, line


def test_minimize_rejects_a_non_positive_time_budget():
    """`minimize --time -1` was accepted (and minimized nothing): a bad budget is bad input."""
    p = cli("minimize", os.path.join(CORPUS, "repro", "pre-385c96e4-debugger-text.txt"),
            "--kernel", "pre-385c96e4", "--time", "-1")
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
    assert p.stderr.strip().splitlines() == ["pyvmfuzz minimize: --time must be > 0 (seconds), not -1"]


def test_necessity_help_states_its_exit_statuses():
    h = cli("necessity", "--help")
    assert h.returncode == 0 and "1: the base kernel itself is not clean" in " ".join(h.stdout.split())


def test_check_interrupted_prints_what_it_found_so_far(tmp_path):
    """Ctrl-C during a long `check` kept nothing: it now prints the problems found so far and
    how many pairs were checked, then exits 130 with one line."""
    bad = tmp_path / "a-bad.txt"  # checked first: a wrong assertion under fixed
    bad.write_text("cpu0 load data0.0 -> 0x5\n")
    body = open(os.path.join(CORPUS, "litmus", "05-procfs-stale-foreign-cpu.txt")).read()
    for i in range(4000):  # ~30 s of checking: far more than the interrupt leaves it
        (tmp_path / f"b{i:04}.txt").write_text(body)
    p = subprocess.Popen([sys.executable, "-P", "-m", "pyvmfuzz", "check", str(tmp_path), "--kernel", "all"],
                         cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, out + err
    assert "ASSERT" in out and "a-bad.txt [fixed]" in out
    assert re.search(r"# interrupted after \d+ program/kernel pairs: \d+ problem\(s\) so far", out)
    assert err.strip().splitlines() == ["pyvmfuzz check: interrupted"]


# ----------------------------------------------------------- left from session 3, fixed in 4


def test_hw_given_twice_overlays_key_by_key(tmp_path):
    f = tmp_path / "p.txt"
    f.write_text("cpu0 load data0.0\n")
    r = cli("run", str(f), "--hw", "cpus=3", "--hw", "mode=tagged")
    assert r.returncode == 0, r.stderr
    assert "hw cpus=3 tlb=8 mode=tagged" in r.stdout  # the second --hw did not drop cpus=3


@pytest.mark.parametrize("text,needle", [
    ("hw cpus=2 cpus=3\ncpu0 load data0.0\n", "hw key 'cpus' given twice"),
    ("cpu00 load data0.0\n", "expected cpuN"),
])
def test_one_spelling_per_header_key_and_cpu(tmp_path, text, needle):
    f = tmp_path / "p.txt"
    f.write_text(text)
    r = cli("run", str(f))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and needle in r.stderr, r.stderr


@pytest.mark.parametrize("flag", ["--pages", "--values"])
def test_explore_empty_domain_list_is_an_input_error(flag):
    r = cli("explore", "--depth", "1", flag, "")  # empty: it meant "the defaults", silently
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and flag in r.stderr, r.stderr


def test_ctrl_c_while_the_tool_loads_is_one_line_and_130():
    # A fresh user's report: Ctrl-C in the first ~50 ms of `pyvmfuzz fuzz` printed a 20-30 line
    # traceback of the import under way. Here the interrupt comes during that import.
    code = ("import builtins, sys\n"
            "real = builtins.__import__\n"
            "def imp(name, *a, **k):\n"
            "    if name == 'pyvmfuzz.cli':\n"
            "        raise KeyboardInterrupt\n"
            "    return real(name, *a, **k)\n"
            "builtins.__import__ = imp\n"
            "from pyvmfuzz.entry import main\n"
            "sys.exit(main())\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 130 and r.stderr == "pyvmfuzz: interrupted\n", (r.returncode, r.stderr)


def test_necessity_empty_actions_is_an_error_and_a_pipe_sees_progress():
    # A fresh user's report: `--actions ''` silently meant all 29 actions, and with stderr not a
    # terminal a run said nothing until its end.
    r = cli("necessity", "--depth", "2", "--actions", "")
    assert r.returncode == 2 and "--actions: unknown safety action(s) (none given)" in r.stderr, r.stderr
    r = cli("necessity", "--depth", "2", "--time", "0", "--random", "0", "--actions", "cow_event,fork_write_protect")
    assert r.returncode == 0, r.stderr
    assert "necessity fixed: action 1/2: cow_event\n" in r.stderr and "action 2/2: fork_write_protect" in r.stderr
