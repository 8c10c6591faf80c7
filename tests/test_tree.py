"""`tree-385c96e4` (contract §3.5, docs/tree-385c96e4.md): the DragonFly tree at 385c96e4 as
written, and the kernels named `KERNEL+ACTION` / `KERNEL-no-ACTION` the search used to fix a
found bug and search on."""

import glob
import os
import re

import pytest

from pyvmfuzz import _core

from conftest import CORPUS, ROOT, cli

TREE = "tree-385c96e4"
# The tree with its three findings fixed (docs/tree-385c96e4.md §5): the held page busy through
# the access and waited for by fork (dc039ae0), pmap_clearbit's va (3cb318dc), umtx_sleep's
# re-check of the mapping (what fixed does; DragonFly redesigned it in 2017-2018).
FIXED_TREE = TREE + "+busy_through_access+fork_waits_busy+clearbit_right_va+clearbit_local_right_va+umtx_recheck_mapping"
ACTIONS = [a[0] for a in _core.safety_actions()]


def test_the_zoo_lists_the_tree_with_the_search_as_its_expectation():
    z = next(z for z in _core.zoo() if z["name"] == TREE)
    assert z["by_search"] and z["hw"] == "mode=pc64"
    assert not any(o["by_search"] for o in _core.zoo() if o["name"] != TREE)
    out = cli("zoo").stdout
    assert re.search(rf"^{TREE}\s+mode=pc64\s+\S+\s+search\s", out, re.M), out


def test_every_rule_that_differs_from_fixed_is_in_the_doc_with_a_citation():
    doc = open(os.path.join(ROOT, "docs", "tree-385c96e4.md")).read()
    table = doc[doc.index("## 1."):doc.index("## 2.")]
    differs = [a for a in ACTIONS if _core.action_present("fixed", a) != _core.action_present(TREE, a)]
    assert len(differs) >= 7, differs
    for a in differs:
        row = next((ln for ln in table.splitlines() if f"`{a}`" in ln), None)
        assert row is not None, f"{a} differs from fixed but docs/tree-385c96e4.md §1 does not list it"
        assert re.search(r"\.(c|s|h):\d+", row), f"{a}: no file:line citation in its row"


def test_a_variant_name_switches_actions_and_unknown_ones_are_refused():
    assert _core.kernel_name(TREE + "+umtx_recheck_mapping") == TREE + "+umtx_recheck_mapping"
    assert _core.kernel_name("shootdown-no-ipi") == "shootdown-no-ipi"  # a name with "-no-" in it
    assert _core.kernel_name("fixed-no-pte_lock") == "fixed-no-pte_lock"
    assert _core.action_present(TREE, "umtx_recheck_mapping") is False
    for bad in ("fixd+pte_lock", "+pte_lock", TREE + "?"):
        with pytest.raises(ValueError, match="unknown kernel"):
            _core.kernel_name(bad)
    for bad in (TREE + "+", "fixed-no-", "fixed-no-pte_lock+-no-map_lock"):
        with pytest.raises(ValueError, match="an empty action name"):
            _core.kernel_name(bad)
    for bad, why in ((TREE + "+no_such_action", "unknown safety action 'no_such_action'"),
                     (TREE + "+umtx_recheck_mapping-no-umtx_recheck_mapping", "named twice"),
                     (TREE + "-no-procfs_retry", "'procfs_retry' is already off in tree-385c96e4"),
                     (TREE + "+inval_interlocked", "'inval_interlocked' is already on")):
        with pytest.raises(ValueError, match=why):
            _core.kernel_name(bad)
    # one kernel, one name: the actions in one order whatever the spelling
    a = _core.kernel_name(TREE + "-no-umtx_recheck+umtx_recheck_mapping")
    assert a == _core.kernel_name(TREE + "+umtx_recheck_mapping-no-umtx_recheck") == TREE + "+umtx_recheck_mapping-no-umtx_recheck"
    assert _core.kernel_name(TREE + "+umtx_recheck_mapping+clearbit_right_va") == TREE + "+clearbit_right_va+umtx_recheck_mapping"
    r = cli("run", "corpus/tree-385c96e4/umtx-sleeps-on-a-copied-frame.txt", "--kernel", TREE + "+bogus")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr


def test_check_holds_a_variants_expect_line_however_it_is_spelled(tmp_path):
    """An expect line names a variant in any order of its actions; `check --kernel all` checks the
    variants a file names too (a wrong expect line under one is caught, not skipped)."""
    body = open(os.path.join(CORPUS, TREE, "umtx-sleeps-on-a-copied-frame.txt")).read()
    prog = "\n".join(ln for ln in body.splitlines() if ln.startswith(("hw", "cpu")))
    f = tmp_path / "p.txt"
    f.write_text(f"expect {TREE}-no-umtx_recheck+umtx_recheck_mapping clean\n" + prog + "\n")
    p = cli("check", str(f), "--kernel", "all")
    assert p.returncode == 1 and f"[{TREE}+umtx_recheck_mapping-no-umtx_recheck]: expected clean, core gave lost-wakeup@7" in p.stdout, p.stdout
    f.write_text(f"expect {TREE}-no-umtx_recheck+umtx_recheck_mapping lost-wakeup 7\n" + prog + "\n")
    assert cli("check", str(f), "--kernel", "all").returncode == 0


def test_a_findings_bytes_from_a_campaign_on_a_variant_replay(tmp_path):
    """A finding saved by a campaign on `KERNEL+ACTION` names that kernel in its replay line."""
    k = TREE + "+umtx_recheck_mapping"
    text = open(os.path.join(CORPUS, TREE, "clearbit-loses-a-store-on-one-cpu.txt")).read()
    prog = "\n".join(ln.split("->")[0].rstrip() for ln in text.splitlines() if ln.startswith(("hw", "cpu"))) + "\n"
    (tmp_path / "f.bytes").write_bytes(_core.encode(prog, k))
    (tmp_path / "f.txt").write_text(f"# replay-bytes: --kernel {k} --hw cpus=1,tlb=8,mode=pc64 --os dragonfly\n" + prog)
    r = cli("run", str(tmp_path / "f.bytes"))
    assert r.returncode == 1 and "tlb-incoherent at step 2" in r.stdout, r.stdout + r.stderr


FINDINGS = {
    # regression program -> (the tree's verdict, the action whose absence is the bug)
    "procfs-write-lands-in-the-childs-frame.txt": (("stale-read", 8), ["busy_through_access", "fork_waits_busy"]),
    "clearbit-loses-a-store-on-one-cpu.txt": (("tlb-incoherent", 2), ["clearbit_local_right_va"]),
    "clearbit-loses-a-store-on-another-cpu.txt": (("tlb-incoherent", 6), ["clearbit_right_va"]),
    "umtx-sleeps-on-a-copied-frame.txt": (("lost-wakeup", 7), ["umtx_recheck_mapping"]),
}


@pytest.mark.parametrize("name", sorted(FINDINGS))
def test_each_finding_is_its_rule(name):
    """The tree breaks on its regression program; the tree with that one rule fixed does not."""
    text = open(os.path.join(CORPUS, TREE, name)).read()
    verdict, fix = FINDINGS[name]
    assert _core.run_variant(TREE, text, None, [], []) == verdict
    fixed_tree = TREE + "".join("+" + a for a in fix)
    if name.startswith("procfs"):
        # with the page busy through the access the fork waits for it: cpu1 has an op in
        # flight and the program's next line cannot run (the finding's schedule is gone)
        with pytest.raises(ValueError, match="not applicable"):
            _core.run_text(text, fixed_tree)
    else:
        assert _core.run_text(text, fixed_tree)["violation"] is None


def test_every_finding_has_a_regression_program():
    assert sorted(os.path.basename(p) for p in glob.glob(os.path.join(CORPUS, TREE, "*.txt"))) == sorted(FINDINGS)


@pytest.mark.parametrize("interleaved", [False, True])
def test_the_tree_with_its_findings_fixed_is_clean_on_random_programs(interleaved):
    """What four 150-s campaigns and explore found (docs/tree-385c96e4.md §4), on a fixed set of
    random programs: the tree's other rules break nothing."""
    r = _core.soak(20_000, seed=61, kernel=FIXED_TREE, max_steps=32, interleaved=interleaved)
    assert r["programs"] == 20_000 and r["violations"] == 0, r["examples"]
    t = _core.soak(20_000, seed=61, kernel=TREE, max_steps=32, interleaved=interleaved)
    assert t["violations"] > 0  # the same programs do break the tree as written
