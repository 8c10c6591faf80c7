"""No `importorskip` that skips tests which do not need the module (issue 15).

Where a module is missing, an `importorskip` turns a test into a quiet skip, so a misplaced one
hides a test that could have run: at module level it skips every test of its file, and on a core
dependency (pyproject's [project].dependencies) it turns a broken install into a skip instead of
a failure. Every other `importorskip` is listed in NEEDED with why its test needs the module, so
one planted in a test that does not need it fails here, where the module is installed, instead
of skipping silently where it is not."""

import ast
import glob
import os
import re
import tomllib

from conftest import ROOT

# (file under tests/, function holding the call, module) -> why that function needs the module.
NEEDED = {
    ("test_cflite.py", "_yaml", "yaml"): "parses project.yaml and the workflow files",
    ("test_trials.py", "_hypothesis_baseline_on_fixed", "hypothesis"):
        "the baseline under test is a Hypothesis state machine",
    ("test_oracle_lin.py", "test_sequential_traces_judged_exactly_as_before", "pyvmfuzz._core"):
        "its traces come from the core; the rest of the file tests the oracle alone",
    ("test_oracle_lin.py", "test_cli_os_reaches_the_oracle", "pyvmfuzz._core"): "`run` executes the core",
}


def importorskips():
    """Yield (file, enclosing function or '<module>', module name or None, line) for every
    importorskip call in tests/*.py (None: the module is not a string literal)."""
    for path in sorted(glob.glob(os.path.join(ROOT, "tests", "*.py"))):
        tree = ast.parse(open(path).read(), path)

        def walk(node, func):
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    yield from walk(child, child.name)
                    continue
                if isinstance(child, ast.Call):
                    f = child.func
                    name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
                    if name == "importorskip":
                        arg = child.args[0] if child.args else None
                        mod = arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None
                        yield os.path.basename(path), func, mod, child.lineno
                yield from walk(child, func)

        yield from walk(tree, "<module>")


def core_dependencies():
    """Import names of pyproject's required dependencies ("tqdm>=4.60" -> "tqdm")."""
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        deps = tomllib.load(f)["project"]["dependencies"]
    return {re.split(r"[<>=!~;\[ ]", d, maxsplit=1)[0].strip().lower().replace("-", "_") for d in deps}


def test_no_importorskip_skips_a_test_that_does_not_need_the_module():
    core = core_dependencies()
    assert {"atheris", "tqdm"} <= core  # the parse works: these are the declared core deps today
    found, problems = set(), []
    for file, func, mod, line in importorskips():
        where = f"tests/{file}:{line}"
        if mod is None:
            problems.append(f"{where}: importorskip of a computed name (name the module literally)")
        elif func == "<module>":
            problems.append(f"{where}: module-level importorskip('{mod}') skips every test in the file")
        elif mod.split(".")[0] in core:
            problems.append(f"{where}: '{mod}' is a core dependency: import it (missing = broken install = failure)")
        elif (file, func, mod) not in NEEDED:
            problems.append(f"{where}: importorskip('{mod}') in {func}: add it to NEEDED with why {func} needs it, "
                            "or drop it")
        found.add((file, func, mod))
    assert not problems, "\n".join(problems)
    # A stale entry would let a later importorskip of that module in that function through unread.
    assert set(NEEDED) <= found, sorted(set(NEEDED) - found)
