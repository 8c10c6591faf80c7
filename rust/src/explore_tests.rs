//! The exactness of the `until` hint (`until_points`): at states reached by random walks on every
//! kernel, an `until P` line that the hint leaves out gives the plain line's outcome and state.

use super::*;
use crate::hw::HwSpec;
use crate::kernel::KERNELS;

fn rand(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// Run `step` on a copy of `node`: (outcome, state hash, passed points), None if inapplicable.
fn run_copy(node: &Node, step: Step, canon: &mut Canon) -> Option<(Option<Violation>, u128, u16, bool)> {
    let mut c = Node { m: node.m.clone(), j: node.j.clone() };
    match exec_line(&mut c, step, 1000) {
        Exec::Inapplicable => None,
        Exec::Done(v) => {
            let paused = c.m.cpus[step.cpu as usize].kop.is_some();
            // An `until` line, completed or not, makes the judge literal (readings R4): the
            // violation's kind from then on, never its existence; compared without it.
            c.j.set_literal(node.j.literal());
            Some((v.map(|v| Violation { step: 0, ..v }), canon.hash(&c.m, &c.j), c.m.scratch.passed, paused))
        }
    }
}

#[test]
fn until_lines_the_hint_leaves_out_are_the_plain_line() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let domain = Domain { vm: true, pages: vec![0, 4, SHM, crate::program::FILE0], ..Domain::default() };
    let mut checked = 0u64;
    let mut left_out = 0u64;
    for kernel in KERNELS {
        for hw in ["cpus=2 mode=pc64", "cpus=3 mode=pc64", "cpus=2 mode=tagged"] {
            let hw = HwSpec::parse(hw).unwrap().resolve();
            let mut canon = Canon::new(true);
            for _walk in 0..12 {
                let mut node = Node { m: Machine::new(hw, kernel), j: Lin::new() };
                let mut cands = Vec::new();
                for _ in 0..14 {
                    candidates(&node.m, &domain, false, &mut cands);
                    for &base in &cands {
                        let Some((v, h, passed, _)) = run_copy(&node, base, &mut canon) else { continue };
                        let hinted = until_points(&node.m, &base, passed);
                        let points = match base.op {
                            Op::Resume => node.m.cpus[base.cpu as usize].kop.as_ref().map_or(0, |k| node.m.points_of(&k.op)),
                            op => node.m.points_of(&op),
                        } & !Point::Wait.bit();
                        for p in POINTS {
                            if points & p.bit() == 0 || hinted & p.bit() != 0 {
                                continue;
                            }
                            let u = Step { until: Some(p), ..base };
                            let got = run_copy(&node, u, &mut canon).map(|(v, h, _, paused)| (v, h, paused));
                            let (gv, gh, _) = got.clone().expect("an until line applicable where its plain line is");
                            assert!(
                                format!("{gv:?}") == format!("{v:?}") && gh == h,
                                "{}: `{u}` differs from `{base}` though the plain line did not arrive at it (passed {passed:#x}): {gv:?} {v:?} paused {}",
                                kernel.name, got.as_ref().unwrap().2
                            );
                            left_out += 1;
                        }
                        checked += 1;
                    }
                    // One step of the walk: a random applicable line, until variants included.
                    candidates(&node.m, &domain, true, &mut cands);
                    let mut tries = 0;
                    loop {
                        tries += 1;
                        if cands.is_empty() || tries > 50 {
                            break;
                        }
                        let s = cands[(rand(&mut seed) % cands.len() as u64) as usize];
                        let mut c = Node { m: node.m.clone(), j: node.j.clone() };
                        if let Exec::Done(None) = exec_line(&mut c, s, 1) {
                            node = c;
                            break;
                        }
                    }
                }
            }
        }
    }
    assert!(checked > 10_000 && left_out > 10_000, "checked {checked}, left out {left_out}");
}

