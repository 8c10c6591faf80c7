"""Issue 25, "Inputs that silently test nothing" (items 9-11) and items 13 and 16: a file that
looks like text is parsed as text and fails as text; text programs wherever a program is read
(`fuzz --corpus`, `cmin`), `pyvmfuzz encode`, `-` for stdin/stdout; hostile paths refused with
one line; contradictory headers refused; `cmin` atomic and keeping every input; JUnit
`<skipped>` for inapplicable pairs; a not-applicable error that shows the state refusing it.
Each test failed before the change."""

import os
import re
import xml.etree.ElementTree as ET

import pytest

from conftest import CORPUS, cli

REPRO = os.path.join(CORPUS, "repro", "pre-385c96e4-debugger-text.txt")  # protection at step 2
ROOT = os.path.dirname(CORPUS)


def error_lines(p) -> list[str]:
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr, p.stderr
    return p.stderr.strip().splitlines()


def one_line(p) -> str:
    lines = error_lines(p)
    assert len(lines) == 1, p.stderr
    return lines[0]


def encode(text: str, kernel: str = "fixed", hw: str | None = "mode=pc64") -> bytes:
    from pyvmfuzz import _core

    return _core.encode(text, kernel, hw)


# ------------------------------------------------------------ item 9: text is text


def test_a_typo_in_a_text_program_without_suffix_fails_as_text(tmp_path):
    """`Cpu0` in a file without suffix made it the byte form: an unrelated program, clean, 0."""
    f = tmp_path / "prog"
    f.write_text("hw cpus=2\nCpu0 procfs_write P1 text0.0 0x1\ncpu0 store text0.0 0x1\n")
    err = one_line(cli("run", str(f)))
    assert err.endswith("prog: line 2: expected cpuN, hw, kernel, os or expect, got 'Cpu0'"), err
    # in a checked directory too: a bad input (exit 2), not a pass
    p = cli("check", str(tmp_path))
    assert p.returncode == 2 and "ERROR" in p.stdout and "line 2" in p.stdout, p.stdout + p.stderr


def test_run_readme_is_an_input_error():
    err = one_line(cli("run", os.path.join(ROOT, "README.md")))
    assert re.search(r"README\.md: line \d+: ", err), err


def test_what_stays_the_byte_form(tmp_path):
    """Campaign inputs hold control bytes; libFuzzer's own mutations write printable runs
    without blanks (`hhhhhhhhhhhh` was in a 4-s campaign's corpus); a file named by the SHA-1
    of its bytes is libFuzzer's (or cmin's) whatever it holds; a .bytes file is bytes."""
    import hashlib

    from pyvmfuzz.programs import load

    words = b"cpu0 load data0.0\n"
    cases = {"input": encode(open(REPRO).read()), "tiny": b"ab", "run": b"hhhhhhhhhhhh", "x.bytes": words,
             hashlib.sha1(words).hexdigest(): words, "crash-" + hashlib.sha1(words).hexdigest(): words}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        assert not load(str(tmp_path / name)).is_text, name
    (tmp_path / "eight").write_bytes(b"cpu0 ipi")
    assert load(str(tmp_path / "eight")).is_text
    (tmp_path / "prose").write_bytes(b"hello world\n")  # text, so an input error, not a clean run
    assert "line 1: expected cpuN" in one_line(cli("run", str(tmp_path / "prose")))


# ------------------------------------------------------------ item 10: text anywhere, encode, -


def test_encode_round_trips_and_names_its_kernel_and_hw(tmp_path):
    out = tmp_path / "r"
    p = cli("encode", REPRO, "-o", str(out), "--kernel", "pre-385c96e4")
    assert p.returncode == 0, p.stderr
    assert "replay: --kernel pre-385c96e4 --hw cpus=2,tlb=8,mode=pc64" in p.stderr, p.stderr
    data = out.read_bytes()
    assert data == encode(open(REPRO).read(), "pre-385c96e4", None)
    r = cli("run", str(out), "--kernel", "pre-385c96e4")
    assert r.returncode == 1 and "protection at step 2" in r.stdout, r.stdout
    # a byte-form file is refused: there is nothing to encode
    assert "already the byte form" in one_line(cli("encode", str(out)))


def test_dash_is_stdin_and_stdout():
    import subprocess
    import sys

    text = open(REPRO).read()
    r = cli("run", "-", "--kernel", "pre-385c96e4", input=text)
    assert r.returncode == 1 and "protection at step 2" in r.stdout, r.stdout + r.stderr
    e = cli("explain", "-", "--kernel", "pre-385c96e4", input=text)
    assert e.returncode == 1 and "protection" in e.stdout, e.stderr
    c = cli("check", "-", input=text)
    assert c.returncode == 0 and "# checked 1 program/kernel pairs: 0 problem(s)" in c.stdout, c.stdout + c.stderr
    m = cli("minimize", "-", "--kernel", "pre-385c96e4", "--quiet", "-o", "-", input=text)
    assert m.returncode == 0 and "cpu0 store text0.0" in m.stdout and not os.path.exists(os.path.join(ROOT, "-"))
    b = subprocess.run([sys.executable, "-P", "-m", "pyvmfuzz", "encode", "-", "-o", "-"], input=text.encode(),
                       capture_output=True, cwd=ROOT, timeout=60)
    assert b.returncode == 0 and b.stdout == encode(text, "fixed", None), b.stderr
    bad = cli("run", "-", input="cpu0 load data0.0\nCpu0 fork\n")
    assert one_line(bad) == "pyvmfuzz run: <stdin>: line 2: expected cpuN, hw, kernel, os or expect, got 'Cpu0'"


def test_cmin_takes_text_and_writes_the_byte_form(tmp_path):
    """cmin copied a text input into its output verbatim: a campaign read it as bytes."""
    src = tmp_path / "src"
    src.mkdir()
    text = open(REPRO).read()
    (src / "repro.txt").write_text(text)
    p = cli("cmin", str(src), "-o", str(tmp_path / "out"))
    assert p.returncode == 0, p.stderr
    [name] = os.listdir(tmp_path / "out")
    data = (tmp_path / "out" / name).read_bytes()
    assert data == encode(text) and name == __import__("hashlib").sha1(data).hexdigest()


def test_cmin_keeps_inputs_of_one_name_in_two_directories(tmp_path):
    """Reported "2 -> 2 kept" and wrote 1: the second overwrote the first."""
    src = tmp_path / "src"
    for sub, prog in (("a", "cpu0 store data0.0 0x1\n"), ("b", "cpu0 fork\ncpu0 load shm0.0\n")):
        (src / sub).mkdir(parents=True)
        (src / sub / "input").write_bytes(encode(prog))
    p = cli("cmin", str(src), "-o", str(tmp_path / "out"))
    assert p.returncode == 0 and "2 -> 2 inputs" in p.stdout, p.stdout + p.stderr
    assert len(os.listdir(tmp_path / "out")) == 2


def test_cmin_interrupted_leaves_no_output_that_looks_finished(tmp_path, monkeypatch):
    from pyvmfuzz.insight import cmin as cmin_mod

    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    for i, prog in enumerate(("cpu0 store data0.0 0x1\n", "cpu0 fork\ncpu0 load shm0.0\n", "cpu0 spawn\n")):
        (src / f"in{i}").write_bytes(encode(prog))
    calls = []
    real_replace, real_rename = os.replace, os.rename

    def ctrl_c(real):
        def move(a, b, *args, **kw):  # Ctrl-C at the second input moved into place, or at the end
            calls.append(b)
            if len(calls) >= 2 or os.path.abspath(b) == str(out):
                raise KeyboardInterrupt
            return real(a, b, *args, **kw)
        return move

    monkeypatch.setattr(os, "replace", ctrl_c(real_replace))
    monkeypatch.setattr(os, "rename", ctrl_c(real_rename))
    with pytest.raises(KeyboardInterrupt):
        cmin_mod.cmin(str(src), str(out), "fixed", "mode=pc64")
    monkeypatch.undo()
    assert not out.exists() and sorted(os.listdir(tmp_path)) == ["src"], os.listdir(tmp_path)


def test_fuzz_corpus_text_programs_are_encoded(tmp_path):
    """Text programs in --corpus were mutated as raw bytes. Now they are encoded into the
    campaign's seeds; one that does not parse stops the campaign before it starts."""
    from pyvmfuzz.programs import InputError, encode_text_corpus

    corpus, seeds = tmp_path / "corpus", tmp_path / "seeds"
    corpus.mkdir()
    seeds.mkdir()
    text = open(REPRO).read()
    (corpus / "repro").write_text(text)
    (corpus / "idle.txt").write_text("cpu1 load data0.0\n")  # cpu1 idle: not applicable
    (corpus / "0123abcd").write_bytes(encode("cpu0 fork\n"))  # libFuzzer's own: left as it is
    notes = encode_text_corpus(str(corpus), str(seeds), "pre-385c96e4", "mode=pc64")
    assert [p.read_bytes() for p in seeds.iterdir()] == [encode(text, "pre-385c96e4")]
    assert "1 text program(s)" in notes[0] and "idle.txt: left out" in notes[1], notes
    (corpus / "typo").write_text("cpu0 load data0.0\nCpu0 fork\n")
    with pytest.raises(InputError, match=r"typo: line 2: .*'Cpu0'"):
        encode_text_corpus(str(corpus), str(seeds), "fixed", "mode=pc64")
    p = cli("fuzz", "--corpus", str(corpus), "--out", str(tmp_path / "out"), "--time", "1", "--quiet", timeout=60)
    assert "typo: line 2" in one_line(p)


# ------------------------------------------------------------ item 11: hostile paths


def test_a_fifo_in_a_checked_directory_is_skipped(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "r.txt").write_text(open(REPRO).read())
    p = cli("check", str(tmp_path), timeout=30)  # it hung
    assert p.returncode == 0, p.stdout + p.stderr
    assert "pipe (a FIFO)" in p.stdout and "# checked 1 program/kernel pairs" in p.stdout, p.stdout


def test_a_directory_1000_deep_is_one_line(tmp_path):
    dirs = ["deep"]
    for _ in range(1000):
        dirs.append(dirs[-1] + "/d")
    try:
        for d in dirs:
            os.mkdir(tmp_path / d)
        (tmp_path / dirs[-1] / "x.txt").write_text("cpu0 load data0.0\n")
        for cmd in (["check"], ["cells"], ["cmin", "-o", str(tmp_path / "out")]):
            err = one_line(cli(*cmd[:1], str(tmp_path / "deep"), *cmd[1:]))  # a RecursionError traceback, exit 1
            assert "more than 64 directory levels" in err, err
    finally:  # removed here, bottom up: pytest's own clean-up (shutil.rmtree) recurses and fails on it
        if os.path.exists(tmp_path / dirs[-1] / "x.txt"):
            os.unlink(tmp_path / dirs[-1] / "x.txt")
        for d in reversed(dirs):
            if os.path.isdir(tmp_path / d):
                os.rmdir(tmp_path / d)


def test_symbolic_link_loops_are_refused(tmp_path):
    (tmp_path / "a").mkdir()
    os.symlink("..", tmp_path / "a" / "up")
    assert "a symbolic link loop" in one_line(cli("check", str(tmp_path)))
    os.symlink("self", tmp_path / "self")
    assert one_line(cli("run", str(tmp_path / "self"))).endswith("self: a symbolic link loop")


# ------------------------------------------------------------ item 11: contradictory headers


@pytest.mark.parametrize("header, line, needle", [
    ("kernel fixed\nkernel pre-385c96e4\n", 2, "'kernel fixed' on line 1, 'kernel pre-385c96e4' here"),
    ("expect fixed clean\nexpect fixed stale-read 1\n", 2, "clean and a violation cannot both hold"),
    ("expect fixed stale-read 1\nexpect fixed protection 2\n", 2, "one run has one first violation"),
    ("expect fixed stale-read 5\n", 1, "the program has 2 op line(s), no step 5"),
    ("hw cpus=2\nhw cpus=3\n", 2, "'hw cpus=2' on line 1, 'hw cpus=3' here"),
    ("os linux\nos dragonfly\n", 2, "'os linux' on line 1, 'os dragonfly' here"),
])
def test_contradictory_headers_are_refused_before_running(tmp_path, header, line, needle):
    from pyvmfuzz import InputError, Program

    body = header + "cpu0 load data0.0\ncpu0 load data0.0\n"
    f = tmp_path / "h.txt"
    f.write_text(body)
    err = one_line(cli("run", str(f)))
    assert f"h.txt: line {line}: " in err and needle in err, err
    with pytest.raises(InputError) as e:
        Program.parse(body)
    assert e.value.line == line


def test_agreeing_headers_and_a_witness_are_accepted():
    from pyvmfuzz import Program

    ok = ("kernel fixed\nkernel fixed\nhw cpus=2\nhw tlb=4 cpus=2\nexpect fixed clean\nexpect fixed clean\n"
          "expect pre-385c96e4 tlb-incoherent 1\nexpect pre-385c96e4 stale-read 2\n"
          "cpu0 load data0.0\ncpu0 load data0.0\n")
    assert len(Program.parse(ok)) == 2


def test_parse_of_no_op_line_raises():
    from pyvmfuzz import InputError, Program

    for text in ("", "# nothing\n", "hw cpus=2\n"):
        with pytest.raises(InputError, match="no operations"):
            Program.parse(text)
    assert len(Program.from_bytes(b"")) == 0 and len(Program()) == 0  # the empty program, as a value


# ------------------------------------------------------------ item 16: JUnit <skipped>


def test_junit_inapplicable_pairs_are_skipped(tmp_path):
    """test_cli's schedule: line 9 is not applicable under procfs-hold-only (its fork does not
    wait, nothing is left in flight to resume). JUnit called that pair passed."""
    f = tmp_path / "sched.txt"
    f.write_text("hw cpus=3\ncpu0 spawn\ncpu0 spawn\ncpu1 switch P1.T2\ncpu2 switch P1.T3\n"
                 "cpu0 procfs_write P1 data0.0 0x5 until access\n"
                 "cpu1 fork\ncpu0 resume\ncpu1 resume\ncpu0 load data0.0 -> 0x5\n")
    out = tmp_path / "j.xml"
    p = cli("check", str(f), "--kernel", "all", "--junit", str(out))
    assert p.returncode == 0, p.stdout + p.stderr
    root = ET.parse(out).getroot()
    cases = {c.get("name"): c for c in root.iter("testcase")}
    for k in ("procfs-hold-only", "tree-385c96e4"):  # both only hold the page (test_cli)
        skipped = cases[k].find("skipped")
        assert skipped is not None and "line 9: not applicable: nothing in flight on cpu1" in skipped.get("message")
    assert cases["fixed"].find("skipped") is None
    assert root.get("skipped") == "2" and root.find("testsuite").get("skipped") == "2"


# ------------------------------------------------------------ item 13: the state refusing a line


def test_a_not_applicable_error_shows_the_trace_and_the_state(tmp_path):
    f = tmp_path / "ipi.txt"
    f.write_text("hw cpus=2\ncpu0 spawn\ncpu1 switch P1.T2\ncpu1 load data0.0\n"
                 "cpu0 mprotect data0 r until ipi_wait\ncpu0 ipi\n")
    first, *more = error_lines(cli("run", str(f)))
    assert first == f"pyvmfuzz run: {f}: line 6: not applicable: no IPI pending for cpu0"
    for want in ("    line 5: cpu0 mprotect data0 r until ipi_wait -> paused",
                 "    cpu0: runs P1.T1; in flight: mprotect data0 r, paused at ipi_wait; no IPI pending",
                 "    cpu1: runs P1.T2; nothing in flight; IPI pending: invalidate P1 data0 (from cpu0)",
                 "    threads: P1.T1 running on cpu0, P1.T2 running on cpu1"):
        assert want in more, "\n".join(more)
    f.write_text("hw cpus=2\ncpu0 spawn\ncpu1 switch P1.T2\ncpu1 umtx_sleep data0.0 0\ncpu0 switch P1.T2\n")
    first, *more = error_lines(cli("explain", str(f)))
    assert first.endswith("line 5: P1.T2 is blocked") and \
        "    threads: P1.T1 running on cpu0, P1.T2 blocked (umtx_sleep on data0.0)" in more, more
