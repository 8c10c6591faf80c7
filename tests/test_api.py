"""The typed Python API (issue 17): Program/Step/run/Report, the _core stub, the layout facts,
the Hypothesis strategy, the README's example, minimize/explain on typed values, check --junit."""

import ast
import inspect
import json
import os
import re
import xml.etree.ElementTree as ET

import pytest
from hypothesis import find, given, settings
from hypothesis.errors import InvalidArgument

import pyvmfuzz
from pyvmfuzz import _core, layout
from pyvmfuzz.api import Addr, Assertion, Expect, HwSpec, Program, Step, Thread
from pyvmfuzz.programs import InputError
from pyvmfuzz.strategies import programs

from conftest import CORPUS, ROOT, cli, corpus_files

PKG = os.path.dirname(pyvmfuzz.__file__)
DEBUGGER = os.path.join(CORPUS, "repro", "pre-385c96e4-debugger-text.txt")


# ---------------------------------------------------------------- Program and Step

def test_program_round_trips_every_corpus_program():
    files = corpus_files()
    assert len(files) > 10
    for f in files:
        text = open(f, encoding="utf-8").read()
        try:
            p = Program.parse(text)
        except InputError as e:  # a corpus program the core does not parse (yet) must fail in both
            with pytest.raises(ValueError):
                _core.parse_text(text)
            assert e.line is not None, f
            continue
        assert Program.parse(p.text()) == p, f
        # the typed steps print exactly the core's canonical lines
        assert p.text(assertions=False).splitlines()[len(p.header()):] == _core.canonical(text).splitlines(), f


def test_api_docstring_example():
    import doctest

    import pyvmfuzz.api

    res = doctest.testmod(pyvmfuzz.api)
    assert res.attempted >= 3 and res.failed == 0


def test_step_fields_are_typed():
    p = Program.parse("hw cpus=3\nkernel pre-385c96e4\nexpect fixed clean\n"
                      "cpu0 fork -> P2\ncpu1 switch P2.T1\ncpu1 procfs_write P1 text1.2 65 -> ok woke P1.T2\n"
                      "cpu1 mprotect data3 r\ncpu2 switch idle\ncpu0 madvise shm0 dontneed\n")
    fork, sw, pw, mp, idle, madv = p.steps
    assert (fork.cpu, fork.op, fork.assertion) == (0, "fork", Assertion("P2"))
    assert sw.target == Thread(2, 1) and idle.target == "idle"
    assert (pw.pid, pw.addr, pw.value) == (1, Addr("text1", 2), 0x41)
    assert pw.assertion == Assertion("ok", (Thread(1, 2),))
    assert (mp.page, mp.prot, madv.page) == ("data3", "r", "shm0")
    assert pw.args == ("P1", "text1.2", "0x41") and pw.touched_page == "text1"
    assert p.hw == HwSpec(cpus=3) and p.kernel == "pre-385c96e4" and p.expects == (Expect("fixed"),)
    assert str(pw) == "cpu1 procfs_write P1 text1.2 0x41 -> ok woke P1.T2"


def test_step_carries_until_resume_and_ipi():
    # SPEC §3.2 / the team's SYNTAX.md: these print as the core will parse them
    s = Step(0, "store", addr=Addr("text0", 1), value=3, until="pmap_enter")
    assert s.text() == "cpu0 store text0.1 0x3 until pmap_enter"
    assert Step.parse(s.text()) == s
    for line in ("cpu1 resume", "cpu1 resume until ipi_wait", "cpu2 ipi -> ok",
                 "cpu0 procfs_write P2 data0.0 0x5 until access -> paused woke P1.T2",
                 "cpu1 mprotect data0 r -> paused", "cpu0 switch P2.T1 until enter"):
        assert Step.parse(line).text() == line
    assert Step.parse("cpu1 resume until cow") == Step(1, "resume", until="cow")
    with pytest.raises(ValueError, match=r"load has no yield point 'sleep' \(its points: cow, pmap_enter, ipi_wait, wait\)"):
        Step(0, "load", addr=Addr("data0", 0), until="sleep")


@pytest.mark.parametrize("kw, msg", [
    (dict(op="store", addr=Addr("data0", 0)), "missing argument 'value'"),
    (dict(op="fork", value=1), "unexpected argument 'value'"),
    (dict(op="load", addr=Addr("data0", 0), value=None, until="nowhere"), "no yield point"),
    (dict(op="store", addr=Addr("data0", 0), value=1 << 32), "bad value"),
    (dict(op="frobnicate"), "unknown operation"),
])
def test_bad_steps_raise_value_error(kw, msg):
    with pytest.raises(ValueError, match=msg):
        Step(0, **kw)
    with pytest.raises(ValueError, match="unknown page"):
        Addr("data9", 0)


def test_bytes_round_trip():
    """Every corpus program has a byte form under every kernel its run gets through (a run that
    stops early, at a violation, may leave later lines inapplicable), and the bytes decode to its
    steps. (The exit reading of a7d841e once left `exit` by a sibling of an exiting process
    without an encoding: litmus i13 could not be encoded, so cmin of the litmus corpus failed.)"""
    kernels = [k for k, _ in _core.kernels()]
    encoded = 0
    for f in corpus_files("**"):
        p = Program.parse(open(f, encoding="utf-8").read())
        for k in ([p.kernel] if p.kernel else kernels):
            try:
                rep = _core.run_text(p.text(), k)
            except ValueError:
                continue
            if len(rep["trace"]) < len(p.steps):
                continue
            data = p.bytes(k)
            back = Program.from_bytes(data, k)
            assert [s.replace(assertion=None) for s in p.steps] == list(back.steps), (f, k)
            assert back.kernel == k and back.hw.resolve() == p.hw.resolve()
            encoded += 1
    assert encoded > 500, encoded


def test_input_error_carries_line_and_reason():
    with pytest.raises(InputError) as ei:
        Program.parse("cpu0 load data0.0\ncpu0 load data9.1\n")
    assert (ei.value.line, ei.value.reason, str(ei.value)) == (2, "unknown page 'data9'", "line 2: unknown page 'data9'")
    with pytest.raises(InputError) as ei:
        pyvmfuzz.run("cpu0 load data0.0\ncpu1 load data0.0\n")  # cpu1 idle: not applicable
    assert ei.value.line == 2 and "idle" in ei.value.reason
    with pytest.raises(InputError) as ei:
        Program.parse("cpu5 load data0.0\n")
    assert ei.value.line == 1 and "beyond" in ei.value.reason
    assert Program.parse("cpu5 load data0.0\n", hw="cpus=6").steps[0].cpu == 5


def test_cli_keeps_the_input_error_format(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("cpu0 load data0.0\ncpu0 load data9.1\n")
    p = cli("run", str(bad))
    assert p.returncode == 2 and p.stderr.strip().endswith(f"{bad}: line 2: unknown page 'data9'"), p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_os_header():
    p = Program.parse("hw cpus=1\nos linux\ncpu0 store data0.0 0x1\n")
    assert p.os == "linux" and "os linux\n" in p.text() and Program.parse(p.text()) == p
    assert pyvmfuzz.run(p).trace == ("ok",)
    with pytest.raises(InputError) as ei:
        Program.parse("cpu0 fork\nos linux\n")
    assert ei.value.line == 2
    with pytest.raises(InputError, match="line 1: usage: os"):
        Program.parse("os plan9\ncpu0 fork\n")


# ---------------------------------------------------------------- run and Report

def test_run_reports_typed_values():
    text = open(DEBUGGER, encoding="utf-8").read()
    r = pyvmfuzz.run(Program.parse(text), kernel="pre-385c96e4")
    assert r.verdict == "violation" and not r.clean
    assert (r.violation.kind, r.violation.step, r.violation.expected, r.violation.observed) == ("protection", 2, "SEGV", "ok")
    assert r.trace == ("ok", "ok") and r.kernel == "pre-385c96e4" and r.hw == "hw cpus=2 tlb=8 mode=pc64"
    assert pyvmfuzz.run(text, kernel="fixed").clean
    # the same run as `run --json` reports it (SPEC §5)
    p = cli("run", DEBUGGER, "--kernel", "pre-385c96e4", "--json")
    j = json.loads(p.stdout.splitlines()[0])
    d = r.to_dict()
    assert {k: j[k] for k in ("kernel", "verdict", "violation", "trace")} == {k: d[k] for k in ("kernel", "verdict", "violation", "trace")}
    # the observed program replays: every step asserts what it showed
    obs = r.observed()
    assert [s.assertion.outcome for s in obs.steps] == ["ok", "ok"]
    assert pyvmfuzz.run(obs, kernel="pre-385c96e4").assert_failures == ()


def test_run_kernel_and_hw_precedence():
    p = Program.parse("hw cpus=1\nkernel pre-385c96e4\ncpu0 procfs_write P1 text0.0 0x1\ncpu0 store text0.0 0x1\n")
    assert pyvmfuzz.run(p).kernel == "pre-385c96e4" and not pyvmfuzz.run(p).clean
    assert pyvmfuzz.run(p, kernel="fixed").clean
    assert pyvmfuzz.run(p, hw="tlb=4").hw == "hw cpus=1 tlb=4 mode=pc64"
    with pytest.raises(InputError, match="unknown kernel"):
        pyvmfuzz.run(p, kernel="nope")


def test_run_bytes_stops_at_the_violation():
    p = Program.parse("hw cpus=1\ncpu0 procfs_write P1 text0.0 0x1\ncpu0 store text0.0 0x1\ncpu0 load data0.0\n")
    r = pyvmfuzz.run(p.bytes("pre-385c96e4"), kernel="pre-385c96e4")
    assert r.violation.step == 2 and len(r.trace) == 2 and r.steps[1].op == "store"


# ---------------------------------------------------------------- the stub and the layout

def test_core_stub_declares_every_export_with_its_parameters():
    tree = ast.parse(open(os.path.join(PKG, "_core.pyi"), encoding="utf-8").read())
    funcs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    exported = [n for n in dir(_core) if not n.startswith("__")]
    for name in exported:
        obj = getattr(_core, name)
        if inspect.isclass(obj):
            assert name in classes, f"_core.{name} missing from _core.pyi"
            if issubclass(obj, BaseException):  # _core.InputError: a ValueError with .line, .reason
                assert issubclass(obj, ValueError) and [b.id for b in classes[name].bases] == ["ValueError"], name
                fields = {a.target.id for a in classes[name].body if isinstance(a, ast.AnnAssign)}
                assert fields == {"line", "reason"}, fields
                continue
            methods = {m.name for m in classes[name].body if isinstance(m, ast.FunctionDef)}
            assert {m for m in dir(obj) if not m.startswith("_")} <= methods, name
            continue
        if not callable(obj):
            continue
        assert name in funcs, f"_core.{name} missing from _core.pyi"
        assert ast.get_docstring(funcs[name]), f"_core.{name}: no docstring in the stub"
        want = [p for p in inspect.signature(obj).parameters]
        got = [a.arg for a in funcs[name].args.args]
        assert got == want, f"_core.{name}: stub parameters {got}, runtime {want}"
    assert os.path.exists(os.path.join(PKG, "py.typed"))


def test_layout_matches_the_model():
    assert layout.PAGES == tuple(_core.layout()["pages"]) and len(layout.ADDRS) == len(layout.PAGES) * layout.WORDS
    # the initial content the layout states is what the model's loads return (SPEC §2.1)
    mapped = [a for a in layout.ADDRS if Addr.parse(a).page not in layout.UNMAPPED_PAGES]
    prog = "".join(f"cpu0 load {a}\n" for a in mapped)
    trace = pyvmfuzz.run(prog).trace
    assert trace == tuple(f"{layout.text_word(*Addr.parse(a).__dict__.values()):#x}" for a in mapped)
    assert trace[mapped.index("text1.2")] == "0xf012" and trace[mapped.index("file0.3")] == "0xd003"
    # hole0 has no mapping at first (docs/contract.md §3.4)
    assert layout.UNMAPPED_PAGES == ("hole0",) and pyvmfuzz.run("cpu0 load hole0.0\n").trace == ("SEGV",)
    # every user opcode decodes to its operation (one record after a 1-CPU header); resume and
    # ipi need an op in flight / an IPI pending (test_harness_dictionary_records_...)
    for name, code in layout.OPCODES.items():
        if name in ("resume", "ipi"):
            continue
        rec = bytes([0, 7, code, 0, layout.EXT_SELECT.get(name, 1), 0, 0])
        op = Program.from_bytes(rec).steps[0]
        assert op.op == name.removesuffix("_rw").removesuffix("_r"), name
        if name.startswith("mprotect"):
            assert op.prot == name.split("_")[1]
    assert set(layout.CORE_OPS) <= set(layout.OPS) and layout.KERNELS[0] == "fixed"


IPI_PENDING = """cpu0 spawn
cpu1 switch P1.T2
cpu0 store data0.0 0x1
cpu1 load data0.0
cpu0 mprotect data0 r until ipi_wait
"""


def test_harness_dictionary_records_decode_to_their_operations(tmp_path):
    from pyvmfuzz.campaign import dictionary

    for name, rec in dictionary.vm_entries().items():
        prefix = {"switch_cpu1": _core.encode("cpu0 spawn\n", "fixed", "cpus=2")[2:],
                  "switch_cpu1_until": _core.encode("cpu0 spawn\n", "fixed", "cpus=2")[2:],
                  # an op in flight on cpu0 (resume), an IPI pending at cpu1 (ipi): SPEC §3.2
                  "resume": _core.encode("cpu0 store data0.0 0x1 until pmap_enter\n", "fixed", "cpus=2")[2:],
                  "resume_until": _core.encode("cpu0 store data0.0 0x1 until pmap_enter\n", "fixed", "cpus=2")[2:],
                  "ipi": _core.encode(IPI_PENDING, "fixed", "cpus=2")[2:]}
        steps = Program.from_bytes(bytes([1, 7]) + prefix.get(name, b"") + rec).steps
        last = steps[-1]
        op = name.removesuffix("_until").split("_text")[0].removesuffix("_cpu1").removesuffix("_rw").removesuffix("_r")
        assert last.op == op, (name, last)
        if name.endswith("_text0"):
            assert last.touched_page == "text0"
    dictionary.write_parser(str(tmp_path / "p.dict"))
    lines = (tmp_path / "p.dict").read_text().splitlines()
    assert '"procfs_write "' in lines and '" -> "' in lines and all(re.fullmatch(r'"[^"]+"', ln) for ln in lines)


# ---------------------------------------------------------------- strategies

@settings(max_examples=150, deadline=None)
@given(programs(kernels=layout.KERNELS, cpus=(1, 4), max_steps=20, modes=("pc64", "tagged")))
def test_drawn_programs_are_valid_under_their_kernel(p):
    assert 1 <= p.hw.cpus <= 4 and p.kernel in layout.KERNELS
    r = pyvmfuzz.run(p)  # no InputError: every step applicable when reached
    assert len(r.trace) == (len(p.steps) if r.clean else r.violation.step) and r.program == p
    assert Program.parse(p.text()) == p
    # the typed steps print what the core prints (what Step.parse reads is the core's canonical form)
    assert [s.text() for s in p.steps] == _core.canonical(p.text()).splitlines()
    # the run ends at its first violation: what ran is a prefix of the program
    assert [s.text(False) for s in p.steps[:len(r.trace)]] == [s.text(False) for s in r.observed().steps]


@settings(max_examples=60, deadline=None)
@given(programs(ops=["load", "store", "fork"], cpus=2, max_steps=10))
def test_ops_subset_is_respected(p):
    # switch, resume and ipi are the decoder's folds where nothing else can run (codec.rs)
    assert {s.op for s in p.steps} <= {"load", "store", "fork", "switch", "resume", "ipi"}
    assert {s.op for s in p.steps} & {"load", "store", "fork"} or not p.steps
    assert p.hw.cpus == 2


def test_junk_steps_shrink_away():
    # a flat multi-field step leaves junk steps behind in Hypothesis's shrinker; per-op choices do not
    def nonzero_data_load(p):
        r = pyvmfuzz.run(p)
        return any(s.op == "load" and s.addr.page in layout.DATA_PAGES and o.split()[0].startswith("0x")
                   and o.split()[0] != "0x0" for s, o in zip(r.steps, r.trace))

    p = find(programs(cpus=(1, 3), max_steps=8, interleave=False), nonzero_data_load,
             settings=settings(database=None, max_examples=2000, derandomize=True, deadline=None))
    # two lines, no junk: a store of 1 and the load of that word (which word of data0 the
    # shrinker settles on depends on what other test modules loaded: data0.0 alone, data0.1
    # in the whole suite since the layout has nine pages)
    st, ld = p.steps
    assert p.text().startswith("hw cpus=1 tlb=8 mode=pc64\nkernel fixed\n")
    assert (st.op, ld.op, st.value, st.addr, st.addr.page) == ("store", "load", 1, ld.addr, "data0"), p.text()


@pytest.mark.slow
def test_failures_shrink_to_the_minimal_program():
    p = find(programs(kernels=["pre-385c96e4"], cpus=(1, 3), max_steps=16), lambda p: not pyvmfuzz.run(p).clean,
             settings=settings(database=None, max_examples=20000, derandomize=True, deadline=None))
    assert len(p.steps) == 2, p.text()
    assert [s.op for s in p.steps] == ["procfs_write", "store"] and p.hw.cpus == 1


def test_strategy_takes_a_single_name():
    p = find(programs(kernels="pre-385c96e4", modes="tagged", ops="store", cpus=1), lambda p: True)
    assert (p.kernel, p.hw.mode, p.steps[0].op) == ("pre-385c96e4", "tagged", "store")


@pytest.mark.parametrize("kw", [dict(cpus=9), dict(kernels=["nope"]), dict(ops=["frobnicate"]),
                                dict(min_steps=5, max_steps=2), dict(modes=["pc32"])])
def test_strategy_rejects_bad_arguments(kw):
    with pytest.raises(InvalidArgument):
        programs(**kw)


def test_readme_python_api_snippet_runs():
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    section = readme.split("## Python API", 1)[1].split("\n## ", 1)[0]
    snippet = re.search(r"```python\n(.*?)```", section, re.S)[1]
    assert "@given(programs(" in snippet and "test_fixed_is_clean()" in snippet
    calls = []
    ns = {"__name__": "readme_snippet"}
    exec(compile(snippet, "README.md#python-api", "exec"), ns)
    # the snippet's property ran: wrap its inner test to count the examples it saw
    inner = ns["test_fixed_is_clean"].hypothesis.inner_test

    def counting(program):
        calls.append(program)
        inner(program)

    ns["test_fixed_is_clean"].hypothesis.inner_test = counting
    ns["test_fixed_is_clean"]()
    assert len(calls) >= 50 and all(isinstance(c, Program) for c in calls)


# ---------------------------------------------------------------- minimize, explain on typed values

def test_minimize_program_on_typed_values():
    from pyvmfuzz.insight.minimize import minimize_program

    padded = Program.parse("hw cpus=3\nkernel pre-385c96e4\ncpu0 load data1.3\ncpu0 store data2.1 0x7\ncpu0 fork\n"
                           "cpu1 switch P2.T1\ncpu1 load data0.0\ncpu0 procfs_write P1 text1.3 0x66\n"
                           "cpu1 store data3.3 0x9\ncpu0 store text1.3 0x66\n")
    small = minimize_program(padded, budget_s=20)
    assert small.violation.kind == "protection" and len(small.steps) == 2
    assert [s.op for s in small.steps] == ["procfs_write", "store"]
    assert {s.addr for s in small.steps} == {Addr("text0", 0)} and {s.value for s in small.steps} == {0}
    assert small.hw == "hw cpus=1 tlb=8 mode=pc64"


def test_explain_model_rows_are_typed_steps():
    from pyvmfuzz.insight.explain import model, pages_involved

    text = open(DEBUGGER, encoding="utf-8").read()
    m = model(_core.explain(text, "pre-385c96e4"))
    assert [r["step"] for r in m["rows"]] == [s.replace(assertion=None) for s in Program.parse(text).steps]
    assert m["pages"] == ["text0"] and m["ncpus"] == 2
    assert pages_involved(Program.parse("cpu0 load shm0.1\ncpu0 mprotect data2 r\n").steps) == ["data2", "shm0"]


# ---------------------------------------------------------------- check --junit

def test_check_junit(tmp_path):
    d = tmp_path / "progs"
    d.mkdir()
    (d / "good.txt").write_text(open(DEBUGGER, encoding="utf-8").read())
    (d / "wrong-expect.txt").write_text("expect fixed protection 1\ncpu0 load data0.0\n")
    (d / "notes.md").write_text("# not a program\n")
    out = tmp_path / "report.xml"
    p = cli("check", str(d), "--kernel", "all", "--junit", str(out))
    assert p.returncode == 1, p.stdout + p.stderr
    root = ET.parse(out).getroot()
    cases = root.findall("./testsuite/testcase")
    assert len(cases) == 2 * len(layout.KERNELS) == int(root.get("tests"))
    assert {(os.path.basename(c.get("classname")), c.get("name")) for c in cases} == {
        (f, k) for f in ("good.txt", "wrong-expect.txt") for k in layout.KERNELS}
    failed = [c for c in cases if c.find("failure") is not None]
    assert [(os.path.basename(c.get("classname")), c.get("name")) for c in failed] == [("wrong-expect.txt", "fixed")]
    fail = failed[0].find("failure")
    console = [ln for ln in p.stdout.splitlines() if "wrong-expect.txt [fixed]" in ln]
    assert console and fail.text == re.sub(r"\s+", " ", console[0]) and fail.get("message") in console[0]
    assert root.get("failures") == "1" and root.get("errors") == "0"


def test_check_junit_bad_input_is_an_error_case(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("cpu0 load data9.0\n")
    out = tmp_path / "r.xml"
    p = cli("check", str(bad), "--junit", str(out))
    assert p.returncode == 2
    case = ET.parse(out).getroot().find("./testsuite/testcase")
    assert case.get("name") == "fixed" and "unknown page 'data9'" in case.find("error").get("message")
    p = cli("check", str(bad), "--junit", str(tmp_path / "no" / "such" / "dir.xml"))
    assert p.returncode == 2 and "cannot write" in p.stderr and "Traceback" not in p.stderr


@pytest.mark.slow
def test_wheel_ships_the_stub_and_py_typed(tmp_path):
    import shutil
    import subprocess
    import sys
    import zipfile

    maturin = shutil.which("maturin") or os.path.join(os.path.dirname(sys.executable), "maturin")
    if not os.path.exists(maturin):
        pytest.skip("maturin not installed")
    p = subprocess.run([maturin, "build", "-r", "-q", "-o", str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                       timeout=900)
    assert p.returncode == 0, p.stderr[-2000:]
    (whl,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(whl).namelist())
    assert {"pyvmfuzz/_core.pyi", "pyvmfuzz/py.typed", "pyvmfuzz/api.py", "pyvmfuzz/layout.py",
            "pyvmfuzz/strategies.py", "pyvmfuzz/docs/contract.md"} <= names


@settings(max_examples=40, deadline=None)
@given(programs(cpus=(1, 3), max_steps=12, interleave=False))
def test_interleave_false_draws_whole_lines_only(p):
    assert all(s.until is None and s.op not in ("resume", "ipi") for s in p.steps)


def test_program_parse_names_the_type_it_takes():
    """`Program.parse(b"...")` said "a bytes-like object is required, not 'str'" (backwards) and
    `Program.parse(None)` raised AttributeError: both are a TypeError naming what it takes."""
    import pytest

    from pyvmfuzz import Program

    with pytest.raises(TypeError, match=r"text form \(str\), not bytes; the byte form is Program.from_bytes"):
        Program.parse(b"cpu0 load data0.0\n")
    with pytest.raises(TypeError, match=r"text form \(str\), not NoneType"):
        Program.parse(None)


# ---------------------------------------------------------------- the stub's dicts against the core

def _stub_module():
    """`_core.pyi` executed as a module (it is valid Python): its TypedDicts with their keys."""
    import types

    mod = types.ModuleType("_core_stub")
    src = "from __future__ import annotations\n" + open(os.path.join(PKG, "_core.pyi"), encoding="utf-8").read()
    import sys

    sys.modules["_core_stub"] = mod  # typing.get_type_hints resolves the stub's names through it
    exec(compile(src, "_core.pyi", "exec"), mod.__dict__)
    return mod


def _conforms(value, hint, where, problems):
    """Record in `problems` every key `value` has that `hint` (a TypedDict, or a list/dict/union
    of them) does not declare, and every declared required key it lacks."""
    import typing

    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if typing.is_typeddict(hint):
        if not isinstance(value, dict):
            problems.append(f"{where}: {type(value).__name__}, want {hint.__name__}")
            return
        declared = hint.__required_keys__ | hint.__optional_keys__
        for k in sorted(set(value) - declared):
            problems.append(f"{where}: key {k!r} returned, not in the stub's {hint.__name__}")
        for k in sorted(hint.__required_keys__ - set(value)):
            problems.append(f"{where}: key {k!r} in the stub's {hint.__name__}, not returned")
        hints = typing.get_type_hints(hint)
        for k in set(value) & declared:
            _conforms(value[k], hints[k], f"{where}.{k}", problems)
    elif origin in (typing.Union, types_union()) and value is not None:
        for a in args:
            if a is not type(None):
                _conforms(value, a, where, problems)
    elif origin is list and args:
        for i, v in enumerate(value):
            _conforms(v, args[0], f"{where}[{i}]", problems)
    elif origin is dict and len(args) == 2:
        for k, v in value.items():
            _conforms(v, args[1], f"{where}[{k!r}]", problems)
    elif origin is typing.NotRequired or origin is typing.Required:
        _conforms(value, args[0], where, problems)


def types_union():
    import types

    return types.UnionType


def test_core_stub_dicts_are_what_the_core_returns():
    """Each TypedDict of `_core.pyi` against a real return that exercises every key: a key
    added on one side only fails here."""
    stub = _stub_module()
    # Two ops left in flight (a COW store at its ipi_wait, P2's at `cow`), an IPI pending.
    interleaved = ("hw cpus=3\ncpu0 spawn\ncpu2 switch P1.T2\ncpu2 load data0.0\ncpu0 fork\ncpu1 switch P2.T1\n"
                   "cpu2 load data0.0\ncpu0 store data0.0 0x1 until ipi_wait\ncpu1 store data0.1 0x2 until cow\n")
    buggy = "hw cpus=1\ncpu0 procfs_write P1 text0.0 0x1\ncpu0 store text0.0 0x1 -> ok\n"
    cases = [
        ("check_text", _core.check_text(interleaved), stub.CheckDict),
        ("parse_text", _core.parse_text("hw cpus=2\nkernel fixed\nos linux\nexpect fixed clean\ncpu0 load data0.0 -> 0x0\n"),
         stub.ParseDict),
        ("run_text", _core.run_text(interleaved), stub.ReportDict),
        ("run_text", _core.run_text(buggy, "pre-385c96e4"), stub.ReportDict),
        ("run_text past_internal", _core.run_text(
            "hw cpus=2\ncpu0 fork\ncpu1 switch P2.T1\ncpu1 load data0.0\ncpu0 store data0.0 0x1\ncpu1 load data0.0\n",
            "shootdown-no-ipi", None, True), stub.ReportDict),
        ("run_bytes", _core.run_bytes(_core.encode(interleaved)), stub.ReportDict),
        ("explain", _core.explain(interleaved), stub.ExplainDict),
        ("layout", _core.layout(), stub.LayoutDict),
        ("soak", _core.soak(300, seed=1, kernel="pre-385c96e4"), stub.SoakDict),
        ("explore", _core.explore("pre-385c96e4", 3, "cpus=1"), stub.ExploreDict),
    ]
    problems: list[str] = []
    for name, value, hint in cases:
        _conforms(value, hint, name, problems)
    for i, z in enumerate(_core.zoo()):
        _conforms(z, stub.ZooEntry, f"zoo[{i}]", problems)
    import re

    distinct = sorted({re.sub(r"\[\d+\]", "[]", p) for p in problems})
    assert not distinct, "\n".join(distinct)
    # The cases reach the nested dicts (else a drift there would pass unseen).
    rep = cases[2][1]
    assert rep["in_flight"] and rep["pending_ipis"], rep
    assert cases[3][1]["violation"] and cases[8][1]["examples"] and cases[9][1]["witness"]
    assert any(c["in_flight"] for st in cases[6][1]["states"] for c in st["cpus"])


def test_the_stub_check_sees_a_key_added_on_one_side():
    """The checker itself: a returned key the stub lacks, and a stub key not returned, fail."""
    stub = _stub_module()
    z = dict(_core.zoo()[0])
    problems: list[str] = []
    _conforms(dict(z, extra=1), stub.ZooEntry, "zoo", problems)
    assert any("'extra' returned" in p for p in problems), problems
    problems.clear()
    z.pop("story")
    _conforms(z, stub.ZooEntry, "zoo", problems)
    assert any("'story' in the stub" in p for p in problems), problems


def test_the_package_runs_programs_only_through_the_api():
    """One way into the core's run (issue 24): `pyvmfuzz.api.report`/`run`. The previous-build
    benchmarks load two builds of the core on purpose and call each directly."""
    import re

    allowed = {"api.py", os.path.join("bench", "prevcore.py"), os.path.join("bench", "prevdiff.py")}
    raw = re.compile(r"\b(?:_core|core|new|prev|mod)\.run_(?:text|bytes)\(")
    found = []
    for root, _, files in os.walk(PKG):
        for f in files:
            rel = os.path.relpath(os.path.join(root, f), PKG)
            if f.endswith(".py") and rel not in allowed:
                for n, line in enumerate(open(os.path.join(root, f), encoding="utf-8"), 1):
                    if raw.search(line):
                        found.append(f"{rel}:{n}: {line.strip()}")
    assert not found, "\n".join(found)
