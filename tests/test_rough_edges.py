"""Issue 17, "Rough edges" 2-18 (item 1 and 9 belong elsewhere): one test per item, each
reproducing what a new user ran into."""

import json
import os
import re
import shutil
import stat
import subprocess
import sys

import pytest

from conftest import CORPUS, ROOT, cli

REPRO = os.path.join(CORPUS, "repro", "pre-385c96e4-debugger-text.txt")


def _keys(spec):
    """The keys a --hw value fixes (the rest come from the program or the input bytes)."""
    return dict(item.split("=") for item in re.split(r"[\s,]+", spec.strip()) if item)


def test_02_hw_overlays_defaults_key_by_key(tmp_path):
    from pyvmfuzz.cli import build_parser

    # Where --hw has a default (fuzz, cmin), a partial --hw keeps the default's other keys.
    for argv in (["fuzz", "--hw", "cpus=8,tlb=64"], ["cmin", "d", "-o", "o", "--hw", "cpus=8,tlb=64"]):
        args = build_parser().parse_args(argv)
        assert _keys(args.hw) == {"cpus": "8", "tlb": "64", "mode": "pc64"}, argv
    args = build_parser().parse_args(["fuzz", "--hw", "mode=tagged"])
    assert _keys(args.hw) == {"mode": "tagged"}
    assert _keys(build_parser().parse_args(["fuzz"]).hw) == {"mode": "pc64"}
    # Where it overrides a program's header (run, check, minimize, explain): key by key too.
    p = tmp_path / "p.txt"
    p.write_text("hw tlb=4 mode=tagged\ncpu0 load data0.0\n")
    r = cli("run", str(p), "--hw", "cpus=3")
    assert r.returncode == 0, r.stderr
    assert "hw cpus=3 tlb=4 mode=tagged" in r.stdout


def test_03_utf8_bom_text_is_text(tmp_path):
    body = "hw cpus=2\ncpu0 store data0.0 0x5\ncpu0 load data0.0\n"
    for name in ("bom", "bom.txt", "bom.vm"):
        p = tmp_path / name
        p.write_bytes(b"\xef\xbb\xbf" + body.encode())
        r = cli("run", str(p))
        assert r.returncode == 0, (name, r.stderr)
        assert "cpu0 load data0.0 -> 0x5" in r.stdout, name
    # Other invisible characters are shown, not printed raw, in an error.
    q = tmp_path / "zw.txt"
    q.write_text("cpu0 lo\u200bad data0.0\n")
    r = cli("run", str(q))
    assert r.returncode == 2 and "\\u200b" in r.stderr and "\u200b" not in r.stderr, r.stderr


def test_04_check_dir_skips_non_programs_and_goes_on(tmp_path):
    d = tmp_path / "out"
    (d / "crashes").mkdir(parents=True)
    shutil.copy(REPRO, d / "crashes" / "good.txt")
    (d / "README.md").write_text("# notes\n")
    (d / "plot.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    (d / "stats.json").write_text('{"a": 1}\n')
    (d / "fuzz.log").write_text("INFO: Seed: 1\n" * 100)
    (d / "crashes" / "crash-0123abcd").write_bytes(b"")  # empty: a bad input
    (d / "crashes" / "0123456789abcdef").write_bytes(b"\x01" * ((1 << 20) + 1))  # oversized
    (d / "crashes" / "cafe").write_bytes(bytes(range(40)))  # a libFuzzer corpus file: a program
    r = cli("check", str(d), "--kernel", "pre-385c96e4")
    assert r.returncode == 2, (r.stdout, r.stderr)
    out = r.stdout + r.stderr
    for name in ("README.md", "plot.png", "stats.json", "fuzz.log"):
        assert name in out and not re.search(rf"(PASS|ERROR|DISAGREE|EXPECT)\S*\s+\S*{re.escape(name)}", out), name
    assert re.search(r"skipped 4 files that are not programs", out), out
    assert re.search(r"ERROR\s+\S*crash-0123abcd", out) and re.search(r"ERROR\s+\S*0123456789abcdef", out), out
    assert "checked 2 program/kernel pairs" in out, out  # good.txt and cafe both ran


def test_05_bench_zoo_claims_only_what_it_did(tmp_path, monkeypatch, capsys):
    r = cli("bench", "--quick")
    assert r.returncode == 2 and "--zoo" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    for extra in (["--kernels", "fixed"], ["--out", "x"]):
        r = cli("bench", *extra, "--programs", "1")
        assert r.returncode == 2 and "--zoo" in r.stderr, extra

    from pyvmfuzz import _core, cli as cli_mod
    from pyvmfuzz.bench import zoobench

    found = next(z["name"] for z in _core.zoo() if z["expect_found"])
    times = iter([0.5, None, None] * 8)
    monkeypatch.setattr(zoobench, "trial", lambda *a: (next(times), 100.0))
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # not installed
    out = tmp_path / "b"
    rc = cli_mod.main(["bench", "--zoo", "--kernels", found, "--trials", "3", "--budget", "1",
                       "--configs", "random", "--out", str(out)])
    o = capsys.readouterr()
    assert rc == 0
    assert not (out / "zoo.png").exists() and "zoo.png" not in o.out
    md = (out / "zoo.md").read_text()
    assert f"--kernels {found}" in md and "--configs random" in md
    assert re.search(r"\| 1/3 \|( [^|]* \|)? > 1 s \|", md), md  # 1 hit in 3: the median is censored


def test_05b_bench_zoo_jobs_gives_the_same_table_and_json(tmp_path, monkeypatch, capsys):
    """`bench --zoo --jobs 2` runs trials in worker processes; each trial keeps its own seed and
    cell, so the table equals the sequential one, and zoo.json holds every trial's time."""
    r = cli("bench", "--zoo", "--kernels", "fixed,nope")
    assert r.returncode == 2 and "unknown kernel 'nope'" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = cli("bench", "--zoo", "--jobs", "0")
    assert r.returncode == 2 and "--jobs must be at least 1" in r.stderr

    from pyvmfuzz import _core, cli as cli_mod
    from pyvmfuzz.bench import zoobench

    # a time that names its cell and seed: a trial reported in the wrong cell changes the table
    def fake(kernel, hw, config, seed, budget):
        k = len(kernel) + 10 * len(config)
        return (None if (seed + k) % 4 == 0 else (seed - 999) * 0.1 + k * 0.001), 50.0 + k

    monkeypatch.setattr(zoobench, "trial", fake)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    found = [z["name"] for z in _core.zoo() if z["expect_found"]][:2]
    tables = {}
    for jobs in ("1", "2"):
        out = tmp_path / jobs
        rc = cli_mod.main(["bench", "--zoo", "--kernels", ",".join(["fixed"] + found), "--trials", "4",
                           "--budget", "1", "--configs", "atheris,random", "--out", str(out), "--jobs", jobs])
        capsys.readouterr()
        assert rc == 0
        tables[jobs] = (out / "zoo.md").read_text().split("\n", 1)[1]
        data = json.loads((out / "zoo.json").read_text())
        cell = data["kernels"][found[0]]["configs"]["random"]
        assert cell["times_s"] == [fake(found[0], "", "random", 1000 + i, 1)[0] for i in range(4)]
        assert list(data["kernels"]["fixed"]["configs"]) == ["atheris"]  # a clean kernel: campaigns only
    assert tables["1"] == tables["2"]
    rows = [ln for ln in tables["1"].splitlines() if ln.startswith("| ") and not ln.startswith("| kernel ")]
    assert len(rows) == 1 + 2 * 2, rows  # fixed once, each found kernel in both configs


def test_06_output_errors_name_the_output(tmp_path):
    for args, target in ((["minimize", REPRO, "--kernel", "pre-385c96e4", "--quiet", "-o", "/proc/x.txt"], "/proc/x.txt"),
                         (["explain", REPRO, "--html", "/proc/x.html"], "/proc/x.html"),
                         (["cmin", os.path.join(CORPUS, "seeds"), "-o", "/proc/cm"], "/proc/cm")):
        r = cli(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert target in r.stderr and ".tmp-" not in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_07_outputs_follow_the_umask(tmp_path):
    from pyvmfuzz.campaign.findings import atomic_write

    for mask in (0o022, 0o027, 0o002):
        old = os.umask(mask)
        try:
            p = tmp_path / f"f{mask:o}"
            atomic_write(str(p), "x\n")
        finally:
            os.umask(old)
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o666 & ~mask
    # and through the CLI (minimize -o), under the test process's umask
    mask = os.umask(0o022)
    os.umask(mask)
    out = tmp_path / "m.txt"
    r = cli("minimize", REPRO, "--kernel", "pre-385c96e4", "--quiet", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o666 & ~mask


def test_10_cmin_says_its_kernel_and_never_merges(tmp_path):
    r = cli("cmin", "--help")
    assert re.search(r"--kernel KERNEL\s+.*default: fixed", r.stdout, re.S), r.stdout
    src = os.path.join(CORPUS, "seeds")
    out = tmp_path / "min"
    r = cli("cmin", src, "-o", str(out))
    assert r.returncode == 0 and "kernel fixed" in r.stdout, r.stdout
    kept = sorted(os.listdir(out))
    (out / "stranger").write_bytes(b"\x00\x01")
    r = cli("cmin", src, "-o", str(out))
    assert r.returncode == 2 and "not empty" in r.stderr, r.stderr
    assert sorted(os.listdir(out)) == sorted(kept + ["stranger"])  # nothing written into it
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli("cmin", src, "-o", str(empty)).returncode == 0
    # Bad inputs (an empty file, a text program that does not parse): all read, the first named
    # and the rest counted, in one line; nothing written.
    corp = tmp_path / "corp"
    shutil.copytree(src, corp)
    (corp / "da39a3ee5e6b4b0d3255bfef95601890afd80709").write_bytes(b"")
    (corp / "bad.txt").write_text("cpu9 load data0.0\n")
    r = cli("cmin", str(corp), "-o", str(tmp_path / "min2"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "bad.txt: line 1" in r.stderr and "1 more bad input" in r.stderr, r.stderr
    assert not (tmp_path / "min2").exists() or not os.listdir(tmp_path / "min2")


@pytest.fixture(scope="module")
def two_campaigns(tmp_path_factory):
    """Two short campaigns into the same directory (the second resumes), stderr not a TTY."""
    out = tmp_path_factory.mktemp("camp")
    runs = [cli("fuzz", "--kernel", "fixed", "--time", "2", "--out", str(out), timeout=120) for _ in range(2)]
    return out, runs


def test_08_summary_prints_coverage_numbers(two_campaigns):
    _, runs = two_campaigns
    for r in runs:
        assert r.returncode == 0, r.stderr
        both = r.stdout + r.stderr
        assert both.count("INFO: Loaded") <= 1, both
        m = re.search(r"^# coverage: (\d+) cov, (\d+) features, (\d+) inline 8-bit counters in \d+ module", r.stdout, re.M)
        assert m and int(m[1]) > 0 and int(m[2]) > 0 and int(m[3]) > 0, r.stdout


def test_11_seed_fresh_printed_and_per_job(two_campaigns, tmp_path):
    _, runs = two_campaigns
    seeds = [re.search(r"^# seed (\d+)", r.stdout, re.M) for r in runs]
    assert all(seeds), [r.stdout for r in runs]
    assert seeds[0][1] != seeds[1][1]  # a fresh seed per campaign
    from pyvmfuzz.cli import build_parser

    assert "random" in build_parser()._subparsers._group_actions[0].choices["fuzz"].format_help()
    # libFuzzer's -runs ends these two (the 60-s budget is not reached): as short on any machine
    r = cli("fuzz", "--kernel", "fixed", "--time", "60", "--seed", "77", "--out", str(tmp_path / "s"), "--", "-runs=500")
    assert re.search(r"^# seed 77\b", r.stdout, re.M), r.stdout
    # fork mode: every job runs with its own seed (logged by the harness)
    r = cli("fuzz", "--kernel", "fixed", "--time", "60", "--jobs", "2", "--seed", "5", "--out", str(tmp_path / "j"),
            "--", "-runs=20000")
    assert r.returncode == 0, r.stderr
    log = (tmp_path / "j" / "findings.log").read_text()
    job_seeds = re.findall(r"^\S+ \d+ seed (\d+)$", log, re.M)
    assert len(job_seeds) >= 2 and len(set(job_seeds)) == len(job_seeds), log


def test_12_libfuzzer_errors_reach_the_user(tmp_path):
    cases = [("-foo=1", "unrecognized flag '-foo=1'"), ("-dict=/nonexistent", "ParseDictionaryFile"),
             ("-help=1", "help")]
    for i, (flag, want) in enumerate(cases):
        r = cli("fuzz", "--kernel", "fixed", "--time", "5", "--quiet", "--out", str(tmp_path / str(i)), "--", flag)
        assert r.returncode == 2, (flag, r.stdout, r.stderr)
        last = r.stderr.strip().splitlines()[-1]
        assert last.startswith("pyvmfuzz fuzz:") and want in last, (flag, last)
        assert "no violation found" not in r.stdout and "campaign done" not in r.stdout, (flag, r.stdout)


def test_13_seed_corpus_ships_in_the_package(tmp_path):
    import pyvmfuzz

    # An installed copy of the package, away from the clone: seeds must come with it.
    site = tmp_path / "site"
    shutil.copytree(os.path.dirname(pyvmfuzz.__file__), site / "pyvmfuzz",
                    ignore=shutil.ignore_patterns("__pycache__"))
    code = ("import os; from pyvmfuzz.campaign.supervisor import _seed_dir; "
            "d = _seed_dir('fixed', 'mode=pc64'); print(len(os.listdir(d)))")
    env = dict(os.environ, PYTHONPATH=str(site))
    r = subprocess.run([sys.executable, "-P", "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) >= 4
    # one copy: the clone's corpus/seeds is the package's
    assert os.path.realpath(os.path.join(CORPUS, "seeds")) == os.path.join(ROOT, "pyvmfuzz", "seeds")


def test_14_fuzz_log_appends_and_stays_small(two_campaigns, tmp_path):
    out, _ = two_campaigns
    log = (out / "fuzz.log").read_text()
    assert len(re.findall(r"^# pyvmfuzz campaign start", log, re.M)) >= 2, log[:500]
    assert not re.search(r"^#\d+\s+(NEW|REDUCE)\s", log, re.M)  # per-input lines are not kept
    assert not re.search(r"^#pyvmfuzz execs", log, re.M)
    assert os.path.getsize(out / "fuzz.log") < 64 * 1024
    from pyvmfuzz.campaign.supervisor import RotatingLog

    p = tmp_path / "fuzz.log"
    lg = RotatingLog(str(p), max_bytes=1000)
    for i in range(500):
        lg.write(f"line {i}\n")
    lg.close()
    assert os.path.getsize(p) <= 1000 and os.path.getsize(str(p) + ".1") <= 1000
    assert "line 499" in p.read_text()


def test_15_non_tty_progress_is_plain_lines(two_campaigns):
    _, runs = two_campaigns
    for r in runs:
        assert "\r" not in r.stderr, repr(r.stderr[-300:])
        assert re.search(r"^fuzz fixed: \d+s/2s execs [\d,]+", r.stderr, re.M), r.stderr
    r = cli("minimize", REPRO, "--kernel", "pre-385c96e4")
    assert r.returncode == 0 and "\r" not in r.stderr, repr(r.stderr)


def test_16_explain_nothing_cut(tmp_path):
    p = tmp_path / "p.txt"
    p.write_text("hw cpus=3\ncpu0 fork\ncpu1 switch P2.T1\ncpu2 switch idle\n"
                 "cpu1 procfs_write P1 text0.0 0x77777777\ncpu0 procfs_write P2 data0.0 0x12345678\n"
                 "cpu0 umtx_sleep shm0.3 0x0\ncpu1 load text0.0\n")
    html = tmp_path / "x.html"
    r = cli("explain", str(p), "--html", str(html))
    assert r.returncode == 0, r.stderr
    for op in ("procfs_write P1 text0.0 0x77777777 -> ok", "procfs_write P2 data0.0 0x12345678 -> ok",
               "umtx_sleep shm0.3 0x0 -> blocked"):
        assert op in r.stdout, r.stdout
    page = html.read_text()
    assert "…" not in page
    assert "procfs_write P1 text0.0 0x77777777 → ok</text>" in page
    # the per-step table: one column per CPU and per page (not per page x process x CPU)
    first_row = re.search(r"<tr>(.*?)</tr>", page, re.S)[1]
    assert first_row.count("<th") <= 1 + 3 + 4 + 1, first_row
    if shutil.which("chromium"):  # measured where a browser is at hand: the page fits 1400 px
        probe = tmp_path / "probe.html"
        probe.write_text(page.replace("</body>", "<script>document.body.insertAdjacentHTML('beforeend', "
                                      "'<p>WIDTH=' + document.documentElement.scrollWidth + '</p>')</script></body>"))
        dom = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1400,900",
                              "--dump-dom", f"file://{probe}"], capture_output=True, text=True, timeout=120).stdout
        assert int(re.search(r"WIDTH=(\d+)", dom)[1]) <= 1400, dom[-300:]


def test_17_malformed_line_and_empty_file(tmp_path):
    p = tmp_path / "bad.txt"
    p.write_text("cpo0 load data0.0\n")
    r = cli("run", str(p))
    assert r.returncode == 2 and "line 1" in r.stderr and "empty" not in r.stderr, r.stderr
    for name, content in (("empty", b""), ("empty.bytes", b""), ("comments.txt", b"# nothing\n")):
        q = tmp_path / name
        q.write_bytes(content)
        for cmd in ("run", "check"):
            r = cli(cmd, str(q))
            assert r.returncode == 2, (name, cmd, r.stdout)
            assert "empty" in r.stderr or "empty" in r.stdout or "no operations" in r.stderr + r.stdout, (name, cmd)


def test_18_exit_codes_pipes_version_docs(tmp_path):
    r = cli("minimize", REPRO, "--kernel", "pre-385c96e4", "--quiet")
    assert r.returncode == 0 and "expect pre-385c96e4 protection" in r.stdout
    files = " ".join([os.path.join(CORPUS, "litmus", "*.txt")] * 4)
    for cmd in (f"run {files}", f"check {files} --kernel all", "zoo", "--help", "fuzz --help"):
        sh = subprocess.run(["bash", "-c", f"{sys.executable} -P -m pyvmfuzz {cmd} | head -1 >/dev/null; "
                                           "echo ${PIPESTATUS[0]}"], capture_output=True, text=True, cwd=ROOT)
        assert sh.stdout.strip() in ("0", "1") and sh.stderr == "", (cmd, sh.stdout, sh.stderr)
    r = cli("--version")
    assert r.returncode == 0 and re.fullmatch(r"pyvmfuzz \d+\.\d+\.\d+\S*\n", r.stdout), r.stdout
    r = cli("fuzz", "--help")
    assert "130" in r.stdout
    readme = open(os.path.join(ROOT, "README.md")).read()
    assert "../shared/" not in readme
    doc = os.path.join(ROOT, "docs", "program-format.md")
    assert "docs/program-format.md" in readme and os.path.exists(doc)
    text = open(doc).read()
    for must in ("hw cpus=", "expect", "-> ", "130", "Exit status"):
        assert must in text, must


def test_interrupt_mid_save_waits_for_the_finding(tmp_path):
    """libFuzzer's SIGINT handler `_Exit()`s past every Python `finally`: a finding saved
    inside `signals_deferred` is complete on disk before the interrupt takes effect, and no
    `.tmp-` file is left (CI once found one after an interrupted campaign)."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(f"""
        import os, signal
        from pyvmfuzz.campaign.findings import atomic_write, signals_deferred
        signal.signal(signal.SIGINT, lambda *a: os._exit(7))  # as libFuzzer: exit at once
        with signals_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            atomic_write({str(tmp_path / 'f.bytes')!r}, b"x" * 100000)
            atomic_write({str(tmp_path / 'f.txt')!r}, "done")
        os._exit(0)  # not reached: the deferred SIGINT ends the process first
    """)
    p = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 7, p.stderr
    assert sorted(os.listdir(tmp_path)) == ["f.bytes", "f.txt"]


def test_19_outputs_through_special_files_are_written_not_replaced(tmp_path):
    """`--html`/`-o` naming a device or a link to one (/dev/stdout, /dev/null) writes through
    it: the atomic rename replaced it with a regular file (as root, /dev/full itself). A full
    device is an error (exit 2, one line), not a success. Links here, so a regression replaces
    only the link."""
    to_null, to_full = tmp_path / "null", tmp_path / "full"
    to_null.symlink_to("/dev/null")
    to_full.symlink_to("/dev/full")
    p = cli("explain", REPRO, "--html", str(to_null))
    assert p.returncode == 0, p.stderr
    assert to_null.is_symlink() and stat.S_ISCHR(os.stat("/dev/null").st_mode)
    for args in (["explain", REPRO, "--html", str(to_full)],
                 ["minimize", REPRO, "--kernel", "pre-385c96e4", "--quiet", "-o", str(to_full)]):
        p = cli(*args)
        assert p.returncode == 2, (args, p.returncode, p.stderr)
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and "No space left on device" in lines[0], p.stderr
        assert to_full.is_symlink()
    assert sorted(os.listdir(tmp_path)) == ["full", "null"]  # no temp file left beside them


def test_20_cells_takes_byte_form_and_refuses_nothing(tmp_path):
    """`cells` on a campaign corpus (byte-form inputs, no suffix) counted nothing and exited 0;
    on an empty directory or a README it printed an empty table, exit 0. Every tool takes
    either form; no program at all is an input error."""
    from pyvmfuzz import _core

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "0123abcd").write_bytes(_core.encode(open(REPRO).read(), "fixed", "mode=pc64"))
    p = cli("cells", str(corpus))
    assert p.returncode == 0, p.stderr
    m = re.search(r"# (\d+) of \d+ possible cells reached", p.stdout)
    assert m and int(m[1]) >= 2, p.stdout  # procfs_write and store on text
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "README.md").write_text("# notes\n")
    p = cli("cells", str(empty))
    assert p.returncode == 2 and "no programs found" in p.stderr, (p.returncode, p.stdout, p.stderr)
    assert len(p.stderr.strip().splitlines()) == 1 and not p.stdout


def test_21_run_reads_every_file_before_printing(tmp_path):
    """`run GOOD MISSING` printed GOOD's whole trace, then failed: bad input gives no partial
    output."""
    p = cli("run", REPRO, str(tmp_path / "nope.txt"))
    assert p.returncode == 2 and "no such file" in p.stderr
    assert p.stdout == "" and len(p.stderr.strip().splitlines()) == 1


def _demo_with_a_bad_budget(tmp_path):
    """Runs `demo --fixed-time -1`; returns its wall time."""
    import time

    t0 = time.monotonic()
    p = cli("demo", "--fixed-time", "-1", "--out", str(tmp_path / "d"))
    assert p.returncode == 2 and p.stderr.strip() == "pyvmfuzz demo: --fixed-time must be at least 1 (seconds)", p.stderr
    assert not (tmp_path / "d").exists() and p.stdout == ""  # no campaign ran: it would have made d
    return time.monotonic() - t0


def test_22_demo_refuses_a_bad_budget_before_fuzzing(tmp_path):
    """`demo --fixed-time -1` ran both 385c96e4 campaigns (about 10 s) and then failed with
    fuzz's message about --time, three lines on stderr."""
    _demo_with_a_bad_budget(tmp_path)


@pytest.mark.slow  # wall-clock speed
def test_22_demo_refuses_a_bad_budget_in_under_10_s(tmp_path):
    assert _demo_with_a_bad_budget(tmp_path) < 10


def test_23_fuzz_checks_numbers_before_making_directories(tmp_path):
    """`fuzz --jobs 0 --out D` made D (and its corpus and crashes) before refusing the flag."""
    for args, needle in ((["--jobs", "0"], "--jobs must be at least 1"),
                         (["--time", "-3"], "--time must be >= 0"),
                         (["--max-steps", "0"], "--max-steps must be at least 1"),
                         (["--cross-check", "-1"], "--cross-check must be >= 0"),
                         (["--target", "linux", "--time", "0"], "--target linux needs a --time budget")):
        out = tmp_path / "out"
        p = cli("fuzz", "--out", str(out), *args)
        assert p.returncode == 2 and needle in p.stderr, (args, p.returncode, p.stderr)
        assert len(p.stderr.strip().splitlines()) == 1 and not out.exists(), args


def test_24_linux_target_says_what_it_cannot_run(tmp_path):
    """`run --target linux` of an interleaved program failed with the oracle parser's "step 4:
    mprotect takes 2 argument(s), got 4"; `--os dragonfly` with it was ignored without a word
    (the host is judged as `os linux`). Both are refused before any process is started."""
    inter = os.path.join(CORPUS, "litmus", "i01-store-during-pending-mprotect.txt")
    p = cli("run", inter, "--target", "linux")
    assert p.returncode == 2 and "is an interleaved line (docs/contract.md §3.2)" in p.stderr and "until ipi_wait" in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and p.stdout == ""
    for cmd in ("run", "check"):
        p = cli(cmd, REPRO, "--target", "linux", "--os", "dragonfly")
        assert p.returncode == 2 and "judged with the os linux personality" in p.stderr, (cmd, p.stderr)
        assert len(p.stderr.strip().splitlines()) == 1 and p.stdout == ""


def test_25_explain_reports_a_failed_assertion(tmp_path):
    """`explain` of a program whose written `-> 0x5` fails said "no violation: expectation and
    observation agree at every step" and exited 0; `run` says the assertion failed, exit 1."""
    prog = tmp_path / "a.txt"
    prog.write_text("cpu0 load data0.0 -> 0x5\n")
    p = cli("explain", str(prog))
    assert p.returncode == 1, (p.returncode, p.stdout)
    assert "# assertion failed at step 1: written 0x5, observed 0x0" in p.stdout
    assert cli("explain", REPRO).returncode == 0  # its assertions hold under fixed


def test_26_minimize_extends_a_core_only_finding_as_a_campaign_does(tmp_path):
    """`minimize` of a tlb-incoherent program wrote "internal-only: no continuation within the
    search budget makes a user see it" without searching (and cut a saved finding's
    user-visible steps away); a campaign searches (campaign/witness.py). Now minimize does too,
    and its output is a regression program `check --kernel all` accepts."""
    prog = tmp_path / "p.txt"
    prog.write_text("hw cpus=2\ncpu0 spawn\ncpu1 switch P1.T2\ncpu1 store data0.0 0x0\ncpu0 fork\n")
    out = tmp_path / "min.txt"
    p = cli("minimize", str(prog), "--kernel", "shootdown-no-ipi", "--quiet", "-o", str(out))
    assert p.returncode == 0, p.stderr
    text = out.read_text()
    assert "internal-only" not in text, text
    assert re.search(r"^# user-visible: (stale-read|protection|outcome) at step \d+", text, re.M), text
    assert re.search(r"^expect shootdown-no-ipi tlb-incoherent 4$", text, re.M), text
    assert cli("check", str(out), "--kernel", "all").returncode == 0


def test_27_explore_does_not_call_its_finding_internal_only(tmp_path):
    """explore saves the shortest violation as found; for a core-only kind its file said
    "internal-only: no continuation within the search budget makes a user see it", though no
    search was made."""
    out = tmp_path / "x"
    p = cli("explore", "--kernel", "shootdown-no-ipi", "--depth", "4", "--out", str(out))
    assert p.returncode == 1, p.stderr
    (saved,) = out.iterdir()
    text = saved.read_text()
    assert "tlb-incoherent" in text and "internal-only" not in text, text
    assert "# core-only: not searched for where a user sees it" in text, text


def test_28_a_finding_saved_without_suffix_is_text(tmp_path):
    """A file without suffix is text when every line starts like a program line; `os` was not
    among them, so a finding saved as `found` (its `os dragonfly` header) ran as a byte-form
    program: random lines, `kernel fixed`, clean."""
    found = tmp_path / "found"
    p = cli("minimize", REPRO, "--kernel", "pre-385c96e4", "--quiet", "-o", str(found))
    assert p.returncode == 0 and "\nos dragonfly\n" in found.read_text(), p.stderr
    r = cli("run", str(found))
    assert r.returncode == 1 and "kernel pre-385c96e4" in r.stdout and "protection at step 2" in r.stdout, r.stdout


def test_29_a_byte_finding_with_an_unreadable_sidecar_is_refused(tmp_path):
    """A saved finding's .bytes replays under the kernel its .txt names on `# replay-bytes:`; a
    line that could not be read was ignored (the bytes ran under fixed, clean), and an unknown
    kernel there was reported as if given on the command line."""
    from pyvmfuzz import _core

    data = _core.encode(open(REPRO, encoding="utf-8").read(), "pre-385c96e4")
    (tmp_path / "f.bytes").write_bytes(data)
    good = "# replay-bytes: --kernel pre-385c96e4 --hw mode=pc64 --os dragonfly\ncpu0 load data0.0\n"
    (tmp_path / "f.txt").write_text(good)
    r = cli("run", str(tmp_path / "f.bytes"))
    assert r.returncode == 1 and "kernel pre-385c96e4" in r.stdout, (r.stdout, r.stderr)
    for line, needle in (("--kernel pre-385c96e4 --hw", "is not '--kernel K --hw KEYS --os OS'"),
                         ("--kernal pre-385c96e4", "is not '--kernel K --hw KEYS --os OS'"),
                         ("--kernel nope --os dragonfly", "names an unknown kernel 'nope'")):
        (tmp_path / "f.txt").write_text(f"# replay-bytes: {line}\ncpu0 load data0.0\n")
        r = cli("run", str(tmp_path / "f.bytes"))
        assert r.returncode == 2 and r.stdout == "", (line, r.stdout, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and needle in r.stderr and "f.txt" in r.stderr, r.stderr


def test_explain_html_naming_a_directory_is_refused_before_the_timeline(tmp_path):
    # A fresh user's report: `--html adir` printed the whole timeline, then failed with exit 2.
    r = cli("explain", REPRO, "--kernel", "pre-385c96e4", "--html", str(tmp_path))
    assert r.returncode == 2 and r.stdout == "", r.stdout
    assert len(r.stderr.strip().splitlines()) == 1 and f"{tmp_path}: cannot write" in r.stderr, r.stderr

