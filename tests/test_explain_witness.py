"""`explain` shows a witness through to its user-visible step (issue 25 item 8). Derived by hand:
under shootdown-no-ipi, T2's mprotect (4) write-protects data0 without an IPI to cpu0, whose
writable entry survives over a read-only PTE (tlb-incoherent, the core's invariant, at 4); T1's
store (5) goes through it: ok where the contract says SEGV (protection at 5)."""

from conftest import cli

WITNESS = """hw cpus=2 tlb=8 mode=pc64
cpu0 store data0.0 0x1
cpu0 spawn
cpu1 switch P1.T2
cpu1 mprotect data0 r
cpu0 store data0.0 0x2
"""


def test_explain_runs_a_witness_on_to_what_a_user_sees(tmp_path):
    f = tmp_path / "w.txt"
    f.write_text(WITNESS)
    p = cli("explain", str(f), "--kernel", "shootdown-no-ipi", "--html", str(tmp_path / "w.html"))
    assert p.returncode == 1, p.stderr
    assert "# step 4 (!): tlb-incoherent, the core's own invariant" in p.stdout
    assert "# step 5 (!!): protection — expected SEGV, observed ok" in p.stdout
    rows = [ln for ln in p.stdout.splitlines() if ln[:3].strip().isdigit()]
    assert rows[3][3:5] == "! " and rows[4][3:5] == "!!", rows
    page = (tmp_path / "w.html").read_text()
    assert "tlb-incoherent, the core's own invariant" in page and "step 5: protection" in page


def test_explain_of_a_clean_kernel_is_unchanged(tmp_path):
    f = tmp_path / "w.txt"
    f.write_text(WITNESS)
    p = cli("explain", str(f), "--kernel", "fixed")
    assert p.returncode == 0 and "# no violation" in p.stdout and "(!)" not in p.stdout, p.stdout
