"""`pyvmfuzz check --junit FILE`: the check's result as JUnit XML for CI systems (GitLab,
Jenkins, GitHub test reporters): one <testcase> per program/kernel pair (classname: the
program's path; name: the kernel), a <failure> carrying each disagreement, expect or assertion
problem, an <error> for a program that does not run (bad input), a <skipped> for a pair that
is not applicable (another kernel's schedule, oracle.check.check_paths `inapplicable`): it was
not run, so it did not pass."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from pyvmfuzz.programs import InputError


def junit_xml(files: list[str], kernels: list[str], findings, seconds: float = 0.0,
              inapplicable: list[str] | None = None) -> str:
    """The XML text. `files`: the programs checked, in order; `findings`: oracle.check.Finding
    values (path, kernel, problem, detail; kernel "-" when the file did not load, which fails
    the file's pair with every kernel); `inapplicable`: "PATH [KERNEL]: why" for pairs not
    run, each a <skipped> case."""
    by_pair: dict[tuple[str, str], list] = {}
    for f in findings:
        for k in kernels if f.kernel == "-" else [f.kernel]:
            by_pair.setdefault((f.path, k), []).append(f)
    pairs = [(p, k) for p in files for k in kernels]
    pairs += [pk for pk in by_pair if pk not in set(pairs)]  # a finding on a file not listed
    suite = ET.Element("testsuite", name="pyvmfuzz check", tests=str(len(pairs)), time=f"{seconds:.3f}")
    failures = errors = skipped = 0
    for path, k in pairs:
        case = ET.SubElement(suite, "testcase", classname=path, name=k)
        fs = by_pair.get((path, k), [])
        why = next((s[len(f"{path} [{k}]: "):] for s in inapplicable or () if s.startswith(f"{path} [{k}]: ")), None)
        if why is not None and not fs:
            skipped += 1
            ET.SubElement(case, "skipped", message=f"not applicable: {why}")
            continue
        bad_input = [f for f in fs if f.problem == "error"]
        problems = [f for f in fs if f.problem != "error"]
        if bad_input:
            errors += 1
            e = ET.SubElement(case, "error", type="input-error", message=bad_input[0].detail)
            e.text = "\n".join(f.detail for f in bad_input)
        elif problems:
            failures += 1
            e = ET.SubElement(case, "failure", type=problems[0].problem, message=problems[0].detail)
            e.text = "\n".join(f"{f.problem.upper()} {f.path} [{f.kernel}]: {f.detail}" for f in problems)
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("skipped", str(skipped))
    root = ET.Element("testsuites", tests=str(len(pairs)), failures=str(failures), errors=str(errors),
                      skipped=str(skipped))
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write(path: str, text: str) -> None:
    """Write the report; raises InputError (exit 2) when it cannot."""
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as e:
        raise InputError(f"{path}: cannot write: {e.strerror}") from None
